//! Map memory is bounded: specs the kernel accepts but that would need more than the map
//! memory limit (1 GiB by default, per `MapMemory` account) are `ENOMEM` before anything is
//! allocated, maps sharing an account are limited together, and charges come back on drop.
#![allow(unsafe_code)] // the counting allocator below

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bpfvm_maps::{Map, MapError, MapMemory, MapSpec, MapType, DEFAULT_MAP_MEMORY_LIMIT};

/// The system allocator, counting the bytes each thread holds and its peak, so a test can
/// assert that an operation allocated little (tests run on threads of their own).
struct Counting;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let held = HELD.with(|h| {
        h.set(h.get() + size);
        h.get()
    });
    PEAK.with(|p| p.set(p.get().max(held)));
}

fn note_free(size: usize) {
    HELD.with(|h| h.set(h.get().saturating_sub(size)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping only
// touches const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes this thread held above the start.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = HELD.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    (r, PEAK.with(Cell::get) - start)
}

const MIB: usize = 1 << 20;

fn errno(r: Result<Map, MapError>) -> i32 {
    r.expect_err("creation should fail").errno()
}

#[test]
fn oversized_arrays_are_enomem_without_allocating() {
    let cases = [
        // (value_size, max_entries): a 1 GiB value, an INT_MAX value, 536M entries.
        (1u32 << 30, 1u32),
        (i32::MAX as u32, 1),
        (4, 536_870_912),
        (8, 1 << 28),
    ];
    for (vs, max) in cases {
        for t in [MapType::Array, MapType::PercpuArray] {
            if t == MapType::PercpuArray && vs > 32768 {
                continue; // E2BIG by PCPU_MIN_UNIT_SIZE, checked below
            }
            let (r, peak) = peak_of(|| Map::create(MapSpec::new(t, 4, vs, max), 4));
            assert_eq!(errno(r), 12, "{t:?} value_size {vs} max_entries {max}");
            assert!(peak < MIB, "{t:?} {vs}x{max}: {peak} bytes allocated");
        }
    }
    // The kernel's size checks still come first: E2BIG over INT_MAX and PCPU_MIN_UNIT_SIZE.
    let big = MapSpec::new(MapType::Array, 4, 1 << 31, 1);
    assert_eq!(errno(Map::create(big, 1)), 7);
    let pcpu = MapSpec::new(MapType::PercpuArray, 4, 1 << 30, 1);
    assert_eq!(errno(Map::create(pcpu, 1)), 7);
}

#[test]
fn the_error_says_what_was_needed_and_what_the_limit_is() {
    let memory = MapMemory::new(64 * MIB as u64);
    let e = Map::create_in(MapSpec::new(MapType::Array, 4, 1 << 20, 128), 2, &memory)
        .expect_err("128 MiB does not fit 64 MiB");
    match e {
        MapError::MemoryLimit {
            needed,
            used,
            limit,
        } => {
            assert!(needed >= 128 * MIB as u64, "needed {needed}");
            assert_eq!((used, limit), (0, 64 * MIB as u64));
        }
        other => panic!("not MemoryLimit: {other:?}"),
    }
    assert!(e.to_string().contains("map memory limit"), "{e}");
}

#[test]
fn large_hash_maps_share_one_limit() {
    // 40 hash maps of 16,384 x 4 KiB values (64 MiB of values each) in one 1 GiB account:
    // the first ones fit, then ENOMEM, and the account never goes over its limit.
    let memory = MapMemory::default();
    assert_eq!(memory.limit(), DEFAULT_MAP_MEMORY_LIMIT);
    let mut maps = Vec::new();
    let mut refused = 0;
    for t in [MapType::Hash, MapType::LruHash]
        .into_iter()
        .cycle()
        .take(40)
    {
        let spec = MapSpec::new(t, 8, 4096, 16_384);
        let (r, peak) = peak_of(|| Map::create_in(spec, 4, &memory));
        match r {
            Ok(m) => {
                assert!(m.memory_footprint() >= 64 * MIB as u64);
                maps.push(m);
            }
            Err(e) => {
                assert_eq!(e.errno(), 12, "{e}");
                assert!(peak < MIB, "a refused map allocated {peak} bytes");
                refused += 1;
            }
        }
        assert!(memory.used() <= memory.limit());
    }
    assert!((10..16).contains(&maps.len()), "{} maps fit", maps.len());
    assert_eq!(refused, 40 - maps.len());
    let used: u64 = maps.iter().map(Map::memory_footprint).sum();
    assert_eq!(memory.used(), used);
    // Charges come back on drop: after dropping two maps another one fits.
    maps.truncate(maps.len() - 2);
    let again = Map::create_in(
        MapSpec::new(MapType::PercpuHash, 8, 512, 16_384),
        4,
        &memory,
    );
    assert!(again.is_ok(), "{again:?}");
    drop(again);
    drop(maps);
    assert_eq!(memory.used(), 0);
}

#[test]
fn standalone_maps_get_their_own_default_account() {
    let a = Map::create(MapSpec::new(MapType::Array, 4, 8, 4), 2).unwrap();
    let b = Map::create(MapSpec::new(MapType::Array, 4, 8, 4), 2).unwrap();
    assert_eq!(a.memory().limit(), DEFAULT_MAP_MEMORY_LIMIT);
    assert!(!a.memory().same_account(b.memory()));
    assert_eq!(a.memory().used(), a.memory_footprint());
    // A map made in an account is charged there; a spin-lock map too.
    let memory = MapMemory::new(1 << 20);
    let c = Map::create_with_spin_lock_in(MapSpec::new(MapType::Hash, 4, 8, 16), 2, 0, &memory)
        .unwrap();
    assert!(c.memory().same_account(&memory));
    assert_eq!(memory.used(), c.memory_footprint());
    // A spec refused after charging (a bad name) gives the charge back.
    let bad = MapSpec::new(MapType::Array, 4, 8, 4).with_name("bad-name");
    assert_eq!(errno(Map::create_in(bad, 2, &memory)), 22);
    assert_eq!(memory.used(), c.memory_footprint());
}

#[test]
fn an_unlimited_account_still_refuses_what_cannot_be_simulated() {
    // Over the 4 GiB guest region: ENOMEM whatever the limit, and nothing allocated.
    let memory = MapMemory::unlimited();
    let (r, peak) = peak_of(|| {
        Map::create_in(
            MapSpec::new(MapType::Array, 4, 1 << 20, 1 << 13),
            1,
            &memory,
        )
    });
    assert_eq!(errno(r), 12);
    assert!(peak < MIB);
    assert_eq!(memory.used(), 0);
}

#[test]
fn event_and_trie_maps_are_charged_before_allocating() {
    let memory = MapMemory::new(MIB as u64);
    let lpm = |max| MapSpec::new(MapType::LpmTrie, 8, 64, max).with_flags(1); // NO_PREALLOC
    let cases = [
        // A 1 MiB ring is 2 MiB of data; 2,000 queued 1 KiB values; 10,000 LPM entries of
        // 64-byte values and their nodes; the same for a stack.
        MapSpec::new(MapType::Ringbuf, 0, 0, MIB as u32),
        MapSpec::new(MapType::Queue, 0, 1024, 2000),
        MapSpec::new(MapType::Stack, 0, 1024, 2000),
        lpm(10_000),
    ];
    for spec in cases {
        let t = spec.map_type;
        let (r, peak) = peak_of(|| Map::create_in(spec, 4, &memory));
        assert_eq!(errno(r), 12, "{t:?}");
        assert!(peak < 64 << 10, "{t:?}: {peak} bytes allocated");
        assert_eq!(memory.used(), 0);
    }
    // Smaller ones fit, are charged at least their data, and give it back on drop.
    let fits = [
        (MapSpec::new(MapType::Ringbuf, 0, 0, 256 << 10), 512 << 10),
        (MapSpec::new(MapType::Queue, 0, 1024, 500), 500 << 10),
        (lpm(1000), 64 * 1000),
        (MapSpec::new(MapType::PerfEventArray, 4, 4, 4), 32),
    ];
    for (spec, at_least) in fits {
        let t = spec.map_type;
        let m = Map::create_in(spec, 4, &memory).unwrap();
        assert!(m.memory_footprint() >= at_least, "{t:?}");
        assert_eq!(memory.used(), m.memory_footprint());
        drop(m);
        assert_eq!(memory.used(), 0);
    }
}
