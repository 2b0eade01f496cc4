//! Runs one benchmark program for `valgrind --tool=callgrind` (which counts x86
//! instructions, so the figure is stable on a noisy machine).
//!
//! `callgrind_driver <alu|memory> <interpreter|jit|rbpf-interpreter|direct-rbpf-interpreter> <n>`
//! runs the ALU (or memory) loop of n iterations once; `callgrind_driver <helper|helper-call|
//! helper-baseline> <engine> <n>` runs the helper loop (`call 8`, inlined by the interpreter),
//! the helper-call loop (`call 5`, really called) or their baseline (`mov64 r0, 0`) of n
//! iterations once; `helper-lookup <engine> <n>` runs n `bpf_map_lookup_elem` iterations on
//! an ARRAY (`programs::lookup_loop`); `map-value-1` / `map-value-1000 <engine> <n>` run n
//! increments of a value of the last of 1 / 1,000 ARRAY maps; `empty <engine> <calls>` makes `calls` `Vm::test_run`
//! calls (repeat 1) of the empty program, `empty-x1000` makes `calls` `Vm::test_run` calls of
//! 1,000 repetitions each, and `empty-run` makes `calls` `Vm::run` calls. Run it at two counts
//! and divide the difference in instructions by the difference in BPF instructions (or calls,
//! or repetitions) to cancel setup.

use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, EngineKind, Input, Program, ProgramType, TestRun, Vm};
use bpfvm_benches::direct::Direct;
use bpfvm_benches::{programs, vm_config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "alu".to_string());
    let engine = args.next().unwrap_or_else(|| "interpreter".to_string());
    let n: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let r0 = match what.as_str() {
        "alu" | "memory" | "helper" | "helper-call" | "helper-baseline" => {
            let code = match what.as_str() {
                "alu" => programs::alu_loop(n),
                "memory" => programs::memory_loop(n),
                "helper" => programs::helper_loop(n),
                "helper-call" => programs::helper_call_loop(n),
                _ => programs::helper_baseline_loop(n),
            };
            if engine == "direct-rbpf-interpreter" {
                Direct::new(&code, false)?.run()?
            } else {
                let vm = Vm::new(vm_config(1));
                let prog = vm.load(
                    Program::new(code, ProgramType::Unspecified)
                        .with_engine(engine.parse::<EngineKind>()?),
                )?;
                vm.run(&prog, CpuId(0), &Input::empty())?.retval
            }
        }
        "map-value-1" | "map-value-1000" => {
            // `n` increments of a value of the last of 1 or 1,000 ARRAY maps.
            let count: u32 = if what == "map-value-1" { 1 } else { 1000 };
            let maps = (0..count)
                .map(|_| Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 1).map(Arc::new))
                .collect::<Result<Vec<_>, _>>()?;
            let vm = Vm::new(vm_config(1));
            let prog = vm.load(
                Program::new(programs::map_value_loop(n, count - 1), ProgramType::Unspecified)
                    .with_maps(maps)
                    .with_engine(engine.parse::<EngineKind>()?),
            )?;
            vm.run(&prog, CpuId(0), &Input::empty())?.retval
        }
        "helper-lookup" => {
            // `bpf_map_lookup_elem` on an ARRAY (9 BPF instructions per iteration).
            let vm = Vm::new(vm_config(1));
            let map = Map::create(MapSpec::new(MapType::Array, 4, 8, 1), 1)?;
            let prog = vm.load(
                Program::new(programs::lookup_loop(n), ProgramType::Unspecified)
                    .with_map(Arc::new(map))
                    .with_engine(engine.parse::<EngineKind>()?),
            )?;
            vm.run(&prog, CpuId(0), &Input::empty())?.retval
        }
        "empty" | "empty-x1000" => {
            let vm = Vm::new(vm_config(1));
            let prog = vm.load(
                Program::new(programs::empty(), ProgramType::Unspecified)
                    .with_engine(engine.parse::<EngineKind>()?),
            )?;
            let req = TestRun {
                input: Input::empty(),
                repeat: if what == "empty" { 1 } else { 1000 },
                cpu: CpuId(0),
            };
            let mut r0 = 0;
            for _ in 0..n {
                r0 += vm.test_run(&prog, &req)?.retval;
            }
            r0
        }
        "empty-run" => {
            let vm = Vm::new(vm_config(1));
            let prog = vm.load(
                Program::new(programs::empty(), ProgramType::Unspecified)
                    .with_engine(engine.parse::<EngineKind>()?),
            )?;
            let input = Input::empty();
            let mut r0 = 0;
            for _ in 0..n {
                r0 += vm.run(&prog, CpuId(0), &input)?.retval;
            }
            r0
        }
        other => {
            return Err(format!(
                "unknown program {other:?} (alu, memory, helper, helper-call, helper-baseline, helper-lookup, map-value-1, map-value-1000, empty, empty-x1000 or empty-run)"
            )
            .into())
        }
    };
    println!("{what} {engine} {n} {r0}");
    Ok(())
}
