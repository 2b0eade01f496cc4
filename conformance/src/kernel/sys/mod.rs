//! The only module that calls into the kernel: the `bpf(2)` syscall, the fds it returns,
//! thread CPU affinity and the effective uid.
//!
//! Soundness rests on one rule: every pointer placed in a `bpf_attr` points into a Rust
//! buffer that is alive for the call and at least as long as the kernel may read or write
//! through it. The kernel's sizes come from the map's geometry ([`MapShape`]), which is
//! fixed when the map is created here and cannot be forged by callers, so every function
//! below checks its buffers against it before the call and answers `EINVAL` otherwise.
#![allow(unsafe_code)]

use super::consts::{Cmd, MapType};
use super::errno::Errno;

mod btf;
mod events;
pub(crate) mod map_in_map;

pub(crate) use btf::{btf_load, map_create_btf, BtfFd};
pub(crate) use events::{PerfEventBuffer, RingbufMmap};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Bytes of `union bpf_attr` passed to the kernel; covers every field used here
/// (the kernel treats missing trailing bytes as zero and checks extra ones are zero).
const ATTR_SIZE: usize = 144;

/// A zeroed `union bpf_attr`, filled field by field at the kernel's offsets.
#[repr(C, align(8))]
struct Attr([u8; ATTR_SIZE]);

impl Attr {
    fn new() -> Self {
        Attr([0; ATTR_SIZE])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    /// Stores a pointer to `buf`, or NULL when `buf` is `None`.
    fn ptr(&mut self, off: usize, buf: Option<&[u8]>) -> &mut Self {
        self.u64(off, buf.map_or(0, |b| b.as_ptr() as u64))
    }
    fn mut_ptr(&mut self, off: usize, buf: Option<&mut [u8]>) -> &mut Self {
        self.u64(off, buf.map_or(0, |b| b.as_mut_ptr() as u64))
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().expect("4 bytes"))
    }
}

/// Issues one `bpf(2)` call.
///
/// # Safety
/// Every pointer stored in `attr` must be NULL or point into memory that is live for the
/// call and large enough for what the kernel reads or writes for `cmd`.
unsafe fn bpf(cmd: Cmd, attr: &mut Attr) -> Result<i64, Errno> {
    // SAFETY: `attr` is a live, writable, 8-aligned buffer of ATTR_SIZE bytes; the caller
    // guarantees the pointers inside it (this function's contract).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as u32 as libc::c_long,
            attr.0.as_mut_ptr(),
            ATTR_SIZE as libc::c_uint,
        )
    };
    if ret < 0 {
        Err(Errno(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    } else {
        Ok(ret)
    }
}

/// Wraps an fd the kernel just returned.
fn own_fd(ret: i64) -> Result<OwnedFd, Errno> {
    let fd = RawFd::try_from(ret).map_err(|_| Errno::EBADF)?;
    // SAFETY: `fd` was just returned by a successful bpf(2) call that creates a new fd;
    // nothing else owns it, so the OwnedFd is its only owner and closes it once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The geometry of a kernel map, as created: it bounds every kernel access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MapShape {
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    /// Possible CPUs: the N of full per-CPU buffers.
    pub ncpus: u32,
}

impl MapShape {
    /// The most value bytes the kernel moves per element for any flags: `VS`, or
    /// `round_up(VS, 8) * N` for per-CPU maps.
    pub fn max_value_bytes(&self) -> usize {
        let vs = self.value_size as usize;
        vs.max(vs.div_ceil(8) * 8 * self.ncpus as usize)
    }
    /// The most bytes of `in_batch` / `out_batch`: a key (arrays) or a u32 bucket (hashes).
    pub fn batch_token_bytes(&self) -> usize {
        (self.key_size as usize).max(4)
    }
}

/// A map fd together with the geometry it was created with.
#[derive(Debug)]
pub(crate) struct MapFd {
    fd: OwnedFd,
    shape: MapShape,
}

impl MapFd {
    /// A map fd someone else created (libbpf), with the geometry it was created with.
    pub fn from_owned(fd: OwnedFd, shape: MapShape) -> Self {
        MapFd { fd, shape }
    }
    pub fn shape(&self) -> &MapShape {
        &self.shape
    }
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
    fn fd_u32(&self) -> u32 {
        self.fd.as_raw_fd() as u32
    }
    fn key_ok(&self, key: Option<&In<'_>>) -> Result<(), Errno> {
        if key.is_none_or(|k| k.covers(self.shape.key_size as usize)) {
            Ok(())
        } else {
            Err(Errno::EINVAL)
        }
    }
}

/// A copy of some bytes placed so that they end exactly where a `PROT_NONE` page begins:
/// the kernel reading past them faults (`EFAULT`) instead of reading other memory. This is
/// how a too-short key or value buffer is handed to the kernel.
#[derive(Debug)]
pub(crate) struct GuardedBuf {
    base: *mut u8,
    page: usize,
    len: usize,
}

impl GuardedBuf {
    /// Copies `bytes` (at most one page) in front of a guard page.
    pub fn new(bytes: &[u8]) -> Result<Self, Errno> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = usize::try_from(page).map_err(|_| Errno::EINVAL)?;
        if bytes.len() > page {
            return Err(Errno::EINVAL);
        }
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing
        // touches no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(last_errno());
        }
        let base = base.cast::<u8>();
        let buf = GuardedBuf {
            base,
            page,
            len: bytes.len(),
        };
        // SAFETY: `base + page .. base + 2 * page` is the second page of the mapping above.
        if unsafe { libc::mprotect(base.add(page).cast(), page, libc::PROT_NONE) } != 0 {
            return Err(last_errno());
        }
        // SAFETY: the destination `base + page - len .. base + page` lies in the first
        // (read-write) page of the mapping, which nothing else references; the source is a
        // distinct Rust slice of `len` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.start(), bytes.len());
        }
        Ok(buf)
    }

    /// The guarded bytes as they are now (after the kernel wrote into them).
    pub fn read(&self) -> Vec<u8> {
        let mut out = vec![0; self.len];
        // SAFETY: `start() .. start() + len` is inside the read-write page of our mapping;
        // no call that could write to it is running (the syscall borrows `self`, and this
        // method needs `&self` too, so they cannot overlap on one thread; the type is not
        // Sync because of its raw pointer).
        unsafe { std::ptr::copy_nonoverlapping(self.start(), out.as_mut_ptr(), self.len) };
        out
    }

    fn start(&self) -> *mut u8 {
        // SAFETY: `page - len` is within the 2-page mapping (len <= page).
        unsafe { self.base.add(self.page - self.len) }
    }
}

impl Drop for GuardedBuf {
    fn drop(&mut self) {
        // SAFETY: `base` / `2 * page` is exactly the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(self.base.cast(), 2 * self.page);
        }
    }
}

/// Bytes the kernel reads.
#[derive(Debug, Clone, Copy)]
pub(crate) enum In<'a> {
    /// A Rust slice; the kernel must not read past its end.
    Plain(&'a [u8]),
    /// A guarded copy; reads past its end fault in the guard page.
    Guarded(&'a GuardedBuf),
}

impl In<'_> {
    fn addr(&self) -> u64 {
        match self {
            In::Plain(b) => b.as_ptr() as u64,
            In::Guarded(g) => g.start() as u64,
        }
    }
    /// Whether a kernel read of `needed` bytes stays in memory that is ours: the slice, or
    /// the guarded bytes plus the guard page.
    fn covers(&self, needed: usize) -> bool {
        match self {
            In::Plain(b) => b.len() >= needed,
            In::Guarded(g) => needed <= g.len + g.page,
        }
    }
}

fn last_errno() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// BPF_MAP_CREATE (no BTF, no name).
pub(crate) fn map_create(shape: MapShape) -> Result<MapFd, Errno> {
    let mut attr = Attr::new();
    attr.u32(0, shape.map_type as u32)
        .u32(4, shape.key_size)
        .u32(8, shape.value_size)
        .u32(12, shape.max_entries)
        .u32(16, shape.map_flags);
    // SAFETY: MAP_CREATE without name/BTF reads no user pointers.
    let ret = unsafe { bpf(Cmd::MapCreate, &mut attr) }?;
    Ok(MapFd {
        fd: own_fd(ret)?,
        shape,
    })
}

/// LOOKUP_ELEM / UPDATE_ELEM / DELETE_ELEM / GET_NEXT_KEY / LOOKUP_AND_DELETE_ELEM:
/// `key` (`key_size` bytes read), `value` (read or written, up to `max_value_bytes`;
/// for GET_NEXT_KEY it is the next key, `key_size` bytes written), `flags`.
pub(crate) fn map_elem(
    map: &MapFd,
    cmd: Cmd,
    key: Option<In<'_>>,
    value: ElemValue<'_>,
    flags: u64,
) -> Result<(), Errno> {
    map.key_ok(key.as_ref())?;
    let max_value = map.shape.max_value_bytes();
    let mut attr = Attr::new();
    attr.u32(0, map.fd_u32())
        .u64(8, key.map_or(0, |k| k.addr()))
        .u64(24, flags);
    match value {
        ElemValue::None => {}
        ElemValue::In(v) => {
            if !v.covers(max_value) {
                return Err(Errno::EINVAL);
            }
            attr.u64(16, v.addr());
        }
        ElemValue::Out(v) => {
            if v.len() < max_value {
                return Err(Errno::EINVAL);
            }
            attr.mut_ptr(16, Some(v));
        }
        ElemValue::OutGuarded(g) => {
            if !In::Guarded(g).covers(max_value) {
                return Err(Errno::EINVAL);
            }
            attr.u64(16, g.start() as u64);
        }
        ElemValue::NextKey(v) => {
            if v.len() < map.shape.key_size as usize {
                return Err(Errno::EINVAL);
            }
            attr.mut_ptr(16, Some(v));
        }
    }
    // SAFETY: checked above: `key` covers key_size bytes, an input value covers
    // max_value_bytes (the most the kernel reads for this map), output buffers hold at least
    // what the kernel writes (max_value_bytes, or key_size for a next key), or are guarded
    // so that the kernel's write past them faults in their own guard page (a GuardedBuf is
    // memory no Rust reference points into). "Covers" means
    // either a live slice that long or a guarded copy whose overrun lands in its own
    // PROT_NONE page, where the kernel's user copy faults with EFAULT. All buffers are
    // borrowed for the duration of the call.
    unsafe { bpf(cmd, &mut attr) }.map(drop)
}

/// The value argument of [`map_elem`].
#[derive(Debug)]
pub(crate) enum ElemValue<'a> {
    /// NULL.
    None,
    /// A value the kernel reads.
    In(In<'a>),
    /// A value the kernel writes.
    Out(&'a mut [u8]),
    /// A short value buffer the kernel writes, whose overrun faults in the guard page.
    OutGuarded(&'a GuardedBuf),
    /// GET_NEXT_KEY's `next_key`.
    NextKey(&'a mut [u8]),
}

/// A batch array: written by lookups, read by updates and deletes.
#[derive(Debug)]
pub(crate) enum BatchBuf<'a> {
    /// The kernel writes it.
    Out(&'a mut [u8]),
    /// The kernel reads it.
    In(In<'a>),
}

impl BatchBuf<'_> {
    fn covers(&self, needed: usize) -> bool {
        match self {
            BatchBuf::Out(b) => b.len() >= needed,
            BatchBuf::In(i) => i.covers(needed),
        }
    }
    fn addr(&mut self) -> u64 {
        match self {
            BatchBuf::Out(b) => b.as_mut_ptr() as u64,
            BatchBuf::In(i) => i.addr(),
        }
    }
}

/// The buffers and fields of one batch call. `keys` and `values` must cover `count`
/// elements of `key_size` and `max_value_bytes` bytes.
#[derive(Debug)]
pub(crate) struct BatchArgs<'a> {
    pub in_batch: Option<In<'a>>,
    pub out_batch: &'a mut [u8],
    pub keys: BatchBuf<'a>,
    pub values: Option<BatchBuf<'a>>,
    pub count: u32,
    pub elem_flags: u64,
    pub flags: u64,
}

/// One of the four batch commands. Returns the call's result and `count` as the kernel
/// left it (the kernel writes it back on success and on most errors).
pub(crate) fn map_batch(
    map: &MapFd,
    cmd: Cmd,
    mut args: BatchArgs<'_>,
) -> (Result<(), Errno>, u32) {
    let s = map.shape;
    let n = args.count as usize;
    let tok = s.batch_token_bytes();
    let ok = args.in_batch.is_none_or(|b| b.covers(tok))
        && args.out_batch.len() >= tok
        && args.keys.covers(n * s.key_size as usize)
        && args
            .values
            .as_ref()
            .is_none_or(|v| v.covers(n * s.max_value_bytes()));
    if !ok {
        return (Err(Errno::EINVAL), args.count);
    }
    let mut attr = Attr::new();
    attr.u64(0, args.in_batch.map_or(0, |b| b.addr()))
        .mut_ptr(8, Some(args.out_batch))
        .u64(16, args.keys.addr())
        .u64(24, args.values.as_mut().map_or(0, |v| v.addr()))
        .u32(32, args.count)
        .u32(36, map.fd_u32())
        .u64(40, args.elem_flags)
        .u64(48, args.flags);
    // SAFETY: checked above: the batch tokens cover >= key_size and >= 4 bytes (a key or a
    // bucket index), `keys` and `values` cover `count` elements of the largest size the
    // kernel uses for this map ("cover" as in `map_elem`: a live slice that long, or a
    // guarded copy whose overrun faults in its own guard page); all are borrowed during
    // the call, output buffers exclusively.
    let res = unsafe { bpf(cmd, &mut attr) }.map(drop);
    (res, attr.get_u32(32))
}

/// BPF_MAP_FREEZE.
pub(crate) fn map_freeze(map: &MapFd) -> Result<(), Errno> {
    let mut attr = Attr::new();
    attr.u32(0, map.fd_u32());
    // SAFETY: MAP_FREEZE reads only the fd.
    unsafe { bpf(Cmd::MapFreeze, &mut attr) }.map(drop)
}

/// A loaded program's fd.
#[derive(Debug)]
pub(crate) struct ProgFd(OwnedFd);

impl ProgFd {
    /// A program fd someone else loaded (libbpf).
    pub fn from_owned(fd: OwnedFd) -> Self {
        ProgFd(fd)
    }
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// BPF_PROG_LOAD of `insns` (8 bytes each), writing the verifier log into `log`
/// (`log_level` 1 when `log` is not empty).
pub(crate) fn prog_load(
    prog_type: u32,
    expected_attach_type: u32,
    prog_flags: u32,
    insns: &[u8],
    license: &str,
    log: &mut [u8],
) -> Result<ProgFd, Errno> {
    load(
        prog_type,
        expected_attach_type,
        prog_flags,
        0,
        insns,
        license,
        log,
    )
}

/// BPF_PROG_LOAD of a BTF-attached program (`BPF_PROG_TYPE_TRACING`): [`prog_load`] with
/// `attach_btf_id`, a type id of the kernel's own BTF (vmlinux).
pub(crate) fn prog_load_attach_btf(
    prog_type: u32,
    expected_attach_type: u32,
    attach_btf_id: u32,
    insns: &[u8],
    license: &str,
    log: &mut [u8],
) -> Result<ProgFd, Errno> {
    load(
        prog_type,
        expected_attach_type,
        0,
        attach_btf_id,
        insns,
        license,
        log,
    )
}

/// BPF_PROG_LOAD with every field the two loaders above set (`attach_btf_id` 0: none).
fn load(
    prog_type: u32,
    expected_attach_type: u32,
    prog_flags: u32,
    attach_btf_id: u32,
    insns: &[u8],
    license: &str,
    log: &mut [u8],
) -> Result<ProgFd, Errno> {
    if insns.is_empty() || insns.len() % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let insn_cnt = u32::try_from(insns.len() / 8).map_err(|_| Errno::E2BIG)?;
    let log_size = u32::try_from(log.len()).map_err(|_| Errno::EINVAL)?;
    let license = CString::new(license).map_err(|_| Errno::EINVAL)?;
    let mut attr = Attr::new();
    attr.u32(0, prog_type)
        .u32(4, insn_cnt)
        .ptr(8, Some(insns))
        .u64(16, license.as_ptr() as u64)
        .u32(44, prog_flags)
        .u32(68, expected_attach_type)
        .u32(108, attach_btf_id);
    if !log.is_empty() {
        attr.u32(24, 1).u32(28, log_size).mut_ptr(32, Some(log));
    }
    // SAFETY: `insns` holds insn_cnt * 8 bytes, `license` is NUL-terminated, the log buffer
    // holds log_size bytes; all live for the call.
    let ret = unsafe { bpf(Cmd::ProgLoad, &mut attr) }?;
    own_fd(ret).map(ProgFd)
}

/// The in/out fields of BPF_PROG_TEST_RUN. Empty buffers are passed as NULL.
#[derive(Debug)]
pub(crate) struct TestRunArgs<'a> {
    pub data_in: &'a [u8],
    pub data_out: &'a mut [u8],
    pub ctx_in: &'a [u8],
    pub ctx_out: &'a mut [u8],
    pub repeat: u32,
    pub flags: u32,
    pub cpu: u32,
}

/// What BPF_PROG_TEST_RUN wrote back into the attr.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestRunResult {
    pub retval: u32,
    pub duration: u32,
    pub data_size_out: u32,
    pub ctx_size_out: u32,
}

/// BPF_PROG_TEST_RUN.
pub(crate) fn prog_test_run(
    prog: &ProgFd,
    args: TestRunArgs<'_>,
) -> (Result<(), Errno>, TestRunResult) {
    let len = |n: usize| u32::try_from(n).map_err(|_| Errno::EINVAL);
    let sizes = (|| {
        Ok::<_, Errno>((
            len(args.data_in.len())?,
            len(args.data_out.len())?,
            len(args.ctx_in.len())?,
            len(args.ctx_out.len())?,
        ))
    })();
    let zero = TestRunResult {
        retval: 0,
        duration: 0,
        data_size_out: 0,
        ctx_size_out: 0,
    };
    let (din, dout, cin, cout) = match sizes {
        Ok(s) => s,
        Err(e) => return (Err(e), zero),
    };
    let nonempty = |b: &[u8]| !b.is_empty();
    let mut attr = Attr::new();
    attr.u32(0, prog.0.as_raw_fd() as u32)
        .u32(8, din)
        .u32(12, dout)
        .ptr(16, Some(args.data_in).filter(|b| nonempty(b)))
        .mut_ptr(24, Some(args.data_out).filter(|b| nonempty(b)))
        .u32(32, args.repeat)
        .u32(40, cin)
        .u32(44, cout)
        .ptr(48, Some(args.ctx_in).filter(|b| nonempty(b)))
        .mut_ptr(56, Some(args.ctx_out).filter(|b| nonempty(b)))
        .u32(64, args.flags)
        .u32(68, args.cpu);
    // SAFETY: each buffer is passed with its exact length as the size field and is NULL when
    // empty (so the kernel never writes through a pointer with size 0); the kernel writes at
    // most data_size_out / ctx_size_out bytes; all buffers live for the call.
    let res = unsafe { bpf(Cmd::ProgTestRun, &mut attr) }.map(drop);
    let out = TestRunResult {
        retval: attr.get_u32(4),
        duration: attr.get_u32(36),
        data_size_out: attr.get_u32(12),
        ctx_size_out: attr.get_u32(44),
    };
    (res, out)
}

/// BPF_PROG_TEST_RUN of a program whose runner writes the context back into `ctx_in`
/// (`BPF_PROG_TYPE_SYSCALL`): only `ctx_in`, passed writable; `retval` or the errno.
pub(crate) fn prog_test_run_ctx_in_out(prog: &ProgFd, ctx: &mut [u8]) -> Result<u32, Errno> {
    let cin = u32::try_from(ctx.len()).map_err(|_| Errno::EINVAL)?;
    let mut attr = Attr::new();
    attr.u32(0, prog.0.as_raw_fd() as u32)
        .u32(40, cin)
        .mut_ptr(48, Some(ctx).filter(|b| !b.is_empty()));
    // SAFETY: the context is passed writable with its exact length (NULL when empty); the
    // kernel writes at most ctx_size_in bytes back into it; it lives for the call.
    unsafe { bpf(Cmd::ProgTestRun, &mut attr) }?;
    Ok(attr.get_u32(4))
}

/// Pins the calling thread to `cpu` (sched_setaffinity).
pub(crate) fn pin_current_thread(cpu: u32) -> Result<(), Errno> {
    if cpu as usize >= libc::CPU_SETSIZE as usize {
        return Err(Errno::EINVAL);
    }
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu < CPU_SETSIZE` was checked, so the bit lies inside `set`.
    unsafe { libc::CPU_SET(cpu as usize, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if ret != 0 {
        return Err(Errno(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ));
    }
    Ok(())
}

/// The CPU the calling thread runs on now.
pub(crate) fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// A map created for a verifier test, with any `BPF_MAP_TYPE_*` number (no element
/// operations besides [`raw_map_fill`]).
#[derive(Debug)]
pub(crate) struct RawMapFd {
    fd: OwnedFd,
    key_size: u32,
    value_size: u32,
}

impl RawMapFd {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// BPF_MAP_CREATE with a raw type number (no BTF, no name).
pub(crate) fn raw_map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
) -> Result<RawMapFd, Errno> {
    let mut attr = Attr::new();
    attr.u32(0, map_type)
        .u32(4, key_size)
        .u32(8, value_size)
        .u32(12, max_entries)
        .u32(16, map_flags);
    // SAFETY: MAP_CREATE without name/BTF reads no user pointers.
    let ret = unsafe { bpf(Cmd::MapCreate, &mut attr) }?;
    Ok(RawMapFd {
        fd: own_fd(ret)?,
        key_size,
        value_size,
    })
}

/// Writes `value` at key 0 (a `u32` key) of a non-per-CPU map, then freezes it when asked.
pub(crate) fn raw_map_fill(map: &RawMapFd, value: &[u8], freeze: bool) -> Result<(), Errno> {
    if map.key_size != 4 || value.len() != map.value_size as usize {
        return Err(Errno::EINVAL);
    }
    let key = 0u32.to_ne_bytes();
    let mut attr = Attr::new();
    attr.u32(0, map.fd.as_raw_fd() as u32)
        .u64(8, key.as_ptr() as u64)
        .u64(16, value.as_ptr() as u64);
    // SAFETY: the key is 4 bytes (the map's key_size) and the value value_size bytes, both
    // live for the call; the map is not per-CPU (the caller creates arrays only).
    unsafe { bpf(Cmd::MapUpdateElem, &mut attr) }?;
    if freeze {
        let mut attr = Attr::new();
        attr.u32(0, map.fd.as_raw_fd() as u32);
        // SAFETY: MAP_FREEZE reads only the fd.
        unsafe { bpf(Cmd::MapFreeze, &mut attr) }?;
    }
    Ok(())
}

/// `BPF_PROG_TYPE_SYSCALL`.
const BPF_PROG_TYPE_SYSCALL: u32 = 31;
/// `BPF_F_SLEEPABLE`.
const BPF_F_SLEEPABLE: u32 = 1 << 4;

/// BPF_PROG_LOAD with `log_level` (4 = statistics and error messages only, no trace),
/// returning the errno and what the kernel wrote into `log`. Syscall programs are loaded
/// sleepable (`BPF_F_SLEEPABLE`), as they must be. `func_info`: a BTF object and its
/// `bpf_func_info` records (8 bytes each: instruction offset, `BTF_KIND_FUNC` id).
pub(crate) fn prog_load_level(
    prog_type: u32,
    expected_attach_type: u32,
    insns: &[u8],
    license: &str,
    log_level: u32,
    log: &mut [u8],
    func_info: Option<(&BtfFd, &[u8])>,
) -> Result<ProgFd, Errno> {
    if insns.is_empty() || insns.len() % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let insn_cnt = u32::try_from(insns.len() / 8).map_err(|_| Errno::E2BIG)?;
    let log_size = u32::try_from(log.len()).map_err(|_| Errno::EINVAL)?;
    let license = CString::new(license).map_err(|_| Errno::EINVAL)?;
    let mut attr = Attr::new();
    attr.u32(0, prog_type)
        .u32(4, insn_cnt)
        .ptr(8, Some(insns))
        .u64(16, license.as_ptr() as u64)
        .u32(68, expected_attach_type);
    if prog_type == BPF_PROG_TYPE_SYSCALL {
        // "Syscall programs can only be sleepable": libbpf loads SEC("syscall") so.
        attr.u32(44, BPF_F_SLEEPABLE);
    }
    if let Some((btf, recs)) = func_info {
        let cnt = u32::try_from(recs.len() / 8).map_err(|_| Errno::E2BIG)?;
        attr.u32(72, btf.raw() as u32)
            .u32(76, 8)
            .ptr(80, Some(recs))
            .u32(88, cnt);
    }
    if !log.is_empty() {
        attr.u32(24, log_level)
            .u32(28, log_size)
            .mut_ptr(32, Some(log));
    }
    // SAFETY: `insns` holds insn_cnt * 8 bytes, `license` is NUL-terminated, the log buffer
    // holds log_size bytes, the func_info records func_info_cnt * 8 bytes; all live for
    // the call.
    let ret = unsafe { bpf(Cmd::ProgLoad, &mut attr) }?;
    own_fd(ret).map(ProgFd)
}

/// `CAP_SYS_ADMIN`.
const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_PERFMON`.
const CAP_PERFMON: u32 = 38;

/// Removes `CAP_SYS_ADMIN` and `CAP_PERFMON` from the calling thread's effective
/// capabilities (capabilities are per thread), keeping `CAP_BPF` and `CAP_NET_ADMIN`: the
/// least privilege that loads networking programs. Call it on a thread of its own.
pub(crate) fn drop_to_cap_bpf() -> Result<(), Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut hdr = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` records for version 3; both are ours and live.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) };
    if r != 0 {
        return Err(last_errno());
    }
    for cap in [CAP_SYS_ADMIN, CAP_PERFMON] {
        data[(cap / 32) as usize].effective &= !(1 << (cap % 32));
    }
    // SAFETY: capset reads the header and two `Data` records, all live; it changes only the
    // calling thread's credentials.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) };
    if r != 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// The effective uid of the process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
