//! `bpfvm verify`: the Linux kernel verifier's verdict on an object's programs, as
//! `bpfvm-verifier` gives it, with the kernel's words and the C source line.

use std::io::Write;

use bpfvm::kernel_verify;
use bpfvm::PrepareError;

use super::args::{privilege, VerifyArgs};
use super::{object, CliError};

/// Runs `bpfvm verify` with `args`, writing one verdict per program to `out`; fails with
/// [`CliError::Refused`] when some program is refused.
pub fn verify(args: &VerifyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let path = args.object.as_path();
    let obj = object::open(path, args.btf.as_deref())?;
    // The maps count against the default map memory limit, as for `bpfvm run`; made per
    // map, so a map that cannot be created refuses only the programs that use it.
    let vm = bpfvm::Vm::builder().cpus(args.cpus).build();
    let (obj, maps) = object::create_maps_per_map(obj, path, args.cpus, vm.map_memory())?;
    // Every program, those the loader refused included (they are refused here too).
    let defs: Vec<Result<&bpfvm::loader::ProgramDefinition, &bpfvm::loader::RefusedProgram>> =
        match &args.prog {
            Some(name) => vec![Ok(object::choose_program(&obj, path, Some(name))?)],
            None => {
                if obj.program_results().next().is_none() {
                    return Err(CliError::NoPrograms {
                        path: path.display().to_string(),
                    });
                }
                obj.program_results().collect()
            }
        };
    let who = privilege(&args.privileged);
    let mut refused = 0;
    for def in &defs {
        let def = match def {
            Ok(def) => *def,
            Err(r) => {
                refused += 1;
                let line = format!(
                    "{} (section {}): refused at load: {}",
                    r.name, r.section, r.error
                );
                writeln!(out, "{line}").map_err(CliError::stdout)?;
                continue;
            }
        };
        let head = format!("{} (section {})", def.name, def.section);
        let program = match object::program(&obj, def, &maps, bpfvm::EngineKind::Interpreter, None)
        {
            Ok(p) => p,
            Err(e) => {
                refused += 1;
                writeln!(out, "{head}: not verified: {e}").map_err(CliError::stdout)?;
                continue;
            }
        };
        let line = match kernel_verify::verify(&program, who, args.cpus) {
            Ok(Some(v)) => format!(
                "{head}: accepted for a {} loader: {} instructions processed, {} bytes of stack",
                who.name(),
                v.insns_processed,
                v.stack_depth.iter().sum::<usize>()
            ),
            Ok(None) => format!(
                "{head}: raw-context program with no kernel program type: structural checks only"
            ),
            Err(e @ PrepareError::Verifier { .. }) => {
                refused += 1;
                format!(
                    "{head}: refused for a {} loader (errno {}): {e}",
                    who.name(),
                    e.errno()
                )
            }
            Err(source) => {
                return Err(CliError::Prepare {
                    program: def.name.to_string(),
                    source,
                })
            }
        };
        writeln!(out, "{line}").map_err(CliError::stdout)?;
    }
    if refused > 0 {
        return Err(CliError::Refused {
            refused,
            total: defs.len(),
        });
    }
    Ok(())
}
