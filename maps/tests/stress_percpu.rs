//! Concurrency stress on the maps alone: N threads acting as N CPUs increment per-CPU and
//! shared counters through program-side pointers (and create/delete scratch keys with the
//! program-side helpers) while host threads read with BPF_F_CPU, write with BPF_F_CPU /
//! BPF_F_ALL_CPUS, run batch lookups and delete scratch keys; at the end every counter adds up
//! exactly and no call returned an errno the spec does not allow for it.

mod common;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bpfvm_maps::{CpuId, Map, MapFlags, MapSpec, MapType};
use common::*;

const N: u32 = 4;
/// Counter keys (pre-created, never deleted).
const COUNTERS: u32 = 8;
/// Scratch keys created and deleted concurrently, above the counter keys.
const SCRATCH: u32 = 16;
/// The PERCPU_ARRAY index only the host writes (monotonic values).
const HOST_KEY: u32 = COUNTERS;

#[cfg(not(miri))]
const ITERS: u64 = 100_000;
#[cfg(miri)]
const ITERS: u64 = 40;
/// Wall-clock cap for the host loops (the CPU threads bound the test by ITERS).
const HOST_BUDGET: Duration = Duration::from_secs(8);

const ENOENT: i32 = 2;

/// Add 1 to the u64 behind a program-side pointer.
fn bump(p: NonNull<u8>) {
    // SAFETY: `p` comes from `prog_lookup*` on a map whose values are u64 (8-byte aligned
    // slots); the arena never moves or frees while the map (held by the caller) lives, and
    // every access to arena bytes is atomic.
    let cell = unsafe { &*p.as_ptr().cast::<AtomicU64>() };
    cell.fetch_add(1, Ordering::Relaxed);
}

struct Maps {
    /// PERCPU_ARRAY: counters 0..COUNTERS, then HOST_KEY.
    pa: Map,
    /// PERCPU_HASH: counters 0..COUNTERS plus scratch keys.
    ph: Map,
    /// HASH shared by all CPUs: counters 0..COUNTERS.
    sh: Map,
    /// ARRAY shared by all CPUs.
    sa: Map,
}

fn maps() -> Arc<Maps> {
    let pa = map(MapType::PercpuArray, 8, COUNTERS + 1, N);
    let ph = Map::create(
        MapSpec::new(MapType::PercpuHash, 4, 8, COUNTERS + SCRATCH),
        N,
    )
    .unwrap();
    let sh = map(MapType::Hash, 8, COUNTERS, N);
    let sa = map(MapType::Array, 8, COUNTERS, N);
    for i in 0..COUNTERS {
        ph.update(&k(i), &v64(0), MapFlags::ALL_CPUS.bits())
            .unwrap();
        sh.update(&k(i), &v64(0), 0).unwrap();
    }
    Arc::new(Maps { pa, ph, sh, sa })
}

/// A CPU thread: ITERS rounds of counter bumps and scratch-key churn.
fn cpu_thread(m: Arc<Maps>, cpu: u32) {
    let c = CpuId(cpu);
    for i in 0..ITERS {
        let key = k((i % u64::from(COUNTERS)) as u32);
        bump(m.pa.prog_lookup(c, &key).expect("per-CPU array counter"));
        bump(m.ph.prog_lookup(c, &key).expect("per-CPU hash counter"));
        bump(m.sh.prog_lookup(c, &key).expect("shared hash counter"));
        bump(m.sa.prog_lookup(c, &key).expect("shared array counter"));
        // Helper 195 on the CPU's own copy counts the same as helper 1.
        if i % 16 == 0 {
            let p = m.ph.prog_lookup_percpu(c, &k(0), cpu).expect("own copy");
            bump(p);
            bump(m.pa.prog_lookup_percpu(c, &k(0), cpu).expect("own copy"));
        }
        // Scratch keys: the map has room for all of them, so only ENOENT is allowed.
        let s = k(COUNTERS + (i as u32 * 7 + cpu) % SCRATCH);
        if let Err(e) = m.ph.prog_update(c, &s, &v64(i), 0) {
            panic!("prog_update of a scratch key: {e}");
        }
        if i % 3 == 0 {
            if let Err(e) = m.ph.prog_delete(c, &s) {
                assert_eq!(e.errno(), ENOENT, "prog_delete: {e}");
            }
        }
    }
}

/// Expected per-CPU count of counter `key` on `pa`/`ph` (helper 195 bumps included).
fn expected_percpu(key: u32) -> u64 {
    let per_key = (0..ITERS)
        .filter(|i| i % u64::from(COUNTERS) == u64::from(key))
        .count() as u64;
    let extra = if key == 0 { ITERS.div_ceil(16) } else { 0 };
    per_key + extra
}

#[test]
fn counters_add_up_under_host_traffic() {
    let m = maps();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();

    // Host 1: reads counters with BPF_F_CPU and full buffers; per-CPU values never go back.
    let reader = {
        let (m, stop) = (m.clone(), stop.clone());
        thread::spawn(move || {
            let mut last = vec![0u64; (COUNTERS * N) as usize];
            let mut rounds = 0u64;
            while (!stop.load(Ordering::Acquire) || rounds < 2) && start.elapsed() < HOST_BUDGET {
                for key in 0..COUNTERS {
                    for cpu in 0..N {
                        let mut one = [0u8; 8];
                        m.ph.lookup(&k(key), &mut one, MapFlags::cpu(cpu).bits())
                            .expect("counter key exists");
                        let v = u64::from_ne_bytes(one);
                        let at = (key * N + cpu) as usize;
                        assert!(v >= last[at], "counter {key} cpu {cpu} went back");
                        last[at] = v;
                    }
                    let mut all = [0u8; 8 * N as usize];
                    m.pa.lookup(&k(key), &mut all, 0).unwrap();
                }
                // Batch lookup of the per-CPU array with BPF_F_CPU.
                let mut keys = [0u8; 4 * (COUNTERS + 1) as usize];
                let mut vals = [0u8; 8 * (COUNTERS + 1) as usize];
                let mut out = [0u8; 4];
                let mut count = COUNTERS + 1;
                let r = m.pa.lookup_batch(
                    None,
                    &mut out,
                    &mut keys,
                    &mut vals,
                    &mut count,
                    MapFlags::cpu((rounds % u64::from(N)) as u32).bits(),
                    0,
                );
                // Exactly max_entries requested: all copied, then Ok.
                r.expect("array lookup_batch");
                assert_eq!(count, COUNTERS + 1);
                rounds += 1;
            }
        })
    };

    // Host 2: writes the host-only key with BPF_F_ALL_CPUS / BPF_F_CPU (increasing values)
    // and churns scratch keys of the per-CPU hash with batch lookups and deletes.
    let writer = {
        let (m, stop) = (m.clone(), stop.clone());
        thread::spawn(move || {
            let mut g = 0u64;
            while !stop.load(Ordering::Acquire) && start.elapsed() < HOST_BUDGET {
                g += 1;
                m.pa.update(&k(HOST_KEY), &v64(2 * g), MapFlags::ALL_CPUS.bits())
                    .unwrap();
                let cpu = (g % u64::from(N)) as u32;
                m.pa.update(&k(HOST_KEY), &v64(2 * g + 1), MapFlags::cpu(cpu).bits())
                    .unwrap();
                let s = k(COUNTERS + (g as u32 % SCRATCH));
                m.ph.update(&s, &v64(g), MapFlags::cpu(cpu).bits())
                    .expect("host BPF_F_CPU update of a scratch key");
                m.ph.update(&s, &v64(g), MapFlags::ALL_CPUS.bits())
                    .expect("host BPF_F_ALL_CPUS update of a scratch key");
                let mut one = [0u8; 8];
                if let Err(e) = m.ph.lookup(&s, &mut one, MapFlags::cpu(cpu).bits()) {
                    assert_eq!(e.errno(), ENOENT, "{e}");
                }
                if g % 5 == 0 {
                    let mut full = [0u8; 8 * N as usize];
                    if let Err(e) = m.ph.lookup_and_delete(&s, &mut full, 0) {
                        assert_eq!(e.errno(), ENOENT, "{e}");
                    }
                } else if g % 5 == 1 {
                    let keys: Vec<u8> = (0..3)
                        .flat_map(|j| k(COUNTERS + (g as u32 + j) % SCRATCH))
                        .collect();
                    let mut count = 3;
                    if let Err(e) = m.ph.delete_batch(&keys, &mut count, 0, 0) {
                        assert_eq!(e.errno(), ENOENT, "{e}");
                        assert!(count < 3);
                    }
                } else if g % 5 == 2 {
                    batch_walk(&m.ph, g);
                } else if let Err(e) = m.ph.delete(&s, 0) {
                    assert_eq!(e.errno(), ENOENT, "{e}");
                }
            }
            g
        })
    };

    let cpus: Vec<_> = (0..N)
        .map(|cpu| {
            let m = m.clone();
            thread::spawn(move || cpu_thread(m, cpu))
        })
        .collect();
    for c in cpus {
        c.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    reader.join().unwrap();
    let g = writer.join().unwrap();

    // Totals: per-CPU maps hold exactly each CPU's increments; shared maps the sum.
    for key in 0..COUNTERS {
        let want = expected_percpu(key);
        for pm in [&m.pa, &m.ph] {
            let mut all = [0u8; 8 * N as usize];
            pm.lookup(&k(key), &mut all, 0).unwrap();
            assert_eq!(
                u64s(&all),
                vec![want; N as usize],
                "{:?} key {key}",
                pm.map_type()
            );
        }
        let shared = expected_percpu(key) - if key == 0 { ITERS.div_ceil(16) } else { 0 };
        for sm in [&m.sh, &m.sa] {
            let mut one = [0u8; 8];
            sm.lookup(&k(key), &mut one, 0).unwrap();
            assert_eq!(
                u64::from_ne_bytes(one),
                shared * u64::from(N),
                "{:?} key {key}",
                sm.map_type()
            );
        }
    }
    // The host-only key ends with the writer's last values.
    if g > 0 {
        let mut all = [0u8; 8 * N as usize];
        m.pa.lookup(&k(HOST_KEY), &mut all, 0).unwrap();
        let last_cpu = (g % u64::from(N)) as usize;
        for (c, v) in u64s(&all).into_iter().enumerate() {
            let want = if c == last_cpu { 2 * g + 1 } else { 2 * g };
            assert_eq!(v, want, "host key cpu {c}");
        }
    }
    // Counter keys survived the scratch churn; the element count matches the iteration.
    assert!(m.ph.element_count() <= COUNTERS + SCRATCH);
    let ks = keys(&m.ph);
    assert_eq!(ks.len() as u32, m.ph.element_count());
    for key in 0..COUNTERS {
        assert!(ks.contains(&k(key).to_vec()), "counter key {key} lost");
    }
}

/// A full bucket walk of LOOKUP_BATCH on a per-CPU hash under concurrent churn: only Ok,
/// ENOSPC (then retried bigger) and the final ENOENT; every counter key is seen once.
fn batch_walk(m: &Map, g: u64) {
    let cap = m.max_entries() as usize;
    let flags = if g % 2 == 0 {
        0
    } else {
        MapFlags::cpu((g % u64::from(N)) as u32).bits()
    };
    let stride = m.host_value_size(flags);
    let mut in_batch: Option<[u8; 4]> = None;
    let mut seen = Vec::new();
    let mut want = 2u32;
    for _ in 0..4 * cap {
        let mut keys = vec![0u8; 4 * cap];
        let mut vals = vec![0u8; stride * cap];
        let mut out = [0u8; 4];
        let mut count = want;
        let r = m.lookup_batch(
            in_batch.as_ref().map(|b| &b[..]),
            &mut out,
            &mut keys,
            &mut vals,
            &mut count,
            flags,
            0,
        );
        seen.extend(keys.chunks(4).take(count as usize).map(|c| c.to_vec()));
        match r {
            Ok(()) => in_batch = Some(out),
            Err(e) if e.errno() == 28 => {
                assert_eq!(count, 0);
                want += 1;
                in_batch = Some(out);
            }
            Err(e) if e.errno() == ENOENT => {
                for key in 0..COUNTERS {
                    let n = seen.iter().filter(|s| **s == k(key)).count();
                    assert_eq!(n, 1, "counter key {key} seen {n} times in a batch walk");
                }
                return;
            }
            Err(e) => panic!("lookup_batch: {e}"),
        }
    }
    panic!("batch walk does not end");
}
