//! Loads through a `PTR_TO_BTF_ID` pointer (the kernel's `check_ptr_to_btf_access`,
//! `btf_struct_access` and `btf_struct_walk`): the access is placed in the kernel struct
//! the pointer points to (in the target BTF), through nested structs, unions and arrays;
//! a whole pointer member loads as a pointer to its struct (with the trust the kernel
//! gives it), anything else as a scalar, and accesses outside a member, negative or
//! variable offsets and writes are refused in the kernel's words.
//!
//! Without a target BTF (or for a pointer whose type bpfvm does not know) the load is
//! refused as not modelled ([`crate::Rule::Unsupported`]), never guessed.

use crate::error::{Rule, VerifierError, EACCES, EFAULT, EINVAL, ENOTSUPP, EPERM};
use crate::kernel_btf::{resolve_size, skip_modifiers, struct_name, KernelBtf, KernelType};
use crate::reg::{
    Reg, RegType, MAYBE_NULL, MEM_PERCPU, MEM_RCU, MEM_USER, PTR_TRUSTED, PTR_UNTRUSTED, RDONLY,
};
use crate::verifier::Verifier;

type R<T> = Result<T, VerifierError>;

/// Most nested structs one access walks through (the kernel's walk ends with the
/// struct's size; this bounds a malformed, self-containing BTF).
const MAX_WALK_DEPTH: usize = 64;

/// `BPF_TRACE_RAW_TP` (`tp_btf`) and `BPF_TRACE_ITER`: attach types whose context
/// pointers are trusted (`prog_args_trusted`).
const TRACE_RAW_TP: u32 = 23;
const TRACE_ITER: u32 = 28;

/// What one walk step finds (`enum bpf_struct_walk_result`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Walk {
    Scalar,
    /// A pointer to a struct: its id.
    Ptr(u32),
    /// A pointer to something else.
    PtrUntrusted,
    /// The access starts a nested struct: its id.
    Struct(u32),
}

/// What a load gives (`btf_struct_access`'s register type).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Loaded {
    /// `SCALAR_VALUE`.
    Scalar,
    /// `PTR_TO_BTF_ID` of struct `id`, with the walk's flags, from member `field`.
    Ptr { id: u32, flags: u8 },
    /// `PTR_TO_MEM | MEM_RDONLY | PTR_UNTRUSTED`: a pointer to a non-struct.
    UntrustedMem,
}

/// A refusal of the walk: errno and the kernel's message.
type WalkErr = (i32, String);

/// `btf_struct_walk`: one step from struct `t` at `off`.
fn struct_walk<'b>(
    btf: &'b dyn KernelBtf,
    mut t: u32,
    mut off: u64,
    size: u64,
    flag: &mut u8,
    field: &mut &'b str,
) -> Result<Walk, WalkErr> {
    for _ in 0..MAX_WALK_DEPTH {
        t = skip_modifiers(btf, t).ok_or((EINVAL, "Type '' is not a struct".to_string()))?;
        let Some(KernelType::Struct {
            name: tname,
            size: tsize,
            members: vlen,
            union,
        }) = btf.ty(t)
        else {
            return Err((
                EINVAL,
                format!("Type '{}' is not a struct", struct_name(btf, t)),
            ));
        };
        if union && vlen != 1 && *flag & PTR_UNTRUSTED == 0 {
            // Walking unions (but single-member ones) yields untrusted pointers.
            *flag |= PTR_UNTRUSTED;
        }
        if off + size > u64::from(tsize) {
            // The last member may be a flexible array of ints or structs.
            let beyond = |off: u64| {
                Err((
                    EACCES,
                    format!("access beyond struct {tname} at off {off} size {size}"),
                ))
            };
            let Some(last) = vlen.checked_sub(1).and_then(|i| btf.member(t, i)) else {
                return beyond(off);
            };
            let Some(KernelType::Array { elem, nelems: 0 }) =
                skip_modifiers(btf, last.type_id).and_then(|id| btf.ty(id))
            else {
                return beyond(off);
            };
            let moff = u64::from(last.bit_offset / 8);
            if off < moff {
                return beyond(off);
            }
            let elem = skip_modifiers(btf, elem).unwrap_or(0);
            match btf.ty(elem) {
                Some(KernelType::Int { .. }) => return Ok(Walk::Scalar),
                Some(KernelType::Struct { size: esize, .. }) if esize > 0 => {
                    off = (off - moff) % u64::from(esize);
                    t = elem;
                    continue;
                }
                _ => return beyond(off),
            }
        }
        let mut descend = None;
        for i in 0..vlen {
            let Some(m) = btf.member(t, i) else { break };
            let moff = u64::from(m.bit_offset / 8);
            if off + size <= moff {
                break;
            }
            if m.bitfield_size != 0 {
                let end_bit = u64::from(m.bit_offset) + u64::from(m.bitfield_size);
                if off <= moff && end_bit.div_ceil(8) <= off + size {
                    return Ok(Walk::Scalar);
                }
                // A partial access to a bitfield: not this member.
                continue;
            }
            if off < moff {
                // In a hole of the struct.
                break;
            }
            let Some(r) = resolve_size(btf, m.type_id) else {
                return Err((EFAULT, format!("field {} doesn't have size", m.name)));
            };
            let mtrue_end = moff + r.size;
            if off >= mtrue_end {
                continue;
            }
            let (mut moff, mut mtype, mut msize) = (moff, r.id, r.size);
            if r.is_array {
                if moff == mtrue_end {
                    continue;
                }
                msize /= r.nelems;
                moff += (off - moff) / msize * msize;
                mtype = r.elem;
            }
            match btf.ty(mtype) {
                Some(KernelType::Struct { .. }) => {
                    if off == moff {
                        return Ok(Walk::Struct(mtype));
                    }
                    off -= moff;
                    descend = Some(mtype);
                    break;
                }
                Some(KernelType::Ptr { target }) => {
                    if msize != size || off != moff {
                        return Err((
                            EACCES,
                            format!(
                                "cannot access ptr member {} with moff {moff} in struct {tname} with off {off} size {size}",
                                m.name
                            ),
                        ));
                    }
                    let tag = match btf.ty(target) {
                        Some(KernelType::Modifier {
                            tag: Some("user"), ..
                        }) => MEM_USER,
                        Some(KernelType::Modifier {
                            tag: Some("percpu"),
                            ..
                        }) => MEM_PERCPU,
                        Some(KernelType::Modifier {
                            tag: Some("rcu"), ..
                        }) => MEM_RCU,
                        _ => 0,
                    };
                    let stype = skip_modifiers(btf, target).unwrap_or(0);
                    if matches!(btf.ty(stype), Some(KernelType::Struct { .. })) {
                        *flag |= tag;
                        *field = m.name;
                        return Ok(Walk::Ptr(stype));
                    }
                    return Ok(Walk::PtrUntrusted);
                }
                _ => {
                    if off + size > mtrue_end && *flag & PTR_UNTRUSTED == 0 {
                        return Err((
                            EACCES,
                            format!(
                                "access beyond the end of member {} (mend:{mtrue_end}) in struct {tname} with off {off} size {size}",
                                m.name
                            ),
                        ));
                    }
                    return Ok(Walk::Scalar);
                }
            }
        }
        match descend {
            Some(inner) => t = inner,
            None => {
                return Err((
                    EINVAL,
                    format!("struct {tname} doesn't have field at offset {off}"),
                ))
            }
        }
    }
    Err((EFAULT, "verifier bug: the struct walk is too deep".into()))
}

/// `btf_struct_access`: what a load of `size` bytes at `off` in struct `id` gives, the
/// walk's flags and the pointer member's name.
pub(crate) fn struct_access(
    btf: &dyn KernelBtf,
    mut id: u32,
    mut off: u64,
    size: u64,
) -> Result<(Loaded, &str), WalkErr> {
    let mut flag = 0;
    let mut field = "";
    for _ in 0..MAX_WALK_DEPTH {
        match struct_walk(btf, id, off, size, &mut flag, &mut field)? {
            Walk::Ptr(next) => {
                return Ok((
                    Loaded::Ptr {
                        id: next,
                        flags: flag,
                    },
                    field,
                ))
            }
            Walk::PtrUntrusted => return Ok((Loaded::UntrustedMem, field)),
            Walk::Scalar => return Ok((Loaded::Scalar, field)),
            Walk::Struct(next) => {
                id = next;
                off = 0;
            }
        }
    }
    Err((EFAULT, "verifier bug: the struct walk is too deep".into()))
}

/// `btf_struct_ids_match`: whether struct `id` at byte `off` is struct `need`, or (unless
/// `strict`) holds it there through nested structs (a `struct sock *` is a
/// `struct sock_common *`: its first member).
pub(crate) fn struct_ids_match(
    btf: &dyn KernelBtf,
    mut id: u32,
    mut off: u64,
    need: u32,
    strict: bool,
) -> bool {
    if off == 0 && id == need {
        return true;
    }
    if strict {
        return false;
    }
    for _ in 0..MAX_WALK_DEPTH {
        let (mut flag, mut field) = (0, "");
        match struct_walk(btf, id, off, 1, &mut flag, &mut field) {
            Ok(Walk::Struct(next)) if next == need => return true,
            Ok(Walk::Struct(next)) => {
                id = next;
                off = 0;
            }
            _ => return false,
        }
    }
    false
}

/// `btf_nested_type_is_trusted`: whether struct `parent`'s `<name><suffix>` companion in
/// the kernel's BTF (`BTF_TYPE_SAFE_RCU(struct task_struct) { ... }` and the like) lists
/// a pointer member `field` to struct `id`.
fn nested_type_is(btf: &dyn KernelBtf, parent: u32, field: &str, id: u32, suffix: &str) -> bool {
    let name = struct_name(btf, parent);
    if name.is_empty() || name.len() + suffix.len() >= 64 {
        return false;
    }
    let Some(safe) = btf.struct_by_name(&format!("{name}{suffix}")) else {
        return false;
    };
    let Some(KernelType::Struct { members, .. }) = btf.ty(safe) else {
        return false;
    };
    (0..members).filter_map(|i| btf.member(safe, i)).any(|m| {
        matches!(btf.ty(m.type_id), Some(KernelType::Ptr { target })
            if skip_modifiers(btf, target) == Some(id) && m.name == field)
    })
}

/// The trust flags of a pointer loaded from a pointer `parent` (the end of the kernel's
/// `check_ptr_to_btf_access`), for a non-sleepable program (always in an RCU read-side
/// section).
fn loaded_ptr_flags(btf: &dyn KernelBtf, parent: &Reg, field: &str, id: u32, mut flag: u8) -> u8 {
    let clear_trusted = |f: u8| f & !(PTR_TRUSTED | MEM_RCU);
    if parent.flags & PTR_UNTRUSTED != 0 {
        return PTR_UNTRUSTED;
    }
    let trusted = parent.ref_obj_id != 0
        || (parent.flags & PTR_TRUSTED != 0 && parent.flags & !PTR_TRUSTED == 0);
    let rcu = parent.flags & MEM_RCU != 0;
    if !(trusted || rcu) {
        return clear_trusted(flag);
    }
    let is = |suffix| nested_type_is(btf, parent.btf_id(), field, id, suffix);
    if is("__safe_trusted") {
        flag |= PTR_TRUSTED;
    } else if is("__safe_trusted_or_null") {
        flag |= PTR_TRUSTED | MAYBE_NULL;
    } else if parent.flags & MAYBE_NULL == 0 {
        if is("__safe_rcu") {
            flag |= MEM_RCU;
        } else if flag & MEM_RCU != 0 || is("__safe_rcu_or_null") {
            flag |= MEM_RCU | MAYBE_NULL;
            if is("__safe_rcu_or_null") {
                flag &= !PTR_UNTRUSTED;
            }
        } else if flag & (MEM_PERCPU | MEM_USER) == 0 {
            flag = clear_trusted(flag);
        }
    } else {
        flag = PTR_UNTRUSTED;
    }
    flag
}

/// The name the kernel gives a BTF pointer's struct in messages.
fn tname(btf: &dyn KernelBtf, reg: &Reg) -> String {
    struct_name(btf, reg.btf_id()).to_string()
}

impl Verifier<'_> {
    /// The target BTF and the struct a BTF pointer points to, or the refusal as not
    /// modelled.
    fn btf_of(&self, reg: &Reg) -> R<&dyn KernelBtf> {
        match self.prog.btf {
            Some(btf) if reg.btf_id() != 0 => Ok(btf),
            _ => Err(self.err(
                Rule::Unsupported,
                ENOTSUPP,
                "reading a BTF-typed kernel object (PTR_TO_BTF_ID) needs the kernel's BTF (a target BTF), which was not given",
            )),
        }
    }

    /// A `PTR_TO_BTF_ID` to struct `id` with `flags` (a new id when it may be NULL).
    pub(crate) fn btf_ptr(&mut self, id: u32, flags: u8) -> Reg {
        let mut r = Reg::pointer(RegType::BtfId);
        r.aux = id;
        r.flags = flags;
        if flags & MAYBE_NULL != 0 {
            r.id = self.new_id();
        }
        r
    }

    /// The pointer a tracing program's context slot `off / 8` holds: struct id from the
    /// attach target's prototype, trusted for `tp_btf` and iterators
    /// (`btf_ctx_access`, `prog_args_trusted`).
    pub(crate) fn ctx_btf_ptr(&mut self, off: i64) -> Reg {
        let id = match self.prog.prog_type {
            crate::input::ProgType::Tracing(c) => usize::try_from(off / 8)
                .ok()
                .and_then(|slot| c.btf_ids.get(slot).copied())
                .unwrap_or(0),
            _ => 0,
        };
        let trusted = matches!(
            self.prog.expected_attach_type,
            Some(TRACE_RAW_TP | TRACE_ITER)
        );
        self.btf_ptr(id, if trusted { PTR_TRUSTED } else { 0 })
    }

    /// `bpf_get_current_task_btf`'s return: a trusted `struct task_struct *`
    /// (`RET_PTR_TO_BTF_ID_TRUSTED`); id 0 (loads not modelled) without a target BTF.
    pub(crate) fn current_task_btf(&mut self) -> Reg {
        let id = self
            .prog
            .btf
            .and_then(|b| b.struct_by_name("task_struct"))
            .unwrap_or(0);
        self.btf_ptr(id, PTR_TRUSTED)
    }

    /// `check_ptr_to_btf_access`: a load or store of `size` bytes at `off` (instruction
    /// and register offsets added) through BTF pointer `regno`, the loaded value into
    /// `value_regno`.
    pub(crate) fn check_ptr_to_btf_access(
        &mut self,
        regno: u8,
        off: i64,
        size: i64,
        write: bool,
        value_regno: Option<u8>,
    ) -> R<()> {
        let reg = *self.reg(regno);
        let btf = self.btf_of(&reg)?;
        let tname = tname(btf, &reg);
        if !self.allow_ptr_leaks() {
            return Err(self.err(
                Rule::Privilege,
                EPERM,
                format!("'struct {tname}' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN"),
            ));
        }
        if !self.prog.gpl_compatible {
            return Err(self.err(
                Rule::InvalidDeref,
                EINVAL,
                format!("Cannot access kernel 'struct {tname}' from non-GPL compatible program"),
            ));
        }
        if off < 0 {
            return Err(self.err(
                Rule::InvalidDeref,
                EACCES,
                format!("R{regno} is ptr_{tname} invalid negative access: off={off}"),
            ));
        }
        if !reg.b.var_off.is_const() || reg.b.var_off.value != 0 {
            return Err(self.err(
                Rule::InvalidDeref,
                EACCES,
                format!(
                    "R{regno} is ptr_{tname} invalid variable offset: off={off}, var_off={}",
                    reg.b.var_off
                ),
            ));
        }
        if reg.flags & MEM_USER != 0 {
            return Err(self.err(
                Rule::InvalidDeref,
                EACCES,
                format!("R{regno} is ptr_{tname} access user memory: off={off}"),
            ));
        }
        if reg.flags & MEM_PERCPU != 0 {
            return Err(self.err(
                Rule::InvalidDeref,
                EACCES,
                format!("R{regno} is ptr_{tname} access percpu memory: off={off}"),
            ));
        }
        if write {
            if self.prog.prog_type.has_btf_struct_access_op() {
                // Networking types pass writes to their own hook (`nf_conn` fields).
                return Err(self.err(
                    Rule::Unsupported,
                    ENOTSUPP,
                    "writes to kernel objects from networking programs are not modelled by bpfvm's verifier",
                ));
            }
            return Err(self.err(Rule::InvalidDeref, EACCES, "only read is supported"));
        }
        let (loaded, field) = struct_access(btf, reg.btf_id(), off as u64, size as u64)
            .map_err(|(errno, msg)| self.err(Rule::InvalidDeref, errno, msg))?;
        let Some(vr) = value_regno else {
            return Ok(());
        };
        let value = match loaded {
            Loaded::Scalar => self.unknown_scalar(),
            Loaded::Ptr { id, flags } => {
                let flags = loaded_ptr_flags(btf, &reg, field, id, flags);
                self.btf_ptr(id, flags)
            }
            Loaded::UntrustedMem => {
                let mut r = Reg::pointer(RegType::Mem);
                r.flags = RDONLY | PTR_UNTRUSTED;
                r
            }
        };
        *self.reg_mut(vr) = value;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_btf::testing::TestBtf;

    /// `struct inner { int x; struct task *t; }`, `struct task { long pid; char
    /// comm[16]; struct inner in; struct inner arr[2]; union { int a; long b; } u;
    /// struct task *__rcu parent; int bits:4; void *stack; int tail[]; }`.
    fn btf() -> (TestBtf, u32, u32) {
        let mut b = TestBtf::new();
        let int = b.add(KernelType::Int { size: 4 });
        let long = b.add(KernelType::Int { size: 8 });
        let ch = b.add(KernelType::Int { size: 1 });
        let comm = b.add(KernelType::Array {
            elem: ch,
            nelems: 16,
        });
        let task_fwd = b.add(KernelType::Void); // replaced below
        let ptask = b.add(KernelType::Ptr { target: task_fwd });
        let inner = b.add_struct("inner", 16, false, &[("x", int, 0), ("t", ptask, 8)]);
        let arr = b.add(KernelType::Array {
            elem: inner,
            nelems: 2,
        });
        let un = b.add_struct("", 8, true, &[("a", int, 0), ("b", long, 0)]);
        let rcu = b.add(KernelType::Modifier {
            target: task_fwd,
            tag: Some("rcu"),
        });
        let prcu = b.add(KernelType::Ptr { target: rcu });
        let void_ptr = b.add(KernelType::Ptr { target: 0 });
        let flex = b.add(KernelType::Array {
            elem: int,
            nelems: 0,
        });
        let task = b.add_struct(
            "task",
            112,
            false,
            &[
                ("pid", long, 0),
                ("comm", comm, 8),
                ("in", inner, 24),
                ("arr", arr, 40),
                ("u", un, 72),
                ("parent", prcu, 80),
                ("stack", void_ptr, 96),
                ("tail", flex, 104),
            ],
        );
        // The bitfield after `parent`: 4 bits at byte 88.
        b.members[task as usize].insert(
            6,
            crate::kernel_btf::KernelMember {
                name: "bits",
                type_id: int,
                bit_offset: 88 * 8,
                bitfield_size: 4,
            },
        );
        if let KernelType::Struct { members, .. } = &mut b.types[task as usize] {
            *members += 1;
        }
        b.types[task_fwd as usize] = KernelType::Typedef { target: task };
        (b, task, inner)
    }

    fn access(off: u64, size: u64) -> Result<Loaded, String> {
        let (b, task, _) = btf();
        struct_access(&b, task, off, size)
            .map(|(l, _)| l)
            .map_err(|(_, m)| m)
    }

    #[test]
    fn scalars_and_pointers() {
        let (_, task, _) = btf();
        assert_eq!(access(0, 8), Ok(Loaded::Scalar));
        assert_eq!(access(4, 4), Ok(Loaded::Scalar), "part of a member");
        assert_eq!(access(8, 8), Ok(Loaded::Scalar), "inside comm[]");
        assert_eq!(access(20, 4), Ok(Loaded::Scalar));
        assert_eq!(
            access(32, 8),
            Ok(Loaded::Ptr { id: task, flags: 0 }),
            "in.t"
        );
        assert_eq!(
            access(64, 8),
            Ok(Loaded::Ptr { id: task, flags: 0 }),
            "arr[1].t"
        );
        assert_eq!(
            access(80, 8),
            Ok(Loaded::Ptr {
                id: task,
                flags: MEM_RCU
            })
        );
        assert_eq!(access(96, 8), Ok(Loaded::UntrustedMem), "void *");
        assert_eq!(access(88, 1), Ok(Loaded::Scalar), "the bitfield's byte");
        assert_eq!(access(112, 4), Ok(Loaded::Scalar), "flexible int array");
        assert_eq!(access(200, 4), Ok(Loaded::Scalar), "far into tail[]");
    }

    #[test]
    fn struct_ids_match_through_first_members() {
        let mut b = TestBtf::new();
        let int = b.add(KernelType::Int { size: 4 });
        let common = b.add_struct(
            "sock_common",
            8,
            false,
            &[("family", int, 0), ("x", int, 4)],
        );
        let sock = b.add_struct(
            "sock",
            16,
            false,
            &[("__sk_common", common, 0), ("y", int, 8)],
        );
        let tcp = b.add_struct("tcp_sock", 24, false, &[("sk", sock, 0), ("z", int, 16)]);
        let pair = b.add_struct("pair", 24, false, &[("n", int, 0), ("sk", sock, 8)]);
        assert!(struct_ids_match(&b, common, 0, common, true));
        assert!(struct_ids_match(&b, sock, 0, common, false));
        assert!(struct_ids_match(&b, tcp, 0, common, false));
        assert!(
            !struct_ids_match(&b, tcp, 0, common, true),
            "strict: no walk"
        );
        assert!(
            !struct_ids_match(&b, pair, 0, common, false),
            "an int first"
        );
        assert!(
            struct_ids_match(&b, pair, 8, common, false),
            "at the member's offset"
        );
        assert!(!struct_ids_match(&b, sock, 4, common, false));
        assert!(!struct_ids_match(&b, common, 0, sock, false));
    }

    #[test]
    fn unions_allow_overreads_and_untrust() {
        assert_eq!(access(72, 8), Ok(Loaded::Scalar));
    }

    #[test]
    fn refusals_in_the_kernels_words() {
        assert_eq!(
            access(36, 4).unwrap_err(),
            "cannot access ptr member t with moff 8 in struct inner with off 12 size 4"
        );
        assert_eq!(
            access(36, 8).unwrap_err(),
            "access beyond struct inner at off 12 size 8"
        );
        assert_eq!(
            access(80, 4).unwrap_err(),
            "cannot access ptr member parent with moff 80 in struct task with off 80 size 4"
        );
        assert_eq!(
            access(20, 8).unwrap_err(),
            "access beyond the end of member comm (mend:24) in struct task with off 20 size 8"
        );
        assert_eq!(
            access(92, 4).unwrap_err(),
            "struct task doesn't have field at offset 92"
        );
        assert_eq!(
            access(108, 4).unwrap_err(),
            "struct task doesn't have field at offset 108",
            "padding before the end, where the empty array starts"
        );
        let (mut b, task, _) = btf();
        // Without the flexible array the struct ends at 104.
        b.members[task as usize].pop();
        if let KernelType::Struct { members, .. } = &mut b.types[task as usize] {
            *members -= 1;
        }
        assert_eq!(
            struct_access(&b, task, 110, 4).unwrap_err().1,
            "access beyond struct task at off 110 size 4"
        );
    }

    #[test]
    fn trust_of_loaded_pointers() {
        let (mut b, task, _) = btf();
        let ptask = b.add(KernelType::Ptr { target: task });
        b.add_struct("task__safe_rcu", 8, false, &[("in_rcu", ptask, 0)]);
        b.add_struct("task__safe_trusted", 8, false, &[("tr", ptask, 0)]);
        let mut parent = Reg::pointer(RegType::BtfId);
        parent.aux = task;
        parent.flags = PTR_TRUSTED;
        assert_eq!(loaded_ptr_flags(&b, &parent, "in_rcu", task, 0), MEM_RCU);
        assert_eq!(loaded_ptr_flags(&b, &parent, "tr", task, 0), PTR_TRUSTED);
        assert_eq!(loaded_ptr_flags(&b, &parent, "other", task, 0), 0);
        assert_eq!(
            loaded_ptr_flags(&b, &parent, "parent", task, MEM_RCU),
            MEM_RCU | MAYBE_NULL
        );
        parent.flags = 0;
        assert_eq!(loaded_ptr_flags(&b, &parent, "parent", task, MEM_RCU), 0);
        parent.flags = PTR_UNTRUSTED;
        assert_eq!(loaded_ptr_flags(&b, &parent, "tr", task, 0), PTR_UNTRUSTED);
    }

    /// `r2 = ctx[0]` (a `struct task *` argument), then `insn`, on `btf` (or none).
    fn verify_on(btf: Option<&TestBtf>, task: u32, insn: u64) -> Result<(), crate::VerifierError> {
        let words = [0x0000_0000_0000_1279, insn, 0xb7, 0x95];
        crate::kernel_btf::testing::verify_tp_btf(btf, task, &words)
    }

    #[test]
    fn programs_reading_through_an_argument() {
        let (b, task, _) = btf();
        // r3 = *(u64 *)(r2 + 0): task->pid.
        assert!(verify_on(Some(&b), task, 0x0000_0000_0000_2379).is_ok());
        // r3 = *(u64 *)(r2 + 80) then nothing: task->parent (RCU-tagged, maybe NULL).
        assert!(verify_on(Some(&b), task, 0x0000_0000_0050_2379).is_ok());
        let e = verify_on(Some(&b), task, 0x0000_0000_0014_2379).unwrap_err();
        assert_eq!(
            e.message,
            "access beyond the end of member comm (mend:24) in struct task with off 20 size 8"
        );
        assert_eq!((e.errno, e.insn), (EACCES, Some(1)));
        let e = verify_on(Some(&b), task, 0x0000_0000_fff8_2379).unwrap_err();
        assert_eq!(e.message, "R2 is ptr_task invalid negative access: off=-8");
        // *(u32 *)(r2 + 0) = 1
        let e = verify_on(Some(&b), task, 0x0000_0001_0000_0262).unwrap_err();
        assert_eq!(e.message, "only read is supported");
        // Without the kernel's types: not modelled.
        let e = verify_on(None, task, 0x0000_0000_0000_2379).unwrap_err();
        assert_eq!(e.rule, Rule::Unsupported);
    }
}
