//! Checks STACK_TRACE and CGROUP_ARRAY against the kernel: creation errnos over shapes and
//! flags, every host command on both (lookups, updates, deletes, `get_next_key`), a
//! cgroup array holding real cgroup2 directories in the kernel and their simulated ids in
//! bpfvm read by `bpf_skb_under_cgroup` (tc) and `bpf_current_task_under_cgroup` (XDP)
//! under `BPF_PROG_TEST_RUN`, and the verifier's verdicts on which helpers may take these
//! maps (`check_map_func_compatibility`), message included.
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;
use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec};
use bpfvm::{CpuId, Input, Privilege, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, Insn};
use bpfvm_conformance::kernel::consts::{create, MapType, ProgType};
use bpfvm_conformance::kernel::diff::HostMap;
use bpfvm_conformance::kernel::{self, load_object_program, Errno, KernelMap, MapDef, TestRun};

fn def(map_type: MapType, ks: u32, vs: u32, max: u32, flags: u32) -> MapDef {
    MapDef {
        map_type,
        key_size: ks,
        value_size: vs,
        max_entries: max,
        map_flags: flags,
    }
}

fn sim(d: MapDef, n: u32) -> Result<Map, Errno> {
    Map::create(
        MapSpec::new(d.map_type, d.key_size, d.value_size, d.max_entries).with_flags(d.map_flags),
        n,
    )
    .map_err(|e| Errno(e.errno()))
}

/// `BPF_F_STACK_BUILD_ID`.
const BUILD_ID: u32 = 1 << 5;

#[test]
fn creation_errnos_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let mut compared = 0;
    let mut differ = 0;
    for t in [MapType::StackTrace, MapType::CgroupArray] {
        for (ks, vs) in [
            (4, 4),
            (4, 8),
            (4, 12),
            (8, 8),
            (0, 8),
            (4, 0),
            (4, 64),
            (4, 96),
        ] {
            for max in [0, 1, 5, 64] {
                for flags in [
                    0,
                    create::NO_PREALLOC,
                    create::NUMA_NODE,
                    create::RDONLY,
                    create::WRONLY,
                    create::RDONLY_PROG,
                    create::WRONLY_PROG,
                    create::ZERO_SEED,
                    create::MMAPABLE,
                    BUILD_ID,
                ] {
                    let d = def(t, ks, vs, max, flags);
                    let k = KernelMap::create(d).map(drop);
                    let s = sim(d, n).map(drop);
                    compared += 1;
                    if k != s {
                        differ += 1;
                        println!("DIFFERENCE {d:?}: kernel {k:?}, bpfvm {s:?}");
                    }
                }
            }
        }
    }
    // The frame limits (127 frames of 8 bytes, 127 build-id records of 32).
    for (vs, flags) in [
        (127 * 8, 0),
        (128 * 8, 0),
        (127 * 32, BUILD_ID),
        (128 * 32, BUILD_ID),
    ] {
        let d = def(MapType::StackTrace, 4, vs, 4, flags);
        let (k, s) = (KernelMap::create(d).map(drop), sim(d, n).map(drop));
        compared += 1;
        if k != s {
            differ += 1;
            println!("DIFFERENCE {d:?}: kernel {k:?}, bpfvm {s:?}");
        }
    }
    println!("{compared} creations compared");
    assert_eq!(differ, 0, "creation errnos differ");
}

fn same<T: PartialEq + std::fmt::Debug>(what: &str, k: Result<T, Errno>, s: Result<T, Errno>) {
    assert_eq!(k, s, "{what}: kernel (left) and bpfvm (right) differ");
}

#[test]
fn empty_stack_map_commands_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let d = def(MapType::StackTrace, 4, 32, 5, 0);
    let k = KernelMap::create(d).unwrap();
    let s = sim(d, n).unwrap();
    for id in [0u32, 3, 7, 8, 9, u32::MAX] {
        let key = id.to_ne_bytes();
        same(
            &format!("lookup {id}"),
            k.lookup(&key, 0),
            HostMap::lookup(&s, &key, 0),
        );
        same(
            &format!("delete {id}"),
            k.delete(&key),
            HostMap::delete(&s, &key),
        );
        same(
            &format!("get_next_key {id}"),
            k.get_next_key(Some(&key)),
            HostMap::get_next_key(&s, Some(&key)),
        );
        for flags in [0, 1, 2] {
            same(
                &format!("update {id} flags {flags}"),
                k.update(&key, &[0; 32], flags),
                HostMap::update(&s, &key, &[0; 32], flags),
            );
        }
    }
    same(
        "first key",
        k.get_next_key(None),
        HostMap::get_next_key(&s, None),
    );
    same(
        "lookup_and_delete",
        k.lookup_and_delete(&0u32.to_ne_bytes(), 0),
        HostMap::lookup_and_delete(&s, &0u32.to_ne_bytes(), 0),
    );
}

/// A cgroup2 directory made for the test, removed when dropped.
struct TempCgroup {
    path: std::path::PathBuf,
    dir: std::fs::File,
}

impl TempCgroup {
    fn new(root: &std::path::Path) -> Option<TempCgroup> {
        let path = root.join(format!("bpfvm_trace_maps_{}", std::process::id()));
        std::fs::create_dir(&path).ok()?;
        let dir = std::fs::File::open(&path).ok()?;
        Some(TempCgroup { path, dir })
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Where cgroup2 is mounted, if it is.
fn cgroup2_root() -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| std::path::PathBuf::from(f[1]))
    })
}

/// Whether this process is in the root of the cgroup2 hierarchy (`0::/`).
fn in_cgroup2_root() -> bool {
    std::fs::read_to_string("/proc/self/cgroup").is_ok_and(|s| s.lines().any(|l| l == "0::/"))
}

/// The simulated id bpfvm stores for the test's child cgroup.
const CHILD_ID: u64 = 4242;

struct CgroupMaps {
    k: KernelMap,
    s: Arc<Map>,
    _child: TempCgroup,
    _root: std::fs::File,
}

/// A 3-entry cgroup array: [0] the cgroup2 root, [1] a new child cgroup, [2] empty, in the
/// kernel (directory fds) and in bpfvm (simulated ids 1 and [`CHILD_ID`]), the host
/// commands compared on the way.
fn cgroup_maps(n: u32) -> Option<CgroupMaps> {
    let root = cgroup2_root()?;
    if !in_cgroup2_root() {
        println!("SKIP: this process is not in the cgroup2 root");
        return None;
    }
    let child = TempCgroup::new(&root)?;
    let root_dir = std::fs::File::open(&root).ok()?;
    let d = def(MapType::CgroupArray, 4, 4, 3, 0);
    let k = KernelMap::create(d).unwrap();
    let s = Arc::new(sim(d, n).unwrap());
    let fd = |f: &std::fs::File| (f.as_raw_fd() as u32).to_ne_bytes();
    let key = |i: u32| i.to_ne_bytes();
    // Values that are not cgroup fds, then bad flags and indexes.
    let devnull = std::fs::File::open("/dev/null").unwrap();
    same(
        "update with a non-cgroup fd",
        k.update(&key(0), &fd(&devnull), 0),
        HostMap::update(&*s, &key(0), &fd(&devnull), 0),
    );
    same(
        "update flags 1",
        k.update(&key(0), &fd(&root_dir), 1),
        s.cgroup_array_update(0, 1, 1).map_err(|e| Errno(e.errno())),
    );
    same(
        "update past the end",
        k.update(&key(3), &fd(&root_dir), 0),
        s.cgroup_array_update(3, 1, 0).map_err(|e| Errno(e.errno())),
    );
    same(
        "update root",
        k.update(&key(0), &fd(&root_dir), 0),
        s.cgroup_array_update(0, 1, 0).map_err(|e| Errno(e.errno())),
    );
    same(
        "update child",
        k.update(&key(1), &fd(&child.dir), 0),
        s.cgroup_array_update(1, CHILD_ID, 0)
            .map_err(|e| Errno(e.errno())),
    );
    for i in [0, 2, 3] {
        same(
            &format!("lookup {i}"),
            k.lookup(&key(i), 0),
            HostMap::lookup(&*s, &key(i), 0),
        );
        same(
            &format!("next key after {i}"),
            k.get_next_key(Some(&key(i))),
            HostMap::get_next_key(&*s, Some(&key(i))),
        );
    }
    same("delete 2", k.delete(&key(2)), HostMap::delete(&*s, &key(2)));
    same(
        "lookup_and_delete 0",
        k.lookup_and_delete(&key(0), 0),
        HostMap::lookup_and_delete(&*s, &key(0), 0),
    );
    same("delete 3", k.delete(&key(3)), HostMap::delete(&*s, &key(3)));
    Some(CgroupMaps {
        k,
        s,
        _child: child,
        _root: root_dir,
    })
}

#[test]
fn cgroup_array_commands_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let Some(m) = cgroup_maps(n) else {
        println!("SKIP: no cgroup2 hierarchy to make a cgroup in");
        return;
    };
    // Delete a filled slot, then the same slot again.
    let key = 1u32.to_ne_bytes();
    same("delete 1", m.k.delete(&key), HostMap::delete(&*m.s, &key));
    same(
        "delete 1 again",
        m.k.delete(&key),
        HostMap::delete(&*m.s, &key),
    );
}

/// `r0 = helper(..., map0, index)`: 33 takes the context first, 37 does not.
fn under_prog(helper: i32, index: i32) -> Vec<u8> {
    let pre: Vec<Insn> = if helper == 33 {
        vec![asm::mov64_reg(6, 1)]
    } else {
        vec![]
    };
    let mut tail = vec![];
    if helper == 33 {
        tail.push(asm::mov64_reg(1, 6));
        tail.push(asm::mov64_reg(2, 1));
    }
    let load = asm::ld_map(if helper == 33 { 2 } else { 1 }, 0);
    let idx = asm::mov64_imm(if helper == 33 { 3 } else { 2 }, index);
    if helper == 33 {
        asm::image(&[
            &pre,
            &load,
            &[asm::mov64_reg(1, 6), idx, asm::call(33), asm::exit()],
        ])
    } else {
        asm::image(&[&load, &[idx, asm::call(37), asm::exit()]])
    }
}

fn ipv4_frame() -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[12] = 0x08;
    f[14] = 0x45;
    f
}

#[test]
fn under_cgroup_helpers_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let Some(m) = cgroup_maps(n) else {
        println!("SKIP: no cgroup2 hierarchy to make a cgroup in");
        return;
    };
    let vm = Vm::builder().cpus(n).privilege(Privilege::Root).build();
    let mut compared = 0;
    for (helper, kt, st) in [
        (33, ProgType::SchedCls, ProgramType::SchedCls),
        (37, ProgType::Xdp, ProgramType::Xdp),
    ] {
        let mut seen = Vec::new();
        for index in [0, 1, 2, 3, -1] {
            let code = under_prog(helper, index);
            let kprog = load_object_program("under", kt, 0, &code, &[&m.k], "GPL")
                .unwrap_or_else(|e| panic!("the kernel loads helper {helper}: {e}"));
            let k = kprog
                .test_run(&TestRun {
                    data_in: ipv4_frame(),
                    data_out_size: 256,
                    ..TestRun::default()
                })
                .unwrap()
                .retval;
            let prog = vm
                .load(Program::new(code, st).with_map(m.s.clone()))
                .unwrap_or_else(|e| panic!("bpfvm loads helper {helper}: {e}"));
            let s = vm
                .test_run(
                    &prog,
                    &VmTestRun {
                        input: Input::packet(ipv4_frame()),
                        repeat: 1,
                        cpu: CpuId(0),
                    },
                )
                .unwrap()
                .retval as u32;
            assert_eq!(k as i32, s as i32, "helper {helper} index {index}");
            seen.push(k as i32);
            compared += 1;
        }
        // Root 1, child 0, empty -EAGAIN, past the end -E2BIG (also for index -1 = u32::MAX).
        assert_eq!(seen, [1, 0, -11, -7, -7], "helper {helper}");
    }
    println!("{compared} runs compared");
}

/// One verdict: (program type, code, maps, what the kernel log must say when it refuses).
fn verdict(
    vm: &Vm,
    kt: ProgType,
    st: ProgramType,
    code: &[u8],
    kmap: &KernelMap,
    smap: &Arc<Map>,
) -> (Result<(), String>, Result<(), String>) {
    let k = load_object_program("verdict", kt, 0, code, &[kmap], "GPL").map(drop);
    let s = vm
        .load(Program::new(code.to_vec(), st).with_map(smap.clone()))
        .map(drop)
        .map_err(|e| e.to_string());
    (k, s)
}

#[test]
fn map_and_helper_compatibility_verdicts_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let vm = Vm::builder().cpus(n).privilege(Privilege::Root).build();
    let maps = [
        def(MapType::StackTrace, 4, 32, 4, 0),
        def(MapType::CgroupArray, 4, 4, 2, 0),
        def(MapType::Array, 4, 32, 4, 0),
    ];
    // r1 = ctx kept in r6; r2 = map; the helper's own arguments.
    let lookup = |_: ()| {
        asm::image(&[
            &[
                asm::st_w(10, -4, 0),
                asm::mov64_reg(2, 10),
                asm::add64_imm(2, -4),
            ],
            &asm::ld_map(1, 0),
            &[asm::call(1), asm::mov64_imm(0, 0), asm::exit()],
        ])
    };
    let stackid = |_: ()| {
        asm::image(&[
            &asm::ld_map(2, 0),
            &[
                asm::mov64_imm(3, 0),
                asm::call(27),
                asm::mov64_imm(0, 0),
                asm::exit(),
            ],
        ])
    };
    let get_stack = asm::image(&[&[
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -32),
        asm::mov64_imm(3, 32),
        asm::mov64_imm(4, 0),
        asm::call(67),
        asm::mov64_imm(0, 0),
        asm::exit(),
    ]]);
    let task_under = |_: ()| {
        asm::image(&[
            &asm::ld_map(1, 0),
            &[
                asm::mov64_imm(2, 0),
                asm::call(37),
                asm::mov64_imm(0, 0),
                asm::exit(),
            ],
        ])
    };
    let mut compared = 0;
    let mut refused = 0;
    for d in maps {
        let kmap = KernelMap::create(d).unwrap();
        let smap = Arc::new(sim(d, n).unwrap());
        let cases: [(ProgType, ProgramType, Vec<u8>, &str); 5] = [
            (
                ProgType::SocketFilter,
                ProgramType::SocketFilter,
                lookup(()),
                "lookup",
            ),
            (
                ProgType::Kprobe,
                ProgramType::Kprobe,
                stackid(()),
                "get_stackid",
            ),
            (
                ProgType::Kprobe,
                ProgramType::Kprobe,
                get_stack.clone(),
                "get_stack",
            ),
            (
                ProgType::Xdp,
                ProgramType::Xdp,
                task_under(()),
                "current_task_under_cgroup",
            ),
            (
                ProgType::SocketFilter,
                ProgramType::SocketFilter,
                stackid(()),
                "get_stackid",
            ),
        ];
        for (kt, st, code, what) in cases {
            let (k, s) = verdict(&vm, kt, st, &code, &kmap, &smap);
            compared += 1;
            match (&k, &s) {
                (Ok(()), Ok(())) => {}
                (Err(klog), Err(serr)) => {
                    refused += 1;
                    // The kernel's last log line says why; bpfvm must say the same.
                    let why = klog
                        .lines()
                        .rev()
                        .find(|l| {
                            l.contains("cannot pass map_type")
                                || l.contains("cannot use helper")
                                || l.contains("unknown func")
                        })
                        .unwrap_or_else(|| panic!("{what} on {d:?}: kernel log {klog}"));
                    let why = why.trim();
                    assert!(
                        serr.contains(why)
                            || (why.starts_with("unknown func") && serr.contains("unknown func")),
                        "{what} on {:?}: kernel says {why:?}, bpfvm {serr:?}",
                        d.map_type
                    );
                }
                _ => panic!("{what} on {:?}: kernel {k:?}, bpfvm {s:?}", d.map_type),
            }
        }
    }
    println!("{compared} verdicts compared, {refused} refusals");
    assert!(refused >= 6, "the refusals are exercised ({refused})");
}
