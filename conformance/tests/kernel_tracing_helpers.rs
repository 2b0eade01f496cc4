//! Checks the tracing helpers an XDP program may call (as root) against the kernel: probe
//! reads 112-115 into a map value — from this process's memory (bpfvm's task gets the same
//! bytes at the same address), NULL, unmapped, kernel and non-canonical addresses, sizes 0
//! and cut strings — must give the same return values and leave the same bytes in the map;
//! `bpf_trace_vprintk` (177) must return the same length or `-EINVAL` for each format and
//! argument array; and the task helpers 14/15/16 must report the same ids and name once
//! bpfvm's task is set to the thread that ran the kernel's test run.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType as VmMapType};
use bpfvm::task::{MemoryImage, Task};
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm::{self, Insn};
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::diff::HostMap;
use bpfvm_conformance::kernel::{self, load_object_program, KernelMap, MapDef, TestRun};

const VALUE: u32 = 64;

/// `v = lookup(map0, &0); if (!v) return 0; return body(v in r1)`.
fn with_value(body: &[Insn]) -> Vec<u8> {
    let mut v: Vec<Insn> = vec![asm::st_w(10, -4, 0)];
    v.extend(asm::ld_map(1, 0));
    v.extend([
        asm::mov64_reg(2, 10),
        asm::add64_imm(2, -4),
        asm::call(1),
        asm::jne_imm(0, 0, 1),
        asm::exit(),
        asm::mov64_reg(1, 0),
    ]);
    v.extend(body);
    asm::image(&[&v])
}

/// `return helper(v, size, src)`.
fn probe(helper: i32, size: i32, src: u64) -> Vec<u8> {
    let mut body = vec![asm::mov64_imm(2, size)];
    body.extend(asm::ld_imm64(3, src));
    body.extend([asm::call(helper), asm::exit()]);
    with_value(&body)
}

/// One map and one program, on both sides; the map value starts as 0xaa bytes.
struct Both {
    kmap: KernelMap,
    smap: Arc<Map>,
    vm: Vm,
}

impl Both {
    fn new(vm: Vm) -> Both {
        let n = kernel::possible_cpus().unwrap();
        let def = MapDef {
            map_type: MapType::Array,
            key_size: 4,
            value_size: VALUE,
            max_entries: 1,
            map_flags: 0,
        };
        let kmap = KernelMap::create(def).unwrap();
        let smap = Arc::new(Map::create(MapSpec::new(VmMapType::Array, 4, VALUE, 1), n).unwrap());
        Both { kmap, smap, vm }
    }

    /// Runs `code` on CPU 0 on both sides: `Err` with the kernel's verifier log when the
    /// kernel refuses it, else the return values and the map values after.
    fn run(&self, code: Vec<u8>) -> Result<((u32, Vec<u8>), (u32, Vec<u8>)), String> {
        let key = 0u32.to_ne_bytes();
        for m in [&self.kmap as &dyn HostMap, &*self.smap] {
            m.update(&key, &[0xaa; VALUE as usize], 0).unwrap();
        }
        let kprog = load_object_program("p", ProgType::Xdp, 0, &code, &[&self.kmap], "GPL")?;
        let k = kprog
            .test_run_on_cpu(
                0,
                &TestRun {
                    data_in: vec![0; 64],
                    ..TestRun::default()
                },
            )
            .unwrap()
            .retval;
        let prog = self
            .vm
            .load(Program::new(code, ProgramType::Xdp).with_map(self.smap.clone()))
            .unwrap();
        let run = VmTestRun {
            input: Input::packet(vec![0; 64]),
            repeat: 1,
            cpu: CpuId(0),
        };
        let s = self.vm.test_run(&prog, &run).unwrap().retval as u32;
        Ok((
            (k, self.kmap.lookup(&key, 0).unwrap()),
            (s, HostMap::lookup(&*self.smap, &key, 0).unwrap()),
        ))
    }
}

#[test]
fn probe_reads_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // User memory of this process, resident (written): the kernel's test run reads it as
    // the current task's; bpfvm's task on CPU 0 gets the same bytes at the same address.
    // The image covers the whole 64-byte buffer, as the kernel may read whole words past a
    // string's NUL.
    let mut user: Vec<u8> = b"user\0data and then some more text\0".to_vec();
    user.resize(64, 0x55);
    let ua = user.as_ptr() as u64;
    let n = kernel::possible_cpus().unwrap();
    let vm = Vm::builder().cpus(n).build();
    vm.set_task(
        CpuId(0),
        Task {
            user_memory: MemoryImage::new().with(ua, user.clone()),
            ..Task::for_cpu(0)
        },
    )
    .unwrap();
    let both = Both::new(vm);
    let unmapped_kernel = 0xffff_ffff_ffff_f000u64;
    let cases: Vec<(i32, i32, u64)> = vec![
        // probe_read_user: the buffer, part of it, NULL, an unmapped page, a kernel address.
        (112, 8, ua),
        (112, 3, ua + 5),
        (112, 8, 0),
        (112, 8, 0x1000),
        (112, 8, unmapped_kernel),
        (112, 0, ua),
        // probe_read_kernel: user addresses and NULL are ERANGE, non-canonical too.
        (113, 8, ua),
        (113, 8, 0),
        (113, 8, 0x8000_0000_0000_0000),
        (113, 8, unmapped_kernel),
        (113, 0, 0),
        // probe_read_user_str: whole, cut, size 0, NULL, unmapped.
        (114, 64, ua),
        (114, 3, ua),
        (114, 5, ua),
        (114, 7, ua),
        (114, 9, ua),
        (114, 8, ua + 1),
        (114, 64, ua + 5),
        (114, 4, ua + 5),
        (114, 0, ua),
        (114, 64, 0),
        (114, 64, 0x1000),
        (114, 64, unmapped_kernel),
        // probe_read_kernel_str.
        (115, 64, ua),
        (115, 64, 0),
        (115, 0, ua),
        (115, 64, 0x8000_0000_0000_0000),
        (115, 64, unmapped_kernel),
    ];
    let mut differ = 0;
    let mut errnos = std::collections::BTreeSet::new();
    for (helper, size, src) in cases {
        match both.run(probe(helper, size, src)) {
            Ok((k, s)) => {
                errnos.insert(k.0 as i32);
                if k != s {
                    differ += 1;
                    println!(
                        "DIFFERENCE helper {helper} size {size} src {src:#x}: kernel {k:?}, bpfvm {s:?}"
                    );
                }
            }
            Err(log) => {
                differ += 1;
                println!(
                    "REFUSED helper {helper} size {size}: {}",
                    log.lines().last().unwrap_or("")
                );
            }
        }
    }
    println!("return values seen: {errnos:?}");
    assert_eq!(differ, 0);
    for e in [0, -14, -34, 5, 3] {
        assert!(errnos.contains(&e), "{e} never returned: {errnos:?}");
    }
    drop(user);
}
