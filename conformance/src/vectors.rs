//! The public BPF ISA conformance vectors (`bpf_conformance`): locating and parsing them.
//!
//! The vectors are read from a folder at test time, never copied into this repository.
//! The folder is `$BPFVM_CONFORMANCE_DIR` when set, else `../shared/conformance/bpf_conformance`
//! relative to the repository root. It needs only upstream's `tests/` and `negative/`
//! folders (from the public `bpf_conformance` repository): each vector's program is
//! assembled from its `-- asm` section by [`crate::vector_asm`] (or read from its `-- raw`
//! section, which takes precedence, as upstream does).
//!
//! An `index.tsv` beside them (this project's shared copy has one, made by an independent
//! harness: see its `SOURCE.md`) is not needed; when present, [`check_index`] compares every
//! self-assembled program and memory with it.
use std::fmt;
use std::path::{Path, PathBuf};

use crate::vector_asm;

/// Environment variable naming the vector folder.
pub const DIR_VAR: &str = "BPFVM_CONFORMANCE_DIR";
/// Environment variable that turns a missing vector folder into a failure (set by `.ci/run`).
pub const REQUIRE_VAR: &str = "BPFVM_REQUIRE_CONFORMANCE";

/// What a vector expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `r0` at exit.
    Result(u64),
    /// The program must be refused (at load time) or fail to run.
    Error(String),
}

/// One conformance vector: a program, its input memory and what it must produce.
#[derive(Debug, Clone)]
pub struct Vector {
    /// Name: the file stem, prefixed with `negative/` for the negative folder.
    pub name: String,
    /// The program, 8 bytes per instruction slot.
    pub code: Vec<u8>,
    /// Input memory (`-- mem`), given to the program in `r1`, its length in `r2`.
    pub mem: Vec<u8>,
    /// The expected outcome.
    pub expect: Expect,
}

/// A problem with the vector folder or one of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorError {
    /// The file (or folder) concerned.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for VectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for VectorError {}

/// The vector folder: `$BPFVM_CONFORMANCE_DIR`, else `../shared/...` beside the repo root.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(DIR_VAR) {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/bpf_conformance")
}

/// Whether a missing folder must fail (CI) rather than skip loudly.
pub fn required() -> bool {
    std::env::var_os(REQUIRE_VAR).is_some_and(|v| v != "0" && !v.is_empty())
}

fn err(path: &Path, reason: impl Into<String>) -> VectorError {
    VectorError {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Sections of a `.data` file that we use.
#[derive(Debug, Default)]
struct DataFile {
    result: Option<u64>,
    error: Option<String>,
    mem: Vec<u8>,
    /// `-- asm` lines with their line numbers in the file.
    asm: Vec<(usize, String)>,
    /// `-- raw` lines with their line numbers in the file.
    raw: Vec<(usize, String)>,
    has_error_section: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    None,
    Asm,
    Result,
    Mem,
    Raw,
    Ignored,
    Error,
}

fn section_of(line: &str) -> Section {
    // The keyword order of the upstream reader.
    for (kw, s) in [
        ("asm", Section::Asm),
        ("result", Section::Result),
        ("mem", Section::Mem),
        ("raw", Section::Raw),
        ("no register offset", Section::Ignored),
        (" c", Section::Ignored),
        ("error", Section::Error),
    ] {
        if line.contains(kw) {
            return s;
        }
    }
    Section::Ignored
}

fn parse_u64(tok: &str) -> Option<u64> {
    let t = tok.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(neg) = t.strip_prefix('-') {
        neg.parse::<u64>().ok().map(|v| v.wrapping_neg())
    } else {
        t.parse::<u64>().ok()
    }
}

fn parse_data(path: &Path, text: &str) -> Result<DataFile, VectorError> {
    let mut out = DataFile::default();
    let mut section = Section::None;
    for (number, raw_line) in text.lines().enumerate() {
        let number = number + 1;
        let line = match raw_line.find('#') {
            Some(i) => &raw_line[..i],
            None => raw_line,
        };
        if line.contains("--") {
            section = section_of(line);
            if section == Section::Error {
                out.has_error_section = true;
            }
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match section {
            Section::Result => {
                out.result =
                    Some(parse_u64(line).ok_or_else(|| err(path, format!("bad result {line:?}")))?);
            }
            Section::Mem => {
                for tok in line.split_whitespace() {
                    out.mem.push(
                        u8::from_str_radix(tok, 16)
                            .map_err(|_| err(path, format!("bad memory byte {tok:?}")))?,
                    );
                }
            }
            Section::Asm => out.asm.push((number, line.to_owned())),
            Section::Raw => out.raw.push((number, line.to_owned())),
            Section::Error => out.error = Some(line.to_owned()),
            Section::Ignored | Section::None => {}
        }
    }
    Ok(out)
}

/// The program of a parsed file: its `-- raw` section if it has one, else its `-- asm`
/// section assembled.
fn program(path: &Path, data: &DataFile) -> Result<Vec<u8>, VectorError> {
    let code = if !data.raw.is_empty() {
        vector_asm::decode_raw(data.raw.iter().map(|(n, l)| (*n, l.as_str())))
    } else if !data.asm.is_empty() {
        vector_asm::assemble_lines(data.asm.iter().map(|(n, l)| (*n, l.as_str())))
    } else {
        return Err(err(path, "no -- asm or -- raw section"));
    };
    let code = code.map_err(|e| err(path, e.to_string()))?;
    if code.len() % 8 != 0 {
        return Err(err(path, "raw program is not whole instructions"));
    }
    Ok(code)
}

/// The `*.data` files of a folder, sorted by name.
fn data_files(folder: &Path, prefix: &str) -> Result<Vec<PathBuf>, VectorError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| err(folder, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".data"))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("?")
        .to_owned()
}

/// Loads one vector file: its program (the `-- raw` section, else the `-- asm` section
/// assembled by [`crate::vector_asm`]), memory and expected outcome. The name is the file
/// stem.
pub fn load_file(path: &Path) -> Result<Vector, VectorError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e.to_string()))?;
    let data = parse_data(path, &text)?;
    let code = program(path, &data)?;
    let expect = match (data.result, data.error) {
        (Some(r), _) => Expect::Result(r),
        (None, Some(e)) => Expect::Error(e),
        (None, None) => return Err(err(path, "neither result nor error")),
    };
    Ok(Vector {
        name: stem(path),
        code,
        mem: data.mem,
        expect,
    })
}

/// Loads the 313 positive vectors of `tests/*.data` (see [`load_file`]), sorted by name.
pub fn load_positive(dir: &Path) -> Result<Vec<Vector>, VectorError> {
    data_files(&dir.join("tests"), "")?
        .iter()
        .map(|p| load_file(p))
        .collect()
}

fn decode_hex(path: &Path, hex: &str) -> Result<Vec<u8>, VectorError> {
    if hex == "-" {
        return Ok(Vec::new());
    }
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return Err(err(path, "odd-length or non-ASCII hex in index.tsv"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| err(path, "bad hex in index.tsv"))
        })
        .collect()
}

/// Compares `positive` (from [`load_positive`]) with the folder's `index.tsv`, when it has
/// one: the same files, and for each the same bytecode (column 8) and memory (column 7).
/// Returns the number of rows compared, or `None` when there is no `index.tsv`.
pub fn check_index(dir: &Path, positive: &[Vector]) -> Result<Option<usize>, VectorError> {
    let index_path = dir.join("index.tsv");
    if !index_path.exists() {
        return Ok(None);
    }
    let index =
        std::fs::read_to_string(&index_path).map_err(|e| err(&index_path, e.to_string()))?;
    let mut rows = 0;
    for line in index.lines() {
        if line.starts_with('#') || line.starts_with("file\t") || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 8 {
            return Err(err(&index_path, format!("short row {line:?}")));
        }
        let name = stem(Path::new(cols[0]));
        let v = positive.iter().find(|v| v.name == name).ok_or_else(|| {
            err(
                &index_path,
                format!("{name} is in index.tsv, not in tests/"),
            )
        })?;
        let path = dir.join(cols[0]);
        if decode_hex(&index_path, cols[7])? != v.code {
            return Err(err(&path, "assembled bytecode differs from index.tsv"));
        }
        if decode_hex(&index_path, cols[6])? != v.mem {
            return Err(err(&path, "memory differs from index.tsv"));
        }
        rows += 1;
    }
    if rows != positive.len() {
        return Err(err(
            &index_path,
            format!("{rows} rows for {} vectors", positive.len()),
        ));
    }
    Ok(Some(rows))
}

/// Loads the `negative/unused-*.data` vectors: one instruction with a reserved field set,
/// written as eight hex bytes per line; every one must be refused at load time.
pub fn load_unused_field(dir: &Path) -> Result<Vec<Vector>, VectorError> {
    let mut vectors = Vec::new();
    for path in data_files(&dir.join("negative"), "unused-")? {
        let text = std::fs::read_to_string(&path).map_err(|e| err(&path, e.to_string()))?;
        let data = parse_data(&path, &text)?;
        if !data.has_error_section {
            return Err(err(&path, "no error section"));
        }
        if data.raw.is_empty() {
            return Err(err(&path, "no -- raw section"));
        }
        vectors.push(Vector {
            name: format!("negative/{}", stem(&path)),
            code: program(&path, &data)?,
            mem: Vec::new(),
            expect: Expect::Error(data.error.unwrap_or_default()),
        });
    }
    Ok(vectors)
}

/// Loads every vector the runner uses: the positive ones, then the `negative/unused-*` ones.
pub fn load_all(dir: &Path) -> Result<Vec<Vector>, VectorError> {
    let mut all = load_positive(dir)?;
    all.extend(load_unused_field(dir)?);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_and_comments() {
        let text = "# c\n-- asm\nmov %r0, 1 # x\nexit\n-- mem\n00 01\nff\n-- result\n0x10\n";
        let d = parse_data(Path::new("t"), text).unwrap();
        assert_eq!(d.result, Some(16));
        assert_eq!(d.mem, vec![0, 1, 0xff]);
        assert!(!d.has_error_section);
    }

    #[test]
    fn empty_error_section_is_noticed() {
        let text = "-- raw\n04 10 00 00 01 00 00 00\n95 00 00 00 00 00 00 00\n-- error\n";
        let d = parse_data(Path::new("t"), text).unwrap();
        assert!(d.has_error_section);
        assert_eq!(d.error, None);
        assert_eq!(d.raw.len(), 2);
        assert_eq!(program(Path::new("t"), &d).unwrap().len(), 16);
    }

    #[test]
    fn raw_takes_precedence_over_asm_and_errors_name_file_and_line() {
        let text = "-- asm\nmov %r0, 1\nexit\n-- raw\n0x95\n-- result\n0\n";
        let d = parse_data(Path::new("t"), text).unwrap();
        assert_eq!(d.asm, vec![(2, "mov %r0, 1".into()), (3, "exit".into())]);
        assert_eq!(
            program(Path::new("t"), &d).unwrap(),
            [0x95, 0, 0, 0, 0, 0, 0, 0]
        );
        let d = parse_data(Path::new("t.data"), "# x\n-- asm\nmov %r0, %r11\n").unwrap();
        let e = program(Path::new("t.data"), &d).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.data: line 3: invalid register \"%r11\" (expected %r0 to %r10)"
        );
        let d = parse_data(Path::new("t"), "-- result\n1\n").unwrap();
        assert!(program(Path::new("t"), &d).is_err());
    }

    #[test]
    fn bad_memory_byte_is_an_error() {
        let e = parse_data(Path::new("t"), "-- mem\nzz\n").unwrap_err();
        assert!(e.reason.contains("zz"), "{e}");
    }

    #[test]
    fn the_shared_folder_has_313_vectors_and_45_unused_field_vectors() {
        let dir = default_dir();
        if !dir.exists() {
            assert!(
                !required(),
                "conformance vectors missing at {}",
                dir.display()
            );
            eprintln!("SKIP: conformance vectors missing at {}", dir.display());
            return;
        }
        let pos = load_positive(&dir).unwrap();
        assert_eq!(pos.len(), 313);
        assert!(pos.iter().all(|v| matches!(v.expect, Expect::Result(_))));
        assert!(pos
            .iter()
            .all(|v| !v.code.is_empty() && v.code.len() % 8 == 0));
        let neg = load_unused_field(&dir).unwrap();
        assert_eq!(neg.len(), 45);
        assert!(neg.iter().all(|v| v.code.len() == 16));
    }

    #[test]
    fn files_with_both_raw_and_asm_sections_agree() {
        let dir = default_dir();
        if !dir.exists() {
            eprintln!("SKIP: conformance vectors missing at {}", dir.display());
            return;
        }
        let mut both = 0;
        for path in data_files(&dir.join("tests"), "").unwrap() {
            let d = parse_data(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
            if d.raw.is_empty() || d.asm.is_empty() {
                continue;
            }
            let asm = vector_asm::assemble_lines(d.asm.iter().map(|(n, l)| (*n, l.as_str())));
            assert_eq!(
                asm.unwrap(),
                program(&path, &d).unwrap(),
                "{}",
                path.display()
            );
            both += 1;
        }
        assert_eq!(both, 1, "upstream has one such file, lddw.data");
    }

    #[test]
    fn result_accepts_decimal_and_negative() {
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("-1"), Some(u64::MAX));
        assert_eq!(parse_u64("0xffffffffffffffff"), Some(u64::MAX));
    }
}
