//! `bpfvm list`: every program of an object with its section, the kernel program type and
//! expected attach type libbpf derives from the section, and whether it loads — and if not,
//! why; then the maps that cannot be loaded.

use std::io::Write;

use bpfvm::loader::{Object, ProgramDefinition, RefusedProgram};

use super::args::ListArgs;
use super::table::Layout;
use super::{object, CliError};

/// The cells of a loaded program's row.
fn loaded_row(obj: &Object, p: &ProgramDefinition) -> Vec<String> {
    let (ty, attach) = match p.section_type {
        Some(s) => (
            s.prog_type.name().to_string(),
            s.attach_type_name().unwrap_or("-").to_string(),
        ),
        None => ("?".to_string(), "-".to_string()),
    };
    // The CLI's VM has the built-in kfuncs only: a strong kfunc beyond them refuses it.
    let builtins = bpfvm::helpers::Registry::with_builtins();
    let missing = p
        .kfuncs
        .iter()
        .find(|k| !k.weak && builtins.kfunc(&k.name).is_none());
    let status = match obj.run_type(&p.name, None) {
        Ok(_) if missing.is_some() => format!(
            "refused: kfunc {} is not built into bpfvm (register it with VmBuilder::kfunc)",
            missing.map_or("", |k| &*k.name)
        ),
        Ok(_) => "loads".to_string(),
        Err(e) => match p.section_type {
            None => "loads; unknown section: run with --type TYPE".to_string(),
            Some(_) => format!("loads; cannot run: {e}"),
        },
    };
    vec![
        p.name.to_string(),
        p.section.to_string(),
        ty,
        attach,
        p.insns.len().to_string(),
        status,
    ]
}

/// The cells of a refused program's row.
fn refused_row(r: &RefusedProgram) -> Vec<String> {
    let s = bpfvm::loader::section_type(&r.section);
    vec![
        r.name.to_string(),
        r.section.to_string(),
        s.map_or("?", |s| s.prog_type.name()).to_string(),
        s.and_then(|s| s.attach_type_name())
            .unwrap_or("-")
            .to_string(),
        "-".to_string(),
        format!("refused: {}", r.error),
    ]
}

/// Prints the table of the programs of `args.object`, then the maps that cannot be loaded.
pub fn list_programs(args: &ListArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let path = args.object.as_path();
    let obj = object::open_with(
        path,
        &object::load_options(&args.load)?,
        args.load.btf.as_deref(),
    )?;
    let mut put = |s: &str| out.write_all(s.as_bytes()).map_err(CliError::stdout);
    let rows: Vec<Vec<String>> = obj
        .program_results()
        .map(|p| match p {
            Ok(p) => loaded_row(&obj, p),
            Err(r) => refused_row(r),
        })
        .collect();
    if rows.is_empty() {
        return put(&format!("{} has no programs\n", path.display()));
    }
    let header: Vec<String> = ["program", "section", "type", "attach", "insns", "status"]
        .map(String::from)
        .to_vec();
    let mut layout = Layout::new(&header);
    for r in &rows {
        layout.add(r);
    }
    put(&layout.line("", &header))?;
    for r in &rows {
        put(&layout.line("", r))?;
    }
    for m in obj.refused_maps() {
        put(&format!("map {} cannot be loaded: {}\n", m.name, m.error))?;
    }
    Ok(())
}
