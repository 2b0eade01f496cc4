//! The compiled fixtures that use tail calls, callbacks, kfuncs, bpf-to-bpf calls and
//! `may_goto` on the `jit` engine, against the interpreter: every program of each object
//! loaded on one engine (or mixed: callers and tail call targets on different engines), its
//! PROG_ARRAYs filled from the object's initialisers, run on a set of packets on two CPUs
//! with two budgets; every run's result or error and every map's contents afterwards must be
//! the interpreter's.
#![cfg(all(
    feature = "jit",
    any(target_arch = "x86_64", target_arch = "aarch64"),
    target_endian = "little",
    not(miri)
))]

mod common;

use bpfvm::helpers::{HelperContext, KfuncFlags};
use bpfvm::loader::{ObjectMaps, SlotTarget};
use bpfvm::maps::{Map, MapType};
use bpfvm::{CpuId, EngineKind, Input, Privilege, Vm};

/// Fixtures whose programs call back, tail-call, call kfuncs or subprograms.
const FIXTURES: &[&str] = &[
    "tail_call",
    "tail_call_legacy",
    "callbacks",
    "may_goto_loops",
    "subprog",
    "section_subprogs",
    "kfunc_user",
    "xdp_lb",
    "xdp_parser",
    "pkt_ops",
    "percpu_counter",
];

/// Packets: their first bytes are the fixtures' arguments (loop counts, indexes, stops).
const PACKETS: &[[u8; 4]] = &[
    [0, 0, 0, 0],
    [1, 2, 3, 4],
    [2, 1, 5, 0],
    [3, 4, 0, 0],
    [4, 0, 0, 0],
    [10, 3, 0, 0],
    [10, 200, 0, 0],
    [0x81, 0, 0, 0],
    [0x80, 0, 0, 0],
    [255, 255, 0, 0],
];

fn vm(budget: u64) -> Vm {
    let ok = |_: &mut HelperContext, a: [u64; 5]| Ok(a[0]);
    Vm::builder()
        .cpus(2)
        .budget(budget)
        .privilege(Privilege::Root)
        .kfunc(
            "bpfvm_test_add",
            KfuncFlags::NONE,
            |_: &mut HelperContext, a: [u64; 5]| {
                Ok((a[0] as i32).wrapping_add(a[1] as i32) as u32 as u64)
            },
        )
        .unwrap()
        .kfunc(
            "bpfvm_test_sum",
            KfuncFlags::sized(0),
            |ctx: &mut HelperContext, a: [u64; 5]| {
                let mut buf = vec![0u8; a[1] as usize];
                ctx.read_arg("bpfvm_test_sum", a[0], &mut buf)?;
                Ok(buf.iter().map(|&b| u64::from(b)).sum())
            },
        )
        .unwrap()
        .kfunc("bpfvm_test_ctx", KfuncFlags::NONE, ok)
        .unwrap()
        .kfunc("bpfvm_test_u64", KfuncFlags::NONE, ok)
        .unwrap()
        .kfunc(
            "bpfvm_test_acquire",
            KfuncFlags::ACQUIRE | KfuncFlags::RET_NULL,
            |_: &mut HelperContext, _: [u64; 5]| Ok(0),
        )
        .unwrap()
        .kfunc(
            "bpfvm_test_release",
            KfuncFlags::RELEASE,
            |_: &mut HelperContext, _: [u64; 5]| Ok(0),
        )
        .unwrap()
        .build()
}

/// A map's contents, key by key (PROG_ARRAYs hold program ids, which differ per load).
fn dump(map: &Map) -> Vec<(Vec<u8>, Vec<u8>)> {
    if map.map_type() == MapType::ProgArray {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut key = vec![0u8; map.key_size() as usize];
    let mut prev: Option<Vec<u8>> = None;
    while map.get_next_key(prev.as_deref(), &mut key, 0).is_ok() && out.len() < 10_000 {
        let mut value = vec![0u8; map.host_value_size(0)];
        if map.lookup(&key, &mut value, 0).is_ok() {
            out.push((key.clone(), value));
        }
        prev = Some(key.clone());
    }
    out
}

/// `text` with the numbers after `program: ` (program ids, which differ per load) removed.
fn without_ids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("program: ") {
        out.push_str(&rest[..i + 9]);
        rest = rest[i + 9..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Everything `fixture`'s programs do with each program on `engine(index)`: load results,
/// run results, map contents.
fn observe(fixture: &str, budget: u64, engine: impl Fn(usize) -> EngineKind) -> Vec<String> {
    let vm = vm(budget);
    let obj = common::fixture(fixture);
    let maps: ObjectMaps = obj.create_maps(vm.ncpus()).unwrap();
    let mut names: Vec<String> = obj.programs().iter().map(|p| p.name.to_string()).collect();
    names.sort();
    let mut log = Vec::new();
    let mut loaded = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let p = obj
            .vm_program(name, &maps)
            .map_err(|e| e.to_string())
            .and_then(|p| {
                vm.load(p.with_engine(engine(i)))
                    .map_err(|e| without_ids(&format!("{e:?}")))
            });
        log.push(format!(
            "load {name}: {}",
            p.as_ref().map_or_else(|e| e.clone(), |_| "ok".into())
        ));
        loaded.push(p.ok());
    }
    for init in obj.slot_inits() {
        let SlotTarget::Program(target) = &init.target else {
            continue;
        };
        let Some(Some(p)) = names
            .iter()
            .position(|n| **n == **target)
            .map(|i| loaded[i].as_ref())
        else {
            continue;
        };
        let r = p.set_in_prog_array(maps.get(&init.map).unwrap(), init.slot);
        log.push(format!(
            "slot {}[{}] = {target}: {r:?}",
            init.map, init.slot
        ));
    }
    for (name, p) in names.iter().zip(&loaded) {
        let Some(p) = p else { continue };
        for packet in PACKETS {
            for cpu in 0..2 {
                let mut data = vec![0u8; 64];
                data[..4].copy_from_slice(packet);
                let r = vm.run(p, CpuId(cpu), &Input::packet(data));
                log.push(without_ids(&format!(
                    "run {name} {packet:?} cpu {cpu}: {r:?}"
                )));
            }
        }
    }
    for (i, map) in maps.all().iter().enumerate() {
        log.push(format!("map {i}: {:?}", dump(map)));
    }
    log
}

fn compare(fixture: &str, budget: u64, label: &str, engine: impl Fn(usize) -> EngineKind) {
    let want = observe(fixture, budget, |_| EngineKind::Interpreter);
    let got = observe(fixture, budget, engine);
    assert_eq!(
        want.len(),
        got.len(),
        "{fixture} ({label}, budget {budget})"
    );
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g, "{fixture} ({label}, budget {budget})");
    }
    let loads = want.iter().filter(|l| l.ends_with(": ok")).count();
    assert!(loads > 0, "{fixture}: no program loads: {want:?}");
}

#[test]
fn fixtures_run_the_same_on_the_jit() {
    for fixture in FIXTURES {
        for budget in [1_000_000, 3_000] {
            compare(fixture, budget, "all jit", |_| EngineKind::Jit);
        }
    }
}

#[test]
fn fixtures_run_the_same_with_engines_mixed() {
    // Callers and tail call targets on different engines, both ways round.
    for fixture in ["tail_call", "tail_call_legacy", "callbacks"] {
        for parity in [0, 1] {
            compare(fixture, 1_000_000, "mixed", |i| {
                if i % 2 == parity {
                    EngineKind::Jit
                } else {
                    EngineKind::Interpreter
                }
            });
        }
    }
}

/// Everything the tracing fixture's programs (`tracing.bpf.c`, typed by
/// `tracing_target.btf`) do on `engine`: their loads are probe loads, through a task
/// pointer the kernel memory image holds, one it does not, a user address, and the
/// current task (`bpf_get_current_task_btf`).
fn observe_tracing(engine: EngineKind) -> Vec<String> {
    use bpfvm::loader::{Btf, Object};
    use bpfvm::task::MemoryImage;
    let btf = std::fs::read(format!(
        "{}/tests/fixtures/tracing_target.btf",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let btf = Btf::parse_any(&btf).unwrap();
    let obj =
        Object::parse_with_btf("tracing", &common::fixture_bytes("tracing"), Some(&btf)).unwrap();
    let vm = vm(1_000_000);
    let task = 0xffff_8880_0001_0000u64;
    let current = vm.task(CpuId(0)).unwrap().handle;
    let mut bytes = vec![0u8; 32];
    bytes[8..12].copy_from_slice(&4242u32.to_ne_bytes());
    let mut cur = vec![0u8; 32];
    cur[8..12].copy_from_slice(&1000u32.to_ne_bytes());
    vm.set_kernel_memory(
        MemoryImage::new()
            .with(task, bytes)
            .with(current, cur)
            // A task whose pid runs past the image's end.
            .with(task + 0x1000, vec![7u8; 10]),
    );
    let maps: ObjectMaps = obj.create_maps(vm.ncpus()).unwrap();
    let mut names: Vec<String> = obj.programs().iter().map(|p| p.name.to_string()).collect();
    names.sort();
    let mut log = Vec::new();
    let mut compiled = 0;
    for name in &names {
        let p = obj
            .vm_program(name, &maps)
            .map_err(|e| e.to_string())
            .and_then(|p| vm.load(p.with_engine(engine)).map_err(|e| format!("{e:?}")));
        log.push(format!(
            "load {name}: {}",
            p.as_ref().map_or_else(|e| e.clone(), |_| "ok".into())
        ));
        let Ok(p) = p else { continue };
        compiled += 1;
        for first in [task, task + 0x1000, 0xffff_8880_dead_0000, 16, 0] {
            let mut ctx: Vec<u8> = [first, 7, (-5i64) as u64]
                .iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect();
            // perf_event's context is a sample (184 bytes); the others' their arguments.
            ctx.resize(if name == "on_perf" { 184 } else { 24 }, 1);
            for cpu in 0..2 {
                let r = vm.run(&p, CpuId(cpu), &Input::context(ctx.clone()));
                log.push(format!(
                    "run {name} {first:#x} cpu {cpu}: {:?}",
                    r.map(|o| o.retval)
                ));
                for (i, map) in maps.all().iter().enumerate() {
                    log.push(format!("map {i}: {:?}", dump(map)));
                }
            }
        }
    }
    assert!(compiled >= 5, "{log:?}");
    log
}

#[test]
fn the_tracing_fixture_s_probe_loads_run_the_same_on_the_jit() {
    let want = observe_tracing(EngineKind::Interpreter);
    let got = observe_tracing(EngineKind::Jit);
    assert_eq!(want.len(), got.len());
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w, g);
    }
    // The runs succeeded, and the probe loads read the image: `task->pid` (4242) and the
    // current task's pid (1000) reached the globals (.bss).
    assert!(!got.iter().any(|l| l.contains("Err")), "{got:#?}");
    for pid in [4242u64, 1000] {
        let b = pid.to_ne_bytes();
        let text = format!("{:?}", &b[..]);
        let text = text.trim_matches(['[', ']']);
        assert!(
            got.iter().any(|l| l.starts_with("map") && l.contains(text)),
            "{pid}: {got:#?}"
        );
    }
}
