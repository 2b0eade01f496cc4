//! `Program`: relocated instructions, the program's maps, its type and its engine.

use std::sync::Arc;

use bpfvm_helpers::{MapList, ProgramMap};

use crate::engine::EngineKind;
use crate::ProgramType;

/// A BPF program ready to be loaded into a [`crate::Vm`].
///
/// Instructions are kernel-style bytecode (8 bytes each, little-endian) in which map
/// references are the pseudo `ld_imm64` forms of `docs/internals.md`, with the map's index in
/// [`Program::maps`] as the "fd".
#[derive(Debug, Clone)]
pub struct Program {
    bytecode: Vec<u8>,
    maps: Vec<Arc<dyn ProgramMap>>,
    prog_type: ProgramType,
    engine: EngineKind,
    attach_cookie: u64,
}

impl Program {
    /// A program of type `prog_type` from raw bytecode, with no maps, on the default engine.
    pub fn new(bytecode: impl Into<Vec<u8>>, prog_type: ProgramType) -> Program {
        Program {
            bytecode: bytecode.into(),
            maps: Vec::new(),
            prog_type,
            engine: EngineKind::default(),
            attach_cookie: 0,
        }
    }

    /// A program from 64-bit instruction words (as `rbpf::insn_builder` or listings show
    /// them: opcode in the low byte).
    pub fn from_words(words: &[u64], prog_type: ProgramType) -> Program {
        Program::new(
            words
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<u8>>(),
            prog_type,
        )
    }

    /// Appends `map` to the program's map list and returns its index (the "fd" pseudo
    /// `ld_imm64` instructions use).
    pub fn add_map<M: ProgramMap + 'static>(&mut self, map: Arc<M>) -> u32 {
        self.maps.push(map);
        (self.maps.len() - 1) as u32
    }

    /// Builder form of [`Program::add_map`].
    pub fn with_map<M: ProgramMap + 'static>(mut self, map: Arc<M>) -> Program {
        self.add_map(map);
        self
    }

    /// Sets the maps, replacing any, in index order (e.g. the loader's
    /// `ProgramDefinition::maps` resolved to live `Arc<Map>`s).
    pub fn with_maps<M: ProgramMap + 'static>(
        mut self,
        maps: impl IntoIterator<Item = Arc<M>>,
    ) -> Program {
        self.maps = maps.into_iter().map(|m| m as Arc<dyn ProgramMap>).collect();
        self
    }

    /// Sets the maps as trait objects, replacing any (maps of different types).
    pub fn with_dyn_maps(mut self, maps: Vec<Arc<dyn ProgramMap>>) -> Program {
        self.maps = maps;
        self
    }

    /// Chooses the engine that will run the program.
    pub fn with_engine(mut self, engine: EngineKind) -> Program {
        self.engine = engine;
        self
    }

    /// The bytecode.
    pub fn bytecode(&self) -> &[u8] {
        &self.bytecode
    }

    /// Number of instruction slots.
    pub fn len(&self) -> usize {
        self.bytecode.len() / 8
    }

    /// Whether the program has no instructions.
    pub fn is_empty(&self) -> bool {
        self.bytecode.is_empty()
    }

    /// The program's maps, in index order.
    pub fn maps(&self) -> &[Arc<dyn ProgramMap>] {
        &self.maps
    }

    /// The maps as a shared list for the helper context.
    pub fn map_list(&self) -> MapList {
        self.maps.to_vec().into()
    }

    /// The program type, which decides the context layout.
    pub fn prog_type(&self) -> ProgramType {
        self.prog_type
    }

    /// The engine chosen for the program.
    pub fn engine(&self) -> EngineKind {
        self.engine
    }

    /// Sets the cookie of the program's attachment (what `bpf_get_attach_cookie`, helper
    /// 174, returns; the kernel takes it from the `bpf_link`). Default 0.
    pub fn with_attach_cookie(mut self, cookie: u64) -> Program {
        self.attach_cookie = cookie;
        self
    }

    /// The cookie of the program's attachment.
    pub fn attach_cookie(&self) -> u64 {
        self.attach_cookie
    }
}
