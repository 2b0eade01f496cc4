//! Checks dynptr programs against the kernel: the `dynptr_logger.o` fixture (a local
//! dynptr over a map value, a ring buffer dynptr filled through `bpf_dynptr_write`, `read`
//! and a `bpf_dynptr_data` slice, and the helpers' answers out of range, with flags, for a
//! NULL dynptr and for a reservation that does not fit) runs with BPF_PROG_TEST_RUN and in
//! bpfvm for the same frames: the return values, the records a consumer reads, the ring
//! positions and the map value the local dynptr wrote must agree.
#![cfg(target_os = "linux")]

use std::sync::Arc;

use bpfvm::loader::Object;
use bpfvm::maps::Map;
use bpfvm::{CpuId, Input, TestRun as VmTestRun, Vm};
use bpfvm_conformance::kernel::consts::ProgType;
use bpfvm_conformance::kernel::events::KernelRingbuf;
use bpfvm_conformance::kernel::{
    self, create_object_maps, load_object_program, KernelMap, KernelProg, ObjectMap, TestRun,
};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../vm/tests/fixtures/dynptr_logger.o"
);
const PROGRAM: &str = "xdp_dynptr_logger";

/// Both sides of the fixture.
struct Both {
    kmaps: Vec<KernelMap>,
    kprog: KernelProg,
    smaps: Vec<Arc<Map>>,
    vm: Vm,
    prog: bpfvm::LoadedProgram,
    obj: Object,
}

fn load() -> Both {
    let n = kernel::possible_cpus().unwrap();
    let obj = Object::from_file(FIXTURE).unwrap();
    let specs: Vec<ObjectMap> = obj
        .maps()
        .iter()
        .map(|m| ObjectMap {
            name: m.name.to_string(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: m.map_flags,
            initial_data: None,
            frozen: false,
        })
        .collect();
    let kmaps = create_object_maps(&specs).unwrap();
    let def = obj.program(PROGRAM).unwrap();
    let pk: Vec<&KernelMap> = def.maps.iter().map(|&i| &kmaps[i]).collect();
    let kprog =
        load_object_program(PROGRAM, ProgType::Xdp, 0, &def.bytecode(), &pk, "GPL").unwrap();
    let maps = obj.create_maps(n).unwrap();
    // The default loader (CAP_BPF + CAP_NET_ADMIN) accepts the program too.
    let vm = Vm::builder().cpus(n).build();
    let prog = vm.load(obj.vm_program(PROGRAM, &maps).unwrap()).unwrap();
    let smaps = maps.all().to_vec();
    Both {
        kmaps,
        kprog,
        smaps,
        vm,
        prog,
        obj,
    }
}

impl Both {
    fn map(&self, name: &str) -> (&KernelMap, &Arc<Map>) {
        let i = self.obj.map_index(name).unwrap();
        (&self.kmaps[i], &self.smaps[i])
    }

    /// Runs `frame` on `cpu` on both sides; the two return values.
    fn run(&self, cpu: u32, frame: &[u8]) -> (u32, u32) {
        let k = self
            .kprog
            .test_run_on_cpu(
                cpu,
                &TestRun {
                    data_in: frame.to_vec(),
                    ..TestRun::default()
                },
            )
            .unwrap()
            .retval;
        let s = self
            .vm
            .test_run(
                &self.prog,
                &VmTestRun {
                    input: Input::packet(frame.to_vec()),
                    repeat: 1,
                    cpu: CpuId(cpu),
                },
            )
            .unwrap()
            .retval as u32;
        (k, s)
    }

    /// The `scratch` value on both sides.
    fn scratch(&self) -> (Vec<u8>, Vec<u8>) {
        let (k, s) = self.map("scratch");
        let key = 0u32.to_ne_bytes();
        let mut sv = vec![0u8; s.host_value_size(0)];
        s.lookup(&key, &mut sv, 0).unwrap();
        (k.lookup(&key, 0).unwrap(), sv)
    }
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

#[test]
fn dynptr_logger_agrees_with_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let both = load();
    let (kr, sr) = both.map("events");
    let kring = KernelRingbuf::new(kr).unwrap();
    let frames = [
        frame(14, 1),
        frame(60, 7),
        frame(99, 0x40),
        frame(100, 0x80),
        frame(256, 0xf0),
    ];
    for (i, f) in frames.iter().enumerate() {
        let (k, s) = both.run(i as u32 % 2, f);
        assert_eq!(k, s, "frame {i}: return values");
        assert_eq!(k, 2, "frame {i}: XDP_PASS");
        let (kv, sv) = both.scratch();
        assert_eq!(kv, sv, "frame {i}: the map value the local dynptr wrote");
    }
    let krecords = kring.drain();
    let srecords = sr.ringbuf_drain().unwrap();
    // Frames under 100 bytes are submitted, the others discarded.
    assert_eq!(krecords.len(), 3);
    assert_eq!(krecords, srecords, "records");
    assert_eq!(
        kring.positions(),
        sr.ringbuf_positions().unwrap(),
        "positions"
    );
    // The record holds the failure answers: -E2BIG, -EINVAL, a NULL slice, ...
    let r = &krecords[1];
    let word = |i: usize| i32::from_ne_bytes(r[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(word(0), 60, "len");
    assert_eq!(
        (
            word(1),
            word(2),
            word(3),
            word(4),
            word(5),
            word(6),
            word(7)
        ),
        (-7, -22, 1, -22, -22, -22, -7)
    );
    assert_eq!(
        &r[32..48],
        &frame(60, 7)[..16],
        "the head, through the local dynptr"
    );
}
