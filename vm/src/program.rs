//! `Program`: relocated instructions, the program's maps, its type and its engine.

use std::any::Any;
use std::sync::Arc;

use bpfvm_helpers::{MapList, ProgramMap};

use crate::engine::EngineKind;
use crate::ProgramType;

/// A BPF program ready to be loaded into a [`crate::Vm`].
///
/// Instructions are kernel-style bytecode (8 bytes each, little-endian) in which map
/// references are the pseudo `ld_imm64` forms of `docs/internals.md`, with the map's index in
/// [`Program::maps`] as the "fd".
#[derive(Debug, Clone)]
pub struct Program {
    bytecode: Vec<u8>,
    maps: Vec<Arc<dyn ProgramMap>>,
    /// The same maps where they are `bpfvm_maps::Map`s (their type, flags and frozen
    /// contents matter to the kernel's verifier).
    kernel_maps: Vec<Option<Arc<bpfvm_maps::Map>>>,
    prog_type: ProgramType,
    engine: EngineKind,
    /// Unresolved CO-RE relocations by poisoned instruction, sorted.
    core_poisons: Vec<(usize, Arc<str>)>,
    license: Option<String>,
    expected_attach_type: Option<u32>,
    source_lines: Arc<[(usize, String)]>,
    attach_cookie: u64,
    btf_func_info: bool,
    /// The kernel functions the program calls, by the `imm` of its kfunc calls.
    kfuncs: Arc<[crate::kfunc::KfuncImport]>,
    /// What a tracing program's attach target's prototype says of its context.
    tracing_ctx: Option<bpfvm_verifier::TracingCtx>,
    /// The kernel's types (the target BTF) the verifier checks BTF pointer loads with.
    kernel_btf: Option<Arc<crate::loader::Btf>>,
    /// What `bpf_get_func_ip` returns.
    func_ip: u64,
}

/// `map` as a `bpfvm_maps::Map`, when it is one.
fn as_kernel_map<M: ProgramMap + 'static>(map: &Arc<M>) -> Option<Arc<bpfvm_maps::Map>> {
    let any: Arc<dyn Any + Send + Sync> = map.clone();
    any.downcast::<bpfvm_maps::Map>().ok()
}

impl Program {
    /// A program of type `prog_type` from raw bytecode, with no maps, on the default engine.
    pub fn new(bytecode: impl Into<Vec<u8>>, prog_type: ProgramType) -> Program {
        Program {
            bytecode: bytecode.into(),
            maps: Vec::new(),
            kernel_maps: Vec::new(),
            prog_type,
            engine: EngineKind::default(),
            core_poisons: Vec::new(),
            license: None,
            expected_attach_type: None,
            source_lines: Arc::from(Vec::new()),
            attach_cookie: 0,
            btf_func_info: false,
            kfuncs: Arc::from(Vec::new()),
            tracing_ctx: None,
            kernel_btf: None,
            func_ip: 0,
        }
    }

    /// A program from 64-bit instruction words (as `rbpf::insn_builder` or listings show
    /// them: opcode in the low byte).
    pub fn from_words(words: &[u64], prog_type: ProgramType) -> Program {
        Program::new(
            words
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<u8>>(),
            prog_type,
        )
    }

    /// Appends `map` to the program's map list and returns its index (the "fd" pseudo
    /// `ld_imm64` instructions use).
    pub fn add_map<M: ProgramMap + 'static>(&mut self, map: Arc<M>) -> u32 {
        self.kernel_maps.push(as_kernel_map(&map));
        self.maps.push(map);
        (self.maps.len() - 1) as u32
    }

    /// Builder form of [`Program::add_map`].
    pub fn with_map<M: ProgramMap + 'static>(mut self, map: Arc<M>) -> Program {
        self.add_map(map);
        self
    }

    /// Sets the maps, replacing any, in index order (e.g. the loader's
    /// `ProgramDefinition::maps` resolved to live `Arc<Map>`s).
    pub fn with_maps<M: ProgramMap + 'static>(
        mut self,
        maps: impl IntoIterator<Item = Arc<M>>,
    ) -> Program {
        let maps: Vec<Arc<M>> = maps.into_iter().collect();
        self.kernel_maps = maps.iter().map(as_kernel_map).collect();
        self.maps = maps.into_iter().map(|m| m as Arc<dyn ProgramMap>).collect();
        self
    }

    /// Sets the maps as trait objects, replacing any (maps of different types).
    /// The kernel's verifier then knows only their key and value sizes and whether they
    /// are read-only (see `docs/verifier.md`).
    pub fn with_dyn_maps(mut self, maps: Vec<Arc<dyn ProgramMap>>) -> Program {
        self.kernel_maps = vec![None; maps.len()];
        self.maps = maps;
        self
    }

    /// Sets the license (`SEC("license")`): GPL-only helpers need a GPL-compatible one.
    /// Without one the program counts as GPL.
    pub fn with_license(mut self, license: impl Into<String>) -> Program {
        self.license = Some(license.into());
        self
    }

    /// Sets `expected_attach_type` (e.g. cgroup_skb ingress 0 or egress 1), which decides
    /// some of the kernel verifier's rules.
    pub fn with_attach_type(mut self, attach_type: u32) -> Program {
        self.expected_attach_type = Some(attach_type);
        self
    }

    /// Sets the source line of instructions (`(index, "file:line: code")`, sorted by
    /// index, each valid until the next), as `.BTF.ext` line info gives them; errors name
    /// the line of their instruction.
    pub fn with_source_lines(mut self, lines: Vec<(usize, String)>) -> Program {
        self.source_lines = lines.into();
        self
    }

    /// The source line of instruction `insn`, if line info was given.
    pub fn source_line(&self, insn: usize) -> Option<&str> {
        let i = self.source_lines.partition_point(|(at, _)| *at <= insn);
        i.checked_sub(1).map(|i| self.source_lines[i].1.as_str())
    }

    /// The license, if set.
    pub fn license(&self) -> Option<&str> {
        self.license.as_deref()
    }

    /// `expected_attach_type`, if set.
    pub fn expected_attach_type(&self) -> Option<u32> {
        self.expected_attach_type
    }

    /// Replaces each `bpfvm_maps::Map` for which `f` gives another (at the same index).
    pub(crate) fn replace_kernel_maps(
        &mut self,
        f: impl Fn(&bpfvm_maps::Map) -> Option<bpfvm_maps::Map>,
    ) {
        for (map, kernel) in self.maps.iter_mut().zip(&mut self.kernel_maps) {
            if let Some(new) = kernel.as_deref().and_then(&f) {
                let new = Arc::new(new);
                *map = new.clone();
                *kernel = Some(new);
            }
        }
    }

    /// The maps that are `bpfvm_maps::Map`s, in index order (`None` for other maps).
    pub fn kernel_maps(&self) -> &[Option<Arc<bpfvm_maps::Map>>] {
        &self.kernel_maps
    }

    /// Chooses the engine that will run the program.
    pub fn with_engine(mut self, engine: EngineKind) -> Program {
        self.engine = engine;
        self
    }

    /// Names the unresolved CO-RE relocation each poisoned instruction (libbpf's
    /// `call 0xbad2310`) stands for, so the error of a run that reaches one names it
    /// (the loader's `Object::vm_program` sets them).
    pub fn with_core_poisons(
        mut self,
        poisons: impl IntoIterator<Item = (usize, Arc<str>)>,
    ) -> Program {
        self.core_poisons = poisons.into_iter().collect();
        self.core_poisons.sort_by_key(|(pc, _)| *pc);
        self
    }

    /// The unresolved CO-RE relocations: `(poisoned instruction, description)`, sorted.
    pub fn core_poisons(&self) -> &[(usize, Arc<str>)] {
        &self.core_poisons
    }

    /// The description of the unresolved CO-RE relocation poisoned at instruction `pc`.
    pub fn core_poison(&self, pc: usize) -> Option<&Arc<str>> {
        let i = self.core_poisons.partition_point(|(at, _)| *at < pc);
        self.core_poisons
            .get(i)
            .filter(|(at, _)| *at == pc)
            .map(|(_, d)| d)
    }

    /// The same program loaded with BTF function info, as libbpf loads an object built
    /// with `-g` (the loader sets it for such objects). The kernel's verifier allows
    /// `bpf_tail_call` and `ld_abs` in subprograms only then.
    pub fn with_btf_func_info(mut self, func_info: bool) -> Program {
        self.btf_func_info = func_info;
        self
    }

    /// Whether the program is loaded with BTF function info
    /// ([`Program::with_btf_func_info`]).
    pub fn btf_func_info(&self) -> bool {
        self.btf_func_info
    }

    /// The bytecode.
    pub fn bytecode(&self) -> &[u8] {
        &self.bytecode
    }

    /// Number of instruction slots.
    pub fn len(&self) -> usize {
        self.bytecode.len() / 8
    }

    /// Whether the program has no instructions.
    pub fn is_empty(&self) -> bool {
        self.bytecode.is_empty()
    }

    /// The program's maps, in index order.
    pub fn maps(&self) -> &[Arc<dyn ProgramMap>] {
        &self.maps
    }

    /// The maps as a shared list for the helper context.
    pub fn map_list(&self) -> MapList {
        self.maps.to_vec().into()
    }

    /// The program type, which decides the context layout.
    pub fn prog_type(&self) -> ProgramType {
        self.prog_type
    }

    /// The engine chosen for the program.
    pub fn engine(&self) -> EngineKind {
        self.engine
    }

    /// Sets the cookie of the program's attachment (what `bpf_get_attach_cookie`, helper
    /// 174, returns; the kernel takes it from the `bpf_link`). Default 0.
    pub fn with_attach_cookie(mut self, cookie: u64) -> Program {
        self.attach_cookie = cookie;
        self
    }

    /// The cookie of the program's attachment.
    pub fn attach_cookie(&self) -> u64 {
        self.attach_cookie
    }

    /// Sets the kernel functions the program calls: a `call` with `src_reg`
    /// `BPF_PSEUDO_KFUNC_CALL` (2) calls `kfuncs[imm]`, and an `ld_imm64` with `src_reg`
    /// [`PSEUDO_KFUNC_ADDR`](crate::kfunc::PSEUDO_KFUNC_ADDR) loads its address. [`crate::Vm::load`]
    /// resolves them by name among the VM's registered kfuncs (the loader's
    /// `Object::vm_program` sets them).
    pub fn with_kfuncs(mut self, kfuncs: Vec<crate::kfunc::KfuncImport>) -> Program {
        self.kfuncs = kfuncs.into();
        self
    }

    /// The kernel functions the program calls ([`Program::with_kfuncs`]).
    pub fn kfuncs(&self) -> &[crate::kfunc::KfuncImport] {
        &self.kfuncs
    }

    /// A [`ProgramType::Tracing`] program's context as its
    /// attach target's BTF prototype gives it (the loader reads it from the target BTF):
    /// the kernel's verifier checks context loads against it. Without it, the verifier
    /// cannot type the arguments and the program's verdict is unknown.
    ///
    /// ```
    /// use bpfvm::verifier::TracingCtx;
    /// use bpfvm::{Program, ProgramType};
    ///
    /// let ctx = TracingCtx { nr_slots: 2, btf_ptr_slots: 0b1, known: true, ..Default::default() };
    /// let p = Program::from_words(&[0xb7, 0x95], ProgramType::Tracing).with_tracing_ctx(ctx);
    /// assert_eq!(p.tracing_ctx(), Some(ctx));
    /// ```
    pub fn with_tracing_ctx(mut self, ctx: bpfvm_verifier::TracingCtx) -> Program {
        self.tracing_ctx = Some(ctx);
        self
    }

    /// The tracing context given with [`Program::with_tracing_ctx`].
    pub fn tracing_ctx(&self) -> Option<bpfvm_verifier::TracingCtx> {
        self.tracing_ctx
    }

    /// The kernel's types (the target BTF, e.g. `/sys/kernel/btf/vmlinux`) for the
    /// verifier: loads through pointers to kernel structs (`PTR_TO_BTF_ID`: tracing
    /// arguments, `bpf_get_current_task_btf`) are checked against their layouts. Without
    /// them such loads leave the program's verdict unknown. The loader sets it from the
    /// target BTF it was given.
    ///
    /// ```
    /// use bpfvm::loader::Btf;
    /// use bpfvm::{Program, ProgramType};
    ///
    /// let btf = Btf::parse_any(include_bytes!("../tests/fixtures/tracing_target.btf"))?;
    /// let p = Program::from_words(&[0xb7, 0x95], ProgramType::Tracing)
    ///     .with_kernel_btf(std::sync::Arc::new(btf));
    /// assert!(p.kernel_btf().is_some());
    /// # Ok::<(), bpfvm::loader::LoadError>(())
    /// ```
    pub fn with_kernel_btf(mut self, btf: Arc<crate::loader::Btf>) -> Program {
        self.kernel_btf = Some(btf);
        self
    }

    /// The kernel's types given with [`Program::with_kernel_btf`].
    pub fn kernel_btf(&self) -> Option<&crate::loader::Btf> {
        self.kernel_btf.as_deref()
    }

    /// Sets what `bpf_get_func_ip` (173) returns in this program's runs: the address of
    /// the function it traces (0 unless set).
    pub fn with_func_ip(mut self, ip: u64) -> Program {
        self.func_ip = ip;
        self
    }

    /// What `bpf_get_func_ip` returns.
    pub fn func_ip(&self) -> u64 {
        self.func_ip
    }

    /// The same program with other instructions (the kfunc resolution's rewrite).
    pub(crate) fn with_bytecode(&self, bytecode: Vec<u8>) -> Program {
        Program {
            bytecode,
            ..self.clone()
        }
    }
}
