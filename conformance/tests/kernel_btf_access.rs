//! Loads through `PTR_TO_BTF_ID` pointers against the kernel (issue 15,
//! `btf_struct_access`): `tp_btf` programs reading `task_struct` and `sk_buff` fields
//! through their tracepoint arguments, and `raw_tracepoint` programs reading the
//! `task_struct` of `bpf_get_current_task_btf`, with the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`) as bpfvm's target BTF. Accepted forms (scalars, nested
//! structs and arrays, pointer members, NULL-checked RCU pointers) and refused ones
//! (beyond the struct, negative and variable offsets, writes, misaligned pointer reads,
//! partial members, unchecked `rcu_ptr_or_null_`) must get the kernel's verdict, errno and
//! message. (fentry/fexit need trampolines, which the kernel these tests were written on
//! refuses; kernel_tracing_types.rs covers their contexts.)
#![cfg(target_os = "linux")]

use bpfvm::loader::{Btf, BtfType};
use bpfvm_conformance::kernel;
use bpfvm_conformance::kernel::btf_cases::{case as c, check_all, vmlinux, BtfCase as C};

/// The byte offset of member `name` of struct `sname` (looking into anonymous members),
/// and the struct's size.
fn offset_of(btf: &Btf, sname: &str, name: &str) -> (u32, u32) {
    fn find(btf: &Btf, id: u32, name: &str) -> Option<u32> {
        let (BtfType::Struct { members, .. } | BtfType::Union { members, .. }) =
            btf.get(btf.resolve(id)?)?
        else {
            return None;
        };
        members.iter().find_map(|m| {
            if &*m.name == name {
                Some(m.bit_offset / 8)
            } else if m.name.is_empty() {
                find(btf, m.type_id, name).map(|o| o + m.bit_offset / 8)
            } else {
                None
            }
        })
    }
    let id = btf.struct_by_name(sname).expect("struct in vmlinux");
    let Some(BtfType::Struct { size, .. }) = btf.get(id) else {
        unreachable!()
    };
    let off = find(btf, id, name).unwrap_or_else(|| panic!("no {sname}.{name}"));
    (off, *size)
}

const R0: &str = "mov64 r0, 0\nexit";

#[test]
fn btf_pointer_loads_match_the_kernel() {
    if !kernel::oracle_or_skip() {
        return;
    }
    let Some(btf) = vmlinux() else {
        println!("skipped: no /sys/kernel/btf/vmlinux");
        return;
    };
    let (pid, task_size) = offset_of(&btf, "task_struct", "pid");
    let (tgid, _) = offset_of(&btf, "task_struct", "tgid");
    let (comm, _) = offset_of(&btf, "task_struct", "comm");
    let (mm, _) = offset_of(&btf, "task_struct", "mm");
    let (real_parent, _) = offset_of(&btf, "task_struct", "real_parent");
    let (stack, _) = offset_of(&btf, "task_struct", "stack");
    let (exe_file, _) = offset_of(&btf, "mm_struct", "exe_file");
    let (mm_users, _) = offset_of(&btf, "mm_struct", "mm_users");
    let (skb_sk, _) = offset_of(&btf, "sk_buff", "sk");
    let (skb_len, skb_size) = offset_of(&btf, "sk_buff", "len");
    let (sk_family, _) = offset_of(&btf, "sock_common", "skc_family");
    assert_eq!(tgid, pid + 4, "pid and tgid are neighbours");
    // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...)
    let prev = "ldxdw r2, [r1+8]";
    let sw = "tp_btf/sched_switch";
    // netif_receive_skb(struct sk_buff *skb)
    let rx = "tp_btf/netif_receive_skb";
    let skb = "ldxdw r2, [r1+0]";
    let cases = vec![
        c(sw, format!("{prev}\nldxw r3, [r2+{pid}]\n{R0}"), true),
        c(sw, format!("{prev}\nldxdw r3, [r2+{comm}]\n{R0}"), true),
        c(
            sw,
            format!("{prev}\nldxb r3, [r2+{}]\n{R0}", comm + 15),
            true,
        ),
        c(
            sw,
            format!("{prev}\nadd64 r2, {pid}\nldxw r3, [r2+0]\n{R0}"),
            true,
        ),
        // task->mm->mm_users: an untagged pointer member, then a field of it.
        c(
            sw,
            format!("{prev}\nldxdw r3, [r2+{mm}]\nldxw r4, [r3+{mm_users}]\n{R0}"),
            true,
        ),
        // mm->exe_file is RCU-or-NULL only from a trusted mm: this mm is not.
        c(
            sw,
            format!(
                "{prev}\nldxdw r3, [r2+{mm}]\nldxdw r4, [r3+{exe_file}]\nldxw r5, [r4+0]\n{R0}"
            ),
            true,
        ),
        // task->real_parent is RCU-protected (task_struct__safe_rcu): not NULL.
        c(
            sw,
            format!("{prev}\nldxdw r3, [r2+{real_parent}]\nldxw r4, [r3+{pid}]\n{R0}"),
            true,
        ),
        // One load reached with a trusted and with an RCU pointer.
        c(
            sw,
            format!(
                "{prev}\nldxdw r5, [r1+0]\nmov64 r3, r2\njeq r5, 0, +1\nldxdw r3, [r2+{real_parent}]\nldxw r4, [r3+{pid}]\n{R0}"
            ),
            true,
        ),
        c(
            sw,
            format!("{prev}\nldxw r3, [r2+{task_size}]\n{R0}"),
            false,
        ),
        c(sw, format!("{prev}\nldxdw r3, [r2-8]\n{R0}"), false),
        c(
            sw,
            format!("{prev}\nldxdw r3, [r1+0]\nand64 r3, 8\nadd64 r2, r3\nldxw r4, [r2+0]\n{R0}"),
            false,
        ),
        c(sw, format!("{prev}\nstw [r2+{pid}], 1\n{R0}"), false),
        c(sw, format!("{prev}\nldxw r3, [r2+{mm}]\n{R0}"), false),
        c(sw, format!("{prev}\nldxdw r3, [r2+{pid}]\n{R0}"), false),
        c(
            sw,
            format!("{prev}\nldxdw r3, [r2+{stack}]\nldxdw r4, [r3+0]\n{R0}"),
            true,
        ),
        C {
            license: "Dual BSD/GPL",
            ..c(sw, format!("{prev}\nldxw r3, [r2+{pid}]\n{R0}"), true)
        },
        // skb->sk is RCU-or-NULL (sk_buff__safe_rcu_or_null): NULL-check it first.
        c(rx, format!("{skb}\nldxw r3, [r2+{skb_len}]\n{R0}"), true),
        c(rx, format!("{skb}\nldxw r3, [r2+{skb_size}]\n{R0}"), false),
        c(
            rx,
            format!("{skb}\nldxdw r3, [r2+{skb_sk}]\nldxh r4, [r3+{sk_family}]\n{R0}"),
            false,
        ),
        c(
            rx,
            format!(
                "{skb}\nldxdw r3, [r2+{skb_sk}]\njeq r3, 0, +1\nldxh r4, [r3+{sk_family}]\n{R0}"
            ),
            true,
        ),
        // bpf_get_current_task_btf in a raw tracepoint program.
        c(
            "raw_tp",
            format!("call 158\nldxw r3, [r0+{pid}]\n{R0}"),
            true,
        ),
        c(
            "raw_tp",
            format!("call 158\nldxdw r3, [r0+{real_parent}]\nldxw r4, [r3+{tgid}]\n{R0}"),
            true,
        ),
        c(
            "raw_tp",
            format!("call 158\nldxw r3, [r0+{task_size}]\n{R0}"),
            false,
        ),
        c(
            "raw_tp",
            format!("call 158\nstdw [r0+{pid}], 0\n{R0}"),
            false,
        ),
    ];
    let failures = check_all(&btf, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
