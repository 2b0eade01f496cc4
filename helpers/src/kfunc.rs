//! Kernel functions (kfuncs) a program calls by name: `extern int f(int) __ksym;` in C,
//! a `call` with `src_reg` `BPF_PSEUDO_KFUNC_CALL` in the object.
//!
//! The kernel resolves a kfunc by its name in the kernel's BTF; bpfvm resolves it by its
//! name among the functions registered with [`Registry::register_kfunc`], which receive
//! the run's [`HelperContext`] and `r1..=r5` like helpers. The argument and return types
//! the verifier checks come from the program's own BTF (the `extern` declaration); what
//! BTF cannot say (the kernel's `KF_*` flags: the function acquires or releases a
//! reference, may return NULL) is given at registration as [`KfuncFlags`].
//!
//! ```
//! use bpfvm_helpers::{HelperContext, KfuncFlags, Registry};
//!
//! let mut registry = Registry::with_builtins();
//! let id = registry
//!     .register_kfunc("my_kfunc", KfuncFlags::NONE, |_: &mut HelperContext, a: [u64; 5]| {
//!         Ok(a[0] + 1)
//!     })
//!     .unwrap();
//! let k = registry.kfunc("my_kfunc").unwrap();
//! assert_eq!((k.id, k.flags), (id, KfuncFlags::NONE));
//! let mut ctx = HelperContext::new(0, 1);
//! assert_eq!(registry.call(id, &mut ctx, [41, 0, 0, 0, 0]).unwrap(), 42);
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use crate::registry::{Callable, Entry, Helper, HelperFn, Registry};
#[cfg(doc)]
use crate::HelperContext;

/// The id of the first registered kfunc in the helper id space [`Registry::get`] and
/// engines use (the `n`th kfunc registered is `KFUNC_ID_BASE + n`). The program's
/// instructions never carry it: engines are given it when a program is loaded.
pub const KFUNC_ID_BASE: u32 = 1 << 24;

/// Most kfuncs one registry holds.
pub const MAX_KFUNCS: usize = 1 << 16;

/// Longest kfunc name (the kernel's `KSYM_NAME_LEN` is 512).
pub const MAX_KFUNC_NAME: usize = 512;

/// The kernel's `KF_*` flags of a kfunc that its BTF prototype does not carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KfuncFlags(u32);

impl KfuncFlags {
    /// No flag: a plain function.
    pub const NONE: KfuncFlags = KfuncFlags(0);
    /// `KF_ACQUIRE`: returns a pointer holding a reference the program must release.
    pub const ACQUIRE: KfuncFlags = KfuncFlags(1 << 0);
    /// `KF_RELEASE`: releases the reference its first argument holds.
    pub const RELEASE: KfuncFlags = KfuncFlags(1 << 1);
    /// `KF_RET_NULL`: the returned pointer may be NULL and must be checked.
    pub const RET_NULL: KfuncFlags = KfuncFlags(1 << 2);

    /// Argument `arg` (0-based, at most 3) is a pointer to memory whose size in bytes is
    /// the next argument: what the kernel learns from a `__sz` suffix on the next
    /// parameter's name (clang drops the parameter names of `extern` declarations, so
    /// the object cannot say it). Without it, a pointer argument must point to a scalar
    /// or a struct of scalars, whose size is the pointee's.
    pub const fn sized(arg: u32) -> KfuncFlags {
        if arg < 4 {
            KfuncFlags(1 << (8 + arg))
        } else {
            KfuncFlags(0)
        }
    }

    /// Whether argument `arg` is sized by the next one ([`KfuncFlags::sized`]).
    pub fn is_sized(self, arg: usize) -> bool {
        arg < 4 && self.0 & (1 << (8 + arg)) != 0
    }

    /// The flags as bits: the kernel's `KF_*` bits in the low byte, the sized arguments
    /// ([`KfuncFlags::sized`]) above.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: KfuncFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for KfuncFlags {
    type Output = KfuncFlags;

    fn bitor(self, rhs: KfuncFlags) -> KfuncFlags {
        KfuncFlags(self.0 | rhs.0)
    }
}

/// A registered kfunc.
#[derive(Debug, Clone)]
pub struct Kfunc {
    /// Its id for [`Registry::get`] / [`Registry::call`] ([`KFUNC_ID_BASE`] + index).
    pub id: u32,
    /// Its flags.
    pub flags: KfuncFlags,
    /// Its name and implementation.
    pub entry: Entry,
}

/// Registering a kfunc failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KfuncRegisterError {
    /// The name is empty, longer than [`MAX_KFUNC_NAME`] or not a C identifier.
    #[error("kfunc name {name:?} is not a C identifier of at most {MAX_KFUNC_NAME} bytes")]
    BadName {
        /// The refused name (at most 64 characters of it).
        name: String,
    },
    /// [`MAX_KFUNCS`] are registered already.
    #[error("more than {MAX_KFUNCS} kfuncs")]
    TooMany,
    /// Both [`KfuncFlags::ACQUIRE`] and [`KfuncFlags::RELEASE`] (the kernel refuses such a
    /// kfunc set).
    #[error("kfunc {name} cannot both acquire and release")]
    AcquireAndRelease {
        /// The kfunc.
        name: String,
    },
}

/// The kfuncs of a [`Registry`].
#[derive(Debug, Clone, Default)]
pub(crate) struct KfuncTable {
    list: Vec<Kfunc>,
    by_name: HashMap<Cow<'static, str>, usize>,
}

impl KfuncTable {
    /// The kfunc with helper id `id`.
    pub(crate) fn by_id(&self, id: u32) -> Option<&Kfunc> {
        self.list.get(id.checked_sub(KFUNC_ID_BASE)? as usize)
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_KFUNC_NAME
}

impl Registry {
    /// Registers (or replaces) the kfunc `name`: programs that declare
    /// `extern ... name(...) __ksym;` call it. Returns its id ([`Registry::get`]).
    pub fn register_kfunc(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        flags: KfuncFlags,
        kfunc: impl Helper + 'static,
    ) -> Result<u32, KfuncRegisterError> {
        self.insert_kfunc(name.into(), flags, Callable::Dyn(Arc::new(kfunc)))
    }

    /// [`Registry::register_kfunc`] with a plain function (no virtual call).
    pub fn register_kfunc_fn(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        flags: KfuncFlags,
        f: HelperFn,
    ) -> Result<u32, KfuncRegisterError> {
        self.insert_kfunc(name.into(), flags, Callable::Fn(f))
    }

    fn insert_kfunc(
        &mut self,
        name: Cow<'static, str>,
        flags: KfuncFlags,
        helper: Callable,
    ) -> Result<u32, KfuncRegisterError> {
        if !is_identifier(&name) {
            return Err(KfuncRegisterError::BadName {
                name: name.chars().take(64).collect(),
            });
        }
        if flags.contains(KfuncFlags::ACQUIRE | KfuncFlags::RELEASE) {
            return Err(KfuncRegisterError::AcquireAndRelease {
                name: name.into_owned(),
            });
        }
        let t = &mut self.kfuncs;
        let index = match t.by_name.get(&name) {
            Some(&i) => i,
            None if t.list.len() >= MAX_KFUNCS => return Err(KfuncRegisterError::TooMany),
            None => t.list.len(),
        };
        let kfunc = Kfunc {
            id: KFUNC_ID_BASE + index as u32,
            flags,
            entry: Entry {
                name: name.clone(),
                helper,
                inline: None,
            },
        };
        if index == t.list.len() {
            t.list.push(kfunc);
            t.by_name.insert(name, index);
        } else {
            t.list[index] = kfunc;
        }
        Ok(KFUNC_ID_BASE + index as u32)
    }

    /// The kfunc registered as `name`.
    pub fn kfunc(&self, name: &str) -> Option<&Kfunc> {
        let i = *self.kfuncs.by_name.get(name)?;
        self.kfuncs.list.get(i)
    }

    /// Every registered kfunc, in registration order.
    pub fn kfuncs(&self) -> impl Iterator<Item = &Kfunc> + '_ {
        self.kfuncs.list.iter()
    }
}

/// `bpf_rcu_read_lock` / `bpf_rcu_read_unlock`: nothing to do at run time (bpfvm's maps
/// need no RCU); the kernel's verifier checks the sections they open and close.
fn rcu_read_nop(
    _: &mut crate::HelperContext,
    _: &[u64; 5],
) -> Result<u64, Box<crate::HelperError>> {
    Ok(0)
}

/// The built-in kfuncs, registered by [`Registry::with_builtins`].
pub(crate) fn register_builtins(r: &mut Registry) {
    for name in ["bpf_rcu_read_lock", "bpf_rcu_read_unlock"] {
        r.register_kfunc_fn(name, KfuncFlags::NONE, rcu_read_nop)
            .expect("valid built-in kfunc");
    }
    crate::dynptr::register_kfuncs(r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HelperContext, HelperError};

    #[test]
    fn kfuncs_register_by_name_and_call_by_id() {
        fn twice(_: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
            Ok(a[0] * 2)
        }
        let mut r = Registry::with_builtins();
        let a = r
            .register_kfunc_fn("twice", KfuncFlags::NONE, twice)
            .unwrap();
        let b = r
            .register_kfunc(
                "get",
                KfuncFlags::ACQUIRE | KfuncFlags::RET_NULL,
                |_: &mut HelperContext, _: [u64; 5]| Ok(7),
            )
            .unwrap();
        let builtins = 6; // bpf_rcu_read_lock, bpf_rcu_read_unlock, 4 dynptr kfuncs
        assert_eq!(
            (a, b),
            (KFUNC_ID_BASE + builtins, KFUNC_ID_BASE + builtins + 1)
        );
        let mut ctx = HelperContext::new(0, 1);
        assert_eq!(r.call(a, &mut ctx, [21, 0, 0, 0, 0]), Ok(42));
        assert_eq!(r.call(b, &mut ctx, [0; 5]), Ok(7));
        assert_eq!(
            r.call(KFUNC_ID_BASE + builtins + 2, &mut ctx, [0; 5]),
            Err(HelperError::Unknown {
                id: KFUNC_ID_BASE + builtins + 2
            })
        );
        assert!(r.kfunc("get").unwrap().flags.contains(KfuncFlags::RET_NULL));
        assert!(r.kfunc("nope").is_none());
        // Kfuncs are not helpers.
        assert!(r.ids().all(|id| id < KFUNC_ID_BASE));
        // Registering a name again replaces it under the same id.
        let again = r
            .register_kfunc("twice", KfuncFlags::RELEASE, |_: &mut HelperContext, _| {
                Ok(0)
            })
            .unwrap();
        assert_eq!(again, a);
        assert_eq!(r.kfuncs().count(), builtins as usize + 2);
        assert!(r.kfunc("bpf_rcu_read_lock").is_some());
        assert_eq!(r.call(a, &mut ctx, [21, 0, 0, 0, 0]), Ok(0));
    }

    #[test]
    fn bad_registrations_are_refused() {
        let mut r = Registry::new();
        let f = |_: &mut HelperContext, _: [u64; 5]| Ok(0);
        for bad in ["", "1abc", "a-b", &"x".repeat(MAX_KFUNC_NAME + 1)] {
            assert!(matches!(
                r.register_kfunc(bad.to_string(), KfuncFlags::NONE, f),
                Err(KfuncRegisterError::BadName { .. })
            ));
        }
        assert!(matches!(
            r.register_kfunc("k", KfuncFlags::ACQUIRE | KfuncFlags::RELEASE, f),
            Err(KfuncRegisterError::AcquireAndRelease { .. })
        ));
        assert_eq!(r.kfuncs().count(), 0);
    }
}
