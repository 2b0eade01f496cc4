//! The kernel's side through libbpf itself, opened at run time (`dlopen`, no build-time
//! link): an object opened, one program marked to load (`bpf_program__set_autoload`),
//! loaded with every map libbpf creates for it (none pinned, none reused), CO-RE relocated against the running
//! kernel's BTF, externs resolved, as a libbpf user loads it.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::fd::{FromRawFd, OwnedFd};

/// Verifier log kept per load (libbpf retries a failed load with log level 1 into it).
const LOG_SIZE: usize = 4 << 20;

type OpenFile = unsafe extern "C" fn(*const c_char, *const c_void) -> *mut c_void;
type NextProgram = unsafe extern "C" fn(*const c_void, *mut c_void) -> *mut c_void;
type NextMap = unsafe extern "C" fn(*const c_void, *const c_void) -> *mut c_void;
type GetStr = unsafe extern "C" fn(*const c_void) -> *const c_char;
type GetInt = unsafe extern "C" fn(*const c_void) -> c_int;
type GetU32 = unsafe extern "C" fn(*const c_void) -> u32;
type SetAutoload = unsafe extern "C" fn(*mut c_void, bool) -> c_int;
type SetPinPath = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type SetAutocreate = unsafe extern "C" fn(*mut c_void, bool) -> c_int;
type SetType = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
type SetLogBuf = unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> c_int;
type ObjLoad = unsafe extern "C" fn(*mut c_void) -> c_int;
type ObjClose = unsafe extern "C" fn(*mut c_void);
type GetInsns = unsafe extern "C" fn(*const c_void) -> *const u64;
type GetSize = unsafe extern "C" fn(*const c_void) -> usize;
type PrintFn = unsafe extern "C" fn(c_int, *const c_char, *mut c_void) -> c_int;
type SetPrint = unsafe extern "C" fn(Option<PrintFn>) -> Option<PrintFn>;
type VsnPrintf = unsafe extern "C" fn(*mut c_char, usize, *const c_char, *mut c_void) -> c_int;

/// libbpf's functions used here.
struct Fns {
    open_file: OpenFile,
    next_program: NextProgram,
    next_map: NextMap,
    prog_name: GetStr,
    prog_section: GetStr,
    prog_type: GetInt,
    prog_fd: GetInt,
    set_autoload: SetAutoload,
    set_type: SetType,
    set_pin_path: SetPinPath,
    set_autocreate: SetAutocreate,
    set_log_buf: SetLogBuf,
    load: ObjLoad,
    close: ObjClose,
    insns: GetInsns,
    insn_cnt: GetSize,
    map_name: GetStr,
    map_type: GetInt,
    map_fd: GetInt,
    map_key_size: GetU32,
    map_value_size: GetU32,
    map_max_entries: GetU32,
    map_flags: GetU32,
}

thread_local! {
    /// libbpf's warnings since the last [`take_messages`].
    static MESSAGES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// `vsnprintf`, to format libbpf's messages (x86-64, where a `va_list` argument is a
/// pointer); elsewhere the format string alone is kept.
static VSNPRINTF: std::sync::OnceLock<Option<VsnPrintf>> = std::sync::OnceLock::new();

/// libbpf's print callback: keeps warnings (level 0), drops info and debug.
unsafe extern "C" fn keep_warnings(level: c_int, fmt: *const c_char, args: *mut c_void) -> c_int {
    if level != 0 || fmt.is_null() {
        return 0;
    }
    let text = match VSNPRINTF.get().copied().flatten() {
        Some(f) if cfg!(target_arch = "x86_64") => {
            let mut buf = vec![0u8; 1024];
            // SAFETY: buf has buf.len() bytes; fmt and args are libbpf's, passed on unchanged
            // once (on x86-64 a va_list argument is a pointer to its state).
            unsafe { f(buf.as_mut_ptr().cast(), buf.len(), fmt, args) };
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        }
        // SAFETY: libbpf passes a NUL-terminated format string.
        _ => unsafe { CStr::from_ptr(fmt) }
            .to_string_lossy()
            .into_owned(),
    };
    MESSAGES.with(|m| m.borrow_mut().push(text.trim_end().to_owned()));
    0
}

fn take_messages() -> Vec<String> {
    MESSAGES.with(|m| std::mem::take(&mut *m.borrow_mut()))
}

/// libbpf, opened with `dlopen`.
pub struct Libbpf {
    fns: Fns,
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: see above.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

impl std::fmt::Debug for Libbpf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Libbpf")
    }
}

impl std::fmt::Debug for KObject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KObject").field("obj", &self.obj).finish()
    }
}

impl Libbpf {
    /// Opens libbpf from `path` (a file, or a name the dynamic linker finds such as
    /// `libbpf.so.1`). Fails naming what is missing.
    pub fn open(path: &str) -> Result<Self, String> {
        let c = CString::new(path).map_err(|_| format!("bad library path {path:?}"))?;
        // SAFETY: c is NUL-terminated; the handle is never closed (the functions stay valid).
        let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("cannot open {path}: {}", dl_error()));
        }
        let sym = |name: &str| -> Result<*mut c_void, String> {
            let n = CString::new(name).map_err(|_| name.to_owned())?;
            // SAFETY: handle is a live dlopen handle, n NUL-terminated.
            let p = unsafe { libc::dlsym(handle, n.as_ptr()) };
            if p.is_null() {
                Err(format!("{path} has no {name}: {}", dl_error()))
            } else {
                Ok(p)
            }
        };
        macro_rules! f {
            ($name:literal, $ty:ty) => {
                // SAFETY: the symbol is libbpf's function of that C signature (libbpf.h).
                unsafe { std::mem::transmute::<*mut c_void, $ty>(sym($name)?) }
            };
        }
        let fns = Fns {
            open_file: f!("bpf_object__open_file", OpenFile),
            next_program: f!("bpf_object__next_program", NextProgram),
            next_map: f!("bpf_object__next_map", NextMap),
            prog_name: f!("bpf_program__name", GetStr),
            prog_section: f!("bpf_program__section_name", GetStr),
            prog_type: f!("bpf_program__type", GetInt),
            prog_fd: f!("bpf_program__fd", GetInt),
            set_autoload: f!("bpf_program__set_autoload", SetAutoload),
            set_type: f!("bpf_program__set_type", SetType),
            set_pin_path: f!("bpf_map__set_pin_path", SetPinPath),
            set_autocreate: f!("bpf_map__set_autocreate", SetAutocreate),
            set_log_buf: f!("bpf_program__set_log_buf", SetLogBuf),
            load: f!("bpf_object__load", ObjLoad),
            close: f!("bpf_object__close", ObjClose),
            insns: f!("bpf_program__insns", GetInsns),
            insn_cnt: f!("bpf_program__insn_cnt", GetSize),
            map_name: f!("bpf_map__name", GetStr),
            map_type: f!("bpf_map__type", GetInt),
            map_fd: f!("bpf_map__fd", GetInt),
            map_key_size: f!("bpf_map__key_size", GetU32),
            map_value_size: f!("bpf_map__value_size", GetU32),
            map_max_entries: f!("bpf_map__max_entries", GetU32),
            map_flags: f!("bpf_map__map_flags", GetU32),
        };
        let set_print: SetPrint = f!("libbpf_set_print", SetPrint);
        VSNPRINTF.get_or_init(|| {
            let n = c"vsnprintf";
            // SAFETY: RTLD_DEFAULT lookup of the C library's vsnprintf.
            let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, n.as_ptr()) };
            // SAFETY: vsnprintf has this signature where va_list is a pointer (x86-64).
            (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, VsnPrintf>(p) })
        });
        // SAFETY: keep_warnings has libbpf's print callback signature.
        unsafe { set_print(Some(keep_warnings)) };
        Ok(Libbpf { fns })
    }
}

/// A program of an opened object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KProgram {
    /// Function name.
    pub name: String,
    /// Section name.
    pub section: String,
    /// `enum bpf_prog_type` as libbpf decided it from the section.
    pub prog_type: u32,
}

/// A map of a loaded object.
#[derive(Debug)]
pub struct KMap {
    /// libbpf's name for it.
    pub name: String,
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// `key_size`.
    pub key_size: u32,
    /// `value_size`.
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags`.
    pub map_flags: u32,
    /// A duplicate of its fd.
    pub fd: OwnedFd,
}

/// An object opened by libbpf; closed on drop.
pub struct KObject<'l> {
    lib: &'l Libbpf,
    obj: *mut c_void,
    /// The verifier log buffer given to the program to load (libbpf keeps the pointer).
    log: Vec<u8>,
}

fn string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: libbpf returns NUL-terminated names that live as long as the object.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// A duplicate (close-on-exec) of `fd`, owned.
fn dup(fd: c_int) -> Result<OwnedFd, String> {
    if fd < 0 {
        return Err(format!("no fd ({fd})"));
    }
    // SAFETY: F_DUPFD_CLOEXEC on an fd libbpf owns makes a new fd only we own.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if n < 0 {
        return Err(format!("fcntl: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: n is a fresh fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

impl<'l> KObject<'l> {
    /// `bpf_object__open_file(path)`; fails with libbpf's errno and warnings.
    pub fn open(lib: &'l Libbpf, path: &std::path::Path) -> Result<Self, String> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("bad path {}", path.display()))?;
        take_messages();
        // SAFETY: c is NUL-terminated; NULL opts are allowed.
        let obj = unsafe { (lib.fns.open_file)(c.as_ptr(), std::ptr::null()) };
        if obj.is_null() {
            let err = std::io::Error::last_os_error();
            return Err(format!("libbpf open: {err}{}", messages_suffix()));
        }
        Ok(KObject {
            lib,
            obj,
            log: Vec::new(),
        })
    }

    fn program_ptrs(&self) -> Vec<*mut c_void> {
        let mut v = Vec::new();
        let mut p = std::ptr::null_mut();
        loop {
            // SAFETY: obj is open; p is NULL or a program of it.
            p = unsafe { (self.lib.fns.next_program)(self.obj, p) };
            if p.is_null() {
                return v;
            }
            v.push(p);
        }
    }

    /// The programs, in libbpf's order.
    pub fn programs(&self) -> Vec<KProgram> {
        self.program_ptrs()
            .into_iter()
            .map(|p| KProgram {
                // SAFETY: p is a program of the open object.
                name: string(unsafe { (self.lib.fns.prog_name)(p) }),
                // SAFETY: as above.
                section: string(unsafe { (self.lib.fns.prog_section)(p) }),
                // SAFETY: as above.
                prog_type: unsafe { (self.lib.fns.prog_type)(p) } as u32,
            })
            .collect()
    }

    /// Loads the object with only program `index` (of [`KObject::programs`]) marked to
    /// load, as `prog_type` when given (`bpf_program__set_type`), without creating the maps
    /// named in `skip_maps` (`bpf_map__set_autocreate`; libbpf poisons a program's use of
    /// such a map, so the verifier refuses it if reachable). Fails with the errno,
    /// libbpf's warnings and the verifier log's last lines.
    pub fn load_only(
        &mut self,
        index: usize,
        prog_type: Option<u32>,
        skip_maps: &[String],
    ) -> Result<(), String> {
        let progs = self.program_ptrs();
        self.log = vec![0; LOG_SIZE];
        for (i, &p) in progs.iter().enumerate() {
            // SAFETY: p is a program of the open, not yet loaded object; the log buffer
            // lives in self as long as the object.
            unsafe {
                (self.lib.fns.set_autoload)(p, i == index);
                if let (true, Some(t)) = (i == index, prog_type) {
                    (self.lib.fns.set_type)(p, t as c_int);
                }
                if i == index {
                    (self.lib.fns.set_log_buf)(p, self.log.as_mut_ptr().cast(), self.log.len());
                }
            }
        }
        // No pinning: a map with `pinning = LIBBPF_PIN_BY_NAME` would otherwise be pinned
        // in /sys/fs/bpf and reused, with its contents, by the next load.
        let mut m: *mut c_void = std::ptr::null_mut();
        loop {
            // SAFETY: obj is open; m is NULL or a map of it; a NULL path clears pinning.
            m = unsafe { (self.lib.fns.next_map)(self.obj, m) };
            if m.is_null() {
                break;
            }
            // SAFETY: as above.
            unsafe { (self.lib.fns.set_pin_path)(m, std::ptr::null()) };
            // SAFETY: as above; m's name lives as long as the object.
            if skip_maps.contains(&string(unsafe { (self.lib.fns.map_name)(m) })) {
                // SAFETY: as above, before the load.
                unsafe { (self.lib.fns.set_autocreate)(m, false) };
            }
        }
        take_messages();
        // SAFETY: obj is open and not loaded.
        let res = unsafe { (self.lib.fns.load)(self.obj) };
        if res == 0 {
            return Ok(());
        }
        let errno = std::io::Error::from_raw_os_error(-res);
        let end = self
            .log
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.log.len());
        let log = String::from_utf8_lossy(&self.log[..end]);
        let tail: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = tail[tail.len().saturating_sub(2)..].join(" / ");
        let verifier = if tail.is_empty() {
            String::new()
        } else {
            format!("; verifier: {tail}")
        };
        Err(format!("{errno}{}{verifier}", messages_suffix()))
    }

    /// The verifier log of the last [`KObject::load_only`] (libbpf's, with its fix-ups:
    /// a reachable poisoned map reference reads `N: <invalid BPF map reference>` and
    /// `BPF map 'm' is referenced but wasn't created`).
    pub fn log(&self) -> String {
        let end = self
            .log
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.log.len());
        String::from_utf8_lossy(&self.log[..end]).into_owned()
    }

    /// Program `index`'s instructions as libbpf has them (`bpf_program__insns`): after
    /// [`KObject::load_only`], relocated as libbpf gave them to the kernel (map fds in
    /// place, references to maps it did not create poisoned).
    pub fn program_insns(&self, index: usize) -> Vec<u64> {
        let Some(&p) = self.program_ptrs().get(index) else {
            return Vec::new();
        };
        // SAFETY: p is a program of the open object; libbpf's array holds insn_cnt
        // instructions of 8 bytes and lives as long as the object.
        unsafe {
            let n = (self.lib.fns.insn_cnt)(p);
            let at = (self.lib.fns.insns)(p);
            if at.is_null() {
                return Vec::new();
            }
            std::slice::from_raw_parts(at.cast::<u8>(), n * 8)
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect()
        }
    }

    /// A duplicate of program `index`'s fd once loaded.
    pub fn program_fd(&self, index: usize) -> Result<OwnedFd, String> {
        let p = *self.program_ptrs().get(index).ok_or("no such program")?;
        // SAFETY: p is a program of the loaded object.
        dup(unsafe { (self.lib.fns.prog_fd)(p) })
    }

    /// The maps libbpf created, with duplicates of their fds.
    pub fn maps(&self) -> Vec<KMap> {
        let f = &self.lib.fns;
        let mut v = Vec::new();
        let mut m: *mut c_void = std::ptr::null_mut();
        loop {
            // SAFETY: obj is open; m is NULL or a map of it.
            m = unsafe { (f.next_map)(self.obj, m) };
            if m.is_null() {
                return v;
            }
            // SAFETY: m is a map of the loaded object.
            let Ok(fd) = dup(unsafe { (f.map_fd)(m) }) else {
                continue;
            };
            // SAFETY: as above.
            unsafe {
                v.push(KMap {
                    name: string((f.map_name)(m)),
                    map_type: (f.map_type)(m) as u32,
                    key_size: (f.map_key_size)(m),
                    value_size: (f.map_value_size)(m),
                    max_entries: (f.map_max_entries)(m),
                    map_flags: (f.map_flags)(m),
                    fd,
                });
            }
        }
    }
}

/// The map libbpf could not create, from a load error of [`KObject::load_only`]
/// (`map 'NAME': failed to create`).
pub fn map_not_created(error: &str) -> Option<&str> {
    let i = error.find("map '")? + 5;
    let len = error[i..].find("': failed to create")?;
    let name = &error[i..i + len];
    (!name.contains('\'')).then_some(name)
}

/// libbpf's warnings since the last call, as `: a; b` (the last three).
fn messages_suffix() -> String {
    let m = take_messages();
    if m.is_empty() {
        return String::new();
    }
    let tail = &m[m.len().saturating_sub(3)..];
    format!(": {}", tail.join("; "))
}

impl Drop for KObject<'_> {
    fn drop(&mut self) {
        // SAFETY: obj was opened by open_file and is closed once.
        unsafe { (self.lib.fns.close)(self.obj) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_not_created_is_found_in_the_error() {
        let e =
            "Invalid argument (os error 22): libbpf: map 'stack_traces': failed to create: -EINVAL";
        assert_eq!(map_not_created(e), Some("stack_traces"));
        assert_eq!(
            map_not_created("Permission denied: verifier: R1 invalid"),
            None
        );
        assert_eq!(map_not_created("map 'x': created"), None);
    }
}
