//! The `--json` output of `bpfvm run`: exactly one object with the shape of issue 5.
//!
//! `{"program", "cpus", "engine",
//!   "runs": [{"cpu", "count", "retvals": {"<r0>": n}, "retvals_other", "first_retval",
//!             "last_retval", "trace_dropped",
//!             "redirects": [{"target": TEXT, "kind", ..., "count": n}], "redirects_other",
//!             "data_out": HEX, "first_data_out": HEX?, "ctx_out": HEX?}],
//!   "maps": [{"name", "type", "key_size", "value_size", "max_entries",
//!             "entries": [{"key": HEX, "value": HEX} | {"key": HEX, "values": [HEX per CPU]}]}]}`
//!
//! Where the object's BTF types a map's key or value, the first [`MAX_DECODED_ENTRIES`]
//! entries of each map also have `key_btf` and `value_btf` (or `values_btf`, one per CPU):
//! the C value as text (`{ saddr: 1, ... }`), decoded within the loader's bounds. A `--maps FILE` reads the hex fields back.
//!
//! `retvals` counts the first 64 distinct return values of a CPU's runs; `retvals_other` the
//! runs that returned another value; `redirects` the first 64 distinct redirect targets,
//! `redirects_other` the runs that redirected elsewhere. `data_out` is the packet after the
//! CPU's last run (as `BPF_PROG_TEST_RUN` reports it; empty without a packet),
//! `first_data_out` the packet after its first run when that differs, `ctx_out` the context
//! after the last run in the kernel's test-run form, for XDP and `__sk_buff` programs only.
//! The document is written as it is made: map entries are read and printed one at a time,
//! so a huge map never sits in memory as JSON.

use std::io::Write;

use bpfvm::loader::{MapDefinition, Object, ObjectMaps};
use bpfvm::RedirectTarget;
use serde_json::{json, Map, Value};

use super::events::MapEvents;
use super::execute::RunSummary;
use super::hex::hex;
use super::snapshot::{walk, EntryRef};
use super::CliError;

/// The `runs` array.
pub fn runs_document(summary: &RunSummary) -> Value {
    summary
        .cpus
        .iter()
        .map(|c| {
            let retvals: Map<String, Value> = c
                .retvals
                .counts()
                .iter()
                .map(|(v, n)| (v.to_string(), json!(n)))
                .collect();
            let redirects: Vec<Value> = c
                .redirects
                .counts()
                .iter()
                .map(|(t, n)| redirect_document(t, *n))
                .collect();
            let mut doc = json!({
                "cpu": c.cpu,
                "count": c.count,
                "retvals": retvals,
                "retvals_other": c.retvals.other(),
                "first_retval": c.retvals.first(),
                "last_retval": c.retvals.last(),
                "trace_dropped": c.trace_dropped,
                "redirects": redirects,
                "redirects_other": c.redirects.other(),
                "data_out": hex(&c.data_out),
            });
            if let Some(first) = &c.first_data_out {
                doc["first_data_out"] = json!(hex(first));
            }
            if !c.ctx_out.is_empty() {
                doc["ctx_out"] = json!(hex(&c.ctx_out));
            }
            doc
        })
        .collect()
}

/// A map's fields before its entries.
pub fn map_header(def: &MapDefinition) -> Value {
    json!({
        "name": def.name.to_string(),
        "type": def.map_type_name(),
        "key_size": def.key_size,
        "value_size": def.value_size,
        "max_entries": def.max_entries,
    })
}

/// Where `count` runs redirected their packet: the target as text, its kind and fields.
pub fn redirect_document(t: &RedirectTarget, count: u64) -> Value {
    let mut v = match *t {
        RedirectTarget::Ifindex { ifindex, ingress } => {
            json!({"kind": "ifindex", "ifindex": ifindex, "ingress": ingress})
        }
        RedirectTarget::Neigh { ifindex, nexthop } => json!({
            "kind": "neigh",
            "ifindex": ifindex,
            "nexthop": nexthop.map(|n| hex(&n.addr)),
        }),
        RedirectTarget::Peer { ifindex } => json!({"kind": "peer", "ifindex": ifindex}),
        RedirectTarget::Device {
            name, key, ifindex, ..
        } => json!({"kind": "devmap", "map": name.as_str(), "key": key, "ifindex": ifindex}),
        RedirectTarget::Broadcast {
            name,
            exclude_ingress,
            ..
        } => json!({"kind": "broadcast", "map": name.as_str(), "exclude_ingress": exclude_ingress}),
        RedirectTarget::Cpu { name, cpu, .. } => {
            json!({"kind": "cpumap", "map": name.as_str(), "cpu": cpu})
        }
        RedirectTarget::Xsk {
            name, key, socket, ..
        } => json!({"kind": "xskmap", "map": name.as_str(), "key": key, "socket": socket}),
        _ => json!({"kind": "other"}),
    };
    v["target"] = json!(t.to_string());
    v["count"] = json!(count);
    v
}

/// Bytes turned into hex at a time, so a long value is never held as one hex string.
const HEX_CHUNK: usize = 32 << 10;

/// Values longer than this are not decoded with BTF in the output (their hex is there).
const MAX_DECODED_VALUE: usize = 4096;
/// Entries of each map printed with their BTF-decoded key and value (all have hex).
pub const MAX_DECODED_ENTRIES: usize = 256;

/// Writes one entry, `{"key": HEX, "value": HEX}` or `{"key": HEX, "values": [HEX, ...]}`,
/// the values' hex in chunks; with `btf` (the object and the map's definition), also the
/// BTF-decoded `key_btf` and `value_btf`/`values_btf` where BTF types them.
pub fn write_entry(
    out: &mut dyn Write,
    e: &EntryRef<'_>,
    percpu: bool,
    btf: Option<(&Object, &MapDefinition)>,
) -> Result<(), CliError> {
    put(out, &format!("{{\"key\":\"{}\",", hex(e.key)))?;
    put(out, if percpu { "\"values\":[" } else { "\"value\":" })?;
    for (i, v) in e.values().enumerate() {
        if i > 0 {
            put(out, ",")?;
        }
        put(out, "\"")?;
        for chunk in v.chunks(HEX_CHUNK) {
            put(out, &hex(chunk))?;
        }
        put(out, "\"")?;
    }
    if percpu {
        put(out, "]")?;
    }
    if let Some((object, def)) = btf {
        if let Some(k) = object.decode_key(def, e.key) {
            put(out, &format!(",\"key_btf\":{}", Value::from(k.to_string())))?;
        }
        if def.value_size as usize <= MAX_DECODED_VALUE {
            let decoded: Option<Vec<Value>> = e
                .values()
                .map(|v| {
                    object
                        .decode_value(def, v)
                        .map(|d| Value::from(d.to_string()))
                })
                .collect();
            match decoded {
                Some(d) if percpu => put(out, &format!(",\"values_btf\":{}", Value::from(d)))?,
                Some(d) => {
                    if let Some(one) = d.into_iter().next() {
                        put(out, &format!(",\"value_btf\":{one}"))?;
                    }
                }
                None => {}
            }
        }
    }
    put(out, "}")
}

/// `value` as JSON without its closing brace, so more fields can follow.
fn open_object(value: &Value) -> String {
    let mut s = value.to_string();
    s.pop();
    s
}

fn put(out: &mut dyn Write, s: &str) -> Result<(), CliError> {
    out.write_all(s.as_bytes()).map_err(CliError::stdout)
}

/// What the document says about the runs.
#[derive(Debug, Clone, Copy)]
pub struct RunHead<'a> {
    /// The program's name.
    pub program: &'a str,
    /// Simulated CPUs.
    pub ncpus: u32,
    /// Engine name.
    pub engine: &'a str,
    /// The runs.
    pub summary: &'a RunSummary,
}

/// Writes the document for the runs of `head` to `out`, followed by a newline, reading each
/// map's entries as they are printed, then the `events` read from the ring and perf
/// buffers ([`MapEvents::to_json`]).
pub fn write_run(
    out: &mut dyn Write,
    head: &RunHead<'_>,
    object: &Object,
    maps: &ObjectMaps,
    events: &[MapEvents],
) -> Result<(), CliError> {
    let head = json!({
        "program": head.program,
        "cpus": head.ncpus,
        "engine": head.engine,
        "runs": runs_document(head.summary),
    });
    put(out, &open_object(&head))?;
    put(out, ",\"maps\":[")?;
    for (i, (def, map)) in maps.iter().enumerate() {
        if i > 0 {
            put(out, ",")?;
        }
        put(out, &open_object(&map_header(def)))?;
        put(out, ",\"entries\":[")?;
        let percpu = map.map_type().is_percpu();
        let mut written = 0usize;
        walk(def, map, |e| {
            if written > 0 {
                put(out, ",")?;
            }
            // BTF decoding costs up to its budget per value: only the first entries get it,
            // so a huge map's listing stays proportional to its bytes.
            let btf = (written < MAX_DECODED_ENTRIES).then_some((object, def));
            written += 1;
            write_entry(out, &e, percpu, btf)
        })?;
        put(out, "]}")?;
    }
    put(out, "],\"events\":[")?;
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            put(out, ",")?;
        }
        put(out, &e.to_json().to_string())?;
    }
    put(out, "]}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm::loader::Object;

    #[test]
    fn the_streamed_document_is_one_json_value_with_every_entry() {
        let obj = Object::parse(include_bytes!("../../tests/fixtures/percpu_hash.o")).unwrap();
        let maps = obj.create_maps(2).unwrap();
        let (def, map) = maps.iter().next().unwrap();
        let ks = def.key_size as usize;
        let mut n = 0u32;
        while map
            .update(&vec![n as u8; ks], &vec![1u8; map.host_value_size(0)], 0)
            .is_ok()
        {
            n += 1;
            if n == 200 {
                break;
            }
        }
        let mut out = Vec::new();
        let head = RunHead {
            program: "p",
            ncpus: 2,
            engine: "interpreter",
            summary: &RunSummary::default(),
        };
        write_run(&mut out, &head, &obj, &maps, &[]).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let doc: Value = serde_json::from_slice(&out).unwrap();
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["program", "cpus", "engine", "runs", "maps", "events"]
        );
        assert_eq!(doc["maps"].as_array().unwrap().len(), maps.all().len());
        let entries = doc["maps"][0]["entries"].as_array().unwrap();
        assert_eq!(entries.len() as u32, n);
        assert_eq!(doc["maps"][0]["name"], def.name.as_str());
        // Per-CPU: one hex value per CPU, value_size bytes each.
        assert_eq!(
            entries[0]["values"],
            json!(["0101010101010101", "0101010101010101"])
        );
        assert_eq!(doc["maps"][1]["entries"][0]["value"], "0000000000000000");
    }

    /// Counts what is written, and the largest single write.
    #[derive(Default)]
    struct Pieces {
        bytes: Vec<u8>,
        largest: usize,
    }

    impl Write for Pieces {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.largest = self.largest.max(buf.len());
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn long_values_are_written_in_bounded_pieces() {
        use bpfvm::maps::{Map, MapSpec, MapType};
        let obj = Object::parse(include_bytes!("../../tests/fixtures/percpu_hash.o")).unwrap();
        let mut def = obj.maps()[1].clone();
        def.value_size = 1 << 20;
        let map = Map::create(MapSpec::new(MapType::Array, 4, 1 << 20, 3), 1).unwrap();
        map.update(&2u32.to_ne_bytes(), &vec![0xab; 1 << 20], 0)
            .unwrap();
        let mut out = Pieces::default();
        walk(&def, &map, |e| write_entry(&mut out, &e, false, None)).unwrap();
        assert!(
            out.largest <= 2 * HEX_CHUNK,
            "a write of {} bytes",
            out.largest
        );
        // Three entries, each with 2 MiB of hex.
        let text = String::from_utf8(out.bytes).unwrap();
        assert_eq!(text.matches("\"value\":\"").count(), 3);
        assert!(text.ends_with(&format!("{}\"}}", "ab".repeat(1000))));
        assert_eq!(
            text.len(),
            3 * (2 * (1 << 20) + r#"{"key":"00000000","value":""}"#.len())
        );
    }
}
