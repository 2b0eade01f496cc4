//! Runs the `lpm_firewall.o` fixture (XDP: an LPM trie of source prefixes, a hash of
//! per-rule totals kept under a `bpf_spin_lock`, a queue of dropped sources) in the kernel
//! and in bpfvm: the same rules, then random frames on every CPU, one at a time and with
//! `repeat`, must get the same verdicts and leave the same maps (rules in `get_next_key`
//! order, every rule's totals, the queue's contents in pop order). The kernel's maps are
//! created with BTF for the value holding the lock, as libbpf creates them.
#![cfg(target_os = "linux")]

use bpfvm::loader::Object;
use bpfvm::{CpuId, Input, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::btf::{BtfBuilder, KernelBtf};
use bpfvm_conformance::kernel::consts::{MapType, ProgType};
use bpfvm_conformance::kernel::diff::{HostMap, SplitMix64};
use bpfvm_conformance::kernel::{self, load_object_program, KernelMap, MapDef, TestRun};

const OBJECT: &[u8] = include_bytes!("../../vm/tests/fixtures/lpm_firewall.o");

/// BTF with `u32` (id 1), `u64` (2), `struct bpf_spin_lock` (3) and `struct rule_stat` (4).
fn btf() -> BtfBuilder {
    let mut b = BtfBuilder::new();
    let u32_id = b.int("unsigned int", 4, false);
    let u64_id = b.int("long long unsigned int", 8, false);
    let lock = b.structure("bpf_spin_lock", 4, &[("val", u32_id, 0)]);
    b.structure(
        "rule_stat",
        24,
        &[
            ("lock", lock, 0),
            ("pad", u32_id, 4),
            ("packets", u64_id, 8),
            ("bytes", u64_id, 16),
        ],
    );
    b
}

/// The kernel's maps in the object's order; `rule_stats` with its BTF.
fn kernel_maps(obj: &Object, btf: &KernelBtf) -> Vec<KernelMap> {
    obj.maps()
        .iter()
        .map(|m| {
            let def = MapDef {
                map_type: MapType::try_from(m.map_type).unwrap(),
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                map_flags: m.map_flags,
            };
            if m.name == "rule_stats" {
                KernelMap::create_with_btf(def, btf, 1, 4).unwrap()
            } else {
                KernelMap::create(def).unwrap()
            }
        })
        .collect()
}

fn frame(src: [u8; 4], payload: usize) -> Vec<u8> {
    let mut f = vec![0xaa; 12];
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&[192, 0, 2, 1]);
    f.extend(ip);
    f.extend(std::iter::repeat_n(0x5a, payload));
    f
}

/// Every (key, value) of a map in `get_next_key` order.
fn walk(m: &dyn HostMap) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    while out.len() < 1000 {
        let Ok(k) = m.get_next_key(out.last().map(|(k, _)| k.as_slice())) else {
            break;
        };
        let v = m.lookup(&k, 0).unwrap_or_default();
        out.push((k, v));
    }
    out
}

#[test]
fn lpm_firewall_agrees_with_the_kernel_on_every_cpu() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let n = kernel::possible_cpus().unwrap();
    let obj = Object::parse(OBJECT).unwrap();
    let kbtf = KernelBtf::load(&btf()).unwrap();
    let kmaps = kernel_maps(&obj, &kbtf);
    let smaps = obj.create_maps(n).unwrap();
    let idx = |name: &str| obj.map_index(name).unwrap();
    let (rules, stats, log) = (idx("rules"), idx("rule_stats"), idx("drop_log"));
    assert_eq!(smaps.all()[stats].spin_lock_off(), Some(0));

    // Rules: id, pass?, prefix.
    let seeded = [
        (8, [10, 0, 0, 0], 1u32, true),
        (16, [10, 1, 0, 0], 2, false),
        (24, [10, 1, 2, 0], 3, true),
        (16, [192, 168, 0, 0], 4, false),
        (0, [0, 0, 0, 0], 5, true),
        (32, [192, 168, 7, 7], 6, true),
    ];
    for (len, addr, id, pass) in seeded {
        let key = [&(len as u32).to_ne_bytes()[..], &addr].concat();
        let value = [id.to_ne_bytes(), u32::from(pass).to_ne_bytes()].concat();
        for m in [&kmaps[rules] as &dyn HostMap, &*smaps.all()[rules]] {
            m.update(&key, &value, 0).unwrap();
        }
    }

    let def = obj.program("xdp_firewall").unwrap();
    let prog_kmaps: Vec<&KernelMap> = def.maps.iter().map(|&i| &kmaps[i]).collect();
    let kprog = load_object_program(
        "xdp_firewall",
        ProgType::Xdp,
        0,
        &def.bytecode(),
        &prog_kmaps,
        "GPL",
    )
    .unwrap();
    let vm = Vm::builder().cpus(n).build();
    let prog = vm
        .load(obj.vm_program("xdp_firewall", &smaps).unwrap())
        .unwrap();

    let sources: [[u8; 4]; 8] = [
        [10, 9, 9, 9],
        [10, 1, 9, 9],
        [10, 1, 2, 3],
        [192, 168, 5, 5],
        [192, 168, 7, 7],
        [8, 8, 8, 8],
        [10, 1, 2, 200],
        [192, 168, 0, 1],
    ];
    let mut r = SplitMix64::new(14);
    let mut differ = 0;
    let mut verdicts = std::collections::BTreeSet::new();
    for step in 0..400u32 {
        let cpu = step % n;
        let mut packet = frame(*r.pick(&sources), r.below(40) as usize);
        match r.below(20) {
            0 => packet.truncate(20), // too short for the IP header: dropped
            1 => packet[12..14].copy_from_slice(&[0x86, 0xdd]), // not IPv4: passes
            _ => {}
        }
        let repeat = if r.below(10) == 0 { 50 } else { 1 };
        let k = kprog
            .test_run_on_cpu(
                cpu,
                &TestRun {
                    data_in: packet.clone(),
                    repeat,
                    ..TestRun::default()
                },
            )
            .unwrap()
            .retval;
        let run = VmTestRun {
            input: Input::packet(packet),
            repeat,
            cpu: CpuId(cpu),
        };
        let s = vm.test_run(&prog, &run).unwrap().retval as u32;
        verdicts.insert(k);
        if k != s {
            differ += 1;
            println!("DIFFERENCE step {step} cpu {cpu}: kernel {k}, bpfvm {s}");
        }
    }
    assert_eq!(
        verdicts,
        [1, 2].into(),
        "both XDP_DROP and XDP_PASS happened"
    );

    let (kr, sr) = (walk(&kmaps[rules]), walk(&*smaps.all()[rules]));
    if kr != sr {
        differ += 1;
        println!("DIFFERENCE rules: kernel {kr:?}, bpfvm {sr:?}");
    }
    for id in 1..=6u32 {
        let key = id.to_ne_bytes();
        let k = kmaps[stats].lookup(&key, 0);
        let s = HostMap::lookup(&*smaps.all()[stats], &key, 0);
        if k != s {
            differ += 1;
            println!("DIFFERENCE stats of rule {id}: kernel {k:?}, bpfvm {s:?}");
        }
        if id != 6 {
            assert!(k.is_ok(), "rule {id} matched something");
        }
    }
    let drain = |m: &dyn HostMap| {
        std::iter::from_fn(|| m.lookup_and_delete(&[], 0).ok()).collect::<Vec<_>>()
    };
    let (kq, sq) = (drain(&kmaps[log]), drain(&*smaps.all()[log]));
    assert_eq!(kq.len(), 8, "the queue is full of dropped sources");
    if kq != sq {
        differ += 1;
        println!("DIFFERENCE drop_log: kernel {kq:?}, bpfvm {sq:?}");
    }
    assert_eq!(differ, 0);
}
