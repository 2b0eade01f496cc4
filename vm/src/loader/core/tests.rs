//! Unit tests of the resolver, one relocation kind after another, on small BTFs built
//! here (local = the program's, target = the "kernel's").

use super::*;
use crate::loader::btf::tests::build;

/// A tiny BTF writer: each method adds one type and returns its id.
struct B {
    words: Vec<u32>,
    strings: Vec<u8>,
    next: u32,
}

impl B {
    fn new() -> Self {
        B {
            words: Vec::new(),
            strings: vec![0],
            next: 1,
        }
    }
    fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }
    fn add(&mut self, w: &[u32]) -> u32 {
        self.words.extend_from_slice(w);
        self.next += 1;
        self.next - 1
    }
    fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let n = self.s(name);
        self.add(&[n, 1 << 24, size, (u32::from(signed) << 24) | (size * 8)])
    }
    fn ptr(&mut self, to: u32) -> u32 {
        self.add(&[0, 2 << 24, to])
    }
    fn array(&mut self, elem: u32, n: u32) -> u32 {
        self.add(&[0, 3 << 24, 0, elem, elem, n])
    }
    fn typedef(&mut self, name: &str, to: u32) -> u32 {
        let n = self.s(name);
        self.add(&[n, 8 << 24, to])
    }
    /// Members: (name, type, bit offset, bitfield bits).
    fn record(&mut self, union: bool, name: &str, size: u32, ms: &[(&str, u32, u32, u32)]) -> u32 {
        let kflag = ms.iter().any(|m| m.3 > 0);
        let n = self.s(name);
        let kind = if union { 5 } else { 4 };
        let mut w = vec![
            n,
            (u32::from(kflag) << 31) | (kind << 24) | ms.len() as u32,
            size,
        ];
        for &(mn, t, off, bits) in ms {
            let mn = self.s(mn);
            w.extend([mn, t, if kflag { (bits << 24) | off } else { off }]);
        }
        self.add(&w)
    }
    fn st(&mut self, name: &str, size: u32, ms: &[(&str, u32, u32, u32)]) -> u32 {
        self.record(false, name, size, ms)
    }
    fn enm(&mut self, name: &str, signed: bool, vs: &[(&str, i32)]) -> u32 {
        let n = self.s(name);
        let mut w = vec![
            n,
            (u32::from(signed) << 31) | (6 << 24) | vs.len() as u32,
            4,
        ];
        for &(vn, v) in vs {
            let vn = self.s(vn);
            w.extend([vn, v as u32]);
        }
        self.add(&w)
    }
    fn btf(&self) -> Btf {
        Btf::parse(&build(&self.words, &self.strings)).unwrap()
    }
}

fn run(
    local: &Btf,
    target: Option<&Btf>,
    root: u32,
    access: &str,
    kind: CoreRelocKind,
) -> Result<Resolved, String> {
    let relo = CoreRelo {
        insn: 0,
        type_id: root,
        access: access.into(),
        kind: kind as u32,
    };
    let needed: HashSet<&str> = local
        .get(root)
        .map(|t| essential(name(t)))
        .into_iter()
        .collect();
    let cands = Candidates::new(local, target, &needed);
    let mut budget = Budget(crate::loader::limits::MAX_CORE_STEPS);
    resolve(&cands, &relo, kind, &mut budget)
        .map(|r| r.0)
        .map_err(|e| e.1)
}

fn value(local: &Btf, target: &Btf, root: u32, access: &str, kind: CoreRelocKind) -> u64 {
    let r = run(local, Some(target), root, access, kind).unwrap();
    assert_eq!(r.poison, None, "{kind} {access}");
    r.new_val
}

/// local: struct s { int a; int b; } (id 2); target: struct s { long x; int b; int a; }.
fn moved() -> (Btf, Btf) {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    l.st("s", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let long = t.int("long", 8, true);
    t.st(
        "s",
        16,
        &[("x", long, 0, 0), ("b", int, 64, 0), ("a", int, 96, 0)],
    );
    (l.btf(), t.btf())
}

#[test]
fn field_byte_offset_follows_a_moved_field() {
    let (l, t) = moved();
    let r = run(&l, Some(&t), 2, "0:1", CoreRelocKind::FieldByteOffset).unwrap();
    assert_eq!((r.orig_val, r.new_val, r.orig_sz, r.new_sz), (4, 8, 4, 4));
    assert_eq!(value(&l, &t, 2, "0:0", CoreRelocKind::FieldByteOffset), 12);
    // s[2].a: the array index scales with the target's size
    assert_eq!(
        value(&l, &t, 2, "2:0", CoreRelocKind::FieldByteOffset),
        2 * 16 + 12
    );
}

#[test]
fn field_byte_size_exists_and_signed() {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let uint = l.int("unsigned int", 4, false);
    let arr = l.array(int, 4);
    l.st(
        "s",
        24,
        &[("a", arr, 0, 0), ("u", uint, 128, 0), ("gone", int, 160, 0)],
    );
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let uint = t.int("unsigned int", 4, false);
    let arr = t.array(int, 8);
    t.st("s", 36, &[("a", arr, 0, 0), ("u", uint, 256, 0)]);
    let (l, t) = (l.btf(), t.btf());
    assert_eq!(value(&l, &t, 4, "0:0", CoreRelocKind::FieldByteSize), 32);
    assert_eq!(
        value(&l, &t, 4, "0:0:3", CoreRelocKind::FieldByteOffset),
        12
    );
    assert_eq!(value(&l, &t, 4, "0:0:3", CoreRelocKind::FieldByteSize), 4);
    assert_eq!(value(&l, &t, 4, "0:1", CoreRelocKind::FieldExists), 1);
    assert_eq!(value(&l, &t, 4, "0:2", CoreRelocKind::FieldExists), 0);
    assert!(
        run(&l, Some(&t), 4, "0:0:1", CoreRelocKind::FieldSigned).is_err(),
        "array element"
    );
    assert_eq!(value(&l, &t, 4, "0:1", CoreRelocKind::FieldSigned), 0);
    // a missing field poisons every kind but field_exists
    let r = run(&l, Some(&t), 4, "0:2", CoreRelocKind::FieldByteOffset).unwrap();
    assert!(r.poison.unwrap().contains("no struct s"));
    // an index past the target array's end does not match
    let r = run(&l, Some(&t), 4, "0:0:3", CoreRelocKind::FieldByteOffset).unwrap();
    assert_eq!(r.poison, None);
}

#[test]
fn bitfield_shifts_as_libbpf_computes_them() {
    // local: struct b { u8 x:1, y:2; }  target: struct b { u32 pad; u16 p:5, y:2, x:1; }
    let mut l = B::new();
    let u8t = l.int("unsigned char", 1, false);
    l.st("b", 1, &[("x", u8t, 0, 1), ("y", u8t, 1, 2)]);
    let mut t = B::new();
    let u16t = t.int("unsigned short", 2, false);
    let u32t = t.int("unsigned int", 4, false);
    t.st(
        "b",
        8,
        &[
            ("pad", u32t, 0, 0),
            ("p", u16t, 32, 5),
            ("y", u16t, 37, 2),
            ("x", u16t, 39, 1),
        ],
    );
    let (l, t) = (l.btf(), t.btf());
    let k = |a, kind| value(&l, &t, 2, a, kind);
    assert_eq!(k("0:1", CoreRelocKind::FieldByteOffset), 4);
    assert_eq!(k("0:1", CoreRelocKind::FieldByteSize), 2);
    // y occupies bits 5..7 of the 16-bit load: 64 - (37 + 2 - 32) = 57, 64 - 2 = 62
    assert_eq!(k("0:1", CoreRelocKind::FieldLshiftU64), 57);
    assert_eq!(k("0:1", CoreRelocKind::FieldRshiftU64), 62);
    assert_eq!(k("0:0", CoreRelocKind::FieldLshiftU64), 64 - 8);
    assert_eq!(k("0:0", CoreRelocKind::FieldRshiftU64), 63);
    assert_eq!(k("0:0", CoreRelocKind::FieldSigned), 0);
    // bitfield offsets are not checked against the instruction (libbpf's rule)
    let r = run(&l, Some(&t), 2, "0:1", CoreRelocKind::FieldLshiftU64).unwrap();
    assert!(!r.validate);
}

#[test]
fn flavors_match_and_ambiguity_is_an_error() {
    // local: struct s___mine { int b; }; target: s___1 and s___2 agree, s___3 does not
    let mut l = B::new();
    let int = l.int("int", 4, true);
    l.st("s___mine", 4, &[("b", int, 0, 0)]);
    let l = l.btf();
    let mut t = B::new();
    let int = t.int("int", 4, true);
    t.st("s___1", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
    t.st("s___2", 8, &[("c", int, 0, 0), ("b", int, 32, 0)]);
    t.st("other", 8, &[("b", int, 0, 0)]);
    let agree = t.btf();
    assert_eq!(
        value(&l, &agree, 2, "0:0", CoreRelocKind::FieldByteOffset),
        4
    );
    t.st("s___3", 4, &[("b", int, 0, 0)]);
    let e = run(&l, Some(&t.btf()), 2, "0:0", CoreRelocKind::FieldByteOffset).unwrap_err();
    assert!(e.contains("ambiguous"), "{e}");
}

#[test]
fn members_are_found_inside_anonymous_members() {
    let (l, _) = moved();
    let mut t = B::new();
    let int = t.int("int", 4, true);
    let anon = t.record(true, "", 8, &[("x", int, 0, 0), ("a", int, 0, 0)]);
    t.st("s", 16, &[("b", int, 0, 0), ("", anon, 64, 0)]);
    assert_eq!(
        value(&l, &t.btf(), 2, "0:0", CoreRelocKind::FieldByteOffset),
        8
    );
}

#[test]
fn type_relocations() {
    let mut l = B::new();
    let int = l.int("int", 4, true);
    let s = l.st("s", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
    let p = l.ptr(s);
    let td = l.typedef("s_t", s);
    let _ = p;
    let gone = l.st("gone", 4, &[("a", int, 0, 0)]);
    let bad = l.st("s___bad", 4, &[("z", int, 0, 0)]);
    let l = l.btf();
    let mut t = B::new();
    let _pad = t.int("char", 1, true);
    let int = t.int("int", 4, true);
    let ts = t.st(
        "s",
        24,
        &[("a", int, 0, 0), ("c", int, 32, 0), ("b", int, 64, 0)],
    );
    t.typedef("s_t", ts);
    let t = t.btf();
    assert_eq!(
        value(&l, &t, s, "0", CoreRelocKind::TypeIdTarget),
        u64::from(ts)
    );
    assert_eq!(
        value(&l, &t, s, "0", CoreRelocKind::TypeIdLocal),
        u64::from(s)
    );
    assert_eq!(value(&l, &t, s, "0", CoreRelocKind::TypeExists), 1);
    assert_eq!(value(&l, &t, s, "0", CoreRelocKind::TypeSize), 24);
    assert_eq!(
        value(&l, &t, td, "0", CoreRelocKind::TypeSize),
        24,
        "a typedef"
    );
    assert_eq!(value(&l, &t, gone, "0", CoreRelocKind::TypeExists), 0);
    assert_eq!(value(&l, &t, gone, "0", CoreRelocKind::TypeIdTarget), 0);
    assert_eq!(value(&l, &t, gone, "0", CoreRelocKind::TypeSize), 0);
    assert_eq!(value(&l, &t, s, "0", CoreRelocKind::TypeMatches), 1);
    assert_eq!(value(&l, &t, bad, "0", CoreRelocKind::TypeMatches), 0);
    assert_eq!(value(&l, &t, bad, "0", CoreRelocKind::TypeExists), 1);
    // a type relocation's access string is "0"
    assert!(run(&l, Some(&t), s, "0:1", CoreRelocKind::TypeSize).is_err());
}

#[test]
fn enumerator_relocations() {
    let mut l = B::new();
    l.enm("e___v1", false, &[("A", 1), ("B___old", 2), ("GONE", 3)]);
    let l = l.btf();
    let mut t = B::new();
    t.enm("e", true, &[("B", -5), ("A", 10)]);
    let t = t.btf();
    assert_eq!(value(&l, &t, 1, "0", CoreRelocKind::EnumvalExists), 1);
    assert_eq!(value(&l, &t, 1, "0", CoreRelocKind::EnumvalValue), 10);
    assert_eq!(
        value(&l, &t, 1, "1", CoreRelocKind::EnumvalValue),
        -5i64 as u64
    );
    assert_eq!(value(&l, &t, 1, "2", CoreRelocKind::EnumvalExists), 0);
    let r = run(&l, Some(&t), 1, "2", CoreRelocKind::EnumvalValue).unwrap();
    assert!(r.poison.is_some());
    assert!(
        run(&l, Some(&t), 1, "3", CoreRelocKind::EnumvalValue).is_err(),
        "no enumerator 3"
    );
}

#[test]
fn without_a_target_only_abi_types_resolve() {
    let mut l = B::new();
    let u32t = l.int("__u32", 4, false);
    l.st(
        "__sk_buff",
        8,
        &[("len", u32t, 0, 0), ("mark", u32t, 32, 0)],
    );
    l.st("task_struct", 4, &[("pid", u32t, 0, 0)]);
    let l = l.btf();
    let r = run(&l, None, 2, "0:1", CoreRelocKind::FieldByteOffset).unwrap();
    assert_eq!((r.poison, r.new_val), (None, 4));
    let r = run(&l, None, 3, "0:0", CoreRelocKind::FieldExists).unwrap();
    assert!(r.poison.unwrap().contains("no target BTF"));
    // a target without __sk_buff: the program's own ABI definition still serves
    let (_, t) = moved();
    let r = run(&l, Some(&t), 2, "0:1", CoreRelocKind::FieldByteOffset).unwrap();
    assert_eq!((r.poison, r.new_val), (None, 4));
    // ... but task_struct is looked for in the target only
    let r = run(&l, Some(&t), 3, "0:0", CoreRelocKind::FieldExists).unwrap();
    assert_eq!((r.poison, r.new_val), (None, 0));
}

#[test]
fn resized_fields_adjust_loads_or_poison_them() {
    // local u32 -> target u64 (unsigned: fine); local int -> target long (signed: poison)
    let mut l = B::new();
    let u = l.int("unsigned int", 4, false);
    let i = l.int("int", 4, true);
    l.st("s", 8, &[("u", u, 0, 0), ("i", i, 32, 0)]);
    let mut t = B::new();
    let u = t.int("unsigned long", 8, false);
    let i = t.int("long", 8, true);
    t.st("s", 16, &[("u", u, 0, 0), ("i", i, 64, 0)]);
    let (l, t) = (l.btf(), t.btf());
    let r = run(&l, Some(&t), 3, "0:0", CoreRelocKind::FieldByteOffset).unwrap();
    assert_eq!((r.orig_sz, r.new_sz, r.fail_memsz_adjust), (4, 8, false));
    let r = run(&l, Some(&t), 3, "0:1", CoreRelocKind::FieldByteOffset).unwrap();
    assert!(r.fail_memsz_adjust);
    let mut load = [0x61 | (4u64 << 16)];
    assert!(patch(&mut load, 0, &r).unwrap().is_some(), "poisoned");
}

#[test]
fn bad_input_is_an_error_not_a_panic_or_a_hang() {
    let (l, t) = moved();
    for access in ["", ":0", "0:x", "0:9", "-1", "0:1:0", "99999999999"] {
        assert!(
            run(&l, Some(&t), 2, access, CoreRelocKind::FieldByteOffset).is_err(),
            "{access:?}"
        );
    }
    let long = vec!["0"; 65].join(":");
    assert!(run(&l, Some(&t), 2, &long, CoreRelocKind::FieldByteOffset).is_err());
    assert!(run(&l, Some(&t), 99, "0", CoreRelocKind::TypeSize).is_err());
    // anonymous root types are refused, as libbpf refuses them
    let mut a = B::new();
    let int = a.int("int", 4, true);
    a.st("", 4, &[("x", int, 0, 0)]);
    let a = a.btf();
    assert!(run(&a, Some(&t), 2, "0:0", CoreRelocKind::FieldByteOffset).is_err());
    // a target struct whose anonymous member is itself: bounded by the spec length
    let mut c = B::new();
    let int = c.int("int", 4, true);
    c.st("s", 8, &[("", 2, 0, 0), ("", 2, 0, 0), ("q", int, 0, 0)]);
    let e = run(&l, Some(&c.btf()), 2, "0:1", CoreRelocKind::FieldByteOffset).unwrap_err();
    assert!(e.contains("steps"), "{e}");
}

#[test]
fn an_object_cannot_make_resolution_quadratic() {
    // 300 structs named __sk_buff (an ABI type: candidates from the object itself), each
    // with 300 members, and 1,000 relocations that each scan them all: 90M steps unless
    // bounded. The object-wide budget stops it with an error in bounded time.
    let mut b = B::new();
    let int = b.int("int", 4, true);
    let root = b.st("__sk_buff", 4, &[("x", int, 0, 0)]);
    let members: Vec<(&str, u32, u32, u32)> = (0..300).map(|i| ("y", int, i * 32, 0)).collect();
    for _ in 0..300 {
        b.st("__sk_buff", 1200, &members);
    }
    let local = b.btf();
    let n = 1000;
    let relos = vec![(
        SharedStr::from("tc"),
        (0..n)
            .map(|i| CoreRelo {
                insn: i,
                type_id: root,
                access: "0:0".into(),
                kind: CoreRelocKind::FieldByteOffset as u32,
            })
            .collect::<Vec<_>>(),
    )];
    let code: Vec<u8> = (0..n).flat_map(|_| 0x07u64.to_le_bytes()).collect();
    let t = std::time::Instant::now();
    let e = relocate(&relos, &local, None, |_| Some(&code[..])).unwrap_err();
    assert!(e.to_string().contains("steps"), "{e}");
    assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    // The same with few relocations is fine: each one is far below its own limit.
    let few = vec![(relos[0].0.clone(), relos[0].1[..10].to_vec())];
    let out = relocate(&few, &local, None, |_| Some(&code[..])).unwrap();
    assert!(out["tc"].poisons.is_empty());
}
