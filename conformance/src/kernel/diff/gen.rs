//! Seeded random op sequences over a small key set with interesting flags.

use super::op::{Op, Outcome};
use super::rng::SplitMix64;
use super::runner::OpSource;
use crate::kernel::consts::elem;
use crate::kernel::MapDef;

/// Element-flag values worth trying on every command, for a kernel with `ncpus` CPUs:
/// the defined bits alone and combined, unknown low bits, high bits without BPF_F_CPU,
/// and BPF_F_CPU with CPUs in and out of range.
pub fn interesting_flags(ncpus: u32) -> Vec<u64> {
    vec![
        elem::ANY,
        elem::NOEXIST,
        elem::EXIST,
        3,
        elem::LOCK,
        elem::LOCK | elem::EXIST,
        32,
        0x8000_0000,
        1 << 32,
        1 << 63,
        elem::ALL_CPUS,
        elem::ALL_CPUS | elem::NOEXIST,
        elem::ALL_CPUS | elem::EXIST,
        elem::ALL_CPUS | elem::CPU,
        elem::ALL_CPUS | elem::LOCK,
        elem::cpu(0),
        elem::cpu(ncpus - 1),
        elem::cpu(ncpus - 1) | elem::NOEXIST,
        elem::cpu(0) | elem::EXIST,
        elem::cpu(0) | elem::LOCK,
        elem::cpu(ncpus),
        elem::cpu(u32::MAX),
    ]
}

/// Generates ops for one map: keys `0..key_space` (u32 in the first bytes of the key, the
/// other bytes derived from it),
/// values random with zero padding, flags from [`interesting_flags`] half the time.
#[derive(Debug)]
pub struct OpGen {
    rng: SplitMix64,
    def: MapDef,
    ncpus: u32,
    key_space: u32,
    flags: Vec<u64>,
    last_out_batch: Option<Vec<u8>>,
    limit: usize,
    move_cpus: bool,
}

impl OpGen {
    /// A generator of `limit` ops for maps shaped like `def` on `ncpus` CPUs.
    pub fn new(seed: u64, def: MapDef, ncpus: u32, key_space: u32, limit: usize) -> Self {
        OpGen {
            rng: SplitMix64::new(seed),
            def,
            ncpus,
            key_space,
            flags: interesting_flags(ncpus),
            last_out_batch: None,
            limit,
            move_cpus: false,
        }
    }

    /// Also moves the host caller between CPUs now and then (2% of ops), as LRU free lists
    /// are per CPU (spec §7.3, §7.4).
    pub fn moving_cpus(mut self) -> Self {
        self.move_cpus = true;
        self
    }

    fn key(&mut self) -> Vec<u8> {
        let k = self.rng.below(u64::from(self.key_space)) as u32;
        let mut key = vec![0; self.def.key_size as usize];
        let n = key.len().min(4);
        key[..n].copy_from_slice(&k.to_ne_bytes()[..n]);
        // Bytes past the first four follow from `k`, so every byte feeds the hash.
        for (i, b) in key.iter_mut().enumerate().skip(4) {
            *b = (k as u8).wrapping_mul(37).wrapping_add(i as u8);
        }
        key
    }

    fn flags(&mut self) -> u64 {
        if self.rng.below(2) == 0 {
            0
        } else {
            *self.rng.pick(&self.flags)
        }
    }

    /// A value for `flags`: `VS` bytes, or a full per-CPU buffer with zero padding.
    fn value(&mut self, flags: u64) -> Vec<u8> {
        let vs = self.def.value_size as usize;
        let percpu = self.def.map_type.is_percpu() && flags & (elem::CPU | elem::ALL_CPUS) == 0;
        let (slots, slot) = if percpu {
            (self.ncpus as usize, vs.div_ceil(8) * 8)
        } else {
            (1, vs)
        };
        let mut v = vec![0; slots * slot];
        for s in 0..slots {
            for b in &mut v[s * slot..s * slot + vs] {
                *b = self.rng.next_u64() as u8;
            }
        }
        v
    }

    fn in_batch(&mut self) -> Option<Vec<u8>> {
        match self.rng.below(4) {
            0 | 1 => None,
            2 => self.last_out_batch.clone(),
            _ => {
                let n_buckets = self.def.max_entries.next_power_of_two();
                let tok = self.rng.below(u64::from(n_buckets) + 3) as u32;
                let mut b = vec![
                    0;
                    if self.def.map_type.is_array() {
                        self.def.key_size as usize
                    } else {
                        4
                    }
                ];
                let n = b.len().min(4);
                b[..n].copy_from_slice(&tok.to_ne_bytes()[..n]);
                Some(b)
            }
        }
    }

    fn batch_flags(&mut self) -> u64 {
        if self.rng.below(8) == 0 {
            1
        } else {
            0
        }
    }

    /// The next op.
    pub fn random_op(&mut self) -> Op {
        if self.move_cpus && self.rng.below(50) == 0 {
            return Op::HostCpu(self.rng.below(u64::from(self.ncpus)) as u32);
        }
        let max_count = u64::from(self.def.max_entries) + 3;
        match self.rng.below(100) {
            0..=29 => {
                let flags = self.flags();
                Op::Update {
                    key: self.key(),
                    value: self.value(flags),
                    flags,
                }
            }
            30..=44 => Op::Lookup {
                key: self.key(),
                flags: self.flags(),
            },
            45..=54 => Op::Delete { key: self.key() },
            55..=62 => Op::GetNextKey {
                key: (self.rng.below(5) != 0).then(|| self.key()),
            },
            63..=67 => Op::LookupAndDelete {
                key: self.key(),
                flags: if self.rng.below(4) == 0 {
                    self.flags()
                } else {
                    0
                },
            },
            68..=77 => Op::LookupBatch {
                in_batch: self.in_batch(),
                count: self.rng.below(max_count) as u32,
                elem_flags: self.flags(),
                flags: self.batch_flags(),
            },
            78..=82 => Op::LookupAndDeleteBatch {
                in_batch: self.in_batch(),
                count: self.rng.below(max_count) as u32,
                elem_flags: if self.rng.below(4) == 0 {
                    self.flags()
                } else {
                    0
                },
                flags: self.batch_flags(),
            },
            83..=92 => {
                let count = self.rng.below(5) as u32;
                let elem_flags = self.flags();
                let keys = (0..count).flat_map(|_| self.key()).collect();
                let values = (0..count).flat_map(|_| self.value(elem_flags)).collect();
                Op::UpdateBatch {
                    keys,
                    values,
                    count,
                    elem_flags,
                    flags: self.batch_flags(),
                }
            }
            _ => {
                let count = self.rng.below(4) as u32;
                let keys = (0..count).flat_map(|_| self.key()).collect();
                Op::DeleteBatch {
                    keys,
                    count,
                    elem_flags: if self.rng.below(4) == 0 {
                        self.flags()
                    } else {
                        0
                    },
                    flags: self.batch_flags(),
                }
            }
        }
    }
}

impl OpSource for OpGen {
    fn next_op(&mut self, step: usize) -> Option<Op> {
        (step < self.limit).then(|| self.random_op())
    }

    /// Remembers a batch call's `out_batch`, so later batches may resume from it.
    fn observe(&mut self, _op: &Op, kernel: &Outcome) {
        if let Outcome::Read(r) = kernel {
            if let Some(b) = &r.out_batch {
                self.last_out_batch = Some(b.clone());
            }
        }
    }
}
