//! Dynptrs (issue 15): `bpf_dynptr_from_mem`, `bpf_ringbuf_reserve_dynptr`,
//! `bpf_ringbuf_submit_dynptr`/`discard_dynptr`, `bpf_dynptr_read`, `bpf_dynptr_write` and
//! `bpf_dynptr_data`. Each rule in an accepted form and refused forms: the 16 aligned
//! bytes of stack a dynptr takes, uninitialised for the constructors and initialised for
//! the readers, writes that destroy a dynptr (refused for a ring buffer dynptr, whose
//! reference would leak), loads of its bytes, helpers writing over it, the ring buffer
//! reference (released by submit or discard, on the failure path too, once), the type a
//! helper wants, and `bpf_dynptr_data` slices (NULL check, size, invalidated with their
//! dynptr).
//!
//! `dynptr_cases_get_their_verdict_offline` checks bpfvm's verdicts on every platform;
//! `dynptr_cases_match_the_kernel` compares verdict, errno and message with the kernel's
//! (Linux, as root, for both loaders).

use bpfvm_conformance::rule_cases::{fix_local_calls, Expect};
use bpfvm_conformance::verdicts::{asm, Case};
use bpfvm_verifier::{map_type, MapInfo, ProgType};

/// A ring buffer of 4 KiB (map 0).
fn ringbuf() -> MapInfo {
    MapInfo::new(map_type::RINGBUF, 0, 0, 4096)
}

/// An array of one 16-byte value (map 1 when given after the ring buffer).
fn array() -> MapInfo {
    MapInfo::new(map_type::ARRAY, 4, 16, 1)
}

/// `r9` = the value of the array (map 1), with a zeroed key at fp-8; returns 0 when
/// missing. Every case starts with it.
const LOOKUP: &str = "
    stdw [r10-8], 0
    ldmap r1, 1
    mov64 r2, r10
    add64 r2, -8
    call 1
    jne r0, 0, +2
    mov64 r0, 0
    exit
    mov64 r9, r0
";

/// `bpf_dynptr_from_mem(r9, 16, 0, fp-24)`: a local dynptr at fp-24 over the map value
/// (the kernel takes map values only).
const FROM_MEM: &str = "mov64 r1, r9
mov64 r2, 16
mov64 r3, 0
mov64 r4, r10
add64 r4, -24
call 197
";

/// `bpf_dynptr_read(fp-32, 4, fp-24, 0, 0)`.
const READ: &str = "
    mov64 r1, r10
    add64 r1, -32
    mov64 r2, 4
    mov64 r3, r10
    add64 r3, -24
    mov64 r4, 0
    mov64 r5, 0
    call 201
";

/// `bpf_dynptr_write(fp-24, 0, fp-8, 4, 0)`.
const WRITE: &str = "
    mov64 r1, r10
    add64 r1, -24
    mov64 r2, 0
    mov64 r3, r10
    add64 r3, -8
    mov64 r4, 4
    mov64 r5, 0
    call 202
";

/// `bpf_ringbuf_reserve_dynptr(map 0, 8, 0, fp-16)`.
const RESERVE: &str = "
    ldmap r1, 0
    mov64 r2, 8
    mov64 r3, 0
    mov64 r4, r10
    add64 r4, -16
    call 198
";

/// `bpf_ringbuf_submit_dynptr(fp-16, 0)`.
const SUBMIT: &str = "
    mov64 r1, r10
    add64 r1, -16
    mov64 r2, 0
    call 199
";

/// `r6 = bpf_dynptr_data(fp-16, 0, 8)`.
const DATA16: &str = "
    mov64 r1, r10
    add64 r1, -16
    mov64 r2, 0
    mov64 r3, 8
    call 203
    mov64 r6, r0
";

const EXIT0: &str = "mov64 r0, 0\nexit";

fn cases() -> Vec<(Case, Expect)> {
    use Expect::*;
    let mut v = Vec::new();
    let mut add = |name: &str, maps: Vec<MapInfo>, src: String, e: Expect| {
        let mut c = Case::new(name, ProgType::SchedCls, asm(&format!("{LOOKUP}{src}")));
        c.maps = maps;
        v.push((c, e));
    };
    let rb = || vec![ringbuf(), array()];
    // Local dynptrs: construct, read, write.
    add(
        "from_mem_read_write",
        rb(),
        format!("{FROM_MEM}{READ}{WRITE}{EXIT0}"),
        Accepted,
    );
    add(
        "from_mem_twice_same_slots",
        rb(),
        format!("{FROM_MEM}{FROM_MEM}{READ}{EXIT0}"),
        Accepted,
    );
    add(
        "from_mem_unknown_flags",
        rb(),
        format!(
            "{}{READ}{EXIT0}",
            FROM_MEM.replace(
                "mov64 r3, 0",
                "call 7\nmov64 r3, r0\nmov64 r1, r9\nmov64 r2, 16"
            )
        ),
        Accepted,
    );
    add(
        "from_mem_stack_buffer",
        rb(),
        format!(
            "{}{EXIT0}",
            FROM_MEM.replace("mov64 r1, r9", "mov64 r1, r10\nadd64 r1, -40")
        ),
        Refused,
    );
    add(
        "from_mem_part_of_value",
        rb(),
        format!(
            "{}{READ}{EXIT0}",
            FROM_MEM.replace("mov64 r2, 16", "add64 r1, 8\nmov64 r2, 8")
        ),
        Accepted,
    );
    add(
        "from_mem_ringbuf_memory",
        rb(),
        format!(
            "ldmap r1, 0\nmov64 r2, 8\nmov64 r3, 0\ncall 131\njeq r0, 0, +10\nmov64 r6, r0\nmov64 r1, r0\nmov64 r2, 8\nmov64 r3, 0\nmov64 r4, r10\nadd64 r4, -24\ncall 197\nmov64 r1, r6\nmov64 r2, 0\ncall 133\n{EXIT0}"
        ),
        Refused,
    );
    add(
        "from_mem_size_too_big",
        rb(),
        FROM_MEM.replace("mov64 r2, 16", "mov64 r2, 17") + EXIT0,
        Refused,
    );
    // Where a dynptr lives: 16 aligned bytes of stack.
    add(
        "from_mem_misaligned",
        rb(),
        FROM_MEM.replace("add64 r4, -24", "add64 r4, -28") + EXIT0,
        Refused,
    );
    add(
        "from_mem_at_fp_minus_8",
        rb(),
        FROM_MEM.replace("add64 r4, -24", "add64 r4, -8") + EXIT0,
        Refused,
    );
    add(
        "from_mem_variable_offset",
        rb(),
        format!(
            "call 7\nand64 r0, 8\n{}{EXIT0}",
            FROM_MEM.replace("add64 r4, -24", "add64 r4, -32\nadd64 r4, r0")
        ),
        Refused,
    );
    add(
        "from_mem_dynptr_not_stack",
        rb(),
        FROM_MEM.replace("mov64 r4, r10\nadd64 r4, -24", "mov64 r4, 0") + EXIT0,
        Refused,
    );
    add(
        "from_mem_below_stack",
        rb(),
        FROM_MEM.replace("add64 r4, -24", "add64 r4, -520") + EXIT0,
        Refused,
    );
    // Readers want an initialised dynptr.
    add(
        "read_uninit_dynptr",
        rb(),
        format!("stdw [r10-24], 0\nstdw [r10-16], 0\nstdw [r10-8], 0\n{READ}{EXIT0}"),
        Refused,
    );
    add(
        "read_second_slot",
        rb(),
        format!(
            "{FROM_MEM}{}{EXIT0}",
            READ.replace("add64 r3, -24", "add64 r3, -16")
        ),
        Refused,
    );
    add(
        "write_dynptr_never_made",
        rb(),
        format!("{WRITE}{EXIT0}"),
        Refused,
    );
    add(
        "data_dynptr_never_made",
        rb(),
        format!("{DATA16}{EXIT0}"),
        Refused,
    );
    // Writes destroy a local dynptr.
    add(
        "overwrite_then_read",
        rb(),
        format!("{FROM_MEM}stdw [r10-24], 0\n{READ}{EXIT0}"),
        Refused,
    );
    add(
        "partial_overwrite_second_slot_then_read",
        rb(),
        format!("{FROM_MEM}stb [r10-10], 1\n{READ}{EXIT0}"),
        Refused,
    );
    add(
        "overwrite_then_reinit",
        rb(),
        format!("{FROM_MEM}stdw [r10-16], 0\n{FROM_MEM}{READ}{EXIT0}"),
        Accepted,
    );
    add(
        "load_dynptr_bytes",
        rb(),
        format!("{FROM_MEM}ldxdw r0, [r10-24]\n{EXIT0}"),
        Refused,
    );
    add(
        "helper_writes_over_dynptr",
        rb(),
        format!(
            "{FROM_MEM}{}{EXIT0}",
            READ.replace("add64 r1, -32", "add64 r1, -24")
        ),
        Refused,
    );
    add(
        "helper_reads_dynptr_bytes",
        rb(),
        format!(
            "{FROM_MEM}{}{EXIT0}",
            WRITE.replace("add64 r3, -8", "add64 r3, -24")
        ),
        Refused,
    );
    // Ring buffer dynptrs: a reference, released by submit or discard.
    add(
        "reserve_submit",
        rb(),
        format!("{RESERVE}{SUBMIT}{EXIT0}"),
        Accepted,
    );
    add(
        "reserve_discard",
        rb(),
        format!("{RESERVE}{}{EXIT0}", SUBMIT.replace("call 199", "call 200")),
        Accepted,
    );
    add(
        "reserve_without_submit",
        rb(),
        format!("{RESERVE}{EXIT0}"),
        Refused,
    );
    add(
        "reserve_failure_path_not_discarded",
        rb(),
        format!("{RESERVE}jne r0, 0, +5\n{SUBMIT}{EXIT0}"),
        Refused,
    );
    add(
        "reserve_failure_path_discarded",
        rb(),
        format!(
            "{RESERVE}jeq r0, 0, +6\n{}{EXIT0}\n{SUBMIT}{EXIT0}",
            SUBMIT.replace("call 199", "call 200")
        ),
        Accepted,
    );
    add(
        "reserve_unknown_size_and_flags",
        rb(),
        format!(
            "call 7\nmov64 r7, r0\ncall 7\nmov64 r3, r0\nldmap r1, 0\nmov64 r2, r7\nmov64 r4, r10\nadd64 r4, -16\ncall 198\n{SUBMIT}{EXIT0}"
        ),
        Accepted,
    );
    add(
        "submit_twice",
        rb(),
        format!("{RESERVE}{SUBMIT}{SUBMIT}{EXIT0}"),
        Refused,
    );
    add(
        "submit_local_dynptr",
        rb(),
        format!(
            "{FROM_MEM}{}{EXIT0}",
            SUBMIT.replace("add64 r1, -16", "add64 r1, -24")
        ),
        Refused,
    );
    add(
        "submit_never_made",
        rb(),
        format!("stdw [r10-16], 0\nstdw [r10-8], 0\n{SUBMIT}{EXIT0}"),
        Refused,
    );
    add(
        "overwrite_ringbuf_dynptr",
        rb(),
        format!("{RESERVE}stdw [r10-16], 0\n{SUBMIT}{EXIT0}"),
        Refused,
    );
    add(
        "overwrite_ringbuf_dynptr_second_slot",
        rb(),
        format!("{RESERVE}stw [r10-4], 0\n{SUBMIT}{EXIT0}"),
        Refused,
    );
    add(
        "reserve_over_ringbuf_dynptr",
        rb(),
        format!("{RESERVE}{RESERVE}{SUBMIT}{EXIT0}"),
        Refused,
    );
    add(
        "from_mem_over_ringbuf_dynptr",
        rb(),
        format!(
            "{RESERVE}{}{SUBMIT}{EXIT0}",
            FROM_MEM.replace("add64 r4, -24", "add64 r4, -16")
        ),
        Refused,
    );
    add(
        "reserve_on_array",
        rb(),
        format!(
            "{}{SUBMIT}{EXIT0}",
            RESERVE.replace("ldmap r1, 0", "ldmap r1, 1")
        ),
        Refused,
    );
    add(
        "ringbuf_read_write",
        rb(),
        format!(
            "{RESERVE}stdw [r10-24], 7\n{}{}{SUBMIT}{EXIT0}",
            WRITE
                .replace("add64 r1, -24", "add64 r1, -16")
                .replace("add64 r3, -8", "add64 r3, -24"),
            READ.replace("add64 r3, -24", "add64 r3, -16")
        ),
        Accepted,
    );
    add(
        "two_ringbuf_dynptrs",
        rb(),
        format!(
            "{RESERVE}{}{SUBMIT}{}{EXIT0}",
            RESERVE.replace("add64 r4, -16", "add64 r4, -32"),
            SUBMIT.replace("add64 r1, -16", "add64 r1, -32")
        ),
        Accepted,
    );
    add(
        "two_ringbuf_dynptrs_one_released",
        rb(),
        format!(
            "{RESERVE}{}{SUBMIT}{EXIT0}",
            RESERVE.replace("add64 r4, -16", "add64 r4, -32")
        ),
        Refused,
    );
    // bpf_dynptr_data: NULL check, constant size, bounds, invalidated with the dynptr.
    add(
        "data_checked_write",
        rb(),
        format!("{RESERVE}{DATA16}jeq r6, 0, +1\nstdw [r6+0], 1\n{SUBMIT}{EXIT0}"),
        Accepted,
    );
    add(
        "data_unchecked",
        rb(),
        format!("{RESERVE}{DATA16}stdw [r6+0], 1\n{SUBMIT}{EXIT0}"),
        Refused,
    );
    add(
        "data_past_size",
        rb(),
        format!("{RESERVE}{DATA16}jeq r6, 0, +1\nstdw [r6+4], 1\n{SUBMIT}{EXIT0}"),
        Refused,
    );
    add(
        "data_unknown_size",
        rb(),
        format!(
            "{RESERVE}call 7\nmov64 r3, r0\nmov64 r1, r10\nadd64 r1, -16\nmov64 r2, 0\ncall 203\n{SUBMIT}{EXIT0}"
        ),
        Refused,
    );
    add(
        "data_used_after_submit",
        rb(),
        format!("{RESERVE}{DATA16}jeq r6, 0, +7\n{SUBMIT}stdw [r6+0], 1\n{EXIT0}\n{SUBMIT}{EXIT0}"),
        Refused,
    );
    add(
        "data_of_local_dynptr",
        rb(),
        format!(
            "{FROM_MEM}{}jeq r6, 0, +1\nldxdw r0, [r6+0]\n{EXIT0}",
            DATA16.replace("add64 r1, -16", "add64 r1, -24")
        ),
        Accepted,
    );
    add(
        "data_of_local_dynptr_after_overwrite",
        rb(),
        format!(
            "{FROM_MEM}{}jeq r6, 0, +2\nstdw [r10-24], 0\nldxdw r0, [r6+0]\n{EXIT0}",
            DATA16.replace("add64 r1, -16", "add64 r1, -24")
        ),
        Refused,
    );
    add(
        "data_of_local_dynptr_after_reinit",
        rb(),
        format!(
            "{FROM_MEM}{}jeq r6, 0, +7\n{FROM_MEM}ldxdw r0, [r6+0]\n{EXIT0}",
            DATA16.replace("add64 r1, -16", "add64 r1, -24")
        ),
        Refused,
    );
    // Paths: a dynptr made on one path only.
    add(
        "dynptr_made_on_one_path",
        rb(),
        format!(
            "call 7\nstdw [r10-24], 0\nstdw [r10-16], 0\njeq r0, 0, +6\n{FROM_MEM}{READ}{EXIT0}"
        ),
        Refused,
    );
    add(
        "ringbuf_dynptr_on_both_paths",
        rb(),
        format!(
            "call 7\nmov64 r8, r0\n{RESERVE}jeq r8, 0, +6\n{SUBMIT}{EXIT0}\n{}{EXIT0}",
            SUBMIT.replace("call 199", "call 200")
        ),
        Accepted,
    );
    // A store at a variable offset that may touch a dynptr destroys it (root; without
    // CAP_PERFMON the variable-offset store itself is refused).
    let var_store =
        "call 7\nand64 r0, 8\nmov64 r1, r10\nadd64 r1, -24\nadd64 r1, r0\nstxdw [r1+0], r0\n";
    add(
        "variable_offset_store_over_local_dynptr",
        rb(),
        format!("{FROM_MEM}{var_store}{READ}{EXIT0}"),
        Refused,
    );
    add(
        "variable_offset_store_over_ringbuf_dynptr",
        rb(),
        format!(
            "{RESERVE}{}{SUBMIT}{EXIT0}",
            var_store.replace("add64 r1, -24", "add64 r1, -16")
        ),
        Refused,
    );
    add(
        "variable_offset_store_beside_ringbuf_dynptr",
        rb(),
        format!(
            "stdw [r10-32], 0\nstdw [r10-24], 0\n{RESERVE}{}{SUBMIT}{EXIT0}",
            var_store.replace("add64 r1, -24", "add64 r1, -32")
        ),
        RootOnly,
    );
    // Dynptrs in the caller's stack, used by a subprogram (`call -1`: the first
    // instruction after the next `exit`).
    let mut local = |name: &str, src: String, e: Expect| {
        let mut insns = asm(&format!("{LOOKUP}{src}"));
        fix_local_calls(&mut insns);
        let mut c = Case::new(name, ProgType::SchedCls, insns);
        c.maps = rb();
        v.push((c, e));
    };
    let sub_read = "mov64 r3, r1\nmov64 r1, r10\nadd64 r1, -8\nmov64 r2, 4\nmov64 r4, 0\nmov64 r5, 0\ncall 201\nmov64 r0, 0\nexit";
    local(
        "read_in_subprogram",
        format!("{FROM_MEM}mov64 r1, r10\nadd64 r1, -24\ncall -1\n{EXIT0}\n{sub_read}"),
        Accepted,
    );
    local(
        "read_in_subprogram_never_made",
        format!("mov64 r1, r10\nadd64 r1, -24\ncall -1\n{EXIT0}\n{sub_read}"),
        Refused,
    );
    local(
        "submit_in_subprogram",
        format!(
            "{RESERVE}mov64 r1, r10\nadd64 r1, -16\ncall -1\n{EXIT0}\nmov64 r2, 0\ncall 199\n{EXIT0}"
        ),
        Accepted,
    );
    local(
        "reserve_in_subprogram_submit_in_caller",
        format!(
            "mov64 r1, r10\nadd64 r1, -16\ncall -1\n{SUBMIT}{EXIT0}\nmov64 r4, r1\nldmap r1, 0\nmov64 r2, 8\nmov64 r3, 0\ncall 198\n{EXIT0}"
        ),
        Accepted,
    );
    local(
        "reserve_in_subprogram_leaked",
        format!(
            "mov64 r1, r10\nadd64 r1, -16\ncall -1\n{EXIT0}\nmov64 r4, r1\nldmap r1, 0\nmov64 r2, 8\nmov64 r3, 0\ncall 198\n{EXIT0}"
        ),
        Refused,
    );
    v
}

#[test]
fn dynptr_cases_get_their_verdict_offline() {
    let wrong = bpfvm_conformance::rule_cases::offline_mismatches(&cases(), true);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[cfg(target_os = "linux")]
#[test]
fn dynptr_cases_match_the_kernel() {
    use bpfvm_conformance::kernel;
    use bpfvm_conformance::rule_cases::check_all;
    use bpfvm_conformance::verdicts::compare;

    if !kernel::oracle_or_skip() {
        return;
    }
    let (compared, failures) = check_all(&cases(), compare);
    assert!(compared >= 114, "only {compared} verdicts compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
