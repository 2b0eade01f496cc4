//! The input layout of the bytecode targets (`bytecode`, `bytecode_jit`):
//! `[setup][len lo][len hi][len bytes: packet or context][code...]`, where `setup` picks the
//! program type (bits 0-1) and the number of CPUs (bits 2-3); each target reads its own
//! further bits.

use bpfvm::{Input, ProgramType};

/// A bytecode target's input taken apart.
pub struct BytecodeInput<'a> {
    /// The setup byte.
    pub setup: u8,
    /// The packet or context bytes.
    pub payload: &'a [u8],
    /// The program's instructions.
    pub code: &'a [u8],
}

impl<'a> BytecodeInput<'a> {
    /// Splits `data`; `None` when it is shorter than the three header bytes.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let (&[setup, lo, hi], rest) = data.split_first_chunk::<3>()?;
        let len = usize::from(u16::from_le_bytes([lo, hi])).min(rest.len());
        let (payload, code) = rest.split_at(len);
        Some(BytecodeInput {
            setup,
            payload,
            code,
        })
    }

    /// The program type bits 0-1 pick.
    pub fn program_type(&self) -> ProgramType {
        [
            ProgramType::Unspecified,
            ProgramType::Xdp,
            ProgramType::SchedCls,
            ProgramType::SocketFilter,
        ][usize::from(self.setup & 3)]
    }

    /// The number of simulated CPUs bits 2-3 pick (1 to 4).
    pub fn ncpus(&self) -> u32 {
        1 + u32::from((self.setup >> 2) & 3)
    }

    /// What each run gets: the payload as a packet, or as the context of an
    /// `Unspecified` program.
    pub fn run_input(&self) -> Input {
        if self.program_type() == ProgramType::Unspecified {
            Input::context(self.payload.to_vec())
        } else {
            Input::packet(self.payload.to_vec())
        }
    }
}
