//! The Linux kernel as an oracle: a raw `bpf(2)` interface (Linux only) to create the same
//! maps and load the same programs in the running kernel, so tests can compare bpfvm with
//! it call by call.
//!
//! Everything here needs the `bpf()` syscall, which needs root (or CAP_BPF) on Linux.
//! [`available`] says whether it works and why not; [`oracle_or_skip`] is what tests call.
//!
//! ```
//! use bpfvm_conformance::kernel::{self, consts::MapType, KernelMap, MapDef};
//!
//! if kernel::available().is_ok() {
//!     let map = KernelMap::create(MapDef {
//!         map_type: MapType::Array,
//!         key_size: 4,
//!         value_size: 8,
//!         max_entries: 2,
//!         map_flags: 0,
//!     })
//!     .unwrap();
//!     map.update(&1u32.to_ne_bytes(), &7u64.to_ne_bytes(), 0).unwrap();
//!     assert_eq!(map.lookup(&1u32.to_ne_bytes(), 0).unwrap(), 7u64.to_ne_bytes());
//!     // Index 2 is out of range: the kernel says E2BIG.
//!     let err = map.update(&2u32.to_ne_bytes(), &[0; 8], 0).unwrap_err();
//!     assert_eq!(err, kernel::Errno::E2BIG);
//! }
//! ```

pub mod asm;
pub mod batch;
pub mod btf;
#[cfg(target_os = "linux")]
pub mod btf_cases;
pub mod consts;
#[cfg(target_os = "linux")]
pub mod diff;
pub mod errno;
#[cfg(target_os = "linux")]
pub mod events;
#[cfg(target_os = "linux")]
pub mod map;
#[cfg(target_os = "linux")]
pub mod map_in_map;
#[cfg(target_os = "linux")]
pub mod object;
#[cfg(target_os = "linux")]
pub mod pair;
#[cfg(target_os = "linux")]
pub mod prog;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
pub mod verdict;

pub use batch::{BatchLookup, BatchWrite};
pub use errno::Errno;
#[cfg(target_os = "linux")]
pub use map::{KernelMap, MapDef};
#[cfg(target_os = "linux")]
pub use object::{create_object_maps, load_object_program, ObjectMap};
#[cfg(target_os = "linux")]
pub use prog::{rewrite_map_indices, substitute_map_fds, KernelProg, TestRun, TestRunOutput};
#[cfg(target_os = "linux")]
pub use verdict::{
    kernel_verdict, kernel_verdict_traced, KernelVerdict, LoaderPrivilege, VerdictMap,
};

/// Environment variable that turns "oracle unavailable" from a skip into a failure.
pub const REQUIRE_ENV: &str = "BPFVM_REQUIRE_KERNEL";

/// Where the kernel lists its possible CPUs.
const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

/// Parses a CPU list such as `0-1` or `0,2-3` into the number of CPU ids
/// (`nr_cpu_ids`: the highest id plus one).
pub fn parse_cpu_list(list: &str) -> Result<u32, String> {
    let mut highest = None;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let last = part.rsplit('-').next().unwrap_or(part);
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, last),
        };
        let first: u32 = first
            .parse()
            .map_err(|_| format!("bad cpu list {list:?}"))?;
        let last: u32 = last.parse().map_err(|_| format!("bad cpu list {list:?}"))?;
        if first > last {
            return Err(format!("bad cpu range {part:?}"));
        }
        highest = highest.max(Some(last));
    }
    highest
        .and_then(|h| h.checked_add(1))
        .ok_or_else(|| format!("empty cpu list {list:?}"))
}

/// The kernel's possible CPU count N, read from `/sys/devices/system/cpu/possible`.
pub fn possible_cpus() -> Result<u32, String> {
    let text = std::fs::read_to_string(POSSIBLE_CPUS)
        .map_err(|e| format!("cannot read {POSSIBLE_CPUS}: {e}"))?;
    parse_cpu_list(&text)
}

/// Whether the kernel oracle can run here: Linux, root, and a probe map can be created.
/// The error is the reason it cannot.
pub fn available() -> Result<(), String> {
    #[cfg(not(target_os = "linux"))]
    {
        Err("not Linux".to_string())
    }
    #[cfg(target_os = "linux")]
    {
        let euid = sys::euid();
        if euid != 0 {
            return Err(format!("not root (euid {euid})"));
        }
        possible_cpus()?;
        KernelMap::create(MapDef {
            map_type: consts::MapType::Array,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            map_flags: 0,
        })
        .map(drop)
        .map_err(|e| format!("bpf(BPF_MAP_CREATE) failed: {e}"))
    }
}

/// What a kernel-oracle test calls first: `true` when the oracle is available. Otherwise
/// it prints `SKIP kernel oracle: <reason>` and returns `false`, or panics with the reason
/// when `BPFVM_REQUIRE_KERNEL=1` is set (as in CI).
pub fn oracle_or_skip() -> bool {
    let require = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
    match skip_decision(available(), require) {
        Ok(run) => run,
        Err(msg) => panic!("{msg}"),
    }
}

/// The decision behind [`oracle_or_skip`]: run (`Ok(true)`), skip after printing the
/// reason (`Ok(false)`), or fail with a message when the oracle is required.
fn skip_decision(available: Result<(), String>, require: bool) -> Result<bool, String> {
    match available {
        Ok(()) => Ok(true),
        Err(reason) if require => Err(format!(
            "kernel oracle required ({REQUIRE_ENV}=1) but unavailable: {reason}"
        )),
        Err(reason) => {
            println!("SKIP kernel oracle: {reason}");
            Ok(false)
        }
    }
}

/// Pins the calling thread to `cpu`, so host-side map calls use that CPU's LRU free list
/// (spec §7.6) and program test runs execute there.
#[cfg(target_os = "linux")]
pub fn pin_current_thread(cpu: u32) -> Result<(), Errno> {
    sys::pin_current_thread(cpu)
}

/// The CPU the calling thread is running on.
#[cfg(target_os = "linux")]
pub fn current_cpu() -> Option<u32> {
    sys::current_cpu()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_oracle_skips_unless_required() {
        assert_eq!(skip_decision(Ok(()), true), Ok(true));
        assert_eq!(skip_decision(Err("not root".into()), false), Ok(false));
        let err = skip_decision(Err("not root".into()), true).unwrap_err();
        assert!(err.contains("BPFVM_REQUIRE_KERNEL=1") && err.contains("not root"));
    }

    #[test]
    fn cpu_lists_parse_to_nr_cpu_ids() {
        assert_eq!(parse_cpu_list("0-1\n"), Ok(2));
        assert_eq!(parse_cpu_list("0"), Ok(1));
        assert_eq!(parse_cpu_list("0,2-3"), Ok(4));
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }
}
