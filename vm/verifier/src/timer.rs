//! `struct bpf_timer` in map values and the timer helpers (`bpf_timer_init`,
//! `bpf_timer_set_callback`, `bpf_timer_start`, `bpf_timer_cancel`), as the kernel's
//! verifier checks them (`process_timer_func`, `check_map_field_pointer`, the map pointer
//! match of `ARG_CONST_MAP_PTR`, `push_async_cb` with `set_timer_callback_state`):
//!
//! - the timer argument is a map value pointer at a constant offset that is exactly the
//!   offset of the value's `struct bpf_timer` (the map has BTF describing one);
//! - `bpf_timer_init`'s map is the map the timer lives in;
//! - the callback of `bpf_timer_set_callback` runs later, on its own: it is walked as a
//!   path of its own (a new main frame, no references or locks held) with `r1` the map,
//!   `r2` the key and `r3` the value, and must return 0.
//!
//! Timers in inner maps: the inner maps of an outer map share one template, and the
//! kernel tells them apart by `map_uid`: a map pointer out of a lookup in the outer map
//! takes that lookup's id as its `map_uid` once checked against NULL (when the template
//! has a timer), a map value looked up in it inherits it, and `bpf_timer_init`'s map must
//! have the timer's `map_uid` ("timer pointer in R1 map_uid=2 doesn't match map pointer in
//! R2 map_uid=3").

use crate::error::{Rule, VerifierError, EINVAL};
use crate::input::FieldKind;
use crate::reg::{Reg, RegType};
use crate::state::{FuncState, VState};
use crate::verifier::Verifier;

type R<T> = Result<T, VerifierError>;

/// Whether map `m`'s value holds a `struct bpf_timer`.
pub(crate) fn has_timer(m: &crate::input::MapInfo) -> bool {
    m.fields.iter().any(|f| f.kind == FieldKind::Timer)
}

/// `BPF_FUNC_timer_set_callback`.
pub const TIMER_SET_CALLBACK: u32 = 170;

impl Verifier<'_> {
    /// `process_timer_func`: the timer argument in `regno` (a map value, type already
    /// checked). Returns the map it points into.
    pub(crate) fn process_timer_func(&self, regno: u8) -> R<usize> {
        let reg = *self.reg(regno);
        let m = reg.map();
        let map = &self.maps[m];
        if !reg.b.var_off.is_const() {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!(
                    "R{regno} doesn't have constant offset. bpf_timer has to be at the constant offset"
                ),
            ));
        }
        if !map.btf {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!(
                    "map '{}' has to have BTF in order to use bpf_timer",
                    map.name
                ),
            ));
        }
        let Some(field) = map.fields.iter().find(|f| f.kind == FieldKind::Timer) else {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!("map '{}' has no valid bpf_timer", map.name),
            ));
        };
        let at = reg.b.var_off.value as i64 + i64::from(reg.off);
        if at != i64::from(field.offset) {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!(
                    "off {at} doesn't point to 'struct bpf_timer' that is at {}",
                    field.offset
                ),
            ));
        }
        Ok(m)
    }

    /// `ARG_CONST_MAP_PTR` after a timer argument: the same map, and the same inner map
    /// (`map_uid`, 0 for maps that are not inner maps).
    pub(crate) fn check_timer_map_match(
        &self,
        timer_map: usize,
        timer_uid: u32,
        regno: u8,
    ) -> R<()> {
        let reg = self.reg(regno);
        if reg.map() == timer_map && reg.map_uid == timer_uid {
            return Ok(());
        }
        Err(self.err(
            Rule::HelperArgs,
            EINVAL,
            format!(
                "timer pointer in R1 map_uid={timer_uid} doesn't match map pointer in R2 map_uid={}",
                reg.map_uid
            ),
        ))
    }

    /// `push_async_cb` + `set_timer_callback_state`: queues the walk of callback
    /// `subprog` of a timer in map `map`, as a path of its own.
    pub(crate) fn push_timer_callback(&mut self, subprog: usize, map: usize) -> R<()> {
        let start = self.subprogs[subprog].start;
        let mut f = FuncState::new(-1, 0, subprog);
        let mut map_ptr = Reg::pointer(RegType::ConstPtrToMap);
        map_ptr.aux = map as u32;
        let mut key = Reg::pointer(RegType::MapKey);
        key.aux = map as u32;
        let mut value = Reg::pointer(RegType::MapValue);
        value.aux = map as u32;
        f.regs[1] = map_ptr;
        f.regs[2] = key;
        f.regs[3] = value;
        f.in_callback = true;
        f.callback_ret_range = (0, 0);
        let mut st = VState::entry();
        st.frames = vec![f];
        st.insn_idx = start;
        st.first_insn_idx = start;
        st.last_insn_idx = self.insn_idx as i64;
        self.push_state(st, start, self.insn_idx as i64)
    }

    /// Whether the path runs an async (timer) callback: its main frame is a callback.
    pub(crate) fn in_async_callback(&self) -> bool {
        self.cur.frames.first().is_some_and(|f| f.in_callback)
    }
}

#[cfg(test)]
mod tests {
    use crate::input::{
        map_type, FieldKind, MapInfo, Options, Privilege, ProgType, Program, SpecialField,
    };
    use crate::{verify, Insn, VerifierError};

    fn w(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn::from_word(
            u64::from(code)
                | u64::from(dst) << 8
                | u64::from(src) << 12
                | u64::from(off as u16) << 16
                | u64::from(imm as u32) << 32,
        )
    }

    fn timer_map(btf: bool) -> MapInfo {
        let mut m = MapInfo::new(map_type::HASH, 4, 24, 4);
        m.btf = btf;
        m.fields.push(SpecialField {
            kind: FieldKind::Timer,
            offset: 8,
            size: 16,
        });
        m
    }

    /// `v = lookup(map 0, &0); if v: init(v + timer_off, map 0); set_callback(v + 8, cb);
    /// return 0`, the callback returning `cb_ret`.
    fn program(timer_off: i32, init_map: i32, cb_ret: i32) -> Vec<Insn> {
        vec![
            w(0x62, 10, 0, -4, 0), // 0: *(u32 *)(fp - 4) = 0
            w(0x18, 1, 1, 0, 0),   // 1-2: r1 = map 0
            w(0, 0, 0, 0, 0),
            w(0xbf, 2, 10, 0, 0),        // 3: r2 = fp
            w(0x07, 2, 0, 0, -4),        // 4: r2 -= 4
            w(0x85, 0, 0, 0, 1),         // 5: lookup
            w(0x15, 0, 0, 12, 0),        // 6: if r0 == 0 goto 19
            w(0xbf, 6, 0, 0, 0),         // 7: r6 = r0
            w(0xbf, 1, 6, 0, 0),         // 8: r1 = r6
            w(0x07, 1, 0, 0, timer_off), // 9: r1 += timer_off
            w(0x18, 2, 1, 0, init_map),  // 10-11: r2 = map init_map
            w(0, 0, 0, 0, 0),
            w(0xb7, 3, 0, 0, 0),   // 12: r3 = 0
            w(0x85, 0, 0, 0, 169), // 13: bpf_timer_init
            w(0xbf, 1, 6, 0, 0),   // 14: r1 = r6
            w(0x07, 1, 0, 0, 8),   // 15: r1 += 8
            w(0x18, 2, 4, 0, 4),   // 16-17: r2 = &cb (21)
            w(0, 0, 0, 0, 0),
            w(0x85, 0, 0, 0, 170),    // 18: bpf_timer_set_callback
            w(0xb7, 0, 0, 0, 0),      // 19: r0 = 0
            w(0x95, 0, 0, 0, 0),      // 20: exit
            w(0xb7, 0, 0, 0, cb_ret), // 21: cb: r0 = cb_ret
            w(0x95, 0, 0, 0, 0),      // 22: exit
        ]
    }

    fn run(insns: &[Insn], maps: &[MapInfo]) -> Result<crate::Verdict, VerifierError> {
        let prog = Program {
            insns,
            prog_type: ProgType::SchedCls,
            expected_attach_type: None,
            maps,
            gpl_compatible: true,
            kfuncs: &[],
            func_info: true,
            btf: None,
        };
        let opts = Options {
            privilege: Privilege::Root,
            ..Options::default()
        };
        verify(&prog, &opts)
    }

    fn refusal(insns: &[Insn], maps: &[MapInfo]) -> String {
        run(insns, maps).expect_err("refused").message
    }

    #[test]
    fn timer_arguments_and_callback() {
        let one = [timer_map(true)];
        let two = [timer_map(true), timer_map(true)];
        run(&program(8, 0, 0), &one).expect("accepted");
        assert_eq!(
            refusal(&program(16, 0, 0), &one),
            "off 16 doesn't point to 'struct bpf_timer' that is at 8"
        );
        assert_eq!(
            refusal(&program(8, 1, 0), &two),
            "timer pointer in R1 map_uid=0 doesn't match map pointer in R2 map_uid=0"
        );
        assert_eq!(
            refusal(&program(8, 0, 0), &[timer_map(false)]),
            "map '' has to have BTF in order to use bpf_timer"
        );
        assert_eq!(
            refusal(&program(8, 0, 1), &one),
            "At async callback return the register R0 has smin=1 smax=1 should have been in [0, 0]"
        );
    }
}
