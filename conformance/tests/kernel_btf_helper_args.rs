//! Helpers taking or returning BTF-typed sockets against the kernel (issue 15,
//! `ARG_PTR_TO_BTF_ID_SOCK_COMMON`, `RET_PTR_TO_BTF_ID_OR_NULL`): `tp_btf` programs giving
//! the `struct sock *` of their tracepoint to `bpf_get_socket_cookie` (tracing's
//! `bpf_get_socket_ptr_cookie_proto`, as bcc's `tcppktlat` does) and to the
//! `bpf_skc_to_*` casts, reading through what a cast returns, and `sched_cls` programs
//! casting `skb->sk` and an acquired socket (whose reference the cast carries to
//! `bpf_sk_release`) and giving the cast to `bpf_sk_assign`; `bpf_get_task_stack` and
//! `bpf_task_pt_regs` given a `task_struct` (`ARG_PTR_TO_BTF_ID`). Refused forms: a
//! struct other than one starting with `struct sock_common` (or than `task_struct`), a
//! scalar, the context, an RCU pointer, an unchecked cast result read or released, a
//! leaked reference, helpers other program types lack, a GPL-only helper in a proprietary
//! program. The running kernel's BTF (`/sys/kernel/btf/vmlinux`) is bpfvm's target BTF;
//! verdict, errno and every line of bpfvm's message must be the kernel's.
#![cfg(target_os = "linux")]

use bpfvm::loader::{Btf, BtfType};
use bpfvm_conformance::kernel;
use bpfvm_conformance::kernel::btf_cases::{case as c, check_all, vmlinux, BtfCase as C};

/// The byte offset of member `name` of struct `sname` (not looking into anonymous
/// members).
fn offset_of(btf: &Btf, sname: &str, name: &str) -> u32 {
    let id = btf.struct_by_name(sname).expect("struct in vmlinux");
    let Some(BtfType::Struct { members, .. }) = btf.get(id) else {
        unreachable!()
    };
    members
        .iter()
        .find(|m| &*m.name == name)
        .unwrap_or_else(|| panic!("no {sname}.{name}"))
        .bit_offset
        / 8
}

const R0: &str = "mov64 r0, 0\nexit";

/// `r0 = bpf_sk_lookup_tcp(ctx, &tuple, 12, 0, 0)` (a zeroed IPv4 tuple at fp-16).
const LOOKUP: &str = "
    stdw [r10-16], 0
    stw [r10-8], 0
    mov64 r2, r10
    add64 r2, -16
    mov64 r3, 12
    mov64 r4, 0
    mov64 r5, 0
    call 84
";

fn cases(btf: &Btf) -> Vec<C> {
    // tcp_destroy_sock(struct sock *sk), sched_switch(bool, task_struct *prev, ...),
    // netif_receive_skb(struct sk_buff *skb).
    let ds = "tp_btf/tcp_destroy_sock";
    let sw = "tp_btf/sched_switch";
    let rx = "tp_btf/netif_receive_skb";
    let sk = "ldxdw r1, [r1+0]";
    let skb_sk = offset_of(btf, "sk_buff", "sk");
    let tcp_srtt = offset_of(btf, "tcp_sock", "srtt_us");
    let mut v = vec![
        // bpf_get_socket_cookie(sk): tcppktlat's call.
        c(ds, format!("{sk}\ncall 46\n{R0}"), true),
        c(ds, format!("{sk}\ncall 46\nexit"), true),
        // NULL: the tracing prototype's argument may be NULL.
        c(ds, format!("mov64 r1, 0\ncall 46\n{R0}"), true),
        c(ds, format!("mov64 r1, 5\ncall 46\n{R0}"), false),
        c(ds, format!("call 46\n{R0}"), false),
        // A socket pointer moved into the struct: the kernel matches the struct at the
        // pointer's offset.
        c(ds, format!("{sk}\nadd64 r1, 8\ncall 46\n{R0}"), false),
        c(
            sw,
            format!("ldxdw r1, [r1+8]\ncall 46\n{R0}"),
            false,
        ),
        c(rx, format!("ldxdw r1, [r1+0]\ncall 46\n{R0}"), false),
        // skb->sk is an RCU pointer (rcu_ptr_or_null_): not a type the argument takes.
        c(
            rx,
            format!("ldxdw r1, [r1+0]\nldxdw r1, [r1+{skb_sk}]\ncall 46\n{R0}"),
            false,
        ),
        c(
            rx,
            format!("ldxdw r1, [r1+0]\nldxdw r1, [r1+{skb_sk}]\njeq r1, 0, +1\ncall 46\n{R0}"),
            false,
        ),
        // Raw tracepoints have no bpf_get_socket_cookie (nor casts).
        c("raw_tp", format!("{sk}\ncall 46\n{R0}"), false),
        c("raw_tp", format!("{sk}\ncall 137\n{R0}"), false),
        // bpf_skc_to_tcp_sock: NULL-checked, then a field of struct tcp_sock.
        c(
            ds,
            format!("{sk}\ncall 137\njeq r0, 0, +1\nldxw r2, [r0+{tcp_srtt}]\n{R0}"),
            true,
        ),
        c(
            ds,
            format!("{sk}\ncall 137\nldxw r2, [r0+{tcp_srtt}]\n{R0}"),
            false,
        ),
        // Its result (maybe NULL) to bpf_get_socket_cookie, which takes NULL.
        c(ds, format!("{sk}\ncall 137\nmov64 r1, r0\ncall 46\n{R0}"), true),
        // ... and to another cast, which does not.
        c(ds, format!("{sk}\ncall 137\nmov64 r1, r0\ncall 136\n{R0}"), false),
        c(
            ds,
            format!("{sk}\ncall 137\njeq r0, 0, +2\nmov64 r1, r0\ncall 136\n{R0}"),
            true,
        ),
        c(ds, format!("mov64 r1, 0\ncall 137\n{R0}"), false),
        c(sw, format!("ldxdw r1, [r1+8]\ncall 137\n{R0}"), false),
        // A cast's result returned (root may leak pointers; tp_btf has no range).
        c(ds, format!("{sk}\ncall 137\nexit"), true),
        // skc_to_* in tc: on skb->sk (sock_common_or_null, NULL-checked), then a field.
        c(
            "tc",
            format!("ldxdw r1, [r1+168]\njeq r1, 0, +3\ncall 137\njeq r0, 0, +1\nldxw r2, [r0+{tcp_srtt}]\n{R0}"),
            true,
        ),
        c("tc", format!("ldxdw r1, [r1+168]\ncall 137\n{R0}"), false),
        // An acquired socket cast keeps its reference: released through the cast...
        c(
            "tc",
            format!("{LOOKUP}\njeq r0, 0, +6\nmov64 r6, r0\nmov64 r1, r0\ncall 137\njeq r0, 0, +4\nmov64 r1, r0\ncall 86\n{R0}\nmov64 r1, r6\ncall 86\n{R0}"),
            true,
        ),
        // ... which then cannot be released again through the socket.
        c(
            "tc",
            format!("{LOOKUP}\njeq r0, 0, +8\nmov64 r6, r0\nmov64 r1, r0\ncall 137\njeq r0, 0, +2\nmov64 r1, r0\ncall 86\nmov64 r1, r6\ncall 86\n{R0}"),
            false,
        ),
        // An unchecked cast result released.
        c(
            "tc",
            format!("{LOOKUP}\njeq r0, 0, +4\nmov64 r1, r0\ncall 137\nmov64 r1, r0\ncall 86\n{R0}"),
            false,
        ),
        // bpf_sk_assign(ctx, cast, 0) of an acquired socket's cast, then the release.
        c(
            "tc",
            format!("mov64 r9, r1\n{LOOKUP}\njeq r0, 0, +10\nmov64 r6, r0\nmov64 r1, r0\ncall 137\njeq r0, 0, +4\nmov64 r1, r9\nmov64 r2, r0\nmov64 r3, 0\ncall 124\nmov64 r1, r6\ncall 86\n{R0}"),
            true,
        ),
        // ... and of skb->sk's cast (no reference: bpf_sk_assign releases nothing).
        c(
            "tc",
            format!("mov64 r9, r1\nldxdw r1, [r1+168]\njeq r1, 0, +6\ncall 137\njeq r0, 0, +4\nmov64 r1, r9\nmov64 r2, r0\nmov64 r3, 0\ncall 124\n{R0}"),
            true,
        ),
        // ... unchecked.
        c(
            "tc",
            format!("mov64 r9, r1\nldxdw r1, [r1+168]\njeq r1, 0, +5\ncall 137\nmov64 r1, r9\nmov64 r2, r0\nmov64 r3, 0\ncall 124\n{R0}"),
            false,
        ),
        // A BTF socket from skb->sk cast, never acquired: not releasable.
        c(
            "tc",
            "ldxdw r1, [r1+168]\njeq r1, 0, +4\ncall 137\njeq r0, 0, +2\nmov64 r1, r0\ncall 86\nmov64 r0, 0\nexit",
            false,
        ),
    ];
    for id in [136, 138, 139, 140, 178] {
        v.push(c(ds, format!("{sk}\ncall {id}\n{R0}"), true));
    }
    // ARG_PTR_TO_BTF_ID of a task_struct: bpf_get_task_stack(task, buf, 64, 0) and
    // bpf_task_pt_regs(task) (GPL only; its pt_regs read through).
    let stack = "mov64 r2, r10\nadd64 r2, -64\nmov64 r3, 64\nmov64 r4, 0\ncall 141";
    let prev = "ldxdw r1, [r1+8]";
    let real_parent = offset_of(btf, "task_struct", "real_parent");
    v.extend([
        c(sw, format!("{prev}\n{stack}\n{R0}"), true),
        c(
            "raw_tp",
            format!("call 158\nmov64 r1, r0\n{stack}\n{R0}"),
            true,
        ),
        // task->real_parent: an RCU pointer, which ARG_PTR_TO_BTF_ID takes.
        c(
            sw,
            format!("{prev}\nldxdw r1, [r1+{real_parent}]\n{stack}\n{R0}"),
            true,
        ),
        c(ds, format!("{sk}\n{stack}\n{R0}"), false),
        c(sw, format!("mov64 r1, 0\n{stack}\n{R0}"), false),
        c(sw, format!("{stack}\n{R0}"), false),
        c(sw, format!("{prev}\nadd64 r1, 8\n{stack}\n{R0}"), false),
        c(
            sw,
            format!("{prev}\ncall 175\nldxdw r2, [r0+0]\n{R0}"),
            true,
        ),
        c(
            "raw_tp",
            format!("call 158\nmov64 r1, r0\ncall 175\nldxdw r2, [r0+8]\n{R0}"),
            true,
        ),
        c(ds, format!("{sk}\ncall 175\n{R0}"), false),
        C {
            license: "Dual BSD/GPL",
            ..c(sw, format!("{prev}\ncall 175\n{R0}"), true)
        },
        C {
            license: "Proprietary",
            ..c(sw, format!("{prev}\ncall 175\n{R0}"), false)
        },
        C {
            license: "Proprietary",
            ..c(sw, format!("{prev}\n{stack}\n{R0}"), true)
        },
    ]);
    // bpf_skc_to_mptcp_sock takes the socket types only (ARG_PTR_TO_SOCK_COMMON).
    v.push(c(ds, format!("{sk}\ncall 196\n{R0}"), false));
    v.push(c(
        "tc",
        "ldxdw r1, [r1+168]\njeq r1, 0, +1\ncall 196\nmov64 r0, 0\nexit",
        true,
    ));
    v
}

#[test]
fn btf_socket_helpers_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let Some(btf) = vmlinux() else {
        println!("skipped: no /sys/kernel/btf/vmlinux");
        return;
    };
    let cases = cases(&btf);
    let failures = check_all(&btf, &cases);
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
