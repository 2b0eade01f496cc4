//! The rows one measurement gives per program, how refusals are grouped into causes, and
//! the headline figures and tables (text and Markdown) made from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Kernel program types bpfvm and `BPF_PROG_TEST_RUN` run on a packet: socket filter (1),
/// sched_cls (3), sched_act (4), XDP (6), cgroup_skb (8).
pub const PACKET_PROG_TYPES: [u32; 5] = [1, 3, 4, 6, 8];

/// What one program of one object gave on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramRow {
    /// Object path relative to the corpus directory.
    pub object: String,
    /// Program (function) name.
    pub program: String,
    /// ELF section name.
    pub section: String,
    /// libbpf's program type (`enum bpf_prog_type`), 0 when libbpf did not open the object.
    pub kernel_type: u32,
    /// `None` when the kernel loaded it, else why not.
    pub kernel_error: Option<String>,
    /// `None` when bpfvm loaded it, else the first line of its error.
    pub bpfvm_error: Option<String>,
    /// When bpfvm loaded it without a full verdict: why (`LoadedProgram::unverified`).
    pub bpfvm_unverified: Option<String>,
    /// For packet programs both sides load: the comparison of their runs.
    pub runs: Option<RunComparison>,
    /// The type was given explicitly by [`legacy_type`] (libbpf does not know the section).
    #[serde(default)]
    pub type_given: bool,
    /// Maps of the object the kernel could not create, left out so this program loads
    /// alone (bpfvm's per-program loading does the same); empty for most.
    #[serde(default)]
    pub kernel_skipped_maps: Vec<String>,
    /// Why the kernel's verdict on this program is not known on the measuring machine: its
    /// loader refuses the whole kind before the verifier runs ([`mark_not_judged`]). Such a
    /// program counts on neither side.
    #[serde(default)]
    pub kernel_not_judged: Option<String>,
}

/// Sections of programs the kernel attaches through a BPF trampoline (fentry, fexit,
/// fmod_ret, and their sleepable forms).
pub fn is_trampoline_section(section: &str) -> bool {
    ["fentry", "fexit", "fmod_ret"].iter().any(|k| {
        section
            .strip_prefix(k)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with(".s/"))
    })
}

/// Marks the trampoline programs ([`is_trampoline_section`]) the kernel refused with
/// `EPERM` as not judged, with `reason`: for a machine whose kernel refuses a minimal
/// fentry program on `bpf_fentry_test1` too (the corpus tool probes it first), an `EPERM`
/// there says nothing about the program.
pub fn mark_not_judged(rows: &mut [ProgramRow], reason: &str) {
    for r in rows.iter_mut() {
        let eperm = r
            .kernel_error
            .as_deref()
            .is_some_and(|e| e.contains("Operation not permitted"));
        if eperm && is_trampoline_section(&r.section) {
            r.kernel_not_judged = Some(reason.to_owned());
        }
    }
}

/// The program type the tools of the corpus give a program whose section name libbpf does
/// not know (libxdp loads `SEC("xdp_pass")` as XDP; tc loaders `SEC("tc_...")` and
/// `SEC("classifier...")` as sched_cls; `SEC("socket...")` is a socket filter): the
/// `enum bpf_prog_type` number, or `None`.
pub fn legacy_type(section: &str) -> Option<u32> {
    if section.starts_with("xdp") {
        Some(6)
    } else if section.starts_with("tc") || section.starts_with("classifier") {
        Some(3)
    } else if section.starts_with("socket") {
        Some(1)
    } else {
        None
    }
}

/// The runs of one packet program on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunComparison {
    /// Frames run.
    pub frames: u32,
    /// Where the two sides differed (frame, what); empty when they agree.
    pub differences: Vec<String>,
}

impl ProgramRow {
    /// Whether the kernel loaded it.
    pub fn kernel_loaded(&self) -> bool {
        self.kernel_error.is_none()
    }
    /// Whether bpfvm loaded it.
    pub fn bpfvm_loaded(&self) -> bool {
        self.bpfvm_error.is_none()
    }
    /// Whether bpfvm loaded it and the kernel refused it (a verdict the kernel gave).
    pub fn bpfvm_only(&self) -> bool {
        !self.kernel_loaded() && self.bpfvm_loaded() && self.kernel_not_judged.is_none()
    }
    /// Whether it is a packet program ([`PACKET_PROG_TYPES`]).
    pub fn is_packet(&self) -> bool {
        PACKET_PROG_TYPES.contains(&self.kernel_type)
    }
    /// Whether its runs were compared and agreed.
    pub fn runs_agree(&self) -> bool {
        self.runs.as_ref().is_some_and(|r| r.differences.is_empty())
    }
}

/// The cause a refusal is counted under: the error's first line with what names this
/// program or object in particular taken out (names, numbers, quoted text), so the same
/// reason in different programs is one cause.
pub fn cause(error: &str, program: &str, section: &str) -> String {
    let line = error.lines().next().unwrap_or("").trim();
    let mut s = line.to_owned();
    if !section.is_empty() {
        s = s.replace(&format!("section {section}"), "section <section>");
    }
    if program.len() > 1 {
        s = replace_word(&s, program, "<prog>");
    }
    let s = mask_map_names(&s);
    let s = mask_quoted(&s);
    let mut s = mask_numbers(&s);
    // A CO-RE relocation is one cause per kind, whatever type and field it names.
    if let Some(i) = s.find("CO-RE relocation") {
        if let Some(j) = s[i..].find('>') {
            s.truncate(i + j + 1);
        }
    }
    truncate_chars(&s, 160)
}

/// Words after `map ` that are not a map's name.
const NOT_MAP_NAMES: [&str; 8] = [
    "type", "types", "of", "in", "value", "values", "and", "with",
];

/// The name after each `map ` replaced by `<map>`.
fn mask_map_names(s: &str) -> String {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("map ") {
        let starts_word = !rest[..i].chars().next_back().is_some_and(ident);
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let end = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
        let name = &rest[..end];
        if starts_word && !name.is_empty() && !NOT_MAP_NAMES.contains(&name) {
            out.push_str("<map>");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// `s` with every occurrence of `word` (not inside a longer identifier) replaced by `mark`.
fn replace_word(s: &str, word: &str, mark: &str) -> String {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(ident) || after.is_some_and(ident) {
            out.push_str(word);
        } else {
            out.push_str(mark);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Text in quotes (`"..."`, `'...'`, `` `...` ``) replaced by `"…"`.
fn mask_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, '"' | '`') || (c == '\'' && !out.ends_with(|p: char| p.is_alphanumeric())) {
            let body: String = chars.clone().take_while(|&d| d != c).collect();
            if chars.clone().nth(body.chars().count()) == Some(c) {
                for _ in 0..=body.chars().count() {
                    chars.next();
                }
                out.push(c);
                out.push('…');
                out.push(c);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Every run of digits (and a `0x` hex number) replaced by `N`, except a helper's number
/// (`helper 67` stays: which helper is the cause).
fn mask_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let starts_word = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let helper = s[..i].ends_with("helper ") || s[..i].ends_with("helper #");
        if b[i].is_ascii_digit() && starts_word && !helper {
            let mut j = i + 1;
            if b[i] == b'0' && j < b.len() && b[j] == b'x' {
                j += 1;
                while j < b.len() && b[j].is_ascii_hexdigit() {
                    j += 1;
                }
            } else {
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
            out.push('N');
            i = j;
        } else {
            let c = s[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// One cause and how many programs it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseCount {
    /// The cause ([`cause`]).
    pub cause: String,
    /// Programs the kernel loads that bpfvm refuses for it.
    pub programs: usize,
    /// Of those, packet programs.
    pub packet: usize,
    /// An example: `object:program`.
    pub example: String,
}

/// The headline figures of a measurement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects measured.
    pub objects: usize,
    /// Programs found (either side).
    pub programs: usize,
    /// Programs the kernel loads.
    pub kernel_loaded: usize,
    /// Of those, loaded only with maps the kernel cannot create left out.
    pub kernel_skipped_maps: usize,
    /// Of those, bpfvm loads.
    pub both_loaded: usize,
    /// Of `both_loaded`, loaded without a full verdict (`unverified`).
    pub both_unverified: usize,
    /// Packet programs the kernel loads.
    pub packet_kernel_loaded: usize,
    /// Of those, bpfvm loads.
    pub packet_both_loaded: usize,
    /// Packet programs whose runs were compared.
    pub packet_compared: usize,
    /// Of those, agreeing on every frame and map.
    pub packet_agree: usize,
    /// Programs bpfvm loads that the kernel refuses.
    pub bpfvm_only: usize,
    /// Programs whose kernel verdict is not known here (`kernel_not_judged`).
    pub kernel_not_judged: usize,
}

impl Summary {
    /// The figures of `rows`.
    pub fn of(rows: &[ProgramRow]) -> Self {
        let mut objects: Vec<&str> = rows.iter().map(|r| r.object.as_str()).collect();
        objects.dedup();
        objects.sort_unstable();
        objects.dedup();
        let count = |f: &dyn Fn(&ProgramRow) -> bool| rows.iter().filter(|r| f(r)).count();
        Summary {
            objects: objects.len(),
            programs: rows.len(),
            kernel_loaded: count(&|r| r.kernel_loaded()),
            kernel_skipped_maps: count(&|r| r.kernel_loaded() && !r.kernel_skipped_maps.is_empty()),
            both_loaded: count(&|r| r.kernel_loaded() && r.bpfvm_loaded()),
            both_unverified: count(&|r| {
                r.kernel_loaded() && r.bpfvm_loaded() && r.bpfvm_unverified.is_some()
            }),
            packet_kernel_loaded: count(&|r| r.is_packet() && r.kernel_loaded()),
            packet_both_loaded: count(&|r| r.is_packet() && r.kernel_loaded() && r.bpfvm_loaded()),
            packet_compared: count(&|r| r.runs.is_some()),
            packet_agree: count(&|r| r.runs_agree()),
            bpfvm_only: count(&|r| r.bpfvm_only()),
            kernel_not_judged: count(&|r| r.kernel_not_judged.is_some()),
        }
    }
}

/// The causes of the programs the kernel loads and bpfvm refuses, most programs first
/// (then by name).
pub fn causes(rows: &[ProgramRow]) -> Vec<CauseCount> {
    let mut by: BTreeMap<String, CauseCount> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.kernel_loaded()) {
        let Some(e) = &r.bpfvm_error else { continue };
        let c = cause(e, &r.program, &r.section);
        let entry = by.entry(c.clone()).or_insert_with(|| CauseCount {
            cause: c,
            programs: 0,
            packet: 0,
            example: format!("{}:{}", r.object, r.program),
        });
        entry.programs += 1;
        entry.packet += usize::from(r.is_packet());
    }
    let mut v: Vec<CauseCount> = by.into_values().collect();
    v.sort_by(|a, b| {
        b.programs
            .cmp(&a.programs)
            .then_with(|| a.cause.cmp(&b.cause))
    });
    v
}

/// `part` of `whole` as `part / whole (p%)`.
fn ratio(part: usize, whole: usize) -> String {
    if whole == 0 {
        format!("{part} / 0")
    } else {
        format!(
            "{part} / {whole} ({:.0}%)",
            part as f64 * 100.0 / whole as f64
        )
    }
}

/// Markdown cell text: no line breaks, `|` escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The rows grouped by the first folder of their object's path (a repository, when the
/// corpus has one folder per repository), in name order; objects at the top are under `.`.
pub fn by_folder(rows: &[ProgramRow]) -> Vec<(String, Summary)> {
    let mut groups: BTreeMap<String, Vec<ProgramRow>> = BTreeMap::new();
    for r in rows {
        let folder = match r.object.split_once('/') {
            Some((f, _)) => f.to_owned(),
            None => ".".to_owned(),
        };
        groups.entry(folder).or_default().push(r.clone());
    }
    groups
        .into_iter()
        .map(|(f, rows)| (f, Summary::of(&rows)))
        .collect()
}

/// The measurement as Markdown: headline figures, the figures per folder, the causes, the
/// programs only bpfvm loads, and the runs that differ.
pub fn markdown(rows: &[ProgramRow]) -> String {
    let s = Summary::of(rows);
    let mut out = String::new();
    let _ = writeln!(out, "| figure | programs |\n|---|---:|");
    let lines = [
        ("objects", s.objects.to_string()),
        ("programs (either side)", s.programs.to_string()),
        ("the kernel loads", s.kernel_loaded.to_string()),
        (
            "… of which only with maps it cannot create left out",
            s.kernel_skipped_maps.to_string(),
        ),
        (
            "bpfvm loads, of those",
            ratio(s.both_loaded, s.kernel_loaded),
        ),
        (
            "… of which without a full verdict (unverified)",
            s.both_unverified.to_string(),
        ),
        (
            "packet programs the kernel loads",
            s.packet_kernel_loaded.to_string(),
        ),
        (
            "bpfvm loads, of those",
            ratio(s.packet_both_loaded, s.packet_kernel_loaded),
        ),
        (
            "packet programs whose runs agree (return values, output packets, maps)",
            ratio(s.packet_agree, s.packet_compared),
        ),
        (
            "programs bpfvm loads that the kernel refuses",
            s.bpfvm_only.to_string(),
        ),
        (
            "programs the kernel here cannot judge (refused before its verifier)",
            s.kernel_not_judged.to_string(),
        ),
    ];
    for (k, v) in lines {
        let _ = writeln!(out, "| {k} | {v} |");
    }
    let _ = writeln!(
        out,
        "\nPer folder:\n\n| folder | objects | programs | the kernel loads | bpfvm loads, of those | \
         packet: kernel loads | packet: bpfvm loads | packet runs agree |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (folder, f) in by_folder(rows) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&folder),
            f.objects,
            f.programs,
            f.kernel_loaded,
            f.both_loaded,
            f.packet_kernel_loaded,
            f.packet_both_loaded,
            ratio(f.packet_agree, f.packet_compared)
        );
    }
    let _ = writeln!(
        out,
        "\nWhy bpfvm refuses programs the kernel loads (first error, grouped):\n\n\
         | cause | programs | packet | example |\n|---|---:|---:|---|"
    );
    for c in causes(rows) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            cell(&c.cause),
            c.programs,
            c.packet,
            cell(&c.example)
        );
    }
    let only: Vec<&ProgramRow> = rows.iter().filter(|r| r.bpfvm_only()).collect();
    let _ = writeln!(
        out,
        "\nPrograms bpfvm loads that the kernel refuses: {}\n",
        only.len()
    );
    if !only.is_empty() {
        let _ = writeln!(out, "| program | kernel's reason |\n|---|---|");
        for r in only {
            let reason = r.kernel_error.as_deref().unwrap_or("");
            let _ = writeln!(
                out,
                "| {}:{} | {} |",
                cell(&r.object),
                cell(&r.program),
                cell(&truncate_chars(reason, 200))
            );
        }
    }
    let unjudged: Vec<&ProgramRow> = rows
        .iter()
        .filter(|r| r.kernel_not_judged.is_some())
        .collect();
    if let Some(first) = unjudged.first() {
        let loaded = unjudged.iter().filter(|r| r.bpfvm_loaded()).count();
        let _ = writeln!(
            out,
            "\nPrograms the kernel here cannot judge: {} (bpfvm loads {loaded} of them): {}\n",
            unjudged.len(),
            cell(first.kernel_not_judged.as_deref().unwrap_or(""))
        );
    }
    let differ: Vec<&ProgramRow> = rows
        .iter()
        .filter(|r| r.runs.as_ref().is_some_and(|x| !x.differences.is_empty()))
        .collect();
    let _ = writeln!(
        out,
        "\nPacket programs whose runs differ: {}\n",
        differ.len()
    );
    if !differ.is_empty() {
        let _ = writeln!(out, "| program | first difference |\n|---|---|");
        for r in differ {
            let first = r
                .runs
                .as_ref()
                .and_then(|x| x.differences.first())
                .map_or("", String::as_str);
            let _ = writeln!(
                out,
                "| {}:{} | {} |",
                cell(&r.object),
                cell(&r.program),
                cell(&truncate_chars(first, 200))
            );
        }
    }
    out
}

/// The headline figures as plain text lines.
pub fn text_summary(rows: &[ProgramRow]) -> String {
    let s = Summary::of(rows);
    format!(
        "objects: {}\nprograms: {}\nkernel loads: {}\nbpfvm loads of those: {} (unverified: {})\n\
         packet programs the kernel loads: {}\nbpfvm loads of those: {}\n\
         packet programs whose runs agree: {}\nbpfvm loads, kernel refuses: {}\n",
        s.objects,
        s.programs,
        s.kernel_loaded,
        ratio(s.both_loaded, s.kernel_loaded),
        s.both_unverified,
        s.packet_kernel_loaded,
        ratio(s.packet_both_loaded, s.packet_kernel_loaded),
        ratio(s.packet_agree, s.packet_compared),
        s.bpfvm_only
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(object: &str, program: &str, ty: u32, k: Option<&str>, b: Option<&str>) -> ProgramRow {
        ProgramRow {
            object: object.into(),
            program: program.into(),
            section: format!("sec_{program}"),
            kernel_type: ty,
            kernel_error: k.map(Into::into),
            bpfvm_error: b.map(Into::into),
            bpfvm_unverified: None,
            runs: None,
            type_given: false,
            kernel_skipped_maps: Vec::new(),
            kernel_not_judged: None,
        }
    }

    #[test]
    fn an_eperm_on_trampoline_programs_is_no_verdict_on_a_machine_without_them() {
        assert!(is_trampoline_section("fentry/do_unlinkat"));
        assert!(is_trampoline_section("fexit.s/vfs_read"));
        assert!(is_trampoline_section("fmod_ret/bpf_modify_return_test"));
        assert!(!is_trampoline_section("fentry_like/x"));
        assert!(!is_trampoline_section("tp_btf/sched_switch"));
        let eperm = "Operation not permitted (os error 1)";
        let mut rows = vec![
            row("a.o", "f", 26, Some(eperm), None),
            row(
                "a.o",
                "g",
                26,
                Some("Permission denied (os error 13)"),
                None,
            ),
            row("a.o", "t", 26, Some(eperm), None),
        ];
        rows[0].section = "fentry/do_unlinkat".into();
        rows[1].section = "fexit/do_unlinkat".into();
        rows[2].section = "tp_btf/sched_switch".into();
        mark_not_judged(&mut rows, "no trampolines here");
        assert_eq!(
            rows[0].kernel_not_judged.as_deref(),
            Some("no trampolines here")
        );
        // A verifier refusal (EACCES) and other kinds stay verdicts.
        assert!(rows[1].kernel_not_judged.is_none() && rows[2].kernel_not_judged.is_none());
        let s = Summary::of(&rows);
        assert_eq!((s.bpfvm_only, s.kernel_not_judged), (2, 1));
        let md = markdown(&rows);
        assert!(md.contains("Programs the kernel here cannot judge: 1 (bpfvm loads 1 of them)"));
        assert!(md.contains("Programs bpfvm loads that the kernel refuses: 2"));
    }

    #[test]
    fn legacy_sections_get_the_type_their_loaders_give() {
        assert_eq!(legacy_type("xdp_pass"), Some(6));
        assert_eq!(legacy_type("tc_reply"), Some(3));
        assert_eq!(legacy_type("classifier/egress"), Some(3));
        assert_eq!(legacy_type("socket1"), Some(1));
        assert_eq!(legacy_type("prog"), None);
        assert_eq!(legacy_type("kprobe_x"), None);
    }

    #[test]
    fn causes_take_out_names_numbers_and_quoted_text() {
        assert_eq!(
            cause(
                "program handle_xdp: map 'counters' of type 12 is not supported\nmore",
                "handle_xdp",
                "xdp"
            ),
            "program <prog>: map '…' of type N is not supported"
        );
        // A name inside a longer identifier stays; hex numbers are numbers.
        assert_eq!(
            cause(
                "xdp_pass2 at 0x1f in section xdp/pass",
                "xdp_pass",
                "xdp/pass"
            ),
            "xdp_pass2 at N in section <section>"
        );
        // An apostrophe inside a word is not a quote; digits inside a word (a register)
        // are not a number.
        assert_eq!(
            cause("the program's r0 is 'x' at 12", "p", "s"),
            "the program's r0 is '…' at N"
        );
        assert_eq!(cause("", "p", "s"), "");
    }

    #[test]
    fn helper_numbers_stay() {
        assert_eq!(
            cause("instruction 97: call to unknown helper 67", "p", "s"),
            "instruction N: call to unknown helper 67"
        );
    }

    #[test]
    fn map_names_are_masked_but_not_map_types() {
        assert_eq!(
            cause(
                "uses map stack_map, which cannot be loaded: map stack_map has map type stack_trace",
                "p",
                "s"
            ),
            "uses map <map>, which cannot be loaded: map <map> has map type stack_trace"
        );
        assert_eq!(mask_map_names("bitmap x, map .bss"), "bitmap x, map <map>");
    }

    #[test]
    fn core_relocations_group_by_kind() {
        let a = "the kernel's verifier refuses the program: instruction 7: invalid func unknown#195896080: CO-RE relocation #3 <byte_off> [12] struct sock.sk_state (0:1 @ offset 18)";
        let b = "the kernel's verifier refuses the program: instruction 9: invalid func unknown#195896080: CO-RE relocation #0 <byte_off> [40] struct task_struct.pid (0:5 @ offset 8)";
        assert_eq!(cause(a, "p", "s"), cause(b, "q", "t"));
        assert!(cause(a, "p", "s").ends_with("CO-RE relocation #N <byte_off>"));
    }

    #[test]
    fn long_causes_are_cut() {
        let long = "x".repeat(300);
        let c = cause(&long, "p", "s");
        assert_eq!(c.chars().count(), 161);
        assert!(c.ends_with('…'));
    }

    #[test]
    fn summary_counts_each_figure() {
        let mut agree = row("a.o", "p1", 6, None, None);
        agree.runs = Some(RunComparison {
            frames: 11,
            differences: vec![],
        });
        let mut differ = row("a.o", "p2", 3, None, None);
        differ.runs = Some(RunComparison {
            frames: 11,
            differences: vec!["frame 2: retval".into()],
        });
        let mut unverified = row("b.o", "t1", 2, None, None);
        unverified.bpfvm_unverified = Some("kfunc".into());
        unverified.kernel_skipped_maps = vec!["stack_traces".into()];
        let rows = vec![
            agree,
            differ,
            unverified,
            row("b.o", "t2", 2, None, Some("program t2: CO-RE relocation")),
            row("c.o", "x1", 6, None, Some("program x1: CO-RE relocation")),
            row("c.o", "x2", 6, Some("EACCES"), None),
            row("c.o", "x3", 6, Some("EACCES"), Some("refused")),
        ];
        let s = Summary::of(&rows);
        assert_eq!(
            s,
            Summary {
                objects: 3,
                programs: 7,
                kernel_loaded: 5,
                kernel_skipped_maps: 1,
                both_loaded: 3,
                both_unverified: 1,
                packet_kernel_loaded: 3,
                packet_both_loaded: 2,
                packet_compared: 2,
                packet_agree: 1,
                bpfvm_only: 1,
                kernel_not_judged: 0,
            }
        );
        let c = causes(&rows);
        assert_eq!(
            c,
            vec![CauseCount {
                cause: "program <prog>: CO-RE relocation".into(),
                programs: 2,
                packet: 1,
                example: "b.o:t2".into(),
            }]
        );
    }

    #[test]
    fn markdown_has_the_figures_the_causes_and_the_exceptions() {
        let mut differ = row("a.o", "p2", 3, None, None);
        differ.runs = Some(RunComparison {
            frames: 11,
            differences: vec!["frame 2 | retval 1 vs 2".into()],
        });
        let rows = vec![
            differ,
            row("b.o", "t2", 2, None, Some("no | pipes\nsecond line")),
            row("c.o", "x2", 6, Some("EACCES: invalid"), None),
        ];
        let md = markdown(&rows);
        assert!(md.contains("| the kernel loads | 2 |"), "{md}");
        assert!(
            md.contains("| bpfvm loads, of those | 1 / 2 (50%) |"),
            "{md}"
        );
        assert!(md.contains("| no \\| pipes | 1 | 0 | b.o:t2 |"), "{md}");
        assert!(
            md.contains("Programs bpfvm loads that the kernel refuses: 1"),
            "{md}"
        );
        assert!(md.contains("| c.o:x2 | EACCES: invalid |"), "{md}");
        assert!(
            md.contains("| a.o:p2 | frame 2 \\| retval 1 vs 2 |"),
            "{md}"
        );
        assert!(text_summary(&rows).contains("kernel loads: 2\n"));
        assert!(
            md.contains("| . | 3 | 3 | 2 | 1 | 1 | 1 | 0 / 1 (0%) |"),
            "{md}"
        );
    }

    #[test]
    fn folders_are_the_first_path_component() {
        let rows = vec![
            row("repo-a/x.o", "p", 6, None, None),
            row("repo-a/sub/y.o", "q", 2, Some("EINVAL"), None),
            row("repo-b/z.o", "r", 2, None, Some("refused")),
            row("top.o", "s", 2, None, None),
        ];
        let f = by_folder(&rows);
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [".", "repo-a", "repo-b"]);
        assert_eq!(
            (f[1].1.objects, f[1].1.programs, f[1].1.kernel_loaded),
            (2, 2, 1)
        );
        assert_eq!((f[2].1.kernel_loaded, f[2].1.both_loaded), (1, 0));
    }

    #[test]
    fn ratio_of_nothing_is_not_a_division_by_zero() {
        assert_eq!(ratio(0, 0), "0 / 0");
        assert_eq!(ratio(1, 3), "1 / 3 (33%)");
    }
}
