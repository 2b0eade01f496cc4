//! CGROUP_ARRAY: cgroups by index, for `bpf_skb_under_cgroup` (helper 33) and
//! `bpf_current_task_under_cgroup` (helper 37), as kernel/bpf/arraymap.c's
//! `cgroup_array_map_ops` keeps them.
//!
//! | operation | kernel rule (and bpfvm's) |
//! |---|---|
//! | create | `value_size` must be 4, no `BPF_F_RDONLY_PROG`/`BPF_F_WRONLY_PROG`, then the array checks (`EINVAL`) |
//! | update | flags other than `BPF_ANY` `EINVAL`; index `>= max_entries` `E2BIG`; then the cgroup fd (`EBADF` when it is not one) |
//! | lookup (host) | `ENOTSUPP` (524): an fd array without `map_fd_sys_lookup_elem` |
//! | delete | index `>= max_entries` `E2BIG`; empty `ENOENT` |
//! | `get_next_key` | every index, as an array |
//! | programs | cannot look up, update or delete (the verifier allows only helpers 33 and 37) |
//!
//! The kernel stores a cgroup *fd* on update (an open cgroup2 directory); bpfvm has no
//! cgroups, so a slot holds a **simulated cgroup id** (a `u64`, as `bpf_get_current_cgroup_id`
//! would report it; the cgroup2 root is id 1), stored with [`Map::cgroup_array_update`].
//! Who is under which cgroup is said by the VM: a task or a packet's socket belongs to a
//! cgroup *path*, the ids from the root down (`[1, 7, 9]`: cgroup 9, child of 7, child of the
//! root), and "under cgroup `c`" means `c` is on that path (`cgroup_is_descendant`). The
//! byte-level [`Map::update`] answers `EBADF` (no value is an open cgroup fd here).
//!
//! ```
//! use bpfvm_maps::{Map, MapSpec, MapType};
//!
//! let cgroups = Map::create(MapSpec::new(MapType::CgroupArray, 4, 4, 2), 1)?;
//! cgroups.cgroup_array_update(0, 7, 0)?;
//! assert_eq!(cgroups.cgroup_array_get(0)?, Some(7));
//! assert_eq!(cgroups.cgroup_array_get(1)?, None);
//! // Index 2 of a 2-entry array: E2BIG, as for the helpers.
//! assert_eq!(cgroups.cgroup_array_get(2).unwrap_err().errno(), 7);
//! // A host lookup is ENOTSUPP (524), as in the kernel.
//! let mut v = [0u8; 4];
//! assert_eq!(cgroups.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap_err().errno(), 524);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::error::MapError;
use crate::flags::create;
use crate::map::{Kind, Map, Perm};
use crate::spec::MapSpec;

/// The id of the cgroup2 root (`cgrp_dfl_root`), where every task and socket is unless
/// told otherwise.
pub const ROOT_CGROUP_ID: u64 = 1;

/// The filled slots: index → simulated cgroup id.
#[derive(Debug, Default)]
pub(crate) struct CgroupArrayState {
    slots: RwLock<BTreeMap<u32, u64>>,
}

/// `fd_array_map_alloc_check`, then `array_map_alloc_check`.
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    if spec.value_size != 4 {
        return Err(MapError::InvalidSpec {
            reason: "CGROUP_ARRAY value_size must be 4 (a cgroup fd)",
        });
    }
    if spec.map_flags & (create::RDONLY_PROG | create::WRONLY_PROG) != 0 {
        return Err(MapError::InvalidSpec {
            reason: "BPF_F_RDONLY_PROG / BPF_F_WRONLY_PROG on a CGROUP_ARRAY",
        });
    }
    crate::array::check_create(spec)
}

/// Bytes the kernel's array of cgroup pointers takes (what the map is charged).
pub(crate) fn bookkeeping_bytes(spec: &MapSpec) -> u64 {
    u64::from(spec.max_entries) * 8
}

/// Whether a task or socket whose cgroup path (ids from the root down) is `path` is in
/// cgroup `cgroup` or one of its descendants (`cgroup_is_descendant`).
pub fn path_is_under(path: &[u64], cgroup: u64) -> bool {
    path.contains(&cgroup)
}

fn index_of(key: &[u8]) -> u32 {
    u32::from_ne_bytes([key[0], key[1], key[2], key[3]])
}

impl Map {
    fn cgroup_state(&self) -> Result<&CgroupArrayState, MapError> {
        match &self.kind {
            Kind::CgroupArray(s) => Ok(s),
            _ => Err(MapError::InvalidOperation {
                op: "a CGROUP_ARRAY operation",
                map_type: self.spec.map_type,
            }),
        }
    }

    fn cgroup_index(&self, index: u32) -> Result<(), MapError> {
        if index >= self.spec.max_entries {
            return Err(MapError::IndexOutOfRange {
                index,
                max_entries: self.spec.max_entries,
            });
        }
        Ok(())
    }

    /// `BPF_MAP_UPDATE_ELEM` with a cgroup: stores simulated cgroup id `cgroup` at
    /// `index`. In the kernel's order: write permission (`EPERM`), flags other than
    /// `BPF_ANY` (`EINVAL`), `index >= max_entries` (`E2BIG`).
    pub fn cgroup_array_update(&self, index: u32, cgroup: u64, flags: u64) -> Result<(), MapError> {
        let s = self.cgroup_state()?;
        self.check_perm(Perm::Write)?;
        if flags != 0 {
            return Err(MapError::flags(
                flags,
                "a CGROUP_ARRAY update takes BPF_ANY only",
            ));
        }
        self.cgroup_index(index)?;
        s.slots
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index, cgroup);
        Ok(())
    }

    /// The cgroup at `index`, as helpers 33 and 37 read it: `Ok(None)` for an empty slot
    /// (the helpers' `-EAGAIN`), `E2BIG` ([`MapError::IndexOutOfRange`]) past
    /// `max_entries`.
    pub fn cgroup_array_get(&self, index: u32) -> Result<Option<u64>, MapError> {
        let s = self.cgroup_state()?;
        self.cgroup_index(index)?;
        Ok(s.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&index)
            .copied())
    }

    /// Host update from bytes: the value would be a cgroup fd, which bpfvm has not.
    pub(crate) fn cgroup_array_update_bytes(&self, key: &[u8], flags: u64) -> Result<(), MapError> {
        if flags != 0 {
            return Err(MapError::flags(
                flags,
                "a CGROUP_ARRAY update takes BPF_ANY only",
            ));
        }
        self.cgroup_index(index_of(key))?;
        Err(MapError::BadFd {
            reason: "bpfvm has no cgroup fds: store a simulated cgroup id with \
                     Map::cgroup_array_update",
        })
    }

    /// Host delete: `E2BIG` past `max_entries`, `ENOENT` for an empty slot.
    pub(crate) fn cgroup_array_delete(&self, key: &[u8]) -> Result<(), MapError> {
        let index = index_of(key);
        self.cgroup_index(index)?;
        let s = self.cgroup_state()?;
        match s
            .slots
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&index)
        {
            Some(_) => Ok(()),
            None => Err(MapError::NotFound),
        }
    }

    /// Filled slots.
    pub(crate) fn cgroup_array_count(&self) -> u32 {
        self.cgroup_state().map_or(0, |s| {
            s.slots.read().unwrap_or_else(|p| p.into_inner()).len() as u32
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MapType;

    fn map(max: u32) -> Map {
        Map::create(MapSpec::new(MapType::CgroupArray, 4, 4, max), 2).unwrap()
    }

    #[test]
    fn creation_follows_the_fd_array_checks() {
        let bad = |ks, vs, max, flags| {
            Map::create(
                MapSpec::new(MapType::CgroupArray, ks, vs, max).with_flags(flags),
                1,
            )
            .unwrap_err()
            .errno()
        };
        assert_eq!(bad(4, 8, 4, 0), 22);
        assert_eq!(bad(4, 4, 0, 0), 22);
        assert_eq!(bad(8, 4, 4, 0), 22);
        assert_eq!(bad(4, 4, 4, create::RDONLY_PROG), 22);
        assert_eq!(bad(4, 4, 4, create::MMAPABLE), 22);
        assert!(Map::create(MapSpec::new(MapType::CgroupArray, 4, 4, 4), 1).is_ok());
    }

    #[test]
    fn host_commands_answer_as_the_kernel() {
        let m = map(3);
        let mut v = [0u8; 4];
        assert_eq!(
            m.lookup(&0u32.to_ne_bytes(), &mut v, 0)
                .unwrap_err()
                .errno(),
            524
        );
        assert_eq!(
            m.update(&0u32.to_ne_bytes(), &[3, 0, 0, 0], 0)
                .unwrap_err()
                .errno(),
            9
        );
        assert_eq!(
            m.update(&3u32.to_ne_bytes(), &[3, 0, 0, 0], 0)
                .unwrap_err()
                .errno(),
            7
        );
        assert_eq!(
            m.update(&0u32.to_ne_bytes(), &[3, 0, 0, 0], 1)
                .unwrap_err()
                .errno(),
            22
        );
        assert_eq!(m.delete(&0u32.to_ne_bytes(), 0).unwrap_err().errno(), 2);
        assert_eq!(m.delete(&3u32.to_ne_bytes(), 0).unwrap_err().errno(), 7);
        m.cgroup_array_update(1, 42, 0).unwrap();
        assert_eq!(m.element_count(), 1);
        assert_eq!(m.cgroup_array_update(1, 42, 2).unwrap_err().errno(), 22);
        assert_eq!(m.cgroup_array_update(3, 42, 0).unwrap_err().errno(), 7);
        m.delete(&1u32.to_ne_bytes(), 0).unwrap();
        assert_eq!(m.cgroup_array_get(1), Ok(None));
        let mut k = [0u8; 4];
        m.get_next_key(None, &mut k, 0).unwrap();
        assert_eq!(u32::from_ne_bytes(k), 0);
        m.get_next_key(Some(&1u32.to_ne_bytes()), &mut k, 0)
            .unwrap();
        assert_eq!(u32::from_ne_bytes(k), 2);
        assert_eq!(
            m.get_next_key(Some(&2u32.to_ne_bytes()), &mut k, 0)
                .unwrap_err()
                .errno(),
            2
        );
    }

    #[test]
    fn programs_cannot_use_the_array_and_paths_decide_membership() {
        let m = map(2);
        m.cgroup_array_update(0, 7, 0).unwrap();
        let cpu = crate::CpuId(0);
        assert!(m.prog_lookup_slot(cpu, &0u32.to_ne_bytes()).is_none());
        assert!(m.prog_update(cpu, &0u32.to_ne_bytes(), &[0; 4], 0).is_err());
        assert!(m.prog_delete(cpu, &0u32.to_ne_bytes()).is_err());
        assert!(path_is_under(&[1, 7, 9], 7));
        assert!(path_is_under(&[1, 7, 9], ROOT_CGROUP_ID));
        assert!(!path_is_under(&[1, 7], 9));
        assert!(!path_is_under(&[], 1));
    }
}
