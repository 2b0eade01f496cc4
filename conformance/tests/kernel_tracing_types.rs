//! The tracing program types against the kernel (issue 13): the context access rules of
//! `raw_tracepoint`, `perf_event` and `syscall` programs (accepted/refused pairs judged by
//! bpfvm's verifier and the kernel's), and the test runs the kernel has for them —
//! `raw_tracepoint` (arguments in `ctx_in`, at most 12; `BPF_F_TEST_RUN_ON_CPU`) and
//! `syscall` (the context read and written back) — compared with `Vm::test_run` on the
//! programs of `vm/tests/fixtures/src/tracing.bpf.c`. (`tracing` programs need an attach
//! target's BTF to load and the kernel runs them only attached to its test functions;
//! `perf_event` has no test run: vm/tests/tracing_programs.rs covers both.)
#![cfg(target_os = "linux")]

use bpfvm::loader::{Btf, Object};
use bpfvm::{CpuId, Input, Privilege, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::consts::{ProgType as KProgType, SLEEPABLE, TEST_RUN_ON_CPU};
use bpfvm_conformance::kernel::{self, KernelProg, TestRun};
use bpfvm_conformance::verdicts::{asm, compare, Case};
use bpfvm_verifier::ProgType;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures");

fn object() -> Object {
    let target =
        Btf::parse_any(&std::fs::read(format!("{FIXTURES}/tracing_target.btf")).unwrap()).unwrap();
    let bytes = std::fs::read(format!("{FIXTURES}/tracing.o")).unwrap();
    Object::parse_with_btf("tracing", &bytes, Some(&target)).unwrap()
}

fn bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn args(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

#[test]
fn context_rules_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // (name, type, program, kernel accepts)
    let cases: &[(&str, ProgType, &str, bool)] = &[
        (
            "raw_tp: last argument",
            ProgType::RawTracepoint,
            "ldxdw r0, [r1+88]\nexit",
            true,
        ),
        (
            "raw_tp: past 12 arguments",
            ProgType::RawTracepoint,
            "ldxdw r0, [r1+96]\nexit",
            false,
        ),
        (
            "raw_tp: narrow aligned read",
            ProgType::RawTracepoint,
            "ldxw r0, [r1+4]\nexit",
            true,
        ),
        (
            "raw_tp: misaligned read",
            ProgType::RawTracepoint,
            "ldxdw r0, [r1+4]\nexit",
            false,
        ),
        (
            "raw_tp: write",
            ProgType::RawTracepoint,
            "stdw [r1+0], 1\nmov64 r0, 0\nexit",
            false,
        ),
        (
            "raw_tp: negative offset",
            ProgType::RawTracepoint,
            "ldxdw r0, [r1-8]\nexit",
            false,
        ),
        (
            "perf_event: regs",
            ProgType::PerfEvent,
            "ldxdw r0, [r1+0]\nexit",
            true,
        ),
        (
            "perf_event: narrow regs",
            ProgType::PerfEvent,
            "ldxw r0, [r1+0]\nexit",
            false,
        ),
        (
            "perf_event: narrow sample_period",
            ProgType::PerfEvent,
            "ldxw r0, [r1+168]\nexit",
            true,
        ),
        (
            "perf_event: upper sample_period",
            ProgType::PerfEvent,
            "ldxw r0, [r1+172]\nexit",
            true,
        ),
        (
            "perf_event: byte of addr",
            ProgType::PerfEvent,
            "ldxb r0, [r1+177]\nexit",
            true,
        ),
        (
            "perf_event: past the end",
            ProgType::PerfEvent,
            "ldxdw r0, [r1+184]\nexit",
            false,
        ),
        (
            "perf_event: write",
            ProgType::PerfEvent,
            "stdw [r1+168], 1\nmov64 r0, 0\nexit",
            false,
        ),
    ];
    let mut failures = Vec::new();
    for &(name, t, src, accepts) in cases {
        let case = Case::new(name, t, asm(src));
        let cmp = compare(&case, Privilege::Root).unwrap_or_else(|e| panic!("{name}: {e}"));
        println!("{}", cmp.describe());
        if cmp.kernel_errno.is_none() != accepts {
            failures.push(format!(
                "{name}: the kernel's verdict changed: {}",
                cmp.describe()
            ));
        } else if let Some(d) = cmp.disagreement() {
            failures.push(format!("{name}: {d}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn syscall_context_rules_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    // Syscall programs load sleepable only, so they are loaded here with the flag.
    let cases: &[(&str, &str, bool)] = &[
        ("read", "ldxdw r0, [r1+0]\nexit", true),
        ("write", "stw [r1+4], 7\nmov64 r0, 0\nexit", true),
        ("far read", "ldxb r0, [r1+32000]\nexit", true),
        (
            "modified context pointer",
            "add64 r1, 8\nldxb r0, [r1+0]\nexit",
            false,
        ),
        ("misaligned read", "ldxw r0, [r1+2]\nexit", false),
        ("negative offset", "ldxw r0, [r1-4]\nexit", false),
    ];
    let mut failures = Vec::new();
    for &(name, src, accepts) in cases {
        let insns = asm(src);
        let mut log = String::new();
        let kernel =
            KernelProg::load_with_flags(KProgType::Syscall, 0, SLEEPABLE, &insns, "GPL", &mut log);
        let ours = Case::new(name, ProgType::Syscall, insns).ours(Privilege::Root);
        println!(
            "{name}: kernel {:?}, bpfvm {:?}",
            kernel.as_ref().err(),
            ours.as_ref().err()
        );
        if kernel.is_ok() != accepts {
            failures.push(format!("{name}: the kernel's verdict changed ({log})"));
        } else if kernel.is_ok() != ours.is_ok() {
            failures.push(format!(
                "{name}: verdicts differ: kernel {log:?}, bpfvm {ours:?}"
            ));
        } else if let (Err(k), Err(o)) = (&kernel, &ours) {
            if k.0 != o.errno || !log.contains(&o.message) {
                failures.push(format!(
                    "{name}: errno or message differ: kernel {k:?} {log:?}, bpfvm {o:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn root_vm(ncpus: u32) -> Vm {
    Vm::builder().cpus(ncpus).privilege(Privilege::Root).build()
}

#[test]
fn raw_tracepoint_test_runs_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let obj = object();
    let maps = obj.create_maps(1).unwrap();
    let def = obj.program("on_raw").unwrap();
    let mut log = String::new();
    let kprog = KernelProg::load(
        KProgType::RawTracepoint,
        0,
        &bytes(&def.insns),
        "GPL",
        &mut log,
    )
    .unwrap_or_else(|e| panic!("kernel load: {e:?}: {log}"));
    let vm = root_vm(1);
    let prog = vm.load(obj.vm_program("on_raw", &maps).unwrap()).unwrap();
    assert_eq!(prog.program().prog_type(), ProgramType::RawTracepoint);
    let mut ctx_96 = args(&[7, 9]);
    ctx_96.resize(96, 0xff);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("two arguments", args(&[5, 100])),
        ("wrapping", args(&[u64::MAX, 3])),
        ("twelve arguments", ctx_96.clone()),
        ("thirteen arguments", args(&[1; 13])),
        ("97 bytes", {
            let mut c = ctx_96.clone();
            c.push(0);
            c
        }),
        // Shorter than the arguments the program reads (max_ctx_offset 16): EINVAL.
        ("one argument", args(&[1])),
        ("no context", Vec::new()),
    ];
    let mut failures = Vec::new();
    for (name, ctx) in cases {
        let k = kprog.test_run(&TestRun {
            ctx_in: ctx.clone(),
            ..TestRun::default()
        });
        let ours = vm.test_run(
            &prog,
            &VmTestRun {
                input: Input::context(ctx),
                repeat: 1,
                cpu: CpuId(0),
            },
        );
        println!(
            "{name}: kernel {k:?}, bpfvm {:?}",
            ours.as_ref().map(|r| r.retval)
        );
        match (k, ours) {
            (Ok(k), Ok(o)) if u64::from(k.retval) == o.retval & 0xffff_ffff => {}
            (Err(k), Err(o)) if k.0 == o.errno() => {}
            (k, o) => failures.push(format!("{name}: kernel {k:?}, bpfvm {o:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn raw_tracepoint_runs_on_the_cpu_asked_for() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let ncpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    if ncpus < 2 {
        println!("skipped: one CPU");
        return;
    }
    // r0 = bpf_get_smp_processor_id()
    let insns = asm("call 8\nexit");
    let mut log = String::new();
    let kprog = KernelProg::load(KProgType::RawTracepoint, 0, &insns, "GPL", &mut log)
        .unwrap_or_else(|e| panic!("kernel load: {e:?}: {log}"));
    let k = kprog
        .test_run_flags(&TestRun::default(), TEST_RUN_ON_CPU, 1)
        .unwrap();
    let vm = root_vm(2);
    let words: Vec<u64> = insns
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let prog = vm
        .load(bpfvm::Program::from_words(
            &words,
            ProgramType::RawTracepoint,
        ))
        .unwrap();
    let ours = vm
        .test_run(
            &prog,
            &VmTestRun {
                input: Input::context(Vec::new()),
                repeat: 1,
                cpu: CpuId(1),
            },
        )
        .unwrap();
    assert_eq!((k.retval, ours.retval), (1, 1));
}

#[test]
fn syscall_test_runs_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let obj = object();
    let maps = obj.create_maps(1).unwrap();
    let def = obj.program("on_syscall").unwrap();
    let mut log = String::new();
    let kprog = KernelProg::load_with_flags(
        KProgType::Syscall,
        0,
        SLEEPABLE,
        &bytes(&def.insns),
        "GPL",
        &mut log,
    )
    .unwrap_or_else(|e| panic!("kernel load: {e:?}: {log}"));
    let vm = root_vm(1);
    let prog = vm
        .load(obj.vm_program("on_syscall", &maps).unwrap())
        .unwrap();
    let ctx = |a: i32, b: i32, extra: usize| {
        let mut c: Vec<u8> = [a, b, -1].iter().flat_map(|v| v.to_ne_bytes()).collect();
        c.resize(12 + extra, 0x5a);
        c
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("20 + 22", ctx(20, 22, 0)),
        ("negative", ctx(-7, 3, 0)),
        ("longer buffer", ctx(1, 2, 20)),
        ("largest buffer", ctx(1, 2, 65_535 - 12)),
        ("too large", ctx(1, 2, 65_536 - 12)),
        ("shorter than read", ctx(1, 2, 0)[..8].to_vec()),
    ];
    let mut failures = Vec::new();
    for (name, c) in cases {
        let mut kctx = c.clone();
        let k = kprog.test_run_syscall(&mut kctx);
        let ours = vm.test_run(
            &prog,
            &VmTestRun {
                input: Input::context(c),
                repeat: 1,
                cpu: CpuId(0),
            },
        );
        println!(
            "{name}: kernel {k:?}, bpfvm {:?}",
            ours.as_ref().map(|r| r.retval)
        );
        match (k, ours) {
            (Ok(k), Ok(o)) if u64::from(k) == o.retval & 0xffff_ffff && kctx == o.ctx_out => {}
            (Err(k), Err(o)) if k.0 == o.errno() => {}
            (k, o) => failures.push(format!("{name}: kernel {k:?}, bpfvm {o:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The running kernel's BTF (`/sys/kernel/btf/vmlinux`), or `None` (test skipped).
fn vmlinux() -> Option<Btf> {
    Btf::from_file("/sys/kernel/btf/vmlinux").ok()
}

/// The id of function `name` in `btf` (a BTF_KIND_FUNC).
fn func_id(btf: &Btf, name: &str) -> u32 {
    btf.types()
        .iter()
        .position(|t| matches!(t, bpfvm::loader::BtfType::Func { name: n, .. } if **n == *name))
        .unwrap_or_else(|| panic!("no {name} in vmlinux")) as u32
}

/// The id of typedef `name` in `btf`.
fn typedef_id(btf: &Btf, name: &str) -> u32 {
    btf.types()
        .iter()
        .position(|t| matches!(t, bpfvm::loader::BtfType::Typedef { name: n, .. } if **n == *name))
        .unwrap_or_else(|| panic!("no {name} in vmlinux")) as u32
}

/// Tracing context rules against the kernel's: tp_btf on `sched_switch`, and
/// fentry/fexit/fmod_ret on the kernel's `bpf_fentry_test*` functions (those need a kernel
/// with trampolines: the one these tests were written on refuses every fentry program with
/// EPERM, so those cases have not run there — their expected kernel verdicts come from the
/// kernel's source).
#[test]
fn tracing_context_rules_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let Some(btf) = vmlinux() else {
        println!("skipped: no /sys/kernel/btf/vmlinux");
        return;
    };
    let mut log = String::new();
    let trampolines = KernelProg::load_attach_btf(
        KProgType::Tracing,
        24,
        func_id(&btf, "bpf_fentry_test2"),
        &asm("mov64 r0, 0\nexit"),
        "GPL",
        &mut log,
    );
    if let Err(e) = &trampolines {
        println!("fentry/fexit/fmod_ret cases skipped: this kernel refuses a valid fentry program ({e:?}: {log})");
    }
    const R0: &str = "mov64 r0, 0\nexit";
    // (section, attach type, program, kernel accepts, bpfvm refuses as not modelled)
    let cases: Vec<(&str, u32, String, bool, bool)> = vec![
        // int bpf_fentry_test2(int a, u64 b)
        (
            "fentry/bpf_fentry_test2",
            24,
            format!("ldxdw r2, [r1+8]\n{R0}"),
            true,
            false,
        ),
        (
            "fentry/bpf_fentry_test2",
            24,
            format!("ldxdw r2, [r1+16]\n{R0}"),
            false,
            false,
        ),
        (
            "fexit/bpf_fentry_test2",
            25,
            format!("ldxdw r2, [r1+16]\n{R0}"),
            true,
            false,
        ),
        (
            "fexit/bpf_fentry_test2",
            25,
            format!("ldxdw r2, [r1+24]\n{R0}"),
            false,
            false,
        ),
        (
            "fentry/bpf_fentry_test2",
            24,
            format!("ldxdw r2, [r1+4]\n{R0}"),
            false,
            false,
        ),
        (
            "fentry/bpf_fentry_test2",
            24,
            format!("stdw [r1+0], 1\n{R0}"),
            false,
            false,
        ),
        (
            "fentry/bpf_fentry_test2",
            24,
            "mov64 r0, 1\nexit".into(),
            false,
            false,
        ),
        (
            "fexit/bpf_fentry_test2",
            25,
            "mov64 r0, 1\nexit".into(),
            false,
            false,
        ),
        (
            "fmod_ret/bpf_fentry_test2",
            26,
            "mov64 r0, 1\nexit".into(),
            true,
            false,
        ),
        (
            "fentry/bpf_fentry_test2",
            24,
            format!("call 173\n{R0}"),
            true,
            false,
        ),
        // int bpf_fentry_test7(struct bpf_fentry_test_t *arg)
        (
            "fentry/bpf_fentry_test7",
            24,
            format!("ldxdw r2, [r1+0]\nldxdw r3, [r2+0]\n{R0}"),
            true,
            false,
        ),
        (
            "fentry/bpf_fentry_test7",
            24,
            format!("ldxdw r2, [r1+0]\nstdw [r2+0], 1\n{R0}"),
            false,
            false,
        ),
        (
            "fentry/bpf_fentry_test7",
            24,
            format!("call 158\nldxw r2, [r0+0]\n{R0}"),
            true,
            false,
        ),
        // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
        // unsigned int prev_state)
        (
            "tp_btf/sched_switch",
            23,
            format!("ldxdw r2, [r1+24]\n{R0}"),
            true,
            false,
        ),
        (
            "tp_btf/sched_switch",
            23,
            format!("ldxdw r2, [r1+32]\n{R0}"),
            false,
            false,
        ),
        (
            "tp_btf/sched_switch",
            23,
            format!("ldxw r2, [r1+4]\n{R0}"),
            false,
            false,
        ),
        (
            "tp_btf/sched_switch",
            23,
            format!("ldxw r2, [r1+0]\n{R0}"),
            true,
            false,
        ),
        (
            "tp_btf/sched_switch",
            23,
            format!("stdw [r1+0], 1\n{R0}"),
            false,
            false,
        ),
        (
            "tp_btf/sched_switch",
            23,
            "mov64 r0, 5\nexit".into(),
            true,
            false,
        ),
        (
            "tp_btf/sched_switch",
            23,
            format!("call 173\n{R0}"),
            false,
            false,
        ),
        (
            "tp_btf/sched_switch",
            23,
            format!("ldxdw r2, [r1+8]\nldxw r3, [r2+0]\n{R0}"),
            true,
            false,
        ),
        (
            "tp_btf/sched_switch",
            23,
            format!("ldxdw r2, [r1+8]\nstw [r2+0], 1\n{R0}"),
            false,
            false,
        ),
        (
            "tp_btf/sched_switch",
            23,
            format!("call 158\nldxw r2, [r0+0]\n{R0}"),
            true,
            false,
        ),
    ];
    let mut failures = Vec::new();
    let mut compared = 0;
    for (section, attach, src, accepts, unmodelled) in cases {
        let name = format!("{section}: {}", src.replace('\n', "; "));
        let target = section.split_once('/').unwrap().1;
        if attach != 23 && trampolines.is_err() {
            continue;
        }
        let target_id = if attach == 23 {
            typedef_id(&btf, &format!("btf_trace_{target}"))
        } else {
            func_id(&btf, target)
        };
        let insns = asm(&src);
        let mut log = String::new();
        let kernel = KernelProg::load_attach_btf(
            KProgType::Tracing,
            attach,
            target_id,
            &insns,
            "GPL",
            &mut log,
        );
        let c = bpfvm::loader::tracing_ctx(&btf, section, attach)
            .unwrap()
            .expect("a typed attach type");
        let mut case = Case::new(&name, ProgType::Tracing(c), insns);
        case.attach = Some(attach);
        case.kernel_btf = Some(btf.clone());
        let ours = case.ours(Privilege::Root);
        compared += 1;
        println!(
            "{name}: kernel {:?} {:?}, bpfvm {:?}",
            kernel.as_ref().err(),
            log.lines()
                .rev()
                .find(|l| !l.starts_with("processed") && !l.is_empty()),
            ours.as_ref().err().map(|e| &e.message)
        );
        if kernel.is_ok() != accepts {
            failures.push(format!("{name}: the kernel's verdict changed: {log}"));
            continue;
        }
        match (&kernel, &ours) {
            (_, Err(o)) if unmodelled => {
                if o.rule != bpfvm_verifier::Rule::Unsupported {
                    failures.push(format!("{name}: not refused as unmodelled: {o:?}"));
                }
            }
            (Ok(_), Ok(_)) => {}
            (Err(k), Err(o)) if k.0 == o.errno && log.contains(&o.message) => {}
            (k, o) => failures.push(format!("{name}: kernel {k:?} {log:?}, bpfvm {o:?}")),
        }
    }
    assert!(compared >= 10, "only {compared} cases compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The attach targets' prototypes in the running kernel's BTF give the contexts the
/// kernel's `btf_ctx_access` uses (the kernel's test functions and a raw tracepoint).
#[test]
fn vmlinux_prototypes_type_the_context() {
    let Some(btf) = vmlinux() else {
        println!("skipped: no /sys/kernel/btf/vmlinux");
        return;
    };
    let ctx = |section: &str, attach: u32| {
        let c = bpfvm::loader::tracing_ctx(&btf, section, attach)
            .unwrap_or_else(|e| panic!("{section}: {e}"))
            .unwrap();
        (c.nr_slots, c.btf_ptr_slots)
    };
    // int bpf_fentry_test2(int a, u64 b)
    assert_eq!(ctx("fentry/bpf_fentry_test2", 24), (2, 0));
    assert_eq!(ctx("fexit/bpf_fentry_test2", 25), (3, 0));
    // int bpf_fentry_test7(struct bpf_fentry_test_t *arg)
    assert_eq!(ctx("fentry/bpf_fentry_test7", 24), (1, 0b1));
    // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
    // unsigned int prev_state), after the tracepoint's `void *__data`.
    assert_eq!(ctx("tp_btf/sched_switch", 23), (4, 0b0110));
    assert!(bpfvm::loader::tracing_ctx(&btf, "fentry/bpfvm_no_such_function", 24).is_err());
}
