//! Socket pointers (issue 15): `skb->sk`, the socket lookups and casts, `bpf_sk_release`
//! and `bpf_sk_assign`, and the fields of `struct bpf_sock_common`/`bpf_sock`/`bpf_tcp_sock`
//! a program may read. Each rule in an accepted form and refused forms (missing NULL
//! check, leaked socket, double release, release of a socket never acquired, bad field
//! offset or size, write, pointer arithmetic, use after release).
//!
//! `socket_cases_get_their_verdict_offline` checks bpfvm's verdicts on every platform;
//! `socket_cases_match_the_kernel` compares verdict, errno and message with the kernel's
//! (Linux, as root, for both loaders); `socket_fields_match_the_kernel` loads one read of
//! every offset and size of the three socket structures in the kernel and compares.

use bpfvm_conformance::rule_cases::Expect;
use bpfvm_conformance::verdicts::{asm, Case};
use bpfvm_verifier::{Privilege, ProgType};

/// `r0 = bpf_sk_lookup_tcp(ctx, &tuple, 12, 0, 0)` (a zeroed IPv4 tuple at fp-16);
/// the context stays in `r9`.
const LOOKUP: &str = "
    mov64 r9, r1
    stdw [r10-16], 0
    stw [r10-8], 0
    mov64 r2, r10
    add64 r2, -16
    mov64 r3, 12
    mov64 r4, 0
    mov64 r5, 0
    call 84
";

/// `r1 = skb->sk`.
const SKB_SK: &str = "ldxdw r1, [r1+168]";

fn cases() -> Vec<(Case, Expect)> {
    use Expect::*;
    use ProgType::{CgroupSkb, SchedCls, Xdp};
    let mut v = Vec::new();
    let mut add = |name: &str, pt: ProgType, src: &str, e: Expect| {
        v.push((Case::new(name, pt, asm(src)), e));
    };
    // Lookup, NULL check, release.
    let released = format!("{LOOKUP}\njeq r0, 0, +2\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit");
    add("lookup_tcp_release", SchedCls, &released, Accepted);
    add(
        "lookup_udp_release",
        SchedCls,
        &released.replace("call 84", "call 85"),
        Accepted,
    );
    add(
        "skc_lookup_tcp_release",
        SchedCls,
        &released.replace("call 84", "call 99"),
        Accepted,
    );
    add("xdp_lookup_tcp_release", Xdp, &released, Accepted);
    add(
        "cgroup_skb_lookup_tcp_release",
        CgroupSkb,
        &released,
        Accepted,
    );
    // The tuple in the packet: the lookups may read packet memory (`pkt_access`).
    add(
        "cgroup_skb_lookup_packet_tuple",
        CgroupSkb,
        "mov64 r9, r1
         ldxw r2, [r1+76]
         ldxw r3, [r1+80]
         mov64 r4, r2
         add64 r4, 12
         jgt r4, r3, +10
         mov64 r1, r9
         mov64 r3, 12
         mov64 r4, 0
         mov64 r5, 0
         call 84
         jeq r0, 0, +2
         mov64 r1, r0
         call 86
         mov64 r0, 1
         exit
         mov64 r0, 1
         exit",
        Accepted,
    );
    // The socket leaks: on the path where the lookup found one, it is never released.
    add(
        "lookup_leak",
        SchedCls,
        &format!("{LOOKUP}\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "lookup_leak_on_one_path",
        SchedCls,
        &format!("{LOOKUP}\njeq r0, 0, +5\nldxw r2, [r0+4]\njeq r2, 2, +1\nja +2\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit"),
        Refused,
    );
    // No NULL check before the release, the read or the arithmetic.
    add(
        "release_unchecked",
        SchedCls,
        &format!("{LOOKUP}\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "read_unchecked",
        SchedCls,
        &format!("{LOOKUP}\nldxw r2, [r0+4]\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "arithmetic_unchecked",
        SchedCls,
        &format!("{LOOKUP}\nadd64 r0, 4\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "arithmetic_checked",
        SchedCls,
        &format!("{LOOKUP}\njeq r0, 0, +3\nmov64 r1, r0\nadd64 r1, 4\ncall 86\nmov64 r0, 0\nexit"),
        Refused,
    );
    // Field reads of the socket found.
    let read = |ld: &str| {
        format!("{LOOKUP}\njeq r0, 0, +3\n{ld}\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit")
    };
    add(
        "sock_read_family",
        SchedCls,
        &read("ldxw r2, [r0+4]"),
        Accepted,
    );
    add(
        "sock_read_protocol_byte",
        SchedCls,
        &read("ldxb r2, [r0+12]"),
        Accepted,
    );
    add(
        "sock_read_dst_port_half",
        SchedCls,
        &read("ldxh r2, [r0+48]"),
        Accepted,
    );
    add(
        "sock_read_dst_port_pad",
        SchedCls,
        &read("ldxh r2, [r0+50]"),
        Refused,
    );
    add("sock_read_8", SchedCls, &read("ldxdw r2, [r0+0]"), Refused);
    add(
        "sock_read_family_byte1",
        SchedCls,
        &read("ldxb r2, [r0+5]"),
        Refused,
    );
    add(
        "sock_read_past_end",
        SchedCls,
        &read("ldxw r2, [r0+80]"),
        Refused,
    );
    add("sock_write", SchedCls, &read("stw [r0+16], 1"), Refused);
    add(
        "sock_write_reg",
        SchedCls,
        &read("stxw [r0+16], r9"),
        Refused,
    );
    add(
        "skc_read_type",
        SchedCls,
        &read("ldxw r2, [r0+8]").replace("call 84", "call 99"),
        Refused,
    );
    add(
        "skc_read_state",
        SchedCls,
        &read("ldxw r2, [r0+72]").replace("call 84", "call 99"),
        Accepted,
    );
    // Released twice (the copy in r6 is gone after the first release), used after release.
    add(
        "double_release",
        SchedCls,
        &format!("{LOOKUP}\njeq r0, 0, +5\nmov64 r6, r0\nmov64 r1, r6\ncall 86\nmov64 r1, r6\ncall 86\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "read_after_release",
        SchedCls,
        &format!("{LOOKUP}\njeq r0, 0, +4\nmov64 r6, r0\nmov64 r1, r6\ncall 86\nldxw r0, [r6+4]\nmov64 r0, 0\nexit"),
        Refused,
    );
    // Releasing a socket never acquired: skb->sk, a listener, NULL.
    add(
        "release_skb_sk",
        SchedCls,
        &format!("{SKB_SK}\njeq r1, 0, +1\ncall 86\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "release_listener",
        SchedCls,
        &format!("{SKB_SK}\njeq r1, 0, +4\ncall 98\njeq r0, 0, +2\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "release_null",
        SchedCls,
        "mov64 r1, 0\ncall 86\nmov64 r0, 0\nexit",
        Refused,
    );
    add(
        "release_stack",
        SchedCls,
        "mov64 r1, r10\ncall 86\nmov64 r0, 0\nexit",
        Refused,
    );
    // skb->sk: a sock_common, or NULL.
    add(
        "skb_sk_read_family",
        SchedCls,
        &format!("{SKB_SK}\njeq r1, 0, +1\nldxw r0, [r1+4]\nmov64 r0, 0\nexit"),
        Accepted,
    );
    add(
        "skb_sk_read_unchecked",
        SchedCls,
        &format!("{SKB_SK}\nldxw r0, [r1+4]\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "skb_sk_read_mark",
        SchedCls,
        &format!("{SKB_SK}\njeq r1, 0, +1\nldxw r0, [r1+16]\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "skb_sk_write",
        SchedCls,
        &format!("{SKB_SK}\njeq r1, 0, +1\nstw [r1+4], 0\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "skb_sk_arithmetic",
        SchedCls,
        &format!("{SKB_SK}\njeq r1, 0, +1\nadd64 r1, 8\nmov64 r0, 0\nexit"),
        Refused,
    );
    // sk_fullsock / tcp_sock / get_listener_sock of skb->sk.
    let cast = |id: u32, ld: &str| {
        format!("{SKB_SK}\njeq r1, 0, +3\ncall {id}\njeq r0, 0, +1\n{ld}\nmov64 r0, 0\nexit")
    };
    add(
        "fullsock_read_mark",
        CgroupSkb,
        &cast(95, "ldxw r2, [r0+16]").replace("mov64 r0, 0", "mov64 r0, 1"),
        Accepted,
    );
    add(
        "fullsock_read_8",
        SchedCls,
        &cast(95, "ldxdw r2, [r0+16]"),
        Refused,
    );
    add(
        "tcp_sock_bytes_acked",
        SchedCls,
        &cast(96, "ldxdw r2, [r0+88]"),
        Accepted,
    );
    add(
        "tcp_sock_bytes_acked_4",
        SchedCls,
        &cast(96, "ldxw r2, [r0+88]"),
        Refused,
    );
    add(
        "tcp_sock_past_end",
        SchedCls,
        &cast(96, "ldxw r2, [r0+112]"),
        Refused,
    );
    add(
        "listener_read_state",
        SchedCls,
        &cast(98, "ldxw r2, [r0+72]"),
        Accepted,
    );
    add(
        "fullsock_unchecked_arg",
        SchedCls,
        &format!("{SKB_SK}\ncall 95\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "fullsock_unchecked_ret",
        SchedCls,
        &format!("{SKB_SK}\njeq r1, 0, +2\ncall 95\nldxw r2, [r0+16]\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "fullsock_of_ctx",
        SchedCls,
        "call 95\nmov64 r0, 0\nexit",
        Refused,
    );
    // tcp_sock of a looked-up socket keeps its reference: releasing the tcp_sock releases
    // the socket; the tcp_sock's NULL branch still holds it.
    add(
        "tcp_sock_of_lookup_release_cast",
        SchedCls,
        &format!(
            "{LOOKUP}\njeq r0, 0, +8\nmov64 r6, r0\nmov64 r1, r0\ncall 96\njeq r0, 0, +2\n\
             mov64 r1, r0\nja +1\nmov64 r1, r6\ncall 86\nmov64 r0, 0\nexit"
        ),
        Accepted,
    );
    add(
        "tcp_sock_of_lookup_null_branch_leaks",
        SchedCls,
        &format!(
            "{LOOKUP}\njeq r0, 0, +6\nmov64 r6, r0\nmov64 r1, r0\ncall 96\njeq r0, 0, +2\n\
             mov64 r1, r0\ncall 86\nmov64 r0, 0\nexit"
        ),
        Refused,
    );
    add(
        "tcp_sock_read_after_socket_release",
        SchedCls,
        &format!(
            "{LOOKUP}\njeq r0, 0, +8\nmov64 r6, r0\nmov64 r1, r0\ncall 96\nmov64 r7, r0\n\
             mov64 r1, r6\ncall 86\njeq r7, 0, +1\nldxw r0, [r7+0]\nmov64 r0, 0\nexit"
        ),
        Refused,
    );
    // sk_assign (tc): a checked socket; not NULL (only `sk_lookup` programs' version takes
    // NULL), not an unchecked one.
    let assign = |r2: &str| {
        format!(
            "{LOOKUP}\nmov64 r6, r0\nmov64 r1, r9\n{r2}\nmov64 r3, 0\ncall 124\n\
             jeq r6, 0, +2\nmov64 r1, r6\ncall 86\nmov64 r0, 0\nexit"
        )
    };
    add("sk_assign_null", SchedCls, &assign("mov64 r2, 0"), Refused);
    add(
        "sk_assign_maybe_null",
        SchedCls,
        &assign("mov64 r2, r6"),
        Refused,
    );
    add(
        "sk_assign_stack",
        SchedCls,
        &assign("mov64 r2, r10"),
        Refused,
    );
    add(
        "sk_assign_checked",
        SchedCls,
        &format!(
            "{LOOKUP}\nmov64 r6, r0\njeq r6, 0, +7\nmov64 r1, r9\nmov64 r2, r6\nmov64 r3, 0\n\
             call 124\nmov64 r1, r6\ncall 86\nmov64 r0, 0\nexit"
        ),
        Accepted,
    );
    add(
        "sk_assign_xdp",
        Xdp,
        "mov64 r2, 0\nmov64 r3, 0\ncall 124\nmov64 r0, 0\nexit",
        Refused,
    );
    // A tail call or exit in a subprogram-free program with a socket held.
    add(
        "lookup_then_ld_abs",
        SchedCls,
        &format!("{LOOKUP}\nmov64 r6, r9\nmov64 r7, r0\nldabsb 0\njeq r7, 0, +2\nmov64 r1, r7\ncall 86\nmov64 r0, 0\nexit"),
        Refused,
    );
    add(
        "lookup_spilled_release",
        SchedCls,
        &format!("{LOOKUP}\nstxdw [r10-24], r0\nldxdw r1, [r10-24]\njeq r1, 0, +1\ncall 86\nmov64 r0, 0\nexit"),
        Accepted,
    );
    v.extend(sockmap_cases());
    v
}

/// Lookups in a `SOCKMAP` and a `SOCKHASH`: an acquired socket once NULL-checked.
fn sockmap_cases() -> Vec<(Case, Expect)> {
    use bpfvm_verifier::{map_type, MapInfo};
    use Expect::*;
    let lookup = "stw [r10-4], 0\nldmap r1, 0\nmov64 r2, r10\nadd64 r2, -4\ncall 1\n";
    let mut v = Vec::new();
    for (kind, t) in [
        ("sockmap", map_type::SOCKMAP),
        ("sockhash", map_type::SOCKHASH),
    ] {
        let mut add = |name: &str, body: &str, e: Expect| {
            let mut c = Case::new(
                format!("{kind}_{name}"),
                ProgType::SchedCls,
                asm(&format!("{lookup}{body}")),
            );
            c.maps = vec![MapInfo::new(t, 4, 8, 4)];
            v.push((c, e));
        };
        add(
            "release",
            "jeq r0, 0, +3\nldxw r2, [r0+4]\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit",
            Accepted,
        );
        add(
            "leak",
            "jeq r0, 0, +1\nldxw r2, [r0+4]\nmov64 r0, 0\nexit",
            Refused,
        );
        add("unchecked", "ldxw r2, [r0+4]\nmov64 r0, 0\nexit", Refused);
        add(
            "bad_field",
            "jeq r0, 0, +3\nldxdw r2, [r0+0]\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit",
            Refused,
        );
        add(
            "write",
            "jeq r0, 0, +3\nstw [r0+0], 1\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit",
            Refused,
        );
    }
    // An XSKMAP holds AF_XDP sockets: `xdp_sock_or_null`, no reference, one field.
    let mut add = |name: &str, body: &str, e: Expect| {
        let mut c = Case::new(
            format!("xskmap_{name}"),
            ProgType::Xdp,
            asm(&format!("{lookup}{body}")),
        );
        c.maps = vec![MapInfo::new(map_type::XSKMAP, 4, 4, 4)];
        v.push((c, e));
    };
    add(
        "read_queue_id",
        "jeq r0, 0, +1\nldxw r2, [r0+0]\nmov64 r0, 2\nexit",
        Accepted,
    );
    add(
        "read_half",
        "jeq r0, 0, +1\nldxh r2, [r0+0]\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "read_past",
        "jeq r0, 0, +1\nldxw r2, [r0+4]\nmov64 r0, 2\nexit",
        Refused,
    );
    add("unchecked", "ldxw r2, [r0+0]\nmov64 r0, 2\nexit", Refused);
    add(
        "write",
        "jeq r0, 0, +1\nstw [r0+0], 1\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "release",
        "jeq r0, 0, +2\nmov64 r1, r0\ncall 86\nmov64 r0, 2\nexit",
        Refused,
    );
    add(
        "arithmetic",
        "jeq r0, 0, +1\nadd64 r0, 4\nmov64 r0, 2\nexit",
        Refused,
    );
    v
}

#[test]
fn socket_cases_get_their_verdict_offline() {
    let wrong = bpfvm_conformance::rule_cases::offline_mismatches(&cases(), true);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[cfg(target_os = "linux")]
#[test]
fn socket_cases_match_the_kernel() {
    use bpfvm_conformance::kernel;
    use bpfvm_conformance::rule_cases::check_all;
    use bpfvm_conformance::verdicts::compare;

    if !kernel::oracle_or_skip() {
        return;
    }
    let (compared, failures) = check_all(&cases(), compare);
    assert!(compared >= 100, "only {compared} verdicts compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One read of `size` bytes at `off` through a pointer of each socket type: `skb->sk`
/// (sock_common), `bpf_sk_fullsock(skb->sk)` (sock), `bpf_tcp_sock(skb->sk)` (tcp_sock).
fn field_read(kind: &str, off: i64, size: i64) -> Case {
    let w = match size {
        1 => "b",
        2 => "h",
        4 => "w",
        _ => "dw",
    };
    let src = match kind {
        "sock_common" => {
            format!("{SKB_SK}\njeq r1, 0, +1\nldx{w} r0, [r1{off:+}]\nmov64 r0, 0\nexit")
        }
        "sock" | "tcp_sock" => {
            let id = if kind == "sock" { 95 } else { 96 };
            format!("{SKB_SK}\njeq r1, 0, +3\ncall {id}\njeq r0, 0, +1\nldx{w} r2, [r0{off:+}]\nmov64 r0, 0\nexit")
        }
        _ => unreachable!("socket kind"),
    };
    Case::new(
        format!("{kind}_{off}_{size}"),
        ProgType::SchedCls,
        asm(&src),
    )
}

#[test]
fn socket_field_reads_offline() {
    // A few points of each table, as the kernel 6.18 answers them (all of them are compared
    // with the kernel by `socket_fields_match_the_kernel`).
    let ok = |k: &str, off: i64, size: i64| field_read(k, off, size).ours(Privilege::Root).is_ok();
    assert!(ok("sock_common", 4, 4) && !ok("sock_common", 8, 4) && ok("sock_common", 48, 2));
    assert!(ok("sock", 8, 4) && ok("sock", 20, 4) && !ok("sock", 20, 2));
    assert!(ok("tcp_sock", 80, 8) && !ok("tcp_sock", 80, 4) && ok("tcp_sock", 108, 4));
    let e = field_read("sock", 50, 2).ours(Privilege::Root).unwrap_err();
    assert_eq!(e.message, "R0 invalid sock access off=50 size=2");
    let e = field_read("sock_common", 12, 4)
        .ours(Privilege::Root)
        .unwrap_err();
    assert_eq!(e.message, "R1 invalid sock_common access off=12 size=4");
    let e = field_read("tcp_sock", 2, 2)
        .ours(Privilege::Root)
        .unwrap_err();
    assert_eq!(e.message, "R0 invalid tcp_sock access off=2 size=2");
}

#[cfg(target_os = "linux")]
#[test]
fn socket_fields_match_the_kernel() {
    use bpfvm_conformance::kernel;
    use bpfvm_conformance::verdicts::compare;

    if !kernel::oracle_or_skip() {
        return;
    }
    let mut failures = Vec::new();
    let mut compared = 0;
    for (kind, end) in [("sock_common", 80), ("sock", 80), ("tcp_sock", 112)] {
        for off in -4..end + 8 {
            for size in [1, 2, 4, 8] {
                let case = field_read(kind, off, size);
                let cmp = compare(&case, Privilege::Root).unwrap_or_else(|e| panic!("{e}"));
                compared += 1;
                let accepted = cmp.kernel_errno.is_none();
                if !cmp.same_verdict() || !cmp.same_errno() {
                    failures.push(format!("verdicts differ: {}", cmp.describe()));
                } else if !accepted && !cmp.same_message() {
                    failures.push(format!(
                        "messages differ: {}\n    kernel log: {:?}",
                        cmp.describe(),
                        cmp.kernel_messages
                    ));
                }
            }
        }
    }
    println!("{compared} socket field reads compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
