//! The kernel verifier's verdict on a program: its maps created (filled and frozen as
//! asked), the program loaded with `BPF_PROG_LOAD` by a loader with the chosen privileges,
//! and the verifier's messages (log level 4: error messages and statistics, no trace).

use super::errno::Errno;
use super::prog::rewrite_map_indices;
use super::sys;

/// Size of the log buffer: error messages and the statistics line.
const LOG_SIZE: usize = 1 << 16;
/// `BPF_LOG_STATS`.
const LOG_STATS: u32 = 4;

/// One map of a program, described by its raw kernel numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerdictMap {
    /// `BPF_MAP_TYPE_*`.
    pub map_type: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Creation flags.
    pub map_flags: u32,
    /// Value written at key 0 after creation (single-element arrays).
    pub initial: Option<Vec<u8>>,
    /// Frozen after the write (as libbpf does for `.rodata`).
    pub frozen: bool,
    /// Created with BTF whose value type holds a `struct bpf_spin_lock` at this offset
    /// (as libbpf creates a map whose value has one).
    pub spin_lock: Option<u32>,
    /// Created with BTF whose value type holds a `struct bpf_timer` at this offset.
    pub timer: Option<u32>,
    /// For a map-in-map: its inner map template, created first and passed as
    /// `inner_map_fd`.
    pub inner: Option<Box<VerdictMap>>,
}

/// Who loads the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoaderPrivilege {
    /// `CAP_BPF` + `CAP_NET_ADMIN`, without `CAP_PERFMON` and `CAP_SYS_ADMIN`.
    CapBpf,
    /// root.
    Root,
}

/// What the kernel said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelVerdict {
    /// `None` when the program loaded, else `BPF_PROG_LOAD`'s errno.
    pub errno: Option<i32>,
    /// The verifier's log.
    pub log: String,
}

impl KernelVerdict {
    /// Whether the kernel accepted the program.
    pub fn accepted(&self) -> bool {
        self.errno.is_none()
    }

    /// The log without the statistics lines (`processed N insns ...`, `verification
    /// time ...`, `stack depth ...`).
    pub fn messages(&self) -> Vec<&str> {
        self.log
            .lines()
            .filter(|l| {
                !l.is_empty()
                    && !l.starts_with("processed ")
                    && !l.starts_with("verification time")
                    && !l.starts_with("stack depth")
            })
            .collect()
    }

    /// Instructions the verifier processed, from the statistics line.
    pub fn processed(&self) -> Option<u64> {
        let l = self.log.lines().find(|l| l.starts_with("processed "))?;
        l.split_whitespace().nth(1)?.parse().ok()
    }
}

/// Loads `insns` (little-endian instructions whose pseudo `ld_imm64`s name `maps` by
/// index) as a program of `prog_type` and returns the kernel's verdict. The maps live
/// only for the call. Fails with a message when a map cannot be created.
pub fn kernel_verdict(
    insns: &[u8],
    prog_type: u32,
    expected_attach_type: u32,
    maps: &[VerdictMap],
    license: &str,
    privilege: LoaderPrivilege,
) -> Result<KernelVerdict, String> {
    kernel_verdict_traced(
        insns,
        prog_type,
        expected_attach_type,
        maps,
        license,
        privilege,
        false,
    )
}

/// [`kernel_verdict`], with the verifier's full per-instruction trace in the log when
/// `trace` (log level 2 with statistics, 16 MiB of log: for investigating a difference;
/// [`KernelVerdict::messages`] then holds the trace lines too).
pub fn kernel_verdict_traced(
    insns: &[u8],
    prog_type: u32,
    expected_attach_type: u32,
    maps: &[VerdictMap],
    license: &str,
    privilege: LoaderPrivilege,
    trace: bool,
) -> Result<KernelVerdict, String> {
    let (level, size) = if trace {
        (LOG_STATS | 2, 16 << 20)
    } else {
        (LOG_STATS, LOG_SIZE)
    };
    let mut fds = Vec::with_capacity(maps.len());
    let mut btf_maps = Vec::new();
    let mut raw: Vec<i32> = Vec::with_capacity(maps.len());
    for (i, m) in maps.iter().enumerate() {
        if m.spin_lock.is_some() || m.timer.is_some() {
            let map = super::btf::create_special_field_map(m, m.spin_lock, m.timer)
                .map_err(|e| format!("map {i} (type {}) with special fields: {e}", m.map_type))?;
            raw.push(map.raw_fd());
            btf_maps.push(map);
            continue;
        }
        let fd = match &m.inner {
            None => sys::raw_map_create(
                m.map_type,
                m.key_size,
                m.value_size,
                m.max_entries,
                m.map_flags,
            ),
            // A template with a lock or timer: created with BTF describing them (the
            // kernel's `inner_map_meta` keeps its BTF and fields).
            Some(t) if t.spin_lock.is_some() || t.timer.is_some() => {
                let template = super::btf::create_special_field_map(t, t.spin_lock, t.timer)
                    .map_err(|e| format!("map {i}: inner template with special fields: {e}"))?;
                let outer = sys::map_in_map::raw_map_create_of_maps_fd(
                    m.map_type,
                    m.key_size,
                    m.value_size,
                    m.max_entries,
                    m.map_flags,
                    template.raw_fd(),
                );
                btf_maps.push(template);
                outer
            }
            Some(t) => sys::raw_map_create(
                t.map_type,
                t.key_size,
                t.value_size,
                t.max_entries,
                t.map_flags,
            )
            .and_then(|inner| {
                sys::map_in_map::raw_map_create_of_maps(
                    m.map_type,
                    m.key_size,
                    m.value_size,
                    m.max_entries,
                    m.map_flags,
                    &inner,
                )
            }),
        }
        .map_err(|e| format!("map {i} (type {}): BPF_MAP_CREATE: {e}", m.map_type))?;
        if let Some(v) = &m.initial {
            sys::raw_map_fill(&fd, v, m.frozen)
                .map_err(|e| format!("map {i}: initial value: {e}"))?;
        }
        raw.push(fd.raw());
        fds.push(fd);
    }
    let image = rewrite_map_indices(insns, &raw)?;
    let func_info = func_info_for(&image)?;
    let load = || {
        if privilege == LoaderPrivilege::CapBpf {
            sys::drop_to_cap_bpf().map_err(|e| format!("capset: {e}"))?;
        }
        let mut log = vec![0u8; size];
        let res = sys::prog_load_level(
            prog_type,
            expected_attach_type,
            &image,
            license,
            level,
            &mut log,
            func_info.as_ref().map(|(b, r)| (&b.fd, r.as_slice())),
        );
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let log = String::from_utf8_lossy(&log[..end]).into_owned();
        Ok::<_, String>(KernelVerdict {
            errno: res.err().map(|e: Errno| e.0),
            log,
        })
    };
    // Capabilities are per thread: a thread of its own drops them and loads.
    std::thread::scope(|s| {
        s.spawn(load)
            .join()
            .unwrap_or_else(|_| Err("loader thread panicked".into()))
    })
}

/// The BTF function info a program that takes a function's address (`ld_imm64` with
/// `src_reg` 4, a callback) needs ("missing btf func_info"): one `void f(void)` per
/// subprogram, the main program global, the others static (callbacks must be), as libbpf
/// gives it. `None` for other programs, which load without.
#[cfg(target_os = "linux")]
fn func_info_for(image: &[u8]) -> Result<Option<(super::btf::KernelBtf, Vec<u8>)>, String> {
    let n = image.len() / 8;
    let word = |i: usize| -> (u8, u8, i32) {
        let o = i * 8;
        let imm = i32::from_le_bytes([image[o + 4], image[o + 5], image[o + 6], image[o + 7]]);
        (image[o], image[o + 1] >> 4, imm)
    };
    let mut starts = vec![0usize];
    let mut takes_address = false;
    for i in 0..n {
        let (code, src, imm) = word(i);
        let target = (i as i64 + i64::from(imm) + 1) as usize;
        if code == 0x18 && src == 4 {
            takes_address = true;
            starts.push(target);
        } else if code == 0x85 && src == 1 {
            starts.push(target);
        }
    }
    if !takes_address {
        return Ok(None);
    }
    starts.sort_unstable();
    starts.dedup();
    let mut b = super::btf::BtfBuilder::new();
    let proto = b.func_proto_void();
    let mut recs = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let id = b.func(&format!("f{k}"), proto, u32::from(k == 0));
        recs.extend((s as u32).to_le_bytes());
        recs.extend(id.to_le_bytes());
    }
    let btf = super::btf::KernelBtf::load(&b)?;
    Ok(Some((btf, recs)))
}
