//! Writing a resolved relocation into its instruction (libbpf's `bpf_core_patch_insn`),
//! or poisoning the instruction when the relocation could not be resolved.

/// libbpf's poison: `call 0xbad2310` ("bad relo"), a helper id no kernel has. The
/// verifier refuses it only when it is reachable; bpfvm faults when a run reaches it.
pub const CORE_POISON_HELPER: i32 = 0x0bad_2310;

/// The resolved relocation, ready to patch (libbpf's `bpf_core_relo_res`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) orig_val: u64,
    pub(crate) new_val: u64,
    /// Why the instruction is poisoned, if it is.
    pub(crate) poison: Option<String>,
    /// Whether the instruction must hold `orig_val` now.
    pub(crate) validate: bool,
    /// Whether resizing the load/store would change the value read (poisons loads).
    pub(crate) fail_memsz_adjust: bool,
    pub(crate) orig_sz: u32,
    pub(crate) new_sz: u32,
}

fn poison_word() -> u64 {
    0x85 | (u64::from(CORE_POISON_HELPER as u32) << 32)
}

/// Patch instruction `idx` of `insns`. `Ok(Some(reason))` when it was poisoned.
pub(crate) fn patch(
    insns: &mut [u64],
    idx: usize,
    res: &Resolved,
) -> Result<Option<String>, String> {
    let insn = *insns
        .get(idx)
        .ok_or("the instruction lies past its section")?;
    let code = insn as u8;
    let is_ldimm64 = code == 0x18;
    let poison = |insns: &mut [u64], why: String| {
        if is_ldimm64 {
            if let Some(next) = insns.get_mut(idx + 1) {
                *next = poison_word();
            }
        }
        insns[idx] = poison_word();
        Ok(Some(why))
    };
    if let Some(why) = &res.poison {
        return poison(insns, why.clone());
    }
    let imm = (insn >> 32) as u32 as i32;
    let off = (insn >> 16) as u16 as i16;
    let (orig, new) = (res.orig_val, res.new_val);
    match code & 7 {
        // ALU, ALU64: rX op= imm
        4 | 7 => {
            if code & 0x08 != 0 {
                return Err(
                    "the instruction is an ALU operation on a register, not an immediate".into(),
                );
            }
            if res.validate && imm as i64 as u64 != orig {
                return Err(format!(
                    "the instruction holds {imm}, the program's BTF says {orig}"
                ));
            }
            insns[idx] = (insn & 0xffff_ffff) | ((new as u32 as u64) << 32);
        }
        // LDX, ST, STX: memory offset (and access size)
        1..=3 => {
            if res.validate && off as i64 as u64 != orig {
                return Err(format!(
                    "the instruction's offset is {off}, the program's BTF says {orig}"
                ));
            }
            if new > i16::MAX as u64 {
                return Err(format!(
                    "offset {new} does not fit in an instruction (ERANGE)"
                ));
            }
            if res.fail_memsz_adjust {
                return poison(
                    insns,
                    format!(
                        "the field is {} bytes in the target and {} in the program, and it is \
                         neither a pointer nor an unsigned integer",
                        res.new_sz, res.orig_sz
                    ),
                );
            }
            let mut word = (insn & !0xffff_0000) | (u64::from(new as u16) << 16);
            if res.new_sz != res.orig_sz {
                let now = match code & 0x18 {
                    0x00 => 4,
                    0x08 => 2,
                    0x10 => 1,
                    _ => 8,
                };
                if now != res.orig_sz {
                    return Err(format!(
                        "the instruction accesses {now} bytes, the field is {} bytes",
                        res.orig_sz
                    ));
                }
                let size_code: u8 = match res.new_sz {
                    4 => 0x00,
                    2 => 0x08,
                    1 => 0x10,
                    8 => 0x18,
                    n => return Err(format!("the target field is {n} bytes, no access size")),
                };
                word = (word & !0x18) | u64::from(size_code);
            }
            insns[idx] = word;
        }
        // LD: only ld_imm64 rX, imm64
        0 => {
            let next = insns.get(idx + 1).copied();
            let plain = is_ldimm64
                && (insn >> 12) & 0xf == 0
                && off == 0
                && next.is_some_and(|n| n & 0xffff_ffff == 0);
            let Some(next) = next.filter(|_| plain) else {
                return Err("the ld_imm64 has an unexpected form".into());
            };
            let value = u64::from((insn >> 32) as u32) | (next & 0xffff_ffff_0000_0000);
            if res.validate && value != orig {
                return Err(format!(
                    "the instruction holds {value}, the program's BTF says {orig}"
                ));
            }
            insns[idx] = (insn & 0xffff_ffff) | (new << 32);
            insns[idx + 1] = next & 0xffff_ffff | (new & 0xffff_ffff_0000_0000);
        }
        _ => {
            return Err(format!(
                "opcode {code:#04x} is not an instruction CO-RE can relocate"
            ))
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(orig: u64, new: u64) -> Resolved {
        Resolved {
            orig_val: orig,
            new_val: new,
            validate: true,
            ..Resolved::default()
        }
    }

    #[test]
    fn patches_alu_immediates_offsets_and_ld_imm64() {
        // r1 += 8
        let mut i = [0x07 | (1 << 8) | (8u64 << 32)];
        assert_eq!(patch(&mut i, 0, &res(8, 24)), Ok(None));
        assert_eq!(i[0] >> 32, 24);
        // r0 = *(u32 *)(r1 + 4)
        let mut i = [0x61 | (1 << 12) | (4u64 << 16)];
        patch(&mut i, 0, &res(4, 12)).unwrap();
        assert_eq!((i[0] >> 16) as u16, 12);
        // r1 = 5 ll
        let mut i = [0x18 | (1 << 8) | (5u64 << 32), 0];
        patch(&mut i, 0, &res(5, 0x1_0000_0002)).unwrap();
        assert_eq!((i[0] >> 32, i[1] >> 32), (2, 1));
    }

    #[test]
    fn a_wrong_original_value_is_an_error() {
        let mut i = [0x07 | (8u64 << 32)];
        assert!(patch(&mut i, 0, &res(4, 24)).is_err());
        let mut i = [0x0f]; // r0 += r0: not an immediate
        assert!(patch(&mut i, 0, &res(0, 1)).is_err());
        let mut i = [0x61 | (4u64 << 16)];
        assert!(patch(&mut i, 0, &res(4, 40000)).is_err(), "ERANGE");
        let mut i = [0x18 | (5u64 << 32)];
        assert!(patch(&mut i, 0, &res(5, 6)).is_err(), "half an ld_imm64");
        assert!(patch(&mut i, 3, &res(5, 6)).is_err());
    }

    #[test]
    fn loads_are_resized_and_poisoned_as_libbpf_does() {
        // r0 = *(u32 *)(r1 + 4): the target field is 8 bytes, unsigned
        let mut i = [0x61 | (1 << 12) | (4u64 << 16)];
        let r = Resolved {
            orig_sz: 4,
            new_sz: 8,
            ..res(4, 16)
        };
        patch(&mut i, 0, &r).unwrap();
        assert_eq!(i[0] as u8, 0x79, "ldxdw");
        let r = Resolved {
            fail_memsz_adjust: true,
            ..r
        };
        let mut i = [0x61 | (1 << 12) | (4u64 << 16)];
        assert!(patch(&mut i, 0, &r).unwrap().is_some());
        assert_eq!(i[0], poison_word());
        let mut i = [0x18, 0];
        let r = Resolved {
            poison: Some("gone".into()),
            ..Resolved::default()
        };
        assert_eq!(patch(&mut i, 0, &r), Ok(Some("gone".into())));
        assert_eq!(i, [poison_word(), poison_word()]);
    }
}
