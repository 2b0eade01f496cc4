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

impl BatchLookup {
    /// A lookup batch refused before it returned anything: `count` as passed, no entries.
    pub fn failed(errno: Errno, count: u32) -> BatchLookup {
        BatchLookup {
            result: Err(errno),
            count,
            keys: Vec::new(),
            values: Vec::new(),
            out_batch: None,
        }
    }

    /// Cuts buffers sized for `requested` entries down to the entries reported: `count`
    /// of them on success and at the end of the map (ENOENT; never more than
    /// `requested`), none after other errors, when `count` is 0 or untouched.
    pub fn trimmed(mut self, requested: u32, key_size: usize, stride: usize) -> BatchLookup {
        let got = match self.result {
            Ok(()) | Err(Errno::ENOENT) => self.count.min(requested) as usize,
            Err(_) => 0,
        };
        self.keys.truncate(got * key_size);
        self.values.truncate(got * stride);
        self
    }
}

impl BatchWrite {
    /// A write batch refused before it applied anything: `count` as passed.
    pub fn failed(errno: Errno, count: u32) -> BatchWrite {
        BatchWrite {
            result: Err(errno),
            count,
        }
    }
}
