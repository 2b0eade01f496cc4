//! Kernel oracle for per-program loading (issue 13, items 1, 2, 7, 8):
//! - a program in a legacy section (`xdp_pass`) loaded as XDP gives the kernel's return
//!   values and map contents;
//! - an object with one program the kernel refuses (a call to a kernel function no kernel
//!   has) and one good one: both sides load the good one alone and agree on it;
//! - subprograms outside `.text` are linked as the kernel then runs them;
//! - `__kconfig` / `__ksym` externs: bpfvm's `.kconfig` map (given the running kernel's
//!   config and version) holds the bytes libbpf (through bpftool) gives the kernel, and the
//!   program that reads them writes the same `.bss`; the strong ksym libbpf resolves from
//!   kallsyms is refused by bpfvm alone, by name.
//!
//! Programs are loaded as root on both sides (the kernel oracle loads as root).
#![cfg(target_os = "linux")]

use std::process::Command;
use std::sync::Arc;

use bpfvm::loader::{KernelConfig, KernelProgType, LoadError, LoadOptions, Object, ObjectMaps};
use bpfvm::maps::Map;
use bpfvm::{CpuId, Input, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::{
    self, load_object_program, KernelMap, KernelProg, MapDef, TestRun,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures");

fn object(name: &str) -> Object {
    let bytes = std::fs::read(format!("{FIXTURES}/{name}.o")).unwrap();
    Object::parse_named(name, &bytes).unwrap()
}

/// Kernel maps for every map of `obj` (all arrays or hashes here).
fn kernel_maps(obj: &Object) -> Vec<KernelMap> {
    obj.maps()
        .iter()
        .map(|m| {
            let map_type = match m.map_type {
                1 => MapType::Hash,
                2 => MapType::Array,
                t => panic!("map {} of type {t} not used here", m.name),
            };
            let k = KernelMap::create(MapDef {
                map_type,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                map_flags: m.map_flags,
            })
            .unwrap();
            if let Some(data) = &m.initial_data {
                k.update(&0u32.to_ne_bytes(), data, 0).unwrap();
            }
            k
        })
        .collect()
}

/// Program `name` of `obj` loaded into the kernel as `ptype`, its maps from `kmaps`.
fn kernel_prog(
    obj: &Object,
    name: &str,
    ptype: ProgType,
    kmaps: &[KernelMap],
) -> Result<KernelProg, String> {
    let def = obj.program(name).unwrap();
    let maps: Vec<&KernelMap> = def.maps.iter().map(|&i| &kmaps[i]).collect();
    load_object_program(name, ptype, 0, &def.bytecode(), &maps, "GPL")
}

fn kernel_run(p: &KernelProg, packet: &[u8]) -> (u32, Vec<u8>) {
    let out = p
        .test_run_on_cpu(
            0,
            &TestRun {
                data_in: packet.to_vec(),
                data_out_size: packet.len() + 256,
                ..TestRun::default()
            },
        )
        .unwrap();
    (out.retval, out.data_out)
}

fn vm_run(vm: &Vm, p: &bpfvm::LoadedProgram, packet: &[u8]) -> (u32, Vec<u8>) {
    let out = vm
        .test_run(
            p,
            &VmTestRun {
                input: Input::packet(packet.to_vec()),
                repeat: 1,
                cpu: CpuId(0),
            },
        )
        .unwrap();
    (out.retval as u32, out.data_out)
}

/// Every value of array/hash map `i` for keys `keys`, on both sides.
fn values(
    kmaps: &[KernelMap],
    smaps: &ObjectMaps,
    i: usize,
    keys: &[u32],
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let smap: &Arc<Map> = &smaps.all()[i];
    let k = keys
        .iter()
        .map(|k| kmaps[i].lookup(&k.to_ne_bytes(), 0).unwrap_or_default())
        .collect();
    let s = keys
        .iter()
        .map(|k| {
            let mut v = vec![0u8; smap.value_size() as usize];
            match smap.lookup(&k.to_ne_bytes(), &mut v, 0) {
                Ok(()) => v,
                Err(_) => Vec::new(),
            }
        })
        .collect();
    (k, s)
}

#[test]
fn legacy_section_program_with_an_explicit_type_matches_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let obj = object("legacy_section");
    // Without a type bpfvm refuses it rather than running it on an opaque context.
    let smaps = obj.create_maps(1).unwrap();
    assert!(matches!(
        obj.vm_program("pass_len", &smaps),
        Err(LoadError::UnknownProgramType { .. })
    ));
    let kmaps = kernel_maps(&obj);
    let kprog = kernel_prog(&obj, "pass_len", ProgType::Xdp, &kmaps).unwrap();
    let vm = Vm::builder()
        .cpus(1)
        .privilege(bpfvm::Privilege::Root)
        .build();
    let sprog = vm
        .load(
            obj.vm_program_as("pass_len", &smaps, KernelProgType::Xdp)
                .unwrap(),
        )
        .unwrap();
    for len in [60usize, 14, 1500] {
        let packet: Vec<u8> = (0..len).map(|i| i as u8).collect();
        assert_eq!(
            kernel_run(&kprog, &packet),
            vm_run(&vm, &sprog, &packet),
            "len {len}"
        );
        let (k, s) = values(&kmaps, &smaps, 0, &[0, 1]);
        assert_eq!(k, s, "lens after a {len}-byte packet");
        assert_eq!(
            u64::from_ne_bytes(k[0][..8].try_into().unwrap()),
            len as u64
        );
    }
}

/// The bytes of ELF section `name` of a little-endian ELF64 file.
fn elf_section<'a>(elf: &'a [u8], name: &str) -> &'a [u8] {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .find_map(|i| {
            let h = header(i);
            let start = strtab + u32_at(h);
            let end = start + elf[start..].iter().position(|&b| b == 0)?;
            (&elf[start..end] == name.as_bytes())
                .then(|| &elf[u64_at(h + 0x18)..u64_at(h + 0x18) + u64_at(h + 0x20)])
        })
        .unwrap_or_else(|| panic!("no section {name}"))
}

#[test]
fn object_with_a_kernel_refused_program_and_a_good_one() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let bytes = std::fs::read(format!("{FIXTURES}/partial.o")).unwrap();
    let obj = Object::parse_named("partial", &bytes).unwrap();
    // The kernel refuses uses_kfunc's instructions as they are in the object (the call to
    // a kernel function no kernel has); bpfvm refuses the program at load, naming the
    // kfunc nobody registered.
    let tc = elf_section(&bytes, "tc");
    let mut log = String::new();
    let refused = KernelProg::load(ProgType::SchedCls, 0, tc, "GPL", &mut log);
    assert!(
        refused.is_err(),
        "the kernel loads a call to a missing kfunc"
    );
    let e = Vm::default()
        .load(
            obj.vm_program("uses_kfunc", &obj.create_maps(4).unwrap())
                .unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(&e, bpfvm::PrepareError::UnresolvedKfunc { name, .. } if name == "bpf_kfunc_that_does_not_exist"),
        "{e:?}"
    );
    // The good program loads on both sides and agrees.
    let kmaps = kernel_maps(&obj);
    let kprog = kernel_prog(&obj, "good", ProgType::Xdp, &kmaps).unwrap();
    let smaps = obj.create_maps(1).unwrap();
    let vm = Vm::builder()
        .cpus(1)
        .privilege(bpfvm::Privilege::Root)
        .build();
    let sprog = vm.load(obj.vm_program("good", &smaps).unwrap()).unwrap();
    for len in [60usize, 64, 200] {
        let packet = vec![0xab; len];
        assert_eq!(kernel_run(&kprog, &packet), vm_run(&vm, &sprog, &packet));
    }
    let (k, s) = values(&kmaps, &smaps, 0, &[0]);
    assert_eq!(k, s);
    assert_eq!(u64::from_ne_bytes(k[0][..8].try_into().unwrap()), 3);
}

#[test]
fn subprograms_outside_text_run_as_in_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let obj = object("section_subprogs");
    let kmaps = kernel_maps(&obj);
    let smaps = obj.create_maps(1).unwrap();
    let vm = Vm::builder()
        .cpus(1)
        .privilege(bpfvm::Privilege::Root)
        .build();
    for (name, ptype) in [
        ("subprogs_xdp", ProgType::Xdp),
        ("subprogs_tc", ProgType::SchedCls),
    ] {
        let kprog = kernel_prog(&obj, name, ptype, &kmaps).unwrap();
        let sprog = vm.load(obj.vm_program(name, &smaps).unwrap()).unwrap();
        for len in [14usize, 60, 61, 999] {
            let packet: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            assert_eq!(
                kernel_run(&kprog, &packet),
                vm_run(&vm, &sprog, &packet),
                "{name} on {len} bytes"
            );
        }
    }
}

/// Runs a command, its stdout when it succeeds.
fn cmd(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `"value": ["0x..", ...]` bytes of `bpftool -j map dump`'s first entry.
fn dumped_value(json: &str) -> Vec<u8> {
    let start = json.find("\"value\":[").expect("a value") + 9;
    let end = start + json[start..].find(']').unwrap();
    json[start..end]
        .split(',')
        .map(|h| u8::from_str_radix(h.trim_matches('"').trim_start_matches("0x"), 16).unwrap())
        .collect()
}

/// The map ids a pinned program uses (`bpftool -j prog show`).
fn map_ids(pinned: &str) -> Vec<String> {
    let json = cmd("bpftool", &["-j", "prog", "show", "pinned", pinned]).unwrap();
    let start = json.find("\"map_ids\":[").expect("map ids") + 11;
    let end = start + json[start..].find(']').unwrap();
    json[start..end].split(',').map(str::to_string).collect()
}

/// A bpffs directory removed when dropped.
struct Pins(String);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn kconfig_and_ksym_externs_match_libbpf() {
    if !kernel::oracle_or_skip() {
        return;
    }
    if cmd("bpftool", &["version"]).is_err() {
        println!("SKIP: bpftool is not installed");
        return;
    }
    let Ok(config) = cmd("zcat", &["/proc/config.gz"]) else {
        println!("SKIP: no /proc/config.gz");
        return;
    };
    let pins = Pins(format!("/sys/fs/bpf/bpfvm_loadall_{}", std::process::id()));
    let path = format!("{FIXTURES}/externs.o");
    cmd("bpftool", &["prog", "loadall", &path, &pins.0]).unwrap();

    // bpfvm with the running kernel's config and version, as libbpf reads them.
    let release = cmd("uname", &["-r"]).unwrap();
    let v: Vec<u32> = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let mut kconfig = KernelConfig::parse(&config).unwrap();
    kconfig.set_kernel_version(v[0], v[1], v[2]);
    let bytes = std::fs::read(&path).unwrap();
    let obj = Object::parse_with("externs", &bytes, &LoadOptions { kconfig }).unwrap();

    // The .kconfig map: same layout, same values.
    let pinned = format!("{}/read_externs", pins.0);
    let ids = map_ids(&pinned);
    let dump = |id: &str| dumped_value(&cmd("bpftool", &["-j", "map", "dump", "id", id]).unwrap());
    let kconfig_bytes = ids
        .iter()
        .map(|id| dump(id))
        .find(|v| v.len() == obj.map(".kconfig").unwrap().value_size as usize)
        .expect("libbpf's .kconfig map");
    assert_eq!(
        obj.map(".kconfig").unwrap().initial_data.as_deref(),
        Some(&kconfig_bytes[..])
    );

    // read_externs writes the same .bss and returns the same value.
    let data = std::env::temp_dir().join(format!("bpfvm-loadall-{}", std::process::id()));
    std::fs::write(&data, [0u8; 60]).unwrap();
    let run = cmd(
        "bpftool",
        &[
            "prog",
            "run",
            "pinned",
            &pinned,
            "data_in",
            &data.display().to_string(),
        ],
    );
    let _ = std::fs::remove_file(&data);
    let run = run.unwrap();
    let bss_size = obj.map(".bss").unwrap().value_size as usize;
    let kernel_bss = ids
        .iter()
        .map(|id| dump(id))
        .find(|v| v.len() == bss_size)
        .expect("libbpf's .bss map");
    let smaps = obj.create_maps(1).unwrap();
    let vm = Vm::builder()
        .cpus(1)
        .privilege(bpfvm::Privilege::Root)
        .build();
    let sprog = vm
        .load(obj.vm_program("read_externs", &smaps).unwrap())
        .unwrap();
    let (ret, _) = vm_run(&vm, &sprog, &[0u8; 60]);
    assert!(run.contains(&format!("Return value: {ret},")), "{run}");
    let mut bss = vec![0u8; bss_size];
    smaps
        .get(".bss")
        .unwrap()
        .lookup(&0u32.to_ne_bytes(), &mut bss, 0)
        .unwrap();
    assert_eq!(bss, kernel_bss);

    // libbpf resolves the strong ksym _stext from kallsyms; bpfvm has no kernel symbols and
    // refuses that program alone, naming the symbol.
    assert!(std::path::Path::new(&format!("{}/strong_ksym", pins.0)).exists());
    let e = obj.program_result("strong_ksym").unwrap_err();
    assert!(
        matches!(&e, LoadError::UnresolvedExtern { name, .. } if name == "_stext"),
        "{e:?}"
    );
}
