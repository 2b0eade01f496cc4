//! Verdicts compared: one program verified by bpfvm's verifier and loaded by the kernel,
//! the two answers set side by side (accepted or refused, errno, and whether bpfvm's
//! message is one of the kernel's log lines).

use bpfvm_verifier::{
    Insn, MapInfo, Options, Privilege, ProgType, Program, Verdict, VerifierError,
};

/// A program to judge, with what its maps are.
#[derive(Debug, Clone)]
pub struct Case {
    /// A name for reports.
    pub name: String,
    /// Little-endian instructions; pseudo `ld_imm64`s name `maps` by index.
    pub insns: Vec<u8>,
    /// Program type.
    pub prog_type: ProgType,
    /// `expected_attach_type`, when the loader knows it.
    pub attach: Option<u32>,
    /// The maps.
    pub maps: Vec<MapInfo>,
    /// License string.
    pub license: String,
    /// The kernel's types (target BTF) for loads through BTF pointers.
    pub kernel_btf: Option<bpfvm::loader::Btf>,
}

impl Case {
    /// A case with no maps, GPL license, and no attach type.
    pub fn new(name: impl Into<String>, prog_type: ProgType, insns: Vec<u8>) -> Case {
        Case {
            name: name.into(),
            insns,
            prog_type,
            attach: None,
            maps: Vec::new(),
            license: "GPL".into(),
            kernel_btf: None,
        }
    }

    /// Adds a map.
    pub fn with_map(mut self, m: MapInfo) -> Case {
        self.maps.push(m);
        self
    }

    /// bpfvm's verdict.
    pub fn ours(&self, privilege: Privilege) -> Result<Verdict, VerifierError> {
        let insns: Vec<Insn> = self
            .insns
            .chunks_exact(8)
            .map(|c| Insn::from_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let prog = Program {
            insns: &insns,
            prog_type: self.prog_type,
            expected_attach_type: self.attach,
            maps: &self.maps,
            gpl_compatible: matches!(
                self.license.as_str(),
                "GPL"
                    | "GPL v2"
                    | "GPL and additional rights"
                    | "Dual BSD/GPL"
                    | "Dual MIT/GPL"
                    | "Dual MPL/GPL"
            ),
            // The kernel side loads with BTF function info only when the program takes a
            // function's address (`kernel::verdict`), as it must.
            func_info: self
                .insns
                .chunks_exact(8)
                .any(|c| c[0] == 0x18 && c[1] >> 4 == 4),
            kfuncs: &[],
            btf: self
                .kernel_btf
                .as_ref()
                .map(|b| b as &dyn bpfvm_verifier::KernelBtf),
        };
        bpfvm_verifier::verify(
            &prog,
            &Options {
                privilege,
                nr_cpus: possible_cpus(),
                collect_facts: false,
            },
        )
    }
}

/// The kernel's `nr_cpu_ids` on Linux (for `bpf_get_smp_processor_id`'s range), 1
/// elsewhere.
pub fn possible_cpus() -> u32 {
    #[cfg(target_os = "linux")]
    {
        crate::kernel::possible_cpus().unwrap_or(1)
    }
    #[cfg(not(target_os = "linux"))]
    {
        1
    }
}

/// Both verdicts on one case.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The case's name.
    pub name: String,
    /// The kernel's errno (`None`: loaded).
    pub kernel_errno: Option<i32>,
    /// The kernel's messages.
    pub kernel_messages: Vec<String>,
    /// Instructions the kernel's verifier processed ("processed N insns"), when its log
    /// says.
    pub kernel_processed: Option<u64>,
    /// bpfvm's result.
    pub ours: Result<Verdict, VerifierError>,
}

impl Comparison {
    /// Both accept or both refuse.
    pub fn same_verdict(&self) -> bool {
        self.kernel_errno.is_none() == self.ours.is_ok()
    }

    /// Both refuse, with the same errno.
    pub fn same_errno(&self) -> bool {
        match (&self.ours, self.kernel_errno) {
            (Err(e), Some(k)) => e.errno == k,
            (Ok(_), None) => true,
            _ => false,
        }
    }

    /// Both refuse and every line of bpfvm's message is one of the kernel's log lines. A
    /// kernel message printed without its newline (`"expected prog array map for tail
    /// call"`) runs into the log's closing `verification time` line: it counts as the
    /// line it is.
    pub fn same_message(&self) -> bool {
        let same = |k: &str, l: &str| {
            k == l
                || k.strip_prefix(l)
                    .is_some_and(|rest| rest.starts_with("verification time "))
        };
        match &self.ours {
            Err(e) => {
                self.kernel_errno.is_some()
                    && e.message
                        .lines()
                        .all(|l| self.kernel_messages.iter().any(|k| same(k, l)))
            }
            Ok(_) => self.kernel_errno.is_none(),
        }
    }

    /// What differs from the kernel, if anything: the verdict or errno, else the message
    /// (bpfvm's must be a line of the kernel's log).
    pub fn disagreement(&self) -> Option<String> {
        if !self.same_verdict() || !self.same_errno() {
            Some(format!("verdicts differ: {}", self.describe()))
        } else if !self.same_message() {
            Some(format!(
                "messages differ: {}\n    kernel log: {:?}",
                self.describe(),
                self.kernel_messages
            ))
        } else {
            None
        }
    }

    /// One line for reports.
    pub fn describe(&self) -> String {
        let kernel = match self.kernel_errno {
            None => "accepted".to_string(),
            Some(e) => format!(
                "refused (errno {e}): {}",
                self.kernel_messages.last().cloned().unwrap_or_default()
            ),
        };
        let ours = match &self.ours {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!(
                "refused (errno {}): {}",
                e.errno,
                e.message.replace('\n', " / ")
            ),
        };
        format!("{}: kernel {kernel}; bpfvm {ours}", self.name)
    }
}

/// Judges `case` with both verifiers (Linux; needs the kernel oracle).
#[cfg(target_os = "linux")]
pub fn compare(case: &Case, privilege: Privilege) -> Result<Comparison, String> {
    use crate::kernel::{kernel_verdict, LoaderPrivilege, VerdictMap};
    let maps: Vec<VerdictMap> = case.maps.iter().map(verdict_map).collect();
    let lp = match privilege {
        Privilege::Root => LoaderPrivilege::Root,
        Privilege::CapBpfNetAdmin => LoaderPrivilege::CapBpf,
    };
    let k = kernel_verdict(
        &case.insns,
        case.prog_type.number(),
        case.attach.unwrap_or(0),
        &maps,
        &case.license,
        lp,
    )?;
    Ok(Comparison {
        name: case.name.clone(),
        kernel_errno: k.errno,
        kernel_messages: k.messages().into_iter().map(str::to_owned).collect(),
        kernel_processed: k.processed(),
        ours: case.ours(privilege),
    })
}

/// How the kernel oracle creates a map the verifier knows as `m` (its inner template
/// too).
#[cfg(target_os = "linux")]
pub fn verdict_map(m: &MapInfo) -> crate::kernel::VerdictMap {
    crate::kernel::VerdictMap {
        map_type: m.map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        map_flags: m.map_flags,
        initial: m.frozen_value.clone(),
        frozen: m.frozen_value.is_some(),
        inner: m.inner.as_deref().map(|t| Box::new(verdict_map(t))),
        spin_lock: m.spin_lock().map(|f| f.offset),
        timer: m
            .fields
            .iter()
            .find(|f| f.kind == bpfvm_verifier::FieldKind::Timer)
            .map(|f| f.offset),
    }
}

/// The verifier's program type for bpfvm's, `None` for raw-context programs.
pub fn prog_type_of(t: bpfvm::ProgramType) -> Option<ProgType> {
    use bpfvm::ProgramType as P;
    Some(match t {
        P::SocketFilter => ProgType::SocketFilter,
        P::Kprobe => ProgType::Kprobe,
        P::SchedCls => ProgType::SchedCls,
        P::SchedAct => ProgType::SchedAct,
        P::Tracepoint => ProgType::Tracepoint,
        P::Xdp => ProgType::Xdp,
        P::CgroupSkb => ProgType::CgroupSkb,
        P::PerfEvent => ProgType::PerfEvent,
        P::RawTracepoint => ProgType::RawTracepoint,
        P::Syscall => ProgType::Syscall,
        _ => return None,
    })
}

/// Whether a program takes a function's address (`ld_imm64` with `src_reg` 4, the
/// callbacks of `bpf_loop` and `bpf_for_each_map_elem`): the kernel loads such a program
/// only with the object's BTF function info ("missing btf func_info"), which
/// [`compare`]'s loader does not give. `conformance/tests/kernel_callbacks.rs` compares
/// them with the kernel through bpftool (libbpf) instead.
pub fn takes_function_address(insns: &[u64]) -> bool {
    insns
        .iter()
        .any(|&w| w as u8 == 0x18 && (w >> 12) & 0xf == u64::from(bpfvm::loader::PSEUDO_FUNC))
}

/// One [`Case`] per program of an object file (programs of raw-context sections, which
/// the kernel has no type for, are left out; so are programs that call kfuncs — their
/// instructions are the kernel's only after libbpf's relocation against the running
/// kernel's BTF, which `conformance/tests/kernel_kfuncs.rs` does — and programs that take a
/// function's address ([`takes_function_address`]), which the kernel loads only with BTF
/// function info, tested by `kernel_callbacks`; and programs using a map left at
/// `max_entries` 0 for a loader to size). Fails with the loader's message.
pub fn cases_from_object(name: &str, bytes: &[u8]) -> Result<Vec<Case>, String> {
    let obj = bpfvm::loader::Object::parse_named(name, bytes).map_err(|e| e.to_string())?;
    Ok(cases_of(&obj, name))
}

/// [`cases_from_object`] for an object already parsed (e.g. one whose maps that could not
/// be created were left out, their references poisoned: `Object::create_maps_per_map`).
pub fn cases_of(obj: &bpfvm::loader::Object, name: &str) -> Vec<Case> {
    let license = obj.license().unwrap_or("").to_owned();
    let mut out = Vec::new();
    for def in obj.programs() {
        let Some(pt) = prog_type_of(def.program_type) else {
            continue;
        };
        if !def.kfuncs.is_empty() || takes_function_address(&def.insns) {
            continue;
        }
        // A map left at max_entries 0 for its tool's loader to size (not a perf event
        // array, which libbpf sizes, nor cgroup storage, which has no max_entries): neither side can create it, so no verdict to compare.
        if def.maps.iter().any(|&i| {
            let m = &obj.maps()[i];
            m.max_entries == 0
                && m.map_type != bpfvm_verifier::map_type::PERF_EVENT_ARRAY
                && m.map_type != bpfvm_verifier::map_type::CGROUP_STORAGE
                && m.map_type != bpfvm_verifier::map_type::PERCPU_CGROUP_STORAGE
        }) {
            continue;
        }
        let maps = def
            .maps
            .iter()
            .map(|&i| {
                let m = &obj.maps()[i];
                let rdonly = m.map_flags & bpfvm_verifier::BPF_F_RDONLY_PROG != 0;
                MapInfo {
                    name: m.name.to_string(),
                    map_type: m.map_type,
                    key_size: m.key_size,
                    value_size: m.value_size,
                    // libbpf sizes a perf event array without max_entries to the CPUs.
                    max_entries: if m.max_entries == 0
                        && m.map_type == bpfvm_verifier::map_type::PERF_EVENT_ARRAY
                    {
                        possible_cpus()
                    } else {
                        m.max_entries
                    },
                    map_flags: m.map_flags,
                    frozen_value: if m.frozen && rdonly {
                        m.initial_data.clone().map(|mut d| {
                            d.resize(m.value_size as usize, 0);
                            d
                        })
                    } else {
                        None
                    },
                    fields: obj
                        .spin_lock_offset(m)
                        .map(|offset| bpfvm_verifier::SpecialField {
                            kind: bpfvm_verifier::FieldKind::SpinLock,
                            offset,
                            size: 4,
                        })
                        .into_iter()
                        .chain(timer_field(m))
                        .collect(),
                    btf: m.value_type_id.is_some(),
                    inner: m.inner.as_deref().map(|t| {
                        let mut i =
                            MapInfo::new(t.map_type, t.key_size, t.value_size, t.max_entries);
                        i.map_flags = t.map_flags;
                        i.fields = timer_field(t).into_iter().collect();
                        i.btf = !i.fields.is_empty();
                        Box::new(i)
                    }),
                }
            })
            .collect();
        let attach = (pt == ProgType::CgroupSkb).then(|| {
            if def.section.ends_with("egress") {
                bpfvm_verifier::BPF_CGROUP_INET_EGRESS
            } else {
                bpfvm_verifier::BPF_CGROUP_INET_INGRESS
            }
        });
        out.push(Case {
            name: format!("{name}/{}", def.name),
            insns: def.bytecode(),
            prog_type: pt,
            attach,
            maps,
            license: license.clone(),
            kernel_btf: None,
        });
    }
    out
}

/// The `struct bpf_timer` field of a map the loader found one in (its BTF).
fn timer_field(m: &bpfvm::loader::MapDefinition) -> Option<bpfvm_verifier::SpecialField> {
    m.timer_offset.map(|offset| bpfvm_verifier::SpecialField {
        kind: bpfvm_verifier::FieldKind::Timer,
        offset,
        size: 16,
    })
}

/// Assembles a program for a [`Case`]: one instruction a line in rbpf's assembler syntax,
/// plus `ldmap rN, I` for the pseudo `ld_imm64` that loads map `I` of the case,
/// `ldimm64 rN, V` for a 64-bit constant and `may_goto +N`. Panics on a line it cannot assemble (test input).
pub fn asm(src: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in src.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let ld = |rest: &str, src_reg: u8| -> Vec<u8> {
            let mut it = rest.split(',').map(str::trim);
            let reg: u8 = it
                .next()
                .and_then(|r| r.trim_start_matches('r').parse().ok())
                .unwrap_or_else(|| panic!("{line}: register"));
            let v: i64 = it
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{line}: value"));
            let mut b = vec![0x18, reg | (src_reg << 4), 0, 0];
            b.extend((v as i32).to_le_bytes());
            b.extend([0, 0, 0, 0]);
            b.extend(((v >> 32) as i32).to_le_bytes());
            b
        };
        if let Some(rest) = line.strip_prefix("may_goto ") {
            let off: i16 = rest
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{line}: offset"));
            out.extend([0xe5, 0]);
            out.extend(off.to_le_bytes());
            out.extend([0; 4]);
        } else if let Some(rest) = line.strip_prefix("ldmap ") {
            out.extend(ld(rest, 1));
        } else if let Some(rest) = line.strip_prefix("ldimm64 ") {
            out.extend(ld(rest, 0));
        } else {
            out.extend(rbpf::assembler::assemble(line).unwrap_or_else(|e| panic!("{line}: {e}")));
        }
    }
    out
}
