//! `.BTF.ext`: CO-RE relocations, which bpfvm cannot apply (they need the running
//! kernel's BTF), so loading stops with an error naming the first one; and line info,
//! which maps instructions back to source lines for messages.

use std::collections::HashMap;

use super::btf::{u32_at, Btf};
use super::error::LoadError;
use super::program::SourceLine;

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
    let Some(core) = part(ext, 24)? else {
        return Ok(None);
    };
    if core.is_empty() {
        return Ok(None);
    }
    let truncated = || bad("CO-RE relocations truncated");
    let rec_size = u32_at(core, 0).ok_or_else(truncated)? as usize;
    if rec_size < 16 {
        return Err(bad(format!("CO-RE record size {rec_size} is below 16")));
    }
    let mut pos = 4;
    while pos < core.len() {
        let sec_name_off = u32_at(core, pos).ok_or_else(truncated)?;
        let num = u32_at(core, pos + 4).ok_or_else(truncated)? as usize;
        pos += 8;
        if num > 0 {
            let insn_off = u32_at(core, pos).ok_or_else(truncated)?;
            let section = btf
                .and_then(|b| b.string(sec_name_off))
                .unwrap_or_else(|| format!("<section name {sec_name_off}>"));
            return Ok(Some((section, insn_off as usize / 8)));
        }
    }
    Ok(None)
}

/// The `(offset, length)` of one part of `.BTF.ext` (func info at header byte 8, line
/// info at 16, CO-RE relocations at 24), relative to the end of the header; `None` when
/// the header is too short to have it.
fn part(ext: &[u8], field: usize) -> Result<Option<&[u8]>, LoadError> {
    if ext.get(0..2) != Some(&[0x9f, 0xeb][..]) {
        return Err(bad("bad magic"));
    }
    let hdr_len = u32_at(ext, 4).ok_or_else(|| bad("header truncated"))? as usize;
    if hdr_len < field + 8 {
        return Ok(None);
    }
    let off = u32_at(ext, field).ok_or_else(|| bad("header truncated"))? as usize;
    let len = u32_at(ext, field + 4).ok_or_else(|| bad("header truncated"))? as usize;
    hdr_len
        .checked_add(off)
        .and_then(|s| ext.get(s..s.checked_add(len)?))
        .map(Some)
        .ok_or_else(|| bad("a part of the section lies outside it"))
}

/// Line info by section name: `(instruction index in the section, source line)`, in
/// the order of the records.
pub(crate) fn line_info(
    ext: &[u8],
    btf: &Btf,
) -> Result<HashMap<String, Vec<(usize, SourceLine)>>, LoadError> {
    let mut out: HashMap<String, Vec<(usize, SourceLine)>> = HashMap::new();
    let Some(data) = part(ext, 16)? else {
        return Ok(out);
    };
    if data.is_empty() {
        return Ok(out);
    }
    let rec_size = u32_at(data, 0).ok_or_else(|| bad("line info truncated"))? as usize;
    if rec_size < 16 {
        return Err(bad(format!("line info record size {rec_size} is below 16")));
    }
    let string = |off: u32| {
        btf.string(off)
            .ok_or_else(|| bad(format!("line info string offset {off} out of range")))
    };
    let mut pos = 4;
    while pos < data.len() {
        let sec_name = u32_at(data, pos).ok_or_else(|| bad("line info truncated"))?;
        let num = u32_at(data, pos + 4).ok_or_else(|| bad("line info truncated"))? as usize;
        pos += 8;
        let section = string(sec_name)?;
        let end = num
            .checked_mul(rec_size)
            .and_then(|n| n.checked_add(pos))
            .filter(|&e| e <= data.len())
            .ok_or_else(|| bad(format!("line info of section {section} truncated")))?;
        let lines = out.entry(section).or_default();
        while pos < end {
            let field = |i: usize| u32_at(data, pos + 4 * i).unwrap_or(0);
            let line_col = field(3);
            lines.push((
                field(0) as usize / 8,
                SourceLine {
                    file: string(field(1))?,
                    source: string(field(2))?,
                    line: line_col >> 10,
                    column: line_col & 0x3ff,
                },
            ));
            pos += rec_size;
        }
    }
    Ok(out)
}
