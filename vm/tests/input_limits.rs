//! Run inputs are bounded as the kernel's test runs bound them (`bpfvm::limits`): packets of
//! `__sk_buff` programs up to 3,712 bytes (then `EINVAL`), of XDP programs up to 73,152
//! (then `ENOMEM`), raw contexts up to 65,535 bytes (then `EINVAL`); the error names the
//! size and the limit. (`conformance/tests/kernel_test_run_sizes.rs` compares the packet
//! limits with the kernel.)

use bpfvm::limits::{MAX_RAW_CONTEXT, SKB_MAX_DATA, XDP_MAX_DATA};
use bpfvm::{CpuId, Input, Program, ProgramType, RunError, TestRun, Vm};

fn ret0() -> Vec<u8> {
    rbpf::assembler::assemble("mov64 r0, 0\nexit").unwrap()
}

fn run(vm: &Vm, t: ProgramType, input: Input) -> Result<u64, RunError> {
    let prog = vm.load(Program::new(ret0(), t)).unwrap();
    let by_run = vm.run(&prog, CpuId(0), &input).map(|o| o.retval);
    let by_test_run = vm
        .test_run(
            &prog,
            &TestRun {
                input,
                repeat: 2,
                cpu: CpuId(0),
            },
        )
        .map(|o| o.retval);
    assert_eq!(by_run, by_test_run, "{t:?}: run and test_run check alike");
    by_run
}

#[test]
fn packets_are_limited_as_in_the_kernel() {
    let vm = Vm::builder().cpus(1).build();
    let cases = [
        (ProgramType::Xdp, XDP_MAX_DATA, 12),
        (ProgramType::SchedCls, SKB_MAX_DATA, 22),
        (ProgramType::SocketFilter, SKB_MAX_DATA, 22),
        (ProgramType::CgroupSkb, SKB_MAX_DATA, 22),
    ];
    for (t, max, errno) in cases {
        assert_eq!(run(&vm, t, Input::packet(vec![0; max])), Ok(0), "{t:?}");
        for len in [max + 1, 100 << 20] {
            let e = run(&vm, t, Input::packet(vec![0; len])).unwrap_err();
            assert_eq!(e.errno(), errno, "{t:?} {len}");
            assert!(
                matches!(e, RunError::InputTooLarge { len: l, max: m, .. } if l == len && m == max),
                "{e:?}"
            );
            assert!(e.to_string().contains(&max.to_string()), "{e}");
        }
        // Metadata counts too for skb programs; an XDP packet's comes out of the headroom
        // in front of the linear part (Linux 6.18 takes 8 + 73,152 bytes, not 8 + 73,153).
        let meta = |data| Input {
            data: vec![0; data],
            data_meta: vec![0; 8],
            ..Input::default()
        };
        if t == ProgramType::Xdp {
            assert_eq!(run(&vm, t, meta(max)), Ok(0), "{t:?} meta");
            let e = run(&vm, t, meta(max + 1)).unwrap_err();
            assert_eq!(e.errno(), errno, "{t:?} meta");
            assert!(
                matches!(e, RunError::InputTooLarge { len, max: m, .. } if len == max + 9 && m == max + 8),
                "{e:?}"
            );
        } else {
            assert_eq!(
                run(&vm, t, meta(max - 7)).unwrap_err().errno(),
                errno,
                "{t:?} meta"
            );
        }
    }
}

#[test]
fn raw_contexts_are_limited_to_64_kib() {
    let vm = Vm::builder().cpus(1).build();
    let t = ProgramType::Unspecified;
    assert_eq!(run(&vm, t, Input::context(vec![0; MAX_RAW_CONTEXT])), Ok(0));
    let e = run(&vm, t, Input::context(vec![0; MAX_RAW_CONTEXT + 1])).unwrap_err();
    assert_eq!(e.errno(), 22);
    assert!(e.to_string().contains("65535"), "{e}");
}
