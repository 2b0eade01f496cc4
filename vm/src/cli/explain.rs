//! `bpfvm run --explain`: a step-by-step walkthrough of what "per-CPU" means on this run,
//! made from real calls into the maps' host API (nothing in it is hard-coded), with no
//! timing so the same command prints the same text.
//!
//! Steps: each CPU's runs; then, for every per-CPU map, a host lookup without flags
//! (`N` slots of `round_up(value_size, 8)` bytes, shown byte by byte), one lookup per CPU with
//! `BPF_F_CPU`, and an update with `BPF_F_ALL_CPUS` made on a copy of the map.

use std::fmt::Write;

use bpfvm::loader::{Object, ObjectMaps, ProgramDefinition};
use bpfvm::maps::{Map, MapError, MapFlags};

use super::events::MapEvents;
use super::execute::RunSummary;
use super::hex::hex_spaced;
use super::snapshot::MapSnapshot;
use super::text::{integer_value, retvals_label, show_key, show_value};
use super::CliError;

/// What the walkthrough describes.
#[derive(Debug)]
pub struct Scenario<'a> {
    /// The object file as given.
    pub path: &'a str,
    /// The parsed object.
    pub object: &'a Object,
    /// The program that ran.
    pub program: &'a ProgramDefinition,
    /// Runs per CPU asked for.
    pub repeat: u64,
    /// `--seed` (also picks the value written with `BPF_F_ALL_CPUS`).
    pub seed: u64,
    /// The runs.
    pub summary: &'a RunSummary,
    /// The live maps (the walkthrough reads them; the update goes to a copy).
    pub maps: &'a ObjectMaps,
    /// The maps after the runs.
    pub snapshots: &'a [MapSnapshot],
    /// What a consumer reads from the ring buffers and perf event arrays after the runs.
    pub events: &'a [MapEvents],
}

/// `round_up(n, 8)`.
pub fn round_up8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// The value the walkthrough writes with `BPF_F_ALL_CPUS`: `42 + seed` as a little-endian
/// integer in `value_size` bytes (cut or zero-extended).
pub fn all_cpus_value(seed: u64, value_size: usize) -> Vec<u8> {
    let mut v = 42u64.wrapping_add(seed).to_le_bytes().to_vec();
    v.resize(value_size, 0);
    v
}

fn errno_name(e: &MapError) -> String {
    let name = match e.errno() {
        2 => "ENOENT",
        7 => "E2BIG",
        14 => "EFAULT",
        22 => "EINVAL",
        34 => "ERANGE",
        95 => "EOPNOTSUPP",
        _ => "",
    };
    format!("{name} ({}): {e}", e.errno())
}

/// The whole walkthrough.
pub fn explain(s: &Scenario<'_>) -> Result<String, CliError> {
    let mut out = String::new();
    let ncpus = s.summary.cpus.len();
    let p = s.program;
    let _ = writeln!(out, "bpfvm --explain: what per-CPU means, step by step");
    let _ = writeln!(
        out,
        "object {}, program {} (section {}), {ncpus} simulated cpus",
        s.path, p.name, p.section
    );
    out.push('\n');
    let _ = writeln!(out, "step 1: the runs");
    let _ = writeln!(
        out,
        "  Each simulated CPU runs the program {} time(s), its runs in order. (Here CPU after",
        s.repeat
    );
    let _ = writeln!(
        out,
        "  CPU, so this text never changes; without --explain the CPUs run in parallel.)"
    );
    let _ = writeln!(
        out,
        "  A per-CPU map gives each CPU its own copy of every value, so a program only ever"
    );
    let _ = writeln!(
        out,
        "  touches the copy of the CPU it runs on: no atomics needed, no lost updates."
    );
    for c in &s.summary.cpus {
        if c.count == 0 {
            let _ = writeln!(out, "  cpu {}: did not run", c.cpu);
            continue;
        }
        let _ = writeln!(
            out,
            "  cpu {}: {} run(s), returned {}",
            c.cpu,
            c.count,
            retvals_label(p.program_type, &c.retvals)
        );
    }
    let mut any = false;
    for (step, (snap, (_, map))) in (2..).zip(s.snapshots.iter().zip(s.maps.iter())) {
        out.push('\n');
        if snap.percpu {
            any = true;
            explain_percpu(&mut out, s, step, snap, map)?;
        } else {
            explain_shared(&mut out, s, step, snap);
        }
    }
    if !any {
        out.push('\n');
        let _ = writeln!(
            out,
            "This object has no per-CPU maps, so there is no per-CPU layout to show; try an \
             object with a percpu_array or percpu_hash (e.g. percpu_counter.o)."
        );
    }
    explain_events(&mut out, s.events);
    Ok(out)
}

/// The event maps: a perf event array has one buffer per CPU (a program's
/// `BPF_F_CURRENT_CPU` output goes to the buffer of the CPU it runs on, and a consumer reads
/// each CPU's buffer on its own), a ring buffer one for all CPUs (records in the order they
/// were committed, whichever CPU wrote them).
fn explain_events(out: &mut String, events: &[MapEvents]) {
    for e in events {
        out.push('\n');
        let _ = writeln!(out, "events: {} ({})", e.map, e.map_type);
        if e.map_type == "perf_event_array" {
            let _ = writeln!(
                out,
                "  A perf event array holds one buffer per CPU: with BPF_F_CURRENT_CPU a program"
            );
            let _ = writeln!(
                out,
                "  writes to the buffer of the CPU it runs on, and a consumer reads each buffer on"
            );
            let _ = writeln!(
                out,
                "  its own, so records of different CPUs have no order between them."
            );
        } else {
            let _ = writeln!(
                out,
                "  A ring buffer is one buffer shared by all CPUs: records come out in the order"
            );
            let _ = writeln!(out, "  they were committed, whichever CPU wrote them.");
        }
        for line in e.render().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
}

fn explain_shared(out: &mut String, s: &Scenario<'_>, step: usize, snap: &MapSnapshot) {
    let object = s.object;
    let _ = writeln!(
        out,
        "step {step}: map {} ({}) is shared: one value per key for all CPUs",
        snap.def.name,
        snap.def.map_type_name()
    );
    let _ = writeln!(
        out,
        "  A host lookup returns value_size = {} bytes; CPUs updating it in parallel must use \
         atomics.",
        snap.def.value_size
    );
    let _ = writeln!(
        out,
        "  Whether updates to it are lost when CPUs interleave: `bpfvm race {} --prog {}` \
         (docs/races.md).",
        s.path, s.program.name
    );
    if let Some(e) = snap.example() {
        let _ = writeln!(
            out,
            "  key {}: {}",
            show_key(object, snap, &e.key),
            show_value(object, snap, &e.values[0])
        );
    }
}

fn explain_percpu(
    out: &mut String,
    s: &Scenario<'_>,
    step: usize,
    snap: &MapSnapshot,
    map: &Map,
) -> Result<(), CliError> {
    let fail = |source| CliError::Map {
        map: snap.def.name.to_string(),
        source,
    };
    let vs = snap.def.value_size as usize;
    let slot = round_up8(vs);
    let n = snap.ncpus as usize;
    let _ = writeln!(
        out,
        "step {step}: map {} ({}, value_size {vs}) as the host sees it",
        snap.def.name,
        snap.def.map_type_name()
    );
    let Some(entry) = snap.example() else {
        let _ = writeln!(
            out,
            "  the map has no entries after the runs: nothing to look up"
        );
        return Ok(());
    };
    let key = show_key(s.object, snap, &entry.key);

    // (a) no flags: N slots.
    let mut all = vec![0u8; n * slot];
    map.lookup(&entry.key, &mut all, 0).map_err(fail)?;
    let _ = writeln!(
        out,
        "  {step}a. bpf_map_lookup_elem(map, key {key}, buf, flags 0)"
    );
    let _ = writeln!(
        out,
        "      fills N × round_up(value_size, 8) = {n} × {slot} = {} bytes, cpu i at offset i × {slot}:",
        n * slot
    );
    for cpu in 0..n {
        let bytes = &all[cpu * slot..(cpu + 1) * slot];
        let shown = show_value(s.object, snap, &bytes[..vs]);
        let _ = writeln!(out, "{}", slot_line(cpu, bytes, vs, &shown));
    }
    let ints: Option<Vec<i128>> = (0..n)
        .map(|cpu| integer_value(s.object, snap, &all[cpu * slot..cpu * slot + vs]))
        .collect();
    if let Some(ints) = ints {
        let terms: Vec<String> = ints.iter().map(i128::to_string).collect();
        let _ = writeln!(
            out,
            "      user space adds the slots for a total: {} = {}",
            terms.join(" + "),
            ints.iter().sum::<i128>()
        );
    }

    // (b) BPF_F_CPU for each CPU, and one past the end.
    let _ = writeln!(
        out,
        "  {step}b. with BPF_F_CPU (flags = cpu << 32 | BPF_F_CPU): value_size = {vs} bytes of one cpu"
    );
    for cpu in 0..=n as u32 {
        let flags = MapFlags::cpu(cpu).bits();
        let mut one = vec![0u8; vs];
        let result = match map.lookup(&entry.key, &mut one, flags) {
            Ok(()) => format!(
                "{}  = {}",
                hex_spaced(&one),
                show_value(s.object, snap, &one)
            ),
            Err(e) => format!("error {}", errno_name(&e)),
        };
        let _ = writeln!(out, "      cpu {cpu}: flags {flags:#018x} -> {result}");
    }

    // (c) BPF_F_ALL_CPUS, on a copy.
    let value = all_cpus_value(s.seed, vs);
    // The copy counts against the same map memory limit as the real maps.
    let copy = Map::create_in(map.spec().clone(), map.ncpus(), map.memory()).map_err(fail)?;
    copy.update(&entry.key, &all, 0).map_err(fail)?;
    copy.update(&entry.key, &value, MapFlags::ALL_CPUS.bits())
        .map_err(fail)?;
    let mut after = vec![0u8; n * slot];
    copy.lookup(&entry.key, &mut after, 0).map_err(fail)?;
    let _ = writeln!(
        out,
        "  {step}c. bpf_map_update_elem(copy, key {key}, value, BPF_F_ALL_CPUS) — on a COPY of the map;"
    );
    let _ = writeln!(
        out,
        "      the real map keeps the values above. The value is value_size = {vs} bytes \
         (42 + --seed {}): {}",
        s.seed,
        hex_spaced(&value)
    );
    let _ = writeln!(
        out,
        "      then a lookup without flags on the copy shows it in every slot:"
    );
    for cpu in 0..n {
        let bytes = &after[cpu * slot..cpu * slot + vs];
        let _ = writeln!(
            out,
            "      cpu {cpu}: {}  = {}",
            hex_spaced(bytes),
            show_value(s.object, snap, bytes)
        );
    }
    let mut one = vec![0u8; vs];
    let refused = match map.lookup(&entry.key, &mut one, MapFlags::ALL_CPUS.bits()) {
        Ok(()) => "accepted (unexpected)".to_string(),
        Err(e) => format!("refused with {}", errno_name(&e)),
    };
    let _ = writeln!(
        out,
        "      (BPF_F_ALL_CPUS only applies to updates: a lookup with it is {refused})"
    );
    Ok(())
}

/// One slot of a flags-0 lookup buffer: its byte range, the CPU, the value's bytes, the
/// padding bytes up to the next multiple of 8, and the decoded value.
pub fn slot_line(cpu: usize, slot_bytes: &[u8], value_size: usize, shown: &str) -> String {
    let slot = slot_bytes.len();
    let vs = value_size.min(slot);
    let pad = if slot > vs {
        format!(" | {} (padding)", hex_spaced(&slot_bytes[vs..]))
    } else {
        String::new()
    };
    format!(
        "      bytes {:4}..{:<4} cpu {cpu}: {}{pad}  = {shown}",
        cpu * slot,
        (cpu + 1) * slot,
        hex_spaced(&slot_bytes[..vs])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_shows_value_bytes_then_padding() {
        let bytes = [7, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            slot_line(2, &bytes, 4, "7"),
            "      bytes   16..24   cpu 2: 07 00 00 00 | 00 00 00 00 (padding)  = 7"
        );
        assert_eq!(
            slot_line(0, &bytes, 8, "7"),
            "      bytes    0..8    cpu 0: 07 00 00 00 00 00 00 00  = 7"
        );
    }

    #[test]
    fn slots_round_up_to_8() {
        assert_eq!(round_up8(1), 8);
        assert_eq!(round_up8(8), 8);
        assert_eq!(round_up8(12), 16);
    }

    #[test]
    fn the_written_value_follows_the_seed_and_the_size() {
        assert_eq!(all_cpus_value(0, 8), 42u64.to_le_bytes());
        assert_eq!(all_cpus_value(1, 4), 43u32.to_le_bytes());
        assert_eq!(all_cpus_value(0, 12).len(), 12);
    }
}
