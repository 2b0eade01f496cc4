//! BPF_MAP_CREATE of a map-in-map (with `inner_map_fd`) and a map's id
//! (BPF_OBJ_GET_INFO_BY_FD).

use super::{bpf, own_fd, Attr, MapFd, MapShape};
use crate::kernel::consts::Cmd;
use crate::kernel::errno::Errno;

/// BPF_MAP_CREATE with `inner_map_fd` (attr offset 20) set to `inner`.
pub(crate) fn map_create_of_maps(shape: MapShape, inner: &MapFd) -> Result<MapFd, Errno> {
    let mut attr = Attr::new();
    attr.u32(0, shape.map_type as u32)
        .u32(4, shape.key_size)
        .u32(8, shape.value_size)
        .u32(12, shape.max_entries)
        .u32(16, shape.map_flags)
        .u32(20, inner.raw() as u32);
    // SAFETY: MAP_CREATE without name/BTF reads no user pointers, only the inner map's fd.
    let ret = unsafe { bpf(Cmd::MapCreate, &mut attr) }?;
    Ok(MapFd {
        fd: own_fd(ret)?,
        shape,
    })
}

/// The id of `map` (`struct bpf_map_info.id`, at offset 4).
pub(crate) fn map_id(map: &MapFd) -> Result<u32, Errno> {
    // The first fields of `struct bpf_map_info` (type, id, key_size, value_size, ...).
    let mut info = [0u8; 80];
    let mut attr = Attr::new();
    attr.u32(0, map.raw() as u32)
        .u32(4, info.len() as u32)
        .mut_ptr(8, Some(&mut info));
    // SAFETY: the kernel writes at most `info_len` (80) bytes to `info`, which lives for
    // the call.
    unsafe { bpf(Cmd::ObjGetInfoByFd, &mut attr) }?;
    Ok(u32::from_ne_bytes([info[4], info[5], info[6], info[7]]))
}

/// [`super::raw_map_create`] of a map-in-map with `inner` as `inner_map_fd`.
pub(crate) fn raw_map_create_of_maps(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner: &super::RawMapFd,
) -> Result<super::RawMapFd, Errno> {
    raw_map_create_of_maps_fd(
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
        inner.raw(),
    )
}

/// [`raw_map_create_of_maps`] with the inner map template given by its fd (e.g. a map
/// created with BTF).
pub(crate) fn raw_map_create_of_maps_fd(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner: std::os::fd::RawFd,
) -> Result<super::RawMapFd, Errno> {
    let mut attr = Attr::new();
    attr.u32(0, map_type)
        .u32(4, key_size)
        .u32(8, value_size)
        .u32(12, max_entries)
        .u32(16, map_flags)
        .u32(20, inner as u32);
    // SAFETY: MAP_CREATE without name/BTF reads no user pointers, only the inner map's fd.
    let ret = unsafe { bpf(Cmd::MapCreate, &mut attr) }?;
    Ok(super::RawMapFd {
        fd: own_fd(ret)?,
        key_size,
        value_size,
    })
}
