//! The helper table: helpers indexed by id, O(1) dispatch.

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

/// A registered helper and its name (used in error messages).
#[derive(Clone)]
pub struct Entry {
    /// The helper's name, e.g. `"bpf_map_lookup_elem"`.
    pub name: Cow<'static, str>,
    /// The implementation.
    pub helper: Arc<dyn Helper>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).finish()
    }
}

/// Helpers by id. Cloning is cheap for the entries (they are shared).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    table: Vec<Option<Entry>>,
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
        if id.0 > MAX_HELPER_ID {
            return Err(RegisterError { id: id.0 });
        }
        let i = id.0 as usize;
        if self.table.len() <= i {
            self.table.resize(i + 1, None);
        }
        self.table[i] = Some(Entry {
            name: name.into(),
            helper: Arc::new(helper),
        });
        Ok(())
    }

    /// The helper with id `id`, if registered.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&Entry> {
        self.table.get(id as usize)?.as_ref()
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

    /// Ids of all registered helpers, ascending.
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
}
