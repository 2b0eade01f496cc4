//! Programs on which bpfvm's verifier once gave another verdict than the kernel's (issue
//! 15's list), each in a form the kernel refuses and one it accepts:
//!
//! - partial spills: a 1..4-byte spill of a register marks only its own bytes as spilled;
//!   an 8-byte read over it (a helper's buffer or a plain load) reads the bytes above it,
//!   uninitialised unless written (refused without CAP_PERFMON);
//! - `void` subprograms: a static subprogram may `exit` with `r0` unset; the kernel refuses
//!   only where the caller reads `r0` ("R0 !read_ok");
//! - a packet pointer compared beyond `data_end` and then moved (the mark must go);
//! - 32-bit comparisons of pointers (a NULL test as `if w0 == 0`);
//! - Spectre v4: speculative paths end after a store the kernel puts a barrier after;
//! - `may_goto` loops whose counter a narrower store into its stack slot destroys: the
//!   walk must end as soon as the kernel's (a 1M-instruction walk before);
//! - pointer arithmetic on packet pointers with a variable scalar without CAP_PERFMON.
//!
//! `divergence_cases_get_their_verdict_offline` checks bpfvm's verdicts on every platform;
//! `divergence_cases_match_the_kernel` compares them with the kernel's (Linux, as root), both
//! through the verifier alone and, for cases without maps, through `Vm::load` (which runs
//! bpfvm's structural checks first).

use bpfvm_conformance::rule_cases::{fix_local_calls, Expect, BOTH};
use bpfvm_conformance::verdicts::{asm, Case};
use bpfvm_verifier::{MapInfo, ProgType};

fn hash(value_size: u32) -> MapInfo {
    MapInfo::new(bpfvm_verifier::map_type::HASH, 4, value_size, 16)
}

/// `bpf_map_update_elem(map 0, fp-4, fp-16, 0)` with the key written at fp-4: the value is
/// read as 8 bytes from fp-16.
const UPDATE_FP16: &str = "
    stw [r10-4], 0
    ldmap r1, 0
    mov64 r2, r10
    add64 r2, -4
    mov64 r3, r10
    add64 r3, -16
    mov64 r4, 0
    call 2
    mov64 r0, 2
    exit
";

/// The cases: (case, what the kernel does with it).
fn cases() -> Vec<(Case, Expect)> {
    let mut v = Vec::new();
    let mut add = |name: &str, pt: ProgType, maps: &[MapInfo], src: &str, e: Expect| {
        let mut c = Case::new(name, pt, asm(src));
        c.maps = maps.to_vec();
        fix_local_calls(&mut c.insns);
        v.push((c, e));
    };
    use Expect::*;
    use ProgType::Xdp;
    // Partial spills read by a helper: the 4-byte spill of a zero at fp-16 leaves fp-12..-9
    // uninitialised ("invalid read from stack R3 off -16+4 size 8").
    add(
        "spill4_zero_helper_read8",
        Xdp,
        &[hash(8)],
        &format!("mov32 r7, 0\nstxw [r10-16], r7\n{UPDATE_FP16}"),
        RootOnly,
    );
    add(
        "spill4_zero_then_misc_helper_read8",
        Xdp,
        &[hash(8)],
        &format!("mov32 r7, 0\nstxw [r10-16], r7\nstw [r10-12], 1\n{UPDATE_FP16}"),
        Accepted,
    );
    add(
        "spill4_zero_then_zero_helper_read8",
        Xdp,
        &[hash(8)],
        &format!("mov32 r7, 0\nstxw [r10-16], r7\nstw [r10-12], 0\n{UPDATE_FP16}"),
        Accepted,
    );
    add(
        "spill4_over_spill8_helper_read8",
        Xdp,
        &[hash(8)],
        &format!("stdw [r10-16], 1\nmov32 r7, 0\nstxw [r10-16], r7\n{UPDATE_FP16}"),
        Accepted,
    );
    add(
        "spill2_zero_key_read4",
        Xdp,
        &[hash(8)],
        "mov32 r7, 0\nstxh [r10-8], r7\nldmap r1, 0\nmov64 r2, r10\nadd64 r2, -8\ncall 1\nmov64 r0, 2\nexit",
        RootOnly,
    );
    add(
        "spilled_ctx_helper_read8",
        Xdp,
        &[hash(8)],
        &format!("stxdw [r10-16], r1\n{UPDATE_FP16}"),
        RootOnly,
    );
    // Partial spills read by a plain load.
    add(
        "spill4_zero_load8",
        Xdp,
        &[],
        "mov32 r7, 0\nstxw [r10-16], r7\nldxdw r0, [r10-16]\nmov64 r0, 2\nexit",
        RootOnly,
    );
    add(
        "spill4_zero_load4_above",
        Xdp,
        &[],
        "mov32 r7, 0\nstxw [r10-16], r7\nldxw r0, [r10-12]\nmov64 r0, 2\nexit",
        RootOnly,
    );
    add(
        "spill4_unknown_over_spill8_load8",
        Xdp,
        &[],
        "stdw [r10-16], 1\nldxw r7, [r1+16]\nstxw [r10-16], r7\nldxdw r0, [r10-16]\nmov64 r0, 2\nexit",
        Accepted,
    );
    // A void subprogram (sets r0 on one path only) and its callers.
    const VOID_CALLEE: &str = "ldxw r2, [r1+16]\njeq r2, 0, +1\nmov64 r0, 1\nexit";
    add(
        "void_subprog_r0_unused",
        Xdp,
        &[],
        &format!("call -1\nmov64 r0, 2\nexit\n{VOID_CALLEE}"),
        Accepted,
    );
    add(
        "void_subprog_r0_returned",
        Xdp,
        &[],
        &format!("call -1\nexit\n{VOID_CALLEE}"),
        Refused,
    );
    add(
        "void_subprog_r0_copied",
        Xdp,
        &[],
        &format!("call -1\nmov64 r6, r0\nmov64 r0, 2\nexit\n{VOID_CALLEE}"),
        Refused,
    );
    add(
        "empty_subprog_r0_unused",
        Xdp,
        &[],
        "mov64 r6, 1\ncall -1\nmov64 r0, r6\nexit\nexit",
        Accepted,
    );
    add(
        "nested_void_subprog_r0_returned",
        Xdp,
        &[],
        "call -1\nexit\ncall -1\nexit\nexit",
        Refused,
    );
    // Pointer arithmetic with a register (BPF_X) without CAP_PERFMON: only stack and
    // map value pointers have a Spectre v1 limit (`retrieve_ptr_limit`); a packet pointer
    // plus a register is refused even when the register is a known constant ("R4 has
    // pointer with unsupported alu operation, ..."); with an immediate it is not sanitized.
    // XDP: r2 = data, r3 = data_end, 64 bytes checked; r4 = data and r5 an offset in
    // [0, 15] read from the packet, then `op`, then a byte read at r4.
    let pkt = |op: &str| {
        let skip = 3 + op.lines().count() + 2;
        format!(
            "mov64 r0, 2\nldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov64 r4, r2\nadd64 r4, 64\n\
             jgt r4, r3, +{skip}\nldxb r5, [r2+0]\nand64 r5, 15\nmov64 r4, r2\n{op}\n\
             ldxb r0, [r4+0]\nmov64 r0, 2\nexit"
        )
    };
    // After a variable offset the pointer has a new id and no range: checked again.
    let recheck = |op: &str| pkt(&format!("{op}\nmov64 r6, r4\nadd64 r6, 1\njgt r6, r3, +1"));
    add("pkt_add_reg", Xdp, &[], &recheck("add64 r4, r5"), RootOnly);
    add(
        "pkt_sub_reg",
        Xdp,
        &[],
        &recheck("add64 r4, 16\nsub64 r4, r5"),
        Refused,
    );
    add(
        "reg_add_pkt",
        Xdp,
        &[],
        &recheck("mov64 r0, r4\nmov64 r4, r5\nadd64 r4, r0"),
        RootOnly,
    );
    add(
        "pkt_add_mixed_sign_reg",
        Xdp,
        &[],
        &recheck("add64 r5, -8\nadd64 r4, 8\nadd64 r4, r5"),
        Refused,
    );
    add(
        "mixed_sign_reg_add_pkt",
        Xdp,
        &[],
        &recheck("add64 r5, -8\nmov64 r0, r4\nadd64 r0, 8\nmov64 r4, r5\nadd64 r4, r0"),
        Refused,
    );
    add(
        "pkt_add_const_reg",
        Xdp,
        &[],
        &pkt("mov64 r5, 7\nadd64 r4, r5"),
        RootOnly,
    );
    add("pkt_add_imm", Xdp, &[], &pkt("add64 r4, 7"), Accepted);
    add(
        "stack_add_const_reg",
        Xdp,
        &[],
        "stdw [r10-16], 0\nmov64 r4, r10\nmov64 r5, -16\nadd64 r4, r5\nldxdw r0, [r4+0]\nmov64 r0, 2\nexit",
        Accepted,
    );
    // Spectre v4 without CAP_PERFMON: a store that spills a pointer or covers bytes that
    // are not plain data ends the speculative path after it (`nospec_result`). The branch
    // is always taken, so its fall-through is walked only speculatively: 300 more
    // instructions when the store does not end it (the processed counts are compared).
    let speculative_store = |setup: &str, store: &str| {
        format!(
            "{setup}\nmov64 r0, 0\njeq r0, 0, +301\n{store}\n{}mov64 r0, 2\nexit",
            "mov64 r2, 1\n".repeat(300)
        )
    };
    add(
        "spec_v4_pointer_spill",
        Xdp,
        &[],
        &speculative_store("", "stxdw [r10-8], r1"),
        Accepted,
    );
    add(
        "spec_v4_store_over_uninit",
        Xdp,
        &[],
        &speculative_store("", "stdw [r10-8], 1"),
        Accepted,
    );
    add(
        "spec_v4_store_over_data",
        Xdp,
        &[],
        &speculative_store("ldxw r7, [r1+16]\nstxw [r10-4], r7", "stxw [r10-4], r7"),
        Accepted,
    );
    // A 32-bit comparison of a pointer with 0 decides nothing and proves nothing: for a
    // CAP_BPF loader it is a pointer comparison ("R0 pointer comparison prohibited") even
    // where r0 cannot be NULL (a constant key of an array), for root both ways are walked
    // and an _or_null pointer stays one.
    const LOOKUP_KEY0: &str = "stw [r10-4], 0\nldmap r1, 0\nmov64 r2, r10\nadd64 r2, -4\ncall 1";
    let array = MapInfo::new(bpfvm_verifier::map_type::ARRAY, 4, 8, 1);
    let null_test =
        |jump: &str| format!("{LOOKUP_KEY0}\n{jump}\nldxdw r1, [r0+0]\nmov64 r0, 2\nexit");
    add(
        "null_test32_array_value",
        Xdp,
        std::slice::from_ref(&array),
        &null_test("jeq32 r0, 0, +1"),
        RootOnly,
    );
    add(
        "null_test64_array_value",
        Xdp,
        std::slice::from_ref(&array),
        &null_test("jeq r0, 0, +1"),
        Accepted,
    );
    add(
        "null_test32_hash_value",
        Xdp,
        &[hash(8)],
        &null_test("jeq32 r0, 0, +1"),
        Refused,
    );
    add(
        "null_test32_ne_array_value",
        Xdp,
        &[array],
        &null_test("jne32 r0, 0, +0"),
        RootOnly,
    );
    // A packet pointer found at or beyond data_end (the fall-through of `if p <= end`)
    // loses that mark when it moves: `p - 30` may be inside the packet again, so a
    // second comparison is walked both ways and the read after it needs its own range.
    let beyond_end = |between: &str| {
        format!(
            "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nadd64 r2, 34\njle r2, r3, +3\n{between}\n\
             jge r4, r3, +1\nldxb r0, [r4+100]\nmov64 r0, 2\nexit"
        )
    };
    add(
        "pkt_beyond_end_moved_back",
        Xdp,
        &[],
        &beyond_end("mov64 r4, r2\nsub64 r4, 30").replace("+3", "+4"),
        Refused,
    );
    add(
        "pkt_beyond_end_moved_by_zero",
        Xdp,
        &[],
        &beyond_end("mov64 r4, r2\nadd64 r4, 0").replace("+3", "+4"),
        Refused,
    );
    add(
        "pkt_beyond_end_copied",
        Xdp,
        &[],
        &beyond_end("mov64 r4, r2"),
        Accepted,
    );
    // A loop bounded only by may_goto whose counter is spilled and then destroyed by a
    // narrower store (the map key) into its slot: the counter decides nothing, so it is
    // widened and the loop's states converge after two iterations (the kernel processes
    // 45 instructions). The value read at fp-16 is never written: root only.
    let may_goto_counter = |value_slot: i32| {
        format!(
            "mov64 r1, 0\nmay_goto +2\nadd64 r1, 1\nja -3\nstxdw [r10{value_slot}], r1\n\
             mov32 r1, 2\nstxw [r10-4], r1\n{}",
            UPDATE_FP16.replace("stw [r10-4], 0", "")
        )
    };
    add(
        "may_goto_counter_spill_scrubbed",
        Xdp,
        &[hash(8)],
        &may_goto_counter(-8),
        RootOnly,
    );
    // The counter as a hash map's key: a hash key's value decides nothing (only a
    // constant key of an array does), so the counter is widened as in the kernel.
    add(
        "may_goto_counter_hash_key",
        Xdp,
        &[hash(8)],
        &format!(
            "mov64 r1, 0\nmay_goto +2\nadd64 r1, 1\nja -3\nstxw [r10-4], r1\nstdw [r10-16], 0\n{}",
            UPDATE_FP16.replace("stw [r10-4], 0", "")
        ),
        Accepted,
    );
    add(
        "may_goto_counter_spill_kept",
        Xdp,
        &[hash(8)],
        &may_goto_counter(-16),
        Accepted,
    );
    v
}

#[test]
fn divergence_cases_get_their_verdict_offline() {
    let wrong = bpfvm_conformance::rule_cases::offline_mismatches(&cases(), false);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[cfg(target_os = "linux")]
#[test]
fn divergence_cases_match_the_kernel() {
    use bpfvm::{PrepareError, Program, ProgramType, Vm};
    use bpfvm_conformance::kernel;
    use bpfvm_conformance::rule_cases::check;
    use bpfvm_conformance::verdicts::compare;

    if !kernel::oracle_or_skip() {
        return;
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for (case, expect) in cases() {
        compared += check(&case, expect, compare, &mut failures);
        // Where both accept, bpfvm's walk is about as long as the kernel's.
        for p in BOTH {
            let cmp = compare(&case, p).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            if let (Ok(v), None, Some(k)) = (&cmp.ours, cmp.kernel_errno, cmp.kernel_processed) {
                let exact = case.name.starts_with("spec_v4");
                if v.insns_processed > 2 * k + 64 || (exact && v.insns_processed != k) {
                    failures.push(format!(
                        "[{p:?}] {}: bpfvm processed {} instructions, the kernel {k}",
                        case.name, v.insns_processed
                    ));
                }
            }
        }
        if !case.maps.is_empty() {
            continue;
        }
        // Through Vm::load: bpfvm's structural checks, then the verifier.
        assert_eq!(case.prog_type, ProgType::Xdp);
        for p in BOTH {
            let vm = Vm::builder().privilege(p).build();
            let loaded = vm.load(Program::new(case.insns.clone(), ProgramType::Xdp));
            let want = expect.kernel_refuses(p);
            match &loaded {
                Err(PrepareError::Verifier { .. }) if want => {}
                Ok(_) if !want => {}
                other => failures.push(format!(
                    "[{p:?}] {}: Vm::load {:?}, the kernel {}",
                    case.name,
                    other.as_ref().map(|_| ()),
                    if want { "refuses" } else { "loads" }
                )),
            }
        }
    }
    println!("{compared} verdicts compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
