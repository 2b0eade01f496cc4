//! [`PerCpuValues`]: one value per simulated CPU, as read from or written to a per-CPU map.

use std::ops::{Deref, DerefMut};

use crate::error::MapError;
use crate::pod::{as_bytes, from_bytes, Pod};

/// One `V` per CPU, `values[c]` belonging to CPU `c`. Its length is checked against `N`
/// when it is built and again when a map uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerCpuValues<V: Pod> {
    values: Box<[V]>,
}

impl<V: Pod> PerCpuValues<V> {
    /// Values for `ncpus` CPUs; `EINVAL` when `values.len() != ncpus`.
    pub fn new(ncpus: u32, values: Vec<V>) -> Result<Self, MapError> {
        if values.len() != ncpus as usize {
            return Err(MapError::SizeMismatch {
                what: "per-CPU values count",
                expected: ncpus as usize,
                got: values.len(),
            });
        }
        Ok(PerCpuValues {
            values: values.into_boxed_slice(),
        })
    }

    /// The same value on each of `ncpus` CPUs.
    pub fn from_elem(ncpus: u32, value: V) -> Self {
        PerCpuValues {
            values: vec![value; ncpus as usize].into_boxed_slice(),
        }
    }

    /// The sum over CPUs, as `bpftool` and users total a per-CPU counter (integers wrap
    /// instead of overflowing: a program may leave any value in a copy).
    ///
    /// ```
    /// use bpfvm_maps::PerCpuValues;
    /// let v = PerCpuValues::new(3, vec![1u64, 2, 3])?;
    /// assert_eq!(v.sum(), 6);
    /// assert_eq!(PerCpuValues::new(2, vec![u64::MAX, 2])?.sum(), 1);
    /// # Ok::<(), bpfvm_maps::MapError>(())
    /// ```
    pub fn sum(&self) -> V
    where
        V: CpuSum,
    {
        self.values.iter().fold(V::ZERO, |acc, v| acc.add(*v))
    }

    /// The values as a vector.
    pub fn into_vec(self) -> Vec<V> {
        self.values.into_vec()
    }

    /// Encode as a full host buffer: CPU `i` at `i * slot`, padding zero.
    pub(crate) fn to_buffer(&self, slot: usize) -> Vec<u8> {
        let mut buf = vec![0u8; slot * self.values.len()];
        for (i, v) in self.values.iter().enumerate() {
            let b = as_bytes(v);
            buf[i * slot..i * slot + b.len()].copy_from_slice(b);
        }
        buf
    }

    /// Decode a full host buffer of `ncpus` slots.
    pub(crate) fn from_buffer(buf: &[u8], slot: usize, ncpus: u32) -> Result<Self, MapError> {
        let values = (0..ncpus as usize)
            .map(|i| {
                from_bytes::<V>(buf.get(i * slot..).unwrap_or(&[])).ok_or(
                    MapError::BufferTooSmall {
                        what: "per-CPU buffer",
                        needed: slot * ncpus as usize,
                        got: buf.len(),
                    },
                )
            })
            .collect::<Result<Vec<V>, MapError>>()?;
        Ok(PerCpuValues {
            values: values.into_boxed_slice(),
        })
    }
}

impl<V: Pod> Deref for PerCpuValues<V> {
    type Target = [V];
    fn deref(&self) -> &[V] {
        &self.values
    }
}

impl<V: Pod> DerefMut for PerCpuValues<V> {
    fn deref_mut(&mut self) -> &mut [V] {
        &mut self.values
    }
}

impl<V: Pod> IntoIterator for PerCpuValues<V> {
    type Item = V;
    type IntoIter = std::vec::IntoIter<V>;
    fn into_iter(self) -> Self::IntoIter {
        self.values.into_vec().into_iter()
    }
}

/// Values [`PerCpuValues::sum`] can total: integers (wrapping) and floats.
pub trait CpuSum: Pod {
    /// The sum of no values.
    const ZERO: Self;
    /// `self + other`, wrapping for integers.
    fn add(self, other: Self) -> Self;
}

macro_rules! wrapping_sum {
    ($($t:ty),*) => { $(
        impl CpuSum for $t {
            const ZERO: Self = 0;
            fn add(self, other: Self) -> Self {
                self.wrapping_add(other)
            }
        }
    )* };
}
wrapping_sum!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl CpuSum for f32 {
    const ZERO: Self = 0.0;
    fn add(self, other: Self) -> Self {
        self + other
    }
}

impl CpuSum for f64 {
    const ZERO: Self = 0.0;
    fn add(self, other: Self) -> Self {
        self + other
    }
}
