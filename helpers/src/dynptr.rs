//! Dynptr helpers: 197 `bpf_dynptr_from_mem`, 198 `bpf_ringbuf_reserve_dynptr`, 199
//! `bpf_ringbuf_submit_dynptr`, 200 `bpf_ringbuf_discard_dynptr`, 201 `bpf_dynptr_read`,
//! 202 `bpf_dynptr_write`, 203 `bpf_dynptr_data`.
//!
//! A dynptr is 16 bytes of the program's stack holding the kernel's
//! `struct bpf_dynptr_kern`: the data address (an address the program sees), a 32-bit word
//! with the size in its low 24 bits, the type in bits 28..31 and the read-only flag in bit
//! 31, and a 32-bit offset into the data. A NULL dynptr is all zeroes. Every access through
//! a dynptr is checked against its size as the kernel checks it (`-E2BIG` from
//! `bpf_dynptr_read`/`write`, NULL from `bpf_dynptr_data`), and then goes through the
//! sandbox's memory like any other access. A ring buffer dynptr's data is a reservation
//! ([`crate::ringbuf`]): submitting or discarding it commits the record and makes the
//! dynptr NULL.
//!
//! ```
//! use bpfvm_helpers::dynptr::{Dynptr, DynptrType};
//!
//! let d = Dynptr::new(0x1000, DynptrType::Local, 16);
//! let bytes = d.to_bytes();
//! assert_eq!(Dynptr::from_bytes(&bytes), d);
//! assert_eq!(d.size(), 16);
//! assert_eq!(d.check_off_len(8, 8), Ok(()));
//! assert_eq!(d.check_off_len(9, 8), Err(-7)); // -E2BIG
//! assert!(Dynptr::default().is_null());
//! ```

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::held::Reserved;
use crate::id::HelperId;
use crate::registry::{HelperFn, Registry};

/// `EINVAL`, negated.
const EINVAL: i64 = -22;
/// `E2BIG`, negated.
const E2BIG: i64 = -7;

/// Largest dynptr size (`DYNPTR_MAX_SIZE`, 24 bits).
pub const DYNPTR_MAX_SIZE: u32 = (1 << 24) - 1;
const DYNPTR_TYPE_SHIFT: u32 = 28;
const DYNPTR_SIZE_MASK: u32 = 0x00ff_ffff;
const DYNPTR_RDONLY_BIT: u32 = 1 << 31;

/// What a dynptr points to (`enum bpf_dynptr_type`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DynptrType {
    /// Not a valid dynptr (`BPF_DYNPTR_TYPE_INVALID`).
    Invalid = 0,
    /// Program memory (`BPF_DYNPTR_TYPE_LOCAL`).
    Local = 1,
    /// A ring buffer reservation (`BPF_DYNPTR_TYPE_RINGBUF`).
    Ringbuf = 2,
}

/// The 16 bytes of a `struct bpf_dynptr_kern`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Dynptr {
    /// Data address.
    pub data: u64,
    /// Size (low 24 bits), type (bits 28..30), read-only (bit 31).
    pub size_word: u32,
    /// Offset into the data.
    pub offset: u32,
}

impl Dynptr {
    /// A dynptr over `size` bytes at `data` (`bpf_dynptr_init`).
    pub fn new(data: u64, ty: DynptrType, size: u32) -> Dynptr {
        Dynptr {
            data,
            size_word: (size & DYNPTR_SIZE_MASK) | ((ty as u32) << DYNPTR_TYPE_SHIFT),
            offset: 0,
        }
    }

    /// Decodes the stack bytes.
    pub fn from_bytes(b: &[u8; 16]) -> Dynptr {
        let mut d = [0u8; 8];
        d.copy_from_slice(&b[..8]);
        let mut s = [0u8; 4];
        s.copy_from_slice(&b[8..12]);
        let mut o = [0u8; 4];
        o.copy_from_slice(&b[12..]);
        Dynptr {
            data: u64::from_le_bytes(d),
            size_word: u32::from_le_bytes(s),
            offset: u32::from_le_bytes(o),
        }
    }

    /// Encodes the stack bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.data.to_le_bytes());
        b[8..12].copy_from_slice(&self.size_word.to_le_bytes());
        b[12..].copy_from_slice(&self.offset.to_le_bytes());
        b
    }

    /// Whether the dynptr is NULL (no data).
    pub fn is_null(&self) -> bool {
        self.data == 0
    }

    /// The size in bytes (`__bpf_dynptr_size`).
    pub fn size(&self) -> u32 {
        self.size_word & DYNPTR_SIZE_MASK
    }

    /// Whether writes through it are refused (`__bpf_dynptr_is_rdonly`).
    pub fn rdonly(&self) -> bool {
        self.size_word & DYNPTR_RDONLY_BIT != 0
    }

    /// The type (`bpf_dynptr_get_type`).
    pub fn ty(&self) -> DynptrType {
        match (self.size_word & !DYNPTR_RDONLY_BIT) >> DYNPTR_TYPE_SHIFT {
            1 => DynptrType::Local,
            2 => DynptrType::Ringbuf,
            _ => DynptrType::Invalid,
        }
    }

    /// `bpf_dynptr_check_off_len`: `len` bytes at `offset` lie within the size, else
    /// `-E2BIG`.
    pub fn check_off_len(&self, offset: u32, len: u32) -> Result<(), i64> {
        let size = self.size();
        if len > size || offset > size - len {
            return Err(E2BIG);
        }
        Ok(())
    }

    /// The address of byte `offset` of the data.
    fn addr(&self, offset: u32) -> u64 {
        self.data
            .wrapping_add(u64::from(self.offset))
            .wrapping_add(u64::from(offset))
    }
}

/// Registers helpers 197 to 203.
pub fn register(r: &mut Registry) {
    let all: [(u32, &'static str, HelperFn); 7] = [
        (197, "bpf_dynptr_from_mem", dynptr_from_mem),
        (198, "bpf_ringbuf_reserve_dynptr", ringbuf_reserve_dynptr),
        (199, "bpf_ringbuf_submit_dynptr", ringbuf_submit_dynptr),
        (200, "bpf_ringbuf_discard_dynptr", ringbuf_discard_dynptr),
        (201, "bpf_dynptr_read", dynptr_read),
        (202, "bpf_dynptr_write", dynptr_write),
        (203, "bpf_dynptr_data", dynptr_data),
    ];
    for (id, name, f) in all {
        r.register_builtin(HelperId(id), name, f, None)
            .expect("built-in ids are small");
    }
}

/// Registers the kfuncs that read or adjust a dynptr: `bpf_dynptr_size`,
/// `bpf_dynptr_is_null`, `bpf_dynptr_is_rdonly`, `bpf_dynptr_adjust`.
pub fn register_kfuncs(r: &mut Registry) {
    let all: [(&str, HelperFn); 4] = [
        ("bpf_dynptr_size", dynptr_size),
        ("bpf_dynptr_is_null", dynptr_is_null),
        ("bpf_dynptr_is_rdonly", dynptr_is_rdonly),
        ("bpf_dynptr_adjust", dynptr_adjust),
    ];
    for (name, f) in all {
        r.register_kfunc_fn(name, crate::KfuncFlags::NONE, f)
            .expect("valid built-in kfunc");
    }
}

fn mem_err(helper: &str, fault: crate::memory::MemFault) -> Box<HelperError> {
    Box::new(HelperError::Memory {
        helper: helper.to_string(),
        fault: Box::new(fault),
    })
}

/// Reads the dynptr at `addr`.
fn load(ctx: &HelperContext, helper: &str, addr: u64) -> Result<Dynptr, Box<HelperError>> {
    let mut b = [0u8; 16];
    ctx.memory
        .read_bytes(addr, &mut b)
        .map_err(|f| mem_err(helper, f))?;
    Ok(Dynptr::from_bytes(&b))
}

/// Writes `d` to the dynptr at `addr`.
fn store(ctx: &HelperContext, helper: &str, addr: u64, d: Dynptr) -> Result<(), Box<HelperError>> {
    ctx.memory
        .write_bytes(addr, &d.to_bytes())
        .map_err(|f| mem_err(helper, f))
}

/// Copies `len` bytes from `src` to `dst` (both addresses the program sees; `memmove`,
/// so overlapping ranges are fine), charged to the run's budget.
fn copy(
    ctx: &HelperContext,
    helper: &str,
    dst: u64,
    src: u64,
    len: u32,
) -> Result<(), Box<HelperError>> {
    let mut buf = vec![0u8; len as usize];
    ctx.read_arg(helper, src, &mut buf).map_err(Box::new)?;
    ctx.memory
        .write_bytes(dst, &buf)
        .map_err(|f| mem_err(helper, f))
}

/// `bpf_dynptr_from_mem(data, size, flags, ptr)`: a local dynptr over `size` bytes at
/// `data`. 0; `-E2BIG` for a size over 24 bits, `-EINVAL` for flags (a NULL dynptr then).
pub fn dynptr_from_mem(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_dynptr_from_mem";
    let size = a[1] as u32;
    let (d, ret) = if size > DYNPTR_MAX_SIZE {
        (Dynptr::default(), E2BIG)
    } else if a[2] != 0 {
        (Dynptr::default(), EINVAL)
    } else {
        (Dynptr::new(a[0], DynptrType::Local, size), 0)
    };
    store(ctx, NAME, a[3], d)?;
    Ok(ret as u64)
}

/// `bpf_ringbuf_reserve_dynptr(map, size, flags, ptr)`: a ring buffer dynptr over a new
/// record of `size` bytes. 0; `-EINVAL` for flags or when the record does not fit,
/// `-E2BIG` for a size over 24 bits (a NULL dynptr then, which must still be discarded).
pub fn ringbuf_reserve_dynptr(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_ringbuf_reserve_dynptr";
    let map = crate::ringbuf::ring(ctx, NAME, a[0])?;
    let size = a[1] as u32;
    let null = |ctx: &HelperContext, ret: i64| -> Result<u64, Box<HelperError>> {
        store(ctx, NAME, a[3], Dynptr::default())?;
        Ok(ret as u64)
    };
    if a[2] != 0 {
        return null(ctx, EINVAL);
    }
    if size > DYNPTR_MAX_SIZE {
        return null(ctx, E2BIG);
    }
    let m = map.as_map().expect("checked by ring()");
    let Some(record) = m.ringbuf_reserve(u64::from(size)) else {
        return null(ctx, EINVAL);
    };
    let Some(addr) = ctx
        .memory
        .install_ringbuf_object(&map, record.offset, record.size as usize)
    else {
        m.ringbuf_commit(&record, true);
        return Err(Box::new(HelperError::Failed {
            helper: NAME.to_string(),
            message: format!(
                "more than {} ring buffer reservations held at once",
                crate::memory::DYNAMIC_REGIONS
            ),
        }));
    };
    if let Err(e) = store(
        ctx,
        NAME,
        a[3],
        Dynptr::new(addr, DynptrType::Ringbuf, size),
    ) {
        ctx.memory.remove_object(addr);
        m.ringbuf_commit(&record, true);
        return Err(e);
    }
    ctx.held.reservations.push(Reserved { map, record, addr });
    Ok(0)
}

/// Submits or discards the record of the ring buffer dynptr at `a[0]`; a NULL dynptr is
/// left alone. The dynptr becomes NULL.
fn commit_dynptr(
    ctx: &mut HelperContext,
    name: &str,
    a: &[u64; 5],
    discard: bool,
) -> Result<u64, Box<HelperError>> {
    let d = load(ctx, name, a[0])?;
    if d.is_null() {
        return Ok(0);
    }
    if d.ty() != DynptrType::Ringbuf {
        return Err(Box::new(HelperError::Failed {
            helper: name.to_string(),
            message: "the dynptr is not a ring buffer dynptr (the verifier accepts only one)"
                .to_string(),
        }));
    }
    crate::ringbuf::commit(ctx, name, d.data, discard)?;
    store(ctx, name, a[0], Dynptr::default())?;
    Ok(0)
}

/// `bpf_ringbuf_submit_dynptr(ptr, flags)`.
pub fn ringbuf_submit_dynptr(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    commit_dynptr(ctx, "bpf_ringbuf_submit_dynptr", a, false)
}

/// `bpf_ringbuf_discard_dynptr(ptr, flags)`.
pub fn ringbuf_discard_dynptr(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    commit_dynptr(ctx, "bpf_ringbuf_discard_dynptr", a, true)
}

/// `bpf_dynptr_read(dst, len, src, offset, flags)`: copies `len` bytes at `offset` of
/// the dynptr to `dst`. 0; `-EINVAL` for a NULL dynptr or flags, `-E2BIG` out of range.
pub fn dynptr_read(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_dynptr_read";
    let d = load(ctx, NAME, a[2])?;
    let (len, offset) = (a[1] as u32, a[3] as u32);
    if d.is_null() || a[4] != 0 {
        return Ok(EINVAL as u64);
    }
    if let Err(e) = d.check_off_len(offset, len) {
        return Ok(e as u64);
    }
    match d.ty() {
        DynptrType::Local | DynptrType::Ringbuf => {
            copy(ctx, NAME, a[0], d.addr(offset), len)?;
            Ok(0)
        }
        DynptrType::Invalid => Ok(EINVAL as u64),
    }
}

/// `bpf_dynptr_write(dst, offset, src, len, flags)`: copies `len` bytes from `src` to
/// `offset` of the dynptr. 0; `-EINVAL` for a NULL or read-only dynptr or flags, `-E2BIG`
/// out of range.
pub fn dynptr_write(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_dynptr_write";
    let d = load(ctx, NAME, a[0])?;
    let (offset, len) = (a[1] as u32, a[3] as u32);
    if d.is_null() || d.rdonly() {
        return Ok(EINVAL as u64);
    }
    if let Err(e) = d.check_off_len(offset, len) {
        return Ok(e as u64);
    }
    match d.ty() {
        DynptrType::Local | DynptrType::Ringbuf if a[4] == 0 => {
            copy(ctx, NAME, d.addr(offset), a[2], len)?;
            Ok(0)
        }
        _ => Ok(EINVAL as u64),
    }
}

/// `bpf_dynptr_data(ptr, offset, len)`: the address of `len` bytes at `offset` of the
/// dynptr, or NULL (a NULL or read-only dynptr, or out of range).
pub fn dynptr_data(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    let d = load(ctx, "bpf_dynptr_data", a[0])?;
    let (offset, len) = (a[1] as u32, a[2] as u32);
    if d.is_null() || d.check_off_len(offset, len).is_err() || d.rdonly() {
        return Ok(0);
    }
    match d.ty() {
        DynptrType::Local | DynptrType::Ringbuf => Ok(d.addr(offset)),
        DynptrType::Invalid => Ok(0),
    }
}

/// `bpf_dynptr_size(p)`: the size, `-EINVAL` (as a `u32`) for a NULL dynptr.
pub fn dynptr_size(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    let d = load(ctx, "bpf_dynptr_size", a[0])?;
    if d.is_null() {
        return Ok(u64::from(EINVAL as u32));
    }
    Ok(u64::from(d.size()))
}

/// `bpf_dynptr_is_null(p)`.
pub fn dynptr_is_null(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(u64::from(load(ctx, "bpf_dynptr_is_null", a[0])?.is_null()))
}

/// `bpf_dynptr_is_rdonly(p)`: false for a NULL dynptr.
pub fn dynptr_is_rdonly(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    let d = load(ctx, "bpf_dynptr_is_rdonly", a[0])?;
    Ok(u64::from(!d.is_null() && d.rdonly()))
}

/// `bpf_dynptr_adjust(p, start, end)`: the dynptr then covers `[start, end)` of what it
/// covered. 0; `-EINVAL` for a NULL dynptr or `start > end`, `-ERANGE` past its size.
pub fn dynptr_adjust(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_dynptr_adjust";
    const ERANGE: i64 = -34;
    let mut d = load(ctx, NAME, a[0])?;
    let (start, end) = (a[1] as u32, a[2] as u32);
    if d.is_null() || start > end {
        return Ok(EINVAL as u64);
    }
    let size = d.size();
    if start > size || end > size {
        return Ok(ERANGE as u64);
    }
    d.offset = d.offset.wrapping_add(start);
    d.size_word = (d.size_word & !DYNPTR_SIZE_MASK) | (end - start);
    store(ctx, NAME, a[0], d)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_kernel() {
        let d = Dynptr::new(0xdead_beef, DynptrType::Ringbuf, 24);
        let b = d.to_bytes();
        assert_eq!(&b[..8], &0xdead_beefu64.to_le_bytes());
        assert_eq!(
            u32::from_le_bytes(b[8..12].try_into().unwrap()),
            24 | (2 << 28)
        );
        assert_eq!(&b[12..], &[0; 4]);
        assert_eq!(d.ty(), DynptrType::Ringbuf);
        assert!(!d.rdonly());
        let mut ro = d;
        ro.size_word |= DYNPTR_RDONLY_BIT;
        assert!(ro.rdonly() && ro.ty() == DynptrType::Ringbuf && ro.size() == 24);
        assert_eq!(Dynptr::default().ty(), DynptrType::Invalid);
    }

    #[test]
    fn bounds_as_the_kernel_checks_them() {
        let d = Dynptr::new(1, DynptrType::Local, 8);
        assert_eq!(d.check_off_len(0, 8), Ok(()));
        assert_eq!(d.check_off_len(8, 0), Ok(()));
        assert_eq!(d.check_off_len(0, 9), Err(E2BIG));
        assert_eq!(d.check_off_len(u32::MAX, 1), Err(E2BIG));
        assert_eq!(d.check_off_len(4, u32::MAX), Err(E2BIG));
        let mut shifted = d;
        shifted.offset = 4;
        assert_eq!(shifted.addr(2), 7);
    }
}
