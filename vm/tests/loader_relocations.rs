//! Checks that relocated programs point at the right maps and global data offsets, by
//! cross-checking every program against the raw ELF relocations read independently
//! with the `object` crate.

mod common;

use bpfvm::loader::{Object, PSEUDO_CALL, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationFlags};

fn src(insn: u64) -> u8 {
    ((insn >> 12) & 0xf) as u8
}

fn imm(insn: u64) -> i32 {
    (insn >> 32) as u32 as i32
}

#[test]
fn every_relocation_is_applied_to_the_right_target() {
    let mut checked = 0;
    for &name in common::FIXTURES {
        let data = common::fixture_bytes(name);
        let obj = Object::parse_named(name, &data).unwrap();
        let file = object::File::parse(&*data).unwrap();
        for prog in obj.programs() {
            let sym = file
                .symbols()
                .find(|s| s.name() == Ok(prog.name.as_str()))
                .unwrap();
            let section = file.section_by_index(sym.section_index().unwrap()).unwrap();
            assert_eq!(section.name().unwrap(), prog.section);
            let raw: Vec<u64> = section.data().unwrap()
                [sym.address() as usize..(sym.address() + sym.size()) as usize]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            assert_eq!(prog.main_len(), raw.len(), "{name}/{}", prog.name);
            let mut touched = vec![false; raw.len()];
            for (offset, reloc) in section.relocations() {
                if offset < sym.address() || offset >= sym.address() + sym.size() {
                    continue;
                }
                let i = ((offset - sym.address()) / 8) as usize;
                touched[i] = true;
                let insn = prog.insns[i];
                let RelocationFlags::Elf { r_type } = reloc.flags() else {
                    panic!("not ELF")
                };
                let object::RelocationTarget::Symbol(target) = reloc.target() else {
                    panic!("relocation without symbol")
                };
                let target = file.symbol_by_index(target).unwrap();
                let target_section = file
                    .section_by_index(target.section_index().unwrap())
                    .unwrap()
                    .name()
                    .unwrap()
                    .to_string();
                let at = format!("{name}/{} insn {i}", prog.name);
                match r_type.0 {
                    1 if target_section == ".maps" || target_section == "maps" => {
                        assert_eq!(src(insn), PSEUDO_MAP_FD, "{at}");
                        let map = &obj.maps()[prog.maps[imm(insn) as usize]];
                        assert_eq!(map.name, target.name().unwrap(), "{at}");
                        assert_eq!(imm(prog.insns[i + 1]), 0, "{at}");
                    }
                    1 => {
                        assert_eq!(src(insn), PSEUDO_MAP_VALUE, "{at}");
                        let map = &obj.maps()[prog.maps[imm(insn) as usize]];
                        assert!(map.is_named(&target_section), "{at}: {}", map.name);
                        let expected = target.address() as i64 + i64::from(imm(raw[i]));
                        assert_eq!(i64::from(imm(prog.insns[i + 1])), expected, "{at}");
                        touched[i + 1] = true;
                    }
                    10 => {
                        assert_eq!(src(insn), PSEUDO_CALL, "{at}");
                        let dest = (i as i64 + 1 + i64::from(imm(insn))) as usize;
                        assert!(
                            prog.subprograms.iter().any(|(_, start)| *start == dest),
                            "{at}: call lands on {dest}, not a subprogram start"
                        );
                    }
                    other => panic!("{at}: unexpected relocation type {other}"),
                }
                checked += 1;
            }
            // Everything else in the program's own code is byte-for-byte clang's,
            // except local calls whose offsets move when subprograms are appended.
            for (i, (&got, &orig)) in prog.insns.iter().zip(&raw).enumerate() {
                if touched[i] || (orig as u8 == 0x85 && src(orig) == PSEUDO_CALL) {
                    continue;
                }
                assert_eq!(got, orig, "{name}/{} insn {i} changed", prog.name);
            }
        }
    }
    assert!(checked > 40, "checked {checked} relocations");
}

#[test]
fn map_lists_are_minimal_and_ordered_by_first_use() {
    let obj = Object::parse_named("globals", &common::fixture_bytes("globals")).unwrap();
    let bump = obj.program("bump").unwrap();
    let names: Vec<_> = bump
        .maps
        .iter()
        .map(|&i| obj.maps()[i].name.as_str())
        .collect();
    // step (.data), factor (.rodata), counter (.bss), runs (.data.stats).
    assert_eq!(
        names,
        [
            "globals.data",
            "globals.rodata",
            "globals.bss",
            ".data.stats"
        ]
    );
    let write = obj.program("write_rodata").unwrap();
    assert_eq!(write.maps, [obj.map_index(".rodata").unwrap()]);
}

#[test]
fn global_variables_resolve_to_their_offsets() {
    let obj = Object::parse_named("globals", &common::fixture_bytes("globals")).unwrap();
    let bump = obj.program("bump").unwrap();
    let rodata = obj.map_index(".rodata").unwrap();
    let rodata_slot = bump.maps.iter().position(|&m| m == rodata).unwrap() as i32;
    // (map slot, offset) of every PSEUDO_MAP_VALUE load.
    let mut loads: Vec<(i32, i32)> = Vec::new();
    let mut i = 0;
    while i < bump.insns.len() {
        let insn = bump.insns[i];
        if insn as u8 == 0x18 {
            if src(insn) == PSEUDO_MAP_VALUE {
                loads.push((imm(insn), imm(bump.insns[i + 1])));
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    // `factor` is at .rodata+0 and `greeting` at .rodata+8.
    assert!(loads.contains(&(rodata_slot, 0)), "{loads:?}");
    assert!(loads.contains(&(rodata_slot, 8)), "{loads:?}");
    assert_eq!(loads.len(), 5, "step, factor, counter, runs, greeting");
}
