//! CO-RE ("compile once, run everywhere") relocations: the `.BTF.ext` records clang
//! emits for `BPF_CORE_READ`, `bpf_core_field_exists`, `bpf_core_type_size`, ..., resolved
//! against a *target* BTF with libbpf's rules (`tools/lib/bpf/relo_core.c`) and written
//! into the instructions before linking.
//!
//! - Candidates: the target types with the local type's name minus any `___flavor`
//!   suffix and a compatible kind; every matching candidate must give the same result
//!   (else the object is refused as ambiguous).
//! - Target: a BTF the user gives (`/sys/kernel/btf/vmlinux`, or any `.BTF`), and for the
//!   [ABI types](ABI_TYPES) (`__sk_buff`, `xdp_md`, protocol headers, ...) the program's
//!   own definitions when the given BTF lacks them or none is given.
//! - A relocation that cannot be resolved poisons its instruction with libbpf's
//!   `call 0xbad2310` ([`CORE_POISON_HELPER`]): loading succeeds, a run that reaches it
//!   fails naming the relocation ([`CorePoison`]).
//!
//! Work is bounded: one pass over the target's types finds every candidate the object
//! needs, and each relocation's matching takes at most a fixed number of steps.

mod abi;
mod calc;
mod compat;
mod kind;
mod patch;
mod spec;
#[cfg(test)]
mod tests;
mod types;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use super::btf::{Btf, BtfType};
use super::error::LoadError;
use super::limits::MAX_CORE_STEPS;
use super::strtab::SharedStr;
use calc::{enum_value, field_value, spec_match, type_value, Calc};
pub(crate) use patch::patch;
use patch::Resolved;
use spec::Spec;
use types::{essential, kind_name, kinds_compat, name, Budget};

pub use abi::{is_abi_type, ABI_TYPES};
pub use kind::CoreRelocKind;
pub use patch::CORE_POISON_HELPER;

/// Steps all the relocations of an object may take together: this base ...
const CORE_STEPS_BASE: u64 = 1 << 22;
/// ... plus this many per relocation (each one at most `MAX_CORE_STEPS`).
const CORE_STEPS_PER_RELOCATION: u64 = 1 << 10;

/// One CO-RE relocation record of `.BTF.ext` (`struct bpf_core_relo`).
#[derive(Debug, Clone)]
pub(crate) struct CoreRelo {
    /// Instruction index in its section.
    pub(crate) insn: usize,
    /// The local root type.
    pub(crate) type_id: u32,
    /// The access string (`0:1:2`).
    pub(crate) access: SharedStr,
    /// Raw `bpf_core_relo_kind`.
    pub(crate) kind: u32,
}

/// A CO-RE relocation that could not be resolved against the target: its instruction is
/// libbpf's poison call ([`CORE_POISON_HELPER`]), which fails the run that reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorePoison {
    /// Index of the relocation among its section's (libbpf's `relo #N`).
    pub index: usize,
    /// The section of the instruction.
    pub section: SharedStr,
    /// Instruction index inside that section.
    pub insn: usize,
    /// What was asked.
    pub kind: CoreRelocKind,
    /// The local access in libbpf's format (`[12] struct task_struct.pid (0:73 @ offset 2464)`).
    pub access: String,
    /// Why it could not be resolved.
    pub reason: String,
}

impl fmt::Display for CorePoison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CO-RE relocation #{} <{}> {} (section {}, instruction {}) could not be resolved: {}",
            self.index, self.kind, self.access, self.section, self.insn, self.reason
        )
    }
}

/// What CO-RE does to one code section.
#[derive(Debug, Default)]
pub(crate) struct SectionCore {
    /// `(instruction index, new instruction word)`.
    pub(crate) patches: Vec<(usize, u64)>,
    /// Poisoned instructions, sorted by index.
    pub(crate) poisons: Vec<(usize, Arc<CorePoison>)>,
}

/// Where a candidate lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Target,
    Local,
}

/// Candidate target types by local root type.
struct Candidates<'b> {
    local: &'b Btf,
    target: Option<&'b Btf>,
    /// Target types by flavor-less name (only names some relocation needs).
    in_target: HashMap<&'b str, Vec<u32>>,
    /// The program's own unflavored ABI types by name.
    abi: HashMap<&'b str, Vec<u32>>,
}

impl<'b> Candidates<'b> {
    /// One pass over each BTF, keeping the names in `needed`.
    fn new(local: &'b Btf, target: Option<&'b Btf>, needed: &HashSet<&str>) -> Self {
        let mut in_target: HashMap<&str, Vec<u32>> = HashMap::new();
        if let Some(t) = target {
            for (id, ty) in t.types().iter().enumerate().skip(1) {
                let n = name(ty);
                if !n.is_empty() && needed.contains(essential(n)) {
                    in_target.entry(essential(n)).or_default().push(id as u32);
                }
            }
        }
        let mut abi: HashMap<&str, Vec<u32>> = HashMap::new();
        for (id, ty) in local.types().iter().enumerate().skip(1) {
            let n = name(ty);
            if needed.contains(n) && is_abi_type(n) {
                abi.entry(n).or_default().push(id as u32);
            }
        }
        Self {
            local,
            target,
            in_target,
            abi,
        }
    }

    /// The candidates for local type `lt` (named `lname`), or an error saying why there
    /// is no target to look in.
    fn of(&self, lt: &BtfType, lname: &str) -> Result<(Side, Vec<u32>), String> {
        let ess = essential(lname);
        let filter = |btf: &Btf, ids: Option<&Vec<u32>>| -> Vec<u32> {
            ids.map(|ids| {
                ids.iter()
                    .copied()
                    .filter(|&id| btf.get(id).is_some_and(|t| kinds_compat(t, lt)))
                    .collect()
            })
            .unwrap_or_default()
        };
        if let Some(target) = self.target {
            let c = filter(target, self.in_target.get(ess));
            if !c.is_empty() || !is_abi_type(ess) {
                return Ok((Side::Target, c));
            }
        }
        if is_abi_type(ess) {
            return Ok((Side::Local, filter(self.local, self.abi.get(ess))));
        }
        Err(format!(
            "{} {lname} is not an ABI type and no target BTF was given (the kernel's is \
             /sys/kernel/btf/vmlinux: bpfvm run --btf FILE, Object::parse_with_btf)",
            kind_name(lt)
        ))
    }
}

/// The local and target values of `kind` (libbpf's `bpf_core_calc_relo`); `targ` is
/// `None` when no candidate matched.
fn calc(
    local: &Btf,
    lspec: &Spec,
    kind: CoreRelocKind,
    targ: Option<(&Btf, &Spec)>,
) -> Result<Resolved, String> {
    let mut res = Resolved {
        validate: true,
        ..Resolved::default()
    };
    let tbtf = targ.map_or(local, |t| t.0);
    let tspec = targ.map(|t| t.1);
    let missing = "no candidate in the target has it";
    if kind.is_field() {
        let Calc::Value(l) = field_value(local, kind, Some(lspec), &mut res.validate)? else {
            return Err("the program's own BTF does not resolve it".into());
        };
        let Calc::Value(t) = field_value(tbtf, kind, tspec, &mut false)? else {
            res.poison = Some(missing.into());
            return Ok(res);
        };
        (res.orig_val, res.orig_sz, res.new_val, res.new_sz) =
            (l.val, l.mem_size, t.val, t.mem_size);
        if res.orig_sz != res.new_sz {
            let lt = local.get(l.type_id);
            let tt = tbtf.get(t.type_id);
            let ok = match (lt, tt) {
                (Some(BtfType::Ptr { .. }), Some(BtfType::Ptr { .. })) => true,
                (Some(BtfType::Int { signed: a, .. }), Some(BtfType::Int { signed: b, .. })) => {
                    !a && !b
                }
                _ => false,
            };
            res.fail_memsz_adjust = !ok;
        }
    } else if kind.is_type() {
        res.orig_val = type_value(local, kind, Some(lspec))?;
        res.validate = kind != CoreRelocKind::TypeIdTarget;
        res.new_val = type_value(tbtf, kind, tspec)?;
    } else {
        let Calc::Value(l) = enum_value(local, kind, Some(lspec))? else {
            return Err("the program's own BTF does not resolve it".into());
        };
        res.orig_val = l.val;
        match enum_value(tbtf, kind, tspec)? {
            Calc::Value(t) => res.new_val = t.val,
            Calc::Poison => res.poison = Some(missing.into()),
        }
    }
    Ok(res)
}

/// Resolve one relocation: the patch to apply and the local access for messages.
fn resolve(
    cands: &Candidates<'_>,
    relo: &CoreRelo,
    kind: CoreRelocKind,
    budget: &mut Budget,
) -> Result<(Resolved, String), (String, String)> {
    let local = cands.local;
    let root = relo.type_id;
    let lspec = spec::parse(local, root, &relo.access, kind).map_err(|e| {
        (
            format!("[{root}] {} + {}", local.type_name(root), relo.access),
            e,
        )
    })?;
    let desc = spec::format(local, &lspec, kind);
    let fail = |e: String| (desc.clone(), e);
    if kind == CoreRelocKind::TypeIdLocal {
        let res = Resolved {
            orig_val: u64::from(root),
            new_val: u64::from(root),
            ..Resolved::default()
        };
        return Ok((res, desc));
    }
    let lt = local
        .get(root)
        .ok_or_else(|| fail(format!("no type {root}")))?;
    let lname = name(lt);
    if lname.is_empty() {
        return Err(fail(
            "relocations on anonymous types are not supported (libbpf refuses them too)".into(),
        ));
    }
    let (side, ids) = match cands.of(lt, lname) {
        Ok(c) => c,
        Err(reason) => {
            let res = Resolved {
                poison: Some(reason),
                ..Resolved::default()
            };
            return Ok((res, desc));
        }
    };
    let tbtf = match side {
        Side::Target => cands.target.unwrap_or(local),
        Side::Local => local,
    };
    let mut best: Option<(Resolved, Spec, u32)> = None;
    for id in ids {
        budget.step().map_err(fail)?;
        let Some(tspec) = spec_match(local, &lspec, kind, tbtf, id, budget).map_err(fail)? else {
            continue;
        };
        let res = calc(local, &lspec, kind, Some((tbtf, &tspec))).map_err(fail)?;
        match &best {
            None => best = Some((res, tspec, id)),
            Some((b, bspec, bid)) => {
                if bspec.bit_offset != tspec.bit_offset {
                    return Err(fail(format!(
                        "ambiguous: candidates [{bid}] and [{id}] put the field at bit offsets \
                         {} and {}",
                        bspec.bit_offset, tspec.bit_offset
                    )));
                }
                if b.poison.is_some() != res.poison.is_some() || b.new_val != res.new_val {
                    return Err(fail(format!(
                        "ambiguous: candidates [{bid}] and [{id}] give {} and {}",
                        b.new_val, res.new_val
                    )));
                }
            }
        }
    }
    let res = match best {
        Some((res, _, _)) => res,
        None => {
            let mut res = calc(local, &lspec, kind, None).map_err(fail)?;
            if res.poison.is_some() {
                let where_ = match side {
                    Side::Target => "the target BTF",
                    Side::Local => "the program's own ABI types",
                };
                res.poison = Some(format!(
                    "no {} {} in {where_} has it",
                    kind_name(lt),
                    essential(lname)
                ));
            }
            res
        }
    };
    Ok((res, desc))
}

/// Apply every CO-RE relocation of `relos` (by section name) to the code in
/// `section_data`, resolving against `target` (and the program's own ABI types).
pub(crate) fn relocate<'d>(
    relos: &[(SharedStr, Vec<CoreRelo>)],
    local: &Btf,
    target: Option<&Btf>,
    section_data: impl Fn(&str) -> Option<&'d [u8]>,
) -> Result<HashMap<SharedStr, SectionCore>, LoadError> {
    let mut needed = HashSet::new();
    for (_, rs) in relos {
        for r in rs {
            if let Some(t) = local.get(r.type_id) {
                needed.insert(essential(name(t)));
            }
        }
    }
    let cands = Candidates::new(local, target, &needed);
    // Each relocation may take MAX_CORE_STEPS steps, all of them together a base plus a
    // few per relocation: work in proportion to the records, whatever the types.
    let count: usize = relos.iter().map(|(_, rs)| rs.len()).sum();
    let mut left =
        CORE_STEPS_BASE.saturating_add(CORE_STEPS_PER_RELOCATION.saturating_mul(count as u64));
    let mut out = HashMap::new();
    for (section, rs) in relos {
        if rs.is_empty() {
            continue;
        }
        let err = |insn: usize, relocation: String, reason: String| LoadError::CoreRelocation {
            section: section.to_string(),
            insn,
            relocation,
            reason,
        };
        let data = section_data(section).ok_or_else(|| {
            err(
                rs[0].insn,
                String::new(),
                format!("the object has no section {section}"),
            )
        })?;
        let mut insns: Vec<u64> = data
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let original = insns.clone();
        let mut poisons = Vec::new();
        for (index, relo) in rs.iter().enumerate() {
            let kind = CoreRelocKind::from_raw(relo.kind).ok_or_else(|| {
                err(
                    relo.insn,
                    format!("#{index}"),
                    format!("unknown relocation kind {}", relo.kind),
                )
            })?;
            let limit = left.min(MAX_CORE_STEPS);
            let mut budget = Budget(limit);
            let resolved = resolve(&cands, relo, kind, &mut budget);
            left -= limit - budget.0;
            let (res, desc) =
                resolved.map_err(|(d, e)| err(relo.insn, format!("#{index} <{kind}> {d}"), e))?;
            match patch(&mut insns, relo.insn, &res) {
                Ok(None) => {}
                Ok(Some(reason)) => poisons.push((
                    relo.insn,
                    Arc::new(CorePoison {
                        index,
                        section: section.clone(),
                        insn: relo.insn,
                        kind,
                        access: desc,
                        reason,
                    }),
                )),
                Err(e) => return Err(err(relo.insn, format!("#{index} <{kind}> {desc}"), e)),
            }
        }
        poisons.sort_by_key(|(i, _)| *i);
        let patches = insns
            .iter()
            .zip(&original)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, _))| (i, *a))
            .collect();
        out.insert(section.clone(), SectionCore { patches, poisons });
    }
    Ok(out)
}
