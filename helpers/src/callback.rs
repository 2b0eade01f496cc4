//! The helpers that call back into the program: `bpf_for_each_map_elem` (164) and
//! `bpf_loop` (181).
//!
//! A callback is a subprogram of the program itself, so these helpers cannot be plain
//! functions: the engine runs them (the `interpreter` engine's `callback` module). The
//! registry holds them as built-ins marked [`Inline::ForEachMapElem`] and [`Inline::Loop`],
//! which the engine replaces by its own implementation; the plain functions registered here
//! only answer a call from an engine that cannot run callbacks (the rbpf engines, `callx`)
//! with a clear error. What the engine needs from the maps is here: [`for_each_elem`].

use std::sync::Arc;

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::maps::ProgramMap;
use crate::registry::{Inline, Registry};

/// Most iterations of `bpf_loop` (`BPF_MAX_LOOPS`): more give `-E2BIG`.
pub const MAX_LOOPS: u32 = 1 << 23;

/// `EINVAL`.
pub const EINVAL: u64 = (-22i64) as u64;
/// `E2BIG`.
pub const E2BIG: u64 = (-7i64) as u64;

/// Registers both helpers as built-ins with their inline forms.
pub(crate) fn register(r: &mut Registry) {
    r.register_builtin(
        HelperId::FOR_EACH_MAP_ELEM,
        "bpf_for_each_map_elem",
        needs_engine_for_each,
        Some(Inline::ForEachMapElem),
    )
    .expect("built-in ids are small");
    r.register_builtin(
        HelperId::LOOP,
        "bpf_loop",
        needs_engine_loop,
        Some(Inline::Loop),
    )
    .expect("built-in ids are small");
}

fn needs_engine(helper: &str) -> Box<HelperError> {
    Box::new(HelperError::Failed {
        helper: helper.into(),
        message: "it calls back into the program, which only the interpreter engine runs".into(),
    })
}

fn needs_engine_for_each(_: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Err(needs_engine("bpf_for_each_map_elem"))
}

fn needs_engine_loop(_: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Err(needs_engine("bpf_loop"))
}

/// Whether `bpf_for_each_map_elem` walks maps of type `map_type` (the kernel's maps with
/// `map_for_each_callback`: arrays and hashes, per-CPU and LRU ones included).
pub fn walkable(map_type: bpfvm_maps::MapType) -> bool {
    use bpfvm_maps::MapType as T;
    matches!(
        map_type,
        T::Array | T::PercpuArray | T::Hash | T::PercpuHash | T::LruHash | T::LruPercpuHash
    )
}

/// Calls `f(key, slot)` for each element of `map` in the kernel's order (arrays by index,
/// hashes in their iteration order), `slot` being the arena slot of the value (the `cpu`'s
/// copy on per-CPU maps), until `f` returns true ("stop"). Returns the number of elements
/// visited, the stopping one included, or `None` when `map` cannot be walked (not a
/// `bpfvm_maps::Map` of a [`walkable`] type). `f` may update or delete elements: no lock is
/// held while it runs.
pub fn for_each_elem(
    map: &Arc<dyn ProgramMap>,
    cpu: u32,
    f: &mut dyn FnMut(&[u8], usize) -> bool,
) -> Option<u32> {
    let m = map.as_map()?;
    if !walkable(m.map_type()) {
        return None;
    }
    let arena = map.arena();
    let base = arena.base().as_ptr() as usize;
    let stride = arena.stride().max(1);
    m.prog_for_each(bpfvm_maps::CpuId(cpu), &mut |key, value| {
        let slot = (value.as_ptr() as usize).wrapping_sub(base) / stride;
        f(key, slot)
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfvm_maps::{Map, MapSpec, MapType};

    #[test]
    fn engines_without_callbacks_get_a_clear_error() {
        let r = Registry::with_builtins();
        assert_eq!(r.inline(181), Some(Inline::Loop));
        assert_eq!(r.inline(164), Some(Inline::ForEachMapElem));
        let mut ctx = HelperContext::new(0, 1);
        let e = r.call(181, &mut ctx, [1, 0, 0, 0, 0]).unwrap_err();
        assert!(e.to_string().contains("only the interpreter engine"), "{e}");
    }

    #[test]
    fn arrays_and_hashes_are_walked_with_their_slots() {
        let spec = MapSpec::new(MapType::PercpuArray, 4, 8, 3);
        let map: Arc<dyn ProgramMap> = Arc::new(Map::create(spec, 2).unwrap());
        let mut seen = Vec::new();
        let n = for_each_elem(&map, 1, &mut |k, slot| {
            seen.push((u32::from_ne_bytes(k.try_into().unwrap()), slot));
            false
        });
        assert_eq!(n, Some(3));
        assert_eq!(seen.len(), 3);
        for (i, &(key, slot)) in seen.iter().enumerate() {
            assert_eq!(key, i as u32);
            assert_eq!(map.slot_owner(slot), (i as u32, Some(1)), "cpu 1's copy");
        }
        // Stopping at the second element visits two.
        assert_eq!(for_each_elem(&map, 0, &mut |_, _| true), Some(1));
        let spec = MapSpec::new(MapType::Hash, 8, 8, 4);
        let hash = Map::create(spec, 1).unwrap();
        for k in 0..3u64 {
            hash.update(&k.to_ne_bytes(), &(k * 10).to_ne_bytes(), 0)
                .unwrap();
        }
        let hash: Arc<dyn ProgramMap> = Arc::new(hash);
        let mut keys = Vec::new();
        let n = for_each_elem(&hash, 0, &mut |k, slot| {
            keys.push(u64::from_ne_bytes(k.try_into().unwrap()));
            assert_eq!(Some(slot), hash.prog_lookup_slot(0, k));
            false
        });
        assert_eq!(n, Some(3));
        keys.sort_unstable();
        assert_eq!(keys, [0, 1, 2]);
        // Queues are not walked.
        let spec = MapSpec::new(MapType::Queue, 0, 8, 4);
        let q: Arc<dyn ProgramMap> = Arc::new(Map::create(spec, 1).unwrap());
        assert_eq!(for_each_elem(&q, 0, &mut |_, _| false), None);
    }
}
