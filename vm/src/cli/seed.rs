//! Seeding maps before the runs, from the command line: `--map-set NAME KEY=VALUE[@CPU]`
//! (numbers typed by the map's key/value size or BTF, or `hex:` bytes) and `--maps FILE`
//! (entries in the shape `--json` prints, so a run's output can seed the next run).
//!
//! A per-CPU value given once goes to every CPU (`BPF_F_ALL_CPUS`), `@CPU` writes one
//! CPU's copy (`BPF_F_CPU`), and `--maps` entries with `values` give every CPU's copy.

use std::path::Path;

use bpfvm::loader::{BtfType, MapDefinition, Object, ObjectMaps};
use bpfvm::maps::{Map, MapFlags};
use serde_json::Value;

use super::input::read_bounded;
use super::CliError;

/// Largest `--maps` file read: 64 MiB of JSON.
pub const MAX_MAPS_FILE: usize = 64 << 20;

fn seed_error(map: &str, what: &str, reason: impl Into<String>) -> CliError {
    CliError::Seed {
        map: map.to_string(),
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// The live map named `name`, or an error listing the maps.
fn find<'a>(
    object: &'a Object,
    maps: &'a ObjectMaps,
    name: &str,
    what: &str,
) -> Result<(&'a MapDefinition, &'a Map), CliError> {
    maps.iter()
        .find(|(d, _)| d.is_named(name))
        .map(|(d, m)| (d, &**m))
        .ok_or_else(|| {
            let names: Vec<String> = object.maps().iter().map(|d| d.name.to_string()).collect();
            seed_error(
                name,
                what,
                format!("no such map; the object has: {}", names.join(", ")),
            )
        })
}

/// Whether BTF type `id` of `object` is an integer or an enum (after typedefs); `true` when
/// the object has no BTF for it (a number is then taken by size).
fn is_number_type(object: &Object, id: Option<u32>) -> bool {
    let (Some(btf), Some(id)) = (object.btf(), id) else {
        return true;
    };
    matches!(
        btf.resolve(id).and_then(|id| btf.get(id)),
        Some(BtfType::Int { .. } | BtfType::Enum { .. }) | None
    )
}

/// `text` as `size` bytes: `hex:...` exactly, or a (decimal, `0x` hex, negative) number in
/// native byte order when `size` is 1, 2, 4 or 8 and the type is a number.
fn parse_bytes(text: &str, size: usize, number_ok: bool, role: &str) -> Result<Vec<u8>, String> {
    if let Some(h) = text.strip_prefix("hex:") {
        let bytes = unhex(h).ok_or_else(|| format!("{role} {text:?} is not hex bytes"))?;
        if bytes.len() != size {
            return Err(format!(
                "{role} has {} bytes, the map's {role} size is {size}",
                bytes.len()
            ));
        }
        return Ok(bytes);
    }
    if !number_ok {
        return Err(format!(
            "the map's {role} is not a number in BTF: give its {size} bytes as hex:..."
        ));
    }
    let n: i128 = parse_number(text)
        .ok_or_else(|| format!("{role} {text:?} is not a number (or hex:BYTES)"))?;
    let fits = |bits: u32| n >= -(1i128 << (bits - 1)) && n < (1i128 << bits);
    let bytes = match size {
        1 if fits(8) => (n as u8).to_ne_bytes().to_vec(),
        2 if fits(16) => (n as u16).to_ne_bytes().to_vec(),
        4 if fits(32) => (n as u32).to_ne_bytes().to_vec(),
        8 if fits(64) => (n as u64).to_ne_bytes().to_vec(),
        1 | 2 | 4 | 8 => return Err(format!("{role} {n} does not fit in {size} bytes")),
        _ => {
            return Err(format!(
                "the map's {role} is {size} bytes: give it as hex:... (numbers need 1, 2, 4 or 8)"
            ))
        }
    };
    Ok(bytes)
}

fn parse_number(text: &str) -> Option<i128> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => i128::from_str_radix(h, 16).ok()?,
        None => t.parse::<i128>().ok()?,
    };
    Some(if neg { -v } else { v })
}

/// Hex digits (an even number, no separators) as bytes.
fn unhex(h: &str) -> Option<Vec<u8>> {
    if h.len() % 2 != 0 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).ok())
        .collect()
}

/// Applies every `--map-set NAME KEY=VALUE[@CPU]` (given as pairs) in order.
pub fn map_set(object: &Object, maps: &ObjectMaps, pairs: &[String]) -> Result<(), CliError> {
    for pair in pairs.chunks(2) {
        let [name, entry] = pair else {
            return Err(seed_error("?", "--map-set", "needs NAME and KEY=VALUE"));
        };
        let what = format!("--map-set {name} {entry}");
        let (def, map) = find(object, maps, name, &what)?;
        let fail = |reason: String| seed_error(name, &what, reason);
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| fail("expected KEY=VALUE".into()))?;
        let (value, cpu) = match value.rsplit_once('@') {
            Some((v, c)) => {
                let c: u32 = c
                    .parse()
                    .map_err(|_| fail(format!("@{c} is not a CPU number")))?;
                (v, Some(c))
            }
            None => (value, None),
        };
        let percpu = map.map_type().is_percpu();
        let flags = match (percpu, cpu) {
            (true, Some(c)) => MapFlags::cpu(c),
            (true, None) => MapFlags::ALL_CPUS,
            (false, Some(_)) => {
                return Err(fail(
                    "@CPU is for per-CPU maps; this map has one value for all CPUs".into(),
                ))
            }
            (false, None) => MapFlags::ANY,
        };
        let key = parse_bytes(
            key,
            def.key_size as usize,
            is_number_type(object, def.key_type_id),
            "key",
        )
        .map_err(fail)?;
        if map.map_type().is_map_of_maps() {
            // The value of a map-in-map is another map of the object, by name.
            maps.set_map_slot(name, &key, value)
                .map_err(|e| fail(format!("{e} (VALUE is the name of a map of the object)")))?;
            continue;
        }
        let value = parse_bytes(
            value,
            def.value_size as usize,
            is_number_type(object, def.value_type_id),
            "value",
        )
        .map_err(fail)?;
        map.update(&key, &value, flags.bits())
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Applies every entry of a `--maps` file: `{"maps": [{"name", "entries": [{"key": HEX,
/// "value": HEX} | {"key": HEX, "values": [HEX per CPU]}]}]}`, the shape `--json` prints
/// (other fields are ignored).
pub fn maps_file(object: &Object, maps: &ObjectMaps, path: &Path) -> Result<(), CliError> {
    let file = path.display().to_string();
    let bytes = read_bounded(path, MAX_MAPS_FILE, "--maps", "the limit on --maps files")?;
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| seed_error(&file, "--maps", format!("not JSON: {e}")))?;
    let list = doc
        .get("maps")
        .and_then(Value::as_array)
        .ok_or_else(|| seed_error(&file, "--maps", "no \"maps\" array"))?;
    for m in list {
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| seed_error(&file, "--maps", "a map without a \"name\""))?;
        let (def, map) = find(object, maps, name, "--maps")?;
        if map.map_type().is_map_of_maps() && m.get("entries").is_some_and(|e| e != &Value::Null) {
            // Its entries are the ids of maps of another run: nothing to seed from them.
            eprintln!(
                "bpfvm: warning: --maps: {name} is a map-in-map; its entries are not seeded \
                 (use --map-set {name} KEY=MAPNAME)"
            );
            continue;
        }
        let entries = m
            .get("entries")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, e) in entries.iter().enumerate() {
            let what = format!("--maps entry {i}");
            let fail = |reason: String| seed_error(name, &what, reason);
            let hex_field = |v: Option<&Value>, role: &str, size: usize| {
                let text = v
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail(format!("no {role} (hex string)")))?;
                parse_bytes(&format!("hex:{text}"), size, false, role).map_err(fail)
            };
            let key = hex_field(e.get("key"), "key", def.key_size as usize)?;
            let vs = def.value_size as usize;
            let (value, flags) = match (e.get("values"), e.get("value")) {
                (Some(Value::Array(per_cpu)), _) => {
                    if per_cpu.len() != map.ncpus() as usize {
                        return Err(fail(format!(
                            "{} values for a map on {} cpus",
                            per_cpu.len(),
                            map.ncpus()
                        )));
                    }
                    // The host layout: CPU i at i * round_up(value_size, 8).
                    let stride = vs.div_ceil(8) * 8;
                    let mut buf = vec![0u8; stride * per_cpu.len()];
                    for (c, v) in per_cpu.iter().enumerate() {
                        let b = hex_field(Some(v), "value", vs)?;
                        buf[c * stride..c * stride + vs].copy_from_slice(&b);
                    }
                    (buf, MapFlags::ANY)
                }
                (_, v) => {
                    let b = hex_field(v, "value", vs)?;
                    let flags = if map.map_type().is_percpu() {
                        MapFlags::ALL_CPUS
                    } else {
                        MapFlags::ANY
                    };
                    (b, flags)
                }
            };
            map.update(&key, &value, flags.bits())
                .map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_hex_become_the_map_bytes() {
        assert_eq!(
            parse_bytes("7", 4, true, "key").unwrap(),
            7u32.to_ne_bytes()
        );
        assert_eq!(parse_bytes("-1", 8, true, "v").unwrap(), [0xff; 8]);
        assert_eq!(
            parse_bytes("0x10", 2, true, "v").unwrap(),
            16u16.to_ne_bytes()
        );
        assert_eq!(parse_bytes("hex:0a0b", 2, false, "v").unwrap(), [10, 11]);
        assert!(parse_bytes("256", 1, true, "v")
            .unwrap_err()
            .contains("does not fit"));
        assert!(parse_bytes("hex:0a", 2, true, "key")
            .unwrap_err()
            .contains("1 bytes"));
        assert!(parse_bytes("1", 13, true, "key")
            .unwrap_err()
            .contains("hex:"));
        assert!(parse_bytes("1", 8, false, "value")
            .unwrap_err()
            .contains("not a number"));
        assert!(parse_bytes("x", 4, true, "key").is_err());
        assert!(parse_bytes("hex:zz", 1, true, "key").is_err());
    }
}
