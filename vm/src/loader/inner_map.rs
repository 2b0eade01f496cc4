//! The inner map template of a BTF-defined map-in-map: `__array(values, struct inner)`
//! describes, with the BTF of `struct inner`, the maps the outer map holds (libbpf's
//! `inner_def`, from which it creates the template map `<outer>.inner`).

use super::btf::{Btf, BtfType};
use super::error::LoadError;
use super::map_def::{map_attrs, MapDefinition};

/// `BPF_MAP_TYPE_ARRAY_OF_MAPS`.
const ARRAY_OF_MAPS: u32 = 12;
/// `BPF_MAP_TYPE_HASH_OF_MAPS`.
const HASH_OF_MAPS: u32 = 13;

/// Whether `map_type` is `ARRAY_OF_MAPS` or `HASH_OF_MAPS`.
pub(crate) fn is_map_in_map(map_type: u32) -> bool {
    matches!(map_type, ARRAY_OF_MAPS | HASH_OF_MAPS)
}

/// The template of `outer`, whose `values` member has BTF type `values_type`: an array of
/// pointers to a map definition struct. Refused when `values` has another shape or the
/// template is itself a map-in-map (one level only).
pub(crate) fn template(
    btf: &Btf,
    outer: &MapDefinition,
    values_type: u32,
) -> Result<Box<MapDefinition>, LoadError> {
    let bad = |reason: String| LoadError::BadMapDefinition {
        map: outer.name.to_string(),
        reason,
    };
    let Some(BtfType::Array { elem, .. }) = btf.resolve(values_type).and_then(|t| btf.get(t))
    else {
        return Err(bad("values is not __array(values, struct ...)".into()));
    };
    let Some(BtfType::Ptr { target }) = btf.resolve(*elem).and_then(|t| btf.get(t)) else {
        return Err(bad(
            "values is not an array of pointers to a map definition".into(),
        ));
    };
    let name = format!("{}.inner", outer.name);
    let attrs = map_attrs(btf, &name, *target)?;
    let mut def = attrs.definition(name.into(), outer.section_index, outer.section_offset);
    def.timer_offset = def
        .value_type_id
        .and_then(|id| super::instance::find_struct(btf, id, "bpf_timer", 0));
    if is_map_in_map(def.map_type) {
        return Err(bad(
            "its inner map is a map-in-map too (the kernel has one level only)".into(),
        ));
    }
    Ok(Box::new(def))
}

#[cfg(test)]
mod tests {
    use crate::loader::Object;

    fn fixture() -> Object {
        let bytes = include_bytes!("../../tests/fixtures/map_in_map.o");
        Object::parse_named("map_in_map", bytes).unwrap()
    }

    #[test]
    fn the_template_comes_from_the_values_struct() {
        let obj = fixture();
        let outer = obj.maps().iter().find(|m| m.name == "outer").unwrap();
        assert_eq!(
            (outer.map_type, outer.key_size, outer.value_size),
            (12, 4, 4)
        );
        let t = outer.inner.as_ref().unwrap();
        assert_eq!(t.name, "outer.inner");
        assert_eq!(
            (t.map_type, t.key_size, t.value_size, t.max_entries),
            (2, 4, 8, 1)
        );
        let h = obj.maps().iter().find(|m| m.name == "by_port").unwrap();
        assert_eq!(h.map_type, 13);
        assert!(h.initial_slots.is_empty());
    }
}
