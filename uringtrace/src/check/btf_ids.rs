//! Finding a type's id in the kernel's BTF by name and kind: what a tp_btf
//! or fentry program names as its `attach_btf_id`.
//!
//! aya parses BTF too, but the kind it looks ids up by (`aya_obj`'s
//! `BtfKind`) is not re-exported by aya, and all the check needs is this
//! walk over the type section: one type record after the other, each with a
//! kind-dependent tail.

use std::path::Path;

use thiserror::Error;

/// The kernel's own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const BTF_MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
/// `struct btf_type`: name_off, info, size_or_type.
const TYPE_LEN: usize = 12;

/// BTF kinds the check looks up (`BTF_KIND_*` in `include/uapi/linux/btf.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BtfKind {
    Typedef = 8,
    Func = 12,
}

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not BTF of this machine's byte order: magic {0:#06x}")]
    BadMagic(u16),
    #[error("BTF header or sections out of bounds")]
    Truncated,
    #[error("BTF type {id} has kind {kind}, unknown to uringtrace: its size cannot be skipped")]
    UnknownKind { id: u32, kind: u32 },
}

/// A parsed BTF blob: each type's kind and name, by type id (id 0 is
/// `void`, not stored).
pub struct BtfTypes {
    data: Vec<u8>,
    strings: std::ops::Range<usize>,
    /// Per type id - 1: (kind, name offset).
    types: Vec<(u32, u32)>,
}

impl BtfTypes {
    pub fn read(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(data)
    }

    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        let u16_at = |off: usize| -> Result<u16, BtfError> {
            let bytes = data.get(off..off + 2).ok_or(BtfError::Truncated)?;
            Ok(u16::from_ne_bytes([bytes[0], bytes[1]]))
        };
        let u32_at = |off: usize| -> Result<u32, BtfError> {
            let bytes = data.get(off..off + 4).ok_or(BtfError::Truncated)?;
            Ok(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        };
        let magic = u16_at(0)?;
        if magic != BTF_MAGIC {
            return Err(BtfError::BadMagic(magic));
        }
        let hdr_len = u32_at(4)? as usize;
        if hdr_len < HEADER_LEN {
            return Err(BtfError::Truncated);
        }
        let section = |off: usize, len: usize| -> Result<std::ops::Range<usize>, BtfError> {
            let start = hdr_len.checked_add(off).ok_or(BtfError::Truncated)?;
            let end = start.checked_add(len).ok_or(BtfError::Truncated)?;
            if end > data.len() {
                return Err(BtfError::Truncated);
            }
            Ok(start..end)
        };
        let type_section = section(u32_at(8)? as usize, u32_at(12)? as usize)?;
        let strings = section(u32_at(16)? as usize, u32_at(20)? as usize)?;

        let mut types = Vec::new();
        let mut off = type_section.start;
        while off < type_section.end {
            if off + TYPE_LEN > type_section.end {
                return Err(BtfError::Truncated);
            }
            let name_off = u32_at(off)?;
            let info = u32_at(off + 4)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let id = types.len() as u32 + 1;
            off += TYPE_LEN + tail_len(kind, vlen).ok_or(BtfError::UnknownKind { id, kind })?;
            types.push((kind, name_off));
        }
        Ok(Self {
            data,
            strings,
            types,
        })
    }

    /// How many types there are, `void` excluded.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// The id of the first type of `kind` named `name`.
    pub fn id_of(&self, name: &str, kind: BtfKind) -> Option<u32> {
        let strings = &self.data[self.strings.clone()];
        self.types
            .iter()
            .position(|&(k, name_off)| {
                k == kind as u32
                    && strings
                        .get(name_off as usize..)
                        .and_then(|s| s.split(|&b| b == 0).next())
                        .is_some_and(|s| s == name.as_bytes())
            })
            .map(|index| index as u32 + 1)
    }
}

/// Bytes after `struct btf_type` for each kind (`include/uapi/linux/btf.h`).
fn tail_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        // INT: one u32 of encoding, offset and bits.
        1 => 4,
        // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG.
        2 | 7..=12 | 16 | 18 => 0,
        // ARRAY: struct btf_array.
        3 => 12,
        // STRUCT, UNION: btf_member each; DATASEC: btf_var_secinfo each;
        // ENUM64: btf_enum64 each.
        4 | 5 | 15 | 19 => 12 * vlen,
        // ENUM: btf_enum each; FUNC_PROTO: btf_param each.
        6 | 13 => 8 * vlen,
        // VAR: struct btf_var; DECL_TAG: struct btf_decl_tag.
        14 | 17 => 4,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob of `types` (kind, vlen, name) with zeroed tails.
    fn blob(types: &[(u32, u16, &str)]) -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut type_bytes = Vec::new();
        for &(kind, vlen, name) in types {
            let name_off = strings.len() as u32;
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            type_bytes.extend_from_slice(&name_off.to_ne_bytes());
            type_bytes.extend_from_slice(&((kind << 24) | u32::from(vlen)).to_ne_bytes());
            type_bytes.extend_from_slice(&0u32.to_ne_bytes());
            let tail = tail_len(kind, usize::from(vlen)).expect("known kind");
            type_bytes.extend(std::iter::repeat_n(0u8, tail));
        }
        let mut data = Vec::new();
        data.extend_from_slice(&BTF_MAGIC.to_ne_bytes());
        data.extend_from_slice(&[1, 0]);
        for field in [
            HEADER_LEN as u32,
            0,
            type_bytes.len() as u32,
            type_bytes.len() as u32,
            strings.len() as u32,
        ] {
            data.extend_from_slice(&field.to_ne_bytes());
        }
        data.extend_from_slice(&type_bytes);
        data.extend_from_slice(&strings);
        data
    }

    #[test]
    fn finds_ids_by_name_and_kind() {
        let btf = BtfTypes::parse(blob(&[
            (1, 0, "int"),
            (4, 3, "io_kiocb"),
            (13, 2, ""),
            (12, 0, "io_uring_setup"),
            (8, 0, "io_uring_setup"),
            (6, 5, "io_uring_op"),
            (8, 0, "btf_trace_io_uring_complete"),
        ]))
        .unwrap();
        assert_eq!(btf.len(), 7);
        assert_eq!(btf.id_of("io_uring_setup", BtfKind::Func), Some(4));
        assert_eq!(btf.id_of("io_uring_setup", BtfKind::Typedef), Some(5));
        assert_eq!(
            btf.id_of("btf_trace_io_uring_complete", BtfKind::Typedef),
            Some(7)
        );
        assert_eq!(btf.id_of("io_kiocb", BtfKind::Func), None);
        assert_eq!(btf.id_of("io_uring_setu", BtfKind::Func), None);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            BtfTypes::parse(vec![0; 4]),
            Err(BtfError::Truncated | BtfError::BadMagic(_))
        ));
        let mut data = blob(&[(1, 0, "int")]);
        data.truncate(data.len() - 8);
        assert!(matches!(BtfTypes::parse(data), Err(BtfError::Truncated)));
        let mut data = blob(&[(2, 0, "p")]);
        // Kind 31 does not exist.
        data[HEADER_LEN + 7] = 31;
        assert!(matches!(
            BtfTypes::parse(data),
            Err(BtfError::UnknownKind { id: 1, kind: 31 })
        ));
    }
}
