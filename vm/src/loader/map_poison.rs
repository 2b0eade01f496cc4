//! References to a map that could not be created, poisoned as libbpf poisons the
//! references to a map it does not create (`bpf_map__set_autocreate(map, false)`, what a
//! tool does with a map it has no use for): each `ld_imm64` that loads the map (its handle
//! or a value address) becomes two identical calls of the invalid helper
//! [`POISON_LDIMM64_MAP_BASE`]` + map index`. The kernel's verifier refuses the program
//! only if such a call is reachable ("invalid func unknown#2001000003"); code that a
//! frozen `.rodata` constant switches off is never walked, so such a program loads.
//!
//! ```
//! use bpfvm::loader::{Object, POISON_LDIMM64_MAP_BASE};
//!
//! let bytes = include_bytes!("../../tests/fixtures/zero_entries.o");
//! let obj = Object::parse_named("zero_entries", bytes)?;
//! // `sized_later` has max_entries 0: it is not created, and `remember`'s use of it is
//! // poisoned (the program is still there; the verifier decides).
//! let (obj, _maps) = obj.create_maps_per_map(1, &Default::default())?;
//! let remember = obj.program("remember").unwrap();
//! let (at, poison) = &remember.map_poisons[0];
//! assert_eq!(poison.map.as_str(), "sized_later");
//! let call = remember.insns[*at];
//! assert_eq!(call & 0xff, 0x85);
//! assert_eq!((call >> 32) as i32, POISON_LDIMM64_MAP_BASE + poison.map_index as i32);
//! # Ok::<(), bpfvm::loader::LoadError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use super::error::LoadError;
use super::program::{opcode, src_reg, CALL, LD_IMM64};
use super::strtab::SharedStr;
use super::{ProgramDefinition, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};

/// libbpf's invalid helper id for a poisoned map reference: `call` of
/// `POISON_LDIMM64_MAP_BASE + map index` (libbpf's `POISON_LDIMM64_MAP_BASE`).
pub const POISON_LDIMM64_MAP_BASE: i32 = 2_001_000_000;

/// Map indexes a poisoned call can carry (libbpf recognises the prefix `200100` in the
/// verifier's log, so indexes below 10,000).
pub const POISON_LDIMM64_MAP_RANGE: i32 = 10_000;

/// Whether helper id `imm` is a poisoned map reference.
pub fn is_map_poison(imm: i32) -> bool {
    (POISON_LDIMM64_MAP_BASE..POISON_LDIMM64_MAP_BASE + POISON_LDIMM64_MAP_RANGE).contains(&imm)
}

/// A poisoned reference: the map that was not created and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapPoison {
    /// The map's name.
    pub map: SharedStr,
    /// Its index among the object's maps when they were created (the number in the
    /// poisoned call; libbpf's `obj->maps` index when bpfvm refused no map at parse).
    pub map_index: usize,
    /// Why it could not be created.
    pub reason: LoadError,
}

impl fmt::Display for MapPoison {
    /// libbpf's words for a reachable one ("BPF map 'm' is referenced but wasn't
    /// created"), then bpfvm's reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BPF map '{}' is referenced but wasn't created ({})",
            self.map, self.reason
        )
    }
}

/// The encoded poisoned call for map `index`.
fn poison_call(index: usize) -> u64 {
    let imm = POISON_LDIMM64_MAP_BASE.saturating_add(i32::try_from(index).unwrap_or(i32::MAX));
    u64::from(CALL) | (u64::from(imm as u32) << 32)
}

/// Poisons program `p`'s references to the maps that failed (`failed[i]`: object map
/// `i`'s creation error) and renumbers its other references: `new_index[i]` is map `i`'s
/// index once the failed maps are gone, `names[i]` its name.
pub(crate) fn poison_program(
    p: &mut ProgramDefinition,
    failed: &[Option<LoadError>],
    names: &[SharedStr],
    new_index: &[Option<usize>],
) {
    // Position in p.maps -> new position (None: poisoned).
    let mut kept = Vec::with_capacity(p.maps.len());
    let mut position = Vec::with_capacity(p.maps.len());
    for &i in &p.maps {
        match new_index.get(i).copied().flatten() {
            Some(n) => {
                position.push(Some(kept.len()));
                kept.push(n);
            }
            None => position.push(None),
        }
    }
    if kept.len() == p.maps.len() {
        for i in p.maps.iter_mut() {
            *i = new_index[*i].expect("not failed");
        }
        return;
    }
    let mut at = 0;
    while at + 1 < p.insns.len() {
        let insn = p.insns[at];
        if opcode(insn) != LD_IMM64 {
            at += 1;
            continue;
        }
        let src = src_reg(insn);
        let slot = super::program::imm(insn) as u32 as usize;
        if src == PSEUDO_MAP_FD || src == PSEUDO_MAP_VALUE {
            match (position.get(slot).copied(), p.maps.get(slot)) {
                (Some(Some(new)), _) => {
                    p.insns[at] = super::program::with_imm(insn, new as i32);
                }
                (Some(None), Some(&object_index)) => {
                    let call = poison_call(object_index);
                    p.insns[at] = call;
                    p.insns[at + 1] = call;
                    let poison = Arc::new(MapPoison {
                        map: names[object_index].clone(),
                        map_index: object_index,
                        reason: failed[object_index]
                            .clone()
                            .unwrap_or(LoadError::NoSuchMap {
                                name: names[object_index].to_string(),
                            }),
                    });
                    p.map_poisons.push((at, Arc::clone(&poison)));
                    p.map_poisons.push((at + 1, poison));
                }
                _ => {}
            }
        }
        at += 2;
    }
    p.map_poisons.sort_by_key(|(at, _)| *at);
    p.maps = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld_map(dst: u8, src: u8, slot: i32) -> [u64; 2] {
        [
            u64::from(LD_IMM64)
                | (u64::from(dst) << 8)
                | (u64::from(src) << 12)
                | (u64::from(slot as u32) << 32),
            0,
        ]
    }

    fn program(insns: Vec<u64>, maps: Vec<usize>) -> ProgramDefinition {
        ProgramDefinition {
            name: "p".into(),
            section: "xdp".into(),
            program_type: crate::ProgramType::Xdp,
            section_type: None,
            insns,
            maps,
            subprograms: vec![],
            lines: vec![],
            core_poisons: vec![],
            map_poisons: vec![],
            kfuncs: vec![],
            tracing_ctx: None,
            kernel_btf: None,
        }
    }

    #[test]
    fn failed_maps_are_poisoned_and_the_others_renumbered() {
        // Object maps a, b (failed), c; the program uses c (slot 0), b (slot 1), a (2).
        let mut insns = Vec::new();
        insns.extend(ld_map(1, PSEUDO_MAP_FD, 0));
        insns.extend(ld_map(2, PSEUDO_MAP_VALUE, 1));
        insns.extend(ld_map(3, PSEUDO_MAP_FD, 2));
        insns.push(0x95);
        let mut p = program(insns, vec![2, 1, 0]);
        let err = LoadError::NoSuchMap { name: "b".into() };
        let failed = [None, Some(err.clone()), None];
        let names: Vec<SharedStr> = ["a", "b", "c"].map(SharedStr::from).to_vec();
        p.maps = vec![2, 1, 0];
        poison_program(&mut p, &failed, &names, &[Some(0), None, Some(1)]);
        assert_eq!(p.maps, [1, 0]);
        assert_eq!(super::super::program::imm(p.insns[0]), 0);
        assert_eq!(super::super::program::imm(p.insns[4]), 1);
        let call = 0x85 | (u64::from((POISON_LDIMM64_MAP_BASE + 1) as u32) << 32);
        assert_eq!(&p.insns[2..4], [call, call]);
        assert_eq!(p.map_poisons.len(), 2);
        assert_eq!(
            (p.map_poisons[0].0, p.map_poisons[1].0),
            (2, 3),
            "both halves named"
        );
        let poison = &p.map_poisons[0].1;
        assert_eq!((poison.map.as_str(), poison.map_index), ("b", 1));
        assert_eq!(
            poison.to_string(),
            format!("BPF map 'b' is referenced but wasn't created ({err})")
        );
    }

    #[test]
    fn without_a_failed_map_only_the_indexes_change() {
        let mut insns = Vec::new();
        insns.extend(ld_map(1, PSEUDO_MAP_FD, 0));
        insns.push(0x95);
        let mut p = program(insns.clone(), vec![2]);
        let names: Vec<SharedStr> = ["a", "b", "c"].map(SharedStr::from).to_vec();
        poison_program(
            &mut p,
            &[None, Some(LoadError::NoSuchMap { name: "b".into() }), None],
            &names,
            &[Some(0), None, Some(1)],
        );
        assert_eq!(
            (p.maps.as_slice(), p.insns.as_slice()),
            (&[1][..], &insns[..])
        );
        assert!(p.map_poisons.is_empty());
    }

    #[test]
    fn poison_ids_are_libbpfs() {
        assert!(is_map_poison(2_001_000_000));
        assert!(is_map_poison(2_001_009_999));
        assert!(!is_map_poison(2_001_010_000));
        assert!(!is_map_poison(2_002_000_000));
        assert!(!is_map_poison(crate::insn::CORE_POISON_HELPER));
    }
}
