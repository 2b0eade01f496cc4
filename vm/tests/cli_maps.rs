//! `bpfvm maps` lists each map an object defines: name, type, sizes, max_entries, flags and
//! where the definition comes from.

use assert_cmd::Command;

#[path = "common/cli.rs"]
mod cli;
use cli::fixture;

fn maps(name: &str) -> Vec<Vec<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .args(["maps", &fixture(name)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn btf_maps_show_type_sizes_and_entries() {
    let rows = maps("percpu_counter.o");
    assert_eq!(
        rows[0][..6],
        [
            "name",
            "type",
            "key_size",
            "value_size",
            "max_entries",
            "flags"
        ]
    );
    assert_eq!(rows[1][..6], ["counts", "percpu_array", "4", "8", "1", "0"]);
    assert_eq!(rows[2][..6], ["total", "array", "4", "8", "1", "0"]);
    assert_eq!(rows.len(), 3);
}

#[test]
fn global_data_shows_its_section_and_rdonly_prog() {
    let rows = maps("globals.o");
    let ro = rows.iter().find(|r| r[0] == "globals.rodata").unwrap();
    assert_eq!(ro[1..6], ["array", "4", "16", "1", "0x80"]);
    assert_eq!(ro[6], "(BPF_F_RDONLY_PROG)");
    assert!(ro.contains(&".rodata".to_string()));
    let bss = rows.iter().find(|r| r[0] == "globals.bss").unwrap();
    assert!(bss.contains(&".bss".to_string()));
}

#[test]
fn lru_percpu_hash_type_is_named() {
    let rows = maps("lru_percpu_hash.o");
    assert!(rows.iter().any(|r| r[1] == "lru_percpu_hash"), "{rows:?}");
}
