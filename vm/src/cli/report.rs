//! `--report <FILE>`: a self-contained SVG picture of a run — runs per CPU, and for each
//! per-CPU map its values as bars, one bar per CPU for every key shown.

use std::fmt::Write;

use bpfvm::loader::{Object, ProgramDefinition};

use super::execute::RunSummary;
use super::snapshot::{MapSnapshot, RawEntry};
use super::text::{integer_value, show_key, show_value};

/// Picture width in pixels.
const WIDTH: f64 = 960.0;
/// Left/right margin.
const MARGIN: f64 = 40.0;
/// Height of the bar area of one chart.
const CHART_H: f64 = 160.0;
/// Per-CPU maps drawn, and keys drawn per map.
const MAX_MAPS: usize = 6;
const MAX_KEYS: usize = 8;
/// One colour per CPU (cycled).
const COLORS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f",
];

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
}

/// Escapes text for SVG.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Colour of CPU `cpu`.
pub fn cpu_color(cpu: usize) -> &'static str {
    COLORS[cpu % COLORS.len()]
}

/// A group of bars under one label: `(height value, text above the bar, colour)`.
type Group = (String, Vec<(f64, String, &'static str)>);

/// Draws grouped vertical bars in the box starting at `top`; returns the SVG and the height
/// used.
fn bar_chart(top: f64, title: &str, groups: &[Group]) -> (String, f64) {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<text x="{MARGIN}" y="{}" class="h2">{}</text>"#,
        top + 18.0,
        escape(title)
    );
    let base = top + 40.0 + CHART_H;
    let max = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|b| b.0))
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
        for (b, (v, text, color)) in bars.iter().enumerate() {
            let h = if max > 0.0 { v / max * CHART_H } else { 0.0 };
            let x = start + b as f64 * bar_w;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{color}"><title>{}</title></rect>"#,
                base - h,
                (bar_w - 2.0).max(1.0),
                escape(text)
            );
            if bar_w >= 24.0 {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" class="val">{}</text>"#,
                    x + bar_w / 2.0 - 1.0,
                    base - h - 4.0,
                    escape(text)
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="lab">{}</text>"#,
            gx + group_w / 2.0,
            base + 16.0,
            escape(label)
        );
    }
    (s, 40.0 + CHART_H + 30.0)
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

/// The SVG document.
pub fn svg(r: &ReportInput<'_>) -> String {
    let mut body = String::new();
    let mut y = 20.0;
    let ncpus = r.summary.cpus.len();
    let _ = writeln!(
        body,
        r#"<text x="{MARGIN}" y="{}" class="h1">bpfvm: {} from {}</text>"#,
        y + 16.0,
        escape(&r.program.name),
        escape(r.path)
    );
    let _ = writeln!(
        body,
        r#"<text x="{MARGIN}" y="{}" class="sub">{ncpus} simulated cpus, engine {}, {} runs per cpu, {} runs in all</text>"#,
        y + 38.0,
        escape(r.engine),
        r.repeat,
        r.summary.total_runs()
    );
    y += 56.0;
    // Legend: one colour per CPU.
    for cpu in 0..ncpus.min(16) {
        let x = MARGIN + cpu as f64 * 56.0;
        let _ = writeln!(
            body,
            r#"<rect x="{x}" y="{y}" width="12" height="12" fill="{}"/><text x="{}" y="{}" class="leg">cpu{cpu}</text>"#,
            cpu_color(cpu),
            x + 16.0,
            y + 11.0
        );
    }
    y += 20.0;
    let runs: Vec<Group> = r
        .summary
        .cpus
        .iter()
        .map(|c| {
            (
                format!("cpu{}", c.cpu),
                vec![(
                    c.count as f64,
                    c.count.to_string(),
                    cpu_color(c.cpu as usize),
                )],
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
                        (
                            numeric(r.object, m, v),
                            show_value(r.object, m, v),
                            cpu_color(cpu),
                        )
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
        if groups.is_empty() {
            let _ = writeln!(
                body,
                r#"<text x="{MARGIN}" y="{}" class="h2">{} — no entries</text>"#,
                y + 18.0,
                escape(&title)
            );
            y += 36.0;
            continue;
        }
        let (chart, h) = bar_chart(y, &title, &groups);
        body.push_str(&chart);
        y += h;
    }
    if percpu.is_empty() {
        let _ = writeln!(
            body,
            r#"<text x="{MARGIN}" y="{}" class="sub">this object has no per-CPU maps</text>"#,
            y + 18.0
        );
        y += 36.0;
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
        let groups: Vec<Group> = vec![
            (
                "a".into(),
                vec![
                    (1.0, "1".into(), cpu_color(0)),
                    (2.0, "2".into(), cpu_color(1)),
                ],
            ),
            ("b".into(), vec![(0.0, "0".into(), cpu_color(0))]),
        ];
        let (s, h) = bar_chart(0.0, "t", &groups);
        assert_eq!(s.matches("<rect").count(), 3);
        assert!(h > CHART_H);
    }
}
