//! Target BTF from a file: raw BTF (`/sys/kernel/btf/vmlinux`, `bpftool btf dump ...
//! format raw`, `llvm-objcopy --dump-section .BTF=...`) or the `.BTF` section of an ELF
//! file (a BPF object, a `vmlinux` image).

use std::path::Path;

use super::btf::Btf;
use super::error::LoadError;
use super::limits::MAX_TARGET_BTF_BYTES;

impl Btf {
    /// Parse `bytes` as raw BTF or, when they are an ELF file, as its `.BTF` section.
    ///
    /// ```
    /// let btf = bpfvm::loader::Btf::parse_any(include_bytes!("../../tests/fixtures/core_target.btf"))?;
    /// assert!(btf.types().len() > 1);
    /// # Ok::<(), bpfvm::loader::LoadError>(())
    /// ```
    pub fn parse_any(bytes: &[u8]) -> Result<Btf, LoadError> {
        if bytes.starts_with(b"\x7fELF") {
            let elf = super::elf::ElfObject::parse(bytes)?;
            let s = elf
                .section_by_name(".BTF")
                .ok_or_else(|| LoadError::BadBtf {
                    section: ".BTF".into(),
                    reason: "the ELF file has no .BTF section".into(),
                })?;
            return Btf::parse(s.data);
        }
        Btf::parse(bytes)
    }

    /// Read a target BTF file (raw BTF or an ELF file with `.BTF`), at most
    /// [`MAX_TARGET_BTF_BYTES`]. On Linux the running kernel's is
    /// `/sys/kernel/btf/vmlinux` (about 6 MiB; parsed in one pass).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Btf, LoadError> {
        let bytes = super::read_bounded(path.as_ref(), MAX_TARGET_BTF_BYTES, "BTF file")?;
        Btf::parse_any(&bytes)
    }
}
