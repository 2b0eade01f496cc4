//! Explaining a failed run: the C source line of the failing instruction (from `.BTF.ext`)
//! and, for a memory fault under the checked interpreter, what the guest address points at
//! (the region table of `docs/internals.md`).

use bpfvm::helpers::memory::{
    PACKET_OFFSET, REGION_CTX, REGION_MAP_HANDLES, REGION_MAP_VALUES, REGION_PACKET, REGION_STACK,
};
use bpfvm::loader::{GlobalDataKind, MapKind, Object, ProgramDefinition, BPF_F_RDONLY_PROG};
use bpfvm::{EngineKind, RunError};

/// The instruction index a run error names, if any.
pub fn failing_pc(e: &RunError) -> Option<usize> {
    let pc = match e {
        RunError::Fault { pc, .. }
        | RunError::BudgetExhausted { pc, .. }
        | RunError::CallDepth { pc, .. }
        | RunError::Helper { pc, .. }
        | RunError::BadCallx { pc, .. } => *pc,
        _ => return None,
    };
    (pc != usize::MAX).then_some(pc)
}

/// What guest address `addr` is, for a program `def` of `object` (engine `interpreter`).
pub fn describe_address(addr: u64, object: &Object, def: &ProgramDefinition) -> String {
    let region = (addr >> 32) as u32;
    let off = addr & 0xffff_ffff;
    match region {
        _ if addr == 0 => "address 0 is NULL".to_string(),
        REGION_PACKET => format!(
            "the packet region (packet data starts at {PACKET_OFFSET:#x}; the access is at \
             offset {} from it)",
            off as i64 - i64::from(PACKET_OFFSET)
        ),
        REGION_STACK => format!("the stack region (offset {off:#x})"),
        REGION_CTX => format!("the context (offset {off})"),
        REGION_MAP_HANDLES => "a map handle, which is never dereferenceable".to_string(),
        r if r >= REGION_MAP_VALUES => {
            let i = (r - REGION_MAP_VALUES) as usize;
            match def.maps.get(i).and_then(|&m| object.maps().get(m)) {
                Some(m) => {
                    let ro = m.map_flags & BPF_F_RDONLY_PROG != 0
                        || matches!(
                            m.kind,
                            MapKind::GlobalData {
                                kind: GlobalDataKind::Rodata,
                                ..
                            }
                        );
                    format!(
                        "the values of map {} at offset {off}{}",
                        m.name,
                        if ro {
                            ", which is read-only to programs"
                        } else {
                            ""
                        }
                    )
                }
                None => format!("region {r}, which is no map of this program"),
            }
        }
        r => format!("region {r}, which does not exist"),
    }
}

/// Extra lines for a failed run: the C source line and, for faults on the checked
/// interpreter, what the address is. Empty when there is nothing to add.
pub fn explain_failure(
    e: &RunError,
    engine: EngineKind,
    object: &Object,
    def: &ProgramDefinition,
) -> String {
    let mut extra = String::new();
    if let Some(line) = failing_pc(e).and_then(|pc| def.source_line(pc)) {
        extra.push_str(&format!(
            "\n  source: {}:{}: {}",
            line.file,
            line.line,
            line.source.trim()
        ));
    }
    if let (RunError::Fault { fault, .. }, EngineKind::Interpreter) = (e, engine) {
        extra.push_str(&format!(
            "\n  address {:#x} is {}",
            fault.addr,
            describe_address(fault.addr, object, def)
        ));
    }
    extra
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globals() -> Object {
        Object::parse_named("globals", include_bytes!("../../tests/fixtures/globals.o")).unwrap()
    }

    #[test]
    fn map_value_addresses_name_the_map() {
        let obj = globals();
        let def = obj.program("write_rodata").unwrap();
        let i = def
            .maps
            .iter()
            .position(|&m| obj.maps()[m].name == "globals.rodata")
            .unwrap();
        let addr = (u64::from(REGION_MAP_VALUES) + i as u64) << 32;
        assert_eq!(
            describe_address(addr, &obj, def),
            "the values of map globals.rodata at offset 0, which is read-only to programs"
        );
    }

    #[test]
    fn other_regions_are_named() {
        let obj = globals();
        let def = obj.program("bump").unwrap();
        assert_eq!(describe_address(0, &obj, def), "address 0 is NULL");
        assert!(describe_address(1 << 32, &obj, def).starts_with("the stack"));
        assert!(describe_address(3 << 32, &obj, def).contains("never dereferenceable"));
        assert!(describe_address(99 << 32, &obj, def).contains("no map of this program"));
    }
}
