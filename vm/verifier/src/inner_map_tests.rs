//! Map-in-map typing: a lookup in an outer map is `map_ptr_or_null` of its inner template,
//! a `map_ptr` after the NULL check, usable with the map helpers, with the template's
//! value size bounding the inner values.

use crate::input::{map_type, MapInfo, Options, ProgType, Program};
use crate::insn::Insn;

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// `*(u32 *)(r10 - 4) = 0; r1 = outer; r2 = r10 - 4; call 1; [null check]; r1 = r0;
/// r2 = r10 - 4; call 1; if r0 == 0 goto exit; r0 = *(u64 *)(r0 + read_off); exit`.
fn program(null_check: bool, read_off: i16) -> Vec<Insn> {
    let mut v = vec![
        i(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        i(0x18, 1, 1, 0, 0),   // r1 = map 0
        i(0, 0, 0, 0, 0),
        i(0xbf, 2, 10, 0, 0), // r2 = r10
        i(0x07, 2, 0, 0, -4), // r2 += -4
        i(0x85, 0, 0, 0, 1),  // call map_lookup_elem
    ];
    if null_check {
        v.push(i(0x55, 0, 0, 2, 0)); // if r0 != 0 goto +2
        v.push(i(0xb7, 0, 0, 0, 0)); // r0 = 0
        v.push(i(0x95, 0, 0, 0, 0)); // exit
    }
    v.extend([
        i(0xbf, 1, 0, 0, 0),        // r1 = r0
        i(0xbf, 2, 10, 0, 0),       // r2 = r10
        i(0x07, 2, 0, 0, -4),       // r2 += -4
        i(0x85, 0, 0, 0, 1),        // call map_lookup_elem
        i(0x15, 0, 0, 1, 0),        // if r0 == 0 goto +1
        i(0x79, 0, 0, read_off, 0), // r0 = *(u64 *)(r0 + off)
        i(0x95, 0, 0, 0, 0),        // exit
    ]);
    v
}

fn verdict(insns: &[Insn]) -> Result<(), String> {
    let mut outer = MapInfo::new(map_type::ARRAY_OF_MAPS, 4, 4, 4);
    outer.inner = Some(Box::new(MapInfo::new(map_type::ARRAY, 4, 8, 1)));
    let maps = [outer];
    let prog = Program {
        insns,
        prog_type: ProgType::Xdp,
        expected_attach_type: None,
        maps: &maps,
        gpl_compatible: true,
        kfuncs: &[],
        btf: None,
        func_info: true,
    };
    crate::verify(&prog, &Options::default())
        .map(drop)
        .map_err(|e| e.message)
}

#[test]
fn the_inner_map_is_reached_after_a_null_check() {
    assert_eq!(verdict(&program(true, 0)), Ok(()));
}

#[test]
fn the_lookup_result_must_be_checked_first() {
    let e = verdict(&program(false, 0)).unwrap_err();
    assert!(
        e.contains("R1 type=map_ptr_or_null expected=map_ptr"),
        "{e}"
    );
}

#[test]
fn the_template_bounds_inner_values() {
    let e = verdict(&program(true, 8)).unwrap_err();
    assert!(
        e.contains("invalid access to map value, value_size=8 off=8 size=8"),
        "{e}"
    );
}

/// Two lookups of the outer map (inner maps with a timer at 8), a value looked up in the
/// first, and `bpf_timer_init(&value->timer, second or first inner map, 0)`.
fn timer_init_program(same_inner: bool) -> Vec<Insn> {
    let lookup_outer = |key_slot: i16| {
        [
            i(0x18, 1, 1, 0, 0), // r1 = map 0
            i(0, 0, 0, 0, 0),
            i(0xbf, 2, 10, 0, 0),              // r2 = r10
            i(0x07, 2, 0, 0, key_slot.into()), // r2 += slot
            i(0x85, 0, 0, 0, 1),               // call map_lookup_elem
        ]
    };
    let mut v = vec![
        i(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        i(0x62, 10, 0, -8, 1), // *(u32 *)(r10 - 8) = 1
    ];
    v.extend(lookup_outer(-4));
    v.push(i(0xbf, 7, 0, 0, 0)); // r7 = r0
    v.extend(lookup_outer(-8));
    v.extend([
        i(0xbf, 6, 0, 0, 0),                              // r6 = r0
        i(0x15, 7, 0, 11, 0),                             // if r7 == 0 goto exit
        i(0x15, 6, 0, 10, 0),                             // if r6 == 0 goto exit
        i(0xbf, 1, 7, 0, 0),                              // r1 = r7
        i(0xbf, 2, 10, 0, 0),                             // r2 = r10
        i(0x07, 2, 0, 0, -4),                             // r2 += -4
        i(0x85, 0, 0, 0, 1),                              // call map_lookup_elem
        i(0x15, 0, 0, 5, 0),                              // if r0 == 0 goto exit
        i(0xbf, 1, 0, 0, 0),                              // r1 = r0
        i(0x07, 1, 0, 0, 8),                              // r1 += 8
        i(0xbf, 2, if same_inner { 7 } else { 6 }, 0, 0), // r2 = inner map
    ]);
    // The forward jumps above land on `r0 = 0; exit` after the call.
    v.extend([
        i(0xb7, 3, 0, 0, 0),   // r3 = 0
        i(0x85, 0, 0, 0, 169), // call timer_init
        i(0xb7, 0, 0, 0, 0),   // r0 = 0
        i(0x95, 0, 0, 0, 0),   // exit
    ]);
    v
}

#[test]
fn timers_in_inner_maps_are_told_apart_by_map_uid() {
    use crate::input::{FieldKind, Privilege, SpecialField};
    let mut template = MapInfo::new(map_type::ARRAY, 4, 24, 1);
    template.btf = true;
    template.fields.push(SpecialField {
        kind: FieldKind::Timer,
        offset: 8,
        size: 16,
    });
    let mut outer = MapInfo::new(map_type::ARRAY_OF_MAPS, 4, 4, 2);
    outer.inner = Some(Box::new(template));
    let maps = [outer];
    let verdict = |insns: &[Insn]| {
        let prog = Program {
            insns,
            prog_type: ProgType::SchedCls,
            expected_attach_type: None,
            maps: &maps,
            gpl_compatible: true,
            kfuncs: &[],
            btf: None,
            func_info: true,
        };
        let opts = Options {
            privilege: Privilege::Root,
            ..Options::default()
        };
        crate::verify(&prog, &opts).map(drop).map_err(|e| e.message)
    };
    assert_eq!(verdict(&timer_init_program(true)), Ok(()));
    assert_eq!(
        verdict(&timer_init_program(false)).unwrap_err(),
        "timer pointer in R1 map_uid=1 doesn't match map pointer in R2 map_uid=2"
    );
}
