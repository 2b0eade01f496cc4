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
    let obj = object::open(path)?;
    let defs = match &args.prog {
        Some(name) => vec![object::choose_program(&obj, path, Some(name))?],
        None => {
            if obj.programs().is_empty() {
                return Err(CliError::NoPrograms {
                    path: path.display().to_string(),
                });
            }
            obj.programs().iter().collect()
        }
    };
    // The maps count against the default map memory limit, as for `bpfvm run`.
    let vm = bpfvm::Vm::builder().cpus(args.cpus).build();
    let maps = object::create_maps(&obj, path, args.cpus, vm.map_memory())?;
    let who = privilege(&args.privileged);
    let mut refused = 0;
    for def in &defs {
        let program = object::program(&obj, path, def, &maps, bpfvm::EngineKind::Interpreter)?;
        let head = format!("{} (section {})", def.name, def.section);
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
