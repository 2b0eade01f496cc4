//! Global variables by name: where a `.data`, `.rodata` or `.bss` variable lives (which
//! global data map, at which offset, how many bytes), from the section's BTF `DATASEC`.

use crate::loader::{BtfType, GlobalDataKind, MapKind, Object};

/// Where one global variable lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalVar {
    /// Index of its map in [`Object::maps`].
    pub map: usize,
    /// Which kind of section holds it.
    pub kind: GlobalDataKind,
    /// Byte offset in the map's value.
    pub offset: usize,
    /// Size in bytes (from BTF).
    pub size: usize,
}

/// The variable `name` of `object`'s global data, if its BTF names one.
pub fn find(object: &Object, name: &str) -> Option<GlobalVar> {
    let btf = object.btf()?;
    object.maps().iter().enumerate().find_map(|(map, def)| {
        let MapKind::GlobalData { section, kind } = &def.kind else {
            return None;
        };
        let Some(BtfType::Datasec { vars, .. }) = btf.get(btf.datasec(section)?) else {
            return None;
        };
        vars.iter().find_map(|v| match btf.get(v.type_id)? {
            BtfType::Var { name: n, .. } if &**n == name => Some(GlobalVar {
                map,
                kind: *kind,
                offset: v.offset as usize,
                size: v.size as usize,
            }),
            _ => None,
        })
    })
}

/// The names of every global variable of `object` (for messages), at most `max`.
pub fn names(object: &Object, max: usize) -> Vec<String> {
    let Some(btf) = object.btf() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for def in object.maps() {
        let MapKind::GlobalData { section, .. } = &def.kind else {
            continue;
        };
        let Some(BtfType::Datasec { vars, .. }) = btf.datasec(section).and_then(|id| btf.get(id))
        else {
            continue;
        };
        for v in vars {
            if let Some(BtfType::Var { name, .. }) = btf.get(v.type_id) {
                if out.len() == max {
                    return out;
                }
                out.push(name.to_string());
            }
        }
    }
    out
}
