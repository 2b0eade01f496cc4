//! `bpf_snprintf_btf` (149) against the kernel: a `raw_tracepoint` program (test-run with
//! `BPF_PROG_TEST_RUN`) shows a map value filled with a known pattern as a vmlinux type
//! (`struct iphdr`, `struct ethhdr`, `struct tcphdr`, `struct in6_addr`, `struct
//! sk_buff`, `struct task_struct`, `struct bpf_map`, `struct sock`, `struct net_device`,
//! `union bpf_attr`: bitfields, enums, unions, char and pointer arrays, nested anonymous
//! members) with each flag combination and several buffer sizes,
//! and writes the return value and the string into a second map; bpfvm, given
//! `/sys/kernel/btf/vmlinux` as its target BTF, must write the same bytes and return the
//! same value. The type ids are the running kernel's (looked up in its BTF by name, as
//! `bpf_core_type_id_kernel` resolves them at load). Hashed pointers (`%p`, a per-boot
//! random key in the kernel) are compared as their form only; `BTF_F_PTR_RAW` ones exactly.
//! The argument errors (flags, `btf_ptr_size`, type id 0, an id past the BTF, a NULL
//! object) are compared too.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::loader::{Btf, BtfType};
use bpfvm::maps::{Map, MapSpec};
use bpfvm::{CpuId, Input, Privilege, Program, ProgramType, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::asm;
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::diff::HostMap;
use bpfvm_conformance::kernel::{self, load_object_program, KernelMap, MapDef, TestRun};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
/// The object's map value: large enough for every type shown.
const OBJ_SIZE: u32 = 16384;
/// The output map value: the return value (8 bytes), then the string buffer.
const STR_SIZE: u32 = 8192;
const OUT_SIZE: u32 = 8 + STR_SIZE;

/// The object bytes: a pattern with zero bytes and zero runs (so zero members are left
/// out) and printable characters (so char arrays print as characters).
fn pattern() -> Vec<u8> {
    (0..OBJ_SIZE as usize)
        .map(|i| match i % 29 {
            0..=3 => 0,
            4..=9 => b'a' + (i % 26) as u8,
            _ => (i.wrapping_mul(37) ^ 0x5a) as u8,
        })
        .collect()
}

/// How the program builds its `struct btf_ptr`.
#[derive(Clone, Copy, Debug)]
struct Call {
    type_id: u32,
    flags: i32,
    str_size: i32,
    btf_ptr_size: i32,
    /// Point at the object (else NULL).
    object: bool,
}

/// r6 = obj value, r7 = out value, `*(u64 *)out = bpf_snprintf_btf(out + 8, ...)`.
fn program(c: Call) -> Vec<u8> {
    let lookup = |map: i32| {
        let mut v = vec![asm::st_w(10, -4, 0)];
        v.extend(asm::ld_map(1, map));
        v.extend([
            asm::mov64_reg(2, 10),
            asm::add64_imm(2, -4),
            asm::call(1),
            asm::jne_imm(0, 0, 2),
            asm::mov64_imm(0, 0),
            asm::exit(),
        ]);
        v
    };
    let ptr = if c.object {
        asm::stx_dw(10, 6, -24)
    } else {
        asm::st_dw(10, -24, 0)
    };
    asm::image(&[
        &lookup(0),
        &[asm::mov64_reg(6, 0)],
        &lookup(1),
        &[
            asm::mov64_reg(7, 0),
            ptr,
            asm::st_w(10, -16, c.type_id as i32),
            asm::st_w(10, -12, 0),
            asm::mov64_reg(1, 7),
            asm::add64_imm(1, 8),
            asm::mov64_imm(2, c.str_size),
            asm::mov64_reg(3, 10),
            asm::add64_imm(3, -24),
            asm::mov64_imm(4, c.btf_ptr_size),
            asm::mov64_imm(5, c.flags),
            asm::call(149),
            asm::stx_dw(7, 0, 0),
            asm::mov64_imm(0, 0),
            asm::exit(),
        ],
    ])
}

/// The id of struct (or, with a `union ` prefix, union) `name` in `btf`.
fn struct_id(btf: &Btf, name: &str) -> u32 {
    let (union, name) = match name.strip_prefix("union ") {
        Some(n) => (true, n),
        None => (false, name),
    };
    btf.types()
        .iter()
        .position(|t| match t {
            BtfType::Struct { name: n, .. } => !union && n.as_str() == name,
            BtfType::Union { name: n, .. } => union && n.as_str() == name,
            _ => false,
        })
        .unwrap_or_else(|| panic!("vmlinux has {name}")) as u32
}

/// The kernel's `%p` values differ per boot: `0x00000000` and 8 hex digits become a
/// placeholder (other numbers never print with 8 leading zeros), as does a hashed value
/// the buffer's end cut (its hex digits run into the NUL). The bytes after the NUL are
/// kept as they are.
fn unhash(bytes: &[u8]) -> Vec<u8> {
    let pat = b"0x00000000";
    let text_end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < text_end {
        let rest = &bytes[i..text_end];
        let digits = rest.get(10..).map_or(0, |d| {
            d.iter()
                .take(8)
                .take_while(|c| c.is_ascii_hexdigit())
                .count()
        });
        let whole = digits == 8 && rest[10..18] != *b"00000000";
        let cut = digits > 0 && digits < 8 && 10 + digits == rest.len();
        if rest.starts_with(pat) && (whole || cut) {
            out.extend_from_slice(b"0x%p");
            i += 10 + digits;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&bytes[text_end..]);
    out
}

struct Maps {
    kobj: KernelMap,
    kout: KernelMap,
    sobj: Arc<Map>,
    sout: Arc<Map>,
}

fn maps() -> Maps {
    let def = |value_size| MapDef {
        map_type: MapType::Array,
        key_size: 4,
        value_size,
        max_entries: 1,
        map_flags: 0,
    };
    let sim = |value_size| {
        Arc::new(Map::create(MapSpec::new(MapType::Array, 4, value_size, 1), 1).unwrap())
    };
    let m = Maps {
        kobj: KernelMap::create(def(OBJ_SIZE)).unwrap(),
        kout: KernelMap::create(def(OUT_SIZE)).unwrap(),
        sobj: sim(OBJ_SIZE),
        sout: sim(OUT_SIZE),
    };
    let key = 0u32.to_ne_bytes();
    m.kobj.update(&key, &pattern(), 0).unwrap();
    HostMap::update(&*m.sobj, &key, &pattern(), 0).unwrap();
    m
}

/// Runs `c` in the kernel and in bpfvm: (kernel out value, bpfvm out value).
fn run(vm: &Vm, m: &Maps, c: Call) -> (Vec<u8>, Vec<u8>) {
    let key = 0u32.to_ne_bytes();
    let fill = vec![0xaa; OUT_SIZE as usize];
    let code = program(c);
    m.kout.update(&key, &fill, 0).unwrap();
    let kprog = load_object_program(
        "snprintf_btf",
        ProgType::RawTracepoint,
        0,
        &code,
        &[&m.kobj, &m.kout],
        "GPL",
    )
    .unwrap_or_else(|e| panic!("the kernel loads {c:?}: {e}"));
    let k = kprog.test_run(&TestRun::default()).unwrap();
    assert_eq!(k.retval, 0);
    let kout = m.kout.lookup(&key, 0).unwrap();

    HostMap::update(&*m.sout, &key, &fill, 0).unwrap();
    let prog = vm
        .load(
            Program::new(code, ProgramType::RawTracepoint)
                .with_map(m.sobj.clone())
                .with_map(m.sout.clone()),
        )
        .unwrap_or_else(|e| panic!("bpfvm loads {c:?}: {e}"));
    let s = vm
        .test_run(
            &prog,
            &VmTestRun {
                input: Input::context(Vec::new()),
                repeat: 1,
                cpu: CpuId(0),
            },
        )
        .unwrap_or_else(|e| panic!("bpfvm runs {c:?}: {e}"));
    assert_eq!(s.retval, 0);
    let sout = HostMap::lookup(&*m.sout, &key, 0).unwrap();
    (kout, sout)
}

fn ret(out: &[u8]) -> i64 {
    i64::from_ne_bytes(out[..8].try_into().unwrap())
}

#[test]
fn shows_vmlinux_types_as_the_kernel_does() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let Ok(btf) = Btf::from_file(VMLINUX) else {
        println!("SKIP: no {VMLINUX}");
        return;
    };
    let btf = Arc::new(btf);
    let ids: Vec<(&str, u32)> = [
        "iphdr",
        "ethhdr",
        "tcphdr",
        "in6_addr",
        "sk_buff",
        "task_struct",
        "bpf_map",
        "sock",
        "net_device",
        "union bpf_attr",
    ]
    .iter()
    .map(|n| (*n, struct_id(&btf, n)))
    .collect();
    let vm = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    vm.set_target_btf(Some(btf.clone()));
    let m = maps();
    let mut failures = Vec::new();
    let mut compared = 0;
    for &(name, type_id) in &ids {
        for flags in 0..16 {
            let sizes: &[i32] = if flags == 0 || flags == 1 {
                &[STR_SIZE as i32, 1, 17, 200]
            } else {
                &[STR_SIZE as i32]
            };
            for &str_size in sizes {
                let c = Call {
                    type_id,
                    flags,
                    str_size,
                    btf_ptr_size: 16,
                    object: true,
                };
                let (k, s) = run(&vm, &m, c);
                compared += 1;
                let (kret, sret) = (ret(&k), ret(&s));
                let (k, s) = if flags & 4 == 0 {
                    (unhash(&k[8..]), unhash(&s[8..]))
                } else {
                    (k[8..].to_vec(), s[8..].to_vec())
                };
                if kret <= 0 {
                    failures.push(format!("{name} flags {flags}: the kernel returned {kret}"));
                }
                if kret != sret || k != s {
                    let end = |b: &[u8]| b.iter().position(|&x| x == 0).unwrap_or(b.len());
                    failures.push(format!(
                        "{name} flags {flags} size {str_size}: kernel {kret}, bpfvm {sret}\n \
                         kernel {:?}\n bpfvm  {:?}",
                        String::from_utf8_lossy(&k[..end(&k)]),
                        String::from_utf8_lossy(&s[..end(&s)]),
                    ));
                }
            }
        }
    }
    println!("{compared} shows compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn argument_errors_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let Ok(btf) = Btf::from_file(VMLINUX) else {
        println!("SKIP: no {VMLINUX}");
        return;
    };
    let btf = Arc::new(btf);
    let iphdr = struct_id(&btf, "iphdr");
    let m = maps();
    let ok = Call {
        type_id: iphdr,
        flags: 0,
        str_size: 256,
        btf_ptr_size: 16,
        object: true,
    };
    let cases = [
        ("unknown flag", Call { flags: 16, ..ok }, -22),
        (
            "btf_ptr_size 8",
            Call {
                btf_ptr_size: 8,
                ..ok
            },
            -22,
        ),
        (
            "btf_ptr_size 24",
            Call {
                btf_ptr_size: 24,
                ..ok
            },
            -22,
        ),
        ("type id 0", Call { type_id: 0, ..ok }, -22),
        (
            "type id past the BTF",
            Call {
                type_id: btf.types().len() as u32,
                ..ok
            },
            -2,
        ),
        (
            "negative type id",
            Call {
                type_id: 0x8000_0001,
                ..ok
            },
            -2,
        ),
        (
            "NULL object",
            Call {
                object: false,
                ..ok
            },
            -34,
        ),
    ];
    let vm = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    vm.set_target_btf(Some(btf.clone()));
    let mut failures = Vec::new();
    for (name, c, want) in cases {
        let (k, s) = run(&vm, &m, c);
        println!("{name}: kernel {}, bpfvm {}", ret(&k), ret(&s));
        if ret(&k) != want {
            failures.push(format!("{name}: the kernel's result changed: {}", ret(&k)));
        }
        if k != s {
            failures.push(format!("{name}: kernel {}, bpfvm {}", ret(&k), ret(&s)));
        }
    }
    // No target BTF: -EINVAL, as a kernel without BTF.
    let bare = Vm::builder().cpus(1).privilege(Privilege::Root).build();
    let (_, s) = run(&bare, &m, ok);
    if ret(&s) != -22 {
        failures.push(format!("no target BTF: bpfvm {}", ret(&s)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn which_programs_may_call_it_matches_the_kernel() {
    use bpfvm_conformance::verdicts::{asm as vasm, compare, Case};
    use bpfvm_verifier::ProgType as VProgType;
    if !kernel::oracle_or_skip() {
        return;
    }
    // A well-formed call: a 32-byte string buffer and an initialised btf_ptr on the stack.
    let good = "stdw [r10-16], 0\nstdw [r10-8], 0\nmov64 r1, r10\nadd64 r1, -48\n\
                mov64 r2, 32\nmov64 r3, r10\nadd64 r3, -16\nmov64 r4, 16\nmov64 r5, 0\n\
                call 149\nmov64 r0, 0\nexit";
    // Rule checks of the prototype: a btf_ptr that is not initialised (root may pass
    // uninitialised stack), a string size of 0 (ARG_CONST_SIZE refuses it). Without
    // CAP_PERFMON no program type has the helper.
    let uninit_ptr = "mov64 r1, r10\nadd64 r1, -48\nmov64 r2, 32\nmov64 r3, r10\n\
                      add64 r3, -16\nmov64 r4, 16\nmov64 r5, 0\ncall 149\nmov64 r0, 0\nexit";
    let zero_size = "stdw [r10-16], 0\nstdw [r10-8], 0\nmov64 r1, r10\nadd64 r1, -48\n\
                     mov64 r2, 0\nmov64 r3, r10\nadd64 r3, -16\nmov64 r4, 16\nmov64 r5, 0\n\
                     call 149\nmov64 r0, 0\nexit";
    let mut failures = Vec::new();
    let mut compared = 0;
    for t in [
        VProgType::SocketFilter,
        VProgType::Xdp,
        VProgType::SchedCls,
        VProgType::Kprobe,
        VProgType::Tracepoint,
        VProgType::RawTracepoint,
        VProgType::PerfEvent,
    ] {
        // Tracing types need CAP_PERFMON to load at all (EPERM before the verifier).
        let networking = matches!(
            t,
            VProgType::SocketFilter | VProgType::Xdp | VProgType::SchedCls
        );
        let privileges: &[Privilege] = if networking {
            &[Privilege::Root, Privilege::CapBpfNetAdmin]
        } else {
            &[Privilege::Root]
        };
        for &privilege in privileges {
            for (what, src) in [
                ("call", good),
                ("uninitialised btf_ptr", uninit_ptr),
                ("str_size 0", zero_size),
            ] {
                let name = format!("{t:?} {privilege:?} {what}");
                let case = Case::new(&name, t, vasm(src));
                let cmp = compare(&case, privilege).unwrap_or_else(|e| panic!("{name}: {e}"));
                compared += 1;
                println!("{}", cmp.describe());
                if let Some(d) = cmp.disagreement() {
                    failures.push(format!("{name}: {d}"));
                }
            }
        }
    }
    println!("{compared} verdicts compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
