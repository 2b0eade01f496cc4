//! Checks that `signed_v4.o` (built with -mcpu=v4) computes signed division and modulo,
//! sign extensions and bswap as its C source says, including division by zero.

use bpfvm::loader::Object;
use bpfvm::{CpuId, Input, Vm};

fn input(a: i64, b: i64, c: i8, d: i16, e: i32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&a.to_ne_bytes());
    v.extend_from_slice(&b.to_ne_bytes());
    v.extend_from_slice(&c.to_ne_bytes());
    v.push(0);
    v.extend_from_slice(&d.to_ne_bytes());
    v.extend_from_slice(&e.to_ne_bytes());
    v
}

#[test]
fn signed_ops_match_c() {
    let path = format!("{}/tests/fixtures/signed_v4.o", env!("CARGO_MANIFEST_DIR"));
    let obj = Object::from_file(path).unwrap();
    let maps = obj.create_maps(1).unwrap();
    let vm = Vm::builder().cpus(1).build();
    let prog = vm
        .load(obj.vm_program("signed_ops", &maps).unwrap())
        .unwrap();
    let key = 0u32.to_ne_bytes();
    for (a, b, c, d, e) in [
        (-7i64, 2i64, -1i8, -300i16, 70000i32),
        (7, -2, 127, 32767, -5),
        (i64::MIN + 1, -1, -128, -32768, i32::MIN),
        (-9, 0, 5, 5, 5),
    ] {
        maps.get("in")
            .unwrap()
            .update(&key, &input(a, b, c, d, e), 0)
            .unwrap();
        let ret = vm
            .run(&prog, CpuId(0), &Input::packet(vec![0u8; 14]))
            .unwrap()
            .retval;
        let mut out = [0u8; 64];
        maps.get("out").unwrap().lookup(&key, &mut out, 0).unwrap();
        let i64_at = |o: usize| i64::from_ne_bytes(out[o..o + 8].try_into().unwrap());
        let i32_at = |o: usize| i32::from_ne_bytes(out[o..o + 4].try_into().unwrap());
        // BPF: x / 0 = 0, x % 0 = x.
        let (q, r) = if b == 0 {
            (0, a)
        } else {
            (a.wrapping_div(b), a.wrapping_rem(b))
        };
        let (a32, b32) = (a as i32, b as i32);
        let (q32, r32) = if b32 == 0 {
            (0, a32)
        } else {
            (a32.wrapping_div(b32), a32.wrapping_rem(b32))
        };
        let at = format!("a={a} b={b}");
        assert_eq!(i64_at(0), q, "quot {at}");
        assert_eq!(i64_at(8), r, "rem {at}");
        assert_eq!(i32_at(16), q32, "quot32 {at}");
        assert_eq!(i32_at(20), r32, "rem32 {at}");
        assert_eq!(i64_at(24), i64::from(c), "wide8 {at}");
        assert_eq!(i64_at(32), i64::from(d), "wide16 {at}");
        assert_eq!(i64_at(40), i64::from(e), "wide32 {at}");
        assert_eq!(i64_at(48), i64::from(a as i8), "narrow8 {at}");
        assert_eq!(
            out[56..64],
            (a as u64).swap_bytes().to_ne_bytes(),
            "swapped {at}"
        );
        assert_eq!(ret as u32, q as u32, "retval {at}");
    }
}
