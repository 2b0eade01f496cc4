//! The fragments of a multi-buffer XDP packet, as the kernel's XDP test run builds them
//! (`bpf_prog_test_run_xdp`, Linux 6.18): the bytes of `data_in` past the linear part go
//! into page fragments of up to [`PAGE_SIZE`] bytes each (at offset 0 of their page), at
//! most [`MAX_SKB_FRAGS`] of them. A program cannot reach them through packet pointers
//! (`data_end - data` is the linear part): only `bpf_xdp_get_buff_len`,
//! `bpf_xdp_load_bytes`/`_store_bytes` and `bpf_xdp_adjust_tail` see them, and
//! `BPF_PROG_TEST_RUN` appends them to the linear part in `data_out`.
//!
//! ```
//! use bpfvm_helpers::frags::{Frags, MAX_SKB_FRAGS};
//! use bpfvm_helpers::packet::PAGE_SIZE;
//!
//! let mut f = Frags::default();
//! f.fill(&[7; PAGE_SIZE + 10]).unwrap();
//! assert_eq!((f.count(), f.len()), (2, PAGE_SIZE + 10));
//! // Growing fills the last fragment's page, zeroed; shrinking releases emptied fragments.
//! assert!(f.grow(6));
//! assert_eq!(f.shrink(16), 0);
//! assert_eq!(f.count(), 1);
//! assert!(f.fill(&vec![0; (MAX_SKB_FRAGS + 1) * PAGE_SIZE]).is_err());
//! ```

use crate::packet::PAGE_SIZE;

/// `MAX_SKB_FRAGS` (the kernel's default, `CONFIG_MAX_SKB_FRAGS` = 17).
pub const MAX_SKB_FRAGS: usize = 17;

/// A packet's remainder needs more than [`MAX_SKB_FRAGS`] fragments (the kernel's test run
/// fails with `ENOMEM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{len} bytes past the linear part need {needed} fragments of {PAGE_SIZE} bytes; an XDP buffer has at most {MAX_SKB_FRAGS} (ENOMEM)")]
pub struct TooManyFrags {
    /// Bytes that were to go into fragments.
    pub len: usize,
    /// Fragments they would need.
    pub needed: usize,
}

impl TooManyFrags {
    /// The kernel's errno: `ENOMEM`.
    pub fn errno(&self) -> i32 {
        12
    }
}

/// The fragments of one XDP buffer (`skb_shared_info.frags`, `nr_frags` and
/// `xdp_frags_size`). Empty for a linear packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frags {
    /// Each fragment's bytes (1 to [`PAGE_SIZE`] of them).
    pages: Vec<Vec<u8>>,
    /// Bytes in all fragments.
    len: usize,
}

impl Frags {
    /// Fragments a remainder of `len` bytes needs.
    pub fn needed(len: usize) -> usize {
        len.div_ceil(PAGE_SIZE)
    }

    /// Replaces the fragments with `bytes` cut into pages, as the kernel's test run does.
    /// Fails (leaving no fragments) when they need more than [`MAX_SKB_FRAGS`].
    pub fn fill(&mut self, bytes: &[u8]) -> Result<(), TooManyFrags> {
        self.clear();
        let needed = Frags::needed(bytes.len());
        if needed > MAX_SKB_FRAGS {
            return Err(TooManyFrags {
                len: bytes.len(),
                needed,
            });
        }
        self.pages = bytes.chunks(PAGE_SIZE).map(<[u8]>::to_vec).collect();
        self.len = bytes.len();
        Ok(())
    }

    /// Removes every fragment.
    pub fn clear(&mut self) {
        self.pages.clear();
        self.len = 0;
    }

    /// Bytes in all fragments (`xdp_frags_size`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no fragments (a linear packet).
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Number of fragments (`nr_frags`).
    pub fn count(&self) -> usize {
        self.pages.len()
    }

    /// The fragments' sizes, in order.
    pub fn sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.pages.iter().map(Vec::len)
    }

    /// Calls `f` with each piece of fragment bytes `off .. off + len` (offsets into the
    /// fragments taken as one run of bytes; the caller checked `off + len <= self.len()`)
    /// and the offset of the piece from `off`.
    fn pieces(&self, off: usize, len: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
        let (mut start, mut done) = (0, 0);
        for (i, p) in self.pages.iter().enumerate() {
            if done == len {
                break;
            }
            let end = start + p.len();
            let at = off + done;
            if at < end {
                let n = (end - at).min(len - done);
                f(i, at - start, n, done);
                done += n;
            }
            start = end;
        }
    }

    /// Copies fragment bytes from `off` into `out` (the caller checked the range).
    pub fn read(&self, off: usize, out: &mut [u8]) {
        debug_assert!(off + out.len() <= self.len);
        self.pieces(off, out.len(), |i, at, n, done| {
            out[done..done + n].copy_from_slice(&self.pages[i][at..at + n]);
        });
    }

    /// Copies `src` into the fragments at `off` (the caller checked the range).
    pub fn write(&mut self, off: usize, src: &[u8]) {
        debug_assert!(off + src.len() <= self.len);
        let mut parts = Vec::new();
        self.pieces(off, src.len(), |i, at, n, done| {
            parts.push((i, at, n, done))
        });
        for (i, at, n, done) in parts {
            self.pages[i][at..at + n].copy_from_slice(&src[done..done + n]);
        }
    }

    /// `bpf_xdp_frags_increase_tail`: grows the last fragment by `n` zero bytes, within its
    /// page (`frag_size` [`PAGE_SIZE`] minus the fragment's size). Returns whether it did:
    /// not past that, nor without fragments.
    pub fn grow(&mut self, n: usize) -> bool {
        let Some(last) = self.pages.last_mut() else {
            return false;
        };
        if n > PAGE_SIZE - last.len() {
            return false;
        }
        last.resize(last.len() + n, 0);
        self.len += n;
        true
    }

    /// `bpf_xdp_frags_shrink_tail`: removes `n` bytes from the end of the fragments,
    /// releasing the fragments it empties. Returns the bytes it could not remove (`n` minus
    /// the fragments' length, when all of them went), which the kernel takes off the linear
    /// part.
    pub fn shrink(&mut self, n: usize) -> usize {
        let mut left = n;
        while left > 0 {
            let Some(last) = self.pages.last_mut() else {
                break;
            };
            let cut = left.min(last.len());
            left -= cut;
            self.len -= cut;
            if cut == last.len() {
                self.pages.pop();
            } else {
                last.truncate(last.len() - cut);
                break;
            }
        }
        left
    }

    /// Appends the fragments' bytes to `out`, in order.
    pub fn append_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len);
        for p in &self.pages {
            out.extend_from_slice(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn fill_cuts_pages_as_the_kernels_test_run() {
        let mut f = Frags::default();
        let bytes = counted(2 * PAGE_SIZE + 100);
        f.fill(&bytes).unwrap();
        assert_eq!(f.sizes().collect::<Vec<_>>(), [PAGE_SIZE, PAGE_SIZE, 100]);
        let mut out = Vec::new();
        f.append_to(&mut out);
        assert_eq!(out, bytes);
        f.fill(&counted(MAX_SKB_FRAGS * PAGE_SIZE)).unwrap();
        assert_eq!(f.count(), MAX_SKB_FRAGS);
        let e = f.fill(&counted(MAX_SKB_FRAGS * PAGE_SIZE + 1)).unwrap_err();
        assert_eq!((e.needed, e.errno()), (MAX_SKB_FRAGS + 1, 12));
        assert!(f.is_empty());
        assert_eq!(f.len(), 0);
        f.fill(&[]).unwrap();
        assert!(f.is_empty());
    }

    #[test]
    fn reads_and_writes_cross_fragment_boundaries() {
        let mut f = Frags::default();
        let bytes = counted(PAGE_SIZE + 300);
        f.fill(&bytes).unwrap();
        let mut out = vec![0; 200];
        f.read(PAGE_SIZE - 100, &mut out);
        assert_eq!(out, bytes[PAGE_SIZE - 100..PAGE_SIZE + 100]);
        f.write(PAGE_SIZE - 2, &[0xaa; 5]);
        let mut all = Vec::new();
        f.append_to(&mut all);
        assert_eq!(
            &all[PAGE_SIZE - 3..PAGE_SIZE + 4],
            &[
                bytes[PAGE_SIZE - 3],
                0xaa,
                0xaa,
                0xaa,
                0xaa,
                0xaa,
                bytes[PAGE_SIZE + 3]
            ]
        );
        let mut one = [0u8; 1];
        f.read(PAGE_SIZE + 299, &mut one);
        assert_eq!(one[0], bytes[PAGE_SIZE + 299]);
    }

    #[test]
    fn grow_stays_in_the_last_page_and_shrink_releases_emptied_fragments() {
        let mut f = Frags::default();
        f.fill(&counted(PAGE_SIZE + 100)).unwrap();
        assert!(!f.grow(PAGE_SIZE - 99));
        assert!(f.grow(PAGE_SIZE - 100));
        assert_eq!(f.len(), 2 * PAGE_SIZE);
        assert!(!f.grow(1));
        assert!(f.grow(0));
        // Grown bytes are zero.
        let mut b = [1u8; 4];
        f.read(PAGE_SIZE + 100, &mut b);
        assert_eq!(b, [0; 4]);
        // Shrinking inside the last fragment keeps it.
        assert_eq!(f.shrink(10), 0);
        assert_eq!(f.sizes().collect::<Vec<_>>(), [PAGE_SIZE, PAGE_SIZE - 10]);
        // Exactly the last fragment: released.
        assert_eq!(f.shrink(PAGE_SIZE - 10), 0);
        assert_eq!(f.count(), 1);
        // Past all fragments: the rest comes back for the linear part.
        assert_eq!(f.shrink(PAGE_SIZE + 7), 7);
        assert!(f.is_empty());
        assert_eq!(f.len(), 0);
        assert!(!f.grow(1));
        assert_eq!(f.shrink(5), 5);
    }
}
