//! Checks that every fixture program, on every available engine, either gives the same
//! return values and map contents (or the same failure) as the checked interpreter, or is
//! refused at load time with a clear error (the rbpf engines lack atomics, loops,
//! bpf-to-bpf calls, ...); programs the kernel's verifier refuses are refused by all.

mod common;

use bpfvm::loader::{KernelProgType, LoadError, Object};
use bpfvm::{CpuId, EngineKind, Input, ProgramType, RunError, Vm};

/// Fixture programs the kernel's verifier refuses (for root too), which every engine must
/// refuse too (`skb_prog`: cgroup_skb returning 5; `write_rodata`: a store into
/// `.rodata`, "write into map forbidden").
const KERNEL_REFUSED: &[(&str, &str)] = &[("multi", "skb_prog"), ("globals", "write_rodata")];

/// Why a program gave no results.
#[derive(Debug)]
enum NoResult {
    /// `Vm::load` refused it, or the engine refused its input (rbpf engines take raw
    /// contexts only).
    Refused(String),
    /// A run failed (e.g. a fault).
    Failed(RunError),
}

/// Return values of three runs and every map's contents afterwards.
fn outcome(
    engine: EngineKind,
    obj: &Object,
    prog: &str,
) -> Result<(Vec<u64>, Vec<String>), NoResult> {
    let maps = obj.create_maps(2).unwrap();
    // Loaded as root, as the kernel oracle loads the fixtures.
    let vm = Vm::builder()
        .cpus(2)
        .privilege(bpfvm::Privilege::Root)
        .build();
    // A section libbpf does not know (multi's `bpfvm/custom`) needs its type given: run
    // it as a kprobe (a raw context).
    let program = match obj.vm_program(prog, &maps) {
        Err(LoadError::UnknownProgramType { .. }) => {
            obj.vm_program_as(prog, &maps, KernelProgType::Kprobe)
        }
        other => other,
    };
    let program = program.unwrap().with_engine(engine);
    let def = obj.program(prog).unwrap();
    let loaded = vm
        .load(program)
        .map_err(|e| NoResult::Refused(e.to_string()))?;
    let input = if def.program_type == ProgramType::Xdp || def.program_type.uses_sk_buff() {
        Input::packet((0..64u8).collect::<Vec<_>>())
    } else {
        Input::context(vec![0u8; 64])
    };
    let mut rets = Vec::new();
    for cpu in [0, 1, 1] {
        let out = vm.run(&loaded, CpuId(cpu), &input).map_err(|e| match e {
            RunError::BadInput { .. } => NoResult::Refused(e.to_string()),
            e => NoResult::Failed(e),
        })?;
        rets.push(out.retval);
    }
    let mut state = Vec::new();
    for d in obj.maps() {
        for e in obj.dump_map(&maps, &d.name).unwrap() {
            let values: Vec<String> = e.values.iter().map(ToString::to_string).collect();
            state.push(format!("{}[{}] = {}", d.name, e.key, values.join("|")));
        }
    }
    state.sort();
    Ok((rets, state))
}

#[test]
fn engines_agree_or_refuse_cleanly() {
    let mut compared = 0;
    for name in common::FIXTURES {
        let obj = common::fixture(name);
        for def in obj.programs() {
            let reference = outcome(EngineKind::Interpreter, &obj, &def.name);
            if KERNEL_REFUSED.contains(&(*name, def.name.as_str())) {
                for engine in EngineKind::available() {
                    let got = outcome(engine, &obj, &def.name);
                    assert!(
                        matches!(got, Err(NoResult::Refused(_))),
                        "{name}/{} on {}: {got:?}",
                        def.name,
                        engine.name()
                    );
                }
                continue;
            }
            if let Err(NoResult::Refused(e)) = &reference {
                panic!("{name}/{}: the interpreter refused it: {e}", def.name);
            }
            for engine in EngineKind::available() {
                let at = format!("{name}/{} on {}", def.name, engine.name());
                match (outcome(engine, &obj, &def.name), &reference) {
                    (Ok(got), Ok(want)) => {
                        assert_eq!(&got, want, "{at}");
                        compared += 1;
                    }
                    (Err(NoResult::Refused(e)), _) => assert!(!e.is_empty(), "{at}"),
                    (Err(NoResult::Failed(got)), Err(NoResult::Failed(want))) => {
                        assert_eq!(
                            std::mem::discriminant(&got),
                            std::mem::discriminant(want),
                            "{at}: {got} vs {want}"
                        );
                        compared += 1;
                    }
                    (got, want) => panic!("{at}: {got:?}, interpreter: {want:?}"),
                }
            }
        }
    }
    assert!(compared > 0);
}
