//! What the batch commands return, shared by the kernel oracle and the bpfvm adapter.

use super::errno::Errno;

/// The outcome of LOOKUP_BATCH or LOOKUP_AND_DELETE_BATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLookup {
    /// The call's result.
    pub result: Result<(), Errno>,
    /// `count` as the kernel left it.
    pub count: u32,
    /// The keys returned: `count` keys on success or ENOENT, none after other errors.
    pub keys: Vec<u8>,
    /// The values of those keys, at the stride of spec §3.
    pub values: Vec<u8>,
    /// `out_batch` if the kernel wrote it: a key for arrays, a u32 bucket index for hashes.
    pub out_batch: Option<Vec<u8>>,
}

/// The outcome of UPDATE_BATCH or DELETE_BATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchWrite {
    /// The call's result.
    pub result: Result<(), Errno>,
    /// `count` as the kernel left it: the number of elements applied.
    pub count: u32,
}
