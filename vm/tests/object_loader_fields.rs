//! `ObjectLoader::load` creates maps with the fields their BTF describes, as
//! `Object::create_maps` does: a value's `bpf_spin_lock` (lpm_firewall's `rule_stats`)
//! and `bpf_timer` (timers' `timers`), so the verifier's verdicts are the kernel's.

mod common;

use bpfvm::ObjectLoader;

#[test]
fn object_loader_keeps_spin_locks_and_timers() {
    let vm = common::root_vm(1);
    let obj = ObjectLoader::new(common::fixture("lpm_firewall"))
        .load(&vm)
        .unwrap();
    assert!(obj.map("rule_stats").unwrap().spin_lock_off().is_some());
    obj.program("xdp_firewall")
        .unwrap_or_else(|e| panic!("the kernel loads it: {e}"));
    let obj = ObjectLoader::new(common::fixture("timers"))
        .load(&vm)
        .unwrap();
    assert_eq!(obj.map("timers").unwrap().timer_off(), Some(8));
}
