//! The relocation kinds (`enum bpf_core_relo_kind` of the kernel's `uapi/linux/bpf.h`).

/// What a CO-RE relocation asks of the target (`enum bpf_core_relo_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CoreRelocKind {
    /// `BPF_CORE_FIELD_BYTE_OFFSET`: byte offset of a field (`BPF_CORE_READ`).
    FieldByteOffset,
    /// `BPF_CORE_FIELD_BYTE_SIZE`: size of a field in bytes.
    FieldByteSize,
    /// `BPF_CORE_FIELD_EXISTS`: 1 when the field exists (`bpf_core_field_exists`).
    FieldExists,
    /// `BPF_CORE_FIELD_SIGNED`: 1 when the field is a signed integer or enum.
    FieldSigned,
    /// `BPF_CORE_FIELD_LSHIFT_U64`: left shift that brings a bitfield to the top of a u64.
    FieldLshiftU64,
    /// `BPF_CORE_FIELD_RSHIFT_U64`: right shift that brings it back down.
    FieldRshiftU64,
    /// `BPF_CORE_TYPE_ID_LOCAL`: the type's id in the program's own BTF.
    TypeIdLocal,
    /// `BPF_CORE_TYPE_ID_TARGET`: the type's id in the target BTF (0 if absent).
    TypeIdTarget,
    /// `BPF_CORE_TYPE_EXISTS`: 1 when the target has a compatible type.
    TypeExists,
    /// `BPF_CORE_TYPE_SIZE`: the target type's size.
    TypeSize,
    /// `BPF_CORE_ENUMVAL_EXISTS`: 1 when the target enum has the enumerator.
    EnumvalExists,
    /// `BPF_CORE_ENUMVAL_VALUE`: the enumerator's value in the target.
    EnumvalValue,
    /// `BPF_CORE_TYPE_MATCHES`: 1 when the target type matches (`bpf_core_type_matches`).
    TypeMatches,
}

impl CoreRelocKind {
    /// Every kind, in the order of their kernel numbers.
    pub const ALL: [CoreRelocKind; 13] = [
        Self::FieldByteOffset,
        Self::FieldByteSize,
        Self::FieldExists,
        Self::FieldSigned,
        Self::FieldLshiftU64,
        Self::FieldRshiftU64,
        Self::TypeIdLocal,
        Self::TypeIdTarget,
        Self::TypeExists,
        Self::TypeSize,
        Self::EnumvalExists,
        Self::EnumvalValue,
        Self::TypeMatches,
    ];

    /// The kind with kernel number `raw`.
    ///
    /// ```
    /// use bpfvm::loader::CoreRelocKind;
    /// assert_eq!(CoreRelocKind::from_raw(12), Some(CoreRelocKind::TypeMatches));
    /// assert_eq!(CoreRelocKind::from_raw(13), None);
    /// ```
    pub fn from_raw(raw: u32) -> Option<Self> {
        Self::ALL.get(raw as usize).copied()
    }

    /// libbpf's name of the kind (`byte_off`, `field_exists`, ...), as in its messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::FieldByteOffset => "byte_off",
            Self::FieldByteSize => "byte_sz",
            Self::FieldExists => "field_exists",
            Self::FieldSigned => "signed",
            Self::FieldLshiftU64 => "lshift_u64",
            Self::FieldRshiftU64 => "rshift_u64",
            Self::TypeIdLocal => "local_type_id",
            Self::TypeIdTarget => "target_type_id",
            Self::TypeExists => "type_exists",
            Self::TypeMatches => "type_matches",
            Self::TypeSize => "type_size",
            Self::EnumvalExists => "enumval_exists",
            Self::EnumvalValue => "enumval_value",
        }
    }

    /// A field relocation (byte offset/size, exists, signed, shifts).
    pub fn is_field(self) -> bool {
        matches!(
            self,
            Self::FieldByteOffset
                | Self::FieldByteSize
                | Self::FieldExists
                | Self::FieldSigned
                | Self::FieldLshiftU64
                | Self::FieldRshiftU64
        )
    }

    /// A type relocation (ids, exists, size, matches).
    pub fn is_type(self) -> bool {
        matches!(
            self,
            Self::TypeIdLocal
                | Self::TypeIdTarget
                | Self::TypeExists
                | Self::TypeMatches
                | Self::TypeSize
        )
    }

    /// An enumerator relocation (exists, value).
    pub fn is_enumval(self) -> bool {
        matches!(self, Self::EnumvalExists | Self::EnumvalValue)
    }
}

impl std::fmt::Display for CoreRelocKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_each_kind_has_one_class() {
        for (i, k) in CoreRelocKind::ALL.iter().enumerate() {
            assert_eq!(CoreRelocKind::from_raw(i as u32), Some(*k));
            let classes = [k.is_field(), k.is_type(), k.is_enumval()];
            assert_eq!(classes.iter().filter(|&&c| c).count(), 1, "{k}");
        }
        assert_eq!(CoreRelocKind::from_raw(u32::MAX), None);
    }
}
