//! Hand-written op sequences for the cases the random sequences reach rarely: every
//! update flag on present and missing keys, iteration, full maps, every batch edge
//! (count 0, count = max_entries, ENOSPC, `in_batch` past the end), wrong sizes and
//! frozen maps.

use super::gen::interesting_flags;
use super::op::Op;
use crate::kernel::consts::{create, elem, MapType};
use crate::kernel::MapDef;

/// One named sequence for one map.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// What it exercises.
    pub name: &'static str,
    /// The map it runs on.
    pub def: MapDef,
    /// The ops, in order.
    pub ops: Vec<Op>,
}

/// The default map shape: key 4, value 12 (so per-CPU slots carry padding), 8 entries,
/// BPF_F_ZERO_SEED on hashes so iteration orders are comparable.
pub fn default_def(map_type: MapType) -> MapDef {
    MapDef {
        map_type,
        key_size: 4,
        value_size: 12,
        max_entries: 8,
        map_flags: if map_type.is_array() {
            0
        } else {
            create::ZERO_SEED
        },
    }
}

fn key(def: &MapDef, k: u32) -> Vec<u8> {
    let mut key = vec![0; def.key_size as usize];
    let n = key.len().min(4);
    key[..n].copy_from_slice(&k.to_ne_bytes()[..n]);
    key
}

/// The value size of spec §3 for `flags`.
fn value_len(def: &MapDef, ncpus: u32, flags: u64) -> usize {
    let vs = def.value_size as usize;
    if def.map_type.is_percpu() && flags & (elem::CPU | elem::ALL_CPUS) == 0 {
        vs.div_ceil(8) * 8 * ncpus as usize
    } else {
        vs
    }
}

/// A value whose bytes encode `tag`, zero padding in per-CPU slots.
fn value(def: &MapDef, ncpus: u32, flags: u64, tag: u8) -> Vec<u8> {
    let vs = def.value_size as usize;
    let len = value_len(def, ncpus, flags);
    let slot = if len == vs { vs } else { vs.div_ceil(8) * 8 };
    let mut v = vec![0; len];
    for (s, chunk) in v.chunks_mut(slot).enumerate() {
        for (i, b) in chunk[..vs].iter_mut().enumerate() {
            *b = tag.wrapping_mul(31).wrapping_add((s * 7 + i) as u8);
        }
    }
    v
}

fn lookups(def: &MapDef, keys: std::ops::Range<u32>, flags: u64) -> Vec<Op> {
    keys.map(|k| Op::Lookup {
        key: key(def, k),
        flags,
    })
    .collect()
}

fn iterate(def: &MapDef) -> Vec<Op> {
    let mut ops = vec![Op::GetNextKey { key: None }];
    ops.extend((0..def.max_entries + 3).map(|k| Op::GetNextKey {
        key: Some(key(def, k)),
    }));
    ops
}

fn fill(def: &MapDef, ncpus: u32, keys: std::ops::Range<u32>, flags: u64) -> Vec<Op> {
    keys.map(|k| Op::Update {
        key: key(def, k),
        value: value(def, ncpus, flags, k as u8),
        flags,
    })
    .collect()
}

fn batch_lookups(
    def: &MapDef,
    delete: bool,
    counts: &[u32],
    elem_flags: u64,
    flags: u64,
) -> Vec<Op> {
    let n_buckets = def.max_entries.next_power_of_two();
    let tokens: Vec<Option<Vec<u8>>> = if def.map_type.is_array() {
        let mut t = vec![None];
        t.extend((0..def.max_entries + 2).map(|k| Some(key(def, k))));
        t
    } else {
        let mut t = vec![None];
        t.extend((0..n_buckets + 2).map(|b| Some(b.to_ne_bytes().to_vec())));
        t
    };
    let mut ops = Vec::new();
    for in_batch in tokens {
        for &count in counts {
            ops.push(if delete {
                Op::LookupAndDeleteBatch {
                    in_batch: in_batch.clone(),
                    count,
                    elem_flags,
                    flags,
                }
            } else {
                Op::LookupBatch {
                    in_batch: in_batch.clone(),
                    count,
                    elem_flags,
                    flags,
                }
            });
        }
    }
    ops
}

/// Every scenario for a map of `map_type` on `ncpus` CPUs.
pub fn scenarios(map_type: MapType, ncpus: u32) -> Vec<Scenario> {
    let def = default_def(map_type);
    let d = &def;
    let max = def.max_entries;
    let flags = interesting_flags(ncpus);
    let mut out = Vec::new();

    // Every flag value on a missing key, then on a present key, with lookups after each.
    let mut ops = Vec::new();
    for (i, &f) in flags.iter().enumerate() {
        for k in [1, 2] {
            ops.push(Op::Update {
                key: key(d, k),
                value: value(d, ncpus, f, i as u8),
                flags: f,
            });
            ops.extend(lookups(d, k..k + 1, 0));
            ops.extend(lookups(d, k..k + 1, f));
        }
        ops.push(Op::Delete { key: key(d, 2) });
    }
    out.push(Scenario {
        name: "update and lookup with every interesting flag",
        def,
        ops,
    });

    // Delete, lookup-and-delete (with flags) and iteration on a partly filled map.
    let mut ops = fill(d, ncpus, 0..5, 0);
    ops.extend(iterate(d));
    for k in [0, 3, 9] {
        ops.push(Op::Delete { key: key(d, k) });
    }
    ops.extend(iterate(d));
    for &f in &[
        0,
        elem::LOCK,
        elem::NOEXIST,
        elem::cpu(0),
        elem::ALL_CPUS,
        1 << 32,
    ] {
        for k in [1, 3] {
            ops.push(Op::LookupAndDelete {
                key: key(d, k),
                flags: f,
            });
        }
    }
    ops.extend(fill(d, ncpus, 0..3, 0));
    ops.extend(iterate(d));
    out.push(Scenario {
        name: "delete, lookup_and_delete and get_next_key",
        def,
        ops,
    });

    // Full map: E2BIG for new keys (hash), replacement of present keys, then iteration.
    let mut ops = fill(d, ncpus, 0..max + 3, 0);
    ops.extend(fill(d, ncpus, 0..2, elem::EXIST));
    ops.extend(fill(d, ncpus, max - 1..max + 1, elem::NOEXIST));
    ops.extend(iterate(d));
    ops.extend(lookups(d, 0..max + 2, 0));
    out.push(Scenario {
        name: "full map",
        def,
        ops,
    });

    // Batches: counts 0, 1, 3, max, max+1 from every start; flags errors; update and
    // delete batches that stop half-way.
    let counts = [0, 1, 3, max, max + 1];
    let mut ops = fill(d, ncpus, 0..5, 0);
    ops.extend(batch_lookups(d, false, &counts, 0, 0));
    for (ef, f) in [
        (elem::LOCK, 0),
        (elem::EXIST, 0),
        (1 << 32, 0),
        (0, 1),
        (elem::cpu(0), 0),
        (elem::cpu(ncpus), 0),
        (elem::ALL_CPUS, 0),
    ] {
        ops.extend(
            batch_lookups(d, false, &[0, max], ef, f)
                .into_iter()
                .take(2),
        );
    }
    let batch = |keys: &[u32], ef: u64| Op::UpdateBatch {
        keys: keys.iter().flat_map(|&k| key(d, k)).collect(),
        values: keys
            .iter()
            .flat_map(|&k| value(d, ncpus, ef, k as u8 + 100))
            .collect(),
        count: keys.len() as u32,
        elem_flags: ef,
        flags: 0,
    };
    ops.push(batch(&[], 0));
    ops.push(batch(&[1, 6, 7], 0));
    ops.push(batch(&[2, max + 1, 3], 0));
    ops.push(batch(&[max + 2, max + 3, max + 4, 4], 0));
    ops.push(batch(&[2, 3], elem::NOEXIST));
    ops.push(batch(&[2, 3], elem::LOCK));
    ops.push(batch(&[2, 3], elem::cpu(1)));
    ops.push(batch(&[2, 9], elem::ALL_CPUS));
    ops.push(batch(&[2, 3], elem::cpu(ncpus)));
    ops.push(Op::UpdateBatch {
        keys: key(d, 1),
        values: value(d, ncpus, 0, 1),
        count: 1,
        elem_flags: 0,
        flags: 7,
    });
    ops.extend(batch_lookups(d, false, &[max], 0, 0));
    let del = |keys: &[u32], ef: u64| Op::DeleteBatch {
        keys: keys.iter().flat_map(|&k| key(d, k)).collect(),
        count: keys.len() as u32,
        elem_flags: ef,
        flags: 0,
    };
    ops.push(del(&[], 0));
    ops.push(del(&[1, 2], elem::LOCK));
    ops.push(del(&[1, 2], elem::cpu(0)));
    ops.push(del(&[1, 2, 1, 3], 0));
    ops.push(del(&[4], 0));
    ops.extend(iterate(d));
    ops.extend(fill(d, ncpus, 0..max, 0));
    ops.extend(batch_lookups(d, true, &[1, 2, max], 0, 0));
    ops.extend(fill(d, ncpus, 0..max, 0));
    ops.extend(batch_lookups(d, true, &[0], elem::LOCK, 0));
    ops.extend(
        batch_lookups(d, true, &[max], elem::cpu(0), 0)
            .into_iter()
            .take(1),
    );
    ops.extend(batch_lookups(d, true, &[max], 0, 1).into_iter().take(1));
    ops.extend(batch_lookups(d, true, &[max + 1], 0, 0));
    ops.extend(iterate(d));
    out.push(Scenario {
        name: "batch operations",
        def,
        ops,
    });

    // Wrong buffer sizes are refused (EINVAL, as libbpf's checks).
    let ks = def.key_size as usize;
    let good = value(d, ncpus, 0, 1);
    let mut ops = vec![
        Op::Update {
            key: vec![0; ks + 1],
            value: good.clone(),
            flags: 0,
        },
        Op::Update {
            key: vec![0; ks - 1],
            value: good.clone(),
            flags: 0,
        },
        Op::Update {
            key: key(d, 1),
            value: good[..good.len() - 1].to_vec(),
            flags: 0,
        },
        Op::Update {
            key: key(d, 1),
            value: [good.clone(), vec![0]].concat(),
            flags: 0,
        },
        Op::Update {
            key: key(d, 1),
            value: good.clone(),
            flags: elem::cpu(0),
        },
        Op::Lookup {
            key: vec![0; ks + 4],
            flags: 0,
        },
        Op::Delete {
            key: vec![0; ks - 1],
        },
        Op::GetNextKey {
            key: Some(vec![0; ks + 1]),
        },
        Op::LookupAndDelete {
            key: vec![0; 1],
            flags: 0,
        },
        Op::UpdateBatch {
            keys: key(d, 1),
            values: good[1..].to_vec(),
            count: 1,
            elem_flags: 0,
            flags: 0,
        },
        Op::UpdateBatch {
            keys: key(d, 1),
            values: good.clone(),
            count: 2,
            elem_flags: 0,
            flags: 0,
        },
        Op::DeleteBatch {
            keys: key(d, 1),
            count: 2,
            elem_flags: 0,
            flags: 0,
        },
    ];
    ops.extend(iterate(d));
    out.push(Scenario {
        name: "wrong buffer sizes",
        def,
        ops,
    });

    // Short buffers with flags the merged kernel rejects first (§2 order of checks).
    let mut ops = fill(d, ncpus, 0..2, 0);
    for &f in &[
        1 << 32,
        elem::LOCK,
        elem::cpu(0),
        elem::ALL_CPUS,
        elem::cpu(ncpus),
        32,
        0,
    ] {
        ops.push(Op::Update {
            key: vec![1; ks - 1],
            value: good.clone(),
            flags: f,
        });
        ops.push(Op::Update {
            key: key(d, 1),
            value: vec![7; 3],
            flags: f,
        });
        ops.push(Op::Lookup {
            key: vec![1; 2],
            flags: f,
        });
    }
    out.push(Scenario {
        name: "short buffers with bad flags",
        def,
        ops,
    });

    // Host read-only and write-only maps: EPERM, and its order against flag errors.
    for (name, extra) in [
        ("read-only map", create::RDONLY),
        ("write-only map", create::WRONLY),
    ] {
        let ro = MapDef {
            map_flags: def.map_flags | extra,
            ..def
        };
        let r = &ro;
        let mut ops = fill(r, ncpus, 0..3, 0);
        for &f in &[
            0,
            elem::EXIST,
            elem::LOCK,
            1 << 32,
            elem::cpu(0),
            elem::cpu(ncpus),
            elem::ALL_CPUS,
        ] {
            ops.extend(lookups(r, 0..2, f));
            ops.push(Op::LookupAndDelete {
                key: key(r, 0),
                flags: f,
            });
            ops.extend(batch_lookups(r, false, &[max], f, 0).into_iter().take(1));
            ops.extend(batch_lookups(r, true, &[max], f, 0).into_iter().take(1));
        }
        ops.push(Op::Delete { key: key(r, 0) });
        ops.push(batch(&[1], 0));
        ops.push(del(&[1], 0));
        ops.extend(iterate(r));
        ops.push(Op::Freeze);
        ops.extend(fill(r, ncpus, 0..1, 0));
        out.push(Scenario { name, def: ro, ops });
    }

    // Frozen map: host writes give EPERM, reads still work.
    let mut ops = fill(d, ncpus, 0..3, 0);
    ops.push(Op::Freeze);
    ops.push(Op::Freeze);
    ops.extend(fill(d, ncpus, 0..2, 0));
    ops.extend(fill(d, ncpus, 0..1, elem::cpu(0)));
    ops.push(Op::Delete { key: key(d, 0) });
    ops.push(Op::LookupAndDelete {
        key: key(d, 0),
        flags: 0,
    });
    ops.push(batch(&[1], 0));
    ops.push(del(&[1], 0));
    ops.extend(batch_lookups(d, false, &[max], 0, 0).into_iter().take(1));
    ops.extend(batch_lookups(d, true, &[max], 0, 0).into_iter().take(1));
    ops.extend(lookups(d, 0..4, 0));
    ops.extend(iterate(d));
    out.push(Scenario {
        name: "frozen map",
        def,
        ops,
    });

    // Hashes only: a 6-byte key (jhash instead of jhash2) and a 4-bucket map, where a
    // bucket with two elements makes count-1 batches return ENOSPC.
    if !map_type.is_array() {
        let small = MapDef {
            key_size: 6,
            value_size: 4,
            max_entries: 4,
            ..def
        };
        let s = &small;
        let mut ops = fill(s, ncpus, 0..4, 0);
        ops.extend(iterate(s));
        ops.extend(batch_lookups(s, false, &[1, 2, 4], 0, 0));
        ops.extend(batch_lookups(s, true, &[1], 0, 0));
        ops.extend(iterate(s));
        out.push(Scenario {
            name: "six-byte keys in four buckets (ENOSPC)",
            def: small,
            ops,
        });
    }
    out
}

/// LRU sequences from one CPU, after the examples of spec §7.2–§7.5 (max_entries 16):
/// 50 distinct inserts; EEXIST / ENOENT updates of a full map; updates that reference
/// every element before one more insert.
pub fn lru_scenarios(map_type: MapType, ncpus: u32) -> Vec<Scenario> {
    let def = MapDef {
        max_entries: 16,
        ..default_def(map_type)
    };
    let d = &def;
    let mut out = Vec::new();

    let mut ops = fill(d, ncpus, 0..50, 0);
    ops.extend(iterate_keys(d, 0..50));
    out.push(Scenario {
        name: "50 distinct inserts into 16 entries",
        def,
        ops,
    });

    let mut ops = fill(d, ncpus, 0..16, 0);
    ops.extend(fill(d, ncpus, 5..6, elem::NOEXIST));
    ops.extend(iterate_keys(d, 0..20));
    ops.extend(fill(d, ncpus, 16..20, 0));
    ops.extend(fill(d, ncpus, 0..1, elem::EXIST));
    ops.extend(fill(d, ncpus, 1..2, elem::ANY));
    ops.extend(iterate_keys(d, 0..20));
    out.push(Scenario {
        name: "EEXIST and EXIST updates on a full LRU",
        def,
        ops,
    });

    let mut ops = fill(d, ncpus, 0..16, 0);
    ops.extend(fill(d, ncpus, 0..16, elem::EXIST));
    ops.extend(fill(d, ncpus, 16..17, 0));
    ops.extend(iterate_keys(d, 0..17));
    ops.extend(fill(d, ncpus, 17..40, 0));
    ops.extend(iterate_keys(d, 0..40));
    out.push(Scenario {
        name: "every element referenced, then more inserts",
        def,
        ops,
    });
    out
}

/// Lookups of every key in `keys` plus a full GET_NEXT_KEY walk.
fn iterate_keys(def: &MapDef, keys: std::ops::Range<u32>) -> Vec<Op> {
    let mut ops = lookups(def, keys, 0);
    ops.push(Op::GetNextKey { key: None });
    ops.extend(iterate(def));
    ops
}
