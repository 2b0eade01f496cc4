//! The helper itself: argument checks (`bpf_btf_printf_prepare`), the object read, the
//! string written back, and where the target BTF lives in the [`HelperContext`].

use std::sync::Arc;

use super::show::{snprintf_show, F_ALL};
use super::types::ShowBtf;
use crate::context::HelperContext;
use crate::error::HelperError;
use crate::id::HelperId;
use crate::memory::AddressMode;
use crate::probe::TASK_SIZE_MAX;
use crate::registry::Registry;

/// `sizeof(struct btf_ptr)`: the only `btf_ptr_size` the helper takes.
pub const BTF_PTR_SIZE: u32 = 16;

const NAME: &str = "bpf_snprintf_btf";
const EINVAL: i64 = -22;
const ENOENT: i64 = -2;
const ERANGE: i32 = -34;

/// Registers helper 149.
pub fn register(r: &mut Registry) {
    r.register_builtin(HelperId(149), NAME, snprintf_btf, None)
        .expect("built-in ids are small");
}

impl HelperContext {
    /// Sets the target BTF `bpf_snprintf_btf` (149) shows types of (the kernel's vmlinux
    /// BTF); without one the helper returns `-EINVAL`, as a kernel without BTF.
    pub fn set_target_btf(&mut self, btf: Option<Arc<dyn ShowBtf>>) {
        self.task.target_btf = btf;
    }

    /// The target BTF, if one is set.
    pub fn target_btf(&self) -> Option<&Arc<dyn ShowBtf>> {
        self.task.target_btf.as_ref()
    }
}

/// `bpf_snprintf_btf(str, str_size, ptr, btf_ptr_size, flags)`.
pub fn snprintf_btf(ctx: &mut HelperContext, a: &[u64; 5]) -> Result<u64, Box<HelperError>> {
    let (dst, str_size, ptr, btf_ptr_size, flags) = (a[0], a[1] as u32, a[2], a[3] as u32, a[4]);
    if flags & !F_ALL != 0 || btf_ptr_size != BTF_PTR_SIZE {
        return Ok(EINVAL as u64);
    }
    let Some(btf) = ctx.target_btf().cloned() else {
        return Ok(EINVAL as u64);
    };
    let mut p = [0u8; BTF_PTR_SIZE as usize];
    ctx.read_arg(NAME, ptr, &mut p)?;
    let obj = u64::from_le_bytes(p[..8].try_into().expect("8 bytes"));
    let type_id = u32::from_le_bytes(p[8..12].try_into().expect("4 bytes"));
    if type_id == 0 {
        return Ok(EINVAL as u64);
    }
    if type_id > i32::MAX as u32 || btf.type_view(type_id).is_none() {
        return Ok(ENOENT as u64);
    }
    if ctx.memory.mode() == AddressMode::Host {
        // Raw host pointers cannot be told from kernel addresses: refuse rather than
        // read host memory.
        return Err(Box::new(HelperError::Failed {
            helper: NAME.to_string(),
            message: "needs guest addresses (the interpreter engine)".to_string(),
        }));
    }
    let shown = {
        let c: &HelperContext = ctx;
        let mut read = |addr: u64, out: &mut [u8]| copy_kernel(c, addr, out);
        snprintf_show(&*btf, type_id, obj, str_size, flags, &mut read)
    };
    ctx.charge_work(shown.steps);
    ctx.charge_bytes(shown.bytes.len());
    ctx.memory
        .write_bytes(dst, &shown.bytes)
        .map_err(|fault| HelperError::Memory {
            helper: NAME.to_string(),
            fault: Box::new(fault),
        })?;
    Ok(shown.ret as u64)
}

/// `copy_from_kernel_nofault` in bpfvm: the program's own memory, else the kernel memory
/// image, else zeros; `-ERANGE` for a copy starting at a user or non-canonical address
/// outside the program's memory.
fn copy_kernel(ctx: &HelperContext, addr: u64, out: &mut [u8]) -> Result<(), i32> {
    if out.is_empty() || ctx.memory.read_bytes(addr, out).is_ok() {
        return Ok(());
    }
    let mut first = [0u8; 1];
    let start_mapped = ctx.memory.read_bytes(addr, &mut first).is_ok();
    let canonical = addr >> 47 == 0 || addr >> 47 == (1 << 17) - 1;
    if !start_mapped && (addr < TASK_SIZE_MAX + 4096 || !canonical) {
        return Err(ERANGE);
    }
    for (i, b) in out.iter_mut().enumerate() {
        let at = addr.wrapping_add(i as u64);
        let mut one = [0u8; 1];
        *b = if ctx.memory.read_bytes(at, &mut one).is_ok()
            || ctx.kernel_memory().read(at, &mut one)
        {
            one[0]
        } else {
            0
        };
    }
    Ok(())
}
