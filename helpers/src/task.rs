//! The simulated task of each CPU and the helpers that read it: 14
//! `bpf_get_current_pid_tgid`, 15 `bpf_get_current_uid_gid`, 16 `bpf_get_current_comm`, 35
//! `bpf_get_current_task`.
//!
//! Under `BPF_PROG_TEST_RUN` the kernel's "current task" is the process that ran the test;
//! in bpfvm each simulated CPU has a [`Task`] the test sets (`bpfvm::Vm::set_task`), with a
//! deterministic default: CPU `c` runs pid = tgid = `1000 + c`, uid = gid = 0, comm
//! `bpfvm/<c>`.
//!
//! ```
//! use bpfvm_helpers::{HelperContext, Registry, Task};
//!
//! let registry = Registry::with_builtins();
//! let mut ctx = HelperContext::new(2, 4);
//! assert_eq!(registry.call(14, &mut ctx, [0; 5]).unwrap(), 1002 << 32 | 1002);
//! ctx.set_task(Task { pid: 7, tgid: 5, uid: 1000, gid: 100, ..Task::for_cpu(2) });
//! assert_eq!(registry.call(14, &mut ctx, [0; 5]).unwrap(), 5 << 32 | 7);
//! assert_eq!(registry.call(15, &mut ctx, [0; 5]).unwrap(), 100 << 32 | 1000);
//! ```

use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::probe::MemoryImage;
use crate::registry::{HelperFn, Registry};

/// `TASK_COMM_LEN`: bytes of a task's name, the NUL included.
pub const TASK_COMM_LEN: usize = 16;

/// A simulated task: what the task helpers report for the CPU it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Thread id (`current->pid`).
    pub pid: u32,
    /// Process id (`current->tgid`).
    pub tgid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// The task's name; only its first 15 bytes count, as the kernel keeps them.
    pub comm: String,
    /// What `bpf_get_current_task` returns: an opaque kernel address (tests may put kernel
    /// memory there for `bpf_probe_read_kernel`). Default `0xffff_8881_0000_0000 + pid * 16 KiB`.
    pub handle: u64,
    /// The task's user memory, what `bpf_probe_read_user` (112, 114) can read.
    pub user_memory: MemoryImage,
    /// The task's active pid namespace, what `bpf_get_ns_current_pid_tgid` (120) checks
    /// and reports ([`crate::trace_task`]).
    pub pid_ns: crate::trace_task::PidNamespace,
}

impl Task {
    /// The default task of CPU `cpu`: pid = tgid = `1000 + cpu`, uid = gid = 0, comm
    /// `bpfvm/<cpu>`, no user memory.
    pub fn for_cpu(cpu: u32) -> Task {
        let pid = 1000 + cpu;
        Task {
            pid,
            tgid: pid,
            uid: 0,
            gid: 0,
            comm: format!("bpfvm/{cpu}"),
            handle: Task::default_handle(pid),
            user_memory: MemoryImage::new(),
            pid_ns: crate::trace_task::PidNamespace::init(pid, pid),
        }
    }

    /// The default [`Task::handle`] of a task with `pid`.
    pub fn default_handle(pid: u32) -> u64 {
        0xffff_8881_0000_0000 + u64::from(pid) * 0x4000
    }

    /// The name as the kernel keeps it: at most 15 bytes, NUL-padded to 16.
    pub fn comm_bytes(&self) -> [u8; TASK_COMM_LEN] {
        let mut out = [0u8; TASK_COMM_LEN];
        let b = self.comm.as_bytes();
        let n = b.len().min(TASK_COMM_LEN - 1);
        out[..n].copy_from_slice(&b[..n]);
        out
    }
}

/// A CPU's task environment: its current task, the kernel memory the probe helpers can read
/// and the attachment's cookie.
#[derive(Debug, Clone)]
pub(crate) struct TaskEnv {
    pub(crate) task: Task,
    pub(crate) kernel_memory: MemoryImage,
    pub(crate) attach_cookie: u64,
    /// What `bpf_get_func_ip` (173) returns.
    pub(crate) func_ip: u64,
    /// The target BTF `bpf_snprintf_btf` (149) shows types of.
    pub(crate) target_btf: Option<std::sync::Arc<dyn crate::btf_show::ShowBtf>>,
}

impl TaskEnv {
    pub(crate) fn for_cpu(cpu: u32) -> TaskEnv {
        TaskEnv {
            task: Task::for_cpu(cpu),
            kernel_memory: MemoryImage::new(),
            attach_cookie: 0,
            func_ip: 0,
            target_btf: None,
        }
    }
}

impl HelperContext {
    /// Sets the CPU's current task.
    pub fn set_task(&mut self, task: Task) {
        self.task.task = task;
    }

    /// The CPU's current task.
    pub fn task(&self) -> &Task {
        &self.task.task
    }

    /// Sets the kernel memory `bpf_probe_read_kernel` (113, 115) can read besides the
    /// program's own memory.
    pub fn set_kernel_memory(&mut self, memory: MemoryImage) {
        self.task.kernel_memory = memory;
    }

    /// The kernel memory the probe helpers can read.
    pub fn kernel_memory(&self) -> &MemoryImage {
        &self.task.kernel_memory
    }

    /// Sets what `bpf_get_attach_cookie` (174) returns.
    pub fn set_attach_cookie(&mut self, cookie: u64) {
        self.task.attach_cookie = cookie;
    }

    /// What `bpf_get_attach_cookie` returns (0 unless set).
    pub fn attach_cookie(&self) -> u64 {
        self.task.attach_cookie
    }
}

/// Registers helpers 14, 15, 16 and 35.
pub fn register(r: &mut Registry) {
    let all: [(HelperId, &'static str, HelperFn); 4] = [
        (
            HelperId::GET_CURRENT_PID_TGID,
            "bpf_get_current_pid_tgid",
            get_current_pid_tgid,
        ),
        (
            HelperId::GET_CURRENT_UID_GID,
            "bpf_get_current_uid_gid",
            get_current_uid_gid,
        ),
        (
            HelperId::GET_CURRENT_COMM,
            "bpf_get_current_comm",
            get_current_comm,
        ),
        (
            HelperId::GET_CURRENT_TASK,
            "bpf_get_current_task",
            get_current_task,
        ),
    ];
    for (id, name, f) in all {
        r.register_builtin(id, name, f, None)
            .expect("built-in ids are small");
    }
}

/// `bpf_get_current_pid_tgid()`: `tgid << 32 | pid`.
pub fn get_current_pid_tgid(
    ctx: &mut HelperContext,
    _: &[u64; 5],
) -> Result<u64, Box<HelperError>> {
    let t = ctx.task();
    Ok(u64::from(t.tgid) << 32 | u64::from(t.pid))
}

/// `bpf_get_current_uid_gid()`: `gid << 32 | uid`.
pub fn get_current_uid_gid(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    let t = ctx.task();
    Ok(u64::from(t.gid) << 32 | u64::from(t.uid))
}

/// `bpf_get_current_comm(buf, size)`: the task's name into `size` bytes at `buf`, cut to
/// `size - 1` bytes, NUL-terminated and NUL-padded (`strscpy_pad`). Returns 0.
pub fn get_current_comm(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    const NAME: &str = "bpf_get_current_comm";
    let size = a[1];
    if size == 0 {
        return Ok(0);
    }
    if size > 1 << 20 {
        return Err(Box::new(HelperError::Failed {
            helper: NAME.to_string(),
            message: format!("buffer size {size} is larger than any memory a program has"),
        }));
    }
    let comm = ctx.task().comm_bytes();
    let mut out = vec![0u8; size as usize];
    let n = (size as usize - 1).min(TASK_COMM_LEN - 1);
    out[..n].copy_from_slice(&comm[..n]);
    ctx.memory
        .write_bytes(a[0], &out)
        .map_err(|fault| HelperError::Memory {
            helper: NAME.to_string(),
            fault: Box::new(fault),
        })?;
    Ok(0)
}

/// `bpf_get_current_task()`: the task's opaque handle ([`Task::handle`]).
pub fn get_current_task(ctx: &mut HelperContext, _: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    Ok(ctx.task().handle)
}
