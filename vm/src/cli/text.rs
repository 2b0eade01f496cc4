//! The human-readable output of `bpfvm run`: a summary of the runs and every map as a table,
//! one column per CPU for per-CPU maps, keys and values decoded with BTF when the object has
//! it (integers as numbers), hex otherwise. The output is written part by part (the runs,
//! then each map), and each map shows at most [`MAX_ROWS`] entries from a bounded snapshot,
//! so printing a huge map never builds its whole text.

use std::fmt::Write;
use std::time::Duration;

use bpfvm::loader::{BtfValue, Object, ProgramDefinition};
use bpfvm::maps::MapType;
use bpfvm::ProgramType;

use super::events::MapEvents;
use super::execute::{RetvalCounts, RunSummary, MAX_REDIRECTS, MAX_RETVALS};
use super::hex::hex;
use super::size::show_size;
use super::snapshot::{MapSnapshot, RawEntry};
use super::table::Table;
use super::CliError;

/// Rows shown per map before the listing is cut (the JSON output has them all).
pub const MAX_ROWS: usize = 32;
/// Above this many CPUs, per-CPU maps are listed one row per (key, CPU).
pub const MAX_CPU_COLUMNS: u32 = 8;

/// Everything the text output describes.
#[derive(Debug)]
pub struct Report<'a> {
    /// The object file as given.
    pub path: &'a str,
    /// The parsed object (for BTF).
    pub object: &'a Object,
    /// The program that ran.
    pub program: &'a ProgramDefinition,
    /// Engine name.
    pub engine: &'a str,
    /// Runs per CPU asked for.
    pub repeat: u64,
    /// The runs.
    pub summary: &'a RunSummary,
    /// The maps after the runs.
    pub maps: &'a [MapSnapshot],
    /// The events read from ring and perf buffers after the runs.
    pub events: &'a [MapEvents],
}

/// The name of a return value where the program type gives it one (`XDP_PASS`,
/// `TC_ACT_SHOT`): [`bpfvm::XdpAction`], [`bpfvm::TcAction`].
pub fn retval_name(prog_type: ProgramType, retval: u64) -> Option<&'static str> {
    match prog_type {
        ProgramType::Xdp => bpfvm::XdpAction::from_retval(retval).map(|a| a.name()),
        ProgramType::SchedCls | ProgramType::SchedAct => {
            bpfvm::TcAction::from_retval(retval).map(|a| a.name())
        }
        _ => None,
    }
}

/// `2 (XDP_PASS)` or `7`.
pub fn retval_label(prog_type: ProgramType, retval: u64) -> String {
    match retval_name(prog_type, retval) {
        Some(name) => format!("{retval} ({name})"),
        None => retval.to_string(),
    }
}

/// `2 (XDP_PASS) ×1000, 1 ×3`; when more than [`MAX_RETVALS`] distinct values came back, the
/// runs returning the others and the last value follow.
pub fn retvals_label(prog_type: ProgramType, r: &RetvalCounts) -> String {
    let mut parts: Vec<String> = r
        .counts()
        .iter()
        .map(|(v, n)| format!("{} ×{n}", retval_label(prog_type, *v)))
        .collect();
    if r.other() > 0 {
        parts.push(format!(
            "and {} returning other values (only the first {MAX_RETVALS} distinct values are counted; the last run returned {})",
            plural(r.other(), "run"),
            r.last()
                .map(|v| retval_label(prog_type, v))
                .unwrap_or_default()
        ));
    }
    parts.join(", ")
}

/// `1 run`, `2 runs`.
pub fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A duration in the most readable unit (`312 ns`, `4.20 µs`, `1.05 ms`, `2.50 s`).
pub fn human_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.2} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// A key decoded with the map's BTF key type, else hex.
pub fn show_key(object: &Object, map: &MapSnapshot, key: &[u8]) -> String {
    match object.decode_key(&map.def, key) {
        Some(v) => v.to_string(),
        None => hex(key),
    }
}

/// Hex bytes shown of a value the snapshot kept only the start of.
const CUT_VALUE_HEX: usize = 32;

/// True when `value` is only the start of the map's value (a snapshot cuts long values).
fn is_cut(map: &MapSnapshot, value: &[u8]) -> bool {
    value.len() < map.def.value_size as usize
}

/// A value decoded with the map's BTF value type, else hex; a value the snapshot cut is
/// shown as the hex of its first bytes and its size.
pub fn show_value(object: &Object, map: &MapSnapshot, value: &[u8]) -> String {
    if is_cut(map, value) {
        return format!(
            "{}… ({} bytes)",
            hex(&value[..value.len().min(CUT_VALUE_HEX)]),
            map.def.value_size
        );
    }
    match object.decode_value(&map.def, value) {
        Some(v) => v.to_string(),
        None => hex(value),
    }
}

/// The value as an integer when BTF says it is one.
pub fn integer_value(object: &Object, map: &MapSnapshot, value: &[u8]) -> Option<i128> {
    if is_cut(map, value) {
        return None;
    }
    match object.decode_value(&map.def, value)? {
        BtfValue::Unsigned(v) => Some(i128::from(v)),
        BtfValue::Signed(v) => Some(i128::from(v)),
        _ => None,
    }
}

/// Writes the whole text output to `out`: the runs, then each map as it is rendered.
pub fn write(r: &Report<'_>, out: &mut dyn std::io::Write) -> Result<(), CliError> {
    out.write_all(render_runs(r).as_bytes())
        .map_err(CliError::stdout)?;
    for m in r.maps {
        let block = format!("\n{}", render_map(r.object, m));
        out.write_all(block.as_bytes()).map_err(CliError::stdout)?;
    }
    for e in r.events {
        let block = format!("\n{}", e.render());
        out.write_all(block.as_bytes()).map_err(CliError::stdout)?;
    }
    Ok(())
}

/// The header and the runs: one line per CPU, timing, the first trace lines.
pub fn render_runs(r: &Report<'_>) -> String {
    let mut out = String::new();
    let p = r.program;
    let ran: Vec<_> = r.summary.cpus.iter().filter(|c| c.count > 0).collect();
    let ncpus = r.summary.cpus.len();
    let _ = writeln!(
        out,
        "program {} (section {}, {:?}) from {}",
        p.name, p.section, p.program_type, r.path
    );
    let where_ = if ran.len() == ncpus {
        format!("on each of {ncpus} cpus")
    } else {
        let list: Vec<_> = ran.iter().map(|c| c.cpu.to_string()).collect();
        format!("on cpu {} only ({ncpus} cpus)", list.join(", "))
    };
    let _ = writeln!(
        out,
        "engine {}: {} {where_}, {} runs in all",
        r.engine,
        plural(r.repeat, "run"),
        r.summary.total_runs()
    );
    out.push('\n');
    out.push_str("runs\n");
    let mut t = Table::new(["cpu", "runs", "return values (value ×count)"]);
    for c in &r.summary.cpus {
        t.row([
            c.cpu.to_string(),
            c.count.to_string(),
            retvals_label(p.program_type, &c.retvals),
        ]);
    }
    out.push_str(&t.render("  "));
    if r.summary.cpus.iter().any(|c| !c.redirects.is_empty()) {
        out.push_str("redirects (where the packets went)\n");
        let mut t = Table::new(["cpu", "target", "runs"]);
        for c in &r.summary.cpus {
            for (target, n) in c.redirects.counts() {
                t.row([c.cpu.to_string(), target.to_string(), n.to_string()]);
            }
            if c.redirects.other() > 0 {
                t.row([
                    c.cpu.to_string(),
                    format!(
                        "other targets (only the first {MAX_REDIRECTS} distinct ones are counted)"
                    ),
                    c.redirects.other().to_string(),
                ]);
            }
        }
        out.push_str(&t.render("  "));
    }
    if let Some(per_run) = r.summary.time_per_run() {
        let _ = writeln!(
            out,
            "time: {} per run (mean on one cpu), {} wall for all runs",
            human_duration(per_run),
            human_duration(r.summary.wall)
        );
    }
    for c in &r.summary.cpus {
        if !c.trace.is_empty() {
            let _ = writeln!(out, "trace of cpu {} (first lines):", c.cpu);
            for line in &c.trace {
                let _ = writeln!(out, "  {line}");
            }
        }
        if c.trace_dropped > 0 {
            let _ = writeln!(
                out,
                "  cpu {}: {} of trace output dropped (each run keeps at most {}, as the kernel's trace buffer drops what does not fit)",
                c.cpu,
                plural(c.trace_dropped, "byte"),
                show_size(bpfvm::limits::TRACE_CAPACITY as u64)
            );
        }
    }
    out
}

/// One map: a title line and its table.
pub fn render_map(object: &Object, m: &MapSnapshot) -> String {
    let d = &m.def;
    let mut out = format!(
        "map {} ({}, key {} B, value {} B, max_entries {}{})\n",
        d.name,
        d.map_type_name(),
        d.key_size,
        d.value_size,
        d.max_entries,
        m.section()
            .map(|s| format!(", section {s}"))
            .unwrap_or_default()
    );
    if d.map_type == MapType::Ringbuf as u32 || d.map_type == MapType::PerfEventArray as u32 {
        out.push_str("  (no entries: its events are listed below)\n");
        return out;
    }
    if m.count == 0 {
        out.push_str("  (empty)\n");
        return out;
    }
    // Long listings: leave out all-zero entries first, then cut.
    let shown: Vec<&RawEntry> = m.shown(MAX_ROWS).iter().collect();
    let (hidden_zero, cut) = if m.count > MAX_ROWS as u64 {
        (
            m.count - m.count_with_data,
            m.count_with_data - shown.len() as u64,
        )
    } else {
        (0, 0)
    };
    let table = if !m.percpu {
        let mut t = Table::new(["key", "value"]);
        for e in &shown {
            t.row([
                show_key(object, m, &e.key),
                show_value(object, m, &e.values[0]),
            ]);
        }
        t
    } else if m.ncpus <= MAX_CPU_COLUMNS {
        let sums = shown.iter().all(|e| {
            e.values
                .iter()
                .all(|v| integer_value(object, m, v).is_some())
        });
        let mut header = vec!["key".to_string()];
        header.extend((0..m.ncpus).map(|c| format!("cpu{c}")));
        if sums {
            header.push("sum".to_string());
        }
        let mut t = Table::new(header);
        for e in &shown {
            let mut row = vec![show_key(object, m, &e.key)];
            row.extend(e.values.iter().map(|v| show_value(object, m, v)));
            if sums {
                let s: i128 = e
                    .values
                    .iter()
                    .filter_map(|v| integer_value(object, m, v))
                    .sum();
                row.push(s.to_string());
            }
            t.row(row);
        }
        t
    } else {
        let mut t = Table::new(["key", "cpu", "value"]);
        for e in &shown {
            let key = show_key(object, m, &e.key);
            for (cpu, v) in e.values.iter().enumerate() {
                t.row([key.clone(), cpu.to_string(), show_value(object, m, v)]);
            }
        }
        t
    };
    out.push_str(&table.render("  "));
    if hidden_zero > 0 {
        let _ = writeln!(out, "  ({hidden_zero} all-zero entries not shown)");
    }
    if cut > 0 {
        let _ = writeln!(out, "  ({cut} more entries not shown; --json lists all)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_return_values_are_named() {
        assert_eq!(retval_label(ProgramType::Xdp, 2), "2 (XDP_PASS)");
        assert_eq!(retval_label(ProgramType::Xdp, 9), "9");
        assert_eq!(retval_label(ProgramType::SocketFilter, 1), "1");
        assert_eq!(
            retval_label(ProgramType::SchedCls, 7),
            "7 (TC_ACT_REDIRECT)"
        );
        assert_eq!(retval_label(ProgramType::SchedCls, 2), "2 (TC_ACT_SHOT)");
        assert_eq!(
            retval_label(ProgramType::SchedCls, u64::from(u32::MAX)),
            "4294967295 (TC_ACT_UNSPEC)"
        );
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(human_duration(Duration::from_nanos(312)), "312 ns");
        assert_eq!(human_duration(Duration::from_nanos(4_200)), "4.20 µs");
        assert_eq!(human_duration(Duration::from_micros(7_195)), "7.20 ms");
        assert_eq!(human_duration(Duration::from_micros(42)), "42.00 µs");
        assert_eq!(human_duration(Duration::from_millis(15)), "15.00 ms");
        assert_eq!(human_duration(Duration::from_secs(12)), "12.00 s");
    }
}
