//! Extern variables, resolved as libbpf resolves them but from values the user supplies
//! instead of the running kernel's:
//!
//! - `__kconfig` externs (`.kconfig` in BTF): `LINUX_KERNEL_VERSION`,
//!   `LINUX_HAS_BPF_COOKIE`, `LINUX_HAS_SYSCALL_WRAPPER` and `CONFIG_*` values from a
//!   [`KernelConfig`], parsed with libbpf's rules (`y`/`n`/`m` for bool, tristate and
//!   char, numbers for integers and char, `"..."` for char arrays). They live in one
//!   read-only, frozen `.kconfig` array map laid out as libbpf lays it out (by alignment,
//!   then size, then name); a weak extern that is not set is 0, a strong one is an error
//!   for the programs that use it.
//! - `__ksym` variables (`.ksyms`): bpfvm has no kernel symbols, so a weak one is 0 (as
//!   libbpf makes an unresolved weak ksym) and a strong one is an error naming it.
//!
//! ```
//! use bpfvm::loader::KernelConfig;
//!
//! let cfg = KernelConfig::parse("CONFIG_HZ=250\n# CONFIG_X is not set\nCONFIG_BPF=y\n")?;
//! assert_eq!(cfg.get("CONFIG_HZ"), Some("250"));
//! assert_eq!(cfg.get("CONFIG_X"), None);
//! assert_eq!(cfg.get("LINUX_KERNEL_VERSION"), Some("397824")); // 6.18.0 (0x061200), the default
//! # Ok::<(), bpfvm::loader::LoadError>(())
//! ```

use std::collections::{BTreeMap, HashMap};

use super::btf::{Btf, BtfType};
use super::elf::{ElfObject, SymbolKind, STB_LOCAL, STB_WEAK};
use super::error::LoadError;
use super::map_def::{
    internal_map_name, GlobalDataKind, MapDefinition, MapKind, BPF_F_RDONLY_PROG,
    BPF_MAP_TYPE_ARRAY,
};
use super::strtab::SharedStr;

/// The kernel version bpfvm reports by default (`KERNEL_VERSION(6, 18, 0)`): the kernel
/// its conformance tests compare with.
pub const DEFAULT_KERNEL_VERSION: (u32, u32, u32) = (6, 18, 0);

/// Most `CONFIG_*` lines a [`KernelConfig`] holds (a distribution config has about 10,000).
pub const MAX_KCONFIG_ENTRIES: usize = 1 << 16;

/// Values for `__kconfig` externs: `CONFIG_*` options in the kernel's `.config` /
/// `/proc/config.gz` text format, and libbpf's virtual `LINUX_*` values.
///
/// [`KernelConfig::default`] sets `LINUX_KERNEL_VERSION` to
/// [`DEFAULT_KERNEL_VERSION`], `LINUX_HAS_BPF_COOKIE` and `LINUX_HAS_SYSCALL_WRAPPER` to 1
/// (what libbpf finds on that kernel) and no `CONFIG_*` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    values: BTreeMap<String, String>,
}

impl Default for KernelConfig {
    fn default() -> Self {
        let (a, b, c) = DEFAULT_KERNEL_VERSION;
        let mut cfg = KernelConfig {
            values: BTreeMap::new(),
        };
        cfg.set_kernel_version(a, b, c);
        cfg.set("LINUX_HAS_BPF_COOKIE", "1");
        cfg.set("LINUX_HAS_SYSCALL_WRAPPER", "1");
        cfg
    }
}

impl KernelConfig {
    /// The default values plus the `CONFIG_*=value` lines of `text` (a kernel `.config`,
    /// `/proc/config.gz` uncompressed). As in libbpf, lines not starting with `CONFIG_`
    /// (comments such as `# CONFIG_X is not set`) are skipped, the first value of an
    /// option counts, and a line without `=` or without a value is an error.
    pub fn parse(text: &str) -> Result<Self, LoadError> {
        let mut cfg = KernelConfig::default();
        for (n, line) in text.lines().enumerate() {
            if !line.starts_with("CONFIG_") {
                continue;
            }
            let bad = |why: &str| LoadError::BadKconfig {
                name: format!("line {}", n + 1),
                reason: format!("{why}: {}", line.chars().take(80).collect::<String>()),
            };
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| bad("no '=' separator"))?;
            if value.is_empty() {
                return Err(bad("no value"));
            }
            if cfg.values.len() >= MAX_KCONFIG_ENTRIES {
                return Err(bad("too many options"));
            }
            cfg.values
                .entry(name.to_string())
                .or_insert_with(|| value.to_string());
        }
        Ok(cfg)
    }

    /// Sets `name` (`CONFIG_HZ`, `LINUX_KERNEL_VERSION`) to `value` as it would appear
    /// after `=` in a config file (`y`, `250`, `"string"`), replacing any value.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.values.insert(name.to_string(), value.to_string());
        self
    }

    /// Sets `LINUX_KERNEL_VERSION` to `KERNEL_VERSION(major, minor, patch)` (the patch
    /// level saturates at 255 as in the kernel's macro).
    pub fn set_kernel_version(&mut self, major: u32, minor: u32, patch: u32) -> &mut Self {
        let v = (major << 16) + (minor << 8) + patch.min(255);
        self.set("LINUX_KERNEL_VERSION", &v.to_string())
    }

    /// The value of `name`, as text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// libbpf's classes of `__kconfig` extern types (`enum kcfg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KcfgType {
    Bool,
    Char,
    Tristate,
    Int { signed: bool },
    CharArr,
}

/// What a relocation against an extern symbol becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExternValue {
    /// A `__kconfig` value at this offset of the `.kconfig` map.
    Kconfig { offset: u32 },
    /// The constant 0 (an unresolved weak `__ksym`).
    Zero,
    /// The address of a kernel function ([`Externs::kfuncs`]), resolved when the program
    /// is loaded into a VM.
    Kfunc,
    /// Unusable: programs that reference it are refused with this error.
    Refused(LoadError),
}

/// The object's extern variables, resolved.
#[derive(Debug, Default)]
pub(crate) struct Externs {
    /// By symbol name.
    pub by_name: HashMap<SharedStr, ExternValue>,
    /// The `.kconfig` map, when some `__kconfig` extern exists.
    pub kconfig_map: Option<MapDefinition>,
    /// Kernel functions (`__ksym` FUNCs) by name.
    pub kfuncs: HashMap<SharedStr, KfuncExtern>,
}

/// A kernel function the object declares.
#[derive(Debug, Clone)]
pub(crate) struct KfuncExtern {
    /// Declared `__weak`.
    pub weak: bool,
    /// libbpf's index of the extern (`obj->externs`, sorted by `cmp_externs`).
    pub extern_index: u32,
    /// Its arguments and return value, from its FUNC_PROTO.
    pub args: Vec<crate::kfunc::KfuncArg>,
    /// What it returns.
    pub ret: crate::kfunc::KfuncRet,
}

/// One `__kconfig` extern before layout.
struct Kcfg {
    name: SharedStr,
    weak: bool,
    ty: Result<KcfgType, String>,
    size: u32,
    align: u32,
}

/// libbpf's `find_kcfg_type`: the class of type `id`, with its alignment.
fn kcfg_type(btf: &Btf, id: u32) -> Result<(KcfgType, u32), String> {
    let unsupported = || {
        Err(format!(
            "type {} is not a supported kconfig type",
            btf.type_name(id)
        ))
    };
    let Some(t) = btf.resolve(id).and_then(|r| btf.get(r)) else {
        return unsupported();
    };
    match t {
        BtfType::Int {
            size,
            signed,
            is_bool,
            ..
        } => {
            if *is_bool {
                return if *size == 1 {
                    Ok((KcfgType::Bool, 1))
                } else {
                    unsupported()
                };
            }
            match size {
                1 => Ok((KcfgType::Char, 1)),
                2 | 4 | 8 => Ok((KcfgType::Int { signed: *signed }, *size)),
                _ => unsupported(),
            }
        }
        BtfType::Enum { name, size, .. } if name == "libbpf_tristate" && *size == 4 => {
            Ok((KcfgType::Tristate, 4))
        }
        BtfType::Array { elem, nelems } if *nelems > 0 => match kcfg_type(btf, *elem) {
            Ok((KcfgType::Char, _)) => Ok((KcfgType::CharArr, 1)),
            _ => unsupported(),
        },
        _ => unsupported(),
    }
}

/// The extern variables of `elf` (undefined, non-local, non-function symbols) and what
/// each becomes with the values of `config`.
pub(crate) fn resolve(
    elf: &ElfObject<'_>,
    btf: Option<&Btf>,
    obj_name: &str,
    config: &KernelConfig,
) -> Externs {
    let mut out = Externs::default();
    let mut kcfgs = Vec::new();
    // Names of the ksym externs, for libbpf's extern index (kconfig ones come first).
    let mut ksyms: Vec<SharedStr> = Vec::new();
    let mut kfuncs: Vec<(SharedStr, bool, u32)> = Vec::new();
    let vars = btf.map(extern_vars).unwrap_or_default();
    for sym in &elf.symbols {
        if sym.section.is_some()
            || sym.name.is_empty()
            || sym.bind == STB_LOCAL
            || !matches!(
                sym.kind,
                SymbolKind::NoType | SymbolKind::Object | SymbolKind::Func
            )
            || out.by_name.contains_key(&sym.name)
        {
            continue;
        }
        let weak = sym.bind == STB_WEAK;
        let refuse = |reason: String| {
            ExternValue::Refused(LoadError::UnresolvedExtern {
                name: sym.name.to_string(),
                section: String::new(),
                insn: 0,
                reason,
            })
        };
        let Some((section, type_id, func)) = vars.get(sym.name.as_str()).cloned() else {
            // Only an ld_imm64 of it reaches this value (a call is a kfunc call).
            let v = refuse("no BTF describes it (libbpf needs .kconfig or .ksyms BTF)".into());
            out.by_name.insert(sym.name.clone(), v);
            continue;
        };
        let btf = btf.expect("found in BTF");
        match section {
            ExternSection::Ksyms if func => {
                ksyms.push(sym.name.clone());
                kfuncs.push((sym.name.clone(), weak, type_id));
                out.by_name.insert(sym.name.clone(), ExternValue::Kfunc);
            }
            ExternSection::Ksyms => {
                ksyms.push(sym.name.clone());
                let v = if weak {
                    ExternValue::Zero
                } else {
                    refuse("strong __ksym: bpfvm has no kernel symbols (a __weak ksym is 0)".into())
                };
                out.by_name.insert(sym.name.clone(), v);
            }
            ExternSection::Kconfig => {
                let (ty, align) = match kcfg_type(btf, type_id) {
                    Ok((t, a)) => (Ok(t), a),
                    Err(e) => (Err(e), 1),
                };
                let size = btf.size_of(type_id).unwrap_or(0);
                kcfgs.push(Kcfg {
                    name: sym.name.clone(),
                    weak,
                    ty,
                    size,
                    align,
                });
            }
            ExternSection::Other(name) => {
                let v = refuse(format!("extern in unrecognized BTF section {name}"));
                out.by_name.insert(sym.name.clone(), v);
            }
        }
    }
    ksyms.sort_unstable_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
    for (name, weak, proto) in kfuncs {
        let rank = ksyms.partition_point(|n| n.as_str().as_bytes() < name.as_str().as_bytes());
        let extern_index = (kcfgs.len() + rank) as u32;
        let (args, ret) = match btf {
            Some(btf) => super::kfunc_proto::classify(btf, proto),
            None => continue,
        };
        out.kfuncs.insert(
            name,
            KfuncExtern {
                weak,
                extern_index,
                args,
                ret,
            },
        );
    }
    if kcfgs.is_empty() {
        return out;
    }
    // libbpf's order (cmp_externs): alignment descending, size ascending, name.
    kcfgs.sort_by(|a, b| {
        b.align
            .cmp(&a.align)
            .then(a.size.cmp(&b.size))
            .then(a.name.as_str().cmp(b.name.as_str()))
    });
    let mut data: Vec<u8> = Vec::new();
    for k in &kcfgs {
        let value = match (&k.ty, k.size) {
            (Err(e), _) => Err(e.clone()),
            (_, 0) => Err("type has no size".to_string()),
            (Ok(ty), size) => {
                let offset = data.len().div_ceil(k.align as usize) * k.align as usize;
                data.resize(offset + size as usize, 0);
                let slot = &mut data[offset..];
                match kcfg_value(config, &k.name, *ty, size, k.weak, slot) {
                    Ok(()) => Ok(offset as u32),
                    Err(e) => Err(e),
                }
            }
        };
        let v = match value {
            Ok(offset) => ExternValue::Kconfig { offset },
            Err(reason) => ExternValue::Refused(LoadError::BadKconfig {
                name: k.name.to_string(),
                reason,
            }),
        };
        out.by_name.insert(k.name.clone(), v);
    }
    let value_size = data.len().max(1) as u32;
    data.resize(value_size as usize, 0);
    out.kconfig_map = Some(MapDefinition {
        name: internal_map_name(obj_name, ".kconfig").into(),
        aliases: vec![".kconfig".into()],
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size,
        max_entries: 1,
        map_flags: BPF_F_RDONLY_PROG,
        kind: MapKind::GlobalData {
            section: ".kconfig".into(),
            kind: GlobalDataKind::Rodata,
        },
        initial_data: Some(data),
        frozen: true,
        key_type_id: None,
        value_type_id: None,
        legacy: None,
        timer_offset: None,
        inner: None,
        initial_slots: Vec::new(),
        section_index: usize::MAX,
        section_offset: 0,
    });
    out
}

/// Write `name`'s value into `slot` (zeroed, `size` bytes) with libbpf's rules.
fn kcfg_value(
    config: &KernelConfig,
    name: &str,
    ty: KcfgType,
    size: u32,
    weak: bool,
    slot: &mut [u8],
) -> Result<(), String> {
    let virtual_ok = matches!(
        name,
        "LINUX_KERNEL_VERSION" | "LINUX_HAS_BPF_COOKIE" | "LINUX_HAS_SYSCALL_WRAPPER"
    );
    let value = if name.starts_with("CONFIG_") || virtual_ok {
        config.get(name)
    } else if name.starts_with("LINUX_") && weak {
        None
    } else {
        return Err("unrecognized virtual extern (libbpf knows CONFIG_* and LINUX_*)".into());
    };
    let Some(value) = value else {
        return if weak {
            Ok(()) // a weak extern that is not set is 0
        } else {
            Err(format!(
                "strong extern {name} is not set (give it with --kconfig FILE or KernelConfig::set, \
                 or declare it __weak to get 0)"
            ))
        };
    };
    let Some(&first) = value.as_bytes().first() else {
        return Err("empty value".into());
    };
    match first {
        b'y' | b'n' | b'm' => match ty {
            KcfgType::Bool if first == b'm' => {
                Err(format!("value '{value}' implies tristate or char type"))
            }
            KcfgType::Bool => {
                slot[0] = u8::from(first == b'y');
                Ok(())
            }
            KcfgType::Tristate => {
                let v: u32 = match first {
                    b'y' => 1,
                    b'm' => 2,
                    _ => 0,
                };
                slot[..4].copy_from_slice(&v.to_ne_bytes());
                Ok(())
            }
            KcfgType::Char => {
                slot[0] = first;
                Ok(())
            }
            _ => Err(format!(
                "value '{value}' implies bool, tristate, or char type"
            )),
        },
        b'"' => {
            if ty != KcfgType::CharArr {
                return Err(format!("value '{value}' implies char array type"));
            }
            let Some(inner) = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .filter(|_| value.len() >= 2)
            else {
                return Err(format!("invalid string config '{value}'"));
            };
            let n = inner.len().min(size as usize - 1);
            slot[..n].copy_from_slice(&inner.as_bytes()[..n]);
            slot[n] = 0;
            Ok(())
        }
        _ => {
            let num =
                parse_u64(value).ok_or_else(|| format!("value '{value}' isn't a valid integer"))?;
            if !matches!(ty, KcfgType::Int { .. } | KcfgType::Char | KcfgType::Bool) {
                return Err(format!("value '{value}' implies integer type"));
            }
            if ty == KcfgType::Bool && num > 1 {
                return Err(format!("value '{value}' isn't boolean compatible"));
            }
            let bits = size * 8;
            let fits = size == 8
                || match ty {
                    KcfgType::Int { signed: true } => {
                        num.wrapping_add(1u64 << (bits - 1)) < (1u64 << bits)
                    }
                    _ => num >> bits == 0,
                };
            if !fits {
                return Err(format!("value '{value}' doesn't fit in {size} bytes"));
            }
            slot[..size as usize].copy_from_slice(&num.to_ne_bytes()[..size as usize]);
            Ok(())
        }
    }
}

/// `strtoull(value, &end, 0)` that must consume everything: decimal, `0x` hex, `0` octal;
/// a leading `-` negates as strtoull does.
fn parse_u64(value: &str) -> Option<u64> {
    let (neg, v) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let n = if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()?
    } else if v.len() > 1 && v.starts_with('0') {
        u64::from_str_radix(&v[1..], 8).ok()?
    } else {
        v.parse::<u64>().ok()?
    };
    Some(if neg { n.wrapping_neg() } else { n })
}

/// Where an extern's BTF `VAR` lives.
#[derive(Clone)]
enum ExternSection {
    Kconfig,
    Ksyms,
    Other(String),
}

/// Every `VAR` of every DATASEC by name (the first of each name), with its section and
/// type: one pass over the types.
/// The flag is set for a FUNC (a kfunc).
fn extern_vars(btf: &Btf) -> HashMap<&str, (ExternSection, u32, bool)> {
    let mut out = HashMap::new();
    for t in btf.types() {
        let BtfType::Datasec {
            name: sec, vars, ..
        } = t
        else {
            continue;
        };
        let section = match sec.as_str() {
            ".kconfig" => ExternSection::Kconfig,
            ".ksyms" => ExternSection::Ksyms,
            other => ExternSection::Other(other.chars().take(64).collect()),
        };
        for v in vars {
            match btf.get(v.type_id) {
                Some(BtfType::Var { name, target }) => {
                    out.entry(name.as_str())
                        .or_insert_with(|| (section.clone(), *target, false));
                }
                // A kernel function (kfunc) declared __ksym.
                Some(BtfType::Func { name, proto }) => {
                    out.entry(name.as_str())
                        .or_insert_with(|| (section.clone(), *proto, true));
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_text_like_libbpf() {
        let cfg = KernelConfig::parse(
            "# comment\nCONFIG_A=y\nCONFIG_A=n\nCONFIG_S=\"hi\"\n# CONFIG_B is not set\n",
        )
        .unwrap();
        assert_eq!(cfg.get("CONFIG_A"), Some("y"), "first value counts");
        assert_eq!(cfg.get("CONFIG_S"), Some("\"hi\""));
        assert_eq!(cfg.get("CONFIG_B"), None);
        assert!(KernelConfig::parse("CONFIG_A\n").is_err());
        assert!(KernelConfig::parse("CONFIG_A=\n").is_err());
        let mut c = KernelConfig::default();
        c.set_kernel_version(5, 15, 300);
        assert_eq!(
            c.get("LINUX_KERNEL_VERSION"),
            Some(&*(0x050fff).to_string())
        );
    }

    fn value(v: &str, ty: KcfgType, size: u32) -> Result<Vec<u8>, String> {
        let mut c = KernelConfig::default();
        c.set("CONFIG_X", v);
        let mut slot = vec![0u8; size as usize];
        kcfg_value(&c, "CONFIG_X", ty, size, false, &mut slot).map(|()| slot)
    }

    #[test]
    fn values_follow_libbpf() {
        assert_eq!(value("y", KcfgType::Bool, 1).unwrap(), [1]);
        assert_eq!(value("n", KcfgType::Bool, 1).unwrap(), [0]);
        assert!(value("m", KcfgType::Bool, 1).is_err());
        assert_eq!(
            value("m", KcfgType::Tristate, 4).unwrap(),
            2u32.to_ne_bytes()
        );
        assert_eq!(value("y", KcfgType::Char, 1).unwrap(), [b'y']);
        assert!(value("y", KcfgType::Int { signed: false }, 4).is_err());
        assert_eq!(
            value("0x10", KcfgType::Int { signed: false }, 4).unwrap(),
            16u32.to_ne_bytes()
        );
        assert_eq!(
            value("010", KcfgType::Int { signed: false }, 2).unwrap(),
            8u16.to_ne_bytes()
        );
        assert!(value("65536", KcfgType::Int { signed: false }, 2).is_err());
        assert_eq!(
            value("-1", KcfgType::Int { signed: true }, 2).unwrap(),
            [0xff, 0xff]
        );
        assert!(value("2", KcfgType::Bool, 1).is_err());
        assert!(value("12abc", KcfgType::Int { signed: false }, 4).is_err());
        assert_eq!(
            value("\"abcdef\"", KcfgType::CharArr, 4).unwrap(),
            *b"abc\0"
        );
        assert!(value("\"abc\"", KcfgType::Int { signed: false }, 4).is_err());
        assert!(value("\"abc", KcfgType::CharArr, 8).is_err());
        let c = KernelConfig::default();
        let mut slot = [9u8; 4];
        slot.fill(0);
        assert!(kcfg_value(&c, "CONFIG_UNSET", KcfgType::Bool, 1, true, &mut slot).is_ok());
        assert_eq!(slot, [0; 4], "weak unset is 0");
        let e = kcfg_value(&c, "CONFIG_UNSET", KcfgType::Bool, 1, false, &mut slot).unwrap_err();
        assert!(e.contains("not set"), "{e}");
        assert!(kcfg_value(&c, "LINUX_UNKNOWN", KcfgType::Bool, 1, true, &mut slot).is_ok());
        assert!(kcfg_value(&c, "LINUX_UNKNOWN", KcfgType::Bool, 1, false, &mut slot).is_err());
        assert!(kcfg_value(&c, "OTHER", KcfgType::Bool, 1, true, &mut slot).is_err());
    }
}
