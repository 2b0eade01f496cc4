//! The `--json` output of `bpfvm run`: exactly one object with the shape of issue 5.
//!
//! `{"program", "cpus", "engine", "runs": [{"cpu", "count", "retvals": {"<r0>": n},
//!   "redirects": [{"target": TEXT, "kind", ..., "count": n}]}],
//!   "maps": [{"name", "type", "key_size", "value_size", "max_entries",
//!             "entries": [{"key": HEX, "value": HEX} | {"key": HEX, "values": [HEX per CPU]}]}]}`

use bpfvm::RedirectTarget;
use serde_json::{json, Map, Value};

use super::execute::RunSummary;
use super::hex::hex;
use super::snapshot::MapSnapshot;

/// The JSON document for a run of `program` on `ncpus` CPUs with `engine`.
pub fn run_document(
    program: &str,
    ncpus: u32,
    engine: &str,
    summary: &RunSummary,
    maps: &[MapSnapshot],
) -> Value {
    let runs: Vec<Value> = summary
        .cpus
        .iter()
        .map(|c| {
            let retvals: Map<String, Value> = c
                .retvals
                .iter()
                .map(|(v, n)| (v.to_string(), json!(n)))
                .collect();
            let redirects: Vec<Value> = c
                .redirects
                .iter()
                .map(|(t, n)| redirect_document(t, *n))
                .collect();
            json!({"cpu": c.cpu, "count": c.count, "retvals": retvals, "redirects": redirects})
        })
        .collect();
    json!({
        "program": program,
        "cpus": ncpus,
        "engine": engine,
        "runs": runs,
        "maps": maps.iter().map(map_document).collect::<Vec<_>>(),
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

/// One map: definition and raw entries in hex.
pub fn map_document(m: &MapSnapshot) -> Value {
    let entries: Vec<Value> = m
        .entries
        .iter()
        .map(|e| {
            if m.percpu {
                json!({"key": hex(&e.key), "values": e.values.iter().map(|v| hex(v)).collect::<Vec<_>>()})
            } else {
                json!({"key": hex(&e.key), "value": hex(&e.values[0])})
            }
        })
        .collect();
    json!({
        "name": m.def.name,
        "type": m.def.map_type_name(),
        "key_size": m.def.key_size,
        "value_size": m.def.value_size,
        "max_entries": m.def.max_entries,
        "entries": entries,
    })
}
