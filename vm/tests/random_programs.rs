//! Checks that random, mostly well-formed bytecode never panics the interpreter: each
//! program is refused at load time or runs to a result or a clear error, and a map next to
//! it keeps its size.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bpfvm::maps::{Map, MapSpec, MapType};
use bpfvm::{CpuId, Input, Program, ProgramType, Vm};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn enc(opc: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    [opc, (src << 4) | dst, o[0], o[1], i[0], i[1], i[2], i[3]]
}

/// One instruction whose fields mostly follow the ISA's rules for its opcode.
fn insn() -> impl Strategy<Value = [u8; 8]> {
    let alu_ops = prop::sample::select(vec![
        0x00u8, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0,
    ]);
    let reg = 0u8..=9;
    let any_reg = 0u8..=10;
    let imm = prop::sample::select(vec![
        1i32,
        2,
        3,
        7,
        8,
        31,
        63,
        -1,
        -8,
        0x7fff_ffff,
        i32::MIN,
    ]);
    let off = prop::sample::select(vec![-16i16, -8, -4, -2, -1, 0, 1, 2, 4, 8]);
    prop_oneof![
        // ALU / ALU64, immediate or register form (sdiv/smod/movsx via off)
        (
            alu_ops.clone(),
            prop::bool::ANY,
            prop::bool::ANY,
            reg.clone(),
            any_reg.clone(),
            imm.clone(),
            prop::sample::select(vec![0i16, 0, 0, 1, 8, 16, 32])
        )
            .prop_map(|(op, is64, x, d, s, i, o)| {
                let class = if is64 { 0x07 } else { 0x04 };
                let o = match op {
                    0x30 | 0x90 => o.min(1),
                    0xb0 if x => o,
                    _ => 0,
                };
                if x {
                    enc(op | class | 0x08, d, s, o, 0)
                } else {
                    enc(op | class, d, 0, o, i)
                }
            }),
        (reg.clone(), prop::sample::select(vec![0x84u8, 0x87]))
            .prop_map(|(d, op)| enc(op, d, 0, 0, 0)),
        (
            reg.clone(),
            prop::sample::select(vec![0xd4u8, 0xdc, 0xd7]),
            prop::sample::select(vec![16i32, 32, 64])
        )
            .prop_map(|(d, op, i)| enc(op, d, 0, 0, i)),
        // loads (incl. sign-extending) from the stack or the context
        (
            reg.clone(),
            prop::sample::select(vec![1u8, 10]),
            prop::sample::select(vec![0x61u8, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91]),
            off.clone()
        )
            .prop_map(|(d, s, op, o)| enc(op, d, s, o, 0)),
        // stores and atomics
        (
            prop::sample::select(vec![1u8, 10]),
            reg.clone(),
            prop::sample::select(vec![0x62u8, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b]),
            off.clone(),
            imm.clone()
        )
            .prop_map(|(d, s, op, o, i)| if op & 7 == 2 {
                enc(op, d, 0, o, i)
            } else {
                enc(op, d, s, o, 0)
            }),
        (
            prop::sample::select(vec![1u8, 10]),
            reg.clone(),
            prop::sample::select(vec![0xc3u8, 0xdb]),
            prop::sample::select(vec![-8i16, -4, 0, 4]),
            prop::sample::select(vec![
                0x00i32, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1
            ])
        )
            .prop_map(|(d, s, op, o, i)| enc(op, d, s, o, i)),
        // conditional jumps, JMP and JMP32, short offsets both ways
        (
            prop::sample::select(vec![
                0x15u8, 0x25, 0x35, 0x45, 0x55, 0x65, 0x75, 0xa5, 0xb5, 0xc5, 0xd5, 0x16, 0x26,
                0xa6, 0xd6
            ]),
            prop::bool::ANY,
            any_reg.clone(),
            reg.clone(),
            prop::sample::select(vec![-3i16, -1, 0, 1, 2, 3]),
            imm.clone()
        )
            .prop_map(|(op, x, d, s, o, i)| if x {
                enc(op | 0x08, d, s, o, 0)
            } else {
                enc(op, d, 0, o, i)
            }),
        prop::sample::select(vec![0i16, 1, 2, -2]).prop_map(|o| enc(0x05, 0, 0, o, 0)),
        // helper calls: smp id, prandom, ktime; map lookup with a stack key
        prop::sample::select(vec![5i32, 7, 8]).prop_map(|id| enc(0x85, 0, 0, 0, id)),
        Just(enc(0xbf, 1, 10, 0, 0)),
        Just(enc(0x07, 1, 0, 0, -8)),
    ]
}

static LOADED: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_programs_never_panic(mut body in prop::collection::vec(insn(), 1..24)) {
        // Initialise r0 and r2..=r9 so more programs pass the verifier.
        let mut code: Vec<[u8; 8]> = (0..10u8)
            .filter(|r| *r != 1)
            .map(|r| enc(0xb7, r, 0, 0, 0))
            .collect();
        code.append(&mut body);
        code.push(enc(0x95, 0, 0, 0, 0));
        let bytes: Vec<u8> = code.iter().flatten().copied().collect();
        let vm = Vm::builder().cpus(2).budget(1_000).build();
        let map = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 2), 2).unwrap());
        let program = Program::new(bytes, ProgramType::Unspecified).with_map(Arc::clone(&map));
        if let Ok(prog) = vm.load(program) {
            LOADED.fetch_add(1, Ordering::Relaxed);
            let _ = vm.run(&prog, CpuId(1), &Input::context(vec![0u8; 16]));
        }
        let mut all = [0u8; 8];
        prop_assert!(map.lookup(&1u32.to_ne_bytes(), &mut all, 0).is_ok());
    }
}

#[test]
fn a_fair_share_of_random_programs_pass_the_verifier() {
    // Run a fixed batch here too, so this test does not depend on test ordering.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec(insn(), 1..12);
    let vm = Vm::builder().cpus(1).budget(1_000).build();
    let mut loaded = 0;
    for _ in 0..500 {
        let body = strategy.new_tree(&mut runner).unwrap().current();
        let mut code: Vec<[u8; 8]> = (0..10u8)
            .filter(|r| *r != 1)
            .map(|r| enc(0xb7, r, 0, 0, 0))
            .collect();
        code.extend(body);
        code.push(enc(0x95, 0, 0, 0, 0));
        let bytes: Vec<u8> = code.iter().flatten().copied().collect();
        if let Ok(p) = vm.load(Program::new(bytes, ProgramType::Unspecified)) {
            loaded += 1;
            let _ = vm.run(&p, CpuId(0), &Input::context(vec![0u8; 16]));
        }
    }
    eprintln!("{loaded} of 500 random programs loaded");
    assert!(loaded >= 50, "only {loaded} of 500 random programs loaded");
}
