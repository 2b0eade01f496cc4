//! Concurrency stress with real programs: one program runs on all N simulated CPUs, bumping
//! per-CPU counters (PERCPU_ARRAY, PERCPU_HASH), a shared counter (ARRAY, atomic add) and
//! creating/deleting a per-CPU scratch key with helpers 2 and 3, while host threads read with
//! BPF_F_CPU, write with BPF_F_CPU / BPF_F_ALL_CPUS, walk the hash with batch lookups and
//! delete scratch keys. At the end the totals add up exactly and no call failed with an errno
//! the spec does not allow.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bpfvm::maps::{Map, MapFlags, MapSpec, MapType};
use bpfvm::{EngineKind, Input, Program, ProgramType, Vm};
use common::*;

const N: u32 = 4;
const RUNS: u64 = 10_000;
const HOST_BUDGET: Duration = Duration::from_secs(8);
/// PERCPU_HASH keys: 0 is the counter, 100 + cpu the programs' scratch keys, 200.. the host's.
const SCRATCH: i32 = 100;
const HOST_KEYS: u32 = 8;
const ENOENT: i32 = 2;

fn prog_code() -> Vec<u8> {
    let mut v: Vec<[u8; 8]> = Vec::new();
    // Bump `*(u64 *)lookup(map, 0)` (plain or atomic).
    let bump = |v: &mut Vec<[u8; 8]>, map: i32, atomic: bool| {
        v.push(ins(0x62, 10, 0, -4, 0)); // *(u32 *)(r10 - 4) = 0
        v.push(ins(0x18, 1, 1, 0, map));
        v.push(ins(0, 0, 0, 0, 0));
        v.push(ins(0xbf, 2, 10, 0, 0));
        v.push(ins(0x07, 2, 0, 0, -4));
        v.push(ins(0x85, 0, 0, 0, 1)); // call map_lookup_elem
        if atomic {
            v.push(ins(0x15, 0, 0, 2, 0)); // if r0 == 0 skip
            v.push(ins(0xb7, 1, 0, 0, 1));
            v.push(ins(0xdb, 0, 1, 0, 0)); // lock *(u64 *)r0 += 1
        } else {
            v.push(ins(0x15, 0, 0, 3, 0));
            v.push(ins(0x79, 1, 0, 0, 0));
            v.push(ins(0x07, 1, 0, 0, 1));
            v.push(ins(0x7b, 0, 1, 0, 0));
        }
    };
    bump(&mut v, 0, false); // PERCPU_ARRAY
    bump(&mut v, 1, false); // PERCPU_HASH counter
    bump(&mut v, 2, true); // shared ARRAY
                           // key = SCRATCH + smp_processor_id(); r7 = map_update_elem(hash, &key, &1, BPF_ANY)
    v.push(ins(0x85, 0, 0, 0, 8));
    v.push(ins(0x07, 0, 0, 0, SCRATCH));
    v.push(ins(0x63, 10, 0, -8, 0)); // *(u32 *)(r10 - 8) = r0
    v.push(ins(0x7a, 10, 0, -16, 1)); // *(u64 *)(r10 - 16) = 1
    v.push(ins(0x18, 1, 1, 0, 1));
    v.push(ins(0, 0, 0, 0, 0));
    v.push(ins(0xbf, 2, 10, 0, 0));
    v.push(ins(0x07, 2, 0, 0, -8));
    v.push(ins(0xbf, 3, 10, 0, 0));
    v.push(ins(0x07, 3, 0, 0, -16));
    v.push(ins(0xb7, 4, 0, 0, 0));
    v.push(ins(0x85, 0, 0, 0, 2));
    v.push(ins(0xbf, 7, 0, 0, 0));
    // r8 = map_delete_elem(hash, &key): 0 or -ENOENT (the host may have deleted it).
    v.push(ins(0x18, 1, 1, 0, 1));
    v.push(ins(0, 0, 0, 0, 0));
    v.push(ins(0xbf, 2, 10, 0, 0));
    v.push(ins(0x07, 2, 0, 0, -8));
    v.push(ins(0x85, 0, 0, 0, 3));
    // return r7 (update status) | (r8 != 0 && r8 != -ENOENT) << 32
    v.push(ins(0xb7, 8, 0, 0, 0));
    v.push(ins(0x15, 0, 0, 2, 0)); // if r0 == 0 goto +2
    v.push(ins(0x15, 0, 0, 1, -ENOENT)); // if r0 == -ENOENT goto +1
    v.push(ins(0xb7, 8, 0, 0, 1));
    v.push(ins(0x67, 8, 0, 0, 32)); // r8 <<= 32
    v.push(ins(0xbf, 0, 7, 0, 0));
    v.push(ins(0x4f, 0, 8, 0, 0)); // r0 |= r8
    v.push(EXIT);
    code(&v)
}

#[test]
fn programs_on_all_cpus_and_host_traffic_lose_no_update() {
    let vm = Vm::builder().cpus(N).build();
    let pa = Arc::new(Map::create(MapSpec::new(MapType::PercpuArray, 4, 8, 2), N).unwrap());
    // Room for the counter, N program scratch keys and the host keys: never E2BIG.
    let ph = Arc::new(
        Map::create(
            MapSpec::new(MapType::PercpuHash, 4, 8, 1 + N + HOST_KEYS),
            N,
        )
        .unwrap(),
    );
    let sa = Arc::new(Map::create(MapSpec::new(MapType::Array, 4, 8, 1), N).unwrap());
    ph.update(
        &0u32.to_ne_bytes(),
        &0u64.to_ne_bytes(),
        MapFlags::ALL_CPUS.bits(),
    )
    .unwrap();
    let maps: Vec<Arc<dyn bpfvm::helpers::ProgramMap>> = vec![pa.clone(), ph.clone(), sa.clone()];
    let prog = vm
        .load(
            Program::new(prog_code(), ProgramType::Unspecified)
                .with_dyn_maps(maps)
                .with_engine(EngineKind::Interpreter),
        )
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let reader = {
        let (pa, ph, stop) = (pa.clone(), ph.clone(), stop.clone());
        thread::spawn(move || {
            let mut last = [[0u64; N as usize]; 2];
            let mut rounds = 0u64;
            while !stop.load(Ordering::Acquire) && start.elapsed() < HOST_BUDGET {
                for (i, m) in [&pa, &ph].into_iter().enumerate() {
                    for cpu in 0..N {
                        let mut one = [0u8; 8];
                        m.lookup(&0u32.to_ne_bytes(), &mut one, MapFlags::cpu(cpu).bits())
                            .expect("counter exists");
                        let v = u64::from_ne_bytes(one);
                        assert!(v >= last[i][cpu as usize], "counter went back");
                        last[i][cpu as usize] = v;
                    }
                }
                // A bucket walk of the per-CPU hash: Ok / ENOSPC / final ENOENT only, and
                // the counter key is returned exactly once.
                let mut in_batch: Option<[u8; 4]> = None;
                let mut counter_seen = 0;
                let mut want = 2;
                let cap = ph.max_entries() as usize;
                loop {
                    let mut keys = vec![0u8; 4 * cap];
                    let mut vals = vec![0u8; 8 * N as usize * cap];
                    let mut out = [0u8; 4];
                    let mut count = want;
                    let r = ph.lookup_batch(
                        in_batch.as_ref().map(|b| &b[..]),
                        &mut out,
                        &mut keys,
                        &mut vals,
                        &mut count,
                        0,
                        0,
                    );
                    counter_seen += keys
                        .chunks(4)
                        .take(count as usize)
                        .filter(|k| *k == 0u32.to_ne_bytes())
                        .count();
                    match r {
                        Ok(()) => in_batch = Some(out),
                        Err(e) if e.errno() == 28 => {
                            want += 1;
                            in_batch = Some(out);
                        }
                        Err(e) if e.errno() == ENOENT => break,
                        Err(e) => panic!("lookup_batch: {e}"),
                    }
                }
                assert_eq!(counter_seen, 1);
                rounds += 1;
            }
            rounds
        })
    };
    let writer = {
        let (pa, ph, stop) = (pa.clone(), ph.clone(), stop.clone());
        thread::spawn(move || {
            let mut g = 0u64;
            while !stop.load(Ordering::Acquire) && start.elapsed() < HOST_BUDGET {
                g += 1;
                let cpu = (g % u64::from(N)) as u32;
                pa.update(
                    &1u32.to_ne_bytes(),
                    &g.to_ne_bytes(),
                    MapFlags::ALL_CPUS.bits(),
                )
                .unwrap();
                pa.update(
                    &1u32.to_ne_bytes(),
                    &g.to_ne_bytes(),
                    MapFlags::cpu(cpu).bits(),
                )
                .unwrap();
                let hk = (200 + g % u64::from(HOST_KEYS)) as u32;
                ph.update(
                    &hk.to_ne_bytes(),
                    &g.to_ne_bytes(),
                    MapFlags::cpu(cpu).bits(),
                )
                .expect("host key fits");
                ph.update(
                    &hk.to_ne_bytes(),
                    &g.to_ne_bytes(),
                    MapFlags::ALL_CPUS.bits(),
                )
                .expect("host key fits");
                // Delete a program scratch key and a host key (may be gone: ENOENT only).
                let sk = (SCRATCH as u32 + cpu).to_ne_bytes();
                if let Err(e) = ph.delete(&sk, 0) {
                    assert_eq!(e.errno(), ENOENT, "{e}");
                }
                let keys: Vec<u8> = [hk, 200 + (hk + 1) % HOST_KEYS]
                    .iter()
                    .flat_map(|k| k.to_ne_bytes())
                    .collect();
                let mut count = 2;
                if let Err(e) = ph.delete_batch(&keys, &mut count, 0, 0) {
                    assert_eq!(e.errno(), ENOENT, "{e}");
                }
            }
            g
        })
    };

    let results = vm.run_on_all(&prog, RUNS, &Input::empty()).unwrap();
    stop.store(true, Ordering::Release);
    let rounds = reader.join().unwrap();
    let writes = writer.join().unwrap();
    assert!(
        rounds > 0 && writes > 0,
        "host threads ran ({rounds}, {writes})"
    );
    for (cpu, r) in results.iter().enumerate() {
        assert_eq!(r.len() as u64, RUNS);
        assert!(
            r.iter().all(|&x| x == 0),
            "cpu {cpu}: a helper returned an unexpected error"
        );
    }
    let read = |m: &Map| {
        let mut all = [0u8; 8 * N as usize];
        m.lookup(&0u32.to_ne_bytes(), &mut all, 0).unwrap();
        all.chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(read(&pa), vec![RUNS; N as usize]);
    assert_eq!(read(&ph), vec![RUNS; N as usize]);
    let mut one = [0u8; 8];
    sa.lookup(&0u32.to_ne_bytes(), &mut one, 0).unwrap();
    assert_eq!(u64::from_ne_bytes(one), RUNS * u64::from(N));
}
