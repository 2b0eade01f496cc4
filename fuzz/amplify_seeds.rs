//! Seeds shaped like the amplification cases of issue 12 §4, scaled down to fuzz-input
//! size (at most 48 KiB each), so a fuzz run starts next to them instead of having to build
//! a union DAG or a shared-string struct from random bytes. Written by `fuzz/seeds.sh`
//! (`rustc` on this file alone: it needs only std and the vm tests' ELF/BTF writer):
//!
//!   amplify_seeds <corpus dir>          writes <corpus>/btf/amp_* and <corpus>/elf/amp_*
//!   amplify_seeds --full <dir>          the same cases at the sizes of issue 12 (up to
//!                                       ~9 MB each), to run once through a target binary
//!                                       with fuzz/run.sh's limits (not as seeds)
//!
//! The `btf` seeds use that target's format (`[setup][u32 .BTF length][.BTF][.BTF.ext]`,
//! see `fuzz_targets/btf.rs`); the `elf` seeds are whole objects.

#[path = "../vm/tests/common/elf_writer.rs"]
mod elf_writer;

use elf_writer::{self as w, btf_ext_lines, kind, Btf, Elf, LineRecord};
use std::path::Path;

/// `btf` target setup bits: `.maps` (32 bytes), global data, a program calling `.text`.
const MAPS: u8 = 1;
const DATA: u8 = 2;
const PROG: u8 = 4;

fn btf_input(setup: u8, btf: &[u8], ext: &[u8]) -> Vec<u8> {
    let mut out = vec![setup];
    out.extend_from_slice(&(btf.len() as u32).to_le_bytes());
    out.extend_from_slice(btf);
    out.extend_from_slice(ext);
    out
}


/// BTF whose first types are the value type made by `value`, used as the value of map
/// `m` in `.maps` (ARRAY of `entries` entries, `int` key): `(btf, value type id)`.
fn btf_with_map_value(entries: u32, value: impl FnOnce(&mut Btf, u32) -> u32) -> (Btf, u32) {
    let mut btf = Btf::new();
    let int = btf.int("int", 4, true);
    let v = value(&mut btf, int);
    let var = btf.map_var(int, "m", 2, entries, int, v);
    btf.datasec(".maps", 32, &[(var, 0, 32)]);
    (btf, v)
}

/// An object with `.maps` (map `m`), a program in `xdp` and `btf`.
fn object_with_maps(btf: &Btf) -> Vec<u8> {
    let mut elf = Elf::new();
    let prog = elf.code("xdp", &[w::MOV_R0_0, w::EXIT]);
    elf.func("prog", prog, 0, 2);
    let maps = elf.data(".maps", vec![0; 32]);
    elf.object("m", maps, 0, 32);
    elf.progbits(".BTF", btf.build());
    elf.progbits("license", b"GPL\0".to_vec());
    elf.build()
}

/// u0 = union { int a; int b; }, u(k) = union { u(k-1) m0..m(width-1) }, `depth` levels.
fn union_dag(btf: &mut Btf, int: u32, width: usize, depth: usize) -> u32 {
    let (a, b) = (btf.name("a"), btf.name("b"));
    let mut t = btf.composite(kind::UNION, 0, 4, &[(a, int, 0), (b, int, 0)]);
    let names: Vec<u32> = (0..width).map(|i| btf.name(&format!("m{i}"))).collect();
    for _ in 0..depth {
        let members: Vec<(u32, u32, u32)> = names.iter().map(|&n| (n, t, 0)).collect();
        t = btf.composite(kind::UNION, 0, 4, &members);
    }
    t
}

/// struct s { struct s a; struct s b; } (8 bytes), as the next type of `btf`.
fn self_struct(btf: &mut Btf) -> u32 {
    let (name, a, b) = (btf.name("s"), btf.name("a"), btf.name("b"));
    let mut probe = btf.clone();
    let next = probe.raw(0, kind::PTR << 24, 0, &[]);
    btf.composite(kind::STRUCT, name, 8, &[(a, next, 0), (b, next, 0)])
}

/// A struct of `members` members named by one `len`-byte string or suffixes of it.
fn shared_names(len: usize, members: u32) -> Btf {
    let long = "n".repeat(len);
    let mut btf = Btf::new();
    let int = btf.int("int", 4, true);
    let base = btf.name(&long);
    let m: Vec<(u32, u32, u32)> = (0..members)
        .map(|i| (if i % 2 == 0 { base } else { base + i / 2 }, int, 0))
        .collect();
    btf.composite(kind::STRUCT, base, 4, &m);
    btf
}

/// Line records for `insns` instructions of section `sec`, each naming a different suffix
/// of one `len`-byte line.
fn lines_into_long_string(btf: &mut Btf, sec: &str, insns: u32, len: usize) -> Vec<u8> {
    let file = btf.name("hostile.c");
    let line = btf.name(&"x".repeat(len));
    let sec = btf.name(sec);
    let records = (0..insns)
        .map(|i| LineRecord {
            insn_off: i * 8,
            file,
            line_text: line + i,
            line: i + 1,
            column: 1,
        })
        .collect();
    btf_ext_lines(&[(sec, records)])
}

/// `n` DATASECs named `.data`, `.rodata`, `.bss` in turn, each with one variable, plus a
/// `.bss` variable of a 2 GiB array.
fn many_datasecs(n: u32) -> Btf {
    let mut btf = Btf::new();
    let int = btf.int("int", 4, true);
    let ch = btf.int("char", 1, true);
    let huge = btf.array(ch, int, 2 << 30);
    let hv = btf.var("huge", huge);
    btf.datasec(".bss", 64, &[(hv, 0, 64)]);
    for i in 0..n {
        let var = btf.var(&format!("v{i}"), int);
        let sec = [".data", ".rodata", ".bss"][i as usize % 3];
        btf.datasec(sec, 16, &[(var, 4 * (i % 4), 4)]);
    }
    btf
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (full, dir) = match args.as_slice() {
        [dir] => (false, dir),
        [flag, dir] if flag == "--full" => (true, dir),
        _ => panic!("usage: amplify_seeds [--full] <corpus dir>"),
    };
    let dir = Path::new(dir);
    // Seed size, or the issue's full size.
    let pick = |seed: usize, issue: usize| if full { issue } else { seed };
    let mut seeds: Vec<(&str, &str, Vec<u8>)> = Vec::new();

    // BTF strings reused as member names (full size: 64 KiB x 60,000 members).
    let b = shared_names(pick(8 << 10, 64 << 10), pick(3_000, 60_000) as u32).build();
    seeds.push(("btf", "amp_shared_names", btf_input(0, &b, &[])));
    let mut elf = Elf::new();
    elf.progbits(".BTF", b);
    seeds.push(("elf", "amp_shared_names", elf.build()));

    // .BTF.ext line info pointing into one long string, on the `btf` target's program
    // (`xdp`, 3 instructions) and `.text` function, and on a 1,000-instruction program.
    let mut btf = Btf::new();
    let file = btf.name("hostile.c");
    let line = btf.name(&"x".repeat(pick(16 << 10, 1 << 20)));
    let records = |n: u32| -> Vec<LineRecord> {
        (0..n)
            .map(|i| LineRecord {
                insn_off: i * 8,
                file,
                line_text: line + 7 * i,
                line: i + 1,
                column: 1,
            })
            .collect()
    };
    let ext = btf_ext_lines(&[
        (btf.name("xdp"), records(3)),
        (btf.name(".text"), records(2)),
    ]);
    seeds.push(("btf", "amp_line_info", btf_input(PROG, &btf.build(), &ext)));
    let n = pick(1_000, 60_000) as u32;
    let mut btf = Btf::new();
    let ext = lines_into_long_string(&mut btf, "xdp", n, pick(8 << 10, 1 << 20));
    let mut insns = vec![w::MOV_R0_0; n as usize - 1];
    insns.push(w::EXIT);
    let mut elf = Elf::new();
    let code = elf.code("xdp", &insns);
    elf.func("prog", code, 0, u64::from(n));
    elf.progbits(".BTF", btf.build());
    elf.progbits(".BTF.ext", ext);
    seeds.push(("elf", "amp_line_info", elf.build()));

    // Union DAG fan-out: decoded directly (first types) and as a map value.
    let (btf, _) = btf_with_map_value(1, |btf, int| union_dag(btf, int, 16, 20));
    seeds.push(("btf", "amp_union_dag", btf_input(0, &btf.build(), &[])));
    seeds.push((
        "btf",
        "amp_union_dag_map",
        btf_input(MAPS, &btf.build(), &[]),
    ));
    seeds.push(("elf", "amp_union_dag", object_with_maps(&btf)));

    // A struct containing itself, as a type and as a map value.
    let (btf, _) = btf_with_map_value(1, |btf, _| self_struct(btf));
    seeds.push(("btf", "amp_self_struct", btf_input(MAPS, &btf.build(), &[])));
    seeds.push(("elf", "amp_self_struct", object_with_maps(&btf)));

    // Many DATASECs for the same sections (quadratic scans) and a 2 GiB `.bss` variable.
    let b = many_datasecs(pick(800, 30_000) as u32).build();
    seeds.push(("btf", "amp_datasecs", btf_input(DATA | PROG, &b, &[])));
    let mut elf = Elf::new();
    let sections = pick(200, 30_000) as u32;
    for i in 0..sections {
        let s = elf.data(&format!(".data.v{i}"), i.to_le_bytes().to_vec());
        elf.object(&format!("v{i}"), s, 0, 4);
    }
    let mut btf = Btf::new();
    let int = btf.int("int", 4, true);
    for i in 0..sections {
        let var = btf.var(&format!("v{i}"), int);
        btf.datasec(&format!(".data.v{i}"), 0, &[(var, 0, 4)]);
    }
    elf.progbits(".BTF", btf.build());
    seeds.push(("elf", "amp_data_sections", elf.build()));

    // Huge .bss and values: a 2 GiB .bss in a tiny file, a legacy ARRAY of INT_MAX-byte
    // values and 536M entries, a BTF map of char[1 GiB] values (and 1M of them).
    let mut elf = Elf::new();
    elf.nobits(".bss", 2 << 30);
    let code = elf.code("xdp", &[w::MOV_R0_0, w::EXIT]);
    elf.func("prog", code, 0, 2);
    seeds.push(("elf", "amp_huge_bss", elf.build()));
    let mut def = Vec::new();
    for v in [2u32, 4, i32::MAX as u32, 536_870_912, 0] {
        def.extend_from_slice(&v.to_le_bytes());
    }
    let mut elf = Elf::new();
    let maps = elf.data("maps", def);
    elf.object("big", maps, 0, 20);
    seeds.push(("elf", "amp_legacy_huge_array", elf.build()));
    let (btf, _) = btf_with_map_value(1 << 20, |btf, _| {
        let ch = btf.int("char", 1, true);
        btf.array(ch, ch, 1 << 30)
    });
    seeds.push(("btf", "amp_huge_value", btf_input(MAPS, &btf.build(), &[])));
    seeds.push(("elf", "amp_huge_value", object_with_maps(&btf)));

    // Many programs calling one `.text` function (each gets its own linked copy).
    let len = pick(500, 1_000_000 - 3);
    let programs = pick(200, 2_000);
    let mut text = vec![w::MOV_R0_0; len - 1];
    text.push(w::EXIT);
    let mut elf = Elf::new();
    let t = elf.code(".text", &text);
    let f = elf.func("big", t, 0, len as u64);
    let mut code = Vec::with_capacity(programs * 3);
    for _ in 0..programs {
        code.extend([w::call_local(-1), w::MOV_R0_0, w::EXIT]);
    }
    let x = elf.code("xdp", &code);
    for p in 0..programs {
        elf.func(&format!("p{p}"), x, (p * 3) as u64, 3);
        elf.rel(x, (p * 3 * 8) as u64, f, w::R_BPF_64_32);
    }
    seeds.push(("elf", "amp_shared_function", elf.build()));

    for (target, name, bytes) in seeds {
        assert!(
            full || bytes.len() <= 48 << 10,
            "{target}/{name}: {} bytes",
            bytes.len()
        );
        let d = dir.join(target);
        std::fs::create_dir_all(&d).expect("corpus directory");
        std::fs::write(d.join(name), bytes).expect("write seed");
    }
}
