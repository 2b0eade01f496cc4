//! `--report <FILE>`: a self-contained SVG picture of a run — runs per CPU, for each
//! per-CPU map its values as bars, one bar per CPU for every key shown, and for each shared
//! map (one value for all CPUs) one bar per key, and for each ring buffer or perf event
//! array its records (and lost samples) per buffer. Long titles wrap, labels that do not fit
//! their group are cut (the whole text is the bar's tooltip), and every CPU has its own
//! colour whatever the CPU count.

use std::fmt::Write;

use bpfvm::loader::{Object, ProgramDefinition};

use super::events::{MapEvents, Record};
use super::execute::RunSummary;
use super::snapshot::{MapSnapshot, RawEntry};
use super::text::{integer_value, show_key, show_value};

/// Picture width in pixels.
const WIDTH: f64 = 960.0;
/// Left/right margin.
const MARGIN: f64 = 40.0;
/// Height of the bar area of one chart.
const CHART_H: f64 = 160.0;
/// Maps drawn, and keys drawn per map.
const MAX_MAPS: usize = 6;
const MAX_KEYS: usize = 8;
/// Colours of the first CPUs; later CPUs get hues of their own ([`cpu_color`]).
const COLORS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];
/// Colour of a shared map's bars (one value for every CPU).
const SHARED_COLOR: &str = "#6b6b6b";
/// Colour of the lost-samples bars of an event map.
const LOST_COLOR: &str = "#c0392b";
/// CPUs named in the legend; the rest are counted.
const LEGEND_CPUS: usize = 64;
/// Legend entries per row.
const LEGEND_PER_ROW: usize = 15;
/// Average glyph widths (px) of the fonts used, to fit text without measuring it.
const H1_CHAR_W: f64 = 11.0;
const H2_CHAR_W: f64 = 8.6;
const SUB_CHAR_W: f64 = 7.0;
const LABEL_CHAR_W: f64 = 6.8;
const VALUE_CHAR_W: f64 = 6.2;

/// What the picture shows.
#[derive(Debug)]
pub struct ReportInput<'a> {
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
    /// What a consumer reads from the ring buffers and perf event arrays.
    pub events: &'a [MapEvents],
}

/// One event map's chart: a group per perf buffer (its CPU's colour) or one for the ring
/// buffer, with a bar for the records and one for the lost samples when there are any.
fn draw_events(body: &mut String, y: f64, e: &MapEvents) -> f64 {
    let groups: Vec<Group> = e
        .streams
        .iter()
        .filter(|s| !s.records.is_empty() || s.pending_lost > 0 || s.perf_index.is_none())
        .map(|s| {
            let samples = s
                .records
                .iter()
                .filter(|r| matches!(r, Record::Sample(_)))
                .count();
            let lost: u64 = s.pending_lost
                + s.records
                    .iter()
                    .map(|r| match r {
                        Record::Lost(n) => *n,
                        Record::Sample(_) => 0,
                    })
                    .sum::<u64>();
            let (label, color) = match s.perf_index {
                Some((index, cpu)) => {
                    (format!("index {index} (cpu{cpu})"), cpu_color(cpu as usize))
                }
                None => ("all cpus".to_string(), SHARED_COLOR.to_string()),
            };
            let mut bars = vec![Bar {
                value: samples as f64,
                text: samples.to_string(),
                tooltip: format!("{label}: {samples} records"),
                color,
            }];
            if lost > 0 {
                bars.push(Bar {
                    value: lost as f64,
                    text: format!("{lost} lost"),
                    tooltip: format!("{label}: {lost} samples lost (the buffer was full)"),
                    color: LOST_COLOR.to_string(),
                });
            }
            (label, bars)
        })
        .collect();
    let what = if e.map_type == "perf_event_array" {
        "records per perf buffer (one buffer per cpu)"
    } else {
        "records in the ring buffer (one buffer for all cpus, in commit order)"
    };
    let title = format!("events of {} ({}): {what}", e.map, e.map_type);
    if groups
        .iter()
        .all(|(_, bars)| bars.iter().all(|b| b.value == 0.0))
    {
        let (t, h) = text_block(
            y + 18.0,
            "h2",
            H2_CHAR_W,
            18.0,
            &format!("{title} — no records"),
        );
        body.push_str(&t);
        return h + 18.0;
    }
    draw_map(body, y, &title, &groups)
}

/// Escapes text for SVG.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Colour of CPU `cpu`: a fixed palette for the first eight, then hues spaced by the golden
/// angle (so neighbours differ) at three lightnesses — no two CPUs of a VM share a colour.
pub fn cpu_color(cpu: usize) -> String {
    match COLORS.get(cpu) {
        Some(c) => (*c).to_string(),
        None => {
            let hue = (cpu as f64 * 137.507_764) % 360.0;
            let light = [45, 60, 35][cpu % 3];
            format!("hsl({hue:.2},55%,{light}%)")
        }
    }
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut out: String = text.chars().take(keep).collect();
    out.push('…');
    out
}

/// `text` broken into lines of at most `max` characters, at spaces where it can (a word
/// longer than a line, such as a path, is broken inside).
fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(8);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        while !word.is_empty() {
            let used = line.chars().count();
            let room = if used == 0 {
                max
            } else {
                max.saturating_sub(used + 1)
            };
            if word.len() <= room {
                if used > 0 {
                    line.push(' ');
                }
                line.extend(word.drain(..));
            } else if used > 0 {
                lines.push(std::mem::take(&mut line));
            } else {
                line.extend(word.drain(..max));
                lines.push(std::mem::take(&mut line));
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// A text block of `class` at `y` (its first baseline), wrapped to the picture's width;
/// returns the SVG and the height it takes.
fn text_block(y: f64, class: &str, char_w: f64, line_h: f64, text: &str) -> (String, f64) {
    let max = ((WIDTH - 2.0 * MARGIN) / char_w) as usize;
    let lines = wrap(text, max);
    let mut s = format!(r#"<text x="{MARGIN}" y="{y}" class="{class}">"#);
    for (i, l) in lines.iter().enumerate() {
        let dy = if i == 0 { 0.0 } else { line_h };
        let _ = write!(s, r#"<tspan x="{MARGIN}" dy="{dy}">{}</tspan>"#, escape(l));
    }
    s.push_str("</text>\n");
    (s, lines.len() as f64 * line_h)
}

/// One bar: its height value, the text shown above it, its tooltip and its colour.
#[derive(Debug, Clone)]
struct Bar {
    value: f64,
    text: String,
    tooltip: String,
    color: String,
}

/// A group of bars under one label.
type Group = (String, Vec<Bar>);

/// Draws grouped vertical bars in the box starting at `top`; returns the SVG and the height
/// used.
fn bar_chart(top: f64, title: &str, groups: &[Group]) -> (String, f64) {
    let (mut s, title_h) = text_block(top + 18.0, "h2", H2_CHAR_W, 18.0, title);
    let base = top + title_h + 22.0 + CHART_H;
    let max = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|b| b.value))
        .fold(0.0f64, f64::max);
    let inner = WIDTH - 2.0 * MARGIN;
    let ngroups = groups.len().max(1) as f64;
    let group_w = inner / ngroups;
    let _ = writeln!(
        s,
        r##"<line x1="{MARGIN}" y1="{base}" x2="{}" y2="{base}" stroke="#444"/>"##,
        WIDTH - MARGIN
    );
    for (g, (label, bars)) in groups.iter().enumerate() {
        let gx = MARGIN + g as f64 * group_w;
        let nb = bars.len().max(1) as f64;
        let bar_w = ((group_w * 0.8) / nb).clamp(1.0, 80.0);
        let start = gx + (group_w - bar_w * nb) / 2.0;
        for (b, bar) in bars.iter().enumerate() {
            let h = if max > 0.0 {
                bar.value / max * CHART_H
            } else {
                0.0
            };
            let x = start + b as f64 * bar_w;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}</title></rect>"#,
                base - h,
                (bar_w - 2.0).max(1.0),
                bar.color,
                escape(&bar.tooltip)
            );
            if bar_w >= 24.0 {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" class="val">{}</text>"#,
                    x + bar_w / 2.0 - 1.0,
                    base - h - 4.0,
                    escape(&fit(&bar.text, (bar_w / VALUE_CHAR_W) as usize))
                );
            }
        }
        // The label fits its group's width; cut, the whole label is its tooltip.
        let max_chars = ((group_w - 4.0) / LABEL_CHAR_W).max(1.0) as usize;
        let shown = fit(label, max_chars);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="lab">{}{}</text>"#,
            gx + group_w / 2.0,
            base + 16.0,
            if shown == *label {
                String::new()
            } else {
                format!("<title>{}</title>", escape(label))
            },
            escape(&shown)
        );
    }
    (s, title_h + 22.0 + CHART_H + 30.0)
}

fn numeric(object: &Object, map: &MapSnapshot, v: &[u8]) -> f64 {
    match integer_value(object, map, v) {
        Some(i) => i as f64,
        None => {
            let mut b = [0u8; 8];
            let n = v.len().min(8);
            b[..n].copy_from_slice(&v[..n]);
            u64::from_le_bytes(b) as f64
        }
    }
}

/// The keys drawn: all of them when they fit, else the first ones holding data.
fn shown_entries(map: &MapSnapshot) -> Vec<&RawEntry> {
    map.shown(MAX_KEYS).iter().collect()
}

/// Draws one map's chart (or says it has no entries) at `y`; returns the height used.
fn draw_map(body: &mut String, y: f64, title: &str, groups: &[Group]) -> f64 {
    if groups.is_empty() {
        let (t, h) = text_block(
            y + 18.0,
            "h2",
            H2_CHAR_W,
            18.0,
            &format!("{title} — no entries"),
        );
        body.push_str(&t);
        return h + 18.0;
    }
    let (chart, h) = bar_chart(y, title, groups);
    body.push_str(&chart);
    h
}

/// The SVG document.
pub fn svg(r: &ReportInput<'_>) -> String {
    let mut body = String::new();
    let mut y = 20.0;
    let ncpus = r.summary.cpus.len();
    let title = format!("bpfvm: {} from {}", r.program.name, r.path);
    let (t, h) = text_block(y + 16.0, "h1", H1_CHAR_W, 24.0, &title);
    body.push_str(&t);
    y += h;
    let sub = format!(
        "{ncpus} simulated cpus, engine {}, {} runs per cpu, {} runs in all",
        r.engine,
        r.repeat,
        r.summary.total_runs()
    );
    let (t, h) = text_block(y + 14.0, "sub", SUB_CHAR_W, 18.0, &sub);
    body.push_str(&t);
    y += h + 6.0;
    // Legend: one colour per CPU, in rows; past LEGEND_CPUS the rest are counted.
    for cpu in 0..ncpus.min(LEGEND_CPUS) {
        let x = MARGIN + (cpu % LEGEND_PER_ROW) as f64 * 58.0;
        let row_y = y + (cpu / LEGEND_PER_ROW) as f64 * 18.0;
        let _ = writeln!(
            body,
            r#"<rect x="{x}" y="{row_y}" width="12" height="12" fill="{}"/><text x="{}" y="{}" class="leg">cpu{cpu}</text>"#,
            cpu_color(cpu),
            x + 16.0,
            row_y + 11.0
        );
    }
    y += ncpus.min(LEGEND_CPUS).div_ceil(LEGEND_PER_ROW) as f64 * 18.0 + 2.0;
    if ncpus > LEGEND_CPUS {
        let _ = writeln!(
            body,
            r#"<text x="{MARGIN}" y="{}" class="leg">and {} more cpus (each bar's tooltip names its cpu)</text>"#,
            y + 11.0,
            ncpus - LEGEND_CPUS
        );
        y += 18.0;
    }
    let runs: Vec<Group> = r
        .summary
        .cpus
        .iter()
        .map(|c| {
            (
                format!("cpu{}", c.cpu),
                vec![Bar {
                    value: c.count as f64,
                    text: c.count.to_string(),
                    tooltip: format!("cpu{}: {} runs", c.cpu, c.count),
                    color: cpu_color(c.cpu as usize),
                }],
            )
        })
        .collect();
    let (chart, h) = bar_chart(y, "runs per cpu", &runs);
    body.push_str(&chart);
    y += h;
    let percpu: Vec<&MapSnapshot> = r.maps.iter().filter(|m| m.percpu).collect();
    for m in percpu.iter().take(MAX_MAPS) {
        let groups: Vec<Group> = shown_entries(m)
            .into_iter()
            .map(|e| {
                let bars = e
                    .values
                    .iter()
                    .enumerate()
                    .map(|(cpu, v)| {
                        let text = show_value(r.object, m, v);
                        Bar {
                            value: numeric(r.object, m, v),
                            tooltip: format!("cpu{cpu}: {text}"),
                            text,
                            color: cpu_color(cpu),
                        }
                    })
                    .collect();
                let ints: Option<Vec<i128>> = e
                    .values
                    .iter()
                    .map(|v| integer_value(r.object, m, v))
                    .collect();
                let key = show_key(r.object, m, &e.key);
                let label = match ints {
                    Some(v) => format!("key {key} (sum {})", v.iter().sum::<i128>()),
                    None => format!("key {key}"),
                };
                (label, bars)
            })
            .collect();
        let title = format!(
            "map {} ({}): value per cpu, one bar per cpu for each key",
            m.def.name,
            m.def.map_type_name()
        );
        y += draw_map(&mut body, y, &title, &groups);
    }
    if percpu.is_empty() {
        let (t, h) = text_block(
            y + 18.0,
            "sub",
            SUB_CHAR_W,
            18.0,
            "this object has no per-CPU maps",
        );
        body.push_str(&t);
        y += h + 18.0;
    }
    // Shared maps: one value for every CPU, one bar per key.
    // (Event maps have no entries to draw: their records are drawn below.)
    let shared: Vec<&MapSnapshot> = r
        .maps
        .iter()
        .filter(|m| !m.percpu && !matches!(m.def.map_type_name(), "ringbuf" | "perf_event_array"))
        .collect();
    for m in shared.iter().take(MAX_MAPS) {
        let groups: Vec<Group> = shown_entries(m)
            .into_iter()
            .filter_map(|e| {
                let v = e.values.first()?;
                let text = show_value(r.object, m, v);
                let key = show_key(r.object, m, &e.key);
                let bar = Bar {
                    value: numeric(r.object, m, v),
                    tooltip: format!("key {key}: {text} (all cpus)"),
                    text,
                    color: SHARED_COLOR.to_string(),
                };
                Some((format!("key {key}"), vec![bar]))
            })
            .collect();
        let title = format!(
            "map {} ({}): one value per key, shared by all cpus",
            m.def.name,
            m.def.map_type_name()
        );
        y += draw_map(&mut body, y, &title, &groups);
    }
    // Event maps: records (and lost samples) per perf buffer, one colour per CPU; a ring
    // buffer's records as one bar.
    for e in r.events.iter().take(MAX_MAPS) {
        y += draw_events(&mut body, y, e);
    }
    let height = y + 20.0;
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">
<style>
text {{ font-family: sans-serif; fill: #222; }}
.h1 {{ font-size: 20px; font-weight: bold; }}
.h2 {{ font-size: 15px; font-weight: bold; }}
.sub {{ font-size: 13px; fill: #555; }}
.leg {{ font-size: 12px; }}
.val {{ font-size: 11px; text-anchor: middle; }}
.lab {{ font-size: 12px; text-anchor: middle; }}
</style>
<rect width="100%" height="100%" fill="#fff"/>
{body}</svg>
"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape(r#"<a & "b">"#), "&lt;a &amp; &quot;b&quot;&gt;");
    }

    #[test]
    fn a_chart_draws_one_rect_per_bar() {
        let bar = |v: f64, cpu: usize| Bar {
            value: v,
            text: v.to_string(),
            tooltip: format!("cpu{cpu}: {v}"),
            color: cpu_color(cpu),
        };
        let groups: Vec<Group> = vec![
            ("a".into(), vec![bar(1.0, 0), bar(2.0, 1)]),
            ("b".into(), vec![bar(0.0, 0)]),
        ];
        let (s, h) = bar_chart(0.0, "t", &groups);
        assert_eq!(s.matches("<rect").count(), 3);
        assert!(h > CHART_H);
    }

    #[test]
    fn every_cpu_of_a_large_vm_has_its_own_colour() {
        let colours: std::collections::HashSet<String> = (0..1024).map(cpu_color).collect();
        assert_eq!(colours.len(), 1024);
        assert_eq!(cpu_color(0), COLORS[0]);
    }

    #[test]
    fn long_titles_wrap_inside_the_picture() {
        let path = format!("/{}/x.o", "very-long-directory-name".repeat(12));
        let lines = wrap(&format!("bpfvm: prog from {path}"), 60);
        assert!(lines.len() > 1, "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 60), "{lines:?}");
        assert_eq!(
            lines.concat().replace(' ', ""),
            format!("bpfvm:progfrom{path}")
        );
        let (svg, h) = text_block(10.0, "h1", H1_CHAR_W, 24.0, "short");
        assert_eq!((svg.matches("<tspan").count(), h), (1, 24.0));
    }

    #[test]
    fn labels_too_wide_for_their_group_are_cut_with_the_whole_label_as_tooltip() {
        let long = "key { saddr: 1, daddr: 167772162, sport: 53, dport: 443, proto: 17 }";
        let groups: Vec<Group> = (0..8)
            .map(|i| {
                let b = Bar {
                    value: i as f64,
                    text: i.to_string(),
                    tooltip: String::new(),
                    color: SHARED_COLOR.into(),
                };
                (long.to_string(), vec![b])
            })
            .collect();
        let (s, _) = bar_chart(0.0, "t", &groups);
        assert_eq!(
            s.matches(&format!("<title>{}</title>", escape(long)))
                .count(),
            8
        );
        assert!(s.contains("…"));
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcd", 3), "ab…");
    }
}
