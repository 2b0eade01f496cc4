//! A tiny BPF instruction encoder for the hand-written programs of the oracle tests.
//!
//! Each function returns one 8-byte instruction (two for `ld_imm64`), little-endian, in
//! the kernel's `struct bpf_insn` layout: opcode, dst/src nibbles, off, imm.

/// One encoded instruction.
pub type Insn = [u8; 8];

/// Encodes `struct bpf_insn`.
pub const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    let o = off.to_le_bytes();
    let i = imm.to_le_bytes();
    [
        code,
        (src << 4) | (dst & 0xf),
        o[0],
        o[1],
        i[0],
        i[1],
        i[2],
        i[3],
    ]
}

/// `dst = imm` (64-bit).
pub const fn mov64_imm(dst: u8, imm: i32) -> Insn {
    insn(0xb7, dst, 0, 0, imm)
}

/// `dst = src` (64-bit).
pub const fn mov64_reg(dst: u8, src: u8) -> Insn {
    insn(0xbf, dst, src, 0, 0)
}

/// `dst += imm` (64-bit).
pub const fn add64_imm(dst: u8, imm: i32) -> Insn {
    insn(0x07, dst, 0, 0, imm)
}

/// `*(u32 *)(dst + off) = imm`.
pub const fn st_w(dst: u8, off: i16, imm: i32) -> Insn {
    insn(0x62, dst, 0, off, imm)
}

/// `*(u64 *)(dst + off) = imm` (sign-extended).
pub const fn st_dw(dst: u8, off: i16, imm: i32) -> Insn {
    insn(0x7a, dst, 0, off, imm)
}

/// `*(u32 *)(dst + off) = src`.
pub const fn stx_w(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x63, dst, src, off, 0)
}

/// `*(u64 *)(dst + off) = src`.
pub const fn stx_dw(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x7b, dst, src, off, 0)
}

/// `dst = *(u32 *)(src + off)`.
pub const fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x61, dst, src, off, 0)
}

/// `dst = *(u64 *)(src + off)`.
pub const fn ldx_dw(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x79, dst, src, off, 0)
}

/// `if dst == imm goto +off`.
pub const fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x15, dst, 0, off, imm)
}

/// `if dst != imm goto +off`.
pub const fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
    insn(0x55, dst, 0, off, imm)
}

/// `if dst > src goto +off` (unsigned, 64-bit).
pub const fn jgt_reg(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x2d, dst, src, off, 0)
}

/// `goto +off`.
pub const fn ja(off: i16) -> Insn {
    insn(0x05, 0, 0, off, 0)
}

/// `dst = *(u8 *)(src + off)`.
pub const fn ldx_b(dst: u8, src: u8, off: i16) -> Insn {
    insn(0x71, dst, src, off, 0)
}

/// `call helper`.
pub const fn call(helper: i32) -> Insn {
    insn(0x85, 0, 0, 0, helper)
}

/// `exit`.
pub const fn exit() -> Insn {
    insn(0x95, 0, 0, 0, 0)
}

/// `dst = map` (BPF_PSEUDO_MAP_FD with the map's index, see
/// [`super::prog::substitute_map_fds`]): two slots.
pub const fn ld_map(dst: u8, map_index: i32) -> [Insn; 2] {
    [insn(0x18, dst, 1, 0, map_index), insn(0, 0, 0, 0, 0)]
}

/// Concatenates instruction groups into one little-endian image.
pub fn image(parts: &[&[Insn]]) -> Vec<u8> {
    parts
        .iter()
        .flat_map(|p| p.iter())
        .flatten()
        .copied()
        .collect()
}

/// `dst = &value_of(map) + offset` (BPF_PSEUDO_MAP_VALUE with the map's index): two slots.
pub const fn ld_map_value(dst: u8, map_index: i32, offset: i32) -> [Insn; 2] {
    [insn(0x18, dst, 2, 0, map_index), insn(0, 0, 0, 0, offset)]
}

/// `dst = imm` (64-bit immediate): two slots.
pub const fn ld_imm64(dst: u8, imm: u64) -> [Insn; 2] {
    [
        insn(0x18, dst, 0, 0, imm as u32 as i32),
        insn(0, 0, 0, 0, (imm >> 32) as u32 as i32),
    ]
}
