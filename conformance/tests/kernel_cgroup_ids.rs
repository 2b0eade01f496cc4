//! Cgroup ids against the kernel: a `sched_cls` program (test-run with
//! `BPF_PROG_TEST_RUN`, whose packet socket the test process allocates, so it is in the
//! process's cgroup) stores `bpf_get_current_cgroup_id` (80),
//! `bpf_get_current_ancestor_cgroup_id` (123) at levels 0, 1, 2, 50 and -1,
//! `bpf_skb_cgroup_id` (79) and `bpf_skb_ancestor_cgroup_id` (83) at the same levels into a
//! map value; bpfvm, told the process's cgroup2 path (`Vm::set_cgroups`, ids from the root
//! down: the cgroup directories' inode numbers, as the kernel's kernfs ids are), must store
//! the same words. A `raw_tracepoint` program (run in the test process too) compares
//! helpers 80 and 123.
#![cfg(target_os = "linux")]

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec};
use bpfvm::sim_kernel::CgroupEnv;
use bpfvm::{CpuId, Input, Privilege, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, Insn};
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::diff::HostMap;
use bpfvm_conformance::kernel::{self, load_object_program, KernelMap, MapDef, TestRun};

/// Levels asked for, the last one -1.
const LEVELS: [i32; 5] = [0, 1, 2, 50, -1];
/// Words stored: the cgroup's id, then one per level (task helpers); the same for the skb.
const WORDS: usize = 2 * (1 + LEVELS.len());

/// Where the cgroup2 hierarchy is mounted, if it is.
fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let mount_point = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// This process's cgroup2 path (`/` for the root).
fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    Some(
        text.lines()
            .find_map(|l| l.strip_prefix("0::"))?
            .to_string(),
    )
}

/// The cgroup2 path of this process as ids from the root down, or `None` when it cannot be
/// read (no cgroup2 line, or a path below the root with no cgroup2 mount to stat).
fn own_cgroup_path() -> Option<Vec<u64>> {
    let path = own_cgroup()?;
    let mut ids = vec![1u64];
    if path == "/" {
        return Some(ids);
    }
    let mut dir = cgroup2_mount()?;
    for part in path.trim_start_matches('/').split('/') {
        dir.push(part);
        ids.push(std::fs::metadata(&dir).ok()?.ino());
    }
    Some(ids)
}

/// Moves this process into a new cgroup two levels below its own, or `None` (with why)
/// when the hierarchy cannot be written; `Drop` moves it back and removes the cgroups.
struct Nested {
    home: PathBuf,
    dirs: [PathBuf; 2],
}

impl Nested {
    fn enter() -> Result<Nested, String> {
        let mount = cgroup2_mount().ok_or("no cgroup2 mount")?;
        let own = own_cgroup().ok_or("no cgroup2 line in /proc/self/cgroup")?;
        let home = mount.join(own.trim_start_matches('/'));
        let a = home.join(format!("bpfvm-cgroup-ids-{}", std::process::id()));
        let b = a.join("b");
        std::fs::create_dir_all(&b).map_err(|e| format!("{}: {e}", b.display()))?;
        let nested = Nested { home, dirs: [b, a] };
        std::fs::write(nested.dirs[0].join("cgroup.procs"), "0")
            .map_err(|e| format!("moving into {}: {e}", nested.dirs[0].display()))?;
        Ok(nested)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        let _ = std::fs::write(self.home.join("cgroup.procs"), "0");
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// `r7` = the value of map 0; then the helpers' answers stored word by word.
fn program(skb: bool) -> Vec<u8> {
    let mut v: Vec<Insn> = vec![asm::mov64_reg(6, 1), asm::st_w(10, -4, 0)];
    v.extend(asm::ld_map(1, 0));
    v.extend([
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -4),
        asm::call(1),
        asm::jne_imm(0, 0, 2),
        asm::mov64_imm(0, 0),
        asm::exit(),
        asm::mov64_reg(7, 0),
    ]);
    let mut word = 0i16;
    let mut store = |v: &mut Vec<Insn>| {
        v.push(asm::stx_dw(7, 0, 8 * word));
        word += 1;
    };
    v.push(asm::call(80));
    store(&mut v);
    for level in LEVELS {
        v.extend([asm::mov64_imm(1, level), asm::call(123)]);
        store(&mut v);
    }
    if skb {
        v.extend([asm::mov64_reg(1, 6), asm::call(79)]);
        store(&mut v);
        for level in LEVELS {
            v.extend([
                asm::mov64_reg(1, 6),
                asm::mov64_imm(2, level),
                asm::call(83),
            ]);
            store(&mut v);
        }
    }
    v.extend([asm::mov64_imm(0, 0), asm::exit()]);
    asm::image(&[&v])
}

/// Runs the program on both sides: (kernel words, bpfvm words).
fn run(prog_type: ProgType, path: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let skb = matches!(prog_type, ProgType::SchedCls);
    let size = 8 * WORDS as u32;
    let code = program(skb);
    let kmap = KernelMap::create(MapDef {
        map_type: MapType::Array,
        key_size: 4,
        value_size: size,
        max_entries: 1,
        map_flags: 0,
    })
    .unwrap();
    let kprog = load_object_program("cgroup_ids", prog_type, 0, &code, &[&kmap], "GPL")
        .unwrap_or_else(|e| panic!("the kernel loads the {prog_type:?} program: {e}"));
    let frame = vec![0u8; 64];
    let t = TestRun {
        data_in: if skb { frame.clone() } else { Vec::new() },
        ..TestRun::default()
    };
    assert_eq!(kprog.test_run(&t).unwrap().retval, 0);
    let key = 0u32.to_ne_bytes();
    let words = |b: Vec<u8>| -> Vec<u64> {
        b.chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    };
    let k = words(kmap.lookup(&key, 0).unwrap());

    let smap =
        Arc::new(Map::create(MapSpec::new(bpfvm::maps::MapType::Array, 4, size, 1), 1).unwrap());
    let vm = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    vm.set_cgroups(
        CpuId(0),
        CgroupEnv {
            task: path.to_vec(),
            skb_socket: Some(path.to_vec()),
        },
    )
    .unwrap();
    let ptype = if skb {
        ProgramType::SchedCls
    } else {
        ProgramType::RawTracepoint
    };
    let prog = vm
        .load(Program::new(code, ptype).with_map(smap.clone()))
        .unwrap_or_else(|e| panic!("bpfvm loads the {prog_type:?} program: {e}"));
    let input = if skb {
        Input::packet(frame)
    } else {
        Input::context(Vec::new())
    };
    let out = vm
        .test_run(
            &prog,
            &VmTestRun {
                input,
                repeat: 1,
                cpu: CpuId(0),
            },
        )
        .unwrap();
    assert_eq!(out.retval, 0);
    let s = words(HostMap::lookup(&*smap, &key, 0).unwrap());
    (k, s)
}

#[test]
fn cgroup_ids_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let Some(path) = own_cgroup_path() else {
        println!("skipped: this process's cgroup2 path cannot be read");
        return;
    };
    let compare = |path: &[u64]| {
        for prog_type in [ProgType::SchedCls, ProgType::RawTracepoint] {
            let (k, s) = run(prog_type, path);
            println!("{prog_type:?} (cgroup path {path:?}): kernel {k:?}, bpfvm {s:?}");
            assert_eq!(k, s, "{prog_type:?}");
            // The answers say something: the cgroup's own id, the root at level 0.
            assert_eq!(k[0], *path.last().unwrap());
            assert_eq!(k[1], 1);
        }
    };
    compare(&path);
    // Two levels deeper, so that levels 1 and 2 name real ancestors. In one test: the move
    // is the whole process's.
    match Nested::enter() {
        Ok(nested) => {
            let deeper = own_cgroup_path().expect("the new cgroup's path");
            assert_eq!(deeper.len(), path.len() + 2, "{deeper:?}");
            compare(&deeper);
            drop(nested);
        }
        Err(why) => println!("SKIP the nested cgroup: {why}"),
    }
}
