//! Kernel oracle for callbacks (issue 13, item 6): `bpf_loop` and `bpf_for_each_map_elem`.
//!
//! `callbacks.o` (vm/tests/fixtures/src/callbacks.bpf.c) is loaded into the kernel with
//! bpftool (libbpf gives the kernel the BTF function info that `ld_imm64` of a function
//! needs) and into bpfvm, whose verifier must accept every program the kernel accepts. The
//! same sequence of XDP test runs — sums, early stops, nested callbacks, flags and counts
//! the helper refuses, walks over an array, a hash (with deletes) and a per-CPU array —
//! runs on CPU 0 on both sides: every return value and, after each run, the `results`,
//! `arr` and `hash` maps must be equal (the hash compared as a set: iteration order is the
//! kernel's business, and the programs only compute order-free results from it).
//!
//! The refused fixtures give the kernel's verifier error in bpfvm's words too: a callback
//! returning 2, and `bpf_for_each_map_elem` over an LPM trie.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::process::Command;

use bpfvm::loader::{Object, ObjectMaps};
use bpfvm::{CpuId, EngineKind, Input, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures");

/// Runs a command, its stdout (and stderr) when it succeeds.
fn cmd(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?}: {}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A bpffs directory removed when dropped.
struct Pins(String);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bpftool output {text:?}: {e}"))
}

fn hex_bytes(v: &serde_json::Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| u8::from_str_radix(h.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect()
}

/// Key → value of every element of kernel map `id` (`bpftool -j map dump`).
fn kernel_dump(id: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let out = cmd("bpftool", &["-j", "map", "dump", "id", &id.to_string()]).unwrap();
    json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (hex_bytes(&e["key"]), hex_bytes(&e["value"])))
        .collect()
}

/// Key → value of every element of bpfvm map `name`.
fn vm_dump(maps: &ObjectMaps, name: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let map = maps.get(name).unwrap();
    let mut out = BTreeMap::new();
    let mut key: Option<Vec<u8>> = None;
    let mut next = vec![0u8; map.key_size() as usize];
    while map.get_next_key(key.as_deref(), &mut next, 0).is_ok() {
        let mut value = vec![0u8; map.value_size() as usize];
        map.lookup(&next, &mut value, 0).unwrap();
        out.insert(next.clone(), value);
        key = Some(next.clone());
    }
    out
}

/// The ids of the maps named `names` that pinned program `pinned` uses.
fn kernel_map_ids(pinned: &str, names: &[&str]) -> BTreeMap<String, u64> {
    let prog = json(&cmd("bpftool", &["-j", "prog", "show", "pinned", pinned]).unwrap());
    let mut ids = BTreeMap::new();
    for id in prog["map_ids"].as_array().unwrap() {
        let id = id.as_u64().unwrap();
        let map = json(&cmd("bpftool", &["-j", "map", "show", "id", &id.to_string()]).unwrap());
        let name = map["name"].as_str().unwrap().to_string();
        if names.contains(&name.as_str()) {
            ids.insert(name, id);
        }
    }
    ids
}

/// The kernel's return value of one test run of pinned program `pinned` on `packet`.
fn kernel_run(pinned: &str, packet: &[u8], scratch: &str) -> u32 {
    std::fs::write(scratch, packet).unwrap();
    let out = cmd(
        "bpftool",
        &["-j", "prog", "run", "pinned", pinned, "data_in", scratch],
    )
    .unwrap();
    json(&out)["retval"].as_u64().unwrap() as u32
}

fn packet(p: [u8; 4]) -> Vec<u8> {
    let mut data = vec![0u8; 64];
    data[..4].copy_from_slice(&p);
    data
}

/// The test runs, in order: (program, packet parameters).
fn runs() -> Vec<(&'static str, [u8; 4])> {
    let mut v = Vec::new();
    for n in [0u8, 1, 7, 100, 255] {
        v.push(("loop_sum", [n, 0, 0, 0]));
    }
    for (n, stop) in [(10u8, 3u8), (10, 0), (10, 9), (10, 200), (0, 0), (255, 254)] {
        v.push(("loop_stop", [n, stop, 0, 0]));
    }
    for (outer, inner) in [(3u8, 4u8), (0, 5), (5, 0), (16, 16)] {
        v.push(("loop_nested", [outer, inner, 0, 0]));
    }
    // flags 1 and 2 (-EINVAL), counts above 1 << 23 (-E2BIG), flags 0 unknown to the
    // verifier (the helper runs the loop).
    for p in [
        [0u8, 1, 5, 0],
        [0, 2, 0, 0],
        [0x81, 0, 0, 0],
        [0xff, 0, 3, 0],
        [0, 0, 5, 0],
    ] {
        v.push(("loop_flags", p));
    }
    v.push(("loop_too_big", [0; 4]));
    v.push(("loop_flags_const", [0; 4]));
    for f in [0u8, 1, 0, 0x80] {
        v.push(("each_flags", [f, 0, 0, 0]));
    }
    for (mul, stop) in [(2u8, 99u8), (0, 2), (5, 0), (1, 7), (3, 4)] {
        v.push(("each_array", [mul, stop, 0, 0]));
    }
    for (k, val) in [
        (3u8, 7u8),
        (5, 1),
        (9, 0xff),
        (3, 8),
        (12, 0xff),
        (15, 2),
        (5, 0xff),
        (1, 1),
    ] {
        v.push(("each_hash", [k, val, 0, 0]));
    }
    for (k, val) in [(1u8, 5u8), (2, 3), (0, 1), (3, 255), (1, 1)] {
        v.push(("each_percpu", [k, val, 0, 0]));
    }
    v
}

#[test]
fn callbacks_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    if cmd("bpftool", &["version"]).is_err() {
        println!("SKIP: bpftool is not installed");
        return;
    }
    // bpftool runs the programs on the CPU it is started on: this thread's.
    kernel::pin_current_thread(0).unwrap();
    let pins = Pins(format!(
        "/sys/fs/bpf/bpfvm_callbacks_{}",
        std::process::id()
    ));
    let path = format!("{FIXTURES}/callbacks.o");
    cmd("bpftool", &["prog", "loadall", &path, &pins.0]).unwrap();
    let scratch = format!("/tmp/bpfvm_callbacks_{}.bin", std::process::id());

    let ncpus = kernel::possible_cpus().unwrap();
    let obj = Object::from_file(&path).unwrap();
    let vm = Vm::builder()
        .cpus(ncpus)
        .privilege(bpfvm::Privilege::Root)
        .build();
    // Each sandboxed engine of this build, with maps of its own.
    let mut sides = Vec::new();
    for engine in EngineKind::available()
        .into_iter()
        .filter(|e| e.is_sandboxed())
    {
        let maps = obj.create_maps(ncpus).unwrap();
        let mut loaded = BTreeMap::new();
        for p in obj.programs() {
            let program = obj.vm_program(&p.name, &maps).unwrap();
            let prog = vm.load(program.with_engine(engine)).unwrap();
            assert_eq!(prog.unverified(), None, "{}: the kernel accepts it", p.name);
            loaded.insert(p.name.to_string(), prog);
        }
        sides.push((engine, maps, loaded));
    }
    let mut ids = kernel_map_ids(&format!("{}/each_hash", pins.0), &["results", "hash"]);
    ids.extend(kernel_map_ids(&format!("{}/each_array", pins.0), &["arr"]));
    assert_eq!(ids.len(), 3, "{ids:?}");

    for (name, p) in runs() {
        let pinned = format!("{}/{name}", pins.0);
        let want = kernel_run(&pinned, &packet(p), &scratch);
        let run = VmTestRun {
            input: Input::packet(packet(p)),
            cpu: CpuId(0),
            ..VmTestRun::default()
        };
        let dumps: Vec<_> = ids
            .iter()
            .map(|(map, &id)| (map, kernel_dump(id)))
            .collect();
        for (engine, maps, loaded) in &sides {
            let got = vm.test_run(&loaded[name], &run).unwrap().retval as u32;
            assert_eq!(got, want, "{name} {p:?} on {engine}: return value");
            for (map, dump) in &dumps {
                assert_eq!(
                    &vm_dump(maps, map),
                    dump,
                    "{name} {p:?} on {engine}: map {map}"
                );
            }
        }
    }
    let _ = std::fs::remove_file(&scratch);
}

/// The kernel's verifier log of loading `name.o` (which it refuses).
fn kernel_refusal(name: &str) -> String {
    let pins = Pins(format!(
        "/sys/fs/bpf/bpfvm_cb_{name}_{}",
        std::process::id()
    ));
    let path = format!("{FIXTURES}/{name}.o");
    cmd("bpftool", &["prog", "loadall", &path, &pins.0]).unwrap_err()
}

#[test]
fn refused_callbacks_are_refused_in_the_kernels_words() {
    if !kernel::oracle_or_skip() {
        return;
    }
    if cmd("bpftool", &["version"]).is_err() {
        println!("SKIP: bpftool is not installed");
        return;
    }
    let vm = Vm::builder()
        .cpus(1)
        .privilege(bpfvm::Privilege::Root)
        .build();
    for (name, prog, errno) in [
        ("callback_ret_two", "ret_two", 22),
        ("callback_lpm", "lpm_each", 524),
    ] {
        let log = kernel_refusal(name);
        let obj = Object::from_file(format!("{FIXTURES}/{name}.o")).unwrap();
        let maps = obj.create_maps(1).unwrap();
        let e = vm
            .load(obj.vm_program(prog, &maps).unwrap())
            .expect_err("the kernel refuses it");
        let bpfvm::PrepareError::Verifier { error, .. } = &e else {
            panic!("{name}: {e}");
        };
        assert_eq!(error.errno, errno, "{name}: {e}");
        assert!(
            log.lines().any(|l| l == error.message),
            "{name}: the kernel's log has no line {:?}:\n{log}",
            error.message
        );
        // The same instruction: the log's last instruction line before the message.
        let at = format!("{}: (", error.insn.unwrap());
        assert!(log.contains(&at), "{name}: instruction {at:?} in\n{log}");
    }
}
