//! The helper table: helpers indexed by id, O(1) dispatch.
//!
//! [`Registry::call`] looks a helper up by id on every call (the rbpf bridge and `callx` use
//! it). Engines that pre-decode programs resolve each `call imm` once instead: they keep the
//! entry's [`Callable`] (a plain `fn` for built-ins) in a per-program table, and may replace
//! a built-in marked with an [`Inline`] form by an equivalent instruction.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;

/// Largest helper id a registry accepts.
pub const MAX_HELPER_ID: u32 = 4095;

/// A helper function: receives the run's context and `r1..=r5`, returns `r0`.
///
/// Closures `Fn(&mut HelperContext, [u64; 5]) -> Result<u64, HelperError>` implement it, so
/// helpers can carry their own state (behind atomics or a lock: they run on several CPUs).
pub trait Helper: Send + Sync {
    /// Calls the helper. An `Err` ends the run with that error.
    fn call(&self, ctx: &mut HelperContext, args: [u64; 5]) -> Result<u64, HelperError>;
}

impl<F> Helper for F
where
    F: Fn(&mut HelperContext, [u64; 5]) -> Result<u64, HelperError> + Send + Sync,
{
    fn call(&self, ctx: &mut HelperContext, args: [u64; 5]) -> Result<u64, HelperError> {
        self(ctx, args)
    }
}

/// A helper as a plain function, in the fast form engines call directly: the arguments
/// `r1..=r5` by reference (the interpreter passes its register file, no copy) and the rare
/// error boxed (the result fits in two registers). The built-ins have this form, and
/// [`Registry::register_fn`] takes it.
pub type HelperFn = fn(&mut HelperContext, &[u64; 5]) -> Result<u64, Box<HelperError>>;

/// How a registered helper is called: a plain function pointer (one indirect call) or a
/// trait object (a virtual call; closures that carry state).
///
/// Engines resolve a program's `call imm` to a `Callable` once, when the program is loaded,
/// so a run does no id lookup.
#[derive(Clone)]
pub enum Callable {
    /// A plain function (the built-ins, [`Registry::register_fn`]).
    Fn(HelperFn),
    /// Any [`Helper`] (closures with state, [`Registry::register`]).
    Dyn(Arc<dyn Helper>),
}

impl Callable {
    /// Calls the helper.
    pub fn call(&self, ctx: &mut HelperContext, args: [u64; 5]) -> Result<u64, HelperError> {
        match self {
            Callable::Fn(f) => f(ctx, &args).map_err(|e| *e),
            Callable::Dyn(h) => h.call(ctx, args),
        }
    }

    /// Calls the helper with the arguments by reference and the error boxed: the
    /// [`HelperFn`] form, what the interpreter uses.
    #[inline(always)]
    pub fn call_fast(
        &self,
        ctx: &mut HelperContext,
        args: &[u64; 5],
    ) -> Result<u64, Box<HelperError>> {
        match self {
            Callable::Fn(f) => f(ctx, args),
            Callable::Dyn(h) => h.call(ctx, *args).map_err(Box::new),
        }
    }
}

impl fmt::Debug for Callable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Callable::Fn(_) => "Callable::Fn",
            Callable::Dyn(_) => "Callable::Dyn",
        })
    }
}

/// A built-in helper that an engine may replace by an equivalent instruction sequence,
/// as the kernel's verifier and JIT do. Only the built-in registered by
/// [`Registry::with_builtins`] carries it: a user helper registered under the same id
/// replaces the entry and is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Inline {
    /// `bpf_get_smp_processor_id` (8): `r0` = the simulated CPU. The kernel inlines it on
    /// x86_64 as a per-CPU load (`do_misc_fixups`).
    #[doc(alias = "BPF_FUNC_get_smp_processor_id")]
    SmpProcessorId,
    /// `bpf_loop` (181): runs a callback of the program; only an engine can (see
    /// [`crate::callback`]).
    #[doc(alias = "BPF_FUNC_loop")]
    Loop,
    /// `bpf_for_each_map_elem` (164): runs a callback of the program per map element;
    /// only an engine can (see [`crate::callback`]).
    #[doc(alias = "BPF_FUNC_for_each_map_elem")]
    ForEachMapElem,
}

/// A registered helper and its name (used in error messages).
#[derive(Debug, Clone)]
pub struct Entry {
    /// The helper's name, e.g. `"bpf_map_lookup_elem"`.
    pub name: Cow<'static, str>,
    /// The implementation.
    pub helper: Callable,
    /// Set on built-ins that engines may inline; `None` for every user helper.
    pub inline: Option<Inline>,
}

/// Helpers by id. Cloning is cheap for the entries (they are shared).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    table: Vec<Option<Entry>>,
    /// Kernel functions by registration order (id [`crate::kfunc::KFUNC_ID_BASE`] + index).
    pub(crate) kfuncs: crate::kfunc::KfuncTable,
}

/// Registering a helper failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("helper id {id} is above the maximum {MAX_HELPER_ID}")]
pub struct RegisterError {
    /// The refused id.
    pub id: u32,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// A registry holding the built-in helpers of [`crate::builtin`].
    pub fn with_builtins() -> Registry {
        let mut r = Registry::new();
        crate::builtin::register_all(&mut r);
        r
    }

    /// Registers (or replaces) the helper with id `id`.
    pub fn register(
        &mut self,
        id: HelperId,
        name: impl Into<Cow<'static, str>>,
        helper: impl Helper + 'static,
    ) -> Result<(), RegisterError> {
        self.insert(id, name.into(), Callable::Dyn(Arc::new(helper)), None)
    }

    /// Registers (or replaces) the helper with id `id` as a plain function, which engines
    /// call without the virtual call of [`Registry::register`].
    pub fn register_fn(
        &mut self,
        id: HelperId,
        name: impl Into<Cow<'static, str>>,
        f: HelperFn,
    ) -> Result<(), RegisterError> {
        self.insert(id, name.into(), Callable::Fn(f), None)
    }

    /// Registers a built-in, with the inline form engines may use instead of calling it.
    pub(crate) fn register_builtin(
        &mut self,
        id: HelperId,
        name: &'static str,
        f: HelperFn,
        inline: Option<Inline>,
    ) -> Result<(), RegisterError> {
        self.insert(id, Cow::Borrowed(name), Callable::Fn(f), inline)
    }

    fn insert(
        &mut self,
        id: HelperId,
        name: Cow<'static, str>,
        helper: Callable,
        inline: Option<Inline>,
    ) -> Result<(), RegisterError> {
        if id.0 > MAX_HELPER_ID {
            return Err(RegisterError { id: id.0 });
        }
        let i = id.0 as usize;
        if self.table.len() <= i {
            self.table.resize(i + 1, None);
        }
        self.table[i] = Some(Entry {
            name,
            helper,
            inline,
        });
        Ok(())
    }

    /// The helper with id `id`, if registered.
    /// Ids from [`crate::kfunc::KFUNC_ID_BASE`] up are the registered kfuncs
    /// ([`Registry::register_kfunc`]).
    #[inline]
    pub fn get(&self, id: u32) -> Option<&Entry> {
        match self.table.get(id as usize) {
            Some(e) => e.as_ref(),
            None => self.kfuncs.by_id(id).map(|k| &k.entry),
        }
    }

    /// The inline form of helper `id`, if it is a built-in that engines may inline (a user
    /// helper registered under a built-in's id has none).
    pub fn inline(&self, id: u32) -> Option<Inline> {
        self.get(id)?.inline
    }

    /// Calls helper `id`; an unknown id is [`HelperError::Unknown`].
    #[inline]
    pub fn call(
        &self,
        id: u32,
        ctx: &mut HelperContext,
        args: [u64; 5],
    ) -> Result<u64, HelperError> {
        match self.get(id) {
            Some(e) => e.helper.call(ctx, args),
            None => Err(HelperError::Unknown { id }),
        }
    }

    /// Ids of all registered helpers, ascending (kfuncs are not helpers: see
    /// [`Registry::kfuncs`]).
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.table
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|_| i as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn closures_with_state_are_called_by_id() {
        let mut r = Registry::new();
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        r.register(
            HelperId(1000),
            "count",
            move |_: &mut HelperContext, a: [u64; 5]| Ok(c.fetch_add(a[0], Ordering::Relaxed)),
        )
        .unwrap();
        let mut ctx = HelperContext::new(0, 1);
        assert_eq!(r.call(1000, &mut ctx, [5, 0, 0, 0, 0]).unwrap(), 0);
        assert_eq!(r.call(1000, &mut ctx, [1, 0, 0, 0, 0]).unwrap(), 5);
        assert_eq!(calls.load(Ordering::Relaxed), 6);
        assert_eq!(
            r.call(999, &mut ctx, [0; 5]),
            Err(HelperError::Unknown { id: 999 })
        );
        assert!(r
            .register(
                HelperId(MAX_HELPER_ID + 1),
                "x",
                |_: &mut HelperContext, _: [u64; 5]| Ok(0)
            )
            .is_err());
    }

    #[test]
    fn only_the_builtin_smp_processor_id_is_inlinable() {
        let mut r = Registry::with_builtins();
        let inlinable: Vec<u32> = r.ids().filter(|&id| r.inline(id).is_some()).collect();
        assert_eq!(
            inlinable,
            [
                HelperId::GET_SMP_PROCESSOR_ID.0,
                HelperId::FOR_EACH_MAP_ELEM.0,
                HelperId::LOOP.0
            ]
        );
        assert_eq!(r.inline(8), Some(Inline::SmpProcessorId));
        assert!(r
            .ids()
            .all(|id| matches!(r.get(id).unwrap().helper, Callable::Fn(_))));
        // A user helper under id 8 replaces the built-in and its inline form.
        r.register(
            HelperId::GET_SMP_PROCESSOR_ID,
            "mine",
            |_: &mut HelperContext, _: [u64; 5]| Ok(77),
        )
        .unwrap();
        assert_eq!(r.inline(8), None);
        assert!(matches!(r.get(8).unwrap().helper, Callable::Dyn(_)));
        let mut ctx = HelperContext::new(3, 4);
        assert_eq!(r.call(8, &mut ctx, [0; 5]), Ok(77));
    }

    #[test]
    fn plain_functions_register_and_call() {
        fn add(_: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
            Ok(a.iter().sum())
        }
        let mut r = Registry::new();
        r.register_fn(HelperId(9), "add", add).unwrap();
        assert!(r
            .register_fn(HelperId(MAX_HELPER_ID + 1), "add", add)
            .is_err());
        let e = r.get(9).unwrap();
        assert_eq!(e.name, "add");
        assert_eq!(e.inline, None);
        let mut ctx = HelperContext::new(0, 1);
        assert_eq!(e.helper.call(&mut ctx, [1, 2, 3, 4, 5]), Ok(15));
        assert_eq!(e.helper.call_fast(&mut ctx, &[1, 2, 3, 4, 6]), Ok(16));
        assert_eq!(r.call(9, &mut ctx, [1, 1, 1, 1, 1]), Ok(5));
    }
}
