//! Tail calls: loaded programs in `BPF_MAP_TYPE_PROG_ARRAY` slots, the program ids a host
//! lookup answers, and the owner-type rule, between the VM and `bpfvm_maps::prog_array`.
//! The jump itself is the engines' (`engine::interpreter::tail_call`, helper 12, which both
//! engines call; the target runs in its own engine's form).
//!
//! ```
//! use bpfvm::{maps::{MapSpec, MapType}, Program, ProgramType, Vm};
//!
//! let vm = Vm::default();
//! let jmp = vm.create_map(MapSpec::new(MapType::ProgArray, 4, 4, 4))?;
//! // r0 = 7; exit
//! let target = vm.load(Program::from_words(&[0x0000_0007_0000_00b7, 0x95], ProgramType::Xdp))?;
//! target.set_in_prog_array(&jmp, 2)?;
//! let mut id = [0u8; 4];
//! jmp.lookup(&2u32.to_ne_bytes(), &mut id, 0)?;
//! assert_eq!(u32::from_ne_bytes(id), target.id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::any::Any;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bpfvm_maps::{Map, MapError, MapType, ProgEntry};

use crate::engine::interpreter::Interpreter;
use crate::error::PrepareError;
use crate::program::Program;
use crate::program_type::ProgramType;
use crate::vm::{Loaded, LoadedProgram};

static NEXT_PROGRAM_ID: AtomicU32 = AtomicU32::new(1);

/// A fresh program id (ids start at 1, as the kernel's; they wrap after 2^32 loads).
pub(crate) fn next_program_id() -> u32 {
    match NEXT_PROGRAM_ID.fetch_add(1, Ordering::Relaxed) {
        0 => NEXT_PROGRAM_ID.fetch_add(1, Ordering::Relaxed),
        id => id,
    }
}

/// The kernel's `BPF_PROG_TYPE_*` number of a program type (0 for
/// [`ProgramType::Unspecified`]).
pub fn kernel_prog_type(t: ProgramType) -> u32 {
    match t {
        ProgramType::Unspecified => 0,
        ProgramType::SocketFilter => 1,
        ProgramType::Kprobe => 2,
        ProgramType::SchedCls => 3,
        ProgramType::SchedAct => 4,
        ProgramType::Tracepoint => 5,
        ProgramType::Xdp => 6,
        ProgramType::CgroupSkb => 8,
        ProgramType::PerfEvent => 7,
        ProgramType::RawTracepoint => 17,
        ProgramType::Tracing => 26,
        ProgramType::Syscall => 31,
    }
}

/// The kernel's `bpf_check_tail_call` at load: every PROG_ARRAY the program uses takes the
/// program's type as its owner's, or refuses the program if its owner has another.
pub(crate) fn claim_prog_arrays(program: &Program) -> Result<(), PrepareError> {
    let prog_type = kernel_prog_type(program.prog_type());
    for map in program.maps() {
        let Some(m) = map.as_map().filter(|m| m.map_type() == MapType::ProgArray) else {
            continue;
        };
        if m.prog_array_claim(prog_type).is_err() {
            return Err(PrepareError::ProgArrayOwner {
                map: m.spec().name.clone(),
                owner: m.prog_array_owner().unwrap_or(0),
                prog_type,
            });
        }
    }
    Ok(())
}

/// Makes `program` hold its PROG_ARRAYs as a loaded program does
/// ([`bpfvm_maps::Map::prog_array_program_ref`]: the same slots, not a user of the map), so
/// that the host's handles alone are the arrays' users: when the last of them is dropped
/// the array is emptied, as the kernel's `map_release_uref` does when the last user file of
/// the map closes, and a program stored in an array it uses is freed with it.
pub(crate) fn hold_prog_arrays_as_program(program: &mut Program) {
    program.replace_kernel_maps(|m| m.prog_array_program_ref());
}

/// The program in a PROG_ARRAY slot, its interpreter form and, for a program prepared for
/// the `jit` engine, its compiled form (`None` if the slot holds something else, or a
/// program prepared for an rbpf engine).
pub(crate) fn tail_call_target(
    entry: &ProgEntry,
) -> Option<(&Program, &Interpreter, Option<&crate::engine::jit::Jit>)> {
    let loaded = entry.program.downcast_ref::<Loaded>()?;
    Some((
        &loaded.program,
        loaded.engine.as_interpreter()?,
        loaded.engine.as_jit(),
    ))
}

impl LoadedProgram {
    /// The program's id: what a host lookup of a PROG_ARRAY slot holding it answers (the
    /// kernel's prog id). Unique among the programs of this process.
    pub fn id(&self) -> u32 {
        self.inner.id
    }

    /// The program as a PROG_ARRAY slot holds it (for [`Map::prog_array_update`]).
    pub fn prog_array_entry(&self) -> ProgEntry {
        let program: Arc<dyn Any + Send + Sync> = self.inner.clone();
        ProgEntry {
            id: self.inner.id,
            prog_type: kernel_prog_type(self.program().prog_type()),
            program,
        }
    }

    /// `BPF_MAP_UPDATE_ELEM` of this program into slot `index` of PROG_ARRAY `map`: the
    /// kernel's errors (`E2BIG` past `max_entries`, `EINVAL` for a map whose owner is a
    /// program of another type, `EINVAL` for a map that is not a PROG_ARRAY).
    pub fn set_in_prog_array(&self, map: &Map, index: u32) -> Result<(), MapError> {
        map.prog_array_update(index, self.prog_array_entry(), 0)
    }
}
