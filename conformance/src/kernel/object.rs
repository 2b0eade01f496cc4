//! An object's maps and programs in the kernel, set up the way libbpf does: maps created
//! in object order, global data filled (and `.rodata` frozen), programs loaded with the
//! kernel fds put in place of the map indices of their pseudo `ld_imm64`s.

use super::consts::{MapType, ProgType, REDIRECT_MAP_TYPES};
use super::map::{KernelMap, MapDef};
use super::prog::{substitute_map_fds, KernelProg};

/// One map of an object, as a loader describes it (nothing created yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMap {
    /// The map's name (for messages).
    pub name: String,
    /// Numeric `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// `key_size`.
    pub key_size: u32,
    /// `value_size`.
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags` (e.g. BPF_F_RDONLY_PROG for `.rodata`).
    pub map_flags: u32,
    /// Global data: the value of key 0 after creation.
    pub initial_data: Option<Vec<u8>>,
    /// Freeze after filling (libbpf freezes `.rodata` and `.kconfig`).
    pub frozen: bool,
}

/// Creates every map of an object in the kernel, in order, filled and frozen as described.
///
/// Fails with a message naming the map (an unsupported type, or the kernel's errno).
pub fn create_object_maps(maps: &[ObjectMap]) -> Result<Vec<KernelMap>, String> {
    maps.iter().map(create_one).collect()
}

fn create_one(m: &ObjectMap) -> Result<KernelMap, String> {
    let map_type = MapType::try_from(m.map_type)
        .ok()
        .or_else(|| {
            REDIRECT_MAP_TYPES
                .into_iter()
                .find(|t| *t as u32 == m.map_type)
        })
        .ok_or_else(|| format!("map {}: type {} is not known to bpfvm", m.name, m.map_type))?;
    // libbpf gives a perf event array without max_entries one entry per possible CPU.
    let max_entries = if map_type == MapType::PerfEventArray && m.max_entries == 0 {
        super::possible_cpus()?
    } else {
        m.max_entries
    };
    let map = KernelMap::create(MapDef {
        map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries,
        map_flags: m.map_flags,
    })
    .map_err(|e| format!("map {}: BPF_MAP_CREATE: {e}", m.name))?;
    if let Some(data) = &m.initial_data {
        let mut value = data.clone();
        value.resize(map.value_size_for(0), 0);
        map.update(&0u32.to_ne_bytes(), &value, 0)
            .map_err(|e| format!("map {}: initial data: {e}", m.name))?;
    }
    if m.frozen {
        map.freeze()
            .map_err(|e| format!("map {}: BPF_MAP_FREEZE: {e}", m.name))?;
    }
    Ok(map)
}

/// Loads a program whose instructions (`bytecode`, 8 little-endian bytes each) name maps
/// by their index in `maps`. On failure the message carries the verifier log.
pub fn load_object_program(
    name: &str,
    prog_type: ProgType,
    expected_attach_type: u32,
    bytecode: &[u8],
    maps: &[&KernelMap],
    license: &str,
) -> Result<KernelProg, String> {
    let image = substitute_map_fds(bytecode, maps).map_err(|e| format!("{name}: {e}"))?;
    let mut log = String::new();
    KernelProg::load(prog_type, expected_attach_type, &image, license, &mut log)
        .map_err(|e| format!("{name}: BPF_PROG_LOAD: {e}\n{log}"))
}
