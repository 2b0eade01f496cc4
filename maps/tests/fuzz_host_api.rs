//! Random host-API input (flags, sizes, keys, buffers, counts) never panics, only returns
//! kernel errnos, and keeps the map's invariants (element count, iteration, zero padding).

mod common;
use bpfvm_maps::{CpuId, Map, MapSpec, MapType};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut x = self.0;
        x ^= x >> 29;
        x.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (x >> 32)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.below(4) as u8).collect()
    }
    fn flags(&mut self) -> u64 {
        let lo = match self.below(4) {
            0 => 0,
            1 => self.below(32),
            2 => self.pick(&[8, 16, 9, 10, 11, 17, 18, 24, 3, 4, 12]),
            _ => self.next() & 0xffff_ffff,
        };
        let hi = match self.below(3) {
            0 => 0,
            1 => self.below(6),
            _ => self.next() >> 32,
        };
        (hi << 32) | lo
    }
}

const KNOWN: [i32; 13] = [1, 2, 7, 9, 12, 14, 16, 17, 22, 28, 34, 95, 524];

fn ok_or_known(r: Result<(), bpfvm_maps::MapError>) {
    if let Err(e) = r {
        assert!(
            KNOWN.contains(&e.errno()),
            "unexpected errno {} ({e})",
            e.errno()
        );
    }
}

const TYPES: [MapType; 13] = [
    MapType::Array,
    MapType::PercpuArray,
    MapType::Hash,
    MapType::PercpuHash,
    MapType::LruHash,
    MapType::LruPercpuHash,
    MapType::CgroupStorage,
    MapType::PercpuCgroupStorage,
    MapType::Queue,
    MapType::Stack,
    MapType::LpmTrie,
    MapType::Ringbuf,
    MapType::PerfEventArray,
];

fn random_map(r: &mut Rng) -> Option<Map> {
    let t = r.pick(&TYPES);
    let key_size = r.pick(&[0u32, 1, 3, 4, 8, 16, 513]);
    let value_size = r.pick(&[0u32, 1, 4, 7, 8, 12, 40]);
    let max_entries = r.pick(&[0u32, 1, 2, 3, 5, 16, 33, 4096]);
    let map_flags = r.pick(&[0u32, 1, 2, 4, 8, 16, 64, 128, 256, 384, 24, 1024, 3]);
    let ncpus = r.pick(&[0u32, 1, 2, 3, 5]);
    let spec = MapSpec::new(t, key_size, value_size, max_entries).with_flags(map_flags);
    let made = if r.below(4) == 0 {
        Map::create_with_spin_lock(spec, ncpus, r.pick(&[0u32, 2, 4, 8]))
    } else {
        Map::create(spec, ncpus)
    };
    match made {
        Ok(m) => Some(m),
        Err(e) => {
            assert!(KNOWN.contains(&e.errno()), "create: {e}");
            None
        }
    }
}

fn check_invariants(m: &Map) {
    let t = m.map_type();
    if m.map_flags() & bpfvm_maps::flags::create::WRONLY != 0 {
        return;
    }
    if t.is_hash() || t == MapType::LpmTrie {
        assert!(m.element_count() <= m.max_entries());
        assert_eq!(common::keys(m).len() as u32, m.element_count());
    }
    if t.is_percpu() && !t.is_cgroup_storage() {
        // Padding of full-buffer reads is always zero.
        let slot = m.slot_size();
        let vs = m.value_size() as usize;
        for key in common::keys(m).into_iter().take(4) {
            let mut buf = vec![0xffu8; slot * m.ncpus() as usize];
            m.lookup(&key, &mut buf, 0).unwrap();
            for c in 0..m.ncpus() as usize {
                assert!(buf[c * slot + vs..(c + 1) * slot].iter().all(|&b| b == 0));
            }
        }
    }
}

#[test]
fn random_host_calls_never_panic() {
    let mut r = Rng(0x5eed);
    let mut created = 0;
    for _ in 0..4000 {
        let Some(m) = random_map(&mut r) else {
            continue;
        };
        created += 1;
        let ks = m.key_size() as usize;
        if m.map_type().is_cgroup_storage() {
            for id in 0..r.below(4) {
                ok_or_known(m.attach(id, r.below(3) as u32).map(|_| ()));
            }
        }
        for _ in 0..150 {
            let key_len = if r.below(8) == 0 {
                r.below(ks as u64 + 3) as usize
            } else {
                ks
            };
            let mut key = r.bytes(key_len);
            if key.len() >= 4 && m.map_type().is_array() {
                key[..4].copy_from_slice(
                    &(r.below(u64::from(m.max_entries()) + 2) as u32).to_ne_bytes(),
                );
            }
            let flags = r.flags();
            let vlen = match r.below(3) {
                0 => m.host_value_size(flags),
                1 => m.value_size() as usize,
                _ => r.below(120) as usize,
            };
            let value = r.bytes(vlen);
            let mut out = vec![0u8; vlen];
            let count0 = r.below(12) as u32;
            let mut count = count0;
            let nb = r.below(4) as usize * 8;
            let (mut ob, mut kb, mut vb) = (
                vec![0u8; r.below(20) as usize],
                vec![0u8; nb * 4],
                vec![0u8; nb * 40],
            );
            let inb_len = r.below(20) as usize;
            let inb = if r.below(2) == 0 {
                None
            } else {
                Some(r.bytes(inb_len))
            };
            let cpu = CpuId(r.below(6) as u32);
            match r.below(15) {
                0..=2 => ok_or_known(m.update(&key, &value, flags)),
                3..=4 => ok_or_known(m.lookup(&key, &mut out, flags)),
                5 => ok_or_known(m.delete(&key, if r.below(4) == 0 { flags } else { 0 })),
                6 => ok_or_known(m.get_next_key(
                    if r.below(2) == 0 { None } else { Some(&key) },
                    &mut out,
                    flags & 1,
                )),
                7 => ok_or_known(m.lookup_and_delete(&key, &mut out, flags & 0x1f)),
                8 => ok_or_known(m.lookup_batch(
                    inb.as_deref(),
                    &mut ob,
                    &mut kb,
                    &mut vb,
                    &mut count,
                    flags,
                    r.below(2),
                )),
                9 => ok_or_known(m.lookup_and_delete_batch(
                    inb.as_deref(),
                    &mut ob,
                    &mut kb,
                    &mut vb,
                    &mut count,
                    flags,
                    0,
                )),
                10 => ok_or_known(m.update_batch(&kb, &vb, &mut count, flags, 0)),
                11 => ok_or_known(m.delete_batch(&kb, &mut count, flags & 0xff, 0)),
                12 => {
                    ok_or_known(m.prog_update(cpu, &key, &value, flags & 0x1f));
                    let _ = m.prog_lookup(cpu, &key);
                    let _ = m.prog_lookup_percpu(cpu, &key, r.below(6) as u32);
                }
                13 => {
                    ok_or_known(m.set_host_cpu(cpu));
                    ok_or_known(m.prog_delete(cpu, &key));
                }
                _ => {
                    // The program-side and consumer entry points of queues, ring buffers
                    // and perf event arrays, on every map type.
                    ok_or_known(m.prog_push(cpu, &value, flags & 7));
                    ok_or_known(m.prog_pop(cpu, &mut out, r.below(2) == 0));
                    if let Some(res) = m.ringbuf_reserve(r.below(5000)) {
                        m.ringbuf_write(&res, r.below(8) as usize, &value);
                        m.ringbuf_commit(&res, r.below(2) == 0);
                    }
                    let _ = m.ringbuf_query(r.below(5));
                    ok_or_known(m.ringbuf_consume().map(drop));
                    ok_or_known(m.perf_event_open(r.below(4) as u32, cpu, r.pick(&[0, 1, 2, 3])));
                    ok_or_known(m.perf_output(cpu, flags, &value));
                    ok_or_known(m.perf_read(r.below(4) as u32).map(drop));
                }
            }
            assert!(count <= count0, "count only shrinks");
        }
        check_invariants(&m);
    }
    assert!(created > 300, "only {created} maps created");
}
