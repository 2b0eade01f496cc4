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
//! Without the kernel's types (no target BTF) a BTF pointer given to such an argument is
//! refused as not modelled ([`crate::Rule::Unsupported`]), never guessed.

use crate::error::{Rule, VerifierError, EACCES, ENOTSUPP};
use crate::helpers::{self, Arg, Proto, Ret};
use crate::input::ProgType;
use crate::kernel_btf::struct_name;
use crate::reg::{Reg, RegType, MAYBE_NULL};
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

/// Helpers only tracing programs have among those bpfvm models (`tracing_prog_func_proto`
/// beyond `raw_tp_prog_func_proto`): `bpf_get_socket_cookie` and the `bpf_skc_to_*`
/// casts.
pub(crate) fn tracing_only(id: u32) -> bool {
    id == GET_SOCKET_COOKIE || skc_struct(id).is_some()
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
        let Arg::BtfIdSockCommon {
            release,
            maybe_null,
        } = arg
        else {
            return Ok(());
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
        let Some(need) = btf.struct_by_name("sock_common") else {
            return Err(self.not_modelled(regno));
        };
        if id == 0 {
            return Err(self.not_modelled(regno));
        }
        self.check_ptr_off_reg(regno, true)?;
        // `bpf_sk_release` matches any socket; other releasing helpers the exact struct.
        let strict = release && self.insns[self.insn_idx].imm != 86;
        let off = u64::try_from(reg.off).unwrap_or(0);
        if !crate::btf_access::struct_ids_match(btf, id, off, need, strict) {
            return Err(self.err(
                Rule::HelperArgs,
                EACCES,
                format!(
                    "R{regno} is of type {} but sock_common is expected",
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
                "R{regno}: a BTF-typed socket (PTR_TO_BTF_ID) as a helper argument needs the kernel's BTF (a target BTF), which was not given"
            ),
        )
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
        assert!(!helpers::allowed(46, ProgType::RawTracepoint, Privilege::Root));
        assert!(!helpers::allowed(137, ProgType::Kprobe, Privilege::Root));
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
