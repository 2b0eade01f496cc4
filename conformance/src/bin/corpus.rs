//! Measures bpfvm against the running kernel on a corpus of BPF objects (Linux, as root):
//!
//! ```text
//! corpus DIR [--json OUT] [--markdown OUT] [--btf FILE] [--libbpf LIB] [--timeout SECS]
//!        [--legacy-types]
//! ```
//!
//! For every `.o` under DIR and every program in it: whether the kernel loads it (libbpf,
//! one program at a time), whether bpfvm loads it (its error's first line when not), and
//! for packet programs both load, whether the fixed frames give the same return values,
//! output packets and map contents. Prints the headline figures and the table of causes;
//! `--markdown` writes the full report (what `conformance/corpus-report.sh` puts into
//! CORPUS.md), `--json` every row. `--btf` gives bpfvm a target BTF for CO-RE (default:
//! none, the program's own ABI types); `--libbpf` the libbpf to load with (default
//! `libbpf.so.1`); `--legacy-types` gives programs in sections libbpf does not know
//! (`SEC("xdp_pass")`) the type their own loaders give them, on both sides. Each object is measured in a child process with a time limit, so an
//! object that crashes or hangs either loader is a row, not the end of the run.

use std::process::ExitCode;

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    eprintln!("corpus needs Linux (the kernel is the oracle)");
    ExitCode::from(2)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Read;
    use std::path::{Path, PathBuf};
    use std::process::{Command, ExitCode, Stdio};
    use std::time::{Duration, Instant};

    use bpfvm::loader::Btf;
    use bpfvm_conformance::corpus::libbpf::Libbpf;
    use bpfvm_conformance::corpus::measure::{fentry_probe, measure_object, BpfvmSide};
    use bpfvm_conformance::corpus::report::{self, ProgramRow};
    use bpfvm_conformance::kernel;

    const USAGE: &str = "usage: corpus DIR [--json OUT] [--markdown OUT] [--btf FILE] [--libbpf LIB] [--timeout SECS] [--legacy-types]";

    #[derive(Default)]
    struct Args {
        dir: Option<PathBuf>,
        json: Option<PathBuf>,
        markdown: Option<PathBuf>,
        btf: Option<PathBuf>,
        libbpf: Option<String>,
        timeout: Option<u64>,
        legacy_types: bool,
        /// Child mode: measure this one object, print its rows as JSON.
        object: Option<PathBuf>,
        rel: Option<String>,
    }

    fn parse_args() -> Result<Args, String> {
        let mut a = Args::default();
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--json" => a.json = Some(value()?.into()),
                "--markdown" => a.markdown = Some(value()?.into()),
                "--btf" => a.btf = Some(value()?.into()),
                "--libbpf" => a.libbpf = Some(value()?),
                "--timeout" => {
                    a.timeout = Some(value()?.parse().map_err(|_| "bad --timeout".to_owned())?)
                }
                "--legacy-types" => a.legacy_types = true,
                "--object" => a.object = Some(value()?.into()),
                "--rel" => a.rel = Some(value()?),
                s if s.starts_with('-') => return Err(format!("unknown option {s}")),
                _ if a.dir.is_none() => a.dir = Some(arg.into()),
                _ => return Err(format!("unexpected argument {arg}")),
            }
        }
        Ok(a)
    }

    pub fn main() -> ExitCode {
        let args = match parse_args() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{e}\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = kernel::available() {
            eprintln!("the kernel oracle is not available: {e}");
            return ExitCode::from(2);
        }
        if let Some(object) = &args.object {
            return child(&args, object);
        }
        let Some(dir) = args.dir.clone() else {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        };
        let mut objects = Vec::new();
        if let Err(e) = collect_objects(&dir, &mut objects) {
            eprintln!("cannot read {}: {e}", dir.display());
            return ExitCode::from(2);
        }
        objects.sort();
        let timeout = Duration::from_secs(args.timeout.unwrap_or(300));
        let mut rows = Vec::new();
        for (i, path) in objects.iter().enumerate() {
            let rel = path
                .strip_prefix(&dir)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            eprintln!("[{}/{}] {rel}", i + 1, objects.len());
            rows.extend(run_child(&args, path, &rel, timeout));
        }
        if let Err(why) = fentry_probe() {
            eprintln!("{why}: its verdicts on fentry/fexit/fmod_ret programs are not counted");
            report::mark_not_judged(&mut rows, &why);
        }
        if let Some(out) = &args.json {
            let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
            if let Err(e) = std::fs::write(out, text) {
                eprintln!("cannot write {}: {e}", out.display());
                return ExitCode::from(1);
            }
        }
        let md = report::markdown(&rows);
        if let Some(out) = &args.markdown {
            if let Err(e) = std::fs::write(out, &md) {
                eprintln!("cannot write {}: {e}", out.display());
                return ExitCode::from(1);
            }
        }
        println!("{}\n{md}", report::text_summary(&rows));
        ExitCode::SUCCESS
    }

    fn collect_objects(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let ty = entry.file_type()?;
            if ty.is_dir() {
                collect_objects(&path, out)?;
            } else if ty.is_file() && path.extension().is_some_and(|e| e == "o") {
                out.push(path);
            }
        }
        Ok(())
    }

    /// Measures one object in a child process; a crash or a timeout is one row.
    fn run_child(args: &Args, path: &Path, rel: &str, timeout: Duration) -> Vec<ProgramRow> {
        let failed = |why: String| {
            vec![ProgramRow {
                object: rel.to_owned(),
                program: "(object)".to_owned(),
                section: String::new(),
                kernel_type: 0,
                kernel_error: Some(why.clone()),
                bpfvm_error: Some(why),
                bpfvm_unverified: None,
                runs: None,
                type_given: false,
                kernel_skipped_maps: Vec::new(),
                kernel_not_judged: None,
            }]
        };
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => return failed(format!("measurement not run: {e}")),
        };
        let mut cmd = Command::new(exe);
        cmd.arg("--object").arg(path).arg("--rel").arg(rel);
        if let Some(b) = &args.btf {
            cmd.arg("--btf").arg(b);
        }
        if let Some(l) = &args.libbpf {
            cmd.arg("--libbpf").arg(l);
        }
        if args.legacy_types {
            cmd.arg("--legacy-types");
        }
        let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
            Ok(c) => c,
            Err(e) => return failed(format!("measurement not run: {e}")),
        };
        let mut stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(o) = stdout.as_mut() {
                let _ = o.read_to_string(&mut s);
            }
            s
        });
        let mut stderr = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(o) = stderr.as_mut() {
                let _ = o.read_to_string(&mut s);
            }
            s
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if start.elapsed() > timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break None,
            }
        };
        let out = reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        let tail = err.lines().last().unwrap_or("").to_owned();
        match status {
            None => failed(format!(
                "measurement timed out after {}s",
                timeout.as_secs()
            )),
            Some(s) if !s.success() => failed(format!("measurement crashed ({s}): {tail}")),
            Some(_) => serde_json::from_str(&out)
                .unwrap_or_else(|e| failed(format!("measurement output unreadable: {e}"))),
        }
    }

    fn child(args: &Args, object: &Path) -> ExitCode {
        let lib = match Libbpf::open(args.libbpf.as_deref().unwrap_or("libbpf.so.1")) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let target = match &args.btf {
            None => None,
            Some(p) => match Btf::from_file(p) {
                Ok(b) => Some(b),
                Err(e) => {
                    eprintln!("cannot read BTF {}: {e}", p.display());
                    return ExitCode::from(2);
                }
            },
        };
        let ncpus = match kernel::possible_cpus() {
            Ok(n) => n,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        let side = BpfvmSide {
            target,
            options: Default::default(),
            legacy_types: args.legacy_types,
        };
        let rel = args
            .rel
            .clone()
            .unwrap_or_else(|| object.display().to_string());
        let rows = measure_object(&lib, object, &rel, &side, ncpus);
        match serde_json::to_string(&rows) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        }
    }
}
