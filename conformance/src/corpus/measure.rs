//! One object measured on both sides: every program loaded alone by libbpf into the
//! kernel and by bpfvm (the public loader API, default verifier, root as the oracle), and
//! the packet programs both load run on [`frames`] with their
//! return values, output packets and map contents compared.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bpfvm::loader::{Btf, KernelProgType, LoadOptions, Object, ObjectMaps};
use bpfvm::maps::{Map, MapType};
use bpfvm::{CpuId, Input, LoadedProgram, Privilege, TestRun as VmTestRun, Vm};

use super::frames::frames;
use super::libbpf::{map_not_created, KMap, KObject, Libbpf};
use super::report::{legacy_type, ProgramRow, RunComparison};
use crate::kernel::consts::ProgType;
use crate::kernel::{KernelMap, KernelProg, MapDef, TestRun};

/// Entries read per map when comparing contents (a larger map is compared on its first
/// this many keys in key order on both sides).
pub const MAX_ENTRIES_COMPARED: usize = 65_536;

/// Map types whose contents are compared (hash, array, their per-CPU and LRU forms, LPM
/// trie); the others (ring buffers, perf arrays, redirect maps, ...) are not read.
const COMPARED_MAP_TYPES: [u32; 7] = [1, 2, 5, 6, 9, 10, 11];

/// What bpfvm is given besides the object.
#[derive(Debug, Clone, Default)]
pub struct BpfvmSide {
    /// Target BTF for CO-RE relocations (`None`: the program's own ABI types only).
    pub target: Option<Btf>,
    /// `__kconfig` values.
    pub options: LoadOptions,
    /// Give programs in sections libbpf does not know the type their tools give them
    /// ([`legacy_type`]), on both sides.
    pub legacy_types: bool,
}

/// Measures every program of the object at `path` (named `rel` in the rows), with `ncpus`
/// simulated CPUs (the kernel's possible CPUs, so per-CPU values compare).
pub fn measure_object(
    lib: &Libbpf,
    path: &Path,
    rel: &str,
    side: &BpfvmSide,
    ncpus: u32,
) -> Vec<ProgramRow> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let why = format!("cannot read: {e}");
            return vec![object_row(rel, why.clone(), why)];
        }
    };
    let name = Object::name_for_path(path);
    let parsed = Object::parse_full(&name, &bytes, &side.options, side.target.as_ref());
    let kernel_progs = KObject::open(lib, path).map(|o| o.programs());
    // The programs of both sides, by name, in the kernel's order then bpfvm's.
    let mut names: Vec<(String, String, u32)> = Vec::new();
    if let Ok(kp) = &kernel_progs {
        names.extend(
            kp.iter()
                .map(|p| (p.name.clone(), p.section.clone(), p.prog_type)),
        );
    }
    if let Ok(obj) = &parsed {
        for r in obj.program_results() {
            let (n, s) = match r {
                Ok(d) => (d.name.to_string(), d.section.to_string()),
                Err(r) => (r.name.to_string(), r.section.to_string()),
            };
            if !names.iter().any(|(k, _, _)| *k == n) {
                names.push((n, s, 0));
            }
        }
    }
    if names.is_empty() {
        let kernel = match &kernel_progs {
            Err(k) => format!("no programs: {k}"),
            Ok(_) => "no programs".to_owned(),
        };
        let bpfvm = match &parsed {
            Err(b) => format!("no programs: {b}"),
            Ok(_) => "no programs".to_owned(),
        };
        return vec![object_row(rel, kernel, bpfvm)];
    }
    let vm = Vm::builder().cpus(ncpus).privilege(Privilege::Root).build();
    names
        .iter()
        .map(|(prog, section, ptype)| {
            let given = if *ptype == 0 && side.legacy_types {
                legacy_type(section)
            } else {
                None
            };
            let ptype = &given.unwrap_or(*ptype);
            let mut row = ProgramRow {
                object: rel.to_owned(),
                program: prog.clone(),
                section: section.clone(),
                kernel_type: *ptype,
                type_given: given.is_some(),
                kernel_skipped_maps: Vec::new(),
                kernel_error: None,
                bpfvm_error: None,
                bpfvm_unverified: None,
                runs: None,
            };
            // bpfvm's side.
            let loaded = match &parsed {
                Err(e) => Err(e.to_string()),
                Ok(obj) => bpfvm_load(&vm, obj, prog, given, ncpus),
            };
            let loaded = match loaded {
                Ok((p, maps)) => {
                    row.bpfvm_unverified = p.unverified().map(str::to_owned);
                    Some((p, maps))
                }
                Err(e) => {
                    row.bpfvm_error = Some(first_line(&e));
                    None
                }
            };
            // The kernel's side.
            let index = kernel_progs
                .as_ref()
                .ok()
                .and_then(|kp| kp.iter().position(|p| p.name == *prog));
            let kobj = match (&kernel_progs, index) {
                (Err(e), _) => Err(e.clone()),
                (Ok(_), None) => Err("libbpf does not list this program".to_owned()),
                (Ok(_), Some(i)) => kernel_load(lib, path, i, given, &mut row.kernel_skipped_maps),
            };
            match kobj {
                Err(e) => row.kernel_error = Some(e),
                Ok((kobj, i)) => {
                    if let (Some((p, maps)), true) = (&loaded, row.is_packet()) {
                        row.runs = Some(compare_runs(&vm, p, maps, &kobj, i, *ptype));
                    }
                }
            }
            row
        })
        .collect()
}

/// Most maps left uncreated for one program (xdp-bench's cpumap object has 9 maps its
/// tool sizes at run time; each retry opens the object again).
const MAX_SKIPPED_MAPS: usize = 32;

/// Loads program `index` of the object at `path` alone into the kernel. A map the kernel
/// cannot create (libbpf creates every map of an object; some get their size from their
/// tool's loader at run time) is left out and the load retried, so the verdict is the
/// program's own, as bpfvm's per-program loading gives it; `skipped` names those maps.
fn kernel_load<'l>(
    lib: &'l Libbpf,
    path: &Path,
    index: usize,
    given: Option<u32>,
    skipped: &mut Vec<String>,
) -> Result<(KObject<'l>, usize), String> {
    let mut first_error = None;
    loop {
        let mut o = KObject::open(lib, path)?;
        match o.load_only(index, given, skipped) {
            Ok(()) => return Ok((o, index)),
            Err(e) => {
                let map = map_not_created(&e).map(str::to_owned);
                let first = first_error.get_or_insert(e).clone();
                match map {
                    Some(m) if !skipped.contains(&m) && skipped.len() < MAX_SKIPPED_MAPS => {
                        skipped.push(m)
                    }
                    // The program's own error, or the first one when leaving maps out
                    // did not help.
                    _ => {
                        skipped.clear();
                        return Err(first);
                    }
                }
            }
        }
    }
}

/// A row standing for a whole object that gave no programs.
fn object_row(rel: &str, kernel: String, bpfvm: String) -> ProgramRow {
    ProgramRow {
        object: rel.to_owned(),
        program: "(object)".to_owned(),
        section: String::new(),
        kernel_type: 0,
        kernel_error: Some(kernel),
        bpfvm_error: Some(first_line(&bpfvm)),
        bpfvm_unverified: None,
        runs: None,
        type_given: false,
        kernel_skipped_maps: Vec::new(),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_owned()
}

/// bpfvm loads program `name` of `obj` with fresh maps (a panic is caught and reported
/// as an error, so one object never stops the measurement).
fn bpfvm_load(
    vm: &Vm,
    obj: &Object,
    name: &str,
    given: Option<u32>,
    ncpus: u32,
) -> Result<(LoadedProgram, ObjectMaps), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Per map, as libbpf's loader with its tool sizing maps: a map that cannot be
        // created refuses only the programs that use it.
        let (obj, maps) = obj
            .clone()
            .create_maps_per_map(ncpus, &Default::default())
            .map_err(|e| e.to_string())?;
        let obj = &obj;
        let given =
            given.and_then(|n| KernelProgType::ALL.iter().copied().find(|t| *t as u32 == n));
        let program = match given {
            Some(t) => obj.vm_program_as(name, &maps, t),
            None => obj.vm_program(name, &maps),
        }
        .map_err(|e| e.to_string())?;
        let loaded = vm.load(program).map_err(|e| e.to_string())?;
        Ok((loaded, maps))
    }))
    .unwrap_or_else(|p| {
        let what = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Err(format!("bpfvm panicked: {what}"))
    })
}

fn kernel_prog_type(t: u32) -> Option<ProgType> {
    Some(match t {
        1 => ProgType::SocketFilter,
        3 => ProgType::SchedCls,
        4 => ProgType::SchedAct,
        6 => ProgType::Xdp,
        8 => ProgType::CgroupSkb,
        _ => return None,
    })
}

type Outcome = Result<(u32, Vec<u8>), i32>;

/// Runs every frame on both sides, then compares the maps both have.
fn compare_runs(
    vm: &Vm,
    prog: &LoadedProgram,
    maps: &ObjectMaps,
    kobj: &KObject<'_>,
    index: usize,
    ptype: u32,
) -> RunComparison {
    let frames = frames();
    let mut differences = Vec::new();
    let kprog = kernel_prog_type(ptype)
        .ok_or_else(|| format!("program type {ptype} is not run"))
        .and_then(|t| Ok(KernelProg::from_owned_fd(kobj.program_fd(index)?, t)));
    let kprog = match kprog {
        Ok(p) => p,
        Err(e) => {
            return RunComparison {
                frames: 0,
                differences: vec![format!("kernel program: {e}")],
            }
        }
    };
    for (name, frame) in &frames {
        let k: Outcome = kprog
            .test_run_on_cpu(
                0,
                &TestRun {
                    data_in: frame.clone(),
                    data_out_size: frame.len() + 4096,
                    ..TestRun::default()
                },
            )
            .map(|o| (o.retval, o.data_out))
            .map_err(|e| e.0);
        let v: Outcome = vm
            .test_run(
                prog,
                &VmTestRun {
                    input: Input::packet(frame.clone()),
                    repeat: 1,
                    cpu: CpuId(0),
                },
            )
            .map(|o| (o.retval as u32, o.data_out))
            .map_err(|e| e.errno());
        if let Some(d) = outcome_difference(&k, &v) {
            differences.push(format!("frame {name}: {d}"));
        }
    }
    differences.extend(compare_maps(&kobj.maps(), maps));
    RunComparison {
        frames: frames.len() as u32,
        differences,
    }
}

/// How two run outcomes differ, or `None`.
fn outcome_difference(k: &Outcome, v: &Outcome) -> Option<String> {
    match (k, v) {
        (Ok((kr, kd)), Ok((vr, vd))) => {
            if kr != vr {
                Some(format!("return value: kernel {kr}, bpfvm {vr}"))
            } else if kd != vd {
                let at = kd.iter().zip(vd).position(|(a, b)| a != b);
                Some(format!(
                    "output packet: kernel {} bytes, bpfvm {} bytes, first difference at {}",
                    kd.len(),
                    vd.len(),
                    at.map_or("the end".to_owned(), |i| format!("byte {i}"))
                ))
            } else {
                None
            }
        }
        (Err(ke), Err(ve)) if ke == ve => None,
        (Err(ke), Err(ve)) => Some(format!("errors: kernel errno {ke}, bpfvm errno {ve}")),
        (Err(ke), Ok((vr, _))) => Some(format!("kernel errno {ke}, bpfvm returned {vr}")),
        (Ok((kr, _)), Err(ve)) => Some(format!("kernel returned {kr}, bpfvm errno {ve}")),
    }
}

/// The maps both sides have (by name), compared key by key.
fn compare_maps(kmaps: &[KMap], smaps: &ObjectMaps) -> Vec<String> {
    let mut diffs = Vec::new();
    for km in kmaps {
        if !COMPARED_MAP_TYPES.contains(&km.map_type) {
            continue;
        }
        let Some((_, sm)) = smaps.iter().find(|(d, _)| d.is_named(&km.name)) else {
            continue;
        };
        let Ok(map_type) = MapType::try_from(km.map_type) else {
            continue;
        };
        let Ok(fd) = km.fd.try_clone() else { continue };
        let kernel = KernelMap::from_owned_fd(
            fd,
            MapDef {
                map_type,
                key_size: km.key_size,
                value_size: km.value_size,
                max_entries: km.max_entries,
                map_flags: km.map_flags,
            },
        );
        let Ok(kernel) = kernel else { continue };
        let k = kernel_contents(&kernel);
        let s = bpfvm_contents(sm);
        if k != s {
            let key = k
                .iter()
                .find(|(key, v)| s.get(*key) != Some(*v))
                .or_else(|| s.iter().find(|(key, v)| k.get(*key) != Some(*v)))
                .map(|(key, _)| key.clone())
                .unwrap_or_default();
            let show = |c: &Contents| c.get(&key).map_or("none".to_owned(), |v| hex_short(v));
            diffs.push(format!(
                "map {}: kernel {} entries, bpfvm {}; key {}: kernel {}, bpfvm {}",
                km.name,
                k.len(),
                s.len(),
                hex_short(&key),
                show(&k),
                show(&s)
            ));
        }
    }
    diffs
}

/// `b` in hex, the first 48 bytes (then `…`).
fn hex_short(b: &[u8]) -> String {
    let mut s: String = b.iter().take(48).map(|x| format!("{x:02x}")).collect();
    if b.len() > 48 {
        s.push('…');
    }
    s
}

type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

fn kernel_contents(m: &KernelMap) -> Contents {
    let mut out = Contents::new();
    let mut key: Option<Vec<u8>> = None;
    while out.len() < MAX_ENTRIES_COMPARED {
        let Ok(next) = m.get_next_key(key.as_deref()) else {
            break;
        };
        if let Ok(v) = m.lookup(&next, 0) {
            out.insert(next.clone(), v);
        }
        key = Some(next);
    }
    out
}

fn bpfvm_contents(m: &Arc<Map>) -> Contents {
    let mut out = Contents::new();
    let mut key: Option<Vec<u8>> = None;
    let mut next = vec![0u8; m.key_size() as usize];
    let mut value = vec![0u8; m.host_value_size(0)];
    while out.len() < MAX_ENTRIES_COMPARED {
        if m.get_next_key(key.as_deref(), &mut next, 0).is_err() {
            break;
        }
        if m.lookup(&next, &mut value, 0).is_ok() {
            out.insert(next.clone(), value.clone());
        }
        key = Some(next.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_differ_where_they_should() {
        let a: Outcome = Ok((2, vec![1, 2, 3]));
        assert_eq!(outcome_difference(&a, &a.clone()), None);
        assert_eq!(outcome_difference(&Err(22), &Err(22)), None);
        assert_eq!(
            outcome_difference(&a, &Ok((1, vec![1, 2, 3]))).unwrap(),
            "return value: kernel 2, bpfvm 1"
        );
        assert_eq!(
            outcome_difference(&a, &Ok((2, vec![1, 9, 3]))).unwrap(),
            "output packet: kernel 3 bytes, bpfvm 3 bytes, first difference at byte 1"
        );
        assert_eq!(
            outcome_difference(&a, &Ok((2, vec![1, 2]))).unwrap(),
            "output packet: kernel 3 bytes, bpfvm 2 bytes, first difference at the end"
        );
        assert!(outcome_difference(&Err(22), &a).is_some());
        assert!(outcome_difference(&Err(22), &Err(14)).is_some());
    }
}
