//! The merged kernel's behaviour for per-CPU ops that Linux 6.18 cannot run (spec §2–§4),
//! derived from operations 6.18 does run on the same kernel map.
//!
//! Covered: LOOKUP_ELEM and LOOKUP_BATCH with BPF_F_CPU (read the full buffer, keep CPU
//! `c`'s `VS` bytes), UPDATE_ELEM and UPDATE_BATCH with BPF_F_CPU / BPF_F_ALL_CPUS (read the
//! full buffer, patch it, write it back with BPF_ANY), and UPDATE_ELEM with
//! EXIST|NOEXIST (3), which the series made behave as BPF_ANY on per-CPU maps. Flag
//! errors come from the check order of §2 and the per-map check of §4.
//!
//! The write-back with BPF_ANY is what the merged kernel does after the flag stage:
//! with a cpu flag the hash family ignores EXIST/NOEXIST and LRU_PERCPU_HASH always takes
//! a node (§4, §7.2), exactly like BPF_ANY. A new element gets zeros on the other CPUs
//! (§12 U3, the simulator's choice).

use super::op::Outcome;
use super::Op;
use crate::kernel::consts::{create, elem, MapType};
use crate::kernel::{BatchLookup, BatchWrite, Errno, KernelMap, MapDef};

const CPU_BITS: u64 = elem::CPU | elem::ALL_CPUS;

/// Spec §2, steps 1–4: the flag check of a host-side command whose allowed low bits are
/// `allowed`, on a map of `map_type` with `ncpus` CPUs.
pub fn cpu_flag_stage(
    map_type: MapType,
    allowed: u64,
    flags: u64,
    ncpus: u32,
) -> Result<(), Errno> {
    let lo = flags & 0xFFFF_FFFF;
    if lo & !allowed != 0 || flags & elem::LOCK != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & elem::CPU == 0 && flags >> 32 != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CPU_BITS != 0 {
        if !map_type.is_percpu() || flags & CPU_BITS == CPU_BITS {
            return Err(Errno::EINVAL);
        }
        if flags & elem::CPU != 0 && (flags >> 32) >= u64::from(ncpus) {
            return Err(Errno::ERANGE);
        }
    }
    Ok(())
}

/// Whether `op` on a map made from `def` needs the merged kernel's behaviour, which
/// Linux 6.18 does not have: on per-CPU maps, BPF_F_CPU / BPF_F_ALL_CPUS on lookups and
/// updates and EXIST|NOEXIST updates (§4); on every map, the two checks whose order the
/// helper commit changed (§2): a lookup with flags beyond BPF_F_LOCK on a map the host
/// cannot read (6.18: EINVAL, merged: EPERM), and an update whose flags fail §2 with a
/// short key or value (6.18 copies first: EFAULT; merged: the flag error).
pub fn needs_emulation(def: &MapDef, op: &Op) -> bool {
    let percpu = def.map_type.is_percpu();
    match op {
        Op::Lookup { flags, .. } => {
            (percpu && flags & CPU_BITS != 0)
                || (def.map_flags & create::WRONLY != 0 && flags & !elem::LOCK != 0)
        }
        Op::LookupBatch { elem_flags, .. } | Op::UpdateBatch { elem_flags, .. } => {
            percpu && elem_flags & CPU_BITS != 0
        }
        Op::Update { key, value, flags } => {
            (percpu && (flags & CPU_BITS != 0 || *flags == 3))
                || (short_update(def, key, value, *flags)
                    && cpu_flag_stage(def.map_type, !0, *flags, u32::MAX).is_err())
        }
        _ => false,
    }
}

/// Whether an update's key or value is shorter than what the kernel reads.
fn short_update(def: &MapDef, key: &[u8], value: &[u8], flags: u64) -> bool {
    let vs = def.value_size as usize;
    // The smallest size any kernel reads for these flags: VS (the merged size with a cpu
    // flag, and every non-per-CPU map).
    let need = if def.map_type.is_percpu() && flags & CPU_BITS == 0 {
        vs.div_ceil(8) * 8
    } else {
        vs
    };
    key.len() < def.key_size as usize || value.len() < need
}

/// The outcome the merged kernel gives for `op` (one for which [`needs_emulation`] holds),
/// leaving `kernel` in the state the merged kernel would be in.
pub(super) fn emulate(kernel: &KernelMap, op: &Op) -> Outcome {
    emulate_noting(kernel, op, &mut Vec::new())
}

/// A BPF_F_CPU update of an existing LRU_PERCPU_HASH key: taking a node may have evicted
/// the key itself, which is then re-created (§7.2) with zeros on the other CPUs (the
/// simulator's choice, §12 U3); otherwise it is updated in place and the other CPUs keep
/// their values. 6.18 cannot tell which happened, so the kernel map is given the
/// re-created value (an ANY update takes the same node path) and [`Ambiguous::in_place`]
/// is what it must hold instead if the element stayed in place. The caller settles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ambiguous {
    /// The key updated.
    pub key: Vec<u8>,
    /// The full value after an in-place update.
    pub in_place: Vec<u8>,
}

/// [`emulate`], listing in `ambiguous` the updates whose other-CPU values it cannot know.
pub(super) fn emulate_noting(
    kernel: &KernelMap,
    op: &Op,
    ambiguous: &mut Vec<Ambiguous>,
) -> Outcome {
    let def = kernel.def();
    let n = kernel.ncpus();
    // Permissions come before flags in every command (§2, merged order).
    let unreadable = def.map_flags & create::WRONLY != 0;
    match op {
        Op::Lookup { .. } if unreadable => Outcome::Bytes(Err(Errno::EPERM)),
        Op::LookupBatch { count, .. } if unreadable => Outcome::Read(BatchLookup {
            result: Err(Errno::EPERM),
            count: *count,
            keys: Vec::new(),
            values: Vec::new(),
            out_batch: None,
        }),
        Op::Update { .. } if !writable(kernel) => Outcome::Unit(Err(Errno::EPERM)),
        Op::UpdateBatch { count, .. } if !writable(kernel) => Outcome::Write(BatchWrite {
            result: Err(Errno::EPERM),
            count: *count,
        }),
        Op::Update { key, value, flags }
            if !(def.map_type.is_percpu() && (flags & CPU_BITS != 0 || *flags == 3)) =>
        {
            // A short buffer with flags that fail §2: the flag error comes first now.
            Outcome::Unit(match kernel.update(key, value, *flags) {
                Err(Errno::EFAULT) => cpu_flag_stage(def.map_type, !0, *flags, n),
                r => r,
            })
        }
        Op::Lookup { key, flags } => Outcome::Bytes(
            cpu_flag_stage(def.map_type, elem::LOCK | elem::CPU, *flags, n)
                .and_then(|()| kernel.lookup(key, 0))
                .map(|full| slot(kernel, &full, *flags).to_vec()),
        ),
        Op::LookupBatch {
            in_batch,
            count,
            elem_flags,
            flags,
        } => {
            if let Err(e) = cpu_flag_stage(def.map_type, elem::LOCK | elem::CPU, *elem_flags, n) {
                return Outcome::Read(BatchLookup {
                    result: Err(e),
                    count: *count,
                    keys: Vec::new(),
                    values: Vec::new(),
                    out_batch: None,
                });
            }
            let mut r = kernel.lookup_batch(in_batch.as_deref(), *count, 0, *flags);
            let stride = kernel.value_size_for(0);
            r.values = r
                .values
                .chunks(stride)
                .flat_map(|full| slot(kernel, full, *elem_flags).to_vec())
                .collect();
            Outcome::Read(r)
        }
        Op::Update { key, value, flags } => {
            Outcome::Unit(update(kernel, key, value, *flags, ambiguous))
        }
        Op::UpdateBatch {
            keys,
            values,
            count,
            elem_flags,
            flags: _,
        } => Outcome::Write(update_batch(
            kernel,
            keys,
            values,
            *count,
            *elem_flags,
            ambiguous,
        )),
        _ => Outcome::Unit(Err(Errno::EINVAL)),
    }
}

/// Whether the host may write the map (not BPF_F_RDONLY, not frozen): an update with a
/// high flag bit gives EPERM when it may not, else EINVAL from the per-map flag check,
/// which every map type runs before touching anything (on LRU maps before taking a node).
fn writable(kernel: &KernelMap) -> bool {
    let key = vec![0; kernel.def().key_size as usize];
    let value = vec![0; kernel.value_size_for(0)];
    kernel.update(&key, &value, 1 << 32) != Err(Errno::EPERM)
}

/// CPU `cpu(flags)`'s `VS` bytes of a full buffer (CPU 0 when BPF_F_CPU is absent).
fn slot<'a>(kernel: &KernelMap, full: &'a [u8], flags: u64) -> &'a [u8] {
    let vs = kernel.def().value_size as usize;
    let c = if flags & elem::CPU != 0 {
        (flags >> 32) as usize
    } else {
        0
    };
    let start = c * vs.div_ceil(8) * 8;
    &full[start..start + vs]
}

/// One host-side update of a per-CPU map with the merged kernel's rules, in the order of
/// spec §2: flag check, key copy, value copy (a short buffer faults: `EFAULT`; only the
/// first bytes of a longer one are read), then the per-map check of §4.
fn update(
    kernel: &KernelMap,
    key: &[u8],
    value: &[u8],
    flags: u64,
    ambiguous: &mut Vec<Ambiguous>,
) -> Result<(), Errno> {
    let def = kernel.def();
    let n = kernel.ncpus();
    cpu_flag_stage(def.map_type, !0, flags, n)?;
    let key = key.get(..def.key_size as usize).ok_or(Errno::EFAULT)?;
    let value = value
        .get(..kernel.value_size_for(flags))
        .ok_or(Errno::EFAULT)?;
    // §4, per-CPU types: LOCK or lo(f) > 16 is EINVAL.
    if flags & elem::LOCK != 0 || (flags & 0xFFFF_FFFF) > 16 {
        return Err(Errno::EINVAL);
    }
    if flags & CPU_BITS == 0 {
        // EXIST|NOEXIST: BPF_ANY since the series.
        return kernel.update(key, value, elem::ANY);
    }
    let vs = def.value_size as usize;
    let slot_len = vs.div_ceil(8) * 8;
    let (old, existed) = match kernel.lookup(key, 0) {
        Ok(full) => (full, true),
        Err(Errno::ENOENT) => (vec![0; slot_len * n as usize], false),
        Err(e) => return Err(e),
    };
    let all = flags & elem::ALL_CPUS != 0;
    let write = |mut full: Vec<u8>| {
        for c in 0..n as usize {
            if all || (flags >> 32) as usize == c {
                full[c * slot_len..c * slot_len + vs].copy_from_slice(value);
            }
        }
        full
    };
    let in_place = write(old);
    if existed && !all && def.map_type == MapType::LruPercpuHash {
        let recreated = write(vec![0; slot_len * n as usize]);
        kernel.update(key, &recreated, elem::ANY)?;
        if recreated != in_place {
            ambiguous.push(Ambiguous {
                key: key.to_vec(),
                in_place,
            });
        }
        return Ok(());
    }
    kernel.update(key, &in_place, elem::ANY)
}

/// UPDATE_BATCH with a cpu flag: the generic batch loop of §6.3 over [`update`]; element
/// `i`'s key or value running past the given buffers faults (`EFAULT`, `count` = `i`).
fn update_batch(
    kernel: &KernelMap,
    keys: &[u8],
    values: &[u8],
    count: u32,
    elem_flags: u64,
    ambiguous: &mut Vec<Ambiguous>,
) -> BatchWrite {
    let def = kernel.def();
    let ks = def.key_size as usize;
    let vs = kernel.value_size_for(elem_flags);
    let allowed = elem::LOCK | elem::CPU | elem::ALL_CPUS;
    if let Err(e) = cpu_flag_stage(def.map_type, allowed, elem_flags, kernel.ncpus()) {
        return BatchWrite {
            result: Err(e),
            count,
        };
    }
    for i in 0..count as usize {
        let key = keys.get(i * ks..(i + 1) * ks);
        let value = values.get(i * vs..(i + 1) * vs);
        let r = match (key, value) {
            (Some(k), Some(v)) => update(kernel, k, v, elem_flags, ambiguous),
            _ => Err(Errno::EFAULT),
        };
        if let Err(e) = r {
            return BatchWrite {
                result: Err(e),
                count: i as u32,
            };
        }
    }
    BatchWrite {
        result: Ok(()),
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_stage_follows_spec_order() {
        let lookup = elem::LOCK | elem::CPU;
        let pa = MapType::PercpuArray;
        assert_eq!(cpu_flag_stage(pa, lookup, elem::cpu(1), 2), Ok(()));
        assert_eq!(
            cpu_flag_stage(pa, lookup, elem::cpu(2), 2),
            Err(Errno::ERANGE)
        );
        assert_eq!(
            cpu_flag_stage(pa, lookup, elem::ALL_CPUS, 2),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            cpu_flag_stage(pa, !0, elem::cpu(0) | elem::ALL_CPUS, 2),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            cpu_flag_stage(pa, !0, elem::cpu(9) | elem::LOCK, 2),
            Err(Errno::EINVAL)
        );
        assert_eq!(cpu_flag_stage(pa, !0, 1 << 40, 2), Err(Errno::EINVAL));
        assert_eq!(
            cpu_flag_stage(MapType::Hash, !0, elem::cpu(0), 2),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn only_new_behaviour_on_percpu_maps_is_emulated() {
        let upd = |flags| Op::Update {
            key: vec![0; 4],
            value: vec![0; 4],
            flags,
        };
        let def = |map_type| MapDef {
            map_type,
            key_size: 4,
            value_size: 4,
            max_entries: 4,
            map_flags: 0,
        };
        assert!(needs_emulation(
            &def(MapType::PercpuHash),
            &upd(elem::cpu(0))
        ));
        assert!(needs_emulation(&def(MapType::PercpuHash), &upd(3)));
        assert!(!needs_emulation(&def(MapType::PercpuHash), &upd(2)));
        assert!(!needs_emulation(&def(MapType::Hash), &upd(elem::cpu(0))));
        let short = Op::Update {
            key: vec![0; 2],
            value: vec![0; 4],
            flags: 1 << 32,
        };
        assert!(needs_emulation(&def(MapType::Hash), &short));
        let wronly = MapDef {
            map_flags: create::WRONLY,
            ..def(MapType::Array)
        };
        let lookup = |flags| Op::Lookup {
            key: vec![0; 4],
            flags,
        };
        assert!(needs_emulation(&wronly, &lookup(elem::EXIST)));
        assert!(!needs_emulation(&wronly, &lookup(elem::LOCK)));
        let lad = Op::LookupAndDelete {
            key: vec![0; 4],
            flags: elem::cpu(0),
        };
        assert!(!needs_emulation(&def(MapType::LruPercpuHash), &lad));
    }
}
