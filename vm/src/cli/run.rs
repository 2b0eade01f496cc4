//! `bpfvm run`: load, run on the simulated CPUs, read the maps back, print (text, JSON or
//! the `--explain` walkthrough) and optionally write the `--report` picture.

use std::io::Write;

use bpfvm::Vm;

use super::args::RunArgs;
use super::execute::{execute, Schedule};
use super::snapshot::snapshot_all;
use super::{events, explain, input, json, object, report, seed, text, CliError};

/// Runs `bpfvm run` with `args`, writing the output to `out`.
pub fn run(args: &RunArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let engine = args.engine_kind();
    if !engine.is_sandboxed() {
        if !args.unsafe_engine {
            return Err(CliError::UnsafeEngine { engine });
        }
        eprintln!(
            "bpfvm: warning: engine {engine} is not sandboxed (--unsafe-engine): a wrong \
             program can corrupt or crash bpfvm"
        );
    }
    let path = args.object.as_path();
    // The type it runs as; an unknown section or a type bpfvm cannot run is refused
    // (with how to give the type) before anything is read or created.
    let object::ChosenProgram {
        object: obj,
        name,
        run_type,
        prog_type,
        target_btf,
    } = object::open_program(
        path,
        &args.load,
        args.prog.as_deref(),
        args.prog_type.as_deref(),
    )?;
    if let Some(cpu) = args.cpu {
        if cpu >= args.cpus {
            return Err(CliError::NoSuchCpu {
                cpu,
                ncpus: args.cpus,
            });
        }
    }
    if args.data.is_none() && input::takes_packet(run_type) {
        eprintln!(
            "bpfvm: no --data: each run gets a {}-byte zeroed Ethernet frame",
            input::DEFAULT_FRAME
        );
    }
    // Read once, bounded; every run (on every CPU) starts from this one copy.
    let input = input::program_input(run_type, args.data.as_deref())?;
    let vm = Vm::builder()
        .cpus(args.cpus)
        .seed(args.seed)
        .map_memory_limit(args.map_memory_limit)
        .verifier(args.verifier_mode())
        .privilege(super::args::privilege(&args.privileged))
        .build();
    vm.set_target_btf(target_btf);
    // Per map: a map only other programs use does not stop this one.
    let (obj, maps) = object::create_maps_per_map(obj, path, args.cpus, vm.map_memory())?;
    // The outputs name the type the program runs as.
    let def = &bpfvm::loader::ProgramDefinition {
        program_type: run_type,
        ..object::choose_program(&obj, path, Some(&name))?.clone()
    };
    if let Some(file) = &args.maps {
        seed::maps_file(&obj, &maps, file)?;
    }
    seed::map_set(&obj, &maps, &args.map_set)?;
    events::open_perf_buffers(&maps)?;
    let prog = vm
        .load(object::program(&obj, def, &maps, engine, prog_type)?)
        .map_err(|source| CliError::Prepare {
            program: def.name.to_string(),
            source,
        })?;
    if let Some(why) = prog.unverified() {
        eprintln!("bpfvm: warning: {why}");
    }
    for warning in object::fill_prog_arrays(&vm, &obj, &maps, engine)? {
        eprintln!("bpfvm: warning: {warning}");
    }
    // --explain runs CPU after CPU so its text is the same on every run.
    let schedule = if args.explain {
        Schedule::OneCpuAfterAnother
    } else {
        Schedule::Parallel
    };
    let cpus: Vec<u32> = match args.cpu {
        Some(k) => vec![k],
        None => (0..args.cpus).collect(),
    };
    // A failed run's error names the C source line of the failing instruction itself.
    let summary = execute(&vm, &prog, &cpus, args.repeat, &input, schedule)?;
    // Read once, as a consumer reads them: ring buffers in order, perf buffers per CPU.
    let events = events::read_all(&maps)?;
    let path_str = path.display().to_string();
    if args.json {
        // Streamed entry by entry: no snapshot of the maps is needed.
        let head = json::RunHead {
            program: &def.name,
            ncpus: args.cpus,
            engine: engine.name(),
            summary: &summary,
        };
        json::write_run(out, &head, &obj, &maps, &events)?;
    }
    // Bounded snapshots (counts and the first entries) for the other outputs.
    let snaps = if args.json && args.report.is_none() {
        Vec::new()
    } else {
        snapshot_all(&maps)?
    };
    let write =
        |out: &mut dyn Write, s: &str| out.write_all(s.as_bytes()).map_err(CliError::stdout);
    if args.explain {
        let text = explain::explain(&explain::Scenario {
            path: &path_str,
            object: &obj,
            program: def,
            repeat: args.repeat,
            seed: args.seed,
            summary: &summary,
            maps: &maps,
            snapshots: &snaps,
            events: &events,
        })?;
        write(out, &text)?;
    } else if !args.json {
        let r = text::Report {
            path: &path_str,
            object: &obj,
            program: def,
            engine: engine.name(),
            repeat: args.repeat,
            summary: &summary,
            maps: &snaps,
            events: &events,
        };
        text::write(&r, out)?;
    }
    if let Some(file) = &args.report {
        let svg = report::svg(&report::ReportInput {
            path: &path_str,
            object: &obj,
            program: def,
            engine: engine.name(),
            repeat: args.repeat,
            summary: &summary,
            maps: &snaps,
            events: &events,
        });
        std::fs::write(file, svg).map_err(|e| CliError::io(file, e))?;
        eprintln!("bpfvm: report written to {}", file.display());
    }
    Ok(())
}
