//! Where each field sits in this kernel's io_uring tracepoint records, from
//! their tracefs format files. The programs copy the records raw; this is
//! how userspace reads them, whatever the kernel version (fields move, widen
//! from u32 to u64, get renamed, or do not exist yet).

use std::path::Path;

use uringtrace_common::{
    RecordKind,
    layout::OFFSET_ABSENT,
    request::{REQUEST_TRACEPOINTS, RequestLayout, RequestTracepoint, TRACEPOINT_COUNT},
};

use crate::tracefs::{self, Format};

/// The fields this tracer reads, across every io_uring tracepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum F {
    Ctx,
    Req,
    UserData,
    Opcode,
    Flags,
    SqThread,
    ForceNonblock,
    Res,
    Cflags,
    Extra1,
    Extra2,
    Fd,
    SqEntries,
    CqEntries,
    NrFiles,
    NrBufs,
    Ret,
    Rw,
    Mask,
    Events,
    TargetReq,
    Link,
    MinEvents,
    Count,
    Loops,
    Fpos,
    Wanted,
    Got,
    Ioprio,
    Off,
    Addr,
    Len,
    OpFlags,
    BufIndex,
    Personality,
    FileIndex,
    Addr3,
    Error,
    Ocqe,
}

/// Names each field has had in the format files (first match wins).
const FIELD_NAMES: [(F, &[&str]); 39] = [
    (F::Ctx, &["ctx", "tctx"]),
    (F::Req, &["req"]),
    (F::UserData, &["user_data", "data"]),
    (F::Opcode, &["opcode"]),
    (F::Flags, &["flags"]),
    (F::SqThread, &["sq_thread"]),
    (F::ForceNonblock, &["force_nonblock"]),
    (F::Res, &["res"]),
    (F::Cflags, &["cflags"]),
    (F::Extra1, &["extra1"]),
    (F::Extra2, &["extra2"]),
    (F::Fd, &["fd"]),
    (F::SqEntries, &["sq_entries"]),
    (F::CqEntries, &["cq_entries"]),
    (F::NrFiles, &["nr_files"]),
    (F::NrBufs, &["nr_bufs"]),
    (F::Ret, &["ret"]),
    // 7.2 replaced `int rw` by `bool hashed`: both say the work is hashed.
    (F::Rw, &["rw", "hashed"]),
    (F::Mask, &["mask"]),
    (F::Events, &["events"]),
    (F::TargetReq, &["target_req"]),
    (F::Link, &["link"]),
    (F::MinEvents, &["min_events"]),
    (F::Count, &["count"]),
    (F::Loops, &["loops"]),
    (F::Fpos, &["fpos"]),
    (F::Wanted, &["wanted"]),
    (F::Got, &["got"]),
    (F::Ioprio, &["ioprio"]),
    (F::Off, &["off"]),
    (F::Addr, &["addr"]),
    (F::Len, &["len"]),
    (F::OpFlags, &["op_flags"]),
    (F::BufIndex, &["buf_index"]),
    (F::Personality, &["personality"]),
    (F::FileIndex, &["file_index"]),
    (F::Addr3, &["addr3"]),
    (F::Error, &["error"]),
    (F::Ocqe, &["ocqe"]),
];

const FIELD_COUNT: usize = FIELD_NAMES.len();

/// One field's place in a raw record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawField {
    offset: u16,
    size: u8,
    signed: bool,
}

impl RawField {
    fn read(self, raw: &[u8]) -> Option<u64> {
        let start = usize::from(self.offset);
        let bytes = raw.get(start..start + usize::from(self.size))?;
        // A load of each size fields have: a copy of the field's own
        // length was a call to memcpy, several per event.
        let v = if let Ok(b) = <[u8; 8]>::try_from(bytes) {
            u64::from_le_bytes(b)
        } else if let Ok(b) = <[u8; 4]>::try_from(bytes) {
            u64::from(u32::from_le_bytes(b))
        } else if let Ok(b) = <[u8; 2]>::try_from(bytes) {
            u64::from(u16::from_le_bytes(b))
        } else if let [b] = *bytes {
            u64::from(b)
        } else {
            let mut buf = [0u8; 8];
            buf[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(buf)
        };
        let bits = u32::from(self.size) * 8;
        Some(if self.signed && bits < 64 {
            // Sign-extend from the field's width.
            (((v << (64 - bits)) as i64) >> (64 - bits)) as u64
        } else {
            v
        })
    }
}

/// The layout of one attached tracepoint.
#[derive(Debug, Clone)]
pub struct TracepointFields {
    /// The name attached (e.g. `io_uring_submit_sqe` on 6.1).
    pub name: &'static str,
    fields: [Option<RawField>; FIELD_COUNT],
    /// Every field after the common_* header, in record order: what a
    /// tp_btf program must rebuild (`requests::recipe`), and where a BTF
    /// prototype that does not type its arguments is matched against the
    /// record (`requests::object`).
    pub places: Vec<tracefs::Field>,
}

impl TracepointFields {
    pub fn from_format(name: &'static str, format: &Format, raw_len: usize) -> Self {
        let mut fields = [None; FIELD_COUNT];
        for (field, names) in FIELD_NAMES {
            let found = names
                .iter()
                .find_map(|n| format.fields.iter().find(|f| f.name == *n));
            if let Some(f) = found
                && matches!(f.size, 1 | 2 | 4 | 8)
                // A field the programs do not copy is as good as absent.
                && (f.offset + f.size) as usize <= raw_len
            {
                fields[field as usize] = Some(RawField {
                    offset: f.offset as u16,
                    size: f.size as u8,
                    signed: f.signed,
                });
            }
        }
        Self {
            name,
            fields,
            places: format.fields.clone(),
        }
    }

    pub fn has(&self, field: F) -> bool {
        self.fields[field as usize].is_some()
    }

    /// The field's value, zero-extended (sign-extended when signed); `None`
    /// when this kernel's tracepoint has no such field.
    pub fn get(&self, raw: &[u8], field: F) -> Option<u64> {
        self.fields[field as usize]?.read(raw)
    }

    pub fn u64(&self, raw: &[u8], field: F) -> u64 {
        self.get(raw, field).unwrap_or(0)
    }

    fn offset(&self, field: F) -> u32 {
        self.fields[field as usize].map_or(OFFSET_ABSENT, |f| u32::from(f.offset))
    }
}

/// Every io_uring tracepoint this kernel has, by REQUEST_TRACEPOINTS index.
#[derive(Debug, Clone)]
pub struct RequestFormats {
    pub tracepoints: [Option<TracepointFields>; TRACEPOINT_COUNT],
}

impl RequestFormats {
    /// Reads the format of every io_uring tracepoint (the first name the
    /// kernel has for each); missing ones are `None`.
    pub fn read(root: &Path) -> Result<Self, tracefs::TracefsError> {
        let mut tracepoints = [const { None }; TRACEPOINT_COUNT];
        for tp in &REQUEST_TRACEPOINTS {
            for &name in tp.names {
                match tracefs::format(root, "io_uring", name) {
                    Ok(format) => {
                        tracepoints[tp.index] =
                            Some(TracepointFields::from_format(name, &format, tp.raw_len));
                        break;
                    }
                    Err(tracefs::TracefsError::NoTracepoint { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(Self { tracepoints })
    }

    /// Formats given as text, by tracepoint kind (for tests).
    #[cfg(test)]
    pub fn from_texts(texts: &[(RecordKind, &str)]) -> Self {
        let mut tracepoints = [const { None }; TRACEPOINT_COUNT];
        for (kind, text) in texts {
            let tp = RequestTracepoint::by_kind(*kind).expect("a request kind");
            tracepoints[tp.index] = Some(TracepointFields::from_format(
                tp.names[0],
                &tracefs::parse_format("test", text),
                tp.raw_len,
            ));
        }
        Self { tracepoints }
    }

    pub fn get(&self, tp: &RequestTracepoint) -> Option<&TracepointFields> {
        self.tracepoints[tp.index].as_ref()
    }

    /// The offsets the programs read themselves.
    pub fn kernel_layout(&self) -> RequestLayout {
        let mut layout = RequestLayout::ABSENT;
        for (i, tp) in self.tracepoints.iter().enumerate() {
            if let Some(tp) = tp {
                // The task-work tracepoint's `tctx` is not a ring.
                if REQUEST_TRACEPOINTS[i].kind != RecordKind::TaskWorkRun {
                    layout.ring[i] = tp.offset(F::Ctx);
                }
                let opcode = tp.fields[F::Opcode as usize];
                // Only the one-byte SQE opcode; io_uring_register's is a u32
                // register opcode, not a request's.
                if opcode.is_some_and(|f| f.size == 1) {
                    layout.opcode[i] = tp.offset(F::Opcode);
                }
                layout.req[i] = tp.offset(F::Req);
                layout.user_data[i] = tp.offset(F::UserData);
                layout.res[i] = tp.offset(F::Res);
                layout.cflags[i] = tp.offset(F::Cflags);
                let kind = REQUEST_TRACEPOINTS[i].kind;
                let count = tp.fields[F::Count as usize];
                if matches!(kind, RecordKind::TaskWorkRun | RecordKind::LocalWorkRun)
                    && count.is_some_and(|f| f.size == 4)
                {
                    layout.nonzero[i] = tp.offset(F::Count);
                }
            }
        }
        // The summary joins CQEs to submissions in the kernel by request
        // pointer; where the completion tracepoint has none (5.10), every
        // side must key by user_data instead.
        let complete = REQUEST_TRACEPOINTS
            .iter()
            .find(|tp| tp.kind == RecordKind::Complete)
            .and_then(|tp| self.tracepoints[tp.index].as_ref());
        if complete.is_some_and(|c| !c.has(F::Req)) {
            layout.req = [OFFSET_ABSENT; TRACEPOINT_COUNT];
        }
        layout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracefs::parse_format;

    const SUBMIT_6_1: &str = "\
\tfield:void * ctx;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * req;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned long long user_data;\toffset:24;\tsize:8;\tsigned:0;
\tfield:u8 opcode;\toffset:32;\tsize:1;\tsigned:0;
\tfield:u32 flags;\toffset:36;\tsize:4;\tsigned:0;
\tfield:bool force_nonblock;\toffset:40;\tsize:1;\tsigned:0;
\tfield:bool sq_thread;\toffset:41;\tsize:1;\tsigned:0;
\tfield:__data_loc char[] op_str;\toffset:44;\tsize:4;\tsigned:0;";

    const COMPLETE_6_18: &str = "\
\tfield:void * ctx;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * req;\toffset:16;\tsize:8;\tsigned:0;
\tfield:u64 user_data;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int res;\toffset:32;\tsize:4;\tsigned:1;
\tfield:unsigned cflags;\toffset:36;\tsize:4;\tsigned:0;
\tfield:u64 extra1;\toffset:40;\tsize:8;\tsigned:0;
\tfield:u64 extra2;\toffset:48;\tsize:8;\tsigned:0;";

    #[test]
    fn reads_6_1_submit_with_u32_flags() {
        let f = TracepointFields::from_format(
            "io_uring_submit_sqe",
            &parse_format("x", SUBMIT_6_1),
            64,
        );
        let mut raw = [0u8; 64];
        raw[24..32].copy_from_slice(&7u64.to_le_bytes());
        raw[32] = 22;
        raw[36..40].copy_from_slice(&0x8000_0004u32.to_le_bytes());
        raw[41] = 1;
        assert_eq!(f.get(&raw, F::UserData), Some(7));
        assert_eq!(f.get(&raw, F::Opcode), Some(22));
        assert_eq!(f.get(&raw, F::Flags), Some(0x8000_0004));
        assert_eq!(f.get(&raw, F::ForceNonblock), Some(0));
        assert_eq!(f.get(&raw, F::SqThread), Some(1));
        assert_eq!(f.get(&raw, F::Res), None);
    }

    #[test]
    fn sign_extends_res() {
        let f = TracepointFields::from_format(
            "io_uring_complete",
            &parse_format("x", COMPLETE_6_18),
            64,
        );
        let mut raw = [0u8; 64];
        raw[32..36].copy_from_slice(&(-9i32).to_le_bytes());
        raw[36..40].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(f.get(&raw, F::Res).map(|v| v as i64), Some(-9));
        assert_eq!(f.get(&raw, F::Cflags), Some(3));
    }

    #[test]
    fn fields_past_the_copy_are_absent() {
        let f = TracepointFields::from_format(
            "io_uring_complete",
            &parse_format("x", COMPLETE_6_18),
            48,
        );
        assert!(f.has(F::Extra1));
        assert!(!f.has(F::Extra2));
    }
}
