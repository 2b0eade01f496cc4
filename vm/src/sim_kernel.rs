//! What the simulated kernel around a program looks like to the stack and cgroup helpers:
//! each CPU's call stacks (`bpf_get_stackid`, `bpf_get_stack`; see
//! [`bpfvm_helpers::stack`]) and which simulated cgroups its current task and packet socket
//! are in (`bpf_current_task_under_cgroup`, `bpf_skb_under_cgroup`; see
//! [`bpfvm_helpers::cgroup`]). Both are empty/root by default.
//!
//! ```
//! use bpfvm::sim_kernel::{CallStacks, CgroupEnv};
//! use bpfvm::{CpuId, Vm};
//!
//! let vm = Vm::builder().cpus(2).build();
//! vm.set_call_stacks(CpuId(1), CallStacks { kernel: vec![0xffff_ffff_8100_0000], user: vec![] })?;
//! assert_eq!(vm.call_stacks(CpuId(1))?.kernel.len(), 1);
//! assert!(vm.call_stacks(CpuId(0))?.kernel.is_empty());
//! vm.set_cgroups(CpuId(0), CgroupEnv { task: vec![1, 42], ..CgroupEnv::default() })?;
//! assert_eq!(vm.cgroups(CpuId(0))?.task, vec![1, 42]);
//! # Ok::<(), bpfvm::RunError>(())
//! ```

pub use bpfvm_helpers::cgroup::CgroupEnv;
pub use bpfvm_helpers::stack::CallStacks;

use crate::cpu::CpuId;
use crate::error::RunError;
use crate::vm::Vm;

impl Vm {
    /// Sets simulated CPU `cpu`'s call stacks for the following runs. `NoSuchCpu` for a CPU
    /// the VM does not have.
    pub fn set_call_stacks(
        &self,
        cpu: impl Into<CpuId>,
        stacks: CallStacks,
    ) -> Result<(), RunError> {
        self.lane(cpu.into())?.helper_ctx().set_call_stacks(stacks);
        Ok(())
    }

    /// Simulated CPU `cpu`'s call stacks.
    pub fn call_stacks(&self, cpu: impl Into<CpuId>) -> Result<CallStacks, RunError> {
        Ok(self.lane(cpu.into())?.helper_ctx().call_stacks().clone())
    }

    /// Sets which simulated cgroups CPU `cpu`'s current task and packet socket are in.
    pub fn set_cgroups(&self, cpu: impl Into<CpuId>, cgroups: CgroupEnv) -> Result<(), RunError> {
        self.lane(cpu.into())?.helper_ctx().set_cgroups(cgroups);
        Ok(())
    }

    /// CPU `cpu`'s simulated cgroup membership.
    pub fn cgroups(&self, cpu: impl Into<CpuId>) -> Result<CgroupEnv, RunError> {
        Ok(self.lane(cpu.into())?.helper_ctx().cgroups().clone())
    }
}
