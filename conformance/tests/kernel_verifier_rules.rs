//! One program for each verifier rule, in a form the kernel refuses and one it accepts,
//! judged by bpfvm's verifier and by the kernel for a loader with CAP_BPF + CAP_NET_ADMIN
//! and for root: the verdicts and errnos agree, and where the kernel refuses, bpfvm's
//! message is the kernel's (each of its lines is a line of the kernel's log).
//!
//! The C programs are in `fixtures/verifier/src` (names ending in `_bad` are refused by the
//! kernel for a CAP_BPF loader, `_ok` accepted for both loaders, `_root_ok` for root only);
//! the rest are assembled here.
#![cfg(target_os = "linux")]

use bpfvm_conformance::kernel;
use bpfvm_conformance::verdicts::{asm, cases_from_object, compare, Case, Comparison};
use bpfvm_verifier::{MapInfo, Privilege, ProgType};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/verifier");

const BOTH: [Privilege; 2] = [Privilege::CapBpfNetAdmin, Privilege::Root];

/// What the kernel does with a case, which the test checks before comparing (so that a
/// case that stopped testing its rule is noticed).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Refused for both loaders.
    Refused,
    /// Refused for the CAP_BPF loader, accepted for root.
    RootOnly,
    /// Accepted for both.
    Accepted,
    /// Refused for the CAP_BPF loader; accepted for root, where bpfvm's verifier refuses
    /// it as something it does not model (`Rule::Unsupported`, a documented difference).
    RootUnmodelled,
}

impl Expect {
    fn kernel_refuses(self, p: Privilege) -> bool {
        match self {
            Expect::Refused => true,
            Expect::RootOnly | Expect::RootUnmodelled => p == Privilege::CapBpfNetAdmin,
            Expect::Accepted => false,
        }
    }
}

fn check(case: &Case, expect: Expect, failures: &mut Vec<String>) -> usize {
    let mut n = 0;
    for p in BOTH {
        let cmp: Comparison = compare(case, p).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        n += 1;
        println!("[{p:?}] {}", cmp.describe());
        let kernel_refused = cmp.kernel_errno.is_some();
        if kernel_refused != expect.kernel_refuses(p) {
            failures.push(format!(
                "[{p:?}] {}: the kernel no longer gives the expected verdict ({expect:?}): {}",
                case.name,
                cmp.describe()
            ));
            continue;
        }
        if expect == Expect::RootUnmodelled && p == Privilege::Root {
            if !matches!(&cmp.ours, Err(e) if e.rule == bpfvm_verifier::Rule::Unsupported) {
                failures.push(format!(
                    "[{p:?}] not refused as unmodelled: {}",
                    cmp.describe()
                ));
            }
            continue;
        }
        if !cmp.same_verdict() || !cmp.same_errno() {
            failures.push(format!("[{p:?}] verdicts differ: {}", cmp.describe()));
        } else if kernel_refused && !cmp.kernel_messages.is_empty() && !cmp.same_message() {
            failures.push(format!(
                "[{p:?}] messages differ: {}\n    kernel log: {:?}",
                cmp.describe(),
                cmp.kernel_messages
            ));
        }
    }
    n
}

#[test]
fn rule_fixtures_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut objects: Vec<_> = std::fs::read_dir(FIXTURES)
        .expect("fixtures/verifier")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .collect();
    objects.sort();
    let mut failures = Vec::new();
    let (mut bad, mut ok, mut compared) = (0, 0, 0);
    for path in objects {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        let cases = cases_from_object(&name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        for case in &cases {
            let expect = if case.name.ends_with("_bad") {
                bad += 1;
                // Some rules spare root: the kernel refuses *_bad at least for the CAP_BPF
                // loader, and for root the two verifiers agree.
                match compare(case, Privilege::Root) {
                    Ok(c) if c.kernel_errno.is_none() => Expect::RootOnly,
                    _ => Expect::Refused,
                }
            } else if case.name.ends_with("_root_ok") {
                ok += 1;
                Expect::RootOnly
            } else if case.name.ends_with("_ok") {
                ok += 1;
                Expect::Accepted
            } else {
                panic!(
                    "{}: a rule program's name ends in _bad, _ok or _root_ok",
                    case.name
                )
            };
            compared += check(case, expect, &mut failures);
        }
    }
    println!("{compared} verdicts compared ({bad} refused and {ok} accepted programs)");
    assert!(
        bad >= 20 && ok >= 20,
        "{bad} refused and {ok} accepted programs"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn array(value_size: u32, max_entries: u32) -> MapInfo {
    MapInfo::new(bpfvm_verifier::map_type::ARRAY, 4, value_size, max_entries)
}

fn hash(value_size: u32) -> MapInfo {
    MapInfo::new(bpfvm_verifier::map_type::HASH, 4, value_size, 16)
}

/// Looks up key 0 of map 0 into r0 (the stack slot at fp-4 holds the key).
const LOOKUP: &str = "
    stw [r10-4], 0
    ldmap r1, 0
    mov64 r2, r10
    add64 r2, -4
    call 1
";

/// Assembled cases: (name, program type, maps, source, expectation).
fn assembled() -> Vec<(Case, Expect)> {
    let mut v = Vec::new();
    let mut add = |name: &str, pt: ProgType, maps: &[MapInfo], src: &str, e: Expect| {
        let mut c = Case::new(name, pt, asm(src));
        c.maps = maps.to_vec();
        v.push((c, e));
    };
    use Expect::*;
    use ProgType::{SchedCls as Tc, SocketFilter as Sock, Xdp};
    // Control flow graph.
    add(
        "unreachable_insn",
        Xdp,
        &[],
        "mov64 r0, 0\nexit\nmov64 r0, 1\nexit",
        Refused,
    );
    add(
        "jump_out_of_range",
        Xdp,
        &[],
        "mov64 r0, 0\nja +5\nexit",
        Refused,
    );
    add(
        "jump_into_ldimm64",
        Xdp,
        &[],
        "ja +1\nldimm64 r0, 1\nmov64 r0, 0\nexit",
        Refused,
    );
    add("fall_off_end", Xdp, &[], "mov64 r0, 0", Refused);
    add(
        "back_edge_endless",
        Xdp,
        &[],
        "mov64 r0, 0\nja -1\nexit",
        Refused,
    );
    add(
        "loop_bounded",
        Xdp,
        &[],
        "mov64 r0, 0\nadd64 r0, 1\njlt r0, 100, -2\nmov64 r0, 2\nexit",
        // A CAP_BPF loader without CAP_PERFMON also walks each iteration's mispredicted
        // exit (Spectre v1) and reaches the complexity limit.
        RootOnly,
    );
    add(
        "loop_too_long",
        Xdp,
        &[],
        "mov64 r0, 0\nadd64 r0, 1\njlt r0, 1000000, -2\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "loop_unknown_bound",
        Xdp,
        &[],
        "ldxw r2, [r1+16]\nmov64 r0, 0\nadd64 r0, 1\njlt r0, r2, -2\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "loop_masked_bound",
        Xdp,
        &[],
        "ldxw r2, [r1+16]\nand64 r2, 15\nmov64 r0, 0\nadd64 r0, 1\njlt r0, r2, -2\nmov64 r0, 2\nexit",
        RootOnly,
    );
    // Registers.
    add("uninit_r0_exit", Xdp, &[], "exit", Refused);
    add("uninit_src", Xdp, &[], "mov64 r0, r2\nexit", Refused);
    add(
        "frame_pointer_write",
        Xdp,
        &[],
        "mov64 r10, 0\nmov64 r0, 0\nexit",
        Refused,
    );
    add(
        "reserved_fields",
        Xdp,
        &[],
        "mov64 r0, 0\nneg64 r0\nmov64 r0, 0\nexit",
        Accepted,
    );
    add(
        "div_by_zero_imm",
        Xdp,
        &[],
        "mov64 r0, 1\ndiv64 r0, 0\nexit",
        Refused,
    );
    add(
        "div_by_zero_reg",
        Xdp,
        &[],
        "mov64 r0, 1\nmov64 r2, 0\ndiv64 r0, r2\nmov64 r0, 2\nexit",
        Accepted,
    );
    add(
        "shift_too_far",
        Xdp,
        &[],
        "mov64 r0, 1\nlsh64 r0, 64\nexit",
        Refused,
    );
    add(
        "shift_in_range",
        Xdp,
        &[],
        "mov64 r0, 1\nlsh64 r0, 63\nmov64 r0, 2\nexit",
        Accepted,
    );
    // Pointer arithmetic and leaks.
    add(
        "ptr_alu32",
        Xdp,
        &[],
        "add32 r1, 4\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "ptr_alu64",
        Xdp,
        &[],
        "add64 r1, 4\nmov64 r0, 2\nexit",
        Accepted,
    );
    add(
        "ptr_mul",
        Xdp,
        &[],
        "mul64 r1, 4\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "ptr_plus_ptr",
        Xdp,
        &[],
        "add64 r1, r10\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "ptr_minus_ptr",
        Xdp,
        &[],
        "mov64 r2, r10\nsub64 r2, r10\nmov64 r0, 2\nexit",
        RootOnly,
    );
    add(
        "ptr_compare",
        Xdp,
        &[],
        "jeq r1, r10, +0\nmov64 r0, 2\nexit",
        RootOnly,
    );
    add("ptr_return", Xdp, &[], "mov64 r0, r10\nexit", RootOnly);
    // bpf_trace_vprintk (177): a read-only format of a constant size, an argument array
    // that may be NULL with a size that may be 0; a CAP_PERFMON helper.
    const FMT: &str = "stw [r10-8], 0x000a6425\nmov64 r1, r10\nadd64 r1, -8\nmov64 r2, 4\n";
    add(
        "vprintk_args",
        Xdp,
        &[],
        &format!("{FMT}stdw [r10-16], 7\nmov64 r3, r10\nadd64 r3, -16\nmov64 r4, 8\ncall 177\nmov64 r0, 2\nexit"),
        RootOnly,
    );
    add(
        "vprintk_null_args",
        Xdp,
        &[],
        &format!("{FMT}mov64 r3, 0\nmov64 r4, 0\ncall 177\nmov64 r0, 2\nexit"),
        RootOnly,
    );
    add(
        "vprintk_uninit_args",
        Xdp,
        &[],
        &format!("{FMT}mov64 r3, r10\nadd64 r3, -16\nmov64 r4, 8\ncall 177\nmov64 r0, 2\nexit"),
        RootOnly, // root may read uninitialised stack
    );
    add(
        "vprintk_zero_fmt",
        Xdp,
        &[],
        "mov64 r1, r10\nadd64 r1, -8\nmov64 r2, 0\nmov64 r3, 0\nmov64 r4, 0\ncall 177\nmov64 r0, 2\nexit",
        Refused,
    );
    // bpf_get_attach_cookie (174) takes the context; kprobes load only with CAP_PERFMON.
    add(
        "attach_cookie_ctx",
        ProgType::Kprobe,
        &[],
        "call 174\nexit",
        RootOnly,
    );
    add(
        "attach_cookie_not_ctx",
        ProgType::Kprobe,
        &[],
        "mov64 r1, r10\ncall 174\nexit",
        Refused,
    );
    add(
        "ptr_return_socket",
        Sock,
        &[],
        "mov64 r0, r10\nexit",
        RootOnly,
    );
    add(
        "ptr_to_map_value_store",
        Xdp,
        &[array(8, 1)],
        &format!("{LOOKUP}\njeq r0, 0, +1\nstxdw [r0+0], r10\nmov64 r0, 2\nexit"),
        RootOnly,
    );
    add(
        "ptr_to_stack_spill",
        Xdp,
        &[],
        "stxdw [r10-8], r1\nldxdw r1, [r10-8]\nldxw r0, [r1+0]\nmov64 r0, 2\nexit",
        Accepted,
    );
    add(
        "partial_spill_read",
        Xdp,
        &[],
        "stxdw [r10-8], r1\nldxw r0, [r10-8]\nmov64 r0, 2\nexit",
        Refused,
    );
    // Stack.
    add(
        "stack_uninit_read",
        Xdp,
        &[],
        "ldxdw r0, [r10-8]\nmov64 r0, 2\nexit",
        RootOnly,
    );
    add(
        "stack_init_read",
        Xdp,
        &[],
        "stdw [r10-8], 0\nldxdw r0, [r10-8]\nmov64 r0, 2\nexit",
        Accepted,
    );
    add(
        "stack_out_of_bounds",
        Xdp,
        &[],
        "stdw [r10-520], 0\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "stack_above_fp",
        Xdp,
        &[],
        "stdw [r10+0], 0\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "stack_misaligned",
        Xdp,
        &[],
        "stdw [r10-12], 0\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "stack_var_offset",
        Xdp,
        &[],
        "ldxw r2, [r1+16]\nand64 r2, 7\nmov64 r3, r10\nadd64 r3, -16\nadd64 r3, r2\nstb [r3+0], 0\nmov64 r0, 2\nexit",
        RootOnly,
    );
    // Context.
    add(
        "ctx_misaligned",
        Xdp,
        &[],
        "ldxb r0, [r1+1]\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "ctx_past_end",
        Xdp,
        &[],
        "ldxw r0, [r1+64]\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "ctx_modified_access",
        Xdp,
        &[],
        "add64 r1, 4\nldxw r0, [r1+0]\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "ctx_narrow_load",
        Tc,
        &[],
        "ldxb r0, [r1+0]\nmov64 r0, 0\nexit",
        Accepted,
    );
    add(
        "ctx_store_imm_tc",
        Tc,
        &[],
        "stw [r1+8], 1\nmov64 r0, 0\nexit",
        Accepted,
    );
    add(
        "ctx_store_readonly_tc",
        Tc,
        &[],
        "stw [r1+0], 1\nmov64 r0, 0\nexit",
        Refused,
    );
    add(
        "ctx_store_reg_tc",
        Tc,
        &[],
        "mov64 r2, 1\nstxw [r1+8], r2\nmov64 r0, 0\nexit",
        Accepted,
    );
    add(
        "ctx_socket_data",
        Sock,
        &[],
        "ldxw r0, [r1+76]\nmov64 r0, 0\nexit",
        Refused,
    );
    // Map values.
    add(
        "map_ptr_deref",
        Xdp,
        &[array(8, 1)],
        "ldmap r1, 0\nldxdw r0, [r1+0]\nmov64 r0, 2\nexit",
        RootUnmodelled,
    );
    add(
        "map_ptr_write",
        Xdp,
        &[array(8, 1)],
        "ldmap r1, 0\nstdw [r1+0], 0\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "map_or_null_deref",
        Xdp,
        &[hash(8)],
        &format!("{LOOKUP}\nldxdw r0, [r0+0]\nmov64 r0, 2\nexit"),
        Refused,
    );
    add(
        "map_or_null_arith",
        Xdp,
        &[hash(8)],
        &format!("{LOOKUP}\nadd64 r0, 8\nmov64 r0, 2\nexit"),
        Refused,
    );
    add(
        "map_checked_deref",
        Xdp,
        &[hash(8)],
        &format!("{LOOKUP}\njeq r0, 0, +1\nldxdw r0, [r0+0]\nmov64 r0, 2\nexit"),
        Accepted,
    );
    add(
        "map_value_past_end",
        Xdp,
        &[hash(8)],
        &format!("{LOOKUP}\njeq r0, 0, +1\nldxw r0, [r0+6]\nmov64 r0, 2\nexit"),
        Refused,
    );
    add(
        "map_value_negative",
        Xdp,
        &[hash(8)],
        &format!("{LOOKUP}\njeq r0, 0, +1\nldxb r0, [r0-1]\nmov64 r0, 2\nexit"),
        Refused,
    );
    add(
        "map_copy_null_check",
        Xdp,
        &[hash(8)],
        &format!("{LOOKUP}\nmov64 r6, r0\njeq r0, 0, +1\nldxdw r1, [r6+0]\nmov64 r0, 2\nexit"),
        Accepted,
    );
    add(
        "map_key_uninit",
        Xdp,
        &[hash(8)],
        "ldmap r1, 0\nmov64 r2, r10\nadd64 r2, -4\ncall 1\nmov64 r0, 2\nexit",
        RootOnly,
    );
    add(
        "map_key_out_of_stack",
        Xdp,
        &[hash(8)],
        "ldmap r1, 0\nmov64 r2, r10\nadd64 r2, 4\ncall 1\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "map_arg_not_map",
        Xdp,
        &[hash(8)],
        "stw [r10-4], 0\nmov64 r1, r10\nmov64 r2, r10\nadd64 r2, -4\ncall 1\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "map_rdonly_write",
        Xdp,
        &[{
            let mut m = array(8, 1);
            m.map_flags = bpfvm_verifier::BPF_F_RDONLY_PROG;
            m
        }],
        &format!("{LOOKUP}\njeq r0, 0, +1\nstdw [r0+0], 1\nmov64 r0, 2\nexit"),
        Refused,
    );
    // Packets.
    add(
        "pkt_unchecked",
        Xdp,
        &[],
        "ldxw r2, [r1+0]\nldxb r0, [r2+0]\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "pkt_checked",
        Xdp,
        &[],
        "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov64 r4, r2\nadd64 r4, 14\njgt r4, r3, +1\nldxb r0, [r2+13]\nmov64 r0, 2\nexit",
        Accepted,
    );
    add(
        "pkt_past_check",
        Xdp,
        &[],
        "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov64 r4, r2\nadd64 r4, 14\njgt r4, r3, +1\nldxb r0, [r2+14]\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "pkt_wrong_branch",
        Xdp,
        &[],
        "ldxw r2, [r1+0]\nldxw r3, [r1+4]\nmov64 r4, r2\nadd64 r4, 14\njle r4, r3, +1\nldxb r0, [r2+13]\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "pkt_end_deref",
        Xdp,
        &[],
        "ldxw r3, [r1+4]\nldxb r0, [r3+0]\nmov64 r0, 2\nexit",
        Refused,
    );
    add("pkt_write_socket", Tc, &[],
        "ldxw r2, [r1+76]\nldxw r3, [r1+80]\nmov64 r4, r2\nadd64 r4, 1\njgt r4, r3, +1\nstb [r2+0], 0\nmov64 r0, 0\nexit",
        Accepted);
    // Helpers.
    add(
        "helper_unknown",
        Xdp,
        &[],
        "call 10000\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "helper_wrong_type",
        Xdp,
        &[],
        "call 8\nmov64 r0, 2\nexit",
        Accepted,
    );
    add(
        "helper_not_for_prog",
        Sock,
        &[],
        "mov64 r2, 0\ncall 44\nmov64 r0, 0\nexit",
        Refused,
    );
    add(
        "helper_clobbers_r1",
        Xdp,
        &[],
        "call 7\nmov64 r0, r1\nexit",
        Refused,
    );
    add(
        "helper_keeps_r6",
        Xdp,
        &[],
        "mov64 r6, 2\ncall 7\nmov64 r0, r6\nexit",
        Accepted,
    );
    add(
        "helper_size_unbounded",
        Tc,
        &[],
        "ldxw r4, [r1+0]\nmov64 r2, 0\nmov64 r3, r10\nadd64 r3, -8\ncall 26\nmov64 r0, 0\nexit",
        Refused,
    );
    add(
        "helper_size_bounded",
        Tc,
        &[],
        "stdw [r10-8], 0\nldxw r4, [r1+0]\nand64 r4, 7\nadd64 r4, 1\nmov64 r2, 0\nmov64 r3, r10\nadd64 r3, -8\ncall 26\nmov64 r0, 0\nexit",
        Accepted,
    );
    // bpf-to-bpf calls.
    add(
        "call_subprog",
        Xdp,
        &[],
        "mov64 r1, 1\ncall -1\nmov64 r0, 2\nexit\nmov64 r0, r1\nexit",
        Accepted,
    );
    add(
        "call_subprog_reads_callee_saved",
        Xdp,
        &[],
        "mov64 r6, 1\ncall -1\nmov64 r0, 2\nexit\nmov64 r0, r6\nexit",
        Refused,
    );
    // Pruning: two paths join with different values in r6 after enough instructions for a
    // checkpoint; the path walked first has 0, the one walked second 100. Where r6 then
    // offsets a map value pointer (directly or spilled and filled), the second path must
    // not be pruned and is refused; where r6 is never used again it may be pruned and the
    // program is accepted.
    let join = |tail: &str| {
        format!(
            "{}call 7\nmov64 r6, 100\njgt r0, 10, +1\nmov64 r6, 0\n{tail}",
            "mov64 r8, 0\n".repeat(8)
        )
    };
    add(
        "prune_join_offset_bad",
        Xdp,
        &[array(16, 1)],
        &join(&format!(
            "{LOOKUP}jeq r0, 0, +2\nadd64 r0, r6\nldxb r1, [r0+0]\nmov64 r0, 2\nexit"
        )),
        Refused,
    );
    add(
        "prune_join_spilled_offset_bad",
        Xdp,
        &[array(16, 1)],
        &join(&format!(
            "stxdw [r10-16], r6\nmov64 r6, 0\n{LOOKUP}jeq r0, 0, +3\nldxdw r6, [r10-16]\nadd64 r0, r6\nldxb r1, [r0+0]\nmov64 r0, 2\nexit"
        )),
        Refused,
    );
    add(
        "prune_join_slot_offset_bad",
        Xdp,
        &[array(16, 1)],
        &format!(
            "{}call 7\nmov64 r6, 100\nstxdw [r10-16], r6\njgt r0, 10, +2\nmov64 r6, 0\nstxdw [r10-16], r6\nmov64 r6, 0\n{LOOKUP}jeq r0, 0, +3\nldxdw r6, [r10-16]\nadd64 r0, r6\nldxb r1, [r0+0]\nmov64 r0, 2\nexit",
            "mov64 r8, 0\n".repeat(8)
        ),
        Refused,
    );
    add(
        "prune_join_unused_ok",
        Xdp,
        &[array(16, 1)],
        &join(&format!(
            "stxdw [r10-16], r6\n{LOOKUP}jeq r0, 0, +1\nldxb r1, [r0+0]\nmov64 r0, 2\nexit"
        )),
        Accepted,
    );
    // Tail calls (helper 12): the map must be a PROG_ARRAY, which nothing else may use;
    // r1 the context; from a subprogram only when its callers' frames take under 256 bytes.
    let jmp = MapInfo::new(bpfvm_verifier::map_type::PROG_ARRAY, 4, 4, 4);
    const TAIL: &str = "ldmap r2, 0\nmov64 r3, 1\ncall 12\n";
    add(
        "tail_call_ok",
        Xdp,
        std::slice::from_ref(&jmp),
        &format!("{TAIL}mov64 r0, 2\nexit"),
        Accepted,
    );
    add(
        "tail_call_array_bad",
        Xdp,
        &[array(4, 4)],
        &format!("{TAIL}mov64 r0, 2\nexit"),
        Refused,
    );
    add(
        "tail_call_r1_not_ctx_bad",
        Tc,
        std::slice::from_ref(&jmp),
        &format!("mov64 r1, 0\n{TAIL}mov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "tail_call_r0_after_bad",
        Xdp,
        std::slice::from_ref(&jmp),
        &format!("{TAIL}exit"),
        Refused,
    );
    add(
        "prog_array_lookup_bad",
        Xdp,
        std::slice::from_ref(&jmp),
        &format!("{LOOKUP}mov64 r0, 2\nexit"),
        Refused,
    );
    // Without BTF function info (the kernel side loads none), no subprogram may tail-call;
    // the 256-byte rule for callers' frames is checked with func_info in
    // vm/verifier/tests/tail_calls.rs.
    add(
        "tail_call_subprog_no_btf_bad",
        Xdp,
        &[jmp],
        &format!("call -1\nmov64 r0, 2\nexit\n{TAIL}mov64 r0, 1\nexit"),
        Refused,
    );
    v.into_iter()
        .map(|(mut c, e)| {
            // `call -1` in the source is a local call (src_reg 1) to the instruction after
            // the caller's exit: rbpf's assembler has no syntax for it.
            fix_local_calls(&mut c.insns);
            (c, e)
        })
        .collect()
}

/// Rewrites `call -1` (imm -1, a helper id no kernel has) into a local call to the first
/// instruction after the next `exit`.
fn fix_local_calls(insns: &mut [u8]) {
    let n = insns.len() / 8;
    for i in 0..n {
        let o = i * 8;
        if insns[o] == 0x85 && insns[o + 4..o + 8] == (-1i32).to_le_bytes() {
            let exit = (i..n)
                .find(|&j| insns[j * 8] == 0x95)
                .expect("exit after call");
            insns[o + 1] = 0x10;
            insns[o + 4..o + 8].copy_from_slice(&((exit - i) as i32).to_le_bytes());
        }
    }
}

#[test]
fn assembled_rules_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for (case, expect) in assembled() {
        compared += check(&case, expect, &mut failures);
    }
    println!("{compared} verdicts compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
