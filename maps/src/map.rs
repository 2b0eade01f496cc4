//! [`Map`]: creation, the host-side ("syscall") API and the program-side entry points.
//!
//! Every host-side command follows the kernel's order of checks (spec §2): permissions
//! (`EPERM`), the flag check, the key copy, the value copy, then the per-map operation.
//! Host buffers are byte slices: a buffer shorter than the kernel would copy gives `EFAULT`;
//! a longer one is accepted and only its prefix is used (or written).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::arena::{Slab, ValueArena};
use crate::cgroup_storage::Storages;
use crate::error::MapError;
use crate::flags::{self, create, BPF_F_ALL_CPUS, BPF_F_CPU, BPF_F_LOCK};
use crate::hash::HashState;
use crate::memory::{Charge, MapMemory};
use crate::of_maps::OfMaps;
use crate::spec::{CpuId, MapSpec, MapType};

/// A BPF map shared by the host and by programs running on simulated CPUs.
///
/// Create it with [`Map::create`] and share it as `Arc<Map>`; it is `Send + Sync`. All value
/// memory is one arena ([`Map::arena`]) allocated at creation; pointers returned by the
/// `prog_*` functions stay valid for the map's lifetime. Keys and bookkeeping live behind a
/// lock; arena bytes are only ever accessed through relaxed atomics.
pub struct Map {
    pub(crate) spec: MapSpec,
    pub(crate) ncpus: u32,
    host_cpu: AtomicU32,
    frozen: AtomicBool,
    pub(crate) slab: Slab,
    /// Slots from one CPU's copy of an element to the next CPU's copy of it (per-CPU maps):
    /// the elements plus padding (see [`ValueArena`]).
    cpu_span: usize,
    pub(crate) kind: Kind,
    /// Offset of the value's `bpf_spin_lock`, if it has one.
    spin_lock: Option<u32>,
    /// Offset of the value's `bpf_timer`, if it has one.
    timer: Option<u32>,
    /// This map's footprint, charged to the [`MapMemory`] it was created in.
    charge: Charge,
    /// The map's id ([`Map::id`]).
    id: u32,
    /// Inner map template and held maps of a map-in-map (see [`crate::of_maps`]).
    pub(crate) of_maps: Option<Box<OfMaps>>,
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("id", &self.id)
            .field("spec", &self.spec)
            .field("ncpus", &self.ncpus)
            .field("elements", &self.element_count())
            .field("frozen", &self.is_frozen())
            .field("host_cpu", &self.host_cpu())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(crate) enum Kind {
    Array,
    Hash(Box<HashState>),
    Cgroup(Storages),
    Lpm(Box<crate::lpm::LpmTrie>),
    Queue(Box<crate::queue::QueueState>),
    Ringbuf(Box<crate::ringbuf::RingBuf>),
    PerfEvents(Box<crate::perf::PerfEventArray>),
    Redirect(Box<crate::redirect::RedirectState>),
    ProgArray(crate::prog_array::ProgArrayRef),
    StackTrace(Box<crate::stack_trace::StackTraceState>),
    CgroupArray(Box<crate::cgroup_array::CgroupArrayState>),
}

/// Where a value to write comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Src<'a> {
    /// Non-percpu: the value (`VS` bytes). Percpu: a full `SLOT * N` buffer.
    Full(&'a [u8]),
    /// Percpu only: the same `VS` bytes for every CPU.
    AllCpus(&'a [u8]),
    /// One CPU's copy (`VS` bytes); a new percpu element gets the other CPUs zeroed.
    Cpu(u32, &'a [u8]),
    /// `BPF_F_LOCK` on a map with a spin lock: the value, copied under the element's lock.
    Locked(&'a [u8]),
}

impl<'a> Src<'a> {
    pub(crate) fn from_host(flags: u64, buf: &'a [u8]) -> Src<'a> {
        if flags & BPF_F_LOCK != 0 {
            Src::Locked(buf)
        } else if flags & BPF_F_CPU != 0 {
            Src::Cpu(flags::cpu_of(flags), buf)
        } else if flags & BPF_F_ALL_CPUS != 0 {
            Src::AllCpus(buf)
        } else {
            Src::Full(buf)
        }
    }
}

/// How a value is copied out.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dst {
    /// Non-percpu: `VS` bytes. Percpu: the full `SLOT * N` buffer, padding zeroed.
    Full,
    /// Percpu: `VS` bytes of one CPU.
    Cpu(u32),
    /// `BPF_F_LOCK`: `VS` bytes copied under the element's spin lock.
    Locked,
}

impl Dst {
    pub(crate) fn from_host(flags: u64) -> Dst {
        if flags & BPF_F_LOCK != 0 {
            Dst::Locked
        } else if flags & BPF_F_CPU != 0 {
            Dst::Cpu(flags::cpu_of(flags))
        } else {
            Dst::Full
        }
    }
}

/// Which permission a host command needs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Perm {
    Read,
    Write,
    ReadWrite,
}

const NAME_MAX: usize = 15;

fn check_name(name: &str) -> Result<(), MapError> {
    if name.len() > NAME_MAX {
        return Err(MapError::InvalidSpec {
            reason: "name longer than 15 bytes",
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err(MapError::InvalidSpec {
            reason: "name may only hold [A-Za-z0-9_.]",
        });
    }
    Ok(())
}

/// `bpf_map_flags_access_ok`.
pub(crate) fn access_ok(map_flags: u32) -> bool {
    map_flags & (create::RDONLY_PROG | create::WRONLY_PROG)
        != (create::RDONLY_PROG | create::WRONLY_PROG)
}

impl Map {
    /// `BPF_MAP_CREATE`: validate `spec` as the kernel does and allocate every value slot.
    ///
    /// `ncpus` is `N`, the number of simulated CPUs (at least 1). Fails with `EINVAL` for bad
    /// sizes, `max_entries` or flags, `E2BIG` for sizes over the kernel limits, `ENOTSUPP`
    /// for `BPF_F_NO_PREALLOC` on an LRU map and `ENOMEM` when
    /// the arena would not fit a 32-bit guest region or the map would need more than
    /// [`DEFAULT_MAP_MEMORY_LIMIT`](crate::DEFAULT_MAP_MEMORY_LIMIT) (1 GiB). With
    /// `BPF_F_NO_COMMON_LRU`, `max_entries` is rounded up to a multiple of `N`
    /// ([`Map::max_entries`] reports it).
    ///
    /// The map gets an account of its own ([`MapMemory::default`]); maps that should share
    /// one limit (those of a VM or an object) are made with [`Map::create_in`].
    pub fn create(spec: MapSpec, ncpus: u32) -> Result<Map, MapError> {
        Map::create_in(spec, ncpus, &MapMemory::default())
    }

    /// [`Map::create`], charging the map's memory (value arena and bookkeeping, computed from
    /// the spec) to `memory` before anything is allocated: `ENOMEM`
    /// ([`MapError::MemoryLimit`]) when it would take `memory` over its limit, as a memory
    /// cgroup that cannot be charged. The charge is returned when the map is dropped.
    pub fn create_in(spec: MapSpec, ncpus: u32, memory: &MapMemory) -> Result<Map, MapError> {
        if ncpus == 0 {
            return Err(MapError::InvalidSpec {
                reason: "ncpus must be at least 1",
            });
        }
        let f = spec.map_flags;
        if f & create::RDONLY != 0 && f & create::WRONLY != 0 {
            return Err(MapError::InvalidSpec {
                reason: "BPF_F_RDONLY and BPF_F_WRONLY together",
            });
        }
        let mut spec = spec;
        // Validate and size everything first, charge, and only then allocate.
        let (elems, bookkeeping) = match spec.map_type {
            MapType::Array | MapType::PercpuArray => {
                crate::array::check_create(&spec)?;
                (spec.max_entries as usize, 0)
            }
            MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash => {
                crate::hash::check_create(&spec, ncpus)?;
                spec.max_entries = crate::hash::adjusted_max_entries(&spec, ncpus);
                let size = HashState::size(&spec, ncpus)?;
                (size.nodes as usize, size.bookkeeping_bytes)
            }
            MapType::CgroupStorage | MapType::PercpuCgroupStorage => {
                crate::cgroup_storage::check_create(&spec)?;
                let cap = crate::cgroup_storage::STORAGE_CAPACITY;
                (cap, cap as u64 * crate::cgroup_storage::BYTES_PER_STORAGE)
            }
            MapType::LpmTrie => {
                crate::lpm::check_create(&spec)?;
                let slots = crate::lpm::LpmTrie::slots(&spec);
                (slots, crate::lpm::LpmTrie::bookkeeping_bytes(&spec))
            }
            MapType::Devmap | MapType::DevmapHash | MapType::Cpumap | MapType::Xskmap => {
                crate::redirect::check_create(&spec)?;
                spec.map_flags |= crate::redirect::implied_flags(spec.map_type);
                (
                    spec.max_entries as usize,
                    crate::redirect::bookkeeping_bytes(&spec),
                )
            }
            MapType::ProgArray => {
                crate::prog_array::check_create(&spec)?;
                (0, crate::prog_array::bookkeeping_bytes(&spec))
            }
            MapType::StackTrace => {
                crate::stack_trace::check_create(&spec)?;
                (0, crate::stack_trace::bookkeeping_bytes(&spec))
            }
            MapType::CgroupArray => {
                crate::cgroup_array::check_create(&spec)?;
                (0, crate::cgroup_array::bookkeeping_bytes(&spec))
            }
            MapType::Queue | MapType::Stack => {
                crate::queue::check_create(&spec)?;
                (0, crate::queue::QueueState::bytes(&spec)?)
            }
            MapType::Ringbuf => {
                crate::ringbuf::check_create(&spec)?;
                (0, crate::ringbuf::RingBuf::bytes(&spec))
            }
            MapType::PerfEventArray => {
                crate::perf::check_create(&spec)?;
                // The index of events; each event's ring is allocated when it is opened.
                (0, u64::from(spec.max_entries) * 8)
            }
            MapType::ArrayOfMaps | MapType::HashOfMaps => {
                crate::of_maps::check_create(&spec)?;
                return Err(MapError::BadFd {
                    reason: "a map-in-map needs an inner map template (Map::create_of_maps_in)",
                });
            }
        };
        let span = cpu_span(&spec, ncpus, elems);
        let slots = slot_count(span, &spec, ncpus)?;
        let arena_bytes = Slab::bytes_for(slots, spec.value_size)?;
        let charge =
            memory.charge(arena_bytes as u64 + bookkeeping + std::mem::size_of::<Map>() as u64)?;
        let slab = Slab::new(slots, spec.value_size)?;
        let kind = match spec.map_type {
            MapType::Array | MapType::PercpuArray => Kind::Array,
            MapType::CgroupStorage | MapType::PercpuCgroupStorage => {
                Kind::Cgroup(Storages::new(crate::cgroup_storage::STORAGE_CAPACITY)?)
            }
            MapType::LpmTrie => Kind::Lpm(Box::new(crate::lpm::LpmTrie::new(&spec)?)),
            MapType::Queue | MapType::Stack => {
                Kind::Queue(Box::new(crate::queue::QueueState::new(&spec)?))
            }
            MapType::Ringbuf => Kind::Ringbuf(Box::new(crate::ringbuf::RingBuf::new(&spec)?)),
            MapType::PerfEventArray => Kind::PerfEvents(Box::default()),
            MapType::Devmap | MapType::DevmapHash | MapType::Cpumap | MapType::Xskmap => {
                Kind::Redirect(Box::new(crate::redirect::RedirectState::new(&spec)?))
            }
            MapType::ProgArray => Kind::ProgArray(crate::prog_array::ProgArrayRef::new_user()),
            MapType::StackTrace => {
                Kind::StackTrace(Box::new(crate::stack_trace::StackTraceState::new(&spec)))
            }
            MapType::CgroupArray => Kind::CgroupArray(Box::default()),
            _ => Kind::Hash(Box::new(HashState::new(&spec, ncpus)?)),
        };
        check_name(&spec.name)?;
        Ok(Map {
            id: crate::of_maps::next_id(),
            of_maps: None,
            spin_lock: None,
            timer: None,
            spec,
            ncpus,
            cpu_span: span,
            host_cpu: AtomicU32::new(0),
            frozen: AtomicBool::new(false),
            slab,
            kind,
            charge,
        })
    }

    /// Another `Map` with this one's id, spec, CPUs and frozen state, no values and
    /// nothing charged, holding `kind` (the state it shares with this one): what a loaded
    /// program holds of a map whose users the host's handles are
    /// ([`Map::prog_array_program_ref`]). `None` if the empty arena cannot be made.
    pub(crate) fn shell(&self, kind: Kind) -> Option<Map> {
        Some(Map {
            id: self.id,
            of_maps: None,
            spin_lock: self.spin_lock,
            timer: self.timer,
            spec: self.spec.clone(),
            ncpus: self.ncpus,
            cpu_span: 0,
            host_cpu: AtomicU32::new(self.host_cpu.load(Ordering::Relaxed)),
            frozen: AtomicBool::new(self.is_frozen()),
            slab: Slab::new(0, self.spec.value_size).ok()?,
            kind,
            charge: self.charge.memory().charge(0).ok()?,
        })
    }

    /// `BPF_MAP_CREATE` for a value type holding a `bpf_spin_lock` at byte `spin_lock_off`
    /// (what BTF would tell the kernel). After the checks of [`Map::create`]: `EOPNOTSUPP`
    /// unless the type is HASH, ARRAY or CGROUP_STORAGE (spec U6), `EINVAL` unless the 4-byte
    /// lock lies 4-aligned inside the value.
    ///
    /// Such a map accepts `BPF_F_LOCK`: copies then take the lock. The lock is the u32 at
    /// `spin_lock_off` of each value: 0 is unlocked; it is taken with
    /// `compare_exchange(0, 1, Acquire)` and released with `store(0, Release)` (helpers that
    /// implement `bpf_spin_lock` must use the same protocol). Host copies never read or
    /// write those 4 bytes (lookups return them as 0), as the kernel's `copy_map_value`.
    /// As in the kernel, a lock that is never released blocks `BPF_F_LOCK` copies of that
    /// element: an engine must release a program's lock when the program faults.
    pub fn create_with_spin_lock(
        spec: MapSpec,
        ncpus: u32,
        spin_lock_off: u32,
    ) -> Result<Map, MapError> {
        Map::create_with_spin_lock_in(spec, ncpus, spin_lock_off, &MapMemory::default())
    }

    /// [`Map::create_with_spin_lock`], charging the map to `memory` as [`Map::create_in`].
    pub fn create_with_spin_lock_in(
        spec: MapSpec,
        ncpus: u32,
        spin_lock_off: u32,
        memory: &MapMemory,
    ) -> Result<Map, MapError> {
        let mut map = Map::create_in(spec, ncpus, memory)?;
        if !matches!(
            map.spec.map_type,
            MapType::Hash | MapType::Array | MapType::CgroupStorage
        ) {
            return Err(MapError::SpinLockNotSupported {
                map_type: map.spec.map_type,
            });
        }
        if spin_lock_off % 4 != 0 || u64::from(spin_lock_off) + 4 > u64::from(map.spec.value_size) {
            return Err(MapError::InvalidSpec {
                reason: "bpf_spin_lock must be 4-aligned inside the value",
            });
        }
        map.spin_lock = Some(spin_lock_off);
        Ok(map)
    }

    /// Offset of the value's `bpf_spin_lock` (see [`Map::create_with_spin_lock`]).
    pub fn spin_lock_off(&self) -> Option<u32> {
        self.spin_lock
    }

    /// The map with a value type holding a `struct bpf_timer` (16 bytes) at byte
    /// `timer_off`, as BTF would tell the kernel (`map_check_btf`): `EOPNOTSUPP` unless the
    /// type is HASH, LRU_HASH or ARRAY, `EINVAL` unless the timer lies 8-aligned inside
    /// the value. The offset is what the verifier is told ([`Map::timer_off`]); bpfvm runs
    /// no timers, and host copies of a value include the timer's bytes (the kernel's
    /// `copy_map_value` skips them).
    ///
    /// ```
    /// use bpfvm_maps::{Map, MapSpec, MapType};
    ///
    /// let map = Map::create(MapSpec::new(MapType::Hash, 4, 24, 8), 1)?.with_timer(8)?;
    /// assert_eq!(map.timer_off(), Some(8));
    /// let per_cpu = Map::create(MapSpec::new(MapType::PercpuHash, 4, 24, 8), 1)?;
    /// assert_eq!(per_cpu.with_timer(8).unwrap_err().errno(), 95);
    /// # Ok::<(), bpfvm_maps::MapError>(())
    /// ```
    pub fn with_timer(mut self, timer_off: u32) -> Result<Map, MapError> {
        if !matches!(
            self.spec.map_type,
            MapType::Hash | MapType::LruHash | MapType::Array
        ) {
            return Err(MapError::TimerNotSupported {
                map_type: self.spec.map_type,
            });
        }
        if timer_off % 8 != 0 || u64::from(timer_off) + 16 > u64::from(self.spec.value_size) {
            return Err(MapError::InvalidSpec {
                reason: "bpf_timer must be 8-aligned inside the value",
            });
        }
        self.timer = Some(timer_off);
        Ok(self)
    }

    /// Offset of the value's `bpf_timer` (see [`Map::with_timer`]).
    pub fn timer_off(&self) -> Option<u32> {
        self.timer
    }

    pub(crate) fn has_spin_lock(&self) -> bool {
        self.spin_lock.is_some()
    }

    /// Run `f` holding element `e`'s spin lock (the map must have one). The wait is bounded:
    /// a lock still held after [`SPIN_LOCK_WAIT`] gives `EBUSY` without running `f` (the
    /// kernel would spin for ever; a host call here must not).
    fn with_elem_lock<R>(&self, e: u32, f: impl FnOnce() -> R) -> Result<R, MapError> {
        let Some(off) = self.spin_lock else {
            return Ok(f());
        };
        let word = self.slab.word32(e as usize, off as usize);
        let mut spins = 0u32;
        let mut deadline = None;
        while word
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins = spins.wrapping_add(1);
            if spins % 64 == 0 {
                let now = std::time::Instant::now();
                if *deadline.get_or_insert(now + SPIN_LOCK_WAIT) <= now {
                    return Err(MapError::Busy {
                        reason: "the element's bpf_spin_lock stayed held for a second",
                    });
                }
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let r = f();
        word.store(0, Ordering::Release);
        Ok(r)
    }

    /// The memory account the map is charged to ([`Map::create_in`]).
    pub fn memory(&self) -> &MapMemory {
        self.charge.memory()
    }

    /// Bytes the map charged to its account: value arena, bookkeeping and the map itself.
    pub fn memory_footprint(&self) -> u64 {
        self.charge.bytes()
    }

    /// The map's id, unique in the process (ids start at 1): what a host lookup of a
    /// map-in-map returns for the inner map, as the kernel's map ids.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The spec as created (`max_entries` after any kernel adjustment).
    pub fn spec(&self) -> &MapSpec {
        &self.spec
    }
    /// The map type.
    pub fn map_type(&self) -> MapType {
        self.spec.map_type
    }
    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.spec.key_size
    }
    /// Value size `VS` in bytes.
    pub fn value_size(&self) -> u32 {
        self.spec.value_size
    }
    /// `round_up(VS, 8)`: one CPU's slot in a full per-CPU buffer.
    pub fn slot_size(&self) -> usize {
        self.slab.stride()
    }
    /// `max_entries` (rounded to a multiple of N for `BPF_F_NO_COMMON_LRU`).
    pub fn max_entries(&self) -> u32 {
        self.spec.max_entries
    }
    /// Creation flags.
    pub fn map_flags(&self) -> u32 {
        self.spec.map_flags
    }
    /// `N`, the number of simulated CPUs.
    pub fn ncpus(&self) -> u32 {
        self.ncpus
    }
    /// True when the map was created with `BPF_F_RDONLY_PROG`: programs may only read it.
    pub fn rdonly_prog(&self) -> bool {
        self.spec.map_flags & create::RDONLY_PROG != 0
    }
    /// True when the map was created with `BPF_F_WRONLY_PROG`.
    pub fn wronly_prog(&self) -> bool {
        self.spec.map_flags & create::WRONLY_PROG != 0
    }
    /// True once [`Map::freeze`] succeeded.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }
    /// The value arena descriptor (see [`ValueArena`] for the layout).
    pub fn arena(&self) -> ValueArena {
        self.slab.descriptor()
    }

    /// Number of elements: `max_entries` for arrays, live elements for hash maps, attached
    /// storages for cgroup storage.
    pub fn element_count(&self) -> u32 {
        match &self.kind {
            Kind::Array => self.spec.max_entries,
            Kind::Hash(h) => h.count(),
            Kind::Cgroup(s) => s.count(),
            Kind::Lpm(t) => t.count(),
            Kind::Queue(q) => q.count(),
            Kind::Ringbuf(_) => 0,
            Kind::PerfEvents(p) => p.count(),
            Kind::Redirect(_) => self.redirect_count(),
            Kind::ProgArray(_) => self.prog_array_count(),
            Kind::StackTrace(_) => self.stack_trace_count(),
            Kind::CgroupArray(_) => self.cgroup_array_count(),
        }
    }

    /// The host caller's current CPU (spec §7.6), default 0.
    pub fn host_cpu(&self) -> CpuId {
        CpuId(self.host_cpu.load(Ordering::Relaxed))
    }

    /// Set the host caller's current CPU (spec §7.6): it picks the LRU free list used by
    /// host-side inserts and the "extra" element of HASH replacements. `ERANGE` if `>= N`.
    pub fn set_host_cpu(&self, cpu: CpuId) -> Result<(), MapError> {
        if cpu.0 >= self.ncpus {
            return Err(MapError::CpuOutOfRange {
                cpu: u64::from(cpu.0),
                ncpus: self.ncpus,
            });
        }
        self.host_cpu.store(cpu.0, Ordering::Relaxed);
        Ok(())
    }

    /// `BPF_MAP_FREEZE`: from now on host-side writes give `EPERM`. Programs are not
    /// affected. `EPERM` on a map without host write permission (including an already
    /// frozen one, as in the kernel where freezing drops the write permission).
    pub fn freeze(&self) -> Result<(), MapError> {
        self.check_perm(Perm::Write)?;
        if self.frozen.swap(true, Ordering::AcqRel) {
            return Err(MapError::Busy {
                reason: "map already frozen",
            });
        }
        Ok(())
    }

    pub(crate) fn is_percpu(&self) -> bool {
        self.spec.map_type.is_percpu()
    }

    pub(crate) fn check_perm(&self, perm: Perm) -> Result<(), MapError> {
        let f = self.spec.map_flags;
        let read = f & create::WRONLY == 0;
        let write = f & create::RDONLY == 0 && !self.is_frozen();
        match perm {
            Perm::Read if !read => Err(MapError::PermissionDenied {
                reason: "map is write-only for the host",
            }),
            Perm::Write | Perm::ReadWrite if !write => Err(MapError::PermissionDenied {
                reason: if self.is_frozen() {
                    "map is frozen"
                } else {
                    "map is read-only for the host"
                },
            }),
            Perm::ReadWrite if !read => Err(MapError::PermissionDenied {
                reason: "map is write-only for the host",
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn check_flags(&self, flags: u64, allowed: u64) -> Result<(), MapError> {
        flags::check_op_flags(
            self.spec.map_type,
            self.ncpus,
            self.has_spin_lock(),
            flags,
            allowed,
        )
    }

    /// `bpf_map_value_size(map, flags)` (spec §3).
    pub fn host_value_size(&self, flags: u64) -> usize {
        if self.is_percpu() {
            if flags & (BPF_F_CPU | BPF_F_ALL_CPUS) != 0 {
                self.spec.value_size as usize
            } else {
                self.slab.stride() * self.ncpus as usize
            }
        } else {
            self.spec.value_size as usize
        }
    }

    pub(crate) fn key_in<'k>(&self, key: &'k [u8]) -> Result<&'k [u8], MapError> {
        let n = self.spec.key_size as usize;
        key.get(..n).ok_or(MapError::BufferTooSmall {
            what: "key",
            needed: n,
            got: key.len(),
        })
    }

    pub(crate) fn buf_in<'v>(
        what: &'static str,
        buf: &'v [u8],
        n: usize,
    ) -> Result<&'v [u8], MapError> {
        buf.get(..n).ok_or(MapError::BufferTooSmall {
            what,
            needed: n,
            got: buf.len(),
        })
    }

    pub(crate) fn buf_out<'v>(
        what: &'static str,
        buf: &'v mut [u8],
        n: usize,
    ) -> Result<&'v mut [u8], MapError> {
        let got = buf.len();
        buf.get_mut(..n).ok_or(MapError::BufferTooSmall {
            what,
            needed: n,
            got,
        })
    }

    /// The element and (per-CPU maps) the CPU whose value arena slot `slot` holds; slots
    /// between CPU areas count as the next CPU's area's padding (element `≥ max_entries`).
    pub fn slot_owner(&self, slot: usize) -> (u32, Option<u32>) {
        if self.is_percpu() && self.cpu_span != 0 {
            (
                (slot % self.cpu_span) as u32,
                Some((slot / self.cpu_span) as u32),
            )
        } else {
            (slot as u32, None)
        }
    }

    /// Arena slot of element `e`, CPU `cpu`.
    #[inline]
    pub(crate) fn slot(&self, e: u32, cpu: u32) -> usize {
        if self.is_percpu() {
            cpu as usize * self.cpu_span + e as usize
        } else {
            e as usize
        }
    }

    /// Write element `e` from `src`; `new` zero-fills the other CPUs of a one-CPU write.
    ///
    /// Spec U3 (unverified): a new per-CPU hash element created from the host with
    /// `BPF_F_CPU` keeps stale bytes on the other CPUs in the kernel; we zero them, as the
    /// program-side path does.
    pub(crate) fn write_elem(&self, e: u32, src: Src<'_>, new: bool) -> Result<(), MapError> {
        let vs = self.spec.value_size as usize;
        if !self.is_percpu() {
            let (v, locked) = match src {
                Src::Full(v) | Src::AllCpus(v) | Src::Cpu(_, v) => (v, false),
                Src::Locked(v) => (v, true),
            };
            match self.spin_lock {
                None => self.slab.write(e as usize, &v[..vs]),
                Some(off) => {
                    // copy_map_value: everything but the lock word.
                    let off = off as usize;
                    let copy = || {
                        self.slab.write_at(e as usize, 0, &v[..off]);
                        self.slab.write_at(e as usize, off + 4, &v[off + 4..vs]);
                    };
                    if new {
                        // A new element is not visible yet: no lock, and the lock word starts
                        // unlocked (check_and_init_map_value).
                        copy();
                        self.slab
                            .word32(e as usize, off)
                            .store(0, Ordering::Release);
                    } else if locked {
                        self.with_elem_lock(e, copy)?
                    } else {
                        copy()
                    }
                }
            }
            return Ok(());
        }
        let stride = self.slab.stride();
        match src {
            Src::Full(buf) | Src::Locked(buf) => {
                for c in 0..self.ncpus {
                    let off = c as usize * stride;
                    self.slab.write(self.slot(e, c), &buf[off..off + vs]);
                }
            }
            Src::AllCpus(v) => {
                self.slab.write_strided(
                    self.slot(e, 0),
                    self.cpu_span,
                    self.ncpus as usize,
                    &v[..vs],
                );
            }
            Src::Cpu(cpu, v) => {
                self.slab.write(self.slot(e, cpu), &v[..vs]);
                if new {
                    for c in (0..self.ncpus).filter(|&c| c != cpu) {
                        self.slab.zero(self.slot(e, c));
                    }
                }
            }
        }
        Ok(())
    }

    /// Copy element `e` out; `out` has exactly the size `dst` needs.
    pub(crate) fn read_elem(&self, e: u32, dst: Dst, out: &mut [u8]) -> Result<(), MapError> {
        let vs = self.spec.value_size as usize;
        if !self.is_percpu() {
            match self.spin_lock {
                None => self.slab.read(e as usize, &mut out[..vs]),
                Some(off) => {
                    // copy_map_value: everything but the lock word, which another thread
                    // may be taking (reading it with a wider load would be a mixed-size race).
                    let off = off as usize;
                    let copy = |out: &mut [u8]| {
                        self.slab.read_at(e as usize, 0, &mut out[..off]);
                        self.slab
                            .read_at(e as usize, off + 4, &mut out[off + 4..vs]);
                    };
                    if matches!(dst, Dst::Locked) {
                        self.with_elem_lock(e, || copy(out))?;
                    } else {
                        copy(out);
                    }
                    out[off..off + 4].fill(0);
                }
            }
            return Ok(());
        }
        match dst {
            Dst::Full | Dst::Locked => {
                let stride = self.slab.stride();
                for c in 0..self.ncpus {
                    let off = c as usize * stride;
                    self.slab.read(self.slot(e, c), &mut out[off..off + vs]);
                    out[off + vs..off + stride].fill(0);
                }
            }
            Dst::Cpu(cpu) => self.slab.read(self.slot(e, cpu), &mut out[..vs]),
        }
        Ok(())
    }

    // ----- host side -----

    /// `BPF_MAP_LOOKUP_ELEM`: copy the value of `key` into `value`.
    ///
    /// Flags: 0, or `BPF_F_CPU` with a CPU on per-CPU maps (then `value` gets `VS` bytes of
    /// that CPU; without it a per-CPU map fills `SLOT * N` bytes, padding 0). `ENOENT` when
    /// missing, `EFAULT` when `value` is too short.
    pub fn lookup(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<(), MapError> {
        self.check_perm(Perm::Read)?;
        self.check_flags(flags, BPF_F_LOCK | BPF_F_CPU)?;
        let key = self.key_in(key)?;
        let size = self.host_value_size(flags);
        self.lookup_checked(key, value, size, Dst::from_host(flags))
    }

    /// The per-map part of a lookup (also used by the generic `LOOKUP_BATCH`).
    pub(crate) fn lookup_checked(
        &self,
        key: &[u8],
        value: &mut [u8],
        size: usize,
        dst: Dst,
    ) -> Result<(), MapError> {
        if self.of_maps_empty_slot(key) {
            return Err(MapError::NotFound);
        }
        match &self.kind {
            Kind::Array => self.array_lookup(key, value, size, dst),
            Kind::Hash(h) => h.lookup(self, key, value, size, dst),
            Kind::Cgroup(s) => s.lookup(self, key, value, size, dst),
            Kind::Lpm(t) => t.lookup(self, key, value, size, dst),
            Kind::Queue(q) => {
                let mut v = vec![0u8; size];
                q.get(&mut v, false)?;
                Map::buf_out("value", value, size)?.copy_from_slice(&v);
                Ok(())
            }
            Kind::Ringbuf(_) | Kind::PerfEvents(_) | Kind::CgroupArray(_) => {
                Err(MapError::NotSupported {
                    op: "lookup",
                    map_type: self.spec.map_type,
                })
            }
            Kind::StackTrace(_) => self.stack_trace_lookup(key, value),
            Kind::Redirect(_) => self.redirect_lookup(key, value),
            Kind::ProgArray(_) => self.prog_array_lookup(key, value),
        }
    }

    /// `BPF_MAP_UPDATE_ELEM`: create or replace the value of `key`.
    ///
    /// `value` holds `SLOT * N` bytes for a per-CPU map without cpu flags, else `VS` bytes
    /// (spec §3). Flag rules: spec §4; semantics: spec §5.2.
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.check_perm(Perm::Write)?;
        self.check_flags(flags, !0)?;
        let key = self.key_in(key)?;
        let value = Self::buf_in("value", value, self.host_value_size(flags))?;
        self.update_checked(key, value, flags)
    }

    /// The per-map part of an update, after permissions, flags and copies (also used by
    /// `UPDATE_BATCH`).
    pub(crate) fn update_checked(
        &self,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        if self.of_maps.is_some() {
            return self.of_maps_update_bytes(key, flags);
        }
        let cpu = self.host_cpu().0;
        match &self.kind {
            Kind::Array => self.array_update_host(key, value, flags),
            Kind::Hash(h) => h.update_host(self, cpu, key, value, flags),
            Kind::Cgroup(s) => s.update_host(self, key, value, flags),
            Kind::Lpm(t) => t.update(self, key, value, flags),
            Kind::Queue(q) => q.push(value, flags),
            Kind::Ringbuf(_) => Err(MapError::NotSupported {
                op: "update",
                map_type: self.spec.map_type,
            }),
            Kind::PerfEvents(p) => p.update_host(self, key, flags),
            Kind::Redirect(_) => self.redirect_update(key, value, flags),
            Kind::ProgArray(_) => self.prog_array_update_bytes(key, flags),
            Kind::StackTrace(_) => Err(MapError::InvalidOperation {
                op: "update",
                map_type: self.spec.map_type,
            }),
            Kind::CgroupArray(_) => self.cgroup_array_update_bytes(key, flags),
        }
    }

    /// `BPF_MAP_DELETE_ELEM`. `flags` is the unused attr tail and must be 0 (`EINVAL`).
    /// Arrays and cgroup storage: `EINVAL`; missing key: `ENOENT`.
    pub fn delete(&self, key: &[u8], flags: u64) -> Result<(), MapError> {
        if flags != 0 {
            return Err(MapError::flags(
                flags,
                "attr tail of DELETE_ELEM must be zero",
            ));
        }
        self.check_perm(Perm::Write)?;
        let key = self.key_in(key)?;
        self.delete_checked(key)
    }

    pub(crate) fn delete_checked(&self, key: &[u8]) -> Result<(), MapError> {
        if let Some(of) = self.of_maps_state() {
            return self.of_maps_delete(of, key);
        }
        match &self.kind {
            Kind::Array | Kind::Cgroup(_) | Kind::Queue(_) => Err(MapError::InvalidOperation {
                op: "delete",
                map_type: self.spec.map_type,
            }),
            Kind::Hash(h) => h.delete(self, key, None),
            Kind::Lpm(t) => t.delete(key),
            Kind::Ringbuf(_) => Err(MapError::NotSupported {
                op: "delete",
                map_type: self.spec.map_type,
            }),
            Kind::PerfEvents(p) => p.delete(self, key),
            Kind::Redirect(_) => self.redirect_delete(key),
            Kind::ProgArray(_) => self.prog_array_delete(key),
            Kind::StackTrace(_) => self.stack_trace_delete(key),
            Kind::CgroupArray(_) => self.cgroup_array_delete(key),
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`: write the key after `key` (or the first key when `key` is
    /// None) into `next_key`. `ENOENT` at the end. `flags` must be 0 (`EINVAL`).
    pub fn get_next_key(
        &self,
        key: Option<&[u8]>,
        next_key: &mut [u8],
        flags: u64,
    ) -> Result<(), MapError> {
        if flags != 0 {
            return Err(MapError::flags(
                flags,
                "attr tail of GET_NEXT_KEY must be zero",
            ));
        }
        self.check_perm(Perm::Read)?;
        let key = key.map(|k| self.key_in(k)).transpose()?;
        let ks = self.spec.key_size as usize;
        let out = Self::buf_out("next_key", next_key, ks)?;
        self.next_key_checked(key, out)
    }

    pub(crate) fn next_key_checked(
        &self,
        key: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<(), MapError> {
        match &self.kind {
            Kind::Array | Kind::PerfEvents(_) | Kind::ProgArray(_) | Kind::CgroupArray(_) => {
                self.array_next_key(key, out)
            }
            Kind::StackTrace(_) => self.stack_trace_next_key(key, out),
            Kind::Hash(h) => h.next_key(key, out),
            Kind::Cgroup(s) => s.next_key(self, key, out),
            Kind::Lpm(t) => t.next_key(key, out),
            Kind::Queue(_) => Err(MapError::InvalidOperation {
                op: "get_next_key",
                map_type: self.spec.map_type,
            }),
            Kind::Ringbuf(_) => Err(MapError::NotSupported {
                op: "get_next_key",
                map_type: self.spec.map_type,
            }),
            Kind::Redirect(_) => self.redirect_next_key(key, out),
        }
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: copy the value out and delete the element
    /// (hash family). Percpu types always return the full `SLOT * N` buffer. Flags other
    /// than 0 give `EINVAL`; arrays and cgroup storage give `ENOTSUPP`. `value` is checked
    /// before the element is removed, so a short buffer (`EFAULT`) loses nothing.
    pub fn lookup_and_delete(
        &self,
        key: &[u8],
        value: &mut [u8],
        flags: u64,
    ) -> Result<(), MapError> {
        if flags & !BPF_F_LOCK != 0 || flags != 0 && matches!(self.kind, Kind::Queue(_)) {
            return Err(MapError::flags(
                flags,
                "LOOKUP_AND_DELETE_ELEM only allows BPF_F_LOCK (no flags on a queue or stack)",
            ));
        }
        self.check_perm(Perm::ReadWrite)?;
        if flags & BPF_F_LOCK != 0 && !self.has_spin_lock() {
            return Err(MapError::flags(
                flags,
                "BPF_F_LOCK on a map without a spin lock",
            ));
        }
        let key = self.key_in(key)?;
        let size = self.host_value_size(0);
        match &self.kind {
            Kind::Hash(h) => {
                let out = Self::buf_out("value", value, size)?;
                h.delete(self, key, Some((out, Dst::from_host(flags))))
            }
            Kind::Queue(q) => {
                let out = Self::buf_out("value", value, size)?;
                let mut v = vec![0u8; size];
                q.get(&mut v, true)?;
                out.copy_from_slice(&v);
                Ok(())
            }
            Kind::StackTrace(_) => self.stack_trace_lookup_and_delete(key, value),
            _ => Err(MapError::NotSupported {
                op: "lookup_and_delete",
                map_type: self.spec.map_type,
            }),
        }
    }

    // ----- program side -----

    /// Helper 1 `map_lookup_elem`: pointer to the value of `key` (the current CPU's copy on
    /// per-CPU maps), or None. Sets the LRU reference bit. Always None on cgroup storage
    /// (programs use helper 81, see [`Map::prog_local_storage`]; the verifier restriction is
    /// unverified, spec U5) and for `cpu >= N`.
    #[inline]
    pub fn prog_lookup(&self, cpu: CpuId, key: &[u8]) -> Option<NonNull<u8>> {
        self.slab.ptr(self.prog_lookup_slot(cpu, key)?)
    }

    /// [`Map::prog_lookup`] as an arena slot: the value starts at
    /// `arena().base + slot * arena().stride`. Engines that confine a program to the exact
    /// value it was given (see `docs/internals.md`) build its address from the slot.
    #[inline]
    pub fn prog_lookup_slot(&self, cpu: CpuId, key: &[u8]) -> Option<usize> {
        if cpu.0 >= self.ncpus {
            return None;
        }
        let key = key.get(..self.spec.key_size as usize)?;
        if self.of_maps.is_some() {
            // The value of a map-in-map is a map, never memory (see `prog_lookup_inner`).
            return None;
        }
        match &self.kind {
            Kind::Array => self.array_prog_lookup(cpu.0, key),
            Kind::Hash(h) => h.prog_lookup(self, cpu.0, key),
            Kind::Lpm(t) => t.lookup_slot(key),
            Kind::Cgroup(_)
            | Kind::Queue(_)
            | Kind::Ringbuf(_)
            | Kind::PerfEvents(_)
            | Kind::ProgArray(_)
            | Kind::StackTrace(_)
            | Kind::CgroupArray(_) => None,
            Kind::Redirect(_) => self.redirect_prog_lookup(key),
        }
    }

    /// Helper 195 `map_lookup_percpu_elem`: pointer to CPU `target_cpu`'s copy, or None
    /// (`target_cpu >= N`, missing key, or a map type the verifier would refuse). Sets the
    /// LRU reference bit.
    #[inline]
    pub fn prog_lookup_percpu(
        &self,
        cpu: CpuId,
        key: &[u8],
        target_cpu: u32,
    ) -> Option<NonNull<u8>> {
        self.slab
            .ptr(self.prog_lookup_percpu_slot(cpu, key, target_cpu)?)
    }

    /// [`Map::prog_lookup_percpu`] as an arena slot (see [`Map::prog_lookup_slot`]).
    #[inline]
    pub fn prog_lookup_percpu_slot(
        &self,
        cpu: CpuId,
        key: &[u8],
        target_cpu: u32,
    ) -> Option<usize> {
        if cpu.0 >= self.ncpus || target_cpu >= self.ncpus {
            return None;
        }
        if !matches!(
            self.spec.map_type,
            MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash
        ) {
            return None;
        }
        self.prog_lookup_slot(CpuId(target_cpu), key)
    }

    /// Helper 2 `map_update_elem` with the program-side checks of spec §4: cpu flags are
    /// `EINVAL`; per-CPU maps write only `cpu`'s copy (a new per-CPU hash element gets the
    /// other CPUs zero-filled). `value` must hold `VS` bytes. `EPERM` on a
    /// `BPF_F_RDONLY_PROG` map (the verifier would refuse the program), `EINVAL` on cgroup
    /// storage (programs use helper 81).
    pub fn prog_update(
        &self,
        cpu: CpuId,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        self.check_prog(cpu)?;
        if self.of_maps.is_some() {
            return Err(MapError::InvalidOperation {
                op: "helper map_update_elem",
                map_type: self.spec.map_type,
            });
        }
        let key = self.key_in(key)?;
        let value = Self::buf_in("value", value, self.spec.value_size as usize)?;
        match &self.kind {
            Kind::Array => self.array_update_prog(cpu.0, key, value, flags),
            Kind::Hash(h) => h.update_prog(self, cpu.0, key, value, flags),
            Kind::Lpm(t) => t.update(self, key, value, flags),
            Kind::Cgroup(_)
            | Kind::Queue(_)
            | Kind::Ringbuf(_)
            | Kind::PerfEvents(_)
            | Kind::Redirect(_)
            | Kind::ProgArray(_)
            | Kind::StackTrace(_)
            | Kind::CgroupArray(_) => Err(MapError::InvalidOperation {
                op: "helper map_update_elem",
                map_type: self.spec.map_type,
            }),
        }
    }

    /// Helper 3 `map_delete_elem`: as spec §5.3 (`EINVAL` on arrays and cgroup storage,
    /// `ENOENT` when missing). Runs on `cpu` (it decides where a freed LRU node goes).
    pub fn prog_delete(&self, cpu: CpuId, key: &[u8]) -> Result<(), MapError> {
        self.check_prog(cpu)?;
        let key = self.key_in(key)?;
        if matches!(
            self.kind,
            Kind::PerfEvents(_)
                | Kind::Ringbuf(_)
                | Kind::ProgArray(_)
                | Kind::StackTrace(_)
                | Kind::CgroupArray(_)
        ) || self.of_maps.is_some()
        {
            return Err(MapError::InvalidOperation {
                op: "helper map_delete_elem",
                map_type: self.spec.map_type,
            });
        }
        self.delete_checked(key)
    }

    /// Helper 164 `for_each_map_elem`: call `f(key, value)` for each element in iteration
    /// order, with the `cpu`'s copy on per-CPU maps, until `f` returns true ("stop").
    /// Returns the number of elements visited, the stopping one included. No lock is held
    /// while `f` runs (it may update or delete); hash maps are walked from a snapshot of
    /// their keys, skipping none. `EINVAL` on cgroup storage (no `for_each` there) and for
    /// `cpu >= N`.
    pub fn prog_for_each(
        &self,
        cpu: CpuId,
        f: &mut dyn FnMut(&[u8], NonNull<u8>) -> bool,
    ) -> Result<u32, MapError> {
        if cpu.0 >= self.ncpus {
            return Err(MapError::CpuOutOfRange {
                cpu: u64::from(cpu.0),
                ncpus: self.ncpus,
            });
        }
        if self.of_maps.is_some() {
            return Err(MapError::InvalidOperation {
                op: "helper for_each_map_elem",
                map_type: self.spec.map_type,
            });
        }
        let mut visited = 0;
        match &self.kind {
            Kind::Array => {
                for i in 0..self.spec.max_entries {
                    let Some(p) = self.slab.ptr(self.slot(i, cpu.0)) else {
                        break;
                    };
                    visited += 1;
                    if f(&i.to_ne_bytes(), p) {
                        break;
                    }
                }
            }
            Kind::Hash(h) => {
                for (key, n) in h.snapshot() {
                    let Some(p) = self.slab.ptr(self.slot(n, cpu.0)) else {
                        break;
                    };
                    visited += 1;
                    if f(&key, p) {
                        break;
                    }
                }
            }
            Kind::Cgroup(_)
            | Kind::Lpm(_)
            | Kind::Queue(_)
            | Kind::Ringbuf(_)
            | Kind::PerfEvents(_)
            | Kind::Redirect(_)
            | Kind::ProgArray(_)
            | Kind::StackTrace(_)
            | Kind::CgroupArray(_) => {
                return Err(MapError::InvalidOperation {
                    op: "helper for_each_map_elem",
                    map_type: self.spec.map_type,
                });
            }
        }
        Ok(visited)
    }

    pub(crate) fn check_prog(&self, cpu: CpuId) -> Result<(), MapError> {
        if cpu.0 >= self.ncpus {
            return Err(MapError::CpuOutOfRange {
                cpu: u64::from(cpu.0),
                ncpus: self.ncpus,
            });
        }
        if self.rdonly_prog() {
            return Err(MapError::PermissionDenied {
                reason: "map is read-only for programs",
            });
        }
        Ok(())
    }
}

/// Slots of one CPU's area in a per-CPU map holding `elems` elements: the elements, then
/// enough padding slots that two CPUs' copies never share a cache line (or an adjacent-line
/// prefetch pair), as the kernel's per-CPU areas do not. Without that, two simulated CPUs
/// running on two host threads would keep stealing each other's cache line.
fn cpu_span(spec: &MapSpec, ncpus: u32, elems: usize) -> usize {
    if !spec.map_type.is_percpu() || ncpus == 1 {
        return elems;
    }
    let stride = (spec.value_size as usize).div_ceil(8) * 8;
    elems + CPU_AREA_GAP.div_ceil(stride.max(8))
}

/// How long a host call waits for an element's `bpf_spin_lock` before giving `EBUSY`.
pub const SPIN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Bytes between the last copy of one CPU and the first copy of the next.
const CPU_AREA_GAP: usize = 128;

fn slot_count(span: usize, spec: &MapSpec, ncpus: u32) -> Result<usize, MapError> {
    span.checked_mul(percpu_factor(spec, ncpus))
        .ok_or(MapError::OutOfMemory {
            reason: "value arena larger than 4 GiB",
        })
}

fn percpu_factor(spec: &MapSpec, ncpus: u32) -> usize {
    if spec.map_type.is_percpu() {
        ncpus as usize
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Map>();
        check::<std::sync::Arc<Map>>();
    }

    #[test]
    fn names_follow_the_kernel_rules() {
        let ok = MapSpec::new(MapType::Array, 4, 4, 1).with_name("my_map.bss");
        assert!(Map::create(ok, 1).is_ok());
        let long = MapSpec::new(MapType::Array, 4, 4, 1).with_name("0123456789abcdef");
        assert_eq!(Map::create(long, 1).unwrap_err().errno(), 22);
        let bad = MapSpec::new(MapType::Array, 4, 4, 1).with_name("a-b");
        assert_eq!(Map::create(bad, 1).unwrap_err().errno(), 22);
    }
}
