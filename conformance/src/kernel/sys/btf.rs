//! BPF_BTF_LOAD and BPF_MAP_CREATE with BTF: what a map whose value holds a
//! `struct bpf_spin_lock` needs (the kernel finds the lock through BTF).

use std::os::fd::{AsRawFd, OwnedFd};

use super::{bpf, own_fd, Attr, MapFd, MapShape};
use crate::kernel::consts::Cmd;
use crate::kernel::errno::Errno;

/// A loaded BTF object's fd.
#[derive(Debug)]
pub(crate) struct BtfFd(OwnedFd);

impl BtfFd {
    /// The raw descriptor, for an attribute that names the BTF object.
    pub(crate) fn raw(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }
}

/// BPF_BTF_LOAD of the raw BTF blob `bytes` (header, types, strings), writing the kernel's
/// log (level 1) into `log` when it is not empty.
pub(crate) fn btf_load(bytes: &[u8], log: &mut [u8]) -> Result<BtfFd, Errno> {
    let size = u32::try_from(bytes.len()).map_err(|_| Errno::E2BIG)?;
    let log_size = u32::try_from(log.len()).map_err(|_| Errno::EINVAL)?;
    let mut attr = Attr::new();
    attr.ptr(0, Some(bytes)).u32(16, size);
    if !log.is_empty() {
        attr.mut_ptr(8, Some(log)).u32(20, log_size).u32(24, 1);
    }
    // SAFETY: `bytes` holds `size` bytes and the log buffer `log_size` bytes, both live for
    // the call; the kernel reads the first and writes at most `log_size` bytes of the second.
    let ret = unsafe { bpf(Cmd::BtfLoad, &mut attr) }?;
    own_fd(ret).map(BtfFd)
}

/// BPF_MAP_CREATE with `btf_fd`, `btf_key_type_id` and `btf_value_type_id`.
pub(crate) fn map_create_btf(
    shape: MapShape,
    btf: &BtfFd,
    key_type_id: u32,
    value_type_id: u32,
) -> Result<MapFd, Errno> {
    let mut attr = Attr::new();
    attr.u32(0, shape.map_type as u32)
        .u32(4, shape.key_size)
        .u32(8, shape.value_size)
        .u32(12, shape.max_entries)
        .u32(16, shape.map_flags)
        .u32(48, btf.0.as_raw_fd() as u32)
        .u32(52, key_type_id)
        .u32(56, value_type_id);
    // SAFETY: MAP_CREATE with BTF reads no user pointers, only the BTF object's fd.
    let ret = unsafe { bpf(Cmd::MapCreate, &mut attr) }?;
    Ok(MapFd {
        fd: own_fd(ret)?,
        shape,
    })
}
