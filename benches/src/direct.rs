//! rbpf 0.4.1 called directly (`EbpfVmNoData`), without bpfvm's engine wrapper: shows what
//! the wrapper (per-thread VM cache, helper bridge, context copy) adds.
//!
//! The JIT is `unsafe` to run (it checks no memory access); this module is the only one in
//! the crate that may use `unsafe`.
#![allow(unsafe_code)]

/// What `bpf_get_smp_processor_id` returns on CPU 0, as a bare rbpf helper.
fn smp_processor_id(_: u64, _: u64, _: u64, _: u64, _: u64) -> u64 {
    0
}

/// An rbpf VM over `code`, with helper 8 registered, JIT-compiled when `jit` is true.
pub struct Direct<'a> {
    vm: rbpf::EbpfVmNoData<'a>,
    jit: bool,
}

impl std::fmt::Debug for Direct<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("jit", &self.jit)
            .finish_non_exhaustive()
    }
}

impl<'a> Direct<'a> {
    /// Verifies (and for `jit`, compiles) `code` with rbpf.
    pub fn new(code: &'a [u8], jit: bool) -> Result<Direct<'a>, std::io::Error> {
        let mut vm = rbpf::EbpfVmNoData::new(Some(code))?;
        vm.register_helper(8, smp_processor_id)?;
        if jit {
            compile(&mut vm)?;
        }
        Ok(Direct { vm, jit })
    }

    /// Runs the program once and returns `r0`.
    pub fn run(&self) -> Result<u64, std::io::Error> {
        if self.jit {
            run_jit(&self.vm)
        } else {
            self.vm.execute_program()
        }
    }
}

#[cfg(all(target_arch = "x86_64", not(windows)))]
fn compile(vm: &mut rbpf::EbpfVmNoData<'_>) -> Result<(), std::io::Error> {
    vm.jit_compile()
}

#[cfg(not(all(target_arch = "x86_64", not(windows))))]
fn compile(_: &mut rbpf::EbpfVmNoData<'_>) -> Result<(), std::io::Error> {
    Err(std::io::Error::other(
        "rbpf's JIT needs x86_64 and not Windows",
    ))
}

#[cfg(all(target_arch = "x86_64", not(windows)))]
fn run_jit(vm: &rbpf::EbpfVmNoData<'_>) -> Result<u64, std::io::Error> {
    // SAFETY: only the fixed benchmark programs of `crate::programs` are compiled; they
    // touch only their own stack, which rbpf's JIT provides, and call only helper 8, which
    // reads no memory.
    unsafe { vm.execute_program_jit() }
}

#[cfg(not(all(target_arch = "x86_64", not(windows))))]
fn run_jit(_: &rbpf::EbpfVmNoData<'_>) -> Result<u64, std::io::Error> {
    Err(std::io::Error::other(
        "rbpf's JIT needs x86_64 and not Windows",
    ))
}
