//! `bpf_spin_lock` rules without a kernel (the kernel oracle comparison is
//! `conformance/tests/kernel_spin_lock_verifier.rs`, where each message below is a line of
//! the kernel 6.18 log for the same program).

use bpfvm_verifier::{
    map_type, verify, FieldKind, Insn, MapInfo, Options, Privilege, ProgType, Program, Rule,
    SpecialField, VerifierError,
};

fn word(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst) << 8
        | u64::from(src) << 12
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

const EXIT: u64 = 0x95;
fn mov_imm(dst: u8, imm: i32) -> u64 {
    word(0xb7, dst, 0, 0, imm)
}
fn mov_reg(dst: u8, src: u8) -> u64 {
    word(0xbf, dst, src, 0, 0)
}
fn call(id: i32) -> u64 {
    word(0x85, 0, 0, 0, id)
}

/// `r6 = lookup(map 0, &0)`, returning 0 when missing.
fn r6_value() -> Vec<u64> {
    vec![
        word(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        word(0x18, 1, 1, 0, 0),   // r1 = map 0
        0,
        mov_reg(2, 10),
        word(0x07, 2, 0, 0, -4), // r2 += -4
        call(1),
        word(0x55, 0, 0, 2, 0), // if r0 != 0 goto +2
        mov_imm(0, 0),
        EXIT,
        mov_reg(6, 0),
    ]
}

/// A hash map whose 16-byte value holds a lock at offset 0.
fn map(btf: bool, lock: bool) -> MapInfo {
    let mut m = MapInfo::new(map_type::HASH, 4, 16, 4);
    m.name = "locked".into();
    m.btf = btf;
    if lock {
        m.fields.push(SpecialField {
            kind: FieldKind::SpinLock,
            offset: 0,
            size: 4,
        });
    }
    m
}

fn run(tail: &[u64], m: MapInfo) -> Result<(), VerifierError> {
    let mut words = r6_value();
    words.extend_from_slice(tail);
    let insns: Vec<Insn> = words.iter().map(|&w| Insn::from_word(w)).collect();
    let maps = [m];
    let prog = Program {
        insns: &insns,
        prog_type: ProgType::SchedCls,
        expected_attach_type: None,
        maps: &maps,
        gpl_compatible: true,
        kfuncs: &[],
        btf: None,
        func_info: true,
    };
    for privilege in [Privilege::CapBpfNetAdmin, Privilege::Root] {
        let opts = Options {
            privilege,
            ..Options::default()
        };
        verify(&prog, &opts)?;
    }
    Ok(())
}

const LOCK: [u64; 2] = [0xbf | (1 << 8) | (6 << 12), 0x85 | (93 << 32)];
const UNLOCK: [u64; 2] = [0xbf | (1 << 8) | (6 << 12), 0x85 | (94 << 32)];

fn refused(tail: &[u64], m: MapInfo, message: &str) {
    let e = run(tail, m).unwrap_err();
    assert_eq!(e.message, message);
    assert_eq!(e.errno, 22);
    assert_ne!(e.rule, Rule::Unsupported);
}

#[test]
fn lock_and_unlock_around_an_update_is_accepted() {
    let mut t = LOCK.to_vec();
    t.extend([
        word(0x79, 7, 6, 8, 0),
        word(0x07, 7, 0, 0, 1),
        word(0x7b, 6, 7, 8, 0),
    ]);
    t.extend(UNLOCK);
    t.extend([mov_imm(0, 0), EXIT]);
    run(&t, map(true, true)).unwrap();
}

#[test]
fn lock_misuse_is_refused_in_the_kernels_words() {
    let ret = [mov_imm(0, 0), EXIT];
    let cat = |parts: &[&[u64]]| parts.concat();
    refused(
        &cat(&[&LOCK, &ret]),
        map(true, true),
        "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region",
    );
    refused(
        &cat(&[&LOCK, &[call(5)], &UNLOCK, &ret]),
        map(true, true),
        "function calls are not allowed while holding a lock",
    );
    refused(
        &cat(&[&UNLOCK, &ret]),
        map(true, true),
        "bpf_spin_unlock without taking a lock",
    );
    refused(
        &cat(&[&LOCK, &UNLOCK, &ret]),
        map(false, false),
        "map 'locked' has to have BTF in order to use bpf_spin_lock",
    );
    refused(
        &cat(&[&LOCK, &UNLOCK, &ret]),
        map(true, false),
        "map 'locked' has no valid bpf_spin_lock",
    );
}
