//! Socket pointers: `PTR_TO_SOCK_COMMON`, `PTR_TO_SOCKET`, `PTR_TO_TCP_SOCK` and
//! `PTR_TO_XDP_SOCK`, as the kernel's verifier tracks them.
//!
//! - Where they come from: `skb->sk` (a context field, `sock_common_or_null`), the lookup
//!   helpers `bpf_sk_lookup_tcp`/`_udp` and `bpf_skc_lookup_tcp` and lookups in a
//!   `SOCKMAP`/`SOCKHASH` (an acquired reference, `sock_or_null`/`sock_common_or_null`), the
//!   casts `bpf_sk_fullsock`, `bpf_tcp_sock` (which carry the reference of their argument)
//!   and `bpf_get_listener_sock` (none), lookups in an `XSKMAP` (`xdp_sock_or_null`, none).
//! - Which fields a program may read (`bpf_sock_common_is_valid_access`,
//!   `bpf_sock_is_valid_access`, `bpf_tcp_sock_is_valid_access`,
//!   `bpf_xdp_sock_is_valid_access` of `net/core/filter.c`), never write; no pointer
//!   arithmetic (`check_alu`'s `_ => false`).
//! - Which registers the socket arguments of helpers accept (`sock_types`,
//!   `btf_id_sock_common_types`); the reference rules (release, leak) are the verifier's
//!   general ones.

use crate::ctx::Access;
use crate::error::{Rule, VerifierError, EACCES, EFAULT};
use crate::helpers::{Arg, Ret};
use crate::log::reg_type_str;
use crate::reg::{Reg, RegType, MAYBE_NULL, PTR_TRUSTED};
use crate::state::RefState;
use crate::verifier::Verifier;

/// `sizeof(struct bpf_sock)`.
const SOCK_SIZE: i64 = 80;
/// `offsetof(struct bpf_sock, dst_port)` (a `__be16`, then 16 bits of padding).
const DST_PORT: i64 = 48;
/// `offsetofend(struct bpf_tcp_sock, icsk_retransmits)`.
const TCP_SOCK_END: i64 = 112;

/// The `struct bpf_sock` fields of one `__u32` that may be read narrowly at their first
/// byte only (`case offsetof(...)`): family, type, protocol, src_port, state,
/// rx_queue_mapping.
const SOCK_NARROW_AT: [i64; 6] = [4, 8, 12, 44, 72, 76];
/// The `struct bpf_sock` ranges read narrowly at any byte (`bpf_ctx_range`): src_ip4,
/// src_ip6, dst_ip4, dst_ip6.
const SOCK_NARROW_IN: [(i64, i64); 4] = [(24, 28), (28, 44), (52, 56), (56, 72)];

/// `bpf_ctx_narrow_access_ok`: 1, 2 or 4 bytes of a `field`-byte field.
fn narrow_ok(size: i64, field: i64) -> bool {
    size <= field && size.count_ones() == 1
}

/// `bpf_sock_is_valid_access`: a read of `size` bytes at `off` in `struct bpf_sock`.
pub fn sock_read_ok(off: i64, size: i64) -> bool {
    if !(0..SOCK_SIZE).contains(&off) || size <= 0 || off % size != 0 {
        return false;
    }
    if SOCK_NARROW_AT.contains(&off) || SOCK_NARROW_IN.iter().any(|&(a, b)| (a..b).contains(&off)) {
        return narrow_ok(size, 4);
    }
    if (DST_PORT..DST_PORT + 2).contains(&off) {
        let field = if size == 4 { 4 } else { 2 };
        return narrow_ok(size, field);
    }
    if (DST_PORT + 2..DST_PORT + 4).contains(&off) {
        return false;
    }
    size == 4
}

/// `bpf_sock_common_is_valid_access`: as `struct bpf_sock`, without `type`, `protocol`,
/// `mark` and `priority` (offsets 8 to 23), which a request or time-wait socket lacks.
pub fn sock_common_read_ok(off: i64, size: i64) -> bool {
    !(8..24).contains(&off) && sock_read_ok(off, size)
}

/// `bpf_tcp_sock_is_valid_access`: whole `__u32` fields, and the two `__u64` counters
/// `bytes_received` (80) and `bytes_acked` (88).
pub fn tcp_sock_read_ok(off: i64, size: i64) -> bool {
    if !(0..TCP_SOCK_END).contains(&off) || size <= 0 || off % size != 0 {
        return false;
    }
    match off {
        80 | 88 => size == 8,
        _ => size == 4,
    }
}

/// A `u32` read of the upper word of `bytes_received` or `bytes_acked`: allowed by
/// [`tcp_sock_read_ok`], refused when the kernel rewrites the load.
fn tcp_sock_upper_word(off: i64, size: i64) -> bool {
    size == 4 && matches!(off, 84 | 92)
}

/// The register types a socket argument accepts (`sock_types`,
/// `btf_id_sock_common_types`), flags included, without the BTF ones.
pub(crate) fn arg_types(arg: Arg) -> &'static [(RegType, u8)] {
    match arg {
        Arg::SockCommon => &[
            (RegType::SockCommon, 0),
            (RegType::Socket, 0),
            (RegType::TcpSock, 0),
            (RegType::XdpSock, 0),
        ],
        // The BTF pointers are checked further by `Verifier::check_btf_arg`.
        Arg::BtfIdSockCommon { .. } => &[
            (RegType::SockCommon, 0),
            (RegType::Socket, 0),
            (RegType::TcpSock, 0),
            (RegType::XdpSock, 0),
            (RegType::BtfId, 0),
            (RegType::BtfId, PTR_TRUSTED),
        ],
        _ => &[],
    }
}

/// `bpf_xdp_sock_is_valid_access`: `struct bpf_xdp_sock` has one field, `queue_id` (u32).
pub fn xdp_sock_read_ok(off: i64, size: i64) -> bool {
    off == 0 && size == 4
}

/// Whether the helper is a socket lookup that acquires a reference (`is_acquire_function`).
pub(crate) fn acquires(id: u32) -> bool {
    matches!(id, 84 | 85 | 99)
}

/// Whether the helper returns its argument's socket as another type, keeping its
/// reference (`is_ptr_cast_function`; the `bpf_skc_to_*` casts in [`crate::btf_args`]).
pub(crate) fn casts(id: u32) -> bool {
    matches!(id, 95 | 96) || crate::btf_args::casts(id)
}

/// Which maps hold sockets (`SOCKMAP`, `SOCKHASH`): a lookup in one returns a socket.
pub(crate) fn sock_maps(maps: &[crate::input::MapInfo]) -> Vec<bool> {
    use crate::input::map_type::{SOCKHASH, SOCKMAP};
    maps.iter()
        .map(|m| matches!(m.map_type, SOCKMAP | SOCKHASH))
        .collect()
}

/// Whether map `m` is an `XSKMAP` (a lookup returns an AF_XDP socket, no reference).
fn is_xskmap(maps: &[crate::input::MapInfo], m: usize) -> bool {
    maps.get(m)
        .is_some_and(|m| m.map_type == crate::input::map_type::XSKMAP)
}

/// The `r0` a socket-returning helper leaves, `None` for other return types.
pub(crate) fn ret_reg(ret: Ret) -> Option<Reg> {
    let ty = match ret {
        Ret::SocketOrNull => RegType::Socket,
        Ret::SockCommonOrNull => RegType::SockCommon,
        Ret::TcpSockOrNull => RegType::TcpSock,
        _ => return None,
    };
    let mut r = Reg::pointer(ty);
    r.flags = MAYBE_NULL;
    Some(r)
}

impl Verifier<'_> {
    /// A load or store through a socket pointer (`check_mem_access`'s socket branch and
    /// `check_sock_access`): reads of the fields the kernel exposes; the value is unknown.
    pub(crate) fn check_sock_access(
        &mut self,
        regno: u8,
        off: i64,
        size: i64,
        t: Access,
        value_regno: Option<u8>,
    ) -> Result<(), VerifierError> {
        let reg = *self.reg(regno);
        let name = reg_type_str(reg.ty, reg.flags);
        if t == Access::Write {
            return Err(self.err(
                Rule::InvalidDeref,
                EACCES,
                format!("R{regno} cannot write into {name}"),
            ));
        }
        let ok = match reg.ty {
            RegType::SockCommon => sock_common_read_ok(off, size),
            RegType::Socket => sock_read_ok(off, size),
            RegType::TcpSock => tcp_sock_read_ok(off, size),
            RegType::XdpSock => xdp_sock_read_ok(off, size),
            _ => false,
        };
        if !ok {
            return Err(self.err(
                Rule::InvalidDeref,
                EACCES,
                format!("R{regno} invalid {name} access off={off} size={size}"),
            ));
        }
        if reg.ty == RegType::TcpSock && tcp_sock_upper_word(off, size) {
            // Valid for `bpf_tcp_sock_is_valid_access`, but the kernel's rewrite of the
            // load (`bpf_tcp_sock_convert_ctx_access`) has no case for it: the load fails
            // after verification, with this message (kernel 6.18).
            return Err(self.err(
                Rule::InvalidDeref,
                EFAULT,
                "verifier bug: error during ctx access conversion (0)",
            ));
        }
        if let Some(vr) = value_regno {
            *self.reg_mut(vr) = self.unknown_scalar();
        }
        Ok(())
    }

    /// The references of a socket helper's `r0` (`check_helper_call`): a lookup (also in a
    /// socket map) acquires one, a cast carries its argument's (`ref_obj_id`).
    pub(crate) fn sock_ret_refs(&mut self, id: u32, arg_ref_obj_id: u32, map: Option<usize>) {
        let sock_map = map.is_some_and(|m| sock_maps(&self.maps)[m]);
        if id == crate::helpers::MAP_LOOKUP_ELEM && map.is_some_and(|m| is_xskmap(&self.maps, m)) {
            // An XSKMAP's value is an AF_XDP socket (`xdp_sock_or_null`), not counted.
            let r0 = self.reg_mut(0);
            r0.ty = RegType::XdpSock;
            r0.aux = 0;
        }
        if casts(id) {
            self.reg_mut(0).ref_obj_id = arg_ref_obj_id;
        } else if acquires(id) || (id == crate::helpers::MAP_LOOKUP_ELEM && sock_map) {
            if sock_map {
                // A socket map's value is a socket (`sock_or_null`, kernel 6.18).
                let r0 = self.reg_mut(0);
                r0.ty = RegType::Socket;
                r0.aux = 0;
            }
            let rid = self.new_id();
            self.cur.refs.push(RefState {
                id: rid,
                insn_idx: self.insn_idx,
            });
            let r0 = self.reg_mut(0);
            r0.id = rid;
            r0.ref_obj_id = rid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every readable (offset, size) of a table, sizes 1, 2, 4, 8.
    fn readable(f: fn(i64, i64) -> bool, end: i64) -> Vec<(i64, i64)> {
        let mut v = Vec::new();
        for off in -8..end + 8 {
            for size in [1, 2, 4, 8] {
                if f(off, size) {
                    v.push((off, size));
                }
            }
        }
        v
    }

    #[test]
    fn bpf_sock_fields() {
        // bound_dev_if, mark, priority: whole words only.
        for off in [0, 16, 20] {
            assert!(sock_read_ok(off, 4));
            assert!(!sock_read_ok(off, 2) && !sock_read_ok(off, 1));
        }
        // family: narrow at its first byte only.
        assert!(sock_read_ok(4, 1) && sock_read_ok(4, 2));
        assert!(!sock_read_ok(5, 1) && !sock_read_ok(6, 2));
        // src_ip6: any aligned byte, half or word.
        assert!(sock_read_ok(29, 1) && sock_read_ok(42, 2) && sock_read_ok(40, 4));
        // dst_port: the word, its half, its two bytes; not the padding.
        assert!(sock_read_ok(48, 4) && sock_read_ok(48, 2) && sock_read_ok(49, 1));
        assert!(!sock_read_ok(50, 2) && !sock_read_ok(51, 1));
        // Never 8 bytes, never past the end or before the start, never misaligned.
        assert!(!sock_read_ok(0, 8) && !sock_read_ok(80, 4) && !sock_read_ok(-4, 4));
        assert!(!sock_read_ok(26, 4));
        assert!(sock_read_ok(76, 4) && !sock_read_ok(77, 1));
    }

    #[test]
    fn bpf_sock_common_lacks_type_to_priority() {
        for (off, size) in readable(sock_read_ok, SOCK_SIZE) {
            assert_eq!(
                sock_common_read_ok(off, size),
                !(8..24).contains(&off),
                "{off}/{size}"
            );
        }
        assert!(sock_common_read_ok(4, 4) && !sock_common_read_ok(12, 4));
    }

    #[test]
    fn bpf_tcp_sock_fields() {
        let r = readable(tcp_sock_read_ok, TCP_SOCK_END);
        // 24 u32 fields, two u64 counters, and the counters' upper words (84, 92), which
        // the kernel's `default:` case lets through as u32 reads.
        assert_eq!(r.len(), 24 + 2 + 2);
        assert!(tcp_sock_read_ok(80, 8) && !tcp_sock_read_ok(80, 4));
        assert!(tcp_sock_read_ok(108, 4) && !tcp_sock_read_ok(112, 4));
        assert!(!tcp_sock_read_ok(0, 2) && !tcp_sock_read_ok(2, 4));
        assert!(tcp_sock_upper_word(84, 4) && !tcp_sock_upper_word(80, 8));
    }

    #[test]
    fn helper_classes() {
        assert!(acquires(84) && acquires(85) && acquires(99) && !acquires(95));
        assert!(casts(95) && casts(96) && !casts(98));
        let r = ret_reg(Ret::TcpSockOrNull).expect("socket return");
        assert_eq!((r.ty, r.flags), (RegType::TcpSock, MAYBE_NULL));
        assert!(ret_reg(Ret::Integer).is_none());
        assert_eq!(arg_types(Arg::SockCommon).len(), 4);
        assert_eq!(
            arg_types(Arg::BtfIdSockCommon {
                release: false,
                maybe_null: false
            })
            .len(),
            6
        );
        assert!(xdp_sock_read_ok(0, 4) && !xdp_sock_read_ok(0, 2) && !xdp_sock_read_ok(4, 4));
        assert!(arg_types(Arg::Anything).is_empty());
    }
}
