//! CO-RE relocations against the kernel: the fixtures `core_abi.o` (contexts and protocol
//! headers) and `core_kernel.o` (every relocation kind, on kernel-internal types) are
//! loaded by the real kernel through bpftool, i.e. libbpf resolving them against
//! `/sys/kernel/btf/vmlinux`, and test-run; bpfvm resolves the same objects against the
//! same file (and `core_abi.o` also against its own BTF, with no target at all) and runs
//! them on the same packets. Return values and the `facts` map must be equal.
//!
//! Needs root, bpftool, `/sys/kernel/btf/vmlinux` and a bpffs it mounts in a scratch
//! directory; without any of them the test says why and skips (fails with
//! BPFVM_REQUIRE_KERNEL=1).
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfvm::loader::{Btf, Object};
use bpfvm::{CpuId, Input, Privilege, RunError, TestRun, VerifierMode, Vm};
use bpfvm_conformance::kernel::{self, REQUIRE_ENV};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures");
const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Prints why the test cannot run and skips, or fails when the oracle is required.
fn skip(reason: &str) -> Option<Btf> {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("kernel CO-RE oracle required ({REQUIRE_ENV}=1) but unavailable: {reason}");
    }
    println!("SKIP kernel CO-RE oracle: {reason}");
    eprintln!("SKIP kernel CO-RE oracle: {reason}");
    None
}

/// The kernel's BTF when everything the oracle needs is there.
fn prerequisites() -> Option<Btf> {
    if !kernel::oracle_or_skip() {
        return None;
    }
    if !Path::new(VMLINUX).exists() {
        return skip(&format!("{VMLINUX} does not exist (a kernel without BTF)"));
    }
    if Command::new("bpftool").arg("version").output().is_err() {
        return skip("bpftool is not installed");
    }
    Some(Btf::from_file(VMLINUX).expect("the kernel's BTF parses"))
}

/// A bpffs mounted on a scratch directory, unmounted and removed on drop.
struct Bpffs(PathBuf);

impl Bpffs {
    fn mount(tag: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("bpfvm-core-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "bpf", "bpf"])
            .arg(&dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            let _ = std::fs::remove_dir(&dir);
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Self(dir))
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn bpftool(args: &[&str]) -> Result<String, String> {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "bpftool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// What a sequence of runs leaves: each return value and the `facts` array.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    retvals: Vec<u64>,
    facts: Vec<u64>,
}

/// Loads `fixture` with bpftool (libbpf resolves CO-RE against the kernel's BTF), runs
/// `runs` with BPF_PROG_TEST_RUN and dumps `facts`.
fn in_kernel(fixture: &str, runs: &[(&str, Vec<u8>)]) -> Result<Outcome, String> {
    let fs = Bpffs::mount(fixture)?;
    let obj = format!("{FIXTURES}/{fixture}.o");
    let progs = fs.0.join("progs");
    let maps = fs.0.join("maps");
    let (progs, maps) = (progs.to_str().unwrap(), maps.to_str().unwrap());
    bpftool(&["prog", "loadall", &obj, progs, "pinmaps", maps])?;
    let mut retvals = Vec::new();
    for (i, (prog, packet)) in runs.iter().enumerate() {
        let data = fs.0.with_extension(format!("pkt{i}"));
        std::fs::write(&data, packet).map_err(|e| e.to_string())?;
        let out = bpftool(&[
            "-j",
            "prog",
            "run",
            "pinned",
            &format!("{progs}/{prog}"),
            "data_in",
            data.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_file(&data);
        let json: serde_json::Value = serde_json::from_str(&out?).map_err(|e| e.to_string())?;
        retvals.push(json["retval"].as_u64().ok_or("no retval")?);
    }
    let dump = bpftool(&["-j", "map", "dump", "pinned", &format!("{maps}/facts")])?;
    let entries: serde_json::Value = serde_json::from_str(&dump).map_err(|e| e.to_string())?;
    let bytes = |v: &serde_json::Value| -> Vec<u8> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|b| {
                        u8::from_str_radix(b.as_str()?.trim_start_matches("0x"), 16).ok()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut facts = Vec::new();
    for e in entries.as_array().ok_or("map dump is not a list")? {
        let key = u32::from_ne_bytes(bytes(&e["key"]).try_into().map_err(|_| "key")?);
        let value = u64::from_ne_bytes(bytes(&e["value"]).try_into().map_err(|_| "value")?);
        if facts.len() <= key as usize {
            facts.resize(key as usize + 1, 0);
        }
        facts[key as usize] = value;
    }
    Ok(Outcome { retvals, facts })
}

/// The same in bpfvm, CO-RE resolved against `target`.
fn in_bpfvm(fixture: &str, target: Option<&Btf>, runs: &[(&str, Vec<u8>)]) -> Outcome {
    let bytes = std::fs::read(format!("{FIXTURES}/{fixture}.o")).unwrap();
    let obj = Object::parse_with_btf(fixture, &bytes, target).unwrap();
    let maps = obj.create_maps(1).unwrap();
    // bpftool loads as root: so does bpfvm's kernel verifier here.
    let vm = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    let mut retvals = Vec::new();
    for (prog, packet) in runs {
        let p = vm.load(obj.vm_program(prog, &maps).unwrap()).unwrap();
        let run = TestRun {
            input: Input::packet(packet.clone()),
            repeat: 1,
            cpu: CpuId(0),
        };
        retvals.push(vm.test_run(&p, &run).unwrap().retval);
    }
    let facts = maps.get("facts").unwrap();
    let facts = (0..facts.max_entries())
        .map(|k| {
            let mut v = [0u8; 8];
            facts.lookup(&k.to_ne_bytes(), &mut v, 0).unwrap();
            u64::from_ne_bytes(v)
        })
        .collect();
    Outcome { retvals, facts }
}

/// Ethernet + IPv4 (`ihl` words, ttl `ttl`, UDP) + 8 payload bytes.
fn ipv4(ihl: u8, ttl: u8) -> Vec<u8> {
    let mut f = vec![0xaa; 12];
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0u8; usize::from(ihl) * 4];
    ip[0] = 0x40 | ihl;
    let tot = (ip.len() + 8) as u16;
    ip[2..4].copy_from_slice(&tot.to_be_bytes());
    ip[8] = ttl;
    ip[9] = 17;
    f.extend(ip);
    f.extend([0x5a; 8]);
    f
}

#[test]
fn abi_types_resolve_as_the_kernel_resolves_them() {
    let Some(vmlinux) = prerequisites() else {
        return;
    };
    let mut arp = vec![0xbb; 12];
    arp.extend_from_slice(&0x0806u16.to_be_bytes());
    arp.extend([0; 28]);
    let runs = [
        ("skb_core", ipv4(5, 64)),
        ("xdp_core", ipv4(7, 3)),
        ("skb_core", arp.clone()),
        ("xdp_core", vec![0xcc; 20]),
    ];
    let kernel = match in_kernel("core_abi", &runs) {
        Ok(k) => k,
        Err(e) => {
            skip(&format!("the kernel side could not run: {e}"));
            return;
        }
    };
    assert_eq!(in_bpfvm("core_abi", None, &runs), kernel, "own BTF");
    assert_eq!(
        in_bpfvm("core_abi", Some(&vmlinux), &runs),
        kernel,
        "vmlinux"
    );
}

#[test]
fn kernel_types_resolve_as_libbpf_resolves_them_against_vmlinux() {
    let Some(vmlinux) = prerequisites() else {
        return;
    };
    let runs = [("kernel_core", ipv4(5, 64))];
    let kernel = match in_kernel("core_kernel", &runs) {
        Ok(k) => k,
        Err(e) => {
            skip(&format!("the kernel side could not run: {e}"));
            return;
        }
    };
    let ours = in_bpfvm("core_kernel", Some(&vmlinux), &runs);
    assert_eq!(ours, kernel);
    println!("kernel_core facts (kernel = bpfvm): {:?}", kernel.facts);
}

#[test]
fn a_reached_poison_is_refused_by_the_kernel_and_faults_in_bpfvm() {
    let Some(vmlinux) = prerequisites() else {
        return;
    };
    let fs = match Bpffs::mount("poison") {
        Ok(fs) => fs,
        Err(e) => {
            skip(&format!("cannot mount bpffs: {e}"));
            return;
        }
    };
    let obj = format!("{FIXTURES}/core_poison.o");
    let progs = fs.0.join("progs");
    let e = bpftool(&["prog", "loadall", &obj, progs.to_str().unwrap()]).unwrap_err();
    // The kernel's verifier: "invalid func unknown#195896080" (0xbad2310), which libbpf
    // rewrites in the log into the relocation it stands for.
    assert!(
        e.contains("195896080") || e.contains("invalid CO-RE relocation"),
        "{e}"
    );
    // bpfvm's kernel verifier refuses it alike; with its structural checks only, bpfvm
    // loads it and faults in the run that reaches the poison.
    let bytes = std::fs::read(&obj).unwrap();
    let obj = Object::parse_with_btf("core_poison", &bytes, Some(&vmlinux)).unwrap();
    let maps = obj.create_maps(1).unwrap();
    let kernel_mode = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    let refused = kernel_mode
        .load(obj.vm_program("reach_poison", &maps).unwrap())
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("invalid func unknown#195896080"),
        "{refused}"
    );
    let vm = Vm::builder()
        .cpus(1)
        .verifier(VerifierMode::Structural)
        .build();
    // bpfvm names the relocation as libbpf's log does.
    let def = obj.program("reach_poison").unwrap();
    let ours = &def.core_poisons[0].1;
    let libbpf = format!("<{}> {}", ours.kind, ours.access);
    assert!(e.contains(&libbpf), "{libbpf} not in {e}");
    let p = vm
        .load(obj.vm_program("reach_poison", &maps).unwrap())
        .unwrap();
    let run = |len: usize| {
        vm.test_run(
            &p,
            &TestRun {
                input: Input::packet(vec![0; len]),
                repeat: 1,
                cpu: CpuId(0),
            },
        )
        .map(|r| r.retval)
    };
    assert_eq!(run(14), Ok(1));
    assert!(matches!(run(64), Err(RunError::CorePoison { .. })));
}
