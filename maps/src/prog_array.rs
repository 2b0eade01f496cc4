//! PROG_ARRAY: the targets of `bpf_tail_call` (helper 12), as kernel/bpf/arraymap.c's
//! `prog_array_map_ops` keeps them.
//!
//! | operation | kernel rule (and bpfvm's) |
//! |---|---|
//! | create | `value_size` must be 4, no `BPF_F_RDONLY_PROG`/`BPF_F_WRONLY_PROG`, then the array checks (`EINVAL`) |
//! | update | flags other than `BPF_ANY` `EINVAL`; index `>= max_entries` `E2BIG`; a program of another type than the map's owner `EINVAL` |
//! | lookup (host) | the program's **id** (not the fd it was stored with); empty or out of range `ENOENT` |
//! | delete | index `>= max_entries` `E2BIG`; empty `ENOENT` |
//! | `get_next_key` | every index, as an array |
//! | programs | cannot look up, update or delete (the verifier allows only `bpf_tail_call`) |
//!
//! The kernel stores a program *fd* on update; bpfvm has no file descriptors, so a program
//! is stored with [`Map::prog_array_update`] as a [`ProgEntry`] (the VM makes one from a
//! loaded program). The byte-level [`Map::update`] therefore answers `EBADF` (no value is
//! an open program fd here).
//!
//! The **owner**: the first program that uses the map (loaded with it, or stored in it)
//! fixes the program type every later one must have (`bpf_prog_map_compatible`); bpfvm
//! compares the type only (the kernel also compares JIT state, XDP frags, and attach
//! details of tracing programs).
//!
//! A slot holds its program alive (`Arc`), as the kernel's array holds a reference. A
//! program that is in a PROG_ARRAY it uses itself (or a cycle of programs through arrays)
//! would keep itself alive for ever; the kernel breaks that with the map's *user* count
//! (`usercnt`: file descriptors and pins, not the programs that use the map): when the last
//! user file closes, `map_release_uref` empties the array (`prog_array_map_clear`). bpfvm
//! has the same two counts: the `Arc<Map>`s the host holds are the map's users, and a
//! loaded program holds the map through [`Map::prog_array_program_ref`], a second `Map`
//! that shares the slots without being a user. When the last user `Map` is dropped, the
//! slots are emptied, so the programs in them are released while the programs holding the
//! array see it empty (a tail call falls through), as in the kernel.
//! [`Map::prog_array_clear`] empties the array at any time.
//!
//! ```
//! use std::sync::Arc;
//! use bpfvm_maps::{Map, MapSpec, MapType, ProgEntry};
//!
//! let jmp = Map::create(MapSpec::new(MapType::ProgArray, 4, 4, 2), 1)?;
//! let prog = ProgEntry { id: 7, prog_type: 6, program: Arc::new("an XDP program") };
//! jmp.prog_array_update(0, prog, 0)?;
//! let mut id = [0u8; 4];
//! jmp.lookup(&0u32.to_ne_bytes(), &mut id, 0)?;
//! assert_eq!(u32::from_ne_bytes(id), 7); // the program id, as the kernel answers
//! // A socket filter (type 1) in an XDP program's array: EINVAL.
//! let other = ProgEntry { id: 8, prog_type: 1, program: Arc::new(()) };
//! assert_eq!(jmp.prog_array_update(1, other, 0).unwrap_err().errno(), 22);
//! // Index 2 of a 2-entry array: E2BIG; an empty slot: ENOENT.
//! let again = ProgEntry { id: 7, prog_type: 6, program: Arc::new(()) };
//! assert_eq!(jmp.prog_array_update(2, again, 0).unwrap_err().errno(), 7);
//! assert_eq!(jmp.delete(&1u32.to_ne_bytes(), 0).unwrap_err().errno(), 2);
//! # Ok::<(), bpfvm_maps::MapError>(())
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::error::MapError;
use crate::flags::create;
use crate::map::{Kind, Map, Perm};
use crate::spec::MapSpec;

/// A program as a PROG_ARRAY slot holds it.
#[derive(Clone)]
pub struct ProgEntry {
    /// The program's id: what a host lookup of the slot answers (the kernel's prog id).
    pub id: u32,
    /// The kernel program type number (`BPF_PROG_TYPE_*`), checked against the map's owner.
    pub prog_type: u32,
    /// The program itself, opaque to this crate (the VM stores its loaded program).
    pub program: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for ProgEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgEntry")
            .field("id", &self.id)
            .field("prog_type", &self.prog_type)
            .finish_non_exhaustive()
    }
}

/// The slots (only the filled ones) and the owner's program type.
#[derive(Debug, Default)]
pub(crate) struct ProgArrayState {
    slots: RwLock<BTreeMap<u32, ProgEntry>>,
    owner: Mutex<Option<u32>>,
}

/// A `Map`'s hold on a PROG_ARRAY's state: the user's map (created by `Map::create*`,
/// held by the host) or a loaded program's ([`Map::prog_array_program_ref`]). Dropping
/// the user's — the last `Arc<Map>` of the host — empties the slots (the kernel's
/// `map_release_uref`).
#[derive(Debug)]
pub(crate) struct ProgArrayRef {
    state: Arc<ProgArrayState>,
    user: bool,
}

impl ProgArrayRef {
    /// The state of a new array, held by its user.
    pub(crate) fn new_user() -> ProgArrayRef {
        ProgArrayRef {
            state: Arc::default(),
            user: true,
        }
    }
}

impl std::ops::Deref for ProgArrayRef {
    type Target = ProgArrayState;
    fn deref(&self) -> &ProgArrayState {
        &self.state
    }
}

impl Drop for ProgArrayRef {
    fn drop(&mut self) {
        if self.user {
            let old = std::mem::take(&mut *self.state.slots_mut());
            drop(old);
        }
    }
}

/// `fd_array_map_alloc_check`, then `array_map_alloc_check`.
pub(crate) fn check_create(spec: &MapSpec) -> Result<(), MapError> {
    if spec.value_size != 4 {
        return Err(MapError::InvalidSpec {
            reason: "PROG_ARRAY value_size must be 4 (a program fd)",
        });
    }
    if spec.map_flags & (create::RDONLY_PROG | create::WRONLY_PROG) != 0 {
        return Err(MapError::InvalidSpec {
            reason: "BPF_F_RDONLY_PROG / BPF_F_WRONLY_PROG on a PROG_ARRAY",
        });
    }
    crate::array::check_create(spec)
}

/// Bytes the kernel's array of program pointers takes (what the map is charged).
pub(crate) fn bookkeeping_bytes(spec: &MapSpec) -> u64 {
    u64::from(spec.max_entries) * 8
}

fn index_of(key: &[u8]) -> u32 {
    u32::from_ne_bytes([key[0], key[1], key[2], key[3]])
}

impl Map {
    /// The PROG_ARRAY as a loaded program holds it (the kernel's map reference without a
    /// user reference): a `Map` with the same id, spec and slots, whose drop empties
    /// nothing; the slots are emptied when the user's map — the one `Map::create` made —
    /// is dropped. `None` for other map types. A VM's `load` gives each program this for
    /// its PROG_ARRAYs, so that a program stored in an array it uses does not keep itself
    /// alive after the host dropped the array.
    pub fn prog_array_program_ref(&self) -> Option<Map> {
        let Kind::ProgArray(s) = &self.kind else {
            return None;
        };
        let state = Arc::clone(&s.state);
        self.shell(Kind::ProgArray(ProgArrayRef { state, user: false }))
    }

    fn prog_state(&self) -> Result<&ProgArrayState, MapError> {
        match &self.kind {
            Kind::ProgArray(s) => Ok(s),
            _ => Err(MapError::InvalidOperation {
                op: "a PROG_ARRAY operation",
                map_type: self.spec.map_type,
            }),
        }
    }

    /// Makes `prog_type` the map's owner type if it has none; `EINVAL` if the owner is of
    /// another type (`bpf_prog_map_compatible`). A VM calls it when it loads a program that
    /// uses the map; [`Map::prog_array_update`] calls it for the program stored.
    pub fn prog_array_claim(&self, prog_type: u32) -> Result<(), MapError> {
        let s = self.prog_state()?;
        let mut owner = s.owner.lock().unwrap_or_else(|p| p.into_inner());
        match *owner {
            None => {
                *owner = Some(prog_type);
                Ok(())
            }
            Some(t) if t == prog_type => Ok(()),
            Some(_) => Err(MapError::InvalidSpec {
                reason: "the program's type differs from the PROG_ARRAY owner's (bpf_prog_map_compatible)",
            }),
        }
    }

    /// The owner's program type, once a program has claimed the map.
    pub fn prog_array_owner(&self) -> Option<u32> {
        let s = self.prog_state().ok()?;
        *s.owner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `BPF_MAP_UPDATE_ELEM` with a program: stores `entry` at `index`, replacing what was
    /// there. In the kernel's order: write permission (`EPERM`), flags other than
    /// `BPF_ANY` (`EINVAL`), `index >= max_entries` (`E2BIG`), a type other than the owner's
    /// (`EINVAL`).
    pub fn prog_array_update(
        &self,
        index: u32,
        entry: ProgEntry,
        flags: u64,
    ) -> Result<(), MapError> {
        let s = self.prog_state()?;
        self.check_perm(Perm::Write)?;
        self.check_flags(flags, !0)?;
        if flags != 0 {
            return Err(MapError::flags(
                flags,
                "a PROG_ARRAY update takes BPF_ANY only",
            ));
        }
        self.prog_index(index)?;
        self.prog_array_claim(entry.prog_type)?;
        let old = s.slots_mut().insert(index, entry);
        drop(old); // outside the lock: it may be the last reference to a program
        Ok(())
    }

    /// The program at `index` (what `bpf_tail_call` jumps to), if the slot is filled.
    #[inline]
    pub fn prog_array_get(&self, index: u32) -> Option<ProgEntry> {
        let Kind::ProgArray(s) = &self.kind else {
            return None;
        };
        s.slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&index)
            .cloned()
    }

    /// Empties every slot (the kernel's `prog_array_map_clear` when the map's last user file
    /// closes); breaks the reference cycle of a program stored in an array it uses.
    pub fn prog_array_clear(&self) {
        if let Ok(s) = self.prog_state() {
            let old = std::mem::take(&mut *s.slots_mut());
            drop(old);
        }
    }

    fn prog_index(&self, index: u32) -> Result<(), MapError> {
        if index >= self.spec.max_entries {
            return Err(MapError::IndexOutOfRange {
                index,
                max_entries: self.spec.max_entries,
            });
        }
        Ok(())
    }

    /// Host lookup: the program's id (`ENOENT` when empty or out of range).
    pub(crate) fn prog_array_lookup(&self, key: &[u8], out: &mut [u8]) -> Result<(), MapError> {
        let out = Map::buf_out("value", out, 4)?;
        let e = self
            .prog_array_get(index_of(key))
            .ok_or(MapError::NotFound)?;
        out.copy_from_slice(&e.id.to_ne_bytes());
        Ok(())
    }

    /// Host update from bytes: the value would be a program fd, which bpfvm has not.
    pub(crate) fn prog_array_update_bytes(&self, key: &[u8], flags: u64) -> Result<(), MapError> {
        if flags != 0 {
            return Err(MapError::flags(
                flags,
                "a PROG_ARRAY update takes BPF_ANY only",
            ));
        }
        self.prog_index(index_of(key))?;
        Err(MapError::BadFd {
            reason: "bpfvm has no program fds: store a program with Map::prog_array_update \
                     (LoadedProgram::set_in_prog_array in bpfvm)",
        })
    }

    /// Host delete: `E2BIG` past `max_entries`, `ENOENT` for an empty slot.
    pub(crate) fn prog_array_delete(&self, key: &[u8]) -> Result<(), MapError> {
        let index = index_of(key);
        self.prog_index(index)?;
        let old = self.prog_state()?.slots_mut().remove(&index);
        match old {
            Some(e) => {
                drop(e);
                Ok(())
            }
            None => Err(MapError::NotFound),
        }
    }

    /// Filled slots.
    pub(crate) fn prog_array_count(&self) -> u32 {
        self.prog_state().map_or(0, |s| {
            s.slots.read().unwrap_or_else(|p| p.into_inner()).len() as u32
        })
    }
}

impl ProgArrayState {
    fn slots_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u32, ProgEntry>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::MapType;

    fn map(max: u32) -> Map {
        Map::create(MapSpec::new(MapType::ProgArray, 4, 4, max), 2).unwrap()
    }

    fn entry(id: u32, prog_type: u32) -> ProgEntry {
        ProgEntry {
            id,
            prog_type,
            program: Arc::new(id),
        }
    }

    #[test]
    fn creation_checks_value_size_and_prog_flags_first() {
        let bad = |ks, vs, max, flags| {
            Map::create(
                MapSpec::new(MapType::ProgArray, ks, vs, max).with_flags(flags),
                1,
            )
            .unwrap_err()
            .errno()
        };
        assert_eq!(bad(4, 8, 4, 0), 22);
        assert_eq!(bad(4, 4, 0, 0), 22);
        assert_eq!(bad(8, 4, 4, 0), 22);
        assert_eq!(bad(4, 4, 4, create::RDONLY_PROG), 22);
        assert_eq!(bad(4, 4, 4, create::WRONLY_PROG), 22);
        assert_eq!(bad(4, 4, 4, create::MMAPABLE), 22);
        assert!(Map::create(MapSpec::new(MapType::ProgArray, 4, 4, 4), 1).is_ok());
    }

    #[test]
    fn slots_hold_programs_and_lookups_give_ids() {
        let m = map(4);
        m.prog_array_update(1, entry(42, 3), 0).unwrap();
        let mut v = [0u8; 4];
        m.lookup(&1u32.to_ne_bytes(), &mut v, 0).unwrap();
        assert_eq!(u32::from_ne_bytes(v), 42);
        assert_eq!(
            m.lookup(&0u32.to_ne_bytes(), &mut v, 0),
            Err(MapError::NotFound)
        );
        assert_eq!(
            m.lookup(&9u32.to_ne_bytes(), &mut v, 0),
            Err(MapError::NotFound)
        );
        assert_eq!(m.element_count(), 1);
        let got = m.prog_array_get(1).unwrap();
        assert_eq!(got.program.downcast_ref::<u32>(), Some(&42));
        // Replacing keeps one element.
        m.prog_array_update(1, entry(43, 3), 0).unwrap();
        assert_eq!(m.prog_array_get(1).unwrap().id, 43);
        assert_eq!(m.element_count(), 1);
    }

    #[test]
    fn update_errors_follow_the_kernel_order() {
        let m = map(2);
        assert_eq!(
            m.prog_array_update(0, entry(1, 6), 1).unwrap_err().errno(),
            22
        );
        assert_eq!(
            m.prog_array_update(0, entry(1, 6), 2).unwrap_err().errno(),
            22
        );
        assert_eq!(
            m.prog_array_update(2, entry(1, 6), 0).unwrap_err().errno(),
            7
        );
        m.prog_array_update(0, entry(1, 6), 0).unwrap();
        assert_eq!(m.prog_array_owner(), Some(6));
        assert_eq!(
            m.prog_array_update(1, entry(2, 1), 0).unwrap_err().errno(),
            22
        );
        assert_eq!(m.prog_array_claim(1).unwrap_err().errno(), 22);
        assert!(m.prog_array_claim(6).is_ok());
        // Bytes are a program fd, which bpfvm has not.
        assert_eq!(
            m.update(&0u32.to_ne_bytes(), &[3, 0, 0, 0], 0)
                .unwrap_err()
                .errno(),
            9
        );
        assert_eq!(
            m.update(&5u32.to_ne_bytes(), &[3, 0, 0, 0], 0)
                .unwrap_err()
                .errno(),
            7
        );
    }

    #[test]
    fn delete_and_next_key_and_clear() {
        let m = map(3);
        assert_eq!(m.delete(&0u32.to_ne_bytes(), 0).unwrap_err().errno(), 2);
        assert_eq!(m.delete(&3u32.to_ne_bytes(), 0).unwrap_err().errno(), 7);
        m.prog_array_update(2, entry(5, 6), 0).unwrap();
        m.delete(&2u32.to_ne_bytes(), 0).unwrap();
        assert!(m.prog_array_get(2).is_none());
        let mut k = [0u8; 4];
        m.get_next_key(None, &mut k, 0).unwrap();
        assert_eq!(u32::from_ne_bytes(k), 0);
        m.get_next_key(Some(&1u32.to_ne_bytes()), &mut k, 0)
            .unwrap();
        assert_eq!(u32::from_ne_bytes(k), 2);
        assert!(m
            .get_next_key(Some(&2u32.to_ne_bytes()), &mut k, 0)
            .is_err());
        m.prog_array_update(0, entry(5, 6), 0).unwrap();
        m.prog_array_clear();
        assert_eq!(m.element_count(), 0);
    }

    #[test]
    fn the_user_map_s_drop_empties_the_slots_a_program_ref_s_does_not() {
        let user = map(2);
        let held = user.prog_array_program_ref().unwrap();
        assert_eq!((held.id(), held.spec()), (user.id(), user.spec()));
        user.prog_array_update(0, entry(5, 6), 0).unwrap();
        // The same slots and owner through either.
        assert_eq!(held.prog_array_get(0).unwrap().id, 5);
        held.prog_array_update(1, entry(6, 6), 0).unwrap();
        assert_eq!(user.element_count(), 2);
        assert_eq!(held.prog_array_owner(), Some(6));
        let program = user.prog_array_get(0).unwrap().program;
        let weak = Arc::downgrade(&program);
        drop(program);
        // Another program's hold going away changes nothing.
        drop(user.prog_array_program_ref());
        assert_eq!(user.element_count(), 2);
        drop(user);
        assert_eq!(held.element_count(), 0);
        assert!(weak.upgrade().is_none());
        // Other map types have no program ref.
        let array = Map::create(MapSpec::new(MapType::Array, 4, 4, 1), 1).unwrap();
        assert!(array.prog_array_program_ref().is_none());
    }

    #[test]
    fn programs_cannot_use_the_array() {
        let m = map(2);
        m.prog_array_update(0, entry(5, 6), 0).unwrap();
        let cpu = crate::CpuId(0);
        assert!(m.prog_lookup_slot(cpu, &0u32.to_ne_bytes()).is_none());
        assert!(m.prog_update(cpu, &0u32.to_ne_bytes(), &[0; 4], 0).is_err());
    }
}
