//! Text of an exploration: the verdict, the conflicting accesses, a K-column timeline of
//! the shortest schedule that loses an update, and the maps before and after.

use std::fmt::Write;

use super::explore::{Exploration, Explorer, Mode};
use super::schedule::cpu_digit;
use super::scheduler::{AccessKind, Step};
use super::state::MapsState;

/// Bytes as a little-endian number (up to 8 bytes) or hex.
pub fn value_text(v: &[u8]) -> String {
    if v.is_empty() {
        return "?".into();
    }
    if v.len() <= 8 {
        let mut b = [0u8; 8];
        b[..v.len()].copy_from_slice(v);
        return u64::from_le_bytes(b).to_string();
    }
    let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{hex}")
}

/// Shows a whole key (`true`) or value (`false`) of the named map, e.g. decoded with the
/// object's BTF; `None`: as a number or hex ([`value_text`]).
pub type Decode<'a> = &'a dyn Fn(&str, bool, &[u8]) -> Option<String>;

/// No decoding: numbers and hex.
pub fn no_decode(_: &str, _: bool, _: &[u8]) -> Option<String> {
    None
}

/// What a step did, e.g. `read 0`, `write 0 -> 1`, `atomic 1 -> 2`.
pub fn action_text(s: &Step) -> String {
    action_text_with(s, "", &no_decode)
}

/// [`action_text`], with the value a map helper stores shown by `decode` (`map`: its name).
pub fn action_text_with(s: &Step, map: &str, decode: Decode<'_>) -> String {
    match s.point.kind {
        AccessKind::Read => format!("read {}", value_text(&s.before)),
        AccessKind::Write => format!(
            "write {} -> {}",
            value_text(&s.before),
            value_text(&s.after)
        ),
        AccessKind::Atomic => format!(
            "atomic {} -> {}",
            value_text(&s.before),
            value_text(&s.after)
        ),
        AccessKind::HelperRead => s.point.helper.unwrap_or("helper").to_string(),
        AccessKind::HelperWrite => match s.after.is_empty() {
            true => s.point.helper.unwrap_or("helper").to_string(),
            false => format!(
                "{} = {}",
                s.point.helper.unwrap_or("helper"),
                decode(map, false, &s.after).unwrap_or_else(|| value_text(&s.after))
            ),
        },
    }
}

/// `insn N (file:line: code)` of a step.
pub fn where_text(explorer: &Explorer, s: &Step) -> String {
    match explorer.program().source_line(s.point.pc) {
        Some(line) => format!("insn {} ({})", s.point.pc, line.trim()),
        None => format!("insn {}", s.point.pc),
    }
}

/// One line per map entry that differs between `a` and `b` (or all of `b`'s when `a` is
/// empty), at most `max` lines.
fn map_lines(
    before: &MapsState,
    after: &MapsState,
    out: &mut String,
    max: usize,
    decode: Decode<'_>,
) {
    let mut n = 0;
    for (i, img) in after.0.iter().enumerate() {
        let Some(entries) = &img.entries else {
            continue;
        };
        let old = before.0.get(i).and_then(|m| m.entries.as_ref());
        for (k, v) in entries {
            let was = old.and_then(|o| o.iter().find(|(ok, _)| ok == k).map(|(_, ov)| ov));
            if was == Some(v) {
                continue;
            }
            if n == max {
                let _ = writeln!(out, "    ...");
                return;
            }
            n += 1;
            let one = |v: &[u8]| decode(&img.name, false, v).unwrap_or_else(|| value_text(v));
            let show = |v: &[u8]| {
                if img.per_cpu == 0 {
                    return one(v);
                }
                let per: Vec<String> = v.chunks(img.per_cpu).map(one).collect();
                format!("per CPU [{}]", per.join(", "))
            };
            let was = was.map_or("(none)".to_string(), |w| show(w));
            let _ = writeln!(
                out,
                "    {}[{}]: {} -> {}",
                img.name,
                decode(&img.name, true, k).unwrap_or_else(|| value_text(k)),
                was,
                show(v)
            );
        }
    }
    if n == 0 {
        let _ = writeln!(out, "    (no change)");
    }
}

/// The whole text report of `e` for `explorer` (`title`: what was explored).
pub fn text(explorer: &Explorer, e: &Exploration, title: &str) -> String {
    text_with(explorer, e, title, &no_decode)
}

/// [`text`] with whole keys and values shown by `decode`.
pub fn text_with(explorer: &Explorer, e: &Exploration, title: &str, decode: Decode<'_>) -> String {
    let c = explorer.config();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bpfvm race: {title} on {} CPUs x {} run{} each",
        c.cpus,
        c.runs,
        if c.runs == 1 { "" } else { "s" }
    );
    let how = match e.mode {
        Mode::Exhaustive if e.complete => {
            "exhaustive (every interleaving, up to partial-order reduction)".to_string()
        }
        Mode::Exhaustive => format!(
            "exhaustive, stopped at the cap of {} schedules (not every interleaving)",
            c.max_schedules
        ),
        Mode::Random { seed } => format!("random, seed {seed}"),
    };
    let _ = writeln!(
        out,
        "explored: {how}: {} run to the end, {} cut short as equivalent to one run \
         before, up to {} shared steps; {} serial orders give {} final state{}",
        plural(e.schedules, "schedule"),
        e.pruned,
        e.max_steps_seen,
        e.serial_orders,
        e.serial_states.len(),
        if e.serial_states.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", e.verdict());
    if let Some(l) = &e.lost_update {
        let x = &l.execution;
        let _ = writeln!(out);
        if let Some(cf) = &l.conflict {
            let _ = writeln!(out, "conflicting accesses:");
            let mut show = |label: &str, i: usize| {
                let s = &x.steps[i];
                let _ = writeln!(
                    out,
                    "  {label:<13} step {:>2}: CPU {} {} {} at {}",
                    i + 1,
                    s.cpu,
                    action_text_with(s, &explorer.map_name(s), decode),
                    explorer.describe(s),
                    where_text(explorer, s)
                );
            };
            show("stale read", cf.stale_read);
            show("other write", cf.other_write);
            if let Some(k) = cf.overwrite {
                show("overwrite", k);
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "timeline of schedule {}:", x.schedule);
        timeline(explorer, x, &mut out, decode);
        let _ = writeln!(out);
        let _ = writeln!(out, "maps before -> after this schedule:");
        map_lines(&e.initial, &x.state, &mut out, 16, decode);
        for (i, s) in e.serial_states.iter().enumerate().take(4) {
            let _ = writeln!(out, "serial order result {}:", i + 1);
            map_lines(&e.initial, s, &mut out, 16, decode);
        }
    } else {
        let _ = writeln!(out);
        let _ = writeln!(out, "maps before -> after (serial result):");
        if let Some(s) = e.serial_states.first() {
            map_lines(&e.initial, s, &mut out, 16, decode);
        }
    }
    if !e.data_races.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "data races (same bytes, different CPUs, a plain write, nothing ordering them):"
        );
        for r in e.data_races.iter().take(8) {
            let f = |s: &Step| {
                format!(
                    "CPU {} {} {} at {}",
                    s.cpu,
                    kind_word(s.point.kind),
                    explorer.describe(s),
                    where_text(explorer, s)
                )
            };
            let _ = writeln!(out, "  {}", f(&r.first));
            let _ = writeln!(out, "    vs {} (schedule {})", f(&r.second), r.schedule);
        }
    }
    out
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn kind_word(k: AccessKind) -> &'static str {
    match k {
        AccessKind::Read => "reads",
        AccessKind::Write => "writes",
        AccessKind::Atomic => "atomically updates",
        AccessKind::HelperRead => "looks up",
        AccessKind::HelperWrite => "updates (helper)",
    }
}

/// A K-column table: one row per step, the step in its CPU's column.
fn timeline(
    explorer: &Explorer,
    x: &super::explore::Execution,
    out: &mut String,
    decode: Decode<'_>,
) {
    let k = explorer.config().cpus as usize;
    let cells: Vec<String> = x
        .steps
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                action_text_with(s, &explorer.map_name(s), decode),
                explorer.describe(s)
            )
        })
        .collect();
    let width = cells
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = write!(out, "  step |");
    for cpu in 0..k {
        let _ = write!(out, " {:<width$} |", format!("CPU {}", cpu_digit(cpu)));
    }
    let _ = writeln!(out, " source");
    for (i, (s, cell)) in x.steps.iter().zip(&cells).enumerate() {
        let _ = write!(out, "  {:>4} |", i + 1);
        for cpu in 0..k {
            let text = if cpu == s.cpu { cell.as_str() } else { "" };
            let _ = write!(out, " {text:<width$} |");
        }
        let _ = writeln!(out, " {}", where_text(explorer, s));
    }
}
