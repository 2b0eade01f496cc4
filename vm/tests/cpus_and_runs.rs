//! Checks the simulated CPUs and run APIs: the CPU a program sees, run-on-all in parallel,
//! event streams in per-CPU order, deterministic clock and PRNG per seed, captured trace
//! output, and user helpers with state.

mod common;

use std::sync::{Arc, Mutex};

use bpfvm::helpers::HelperContext;
use bpfvm::{CpuId, Input, Program, ProgramType, TestRun, Vm};
use common::*;

#[test]
fn any_number_of_cpus_and_each_run_sees_its_cpu() {
    for n in [1u32, 3, 8, 17] {
        let vm = Vm::builder().cpus(n).build();
        assert_eq!(vm.ncpus(), n);
        let prog = vm
            .load(Program::new(asm("call 8\nexit"), ProgramType::Unspecified))
            .unwrap();
        let all = vm.run_on_all(&prog, 5, &Input::empty()).unwrap();
        assert_eq!(all.len(), n as usize);
        for (cpu, vals) in all.iter().enumerate() {
            assert_eq!(vals, &vec![cpu as u64; 5]);
        }
    }
    assert_eq!(Vm::builder().cpus(0).build().ncpus(), 1);
    assert_eq!(Vm::default().ncpus(), 4);
}

#[test]
fn event_streams_keep_each_cpus_order() {
    let log: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let l = Arc::clone(&log);
    let vm = Vm::builder()
        .cpus(4)
        .helper(
            1000,
            "record",
            move |ctx: &mut HelperContext, a: [u64; 5]| {
                l.lock().unwrap().push((ctx.cpu() as u64, a[0]));
                Ok(a[0] * 10 + ctx.cpu() as u64)
            },
        )
        .unwrap()
        .build();
    // r1 = first 8 bytes of the context; return record(r1)
    let prog = vm
        .load(Program::new(
            asm("ldxdw r1, [r1]\ncall 1000\nexit"),
            ProgramType::Unspecified,
        ))
        .unwrap();
    let events: Vec<(CpuId, Input)> = (0..200u64)
        .map(|i| {
            (
                CpuId((i * 7 % 4) as u32),
                Input::context(i.to_le_bytes().to_vec()),
            )
        })
        .collect();
    let results = vm.run_events(&prog, &events);
    for (i, r) in results.iter().enumerate() {
        let cpu = events[i].0 .0 as u64;
        assert_eq!(r.as_ref().unwrap().retval, i as u64 * 10 + cpu);
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 200);
    for cpu in 0..4 {
        let seq: Vec<u64> = log
            .iter()
            .filter(|(c, _)| *c == cpu)
            .map(|(_, v)| *v)
            .collect();
        let mut sorted = seq.clone();
        sorted.sort_unstable();
        assert_eq!(seq, sorted, "cpu {cpu} ran its events out of order");
        assert_eq!(seq.len(), 50);
    }
    drop(log);
    // An event for a CPU that does not exist is an error for that event only.
    let r = vm.run_events(
        &prog,
        &[
            (CpuId(9), Input::context(vec![0; 8])),
            (CpuId(0), Input::context(vec![0; 8])),
        ],
    );
    assert!(r[0].is_err() && r[1].is_ok());
}

fn clock_and_random() -> Vec<u8> {
    // r0 = ktime_get_ns() ^ (prandom << 32) ^ ktime_get_boot_ns()
    asm("call 5
         mov64 r6, r0
         call 7
         lsh64 r0, 32
         xor64 r6, r0
         call 125
         xor64 r0, r6
         exit")
}

#[test]
fn same_seed_same_results() {
    let run = |seed: u64| -> Vec<Vec<u64>> {
        let vm = Vm::builder().cpus(3).seed(seed).build();
        let p = vm
            .load(Program::new(clock_and_random(), ProgramType::Unspecified))
            .unwrap();
        vm.run_on_all(&p, 4, &Input::empty()).unwrap()
    };
    let a = run(1);
    assert_eq!(a, run(1));
    assert_ne!(a, run(2));
    // Different runs and CPUs see different values.
    assert_ne!(a[0][0], a[0][1]);
    assert_ne!(a[0][0], a[1][0]);
}

#[test]
fn virtual_clock_is_monotonic_within_and_across_runs() {
    let vm = Vm::builder().cpus(1).build();
    let p = vm
        .load(Program::new(
            asm("call 5\nmov64 r6, r0\ncall 5\nsub64 r0, r6\nexit"),
            ProgramType::Unspecified,
        ))
        .unwrap();
    assert!(vm.run(&p, CpuId(0), &Input::empty()).unwrap().retval > 0);
    let t = vm
        .load(Program::new(asm("call 5\nexit"), ProgramType::Unspecified))
        .unwrap();
    let a = vm.run(&t, CpuId(0), &Input::empty()).unwrap().retval;
    let b = vm.run(&t, CpuId(0), &Input::empty()).unwrap().retval;
    assert!(b > a);
}

#[test]
fn trace_printk_output_is_captured_per_run() {
    let vm = Vm::builder().cpus(2).build();
    // "cpu %d: %s\0" on the stack, then trace_printk(fmt, 11, cpu, "ok")
    let fmt = b"cpu %d: %s\0";
    let mut src = String::new();
    for (i, chunk) in fmt.chunks(1).enumerate() {
        src.push_str(&format!("stb [r10-{}], {}\n", 32 - i, chunk[0]));
    }
    src.push_str(
        "stb [r10-8], 111
         stb [r10-7], 107
         stb [r10-6], 0
         call 8
         mov64 r3, r0
         mov64 r1, r10
         add64 r1, -32
         mov64 r2, 11
         mov64 r4, r10
         add64 r4, -8
         call 6
         exit",
    );
    let p = vm
        .load(Program::new(asm(&src), ProgramType::Unspecified))
        .unwrap();
    let out = vm.run(&p, CpuId(1), &Input::empty()).unwrap();
    assert_eq!(out.trace, "cpu 1: ok");
    assert_eq!(out.retval, 9);
    let res = vm
        .test_run(
            &p,
            &TestRun {
                input: Input::empty(),
                repeat: 2,
                cpu: CpuId(0),
            },
        )
        .unwrap();
    assert_eq!(res.trace, "cpu 0: okcpu 0: ok");
}

#[test]
fn test_run_repeats_and_reports_duration() {
    let calls: Arc<Mutex<u32>> = Arc::default();
    let c = Arc::clone(&calls);
    let vm = Vm::builder()
        .cpus(2)
        .helper(2000, "count", move |_: &mut HelperContext, _: [u64; 5]| {
            let mut n = c.lock().unwrap();
            *n += 1;
            Ok(*n as u64)
        })
        .unwrap()
        .build();
    let p = vm
        .load(Program::new(
            asm("call 2000\nexit"),
            ProgramType::Unspecified,
        ))
        .unwrap();
    let res = vm
        .test_run(
            &p,
            &TestRun {
                input: Input::empty(),
                repeat: 100,
                cpu: CpuId(1),
            },
        )
        .unwrap();
    assert_eq!(res.retval, 100);
    assert_eq!(*calls.lock().unwrap(), 100);
    assert!(res.duration.as_secs() < 1);
}

#[test]
fn vm_and_programs_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Vm>();
    assert_send_sync::<bpfvm::LoadedProgram>();
    assert_send_sync::<bpfvm::Error>();
    // Several threads running on the same VM and program at once (different CPUs).
    let vm = Arc::new(Vm::builder().cpus(4).build());
    let prog = vm
        .load(Program::new(asm("call 8\nexit"), ProgramType::Unspecified))
        .unwrap();
    let handles: Vec<_> = (0..4u32)
        .map(|cpu| {
            let (vm, prog) = (Arc::clone(&vm), prog.clone());
            std::thread::spawn(move || {
                (0..1000).all(|_| {
                    vm.run(&prog, CpuId(cpu), &Input::empty()).unwrap().retval == cpu as u64
                })
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}
