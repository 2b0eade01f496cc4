//! [`Pod`]: plain-old-data types that typed views copy to and from map bytes.
//!
//! `Pod` is [`bytemuck::Pod`] under another name: every type `bytemuck` accepts (numbers,
//! arrays of them, and `#[repr(C)]` structs whose `#[derive(Pod, Zeroable)]` proves at
//! compile time that they have no padding) works with the typed views, and no `unsafe` is
//! needed in user code.
//!
//! ```
//! use bpfvm_maps::bytemuck::{Pod, Zeroable};
//!
//! /// The key of a flow table, as the C program declares it.
//! #[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
//! #[repr(C)]
//! struct FlowKey {
//!     saddr: u32,
//!     daddr: u32,
//!     sport: u16,
//!     dport: u16,
//! }
//!
//! fn takes_pod<T: bpfvm_maps::Pod>(_: T) {}
//! takes_pod(FlowKey { saddr: 1, daddr: 2, sport: 3, dport: 4 });
//! takes_pod([0u64; 3]);
//! ```

/// A type whose values are plain bytes: every byte pattern is a valid value, and it has no
/// padding, pointers or interior mutability. Implemented for every [`bytemuck::Pod`] type;
/// derive `bytemuck::Pod` and `bytemuck::Zeroable` on a `#[repr(C)]` struct to get it.
pub trait Pod: bytemuck::Pod {}

impl<T: bytemuck::Pod> Pod for T {}

/// The bytes of `v`.
pub(crate) fn as_bytes<T: Pod>(v: &T) -> &[u8] {
    bytemuck::bytes_of(v)
}

/// A `T` from the first `size_of::<T>()` bytes of `b` (None when `b` is shorter).
pub(crate) fn from_bytes<T: Pod>(b: &[u8]) -> Option<T> {
    let b = b.get(..std::mem::size_of::<T>())?;
    Some(bytemuck::pod_read_unaligned(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v: [u32; 3] = [1, 2, 0xdead_beef];
        let b = as_bytes(&v).to_vec();
        assert_eq!(b.len(), 12);
        assert_eq!(from_bytes::<[u32; 3]>(&b), Some(v));
        assert_eq!(from_bytes::<u64>(&b[..7]), None);
    }

    #[test]
    fn derived_structs_are_pod() {
        #[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        #[repr(C)]
        struct Pair {
            a: u32,
            b: u32,
        }
        let p = Pair { a: 1, b: 2 };
        assert_eq!(from_bytes::<Pair>(as_bytes(&p)), Some(p));
    }
}
