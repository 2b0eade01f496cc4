//! Large programs against the kernel, verdict and time: a straight line of 100,000
//! instructions, the same length with a branch on an unknown value every 25 instructions
//! (paths that join again, for state pruning), bounded loops of 100,000 iterations (within
//! the 1M complexity limit) and 250,000 (over it), and the largest fixture program. bpfvm's
//! verdict must be the kernel's; the instructions each processed and both times (the
//! kernel's "verification time") are printed for the report, and bpfvm's time is bounded
//! by a generous guard against a walk that explodes (not a benchmark: debug build, shared
//! CPUs).
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use bpfvm_conformance::kernel::{self, kernel_verdict, LoaderPrivilege, VerdictMap};
use bpfvm_conformance::verdicts::{cases_from_object, Case};
use bpfvm_verifier::{MapInfo, Privilege, ProgType};

const N: usize = 100_000;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = dst | (src << 4);
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    b
}

fn straight_line() -> Vec<u8> {
    let mut w = vec![insn(0xb7, 0, 0, 0, 0)]; // r0 = 0
    w.extend(std::iter::repeat_n(insn(0x07, 0, 0, 0, 1), N - 3)); // r0 += 1
    w.push(insn(0xb7, 0, 0, 0, 2)); // r0 = XDP_PASS
    w.push(insn(0x95, 0, 0, 0, 0)); // exit
    w.concat()
}

fn branchy_spill() -> Vec<u8> {
    let mut w = vec![
        insn(0x85, 0, 0, 0, 7), // r0 = bpf_get_prandom_u32()
        insn(0xbf, 6, 0, 0, 0), // r6 = r0
        insn(0xb7, 7, 0, 0, 0), // r7 = 0
        insn(0xb7, 8, 0, 0, 0), // r8 = 0
    ];
    let mut k = 0;
    while w.len() + 25 <= N - 2 {
        w.push(insn(0x15, 6, 0, 1, k)); // if r6 == k goto +1
        w.push(insn(0x07, 7, 0, 0, 1)); // r7 += 1
        w.push(insn(0x7b, 10, 7, -8, 0)); // *(u64 *)(r10 - 8) = r7
        w.push(insn(0x07, 6, 0, 0, 3)); // r6 += 3
        w.extend(std::iter::repeat_n(insn(0x07, 8, 0, 0, 1), 21)); // r8 += 1
        k += 1;
    }
    w.push(insn(0x79, 0, 10, -8, 0)); // r0 = *(u64 *)(r10 - 8)
    w.push(insn(0xb7, 0, 0, 0, 2)); // r0 = XDP_PASS
    w.push(insn(0x95, 0, 0, 0, 0)); // exit
    w.concat()
}

/// As [`branchy_spill`], with a map lookup (key on the stack) in every segment: a stack
/// pointer passed as a map key. 20,000 instructions (the kernel takes seconds on these).
fn branchy_lookup() -> Vec<u8> {
    const N: usize = 20_000;
    let mut w = vec![
        insn(0x85, 0, 0, 0, 7), // r0 = bpf_get_prandom_u32()
        insn(0xbf, 6, 0, 0, 0), // r6 = r0
        insn(0xb7, 7, 0, 0, 0), // r7 = 0
        insn(0xb7, 8, 0, 0, 0), // r8 = 0
    ];
    let mut k = 0;
    while w.len() + 25 <= N - 3 {
        w.push(insn(0x15, 6, 0, 1, k)); // if r6 == k goto +1
        w.push(insn(0x07, 7, 0, 0, 1)); // r7 += 1
        w.push(insn(0x7b, 10, 7, -8, 0)); // *(u64 *)(r10 - 8) = r7
        w.push(insn(0x07, 6, 0, 0, 3)); // r6 += 3
        w.push(insn(0x62, 10, 0, -16, 0)); // *(u32 *)(r10 - 16) = 0
        w.push(insn(0xbf, 2, 10, 0, 0)); // r2 = r10
        w.push(insn(0x07, 2, 0, 0, -16)); // r2 += -16
        w.push(insn(0x18, 1, 1, 0, 0)); // r1 = map 0
        w.push(insn(0, 0, 0, 0, 0));
        w.push(insn(0x85, 0, 0, 0, 1)); // call bpf_map_lookup_elem
        w.extend(std::iter::repeat_n(insn(0x07, 8, 0, 0, 1), 15)); // r8 += 1
        k += 1;
    }
    w.push(insn(0x79, 0, 10, -8, 0)); // r0 = *(u64 *)(r10 - 8)
    w.push(insn(0xb7, 0, 0, 0, 2)); // r0 = XDP_PASS
    w.push(insn(0x95, 0, 0, 0, 0)); // exit
    w.concat()
}

fn branchy() -> Vec<u8> {
    let mut w = vec![
        insn(0x85, 0, 0, 0, 7), // r0 = bpf_get_prandom_u32()
        insn(0xbf, 6, 0, 0, 0), // r6 = r0
        insn(0xb7, 7, 0, 0, 0), // r7 = 0
        insn(0xb7, 8, 0, 0, 0), // r8 = 0
    ];
    let mut k = 0;
    while w.len() + 25 <= N - 2 {
        w.push(insn(0x15, 6, 0, 1, k)); // if r6 == k goto +1
        w.push(insn(0x07, 7, 0, 0, 1)); // r7 += 1
        w.push(insn(0x07, 6, 0, 0, 3)); // r6 += 3
        w.extend(std::iter::repeat_n(insn(0x07, 8, 0, 0, 1), 22)); // r8 += 1
        k += 1;
    }
    w.push(insn(0xb7, 0, 0, 0, 2)); // r0 = XDP_PASS
    w.push(insn(0x95, 0, 0, 0, 0)); // exit
    w.concat()
}

/// `for (i = 0; i < n; i++) acc += i * 3;` with the accumulator never checked: the
/// kernel walks every iteration (the counter decides the branch).
fn counted_loop(n: i32) -> Vec<u8> {
    [
        insn(0xb7, 6, 0, 0, 0),  // r6 = 0 (i)
        insn(0xb7, 7, 0, 0, 0),  // r7 = 0 (acc)
        insn(0xbf, 8, 6, 0, 0),  // r8 = r6
        insn(0x27, 8, 0, 0, 3),  // r8 *= 3
        insn(0x0f, 7, 8, 0, 0),  // r7 += r8
        insn(0x07, 6, 0, 0, 1),  // r6 += 1
        insn(0xa5, 6, 0, -5, n), // if r6 < n goto -5
        insn(0xb7, 0, 0, 0, 2),  // r0 = XDP_PASS
        insn(0x95, 0, 0, 0, 0),  // exit
    ]
    .concat()
}

/// A number after `key` in the kernel's log ("processed 12 insns", "verification time 34").
fn stat(log: &str, key: &str) -> Option<u64> {
    let at = log.find(key)? + key.len();
    log[at..]
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

fn judge(case: &Case) {
    let maps: Vec<VerdictMap> = case
        .maps
        .iter()
        .map(|m| VerdictMap {
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: m.map_flags,
            initial: m.frozen_value.clone(),
            frozen: m.frozen_value.is_some(),
            spin_lock: m.spin_lock().map(|f| f.offset),
            timer: None,
            inner: None,
        })
        .collect();
    for p in [Privilege::CapBpfNetAdmin, Privilege::Root] {
        let start = Instant::now();
        let ours = case.ours(p);
        let t = start.elapsed();
        let lp = match p {
            Privilege::Root => LoaderPrivilege::Root,
            Privilege::CapBpfNetAdmin => LoaderPrivilege::CapBpf,
        };
        let k = kernel_verdict(
            &case.insns,
            case.prog_type.number(),
            case.attach.unwrap_or(0),
            &maps,
            &case.license,
            lp,
        )
        .unwrap();
        println!(
            "[{p:?}] {} ({} insns): kernel {} (processed {:?}, {:?} us); bpfvm {} in {t:?}",
            case.name,
            case.insns.len() / 8,
            match k.errno {
                None => "accepts".to_string(),
                Some(e) => format!("refuses (errno {e}): {:?}", k.messages().last()),
            },
            stat(&k.log, "processed "),
            stat(&k.log, "verification time "),
            match &ours {
                Ok(v) => format!("accepts (processed {})", v.insns_processed),
                Err(e) => format!("refuses (errno {}): {}", e.errno, e.message),
            },
        );
        assert_eq!(
            k.errno,
            ours.as_ref().err().map(|e| e.errno),
            "{}",
            case.name
        );
        assert!(t < Duration::from_secs(60), "{}: {t:?}", case.name);
    }
}

#[test]
fn large_programs_get_the_kernels_verdict_in_bounded_time() {
    if !kernel::oracle_or_skip() {
        return;
    }
    judge(&Case::new("straight_line", ProgType::Xdp, straight_line()));
    judge(&Case::new("branchy", ProgType::Xdp, branchy()));
    judge(&Case::new("branchy_spill", ProgType::Xdp, branchy_spill()));
    judge(
        &Case::new("branchy_lookup", ProgType::Xdp, branchy_lookup())
            .with_map(MapInfo::new(2, 4, 8, 4)),
    );
    // 5 instructions an iteration: 100,000 iterations fit the 1M limit, 250,000 do not.
    judge(&Case::new(
        "loop_100k",
        ProgType::Xdp,
        counted_loop(100_000),
    ));
    judge(&Case::new(
        "loop_250k",
        ProgType::Xdp,
        counted_loop(250_000),
    ));
}

#[test]
fn the_largest_fixture_program_gets_the_kernels_verdict_in_bounded_time() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../vm/tests/fixtures");
    let mut largest: Option<Case> = None;
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "o") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        for case in cases_from_object(&name, &std::fs::read(&path).unwrap()).unwrap_or_default() {
            if largest
                .as_ref()
                .is_none_or(|l| case.insns.len() > l.insns.len())
            {
                largest = Some(case);
            }
        }
    }
    let case = largest.expect("a fixture program");
    judge(&case);
}
