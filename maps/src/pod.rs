//! [`Pod`]: plain-old-data types that typed views copy to and from map bytes.
#![allow(unsafe_code)]

/// A type whose values are plain bytes.
///
/// # Safety
///
/// Implement it only for `Copy` types where **every** byte pattern of
/// `size_of::<Self>()` bytes is a valid value and that have **no padding bytes**, no
/// pointers, references or interior mutability. Integers, floats and arrays of such types
/// qualify; a `#[repr(C)]` struct qualifies only if its fields leave no padding. The crate
/// reads values with unaligned copies from arbitrary map bytes and writes their bytes
/// verbatim, so a type breaking this rule would be created from invalid bytes (UB) or leak
/// uninitialized padding.
pub unsafe trait Pod: Copy + 'static {}

macro_rules! pod {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive number type: no padding, every bit pattern valid.
        unsafe impl Pod for $t {}
    )* };
}
pod!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

// SAFETY: an array of Pod has no padding between elements (size is a multiple of the
// alignment) and every byte pattern of its elements is valid.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// The bytes of `v`.
pub(crate) fn as_bytes<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: `T: Pod` has no padding, so all `size_of::<T>()` bytes behind the reference are
    // initialized; the slice borrows `v` and lives no longer.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// A `T` from the first `size_of::<T>()` bytes of `b` (None when `b` is shorter).
pub(crate) fn from_bytes<T: Pod>(b: &[u8]) -> Option<T> {
    let b = b.get(..std::mem::size_of::<T>())?;
    // SAFETY: `b` holds exactly size_of::<T>() initialized bytes; `read_unaligned` has no
    // alignment requirement, and `T: Pod` makes every byte pattern a valid T.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
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
}
