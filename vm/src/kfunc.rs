//! Kernel functions (kfuncs): calls resolved by name, when a program is loaded, against
//! the kfuncs registered with the VM ([`crate::VmBuilder::kfunc`],
//! `Registry::register_kfunc`), as libbpf resolves them against the kernel's BTF:
//!
//! - a registered kfunc is called like a helper, with the run's context; the kernel's
//!   verifier checks each call against the prototype of the program's `extern`
//!   declaration ([`KfuncImport::args`], [`KfuncImport::ret`]) and the flags given at
//!   registration;
//! - an unregistered `__weak` kfunc is what libbpf (1.2 and later) makes of a weak kfunc
//!   the kernel lacks: its address (`bpf_ksym_exists`) is 0 and each call is poisoned
//!   (`call 2002000000 + extern index`), so the verifier refuses the program only if a
//!   call is reachable ("invalid func unknown#2002000000"), and the run that reaches
//!   one (structural verifier) ends with [`crate::RunError::CorePoison`];
//! - an unregistered strong kfunc refuses the program with
//!   [`PrepareError::UnresolvedKfunc`] naming it (libbpf: "extern (func ksym) 'f': not
//!   found in kernel or module BTFs", `EINVAL` from `bpf_object__load`). libbpf refuses the
//!   whole object for it; bpfvm, which loads per program, only the programs that use it.
//!
//! ```
//! use bpfvm::helpers::{HelperContext, KfuncFlags};
//! use bpfvm::loader::Object;
//! use bpfvm::{Input, Vm};
//!
//! // kfunc_user.bpf.c: `extern int bpfvm_test_add(int a, int b) __ksym;` called from XDP
//! // with the packet's first byte and 1.
//! let obj = Object::parse_named("kfunc_user", include_bytes!("../tests/fixtures/kfunc_user.o"))?;
//! let maps = obj.create_maps(1)?;
//! let vm = Vm::builder()
//!     .cpus(1)
//!     .kfunc("bpfvm_test_add", KfuncFlags::NONE, |_: &mut HelperContext, a: [u64; 5]| {
//!         Ok((a[0] as i32).wrapping_add(a[1] as i32) as u32 as u64)
//!     })
//!     .unwrap()
//!     .build();
//! let prog = vm.load(obj.vm_program("calls_add", &maps)?).unwrap();
//! let out = vm.run(&prog, 0, &Input::packet(vec![41; 64])).unwrap();
//! assert_eq!(out.retval, 42);
//! # Ok::<(), bpfvm::loader::LoadError>(())
//! ```

use std::sync::Arc;

use bpfvm_helpers::{KfuncFlags, Registry};
pub use bpfvm_verifier::{KfuncArg, KfuncRet};

use crate::error::PrepareError;
use crate::program::Program;

/// `src_reg` of an `ld_imm64` that loads the address of kfunc `imm` of the program
/// (the kernel's `BPF_PSEUDO_BTF_ID`): what `bpf_ksym_exists(f)` compiles to.
pub const PSEUDO_KFUNC_ADDR: u8 = 3;

/// libbpf's poisoned call to an unresolved weak kfunc: `call` of helper
/// `POISON_CALL_KFUNC_BASE + extern index`.
pub const POISON_CALL_KFUNC_BASE: i32 = 2_002_000_000;

/// The address `bpf_ksym_exists(f)` sees for a registered kfunc (`+ 16 × index`): some
/// nonzero value, as a kernel address is.
pub const KFUNC_ADDR_BASE: u64 = 0xffff_ffff_c000_0000;

/// `src_reg` of a kfunc call.
const PSEUDO_KFUNC_CALL: u8 = 2;

/// A kernel function a program calls, as the object declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KfuncImport {
    /// Its name, resolved against the registered kfuncs.
    pub name: Arc<str>,
    /// Declared `__weak`: when nobody registered it, it is absent rather than an error.
    pub weak: bool,
    /// libbpf's index of the extern in the object (the poisoned call's number).
    pub extern_index: u32,
    /// The arguments of its BTF prototype.
    pub args: Vec<KfuncArg>,
    /// What it returns.
    pub ret: KfuncRet,
}

/// A program with its kfuncs resolved: the form the kernel's verifier checks and the
/// form the engines run.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// kfunc calls as the verifier takes them (`imm` indexes `kfuncs`).
    pub verify: Program,
    /// What the verifier knows of each kfunc.
    pub kfuncs: Vec<bpfvm_verifier::Kfunc>,
    /// kfunc calls as helper calls of the registered kfuncs' ids.
    pub run: Program,
}

fn set_imm(bytes: &mut [u8], i: usize, imm: i32) {
    bytes[i * 8 + 4..i * 8 + 8].copy_from_slice(&imm.to_le_bytes());
}

fn set_src(bytes: &mut [u8], i: usize, src: u8) {
    bytes[i * 8 + 1] = (bytes[i * 8 + 1] & 0x0f) | (src << 4);
}

/// `args` with the pointers the registration sizes ([`KfuncFlags::sized`]) as
/// [`KfuncArg::MemSized`] followed by their [`KfuncArg::Size`].
fn with_sizes(args: &[KfuncArg], flags: KfuncFlags) -> Vec<KfuncArg> {
    let mut out = args.to_vec();
    for i in 0..args.len().saturating_sub(1) {
        let pointer = matches!(args[i], KfuncArg::Mem { .. } | KfuncArg::Ptr { .. });
        if flags.is_sized(i) && pointer && args[i + 1] == KfuncArg::Scalar {
            out[i] = KfuncArg::MemSized;
            out[i + 1] = KfuncArg::Size;
        }
    }
    out
}

/// Resolves the kfuncs of `program` against `registry`; `None` when it calls none.
pub(crate) fn resolve(
    program: &Program,
    registry: &Registry,
) -> Result<Option<Resolved>, PrepareError> {
    let code = program.bytecode();
    let n = code.len() / 8;
    let opcode = |i: usize| code[i * 8];
    let src = |i: usize| code[i * 8 + 1] >> 4;
    let imm = |i: usize| {
        i32::from_le_bytes([
            code[i * 8 + 4],
            code[i * 8 + 5],
            code[i * 8 + 6],
            code[i * 8 + 7],
        ])
    };
    let is_call = |i: usize| opcode(i) == 0x85 && src(i) == PSEUDO_KFUNC_CALL;
    let is_addr = |i: usize| opcode(i) == 0x18 && src(i) == PSEUDO_KFUNC_ADDR && i + 1 < n;
    if program.kfuncs().is_empty() && !(0..n).any(|i| is_call(i) || is_addr(i)) {
        return Ok(None);
    }
    let imports = program.kfuncs();
    let found: Vec<_> = imports.iter().map(|k| registry.kfunc(&k.name)).collect();
    let kfuncs = imports
        .iter()
        .zip(&found)
        .map(|(k, reg)| bpfvm_verifier::Kfunc {
            name: k.name.to_string(),
            args: reg.map_or_else(|| k.args.clone(), |r| with_sizes(&k.args, r.flags)),
            ret: k.ret.clone(),
            flags: reg.map_or(0, |r| r.flags.bits() & 0xff),
        })
        .collect();
    let mut verify = code.to_vec();
    let mut run = code.to_vec();
    let mut poisons = Vec::new();
    let mut i = 0;
    while i < n {
        let at = usize::try_from(imm(i)).ok().filter(|&k| k < imports.len());
        if is_call(i) {
            // An index past the table stays as it is: the verifier refuses it.
            if let Some(k) = at {
                let import = &imports[k];
                match found[k] {
                    Some(reg) => {
                        set_src(&mut run, i, 0);
                        set_imm(&mut run, i, reg.id as i32);
                    }
                    None if import.weak => {
                        let poison =
                            POISON_CALL_KFUNC_BASE.saturating_add(import.extern_index as i32);
                        for form in [&mut verify, &mut run] {
                            set_src(form, i, 0);
                            form[i * 8 + 2..i * 8 + 4].copy_from_slice(&[0, 0]);
                            set_imm(form, i, poison);
                        }
                        set_imm(&mut run, i, crate::insn::CORE_POISON_HELPER);
                        poisons.push((
                            i,
                            Arc::<str>::from(format!(
                                "kfunc '{}' is referenced but wasn't resolved",
                                import.name
                            )),
                        ));
                    }
                    None => {
                        return Err(PrepareError::UnresolvedKfunc {
                            name: import.name.to_string(),
                            pc: i,
                        })
                    }
                }
            }
        } else if is_addr(i) {
            if let Some(k) = at {
                let addr = match found[k] {
                    Some(_) => KFUNC_ADDR_BASE + 16 * k as u64,
                    None if imports[k].weak => 0,
                    None => {
                        return Err(PrepareError::UnresolvedKfunc {
                            name: imports[k].name.to_string(),
                            pc: i,
                        })
                    }
                };
                for form in [&mut verify, &mut run] {
                    set_src(form, i, 0);
                    set_imm(form, i, addr as u32 as i32);
                    set_imm(form, i + 1, (addr >> 32) as u32 as i32);
                }
            }
            i += 2;
            continue;
        } else if opcode(i) == 0x18 {
            i += 2;
            continue;
        }
        i += 1;
    }
    let mut all_poisons: Vec<_> = program.core_poisons().to_vec();
    all_poisons.extend(poisons);
    let verify = program
        .with_bytecode(verify)
        .with_core_poisons(all_poisons.clone());
    let run = program.with_bytecode(run).with_core_poisons(all_poisons);
    Ok(Some(Resolved {
        verify,
        kfuncs,
        run,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProgramType;
    use bpfvm_helpers::HelperContext;

    fn import(name: &str, weak: bool, extern_index: u32) -> KfuncImport {
        KfuncImport {
            name: name.into(),
            weak,
            extern_index,
            args: vec![],
            ret: KfuncRet::Void,
        }
    }

    fn words(p: &Program) -> Vec<u64> {
        p.bytecode()
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn calls_and_addresses_are_resolved_poisoned_or_refused() {
        let mut registry = Registry::new();
        let id = registry
            .register_kfunc("have", KfuncFlags::RET_NULL, |_: &mut HelperContext, _| {
                Ok(0)
            })
            .unwrap();
        let program = Program::from_words(
            &[
                0x0000_0000_0000_3118, // r1 = &kfunc #0 (have)
                0,
                0x0000_0001_0000_3118, // r1 = &kfunc #1 (weak, missing)
                0,
                0x0000_0000_0000_2085, // call kfunc #0
                0x0000_0001_0000_2085, // call kfunc #1
                0x95,
            ],
            ProgramType::Xdp,
        )
        .with_kfuncs(vec![import("have", false, 0), import("gone", true, 4)]);
        let r = resolve(&program, &registry).unwrap().unwrap();
        let (v, run) = (words(&r.verify), words(&r.run));
        let addr = KFUNC_ADDR_BASE;
        assert_eq!(v[0], 0x0118 | ((addr & 0xffff_ffff) << 32));
        assert_eq!(v[1], (addr >> 32) << 32);
        assert_eq!((v[2], v[3]), (0x0118, 0), "a missing weak kfunc is at 0");
        assert_eq!(
            v[4], 0x0000_0000_0000_2085,
            "the verifier sees the kfunc call"
        );
        assert_eq!(
            run[4],
            0x0085 | (u64::from(id) << 32),
            "engines call its id"
        );
        let poison = (POISON_CALL_KFUNC_BASE + 4) as u32;
        assert_eq!(v[5], 0x0085 | (u64::from(poison) << 32), "libbpf's poison");
        assert_eq!(
            run[5],
            0x0085 | (u64::from(crate::insn::CORE_POISON_HELPER as u32) << 32)
        );
        assert_eq!(
            r.run.core_poison(5).map(|s| &**s),
            Some("kfunc 'gone' is referenced but wasn't resolved")
        );
        assert_eq!(r.kfuncs[0].flags, KfuncFlags::RET_NULL.bits());
        assert_eq!(r.kfuncs[1].flags, 0);

        // A strong kfunc nobody registered is an error naming it.
        let strong = program.with_kfuncs(vec![import("have", false, 0), import("gone", false, 4)]);
        let e = resolve(&strong, &registry).unwrap_err();
        assert_eq!(
            e,
            PrepareError::UnresolvedKfunc {
                name: "gone".into(),
                pc: 2
            }
        );
        // No kfunc: nothing to do.
        let plain = Program::from_words(&[0xb7, 0x95], ProgramType::Xdp);
        assert!(resolve(&plain, &registry).unwrap().is_none());
    }

    #[test]
    fn registration_sizes_pointer_arguments() {
        let args = vec![
            KfuncArg::Mem { size: 1 },
            KfuncArg::Scalar,
            KfuncArg::Scalar,
        ];
        assert_eq!(with_sizes(&args, KfuncFlags::NONE), args);
        assert_eq!(
            with_sizes(&args, KfuncFlags::sized(0)),
            [KfuncArg::MemSized, KfuncArg::Size, KfuncArg::Scalar]
        );
        // Only a pointer followed by a scalar can be sized.
        assert_eq!(with_sizes(&args, KfuncFlags::sized(1)), args);
    }
}
