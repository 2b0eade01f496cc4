//! BPF helper functions and the per-run helper context for bpfvm.
//!
//! Helpers are typed: a [`Helper`] receives the run's [`HelperContext`] (simulated CPU, the
//! program's maps, checked guest memory, virtual clock, seeded PRNG, trace output) and the
//! arguments `r1..=r5`. A [`Registry`] indexes them by id; [`bridge`] adapts them to rbpf's
//! bare function pointers.
//!
//! ```
//! use bpfvm_helpers::{HelperContext, HelperId, Registry};
//!
//! let mut registry = Registry::with_builtins();
//! registry
//!     .register(HelperId(1000), "double", |_: &mut HelperContext, a: [u64; 5]| Ok(a[0] * 2))
//!     .unwrap();
//! let mut ctx = HelperContext::new(3, 4); // simulated CPU 3 of 4
//! assert_eq!(registry.call(1000, &mut ctx, [21, 0, 0, 0, 0]).unwrap(), 42);
//! assert_eq!(registry.call(HelperId::GET_SMP_PROCESSOR_ID.0, &mut ctx, [0; 5]).unwrap(), 3);
//! assert!(registry.call(9999, &mut ctx, [0; 5]).is_err());
//! ```
#![deny(unsafe_code)]

pub mod bridge;
pub mod btf_show;
pub mod builtin;
pub mod callback;
pub mod cgroup;
pub mod context;
pub mod csum;
pub mod dynptr;
pub mod error;
pub mod events;
pub mod fault;
pub mod fib;
pub mod frags;
pub mod held;
pub mod id;
pub mod inner_maps;
pub mod kfunc;
pub mod lock;
pub mod maps;
pub mod memory;
pub mod net;
pub mod packet;
pub mod printk;
pub mod probe;
pub mod queue;
pub mod redirect;
pub mod registry;
pub mod ringbuf;
pub mod skb;
pub mod sock_cookie;
pub mod stack;
pub mod task;
pub mod trace_task;
pub mod tracing;
pub mod xdp;

pub use context::{HelperContext, MapList, PacketCtx};
pub use error::HelperError;
pub use fault::{Access, FaultKind, FaultTarget, MapName, MemFault};
pub use id::HelperId;
pub use kfunc::{Kfunc, KfuncFlags, KfuncRegisterError, KFUNC_ID_BASE};
pub use maps::{ArenaInfo, ProgramMap};
pub use memory::{
    AccessHook, AddressMode, AtomicOp, LockWord, Memory, PacketWindows, Region, WatchedAccess,
};
pub use packet::{Packet, PacketProgram, TunnelInfo};
pub use probe::MemoryImage;
pub use redirect::{Nexthop, RedirectTarget};
pub use registry::{Callable, Helper, HelperFn, Inline, Registry};
pub use task::Task;
