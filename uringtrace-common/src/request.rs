//! Records of the `io_uring:*` tracepoints (submission, completion and the
//! paths in between). Their layouts differ between kernels (fields added,
//! widened, renamed; `io_uring_submit_sqe` became `io_uring_submit_req` in
//! 6.3) and Rust eBPF has no CO-RE, so the programs copy the tracepoint's own
//! record bytes and userspace decodes them with the running kernel's format
//! file. The programs read only what they filter on (the ring pointer, the
//! opcode), at offsets userspace resolved from the same format files.

use crate::{header::RecordHeader, header::RecordKind};

/// Bytes of the tracepoint record copied for most events: every field of
/// these tracepoints ends below 64 on the kernels we know (5.10 to 7.2).
pub const RAW_SMALL: usize = 64;
/// For `io_uring_req_failed`, which carries the whole SQE (ends at 96).
pub const RAW_LARGE: usize = 112;

/// One io_uring tracepoint event. `raw` is the start of the kernel's trace
/// record (common fields included, so offsets are the format file's).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TracepointRecord<const N: usize> {
    pub header: RecordHeader,
    /// The traced process that created the ring, when the event ran on a
    /// task outside the process filter that works for that ring (io-wq and
    /// SQPOLL threads were kernel threads, not the owner's, before 5.12);
    /// 0 when the running task itself passed the filter.
    pub ring_owner: u32,
    pub _pad: u32,
    pub raw: [u8; N],
}

#[cfg(feature = "user")]
unsafe impl<const N: usize> aya::Pod for TracepointRecord<N> {}

/// A tracepoint this tracer hooks: its index into [`RequestLayout`] arrays,
/// its record kind, the names it has had, and how much of it is copied.
#[derive(Clone, Copy, Debug)]
pub struct RequestTracepoint {
    pub index: usize,
    pub kind: RecordKind,
    /// Names in the `io_uring` category, newest first: the first one the
    /// running kernel has is attached.
    pub names: &'static [&'static str],
    pub raw_len: usize,
}

macro_rules! tracepoints {
    ($($index:literal $kind:ident [$($name:literal),+] $len:ident;)+) => {
        /// Every io_uring tracepoint, by index.
        pub const REQUEST_TRACEPOINTS: [RequestTracepoint; TRACEPOINT_COUNT] = [
            $(RequestTracepoint {
                index: $index,
                kind: RecordKind::$kind,
                names: &[$($name),+],
                raw_len: $len,
            },)+
        ];
    };
}

pub const TRACEPOINT_COUNT: usize = 17;

tracepoints! {
    0 RingCreate ["io_uring_create"] RAW_SMALL;
    1 RingRegister ["io_uring_register"] RAW_SMALL;
    2 Submit ["io_uring_submit_req", "io_uring_submit_sqe"] RAW_SMALL;
    3 Complete ["io_uring_complete"] RAW_SMALL;
    4 ReqFailed ["io_uring_req_failed"] RAW_LARGE;
    5 CqeOverflow ["io_uring_cqe_overflow"] RAW_SMALL;
    6 QueueAsyncWork ["io_uring_queue_async_work"] RAW_SMALL;
    7 PollArm ["io_uring_poll_arm"] RAW_SMALL;
    8 TaskAdd ["io_uring_task_add"] RAW_SMALL;
    9 Defer ["io_uring_defer"] RAW_SMALL;
    10 Link ["io_uring_link"] RAW_SMALL;
    11 FailLink ["io_uring_fail_link"] RAW_SMALL;
    12 CqringWait ["io_uring_cqring_wait"] RAW_SMALL;
    13 TaskWorkRun ["io_uring_task_work_run"] RAW_SMALL;
    14 LocalWorkRun ["io_uring_local_work_run"] RAW_SMALL;
    15 ShortWrite ["io_uring_short_write"] RAW_SMALL;
    16 FileGet ["io_uring_file_get"] RAW_SMALL;
}

impl RequestTracepoint {
    pub const fn by_kind(kind: RecordKind) -> Option<&'static RequestTracepoint> {
        let mut i = 0;
        while i < TRACEPOINT_COUNT {
            if REQUEST_TRACEPOINTS[i].kind as u16 == kind as u16 {
                return Some(&REQUEST_TRACEPOINTS[i]);
            }
            i += 1;
        }
        None
    }
}

/// Offsets the programs read themselves, per tracepoint index
/// (`OFFSET_ABSENT` when that tracepoint has no such field on this kernel).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RequestLayout {
    /// The `ctx` (ring) pointer: filters requests of traced rings that run
    /// on other tasks.
    pub ring: [u32; TRACEPOINT_COUNT],
    /// The `opcode` byte: the in-kernel `--ops` filter.
    pub opcode: [u32; TRACEPOINT_COUNT],
    /// A 4-byte count that must be non-zero for the event to be worth a
    /// record: task-work runs that ran nothing (an SQPOLL thread's idle loop
    /// fires one per iteration, tens of thousands a second).
    pub nonzero: [u32; TRACEPOINT_COUNT],
    /// For summary mode's in-kernel join: the request pointer, user_data,
    /// the CQE's res and flags (each 4 or 8 bytes wide: the low 4 are read).
    pub req: [u32; TRACEPOINT_COUNT],
    pub user_data: [u32; TRACEPOINT_COUNT],
    pub res: [u32; TRACEPOINT_COUNT],
    pub cflags: [u32; TRACEPOINT_COUNT],
}

impl RequestLayout {
    pub const ABSENT: Self = Self {
        ring: [crate::layout::OFFSET_ABSENT; TRACEPOINT_COUNT],
        opcode: [crate::layout::OFFSET_ABSENT; TRACEPOINT_COUNT],
        nonzero: [crate::layout::OFFSET_ABSENT; TRACEPOINT_COUNT],
        req: [crate::layout::OFFSET_ABSENT; TRACEPOINT_COUNT],
        user_data: [crate::layout::OFFSET_ABSENT; TRACEPOINT_COUNT],
        res: [crate::layout::OFFSET_ABSENT; TRACEPOINT_COUNT],
        cflags: [crate::layout::OFFSET_ABSENT; TRACEPOINT_COUNT],
    };
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for RequestLayout {}

/// The in-kernel opcode filter (`--ops`): bit n of `mask` keeps opcode n.
/// Events without an opcode (completions) are matched to their submission
/// in userspace.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OpcodeFilter {
    pub enabled: u32,
    pub _pad: u32,
    pub mask: [u64; 4],
}

impl OpcodeFilter {
    pub const ALL: Self = Self {
        enabled: 0,
        _pad: 0,
        mask: [0; 4],
    };

    pub const fn keeps(&self, opcode: u8) -> bool {
        self.enabled == 0 || self.mask[(opcode >> 6) as usize] & (1 << (opcode & 63)) != 0
    }
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for OpcodeFilter {}

/// Rings whose owner the kernel remembers (for the filter above).
pub const MAX_TRACED_RINGS: u32 = 16384;

const _: () = {
    let mut i = 0;
    while i < TRACEPOINT_COUNT {
        assert!(REQUEST_TRACEPOINTS[i].index == i);
        assert!(REQUEST_TRACEPOINTS[i].raw_len.is_multiple_of(8));
        i += 1;
    }
    assert!(core::mem::size_of::<TracepointRecord<RAW_SMALL>>() == 56 + RAW_SMALL);
    assert!(core::mem::size_of::<TracepointRecord<RAW_LARGE>>() == 56 + RAW_LARGE);
};

/// Indexes of the tracepoints the summary joins.
pub const TP_SUBMIT: usize = 2;
pub const TP_COMPLETE: usize = 3;
pub const TP_REQ_FAILED: usize = 4;
pub const TP_CQE_OVERFLOW: usize = 5;

const _: () = {
    assert!(REQUEST_TRACEPOINTS[TP_SUBMIT].kind as u16 == RecordKind::Submit as u16);
    assert!(REQUEST_TRACEPOINTS[TP_COMPLETE].kind as u16 == RecordKind::Complete as u16);
    assert!(REQUEST_TRACEPOINTS[TP_REQ_FAILED].kind as u16 == RecordKind::ReqFailed as u16);
    assert!(REQUEST_TRACEPOINTS[TP_CQE_OVERFLOW].kind as u16 == RecordKind::CqeOverflow as u16);
};
