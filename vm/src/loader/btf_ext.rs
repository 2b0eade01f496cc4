//! `.BTF.ext`: bpfvm only needs to know whether it holds CO-RE relocations, which it
//! cannot apply (they need the running kernel's BTF), so loading stops with an error
//! naming the first one.

use super::btf::{u32_at, Btf};
use super::error::LoadError;

fn bad(reason: impl Into<String>) -> LoadError {
    LoadError::BadBtf {
        section: ".BTF.ext".into(),
        reason: reason.into(),
    }
}

/// The first CO-RE relocation in a `.BTF.ext` section, as (section name, instruction
/// index), or `None` when there is none.
pub(crate) fn first_core_relocation(
    ext: &[u8],
    btf: Option<&Btf>,
) -> Result<Option<(String, usize)>, LoadError> {
    if ext.get(0..2) != Some(&[0x9f, 0xeb][..]) {
        return Err(bad("bad magic"));
    }
    let hdr_len = u32_at(ext, 4).ok_or_else(|| bad("header truncated"))? as usize;
    // The CO-RE part of the header is optional (hdr_len 24 has none).
    if hdr_len < 32 {
        return Ok(None);
    }
    let off = u32_at(ext, 24).ok_or_else(|| bad("header truncated"))? as usize;
    let len = u32_at(ext, 28).ok_or_else(|| bad("header truncated"))? as usize;
    if len == 0 {
        return Ok(None);
    }
    let core = hdr_len
        .checked_add(off)
        .and_then(|s| ext.get(s..s.checked_add(len)?))
        .ok_or_else(|| bad("CO-RE relocations lie outside the section"))?;
    let _record_size = u32_at(core, 0).ok_or_else(|| bad("CO-RE relocations truncated"))?;
    let sec_name_off = u32_at(core, 4).ok_or_else(|| bad("CO-RE relocations truncated"))?;
    let num_info = u32_at(core, 8).ok_or_else(|| bad("CO-RE relocations truncated"))?;
    if num_info == 0 {
        return Ok(None);
    }
    let insn_off = u32_at(core, 12).ok_or_else(|| bad("CO-RE relocations truncated"))?;
    let section = btf
        .and_then(|b| b.string(sec_name_off))
        .unwrap_or_else(|| format!("<section name {sec_name_off}>"));
    Ok(Some((section, insn_off as usize / 8)))
}
