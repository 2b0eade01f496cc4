//! Checks bpfvm's VM against the kernel on the fixture objects: each program is loaded from
//! the same relocated instructions into both (kernel map fds substituted, global data
//! filled and frozen like libbpf), run with BPF_PROG_TEST_RUN / `Vm::test_run` on CPU 0
//! and 1 for the same packets, and the return values, output packets and every map's
//! contents afterwards are compared; programs the kernel's verifier refuses must not run in
//! bpfvm either, except for the differences listed in `KNOWN`.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::sync::Arc;

use bpfvm::loader::Object;
use bpfvm::maps::Map;
use bpfvm::{
    CpuId, EngineKind, Input, LoadedProgram, Program, ProgramType, TestRun as VmTestRun, Vm,
};
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::diff::{self, HostMap};
use bpfvm_conformance::kernel::pair::kernel_map_specs;
use bpfvm_conformance::kernel::{
    self, create_object_maps, load_object_program, KernelMap, KernelProg, TestRun,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures");

/// Differences between bpfvm and the kernel that are known and reported (fixture,
/// program, start of the difference's description, why). None are left: every difference
/// the oracle found was a bpfvm bug and is fixed.
const KNOWN: &[(&str, &str, &str, &str)] = &[];

/// Runs of several programs of one fixture that share its maps, after host writes.
struct Case {
    fixture: &'static str,
    seed: Vec<(&'static str, u32, Vec<u8>)>,
    runs: Vec<(&'static str, u32, Vec<u8>)>,
}

/// The kernel program type and expected attach type for bpfvm's type; None for types the
/// kernel cannot test-run (kprobe, tracepoint) or load (unknown sections).
fn prog_type(t: ProgramType, section: &str) -> Option<(ProgType, u32)> {
    Some(match t {
        ProgramType::SocketFilter => (ProgType::SocketFilter, 0),
        ProgramType::SchedCls => (ProgType::SchedCls, 0),
        ProgramType::SchedAct => (ProgType::SchedAct, 0),
        ProgramType::Xdp => (ProgType::Xdp, 0),
        // BPF_CGROUP_INET_INGRESS = 0, BPF_CGROUP_INET_EGRESS = 1.
        ProgramType::CgroupSkb => (ProgType::CgroupSkb, u32::from(section.ends_with("egress"))),
        _ => return None,
    })
}

/// A frame of `len` bytes (at least 14) whose first 4 bytes hold `key`.
fn frame(key: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| i as u8).collect();
    f[..4].copy_from_slice(&key.to_ne_bytes());
    f
}

/// Ethernet + IPv4 (header length `ihl` words, protocol `proto`) + UDP to `dport`.
fn ipv4(proto: u8, dport: u16, ihl: u8) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0u8; ihl as usize * 4];
    ip[0] = 0x40 | ihl;
    ip[9] = proto;
    f.extend(ip);
    if proto == 17 {
        let mut udp = vec![0u8; 8];
        udp[2..4].copy_from_slice(&dport.to_be_bytes());
        f.extend(udp);
    }
    f.extend([0xAB; 16]);
    f
}

/// `program` run on CPUs 0, 1, 0, ... with each packet.
fn alternating(program: &'static str, packets: Vec<Vec<u8>>) -> Vec<(&'static str, u32, Vec<u8>)> {
    packets
        .into_iter()
        .enumerate()
        .map(|(i, p)| (program, (i % 2) as u32, p))
        .collect()
}

fn u32s(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn cases() -> Vec<Case> {
    let keys = |ks: &[u32]| ks.iter().map(|&k| frame(k, 32)).collect::<Vec<_>>();
    let mut tc_shot = ipv4(6, 0, 5);
    tc_shot[0] = 0xff;
    vec![
        Case {
            fixture: "percpu_counter",
            seed: vec![],
            runs: alternating("count_packets", vec![frame(0, 64); 5]),
        },
        Case {
            fixture: "percpu_hash",
            seed: vec![],
            runs: alternating("insert_noexist", keys(&[1, 2, 1, 1, 3, 2, 1, 7, 7, 7])),
        },
        Case {
            fixture: "lru_percpu_hash",
            seed: vec![],
            runs: [1, 2, 3, 4, 1, 5, 6, 2, 7, 1, 8, 9]
                .iter()
                .enumerate()
                .map(|(i, &k)| ("lru_touch", (i / 6) as u32, frame(k, 32)))
                .collect(),
        },
        Case {
            fixture: "percpu_sum",
            seed: vec![],
            runs: [
                alternating("add_cpu", vec![frame(0, 20); 5]),
                alternating("sum_all", vec![frame(0, 20); 2]),
            ]
            .concat(),
        },
        Case {
            fixture: "xdp_parser",
            seed: vec![],
            runs: alternating(
                "xdp_udp_filter",
                vec![
                    frame(0, 60),
                    ipv4(6, 0, 5),
                    ipv4(17, 7777, 5),
                    ipv4(17, 53, 5),
                    ipv4(17, 7777, 7),
                    ipv4(17, 7777, 15)[..40].to_vec(),
                    ipv4(17, 80, 5)[..30].to_vec(),
                ],
            ),
        },
        Case {
            fixture: "tc_skb",
            seed: vec![],
            runs: alternating("tc_inspect", vec![ipv4(17, 53, 5), tc_shot]),
        },
        Case {
            fixture: "globals",
            seed: vec![],
            runs: [
                alternating("bump", vec![frame(0, 20); 3]),
                alternating("write_rodata", vec![frame(0, 20)]),
            ]
            .concat(),
        },
        Case {
            fixture: "subprog",
            seed: vec![("args", 0, u32s(3)), ("args", 1, u32s(4))],
            runs: [
                alternating("calc_squares", vec![frame(0, 20); 2]),
                alternating("calc_more", vec![frame(0, 20); 2]),
            ]
            .concat(),
        },
        Case {
            fixture: "multi",
            seed: vec![],
            runs: [
                alternating("xdp_prog", vec![frame(0, 20); 2]),
                alternating("tc_prog", vec![frame(0, 20); 2]),
                alternating("sock_prog", vec![frame(0, 20); 2]),
                alternating("skb_prog", vec![frame(0, 20); 2]),
                alternating("xdp_second", vec![frame(0, 20); 2]),
            ]
            .concat(),
        },
    ]
}

/// One program on both sides: the kernel's load result and bpfvm's.
struct Loaded {
    kernel: Result<KernelProg, String>,
    bpfvm: Result<LoadedProgram, String>,
}

/// Runs one case on both sides; returns the differences found, each tagged with the
/// program it concerns ("" for map contents).
fn run_case(
    case: &Case,
    n: u32,
    engine: EngineKind,
    stats: &mut Stats,
) -> Result<Option<Vec<(String, String)>>, String> {
    let path = format!("{FIXTURES}/{}.o", case.fixture);
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let obj = Object::parse_named(case.fixture, &bytes).map_err(|e| e.to_string())?;

    let kmaps = create_object_maps(&kernel_map_specs(&obj))?;
    // The kernel loads the programs as root: the same verdict here.
    let vm = Vm::builder()
        .cpus(n)
        .privilege(bpfvm::Privilege::Root)
        .build();
    let smaps: Vec<Arc<Map>> = obj
        .create_maps(n)
        .map_err(|e| e.to_string())?
        .all()
        .to_vec();
    let license = obj.license().unwrap_or("GPL").to_owned();

    let mut progs = BTreeMap::new();
    for (name, _, _) in &case.runs {
        if progs.contains_key(name) {
            continue;
        }
        let def = obj
            .program(name)
            .ok_or_else(|| format!("no program {name}"))?;
        let (ptype, attach) = prog_type(def.program_type, &def.section)
            .ok_or_else(|| format!("{name}: {:?} cannot be test-run", def.program_type))?;
        let prog_kmaps: Vec<&KernelMap> = def.maps.iter().map(|&i| &kmaps[i]).collect();
        let kernel =
            load_object_program(name, ptype, attach, &def.bytecode(), &prog_kmaps, &license);
        let bpfvm = load_bpfvm(&vm, &obj, name, &smaps, engine);
        progs.insert(*name, Loaded { kernel, bpfvm });
    }

    for (name, k, v) in &case.seed {
        let i = obj
            .map_index(name)
            .ok_or_else(|| format!("no map {name}"))?;
        let key = k.to_ne_bytes();
        kmaps[i].update(&key, v, 0).map_err(|e| e.to_string())?;
        HostMap::update(&*smaps[i], &key, v, 0).map_err(|e| e.to_string())?;
    }

    let mut diffs = Vec::new();
    let mut note = |prog: &str, d: String| diffs.push((prog.to_owned(), d));
    for (step, (name, cpu, packet)) in case.runs.iter().enumerate() {
        let loaded = &progs[name];
        let kprog = match &loaded.kernel {
            Ok(p) => p,
            Err(log) => {
                // The verifier refused it: bpfvm must refuse it too, at load or at run.
                // (Tried on fresh maps, so a run that should not happen leaves no trace.)
                let refused = match &loaded.bpfvm {
                    Err(_) => true,
                    Ok(_) => refused_on_fresh_maps(&obj, name, n, engine, *cpu, packet)?,
                };
                stats.refused += 1;
                if !refused {
                    let why = log
                        .lines()
                        .rfind(|l| !l.starts_with("processed "))
                        .unwrap_or("");
                    note(
                        name,
                        format!("run {step}: kernel refuses to load ({why}), bpfvm runs it"),
                    );
                }
                continue;
            }
        };
        let sprog = match &loaded.bpfvm {
            Ok(p) => p,
            // Only the interpreter must run everything; the rbpf engines may refuse a
            // program (with a reason), never run it wrongly. The case stops there: the maps
            // of the two sides no longer see the same runs.
            Err(e) if engine != EngineKind::Interpreter => {
                stats.engine_refused += 1;
                println!("  {engine:?} refuses {name} at load: {e}");
                return Ok(None);
            }
            Err(e) => {
                note(name, format!("bpfvm refuses to load: {e}"));
                continue;
            }
        };
        let k = kprog.test_run_on_cpu(
            *cpu,
            &TestRun {
                data_in: packet.clone(),
                data_out_size: packet.len() + 512,
                ..TestRun::default()
            },
        );
        let s = vm.test_run(sprog, &vm_run(*cpu, packet));
        match (k, s) {
            (Ok(k), Ok(s)) => {
                stats.runs += 1;
                if u64::from(k.retval) != s.retval & 0xFFFF_FFFF {
                    note(
                        name,
                        format!(
                            "run {step} on CPU {cpu}: retval: kernel {} bpfvm {}",
                            k.retval, s.retval
                        ),
                    );
                }
                if k.data_out != s.data_out {
                    let mut l2_zeroed = s.data_out.clone();
                    l2_zeroed.iter_mut().take(14).for_each(|b| *b = 0);
                    let what = if l2_zeroed == k.data_out {
                        "Ethernet header not zeroed"
                    } else {
                        "data_out"
                    };
                    note(
                        name,
                        format!(
                            "run {step} on CPU {cpu}: {what}: kernel {:?} bpfvm {:?}",
                            k.data_out, s.data_out
                        ),
                    );
                }
            }
            (Ok(_), Err(e)) if engine != EngineKind::Interpreter => {
                stats.engine_refused += 1;
                println!("  {engine:?} refuses {name} at run: {e}");
                return Ok(None);
            }
            (k, s) => note(
                name,
                format!("run {step} on CPU {cpu}: kernel {k:?} bpfvm {s:?}"),
            ),
        }
    }
    for (i, m) in obj.maps().iter().enumerate() {
        stats.maps += 1;
        let kd = diff::dump(&kmaps[i], 10_000);
        let sd = diff::dump(&*smaps[i], 10_000);
        if kd != sd {
            note("", describe_map_difference(&m.name, &kd, &sd));
        }
    }
    Ok(Some(diffs))
}

/// A map difference: when both hold the same keys with values of the same length, the
/// offsets of the differing u32 words (`map NAME key K: words at [..]`), else both dumps.
fn describe_map_difference(
    name: &str,
    k: &Result<diff::Contents, kernel::Errno>,
    s: &Result<diff::Contents, kernel::Errno>,
) -> String {
    if let (Ok(k), Ok(s)) = (k, s) {
        let same_shape = k.len() == s.len()
            && k.iter()
                .zip(s)
                .all(|((kk, kv), (sk, sv))| kk == sk && kv.len() == sv.len());
        if same_shape {
            let parts: Vec<String> = k
                .iter()
                .zip(s)
                .filter(|(a, b)| a.1 != b.1)
                .map(|((key, kv), (_, sv))| {
                    let words: Vec<usize> = (0..kv.len())
                        .step_by(4)
                        .filter(|&o| kv[o..kv.len().min(o + 4)] != sv[o..sv.len().min(o + 4)])
                        .collect();
                    format!("key {key:?}: words at {words:?}: kernel {kv:?} bpfvm {sv:?}")
                })
                .collect();
            return format!("map {name} {}", parts.join("; "));
        }
    }
    format!("map {name}: kernel {k:?} bpfvm {s:?}")
}

/// Loads program `name` of `obj` into `vm` with `maps` (the object's maps, in order).
fn load_bpfvm(
    vm: &Vm,
    obj: &Object,
    name: &str,
    maps: &[Arc<Map>],
    engine: EngineKind,
) -> Result<LoadedProgram, String> {
    let def = obj
        .program(name)
        .ok_or_else(|| format!("no program {name}"))?;
    let mut program = Program::new(def.bytecode(), def.program_type).with_engine(engine);
    for &i in &def.maps {
        program.add_map(maps[i].clone());
    }
    vm.load(program).map_err(|e| e.to_string())
}

/// Whether bpfvm refuses to run program `name` (at load or at run) on fresh maps.
fn refused_on_fresh_maps(
    obj: &Object,
    name: &str,
    n: u32,
    engine: EngineKind,
    cpu: u32,
    packet: &[u8],
) -> Result<bool, String> {
    // The kernel loads the programs as root: the same verdict here.
    let vm = Vm::builder()
        .cpus(n)
        .privilege(bpfvm::Privilege::Root)
        .build();
    let maps: Vec<Arc<Map>> = obj
        .create_maps(n)
        .map_err(|e| e.to_string())?
        .all()
        .to_vec();
    Ok(match load_bpfvm(&vm, obj, name, &maps, engine) {
        Err(_) => true,
        Ok(p) => vm.test_run(&p, &vm_run(cpu, packet)).is_err(),
    })
}

fn vm_run(cpu: u32, packet: &[u8]) -> VmTestRun {
    VmTestRun {
        input: Input::packet(packet.to_vec()),
        repeat: 1,
        cpu: CpuId(cpu),
    }
}

#[derive(Default)]
struct Stats {
    runs: usize,
    engine_refused: usize,
    refused: usize,
    maps: usize,
}

#[test]
fn fixtures_agree_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let mut stats = Stats::default();
    let mut unexpected = 0;
    for (engine, case) in EngineKind::available()
        .into_iter()
        .flat_map(|e| cases().into_iter().map(move |c| (e, c)))
    {
        let diffs = match run_case(&case, n, engine, &mut stats) {
            Ok(Some(d)) => d,
            Ok(None) => {
                println!(
                    "{engine:?} {}: stopped, the engine refuses a program",
                    case.fixture
                );
                continue;
            }
            Err(e) => {
                println!("{engine:?} {}: ERROR {e}", case.fixture);
                unexpected += 1;
                continue;
            }
        };
        if diffs.is_empty() {
            println!(
                "{engine:?} {}: agrees ({} runs)",
                case.fixture,
                case.runs.len()
            );
        }
        for (prog, d) in diffs {
            let known = KNOWN
                .iter()
                .find(|(f, p, what, _)| *f == case.fixture && *p == prog && d.contains(what));
            match known {
                Some((_, _, _, why)) => {
                    println!("{engine:?} {}/{prog}: KNOWN ({why}): {d}", case.fixture)
                }
                None => {
                    println!("{engine:?} {}/{prog}: DIFFERENCE: {d}", case.fixture);
                    unexpected += 1;
                }
            }
        }
    }
    println!(
        "{} test runs compared, {} runs of programs the kernel refuses, {} cases stopped by an rbpf engine refusing a program, {} maps compared",
        stats.runs, stats.refused, stats.engine_refused, stats.maps
    );
    assert_eq!(unexpected, 0, "bpfvm differs from the kernel");
}
