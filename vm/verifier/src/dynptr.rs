//! Dynptrs (`struct bpf_dynptr`): 16 bytes of stack, two 8-byte slots of
//! `STACK_DYNPTR`, created by `bpf_dynptr_from_mem` and `bpf_ringbuf_reserve_dynptr`,
//! read by `bpf_dynptr_read`, `bpf_dynptr_write` and `bpf_dynptr_data`, released by
//! `bpf_ringbuf_{submit,discard}_dynptr` (the kernel's `process_dynptr_func`,
//! `mark_stack_slots_dynptr`, `unmark_stack_slots_dynptr`,
//! `destroy_if_dynptr_stack_slot`).
//!
//! The slot at the dynptr's address (`spi`, the lower address) is its *first slot*; the
//! slot above it (`spi - 1`) the second. Both slots' `spilled` registers describe the
//! dynptr: `aux` holds its [`DynptrKind`] and whether the slot is the first, `id` the
//! dynptr's id (slices from `bpf_dynptr_data` carry it as `dynptr_id`) and `ref_obj_id` the
//! reference a ring buffer dynptr holds. Writing to either slot destroys the dynptr (and
//! its slices); a ring buffer dynptr cannot be overwritten, as its reference would leak.

use crate::error::{Rule, VerifierError, EACCES, EINVAL};
use crate::reg::{Reg, RegType};
use crate::stack::{SlotType, StackSlot, SLOT};
use crate::state::RefState;
use crate::verifier::Verifier;

type R<T> = Result<T, VerifierError>;

/// `BPF_FUNC_dynptr_from_mem`.
pub const DYNPTR_FROM_MEM: u32 = 197;

/// What a dynptr points to (`enum bpf_dynptr_type`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DynptrKind {
    /// Program memory, a map value (`BPF_DYNPTR_TYPE_LOCAL`).
    Local = 1,
    /// A ring buffer record (`BPF_DYNPTR_TYPE_RINGBUF`), a reference to release.
    Ringbuf = 2,
}

impl DynptrKind {
    fn from_aux(aux: u32) -> Option<DynptrKind> {
        match aux & 0xff {
            1 => Some(DynptrKind::Local),
            2 => Some(DynptrKind::Ringbuf),
            _ => None,
        }
    }

    /// The kernel's name in messages (`dynptr_type_str`).
    pub fn name(self) -> &'static str {
        match self {
            DynptrKind::Local => "local",
            DynptrKind::Ringbuf => "ringbuf",
        }
    }

    /// Whether the dynptr holds a reference (`dynptr_type_refcounted`).
    fn refcounted(self) -> bool {
        self == DynptrKind::Ringbuf
    }
}

/// A dynptr argument of a helper (`ARG_PTR_TO_DYNPTR` and its flags).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DynptrArg {
    /// The dynptr type the helper wants (`DYNPTR_TYPE_*`), `None` for any.
    pub kind: Option<DynptrKind>,
    /// `MEM_UNINIT`: the helper constructs the dynptr there.
    pub uninit: bool,
    /// `OBJ_RELEASE`: the helper releases the dynptr's reference.
    pub release: bool,
}

impl DynptrArg {
    /// An initialised dynptr of any type, only read (`ARG_PTR_TO_DYNPTR | MEM_RDONLY`).
    pub const READ: DynptrArg = DynptrArg {
        kind: None,
        uninit: false,
        release: false,
    };
    /// Room for a new local dynptr.
    pub const NEW_LOCAL: DynptrArg = DynptrArg {
        kind: Some(DynptrKind::Local),
        uninit: true,
        release: false,
    };
    /// Room for a new ring buffer dynptr.
    pub const NEW_RINGBUF: DynptrArg = DynptrArg {
        kind: Some(DynptrKind::Ringbuf),
        uninit: true,
        release: false,
    };
    /// A ring buffer dynptr to submit or discard.
    pub const RELEASE_RINGBUF: DynptrArg = DynptrArg {
        kind: Some(DynptrKind::Ringbuf),
        uninit: false,
        release: true,
    };
}

/// Marks `aux` of a first slot.
const FIRST_SLOT: u32 = 1 << 8;

/// The dynptr a slot holds: its kind and whether the slot is the first one.
pub fn slot_dynptr(s: &StackSlot) -> Option<(DynptrKind, bool)> {
    if s.types[0] != SlotType::Dynptr {
        return None;
    }
    Some((
        DynptrKind::from_aux(s.spilled.aux)?,
        s.spilled.aux & FIRST_SLOT != 0,
    ))
}

/// A dynptr in the kernel log's notation (`dynptr_ringbuf(id=2,ref_id=3)`), when `second`
/// and `first` (the slot above and the one at the dynptr's address) hold one.
pub(crate) fn dynptr_str(second: &StackSlot, first: &StackSlot) -> Option<String> {
    let (kind, is_first) = slot_dynptr(second)?;
    if is_first || slot_dynptr(first) != Some((kind, true)) {
        return None;
    }
    let r = &first.spilled;
    let mut parts = Vec::new();
    if r.id != 0 {
        parts.push(format!("id={}", r.id));
    }
    if r.ref_obj_id != 0 {
        parts.push(format!("ref_id={}", r.ref_obj_id));
    }
    Some(format!("dynptr_{}({})", kind.name(), parts.join(",")))
}

/// The slot register of a dynptr (`__mark_dynptr_reg`).
fn dynptr_reg(kind: DynptrKind, first: bool, id: u32, ref_obj_id: u32) -> Reg {
    let mut r = Reg::pointer(RegType::NotInit);
    r.aux = kind as u32 | if first { FIRST_SLOT } else { 0 };
    r.id = id;
    r.ref_obj_id = ref_obj_id;
    r
}

/// The kfuncs that only read or adjust an initialised dynptr (`const struct bpf_dynptr *`),
/// modelled for dynptrs of every type.
const KFUNCS_READING_DYNPTR: [&str; 4] = [
    "bpf_dynptr_size",
    "bpf_dynptr_is_null",
    "bpf_dynptr_is_rdonly",
    "bpf_dynptr_adjust",
];

/// Whether argument `arg` of kfunc `name` is a dynptr bpfvm's verifier checks
/// (`KF_ARG_PTR_TO_DYNPTR` of [`KFUNCS_READING_DYNPTR`]).
pub(crate) fn kfunc_dynptr_arg(name: &str, arg: &crate::kfunc::KfuncArg) -> bool {
    matches!(arg, crate::kfunc::KfuncArg::Ptr { pointee } if pointee.ends_with("struct bpf_dynptr"))
        && KFUNCS_READING_DYNPTR.contains(&name)
}

/// What the arguments told about a `bpf_dynptr_data` call's dynptr.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DynptrMeta {
    /// The dynptr's id.
    pub id: u32,
    /// The reference it holds.
    pub ref_obj_id: u32,
}

impl Verifier<'_> {
    /// `dynptr_get_spi`: the first slot of the dynptr `regno` points to; `Ok(None)` when
    /// the slots are beyond the tracked stack (`-ERANGE`).
    fn dynptr_get_spi(&self, regno: u8) -> R<Option<usize>> {
        let reg = *self.reg(regno);
        if !reg.b.var_off.is_const() {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                "dynptr has to be at a constant offset",
            ));
        }
        let off = i64::from(reg.off) + reg.b.var_off.value as i64;
        let spi = (-off - 1).div_euclid(SLOT as i64);
        if off % SLOT as i64 != 0 || spi < 1 {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!("cannot pass in dynptr at an offset={off}"),
            ));
        }
        let allocated = self.cur.frames[reg.frameno as usize].stack.len() as i64;
        if spi >= allocated {
            return Ok(None);
        }
        Ok(Some(spi as usize))
    }

    /// A dynptr argument (`check_func_arg` for `ARG_PTR_TO_DYNPTR`, with
    /// `process_dynptr_func`); `release`: set to `regno` for a releasing argument.
    pub(crate) fn check_dynptr_arg(
        &mut self,
        regno: u8,
        arg: DynptrArg,
        meta: &mut DynptrMeta,
        release: &mut u8,
    ) -> R<()> {
        let reg = *self.reg(regno);
        if reg.ty != RegType::Stack {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!(
                    "R{regno} type={} expected=fp, dynptr_ptr",
                    crate::log::reg_type_str(reg.ty, reg.flags)
                ),
            ));
        }
        let frame = reg.frameno as usize;
        if arg.release {
            let held = match self.dynptr_get_spi(regno) {
                Ok(Some(spi)) => self.cur.frames[frame].stack[spi].spilled.ref_obj_id != 0,
                _ => false,
            };
            if !held {
                return Err(self.err(
                    Rule::References,
                    EINVAL,
                    format!("arg {regno} is an unacquired reference"),
                ));
            }
            *release = regno;
        }
        if arg.uninit {
            let valid_uninit = self.dynptr_get_spi(regno).is_ok();
            if !valid_uninit {
                return Err(self.err(
                    Rule::HelperArgs,
                    EINVAL,
                    "Dynptr has to be an uninitialized dynptr",
                ));
            }
            for i in [0, 8] {
                self.check_mem_access(regno, i, 8, crate::ctx::Access::Write, None, false, false)?;
            }
            let kind = arg.kind.unwrap_or(DynptrKind::Local);
            return self.mark_stack_slots_dynptr(regno, kind);
        }
        let spi = match self.dynptr_get_spi(regno) {
            Ok(Some(spi)) => Some(spi),
            _ => None,
        };
        let found = spi.and_then(|spi| {
            let f = &self.cur.frames[frame];
            let first = slot_dynptr(&f.stack[spi])?;
            let second = slot_dynptr(&f.stack[spi - 1])?;
            let whole = f.stack[spi].types.iter().all(|&t| t == SlotType::Dynptr)
                && f.stack[spi - 1]
                    .types
                    .iter()
                    .all(|&t| t == SlotType::Dynptr);
            (first.1 && !second.1 && whole).then_some((spi, first.0))
        });
        let Some((spi, kind)) = found else {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!("Expected an initialized dynptr as arg #{}", regno - 1),
            ));
        };
        if arg.kind.is_some_and(|k| k != kind) {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!(
                    "Expected a dynptr of type {} as arg #{}",
                    arg.kind.map_or("", DynptrKind::name),
                    regno - 1
                ),
            ));
        }
        let s = self.cur.frames[frame].stack[spi].spilled;
        *meta = DynptrMeta {
            id: s.id,
            ref_obj_id: s.ref_obj_id,
        };
        Ok(())
    }

    /// A kfunc's initialised dynptr argument (`check_kfunc_args` for
    /// `KF_ARG_PTR_TO_DYNPTR`, `process_dynptr_func`).
    pub(crate) fn check_dynptr_kfunc_arg(&mut self, regno: u8) -> R<()> {
        let reg = *self.reg(regno);
        if reg.ty != RegType::Stack {
            return Err(self.err(
                Rule::HelperArgs,
                EINVAL,
                format!(
                    "arg#{} expected pointer to stack or const struct bpf_dynptr",
                    regno - 1
                ),
            ));
        }
        let mut meta = DynptrMeta::default();
        let mut release = 0;
        self.check_dynptr_arg(regno, DynptrArg::READ, &mut meta, &mut release)
    }

    /// `mark_stack_slots_dynptr`: the two slots at `regno` become a new dynptr; a ring
    /// buffer one acquires a reference.
    fn mark_stack_slots_dynptr(&mut self, regno: u8, kind: DynptrKind) -> R<()> {
        let reg = *self.reg(regno);
        let frame = reg.frameno as usize;
        let Some(spi) = self.dynptr_get_spi(regno)? else {
            return Err(self.internal("dynptr slots beyond the stack after the write"));
        };
        self.destroy_if_dynptr_stack_slot(frame, spi)?;
        self.destroy_if_dynptr_stack_slot(frame, spi - 1)?;
        let id = self.new_id();
        let ref_obj_id = if kind.refcounted() {
            let rid = self.new_id();
            self.cur.refs.push(RefState {
                id: rid,
                insn_idx: self.insn_idx,
            });
            rid
        } else {
            0
        };
        let f = &mut self.cur.frames[frame];
        for (s, first) in [(spi, true), (spi - 1, false)] {
            f.stack[s].types = [SlotType::Dynptr; SLOT];
            f.stack[s].spilled = dynptr_reg(kind, first, id, ref_obj_id);
        }
        Ok(())
    }

    /// `destroy_if_dynptr_stack_slot`: a write to slot `spi` of `frame` destroys the
    /// dynptr there, and the slices taken from it; refused for a ring buffer dynptr.
    pub(crate) fn destroy_if_dynptr_stack_slot(&mut self, frame: usize, spi: usize) -> R<()> {
        let f = &self.cur.frames[frame];
        let Some((kind, first)) = f.stack.get(spi).and_then(slot_dynptr) else {
            return Ok(());
        };
        let spi = if first { spi } else { spi + 1 };
        if kind.refcounted() {
            return Err(self.err(
                Rule::StackAccess,
                EINVAL,
                "cannot overwrite referenced dynptr",
            ));
        }
        self.invalidate_dynptr(frame, spi, true);
        Ok(())
    }

    /// `invalidate_dynptr` (and, with `slices`, the slices of it as
    /// `destroy_if_dynptr_stack_slot` invalidates them).
    fn invalidate_dynptr(&mut self, frame: usize, spi: usize, slices: bool) {
        let Some(f) = self.cur.frames.get_mut(frame) else {
            return;
        };
        if spi == 0 || spi >= f.stack.len() {
            return;
        }
        let id = f.stack[spi].spilled.id;
        for s in [spi, spi - 1] {
            f.stack[s] = StackSlot::default();
        }
        if !slices {
            return;
        }
        let leaks = self.allow_ptr_leaks();
        self.cur.for_each_reg(|r| {
            if r.ty == RegType::Mem && r.flags & !crate::reg::MAYBE_NULL == 0 && r.dynptr_id == id {
                *r = if leaks {
                    Reg::unknown(false)
                } else {
                    Reg::not_init()
                };
            }
        });
    }

    /// `unmark_stack_slots_dynptr`: a ring buffer dynptr's reference is released with
    /// its slices (and any dynptr holding it), a local dynptr is invalidated.
    pub(crate) fn unmark_stack_slots_dynptr(&mut self, regno: u8) -> R<()> {
        let frame = self.reg(regno).frameno as usize;
        let Some(spi) = self.dynptr_get_spi(regno)? else {
            return Err(self.internal("released dynptr beyond the stack"));
        };
        let s = self.cur.frames[frame].stack[spi];
        let Some((kind, _)) = slot_dynptr(&s) else {
            return Err(self.internal("released dynptr is no dynptr"));
        };
        if !kind.refcounted() {
            self.invalidate_dynptr(frame, spi, false);
            return Ok(());
        }
        let ref_obj_id = s.spilled.ref_obj_id;
        if !self.release_reference(ref_obj_id) {
            return Err(self.internal("dynptr reference not held"));
        }
        let n = self.cur.frames[frame].stack.len();
        for i in 1..n {
            let st = &self.cur.frames[frame].stack[i];
            if st.spilled.ref_obj_id == ref_obj_id && slot_dynptr(st).is_some_and(|(_, f)| f) {
                self.invalidate_dynptr(frame, i, false);
            }
        }
        Ok(())
    }

    /// The checks of a dynptr helper after its arguments (`check_helper_call`'s
    /// `switch (func_id)`): `bpf_dynptr_from_mem`'s memory is a map value (the kernel
    /// refuses stack memory).
    pub(crate) fn check_dynptr_call(&self, id: u32) -> R<()> {
        if id == DYNPTR_FROM_MEM {
            let r1 = self.reg(1);
            if r1.ty != RegType::MapValue {
                return Err(self.err(
                    Rule::HelperArgs,
                    EACCES,
                    format!(
                        "Unsupported reg type {} for bpf_dynptr_from_mem data",
                        crate::log::reg_type_str(r1.ty, r1.flags)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `r0` of `bpf_dynptr_data`: memory of the constant size, or NULL, tied to the
    /// dynptr (its id, and its reference for a ring buffer dynptr).
    pub(crate) fn dynptr_data_ret(size: u64, meta: DynptrMeta) -> Reg {
        let mut r = Reg::pointer(RegType::Mem);
        r.flags = crate::reg::MAYBE_NULL;
        r.aux = size as u32;
        r.ref_obj_id = meta.ref_obj_id;
        r.dynptr_id = meta.id;
        r
    }

    /// `check_stack_range_initialized` with a helper writing the bytes: a dynptr in
    /// `[min_off, max_off)` could be overwritten.
    pub(crate) fn check_no_dynptr_in(&self, frame: usize, min_off: i64, max_off: i64) -> R<()> {
        let f = &self.cur.frames[frame];
        for i in min_off..max_off {
            let (spi, b) = crate::stack::slot_of(i);
            if f.stack
                .get(spi)
                .is_some_and(|s| s.types[b] == SlotType::Dynptr)
            {
                return Err(self.err(
                    Rule::HelperArgs,
                    EACCES,
                    format!("potential write to dynptr at off={i} disallowed"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// `bpf_ringbuf_reserve_dynptr(map 0, 8, 0, fp + off)`.
    fn reserve(off: i32) -> Vec<Insn> {
        vec![
            i(0x18, 1, 1, 0, 0),
            i(0, 0, 0, 0, 0),
            i(0xb7, 2, 0, 0, 8),
            i(0xb7, 3, 0, 0, 0),
            i(0xbf, 4, 10, 0, 0),
            i(0x07, 4, 0, 0, off),
            i(0x85, 0, 0, 0, 198),
        ]
    }

    /// `bpf_ringbuf_{submit,discard}_dynptr(fp + off, 0)`.
    fn release(off: i32, helper: i32) -> Vec<Insn> {
        vec![
            i(0xbf, 1, 10, 0, 0),
            i(0x07, 1, 0, 0, off),
            i(0xb7, 2, 0, 0, 0),
            i(0x85, 0, 0, 0, helper),
        ]
    }

    fn verdict(parts: &[Vec<Insn>]) -> Result<(), (i32, String)> {
        let mut insns: Vec<Insn> = parts.concat();
        insns.extend([i(0xb7, 0, 0, 0, 0), i(0x95, 0, 0, 0, 0)]);
        let maps = [MapInfo::new(map_type::RINGBUF, 0, 0, 4096)];
        let prog = Program {
            insns: &insns,
            prog_type: ProgType::SchedCls,
            expected_attach_type: None,
            maps: &maps,
            gpl_compatible: true,
            kfuncs: &[],
            btf: None,
            func_info: false,
        };
        crate::verify(&prog, &Options::default())
            .map(|_| ())
            .map_err(|e| (e.errno, e.message))
    }

    #[test]
    fn a_ring_buffer_dynptr_is_released_once() {
        assert_eq!(verdict(&[reserve(-16), release(-16, 199)]), Ok(()));
        assert_eq!(verdict(&[reserve(-16), release(-16, 200)]), Ok(()));
        let leak = verdict(&[reserve(-16)]).unwrap_err();
        assert_eq!(leak.0, 22);
        assert!(leak.1.starts_with("Unreleased reference id=2"), "{leak:?}");
        let twice = verdict(&[reserve(-16), release(-16, 199), release(-16, 199)]);
        assert_eq!(twice, Err((22, "arg 1 is an unacquired reference".into())));
    }

    #[test]
    fn its_slots_are_sixteen_aligned_bytes_not_overwritten() {
        let at_fp8 = verdict(&[reserve(-8), release(-8, 199)]);
        assert_eq!(
            at_fp8,
            Err((22, "Dynptr has to be an uninitialized dynptr".into()))
        );
        let store = vec![i(0x7a, 10, 0, -8, 0)]; // *(u64 *)(r10 - 8) = 0: the second slot
        assert_eq!(
            verdict(&[reserve(-16), store, release(-16, 199)]),
            Err((22, "cannot overwrite referenced dynptr".into()))
        );
        let again = verdict(&[reserve(-16), reserve(-16), release(-16, 199)]);
        assert_eq!(
            again,
            Err((22, "cannot overwrite referenced dynptr".into()))
        );
        let load = vec![i(0x79, 0, 10, -16, 0)];
        assert_eq!(
            verdict(&[reserve(-16), load, release(-16, 199)]),
            Err((13, "invalid read from stack off -16+0 size 8".into()))
        );
    }

    #[test]
    fn slot_encoding_round_trips() {
        let mut s = StackSlot::default();
        assert_eq!(slot_dynptr(&s), None);
        s.types = [SlotType::Dynptr; SLOT];
        s.spilled = dynptr_reg(DynptrKind::Ringbuf, true, 3, 4);
        assert_eq!(slot_dynptr(&s), Some((DynptrKind::Ringbuf, true)));
        s.spilled = dynptr_reg(DynptrKind::Local, false, 3, 0);
        assert_eq!(slot_dynptr(&s), Some((DynptrKind::Local, false)));
        assert!(DynptrKind::Ringbuf.refcounted() && !DynptrKind::Local.refcounted());
        assert_eq!(DynptrKind::Local.name(), "local");
        let first = StackSlot {
            types: [SlotType::Dynptr; SLOT],
            spilled: dynptr_reg(DynptrKind::Ringbuf, true, 2, 3),
        };
        let mut second = first;
        second.spilled = dynptr_reg(DynptrKind::Ringbuf, false, 2, 3);
        assert_eq!(
            dynptr_str(&second, &first).as_deref(),
            Some("dynptr_ringbuf(id=2,ref_id=3)")
        );
        assert_eq!(dynptr_str(&first, &second), None);
    }
}
