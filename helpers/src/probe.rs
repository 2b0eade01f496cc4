//! Probe reads: 112 `bpf_probe_read_user`, 113 `bpf_probe_read_kernel`, 114
//! `bpf_probe_read_user_str`, 115 `bpf_probe_read_kernel_str`, from memory the test provides
//! ([`MemoryImage`]: the VM's kernel memory, each task's user memory) and, for kernel reads,
//! from the program's own memory (its stack, context, packet and map values are kernel memory
//! to the kernel).
//!
//! Results follow the kernel on x86_64: a kernel read of an address below the kernel half
//! (`TASK_SIZE_MAX + PAGE_SIZE`) or outside the canonical range is `-ERANGE`
//! (`copy_from_kernel_nofault_allowed`); a user read past `TASK_SIZE_MAX` is `-EFAULT`
//! (`access_ok`); bytes nobody provided are `-EFAULT`. On every error the destination is
//! zeroed. The string forms copy up to the first NUL, always NUL-terminate within `size`
//! and return the length with the NUL.
//!
//! ```
//! use bpfvm_helpers::MemoryImage;
//!
//! let kernel = MemoryImage::new().with(0xffff_8880_0000_1000, b"hello\0".to_vec());
//! let mut out = [0u8; 4];
//! assert!(kernel.read(0xffff_8880_0000_1001, &mut out));
//! assert_eq!(&out, b"ello");
//! assert!(!kernel.read(0xffff_8880_0000_1004, &mut out)); // runs past the bytes given
//! ```

use std::sync::Arc;

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::fault::Access;
use crate::id::HelperId;
use crate::registry::{HelperFn, Registry};

/// `TASK_SIZE_MAX` on x86_64 with 4-level paging: the end of user addresses.
pub const TASK_SIZE_MAX: u64 = (1 << 47) - 4096;
/// Largest `size` a probe read takes here (the verifier bounds it by the destination's
/// memory; no program has more than this).
const MAX_READ: u64 = 1 << 30;

const EFAULT: i64 = 14;
const ERANGE: i64 = 34;

/// Bytes at addresses: what a test provides as kernel or user memory. Later segments
/// shadow earlier ones where they overlap. Cheap to clone (segments are shared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryImage {
    segments: Vec<(u64, Arc<[u8]>)>,
}

impl MemoryImage {
    /// No memory.
    pub fn new() -> MemoryImage {
        MemoryImage::default()
    }

    /// The image with `bytes` at `addr` added.
    pub fn with(mut self, addr: u64, bytes: impl Into<Vec<u8>>) -> MemoryImage {
        self.insert(addr, bytes);
        self
    }

    /// Adds `bytes` at `addr` (ignored if they would run past the end of the address space).
    pub fn insert(&mut self, addr: u64, bytes: impl Into<Vec<u8>>) {
        let bytes: Vec<u8> = bytes.into();
        if addr.checked_add(bytes.len() as u64).is_some() {
            self.segments.push((addr, bytes.into()));
        }
    }

    /// Copies `out.len()` bytes at `addr`; `false` (with `out` partly written) when some
    /// byte is not provided.
    pub fn read(&self, addr: u64, out: &mut [u8]) -> bool {
        let mut i = 0usize;
        while i < out.len() {
            let at = addr.wrapping_add(i as u64);
            // The longest run from one segment (the last that holds `at`).
            let Some((start, bytes)) = self
                .segments
                .iter()
                .rev()
                .find(|(s, b)| at.checked_sub(*s).is_some_and(|off| off < b.len() as u64))
            else {
                return false;
            };
            let off = (at - start) as usize;
            let n = (bytes.len() - off).min(out.len() - i);
            out[i..i + n].copy_from_slice(&bytes[off..off + n]);
            i += n;
        }
        true
    }
}

/// Registers helpers 112 to 115.
pub fn register(r: &mut Registry) {
    let all: [(HelperId, &'static str, HelperFn); 4] = [
        (
            HelperId::PROBE_READ_USER,
            "bpf_probe_read_user",
            probe_read_user,
        ),
        (
            HelperId::PROBE_READ_KERNEL,
            "bpf_probe_read_kernel",
            probe_read_kernel,
        ),
        (
            HelperId::PROBE_READ_USER_STR,
            "bpf_probe_read_user_str",
            probe_read_user_str,
        ),
        (
            HelperId::PROBE_READ_KERNEL_STR,
            "bpf_probe_read_kernel_str",
            probe_read_kernel_str,
        ),
    ];
    for (id, name, f) in all {
        r.register_builtin(id, name, f, None)
            .expect("built-in ids are small");
    }
}

/// Which address space a probe reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    Kernel,
    User,
}

/// Copies `out.len()` bytes at `src` from `space`, or the negative errno.
fn read(ctx: &HelperContext, space: Space, src: u64, out: &mut [u8]) -> Result<(), i64> {
    let n = out.len() as u64;
    match space {
        Space::Kernel => {
            // The program's own memory is kernel memory (checked in full, like any access).
            if n > 0 && ctx.memory.translate(src, n, Access::Read).is_ok() {
                return ctx.memory.read_bytes(src, out).map_err(|_| -EFAULT);
            }
            // copy_from_kernel_nofault_allowed: user addresses and non-canonical ones.
            let canonical = src >> 47 == 0 || src >> 47 == (1 << 17) - 1;
            if src < TASK_SIZE_MAX + 4096 || !canonical {
                return Err(-ERANGE);
            }
            if ctx.kernel_memory().read(src, out) {
                Ok(())
            } else {
                Err(-EFAULT)
            }
        }
        Space::User => {
            if src.checked_add(n).is_none_or(|end| end > TASK_SIZE_MAX) {
                return Err(-EFAULT);
            }
            if ctx.task().user_memory.read(src, out) {
                Ok(())
            } else {
                Err(-EFAULT)
            }
        }
    }
}

/// The string at `addr` as `%s` of `bpf_trace_printk` reads it (`bpf_trace_copy_string`):
/// the program's own memory, else user memory below `TASK_SIZE_MAX` and kernel memory
/// above, up to `max` bytes or the NUL (not included); `None` when a byte cannot be read.
pub(crate) fn printk_string(ctx: &HelperContext, addr: u64, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if ctx.memory.translate(addr, 1, Access::Read).is_ok() {
        return ctx
            .memory
            .read_c_string(addr, max, &mut out)
            .ok()
            .map(|()| out);
    }
    let space = if addr < TASK_SIZE_MAX {
        Space::User
    } else {
        Space::Kernel
    };
    for i in 0..max as u64 {
        let mut b = [0u8; 1];
        read(ctx, space, addr.wrapping_add(i), &mut b).ok()?;
        if b[0] == 0 {
            break;
        }
        out.push(b[0]);
    }
    Some(out)
}

/// The `len` bytes at `addr` for `%pI4`/`%pI6`, read as the kernel's
/// `copy_from_kernel_nofault` reads them (`None` when unreadable).
pub(crate) fn printk_bytes(ctx: &HelperContext, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    read(ctx, Space::Kernel, addr, &mut out).ok()?;
    Some(out)
}

/// Checks the destination (`size` writable bytes at `dst`, what the verifier guarantees).
fn check_dst(ctx: &HelperContext, name: &str, dst: u64, size: u64) -> Result<(), Box<HelperError>> {
    if size > MAX_READ {
        return Err(Box::new(HelperError::Failed {
            helper: name.to_string(),
            message: format!("size {size} is larger than any memory a program has"),
        }));
    }
    if size > 0 {
        ctx.memory
            .translate(dst, size, Access::Write)
            .map_err(|fault| HelperError::Memory {
                helper: name.to_string(),
                fault: Box::new(fault),
            })?;
    }
    Ok(())
}

fn write(ctx: &HelperContext, name: &str, dst: u64, bytes: &[u8]) -> Result<(), Box<HelperError>> {
    ctx.memory.write_bytes(dst, bytes).map_err(|fault| {
        Box::new(HelperError::Memory {
            helper: name.to_string(),
            fault: Box::new(fault),
        })
    })
}

/// `bpf_probe_read_{kernel,user}(dst, size, src)`.
fn probe(
    ctx: &mut HelperContext,
    name: &str,
    space: Space,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    let (dst, size, src) = (a[0], a[1], a[2]);
    check_dst(ctx, name, dst, size)?;
    ctx.charge_bytes(size as usize);
    let mut buf = vec![0u8; size as usize];
    let r = read(ctx, space, src, &mut buf);
    if r.is_err() {
        buf.fill(0);
    }
    write(ctx, name, dst, &buf)?;
    Ok(r.map_or_else(|e| e as u64, |()| 0))
}

/// `bpf_probe_read_{kernel,user}_str(dst, size, src)`: up to the NUL, `dst` NUL-terminated
/// within `size`; returns the length with the NUL (`size` when cut), 0 for `size` 0.
fn probe_str(
    ctx: &mut HelperContext,
    name: &str,
    space: Space,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    let (dst, size, src) = (a[0], a[1], a[2]);
    check_dst(ctx, name, dst, size)?;
    // Byte-by-byte reads cost more than a copy: one instruction per 8 bytes.
    ctx.charge_bytes((size as usize).saturating_mul(8));
    if size == 0 {
        return Ok(0);
    }
    if space == Space::Kernel {
        let canonical = src >> 47 == 0 || src >> 47 == (1 << 17) - 1;
        let own = ctx.memory.translate(src, 1, Access::Read).is_ok();
        if !own && (src < TASK_SIZE_MAX + 4096 || !canonical) {
            write(ctx, name, dst, &vec![0u8; size as usize])?;
            return Ok((-ERANGE) as u64);
        }
    }
    // Byte by byte, as strncpy_from_*_nofault: a string may end before unreadable bytes.
    let mut out = Vec::with_capacity(size.min(4096) as usize);
    let mut result = None;
    for i in 0..size {
        let mut b = [0u8; 1];
        if let Err(e) = read(ctx, space, src.wrapping_add(i), &mut b) {
            result = Some(if e == -ERANGE { -EFAULT } else { e });
            break;
        }
        out.push(b[0]);
        if b[0] == 0 {
            break;
        }
    }
    let ret = match result {
        Some(e) => {
            out.clear();
            e
        }
        None if out.last() == Some(&0) => {
            let len = out.len();
            if space == Space::User {
                pad_nul_word(ctx, src, size, &mut out);
            }
            len as i64
        }
        None => {
            // Cut at `size`: the last byte becomes the NUL.
            if let Some(last) = out.last_mut() {
                *last = 0;
            }
            size as i64
        }
    };
    if ret < 0 {
        out.resize(size as usize, 0);
    }
    write(ctx, name, dst, &out)?;
    Ok(ret as u64)
}

/// x86's `strncpy_from_user` copies whole words while 8 or more bytes of `size` are left
/// (and the source word is readable): the word holding the NUL is stored whole, its bytes
/// after the NUL zeroed. `out` (the string with its NUL) grows to the end of that word.
fn pad_nul_word(ctx: &HelperContext, src: u64, size: u64, out: &mut Vec<u8>) {
    let word = (out.len() as u64 - 1) / 8 * 8;
    let mut w = [0u8; 8];
    if word + 8 <= size && read(ctx, Space::User, src.wrapping_add(word), &mut w).is_ok() {
        out.resize(word as usize + 8, 0);
    }
}

/// `bpf_probe_read_str(dst, size, unsafe_ptr)` (45, the legacy form): a user string below
/// `TASK_SIZE`, a kernel string above, as the kernel decides on x86_64. The program's own memory (stack, map values, context) is kernel
/// memory, wherever bpfvm places it.
pub fn probe_read_compat_str(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    let src = a[2];
    let own = ctx.memory.translate(src, 1, Access::Read).is_ok();
    let space = if !own && src < TASK_SIZE_MAX {
        Space::User
    } else {
        Space::Kernel
    };
    probe_str(ctx, "bpf_probe_read_str", space, a)
}

/// `bpf_probe_read_user(dst, size, unsafe_ptr)`.
pub fn probe_read_user(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    probe(ctx, "bpf_probe_read_user", Space::User, a)
}

/// `bpf_probe_read_kernel(dst, size, unsafe_ptr)`.
pub fn probe_read_kernel(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    probe(ctx, "bpf_probe_read_kernel", Space::Kernel, a)
}

/// `bpf_probe_read_user_str(dst, size, unsafe_ptr)`.
pub fn probe_read_user_str(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    probe_str(ctx, "bpf_probe_read_user_str", Space::User, a)
}

/// `bpf_probe_read_kernel_str(dst, size, unsafe_ptr)`.
pub fn probe_read_kernel_str(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    probe_str(ctx, "bpf_probe_read_kernel_str", Space::Kernel, a)
}
