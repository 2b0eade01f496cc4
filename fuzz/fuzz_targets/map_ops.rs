//! Sequences of host-side and program-side map operations with random flags, keys and buffer
//! sizes on ARRAY, PERCPU_ARRAY, HASH and PERCPU_HASH, each checked against the independent
//! model in `bpfvm_fuzz::model`: every errno, every output byte (bytes past the copied size
//! untouched), batch counts, and the full contents after each step.
#![no_main]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU8, Ordering};

use bpfvm_fuzz::input::Input;
use bpfvm_fuzz::model::{e, Model, Ty, ALL_CPUS, CPU, LOCK};
use bpfvm_maps::{CpuId, Map, MapError, MapSpec, MapType};
use libfuzzer_sys::fuzz_target;

const FILL: u8 = 0xa5;

fn errno<T>(r: Result<T, MapError>) -> Result<T, i32> {
    r.map_err(|e| e.errno())
}

struct Case<'a> {
    map: Map,
    m: Model,
    inp: Input<'a>,
    step: usize,
}

impl Case<'_> {
    fn key(&mut self) -> u32 {
        if self.inp.below(8) == 0 {
            self.inp.u32()
        } else {
            self.inp.below(self.m.max + 3)
        }
    }

    fn key_len(&mut self) -> usize {
        if self.inp.below(32) == 0 {
            self.inp.below(4) as usize
        } else {
            4
        }
    }

    fn cpu(&mut self) -> u32 {
        self.inp.below(self.m.ncpus)
    }

    fn check(&self, what: &str, got: Result<(), i32>, want: Result<(), i32>) {
        assert_eq!(got, want, "step {}: {what} ({:?})", self.step, self.m.ty);
    }

    /// The bytes past `n` of an output buffer must be untouched.
    fn untouched(&self, what: &str, buf: &[u8], n: usize) {
        assert!(
            buf.iter().skip(n).all(|&b| b == FILL),
            "step {}: {what} wrote past {n} bytes",
            self.step
        );
    }

    fn op(&mut self) {
        match self.inp.below(15) {
            0 | 1 => self.lookup(),
            2..=4 => self.update(),
            5 => self.delete(),
            6 => self.next_key(),
            7 => self.lookup_and_delete(),
            8 => self.prog_lookup(),
            9 | 10 => self.prog_update(),
            11 => self.prog_delete(),
            12 => self.update_batch(),
            13 => self.lookup_batch(),
            _ => match self.inp.below(8) {
                0 => self.freeze(),
                1 => self.delete_batch(),
                _ => self.lookup_batch(),
            },
        }
    }

    fn lookup(&mut self) {
        let (key, kl, f) = (self.key(), self.key_len(), self.inp.flags(self.m.ncpus));
        let size = self.m.host_size(f);
        let len = self.inp.len_around(size);
        let mut buf = vec![FILL; len];
        let got = errno(self.map.lookup(&key.to_ne_bytes()[..kl], &mut buf, f));
        let pre = self.m.check_op_flags(f, LOCK | CPU);
        let want = match pre {
            Err(x) => Err(x),
            Ok(()) if kl < 4 => Err(e::EFAULT),
            Ok(()) => match self.m.value_out(key, f) {
                None if len < size && got == Err(e::EFAULT) => Err(e::EFAULT),
                None => Err(e::ENOENT),
                Some(_) if len < size => Err(e::EFAULT),
                Some(v) => {
                    assert_eq!(&buf[..size], &v[..], "step {}: lookup bytes", self.step);
                    Ok(())
                }
            },
        };
        self.check("lookup", got, want);
        let n = if got.is_ok() { size } else { 0 };
        self.untouched("lookup", &buf, n);
    }

    fn update(&mut self) {
        let (key, kl, f) = (self.key(), self.key_len(), self.inp.flags(self.m.ncpus));
        let exact = self.m.host_size(f);
        let len = self.inp.len_around(exact);
        let value = self.inp.bytes(len);
        let got = errno(self.map.update(&key.to_ne_bytes()[..kl], &value, f));
        let want = self.m.update(key, kl, &value, f);
        self.check("update", got, want);
    }

    fn delete(&mut self) {
        let key = self.key();
        let kl = self.key_len();
        let f = if self.inp.below(8) == 0 {
            self.inp.flags(self.m.ncpus)
        } else {
            0
        };
        let got = errno(self.map.delete(&key.to_ne_bytes()[..kl], f));
        let want = self.m.delete(key, kl, f);
        self.check("delete", got, want);
    }

    fn next_key(&mut self) {
        let key = match self.inp.below(4) {
            0 => None,
            _ => Some(self.key()),
        };
        let f = if self.inp.below(16) == 0 {
            self.inp.flags(self.m.ncpus)
        } else {
            0
        };
        let mut out = [FILL; 8];
        let got = errno(self.map.get_next_key(
            key.map(u32::to_ne_bytes).as_ref().map(|k| &k[..]),
            &mut out[..4],
            f,
        ));
        if f != 0 {
            self.check("get_next_key flags", got, Err(e::EINVAL));
            return;
        }
        let next = u32::from_ne_bytes(out[..4].try_into().unwrap());
        if self.m.ty.array() {
            let want = self
                .m
                .array_next(key)
                .map(|k| assert_eq!(next, k, "step {}: next key", self.step));
            self.check("array get_next_key", got, want);
        } else if self.m.elems.is_empty() {
            self.check("get_next_key of empty hash", got, Err(e::ENOENT));
        } else if key.is_none_or(|k| !self.m.exists(k)) {
            // NULL or a missing key: the first element.
            self.check("get_next_key from the start", got, Ok(()));
            assert!(
                self.m.exists(next),
                "step {}: next key {next} not in the map",
                self.step
            );
        } else if got.is_ok() {
            assert!(
                self.m.exists(next) && Some(next) != key,
                "step {}: bad next key",
                self.step
            );
        } else {
            self.check("get_next_key at the end", got, Err(e::ENOENT));
        }
        self.untouched("get_next_key", &out, 4);
    }

    fn lookup_and_delete(&mut self) {
        let (key, kl) = (self.key(), self.key_len());
        let f = if self.inp.below(4) == 0 {
            self.inp.flags(self.m.ncpus)
        } else {
            0
        };
        let size = self.m.host_size(0);
        let len = self.inp.len_around(size);
        let mut buf = vec![FILL; len];
        let got = errno(
            self.map
                .lookup_and_delete(&key.to_ne_bytes()[..kl], &mut buf, f),
        );
        let want = if f & !LOCK != 0 {
            Err(e::EINVAL)
        } else if self.m.frozen {
            Err(e::EPERM)
        } else if f & LOCK != 0 {
            Err(e::EINVAL)
        } else if kl < 4 {
            Err(e::EFAULT)
        } else if self.m.ty.array() {
            Err(e::ENOTSUPP)
        } else if len < size {
            // Checked before the element is removed, so nothing is lost (either order of
            // ENOENT / EFAULT is fine for a missing key).
            if !self.m.exists(key) && got == Err(e::ENOENT) {
                Err(e::ENOENT)
            } else {
                Err(e::EFAULT)
            }
        } else {
            match self.m.value_out(key, 0) {
                None => Err(e::ENOENT),
                Some(v) => {
                    assert_eq!(
                        &buf[..size],
                        &v[..],
                        "step {}: lookup_and_delete bytes",
                        self.step
                    );
                    self.m.elems.remove(&key);
                    Ok(())
                }
            }
        };
        self.check("lookup_and_delete", got, want);
        let n = if got.is_ok() { size } else { 0 };
        self.untouched("lookup_and_delete", &buf, n);
    }

    fn read_ptr(&self, p: std::ptr::NonNull<u8>) -> Vec<u8> {
        let arena = self.map.arena();
        assert!(
            arena.contains_slot_start(p),
            "step {}: pointer outside the arena",
            self.step
        );
        (0..self.m.vs)
            .map(|i| {
                // SAFETY: `p` starts a slot of the map's arena (checked above), whose first
                // `value_size` bytes belong to the value; the arena lives as long as
                // `self.map`, and arena bytes are only accessed atomically.
                let b = unsafe { &*p.as_ptr().add(i).cast::<AtomicU8>() };
                b.load(Ordering::Relaxed)
            })
            .collect()
    }

    fn prog_lookup(&mut self) {
        let key = self.key();
        let cpu = self.inp.below(self.m.ncpus + 1);
        let percpu = self.inp.below(2) == 0;
        let p = if percpu {
            let target = self.inp.below(self.m.ncpus + 1);
            let p = self
                .map
                .prog_lookup_percpu(CpuId(cpu), &key.to_ne_bytes(), target);
            let want = cpu < self.m.ncpus
                && target < self.m.ncpus
                && self.m.ty.percpu()
                && self.m.exists(key);
            assert_eq!(p.is_some(), want, "step {}: prog_lookup_percpu", self.step);
            p.map(|p| (p, target))
        } else {
            let p = self.map.prog_lookup(CpuId(cpu), &key.to_ne_bytes());
            let want = cpu < self.m.ncpus && self.m.exists(key);
            assert_eq!(p.is_some(), want, "step {}: prog_lookup", self.step);
            p.map(|p| (p, cpu))
        };
        if let Some((p, c)) = p {
            let bytes = self.read_ptr(p);
            assert_eq!(
                Some(&bytes[..]),
                self.m.cpu_copy(key, c),
                "step {}: value via pointer",
                self.step
            );
        }
    }

    fn prog_update(&mut self) {
        let (key, cpu) = (self.key(), self.cpu());
        let f = if self.inp.below(2) == 0 {
            u64::from(self.inp.below(3))
        } else {
            self.inp.flags(self.m.ncpus)
        };
        let value = self.inp.bytes(self.m.vs);
        let got = errno(
            self.map
                .prog_update(CpuId(cpu), &key.to_ne_bytes(), &value, f),
        );
        let want = self.m.prog_update(cpu, key, &value, f);
        self.check("prog_update", got, want);
    }

    fn prog_delete(&mut self) {
        let (key, cpu) = (self.key(), self.cpu());
        let got = errno(self.map.prog_delete(CpuId(cpu), &key.to_ne_bytes()));
        let want = self.m.delete_checked(key);
        self.check("prog_delete", got, want);
    }

    fn freeze(&mut self) {
        let got = errno(self.map.freeze());
        let want = self.m.freeze();
        self.check("freeze", got, want);
    }

    fn update_batch(&mut self) {
        let count = self.inp.below(6);
        let f = match self.inp.below(4) {
            0 => 0,
            1 => ALL_CPUS,
            2 => CPU | (u64::from(self.inp.below(self.m.ncpus + 1)) << 32),
            _ => self.inp.flags(self.m.ncpus),
        };
        let stride = self.m.host_size(f);
        let keys: Vec<u8> = (0..count).flat_map(|_| self.key().to_ne_bytes()).collect();
        let kl = self.inp.len_around(keys.len());
        let vl = self.inp.len_around(stride * count as usize);
        let values = self.inp.bytes(vl);
        let keys = &keys[..kl.min(keys.len())];
        let mut n = count;
        let got = errno(self.map.update_batch(keys, &values, &mut n, f, 0));
        let mut done = 0;
        let want = if self.m.frozen {
            Err(e::EPERM)
        } else if let Err(x) = self.m.check_op_flags(f, LOCK | CPU | ALL_CPUS) {
            Err(x)
        } else {
            let mut r = Ok(());
            for i in 0..count as usize {
                let (k, v) = (i * 4, i * stride);
                if keys.len() < k + 4 || values.len() < v + stride {
                    r = Err(e::EFAULT);
                    break;
                }
                let key = u32::from_ne_bytes(keys[k..k + 4].try_into().unwrap());
                if let Err(x) = self.m.update_checked(key, &values[v..v + stride], f) {
                    r = Err(x);
                    break;
                }
                done += 1;
            }
            r
        };
        self.check("update_batch", got, want);
        let want_n = if self.m.frozen || self.m.check_op_flags(f, LOCK | CPU | ALL_CPUS).is_err() {
            count
        } else {
            done
        };
        assert_eq!(n, want_n, "step {}: update_batch count", self.step);
    }

    fn delete_batch(&mut self) {
        let count = self.inp.below(5);
        let keys: Vec<u8> = (0..count).flat_map(|_| self.key().to_ne_bytes()).collect();
        let kl = self.inp.len_around(keys.len());
        let keys = &keys[..kl.min(keys.len())];
        let f = if self.inp.below(4) == 0 {
            self.inp.flags(self.m.ncpus)
        } else {
            0
        };
        let mut n = count;
        let got = errno(self.map.delete_batch(keys, &mut n, f, 0));
        let mut done = 0;
        let want = if self.m.frozen {
            Err(e::EPERM)
        } else if self.m.ty.array() {
            Err(e::ENOTSUPP)
        } else if f & !LOCK != 0 || f & LOCK != 0 {
            Err(e::EINVAL)
        } else {
            let mut r = Ok(());
            for i in 0..count as usize {
                if keys.len() < i * 4 + 4 {
                    r = Err(e::EFAULT);
                    break;
                }
                let key = u32::from_ne_bytes(keys[i * 4..i * 4 + 4].try_into().unwrap());
                if let Err(x) = self.m.delete_checked(key) {
                    r = Err(x);
                    break;
                }
                done += 1;
            }
            r
        };
        let flag_error = want.is_err() && (self.m.frozen || self.m.ty.array() || f != 0);
        self.check("delete_batch", got, want);
        assert_eq!(
            n,
            if flag_error { count } else { done },
            "step {}: delete_batch count",
            self.step
        );
    }

    fn lookup_batch(&mut self) {
        let delete = self.inp.below(3) == 0;
        let f = match self.inp.below(3) {
            0 => 0,
            1 => CPU | (u64::from(self.inp.below(self.m.ncpus + 1)) << 32),
            _ => self.inp.flags(self.m.ncpus),
        };
        let bflags = if self.inp.below(16) == 0 { 1 } else { 0 };
        if self.m.ty.array() {
            self.array_lookup_batch(delete, f);
        } else {
            self.hash_drain(delete, f, bflags);
        }
    }

    fn array_lookup_batch(&mut self, delete: bool, f: u64) {
        let count = self.inp.below(self.m.max + 3);
        let in_batch = match self.inp.below(3) {
            0 => None,
            _ => Some(self.key()),
        };
        let stride = self.m.host_size(f);
        let mut keys = vec![FILL; count as usize * 4];
        let mut values = vec![FILL; count as usize * stride];
        let mut out = [FILL; 4];
        let mut n = count;
        let ib = in_batch.map(u32::to_ne_bytes);
        let ib = ib.as_ref().map(|b| &b[..]);
        let got = if delete {
            errno(self.map.lookup_and_delete_batch(
                ib,
                &mut out,
                &mut keys,
                &mut values,
                &mut n,
                f,
                0,
            ))
        } else {
            errno(
                self.map
                    .lookup_batch(ib, &mut out, &mut keys, &mut values, &mut n, f, 0),
            )
        };
        if delete {
            let want = if self.m.frozen {
                Err(e::EPERM)
            } else {
                Err(e::ENOTSUPP)
            };
            self.check("array lookup_and_delete_batch", got, want);
            assert_eq!(n, count);
            return;
        }
        if let Err(x) = self.m.check_op_flags(f, LOCK | CPU) {
            self.check("array lookup_batch flags", got, Err(x));
            assert_eq!(n, count, "step {}: count on a flag error", self.step);
            return;
        }
        if count == 0 {
            self.check("array lookup_batch count 0", got, Ok(()));
            assert_eq!(n, 0);
            return;
        }
        // Walk with GET_NEXT_KEY from in_batch (spec §6.1).
        let mut prev = in_batch;
        let mut want_keys = Vec::new();
        let want = loop {
            if want_keys.len() as u32 == count {
                break Ok(());
            }
            match self.m.array_next(prev) {
                Ok(k) => {
                    want_keys.push(k);
                    prev = Some(k);
                }
                Err(x) => break Err(x),
            }
        };
        self.check("array lookup_batch", got, want);
        assert_eq!(
            n as usize,
            want_keys.len(),
            "step {}: array lookup_batch count",
            self.step
        );
        for (i, k) in want_keys.iter().enumerate() {
            assert_eq!(
                &keys[i * 4..i * 4 + 4],
                &k.to_ne_bytes(),
                "step {}: batch key {i}",
                self.step
            );
            let v = self.m.value_out(*k, f).unwrap();
            assert_eq!(
                &values[i * stride..(i + 1) * stride],
                &v[..],
                "step {}: batch value {i}",
                self.step
            );
        }
        self.untouched("batch keys", &keys, want_keys.len() * 4);
        self.untouched("batch values", &values, want_keys.len() * stride);
        match want_keys.last() {
            Some(k) => assert_eq!(out, k.to_ne_bytes(), "step {}: out_batch", self.step),
            None => assert_eq!(out, [FILL; 4], "step {}: out_batch written", self.step),
        }
    }

    /// Hash LOOKUP(_AND_DELETE)_BATCH from bucket 0 to the end (spec §6.2): every element
    /// exactly once, whole buckets, ENOSPC only when nothing fits, ENOENT at the end.
    fn hash_drain(&mut self, delete: bool, f: u64, bflags: u64) {
        let allowed = if delete || self.m.ty == Ty::Hash {
            LOCK
        } else {
            LOCK | CPU
        };
        let pre = if delete && self.m.frozen {
            Err(e::EPERM)
        } else {
            self.m
                .check_op_flags(f, allowed)
                .and(if bflags != 0 { Err(e::EINVAL) } else { Ok(()) })
        };
        let vflags = if delete { 0 } else { f };
        let stride = self.m.host_size(vflags);
        let mut want_count = 1 + self.inp.below(4);
        let mut in_batch: Option<[u8; 4]> = None;
        let mut seen = BTreeSet::new();
        for round in 0..4 * (self.m.max as usize + 4) {
            let count = want_count;
            let mut keys = vec![FILL; count as usize * 4];
            let mut values = vec![FILL; count as usize * stride];
            let mut out = [FILL; 4];
            let mut n = count;
            let ib = in_batch.as_ref().map(|b| &b[..]);
            let got = if delete {
                errno(self.map.lookup_and_delete_batch(
                    ib,
                    &mut out,
                    &mut keys,
                    &mut values,
                    &mut n,
                    f,
                    bflags,
                ))
            } else {
                errno(self.map.lookup_batch(
                    ib,
                    &mut out,
                    &mut keys,
                    &mut values,
                    &mut n,
                    f,
                    bflags,
                ))
            };
            if let Err(x) = pre {
                self.check("hash batch flags", got, Err(x));
                assert_eq!(n, count, "step {}: count on a flag error", self.step);
                return;
            }
            assert!(n <= count, "step {}: batch count grew", self.step);
            for i in 0..n as usize {
                let k = u32::from_ne_bytes(keys[i * 4..i * 4 + 4].try_into().unwrap());
                assert!(seen.insert(k), "step {}: key {k} returned twice", self.step);
                let v = self.m.value_out(k, vflags);
                assert_eq!(
                    Some(&values[i * stride..(i + 1) * stride]),
                    v.as_deref(),
                    "step {}: batch value of key {k}",
                    self.step
                );
            }
            self.untouched("hash batch keys", &keys, n as usize * 4);
            self.untouched("hash batch values", &values, n as usize * stride);
            match got {
                Ok(()) => {
                    assert!(
                        n > 0 || round > 0,
                        "step {}: Ok with nothing copied",
                        self.step
                    );
                    in_batch = Some(out);
                }
                Err(e::ENOSPC) => {
                    assert_eq!(n, 0, "step {}: ENOSPC after copying", self.step);
                    want_count += 1;
                    in_batch = Some(out);
                }
                Err(e::ENOENT) => {
                    let all: BTreeSet<u32> = self.m.elems.keys().copied().collect();
                    assert_eq!(
                        seen, all,
                        "step {}: batch walk missed or invented keys",
                        self.step
                    );
                    if delete {
                        self.m.elems.clear();
                    }
                    return;
                }
                Err(x) => panic!("step {}: hash batch errno {x}", self.step),
            }
        }
        panic!("step {}: hash batch walk does not end", self.step);
    }

    /// Full contents: every model element reads back, nothing else exists.
    fn compare_all(&mut self) {
        let mut buf = vec![0u8; self.m.host_size(0)];
        for (k, _) in self.m.elems.clone() {
            self.map.lookup(&k.to_ne_bytes(), &mut buf, 0).unwrap();
            assert_eq!(
                Some(buf.clone()),
                self.m.value_out(k, 0),
                "step {}: contents of key {k}",
                self.step
            );
        }
        assert_eq!(
            self.map.element_count() as usize,
            self.m.elems.len(),
            "step {}: element count",
            self.step
        );
        if !self.m.ty.array() {
            let mut seen = BTreeSet::new();
            let mut prev: Option<[u8; 4]> = None;
            let mut next = [0u8; 4];
            while self
                .map
                .get_next_key(prev.as_ref().map(|p| &p[..]), &mut next, 0)
                .is_ok()
            {
                assert!(
                    seen.insert(u32::from_ne_bytes(next)),
                    "step {}: iteration repeats",
                    self.step
                );
                prev = Some(next);
            }
            let all: BTreeSet<u32> = self.m.elems.keys().copied().collect();
            assert_eq!(seen, all, "step {}: iteration", self.step);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    let ty = inp.pick(&[Ty::Array, Ty::PercpuArray, Ty::Hash, Ty::PercpuHash]);
    let ncpus = 1 + inp.below(4);
    let vs = inp.pick(&[1usize, 3, 4, 8, 12, 16, 20]);
    let max = 1 + inp.below(8);
    let no_prealloc = !ty.array() && inp.below(2) == 0;
    let map_type = match ty {
        Ty::Array => MapType::Array,
        Ty::PercpuArray => MapType::PercpuArray,
        Ty::Hash => MapType::Hash,
        Ty::PercpuHash => MapType::PercpuHash,
    };
    let spec = MapSpec::new(map_type, 4, vs as u32, max).with_flags(u32::from(no_prealloc));
    let map = Map::create(spec, ncpus).expect("a valid spec is created");
    let mut case = Case {
        map,
        m: Model::new(ty, ncpus, vs, max),
        inp,
        step: 0,
    };
    while !case.inp.is_empty() && case.step < 256 {
        case.op();
        case.step += 1;
        if case.step % 8 == 0 {
            case.compare_all();
        }
    }
    case.compare_all();
});
