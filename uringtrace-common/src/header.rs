//! The header every ring-buffer record starts with.

use crate::COMM_LEN;

/// Stable numeric kinds. Ranges: 1-99 system calls, 100-199 requests
/// (io_uring tracepoints), 200-299 process lifecycle.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Setup = 1,
    Enter = 2,
    Register = 3,
}

impl RecordKind {
    pub const fn from_u16(v: u16) -> Option<Self> {
        match v {
            1 => Some(Self::Setup),
            2 => Some(Self::Enter),
            3 => Some(Self::Register),
            _ => None,
        }
    }
}

/// The entry of this call was not seen (the call started before the tracer
/// attached, or the in-flight table was full): the arguments are unknown and
/// zero, only the result is real.
pub const HDR_ENTRY_MISSING_FLAG: u32 = 1 << 0;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RecordHeader {
    pub version: u16,
    pub kind: u16,
    /// `HDR_*` bits.
    pub flags: u32,
    /// `bpf_ktime_get_ns()` at syscall entry (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// Thread group id (what userspace calls the pid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    pub comm: [u8; COMM_LEN],
}

impl RecordHeader {
    pub const fn empty(kind: RecordKind) -> Self {
        Self {
            version: crate::RECORD_VERSION,
            kind: kind as u16,
            flags: 0,
            ts_ns: 0,
            pid: 0,
            tid: 0,
            comm: [0; COMM_LEN],
        }
    }
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for RecordHeader {}
