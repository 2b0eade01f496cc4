//! The kernel's BTF show (`btf_type_show` with `btf_snprintf_show`, kernel/bpf/btf.c),
//! reproduced step by step: the same state (depth, the zero-check pass, array member and
//! char-array state, the type being shown), the same 32-byte safe copies of the object
//! (`btf_show_obj_safe`), the same pieces of text written as `vsnprintf` writes them.
//! Quirks of the kernel's code are kept on purpose (they are what a program sees): names
//! of members inside array elements are not shown, an array of pointers repeats its first
//! element (`btf_type_has_size` is false for pointers), enumerator names are shown even
//! for 0, a 1-byte enum is read as 4 bytes.
//!
//! bpfvm adds bounds the kernel gets from its verified BTF: nesting
//! ([`MAX_NEST`]) and work ([`MAX_STEPS`]), so a malformed or cyclic BTF ends the show
//! with `-EINVAL` or `-E2BIG` instead of recursing or spinning.

use super::types::{MemberView, ShowBtf, TypeView, INT_CHAR, INT_SIGNED};

/// `BTF_F_COMPACT`: no indentation or newlines.
pub const F_COMPACT: u64 = 1;
/// `BTF_F_NONAME`: no member names or types.
pub const F_NONAME: u64 = 2;
/// `BTF_F_PTR_RAW`: pointers as their value (`%px`) rather than hashed (`%p`).
pub const F_PTR_RAW: u64 = 4;
/// `BTF_F_ZERO`: zero-valued members shown too.
pub const F_ZERO: u64 = 8;
/// Every flag the helper takes (`BTF_F_ALL`).
pub const F_ALL: u64 = F_COMPACT | F_NONAME | F_PTR_RAW | F_ZERO;

/// Most nested `show` calls (bpfvm's bound; kernel BTF nests far less).
pub const MAX_NEST: u32 = 64;
/// Most show steps (a type shown, an enumerator compared) in one call: bpfvm's bound on
/// the work of one `bpf_snprintf_btf` (the kernel has none; only a malformed BTF, e.g. a
/// huge array of empty structs, comes near it).
pub const MAX_STEPS: u64 = 1 << 22;

const SAFE_SIZE: usize = 32;
const BASE_TYPE_SIZE: u64 = 16;
const NAME_SIZE: usize = 80;
const MAX_ITER: usize = 10;
const MAX_RESOLVE_DEPTH: usize = 32;
const EINVAL: i32 = -22;
const E2BIG: i32 = -7;

/// How the show reads the object: copies `out.len()` bytes at an address as
/// `copy_from_kernel_nofault` does, or fails with its (negative) errno.
pub type ObjRead<'r> = &'r mut dyn FnMut(u64, &mut [u8]) -> Result<(), i32>;

/// What one show produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The bytes written at the start of the string buffer (NUL included; empty when
    /// nothing was written).
    pub bytes: Vec<u8>,
    /// The helper's return value: the length of the whole text, or a negative errno.
    pub ret: i64,
    /// Show steps taken (work done).
    pub steps: u64,
}

/// Shows the object at `obj` of type `type_id` as `btf_type_snprintf_show` does into a
/// buffer of `size` bytes. `read` copies object bytes as `copy_from_kernel_nofault`
/// (`Err(errno)` on failure). The caller checked `type_id` exists.
pub fn snprintf_show(
    btf: &dyn ShowBtf,
    type_id: u32,
    obj: u64,
    size: u32,
    flags: u64,
    read: ObjRead<'_>,
) -> Shown {
    let mut show = Show {
        btf,
        flags,
        read,
        out: Vec::new(),
        pos: 0,
        len_left: size.min(i32::MAX as u32) as usize,
        len: 0,
        depth: 0,
        depth_to_show: 0,
        depth_check: 0,
        array_member: false,
        array_terminated: false,
        array_encoding: 0,
        type_id: 0,
        type_is_union: false,
        status: 0,
        member: None,
        obj_size: 0,
        obj_head: 0,
        obj_data: 0,
        safe: [0; SAFE_SIZE],
        nest: 0,
        steps: 0,
        abort: None,
    };
    show.dispatch(type_id, type_id, obj, 0);
    let ret = match show.abort {
        Some(e) => i64::from(e),
        None if show.status != 0 => i64::from(show.status),
        None => show.len,
    };
    Shown {
        bytes: show.out,
        ret,
        steps: show.steps,
    }
}

/// The `%p` form of pointer value `v` in bpfvm: NULL and error pointers as they are (as
/// the kernel prints them), any other value as 32 bits of a fixed hash of it (the kernel
/// uses a per-boot random key, so its values differ run to run; bpfvm's are the same
/// every run). 16 hex digits, zero-padded, as the kernel's `%p`.
pub fn hashed_pointer(v: u64) -> String {
    if v == 0 || v >= (-4095i64) as u64 {
        return format!("{v:016x}");
    }
    let mut z = v ^ 0x6270_6676_6d5f_7074; // "bpfvm_pt"
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("{:016x}", z & 0xffff_ffff)
}

/// The kernel's `isprint` (Latin-1 `_ctype`: 0x20..0x7e and 0xa0..0xff).
fn isprint(c: u8) -> bool {
    (0x20..=0x7e).contains(&c) || c >= 0xa0
}

struct Show<'b, 'r> {
    btf: &'b dyn ShowBtf,
    flags: u64,
    read: ObjRead<'r>,
    /// The buffer's bytes written so far (`pos` is where the next piece goes).
    out: Vec<u8>,
    pos: usize,
    len_left: usize,
    len: i64,
    depth: u8,
    depth_to_show: u8,
    depth_check: u8,
    array_member: bool,
    array_terminated: bool,
    array_encoding: u8,
    type_id: u32,
    /// `state.type` is a union (for the compact delimiter).
    type_is_union: bool,
    status: i32,
    member: Option<MemberView<'b>>,
    obj_size: u32,
    obj_head: u64,
    obj_data: u64,
    safe: [u8; SAFE_SIZE],
    nest: u32,
    steps: u64,
    abort: Option<i32>,
}

impl<'b> Show<'b, '_> {
    fn view(&self, id: u32) -> Option<TypeView<'b>> {
        self.btf.type_view(id)
    }

    /// `btf_show`: one piece of text, as `vsnprintf` writes it into what is left.
    fn emit(&mut self, piece: &[u8]) {
        if self.depth_check != 0 {
            return;
        }
        let len = piece.len();
        if self.len_left > 0 {
            let n = len.min(self.len_left - 1);
            self.out.truncate(self.pos);
            self.out.extend_from_slice(&piece[..n]);
            self.out.push(0);
        }
        if len >= self.len_left {
            self.len_left = 0;
        } else {
            self.len_left -= len;
            self.pos += len;
        }
        self.len += len as i64;
    }

    fn indent(&self) -> &'static [u8] {
        const SPACES: &[u8; 32] = b"                                ";
        if self.flags & F_COMPACT != 0 {
            return b"";
        }
        &SPACES[..usize::from(self.depth).min(32)]
    }

    fn newline(&self) -> &'static [u8] {
        if self.flags & F_COMPACT != 0 {
            b""
        } else {
            b"\n"
        }
    }

    fn delim(&self) -> &'static [u8] {
        if self.depth == 0 {
            b""
        } else if self.flags & F_COMPACT != 0 && self.type_is_union {
            b"|"
        } else {
            b","
        }
    }

    /// `btf_show_type_value`: shown when non-zero, with `BTF_F_ZERO`, or at the top.
    fn type_value(&mut self, nonzero: bool, text: &[u8]) {
        if nonzero || self.flags & F_ZERO != 0 || self.depth == 0 {
            self.type_values(text);
        }
    }

    /// `btf_show_type_values`: always shown.
    fn type_values(&mut self, text: &[u8]) {
        if self.depth_check == 0 {
            let mut piece = self.indent().to_vec();
            piece.extend(self.name());
            piece.extend_from_slice(text);
            piece.extend_from_slice(self.delim());
            piece.extend_from_slice(self.newline());
            self.emit(&piece);
        }
        if self.depth > self.depth_to_show {
            self.depth_to_show = self.depth;
        }
    }

    /// `btf_type_skip_qualifiers`: past const/volatile/restrict/type tags, not typedefs.
    fn skip_qualifiers(&self, mut id: u32) -> Option<TypeView<'b>> {
        for _ in 0..MAX_RESOLVE_DEPTH {
            match self.view(id)? {
                TypeView::Modifier { target, .. } => id = target,
                t => return Some(t),
            }
        }
        None
    }

    /// `btf_type_skip_modifiers` (and the resolved ids of a verified BTF): past typedefs
    /// and qualifiers, to the id of the type underneath.
    fn skip_modifiers(&self, mut id: u32) -> Option<u32> {
        for _ in 0..MAX_RESOLVE_DEPTH {
            match self.view(id)? {
                TypeView::Modifier { target, .. } | TypeView::Typedef { target, .. } => id = target,
                _ => return Some(id),
            }
        }
        None
    }

    /// `btf_show_name`: `.member = (type)` (or only the parenthesis with
    /// `BTF_F_NONAME`), at most 79 bytes.
    fn name(&self) -> Vec<u8> {
        if self.array_member {
            return Vec::new();
        }
        let (mut id, member, show_member) = match self.member {
            Some(m) => (m.type_id, m.name, !m.name.is_empty()),
            None => (self.type_id, "", false),
        };
        let Some(mut t) = self.view(id) else {
            return Vec::new();
        };
        let mut name: Option<&str> = None;
        let (mut has_typedef, mut has_array, mut has_ptr) = (false, false, false);
        let (mut arrays, mut ptrs) = (0usize, 0usize);
        let mut parens = "";
        let mut i = 0;
        while i < MAX_ITER {
            match t {
                TypeView::Typedef { name: n, target } => {
                    name.get_or_insert(n);
                    has_typedef = true;
                    id = target;
                }
                TypeView::Array { elem, .. } => {
                    has_array = true;
                    parens = "[";
                    arrays = (arrays + 1).min(MAX_ITER);
                    id = elem;
                }
                TypeView::Ptr { target } => {
                    has_ptr = true;
                    ptrs = (ptrs + 1).min(MAX_ITER);
                    id = target;
                }
                _ => id = 0,
            }
            if id == 0 {
                break;
            }
            match self.skip_qualifiers(id) {
                Some(next) => t = next,
                None => return Vec::new(),
            }
            i += 1;
        }
        if i == MAX_ITER {
            return Vec::new();
        }
        let own_name = match t {
            TypeView::Int { name, .. }
            | TypeView::Struct { name, .. }
            | TypeView::Enum { name, .. }
            | TypeView::Typedef { name, .. }
            | TypeView::Modifier { name, .. }
            | TypeView::Var { name, .. }
            | TypeView::Datasec { name }
            | TypeView::Other { name, .. } => name,
            TypeView::Void | TypeView::Ptr { .. } | TypeView::Array { .. } => "",
        };
        let name = name.unwrap_or(own_name);
        let mut prefix = match t {
            TypeView::Struct { union, .. } => {
                if !has_array {
                    parens = "{";
                }
                if union {
                    "union"
                } else {
                    "struct"
                }
            }
            TypeView::Enum { .. } => "enum",
            _ => "",
        };
        if has_ptr {
            parens = "";
        }
        if has_typedef {
            prefix = "";
        }
        let text = if self.flags & F_NONAME != 0 {
            parens.to_string()
        } else {
            format!(
                "{}{}{}({}{}{}{}{}{}){}",
                if show_member { "." } else { "" },
                if show_member { member } else { "" },
                if show_member { " = " } else { "" },
                prefix,
                if !prefix.is_empty() && !name.is_empty() {
                    " "
                } else {
                    ""
                },
                name,
                if ptrs > 0 { " " } else { "" },
                "*".repeat(ptrs),
                "[]".repeat(arrays),
                parens
            )
        };
        let mut bytes = text.into_bytes();
        bytes.truncate(NAME_SIZE - 1);
        bytes
    }

    /// `__btf_resolve_size`: the size of `t` (arrays multiplied out).
    fn resolve_size(&self, mut t: TypeView<'b>) -> Result<u32, i32> {
        let mut nelems: u32 = 1;
        for _ in 0..MAX_RESOLVE_DEPTH {
            let size = match t {
                TypeView::Int { size, .. }
                | TypeView::Struct { size, .. }
                | TypeView::Enum { size, .. } => size,
                TypeView::Other { kind: 16, size, .. } => size,
                TypeView::Ptr { .. } => 8,
                TypeView::Typedef { target, .. } | TypeView::Modifier { target, .. } => {
                    t = self.view(target).ok_or(EINVAL)?;
                    continue;
                }
                TypeView::Array { elem, nelems: n } => {
                    if nelems != 0 && n > u32::MAX / nelems {
                        return Err(EINVAL);
                    }
                    nelems *= n;
                    t = self.view(elem).ok_or(EINVAL)?;
                    continue;
                }
                _ => return Err(EINVAL),
            };
            if nelems != 0 && size > u32::MAX / nelems {
                return Err(EINVAL);
            }
            return Ok(nelems * size);
        }
        Err(EINVAL)
    }

    /// `btf_show_obj_safe`: the offset in the safe copy where `data` is, copying the next
    /// chunk of the object when it is not there.
    fn obj_safe(&mut self, t: TypeView<'b>, data: u64) -> Option<usize> {
        let size = match self.resolve_size(t) {
            Ok(s) => s,
            Err(e) => {
                self.status = e;
                return None;
            }
        };
        let mut safe = None;
        if self.depth == 0 {
            self.obj_size = size;
            self.obj_head = data;
        } else {
            let need = u64::from(size).min(BASE_TYPE_SIZE);
            let end = u128::from(data) + u128::from(need);
            if data >= self.obj_data && end < u128::from(self.obj_data) + SAFE_SIZE as u128 {
                safe = Some((data - self.obj_data) as usize);
            }
        }
        if safe.is_none() {
            let left = i128::from(self.obj_head) + i128::from(self.obj_size) - i128::from(data);
            let left = left.clamp(0, SAFE_SIZE as i128) as usize;
            let mut chunk = [0u8; SAFE_SIZE];
            match (self.read)(data, &mut chunk[..left]) {
                Ok(()) => {
                    self.safe[..left].copy_from_slice(&chunk[..left]);
                    self.status = 0;
                    self.obj_data = data;
                    safe = Some(0);
                }
                Err(e) => self.status = e,
            }
        }
        safe
    }

    /// `N` bytes of the safe copy at `off` (zeros past its end).
    fn safe_bytes<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut b = [0u8; N];
        for (i, x) in b.iter_mut().enumerate() {
            *x = self.safe.get(off + i).copied().unwrap_or(0);
        }
        b
    }

    fn start_type(&mut self, t: TypeView<'b>, type_id: u32, data: u64) -> Option<usize> {
        self.type_is_union = matches!(t, TypeView::Struct { union: true, .. });
        self.type_id = type_id;
        self.obj_safe(t, data)
    }

    fn end_type(&mut self) {
        self.type_is_union = false;
        self.type_id = 0;
    }

    fn start_aggr_type(&mut self, t: TypeView<'b>, type_id: u32, data: u64) -> Option<usize> {
        let safe = self.start_type(t, type_id, data)?;
        let mut piece = self.indent().to_vec();
        piece.extend(self.name());
        piece.extend_from_slice(self.newline());
        self.emit(&piece);
        self.depth = self.depth.wrapping_add(1);
        Some(safe)
    }

    fn end_aggr_type(&mut self, suffix: &[u8]) {
        self.depth = self.depth.wrapping_sub(1);
        let mut piece = self.indent().to_vec();
        piece.extend_from_slice(suffix);
        piece.extend_from_slice(self.delim());
        piece.extend_from_slice(self.newline());
        self.emit(&piece);
        self.end_type();
    }

    /// `btf_type_ops(t)->show(btf, t, type_id, data, bits_offset, show)`, where `t` is
    /// the type with id `real` (`type_id` may name it through a typedef).
    fn dispatch(&mut self, real: u32, type_id: u32, data: u64, bits_offset: u8) {
        if self.abort.is_some() {
            return;
        }
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.abort = Some(E2BIG);
            return;
        }
        let Some(t) = self.view(real) else {
            self.abort = Some(EINVAL);
            return;
        };
        if self.nest >= MAX_NEST {
            self.abort = Some(EINVAL);
            return;
        }
        self.nest += 1;
        match t {
            TypeView::Int {
                encoding,
                bits,
                offset,
                ..
            } => self.int_show(t, type_id, data, bits_offset, encoding, bits, offset),
            TypeView::Ptr { .. } => self.ptr_show(t, type_id, data),
            TypeView::Array { .. } => self.array_show(t, type_id, data, bits_offset),
            TypeView::Struct { .. } => self.struct_show(real, t, type_id, data),
            TypeView::Enum { .. } => self.enum_show(real, t, type_id, data),
            TypeView::Typedef { .. } | TypeView::Modifier { .. } | TypeView::Var { .. } => {
                let start = match t {
                    TypeView::Var { target, .. } => target,
                    _ => real,
                };
                match self.skip_modifiers(start) {
                    Some(id) => self.dispatch(id, id, data, bits_offset),
                    None => self.abort = Some(EINVAL),
                }
            }
            // `btf_datasec_show` starts the type, and a DATASEC has no size for
            // `btf_resolve_size`: -EINVAL before anything is shown.
            TypeView::Datasec { .. } => {
                let _ = self.start_type(t, type_id, data);
            }
            TypeView::Void => self.emit(b"<unsupported kind:0>"),
            TypeView::Other { kind, .. } => {
                self.emit(format!("<unsupported kind:{kind}>").as_bytes())
            }
        }
        self.nest -= 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn int_show(
        &mut self,
        t: TypeView<'b>,
        type_id: u32,
        data: u64,
        bits_offset: u8,
        encoding: u8,
        bits: u32,
        offset: u32,
    ) {
        let Some(off) = self.start_type(t, type_id, data) else {
            return;
        };
        let sign = encoding & INT_SIGNED != 0;
        if bits_offset != 0 || offset != 0 || bits % 8 != 0 {
            self.int_bits_show(off, bits_offset, offset, bits);
            self.end_type();
            return;
        }
        match bits {
            128 => self.int128_print(u128::from_le_bytes(self.safe_bytes(off))),
            64 => {
                let v = u64::from_le_bytes(self.safe_bytes(off));
                let text = if sign {
                    (v as i64).to_string()
                } else {
                    v.to_string()
                };
                self.type_value(v != 0, text.as_bytes());
            }
            32 => {
                let v = u32::from_le_bytes(self.safe_bytes(off));
                let text = if sign {
                    (v as i32).to_string()
                } else {
                    v.to_string()
                };
                self.type_value(v != 0, text.as_bytes());
            }
            16 => {
                let v = u16::from_le_bytes(self.safe_bytes(off));
                let text = if sign {
                    (v as i16).to_string()
                } else {
                    v.to_string()
                };
                self.type_value(v != 0, text.as_bytes());
            }
            8 => {
                let [c] = self.safe_bytes::<1>(off);
                if self.array_encoding == INT_CHAR {
                    if self.array_terminated {
                        self.end_type();
                        return;
                    }
                    if c == 0 {
                        self.array_terminated = true;
                        self.end_type();
                        return;
                    }
                    if isprint(c) {
                        self.type_value(true, &[b'\'', c, b'\'']);
                        self.end_type();
                        return;
                    }
                }
                let text = if sign {
                    (c as i8).to_string()
                } else {
                    c.to_string()
                };
                self.type_value(c != 0, text.as_bytes());
            }
            _ => self.int_bits_show(off, bits_offset, offset, bits),
        }
        self.end_type();
    }

    /// `btf_int_bits_show`.
    fn int_bits_show(&mut self, off: usize, bits_offset: u8, int_offset: u32, bits: u32) {
        let total = (u32::from(bits_offset) + int_offset) as u8;
        self.bitfield_show(off + usize::from(total / 8), total % 8, bits as u8);
    }

    /// `btf_bitfield_show`: `nr_bits` bits from `bits_offset` of the bytes at `off`, in hex.
    fn bitfield_show(&mut self, off: usize, bits_offset: u8, nr_bits: u8) {
        let nr_copy_bits = u32::from(nr_bits.wrapping_add(bits_offset));
        let nr_copy_bytes = nr_copy_bits.div_ceil(8).min(16) as usize;
        let mut num = [0u8; 16];
        num[..nr_copy_bytes].copy_from_slice(&self.safe_bytes::<16>(off)[..nr_copy_bytes]);
        let v = u128::from_le_bytes(num);
        let left = 128 - nr_copy_bits.min(128);
        let right = 128 - u32::from(nr_bits).min(128);
        let v = v.checked_shl(left).unwrap_or(0);
        let v = v.checked_shr(right).unwrap_or(0);
        self.int128_print(v);
    }

    /// `btf_int128_print`.
    fn int128_print(&mut self, v: u128) {
        let (upper, lower) = ((v >> 64) as u64, v as u64);
        if upper == 0 {
            self.type_value(lower != 0, format!("0x{lower:x}").as_bytes());
        } else {
            self.type_values(format!("0x{upper:x}{lower:016x}").as_bytes());
        }
    }

    fn ptr_show(&mut self, t: TypeView<'b>, type_id: u32, data: u64) {
        let Some(off) = self.start_type(t, type_id, data) else {
            return;
        };
        let v = u64::from_le_bytes(self.safe_bytes(off));
        let text = if self.flags & F_PTR_RAW != 0 {
            format!("0x{v:016x}")
        } else {
            format!("0x{}", hashed_pointer(v))
        };
        self.type_value(v != 0, text.as_bytes());
        self.end_type();
    }

    /// `btf_array_show` / `btf_struct_show`: below the top and without `BTF_F_ZERO`, a
    /// first pass that shows nothing finds whether anything non-zero is inside.
    fn zero_checked(&mut self, mut body: impl FnMut(&mut Self)) {
        let m = self.member;
        if self.depth > 0 && self.flags & F_ZERO == 0 {
            if self.depth_check == 0 {
                self.depth_check = self.depth.wrapping_add(1);
                self.depth_to_show = 0;
            }
            body(self);
            self.member = m;
            if self.depth_check != self.depth.wrapping_add(1) {
                return;
            }
            self.depth_check = 0;
            if self.depth_to_show <= self.depth {
                return;
            }
        }
        body(self);
    }

    fn array_show(&mut self, t: TypeView<'b>, type_id: u32, data: u64, bits_offset: u8) {
        self.zero_checked(|s| s.array_body(t, type_id, data, bits_offset));
    }

    fn array_body(&mut self, t: TypeView<'b>, type_id: u32, mut data: u64, bits_offset: u8) {
        let TypeView::Array { elem, nelems } = t else {
            return;
        };
        let elem_real = self.skip_modifiers(elem);
        let elem_type = elem_real.and_then(|id| self.view(id));
        let elem_size = match elem_type {
            Some(
                TypeView::Int { size, .. }
                | TypeView::Struct { size, .. }
                | TypeView::Enum { size, .. }
                | TypeView::Other { size, .. },
            ) => size,
            _ => 0,
        };
        let mut encoding = 0;
        if let Some(TypeView::Int { encoding: e, .. }) = elem_type {
            encoding = if elem_size == 1 { INT_CHAR } else { e };
        }
        self.array_encoding = encoding;
        self.array_terminated = false;
        if self.start_aggr_type(t, type_id, data).is_none() {
            return;
        }
        if let Some(real) = elem_real {
            for _ in 0..nelems {
                if self.abort.is_some() {
                    break;
                }
                self.array_member = true;
                self.member = None;
                self.dispatch(real, elem, data, bits_offset);
                data = data.wrapping_add(u64::from(elem_size));
                self.array_member = false;
                self.member = None;
                if self.array_terminated {
                    break;
                }
            }
        }
        self.array_encoding = 0;
        self.array_terminated = false;
        self.end_aggr_type(b"]");
    }

    fn struct_show(&mut self, real: u32, t: TypeView<'b>, type_id: u32, data: u64) {
        self.zero_checked(|s| s.struct_body(real, t, type_id, data));
    }

    fn struct_body(&mut self, real: u32, t: TypeView<'b>, type_id: u32, data: u64) {
        let TypeView::Struct { vlen, .. } = t else {
            return;
        };
        if self.start_aggr_type(t, type_id, data).is_none() {
            return;
        }
        for i in 0..vlen {
            if self.abort.is_some() {
                break;
            }
            let Some(m) = self.btf.member(real, i) else {
                self.abort = Some(EINVAL);
                break;
            };
            let Some(member_type) = self.view(m.type_id) else {
                self.abort = Some(EINVAL);
                break;
            };
            self.member = Some(m);
            let at = data.wrapping_add(u64::from(m.bit_offset / 8));
            let bits8 = (m.bit_offset % 8) as u8;
            if m.bitfield_size != 0 {
                self.steps += 1;
                if let Some(off) = self.start_type(member_type, m.type_id, at) {
                    self.bitfield_show(off, bits8, m.bitfield_size as u8);
                }
                self.end_type();
            } else {
                self.dispatch(m.type_id, m.type_id, at, bits8);
            }
            self.member = None;
        }
        self.end_aggr_type(b"}");
    }

    fn enum_show(&mut self, real: u32, t: TypeView<'b>, type_id: u32, data: u64) {
        let TypeView::Enum {
            signed, is64, vlen, ..
        } = t
        else {
            return;
        };
        let Some(off) = self.start_type(t, type_id, data) else {
            return;
        };
        let v = if is64 {
            i64::from_le_bytes(self.safe_bytes(off))
        } else {
            i64::from(i32::from_le_bytes(self.safe_bytes(off)))
        };
        self.steps += vlen as u64;
        for i in 0..vlen {
            let Some((name, val)) = self.btf.enumerator(real, i) else {
                break;
            };
            let matches = if is64 {
                val == v
            } else {
                val as i32 == v as i32
            };
            if matches {
                self.type_value(true, name.as_bytes());
                self.end_type();
                return;
            }
        }
        let text = match (is64, signed) {
            (true, true) => v.to_string(),
            (true, false) => (v as u64).to_string(),
            (false, true) => (v as i32).to_string(),
            (false, false) => (v as u32).to_string(),
        };
        self.type_value(v != 0, text.as_bytes());
        self.end_type();
    }
}
