//! `bpf_spin_lock` / `bpf_spin_unlock` judged by bpfvm's verifier and by the kernel, on maps
//! created with BTF whose value holds a `struct bpf_spin_lock` (as libbpf creates them):
//! each rule in a refused and an accepted form, for a CAP_BPF loader and for root; the
//! verdicts and errnos agree and every line of bpfvm's message is a line of the kernel's
//! log.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel;
use bpfvm_conformance::verdicts::{asm, compare, Case};
use bpfvm_verifier::{map_type, FieldKind, MapInfo, Privilege, ProgType, SpecialField};

/// Offset of the lock in the 16-byte value `{ u64 counter; struct bpf_spin_lock lock; u32 pad; }`.
const LOCK_OFF: u32 = 8;

fn locked_map(map_type: u32) -> MapInfo {
    let mut m = MapInfo::new(map_type, 4, 16, 4);
    m.btf = true;
    m.fields.push(SpecialField {
        kind: FieldKind::SpinLock,
        offset: LOCK_OFF,
        size: 4,
    });
    m
}

/// `r0 = lookup(map 0, &key)`, key at fp-4.
fn lookup(key: i32) -> String {
    format!("stw [r10-4], {key}\nldmap r1, 0\nmov64 r2, r10\nadd64 r2, -4\ncall 1\n")
}

/// `r6 = lookup(map 0, &0)`, returning 0 when missing.
fn r6_value() -> String {
    format!(
        "{}jne r0, 0, +2\nmov64 r0, 0\nexit\nmov64 r6, r0\n",
        lookup(0)
    )
}

const LOCK_R6: &str = "mov64 r1, r6\nadd64 r1, 8\ncall 93\n";
const UNLOCK_R6: &str = "mov64 r1, r6\nadd64 r1, 8\ncall 94\n";
const INCREMENT_R6: &str = "ldxdw r7, [r6+0]\nadd64 r7, 1\nstxdw [r6+0], r7\n";
/// Refused for both loaders.
const REFUSED: (bool, bool) = (false, false);
/// Accepted for root only: without CAP_PERFMON the kernel's Spectre v1 check of
/// `r1 = value + 8` (`sanitize_ptr_alu`) counts an access to the lock word and refuses it,
/// so a lock that is not at offset 0 is out of reach of a CAP_BPF loader.
const ROOT_OK: (bool, bool) = (false, true);
/// Accepted for both.
const BOTH_OK: (bool, bool) = (true, true);
const RET0: &str = "mov64 r0, 0\nexit\n";

/// A bpf-to-bpf call `imm` instructions ahead (`call pc+imm`).
fn pseudo_call(imm: i32) -> Vec<u8> {
    let mut b = vec![0x85, 0x10, 0, 0];
    b.extend(imm.to_le_bytes());
    b
}

/// (case, whether the kernel accepts it for a CAP_BPF loader, for root).
fn cases() -> Vec<(Case, (bool, bool))> {
    let mut v = Vec::new();
    let mut add = |name: &str, maps: Vec<MapInfo>, insns: Vec<u8>, ok: (bool, bool)| {
        let mut c = Case::new(name, ProgType::SchedCls, insns);
        c.maps = maps;
        v.push((c, ok));
    };
    let hash = || vec![locked_map(map_type::HASH)];
    let body = |s: &str| asm(&format!("{}{s}", r6_value()));
    add(
        "lock_increment_unlock_ok",
        hash(),
        body(&format!("{LOCK_R6}{INCREMENT_R6}{UNLOCK_R6}{RET0}")),
        ROOT_OK,
    );
    add(
        "lock_in_array_ok",
        vec![locked_map(map_type::ARRAY)],
        body(&format!("{LOCK_R6}{INCREMENT_R6}{UNLOCK_R6}{RET0}")),
        ROOT_OK,
    );
    add(
        "unlock_through_a_copy_ok",
        hash(),
        body(&format!(
            "mov64 r8, r6\n{LOCK_R6}mov64 r1, r8\nadd64 r1, 8\ncall 94\n{RET0}"
        )),
        ROOT_OK,
    );
    add(
        "lock_not_null_checked_bad",
        hash(),
        asm(&format!(
            "{}mov64 r1, r0\nadd64 r1, 8\ncall 93\ncall 94\n{RET0}",
            lookup(0)
        )),
        REFUSED,
    );
    add(
        "lock_wrong_offset_bad",
        hash(),
        body(&format!(
            "mov64 r1, r6\nadd64 r1, 4\ncall 93\n{UNLOCK_R6}{RET0}"
        )),
        REFUSED,
    );
    add(
        "lock_variable_offset_bad",
        hash(),
        body(&format!(
            "ldxw r2, [r6+0]\nand64 r2, 8\nmov64 r1, r6\nadd64 r1, r2\ncall 93\n{UNLOCK_R6}{RET0}"
        )),
        REFUSED,
    );
    add(
        "lock_map_without_btf_bad",
        vec![MapInfo::new(map_type::HASH, 4, 16, 4)],
        body(&format!("{LOCK_R6}{UNLOCK_R6}{RET0}")),
        REFUSED,
    );
    add(
        "lock_stack_pointer_bad",
        hash(),
        asm(&format!(
            "stdw [r10-8], 0\nmov64 r1, r10\nadd64 r1, -8\ncall 93\n{RET0}"
        )),
        REFUSED,
    );
    add(
        "lock_twice_bad",
        hash(),
        body(&format!("{LOCK_R6}{LOCK_R6}{UNLOCK_R6}{RET0}")),
        REFUSED,
    );
    add(
        "unlock_without_lock_bad",
        hash(),
        body(&format!("{UNLOCK_R6}{RET0}")),
        REFUSED,
    );
    add(
        "unlock_different_lock_bad",
        hash(),
        asm(&format!(
            "{}jne r0, 0, +2\nmov64 r0, 0\nexit\nmov64 r6, r0\n{}jne r0, 0, +2\nmov64 r0, 0\nexit\nmov64 r8, r0\n\
             {LOCK_R6}mov64 r1, r8\nadd64 r1, 8\ncall 94\n{RET0}",
            lookup(0),
            lookup(1)
        )),
        REFUSED,
    );
    add(
        "helper_call_under_lock_bad",
        hash(),
        body(&format!("{LOCK_R6}call 7\n{UNLOCK_R6}{RET0}")),
        REFUSED,
    );
    add(
        "helper_call_after_unlock_ok",
        hash(),
        body(&format!("{LOCK_R6}{UNLOCK_R6}call 7\n{RET0}")),
        ROOT_OK,
    );
    add(
        "exit_with_lock_held_bad",
        hash(),
        body(&format!("{LOCK_R6}{RET0}")),
        REFUSED,
    );
    add(
        "lock_word_load_bad",
        hash(),
        body(&format!("{LOCK_R6}ldxw r7, [r6+8]\n{UNLOCK_R6}{RET0}")),
        REFUSED,
    );
    add(
        "lock_word_store_bad",
        hash(),
        body(&format!("stw [r6+8], 0\n{RET0}")),
        REFUSED,
    );
    add(
        // Both branches unlock: the join after them holds no lock.
        "unlock_on_both_branches_ok",
        hash(),
        body(&format!(
            "{LOCK_R6}ldxdw r7, [r6+0]\njeq r7, 0, +4\n{UNLOCK_R6}ja +3\n{UNLOCK_R6}{RET0}"
        )),
        ROOT_OK,
    );
    add(
        // One branch leaves the lock held.
        "unlock_on_one_branch_bad",
        hash(),
        body(&format!(
            "{LOCK_R6}ldxdw r7, [r6+0]\njeq r7, 0, +3\n{UNLOCK_R6}{RET0}"
        )),
        REFUSED,
    );
    // A static subprogram called with the lock held, and one that takes it and returns.
    let mut prog = asm(&format!("{}{LOCK_R6}", r6_value()));
    prog.extend(pseudo_call(5));
    prog.extend(asm(&format!("{UNLOCK_R6}{RET0}")));
    prog.extend(asm("mov64 r0, 0\nexit"));
    add("static_call_under_lock_ok", hash(), prog, ROOT_OK);
    let mut prog = asm(&r6_value());
    prog.extend(asm("mov64 r1, r6"));
    prog.extend(pseudo_call(5));
    prog.extend(asm(&format!("{UNLOCK_R6}{RET0}")));
    prog.extend(asm("add64 r1, 8\ncall 93\nmov64 r0, 0\nexit"));
    add("subprog_returns_holding_lock", hash(), prog, ROOT_OK);
    // The lock at offset 0: no pointer arithmetic, so CAP_BPF loaders may use it too.
    let mut at0 = locked_map(map_type::HASH);
    at0.fields[0].offset = 0;
    add(
        "lock_at_offset_0_ok",
        vec![at0.clone()],
        body("mov64 r1, r6\ncall 93\nldxdw r7, [r6+8]\nadd64 r7, 1\nstxdw [r6+8], r7\nmov64 r1, r6\ncall 94\nmov64 r0, 0\nexit"),
        BOTH_OK,
    );
    add(
        "lock_at_offset_0_exit_held_bad",
        vec![at0.clone()],
        body("mov64 r1, r6\ncall 93\nmov64 r0, 0\nexit"),
        REFUSED,
    );
    add(
        "lock_at_offset_0_helper_under_lock_bad",
        vec![at0.clone()],
        body("mov64 r1, r6\ncall 93\ncall 5\nmov64 r1, r6\ncall 94\nmov64 r0, 0\nexit"),
        REFUSED,
    );
    add(
        "lock_at_offset_0_not_null_checked_bad",
        vec![at0.clone()],
        asm(&format!("{}mov64 r1, r0\ncall 93\n{RET0}", lookup(0))),
        REFUSED,
    );
    add(
        "lock_at_offset_0_unlock_without_lock_bad",
        vec![at0],
        body("mov64 r1, r6\ncall 94\nmov64 r0, 0\nexit"),
        REFUSED,
    );
    v
}

#[test]
fn spin_lock_rules_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut failures = Vec::new();
    let mut n = 0;
    for (case, ok) in cases() {
        for p in [Privilege::CapBpfNetAdmin, Privilege::Root] {
            let cmp = compare(&case, p).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            n += 1;
            println!("[{p:?}] {}", cmp.describe());
            let expected = if p == Privilege::Root { ok.1 } else { ok.0 };
            if cmp.kernel_errno.is_none() != expected {
                failures.push(format!(
                    "[{p:?}] kernel verdict not the expected one: {}",
                    cmp.describe()
                ));
            }
            if let Some(d) = cmp.disagreement() {
                failures.push(format!("[{p:?}] {d}"));
            }
        }
    }
    println!("{n} verdicts compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
