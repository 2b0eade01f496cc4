//! Register state: what kind of value a register holds (the kernel's `enum bpf_reg_type`
//! with its modifier flags), a pointer's fixed and variable offset, and a scalar's range.

use crate::bounds::Bounds;

/// The base type of a register's value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RegType {
    /// Never written on this path (`NOT_INIT`).
    NotInit,
    /// A number (`SCALAR_VALUE`).
    Scalar,
    /// The program's context (`PTR_TO_CTX`).
    Ctx,
    /// A map handle (`CONST_PTR_TO_MAP`).
    ConstPtrToMap,
    /// A map value (`PTR_TO_MAP_VALUE`).
    MapValue,
    /// A map key, in a callback (`PTR_TO_MAP_KEY`).
    MapKey,
    /// The stack of a frame (`PTR_TO_STACK`).
    Stack,
    /// Packet data (`PTR_TO_PACKET`).
    Packet,
    /// Packet metadata (`PTR_TO_PACKET_META`).
    PacketMeta,
    /// The end of the packet (`PTR_TO_PACKET_END`).
    PacketEnd,
    /// A socket's common part (`PTR_TO_SOCK_COMMON`).
    SockCommon,
    /// A full socket (`PTR_TO_SOCKET`).
    Socket,
    /// A TCP socket (`PTR_TO_TCP_SOCK`).
    TcpSock,
    /// An AF_XDP socket (`PTR_TO_XDP_SOCK`).
    XdpSock,
    /// Memory of a known size handed out by a helper (`PTR_TO_MEM`).
    Mem,
    /// A BPF function (`PTR_TO_FUNC`).
    Func,
    /// A kernel object described by BTF (`PTR_TO_BTF_ID`).
    BtfId,
}

/// Type modifier: the pointer may be NULL (`PTR_MAYBE_NULL`).
pub const MAYBE_NULL: u8 = 1 << 0;
/// Type modifier: read-only memory (`MEM_RDONLY`).
pub const RDONLY: u8 = 1 << 1;
/// Type modifier: ring buffer memory (`MEM_RINGBUF`).
pub const RINGBUF: u8 = 1 << 2;
/// Type modifier: a kernel object trusted to be valid (`PTR_TRUSTED`).
pub const PTR_TRUSTED: u8 = 1 << 3;
/// Type modifier: a kernel object that may be gone (`PTR_UNTRUSTED`).
pub const PTR_UNTRUSTED: u8 = 1 << 4;
/// Type modifier: an RCU-protected kernel object (`MEM_RCU`).
pub const MEM_RCU: u8 = 1 << 5;
/// Type modifier: user memory (`MEM_USER`, a `__user` pointer).
pub const MEM_USER: u8 = 1 << 6;
/// Type modifier: per-CPU memory (`MEM_PERCPU`, a `__percpu` pointer).
pub const MEM_PERCPU: u8 = 1 << 7;

/// Packet pointer range meaning "compared at or beyond `data_end`" (`AT_PKT_END`).
pub const AT_PKT_END: i32 = -1;
/// Packet pointer range meaning "compared beyond `data_end`" (`BEYOND_PKT_END`).
pub const BEYOND_PKT_END: i32 = -2;

/// Scalar id flag: linked as `base + delta` by a 64-bit add (`BPF_ADD_CONST64`).
pub const ADD_CONST64: u32 = 1 << 31;
/// Scalar id flag: linked as `base + delta` by a 32-bit add (`BPF_ADD_CONST32`).
pub const ADD_CONST32: u32 = 1 << 30;
/// Either link flag (`BPF_ADD_CONST`).
pub const ADD_CONST: u32 = ADD_CONST64 | ADD_CONST32;

/// One register's state (the kernel's `struct bpf_reg_state`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Reg {
    /// Base type.
    pub ty: RegType,
    /// Modifier flags ([`MAYBE_NULL`], [`RDONLY`], [`RINGBUF`]).
    pub flags: u8,
    /// Fixed offset of a pointer; for a linked scalar ([`ADD_CONST`]), its delta.
    pub off: i32,
    /// Per type: packet range, map index, memory size, subprogram or BTF type id (the
    /// kernel's union).
    pub aux: u32,
    /// Scalar range, or a pointer's variable offset.
    pub b: Bounds,
    /// Links registers: copies of one scalar, one map lookup result, one packet pointer.
    pub id: u32,
    /// The acquired reference this pointer holds.
    pub ref_obj_id: u32,
    /// The dynptr a `bpf_dynptr_data` slice comes from (its id), 0 for other memory.
    pub dynptr_id: u32,
    /// Which inner map a map pointer or map value belongs to, when the inner map template
    /// has a timer (`map_uid`: the id of the outer map lookup that gave the inner map; 0
    /// otherwise).
    pub map_uid: u32,
    /// Frame a stack pointer points into.
    pub frameno: u8,
    /// Whether a scalar's exact range matters for pruning.
    pub precise: bool,
}

impl Reg {
    /// A register that has not been written.
    pub fn not_init() -> Reg {
        Reg {
            ty: RegType::NotInit,
            flags: 0,
            off: 0,
            aux: 0,
            b: Bounds::UNKNOWN,
            id: 0,
            ref_obj_id: 0,
            dynptr_id: 0,
            map_uid: 0,
            frameno: 0,
            precise: false,
        }
    }

    /// An unknown scalar (`precise` as the kernel initialises it).
    pub fn unknown(precise: bool) -> Reg {
        Reg {
            ty: RegType::Scalar,
            precise,
            ..Reg::not_init()
        }
    }

    /// A known scalar.
    pub fn known(v: u64, precise: bool) -> Reg {
        Reg {
            ty: RegType::Scalar,
            b: Bounds::known(v),
            precise,
            ..Reg::not_init()
        }
    }

    /// A pointer of type `ty` at offset 0 with no id (`mark_reg_known_zero` + type).
    pub fn pointer(ty: RegType) -> Reg {
        Reg {
            ty,
            b: Bounds::known(0),
            ..Reg::not_init()
        }
    }

    /// Whether it is a pointer the kernel counts as a leak risk (any non-scalar, as
    /// `__is_pointer_value` with `allow_ptr_leaks` false).
    pub fn is_pointer_value(&self, allow_ptr_leaks: bool) -> bool {
        !allow_ptr_leaks && self.ty != RegType::Scalar
    }

    /// Whether the pointer may be NULL.
    pub fn maybe_null(&self) -> bool {
        self.flags & MAYBE_NULL != 0
    }

    /// Whether the memory is read-only.
    pub fn rdonly(&self) -> bool {
        self.flags & RDONLY != 0
    }

    /// Whether this is a known constant zero scalar (`register_is_null`).
    pub fn is_null(&self) -> bool {
        self.ty == RegType::Scalar && self.b.var_off.equals_const(0)
    }

    /// Whether this is a known scalar (low 32 bits only when `subreg32`).
    pub fn is_const(&self, subreg32: bool) -> bool {
        self.ty == RegType::Scalar && self.b.is_const_in(subreg32)
    }

    /// A packet (or packet metadata) pointer.
    pub fn is_pkt_pointer(&self) -> bool {
        matches!(self.ty, RegType::Packet | RegType::PacketMeta)
    }

    /// A socket pointer of any kind (`type_is_sk_pointer`, `_or_null` included).
    pub fn is_sk_pointer(&self) -> bool {
        matches!(
            self.ty,
            RegType::SockCommon | RegType::Socket | RegType::TcpSock | RegType::XdpSock
        )
    }

    /// A packet, packet metadata or packet end pointer.
    pub fn is_pkt_pointer_any(&self) -> bool {
        self.is_pkt_pointer() || self.ty == RegType::PacketEnd
    }

    /// The packet range (bytes known to be before `data_end`, from `off` 0).
    pub fn range(&self) -> i32 {
        self.aux as i32
    }

    /// Sets the packet range.
    pub fn set_range(&mut self, r: i32) {
        self.aux = r as u32;
    }

    /// The map index of a map pointer.
    pub fn map(&self) -> usize {
        self.aux as usize
    }

    /// The struct a `PTR_TO_BTF_ID` points to: its id in the target BTF (0: unknown).
    pub fn btf_id(&self) -> u32 {
        self.aux
    }

    /// The memory size of a `PTR_TO_MEM`.
    pub fn mem_size(&self) -> u32 {
        self.aux
    }

    /// Whether the pointer cannot be NULL (`reg_not_null`).
    pub fn not_null(&self) -> bool {
        if self.maybe_null() {
            return false;
        }
        matches!(
            self.ty,
            RegType::MapValue
                | RegType::MapKey
                | RegType::SockCommon
                | RegType::Socket
                | RegType::TcpSock
                | RegType::Mem
                | RegType::ConstPtrToMap
        )
    }

    /// Same as the kernel's `memcmp` of the fields before `id` (type, offset, the union,
    /// and the range).
    pub fn same_value(&self, o: &Reg) -> bool {
        self.ty == o.ty
            && self.flags == o.flags
            && self.off == o.off
            && self.aux == o.aux
            && self.dynptr_id == o.dynptr_id
            && self.map_uid == o.map_uid
            && self.b == o.b
    }

    /// Sets a known value, clearing offset, union and ids (`__mark_reg_known`); the type
    /// is kept.
    pub fn set_known(&mut self, v: u64) {
        self.off = 0;
        self.aux = 0;
        self.map_uid = 0;
        self.id = 0;
        self.ref_obj_id = 0;
        self.dynptr_id = 0;
        self.b = Bounds::known(v);
    }
}

impl Default for Reg {
    fn default() -> Reg {
        Reg::not_init()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors() {
        let r = Reg::known(0, false);
        assert!(r.is_null() && r.is_const(false) && r.ty == RegType::Scalar);
        let p = Reg::pointer(RegType::Packet);
        assert!(p.is_pkt_pointer() && !p.not_null());
        let mut m = Reg::pointer(RegType::MapValue);
        assert!(m.not_null());
        m.flags |= MAYBE_NULL;
        assert!(!m.not_null());
        assert!(Reg::not_init().is_pointer_value(false));
        assert!(!Reg::unknown(false).is_pointer_value(false));
    }
}
