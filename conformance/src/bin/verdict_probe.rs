//! Compares bpfvm's verifier with the running kernel's on the programs of object files
//! and on their mutants (Linux, as root), for investigating differences:
//!
//! ```text
//! verdict_probe OBJ... [--prog NAME] [--privilege cap_bpf|root|both]
//!               [--mutant INSN:CLASS | --mutants [--per-class N] [--extended]] [--trace]
//!               [--all]
//! ```
//!
//! For every program of every object (or only `NAME`), and each privilege (default both),
//! prints both verdicts. `--mutant 20:widen-access` judges that one mutant instead,
//! `--mutants` every mutant (`bpfvm_conformance::mutations`; `--per-class` samples at most
//! N of each class per program; `--extended` adds the classes of
//! `MutationClass::EXTENDED`: dropped instructions, signed and 32-bit comparisons, shifted
//! offsets) of each program the kernel accepts, and ends with the
//! counts per kind (`unmodelled`: bpfvm's verifier met something it does not model and
//! gives no verdict). Only differences are printed unless `--all`. `--trace` prints the
//! kernel's per-instruction log (level 2) for each difference.

use std::process::ExitCode;

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    eprintln!("verdict_probe needs Linux (the kernel is the oracle)");
    ExitCode::from(2)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;
    use std::process::ExitCode;

    use bpfvm_conformance::kernel::{self, kernel_verdict_traced, LoaderPrivilege};
    use bpfvm_conformance::mutations::{mutants, sample_of, MutationClass};
    use bpfvm_conformance::verdicts::{cases_from_object, compare, Case, Comparison};
    use bpfvm_verifier::Privilege;

    struct Args {
        objects: Vec<String>,
        prog: Option<String>,
        privileges: Vec<Privilege>,
        mutant: Option<(usize, String)>,
        mutants: bool,
        per_class: Option<usize>,
        extended: bool,
        trace: bool,
        all: bool,
    }

    fn parse() -> Result<Args, String> {
        let mut a = Args {
            objects: Vec::new(),
            prog: None,
            privileges: vec![Privilege::CapBpfNetAdmin, Privilege::Root],
            mutant: None,
            mutants: false,
            per_class: None,
            extended: false,
            trace: false,
            all: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = |what: &str| it.next().ok_or(format!("{what} needs a value"));
            match arg.as_str() {
                "--prog" => a.prog = Some(value("--prog")?),
                "--privilege" => {
                    a.privileges = match value("--privilege")?.as_str() {
                        "cap_bpf" => vec![Privilege::CapBpfNetAdmin],
                        "root" => vec![Privilege::Root],
                        "both" => vec![Privilege::CapBpfNetAdmin, Privilege::Root],
                        p => return Err(format!("unknown privilege {p}")),
                    }
                }
                "--mutant" => {
                    let v = value("--mutant")?;
                    let (i, c) = v.split_once(':').ok_or("--mutant INSN:CLASS")?;
                    a.mutant = Some((i.parse().map_err(|_| "--mutant INSN:CLASS")?, c.into()));
                }
                "--mutants" => a.mutants = true,
                "--per-class" => {
                    a.per_class = Some(value("--per-class")?.parse().map_err(|_| "--per-class N")?)
                }
                "--extended" => a.extended = true,
                "--trace" => a.trace = true,
                "--all" => a.all = true,
                o if o.starts_with("--") => return Err(format!("unknown option {o}")),
                o => a.objects.push(o.into()),
            }
        }
        if a.objects.is_empty() {
            return Err("no object given".into());
        }
        Ok(a)
    }

    fn kind(c: &Comparison) -> &'static str {
        if matches!(&c.ours, Err(e) if e.rule == bpfvm_verifier::Rule::Unsupported) {
            // bpfvm's verifier gives no verdict (`Vm::load` loads such a program
            // unverified): nothing to compare.
            return "unmodelled";
        }
        match (c.kernel_errno.is_some(), c.ours.is_err()) {
            (false, false) => "both-accept",
            (true, true) if !c.same_errno() => "other-errno",
            // The kernel prints nothing for some refusals (a program type the loader may
            // not load): nothing to compare the words with.
            (true, true) if !c.same_message() && !c.kernel_messages.is_empty() => "other-words",
            (true, true) => "both-refuse",
            (false, true) => "only-bpfvm-refuses",
            (true, false) => "only-kernel-refuses",
        }
    }

    fn trace(case: &Case, p: Privilege) {
        let maps: Vec<_> = case
            .maps
            .iter()
            .map(bpfvm_conformance::verdicts::verdict_map)
            .collect();
        let lp = match p {
            Privilege::Root => LoaderPrivilege::Root,
            Privilege::CapBpfNetAdmin => LoaderPrivilege::CapBpf,
        };
        match kernel_verdict_traced(
            &case.insns,
            case.prog_type.number(),
            case.attach.unwrap_or(0),
            &maps,
            &case.license,
            lp,
            true,
        ) {
            Ok(v) => println!("---- kernel log ----\n{}\n--------", v.log),
            Err(e) => println!("kernel trace: {e}"),
        }
    }

    fn judge(
        a: &Args,
        case: &Case,
        p: Privilege,
        tally: &mut BTreeMap<String, usize>,
    ) -> Option<Comparison> {
        let cmp = match std::panic::catch_unwind(|| compare(case, p)) {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                println!("[{p:?}] {}: {e}", case.name);
                *tally.entry("error".into()).or_default() += 1;
                return None;
            }
            Err(_) => {
                println!("[{p:?}] {}: PANIC", case.name);
                *tally.entry("panic".into()).or_default() += 1;
                return None;
            }
        };
        let k = kind(&cmp);
        *tally.entry(k.into()).or_default() += 1;
        let differs = !matches!(k, "both-accept" | "both-refuse" | "unmodelled");
        if differs || a.all {
            let work = match (&cmp.ours, cmp.kernel_processed) {
                (Ok(v), Some(n)) => {
                    format!(" (processed: kernel {n}, bpfvm {})", v.insns_processed)
                }
                _ => String::new(),
            };
            println!("[{p:?}] {k}: {}{work}", cmp.describe());
            if differs && k == "other-words" {
                println!("    kernel log: {:?}", cmp.kernel_messages);
            }
            if let (true, Err(e)) = (differs && a.trace, &cmp.ours) {
                println!("    bpfvm at instruction {:?}: {}", e.insn, e.state);
            }
            if differs && a.trace {
                trace(case, p);
            }
        }
        Some(cmp)
    }

    pub fn main() -> ExitCode {
        let a = match parse() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("verdict_probe: {e}");
                return ExitCode::from(2);
            }
        };
        if !kernel::oracle_or_skip() {
            eprintln!("verdict_probe: the kernel oracle is not available (root, bpf())");
            return ExitCode::from(2);
        }
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        let mut mutant_tally: BTreeMap<String, usize> = BTreeMap::new();
        for path in &a.objects {
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    println!("{path}: {e}");
                    continue;
                }
            };
            let name = std::path::Path::new(path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let cases = match std::panic::catch_unwind(|| cases_from_object(&name, &bytes)) {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    println!("{path}: {e}");
                    continue;
                }
                Err(_) => {
                    println!("{path}: loader PANIC");
                    continue;
                }
            };
            for case in cases {
                if a.prog
                    .as_ref()
                    .is_some_and(|p| !case.name.ends_with(&format!("/{p}")))
                {
                    continue;
                }
                for &p in &a.privileges {
                    if let Some((insn, class)) = &a.mutant {
                        let Some(m) = mutants(&case.insns)
                            .into_iter()
                            .find(|m| m.insn == *insn && m.class.to_string() == *class)
                        else {
                            println!("{}: no mutant {insn}:{class}", case.name);
                            continue;
                        };
                        let mut c = case.clone();
                        c.name = format!("{}@{insn}:{class}", case.name);
                        c.insns = m.insns;
                        judge(&a, &c, p, &mut mutant_tally);
                        continue;
                    }
                    let Some(base) = judge(&a, &case, p, &mut tally) else {
                        continue;
                    };
                    if !a.mutants || base.kernel_errno.is_some() {
                        continue;
                    }
                    let classes: Vec<MutationClass> = MutationClass::ALL
                        .into_iter()
                        .chain(
                            a.extended
                                .then_some(MutationClass::EXTENDED)
                                .into_iter()
                                .flatten(),
                        )
                        .collect();
                    let all = mutants(&case.insns);
                    let set = sample_of(all, a.per_class.unwrap_or(usize::MAX), &classes);
                    for m in set {
                        let mut c = case.clone();
                        c.name = format!("{}@{}:{}", case.name, m.insn, m.class);
                        c.insns = m.insns;
                        let class: MutationClass = m.class;
                        let mut t = BTreeMap::new();
                        judge(&a, &c, p, &mut t);
                        for (k, n) in t {
                            *mutant_tally.entry(k.clone()).or_default() += n;
                            *mutant_tally.entry(format!("{class}/{k}")).or_default() += n;
                        }
                    }
                }
            }
        }
        println!("programs: {tally:?}");
        if !mutant_tally.is_empty() {
            println!("mutants:");
            for (k, n) in &mutant_tally {
                println!("  {k:<40} {n}");
            }
        }
        ExitCode::SUCCESS
    }
}
