//! Checks that `.BTF.ext` line info maps relocated instructions, including appended
//! subprograms, back to the C source lines they came from.

mod common;

#[test]
fn programs_and_subprograms_point_at_their_source() {
    let obj = common::fixture("subprog");
    let prog = obj.program("calc_more").unwrap();
    let first = prog.source_line(0).unwrap();
    assert_eq!(
        first.file, "./src/subprog.bpf.c",
        "no checkout path in the fixtures"
    );
    assert!(first.source.contains("int calc_more("), "{first:?}");
    for (name, start) in &prog.subprograms {
        let line = prog.source_line(*start).unwrap();
        assert!(
            line.source.contains(&format!("{name}(")),
            "{name}: {line:?}"
        );
    }
    // Lines are sorted and every instruction after the first has a line.
    assert!(prog.lines.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!((0..prog.insns.len()).all(|i| prog.source_line(i).is_some()));
    // The line of the last instruction of `square` is its return.
    let last = prog.source_line(prog.insns.len() - 1).unwrap();
    assert_eq!(last.source.trim(), "return x * x;");
    assert!(last.line > 0 && last.column > 0);
}

#[test]
fn the_drop_rule_has_its_line() {
    let obj = common::fixture("xdp_parser");
    let prog = obj.program("xdp_udp_filter").unwrap();
    assert!(prog
        .lines
        .iter()
        .any(|(_, l)| l.source.contains("udp->dest == bpf_htons(DROP_PORT)")));
}
