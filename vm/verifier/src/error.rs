//! A refused program: the instruction, the rule it broke, the kernel's words for it, the
//! errno `BPF_PROG_LOAD` would return, and the register state at the failure.

use std::fmt;

/// Which rule a refused program broke.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Rule {
    /// Instruction encoding: opcodes, reserved fields, registers.
    Encoding,
    /// Program size limits.
    ProgramSize,
    /// Control flow: jumps out of range, unreachable instructions, back-edges, falling off
    /// the end, calls.
    ControlFlow,
    /// Reading a register that holds nothing (`!read_ok`).
    UninitRegister,
    /// Writing the frame pointer.
    FramePointer,
    /// Dereferencing something that is not a valid pointer, or one that may be NULL.
    InvalidDeref,
    /// Context field access.
    CtxAccess,
    /// Stack access (bounds, alignment, initialisation, spills).
    StackAccess,
    /// Map value access (bounds, read-only/write-only maps, special fields).
    MapAccess,
    /// Packet access (bounds proven by `data_end` comparisons).
    PacketAccess,
    /// Access to memory returned by a helper.
    MemAccess,
    /// Pointer arithmetic and pointer ALU.
    PointerArithmetic,
    /// A pointer value leaking into memory, a helper, a comparison or the return value.
    PointerLeak,
    /// Helper use: unknown helper, not allowed for the program type or privilege.
    HelperNotAllowed,
    /// Helper arguments (types, sizes, initialised buffers).
    HelperArgs,
    /// bpf-to-bpf calls: frames, stack size, returns.
    Call,
    /// Return value out of the program type's range.
    ReturnValue,
    /// A loop the verifier proves never ends.
    InfiniteLoop,
    /// The complexity limit (processed instructions, pending branches).
    Complexity,
    /// Acquired references not released.
    References,
    /// Map references in `ld_imm64`.
    MapReference,
    /// The loader's privileges do not allow the program.
    Privilege,
    /// Something the kernel checks that bpfvm's verifier does not model (kfuncs, BTF
    /// arguments, ...): refused rather than guessed.
    Unsupported,
}

impl Rule {
    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Encoding => "instruction encoding",
            Rule::ProgramSize => "program size",
            Rule::ControlFlow => "control flow",
            Rule::UninitRegister => "uninitialised register",
            Rule::FramePointer => "frame pointer",
            Rule::InvalidDeref => "invalid dereference",
            Rule::CtxAccess => "context access",
            Rule::StackAccess => "stack access",
            Rule::MapAccess => "map value access",
            Rule::PacketAccess => "packet access",
            Rule::MemAccess => "memory access",
            Rule::PointerArithmetic => "pointer arithmetic",
            Rule::PointerLeak => "pointer leak",
            Rule::HelperNotAllowed => "helper not allowed",
            Rule::HelperArgs => "helper arguments",
            Rule::Call => "function call",
            Rule::ReturnValue => "return value",
            Rule::InfiniteLoop => "infinite loop",
            Rule::Complexity => "complexity limit",
            Rule::References => "unreleased reference",
            Rule::MapReference => "map reference",
            Rule::Privilege => "privilege",
            Rule::Unsupported => "not modelled",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `EINVAL`.
pub const EINVAL: i32 = 22;
/// `EACCES`.
pub const EACCES: i32 = 13;
/// `E2BIG`.
pub const E2BIG: i32 = 7;
/// `EFAULT`.
pub const EFAULT: i32 = 14;
/// `EPERM`.
pub const EPERM: i32 = 1;
/// `ENOTSUPP` (the kernel's internal 524).
pub const ENOTSUPP: i32 = 524;

/// Why the kernel would refuse the program.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct VerifierError {
    /// Instruction index, when the error is at one instruction.
    pub insn: Option<usize>,
    /// The rule broken.
    pub rule: Rule,
    /// The errno `BPF_PROG_LOAD` returns.
    pub errno: i32,
    /// The message, in the kernel's words where the kernel has words.
    pub message: String,
    /// The current frame's registers and stack at the failure, as the kernel's log
    /// prints them (empty for errors before the path walk).
    pub state: String,
}

impl VerifierError {
    /// An error with no instruction or state.
    pub fn new(rule: Rule, errno: i32, message: impl Into<String>) -> VerifierError {
        VerifierError {
            insn: None,
            rule,
            errno,
            message: message.into(),
            state: String::new(),
        }
    }

    /// Sets the instruction index.
    pub fn at(mut self, insn: usize) -> VerifierError {
        self.insn = Some(insn);
        self
    }

    /// The kernel's log line for the error (its last line).
    pub fn kernel_message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for VerifierError {
    /// `instruction N: <kernel words> (<rule>)`, then the register state on the next line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.insn {
            write!(f, "instruction {i}: ")?;
        }
        write!(f, "{} ({})", self.message, self.rule)?;
        if !self.state.is_empty() {
            write!(f, "\n  state:{}", self.state)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_instruction_rule_and_state() {
        let mut e = VerifierError::new(Rule::UninitRegister, EACCES, "R1 !read_ok").at(3);
        assert_eq!(
            e.to_string(),
            "instruction 3: R1 !read_ok (uninitialised register)"
        );
        e.state = " R10=fp0".into();
        assert!(e.to_string().ends_with("\n  state: R10=fp0"));
    }
}
