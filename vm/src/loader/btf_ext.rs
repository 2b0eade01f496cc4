//! `.BTF.ext`: CO-RE relocations, which bpfvm cannot apply (they need the running
//! kernel's BTF), so loading stops with an error naming the first one; and line info,
//! which maps instructions back to source lines for messages.

use std::collections::HashMap;
use std::sync::Arc;

use super::btf::Btf;
use super::btf_parse::u32_at;
use super::error::LoadError;
use super::limits::MAX_NAME_LEN;
use super::program::SourceLine;
use super::strtab::SharedStr;

/// Line info of one code section: `(instruction index, line)`, in strictly increasing
/// instruction order (the kernel's rule for `line_info`), each line shared by every
/// program that links that instruction.
pub(crate) type SectionLines = Vec<(usize, Arc<SourceLine>)>;

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
                .map_or_else(|| format!("<section name {sec_name_off}>"), String::from);
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

/// Line info by section name. Each record costs a fixed few bytes whatever the length
/// of the strings it names (they are shared with the BTF string section).
///
/// Fails when a record's strings lie outside the string section, or when the records of
/// a section are not in strictly increasing instruction order (the kernel refuses such
/// line info: "Invalid line_info[..].insn_off").
pub(crate) fn line_info(
    ext: &[u8],
    btf: &Btf,
) -> Result<HashMap<SharedStr, SectionLines>, LoadError> {
    let mut out: HashMap<SharedStr, SectionLines> = HashMap::new();
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
        if section.len() > MAX_NAME_LEN {
            return Err(bad(format!(
                "line info names a section of {} bytes, the limit is {MAX_NAME_LEN}",
                section.len()
            )));
        }
        let end = num
            .checked_mul(rec_size)
            .and_then(|n| n.checked_add(pos))
            .filter(|&e| e <= data.len())
            .ok_or_else(|| bad(format!("line info of section {section} truncated")))?;
        let lines = out.entry(section.clone()).or_default();
        while pos < end {
            let field = |i: usize| u32_at(data, pos + 4 * i).unwrap_or(0);
            let insn = field(0) as usize / 8;
            if let Some(&(prev, _)) = lines.last() {
                if insn <= prev {
                    return Err(bad(format!(
                        "line info of section {section}: instruction {insn} follows \
                         instruction {prev} (records must be in increasing order)"
                    )));
                }
            }
            let line_col = field(3);
            lines.push((
                insn,
                Arc::new(SourceLine {
                    file: string(field(1))?,
                    source: string(field(2))?,
                    line: line_col >> 10,
                    column: line_col & 0x3ff,
                }),
            ));
            pos += rec_size;
        }
    }
    Ok(out)
}
