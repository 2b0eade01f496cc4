//! Reading the command's input files with a size limit: the object (at most
//! [`MAX_OBJECT_BYTES`]) and `--data` (at most what the kernel's test run takes for the
//! program type, [`data_limit`]). A file is read once, through a reader that stops one byte
//! past the limit, so a huge file or an endless one (`/dev/zero`) costs at most the limit.

use std::io::Read;
use std::path::Path;

use bpfvm::limits::{MAX_RAW_CONTEXT, SKB_MAX_DATA, XDP_MAX_DATA};
use bpfvm::{Input, ProgramType};

use super::size::show_size;
use super::CliError;

/// Largest object file the command reads: the loader's limit,
/// [`MAX_OBJECT_FILE_BYTES`](bpfvm::loader::limits::MAX_OBJECT_FILE_BYTES) (64 MiB).
pub const MAX_OBJECT_BYTES: usize = bpfvm::loader::limits::MAX_OBJECT_FILE_BYTES;

/// The most `--data` bytes a program of type `t` takes, and why: the kernel's test-run
/// limits ([`bpfvm::limits`]).
pub fn data_limit(t: ProgramType) -> (usize, &'static str) {
    if t == ProgramType::Xdp {
        (XDP_MAX_DATA, "the XDP test run's packet limit")
    } else if t.uses_sk_buff() {
        (SKB_MAX_DATA, "the __sk_buff test run's packet limit")
    } else {
        (MAX_RAW_CONTEXT, "the raw context limit")
    }
}

/// Bytes of the packet packet programs get without `--data`: a minimum Ethernet frame
/// (without FCS), all zero (EtherType 0: not IP).
pub const DEFAULT_FRAME: usize = 60;

/// Whether programs of type `t` take a packet (XDP and `__sk_buff` programs) rather than a
/// context.
pub fn takes_packet(t: ProgramType) -> bool {
    t == ProgramType::Xdp || t.uses_sk_buff()
}

/// The input every run of a program of type `t` starts from: `--data`'s bytes (read once,
/// bounded by [`data_limit`]) as a packet or a context; without `--data`, a
/// [`DEFAULT_FRAME`]-byte zeroed frame for packet programs and nothing for the others.
pub fn program_input(t: ProgramType, data: Option<&Path>) -> Result<Input, CliError> {
    let Some(file) = data else {
        return Ok(if takes_packet(t) {
            Input::packet(vec![0u8; DEFAULT_FRAME])
        } else {
            Input::empty()
        });
    };
    let (max, why) = data_limit(t);
    let bytes = read_bounded(file, max, "--data", why)?;
    Ok(if takes_packet(t) {
        Input::packet(bytes)
    } else {
        Input::context(bytes)
    })
}

/// Reads `path` whole when it holds at most `max` bytes; otherwise
/// [`CliError::FileTooLarge`] naming `what` and `why`, after reading at most `max + 1` bytes.
pub fn read_bounded(
    path: &Path,
    max: usize,
    what: &'static str,
    why: &'static str,
) -> Result<Vec<u8>, CliError> {
    let too_large = || CliError::FileTooLarge {
        path: path.display().to_string(),
        what,
        max: show_size(max as u64),
        why,
    };
    let file = std::fs::File::open(path).map_err(|e| CliError::io(path, e))?;
    // A regular file says its size: refuse it without reading. Others (pipes, devices)
    // are read up to one byte past the limit.
    let size_hint = match file.metadata() {
        Ok(m) if m.is_file() && m.len() > max as u64 => return Err(too_large()),
        Ok(m) => m.len(),
        Err(_) => 0,
    };
    let mut bytes = Vec::with_capacity(size_hint.min(max as u64 + 1) as usize);
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io(path, e))?;
    if bytes.len() > max {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_after_the_limit() {
        if !Path::new("/dev/zero").exists() {
            return;
        }
        let e = read_bounded(Path::new("/dev/zero"), 1000, "--data", "a test").unwrap_err();
        assert!(matches!(e, CliError::FileTooLarge { .. }), "{e}");
        assert!(e.to_string().contains("1000 bytes"), "{e}");
    }

    #[test]
    fn a_file_at_the_limit_is_read_whole() {
        let dir = std::env::temp_dir().join(format!("bpfvm-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("data.bin");
        std::fs::write(&f, [7u8; 100]).unwrap();
        assert_eq!(read_bounded(&f, 100, "--data", "t").unwrap(), [7u8; 100]);
        assert!(read_bounded(&f, 99, "--data", "t").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn limits_follow_the_loader_and_the_kernel() {
        assert_eq!(MAX_OBJECT_BYTES, 64 << 20);
        assert_eq!(data_limit(ProgramType::Xdp).0, 73_152);
        assert_eq!(data_limit(ProgramType::SchedCls).0, 3712);
        assert_eq!(data_limit(ProgramType::Kprobe).0, 65_535);
    }
}
