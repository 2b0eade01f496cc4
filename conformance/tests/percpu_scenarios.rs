//! Checks the kernel's per-CPU map scenarios end to end through the VM, for PERCPU_ARRAY,
//! PERCPU_HASH, LRU_PERCPU_HASH and PERCPU_CGROUP_STORAGE: a program writes a value on each
//! simulated CPU; the host reads them with BPF_F_CPU, as full buffers and with lookup_batch;
//! the host writes with BPF_F_ALL_CPUS and BPF_F_CPU, and programs on each CPU (and helper
//! 195 from another CPU) read back exactly what was written.

use std::sync::Arc;

use bpfvm::maps::{errno, CgroupStorageKey, Map, MapSpec, MapType};
use bpfvm::{CpuId, EngineKind, Input, LoadedProgram, Program, ProgramType, Vm};

const N: u32 = 4;
/// value = { u32 cpu; u32 key; u32 tag } — 12 bytes, so a CPU's slot (16) has padding.
const VS: usize = 12;
const SLOT: usize = 16;
const BPF_F_LOCK: u64 = 4;
const BPF_F_CPU: u64 = 8;
const BPF_F_ALL_CPUS: u64 = 16;
const CGROUP: (u64, u32) = (0x1234, 2);

fn cpu_flag(cpu: u32) -> u64 {
    BPF_F_CPU | (u64::from(cpu) << 32)
}

fn asm(src: &str) -> Vec<u8> {
    rbpf::assembler::assemble(src).unwrap_or_else(|e| panic!("{e}: {src}"))
}

/// `lddw reg, map 0` in the kernel's pseudo form (`BPF_PSEUDO_MAP_FD`).
fn ld_map(reg: u8) -> Vec<u8> {
    vec![0x18, 0x10 | reg, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

fn value(cpu: u32, key: u32, tag: u32) -> [u8; VS] {
    let mut v = [0u8; VS];
    v[..4].copy_from_slice(&cpu.to_ne_bytes());
    v[4..8].copy_from_slice(&key.to_ne_bytes());
    v[8..].copy_from_slice(&tag.to_ne_bytes());
    v
}

/// Context of the programs: u32 key, u32 tag (or target CPU), then 12 bytes of output.
fn ctx(key: u32, arg: u32) -> Vec<u8> {
    let mut c = vec![0u8; 8 + VS];
    c[..4].copy_from_slice(&key.to_ne_bytes());
    c[4..8].copy_from_slice(&arg.to_ne_bytes());
    c
}

/// Writer: `v = { smp_processor_id(), key, tag }; bpf_map_update_elem(map, &key, &v, 0)`.
fn writer() -> Vec<u8> {
    let mut code = asm("
        mov64 r6, r1
        ldxw r7, [r6]
        stxw [r10-4], r7
        call 8
        stxw [r10-16], r0
        stxw [r10-12], r7
        ldxw r9, [r6+4]
        stxw [r10-8], r9");
    code.extend(ld_map(1));
    code.extend(asm("
        mov64 r2, r10
        add64 r2, -4
        mov64 r3, r10
        add64 r3, -16
        mov64 r4, 0
        call 2
        exit"));
    code
}

/// Reader: `v = bpf_map_lookup_elem(map, &key)` (helper 1) or, with `percpu`,
/// `bpf_map_lookup_percpu_elem(map, &key, ctx->arg)` (helper 195); copies `*v` to the
/// context's output; returns 0, or 1 when there is no value.
fn reader(percpu: bool) -> Vec<u8> {
    let mut code = asm("
        mov64 r6, r1
        ldxw r7, [r6]
        stxw [r10-4], r7
        ldxw r3, [r6+4]");
    code.extend(ld_map(1));
    code.extend(asm(&format!(
        "mov64 r2, r10
        add64 r2, -4
        call {}
        jeq r0, 0, +8
        ldxw r1, [r0]
        stxw [r6+8], r1
        ldxw r1, [r0+4]
        stxw [r6+12], r1
        ldxw r1, [r0+8]
        stxw [r6+16], r1
        mov64 r0, 0
        exit
        mov64 r0, 1
        exit",
        if percpu { 195 } else { 1 }
    )));
    code
}

/// Cgroup writer: `v = bpf_get_local_storage(map, 0); *v = { cpu, key, tag }`.
fn storage_writer() -> Vec<u8> {
    let mut code = asm("
        mov64 r6, r1
        call 8
        mov64 r8, r0");
    code.extend(ld_map(1));
    code.extend(asm("
        mov64 r2, 0
        call 81
        stxw [r0], r8
        ldxw r1, [r6]
        stxw [r0+4], r1
        ldxw r1, [r6+4]
        stxw [r0+8], r1
        mov64 r0, 0
        exit"));
    code
}

/// Cgroup reader: copies `*bpf_get_local_storage(map, 0)` to the context's output.
fn storage_reader() -> Vec<u8> {
    let mut code = asm("mov64 r6, r1");
    code.extend(ld_map(1));
    code.extend(asm("
        mov64 r2, 0
        call 81
        ldxw r1, [r0]
        stxw [r6+8], r1
        ldxw r1, [r0+4]
        stxw [r6+12], r1
        ldxw r1, [r0+8]
        stxw [r6+16], r1
        mov64 r0, 0
        exit"));
    code
}

struct Scenario {
    vm: Vm,
    map: Arc<Map>,
    cgroup: bool,
    engine: EngineKind,
}

impl Scenario {
    fn new(spec: MapSpec, engine: EngineKind) -> Scenario {
        let cgroup = spec.map_type == MapType::PercpuCgroupStorage;
        let map = Arc::new(Map::create(spec, N).expect("map"));
        if cgroup {
            map.attach(CGROUP.0, CGROUP.1).expect("attach");
        }
        Scenario {
            vm: Vm::builder().cpus(N).build(),
            map,
            cgroup,
            engine,
        }
    }

    fn load(&self, code: Vec<u8>) -> LoadedProgram {
        let p = Program::new(code, ProgramType::Unspecified)
            .with_map(Arc::clone(&self.map))
            .with_engine(self.engine);
        self.vm.load(p).expect("load")
    }

    fn run(&self, prog: &LoadedProgram, cpu: u32, key: u32, arg: u32) -> (u64, [u8; VS]) {
        let mut input = Input::context(ctx(key, arg));
        if self.cgroup {
            input.cgroup = Some(CGROUP);
        }
        let out = self.vm.run(prog, CpuId(cpu), &input).expect("run");
        (out.retval, out.ctx[8..8 + VS].try_into().unwrap())
    }

    fn key(&self, k: u32) -> Vec<u8> {
        if self.cgroup {
            CgroupStorageKey {
                cgroup_id: CGROUP.0,
                attach_type: CGROUP.1,
            }
            .to_bytes(self.map.key_size())
        } else {
            k.to_ne_bytes().to_vec()
        }
    }

    fn lookup_cpu(&self, k: u32, cpu: u32) -> [u8; VS] {
        let mut v = [0u8; VS];
        self.map
            .lookup(&self.key(k), &mut v, cpu_flag(cpu))
            .expect("lookup cpu");
        v
    }

    fn lookup_full(&self, k: u32) -> Vec<u8> {
        let mut v = vec![0xeeu8; SLOT * N as usize];
        self.map
            .lookup(&self.key(k), &mut v, 0)
            .expect("lookup full");
        v
    }

    /// Step 1: the writer program runs on every CPU for each key; the host sees every CPU's
    /// value with BPF_F_CPU and in a full buffer (with zero padding).
    fn programs_write_host_reads(&self, keys: &[u32]) {
        let (w, r) = if self.cgroup {
            (self.load(storage_writer()), self.load(storage_reader()))
        } else {
            (self.load(writer()), self.load(reader(false)))
        };
        for &k in keys {
            for cpu in 0..N {
                let (ret, _) = self.run(&w, cpu, k, 0x100 * k + cpu);
                assert_eq!(ret, 0, "writer on cpu {cpu}");
            }
        }
        for &k in keys {
            let full = self.lookup_full(k);
            for cpu in 0..N {
                let want = value(cpu, k, 0x100 * k + cpu);
                assert_eq!(self.lookup_cpu(k, cpu), want, "key {k} cpu {cpu}");
                let slot = &full[cpu as usize * SLOT..(cpu as usize + 1) * SLOT];
                assert_eq!(&slot[..VS], &want, "full buffer, cpu {cpu}");
                assert_eq!(&slot[VS..], &[0; SLOT - VS], "padding of cpu {cpu}");
                // The program on that CPU reads its own copy.
                assert_eq!(self.run(&r, cpu, k, 0), (0, want));
            }
        }
    }

    /// Step 2: BPF_F_ALL_CPUS writes one value to every CPU; then BPF_F_CPU writes one CPU;
    /// programs on each CPU (helper 1 or 81) and helper 195 from CPU 0 read them back.
    fn host_writes_programs_read(&self, k: u32) {
        let r = if self.cgroup {
            self.load(storage_reader())
        } else {
            self.load(reader(false))
        };
        let all = value(0xaaaa, k, 0xbbbb);
        self.map
            .update(&self.key(k), &all, BPF_F_ALL_CPUS)
            .expect("all cpus");
        for cpu in 0..N {
            assert_eq!(
                self.run(&r, cpu, k, 0),
                (0, all),
                "cpu {cpu} after ALL_CPUS"
            );
        }
        let one = value(0xcccc, k, 0xdddd);
        self.map
            .update(&self.key(k), &one, cpu_flag(2))
            .expect("cpu 2");
        for cpu in 0..N {
            let want = if cpu == 2 { one } else { all };
            assert_eq!(self.run(&r, cpu, k, 0), (0, want), "cpu {cpu} after CPU=2");
            assert_eq!(self.lookup_cpu(k, cpu), want);
        }
        if !self.cgroup {
            let r195 = self.load(reader(true));
            for target in 0..N {
                let want = if target == 2 { one } else { all };
                assert_eq!(
                    self.run(&r195, 0, k, target),
                    (0, want),
                    "195 -> cpu {target}"
                );
            }
            // cpu >= N: NULL.
            assert_eq!(self.run(&r195, 0, k, N).0, 1);
        }
    }

    /// The flag errors of the scenarios: ALL_CPUS on lookup, CPU|ALL_CPUS, LOCK with a cpu
    /// flag (EINVAL), cpu >= N (ERANGE), and the VS-sized buffer with a cpu flag.
    fn flag_errors(&self, k: u32) {
        let key = self.key(k);
        let mut v = [0u8; VS];
        let e = |r: Result<(), bpfvm::maps::MapError>| r.unwrap_err().errno();
        assert_eq!(
            e(self.map.lookup(&key, &mut v, BPF_F_ALL_CPUS)),
            errno::EINVAL
        );
        assert_eq!(
            e(self.map.lookup(&key, &mut v, cpu_flag(0) | BPF_F_ALL_CPUS)),
            errno::EINVAL
        );
        assert_eq!(
            e(self.map.lookup(&key, &mut v, cpu_flag(0) | BPF_F_LOCK)),
            errno::EINVAL
        );
        assert_eq!(
            e(self.map.update(&key, &v, BPF_F_ALL_CPUS | BPF_F_LOCK)),
            errno::EINVAL
        );
        assert_eq!(e(self.map.lookup(&key, &mut v, cpu_flag(N))), errno::ERANGE);
        assert_eq!(
            e(self.map.update(&key, &v, cpu_flag(u32::MAX))),
            errno::ERANGE
        );
        assert_eq!(e(self.map.lookup(&key, &mut v, 1 << 32)), errno::EINVAL);
    }
}

fn spec(t: MapType) -> MapSpec {
    MapSpec::new(t, 4, VS as u32, 8)
}

/// lookup_batch with a full buffer and with BPF_F_CPU for each CPU sees what the programs
/// wrote on each CPU; update_batch with BPF_F_ALL_CPUS / BPF_F_CPU uses VS-sized values.
fn batches(s: &Scenario, keys: &[u32]) {
    let n = keys.len();
    let (mut k_out, mut v_out) = (vec![0u8; 4 * 8], vec![0u8; SLOT * N as usize * 8]);
    let mut out_batch = [0u8; 4];
    let mut count = 8u32;
    let r = s.map.lookup_batch(
        None,
        &mut out_batch,
        &mut k_out,
        &mut v_out,
        &mut count,
        0,
        0,
    );
    let stride = SLOT * N as usize;
    let seen = |k_out: &[u8], count: u32| -> Vec<u32> {
        (0..count as usize)
            .map(|i| u32::from_ne_bytes(k_out[4 * i..4 * i + 4].try_into().unwrap()))
            .collect()
    };
    let is_array = s.map.map_type() == MapType::PercpuArray;
    // Arrays return all 8 indices (count reached: Ok); hashes every element, then ENOENT.
    if is_array {
        r.expect("array lookup_batch");
        assert_eq!(count, 8);
    } else {
        assert_eq!(r.unwrap_err().errno(), errno::ENOENT);
        assert_eq!(count as usize, n);
    }
    for (i, key) in seen(&k_out, count).into_iter().enumerate() {
        for cpu in 0..N as usize {
            let got = &v_out[i * stride + cpu * SLOT..i * stride + cpu * SLOT + VS];
            let want = if keys.contains(&key) {
                value(cpu as u32, key, 0x100 * key + cpu as u32)
            } else {
                [0; VS]
            };
            assert_eq!(got, &want, "full batch, key {key} cpu {cpu}");
        }
    }
    for cpu in 0..N {
        let mut count = 8u32;
        let mut v_cpu = vec![0u8; VS * 8];
        let _ = s.map.lookup_batch(
            None,
            &mut out_batch,
            &mut k_out,
            &mut v_cpu,
            &mut count,
            cpu_flag(cpu),
            0,
        );
        assert!(count as usize >= n);
        for (i, key) in seen(&k_out, count).into_iter().enumerate() {
            let want = if keys.contains(&key) {
                value(cpu, key, 0x100 * key + cpu)
            } else {
                [0; VS]
            };
            assert_eq!(
                &v_cpu[i * VS..(i + 1) * VS],
                &want,
                "cpu batch {cpu}, key {key}"
            );
        }
    }
    // update_batch: ALL_CPUS for keys[0], then CPU=1 for keys[0]: stride VS.
    let k0 = keys[0].to_ne_bytes();
    let mut count = 1;
    s.map
        .update_batch(&k0, &value(7, 7, 7), &mut count, BPF_F_ALL_CPUS, 0)
        .expect("update_batch ALL_CPUS");
    let mut count = 1;
    s.map
        .update_batch(&k0, &value(9, 9, 9), &mut count, cpu_flag(1), 0)
        .expect("update_batch CPU");
    for cpu in 0..N {
        let want = if cpu == 1 {
            value(9, 9, 9)
        } else {
            value(7, 7, 7)
        };
        assert_eq!(s.lookup_cpu(keys[0], cpu), want);
    }
}

fn full_scenario(t: MapType, engine: EngineKind) {
    let s = Scenario::new(spec(t), engine);
    let keys = [1, 3, 6];
    s.programs_write_host_reads(&keys);
    batches(&s, &keys);
    s.host_writes_programs_read(3);
    s.flag_errors(3);
}

// The scenarios run on `interpreter` and on `rbpf-interpreter` (the rbpf JIT refuses helper
// calls).
#[test]
fn percpu_array() {
    full_scenario(MapType::PercpuArray, EngineKind::Interpreter);
    full_scenario(MapType::PercpuArray, EngineKind::RbpfInterpreter);
}

#[test]
fn percpu_hash() {
    full_scenario(MapType::PercpuHash, EngineKind::Interpreter);
    full_scenario(MapType::PercpuHash, EngineKind::RbpfInterpreter);
}

#[test]
fn lru_percpu_hash() {
    full_scenario(MapType::LruPercpuHash, EngineKind::Interpreter);
    full_scenario(MapType::LruPercpuHash, EngineKind::RbpfInterpreter);
}

#[test]
fn percpu_cgroup_storage_through_helper_81() {
    for engine in [EngineKind::Interpreter, EngineKind::RbpfInterpreter] {
        let spec = MapSpec::new(MapType::PercpuCgroupStorage, 16, VS as u32, 0);
        let s = Scenario::new(spec, engine);
        s.programs_write_host_reads(&[0]);
        s.host_writes_programs_read(0);
        s.flag_errors(0);
        // No batch operations on cgroup storage (ENOTSUPP).
        let mut count = 1;
        let e = s
            .map
            .lookup_batch(
                None,
                &mut [0; 16],
                &mut [0; 16],
                &mut [0; 64],
                &mut count,
                0,
                0,
            )
            .unwrap_err();
        assert_eq!(e.errno(), errno::ENOTSUPP);
    }
}

#[test]
fn host_created_hash_element_with_cpu_flag_zero_fills_other_cpus() {
    // Spec U3: a new PERCPU_HASH element created with BPF_F_CPU: other CPUs read zeros.
    let s = Scenario::new(spec(MapType::PercpuHash), EngineKind::Interpreter);
    s.map
        .update(&5u32.to_ne_bytes(), &value(1, 2, 3), cpu_flag(3))
        .unwrap();
    let r = s.load(reader(false));
    for cpu in 0..N {
        let want = if cpu == 3 { value(1, 2, 3) } else { [0; VS] };
        assert_eq!(s.run(&r, cpu, 5, 0), (0, want));
    }
}
