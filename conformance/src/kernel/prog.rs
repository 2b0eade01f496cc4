//! Loading programs into the kernel and running them with BPF_PROG_TEST_RUN.

use super::consts::ProgType;
use super::errno::Errno;
use super::map::KernelMap;
use super::sys::{self, ProgFd, TestRunArgs};

/// Size of the verifier log buffer kept for every load.
const LOG_SIZE: usize = 1 << 20;

/// A program loaded into the kernel; the fd closes when it drops.
#[derive(Debug)]
pub struct KernelProg {
    fd: ProgFd,
    prog_type: ProgType,
}

/// Input of one BPF_PROG_TEST_RUN.
#[derive(Debug, Clone, Default)]
pub struct TestRun {
    /// The packet (`data_in`).
    pub data_in: Vec<u8>,
    /// Room for the output packet; 0 passes NULL (no output copied).
    pub data_out_size: usize,
    /// The context (`ctx_in`), empty for none.
    pub ctx_in: Vec<u8>,
    /// Room for the output context; 0 passes NULL.
    pub ctx_out_size: usize,
    /// `repeat` (0 and 1 both run once).
    pub repeat: u32,
}

/// Output of one BPF_PROG_TEST_RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutput {
    /// `retval`: the program's r0 (low 32 bits).
    pub retval: u32,
    /// `duration` in ns (mean over `repeat`).
    pub duration: u32,
    /// The output packet (`data_size_out` bytes).
    pub data_out: Vec<u8>,
    /// The output context (`ctx_size_out` bytes).
    pub ctx_out: Vec<u8>,
}

impl KernelProg {
    /// BPF_PROG_LOAD of `insns` (little-endian 8-byte instructions, map fds already in
    /// place). The verifier log (level 1) is written to `log` whether or not the load
    /// succeeds.
    pub fn load(
        prog_type: ProgType,
        expected_attach_type: u32,
        insns: &[u8],
        license: &str,
        log: &mut String,
    ) -> Result<Self, Errno> {
        Self::load_with_flags(prog_type, expected_attach_type, 0, insns, license, log)
    }

    /// [`KernelProg::load`] with `prog_flags` (e.g. [`super::consts::SLEEPABLE`], which
    /// BPF_PROG_TYPE_SYSCALL programs need).
    pub fn load_with_flags(
        prog_type: ProgType,
        expected_attach_type: u32,
        prog_flags: u32,
        insns: &[u8],
        license: &str,
        log: &mut String,
    ) -> Result<Self, Errno> {
        Self::logged(prog_type, log, |buf| {
            sys::prog_load(
                prog_type as u32,
                expected_attach_type,
                prog_flags,
                insns,
                license,
                buf,
            )
        })
    }

    /// BPF_PROG_LOAD of a program attached through the kernel's BTF (`tracing`:
    /// fentry/fexit/tp_btf): `attach_btf_id` is the id of the target in vmlinux's BTF.
    pub fn load_attach_btf(
        prog_type: ProgType,
        expected_attach_type: u32,
        attach_btf_id: u32,
        insns: &[u8],
        license: &str,
        log: &mut String,
    ) -> Result<Self, Errno> {
        Self::logged(prog_type, log, |buf| {
            sys::prog_load_attach_btf(
                prog_type as u32,
                expected_attach_type,
                attach_btf_id,
                insns,
                license,
                buf,
            )
        })
    }

    /// Runs `load` with a log buffer of [`LOG_SIZE`] bytes and puts the log (up to its NUL)
    /// into `log`, whether or not the load succeeded.
    fn logged(
        prog_type: ProgType,
        log: &mut String,
        load: impl FnOnce(&mut [u8]) -> Result<sys::ProgFd, Errno>,
    ) -> Result<Self, Errno> {
        let mut buf = vec![0u8; LOG_SIZE];
        let res = load(&mut buf);
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        *log = String::from_utf8_lossy(&buf[..end]).into_owned();
        Ok(KernelProg {
            fd: res?,
            prog_type,
        })
    }

    /// BPF_PROG_LOAD without a verifier log (`log_level` 0): for programs so long that the
    /// log of [`KernelProg::load`] would not fit (the kernel then fails the load with
    /// `ENOSPC`), such as the 1M-instruction limit tests.
    pub fn load_without_log(
        prog_type: ProgType,
        expected_attach_type: u32,
        insns: &[u8],
        license: &str,
    ) -> Result<Self, Errno> {
        let fd = sys::prog_load(
            prog_type as u32,
            expected_attach_type,
            0,
            insns,
            license,
            &mut [],
        )?;
        Ok(KernelProg { fd, prog_type })
    }

    /// A program another loader (libbpf) loaded as `prog_type`, taking ownership of `fd`.
    pub fn from_owned_fd(fd: std::os::fd::OwnedFd, prog_type: ProgType) -> Self {
        KernelProg {
            fd: ProgFd::from_owned(fd),
            prog_type,
        }
    }

    /// The program's fd (the value a PROG_ARRAY update takes).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.raw()
    }

    /// The program type it was loaded as.
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// BPF_PROG_TEST_RUN on whatever CPU the calling thread is on.
    ///
    /// `ENOSPC` means the output did not fit in `data_out_size` / `ctx_out_size`.
    pub fn test_run(&self, run: &TestRun) -> Result<TestRunOutput, Errno> {
        self.test_run_flags(run, 0, 0)
    }

    /// BPF_PROG_TEST_RUN with `flags` and `cpu` (a raw tracepoint's
    /// `BPF_F_TEST_RUN_ON_CPU`, [`super::consts::TEST_RUN_ON_CPU`]).
    pub fn test_run_flags(
        &self,
        run: &TestRun,
        flags: u32,
        cpu: u32,
    ) -> Result<TestRunOutput, Errno> {
        let mut data_out = vec![0; run.data_out_size];
        let mut ctx_out = vec![0; run.ctx_out_size];
        let (res, out) = sys::prog_test_run(
            &self.fd,
            TestRunArgs {
                data_in: &run.data_in,
                data_out: &mut data_out,
                ctx_in: &run.ctx_in,
                ctx_out: &mut ctx_out,
                repeat: run.repeat,
                flags,
                cpu,
            },
        );
        res?;
        data_out.truncate(out.data_size_out as usize);
        ctx_out.truncate(out.ctx_size_out as usize);
        Ok(TestRunOutput {
            retval: out.retval,
            duration: out.duration,
            data_out,
            ctx_out,
        })
    }

    /// BPF_PROG_TEST_RUN of a `syscall` program: `ctx` is the context in, and what the
    /// program wrote to it out (the kernel copies it back into `ctx_in`); the return value.
    pub fn test_run_syscall(&self, ctx: &mut [u8]) -> Result<u32, Errno> {
        sys::prog_test_run_ctx_in_out(&self.fd, ctx)
    }

    /// BPF_PROG_TEST_RUN on CPU `cpu`. The skb and XDP runners ignore the `cpu` field
    /// (only raw tracepoints honour BPF_F_TEST_RUN_ON_CPU), so the run happens on a helper
    /// thread pinned to `cpu` with sched_setaffinity; the kernel runs test runs on the
    /// caller's CPU with migration disabled.
    pub fn test_run_on_cpu(&self, cpu: u32, run: &TestRun) -> Result<TestRunOutput, Errno> {
        std::thread::scope(|s| {
            s.spawn(|| {
                sys::pin_current_thread(cpu)?;
                self.test_run(run)
            })
            .join()
            .unwrap_or(Err(Errno::EINVAL))
        })
    }
}

/// Replaces the map indices of pseudo `ld_imm64` instructions (`src_reg` 1 =
/// BPF_PSEUDO_MAP_FD, 2 = BPF_PSEUDO_MAP_VALUE) with the fds of `maps`, as bpfvm's
/// relocated programs carry indices where the kernel expects fds (docs/internals.md).
///
/// Fails with a message when the image is not whole instructions, an `ld_imm64` is cut
/// off, or an index has no map.
pub fn substitute_map_fds(insns: &[u8], maps: &[&KernelMap]) -> Result<Vec<u8>, String> {
    let fds: Vec<i32> = maps.iter().map(|m| m.raw_fd()).collect();
    rewrite_map_indices(insns, &fds)
}

/// Replaces the map indices of pseudo `ld_imm64` instructions with `fds[index]`; the
/// errors are those of [`substitute_map_fds`].
pub fn rewrite_map_indices(insns: &[u8], fds: &[i32]) -> Result<Vec<u8>, String> {
    if insns.len() % 8 != 0 {
        return Err(format!("{} bytes is not whole instructions", insns.len()));
    }
    let mut out = insns.to_vec();
    let n = out.len() / 8;
    let mut i = 0;
    while i < n {
        let insn = &mut out[i * 8..i * 8 + 8];
        if insn[0] == 0x18 {
            if i + 1 >= n {
                return Err(format!("ld_imm64 at {i} has no second slot"));
            }
            let src = insn[1] >> 4;
            if src == 1 || src == 2 {
                let idx = u32::from_le_bytes(insn[4..8].try_into().expect("4 bytes"));
                let fd = fds.get(idx as usize).ok_or_else(|| {
                    format!("instruction {i} names map {idx}, which is not there")
                })?;
                insn[4..8].copy_from_slice(&(*fd as u32).to_le_bytes());
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    Ok(out)
}
