//! `MemFault`: a refused guest memory access, saying what the address named and why the
//! access was refused (see the address layout in [`crate::memory`]).

use std::fmt;

/// What an access does with the bytes, for permission checks and fault messages.
///
/// The discriminants are permission bits: an access needs every bit of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Access {
    /// A load (needs read permission).
    Read = 1,
    /// A store (needs write permission).
    Write = 2,
    /// An atomic read-modify-write (needs read and write permission and natural alignment).
    Atomic = 3,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Atomic => "atomic",
        })
    }
}

/// Why an access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultKind {
    /// No region answers to the address (this includes NULL).
    Unmapped,
    /// Some byte of the access lies outside the object the address names: the packet, the
    /// stack frames in use, the context, or the one map value the pointer was derived from.
    OutOfBounds,
    /// A write or atomic to memory the program may only read (`BPF_F_RDONLY_PROG`,
    /// `.rodata`).
    ReadOnly,
    /// A read or atomic from a map the program may only write (`BPF_F_WRONLY_PROG`).
    WriteOnly,
    /// The access touches a `bpf_spin_lock` field, which programs may only use through the
    /// lock helpers (the kernel's verifier refuses direct access).
    SpecialField,
    /// An atomic access that is not naturally aligned.
    Misaligned,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Unmapped => "no memory there",
            FaultKind::OutOfBounds => "outside the object",
            FaultKind::ReadOnly => "read-only to programs",
            FaultKind::WriteOnly => "map is write-only for programs",
            FaultKind::SpecialField => "touches the value's bpf_spin_lock",
            FaultKind::Misaligned => "misaligned atomic",
        })
    }
}

/// A map name as the kernel keeps it: at most 15 bytes (`BPF_OBJ_NAME_LEN` with the NUL).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MapName {
    bytes: [u8; 15],
    len: u8,
}

impl MapName {
    /// The first 15 bytes of `name` (cut at a character boundary).
    pub fn new(name: &str) -> MapName {
        let mut end = name.len().min(15);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0; 15];
        bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
        MapName {
            bytes,
            len: end as u8,
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for MapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What a faulting address named, decoded from its region, object and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultTarget {
    /// No region (or NULL).
    Nothing,
    /// The packet region; `offset` counts from the first packet byte (`data_meta`), negative
    /// below it.
    Packet {
        /// Offset from the start of the packet (metadata included).
        offset: i64,
        /// Bytes in the packet region.
        len: u32,
    },
    /// A packet pointer the program kept from before a helper changed the packet
    /// (`bpf_xdp_adjust_head`, `bpf_skb_store_bytes`, ...): the kernel's verifier
    /// invalidates every packet pointer at such a call, so this access would not load.
    StalePacket {
        /// How many packet changes ago the pointer was valid.
        changes_ago: u64,
    },
    /// The stack; `offset` counts from the frame pointer of the main program (`r10` at
    /// entry), so frame 0's bytes are `-512..0`.
    Stack {
        /// Offset from the main frame's `r10`.
        offset: i32,
    },
    /// The context (`r1` at entry).
    Context {
        /// Offset into the context (negative below it).
        offset: i32,
        /// Bytes of context.
        len: u32,
    },
    /// A map handle (`ld_imm64` of a map), which is never dereferenceable.
    MapHandle,
    /// A map value.
    MapValue {
        /// The map's index in the program's map list.
        map: u32,
        /// The map's name.
        name: MapName,
        /// The element (array index, hash element slot) the value belongs to.
        element: u32,
        /// The CPU whose copy it is, for per-CPU maps.
        cpu: Option<u32>,
        /// Offset into the value (the address's low 32 bits, negative below the value).
        offset: i32,
        /// Bytes in the value.
        value_size: u32,
    },
    /// A ring buffer record the program reserved (`bpf_ringbuf_reserve`), or the last one
    /// of its region after it was submitted or discarded.
    Reservation {
        /// The ring buffer's name.
        name: MapName,
        /// Offset into the record (negative below it).
        offset: i64,
        /// Bytes the program reserved.
        len: u32,
        /// Whether the record was already submitted or discarded.
        released: bool,
    },
    /// The key `bpf_for_each_map_elem` handed its callback (read-only), or the last one
    /// of its region after the callback returned.
    CallbackKey {
        /// The map's name.
        name: MapName,
        /// Offset into the key (negative below it).
        offset: i64,
        /// Bytes of the key.
        len: u32,
    },
}

impl fmt::Display for FaultTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FaultTarget::Nothing => f.write_str("no region"),
            FaultTarget::Packet { offset, len } => {
                write!(f, "packet offset {offset} (the packet has {len} bytes)")
            }
            FaultTarget::StalePacket { changes_ago } => write!(
                f,
                "a packet pointer from before the packet was changed ({changes_ago} change(s) ago): helpers that change the packet invalidate every packet pointer, re-read ctx->data and ctx->data_end"
            ),
            FaultTarget::Stack { offset } => write!(f, "stack at r10{offset:+}"),
            FaultTarget::Context { offset, len } => {
                write!(f, "context offset {offset} (the context has {len} bytes)")
            }
            FaultTarget::MapHandle => f.write_str("a map handle, never dereferenceable"),
            FaultTarget::MapValue {
                map,
                name,
                element,
                cpu,
                offset,
                value_size,
            } => {
                let name = name.as_str();
                if name.is_empty() {
                    write!(f, "map #{map}")?;
                } else {
                    write!(f, "map {name}")?;
                }
                write!(f, ", value of element {element}")?;
                if let Some(cpu) = cpu {
                    write!(f, " on cpu {cpu}")?;
                }
                write!(f, ", offset {offset}")?;
                write!(f, " (the value has {value_size} bytes)")
            }
            FaultTarget::Reservation {
                name,
                offset,
                len,
                released,
            } => {
                f.write_str("ring buffer ")?;
                if !name.as_str().is_empty() {
                    write!(f, "{} ", name.as_str())?;
                }
                write!(f, "record, offset {offset} (the record has {len} bytes)")?;
                if released {
                    f.write_str(", already submitted or discarded")?;
                }
                Ok(())
            }
            FaultTarget::CallbackKey { name, offset, len } => {
                f.write_str("the key a for_each callback was given")?;
                if !name.as_str().is_empty() {
                    write!(f, " (map {})", name.as_str())?;
                }
                write!(f, ", offset {offset} (the key has {len} bytes)")
            }
        }
    }
}

/// A refused guest memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {access} of {size} bytes at {addr:#x}: {kind}, {target}")]
pub struct MemFault {
    /// The guest address of the access.
    pub addr: u64,
    /// The access width in bytes.
    pub size: u64,
    /// What the access did.
    pub access: Access,
    /// Why it was refused.
    pub kind: FaultKind,
    /// What the address named.
    pub target: FaultTarget,
}

impl MemFault {
    /// Whether an otherwise valid atomic access was refused for its alignment.
    pub fn misaligned(&self) -> bool {
        self.kind == FaultKind::Misaligned
    }
}
