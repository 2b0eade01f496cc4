//! A minimal BTF writer and BPF_BTF_LOAD, for maps the kernel only creates with BTF: a value
//! holding a `struct bpf_spin_lock` (the kernel finds the lock through the value's type).
//!
//! ```
//! use bpfvm_conformance::kernel::btf::BtfBuilder;
//!
//! let mut b = BtfBuilder::new();
//! let u32_id = b.int("unsigned int", 4, false);
//! let lock = b.structure("bpf_spin_lock", 4, &[("val", u32_id, 0)]);
//! let value = b.structure("value", 8, &[("counter", u32_id, 0), ("lock", lock, 4)]);
//! assert_eq!((u32_id, lock, value), (1, 2, 3));
//! assert_eq!(&b.bytes()[..2], &0xeb9fu16.to_le_bytes());
//! ```

/// Types and strings of a BTF blob being built; type ids start at 1.
#[derive(Debug, Clone)]
pub struct BtfBuilder {
    types: Vec<u32>,
    strings: Vec<u8>,
    count: u32,
}

impl Default for BtfBuilder {
    fn default() -> Self {
        BtfBuilder::new()
    }
}

impl BtfBuilder {
    /// No types yet.
    pub fn new() -> BtfBuilder {
        BtfBuilder {
            types: Vec::new(),
            strings: vec![0],
            count: 0,
        }
    }

    fn string(&mut self, s: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    fn add(&mut self, words: &[u32]) -> u32 {
        self.types.extend_from_slice(words);
        self.count += 1;
        self.count
    }

    /// `BTF_KIND_INT` of `size` bytes; returns its id.
    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let name = self.string(name);
        let encoding = u32::from(signed) << 24;
        self.add(&[name, 1 << 24, size, encoding | (size * 8)])
    }

    /// `BTF_KIND_FUNC_PROTO` of `void f(void)`; returns its id.
    pub fn func_proto_void(&mut self) -> u32 {
        self.add(&[0, 13 << 24, 0])
    }

    /// `BTF_KIND_FUNC` `name` of prototype `proto` with `linkage` (0 static, 1 global);
    /// returns its id.
    pub fn func(&mut self, name: &str, proto: u32, linkage: u32) -> u32 {
        let name = self.string(name);
        self.add(&[name, (12 << 24) | linkage, proto])
    }

    /// `BTF_KIND_STRUCT` of `size` bytes with `members` (name, type id, byte offset);
    /// returns its id.
    pub fn structure(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
        let name = self.string(name);
        let mut words = vec![name, (4 << 24) | members.len() as u32, size];
        for (m, ty, off) in members {
            let m = self.string(m);
            words.extend([m, *ty, off * 8]);
        }
        self.add(&words)
    }

    /// The raw blob: header, types, strings (little-endian).
    pub fn bytes(&self) -> Vec<u8> {
        let type_len = (self.types.len() * 4) as u32;
        let mut out = Vec::new();
        out.extend(0xeb9fu16.to_le_bytes());
        out.extend([1u8, 0]);
        for v in [24u32, 0, type_len, type_len, self.strings.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        for w in &self.types {
            out.extend(w.to_le_bytes());
        }
        out.extend(&self.strings);
        out
    }
}

/// A BTF object loaded into the kernel; the fd closes when it drops.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct KernelBtf {
    pub(crate) fd: super::sys::BtfFd,
}

#[cfg(target_os = "linux")]
impl KernelBtf {
    /// BPF_BTF_LOAD of `b`'s blob; the error carries the kernel's errno and log.
    pub fn load(b: &BtfBuilder) -> Result<KernelBtf, String> {
        let mut log = vec![0u8; 1 << 16];
        super::sys::btf_load(&b.bytes(), &mut log)
            .map(|fd| KernelBtf { fd })
            .map_err(|e| {
                let end = log.iter().position(|&c| c == 0).unwrap_or(log.len());
                format!(
                    "BPF_BTF_LOAD: {e}: {}",
                    String::from_utf8_lossy(&log[..end])
                )
            })
    }
}

/// A map shaped as `m` created with BTF: a `u32` key (or none, for other key sizes) and a
/// value struct of `m.value_size` bytes holding a `struct bpf_spin_lock` at `lock_off`
/// and a `struct bpf_timer` at `timer_off` (each when given).
#[cfg(target_os = "linux")]
pub fn create_special_field_map(
    m: &super::verdict::VerdictMap,
    lock_off: Option<u32>,
    timer_off: Option<u32>,
) -> Result<super::KernelMap, String> {
    let mut b = BtfBuilder::new();
    let u32_id = b.int("unsigned int", 4, false);
    let mut members = Vec::new();
    if let Some(off) = lock_off {
        let lock = b.structure("bpf_spin_lock", 4, &[("val", u32_id, 0)]);
        members.push(("lock", lock, off));
    }
    if let Some(off) = timer_off {
        let u64_id = b.int("unsigned long long", 8, false);
        let timer = b.structure("bpf_timer", 16, &[("a", u64_id, 0), ("b", u64_id, 8)]);
        members.push(("timer", timer, off));
    }
    let value = b.structure("value", m.value_size, &members);
    let kbtf = KernelBtf::load(&b)?;
    let map_type = super::consts::MapType::try_from(m.map_type)
        .map_err(|_| format!("map type {} unknown", m.map_type))?;
    let def = super::MapDef {
        map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        map_flags: m.map_flags,
    };
    let key = if m.key_size == 4 { u32_id } else { 0 };
    super::KernelMap::create_with_btf(def, &kbtf, key, value)
        .map_err(|e| format!("BPF_MAP_CREATE with BTF: {e}"))
}
