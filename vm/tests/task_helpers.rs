//! Checks the task and tracing helpers: each CPU's deterministic default task and the task a
//! test sets (pid/tgid, uid/gid, comm cut and NUL-padded, the task handle), probe reads from
//! the kernel memory and user memory a test provides, from the program's own memory, and the
//! kernel's `-ERANGE` / `-EFAULT` answers with the destination zeroed, the string forms'
//! lengths, `bpf_trace_vprintk`, `bpf_ktime_get_tai_ns` and `bpf_get_attach_cookie`.

mod common;

use bpfvm::task::{MemoryImage, Task};
use bpfvm::{CpuId, Input, Program, ProgramType, Vm};
use common::*;

fn run(vm: &Vm, code: Vec<u8>, cpu: u32) -> bpfvm::RunOutput {
    let p = vm
        .load(Program::new(code, ProgramType::Kprobe).with_attach_cookie(0xc00c1e))
        .expect("the program loads");
    vm.run(&p, CpuId(cpu), &Input::context(vec![0u8; 8]))
        .unwrap()
}

fn call(id: i32) -> Vec<u8> {
    code(&[ins(0x85, 0, 0, 0, id), EXIT])
}

/// `r0 = helper(r10 - 16, size, src)` over 16 bytes of 0xff, then the 16 stack bytes are returned in the trace
/// (as two `%llx`) so the test sees what was written.
fn probe(helper: i32, size: i32, src: u64) -> Vec<u8> {
    let fmt = b"%llx %llx\0";
    let mut v = vec![
        ins(0x7a, 10, 0, -16, -1),
        ins(0x7a, 10, 0, -8, -1),
        ins(0xbf, 1, 10, 0, 0),
        ins(0x07, 1, 0, 0, -16),
        ins(0xb7, 2, 0, 0, size),
        ins(0x18, 3, 0, 0, src as u32 as i32),
        ins(0, 0, 0, 0, (src >> 32) as u32 as i32),
        ins(0x85, 0, 0, 0, helper),
        ins(0xbf, 6, 0, 0, 0),
    ];
    // The format string at r10 - 32.
    for (i, chunk) in fmt.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        v.push(ins(0x18, 1, 0, 0, w as u32 as i32));
        v.push(ins(0, 0, 0, 0, (w >> 32) as u32 as i32));
        v.push(ins(0x7b, 10, 1, -32 + 8 * i as i16, 0));
    }
    v.extend([
        ins(0xbf, 1, 10, 0, 0),
        ins(0x07, 1, 0, 0, -32),
        ins(0xb7, 2, 0, 0, fmt.len() as i32),
        ins(0x79, 3, 10, -16, 0),
        ins(0x79, 4, 10, -8, 0),
        ins(0x85, 0, 0, 0, 6),
        ins(0xbf, 0, 6, 0, 0),
        EXIT,
    ]);
    code(&v)
}

/// What a probe program returned and the 16 bytes it left at r10 - 16.
fn probed(vm: &Vm, helper: i32, size: i32, src: u64) -> (i64, Vec<u8>) {
    let out = run(vm, probe(helper, size, src), 0);
    let words: Vec<u64> = out
        .trace
        .split(' ')
        .map(|w| u64::from_str_radix(w, 16).unwrap())
        .collect();
    let bytes = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    (out.retval as i64, bytes)
}

#[test]
fn each_cpu_has_a_deterministic_task_the_test_can_replace() {
    let vm = Vm::builder().cpus(3).build();
    for cpu in 0..3 {
        let pid = u64::from(1000 + cpu);
        assert_eq!(run(&vm, call(14), cpu).retval, pid << 32 | pid);
        assert_eq!(run(&vm, call(15), cpu).retval, 0, "root");
        assert_eq!(
            run(&vm, call(35), cpu).retval,
            Task::default_handle(1000 + cpu)
        );
    }
    vm.set_task(
        CpuId(2),
        Task {
            pid: 4242,
            tgid: 4200,
            uid: 1000,
            gid: 100,
            comm: "a-very-long-process-name".into(),
            handle: 0xffff_8880_dead_0000,
            ..Task::for_cpu(2)
        },
    )
    .unwrap();
    assert_eq!(run(&vm, call(14), 2).retval, 4200 << 32 | 4242);
    assert_eq!(run(&vm, call(15), 2).retval, 100 << 32 | 1000);
    assert_eq!(run(&vm, call(35), 2).retval, 0xffff_8880_dead_0000);
    assert_eq!(
        run(&vm, call(14), 1).retval,
        1001 << 32 | 1001,
        "other CPUs keep theirs"
    );
    assert!(vm.set_task(CpuId(3), Task::for_cpu(3)).is_err());
}

#[test]
fn comm_is_cut_and_nul_padded_like_strscpy_pad() {
    let vm = Vm::builder().cpus(1).build();
    vm.set_task(
        CpuId(0),
        Task {
            comm: "a-very-long-process-name".into(),
            ..Task::for_cpu(0)
        },
    )
    .unwrap();
    // bpf_get_current_comm(r10 - 16, size), then the 16 bytes as in `probe`.
    for (size, want) in [
        (16, &b"a-very-long-pro\0"[..]),
        (4, &b"a-v\0\xff\xff\xff\xff"[..]),
    ] {
        let mut c = probe(16, size, 0);
        // Replace `call probe` with `call get_current_comm` (same r1, r2).
        let at = c
            .windows(8)
            .position(|w| w == ins(0x85, 0, 0, 0, 16))
            .unwrap();
        c[at..at + 8].copy_from_slice(&ins(0x85, 0, 0, 0, 16));
        let out = run(&vm, c, 0);
        assert_eq!(out.retval, 0);
        let bytes: Vec<u8> = out
            .trace
            .split(' ')
            .flat_map(|w| u64::from_str_radix(w, 16).unwrap().to_le_bytes())
            .collect();
        assert_eq!(&bytes[..want.len()], want, "size {size}");
    }
}

#[test]
fn probe_reads_follow_the_kernels_address_rules() {
    let vm = Vm::builder().cpus(1).build();
    let kaddr = 0xffff_8880_0010_0000u64;
    vm.set_kernel_memory(MemoryImage::new().with(kaddr, (1..=12).collect::<Vec<u8>>()));
    vm.set_task(
        CpuId(0),
        Task {
            user_memory: MemoryImage::new().with(0x7ffd_0000_1000, b"user\0data".to_vec()),
            ..Task::for_cpu(0)
        },
    )
    .unwrap();
    let zeros = vec![0u8; 8];
    let first8 = |v: &[u8]| v[..8].to_vec();
    // Kernel memory the test provided.
    let (r, b) = probed(&vm, 113, 8, kaddr + 2);
    assert_eq!((r, first8(&b)), (0, (3..=10).collect()));
    // Past what was provided: EFAULT, destination zeroed.
    let (r, b) = probed(&vm, 113, 8, kaddr + 8);
    assert_eq!((r, first8(&b)), (-14, zeros));
    // A user address with the kernel helper, and a non-canonical one: ERANGE.
    assert_eq!(probed(&vm, 113, 8, 0x7ffd_0000_1000).0, -34);
    assert_eq!(probed(&vm, 113, 8, 0x8000_0000_0000_0000).0, -34);
    // User memory with the user helper; a kernel address there is EFAULT.
    let (r, b) = probed(&vm, 112, 4, 0x7ffd_0000_1000);
    assert_eq!((r, &b[..5]), (0, &b"user\xff"[..]));
    assert_eq!(probed(&vm, 112, 8, kaddr).0, -14);
    assert_eq!(probed(&vm, 112, 8, 0x1000).0, -14, "nothing mapped there");
    // Strings: the length with the NUL; cut at the size with the NUL in the last byte. The
    // user form stores the word holding the NUL whole, zeroed after the NUL (x86's
    // word-at-a-time strncpy_from_user), when 8 bytes of the size are left for it and the
    // word is readable; else it stops at the NUL.
    let (r, b) = probed(&vm, 114, 16, 0x7ffd_0000_1000);
    assert_eq!((r, &b[..9]), (5, &b"user\0\0\0\0\xff"[..]));
    let (r, b) = probed(&vm, 114, 7, 0x7ffd_0000_1000);
    assert_eq!(
        (r, &b[..6]),
        (5, &b"user\0\xff"[..]),
        "fewer than 8 bytes left"
    );
    let (r, b) = probed(&vm, 114, 16, 0x7ffd_0000_1004);
    assert_eq!(
        (r, &b[..2]),
        (1, &b"\0\xff"[..]),
        "the word runs past the memory"
    );
    let (r, b) = probed(&vm, 114, 3, 0x7ffd_0000_1000);
    assert_eq!((r, &b[..4]), (3, &b"us\0\xff"[..]));
    let (r, b) = probed(&vm, 115, 16, kaddr);
    assert_eq!(r, -14, "no NUL before the end of the provided bytes");
    assert_eq!(b, vec![0; 16]);
    assert_eq!(probed(&vm, 115, 16, 0x7ffd_0000_1000).0, -34);
    assert_eq!(probed(&vm, 115, 0, kaddr).0, 0, "size 0");
}

#[test]
fn probe_read_kernel_reads_the_programs_own_memory() {
    let vm = Vm::builder().cpus(1).build();
    // The context (8 zero bytes, with its address in r1 at entry) is kernel memory.
    let c = code(&[
        ins(0x7a, 1, 0, 0, 0x77), // *(u64 *)(ctx + 0) = 0x77
        ins(0xbf, 3, 1, 0, 0),    // r3 = ctx
        ins(0xbf, 1, 10, 0, 0),
        ins(0x07, 1, 0, 0, -8),
        ins(0xb7, 2, 0, 0, 8),
        ins(0x85, 0, 0, 0, 113), // probe_read_kernel(r10 - 8, 8, ctx)
        ins(0x55, 0, 0, 1, 0),   // if r0 != 0: return r0
        ins(0x79, 0, 10, -8, 0), // r0 = the copy
        EXIT,
    ]);
    assert_eq!(run(&vm, c, 0).retval, 0x77);
}

#[test]
fn vprintk_tai_clock_and_attach_cookie() {
    let vm = Vm::builder().cpus(1).build();
    assert_eq!(run(&vm, call(174), 0).retval, 0xc00c1e);
    let t1 = run(&vm, call(208), 0).retval;
    let t0 = run(&vm, call(5), 0).retval;
    assert!(
        t1 > bpfvm::helpers::tracing::TAI_OFFSET_NS,
        "TAI is the virtual clock + offset"
    );
    assert!(
        t1 - bpfvm::helpers::tracing::TAI_OFFSET_NS < t0,
        "and the clock moves on"
    );
    // bpf_trace_vprintk("%d-%d-%d\0", 9, &[1, -2, 3], 24).
    let fmt = b"%d-%d-%d\0";
    let mut w = [0u8; 16];
    w[..fmt.len()].copy_from_slice(fmt);
    let lo = u64::from_le_bytes(w[..8].try_into().unwrap());
    let hi = u64::from_le_bytes(w[8..].try_into().unwrap());
    let vprintk = |len: i32| {
        code(&[
            ins(0x18, 1, 0, 0, lo as u32 as i32),
            ins(0, 0, 0, 0, (lo >> 32) as u32 as i32),
            ins(0x7b, 10, 1, -16, 0),
            ins(0x7a, 10, 0, -8, hi as i32),
            ins(0x7a, 10, 0, -40, 1),
            ins(0x7a, 10, 0, -32, -2),
            ins(0x7a, 10, 0, -24, 3),
            ins(0xbf, 1, 10, 0, 0),
            ins(0x07, 1, 0, 0, -16),
            ins(0xb7, 2, 0, 0, fmt.len() as i32),
            ins(0xbf, 3, 10, 0, 0),
            ins(0x07, 3, 0, 0, -40),
            ins(0xb7, 4, 0, 0, len),
            ins(0x85, 0, 0, 0, 177),
            EXIT,
        ])
    };
    let out = run(&vm, vprintk(24), 0);
    assert_eq!((out.retval, out.trace.as_str()), (6, "1--2-3"));
    assert_eq!(
        run(&vm, vprintk(20), 0).retval as i64,
        -22,
        "not a multiple of 8"
    );
    assert_eq!(
        run(&vm, vprintk(16), 0).retval as i64,
        -22,
        "too few arguments"
    );
}
