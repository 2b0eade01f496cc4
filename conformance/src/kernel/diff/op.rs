//! One host-side map command with its arguments, and what it returned.

use super::host::HostMap;
use crate::kernel::{BatchLookup, BatchWrite, Errno};

/// A host-side map command with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // fields are the bpf_attr fields of the same name
pub enum Op {
    Lookup {
        key: Vec<u8>,
        flags: u64,
    },
    Update {
        key: Vec<u8>,
        value: Vec<u8>,
        flags: u64,
    },
    Delete {
        key: Vec<u8>,
    },
    GetNextKey {
        key: Option<Vec<u8>>,
    },
    LookupAndDelete {
        key: Vec<u8>,
        flags: u64,
    },
    LookupBatch {
        in_batch: Option<Vec<u8>>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    },
    LookupAndDeleteBatch {
        in_batch: Option<Vec<u8>>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    },
    UpdateBatch {
        keys: Vec<u8>,
        values: Vec<u8>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    },
    DeleteBatch {
        keys: Vec<u8>,
        count: u32,
        elem_flags: u64,
        flags: u64,
    },
    Freeze,
    /// Not a command: the host caller moves to this CPU (its LRU free list, spec §7.6).
    HostCpu(u32),
}

/// What one [`Op`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A value (lookup, lookup-and-delete) or a key (get-next-key), or the errno.
    Bytes(Result<Vec<u8>, Errno>),
    /// Success or the errno (update, delete, freeze).
    Unit(Result<(), Errno>),
    /// A lookup batch.
    Read(BatchLookup),
    /// An update or delete batch.
    Write(BatchWrite),
}

/// Applies `op` to `map`.
pub fn apply(map: &dyn HostMap, op: &Op) -> Outcome {
    match op {
        Op::Lookup { key, flags } => Outcome::Bytes(map.lookup(key, *flags)),
        Op::Update { key, value, flags } => Outcome::Unit(map.update(key, value, *flags)),
        Op::Delete { key } => Outcome::Unit(map.delete(key)),
        Op::GetNextKey { key } => Outcome::Bytes(map.get_next_key(key.as_deref())),
        Op::LookupAndDelete { key, flags } => Outcome::Bytes(map.lookup_and_delete(key, *flags)),
        Op::LookupBatch {
            in_batch,
            count,
            elem_flags,
            flags,
        } => Outcome::Read(map.lookup_batch(in_batch.as_deref(), *count, *elem_flags, *flags)),
        Op::LookupAndDeleteBatch {
            in_batch,
            count,
            elem_flags,
            flags,
        } => Outcome::Read(map.lookup_and_delete_batch(
            in_batch.as_deref(),
            *count,
            *elem_flags,
            *flags,
        )),
        Op::UpdateBatch {
            keys,
            values,
            count,
            elem_flags,
            flags,
        } => Outcome::Write(map.update_batch(keys, values, *count, *elem_flags, *flags)),
        Op::DeleteBatch {
            keys,
            count,
            elem_flags,
            flags,
        } => Outcome::Write(map.delete_batch(keys, *count, *elem_flags, *flags)),
        Op::Freeze => Outcome::Unit(map.freeze()),
        Op::HostCpu(cpu) => Outcome::Unit(map.set_host_cpu(*cpu)),
    }
}
