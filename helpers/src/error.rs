//! `HelperError`: why a helper call ended the run.

use crate::memory::MemFault;

/// A helper call that cannot be completed; it ends the run with an error naming the helper.
///
/// Failures the kernel reports to the *program* (a full map, a missing key) are not errors:
/// the helper returns the negative errno, as in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelperError {
    /// No helper is registered under this id.
    #[error("unknown helper {id}")]
    Unknown {
        /// The helper id the program called.
        id: u32,
    },
    /// An argument that must be a map handle is not one of the program's maps.
    #[error("helper {helper}: bad map pointer {handle:#x}")]
    BadMap {
        /// The helper's name.
        helper: String,
        /// The value passed as the map.
        handle: u64,
    },
    /// A map-in-map lookup found an inner map that is not among the program's maps (it was
    /// put in the outer map after the program was loaded).
    #[error(
        "helper {helper}: inner map id {id} of map {outer:?} is not among the program's maps \
         (put inner maps in the outer map before loading the program)"
    )]
    InnerMapNotLoaded {
        /// The helper's name.
        helper: String,
        /// The outer map's name.
        outer: String,
        /// The inner map's id.
        id: u32,
    },
    /// An argument pointed outside the memory the run may touch.
    #[error("helper {helper}: {fault}")]
    Memory {
        /// The helper's name.
        helper: String,
        /// The refused access (boxed: a helper's error stays small on the run's result path).
        #[source]
        fault: Box<MemFault>,
    },
    /// Any other failure, described by the helper.
    #[error("helper {helper}: {message}")]
    Failed {
        /// The helper's name.
        helper: String,
        /// What went wrong.
        message: String,
    },
}

impl HelperError {
    /// The kernel's errno for this failure (`EINVAL` for bad arguments, `EFAULT` for memory).
    pub fn errno(&self) -> i32 {
        match self {
            HelperError::Memory { .. } => 14,
            _ => 22,
        }
    }
}
