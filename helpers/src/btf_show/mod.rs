//! 149 `bpf_snprintf_btf`: a kernel object shown as text through its BTF type, in the
//! kernel's format (`(struct iphdr){.ihl = (__u8)0x5,.version = (__u8)0x4,...}`).
//!
//! The helper reads a `struct btf_ptr` (`ptr`, `type_id`, `flags`; 16 bytes) and shows
//! the object at `ptr` of type `type_id` of the target BTF (the kernel's vmlinux BTF; in
//! bpfvm the BTF given with [`HelperContext::set_target_btf`]) into `str`, at most
//! `str_size` bytes with the NUL, returning the length of the whole text as `snprintf`
//! does, or a negative errno. As the kernel (`bpf_btf_printf_prepare`): flags outside
//! `BTF_F_ALL` or a `btf_ptr_size` other than 16 are `-EINVAL`, no target BTF is
//! `-EINVAL`, type id 0 is `-EINVAL`, a type id the BTF lacks is `-ENOENT`; a type the
//! kernel cannot size (a `DATASEC`) is `-EINVAL`.
//!
//! The object is read as the kernel's `copy_from_kernel_nofault`, in chunks of 32 bytes:
//! the program's own memory (stack, map values, context), else the VM's kernel memory
//! image, else zeros (bpfvm's probe semantics: a kernel address it does not hold reads 0;
//! never host memory); a chunk starting at a user or non-canonical address is `-ERANGE`,
//! as in the kernel. Pointers are shown hashed (`%p`) as 32 bits of a fixed hash
//! ([`hashed_pointer`]; the kernel's key is random per boot) unless `BTF_F_PTR_RAW`.
//!
//! ```
//! use bpfvm_helpers::btf_show::{snprintf_show, MemberView, ShowBtf, TypeView, F_COMPACT};
//!
//! /// `struct pair { int a; unsigned int b; }`: id 1 `int`, 2 `unsigned int`, 3 the struct.
//! #[derive(Debug)]
//! struct Pair;
//! impl ShowBtf for Pair {
//!     fn type_view(&self, id: u32) -> Option<TypeView<'_>> {
//!         let int = |name, encoding| TypeView::Int { name, size: 4, encoding, bits: 32, offset: 0 };
//!         match id {
//!             0 => Some(TypeView::Void),
//!             1 => Some(int("int", 1)),
//!             2 => Some(int("unsigned int", 0)),
//!             3 => Some(TypeView::Struct { name: "pair", size: 8, vlen: 2, union: false }),
//!             _ => None,
//!         }
//!     }
//!     fn member(&self, id: u32, i: usize) -> Option<MemberView<'_>> {
//!         let m = [("a", 1, 0), ("b", 2, 32)].get(i).filter(|_| id == 3)?;
//!         Some(MemberView { name: m.0, type_id: m.1, bit_offset: m.2, bitfield_size: 0 })
//!     }
//!     fn enumerator(&self, _: u32, _: usize) -> Option<(&str, i64)> {
//!         None
//!     }
//! }
//!
//! let object: [u8; 8] = [0xfe, 0xff, 0xff, 0xff, 7, 0, 0, 0]; // a = -2, b = 7
//! let mut read = |addr: u64, out: &mut [u8]| {
//!     out.copy_from_slice(&object[addr as usize..addr as usize + out.len()]);
//!     Ok(())
//! };
//! let shown = snprintf_show(&Pair, 3, 0, 64, F_COMPACT, &mut read);
//! let text = "(struct pair){.a = (int)-2,.b = (unsigned int)7,}";
//! assert_eq!(shown.ret, text.len() as i64);
//! assert_eq!(shown.bytes, [text.as_bytes(), b"\0"].concat());
//! ```
//!
//! [`HelperContext::set_target_btf`]: crate::HelperContext::set_target_btf

mod helper;
mod show;
mod types;

#[cfg(test)]
mod tests;

pub use helper::{register, snprintf_btf, BTF_PTR_SIZE};
pub use show::{
    hashed_pointer, snprintf_show, ObjRead, Shown, F_ALL, F_COMPACT, F_NONAME, F_PTR_RAW, F_ZERO,
    MAX_NEST, MAX_STEPS,
};
pub use types::{MemberView, ShowBtf, TypeView, INT_BOOL, INT_CHAR, INT_SIGNED};
