//! Arbitrary instructions never panic the verifier: random opcodes (mostly valid ones) with
//! random registers, offsets and immediates, for each program type and privilege, with and
//! without maps, give a verdict (an accepted program or an error naming a rule).

use bpfvm_verifier::{verify, Insn, MapInfo, Options, Privilege, ProgType, Program};
use proptest::prelude::*;

/// Every opcode the ISA defines (the verifier must judge each of them).
fn opcode() -> impl Strategy<Value = u8> {
    let alu = (0u8..=13).prop_flat_map(|op| {
        prop::sample::select(vec![0x04u8, 0x0c, 0x07, 0x0f]).prop_map(move |c| (op << 4) | c)
    });
    let jmp = (0u8..=14).prop_flat_map(|op| {
        prop::sample::select(vec![0x05u8, 0x0d, 0x06, 0x0e]).prop_map(move |c| (op << 4) | c)
    });
    let mem = (
        prop::sample::select(vec![0x00u8, 0x20, 0x40, 0x60, 0x80, 0xc0]),
        0u8..=3,
        0u8..=3,
    )
        .prop_map(|(mode, size, class)| mode | (size << 3) | class);
    prop_oneof![4 => alu, 3 => jmp, 3 => mem, 1 => any::<u8>()]
}

fn insn() -> impl Strategy<Value = u64> {
    let off = prop_oneof![
        any::<i16>(),
        prop::sample::select(vec![
            -520i16, -512, -16, -8, -4, -1, 0, 1, 2, 8, 0x7fff, -0x8000
        ])
    ];
    let imm = prop_oneof![
        any::<i32>(),
        prop::sample::select(vec![
            0i32,
            1,
            2,
            7,
            8,
            16,
            -8,
            -16,
            -512,
            i32::MIN,
            i32::MAX
        ])
    ];
    (opcode(), 0u8..=15, 0u8..=15, off, imm).prop_map(|(code, dst, src, off, imm)| {
        u64::from(code)
            | u64::from(dst) << 8
            | u64::from(src) << 12
            | u64::from(off as u16) << 16
            | u64::from(imm as u32) << 32
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_programs_get_a_verdict(
        body in prop::collection::vec(insn(), 1..48),
        t in 0usize..7,
        root in any::<bool>(),
        with_map in any::<bool>(),
    ) {
        let mut words = body;
        words.push(0x0000_0000_0000_00b7); // r0 = 0
        words.push(0x95); // exit
        let insns: Vec<Insn> = words.iter().map(|&w| Insn::from_word(w)).collect();
        let maps = [MapInfo::new(2, 4, 16, 1), MapInfo::new(1, 8, 8, 16)];
        let prog_type = [
            ProgType::SocketFilter,
            ProgType::Kprobe,
            ProgType::SchedCls,
            ProgType::SchedAct,
            ProgType::Tracepoint,
            ProgType::Xdp,
            ProgType::CgroupSkb,
        ][t];
        let prog = Program {
            insns: &insns,
            prog_type,
            expected_attach_type: None,
            maps: if with_map { &maps } else { &[] },
            gpl_compatible: true,
            func_info: false,
            kfuncs: &[],
            btf: None,
        };
        let privilege = if root { Privilege::Root } else { Privilege::CapBpfNetAdmin };
        let opts = Options { privilege, ..Options::default() };
        match verify(&prog, &opts) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.message.is_empty() && e.errno > 0, "{e:?}"),
        }
    }
}
