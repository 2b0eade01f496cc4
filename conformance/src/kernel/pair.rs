//! One compiled object on both sides: its maps created in the kernel and in bpfvm, its
//! programs loaded into both, host writes applied to both, test runs made on both, for
//! tests that compare the kernel's results with bpfvm's.

use std::collections::BTreeMap;
use std::sync::Arc;

use bpfvm::loader::Object;
use bpfvm::maps::Map;
use bpfvm::{
    CpuId, EngineKind, Input, LoadedProgram, Program, ProgramType, TestRun as VmTestRun,
    TestRunResult, Vm,
};

use super::consts::{create, ProgType};
use super::diff::{self, HostMap};
use super::{create_object_maps, load_object_program, KernelMap, KernelProg, ObjectMap};
use super::{Errno, TestRun, TestRunOutput};

/// The kernel program type and expected attach type for a bpfvm program type (`None` for
/// types the kernel cannot test-run).
pub fn kernel_prog_type(t: ProgramType, section: &str) -> Option<(ProgType, u32)> {
    Some(match t {
        ProgramType::SocketFilter => (ProgType::SocketFilter, 0),
        ProgramType::SchedCls => (ProgType::SchedCls, 0),
        ProgramType::SchedAct => (ProgType::SchedAct, 0),
        ProgramType::Xdp => (ProgType::Xdp, 0),
        // BPF_CGROUP_INET_INGRESS = 0, BPF_CGROUP_INET_EGRESS = 1.
        ProgramType::CgroupSkb => (ProgType::CgroupSkb, u32::from(section.ends_with("egress"))),
        _ => return None,
    })
}

/// An object loaded on both sides.
pub struct Pair {
    /// The parsed object.
    pub obj: Object,
    /// The kernel's maps, in object order.
    pub kmaps: Vec<KernelMap>,
    /// bpfvm's maps, in object order.
    pub smaps: Vec<Arc<Map>>,
    /// The VM (as many CPUs as the kernel has possible CPUs).
    pub vm: Vm,
    kprogs: BTreeMap<String, KernelProg>,
    sprogs: BTreeMap<String, LoadedProgram>,
    /// The engine bpfvm's programs are loaded for.
    engine: EngineKind,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("programs", &self.sprogs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The result of one test run on each side.
#[derive(Debug)]
pub struct Runs {
    /// The kernel's.
    pub kernel: Result<TestRunOutput, Errno>,
    /// bpfvm's.
    pub bpfvm: Result<TestRunResult, bpfvm::RunError>,
}

impl Pair {
    /// Parses the object file at `path` and creates its maps on both sides (`ncpus`
    /// simulated CPUs: the kernel's possible CPUs).
    pub fn open(path: &str, ncpus: u32) -> Result<Pair, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let name = std::path::Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("object");
        let obj = Object::parse_named(name, &bytes).map_err(|e| e.to_string())?;
        let kmaps = create_object_maps(&kernel_map_specs(&obj))?;
        let smaps = obj
            .create_maps(ncpus)
            .map_err(|e| e.to_string())?
            .all()
            .to_vec();
        Ok(Pair {
            obj,
            kmaps,
            smaps,
            // The kernel side loads as root (the oracle runs as root): so does bpfvm's.
            vm: Vm::builder()
                .cpus(ncpus)
                .privilege(bpfvm::Privilege::Root)
                .build(),
            kprogs: BTreeMap::new(),
            sprogs: BTreeMap::new(),
            engine: EngineKind::Interpreter,
        })
    }

    /// [`Pair::open`] with bpfvm's programs loaded for `engine` (the interpreter by
    /// default).
    pub fn open_on(path: &str, ncpus: u32, engine: EngineKind) -> Result<Pair, String> {
        let mut p = Pair::open(path, ncpus)?;
        p.engine = engine;
        Ok(p)
    }

    /// Loads program `name` on both sides; an error names the side that refused it.
    pub fn load(&mut self, name: &str) -> Result<(), String> {
        let def = self
            .obj
            .program(name)
            .ok_or_else(|| format!("no program {name}"))?;
        let (ptype, attach) = kernel_prog_type(def.program_type, &def.section)
            .ok_or_else(|| format!("{name}: {:?} cannot be test-run", def.program_type))?;
        let kmaps: Vec<&KernelMap> = def.maps.iter().map(|&i| &self.kmaps[i]).collect();
        let license = self.obj.license().unwrap_or("GPL").to_owned();
        let k = load_object_program(name, ptype, attach, &def.bytecode(), &kmaps, &license)
            .map_err(|e| format!("kernel: {e}"))?;
        let mut program = Program::new(def.bytecode(), def.program_type).with_engine(self.engine);
        for &i in &def.maps {
            program.add_map(self.smaps[i].clone());
        }
        let s = self
            .vm
            .load(program)
            .map_err(|e| format!("bpfvm: {name}: {e}"))?;
        self.kprogs.insert(name.to_owned(), k);
        self.sprogs.insert(name.to_owned(), s);
        Ok(())
    }

    /// `BPF_MAP_UPDATE_ELEM` of program `prog` (loaded on both sides) into slot `index` of
    /// PROG_ARRAY `map` with `flags`: the kernel's outcome and bpfvm's.
    pub fn set_prog_slot(
        &self,
        map: &str,
        index: u32,
        prog: &str,
        flags: u64,
    ) -> (Result<(), Errno>, Result<(), Errno>) {
        let i = self.map(map);
        let fd = self.kprogs[prog].raw_fd() as u32;
        let k = self.kmaps[i].update(&index.to_ne_bytes(), &fd.to_ne_bytes(), flags);
        let s = self.smaps[i]
            .prog_array_update(index, self.sprogs[prog].prog_array_entry(), flags)
            .map_err(|e| Errno(e.errno()));
        (k, s)
    }

    /// Fills the PROG_ARRAY slots the object's `values` initialisers name with the
    /// programs loaded on both sides (as libbpf does after loading), failing on the first
    /// side that refuses.
    pub fn init_prog_arrays(&self) -> Result<(), String> {
        for init in self.obj.slot_inits() {
            let bpfvm::loader::SlotTarget::Program(prog) = &init.target else {
                continue;
            };
            if !self.sprogs.contains_key(&**prog) {
                continue;
            }
            let (k, s) = self.set_prog_slot(&init.map, init.slot, prog, 0);
            k.map_err(|e| format!("kernel: {}[{}] = {prog}: {e}", init.map, init.slot))?;
            s.map_err(|e| format!("bpfvm: {}[{}] = {prog}: {e}", init.map, init.slot))?;
        }
        Ok(())
    }

    /// The bpfvm side of loaded program `name`.
    pub fn bpfvm_program(&self, name: &str) -> &LoadedProgram {
        &self.sprogs[name]
    }

    /// The index of map `name`.
    pub fn map(&self, name: &str) -> usize {
        self.obj
            .map_index(name)
            .unwrap_or_else(|| panic!("no map {name}"))
    }

    /// `BPF_MAP_UPDATE_ELEM` of the same key and value on both sides.
    pub fn update(&self, map: &str, key: &[u8], value: &[u8]) -> Result<(), String> {
        let i = self.map(map);
        self.kmaps[i]
            .update(key, value, 0)
            .map_err(|e| format!("kernel: {map}: {e}"))?;
        HostMap::update(&*self.smaps[i], key, value, 0).map_err(|e| format!("bpfvm: {map}: {e}"))
    }

    /// The contents of map `name` on each side (`get_next_key` order).
    pub fn dumps(
        &self,
        map: &str,
    ) -> (Result<diff::Contents, Errno>, Result<diff::Contents, Errno>) {
        let i = self.map(map);
        (
            diff::dump(&self.kmaps[i], 100_000),
            diff::dump(&*self.smaps[i], 100_000),
        )
    }

    /// One `BPF_PROG_TEST_RUN` of program `name` on CPU `cpu` on both sides. The kernel gets
    /// `meta` and `data` as one `data_in` with, when there is metadata, an `xdp_md` naming
    /// it.
    pub fn run(&self, name: &str, cpu: u32, meta: &[u8], data: &[u8], repeat: u32) -> Runs {
        let ctx_in = if meta.is_empty() {
            Vec::new()
        } else {
            xdp_md(meta.len(), meta.len() + data.len(), 0)
        };
        self.run_ctx(name, cpu, meta, data, ctx_in, repeat)
    }

    /// One run of XDP program `name` on CPU `cpu` of a packet received on device
    /// `ingress_ifindex` (queue 0).
    pub fn run_xdp_from(&self, name: &str, cpu: u32, data: &[u8], ingress_ifindex: u32) -> Runs {
        self.run_ctx(
            name,
            cpu,
            &[],
            data,
            xdp_md(0, data.len(), ingress_ifindex),
            1,
        )
    }

    /// One run with the context `ctx_in` on both sides.
    pub fn run_ctx(
        &self,
        name: &str,
        cpu: u32,
        meta: &[u8],
        data: &[u8],
        ctx_in: Vec<u8>,
        repeat: u32,
    ) -> Runs {
        let mut data_in = meta.to_vec();
        data_in.extend_from_slice(data);
        let kernel = self.kprogs[name].test_run_on_cpu(
            cpu,
            &TestRun {
                data_in,
                data_out_size: 32768,
                ctx_out_size: ctx_in.len(),
                ctx_in: ctx_in.clone(),
                repeat,
            },
        );
        let bpfvm = self.vm.test_run(
            &self.sprogs[name],
            &VmTestRun {
                input: Input {
                    data: data.to_vec(),
                    data_meta: meta.to_vec(),
                    ctx: ctx_in,
                    cgroup: None,
                },
                repeat,
                cpu: CpuId(cpu),
            },
        );
        Runs { kernel, bpfvm }
    }
}

/// `struct xdp_md` as `ctx_in`: `data` = `meta_len`, `data_end` = `end`, the ingress device.
fn xdp_md(meta_len: usize, end: usize, ingress_ifindex: u32) -> Vec<u8> {
    let mut c = vec![0u8; 24];
    c[0..4].copy_from_slice(&(meta_len as u32).to_ne_bytes());
    c[4..8].copy_from_slice(&(end as u32).to_ne_bytes());
    c[12..16].copy_from_slice(&ingress_ifindex.to_ne_bytes());
    c
}

/// The kernel-side definitions of `obj`'s maps, as bpfvm creates them: hash maps get
/// `BPF_F_ZERO_SEED`, since bpfvm's hash seed is always 0 (the same bucket order).
pub fn kernel_map_specs(obj: &Object) -> Vec<ObjectMap> {
    obj.maps()
        .iter()
        .map(|m| ObjectMap {
            name: m.name.to_string(),
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            map_flags: m.map_flags
                | if matches!(m.map_type, 1 | 5 | 9 | 10) {
                    create::ZERO_SEED
                } else {
                    0
                },
            initial_data: m.initial_data.clone(),
            frozen: m.frozen,
        })
        .collect()
}
