//! Tracing helpers of the current task and the attach point: 45 `bpf_probe_read_str` (the
//! legacy form of 115, see [`crate::probe`]), 120 `bpf_get_ns_current_pid_tgid`, 158
//! `bpf_get_current_task_btf` and 173 `bpf_get_func_ip`.
//!
//! The current task is simulated ([`Task`]): `bpf_get_current_task_btf` returns its
//! [`Task::handle`], the same address `bpf_get_current_task` returns, as the kernel does.
//! A program reads through it with plain loads (the verifier types it as a
//! `PTR_TO_BTF_ID`); bpfvm runs those as the kernel's probe loads: bytes of the VM's kernel
//! memory image when a test provides them there, else 0 — never host memory.
//!
//! ```
//! use bpfvm_helpers::{trace_task::PidNamespace, Task};
//!
//! let t = Task { pid_ns: PidNamespace { dev: 4, ino: 0xf000_0001, pid: 7, tgid: 5 }, ..Task::for_cpu(0) };
//! assert_eq!(t.pid_ns.pid, 7);
//! assert_eq!(PidNamespace::init(1000, 1000).ino, PidNamespace::INIT_INO);
//! ```

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::registry::{HelperFn, Registry};
#[cfg(doc)]
use crate::Task;

const EINVAL: i64 = 22;

/// A task's active pid namespace as `bpf_get_ns_current_pid_tgid` sees it: the device and
/// inode of its nsfs file (`stat /proc/self/ns/pid`), and the task's ids inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidNamespace {
    /// `st_dev` of the namespace file (a `dev_t`, 32 bits in the kernel).
    pub dev: u64,
    /// `st_ino` of the namespace file.
    pub ino: u64,
    /// The task's pid inside the namespace.
    pub pid: u32,
    /// The task's tgid inside the namespace.
    pub tgid: u32,
}

impl PidNamespace {
    /// `PROC_PID_INIT_INO`: the initial pid namespace's inode.
    pub const INIT_INO: u64 = 0xEFFF_FFFC;
    /// The nsfs device bpfvm's default tasks report (the kernel's is an anonymous device,
    /// 4 on a typical machine; tests give theirs).
    pub const DEFAULT_DEV: u64 = 4;

    /// The initial namespace, where ids are the task's own.
    pub fn init(pid: u32, tgid: u32) -> PidNamespace {
        PidNamespace {
            dev: Self::DEFAULT_DEV,
            ino: Self::INIT_INO,
            pid,
            tgid,
        }
    }
}

impl HelperContext {
    /// Sets what `bpf_get_func_ip` (173) returns: the address of the traced function.
    pub fn set_func_ip(&mut self, ip: u64) {
        self.task.func_ip = ip;
    }

    /// What `bpf_get_func_ip` returns (0 unless set).
    pub fn func_ip(&self) -> u64 {
        self.task.func_ip
    }
}

/// Registers helpers 45, 120, 158 and 173.
pub fn register(r: &mut Registry) {
    let all: [(HelperId, &'static str, HelperFn); 4] = [
        (
            HelperId(45),
            "bpf_probe_read_str",
            crate::probe::probe_read_compat_str,
        ),
        (
            HelperId(120),
            "bpf_get_ns_current_pid_tgid",
            get_ns_current_pid_tgid,
        ),
        (
            HelperId(158),
            "bpf_get_current_task_btf",
            get_current_task_btf,
        ),
        (HelperId(173), "bpf_get_func_ip", get_func_ip),
    ];
    for (id, name, f) in all {
        r.register_builtin(id, name, f, None)
            .expect("built-in ids are small");
    }
}

/// `bpf_get_ns_current_pid_tgid(dev, ino, nsdata, size)`: the task's pid and tgid in its
/// pid namespace into `struct bpf_pidns_info { u32 pid; u32 tgid; }` when `dev`/`ino`
/// name that namespace; else `-EINVAL` with `nsdata` zeroed (as for a `size` other than
/// 8 or a `dev` wider than a `dev_t`).
pub fn get_ns_current_pid_tgid(
    ctx: &mut HelperContext,
    a: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_get_ns_current_pid_tgid";
    let (dev, ino, nsdata, size) = (a[0], a[1], a[2], a[3]);
    if size > 1 << 20 {
        return Err(Box::new(HelperError::Failed {
            helper: NAME.to_string(),
            message: format!("buffer size {size} is larger than any memory a program has"),
        }));
    }
    let ns = ctx.task().pid_ns;
    let ok = size == 8 && u64::from(dev as u32) == dev && ns.dev == dev && ns.ino == ino;
    let out: Vec<u8> = if ok {
        let mut b = ns.pid.to_ne_bytes().to_vec();
        b.extend_from_slice(&ns.tgid.to_ne_bytes());
        b
    } else {
        vec![0; size as usize]
    };
    ctx.memory
        .write_bytes(nsdata, &out)
        .map_err(|fault| HelperError::Memory {
            helper: NAME.to_string(),
            fault: Box::new(fault),
        })?;
    Ok(if ok { 0 } else { (-EINVAL) as u64 })
}

/// `bpf_get_current_task_btf()`: the current task, as `bpf_get_current_task` (35).
pub fn get_current_task_btf(
    ctx: &mut HelperContext,
    _: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    Ok(ctx.task().handle)
}

/// `bpf_get_func_ip(ctx)`: the traced function's address ([`HelperContext::set_func_ip`]).
pub fn get_func_ip(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(ctx.func_ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Task;

    #[test]
    fn init_namespace_reports_the_task_ids() {
        let t = Task::for_cpu(3);
        assert_eq!(t.pid_ns, PidNamespace::init(1003, 1003));
    }
}
