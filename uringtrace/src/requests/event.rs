//! Decoded request events: what the io_uring tracepoints said, joined with
//! what the tracker knows (ring, request identity, latency, path). No kernel
//! pointers leave the tracker: rings and requests get session-local ids.

use std::sync::Arc;

use crate::event::Task;

pub use super::object::{Creds, RequestObject};

/// What a request of a decoded opcode touches, or why it is not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectInfo {
    Decoded(Box<RequestObject>),
    /// The reason (no BTF on this kernel, the record came too late, ...).
    Missing(Arc<str>),
}

/// The credentials a request runs under when its SQE named a registered
/// personality (the kernel's REQ_F_CREDS): not its submitter's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredsInfo {
    /// The personality's ids, read from `req->creds` at submission.
    Read(Creds),
    /// Under a personality, but the ids are unknown: why.
    Missing(Arc<str>),
}

/// JSON: `{"decoded": true, "uid", "gid", "euid", "egid"}`, or
/// `{"decoded": false, "decode_error": why}` (docs/events.md).
impl serde::Serialize for CredsInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(None)?;
        match self {
            Self::Read(c) => {
                map.serialize_entry("decoded", &true)?;
                map.serialize_entry("uid", &c.uid)?;
                map.serialize_entry("gid", &c.gid)?;
                map.serialize_entry("euid", &c.euid)?;
                map.serialize_entry("egid", &c.egid)?;
            }
            Self::Missing(why) => {
                map.serialize_entry("decoded", &false)?;
                map.serialize_entry("decode_error", &**why)?;
            }
        }
        map.end()
    }
}

/// Text: ` creds=uid=U,gid=G,euid=E,egid=F`, or ` creds=? (why)`.
impl std::fmt::Display for CredsInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(c) => write!(
                f,
                " creds=uid={},gid={},euid={},egid={}",
                c.uid, c.gid, c.euid, c.egid
            ),
            Self::Missing(why) => write!(f, " creds=? ({why})"),
        }
    }
}

/// The kind of io_uring kernel thread an event ran on, when it was not the
/// submitting task itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    /// An io-wq worker (`iou-wrk-*`, or `io_wqe_worker-*` before 5.12).
    IoWq,
    /// The ring's SQPOLL thread (`iou-sqp-*`, or `io_uring-sq` before 5.12).
    SqPoll,
}

impl Worker {
    /// The kind of a thread the kernel marked PF_IO_WORKER. Both kinds
    /// carry the flag, so the name tells them apart; a process can rename
    /// its own io_uring threads, but not make another thread one.
    pub fn of_io_thread(comm: &[u8]) -> Self {
        if comm.starts_with(b"iou-sqp-") {
            Self::SqPoll
        } else {
            Self::IoWq
        }
    }

    /// By name alone: for kernels where the task's flags are not read
    /// (before 5.12, or without BTF). Any thread can take these names.
    pub fn from_comm(comm: &str) -> Option<Self> {
        if comm.starts_with("iou-wrk-") || comm.starts_with("io_wqe_worker") {
            Some(Self::IoWq)
        } else if comm.starts_with("iou-sqp-") || comm.starts_with("io_uring-sq") {
            Some(Self::SqPoll)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::IoWq => "io-wq",
            Self::SqPoll => "sqpoll",
        }
    }
}

/// A ring, as far as the tracer knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingRef {
    /// Session-local id, in order of first sight (1, 2, ...).
    pub id: u32,
    /// The ring's fd in its owner, when its io_uring_create was seen.
    pub fd: Option<i32>,
    /// The process that created it, when seen.
    pub owner: Option<u32>,
    /// IORING_SETUP_* flags, when its creation was seen.
    pub setup_flags: Option<u32>,
}

pub const IORING_SETUP_SQPOLL: u32 = 1 << 1;
pub const IORING_SETUP_CQE32: u32 = 1 << 11;

impl RingRef {
    /// Whether the ring has an SQ thread, when known.
    pub fn sqpoll(&self) -> Option<bool> {
        self.setup_flags.map(|f| f & IORING_SETUP_SQPOLL != 0)
    }
}

/// How a request ran between submission and completion, as the
/// tracepoints showed it. Several can apply (armed poll, then task work).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paths(u8);

impl Paths {
    pub const ASYNC: Self = Self(1 << 0);
    pub const POLL: Self = Self(1 << 1);
    pub const TASK_WORK: Self = Self(1 << 2);
    pub const DEFERRED: Self = Self(1 << 3);
    pub const LINKED: Self = Self(1 << 4);

    const NAMES: [(Self, &'static str); 5] = [
        (Self::ASYNC, "async"),
        (Self::POLL, "poll"),
        (Self::TASK_WORK, "task_work"),
        (Self::DEFERRED, "deferred"),
        (Self::LINKED, "linked"),
    ];

    pub fn insert(&mut self, other: Self) {
        self.0 |= other.0;
    }

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Names of the paths taken; `["inline"]` when none: issued and
    /// completed in the submitting call.
    pub fn names(self) -> Vec<&'static str> {
        self.each_name().collect()
    }

    /// The same names as [`Self::names`], without a vector (every CQE
    /// writes them).
    pub fn each_name(self) -> impl Iterator<Item = &'static str> {
        let inline = (self.0 & !Self::LINKED.0 == 0).then_some("inline");
        inline.into_iter().chain(
            Self::NAMES
                .iter()
                .filter(move |(p, _)| self.contains(*p))
                .map(|(_, n)| *n),
        )
    }
}

/// What the tracker knows of a request when an event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRef {
    /// Session-local request id (1, 2, ...), assigned at submission; the
    /// same for every event of one request, whatever its user_data. `None`
    /// when its submission was not seen (before the trace started).
    pub id: Option<u64>,
    pub user_data: u64,
    /// From the submission (absent when it was not seen).
    pub opcode: Option<u8>,
    /// IOSQE_* flags, from the submission.
    pub sqe_flags: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// By the kernel's request identity.
    Request,
    /// By ring and user_data: completions posted without a request (the
    /// extra CQEs of multishot requests, overflowed CQEs).
    UserData,
    /// No submission seen for it (submitted before the trace started,
    /// posted by another ring's MSG_RING, or dropped from the table).
    None,
}

/// A CQE, posted (`complete`) or overflowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub request: Option<RequestRef>,
    pub matched: Match,
    pub user_data: u64,
    pub res: i32,
    /// IORING_CQE_F_* bits (absent on kernels whose tracepoint lacks them).
    pub cflags: Option<u32>,
    /// `big_cqe` words of a CQE32 ring.
    pub extra: Option<(u64, u64)>,
    /// Overflow only: the kernel could not allocate the overflow entry, so
    /// this CQE is lost to the application (IORING_SQ_CQ_OVERFLOW is set).
    pub lost: bool,
    /// No IORING_CQE_F_MORE: the request is done.
    pub terminal: bool,
    /// CQEs seen for this request so far, this one included.
    pub cqes: u32,
    /// Submission to this CQE, with the request matched.
    pub latency_ns: Option<u64>,
    pub paths: Paths,
    /// On the request's last CQE: what it touched (as on its submission).
    pub object: Option<ObjectInfo>,
    /// On the request's last CQE: the personality's credentials it ran
    /// under (as on its submission).
    pub creds: Option<CredsInfo>,
}

/// The whole SQE of a request that failed before it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedSqe {
    pub opcode: u8,
    pub flags: u8,
    pub ioprio: u8,
    pub off: u64,
    pub addr: u64,
    pub len: u32,
    pub op_flags: u32,
    pub buf_index: u16,
    pub personality: u16,
    pub file_index: u32,
    pub addr3: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestDetail {
    RingCreate {
        fd: i32,
        sq_entries: u32,
        cq_entries: u32,
        flags: u32,
    },
    RingRegister {
        opcode: u32,
        nr_files: u32,
        nr_bufs: u32,
        ret: i64,
    },
    Submit {
        request: RequestRef,
        /// The kernel's internal REQ_F_* flags (the low bits are the SQE's).
        req_flags: u64,
        /// Submitted by the ring's SQ thread.
        sq_thread: bool,
        /// Kernels before 5.18 say whether it was tried non-blocking first.
        force_nonblock: Option<bool>,
        /// For the opcodes decoded (opens, paths, connect, reads, writes,
        /// sends, receives): what the request touches.
        object: Option<ObjectInfo>,
        /// Present when the request runs under a registered personality.
        creds: Option<CredsInfo>,
        /// The kprobe the submission was seen by (`kprobe:io_issue_sqe`),
        /// when it came from the kprobe submit path rather than the submit
        /// tracepoint.
        hook: Option<&'static str>,
    },
    Complete(Completion),
    Failed {
        request: RequestRef,
        sqe: FailedSqe,
        error: i32,
    },
    CqeOverflow(Completion),
    Async {
        request: RequestRef,
        req_flags: u64,
        /// Queued on a hashed (serialized per file) io-wq list.
        hashed: Option<bool>,
    },
    PollArm {
        request: RequestRef,
        mask: i32,
        events: i32,
    },
    TaskAdd {
        request: RequestRef,
        mask: i32,
    },
    Defer {
        request: RequestRef,
    },
    Link {
        request: RequestRef,
        /// The request it is linked after.
        target: Option<RequestRef>,
    },
    FailLink {
        request: RequestRef,
        /// The next request in the chain, cancelled because this one failed.
        next: Option<RequestRef>,
    },
    CqringWait {
        min_events: i32,
    },
    TaskWorkRun {
        count: u32,
        loops: Option<u32>,
    },
    LocalWorkRun {
        count: i32,
        loops: u32,
    },
    ShortWrite {
        fpos: u64,
        wanted: u64,
        got: u64,
    },
    FileGet {
        request: RequestRef,
        fd: i32,
    },
}

impl RequestDetail {
    /// The event name, as in the JSON `event` field and `-e`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RingCreate { .. } => "ring_create",
            Self::RingRegister { .. } => "ring_register",
            Self::Submit { .. } => "submit",
            Self::Complete(_) => "complete",
            Self::Failed { .. } => "failed",
            Self::CqeOverflow(_) => "cqe_overflow",
            Self::Async { .. } => "async",
            Self::PollArm { .. } => "poll_arm",
            Self::TaskAdd { .. } => "task_add",
            Self::Defer { .. } => "defer",
            Self::Link { .. } => "link",
            Self::FailLink { .. } => "fail_link",
            Self::CqringWait { .. } => "cqring_wait",
            Self::TaskWorkRun { .. } => "task_work_run",
            Self::LocalWorkRun { .. } => "local_work_run",
            Self::ShortWrite { .. } => "short_write",
            Self::FileGet { .. } => "file_get",
        }
    }

    /// The request this event is about, if any.
    pub fn request(&self) -> Option<&RequestRef> {
        match self {
            Self::Submit { request, .. }
            | Self::Failed { request, .. }
            | Self::Async { request, .. }
            | Self::PollArm { request, .. }
            | Self::TaskAdd { request, .. }
            | Self::Defer { request }
            | Self::Link { request, .. }
            | Self::FailLink { request, .. }
            | Self::FileGet { request, .. } => Some(request),
            Self::Complete(c) | Self::CqeOverflow(c) => c.request.as_ref(),
            _ => None,
        }
    }

    /// A failed request: its CQE has a negative res, it failed before
    /// issue, or it broke its link chain. (`-x`)
    pub fn is_failure(&self) -> bool {
        match self {
            Self::Complete(c) | Self::CqeOverflow(c) => c.res < 0,
            Self::Failed { .. } | Self::FailLink { .. } => true,
            Self::RingRegister { ret, .. } => *ret < 0,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEvent {
    /// `pid` is the ring owner's when the event ran on a kernel thread
    /// outside it; `ts_ns` is the tracepoint's time.
    pub task: Task,
    pub worker: Option<Worker>,
    /// Absent for events not tied to a ring (task_work_run).
    pub ring: Option<RingRef>,
    pub detail: RequestDetail,
}
