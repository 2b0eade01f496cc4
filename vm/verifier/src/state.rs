//! The state of one verification path: a stack of function frames (registers and stack
//! slots each), plus the bookkeeping the kernel keeps per path (parent checkpoint, jump
//! history for precision backtracking, acquired references).

use crate::reg::{Reg, RegType};
use crate::stack::{StackSlot, SLOT};

/// Registers `r0..=r10`.
pub const NREGS: usize = 11;
/// The frame pointer.
pub const FP: usize = 10;
/// Most nested frames (`MAX_CALL_FRAMES`).
pub const MAX_CALL_FRAMES: usize = 8;

/// One function frame (`struct bpf_func_state`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FuncState {
    /// Registers.
    pub regs: [Reg; NREGS],
    /// Stack slots from `fp-8` down; `stack.len() * 8` is the kernel's `allocated_stack`.
    pub stack: Vec<StackSlot>,
    /// Instruction index of the call that created the frame (`-1` for the main program).
    pub callsite: i64,
    /// Index of the frame in the call chain.
    pub frameno: u8,
    /// Subprogram the frame runs.
    pub subprogno: usize,
    /// Whether the frame runs a callback (bpf_loop and friends).
    pub in_callback: bool,
    /// Allowed `r0` range at a callback's exit.
    pub callback_ret_range: (i32, i32),
    /// Callback iterations explored so far (`callback_depth`).
    pub callback_depth: u32,
}

impl FuncState {
    /// A fresh frame: every register unwritten but the frame pointer.
    pub fn new(callsite: i64, frameno: u8, subprogno: usize) -> FuncState {
        let mut regs = [Reg::not_init(); NREGS];
        let mut fp = Reg::pointer(RegType::Stack);
        fp.frameno = frameno;
        regs[FP] = fp;
        FuncState {
            regs,
            stack: Vec::new(),
            callsite,
            frameno,
            subprogno,
            in_callback: false,
            callback_ret_range: (0, 0),
            callback_depth: 0,
        }
    }

    /// Bytes of stack tracked (`allocated_stack`).
    pub fn allocated_stack(&self) -> usize {
        self.stack.len() * SLOT
    }

    /// Grows the tracked stack to cover `size` bytes below the frame pointer.
    pub fn grow_stack(&mut self, size: usize) {
        let n = size.div_ceil(SLOT);
        if self.stack.len() < n {
            self.stack.resize(n, StackSlot::default());
        }
    }
}

/// One entry of a path's jump history (`struct bpf_jmp_history_entry`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct HistEntry {
    /// Instruction index.
    pub idx: u32,
    /// The instruction executed before it.
    pub prev_idx: u32,
    /// Stack access / register flags ([`hist`]).
    pub flags: u32,
    /// Linked registers recorded by a conditional jump (see `precision`).
    pub linked: u64,
}

/// Jump history flags.
pub mod hist {
    /// The instruction spilled to or filled from a stack slot.
    pub const STACK_ACCESS: u32 = 1 << 3;
    /// Frame number of the stack access (low 3 bits).
    #[allow(dead_code)] // read by backtracking
    pub const FRAMENO_MASK: u32 = 0x7;
    /// Slot index of the stack access (6 bits at `SPI_SHIFT`).
    pub const SPI_SHIFT: u32 = 4;
    /// Mask of the slot index after shifting.
    #[allow(dead_code)] // read by backtracking
    pub const SPI_MASK: u32 = 0x3f;
    /// The jump compared a stack pointer in `src`.
    pub const SRC_REG_STACK: u32 = 1 << 10;
    /// The jump compared a stack pointer in `dst`.
    pub const DST_REG_STACK: u32 = 1 << 11;

    /// Flags of a stack access to slot `spi` of frame `frameno`.
    pub fn stack_access(frameno: u8, spi: usize) -> u32 {
        STACK_ACCESS | ((spi as u32) << SPI_SHIFT) | u32::from(frameno)
    }
}

/// An acquired reference (socket, ring buffer record) that must be released.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RefState {
    /// The reference id.
    pub id: u32,
    /// Instruction that acquired it.
    pub insn_idx: usize,
}

/// The state of one path (`struct bpf_verifier_state`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VState {
    /// Frames, the current one last.
    pub frames: Vec<FuncState>,
    /// Acquired references.
    pub refs: Vec<RefState>,
    /// Inside a `bpf_rcu_read_lock` section (`active_rcu_lock`).
    pub active_rcu_lock: bool,
    /// The checkpoint this path continues from (index into the explored states).
    pub parent: Option<usize>,
    /// Paths still to finish that descend from this state.
    pub branches: u32,
    /// Instruction of the state.
    pub insn_idx: usize,
    /// First instruction processed since the parent checkpoint.
    pub first_insn_idx: usize,
    /// Last instruction processed before this state was checkpointed (`-1` none).
    pub last_insn_idx: i64,
    /// Jumps and stack accesses since the parent checkpoint.
    pub jmp_history: Vec<HistEntry>,
    /// Dead registers and slots already cleared.
    pub cleaned: bool,
    /// Depth in the tree of checkpoints.
    pub dfs_depth: u32,
    /// Callback iterations unrolled (bpf_loop).
    pub callback_unroll_depth: u32,
    /// A path the CPU may take only speculatively (Spectre v1 mitigation without
    /// `CAP_PERFMON`): its recoverable errors end it instead of refusing the program.
    pub speculative: bool,
}

impl VState {
    /// The entry state of the main program: `r1` is the context.
    pub fn entry() -> VState {
        let mut f = FuncState::new(-1, 0, 0);
        f.regs[1] = Reg::pointer(RegType::Ctx);
        VState {
            frames: vec![f],
            refs: Vec::new(),
            active_rcu_lock: false,
            parent: None,
            branches: 1,
            insn_idx: 0,
            first_insn_idx: 0,
            last_insn_idx: -1,
            jmp_history: Vec::new(),
            cleaned: false,
            dfs_depth: 0,
            callback_unroll_depth: 0,
            speculative: false,
        }
    }

    /// Index of the current frame.
    pub fn curframe(&self) -> usize {
        self.frames.len() - 1
    }

    /// The current frame.
    pub fn cur(&self) -> &FuncState {
        self.frames.last().expect("a state has a frame")
    }

    /// The current frame, mutably.
    pub fn cur_mut(&mut self) -> &mut FuncState {
        self.frames.last_mut().expect("a state has a frame")
    }

    /// The current frame's registers.
    pub fn regs(&self) -> &[Reg; NREGS] {
        &self.cur().regs
    }

    /// The current frame's registers, mutably.
    pub fn regs_mut(&mut self) -> &mut [Reg; NREGS] {
        &mut self.cur_mut().regs
    }

    /// The instruction a frame is at: the current instruction for the innermost frame,
    /// the call site of the next frame for the others (`frame_insn_idx`).
    pub fn frame_insn_idx(&self, frame: usize) -> usize {
        if frame == self.curframe() {
            self.insn_idx
        } else {
            self.frames[frame + 1].callsite as usize
        }
    }

    /// Calls `f` on every register and spilled register of every frame.
    pub fn for_each_reg(&mut self, mut f: impl FnMut(&mut Reg)) {
        for fr in self.frames.iter_mut() {
            for r in fr.regs.iter_mut() {
                f(r);
            }
            for s in fr.stack.iter_mut() {
                if s.is_spilled() {
                    f(&mut s.spilled);
                }
            }
        }
    }
}
