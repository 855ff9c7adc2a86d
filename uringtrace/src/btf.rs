//! The kernel's BTF, read in userspace: type ids by name (what a tp_btf or
//! fentry program names as its `attach_btf_id`), struct member offsets and
//! tracepoint argument positions. Rust eBPF has no CO-RE, so the offsets
//! the programs use come from here, from the running kernel.
//!
//! aya parses BTF too, but does not re-export the kinds and members it
//! parses; what uringtrace needs is this walk over the type section: one
//! type record after the other, each with a kind-dependent tail.

use std::path::Path;

use thiserror::Error;

use crate::fd_mapping::FdMapping;

/// The kernel's own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const BTF_MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
/// `struct btf_type`: name_off, info, size_or_type.
const TYPE_LEN: usize = 12;

/// BTF kinds looked up by name (`BTF_KIND_*` in `include/uapi/linux/btf.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BtfKind {
    Typedef = 8,
    Func = 12,
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
/// The kinds looked up by name often enough to be indexed.
const INDEXED_KINDS: [u32; 2] = [KIND_STRUCT, KIND_TYPEDEF];
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_ENUM64: u32 = 19;
const KIND_TYPE_TAG: u32 = 18;

/// A struct member's place: byte offset from the start of the outermost
/// struct, and size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub offset: u32,
    pub size: u32,
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
    data: Blob,
    strings: std::ops::Range<usize>,
    /// Per type id - 1: (kind, name offset).
    types: Vec<(u32, u32)>,
    /// Per type id - 1: where its `struct btf_type` starts in `data`.
    offsets: Vec<usize>,
    /// Struct and typedef ids by (kind, name), built at the first lookup:
    /// start-up looks up dozens of them, and each linear scan of vmlinux's
    /// ~100,000 types took a few milliseconds.
    by_name: std::sync::OnceLock<NameIndex>,
}

/// (hash of kind and name, type id), sorted: equal names are neighbours,
/// in id order. A sorted vector rather than a map of owned names: building
/// that map (an allocation per name) took 3 ms of start-up.
type NameIndex = Vec<(u64, u32)>;

/// FNV-1a of a type's kind and name: names are short, and a collision
/// only costs a comparison (the name is checked after the hash).
fn name_hash(kind: u32, name: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ u64::from(kind);
    for &b in name {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A BTF blob's bytes: the kernel's own, mapped, or a copy in memory.
enum Blob {
    Owned(Vec<u8>),
    /// Linux 6.16 and later let `/sys/kernel/btf/vmlinux` be mapped: its
    /// ~5 MB are then used in place, where reading them took ~1,300 reads
    /// of 4 KiB (sysfs's largest) and page faults on the copy, a few
    /// milliseconds of start-up.
    Mapped(FdMapping),
}

/// `file` mapped read-only; `None` where it cannot be (kernels before
/// 6.16 for the kernel's BTF, an empty file): the caller reads it instead.
fn map_file(file: &std::fs::File) -> Option<FdMapping> {
    use std::os::fd::AsRawFd as _;
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    if len == 0 {
        return None;
    }
    FdMapping::new(file.as_raw_fd(), len, libc::PROT_READ, libc::MAP_PRIVATE, 0).ok()
}

impl std::ops::Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Blob::Owned(bytes) => bytes,
            Blob::Mapped(map) => map.bytes(),
        }
    }
}

impl BtfTypes {
    pub fn read(path: &Path) -> Result<Self, BtfError> {
        let error = |source| BtfError::Read {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(error)?;
        if let Some(map) = map_file(&file) {
            return Self::parse_blob(Blob::Mapped(map));
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut data).map_err(error)?;
        Self::parse(data)
    }

    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        Self::parse_blob(Blob::Owned(data))
    }

    fn parse_blob(data: Blob) -> Result<Self, BtfError> {
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

        // vmlinux's types average ~40 bytes: room for all at once.
        let mut types = Vec::with_capacity(type_section.len() / 32);
        let mut offsets = Vec::with_capacity(type_section.len() / 32);
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
            offsets.push(off);
            off += TYPE_LEN + tail_len(kind, vlen).ok_or(BtfError::UnknownKind { id, kind })?;
            types.push((kind, name_off));
        }
        Ok(Self {
            data,
            strings,
            types,
            offsets,
            by_name: std::sync::OnceLock::new(),
        })
    }

    /// How many types there are, `void` excluded.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// The id of the first type of `kind` named `name`.
    pub fn id_of(&self, name: &str, kind: BtfKind) -> Option<u32> {
        let kind = kind as u32;
        if INDEXED_KINDS.contains(&kind) {
            return self.ids_named(kind, name).next();
        }
        let strings = &self.data[self.strings.clone()];
        self.types
            .iter()
            .position(|&(k, name_off)| {
                k == kind
                    && strings
                        .get(name_off as usize..)
                        .and_then(|s| s.split(|&b| b == 0).next())
                        .is_some_and(|s| s == name.as_bytes())
            })
            .map(|index| index as u32 + 1)
    }
}

impl BtfTypes {
    fn u32_at(&self, off: usize) -> u32 {
        self.data
            .get(off..off + 4)
            .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&self, name_off: u32) -> &[u8] {
        let strings = &self.data[self.strings.clone()];
        strings
            .get(name_off as usize..)
            .and_then(|s| s.split(|&b| b == 0).next())
            .unwrap_or(&[])
    }

    /// (kind, info, size_or_type, start of the tail) of type `id`.
    fn record(&self, id: u32) -> Option<(u32, u32, u32, usize)> {
        let index = (id as usize).checked_sub(1)?;
        let off = *self.offsets.get(index)?;
        let info = self.u32_at(off + 4);
        Some((
            self.types[index].0,
            info,
            self.u32_at(off + 8),
            off + TYPE_LEN,
        ))
    }

    /// Follows typedefs and qualifiers to the type they name.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.record(id) {
                Some((
                    KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG,
                    _,
                    next,
                    _,
                )) => id = next,
                _ => break,
            }
        }
        id
    }

    /// The size in bytes of type `id` (0 when it has none, like `void`).
    fn size_of(&self, id: u32) -> u32 {
        let id = self.resolve(id);
        match self.record(id) {
            Some((KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64, _, size, _)) => {
                size
            }
            Some((KIND_PTR, ..)) => 8,
            Some((KIND_ARRAY, _, _, tail)) => {
                // struct btf_array: type, index_type, nelems.
                self.size_of(self.u32_at(tail)) * self.u32_at(tail + 8)
            }
            _ => 0,
        }
    }

    /// A member of a struct or union (type `id`), searched through
    /// anonymous members: its offset from `id`'s start and its type.
    fn member_in(&self, id: u32, name: &str, depth: u32) -> Option<(u32, u32)> {
        let (kind, info, _, tail) = self.record(self.resolve(id))?;
        if !(kind == KIND_STRUCT || kind == KIND_UNION) || depth > 8 {
            return None;
        }
        let vlen = (info & 0xffff) as usize;
        let bitfields = info & (1 << 31) != 0;
        for i in 0..vlen {
            let m = tail + 12 * i;
            let (m_name, m_type, m_off) = (self.u32_at(m), self.u32_at(m + 4), self.u32_at(m + 8));
            let bits = if bitfields { m_off & 0xff_ffff } else { m_off };
            if bits % 8 != 0 {
                continue;
            }
            let name_bytes = self.name(m_name);
            if name_bytes == name.as_bytes() {
                return Some((bits / 8, m_type));
            }
            if name_bytes.is_empty()
                && let Some((inner, ty)) = self.member_in(m_type, name, depth + 1)
            {
                return Some((bits / 8 + inner, ty));
            }
        }
        None
    }

    /// `struct strukt`'s member at `path` (`["cqe", "user_data"]` for
    /// `req->cqe.user_data`), looking through anonymous unions and structs.
    pub fn member(&self, strukt: &str, path: &[&str]) -> Option<Member> {
        let mut ty = self.id_of_struct(strukt)?;
        let mut offset = 0;
        for name in path {
            let (off, member_type) = self.member_in(ty, name, 0)?;
            offset += off;
            ty = member_type;
        }
        Some(Member {
            offset,
            size: self.size_of(ty),
        })
    }

    /// The value of the enumerator `name`, in whichever enum (named or
    /// anonymous, 32 or 64 bits) declares it: how a kernel's internal bit
    /// numbers (`REQ_F_CREDS_BIT`) are learnt without a header.
    pub fn enum_value(&self, name: &str) -> Option<u64> {
        self.types
            .iter()
            .enumerate()
            .find_map(|(index, &(kind, _))| {
                if kind != KIND_ENUM && kind != KIND_ENUM64 {
                    return None;
                }
                let (_, info, _, tail) = self.record(index as u32 + 1)?;
                let vlen = (info & 0xffff) as usize;
                (0..vlen).find_map(|i| {
                    if kind == KIND_ENUM {
                        // struct btf_enum: name_off, s32 val.
                        let e = tail + 8 * i;
                        (self.name(self.u32_at(e)) == name.as_bytes())
                            .then(|| u64::from(self.u32_at(e + 4)))
                    } else {
                        // struct btf_enum64: name_off, val_lo32, val_hi32.
                        let e = tail + 12 * i;
                        (self.name(self.u32_at(e)) == name.as_bytes()).then(|| {
                            u64::from(self.u32_at(e + 4)) | u64::from(self.u32_at(e + 8)) << 32
                        })
                    }
                })
            })
    }

    /// The struct named `name` that has members (not a forward declaration).
    /// A BTF blob with this BTF's ids for the `btf_trace_<tp>` typedefs of
    /// `tracepoints` (those it has) and a placeholder at every other id: all
    /// aya needs to load tp_btf programs (it looks the typedef's id up by
    /// name), where parsing the whole of vmlinux's BTF with aya took a
    /// fifth of the start-up time.
    pub fn attach_ids(&self, tracepoints: &[&str]) -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut named = std::collections::BTreeMap::new();
        for tp in tracepoints {
            let typedef = format!("btf_trace_{tp}");
            if let Some(id) = self.id_of(&typedef, BtfKind::Typedef) {
                named.insert(id, strings.len() as u32);
                strings.extend_from_slice(typedef.as_bytes());
                strings.push(0);
            }
        }
        let last = named.keys().next_back().copied().unwrap_or(0);
        let mut types = Vec::with_capacity(last as usize * TYPE_LEN);
        for id in 1..=last {
            // A typedef of void under its name, or a nameless pointer to
            // void: both are a bare `struct btf_type`.
            let (name_off, kind) = match named.get(&id) {
                Some(&name_off) => (name_off, KIND_TYPEDEF),
                None => (0, KIND_PTR),
            };
            for word in [name_off, kind << 24, 0] {
                types.extend_from_slice(&word.to_ne_bytes());
            }
        }
        btf_blob(&types, &strings)
    }

    /// The ids of the structs or typedefs (`kind`) called `name`.
    fn ids_named<'a>(&'a self, kind: u32, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        let index = self.by_name.get_or_init(|| {
            let mut index: NameIndex = self
                .types
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| INDEXED_KINDS.contains(k))
                .map(|(i, &(k, name_off))| (name_hash(k, self.name(name_off)), i as u32 + 1))
                .collect();
            index.sort_unstable();
            index
        });
        let hash = name_hash(kind, name.as_bytes());
        let first = index.partition_point(|&(h, _)| h < hash);
        index[first..]
            .iter()
            .take_while(move |&&(h, _)| h == hash)
            .map(|&(_, id)| id)
            .filter(move |&id| {
                let (k, name_off) = self.types[id as usize - 1];
                k == kind && self.name(name_off) == name.as_bytes()
            })
    }

    fn id_of_struct(&self, name: &str) -> Option<u32> {
        self.ids_named(KIND_STRUCT, name).find(|&id| {
            self.record(id)
                .is_some_and(|(_, info, _, _)| info & 0xffff != 0)
        })
    }

    /// Which argument of tracepoint `tp` (its `btf_trace_<tp>` prototype,
    /// leaving out the leading `void *__data`) is a `struct strukt *`: the
    /// index a tp_btf program reads it at.
    pub fn tracepoint_arg(&self, tp: &str, strukt: &str) -> Option<usize> {
        let typedef = self.id_of(&format!("btf_trace_{tp}"), BtfKind::Typedef)?;
        let ptr = self.resolve(typedef);
        let (KIND_PTR, _, proto, _) = self.record(ptr)? else {
            return None;
        };
        let (KIND_FUNC_PROTO, info, _, tail) = self.record(self.resolve(proto))? else {
            return None;
        };
        let params = (info & 0xffff) as usize;
        (1..params).find_map(|i| {
            let param_type = self.resolve(self.u32_at(tail + 8 * i + 4));
            let (KIND_PTR, _, target, _) = self.record(param_type)? else {
                return None;
            };
            let target = self.resolve(target);
            let (KIND_STRUCT, _, _, _) = self.record(target)? else {
                return None;
            };
            (self.name(self.types[target as usize - 1].1) == strukt.as_bytes()).then_some(i - 1)
        })
    }
}

/// One argument of a tracepoint's BTF prototype: its size in bytes, and
/// whether it is an untyped `void *`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtoArg {
    pub size: u32,
    pub void_ptr: bool,
}

impl BtfTypes {
    /// The arguments of tracepoint `tp` (its `btf_trace_<tp>` prototype,
    /// without the leading `void *__data`), in order.
    pub fn tracepoint_args(&self, tp: &str) -> Option<Vec<ProtoArg>> {
        let typedef = self.id_of(&format!("btf_trace_{tp}"), BtfKind::Typedef)?;
        let (KIND_PTR, _, proto, _) = self.record(self.resolve(typedef))? else {
            return None;
        };
        let (KIND_FUNC_PROTO, info, _, tail) = self.record(self.resolve(proto))? else {
            return None;
        };
        let params = (info & 0xffff) as usize;
        Some(
            (1..params)
                .map(|i| {
                    let ty = self.resolve(self.u32_at(tail + 8 * i + 4));
                    let void_ptr = matches!(
                        self.record(ty),
                        Some((KIND_PTR, _, target, _)) if self.resolve(target) == 0
                    );
                    ProtoArg {
                        size: self.size_of(ty),
                        void_ptr,
                    }
                })
                .collect(),
        )
    }

    /// The size of `struct name` (0 when BTF has no such struct).
    pub fn struct_size(&self, name: &str) -> u32 {
        self.id_of_struct(name).map_or(0, |id| self.size_of(id))
    }

    /// Whether member `path` of `strukt` points to an integer type, as a
    /// `const char *` does: a string in the caller's memory, not a kernel
    /// object. Asked this way round, a kernel whose member became some
    /// other kernel type is not taken for one with a user pointer.
    pub fn member_points_to_int(&self, strukt: &str, path: &[&str]) -> bool {
        self.member_pointee(strukt, path)
            .is_some_and(|pointee| matches!(self.record(pointee), Some((KIND_INT, ..))))
    }

    /// The type member `path` of `strukt` points to (modifiers and typedefs
    /// resolved), when it is a pointer.
    fn member_pointee(&self, strukt: &str, path: &[&str]) -> Option<u32> {
        let mut ty = self.id_of_struct(strukt)?;
        for name in path {
            ty = self.member_in(ty, name, 0)?.1;
        }
        let Some((KIND_PTR, _, pointee, _)) = self.record(self.resolve(ty)) else {
            return None;
        };
        Some(self.resolve(pointee))
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

/// A BTF blob (this machine's byte order) of a type section and a string
/// section.
fn btf_blob(types: &[u8], strings: &[u8]) -> Vec<u8> {
    let mut blob = Vec::with_capacity(HEADER_LEN + types.len() + strings.len());
    blob.extend_from_slice(&BTF_MAGIC.to_ne_bytes());
    blob.extend_from_slice(&[1, 0]); // version, flags
    for word in [
        HEADER_LEN as u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ] {
        blob.extend_from_slice(&word.to_ne_bytes());
    }
    blob.extend_from_slice(types);
    blob.extend_from_slice(strings);
    blob
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
        btf_blob(&type_bytes, &strings)
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
    fn same_name_structs_in_id_order_and_forward_declarations_skipped() {
        let btf = BtfTypes::parse(blob(&[
            (4, 0, "file"),
            (8, 0, "file"),
            (4, 2, "file"),
            (4, 1, "file"),
            (4, 1, "fil"),
        ]))
        .unwrap();
        let ids: Vec<u32> = btf.ids_named(KIND_STRUCT, "file").collect();
        assert_eq!(ids, [1, 3, 4]);
        assert_eq!(btf.id_of_struct("file"), Some(3));
        assert_eq!(btf.id_of("file", BtfKind::Typedef), Some(2));
        assert_eq!(btf.id_of_struct("fi"), None);
    }

    #[test]
    fn a_file_reads_the_same_as_its_bytes() {
        let bytes = blob(&[(4, 1, "io_kiocb"), (8, 0, "btf_trace_io_uring_complete")]);
        let path = std::env::temp_dir().join(format!("uringtrace-btf-{}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let read = BtfTypes::read(&path);
        std::fs::remove_file(&path).unwrap();
        let read = read.unwrap();
        assert!(
            matches!(read.data, Blob::Mapped(_)),
            "a regular file is mapped"
        );
        assert_eq!(&*read.data, &bytes[..]);
        assert_eq!(read.id_of_struct("io_kiocb"), Some(1));
        assert_eq!(
            read.id_of("btf_trace_io_uring_complete", BtfKind::Typedef),
            Some(2)
        );
        assert!(matches!(
            BtfTypes::read(Path::new("/nonexistent/btf")),
            Err(BtfError::Read { .. })
        ));
    }

    #[test]
    fn enum_values_of_anonymous_and_64_bit_enums() {
        // One anonymous ENUM {A_BIT = 3, REQ_F_CREDS_BIT = 19} and one
        // ENUM64 {BIG = 1 << 40}, laid out by hand.
        let strings = b"\0A_BIT\0REQ_F_CREDS_BIT\0BIG\0".to_vec();
        let name = |s: &[u8], n: &str| {
            s.windows(n.len() + 1)
                .position(|w| &w[..n.len()] == n.as_bytes() && w[n.len()] == 0)
                .unwrap() as u32
        };
        let (a, creds, big) = (
            name(&strings, "A_BIT"),
            name(&strings, "REQ_F_CREDS_BIT"),
            name(&strings, "BIG"),
        );
        let mut types = Vec::new();
        for word in [0, (KIND_ENUM << 24) | 2, 4, a, 3, creds, 19] {
            types.extend_from_slice(&u32::to_ne_bytes(word));
        }
        for word in [0, (KIND_ENUM64 << 24) | 1, 8, big, 0, 1 << 8] {
            types.extend_from_slice(&u32::to_ne_bytes(word));
        }
        let btf = BtfTypes::parse(btf_blob(&types, &strings)).unwrap();
        assert_eq!(btf.enum_value("REQ_F_CREDS_BIT"), Some(19));
        assert_eq!(btf.enum_value("A_BIT"), Some(3));
        assert_eq!(btf.enum_value("BIG"), Some(1 << 40));
        assert_eq!(btf.enum_value("REQ_F_CREDS"), None);
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

#[cfg(test)]
mod vmlinux_tests {
    use super::*;

    /// Against the running kernel's own BTF, where there is one (the VM
    /// suite runs this on every kernel).
    #[test]
    fn io_uring_structs_of_this_kernel() {
        let Ok(btf) = BtfTypes::read(Path::new(VMLINUX_BTF)) else {
            crate::test_skip::skip(
                "io_uring_structs_of_this_kernel",
                &format!("no readable {VMLINUX_BTF}"),
            );
            return;
        };
        let opcode = btf
            .member("io_kiocb", &["opcode"])
            .expect("io_kiocb.opcode");
        assert_eq!(opcode.size, 1);
        let user_data = btf
            .member("io_kiocb", &["cqe", "user_data"])
            .expect("io_kiocb.cqe.user_data");
        assert_eq!(user_data.size, 8);
        // The per-op data sits at the start of the request (io_kiocb_to_cmd).
        let file = btf.member("io_kiocb", &["file"]).expect("io_kiocb.file");
        assert_eq!((file.offset, file.size), (0, 8));
        let name = btf.member("filename", &["name"]).expect("filename.name");
        assert_eq!(name.size, 8);
        let tp = ["io_uring_submit_req", "io_uring_submit_sqe"]
            .into_iter()
            .find_map(|tp| btf.tracepoint_arg(tp, "io_kiocb"))
            .expect("a submit tracepoint with a struct io_kiocb * argument");
        assert!(tp <= 1, "{tp}");
        // Requests under a personality: the flag's bit and the ids.
        let creds_bit = btf.enum_value("REQ_F_CREDS_BIT").expect("REQ_F_CREDS_BIT");
        let fixed_file = btf.enum_value("REQ_F_FIXED_FILE_BIT");
        assert_eq!(fixed_file, Some(0));
        let flags = btf.member("io_kiocb", &["flags"]).expect("io_kiocb.flags");
        assert!(creds_bit < u64::from(flags.size) * 8, "{creds_bit}");
        let creds = btf.member("io_kiocb", &["creds"]).expect("io_kiocb.creds");
        assert_eq!(creds.size, 8);
        for id in ["uid", "gid", "euid", "egid"] {
            let m = btf.member("cred", &[id, "val"]).expect(id);
            assert_eq!(m.size, 4, "{id}");
        }
        let task_flags = btf
            .member("task_struct", &["flags"])
            .expect("task_struct.flags");
        assert_eq!(task_flags.size, 4);
    }

    #[test]
    fn attach_ids_keep_this_kernels_typedef_ids() {
        let Ok(btf) = BtfTypes::read(Path::new(VMLINUX_BTF)) else {
            crate::test_skip::skip(
                "attach_ids_keep_this_kernels_typedef_ids",
                &format!("no readable {VMLINUX_BTF}"),
            );
            return;
        };
        let tracepoints = ["io_uring_complete", "io_uring_create", "no_such_tracepoint"];
        let small = BtfTypes::parse(btf.attach_ids(&tracepoints)).expect("a valid blob");
        for tp in tracepoints {
            let typedef = format!("btf_trace_{tp}");
            assert_eq!(
                small.id_of(&typedef, BtfKind::Typedef),
                btf.id_of(&typedef, BtfKind::Typedef),
                "{typedef}"
            );
        }
        let complete = btf.id_of("btf_trace_io_uring_complete", BtfKind::Typedef);
        assert!(complete.is_some(), "this kernel has io_uring_complete");
        // Only the typedefs asked for, the other ids placeholders.
        assert_eq!(
            small.len() as u32,
            complete
                .max(btf.id_of("btf_trace_io_uring_create", BtfKind::Typedef))
                .unwrap()
        );
        assert_eq!(
            small.id_of("btf_trace_io_uring_submit_req", BtfKind::Typedef),
            None
        );
    }
}
