//! Checks that bpf-to-bpf calls into `.text` subprograms resolve: each program gets
//! exactly the subprograms it calls appended, every call lands on the right one, and
//! the linked programs compute what their C source promises (run on a tiny
//! reference evaluator below, since the VM engine lives elsewhere).

mod common;

use bpfvm::loader::{Object, ProgramDefinition, PSEUDO_CALL, PSEUDO_MAP_FD};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

fn src(insn: u64) -> u8 {
    ((insn >> 12) & 0xf) as u8
}

fn imm(insn: u64) -> i32 {
    (insn >> 32) as u32 as i32
}

fn names(p: &ProgramDefinition) -> Vec<&str> {
    p.subprograms.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn each_program_gets_the_subprograms_it_calls_once() {
    let obj = Object::parse(&common::fixture_bytes("subprog")).unwrap();
    let squares = obj.program("calc_squares").unwrap();
    assert_eq!(names(squares), ["sum_of_squares", "square"]);
    let more = obj.program("calc_more").unwrap();
    assert_eq!(names(more), ["add_one", "sum_of_squares", "square"]);
    // `.text` functions are subprograms, never programs of their own.
    assert_eq!(obj.programs().len(), 2);
}

#[test]
fn appended_bodies_are_the_text_functions() {
    let data = common::fixture_bytes("subprog");
    let file = object::File::parse(&*data).unwrap();
    let text = file.section_by_name(".text").unwrap();
    let text_data = text.data().unwrap();
    let obj = Object::parse(&data).unwrap();
    for prog in obj.programs() {
        for (name, start) in &prog.subprograms {
            let sym = file.symbols().find(|s| s.name() == Ok(name)).unwrap();
            let body: Vec<u64> = text_data
                [sym.address() as usize..(sym.address() + sym.size()) as usize]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let linked = &prog.insns[*start..*start + body.len()];
            for (i, (&got, &orig)) in linked.iter().zip(&body).enumerate() {
                let opcode = orig as u8;
                if opcode == 0x85 && src(orig) == PSEUDO_CALL {
                    // Local calls are re-pointed; they must land on a subprogram start.
                    let dest = (*start + i) as i64 + 1 + i64::from(imm(got));
                    assert!(prog.subprograms.iter().any(|(_, s)| *s as i64 == dest));
                } else if opcode == 0x18 && src(got) == PSEUDO_MAP_FD {
                    assert_eq!(obj.maps()[prog.maps[imm(got) as usize]].name, "args");
                } else if i > 0 && body[i - 1] as u8 == 0x18 {
                    // second half of a relocated ld_imm64
                } else {
                    assert_eq!(got, orig, "{}: {name}+{i}", prog.name);
                }
            }
        }
    }
}

/// A minimal evaluator for the instructions these fixtures use, with one ARRAY map of
/// three u32 values (`args`) and `bpf_map_lookup_elem` as the only helper.
struct Eval<'p> {
    prog: &'p ProgramDefinition,
    regs: [u64; 11],
    stack: Vec<u8>,
    /// `args` values, little-endian.
    values: [u8; 12],
}

const STACK: u64 = 0x1_0000_0000;
const VALUES: u64 = 0x2_0000_0000;
const HANDLES: u64 = 0x3_0000_0000;
const FRAME: u64 = 512;

impl<'p> Eval<'p> {
    fn new(prog: &'p ProgramDefinition, args: [u32; 3]) -> Self {
        Self {
            prog,
            regs: [0; 11],
            stack: vec![0; 8 * FRAME as usize],
            values: std::array::from_fn(|i| args[i / 4].to_le_bytes()[i % 4]),
        }
    }

    fn arg(&self, key: usize) -> u32 {
        u32::from_le_bytes(self.values[key * 4..key * 4 + 4].try_into().unwrap())
    }

    fn slot(&mut self, addr: u64, size: usize) -> &mut [u8] {
        if (STACK..STACK + self.stack.len() as u64).contains(&addr) {
            let off = (addr - STACK) as usize;
            return &mut self.stack[off..off + size];
        }
        assert!(
            (VALUES..VALUES + 12).contains(&addr),
            "wild access {addr:#x}"
        );
        let off = (addr - VALUES) as usize;
        assert!(off % 4 + size <= 4, "access crosses a value");
        &mut self.values[off..off + size]
    }

    fn load(&mut self, addr: u64, size: usize) -> u64 {
        let s = self.slot(addr, size);
        let mut buf = [0u8; 8];
        buf[..size].copy_from_slice(s);
        u64::from_le_bytes(buf)
    }

    fn store(&mut self, addr: u64, size: usize, v: u64) {
        let s = self.slot(addr, size);
        s.copy_from_slice(&v.to_le_bytes()[..size]);
    }

    fn run(&mut self) -> u64 {
        let insns = &self.prog.insns;
        let mut pc = 0usize;
        let mut frames: Vec<(usize, [u64; 4])> = Vec::new();
        self.regs[10] = STACK + FRAME;
        loop {
            let insn = insns[pc];
            let op = insn as u8;
            let dst = ((insn >> 8) & 0xf) as usize;
            let s = ((insn >> 12) & 0xf) as usize;
            let off = (insn >> 16) as u16 as i16 as i64;
            let k = imm(insn) as i64 as u64;
            let operand = if op & 0x08 != 0 { self.regs[s] } else { k };
            pc += 1;
            match op & 0x07 {
                0x07 | 0x04 => {
                    let a = self.regs[dst];
                    let r = match op & 0xf0 {
                        0x00 => a.wrapping_add(operand),
                        0x10 => a.wrapping_sub(operand),
                        0x20 => a.wrapping_mul(operand),
                        0x40 => a | operand,
                        0x50 => a & operand,
                        0x60 => a << (operand & 63),
                        0x70 => a >> (operand & 63),
                        0xb0 => operand,
                        other => panic!("alu op {other:#x} at {pc}"),
                    };
                    self.regs[dst] = if op & 0x07 == 0x04 {
                        r as u32 as u64
                    } else {
                        r
                    };
                }
                0x05 | 0x06 => {
                    let wide = op & 0x07 == 0x05;
                    let (a, b) = if wide {
                        (self.regs[dst], operand)
                    } else {
                        (self.regs[dst] as u32 as u64, operand as u32 as u64)
                    };
                    let taken = match op & 0xf0 {
                        0x00 => true,
                        0x10 => a == b,
                        0x20 => a > b,
                        0x30 => a >= b,
                        0x50 => a != b,
                        0x80 if s == PSEUDO_CALL as usize => {
                            let saved = [self.regs[6], self.regs[7], self.regs[8], self.regs[9]];
                            frames.push((pc, saved));
                            self.regs[10] += FRAME;
                            pc = (pc as i64 + imm(insn) as i64) as usize;
                            continue;
                        }
                        0x80 => {
                            assert_eq!(imm(insn), 1, "only bpf_map_lookup_elem");
                            assert_eq!(self.regs[1], HANDLES, "args is map 0");
                            let key = self.load(self.regs[2], 4);
                            self.regs[0] = if key < 3 { VALUES + key * 4 } else { 0 };
                            continue;
                        }
                        0x90 => match frames.pop() {
                            None => return self.regs[0],
                            Some((ret, saved)) => {
                                self.regs[6..10].copy_from_slice(&saved);
                                self.regs[10] -= FRAME;
                                pc = ret;
                                continue;
                            }
                        },
                        other => panic!("jmp op {other:#x} at {pc}"),
                    };
                    if taken {
                        pc = (pc as i64 + off) as usize;
                    }
                }
                0x00 if op == 0x18 => {
                    assert_eq!(src(insn), PSEUDO_MAP_FD);
                    self.regs[dst] = HANDLES + imm(insn) as u64;
                    pc += 1;
                }
                _ => {
                    let size = match op & 0x18 {
                        0x00 => 4,
                        0x08 => 2,
                        0x10 => 1,
                        _ => 8,
                    };
                    match op & 0x07 {
                        0x01 => {
                            let addr = self.regs[s].wrapping_add(off as u64);
                            self.regs[dst] = self.load(addr, size);
                        }
                        0x03 => {
                            let addr = self.regs[dst].wrapping_add(off as u64);
                            self.store(addr, size, self.regs[s]);
                        }
                        0x02 => {
                            let addr = self.regs[dst].wrapping_add(off as u64);
                            self.store(addr, size, k);
                        }
                        _ => panic!("opcode {op:#x} at {}", pc - 1),
                    }
                }
            }
        }
    }
}

#[test]
fn linked_programs_compute_what_the_source_promises() {
    let obj = Object::parse(&common::fixture_bytes("subprog")).unwrap();
    let squares = obj.program("calc_squares").unwrap();
    let mut e = Eval::new(squares, [3, 4, 0]);
    assert_eq!(e.run() as u32, 25);
    assert_eq!(e.arg(2), 25);
    let more = obj.program("calc_more").unwrap();
    let mut e = Eval::new(more, [3, 4, 0]);
    // add_one(3) + sum_of_squares(3, 4)
    assert_eq!(e.run() as u32, 29);
    assert_eq!(e.arg(2), 29);
    let mut e = Eval::new(more, [10, 1, 7]);
    assert_eq!(e.run() as u32, 11 + 101);
}
