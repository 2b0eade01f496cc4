//! Helpers whose arguments or returns are BTF-typed kernel objects (`PTR_TO_BTF_ID`), as
//! the kernel's `check_reg_type` and `check_helper_call` treat them:
//!
//! - `ARG_PTR_TO_BTF_ID_SOCK_COMMON`: besides the socket pointers of [`crate::sock`], a
//!   BTF pointer (`ptr_`, `trusted_ptr_`) whose struct is, or begins with, a
//!   `struct sock_common` at the pointer's offset (`btf_struct_ids_match`, walking first
//!   members: `tcp_sock` → `inet_connection_sock` → `inet_sock` → `sock` →
//!   `sock_common`). A NULL-able BTF pointer passes only where the argument may be NULL
//!   ("Possibly NULL pointer passed to helper arg1"); another struct is "R1 is of type
//!   task_struct but sock_common is expected".
//! - Tracing programs' own prototypes (`tracing_prog_func_proto`): `bpf_get_socket_cookie`
//!   takes a socket pointer there (`bpf_get_socket_ptr_cookie_proto`), not the context;
//!   the `bpf_skc_to_*` casts are offered to them.
//! - `RET_PTR_TO_BTF_ID_OR_NULL` of the `bpf_skc_to_*` casts: a `ptr_or_null_` to the
//!   helper's struct (`tcp6_sock`, `tcp_sock`, ...), which carries the reference of its
//!   argument (`is_ptr_cast_function`, all but `bpf_skc_to_unix_sock`).
//!
//! - `ARG_PTR_TO_BTF_ID` of a named struct (`bpf_get_task_stack` and `bpf_task_pt_regs`
//!   take a `task_struct`): `ptr_`, `trusted_ptr_` or `rcu_ptr_` to that struct (or one
//!   holding it at the pointer's offset); `bpf_task_pt_regs` returns a `ptr_` to
//!   `pt_regs`.
//!
//! Without the kernel's types (no target BTF) a BTF pointer given to such an argument is
//! refused as not modelled ([`crate::Rule::Unsupported`]), never guessed.

use crate::error::{Rule, VerifierError, EACCES, ENOTSUPP};
use crate::helpers::{self, Arg, Proto, Ret};
use crate::input::ProgType;
use crate::kernel_btf::struct_name;
use crate::reg::{Reg, RegType, MAYBE_NULL, MEM_RCU, PTR_TRUSTED};
use crate::verifier::Verifier;

/// `BPF_FUNC_get_socket_cookie`.
pub const GET_SOCKET_COOKIE: u32 = 46;

/// The `bpf_skc_to_*` casts and the struct each returns (`btf_sock_ids`).
const SKC_TO: [(u32, &str); 7] = [
    (136, "tcp6_sock"),
    (137, "tcp_sock"),
    (138, "tcp_timewait_sock"),
    (139, "tcp_request_sock"),
    (140, "udp6_sock"),
    (178, "unix_sock"),
    (196, "mptcp_sock"),
];

/// The register types `ARG_PTR_TO_BTF_ID` takes (`btf_ptr_types`).
pub(crate) const BTF_PTR_TYPES: &[(RegType, u8)] = &[
    (RegType::BtfId, 0),
    (RegType::BtfId, PTR_TRUSTED),
    (RegType::BtfId, MEM_RCU),
];

/// The struct an `ARG_PTR_TO_BTF_ID` argument of helper `id` points to (`arg1_btf_id`).
pub(crate) fn arg_struct(id: u32) -> Option<&'static str> {
    match id {
        // bpf_get_task_stack, bpf_task_pt_regs: `btf_tracing_ids[BTF_TRACING_TYPE_TASK]`.
        141 | 175 => Some("task_struct"),
        _ => None,
    }
}

/// `bpf_get_socket_ptr_cookie_proto`: `u64 bpf_get_socket_cookie(struct sock *sk)` in
/// tracing programs; a NULL `sk` gives 0.
static SOCKET_PTR_COOKIE: Proto = Proto {
    id: GET_SOCKET_COOKIE,
    name: "bpf_get_socket_cookie",
    ret: Ret::Integer,
    args: [
        Arg::BtfIdSockCommon {
            release: false,
            maybe_null: true,
        },
        Arg::None,
        Arg::None,
        Arg::None,
        Arg::None,
    ],
    gpl_only: false,
    pkt_access: false,
};

/// Helpers tracing programs have beyond raw tracepoints' (`tracing_prog_func_proto`):
/// `bpf_get_socket_cookie` and the `bpf_skc_to_*` casts, and (prototypes not modelled,
/// so a call is [`crate::Rule::Unsupported`] rather than refused) `bpf_sk_storage_get`,
/// `bpf_sk_storage_delete`, `bpf_d_path` and `bpf_sock_from_file`, whose availability
/// also depends on the attach target.
pub(crate) fn tracing_only(id: u32) -> bool {
    id == GET_SOCKET_COOKIE || skc_struct(id).is_some() || matches!(id, 107 | 108 | 147 | 162)
}

/// The struct a `bpf_skc_to_*` cast returns, `None` for other helpers.
pub(crate) fn skc_struct(id: u32) -> Option<&'static str> {
    SKC_TO.iter().find(|(i, _)| *i == id).map(|(_, s)| *s)
}

/// Whether the helper returns its argument as another type, keeping its reference
/// (`is_ptr_cast_function`'s `bpf_skc_to_*` members: not `bpf_skc_to_unix_sock`).
pub(crate) fn casts(id: u32) -> bool {
    matches!(id, 136..=140 | 196)
}

/// The prototype of helper `id` for programs of type `t` (the type's `get_func_proto`,
/// where it differs from the common one).
pub(crate) fn proto(id: i32, t: ProgType) -> Option<&'static Proto> {
    if matches!(t, ProgType::Tracing(_)) && id == GET_SOCKET_COOKIE as i32 {
        return Some(&SOCKET_PTR_COOKIE);
    }
    helpers::proto(id)
}

impl Verifier<'_> {
    /// The checks after a register's type matched a BTF-typed argument (the end of
    /// `check_reg_type`): for a `PTR_TO_BTF_ID`, NULL-ability, a constant offset and the
    /// struct. Other registers pass.
    pub(crate) fn check_btf_arg(&self, regno: u8, arg: Arg) -> Result<(), VerifierError> {
        let reg = *self.reg(regno);
        let helper = self.insns[self.insn_idx].imm as u32;
        let (release, maybe_null, need) = match arg {
            Arg::BtfIdSockCommon {
                release,
                maybe_null,
            } => (release, maybe_null, "sock_common"),
            Arg::BtfId => match arg_struct(helper) {
                Some(name) => (false, false, name),
                None => return Err(self.internal("no BTF struct for a helper argument")),
            },
            _ => return Ok(()),
        };
        if reg.ty != RegType::BtfId {
            return Ok(());
        }
        if reg.flags & MAYBE_NULL != 0 && (!maybe_null || release) {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!("Possibly NULL pointer passed to helper arg{regno}"),
            ));
        }
        let (Some(btf), id) = (self.prog.btf, reg.btf_id()) else {
            return Err(self.not_modelled(regno));
        };
        let Some(need_id) = btf.struct_by_name(need) else {
            return Err(self.not_modelled(regno));
        };
        if id == 0 {
            return Err(self.not_modelled(regno));
        }
        self.check_ptr_off_reg(regno, true)?;
        // `bpf_sk_release` matches any socket; other releasing helpers the exact struct.
        let strict = release && helper != 86;
        let off = u64::try_from(reg.off).unwrap_or(0);
        if !crate::btf_access::struct_ids_match(btf, id, off, need_id, strict) {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!(
                    "R{regno} is of type {} but {need} is expected",
                    struct_name(btf, id)
                ),
            ));
        }
        Ok(())
    }

    fn not_modelled(&self, regno: u8) -> VerifierError {
        self.err(
            Rule::Unsupported,
            ENOTSUPP,
            format!(
                "R{regno}: a BTF-typed kernel object (PTR_TO_BTF_ID) as a helper argument needs the kernel's BTF (a target BTF), which was not given"
            ),
        )
    }

    /// `r0` of a helper returning a BTF pointer: `bpf_get_current_task_btf`'s trusted
    /// `task_struct` (`RET_PTR_TO_BTF_ID_TRUSTED`), `bpf_task_pt_regs`'s `pt_regs`
    /// (`RET_PTR_TO_BTF_ID`, neither trusted nor NULL); id 0 (loads not modelled)
    /// without a target BTF.
    pub(crate) fn btf_ret(&mut self, helper: u32) -> Reg {
        if helper != 175 {
            return self.current_task_btf();
        }
        let id = self
            .prog
            .btf
            .and_then(|b| b.struct_by_name("pt_regs"))
            .unwrap_or(0);
        self.btf_ptr(id, 0)
    }

    /// `r0` of a `bpf_skc_to_*` cast (`RET_PTR_TO_BTF_ID_OR_NULL`): a `ptr_or_null_` to
    /// the helper's struct (id 0, loads not modelled, without a target BTF).
    pub(crate) fn skc_ret(&mut self, helper: u32) -> Reg {
        let id = skc_struct(helper)
            .and_then(|name| self.prog.btf.and_then(|b| b.struct_by_name(name)))
            .unwrap_or(0);
        let mut r = Reg::pointer(RegType::BtfId);
        r.aux = id;
        r.flags = MAYBE_NULL;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Privilege;

    #[test]
    fn tracing_programs_take_a_socket_pointer() {
        let t = ProgType::Tracing(crate::TracingCtx {
            nr_slots: 1,
            btf_ptr_slots: 1,
            btf_ids: [0; 13],
            known: true,
        });
        let p = proto(46, t).expect("tracing proto");
        assert!(matches!(p.args[0], Arg::BtfIdSockCommon { .. }));
        assert_eq!(
            proto(46, ProgType::SocketFilter).unwrap().args[0],
            Arg::Ctx { maybe_null: false }
        );
        assert!(helpers::allowed(46, t, Privilege::Root));
        assert!(helpers::allowed(137, t, Privilege::Root));
        assert!(!helpers::allowed(
            46,
            ProgType::RawTracepoint,
            Privilege::Root
        ));
        assert!(!helpers::allowed(137, ProgType::Kprobe, Privilege::Root));
        // Offered to tracing, prototype not modelled: not modelled, not refused.
        assert!(helpers::allowed(107, t, Privilege::Root) && proto(107, t).is_none());
    }

    /// `r1 = ctx[0]` (a pointer to struct `arg`), `call helper`, `r0 = 0`, `exit` in a
    /// `tp_btf` program, on `btf` (or none).
    fn call_with(
        btf: Option<&crate::kernel_btf::testing::TestBtf>,
        arg: u32,
        helper: u64,
    ) -> Result<(), crate::VerifierError> {
        let words = [0x1179, 0x85 | (helper << 32), 0xb7, 0x95];
        crate::kernel_btf::testing::verify_tp_btf(btf, arg, &words)
    }

    #[test]
    fn btf_arguments_match_their_struct() {
        use crate::kernel_btf::testing::TestBtf;
        use crate::kernel_btf::KernelType;
        let mut b = TestBtf::new();
        let int = b.add(KernelType::Int { size: 4 });
        let common = b.add_struct("sock_common", 8, false, &[("skc_family", int, 0)]);
        let sock = b.add_struct("sock", 16, false, &[("__sk_common", common, 0)]);
        let task = b.add_struct("task_struct", 8, false, &[("pid", int, 0)]);
        b.add_struct("pt_regs", 8, false, &[("ip", int, 0)]);
        b.add_struct("tcp_sock", 24, false, &[("sk", sock, 0)]);
        assert!(call_with(Some(&b), sock, 46).is_ok());
        assert!(call_with(Some(&b), sock, 137).is_ok());
        assert!(call_with(Some(&b), task, 141).is_err(), "needs its buffer");
        assert!(call_with(Some(&b), task, 175).is_ok());
        let e = call_with(Some(&b), task, 46).unwrap_err();
        assert_eq!(
            e.message,
            "R1 is of type task_struct but sock_common is expected"
        );
        assert_eq!((e.errno, e.insn), (EACCES, Some(1)));
        let e = call_with(Some(&b), sock, 175).unwrap_err();
        assert_eq!(e.message, "R1 is of type sock but task_struct is expected");
        // Without the kernel's types: not modelled.
        let e = call_with(None, sock, 46).unwrap_err();
        assert_eq!(e.rule, Rule::Unsupported);
        assert_eq!(arg_struct(141), Some("task_struct"));
        assert_eq!(arg_struct(46), None);
    }

    #[test]
    fn casts_and_their_structs() {
        assert_eq!(skc_struct(137), Some("tcp_sock"));
        assert_eq!(skc_struct(178), Some("unix_sock"));
        assert_eq!(skc_struct(46), None);
        assert!(casts(136) && casts(196) && !casts(178));
        for (id, _) in SKC_TO {
            let p = helpers::proto(id as i32).expect("skc_to proto");
            assert_eq!(p.ret, Ret::BtfIdOrNull);
            assert_eq!(p.num_params(), 1);
            let sock_common_only = p.args[0] == Arg::SockCommon;
            assert_eq!(sock_common_only, id == 196, "{id}");
        }
    }
}
