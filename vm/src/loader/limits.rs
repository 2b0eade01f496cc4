//! Every bound the loader puts on what an object may make it do, in one place (listed
//! with their values in `docs/reliability.md`, "Limits", which a test keeps in step).
//!
//! The loader only *describes* what an object asks for: a 2 GiB `.bss` or an ARRAY of
//! 536M entries costs a number, not memory, until the maps are created (where the maps
//! crate applies its own limits). What the loader itself builds — names, types, line
//! info, linked programs, decoded values — grows with the bytes of the file, never with
//! a count or a size the file merely declares; these limits cap the few things that
//! would otherwise be multiplied.

/// Largest object file [`Object::from_file`](super::Object::from_file) reads, in bytes
/// (the CLI's limit too); a larger or endless file (`/dev/zero`) is `TooLarge` after
/// reading one byte past it. `Object::parse` takes what it is given.
pub const MAX_OBJECT_FILE_BYTES: usize = 64 << 20;

/// Longest program after linking (its own code plus the `.text` functions it calls), in
/// instructions: the kernel's `BPF_COMPLEXITY_LIMIT_INSNS`. A longer program is `E2BIG`,
/// as `BPF_PROG_LOAD` answers ("BPF program is too large").
#[doc(alias = "BPF_COMPLEXITY_LIMIT_INSNS")]
pub const MAX_PROGRAM_INSNS: usize = 1_000_000;

/// Instructions of all programs of one object together, after linking. Each program
/// carries its own copy of the `.text` functions it calls (as libbpf links them), so
/// without this 2,000 programs calling one large function would need 2,000 copies of it.
/// More is `E2BIG`.
pub const MAX_OBJECT_INSNS: usize = 4 * MAX_PROGRAM_INSNS;

/// How many typedefs, modifiers, arrays and pointers a BTF type chain may go through
/// (resolving, sizing, naming) before the loader calls it cyclic.
pub const MAX_TYPE_DEPTH: usize = 32;

/// How deep [`Btf::decode`](super::Btf::decode) descends into nested structs, unions and
/// arrays; deeper parts are shown as raw bytes.
pub const MAX_DECODE_DEPTH: usize = 16;

/// Decoding budget: a decoded value may hold at most
/// `DECODE_BASE_UNITS + DECODE_UNITS_PER_BYTE × (bytes decoded)` units, and never more
/// than [`MAX_DECODE_UNITS`], where a unit is one decoded node or one byte of text it
/// carries (member names, strings, raw bytes). The rest is
/// [`BtfValue::Truncated`](super::BtfValue::Truncated), so a union that fans out
/// exponentially, or thousands of members with one long name, decode to a bounded value.
pub const DECODE_BASE_UNITS: usize = 4096;

/// See [`DECODE_BASE_UNITS`].
pub const DECODE_UNITS_PER_BYTE: usize = 16;

/// See [`DECODE_BASE_UNITS`]: the cap on one decoded value, whatever its size.
pub const MAX_DECODE_UNITS: usize = 1 << 20;

/// Longest name the loader matches between tables: BTF `VAR` and `DATASEC` names and the
/// section names of `.BTF.ext` line info, in bytes — the kernel's `KSYM_NAME_LEN` − 1,
/// beyond which it refuses BTF names too. Longer ones are an error; ELF section and
/// symbol names may be longer (they are shared, never copied) but then match none of
/// them. This keeps every name comparison and hash a bounded cost per reference.
#[doc(alias = "KSYM_NAME_LEN")]
pub const MAX_NAME_LEN: usize = 511;
