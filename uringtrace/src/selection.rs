//! What the user asked to see: event kinds (`-e`) and request opcodes
//! (`--ops`). Both decide which programs are attached and what the kernel
//! lets through, so unwanted events cost as little as possible.

use thiserror::Error;
use uringtrace_common::{
    RecordKind,
    request::{OpcodeFilter, REQUEST_TRACEPOINTS},
};

use crate::{
    decode::sqe_opcodes::{IO_URING_OPS, OP_PREFIX},
    event::{Call, Event},
    requests::event::RequestDetail,
};

/// Every event name, as in the JSON `event` field; the index is the bit
/// in [`EventSelection`].
pub const EVENT_NAMES: [&str; 20] = [
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ring_create",
    "ring_register",
    "submit",
    "complete",
    "failed",
    "cqe_overflow",
    "async",
    "poll_arm",
    "task_add",
    "defer",
    "link",
    "fail_link",
    "cqring_wait",
    "task_work_run",
    "local_work_run",
    "short_write",
    "file_get",
];

/// The index in [`EVENT_NAMES`] of the event's name (a test checks every
/// kind against the names).
fn event_index(event: &Event) -> u32 {
    match event {
        Event::Syscall(e) => match e.call {
            Call::Setup(_) => 0,
            Call::Enter(_) => 1,
            Call::Register(_) => 2,
        },
        Event::Request(e) => match e.detail {
            RequestDetail::RingCreate { .. } => 3,
            RequestDetail::RingRegister { .. } => 4,
            RequestDetail::Submit { .. } => 5,
            RequestDetail::Complete(_) => 6,
            RequestDetail::Failed { .. } => 7,
            RequestDetail::CqeOverflow(_) => 8,
            RequestDetail::Async { .. } => 9,
            RequestDetail::PollArm { .. } => 10,
            RequestDetail::TaskAdd { .. } => 11,
            RequestDetail::Defer { .. } => 12,
            RequestDetail::Link { .. } => 13,
            RequestDetail::FailLink { .. } => 14,
            RequestDetail::CqringWait { .. } => 15,
            RequestDetail::TaskWorkRun { .. } => 16,
            RequestDetail::LocalWorkRun { .. } => 17,
            RequestDetail::ShortWrite { .. } => 18,
            RequestDetail::FileGet { .. } => 19,
        },
    }
}

const SYSCALLS: u32 = 0b111;
const REQUESTS: u32 = ((1 << EVENT_NAMES.len()) - 1) & !SYSCALLS;

/// The request event each tracepoint produces, by REQUEST_TRACEPOINTS index.
fn request_event(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::RingCreate => "ring_create",
        RecordKind::RingRegister => "ring_register",
        RecordKind::Submit | RecordKind::Issue => "submit",
        RecordKind::Complete => "complete",
        RecordKind::ReqFailed => "failed",
        RecordKind::CqeOverflow => "cqe_overflow",
        RecordKind::QueueAsyncWork => "async",
        RecordKind::PollArm => "poll_arm",
        RecordKind::TaskAdd => "task_add",
        RecordKind::Defer => "defer",
        RecordKind::Link => "link",
        RecordKind::FailLink => "fail_link",
        RecordKind::CqringWait => "cqring_wait",
        RecordKind::TaskWorkRun => "task_work_run",
        RecordKind::LocalWorkRun => "local_work_run",
        RecordKind::ShortWrite => "short_write",
        RecordKind::FileGet => "file_get",
        RecordKind::Setup => "io_uring_setup",
        RecordKind::Enter => "io_uring_enter",
        RecordKind::Register => "io_uring_register",
        // Not an event of its own: merged into its request's events.
        RecordKind::RequestObject => "object",
    }
}

/// The events a request's identity depends on: without them the others
/// could not be joined to their request, and finished requests would stay
/// in the tables. Attached whenever any request event is shown.
const JOIN_EVENTS: [&str; 5] = [
    "ring_create",
    "submit",
    "failed",
    "complete",
    "cqe_overflow",
];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error(
        "unknown event `{0}`; valid: all, syscalls, requests, setup, enter, register, {list}",
        list = EVENT_NAMES[3..].join(", ")
    )]
    UnknownEvent(String),
    #[error(
        "unknown opcode `{0}`; give IORING_OP_* names with or without the prefix (`read`, `IORING_OP_SENDMSG`) or numbers"
    )]
    UnknownOpcode(String),
    #[error("`{0}` selects nothing")]
    Empty(String),
}

fn bit(name: &str) -> Option<u32> {
    EVENT_NAMES.iter().position(|n| *n == name).map(|i| 1 << i)
}

/// A set of event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSelection(u32);

impl Default for EventSelection {
    fn default() -> Self {
        Self::ALL
    }
}

impl EventSelection {
    pub const ALL: Self = Self(SYSCALLS | REQUESTS);

    /// Parses a comma-separated list of event names and groups.
    pub fn parse(list: &str) -> Result<Self, SelectionError> {
        let mut bits = 0;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let lower = item.to_ascii_lowercase();
            bits |= match lower.as_str() {
                "all" => SYSCALLS | REQUESTS,
                "syscalls" => SYSCALLS,
                "requests" => REQUESTS,
                "setup" | "enter" | "register" => {
                    bit(&format!("io_uring_{lower}")).expect("a syscall name")
                }
                name => bit(name).ok_or_else(|| SelectionError::UnknownEvent(item.into()))?,
            };
        }
        if bits == 0 {
            return Err(SelectionError::Empty(list.into()));
        }
        Ok(Self(bits))
    }

    pub fn shows(&self, name: &str) -> bool {
        bit(name).is_some_and(|b| self.0 & b != 0)
    }

    /// [`Self::shows`] of the event's name, by its kind: the name looked
    /// up among [`EVENT_NAMES`] was string comparisons on every event.
    pub fn shows_event(&self, event: &Event) -> bool {
        self.0 & (1 << event_index(event)) != 0
    }

    pub fn any_request(&self) -> bool {
        self.0 & REQUESTS != 0
    }

    /// Whether the tracepoint of `kind` must be attached: shown, or needed
    /// to join the shown ones.
    pub fn attaches(&self, kind: RecordKind) -> bool {
        let name = request_event(kind);
        self.shows(name) || (self.any_request() && JOIN_EVENTS.contains(&name))
    }

    /// The request tracepoints to attach, by REQUEST_TRACEPOINTS index.
    pub fn request_tracepoints(&self) -> Vec<usize> {
        REQUEST_TRACEPOINTS
            .iter()
            .filter(|tp| self.attaches(tp.kind))
            .map(|tp| tp.index)
            .collect()
    }
}

/// `--ops`: the request opcodes to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpcodeSelection {
    mask: [u64; 4],
}

impl OpcodeSelection {
    pub fn parse(list: &str) -> Result<Self, SelectionError> {
        let mut mask = [0u64; 4];
        let mut any = false;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let upper = item.to_ascii_uppercase();
            let name = if upper.starts_with(OP_PREFIX) {
                upper
            } else {
                format!("{OP_PREFIX}{upper}")
            };
            let op = match IO_URING_OPS.value_of(&name) {
                Some(v) => v as u8,
                None => item
                    .parse::<u8>()
                    .map_err(|_| SelectionError::UnknownOpcode(item.into()))?,
            };
            mask[usize::from(op >> 6)] |= 1 << (op & 63);
            any = true;
        }
        if !any {
            return Err(SelectionError::Empty(list.into()));
        }
        Ok(Self { mask })
    }

    pub fn keeps(&self, opcode: u8) -> bool {
        self.mask[usize::from(opcode >> 6)] & (1 << (opcode & 63)) != 0
    }

    /// The same filter for the kernel.
    pub fn kernel_filter(&self) -> OpcodeFilter {
        OpcodeFilter {
            enabled: 1,
            _pad: 0,
            mask: self.mask,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind's index and the name it is shown by agree, for every kind.
    #[test]
    fn event_index_is_the_names_index() {
        use crate::{
            event::{
                Comm, EnterArgument, EnterCall, Outcome, Read, RegisterCall, SetupCall,
                SyscallEvent, Task,
            },
            requests::event::{Completion, FailedSqe, Match, Paths, RequestEvent, RequestRef},
        };
        let task = Task {
            ts_ns: 0,
            pid: 1,
            tid: 1,
            uid: 0,
            gid: 0,
            comm_bytes: Comm::from_kernel(b"x"),
            context: None,
        };
        let request = RequestRef {
            id: None,
            user_data: 0,
            opcode: None,
            sqe_flags: None,
        };
        let cqe = Completion {
            request: None,
            matched: Match::None,
            user_data: 0,
            res: 0,
            cflags: None,
            extra: None,
            lost: false,
            terminal: true,
            cqes: 1,
            latency_ns: None,
            paths: Paths::default(),
            object: None,
            creds: None,
        };
        let sqe = FailedSqe {
            opcode: 0,
            flags: 0,
            ioprio: 0,
            off: 0,
            addr: 0,
            len: 0,
            op_flags: 0,
            buf_index: 0,
            personality: 0,
            file_index: 0,
            addr3: 0,
        };
        let details = [
            RequestDetail::RingCreate {
                fd: 0,
                sq_entries: 0,
                cq_entries: 0,
                flags: 0,
            },
            RequestDetail::RingRegister {
                opcode: 0,
                nr_files: 0,
                nr_bufs: 0,
                ret: 0,
            },
            RequestDetail::Submit {
                request,
                req_flags: 0,
                sq_thread: false,
                force_nonblock: None,
                object: None,
                creds: None,
                hook: None,
            },
            RequestDetail::Complete(cqe.clone()),
            RequestDetail::Failed {
                request,
                sqe,
                error: 0,
            },
            RequestDetail::CqeOverflow(cqe),
            RequestDetail::Async {
                request,
                req_flags: 0,
                hashed: None,
            },
            RequestDetail::PollArm {
                request,
                mask: 0,
                events: 0,
            },
            RequestDetail::TaskAdd { request, mask: 0 },
            RequestDetail::Defer { request },
            RequestDetail::Link {
                request,
                target: None,
            },
            RequestDetail::FailLink {
                request,
                next: None,
            },
            RequestDetail::CqringWait { min_events: 0 },
            RequestDetail::TaskWorkRun {
                count: 0,
                loops: None,
            },
            RequestDetail::LocalWorkRun { count: 0, loops: 0 },
            RequestDetail::ShortWrite {
                fpos: 0,
                wanted: 0,
                got: 0,
            },
            RequestDetail::FileGet { request, fd: 0 },
        ];
        let mut events: Vec<Event> = details
            .into_iter()
            .map(|detail| {
                Event::Request(RequestEvent {
                    task: task.clone(),
                    worker: None,
                    ring: None,
                    detail,
                })
            })
            .collect();
        let calls = [
            Call::Setup(SetupCall {
                entries: 0,
                params_ptr: 0,
                params: Read::None,
                params_out: Read::None,
            }),
            Call::Enter(EnterCall {
                fd: 0,
                to_submit: 0,
                min_complete: 0,
                flags: 0,
                argp: 0,
                argsz: 0,
                arg: EnterArgument::ExtReg { offset: 0 },
            }),
            Call::Register(RegisterCall {
                fd: 0,
                opcode: 0,
                arg: 0,
                nr_args: 0,
            }),
        ];
        events.extend(calls.into_iter().map(|call| {
            Event::Syscall(SyscallEvent {
                task: task.clone(),
                outcome: Outcome {
                    ret: 0,
                    duration_ns: 0,
                    entry_missing: false,
                },
                call,
            })
        }));
        assert_eq!(events.len(), EVENT_NAMES.len());
        for event in &events {
            assert_eq!(EVENT_NAMES[event_index(event) as usize], event.name());
        }
        for (i, name) in EVENT_NAMES.iter().enumerate() {
            let one = EventSelection::parse(name).unwrap();
            for event in &events {
                assert_eq!(one.shows_event(event), one.shows(event.name()), "{i}");
            }
        }
    }

    #[test]
    fn parses_names_aliases_and_groups() {
        let s = EventSelection::parse("enter,submit,complete").unwrap();
        assert!(s.shows("io_uring_enter"));
        assert!(s.shows("submit") && s.shows("complete"));
        assert!(!s.shows("io_uring_setup") && !s.shows("async"));
        let r = EventSelection::parse("requests").unwrap();
        assert!(r.shows("poll_arm") && !r.shows("io_uring_enter"));
        assert_eq!(EventSelection::parse("ALL").unwrap(), EventSelection::ALL);
        assert_eq!(
            EventSelection::parse("enter,bogus"),
            Err(SelectionError::UnknownEvent("bogus".into()))
        );
        assert!(EventSelection::parse(",").is_err());
    }

    #[test]
    fn completions_need_their_submissions() {
        let s = EventSelection::parse("complete").unwrap();
        assert!(s.attaches(RecordKind::Submit));
        assert!(s.attaches(RecordKind::ReqFailed));
        assert!(!s.attaches(RecordKind::PollArm));
        let sys = EventSelection::parse("syscalls").unwrap();
        assert!(sys.request_tracepoints().is_empty());
        assert_eq!(
            EventSelection::ALL.request_tracepoints().len(),
            REQUEST_TRACEPOINTS.len()
        );
    }

    #[test]
    fn opcodes_by_name_or_number() {
        let o = OpcodeSelection::parse("read,IORING_OP_SENDMSG, 0").unwrap();
        assert!(o.keeps(22) && o.keeps(9) && o.keeps(0));
        assert!(!o.keeps(23));
        let k = o.kernel_filter();
        assert!(k.keeps(22) && !k.keeps(23));
        assert_eq!(
            OpcodeSelection::parse("reed"),
            Err(SelectionError::UnknownOpcode("reed".into()))
        );
    }
}
