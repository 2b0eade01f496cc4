//! Concurrency: N threads acting as N CPUs increment their own per-CPU slots through
//! program-side pointers while the host reads with BPF_F_CPU; no update is lost, and
//! concurrent host inserts/deletes never disturb program lookups.

mod common;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use bpfvm_maps::{CpuId, Map, MapFlags, MapType};
use common::*;

const N: u32 = 4;
#[cfg(not(miri))]
const ITERS: u64 = 20_000;
#[cfg(miri)]
const ITERS: u64 = 60;

fn run_counters(m: Arc<Map>) {
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (m, done) = (m.clone(), done.clone());
        thread::spawn(move || {
            let mut last = [0u64; N as usize];
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) || reads < 10 {
                for c in 0..N {
                    let mut one = [0u8; 8];
                    m.lookup(&k(0), &mut one, MapFlags::cpu(c).bits()).unwrap();
                    let v = u64::from_ne_bytes(one);
                    assert!(v >= last[c as usize], "counter of cpu {c} went backwards");
                    last[c as usize] = v;
                }
                reads += 1;
            }
        })
    };
    let workers: Vec<_> = (0..N)
        .map(|c| {
            let m = m.clone();
            thread::spawn(move || {
                for _ in 0..ITERS {
                    let p = m.prog_lookup(CpuId(c), &k(0)).expect("value");
                    // SAFETY: `p` is the 8-byte aligned start of this CPU's 8-byte slot in the
                    // map's arena, which never moves while `m` (held here) lives; all arena
                    // accesses are atomic.
                    let cell = unsafe { &*p.as_ptr().cast::<AtomicU64>() };
                    cell.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    reader.join().unwrap();
    let mut all = vec![0u8; 8 * N as usize];
    m.lookup(&k(0), &mut all, 0).unwrap();
    assert_eq!(u64s(&all), vec![ITERS; N as usize], "{:?}", m.map_type());
}

#[test]
fn per_cpu_counters_lose_no_update() {
    for t in PERCPU_TYPES {
        let m = Arc::new(map(t, 8, 4, N));
        m.update(&k(0), &v64(0), MapFlags::ALL_CPUS.bits()).unwrap();
        run_counters(m);
    }
}

#[test]
fn host_inserts_and_deletes_race_with_program_lookups() {
    let m = Arc::new(map(MapType::LruPercpuHash, 8, 64, N));
    let stop = Arc::new(AtomicBool::new(false));
    let host = {
        let (m, stop) = (m.clone(), stop.clone());
        thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Acquire) {
                m.set_host_cpu(CpuId(i % N)).unwrap();
                m.update(&k(i % 200), &v64(u64::from(i)), MapFlags::ALL_CPUS.bits())
                    .unwrap();
                let _ = m.delete(&k((i + 7) % 200), 0);
                i += 1;
            }
        })
    };
    let progs: Vec<_> = (0..N)
        .map(|c| {
            let m = m.clone();
            thread::spawn(move || {
                for i in 0..ITERS as u32 {
                    if let Some(p) = m.prog_lookup(CpuId(c), &k(i % 200)) {
                        assert!(m.arena().contains_slot_start(p));
                    }
                    let _ = m.prog_update(CpuId(c), &k((i * 7) % 200), &v64(1), 0);
                }
            })
        })
        .collect();
    for p in progs {
        p.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    host.join().unwrap();
    assert!(m.element_count() <= 64);
    assert_eq!(keys(&m).len() as u32, m.element_count());
}
