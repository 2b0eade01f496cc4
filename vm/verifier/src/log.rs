//! Register and frame states printed the way the kernel's verifier log prints them
//! (`print_verifier_state`), so a message names a register state a developer recognises.

use std::fmt::Write;

use crate::input::MapInfo;
use crate::reg::{
    Reg, RegType, ADD_CONST, MAYBE_NULL, MEM_PERCPU, MEM_RCU, MEM_USER, PTR_TRUSTED, PTR_UNTRUSTED,
    RDONLY, RINGBUF,
};
use crate::stack::SlotType;
use crate::state::FuncState;

/// The kernel's name of a register type with its modifiers (`reg_type_str`), e.g.
/// `map_value_or_null`, `rdonly_mem`, `pkt_end`.
pub fn reg_type_str(ty: RegType, flags: u8) -> String {
    let base = match ty {
        RegType::NotInit => "?",
        RegType::Scalar => "scalar",
        RegType::Ctx => "ctx",
        RegType::ConstPtrToMap => "map_ptr",
        RegType::MapValue => "map_value",
        RegType::MapKey => "map_key",
        RegType::Stack => "fp",
        RegType::Packet => "pkt",
        RegType::PacketMeta => "pkt_meta",
        RegType::PacketEnd => "pkt_end",
        RegType::SockCommon => "sock_common",
        RegType::Socket => "sock",
        RegType::TcpSock => "tcp_sock",
        RegType::XdpSock => "xdp_sock",
        RegType::Mem => "mem",
        RegType::Func => "func",
        RegType::BtfId => "ptr_",
    };
    let mut s = String::new();
    if flags & RDONLY != 0 {
        s.push_str("rdonly_");
    }
    if flags & RINGBUF != 0 {
        s.push_str("ringbuf_");
    }
    for (flag, name) in [
        (MEM_USER, "user_"),
        (MEM_PERCPU, "percpu_"),
        (MEM_RCU, "rcu_"),
        (PTR_UNTRUSTED, "untrusted_"),
        (PTR_TRUSTED, "trusted_"),
    ] {
        if flags & flag != 0 {
            s.push_str(name);
        }
    }
    s.push_str(base);
    if flags & MAYBE_NULL != 0 {
        s.push_str(if ty == RegType::BtfId {
            "or_null_"
        } else {
            "_or_null"
        });
    }
    s
}

/// A signed number as the kernel prints it: decimal within ±32767, else hex.
pub fn snum(n: i64) -> String {
    if (i64::from(i16::MIN)..=i64::from(i16::MAX)).contains(&n) {
        n.to_string()
    } else {
        format!("{:#x}", n as u64)
    }
}

/// An unsigned number as the kernel prints it: decimal up to 65535, else hex.
pub fn unum(n: u64) -> String {
    if n <= u64::from(u16::MAX) {
        n.to_string()
    } else {
        format!("{n:#x}")
    }
}

fn scalar_ranges(r: &Reg, out: &mut Vec<String>) {
    let b = &r.b;
    let s32 = |v: i32| -> u64 {
        if (i32::from(i16::MIN)..=i32::from(i16::MAX)).contains(&v) {
            i64::from(v) as u64
        } else {
            u64::from(v as u32)
        }
    };
    let mut items: [(&str, u64, bool); 8] = [
        ("smin", b.smin as u64, b.smin == i64::MIN),
        ("smax", b.smax as u64, b.smax == i64::MAX),
        ("umin", b.umin, b.umin == 0),
        ("umax", b.umax, b.umax == u64::MAX),
        ("smin32", s32(b.s32_min), b.s32_min == i32::MIN),
        ("smax32", s32(b.s32_max), b.s32_max == i32::MAX),
        ("umin32", u64::from(b.u32_min), b.u32_min == 0),
        ("umax32", u64::from(b.u32_max), b.u32_max == u32::MAX),
    ];
    for i in 0..items.len() {
        let (name, val, omit) = items[i];
        if omit {
            continue;
        }
        let neg1 = name.starts_with('s') && (val as i64) < 0;
        let mut s = format!("{name}=");
        let mut j = i + 2;
        while j < items.len() {
            let (n2, v2, o2) = items[j];
            let neg2 = n2.starts_with('s') && (v2 as i64) < 0;
            if !o2 && v2 == val && neg1 == neg2 {
                items[j].2 = true;
                s.push_str(n2);
                s.push('=');
            }
            j += 2;
        }
        if name.starts_with('s') {
            s.push_str(&snum(val as i64));
        } else {
            s.push_str(&unum(val));
        }
        out.push(s);
    }
}

/// One register as the kernel prints it (`print_reg_state`): `ctx()`, `fp-8`,
/// `pkt(id=2,off=14,r=14)`, `scalar(smin=0,smax=255,...)`, `P7`.
pub fn reg_str(r: &Reg, frame_frameno: u8, maps: &[MapInfo]) -> String {
    let mut s = String::new();
    if r.ty == RegType::Scalar && r.precise {
        s.push('P');
    }
    if r.ty == RegType::Scalar && r.b.var_off.is_const() {
        s.push_str(&snum(r.b.var_off.value as i64));
        return s;
    }
    s.push_str(&reg_type_str(r.ty, r.flags));
    if r.ty == RegType::Stack {
        if r.frameno != frame_frameno {
            let _ = write!(s, "[{}]", r.frameno);
        }
        if r.b.var_off.is_const() {
            s.push_str(&snum(
                (r.b.var_off.value as i64).wrapping_add(i64::from(r.off)),
            ));
            return s;
        }
    }
    let mut items: Vec<String> = Vec::new();
    let mut head = String::new();
    if r.id != 0 {
        head = format!("id={}", r.id & !ADD_CONST);
    }
    if r.id & ADD_CONST != 0 {
        let _ = write!(head, "{:+}", r.off);
    }
    if !head.is_empty() {
        items.push(head);
    }
    if r.ref_obj_id != 0 {
        items.push(format!("ref_obj_id={}", r.ref_obj_id));
    }
    if matches!(
        r.ty,
        RegType::ConstPtrToMap | RegType::MapKey | RegType::MapValue
    ) {
        if let Some(m) = maps.get(r.map()) {
            if !m.name.is_empty() {
                items.push(format!("map={}", m.name));
            }
            items.push(format!("ks={},vs={}", m.key_size, m.value_size));
        }
    }
    if r.ty != RegType::Scalar && r.off != 0 {
        items.push(format!("off={}", snum(i64::from(r.off))));
    }
    if r.is_pkt_pointer() {
        items.push(format!("r={}", unum(u64::from(r.range() as u32))));
    }
    if r.ty == RegType::Mem {
        items.push(format!("sz={}", unum(u64::from(r.mem_size()))));
    }
    if r.b.var_off.is_const() {
        if r.b.var_off.value != 0 {
            items.push(format!("imm={}", snum(r.b.var_off.value as i64)));
        }
    } else {
        scalar_ranges(r, &mut items);
        if !r.b.var_off.is_unknown() {
            items.push(format!("var_off={}", r.b.var_off));
        }
    }
    let _ = write!(s, "({})", items.join(","));
    s
}

/// A frame's registers and stack as the kernel's log line shows them
/// (` R1=ctx() R10=fp0 fp-8=mmmmmmmm`).
pub fn frame_str(f: &FuncState, maps: &[MapInfo]) -> String {
    let mut s = String::new();
    if f.frameno != 0 {
        let _ = write!(s, " frame{}:", f.frameno);
    }
    for (i, r) in f.regs.iter().enumerate() {
        if r.ty == RegType::NotInit {
            continue;
        }
        let _ = write!(s, " R{i}={}", reg_str(r, f.frameno, maps));
    }
    let mut skip = None;
    for (i, slot) in f.stack.iter().enumerate() {
        if skip == Some(i) || slot.types.iter().all(|&t| t == SlotType::Invalid) {
            continue;
        }
        if let Some(d) = f
            .stack
            .get(i + 1)
            .and_then(|first| crate::dynptr::dynptr_str(slot, first))
        {
            // A dynptr: once, at its first slot's offset (`fp-16=dynptr_ringbuf(id=2,ref_id=3)`).
            let _ = write!(s, " fp{}={d}", -((i as i64) + 2) * 8);
            skip = Some(i + 1);
            continue;
        }
        let off = -((i as i64) + 1) * 8;
        let letters: String = slot.types.iter().map(|t| t.letter()).collect();
        if slot.types[7] == SlotType::Spill {
            let upto = slot
                .types
                .iter()
                .position(|&t| t == SlotType::Spill)
                .unwrap_or(8);
            let _ = write!(
                s,
                " fp{off}={}{}",
                &letters[..upto],
                reg_str(&slot.spilled, f.frameno, maps)
            );
        } else {
            let _ = write!(s, " fp{off}={letters}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounds::Bounds;

    #[test]
    fn registers_print_like_the_kernel() {
        let maps = [MapInfo::new(2, 4, 8, 1)];
        let mut r = Reg::pointer(RegType::Packet);
        r.off = 14;
        r.set_range(14);
        r.id = 2;
        assert_eq!(reg_str(&r, 0, &maps), "pkt(id=2,off=14,r=14)");
        let mut m = Reg::pointer(RegType::MapValue);
        m.flags = MAYBE_NULL;
        m.id = 1;
        assert_eq!(reg_str(&m, 0, &maps), "map_value_or_null(id=1,ks=4,vs=8)");
        let mut fp = Reg::pointer(RegType::Stack);
        fp.off = -8;
        assert_eq!(reg_str(&fp, 0, &maps), "fp-8");
        let mut s = Reg::unknown(false);
        s.b = Bounds::UNKNOWN;
        s.b.umax = 255;
        s.b.sync();
        assert_eq!(
            reg_str(&s, 0, &maps),
            "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"
        );
        assert_eq!(reg_str(&Reg::known(7, true), 0, &maps), "P7");
        assert_eq!(reg_str(&Reg::unknown(false), 0, &maps), "scalar()");
        assert_eq!(reg_str(&Reg::pointer(RegType::Ctx), 0, &maps), "ctx()");
    }
}
