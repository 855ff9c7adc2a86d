//! Decoded events: kernel records turned into Rust values, with no
//! formatting in them. Formatters take these and never re-parse records.

use thiserror::Error;
use uringtrace_common::{
    HDR_ENTRY_MISSING_FLAG, RECORD_VERSION, RecordHeader, RecordKind,
    syscall::{
        ENTER_ARG_EXT, ENTER_ARG_EXT_REG, EnterArg, EnterRecord, READ_NONE, READ_OK,
        READ_SIZE_MISMATCH, ReadStatus, RegisterRecord, SetupParams, SetupRecord, SyscallResult,
    },
};

use crate::requests::{event::RequestEvent, tracker::Tracker};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("record version {0}, this uringtrace reads version {RECORD_VERSION}")]
    Version(u16),
    #[error("unknown record kind {0}")]
    Kind(u16),
    #[error("record kind {kind} needs {need} bytes, got {got}")]
    Size { kind: u16, need: usize, got: usize },
}

/// Who made the call, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Kernel monotonic time of the call's entry (of its exit when the entry
    /// was missed).
    pub ts_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// Real uid and gid of the task.
    pub uid: u32,
    pub gid: u32,
    /// The command name exactly, for output that must not lose a byte.
    pub comm_bytes: Comm,
    /// `--context`: the process's parent, executable, cgroup, namespaces.
    pub context: Option<std::sync::Arc<crate::process_context::ProcessContext>>,
}

impl Task {
    /// The command name as text, invalid UTF-8 replaced by U+FFFD: for
    /// matching and display that need a string. Made when asked, not kept:
    /// a string per event was an allocation and a free per event, and the
    /// NDJSON lines write the bytes.
    pub fn comm(&self) -> std::borrow::Cow<'_, str> {
        self.comm_bytes.lossy_text()
    }
}

/// A task's command name (`task->comm`) as the kernel keeps it: up to 15
/// bytes that the task chose itself (`prctl(PR_SET_NAME)` takes any byte but
/// NUL), so not necessarily UTF-8 and possibly full of control characters.
/// Kept as bytes; each formatter decides how to show them safely.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Comm {
    bytes: [u8; COMM_LEN],
    len: u8,
}

/// `TASK_COMM_LEN`: 15 bytes and the NUL.
const COMM_LEN: usize = 16;

impl Comm {
    /// The name up to its first NUL (all of `raw`, at most 16 bytes, when
    /// there is none).
    pub fn from_kernel(raw: &[u8]) -> Self {
        if let Some(&whole) = raw.first_chunk::<COMM_LEN>() {
            // Every record's header: one 16-byte copy, the bytes after the
            // NUL masked off. A copy of the name's own length was a call
            // to memcpy per event, and the 16-byte load of what it wrote
            // stalled (in the consumer's profile).
            let end = whole.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
            let mask = u128::MAX
                .checked_shr(8 * (COMM_LEN - end) as u32)
                .unwrap_or(0);
            return Self {
                bytes: (u128::from_le_bytes(whole) & mask).to_le_bytes(),
                len: end as u8,
            };
        }
        let end = raw
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(raw.len())
            .min(COMM_LEN);
        let mut bytes = [0; COMM_LEN];
        bytes[..end].copy_from_slice(&raw[..end]);
        Self {
            bytes,
            len: end as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The name, when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// The name with each invalid UTF-8 sequence replaced by U+FFFD: for
    /// display and matching, not a faithful copy (see [`Self::as_bytes`]).
    pub fn lossy_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

/// The result of a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub ret: i64,
    pub duration_ns: u64,
    /// The entry was not seen: arguments are unknown.
    pub entry_missing: bool,
}

impl Outcome {
    pub fn errno(&self) -> Option<i32> {
        (-4095..0).contains(&self.ret).then(|| (-self.ret) as i32)
    }
}

/// How reading a user pointer at entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read<T> {
    /// NULL, or not a pointer for these flags.
    None,
    Ok(T),
    /// Not read: the size passed is not one the kernel accepts.
    SizeMismatch,
    /// The read faulted: errno of bpf_probe_read_user (EFAULT for a bad pointer).
    Fault(i32),
}

impl<T> Read<T> {
    fn from_status(status: ReadStatus, value: impl FnOnce() -> T) -> Self {
        match status {
            READ_NONE => Self::None,
            READ_OK => Self::Ok(value()),
            READ_SIZE_MISMATCH => Self::SizeMismatch,
            e if e < 0 => Self::Fault(-e),
            other => Self::Fault(other),
        }
    }

    pub fn ok(&self) -> Option<&T> {
        match self {
            Self::Ok(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

/// The `struct io_uring_getevents_arg` an EXT_ARG call passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeteventsArg {
    pub sigmask_ptr: u64,
    pub sigmask_sz: u32,
    pub min_wait_usec: u32,
    pub ts_ptr: u64,
    pub sigmask: Read<u64>,
    pub ts: Read<Timespec>,
}

/// io_uring_enter's `argp`/`argsz`, decoded as the kernel reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnterArgument {
    /// No EXT_ARG: argp is a `sigset_t *`.
    Sigset(Read<u64>),
    /// EXT_ARG: argp is a `struct io_uring_getevents_arg *`.
    Ext(Read<GeteventsArg>),
    /// EXT_ARG_REG: argp is an offset into the registered wait region.
    ExtReg { offset: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterCall {
    pub fd: u32,
    pub to_submit: u32,
    pub min_complete: u32,
    pub flags: u32,
    pub argp: u64,
    pub argsz: u64,
    pub arg: EnterArgument,
}

pub const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;

impl EnterCall {
    /// With IORING_ENTER_REGISTERED_RING, `fd` indexes the thread's
    /// registered rings instead of naming a file descriptor.
    pub fn registered_ring(&self) -> bool {
        self.flags & IORING_ENTER_REGISTERED_RING != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterCall {
    pub fd: u32,
    /// As passed, including IORING_REGISTER_USE_REGISTERED_RING.
    pub opcode: u32,
    pub arg: u64,
    pub nr_args: u32,
}

/// The io_uring_params fields a tracer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub flags: u32,
    pub sq_thread_cpu: u32,
    pub sq_thread_idle: u32,
    pub features: u32,
    pub wq_fd: u32,
}

impl From<SetupParams> for Params {
    fn from(p: SetupParams) -> Self {
        Self {
            sq_entries: p.sq_entries,
            cq_entries: p.cq_entries,
            flags: p.flags,
            sq_thread_cpu: p.sq_thread_cpu,
            sq_thread_idle: p.sq_thread_idle,
            features: p.features,
            wq_fd: p.wq_fd,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupCall {
    pub entries: u32,
    pub params_ptr: u64,
    /// As the caller passed them.
    pub params: Read<Params>,
    /// As the kernel wrote them back (successful calls only).
    pub params_out: Read<Params>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Setup(SetupCall),
    Enter(EnterCall),
    Register(RegisterCall),
}

impl Call {
    /// The event name, as in the JSON `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Setup(_) => "io_uring_setup",
            Self::Enter(_) => "io_uring_enter",
            Self::Register(_) => "io_uring_register",
        }
    }
}

/// One completed system call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallEvent {
    pub task: Task,
    pub outcome: Outcome,
    pub call: Call,
}

pub(crate) fn read_pod<T: Copy>(bytes: &[u8], kind: u16) -> Result<T, RecordError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(RecordError::Size {
            kind,
            need,
            got: bytes.len(),
        });
    }
    // SAFETY: length checked; T is a #[repr(C)] record of plain integers, for
    // which any bit pattern is valid; ring buffer data is only 8-byte
    // aligned, hence the unaligned read.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn enter_argument(a: &EnterArg, argp: u64) -> EnterArgument {
    match a.arg_kind {
        ENTER_ARG_EXT_REG => EnterArgument::ExtReg { offset: argp },
        ENTER_ARG_EXT => EnterArgument::Ext(Read::from_status(a.arg_status, || GeteventsArg {
            sigmask_ptr: a.sigmask_ptr,
            sigmask_sz: a.sigmask_sz,
            min_wait_usec: a.min_wait_usec,
            ts_ptr: a.ts_ptr,
            sigmask: Read::from_status(a.sigmask_status, || a.sigmask),
            ts: Read::from_status(a.ts_status, || Timespec {
                tv_sec: a.ts_sec,
                tv_nsec: a.ts_nsec,
            }),
        })),
        _ => EnterArgument::Sigset(Read::from_status(a.arg_status, || a.sigmask)),
    }
}

/// Any decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Syscall(SyscallEvent),
    Request(RequestEvent),
}

impl Event {
    pub fn task_mut(&mut self) -> &mut Task {
        match self {
            Self::Syscall(e) => &mut e.task,
            Self::Request(e) => &mut e.task,
        }
    }

    /// The event name, as in the JSON `event` field and `-e`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Syscall(e) => e.call.name(),
            Self::Request(e) => e.detail.name(),
        }
    }
}

/// Turns ring buffer records into events; requests go through the
/// tracker, which keeps state across records.
pub struct Decoder {
    pub tracker: Tracker,
    /// A submission held back for its object record, which its own hook
    /// writes right after it.
    held: Option<RequestEvent>,
    /// The last record decoded was a request's re-issue, merged into its
    /// submission (the session counts it as filtered).
    dropped: bool,
}

impl Decoder {
    pub fn new(tracker: Tracker) -> Self {
        Self {
            tracker,
            held: None,
            dropped: false,
        }
    }

    /// Whether the record just decoded gave no event because it repeated
    /// one (a re-issue on the kprobe submit path); clears the mark.
    pub fn take_dropped(&mut self) -> bool {
        std::mem::take(&mut self.dropped)
    }

    /// Decodes one record and hands over the events it completes: usually
    /// its own, sometimes none (an object, merged into its submission) or
    /// a held-back submission first.
    pub fn decode(
        &mut self,
        bytes: &[u8],
        emit: &mut impl FnMut(&mut Event),
    ) -> Result<(), RecordError> {
        let header = read_header(bytes)?;
        let kind = RecordKind::from_u16(header.kind).ok_or(RecordError::Kind(header.kind))?;
        if kind == RecordKind::RequestObject {
            let late = self.tracker.object(bytes)?;
            if let Some(mut held) = self.held.take() {
                if let Some(late) = late {
                    late.apply(&mut held.detail);
                }
                emit(&mut Event::Request(held));
            }
            return Ok(());
        }
        self.flush(emit);
        match kind {
            RecordKind::Setup | RecordKind::Enter | RecordKind::Register => {
                emit(&mut Event::Syscall(SyscallEvent::decode(
                    &header, kind, bytes,
                )?));
            }
            RecordKind::Issue => {
                // A re-issue gives nothing (see Decoder::dropped).
                self.dropped = false;
                match self.tracker.issue(&header, bytes)? {
                    Some(event) if self.tracker.take_awaiting_object() => self.held = Some(event),
                    Some(event) => emit(&mut Event::Request(event)),
                    None => self.dropped = true,
                }
            }
            _ => {
                // The event is used where process put it: moved out of its
                // Result (by `?`), it was copied twice more.
                let mut result = self.tracker.process(&header, kind, bytes);
                match &mut result {
                    Ok(event) if !self.tracker.take_awaiting_object() => emit(event),
                    Ok(_) => {
                        if let Ok(Event::Request(event)) = result {
                            self.held = Some(event);
                        }
                    }
                    Err(_) => return result.map(drop),
                }
            }
        }
        Ok(())
    }

    /// Hands over a held-back submission: the record after it was not its
    /// object (or there is none yet: the end of a batch).
    pub fn flush(&mut self, emit: &mut impl FnMut(&mut Event)) {
        if let Some(held) = self.held.take() {
            self.tracker.object_never_came();
            emit(&mut Event::Request(held));
        }
    }
}

fn read_header(bytes: &[u8]) -> Result<RecordHeader, RecordError> {
    let header: RecordHeader = read_pod(bytes, 0).map_err(|_| RecordError::Short(bytes.len()))?;
    if header.version != RECORD_VERSION {
        return Err(RecordError::Version(header.version));
    }
    Ok(header)
}

impl SyscallEvent {
    /// Decodes one system call record.
    #[cfg(test)]
    pub fn from_record(bytes: &[u8]) -> Result<Self, RecordError> {
        let header = read_header(bytes)?;
        let kind = RecordKind::from_u16(header.kind).ok_or(RecordError::Kind(header.kind))?;
        Self::decode(&header, kind, bytes)
    }

    fn decode(header: &RecordHeader, kind: RecordKind, bytes: &[u8]) -> Result<Self, RecordError> {
        // Every call record starts with the header and the result.
        let call = match kind {
            RecordKind::Enter => {
                let r: EnterRecord = read_pod(bytes, header.kind)?;
                Call::Enter(EnterCall {
                    fd: r.fd,
                    to_submit: r.to_submit,
                    min_complete: r.min_complete,
                    flags: r.flags,
                    argp: r.argp,
                    argsz: r.argsz,
                    arg: enter_argument(&r.arg, r.argp),
                })
            }
            RecordKind::Register => {
                let r: RegisterRecord = read_pod(bytes, header.kind)?;
                Call::Register(RegisterCall {
                    fd: r.fd,
                    opcode: r.opcode,
                    arg: r.arg,
                    nr_args: r.nr_args,
                })
            }
            RecordKind::Setup => {
                let r: SetupRecord = read_pod(bytes, header.kind)?;
                Call::Setup(SetupCall {
                    entries: r.entries,
                    params_ptr: r.params_ptr,
                    params: Read::from_status(r.params_status, || r.params_in.into()),
                    params_out: Read::from_status(r.params_out_status, || r.params_out.into()),
                })
            }
            _ => return Err(RecordError::Kind(header.kind)),
        };
        let comm = Comm::from_kernel(&header.comm);
        // In bounds: read_pod above checked the whole record's size.
        let result: SyscallResult = read_pod(&bytes[size_of::<RecordHeader>()..], header.kind)?;
        Ok(SyscallEvent {
            task: Task {
                ts_ns: header.ts_ns,
                pid: header.pid,
                tid: header.tid,
                uid: header.uid,
                gid: header.gid,
                comm_bytes: comm,
                context: None,
            },
            outcome: Outcome {
                ret: result.ret,
                duration_ns: result.duration_ns,
                entry_missing: header.flags & HDR_ENTRY_MISSING_FLAG != 0,
            },
            call,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T>(v: &T) -> Vec<u8> {
        // SAFETY: reading a repr(C) value's own bytes.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn header(kind: RecordKind) -> RecordHeader {
        let mut h = RecordHeader::empty(kind);
        h.ts_ns = 5;
        h.pid = 100;
        h.tid = 101;
        h.comm[..4].copy_from_slice(b"work");
        h
    }

    #[test]
    fn decodes_ext_arg_enter() {
        let rec = EnterRecord {
            header: header(RecordKind::Enter),
            result: SyscallResult {
                ret: -62,
                duration_ns: 10_000,
            },
            fd: 3,
            to_submit: 0,
            min_complete: 1,
            flags: 1 | 8,
            argp: 0x1000,
            argsz: 24,
            arg: EnterArg {
                arg_kind: ENTER_ARG_EXT,
                arg_status: READ_OK,
                sigmask_status: READ_NONE,
                ts_status: READ_OK,
                sigmask_ptr: 0,
                sigmask: 0,
                sigmask_sz: 0,
                min_wait_usec: 0,
                ts_ptr: 0x2000,
                ts_sec: 0,
                ts_nsec: 10_000_000,
            },
        };
        let ev = SyscallEvent::from_record(&bytes_of(&rec)).unwrap();
        assert_eq!(ev.task.comm(), "work");
        assert_eq!((ev.task.pid, ev.task.tid), (100, 101));
        assert_eq!(ev.outcome.errno(), Some(62));
        let Call::Enter(call) = ev.call else {
            panic!("not an enter: {ev:?}")
        };
        let EnterArgument::Ext(Read::Ok(ext)) = call.arg else {
            panic!("not an ext arg: {call:?}")
        };
        assert_eq!(ext.sigmask, Read::None);
        assert_eq!(
            ext.ts,
            Read::Ok(Timespec {
                tv_sec: 0,
                tv_nsec: 10_000_000
            })
        );
    }

    #[test]
    fn comm_keeps_every_byte_up_to_the_nul() {
        let raw = *b"a\n\x1b[31m\xff\xfe\xc2\x9b\0zz\0";
        let comm = Comm::from_kernel(&raw);
        assert_eq!(comm.as_bytes(), b"a\n\x1b[31m\xff\xfe\xc2\x9b");
        assert_eq!(comm.as_str(), None);
        assert_eq!(comm.lossy_text(), "a\n\x1b[31m\u{fffd}\u{fffd}\u{9b}");
        // No NUL at all: all 16 bytes.
        assert_eq!(Comm::from_kernel(&[b'x'; 16]).as_bytes().len(), 16);
        assert_eq!(Comm::from_kernel(b"work\0").as_str(), Some("work"));
        // The same name from a whole 16-byte field and from a short slice,
        // whatever follows its NUL.
        for len in 0..=16 {
            let mut raw = [0xa5; 16];
            raw[..len].fill(b'n');
            if len < 16 {
                raw[len] = 0;
            }
            let whole = Comm::from_kernel(&raw);
            let short = Comm::from_kernel(&raw[..len]);
            assert_eq!(whole, short, "{len}");
            assert_eq!(whole.as_bytes(), &raw[..len]);
        }
    }

    #[test]
    fn rejects_bad_records() {
        assert_eq!(
            SyscallEvent::from_record(&[0; 8]),
            Err(RecordError::Short(8))
        );
        let mut h = header(RecordKind::Enter);
        h.version = 99;
        assert_eq!(
            SyscallEvent::from_record(&bytes_of(&h)),
            Err(RecordError::Version(99))
        );
        let h = header(RecordKind::Enter);
        assert!(matches!(
            SyscallEvent::from_record(&bytes_of(&h)),
            Err(RecordError::Size { kind: 2, .. })
        ));
        let mut h = header(RecordKind::Enter);
        h.kind = 77;
        assert_eq!(
            SyscallEvent::from_record(&bytes_of(&h)),
            Err(RecordError::Kind(77))
        );
    }

    #[test]
    fn fault_status_keeps_errno() {
        let a = EnterArg {
            arg_status: -14,
            ..Default::default()
        };
        assert_eq!(
            enter_argument(&a, 8),
            EnterArgument::Sigset(Read::Fault(14))
        );
    }
}
