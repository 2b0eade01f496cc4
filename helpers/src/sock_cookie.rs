//! Socket cookies of BTF socket pointers: helper 46 `bpf_get_socket_cookie` as tracing
//! programs call it (`bpf_get_socket_ptr_cookie`, `u64 bpf_get_socket_cookie(struct sock *sk)`).
//!
//! The kernel gives every socket one cookie the first time it is asked for
//! (`sock_gen_cookie`): a non-zero number unique among sockets, which never changes while
//! the socket lives; a NULL `sk` gives 0. bpfvm's sockets in tracing programs are the
//! kernel addresses a test passes as arguments, so a socket is its address: the first
//! address asked for gets cookie 1, the next new one 2, and so on, per simulated network
//! ([`crate::fib::Net`], one per VM unless VMs share it), for the network's lifetime.
//! The table holds at most [`MAX_SOCKETS`] sockets; a new socket beyond that is a helper
//! error rather than unbounded growth.
//!
//! Only tracing programs have this form of the helper (other program types pass their
//! context, an `skb` or a socket operation, whose socket bpfvm does not simulate): bpfvm's
//! loader refuses the built-in for them as an unknown helper.
//!
//! ```
//! use bpfvm_helpers::sock_cookie::SocketCookies;
//!
//! let c = SocketCookies::default();
//! assert_eq!(c.cookie(0), Ok(0));
//! assert_eq!(c.cookie(0xffff_8880_1234_0000), Ok(1));
//! assert_eq!(c.cookie(0xffff_8880_5678_0000), Ok(2));
//! assert_eq!(c.cookie(0xffff_8880_1234_0000), Ok(1));
//! assert_eq!(c.get(0xffff_8880_5678_0000), Some(2));
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::registry::{Callable, Entry, Registry};

/// `BPF_FUNC_get_socket_cookie`.
pub const GET_SOCKET_COOKIE: HelperId = HelperId(46);

/// Most sockets one table gives cookies to.
pub const MAX_SOCKETS: usize = 1 << 16;

/// The sockets that have a cookie, by address, and the next cookie.
#[derive(Debug, Default)]
pub struct SocketCookies {
    inner: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    by_addr: HashMap<u64, u64>,
    last: u64,
}

/// A new socket when the table already holds [`MAX_SOCKETS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("socket {addr:#x} would be the {} socket given a cookie; bpfvm keeps at most {MAX_SOCKETS}", MAX_SOCKETS + 1)]
pub struct TooManySockets {
    /// The socket's address.
    pub addr: u64,
}

impl SocketCookies {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cookie of the socket at `addr`, given on first use; 0 for NULL.
    pub fn cookie(&self, addr: u64) -> Result<u64, TooManySockets> {
        if addr == 0 {
            return Ok(0);
        }
        let mut t = self.lock();
        if let Some(&c) = t.by_addr.get(&addr) {
            return Ok(c);
        }
        if t.by_addr.len() >= MAX_SOCKETS {
            return Err(TooManySockets { addr });
        }
        t.last += 1;
        let c = t.last;
        t.by_addr.insert(addr, c);
        Ok(c)
    }

    /// The cookie the socket at `addr` was given, if it has one.
    pub fn get(&self, addr: u64) -> Option<u64> {
        self.lock().by_addr.get(&addr).copied()
    }

    /// How many sockets have a cookie.
    pub fn len(&self) -> usize {
        self.lock().by_addr.len()
    }

    /// Whether no socket has a cookie yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Registers helper 46 (the tracing form).
pub fn register(r: &mut Registry) {
    r.register_builtin(
        GET_SOCKET_COOKIE,
        "bpf_get_socket_cookie",
        get_socket_ptr_cookie,
        None,
    )
    .expect("built-in ids are small");
}

/// Whether `entry` is bpfvm's built-in helper 46 (which runs for tracing programs only),
/// not a helper a user registered under that id.
pub fn is_builtin(entry: &Entry) -> bool {
    matches!(entry.helper, Callable::Fn(f)
        if std::ptr::fn_addr_eq(f, get_socket_ptr_cookie as crate::registry::HelperFn))
}

/// `bpf_get_socket_cookie(sk)`: the cookie of socket `sk` in the VM's network, 0 for
/// NULL.
#[inline(never)]
pub fn get_socket_ptr_cookie(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    ctx.net().socket_cookies().cookie(a[0]).map_err(|e| {
        Box::new(HelperError::Failed {
            helper: "bpf_get_socket_cookie".to_string(),
            message: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "65,536 insertions take many minutes under Miri; the table has no unsafe code"
    )]
    fn cookies_are_unique_stable_and_bounded() {
        let c = SocketCookies::default();
        assert!(c.is_empty());
        for i in 1..=MAX_SOCKETS as u64 {
            assert_eq!(c.cookie(i << 8), Ok(i));
        }
        assert_eq!(c.cookie(5 << 8), Ok(5), "stable");
        assert_eq!(c.cookie(1), Err(TooManySockets { addr: 1 }));
        assert_eq!(c.cookie(0), Ok(0), "NULL needs no entry");
        assert_eq!(c.len(), MAX_SOCKETS);
        assert!(TooManySockets { addr: 1 }.to_string().contains("65536"));
    }

    #[test]
    fn the_helper_shares_the_networks_table() {
        let r = Registry::with_builtins();
        let mut cpu0 = HelperContext::new(0, 2);
        let mut cpu1 = HelperContext::new(1, 2);
        let net = crate::fib::Net::shared();
        cpu0.set_net(net.clone());
        cpu1.set_net(net.clone());
        let sk = 0xffff_8880_0000_1000;
        assert_eq!(r.call(46, &mut cpu0, [sk, 0, 0, 0, 0]), Ok(1));
        assert_eq!(r.call(46, &mut cpu1, [sk + 8, 0, 0, 0, 0]), Ok(2));
        assert_eq!(r.call(46, &mut cpu1, [sk, 0, 0, 0, 0]), Ok(1));
        assert_eq!(r.call(46, &mut cpu0, [0; 5]), Ok(0));
        assert_eq!(net.socket_cookies().get(sk + 8), Some(2));
        assert!(is_builtin(r.get(46).expect("registered")));
        let mut user = Registry::with_builtins();
        user.register_fn(GET_SOCKET_COOKIE, "mine", |_, _| Ok(7))
            .unwrap();
        assert!(!is_builtin(user.get(46).unwrap()));
    }
}
