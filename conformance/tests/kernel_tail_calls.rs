//! Tail calls against the kernel: the fixture `tail_call.o` (vm/tests/fixtures) loaded on
//! both sides, its PROG_ARRAYs filled from the object's `values` initialisers, then
//! `BPF_PROG_TEST_RUN` of a three-program chain, of a dispatcher whose index falls through
//! (empty slots, indexes past `max_entries`), of a program that tail-calls itself (the
//! 33-call limit, counted in a map), with return values and maps compared; the host side
//! of PROG_ARRAYs (creation checks, updates with programs of the wrong type, flags,
//! indexes, deletes) outcome by outcome; and the refusal of a tail call from a subprogram
//! loaded without BTF function info.
#![cfg(target_os = "linux")]

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{EngineKind, Program, ProgramType};
use bpfvm_conformance::kernel::consts::{create, ProgType};
use bpfvm_conformance::kernel::pair::{Pair, Runs};
use bpfvm_conformance::kernel::{self, load_object_program, Errno, KernelMap, MapDef};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vm/tests/fixtures/tail_call.o"
);

const PROGRAMS: [&str; 7] = [
    "xdp_entry",
    "xdp_second",
    "xdp_third",
    "xdp_dispatch",
    "xdp_self",
    "xdp_self_empty",
    "sock_other",
];

/// The sandboxed engines of this build: each runs the comparisons with the kernel.
fn engines() -> Vec<EngineKind> {
    EngineKind::available()
        .into_iter()
        .filter(|e| e.is_sandboxed())
        .collect()
}

fn pair() -> Pair {
    pair_on(EngineKind::Interpreter)
}

fn pair_on(engine: EngineKind) -> Pair {
    let n = kernel::possible_cpus().unwrap();
    let mut p = Pair::open_on(FIXTURE, n, engine).unwrap();
    for name in PROGRAMS {
        p.load(name).unwrap();
    }
    p.init_prog_arrays().unwrap();
    p
}

fn packet(first: u8) -> Vec<u8> {
    let mut d = vec![0u8; 64];
    d[0] = first;
    d
}

/// The run's return value on each side (both must have run).
fn retvals(r: Runs, what: &str) -> (u32, u32) {
    let k = r.kernel.unwrap_or_else(|e| panic!("{what}: kernel: {e}"));
    let s = r.bpfvm.unwrap_or_else(|e| panic!("{what}: bpfvm: {e}"));
    (k.retval, s.retval as u32)
}

fn same_map(p: &Pair, map: &str) {
    let (k, s) = p.dumps(map);
    assert_eq!(k.unwrap(), s.unwrap(), "map {map}");
}

#[test]
fn tail_call_runs_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    for engine in engines() {
        tail_call_runs_match_the_kernel_on(engine);
    }
}

fn tail_call_runs_match_the_kernel_on(engine: EngineKind) {
    let p = pair_on(engine);
    let mut compared = 0;
    // The chain entry -> second -> third, on every CPU.
    for cpu in 0..p.vm.ncpus() {
        let (k, s) = retvals(p.run("xdp_entry", cpu, &[], &packet(0), 1), "xdp_entry");
        assert_eq!((k, s), (2, 2), "xdp_entry on cpu {cpu}");
        compared += 1;
    }
    same_map(&p, "counts");
    // The dispatcher: filled slots jump, empty ones and those past max_entries fall through.
    for first in [0u8, 1, 2, 3, 4, 5, 200, 255] {
        let (k, s) = retvals(
            p.run("xdp_dispatch", 0, &[], &packet(first), 1),
            "xdp_dispatch",
        );
        assert_eq!(k, s, "xdp_dispatch with index {first}");
        compared += 1;
    }
    same_map(&p, "counts");
    // A program that tail-calls itself: 33 tail calls, then the fall-through's return value.
    for repeat in [1, 5] {
        let (k, s) = retvals(p.run("xdp_self", 0, &[], &packet(0), repeat), "xdp_self");
        assert_eq!((k, s), (7, 7), "xdp_self, repeat {repeat}");
        compared += 1;
    }
    // Calls to an empty slot do not count towards the 33 (the JIT's rule).
    let (k, s) = retvals(
        p.run("xdp_self_empty", 1, &[], &packet(0), 1),
        "xdp_self_empty",
    );
    assert_eq!((k, s), (8, 8), "xdp_self_empty");
    compared += 1;
    same_map(&p, "hits");
    let mut hits = [0u8; 8];
    p.smaps[p.map("hits")]
        .lookup(&1u32.to_ne_bytes(), &mut hits, 0)
        .unwrap();
    assert_eq!(u64::from_ne_bytes(hits), 34, "runs of xdp_self_empty");
    p.smaps[p.map("hits")]
        .lookup(&0u32.to_ne_bytes(), &mut hits, 0)
        .unwrap();
    assert_eq!(
        u64::from_ne_bytes(hits),
        34 * 6,
        "1 + 33 runs of xdp_self per run"
    );
    // Emptied slots fall through on both sides; slots filled again jump again.
    for (k, s) in [
        (
            p.kmaps[p.map("jmp")].delete(&1u32.to_ne_bytes()),
            p.smaps[p.map("jmp")]
                .delete(&1u32.to_ne_bytes(), 0)
                .map_err(|e| Errno(e.errno())),
        ),
        p.set_prog_slot("jmp", 3, "xdp_third", 0),
    ] {
        assert_eq!(k, s);
        assert_eq!(k, Ok(()));
    }
    for first in [1u8, 3] {
        let (k, s) = retvals(
            p.run("xdp_dispatch", 1, &[], &packet(first), 1),
            "xdp_dispatch",
        );
        assert_eq!(
            k, s,
            "xdp_dispatch with index {first} after the host's changes"
        );
        compared += 1;
    }
    let (k, s) = retvals(p.run("xdp_entry", 1, &[], &packet(0), 1), "xdp_entry");
    assert_eq!((k, s), (100, 100), "xdp_entry after jmp[1] was deleted");
    same_map(&p, "counts");
    println!("{} runs compared", compared + 1);
}

#[test]
fn prog_array_host_operations_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let p = pair();
    let jmp = p.map("jmp");
    let mut outcomes = Vec::new();
    // Programs in, with the kernel's checks: flags, index, the owner's program type.
    for (index, prog, flags) in [
        (0, "xdp_third", 0),
        (0, "xdp_third", 0),
        (0, "xdp_entry", 1),
        (0, "xdp_entry", 2),
        (0, "xdp_entry", 4),
        (4, "xdp_entry", 0),
        (u32::MAX, "xdp_entry", 0),
        (3, "sock_other", 0),
        (3, "xdp_self", 0),
    ] {
        let (k, s) = p.set_prog_slot("jmp", index, prog, flags);
        assert_eq!(k, s, "jmp[{index}] = {prog} with flags {flags}");
        outcomes.push(k);
    }
    // Host lookups: the program id (kernel: its own ids), ENOENT for empty slots.
    for index in [0u32, 1, 2, 3, 4, 9] {
        let key = index.to_ne_bytes();
        let k = p.kmaps[jmp].lookup(&key, 0).map(|_| ());
        let mut v = [0u8; 4];
        let s = p.smaps[jmp]
            .lookup(&key, &mut v, 0)
            .map_err(|e| Errno(e.errno()));
        assert_eq!(k, s, "lookup jmp[{index}]");
        outcomes.push(k);
    }
    let mut id = [0u8; 4];
    p.smaps[jmp]
        .lookup(&3u32.to_ne_bytes(), &mut id, 0)
        .unwrap();
    assert_eq!(u32::from_ne_bytes(id), p.bpfvm_program("xdp_self").id());
    // Deletes: filled, empty, past max_entries.
    for index in [3u32, 3, 4, 100] {
        let key = index.to_ne_bytes();
        let k = p.kmaps[jmp].delete(&key);
        let s = p.smaps[jmp].delete(&key, 0).map_err(|e| Errno(e.errno()));
        assert_eq!(k, s, "delete jmp[{index}]");
        outcomes.push(k);
    }
    // get_next_key walks every index, as an array's.
    let mut key = None;
    loop {
        let k = p.kmaps[jmp].get_next_key(key.as_deref());
        let mut next = [0u8; 4];
        let s = p.smaps[jmp]
            .get_next_key(key.as_deref(), &mut next, 0)
            .map(|()| next.to_vec())
            .map_err(|e| Errno(e.errno()));
        assert_eq!(k, s, "get_next_key after {key:?}");
        outcomes.push(k.clone().map(drop));
        match k {
            Ok(n) => key = Some(n),
            Err(_) => break,
        }
    }
    let errors = outcomes.iter().filter(|o| o.is_err()).count();
    println!("{} outcomes compared, {errors} errors", outcomes.len());
    assert!(errors >= 8, "the errors were compared, not only successes");
}

#[test]
fn prog_array_creation_matches_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let mut compared = 0;
    for (ks, vs) in [(4, 4), (4, 8), (4, 0), (8, 4), (0, 4), (4, 3)] {
        for max in [0, 1, 4, 1 << 20] {
            for flags in [
                0,
                1, // BPF_F_NO_PREALLOC
                4, // BPF_F_NUMA_NODE
                create::RDONLY,
                create::WRONLY,
                create::RDONLY_PROG,
                create::WRONLY_PROG,
                1 << 10, // BPF_F_MMAPABLE
            ] {
                let def = MapDef {
                    map_type: MapType::ProgArray,
                    key_size: ks,
                    value_size: vs,
                    max_entries: max,
                    map_flags: flags,
                };
                let k = KernelMap::create(def).map(drop);
                let spec = MapSpec::new(MapType::ProgArray, ks, vs, max).with_flags(flags);
                let s = Map::create(spec, n).map(drop).map_err(|e| Errno(e.errno()));
                assert_eq!(k, s, "{def:?}");
                compared += 1;
            }
        }
    }
    println!("{compared} creations compared");
}

#[test]
fn a_subprogram_tail_call_without_btf_is_refused_by_both() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let p = Pair::open(FIXTURE, n).unwrap();
    let def = p.obj.program("xdp_from_sub").unwrap();
    let kmaps: Vec<&KernelMap> = def.maps.iter().map(|&i| &p.kmaps[i]).collect();
    let k = load_object_program(
        "xdp_from_sub",
        ProgType::Xdp,
        0,
        &def.bytecode(),
        &kmaps,
        "GPL",
    )
    .unwrap_err();
    let mut prog = Program::new(def.bytecode(), ProgramType::Xdp);
    for &i in &def.maps {
        prog.add_map(p.smaps[i].clone());
    }
    let s = p.vm.load(prog).unwrap_err();
    const WORDS: &str = "tail_call is not allowed in subprogs without BTF";
    assert!(k.contains(WORDS), "kernel: {k}");
    assert!(s.to_string().contains(WORDS), "bpfvm: {s}");
    assert_eq!(s.errno(), 22);
}

#[test]
fn a_legacy_prog_array_matches_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    for engine in engines() {
        a_legacy_prog_array_matches_the_kernel_on(engine);
    }
}

fn a_legacy_prog_array_matches_the_kernel_on(engine: EngineKind) {
    let n = kernel::possible_cpus().unwrap();
    let path = FIXTURE.replace("tail_call.o", "tail_call_legacy.o");
    let mut p = Pair::open_on(&path, n, engine).unwrap();
    p.load("legacy_entry").unwrap();
    p.load("legacy_target").unwrap();
    let (k, s) = retvals(p.run("legacy_entry", 0, &[], &packet(0), 1), "empty slot");
    assert_eq!((k, s), (1, 1));
    let (k, s) = p.set_prog_slot("progs", 0, "legacy_target", 0);
    assert_eq!((k, s), (Ok(()), Ok(())));
    for first in [0u8, 1, 2] {
        let (k, s) = retvals(
            p.run("legacy_entry", 0, &[], &packet(first), 1),
            "legacy_entry",
        );
        assert_eq!(k, s, "index {first}");
    }
}

/// Closing the last user handle of a PROG_ARRAY empties it while the programs using it
/// stay loaded (the kernel's `usercnt`: `map_release_uref` → `prog_array_map_clear`, from
/// a work item): `xdp_entry`'s tail call then falls through on both sides, and a program
/// that tail-calls itself through `self_jmp` runs once.
#[test]
fn closing_a_prog_array_s_last_handle_empties_it_as_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    for engine in engines() {
        let mut p = pair_on(engine);
        let (k, s) = retvals(p.run("xdp_entry", 0, &[], &packet(0), 1), "xdp_entry");
        assert_eq!((k, s), (2, 2), "{engine}: the chain before");
        let (k, s) = retvals(p.run("xdp_self", 0, &[], &packet(0), 1), "xdp_self");
        assert_eq!((k, s), (7, 7), "{engine}: xdp_self before");
        let h = p.map("hits");
        let hits_before = hits(&p, h);
        // Close both arrays' only user handles on both sides: each is replaced by a
        // placeholder (an unrelated ARRAY), so the other maps keep their indexes.
        for name in ["jmp", "self_jmp"] {
            let i = p.map(name);
            let def = MapDef {
                map_type: MapType::Array,
                key_size: 4,
                value_size: 4,
                max_entries: 1,
                map_flags: 0,
            };
            drop(std::mem::replace(
                &mut p.kmaps[i],
                KernelMap::create(def).unwrap(),
            ));
            let placeholder = Map::create(MapSpec::new(MapType::Array, 4, 4, 1), p.vm.ncpus());
            drop(std::mem::replace(
                &mut p.smaps[i],
                std::sync::Arc::new(placeholder.unwrap()),
            ));
        }
        // The kernel empties the array from a work item: wait for it (at most 5 s).
        let start = std::time::Instant::now();
        let mut k = 0;
        while start.elapsed() < std::time::Duration::from_secs(5) {
            k = retvals(p.run("xdp_entry", 0, &[], &packet(0), 1), "xdp_entry").0;
            if k == 100 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (_, s) = retvals(p.run("xdp_entry", 0, &[], &packet(0), 1), "xdp_entry");
        assert_eq!(
            (k, s),
            (100, 100),
            "{engine}: xdp_entry after jmp was closed"
        );
        let (k, s) = retvals(p.run("xdp_self", 0, &[], &packet(0), 1), "xdp_self");
        assert_eq!(
            (k, s),
            (7, 7),
            "{engine}: xdp_self after self_jmp was closed"
        );
        // One more run of xdp_self on each side: one hit, no tail call.
        let after = hits(&p, h);
        assert_eq!(after.0 - hits_before.0, after.1 - hits_before.1, "{engine}");
        assert_eq!(after.1 - hits_before.1, 1, "{engine}");
    }
}

/// `hits[0]` (runs of `xdp_self`) on the kernel's side and bpfvm's; `hits` is map `i`.
fn hits(p: &Pair, i: usize) -> (u64, u64) {
    let key = 0u32.to_ne_bytes();
    let k = p.kmaps[i].lookup(&key, 0).unwrap();
    let mut s = [0u8; 8];
    p.smaps[i].lookup(&key, &mut s, 0).unwrap();
    (
        u64::from_ne_bytes(k[..8].try_into().unwrap()),
        u64::from_ne_bytes(s),
    )
}
