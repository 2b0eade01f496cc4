//! `bpfvm disasm` prints relocated instructions: map loads by map name, helper calls by name,
//! jump targets, atomics, subprogram calls and C source lines.

use assert_cmd::Command;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

fn disasm(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .arg("disasm")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_counter_shows_maps_helpers_atomics_and_source() {
    let text = disasm(&[&fixture("percpu_counter.o")]);
    assert!(
        text.starts_with("program count_packets (section xdp, Xdp): 23 instructions"),
        "{text}"
    );
    assert!(
        text.contains("    4: 18 11 00 00 00 00 00 00  lddw r1, map counts"),
        "{text}"
    );
    assert!(text.contains("lddw r1, map total"), "{text}");
    assert!(text.contains("call bpf_map_lookup_elem #1"), "{text}");
    assert!(text.contains("atomic64 add [r0+0x0], r1"), "{text}");
    assert!(text.contains("jeq r7, 0x0, +0x7 -> 21"), "{text}");
    assert!(text.contains("; *mine += 1;"), "{text}");
    assert!(text.trim_end().ends_with("exit"), "{text}");
}

#[test]
fn prog_selects_one_program_and_global_data_loads_name_the_map() {
    let text = disasm(&[&fixture("globals.o"), "--prog", "bump"]);
    assert!(text.contains("program bump"), "{text}");
    assert!(!text.contains("program write_rodata"), "{text}");
    assert!(text.contains("&map globals.bss value + 0"), "{text}");
    assert!(text.contains("&map globals.rodata value"), "{text}");
}

#[test]
fn without_prog_every_program_is_listed() {
    let text = disasm(&[&fixture("multi.o")]);
    assert_eq!(text.matches("program ").count(), 8, "{text}");
}

#[test]
fn subprogram_calls_name_their_target() {
    let text = disasm(&[&fixture("subprog.o")]);
    assert!(text.contains("call pc"), "{text}");
    assert!(text.contains(" <"), "subprogram label in {text}");
}

#[test]
fn v4_instructions_are_formatted() {
    let text = disasm(&[&fixture("signed_v4.o")]);
    assert!(!text.contains("unknown opcode"), "{text}");
    assert!(
        ["sdiv", "smod", "movsx", "ldxs", "bswap", "gotol"]
            .iter()
            .any(|m| text.contains(m)),
        "{text}"
    );
}
