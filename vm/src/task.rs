//! What tracing helpers see of the kernel: each simulated CPU's current [`Task`] (helpers 14,
//! 15, 16, 35 and the user memory of 112/114), the kernel memory the probe helpers read
//! (113/115) and the program's attach cookie (174, [`crate::Program::with_attach_cookie`]).
//!
//! ```
//! use bpfvm::task::{MemoryImage, Task};
//! use bpfvm::{CpuId, Vm};
//!
//! let vm = Vm::builder().cpus(2).build();
//! assert_eq!(vm.task(CpuId(1))?.pid, 1001); // the deterministic default
//! vm.set_task(CpuId(1), Task { pid: 42, tgid: 40, comm: "nginx".into(), ..Task::for_cpu(1) })?;
//! assert_eq!(vm.task(CpuId(1))?.comm, "nginx");
//! vm.set_kernel_memory(MemoryImage::new().with(0xffff_8880_0000_0000, vec![1, 2, 3]));
//! # Ok::<(), bpfvm::RunError>(())
//! ```

pub use bpfvm_helpers::{MemoryImage, Task};

use bpfvm_helpers::{HelperContext, PacketCtx};

use crate::cpu::CpuId;
use crate::error::RunError;
use crate::program::Program;
use crate::vm::Vm;
use crate::ProgramType;

impl Vm {
    /// Makes `task` the current task of simulated CPU `cpu` for the following runs.
    /// `NoSuchCpu` for a CPU the VM does not have.
    pub fn set_task(&self, cpu: impl Into<CpuId>, task: Task) -> Result<(), RunError> {
        self.lane(cpu.into())?.helper_ctx().set_task(task);
        Ok(())
    }

    /// The current task of simulated CPU `cpu`.
    pub fn task(&self, cpu: impl Into<CpuId>) -> Result<Task, RunError> {
        Ok(self.lane(cpu.into())?.helper_ctx().task().clone())
    }

    /// Sets the kernel memory every CPU's `bpf_probe_read_kernel` (113, 115) can read besides
    /// the program's own memory; other kernel addresses read as `-EFAULT`.
    pub fn set_kernel_memory(&self, memory: MemoryImage) {
        for cpu in 0..self.ncpus() {
            if let Ok(mut lane) = self.lane(CpuId(cpu)) {
                lane.helper_ctx().set_kernel_memory(memory.clone());
            }
        }
    }

    /// Sets the target BTF every CPU's `bpf_snprintf_btf` (149) shows types of: the
    /// kernel's vmlinux BTF for programs written for it (e.g.
    /// [`Btf::from_file`](crate::loader::Btf::from_file)`("/sys/kernel/btf/vmlinux")`).
    /// Without one the helper returns `-EINVAL`, as a kernel without BTF does.
    pub fn set_target_btf(&self, btf: Option<std::sync::Arc<crate::loader::Btf>>) {
        let btf = btf.map(|b| b as std::sync::Arc<dyn bpfvm_helpers::btf_show::ShowBtf>);
        for cpu in 0..self.ncpus() {
            if let Ok(mut lane) = self.lane(CpuId(cpu)) {
                lane.helper_ctx().set_target_btf(btf.clone());
            }
        }
    }
}

/// Per-run settings of the helper context that come from the program: where the packet is in
/// its context, and its attach cookie.
pub(crate) fn setup_run(ctx: &mut HelperContext, program: &Program) {
    let t = program.prog_type();
    ctx.set_packet_ctx(if t == ProgramType::Xdp {
        PacketCtx::Xdp
    } else if t.uses_sk_buff() {
        PacketCtx::SkBuff
    } else {
        PacketCtx::None
    });
    ctx.set_attach_cookie(program.attach_cookie());
    ctx.set_func_ip(program.func_ip());
}
