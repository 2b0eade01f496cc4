//! Tests of `bpf/xdp_filter.bpf.c` on 4 simulated CPUs, without root or a kernel.

use bpfvm::frame::Frame;
use bpfvm::maps::MapFlags;
use bpfvm::{CpuId, Error, Input, ObjectLoader, Vm, XdpAction};
use xdp_filter_tests::XDP_FILTER_OBJECT;

const CLIENT: [u8; 4] = [192, 0, 2, 1];
const TRUSTED: [u8; 4] = [192, 0, 2, 7];
const SERVER: [u8; 4] = [198, 51, 100, 1];

#[test]
fn udp_to_the_blocked_port_is_dropped_unless_the_source_is_allowed() -> Result<(), Error> {
    // Load the object for a VM of 4 CPUs, with its `const volatile` setting.
    let vm = Vm::builder().cpus(4).build();
    let bpf = ObjectLoader::from_file(XDP_FILTER_OBJECT)?
        .set_global("blocked_port", &53u16)?
        .load(&vm)?;
    let prog = bpf.program("xdp_filter")?;

    // Seed the maps as `bpf()` would: one source allowed, every CPU's counters at 100.
    bpf.hash_map::<[u8; 4], u32>("allowed")?
        .insert(&TRUSTED, 1, MapFlags::ANY)?;
    let verdicts = bpf.percpu_array::<u64>("verdicts")?;
    for action in [XdpAction::Drop, XdpAction::Pass] {
        verdicts.set_value(action as u32, 100, MapFlags::ALL_CPUS)?;
    }

    // Run on every CPU with real frames (checksums and all).
    let dns = Frame::udp4(CLIENT, SERVER, 40000, 53)
        .payload(b"query")
        .build()?;
    let trusted_dns = Frame::udp4(TRUSTED, SERVER, 40000, 53).build()?;
    let web = Frame::tcp4(CLIENT, SERVER, 40000, 443).syn().build()?;
    vm.run_on_all(prog, 10, &Input::packet(dns.clone()))?;
    assert_eq!(
        vm.run(prog, CpuId(2), &Input::packet(dns))?.retval,
        XdpAction::Drop
    );
    assert_eq!(
        vm.run(prog, CpuId(2), &Input::packet(trusted_dns))?.retval,
        XdpAction::Pass
    );
    assert_eq!(
        vm.run(prog, CpuId(3), &Input::packet(web))?.retval,
        XdpAction::Pass
    );

    // One CPU's counter with BPF_F_CPU, and the sum over CPUs.
    let drops = XdpAction::Drop as u32;
    assert_eq!(verdicts.get_value(drops, MapFlags::cpu(2))?, 100 + 10 + 1);
    assert_eq!(verdicts.get(drops)?.sum(), 4 * 100 + 4 * 10 + 1);
    assert_eq!(
        verdicts.get(XdpAction::Pass as u32)?.to_vec(),
        [100, 100, 101, 101]
    );
    Ok(())
}

#[test]
fn a_program_that_faults_says_where() -> Result<(), Error> {
    let vm = Vm::builder().cpus(1).build();
    let bpf = ObjectLoader::from_file(XDP_FILTER_OBJECT)?.load(&vm)?;
    // A runt frame is refused before the program runs, as the kernel's test run does.
    let err = vm
        .run(
            bpf.program("xdp_filter")?,
            CpuId(0),
            &Input::packet(vec![0; 10]),
        )
        .unwrap_err();
    assert_eq!(err.errno(), 22);
    assert!(err.to_string().contains("Ethernet header"), "{err}");
    Ok(())
}
