//! The scoreboard: per engine, how many vectors pass, are refused, or are wrong, rendered as
//! the Markdown table kept in `conformance/README.md` between two marker lines.

use std::fmt::Write as _;

use bpfvm::{EngineKind, Vm};

use crate::expectations::Refusals;
use crate::runner::{run_vector, Outcome};
use crate::vectors::{Expect, Vector};

/// The line after which the generated scoreboard starts.
pub const BEGIN: &str = "<!-- scoreboard:begin (generated; do not edit) -->";
/// The line before which the generated scoreboard ends.
pub const END: &str = "<!-- scoreboard:end -->";

/// One engine's results over all vectors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineScore {
    /// Engine name.
    pub engine: String,
    /// Number of vectors that passed (positive and negative).
    pub passed: usize,
    /// Number of positive vectors (those expecting a result).
    pub positive: usize,
    /// Number of negative vectors (those expecting a refusal).
    pub negative: usize,
    /// Number of negative vectors refused as they must be.
    pub negative_passed: usize,
    /// Vectors refused at load time, with the reason.
    pub refused: Refusals,
    /// Vectors with a wrong outcome, with what went wrong.
    pub wrong: Vec<(String, String)>,
}

impl EngineScore {
    /// Number of vectors run.
    pub fn total(&self) -> usize {
        self.passed + self.refused.len() + self.wrong.len()
    }
}

/// Runs every vector on `engine` and tallies the outcomes.
pub fn score(vm: &Vm, engine: EngineKind, vectors: &[Vector]) -> EngineScore {
    let mut s = EngineScore {
        engine: engine.name().to_string(),
        ..EngineScore::default()
    };
    for v in vectors {
        let negative = matches!(v.expect, Expect::Error(_));
        if negative {
            s.negative += 1;
        } else {
            s.positive += 1;
        }
        match run_vector(vm, engine, v) {
            Outcome::Passed => {
                s.passed += 1;
                s.negative_passed += usize::from(negative);
            }
            Outcome::Refused { reason } => {
                s.refused.insert(v.name.clone(), reason);
            }
            Outcome::Wrong { detail } => s.wrong.push((v.name.clone(), detail)),
        }
    }
    s
}

/// The short reason class of a refusal message: what follows "does not support", else the
/// message without its instruction index.
fn reason_class(reason: &str) -> String {
    if let Some((_, what)) = reason.split_once("does not support ") {
        return what.to_string();
    }
    match reason.split_once(": ") {
        Some((head, rest)) if head.starts_with("instruction ") => rest.to_string(),
        _ => reason.to_string(),
    }
}

/// The Markdown scoreboard for `scores` (without the marker lines).
pub fn render(scores: &[EngineScore], vector_count: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{vector_count} vectors per engine: the positive vectors (a result is expected) and \
         the `negative/unused-*` vectors (a refusal at load time is expected).\n"
    );
    out.push_str(
        "| engine | positive: passed | positive: refused | wrong | negative: refused at load |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for s in scores {
        let _ = writeln!(
            out,
            "| `{}` | {} / {} | {} | {} | {} / {} |",
            s.engine,
            s.passed - s.negative_passed,
            s.positive,
            s.refused.len(),
            s.wrong.len(),
            s.negative_passed,
            s.negative
        );
    }
    for s in scores.iter().filter(|s| !s.refused.is_empty()) {
        let mut classes: std::collections::BTreeMap<String, usize> = Default::default();
        for r in s.refused.values() {
            *classes.entry(reason_class(r)).or_default() += 1;
        }
        let _ = writeln!(out, "\nRefusals on `{}`, by reason:\n", s.engine);
        let mut classes: Vec<_> = classes.into_iter().collect();
        classes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (class, n) in classes {
            let _ = writeln!(out, "- {n} × {class}");
        }
    }
    for s in scores.iter().filter(|s| !s.wrong.is_empty()) {
        let _ = writeln!(out, "\nWrong on `{}`:\n", s.engine);
        for (name, detail) in &s.wrong {
            let _ = writeln!(out, "- `{name}`: {detail}");
        }
    }
    out
}

/// Replaces the text between [`BEGIN`] and [`END`] in `readme` with `table`.
pub fn splice(readme: &str, table: &str) -> Result<String, String> {
    let start = readme
        .find(BEGIN)
        .ok_or_else(|| format!("marker {BEGIN:?} not found"))?
        + BEGIN.len();
    let end = readme[start..]
        .find(END)
        .ok_or_else(|| format!("marker {END:?} not found after the begin marker"))?
        + start;
    Ok(format!(
        "{}\n{}{}",
        &readme[..start],
        table.trim_end_matches('\n').to_owned() + "\n",
        &readme[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_the_marked_part() {
        let readme = format!("# T\n\n{BEGIN}\nold\n{END}\ntail\n");
        let out = splice(&readme, "| a |\n").unwrap();
        assert_eq!(out, format!("# T\n\n{BEGIN}\n| a |\n{END}\ntail\n"));
        // Idempotent.
        assert_eq!(splice(&out, "| a |\n").unwrap(), out);
        assert!(splice("no markers", "x").is_err());
    }

    #[test]
    fn render_counts_and_groups_reasons() {
        let mut s = EngineScore {
            engine: "rbpf-jit".into(),
            passed: 2,
            positive: 3,
            negative: 1,
            negative_passed: 1,
            ..Default::default()
        };
        s.refused.insert(
            "a".into(),
            "instruction 1: engine rbpf-jit does not support bswap".into(),
        );
        s.refused.insert(
            "b".into(),
            "instruction 4: engine rbpf-jit does not support bswap".into(),
        );
        let text = render(&[s], 4);
        assert!(
            text.contains("| `rbpf-jit` | 1 / 3 | 2 | 0 | 1 / 1 |"),
            "{text}"
        );
        assert!(text.contains("- 2 × bswap"), "{text}");
    }
}
