//! An independent model of ARRAY, PERCPU_ARRAY, HASH and PERCPU_HASH (spec §2–§6), written
//! from the spec text only. Results are `Result<_, i32>` with positive errnos.

use std::collections::BTreeMap;

/// Errnos of spec §1.6.
pub mod e {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const E2BIG: i32 = 7;
    pub const EFAULT: i32 = 14;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
    pub const ERANGE: i32 = 34;
    pub const ENOTSUPP: i32 = 524;
}

/// Element flags (spec §1.1).
pub const LOCK: u64 = 4;
/// `BPF_F_CPU`.
pub const CPU: u64 = 8;
/// `BPF_F_ALL_CPUS`.
pub const ALL_CPUS: u64 = 16;

/// The four modelled map types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Array,
    PercpuArray,
    Hash,
    PercpuHash,
}

impl Ty {
    pub fn percpu(self) -> bool {
        matches!(self, Ty::PercpuArray | Ty::PercpuHash)
    }
    pub fn array(self) -> bool {
        matches!(self, Ty::Array | Ty::PercpuArray)
    }
}

/// Where a host-side update takes its bytes from.
#[derive(Debug, Clone, Copy)]
enum Write {
    Full,
    All,
    One(u32),
}

/// The model: every element's copies (one per CPU for per-CPU maps, else one).
#[derive(Debug, Clone)]
pub struct Model {
    pub ty: Ty,
    pub ncpus: u32,
    pub vs: usize,
    pub max: u32,
    pub frozen: bool,
    pub elems: BTreeMap<u32, Vec<Vec<u8>>>,
}

pub type R<T> = Result<T, i32>;

impl Model {
    pub fn new(ty: Ty, ncpus: u32, vs: usize, max: u32) -> Model {
        let mut elems = BTreeMap::new();
        if ty.array() {
            for i in 0..max {
                elems.insert(i, vec![vec![0u8; vs]; Self::copies_of(ty, ncpus)]);
            }
        }
        Model {
            ty,
            ncpus,
            vs,
            max,
            frozen: false,
            elems,
        }
    }

    fn copies_of(ty: Ty, ncpus: u32) -> usize {
        if ty.percpu() {
            ncpus as usize
        } else {
            1
        }
    }

    fn copies(&self) -> usize {
        Self::copies_of(self.ty, self.ncpus)
    }

    /// `round_up(VS, 8)`.
    pub fn slot(&self) -> usize {
        self.vs.div_ceil(8) * 8
    }

    /// Spec §3.
    pub fn host_size(&self, flags: u64) -> usize {
        if self.ty.percpu() && flags & (CPU | ALL_CPUS) == 0 {
            self.slot() * self.ncpus as usize
        } else {
            self.vs
        }
    }

    /// Spec §2, in order.
    pub fn check_op_flags(&self, f: u64, allowed: u64) -> R<()> {
        if (f & 0xffff_ffff) & !allowed != 0 {
            return Err(e::EINVAL);
        }
        if f & LOCK != 0 {
            return Err(e::EINVAL); // no modelled map has a spin lock
        }
        if f & CPU == 0 && f >> 32 != 0 {
            return Err(e::EINVAL);
        }
        if f & (CPU | ALL_CPUS) != 0 {
            if !self.ty.percpu() || (f & CPU != 0 && f & ALL_CPUS != 0) {
                return Err(e::EINVAL);
            }
            if f & CPU != 0 && (f >> 32) as u32 >= self.ncpus {
                return Err(e::ERANGE);
            }
        }
        Ok(())
    }

    /// The bytes a host lookup returns (`host_size(flags)` bytes, padding zero).
    pub fn value_out(&self, key: u32, flags: u64) -> Option<Vec<u8>> {
        let copies = self.elems.get(&key)?;
        if !self.ty.percpu() {
            return Some(copies[0].clone());
        }
        if flags & CPU != 0 {
            return Some(copies[(flags >> 32) as usize].clone());
        }
        let mut out = Vec::new();
        for c in copies {
            out.extend_from_slice(c);
            out.resize(out.len() + self.slot() - self.vs, 0);
        }
        Some(out)
    }

    /// One CPU's copy, as a program sees it.
    pub fn cpu_copy(&self, key: u32, cpu: u32) -> Option<&[u8]> {
        let copies = self.elems.get(&key)?;
        Some(if self.ty.percpu() {
            &copies[cpu as usize]
        } else {
            &copies[0]
        })
    }

    pub fn exists(&self, key: u32) -> bool {
        self.elems.contains_key(&key)
    }

    fn full(&self) -> bool {
        self.elems.len() as u32 >= self.max
    }

    fn write(&mut self, key: u32, buf: &[u8], how: Write) {
        let (vs, slot, n) = (self.vs, self.slot(), self.copies());
        let new = !self.elems.contains_key(&key);
        let copies = self
            .elems
            .entry(key)
            .or_insert_with(|| vec![vec![0u8; vs]; n]);
        match how {
            Write::Full if n == 1 => copies[0].copy_from_slice(&buf[..vs]),
            Write::Full => {
                for (c, copy) in copies.iter_mut().enumerate() {
                    copy.copy_from_slice(&buf[c * slot..c * slot + vs]);
                }
            }
            Write::All => {
                for copy in copies.iter_mut() {
                    copy.copy_from_slice(&buf[..vs]);
                }
            }
            Write::One(c) => {
                if new {
                    copies.iter_mut().for_each(|x| x.fill(0));
                }
                copies[c as usize].copy_from_slice(&buf[..vs]);
            }
        }
    }

    /// Spec §4 (host column) and §5.2, after the generic checks; `value` has the host size.
    pub fn update_checked(&mut self, key: u32, value: &[u8], f: u64) -> R<()> {
        let exists = self.exists(key);
        match self.ty {
            Ty::Array => {
                if f & !LOCK > 2 {
                    return Err(e::EINVAL);
                }
                if key >= self.max {
                    return Err(e::E2BIG);
                }
                if f & 1 != 0 {
                    return Err(e::EEXIST);
                }
            }
            Ty::PercpuArray => {
                if f & LOCK != 0 || (f as u32) > 16 {
                    return Err(e::EINVAL);
                }
                if key >= self.max {
                    return Err(e::E2BIG);
                }
                if f == 1 {
                    return Err(e::EEXIST);
                }
            }
            Ty::Hash | Ty::PercpuHash => {
                let g = if self.ty == Ty::Hash {
                    if f & !LOCK > 2 {
                        return Err(e::EINVAL);
                    }
                    f & !LOCK
                } else {
                    if f & LOCK != 0 || (f as u32) > 16 {
                        return Err(e::EINVAL);
                    }
                    f
                };
                if exists && g == 1 {
                    return Err(e::EEXIST);
                }
                if !exists && g == 2 {
                    return Err(e::ENOENT);
                }
                if !exists && self.full() {
                    return Err(e::E2BIG);
                }
            }
        }
        let how = if !self.ty.percpu() {
            Write::Full
        } else if f & CPU != 0 {
            Write::One((f >> 32) as u32)
        } else if f & ALL_CPUS != 0 {
            Write::All
        } else {
            Write::Full
        };
        self.write(key, value, how);
        Ok(())
    }

    /// `BPF_MAP_UPDATE_ELEM` with a key of `key_len` bytes and a value buffer.
    pub fn update(&mut self, key: u32, key_len: usize, value: &[u8], f: u64) -> R<()> {
        if self.frozen {
            return Err(e::EPERM);
        }
        self.check_op_flags(f, !0)?;
        if key_len < 4 || value.len() < self.host_size(f) {
            return Err(e::EFAULT);
        }
        self.update_checked(key, value, f)
    }

    /// Helper 2 (spec §4 program column): `cpu < N`, `value` holds `VS` bytes.
    pub fn prog_update(&mut self, cpu: u32, key: u32, value: &[u8], f: u64) -> R<()> {
        let exists = self.exists(key);
        match self.ty {
            Ty::Array | Ty::PercpuArray => {
                if f & !LOCK > 2 {
                    return Err(e::EINVAL);
                }
                if key >= self.max {
                    return Err(e::E2BIG);
                }
                if f & 1 != 0 {
                    return Err(e::EEXIST);
                }
                if f & LOCK != 0 {
                    return Err(e::EINVAL);
                }
            }
            Ty::Hash | Ty::PercpuHash => {
                let g = if self.ty == Ty::Hash {
                    if f & !LOCK > 2 || f & LOCK != 0 {
                        return Err(e::EINVAL);
                    }
                    f & !LOCK
                } else {
                    if f > 2 {
                        return Err(e::EINVAL);
                    }
                    f
                };
                if exists && g == 1 {
                    return Err(e::EEXIST);
                }
                if !exists && g == 2 {
                    return Err(e::ENOENT);
                }
                if !exists && self.full() {
                    return Err(e::E2BIG);
                }
            }
        }
        let how = if self.ty.percpu() {
            Write::One(cpu)
        } else {
            Write::Full
        };
        self.write(key, value, how);
        Ok(())
    }

    /// Delete after the attr and permission checks (DELETE_ELEM, helper 3, DELETE_BATCH).
    pub fn delete_checked(&mut self, key: u32) -> R<()> {
        if self.ty.array() {
            return Err(e::EINVAL);
        }
        self.elems.remove(&key).map(|_| ()).ok_or(e::ENOENT)
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub fn delete(&mut self, key: u32, key_len: usize, flags: u64) -> R<()> {
        if flags != 0 {
            return Err(e::EINVAL);
        }
        if self.frozen {
            return Err(e::EPERM);
        }
        if key_len < 4 {
            return Err(e::EFAULT);
        }
        self.delete_checked(key)
    }

    /// Array GET_NEXT_KEY (spec §5.4): exact.
    pub fn array_next(&self, key: Option<u32>) -> R<u32> {
        match key {
            Some(k) if k < self.max => {
                if k == self.max - 1 {
                    Err(e::ENOENT)
                } else {
                    Ok(k + 1)
                }
            }
            _ => Ok(0),
        }
    }

    /// `BPF_MAP_FREEZE`.
    pub fn freeze(&mut self) -> R<()> {
        if self.frozen {
            return Err(e::EPERM);
        }
        self.frozen = true;
        Ok(())
    }
}
