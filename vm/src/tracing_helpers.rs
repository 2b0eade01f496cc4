//! Built-in helpers bpfvm runs for some program types only: `bpf_get_socket_cookie` (46)
//! takes a `struct sock *` in tracing programs (see [`bpfvm_helpers::sock_cookie`]), but
//! the context (an `skb`, a socket operation) in the others, whose socket bpfvm does not
//! simulate. [`crate::Vm::load`] refuses a program of another type calling the built-in as
//! [`PrepareError::UnknownHelper`], as it refuses any helper it cannot run (a helper a
//! user registers under id 46 runs for every type).

use bpfvm_helpers::registry::Registry;
use bpfvm_helpers::sock_cookie::{self, GET_SOCKET_COOKIE};

use crate::error::PrepareError;
use crate::program::Program;
use crate::ProgramType;

/// The program types a built-in helper of this kind runs for, as `bpfvm support` names
/// them; `None` for the other helpers.
pub(crate) fn program_types(id: u32) -> Option<&'static str> {
    (id == GET_SOCKET_COOKIE.0).then_some("tracing (a `struct sock *`)")
}

/// The first call of the built-in `bpf_get_socket_cookie` in a program that is not a
/// tracing program, as an unknown helper.
pub(crate) fn check(program: &Program, registry: &Registry) -> Result<(), PrepareError> {
    if program.prog_type() == ProgramType::Tracing {
        return Ok(());
    }
    let id = GET_SOCKET_COOKIE.0;
    if !registry.get(id).is_some_and(sock_cookie::is_builtin) {
        return Ok(());
    }
    let call = program.bytecode().chunks_exact(8).position(|w| {
        // `call imm` (0x85) with src_reg 0: a helper call.
        w[0] == 0x85 && w[1] >> 4 == 0 && i32::from_le_bytes([w[4], w[5], w[6], w[7]]) == id as i32
    });
    match call {
        Some(pc) => Err(PrepareError::UnknownHelper {
            pc,
            id: i64::from(id),
        }),
        None => Ok(()),
    }
}
