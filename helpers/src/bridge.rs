//! Bridge from rbpf's bare `fn(u64, u64, u64, u64, u64) -> u64` helpers to typed helpers.
//!
//! A [`BridgeGuard`] installs the current run's [`HelperContext`] and [`Registry`] in a
//! thread-local slot for the duration of one run; the bare trampolines returned by
//! [`trampoline`] look them up there. A helper error is stored in the context (the bare
//! signature cannot return it) and the trampoline returns 0; the engine reports the error after
//! the run. There is no `static mut`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr;

use crate::context::HelperContext;
use crate::registry::Registry;

/// rbpf's helper signature.
pub type BareHelper = fn(u64, u64, u64, u64, u64) -> u64;

/// Highest helper id that has a bare trampoline.
pub const MAX_BRIDGED_ID: u32 = 255;

thread_local! {
    static CURRENT: Cell<(*mut HelperContext, *const Registry)> =
        const { Cell::new((ptr::null_mut(), ptr::null())) };
}

/// Keeps a run's context installed for the bare trampolines until dropped. Not `Send`: it
/// belongs to the thread whose slot it filled.
#[derive(Debug)]
pub struct BridgeGuard<'a> {
    installed: (*mut HelperContext, *const Registry),
    previous: (*mut HelperContext, *const Registry),
    _borrow: PhantomData<(&'a mut HelperContext, &'a Registry)>,
}

impl<'a> BridgeGuard<'a> {
    /// Installs `ctx` and `registry` for this thread until the guard is dropped. The guard
    /// borrows both, so nothing else can use the context while trampolines may run.
    pub fn install(ctx: &'a mut HelperContext, registry: &'a Registry) -> BridgeGuard<'a> {
        let installed = (ctx as *mut HelperContext, registry as *const Registry);
        let previous = CURRENT.with(|c| c.replace(installed));
        BridgeGuard {
            installed,
            previous,
            _borrow: PhantomData,
        }
    }
}

impl Drop for BridgeGuard<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| {
            // Restore the previous context only when guards are dropped in reverse order;
            // otherwise clear the slot rather than bring back a context whose borrow may
            // have ended.
            let now = c.get();
            if std::ptr::eq(now.0, self.installed.0) && std::ptr::eq(now.1, self.installed.1) {
                c.set(self.previous);
            } else {
                c.set((ptr::null_mut(), ptr::null()));
            }
        });
    }
}

fn dispatch(id: u32, args: [u64; 5]) -> u64 {
    // Take the context out of the slot while the helper runs, so a nested trampoline call
    // (from inside a helper) finds nothing instead of a second `&mut` to the same context.
    let (ctx, registry) = CURRENT.with(|c| c.replace((ptr::null_mut(), ptr::null())));
    if ctx.is_null() || registry.is_null() {
        // Called outside a run (or re-entered): nothing to report to.
        return 0;
    }
    // SAFETY: a live `BridgeGuard` on this thread installed these pointers from an
    // exclusive and a shared borrow it still holds (the guard outlives every trampoline call
    // of its run, and its drop restores the slot only after them); the slot is empty while
    // this reference exists, so it is the only one.
    let (ctx_ref, registry_ref) = unsafe { (&mut *ctx, &*registry) };
    let r = match registry_ref.call(id, ctx_ref, args) {
        Ok(v) => v,
        Err(e) => {
            ctx_ref.set_error(e);
            0
        }
    };
    CURRENT.with(|c| c.set((ctx, registry)));
    r
}

macro_rules! trampolines {
    ($($id:literal)*) => {
        const TABLE: [BareHelper; (MAX_BRIDGED_ID + 1) as usize] = [$(tramp::<$id>),*];
    };
}

fn tramp<const ID: u32>(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    dispatch(ID, [a, b, c, d, e])
}

trampolines!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111 112 113 114 115 116 117 118 119 120 121 122 123 124 125 126 127 128 129 130 131 132 133 134 135 136 137 138 139 140 141 142 143 144 145 146 147 148 149 150 151 152 153 154 155 156 157 158 159 160 161 162 163 164 165 166 167 168 169 170 171 172 173 174 175 176 177 178 179 180 181 182 183 184 185 186 187 188 189 190 191 192 193 194 195 196 197 198 199 200 201 202 203 204 205 206 207 208 209 210 211 212 213 214 215 216 217 218 219 220 221 222 223 224 225 226 227 228 229 230 231 232 233 234 235 236 237 238 239 240 241 242 243 244 245 246 247 248 249 250 251 252 253 254 255);

/// The bare function rbpf should register for helper `id`, or `None` above
/// [`MAX_BRIDGED_ID`].
pub fn trampoline(id: u32) -> Option<BareHelper> {
    TABLE.get(id as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampolines_reach_the_installed_context() {
        let registry = Registry::with_builtins();
        let mut ctx = HelperContext::new(2, 4);
        let f = trampoline(8).unwrap();
        assert_eq!(f(0, 0, 0, 0, 0), 0); // nothing installed
        {
            let _g = BridgeGuard::install(&mut ctx, &registry);
            assert_eq!(f(0, 0, 0, 0, 0), 2);
            // A bad map pointer is recorded, not a crash.
            assert_eq!(trampoline(1).unwrap()(7, 0, 0, 0, 0), 0);
        }
        assert!(ctx.take_error().is_some());
        assert!(trampoline(256).is_none());
    }

    #[test]
    fn a_nested_trampoline_call_finds_no_context() {
        let mut registry = Registry::with_builtins();
        registry
            .register(
                crate::HelperId(200),
                "nested",
                |_: &mut HelperContext, _: [u64; 5]| {
                    // Re-entering the bridge must not hand out a second `&mut` to the context.
                    Ok(1000 + trampoline(8).unwrap()(0, 0, 0, 0, 0))
                },
            )
            .unwrap();
        let mut ctx = HelperContext::new(3, 4);
        let _g = BridgeGuard::install(&mut ctx, &registry);
        assert_eq!(trampoline(200).unwrap()(0, 0, 0, 0, 0), 1000);
        // The context is back for the next call.
        assert_eq!(trampoline(8).unwrap()(0, 0, 0, 0, 0), 3);
    }
}
