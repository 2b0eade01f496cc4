//! Checks every bpf_conformance vector on every engine, one named test each
//! (`<engine>::<vector>`): vectors listed in the engine's expectations file must be refused at
//! load time, every other vector must pass, and nothing may be wrong or panic.

use std::sync::Arc;

use bpfvm::{EngineKind, Vm};
use bpfvm_conformance::expectations::{self, Refusals};
use bpfvm_conformance::runner::{run_vector, suite_vm, Outcome};
use bpfvm_conformance::vectors::{self, Vector};
use libtest_mimic::{Arguments, Failed, Trial};

fn check(vm: &Vm, engine: EngineKind, v: &Vector, listed: Option<&String>) -> Result<(), Failed> {
    match (run_vector(vm, engine, v), listed) {
        (Outcome::Passed, None) => Ok(()),
        (Outcome::Refused { .. }, Some(_)) => Ok(()),
        (Outcome::Passed, Some(reason)) => Err(format!(
            "passes, but {} lists it as refused ({reason}); regenerate the expectations",
            expectations::path(engine).display()
        )
        .into()),
        (Outcome::Refused { reason }, None) => Err(format!(
            "refused ({reason}) but not listed in {}",
            expectations::path(engine).display()
        )
        .into()),
        (Outcome::Wrong { detail }, _) => Err(format!("wrong: {detail}").into()),
    }
}

fn engine_trials(vm: &Arc<Vm>, engine: EngineKind, all: &Arc<Vec<Vector>>) -> Vec<Trial> {
    let expected: Arc<Refusals> = match expectations::load(engine) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            return vec![Trial::test(format!("{engine}::expectations"), move || {
                Err(e.into())
            })]
        }
    };
    let mut trials = Vec::new();
    // The expectations file names only real vectors; the interpreter refuses nothing.
    {
        let (expected, all) = (Arc::clone(&expected), Arc::clone(all));
        trials.push(Trial::test(format!("{engine}::expectations"), move || {
            let unknown: Vec<_> = expected
                .keys()
                .filter(|k| !all.iter().any(|v| &v.name == *k))
                .collect();
            if !unknown.is_empty() {
                return Err(format!("lists unknown vectors: {unknown:?}").into());
            }
            if engine == EngineKind::Interpreter && !expected.is_empty() {
                return Err("the interpreter must refuse no vector".into());
            }
            Ok(())
        }));
    }
    for i in 0..all.len() {
        let (vm, all, expected) = (Arc::clone(vm), Arc::clone(all), Arc::clone(&expected));
        let name = format!("{engine}::{}", all[i].name);
        trials.push(Trial::test(name, move || {
            let v = &all[i];
            check(&vm, engine, v, expected.get(&v.name))
        }));
    }
    trials
}

fn main() {
    let args = Arguments::from_args();
    let dir = vectors::default_dir();
    let trials = if !dir.exists() {
        let msg = format!(
            "conformance vectors not found at {} (set {} to the bpf_conformance folder)",
            dir.display(),
            vectors::DIR_VAR
        );
        if vectors::required() {
            vec![Trial::test("vectors-present", move || Err(msg.into()))]
        } else {
            eprintln!("\n*** SKIP: {msg}; no ISA vectors were run ***\n");
            vec![Trial::test("vectors-present", || Ok(())).with_ignored_flag(true)]
        }
    } else {
        match vectors::load_all(&dir) {
            Err(e) => vec![Trial::test("vectors-load", move || {
                Err(e.to_string().into())
            })],
            Ok(all) => {
                let (vm, all) = (Arc::new(suite_vm()), Arc::new(all));
                EngineKind::available()
                    .into_iter()
                    .flat_map(|e| engine_trials(&vm, e, &all))
                    .collect()
            }
        }
    };
    libtest_mimic::run(&args, trials).exit();
}
