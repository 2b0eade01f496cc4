//! A reference model of the ISA subset the differential generator emits, written from the
//! ISA document (RFC 9669) independently of every engine: an oracle for the instructions the
//! rbpf engines refuse (atomics, v4), so those are compared too.
//!
//! Memory operands must use `r10` (the 64 stack bytes below it) or `r1` (the context) as
//! their base, as generated programs do; anything else makes [`run`] give `None`.

use crate::differential::STACK_BYTES;

struct Machine {
    reg: [u64; 11],
    stack: [u8; STACK_BYTES],
    ctx: Vec<u8>,
}

impl Machine {
    /// The bytes at `base + off`, `size` long, or None when outside the model's memory.
    fn mem(&mut self, base: u8, off: i16, size: usize) -> Option<&mut [u8]> {
        let off = off as i64;
        let (buf, start): (&mut [u8], i64) = match base {
            10 => (&mut self.stack[..], STACK_BYTES as i64 + off),
            1 => (&mut self.ctx[..], off),
            _ => return None,
        };
        let start = usize::try_from(start).ok()?;
        buf.get_mut(start..start.checked_add(size)?)
    }

    fn load(&mut self, base: u8, off: i16, size: usize) -> Option<u64> {
        let b = self.mem(base, off, size)?;
        let mut v = [0u8; 8];
        v[..size].copy_from_slice(b);
        Some(u64::from_le_bytes(v))
    }

    fn store(&mut self, base: u8, off: i16, size: usize, value: u64) -> Option<()> {
        let b = self.mem(base, off, size)?;
        b.copy_from_slice(&value.to_le_bytes()[..size]);
        Some(())
    }
}

fn size_of(opc: u8) -> usize {
    match opc & 0x18 {
        0x00 => 4,
        0x08 => 2,
        0x10 => 1,
        _ => 8,
    }
}

fn sign_extend(v: u64, bits: u32) -> u64 {
    let shift = 64 - bits;
    (((v << shift) as i64) >> shift) as u64
}

fn alu64(code: u8, off: i16, d: u64, s: u64) -> Option<u64> {
    Some(match code {
        0x00 => d.wrapping_add(s),
        0x10 => d.wrapping_sub(s),
        0x20 => d.wrapping_mul(s),
        0x30 if off == 1 => match s {
            0 => 0,
            _ => (d as i64).wrapping_div(s as i64) as u64,
        },
        0x30 => d.checked_div(s).unwrap_or(0),
        0x40 => d | s,
        0x50 => d & s,
        0x60 => d << (s & 63),
        0x70 => d >> (s & 63),
        0x80 => d.wrapping_neg(),
        0x90 if off == 1 => match s {
            0 => d,
            _ => (d as i64).wrapping_rem(s as i64) as u64,
        },
        0x90 => d.checked_rem(s).unwrap_or(d),
        0xa0 => d ^ s,
        0xb0 => match off {
            0 => s,
            8 | 16 | 32 => sign_extend(s, off as u32),
            _ => return None,
        },
        0xc0 => ((d as i64) >> (s & 63)) as u64,
        _ => return None,
    })
}

fn alu32(code: u8, off: i16, d: u32, s: u32) -> Option<u32> {
    Some(match code {
        0x00 => d.wrapping_add(s),
        0x10 => d.wrapping_sub(s),
        0x20 => d.wrapping_mul(s),
        0x30 if off == 1 => match s {
            0 => 0,
            _ => (d as i32).wrapping_div(s as i32) as u32,
        },
        0x30 => d.checked_div(s).unwrap_or(0),
        0x40 => d | s,
        0x50 => d & s,
        0x60 => d << (s & 31),
        0x70 => d >> (s & 31),
        0x80 => d.wrapping_neg(),
        0x90 if off == 1 => match s {
            0 => d,
            _ => (d as i32).wrapping_rem(s as i32) as u32,
        },
        0x90 => d.checked_rem(s).unwrap_or(d),
        0xa0 => d ^ s,
        0xb0 => match off {
            0 => s,
            8 | 16 => sign_extend(u64::from(s), off as u32) as u32,
            _ => return None,
        },
        0xc0 => ((d as i32) >> (s & 31)) as u32,
        _ => return None,
    })
}

fn jump_taken(code: u8, wide: bool, d: u64, s: u64) -> Option<bool> {
    let (d, s, sd, ss) = if wide {
        (d, s, d as i64, s as i64)
    } else {
        let (d, s) = (d as u32, s as u32);
        (
            u64::from(d),
            u64::from(s),
            i64::from(d as i32),
            i64::from(s as i32),
        )
    };
    Some(match code {
        0x10 => d == s,
        0x20 => d > s,
        0x30 => d >= s,
        0x40 => d & s != 0,
        0x50 => d != s,
        0x60 => sd > ss,
        0x70 => sd >= ss,
        0xa0 => d < s,
        0xb0 => d <= s,
        0xc0 => sd < ss,
        0xd0 => sd <= ss,
        _ => return None,
    })
}

/// Runs `insns` with the given context; returns `r0` and the context afterwards, or None
/// for an instruction outside the model (or a step limit, which forward-only programs never
/// reach).
pub fn run(insns: &[[u8; 8]], ctx: &[u8]) -> Option<(u64, Vec<u8>)> {
    let mut m = Machine {
        reg: [0; 11],
        stack: [0; STACK_BYTES],
        ctx: ctx.to_vec(),
    };
    m.reg[2] = ctx.len() as u64;
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = insns.get(pc)?;
        let (opc, dst, src) = (i[0], usize::from(i[1] & 0x0f), i[1] >> 4);
        let off = i16::from_le_bytes([i[2], i[3]]);
        let imm = i32::from_le_bytes([i[4], i[5], i[6], i[7]]);
        let imm64 = imm as i64 as u64;
        let srcv = |m: &Machine| {
            if opc & 0x08 != 0 {
                m.reg[usize::from(src)]
            } else {
                imm64
            }
        };
        pc += 1;
        match opc & 0x07 {
            0x00 if opc == 0x18 => {
                let hi = insns.get(pc)?;
                let hi = u32::from_le_bytes([hi[4], hi[5], hi[6], hi[7]]);
                m.reg[dst] = u64::from(imm as u32) | (u64::from(hi) << 32);
                pc += 1;
            }
            0x07 if opc & 0xf0 == 0xd0 => {
                // bswap (ALU64 END): unconditional swap
                let d = m.reg[dst];
                m.reg[dst] = match imm {
                    16 => u64::from((d as u16).swap_bytes()),
                    32 => u64::from((d as u32).swap_bytes()),
                    64 => d.swap_bytes(),
                    _ => return None,
                };
            }
            0x04 if opc & 0xf0 == 0xd0 => {
                // le (0xd4) / be (0xdc) on a little-endian machine
                let d = m.reg[dst];
                let be = opc & 0x08 != 0;
                m.reg[dst] = match (imm, be) {
                    (16, false) => u64::from(d as u16),
                    (32, false) => u64::from(d as u32),
                    (64, false) => d,
                    (16, true) => u64::from((d as u16).swap_bytes()),
                    (32, true) => u64::from((d as u32).swap_bytes()),
                    (64, true) => d.swap_bytes(),
                    _ => return None,
                };
            }
            0x07 => m.reg[dst] = alu64(opc & 0xf0, off, m.reg[dst], srcv(&m))?,
            0x04 => {
                let s = if opc & 0x08 != 0 {
                    m.reg[usize::from(src)] as u32
                } else {
                    imm as u32
                };
                m.reg[dst] = u64::from(alu32(opc & 0xf0, off, m.reg[dst] as u32, s)?);
            }
            0x01 => {
                let size = size_of(opc);
                let v = m.load(src, off, size)?;
                m.reg[dst] = match opc & 0xe0 {
                    0x60 => v,
                    0x80 => sign_extend(v, 8 * size as u32),
                    _ => return None,
                };
            }
            0x02 => m.store(dst as u8, off, size_of(opc), imm64)?,
            0x03 if opc & 0xe0 == 0x60 => {
                let v = m.reg[usize::from(src)];
                m.store(dst as u8, off, size_of(opc), v)?
            }
            0x03 if opc & 0xe0 == 0xc0 => {
                let size = size_of(opc);
                let wide = size == 8;
                let fit = |v: u64| if wide { v } else { v & 0xffff_ffff };
                let old = m.load(dst as u8, off, size)?;
                let s = fit(m.reg[usize::from(src)]);
                let new = match imm & !1 {
                    0x00 => Some(fit(old.wrapping_add(s))),
                    0x40 => Some(old | s),
                    0x50 => Some(old & s),
                    0xa0 => Some(old ^ s),
                    0xe0 if imm == 0xe1 => Some(s),
                    0xf0 if imm == 0xf1 => (old == fit(m.reg[0])).then_some(s),
                    _ => return None,
                };
                if let Some(new) = new {
                    m.store(dst as u8, off, size, new)?;
                }
                match imm {
                    0xf1 => m.reg[0] = old,
                    _ if imm & 1 != 0 => m.reg[usize::from(src)] = old,
                    _ => {}
                }
            }
            0x05 | 0x06 => {
                let wide = opc & 0x07 == 0x05;
                match opc {
                    0x95 => return Some((m.reg[0], m.ctx)),
                    0x05 => pc = pc.checked_add_signed(off as isize)?,
                    0x06 => pc = pc.checked_add_signed(imm as isize)?, // gotol
                    _ => {
                        let s = if opc & 0x08 != 0 {
                            m.reg[usize::from(src)]
                        } else if wide {
                            imm64
                        } else {
                            u64::from(imm as u32)
                        };
                        if jump_taken(opc & 0xf0, wide, m.reg[dst], s)? {
                            pc = pc.checked_add_signed(off as isize)?;
                        }
                    }
                }
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::differential::insn;

    #[test]
    fn division_edge_cases_follow_the_isa() {
        assert_eq!(alu64(0x30, 0, 7, 0), Some(0));
        assert_eq!(alu64(0x90, 0, 7, 0), Some(7));
        assert_eq!(
            alu64(0x30, 1, i64::MIN as u64, u64::MAX),
            Some(i64::MIN as u64)
        );
        assert_eq!(alu64(0x90, 1, i64::MIN as u64, u64::MAX), Some(0));
        assert_eq!(alu32(0x90, 0, 5, 0), Some(5));
        assert_eq!(alu64(0xb0, 8, 0, 0x80), Some(u64::MAX << 7));
    }

    #[test]
    fn mod32_by_zero_clears_the_upper_half() {
        let prog = [
            insn(0x18, 0, 0, 0, 5),
            insn(0, 0, 0, 0, 1),
            insn(0xb4, 7, 0, 0, 0),
            insn(0x9c, 0, 7, 0, 0),
            insn(0x95, 0, 0, 0, 0),
        ];
        assert_eq!(run(&prog, &[]).unwrap().0, 5);
    }

    #[test]
    fn cmpxchg_and_fetch_add() {
        // *(u64 *)(r10 - 8) = 3; r0 = 3; r2 = 9; cmpxchg -> r0 = 3, mem = 9;
        // r3 = 1; fetch_add -> r3 = 9, mem = 10; r0 = mem
        let prog = [
            insn(0x7a, 10, 0, -8, 3),
            insn(0xb7, 0, 0, 0, 3),
            insn(0xb7, 2, 0, 0, 9),
            insn(0xdb, 10, 2, -8, 0xf1),
            insn(0xb7, 3, 0, 0, 1),
            insn(0xdb, 10, 3, -8, 0x01),
            insn(0x79, 0, 10, -8, 0),
            insn(0x0f, 0, 3, 0, 0),
            insn(0x95, 0, 0, 0, 0),
        ];
        assert_eq!(run(&prog, &[]).unwrap().0, 19);
    }
}
