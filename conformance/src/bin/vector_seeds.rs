//! Writes one seed per ISA conformance vector for the `bytecode` fuzz target
//! (`fuzz/seeds.sh`): `[setup 0][u16 memory length][memory][program]`, the program assembled
//! from the vector's `.data` file, into the folder given as the only argument.

use std::path::PathBuf;
use std::process::ExitCode;

use bpfvm_conformance::vectors;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: vector_seeds OUT_DIR");
        return ExitCode::from(2);
    };
    let out = PathBuf::from(out);
    let dir = vectors::default_dir();
    let all = match vectors::load_positive(&dir) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "cannot read the conformance vectors ({e}); set {} to the folder",
                vectors::DIR_VAR
            );
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("{}: {e}", out.display());
        return ExitCode::from(1);
    }
    let mut written = 0;
    for v in &all {
        let Ok(len) = u16::try_from(v.mem.len()) else {
            eprintln!("{}: memory over 64 KiB, no seed", v.name);
            continue;
        };
        let mut seed = vec![0u8];
        seed.extend(len.to_le_bytes());
        seed.extend(&v.mem);
        seed.extend(&v.code);
        let path = out.join(&v.name);
        if let Err(e) = std::fs::write(&path, seed) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(1);
        }
        written += 1;
    }
    println!("{written} bytecode seeds in {}", out.display());
    ExitCode::SUCCESS
}
