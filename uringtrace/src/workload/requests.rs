//! What the engine knows of each request (SQE) it queued: the outcome the
//! scenario expects, and the CQEs reaped for it so far, until its outcome
//! is complete and its ground-truth line can be written.
//!
//! Every CQE reaped is checked against the expectation of its request, so
//! a kernel that completes a request differently fails the scenario rather
//! than writing a ground truth nobody checked.

use std::collections::BTreeMap;

use anyhow::{bail, ensure};
use io_uring::{cqueue, squeue};

use super::{abi::IORING_CQE_F_MORE, ctx::describe, report::RequestLine};
use crate::decode::sqe_opcodes::op_name;

/// What one CQE must carry.
#[derive(Debug, Clone, Copy)]
struct WantCqe {
    res: i32,
    /// `None`: flags that differ from run to run, neither checked nor
    /// reported.
    flags: Option<u32>,
}

/// What a request touches, in the tracer's field names (docs/events.md,
/// "Request objects"): reported on its ground-truth line when the scenario
/// says, so the trace's decoding can be checked field by field.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Touches {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_file: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dfd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_dfd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_flags: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_flags: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The registered personality's credentials the request runs under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds: Option<Creds>,
}

/// Credentials as the tracer names them (`creds` of docs/events.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
}

/// The outcome a scenario expects of one request.
#[derive(Debug, Clone)]
pub struct Want {
    /// The CQEs flagged IORING_CQE_F_MORE, in order (multishot requests).
    more: Vec<WantCqe>,
    /// The terminal CQE; `None` when none may be posted.
    last: Option<WantCqe>,
    overflow: bool,
    touches: Option<Touches>,
}

impl Want {
    /// One CQE with this res and no flags.
    pub fn res(res: i32) -> Self {
        Self {
            more: Vec::new(),
            last: Some(WantCqe {
                res,
                flags: Some(0),
            }),
            overflow: false,
            touches: None,
        }
    }

    /// One CQE failing with this errno (a positive `libc::E*`).
    pub fn errno(errno: i32) -> Self {
        Self::res(-errno)
    }

    /// No CQE at all: IOSQE_CQE_SKIP_SUCCESS on a request that succeeds.
    pub fn no_cqe() -> Self {
        Self {
            more: Vec::new(),
            last: None,
            overflow: false,
            touches: None,
        }
    }

    /// A multishot request: one CQE flagged IORING_CQE_F_MORE per
    /// `(res, flags)` of `more`, in order (the flags include F_MORE), then
    /// `last`.
    pub fn multishot(more: impl IntoIterator<Item = (i32, u32)>, last: Self) -> Self {
        Self {
            more: more
                .into_iter()
                .map(|(res, flags)| WantCqe {
                    res,
                    flags: Some(flags),
                })
                .collect(),
            ..last
        }
    }

    /// The terminal CQE carries these flags rather than none.
    pub fn cflags(mut self, flags: u32) -> Self {
        if let Some(last) = &mut self.last {
            last.flags = Some(flags);
        }
        self
    }

    /// What the request touches, for its ground-truth line.
    pub fn touches(mut self, touches: Touches) -> Self {
        self.touches = Some(touches);
        self
    }

    /// The terminal CQE went through the CQ overflow list: the scenario
    /// made the CQ full before the request completed.
    pub fn overflowed(mut self) -> Self {
        self.overflow = true;
        self
    }

    /// CQEs the request is to post.
    pub fn cqes(&self) -> usize {
        self.more.len() + usize::from(self.last.is_some())
    }

    fn describe_last(&self) -> String {
        match self.last {
            Some(last) => describe_cqe(last.res, last.flags),
            None => "no CQE".to_string(),
        }
    }
}

fn describe_cqe(res: i32, flags: Option<u32>) -> String {
    match flags {
        Some(flags) => format!("res {} flags {flags:#x}", describe(i64::from(res))),
        None => format!("res {}", describe(i64::from(res))),
    }
}

/// A request queued and not yet reported.
#[derive(Debug)]
struct InFlight {
    pid: u32,
    tid: u32,
    ring_fd: u32,
    opcode: u8,
    sqe_flags: u8,
    want: Want,
    /// F_MORE CQEs reaped so far.
    more_seen: usize,
    /// "scenario: step".
    note: String,
}

impl InFlight {
    fn name(&self, user_data: u64) -> String {
        format!(
            "{}: request {user_data} ({})",
            self.note,
            op_name(self.opcode).unwrap_or("unknown opcode")
        )
    }
}

/// A request whose outcome is complete.
pub struct Finished {
    user_data: u64,
    request: InFlight,
    /// The terminal CQE's res and its checked flags, if one was posted.
    last: Option<WantCqe>,
}

impl Finished {
    pub fn line(&self) -> RequestLine<'_> {
        let r = &self.request;
        RequestLine {
            pid: r.pid,
            tid: r.tid,
            ring_fd: r.ring_fd,
            opcode: r.opcode,
            opcode_name: op_name(r.opcode),
            user_data: self.user_data,
            sqe_flags: r.sqe_flags,
            res: self.last.map(|last| last.res),
            cqes: (r.more_seen + usize::from(self.last.is_some())) as u32,
            cflags: self.last.and_then(|last| last.flags),
            overflow: r.want.overflow,
            touches: r.want.touches.as_ref(),
            note: &r.note,
        }
    }
}

/// Every request queued and not yet reported, by user_data.
pub struct Requests {
    in_flight: BTreeMap<u64, InFlight>,
    /// Never reused within a run, so a user_data names one request of one
    /// ring across a whole `tour`.
    next_user_data: u64,
}

impl Requests {
    pub fn new() -> Self {
        Self {
            in_flight: BTreeMap::new(),
            next_user_data: 1,
        }
    }

    /// Gives `sqe` its user_data and starts tracking it. Call only once
    /// the SQE is in the ring.
    pub fn track(&mut self, ring_fd: u32, sqe: &squeue::Entry, want: Want, note: String) {
        let bytes = sqe_bytes(sqe);
        self.in_flight.insert(
            sqe.get_user_data(),
            InFlight {
                // SAFETY: getpid and gettid cannot fail.
                pid: unsafe { libc::getpid() } as u32,
                tid: unsafe { libc::gettid() } as u32,
                ring_fd,
                opcode: bytes[SQE_OPCODE],
                sqe_flags: bytes[SQE_FLAGS],
                want,
                more_seen: 0,
                note,
            },
        );
    }

    /// The user_data for the next SQE.
    pub fn next_user_data(&mut self) -> u64 {
        let user_data = self.next_user_data;
        self.next_user_data += 1;
        user_data
    }

    /// Checks one CQE reaped from `ring_fd` against its request; returns the
    /// request if this was its terminal CQE.
    pub fn complete(
        &mut self,
        ring_fd: u32,
        cqe: &cqueue::Entry,
    ) -> anyhow::Result<Option<Finished>> {
        let user_data = cqe.user_data();
        let (res, flags) = (cqe.result(), cqe.flags());
        let Some(request) = self.in_flight.get_mut(&user_data) else {
            bail!(
                "ring {ring_fd} posted a CQE ({}) for user_data {user_data}, which no request \
                 in flight has",
                describe_cqe(res, Some(flags))
            );
        };
        let name = request.name(user_data);
        ensure!(
            request.ring_fd == ring_fd,
            "{name}: queued on ring {} but completed on ring {ring_fd}",
            request.ring_fd
        );
        if flags & IORING_CQE_F_MORE != 0 {
            let Some(want) = request.want.more.get(request.more_seen) else {
                bail!(
                    "{name}: CQE #{} ({}) flagged F_MORE, but only {} were expected before {}",
                    request.more_seen + 1,
                    describe_cqe(res, Some(flags)),
                    request.want.more.len(),
                    request.want.describe_last()
                );
            };
            if !matches(want, res, flags) {
                bail!(
                    "{name}: CQE #{} is {}, expected {}",
                    request.more_seen + 1,
                    describe_cqe(res, Some(flags)),
                    describe_cqe(want.res, want.flags)
                );
            }
            request.more_seen += 1;
            return Ok(None);
        }
        let Some(want) = request.want.last else {
            bail!(
                "{name}: posted a CQE ({}), expected none (CQE_SKIP_SUCCESS)",
                describe_cqe(res, Some(flags))
            );
        };
        if request.more_seen != request.want.more.len() || !matches(&want, res, flags) {
            bail!(
                "{name}: ended after {} F_MORE CQEs with {}, expected {} F_MORE CQEs and then {}",
                request.more_seen,
                describe_cqe(res, Some(flags)),
                request.want.more.len(),
                request.want.describe_last()
            );
        }
        Ok(self.in_flight.remove(&user_data).map(|request| Finished {
            user_data,
            request,
            last: Some(WantCqe {
                res,
                flags: want.flags,
            }),
        }))
    }

    /// Ends every request on `ring_fd` that is to post no CQE. Called once
    /// the scenario has reaped what its submissions produced: such a
    /// request has run by then, and a CQE it posted on failure would have
    /// been reaped with the others.
    pub fn finish_cqe_less(&mut self, ring_fd: u32) -> Vec<Finished> {
        let done: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, r)| r.ring_fd == ring_fd && r.want.last.is_none())
            .map(|(&user_data, _)| user_data)
            .collect();
        done.into_iter()
            .filter_map(|user_data| {
                self.in_flight.remove(&user_data).map(|request| Finished {
                    user_data,
                    request,
                    last: None,
                })
            })
            .collect()
    }

    /// Fails if any request is still in flight: each must have its line
    /// before its scenario ends.
    pub fn check_all_finished(&self) -> anyhow::Result<()> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let pending: Vec<String> = self
            .in_flight
            .iter()
            .map(|(&user_data, r)| {
                format!(
                    "{} on ring {}: {} F_MORE CQEs reaped, expected {} and then {}",
                    r.name(user_data),
                    r.ring_fd,
                    r.more_seen,
                    r.want.more.len(),
                    r.want.describe_last()
                )
            })
            .collect();
        bail!(
            "{} requests never completed:\n  {}",
            pending.len(),
            pending.join("\n  ")
        )
    }
}

fn matches(want: &WantCqe, res: i32, flags: u32) -> bool {
    want.res == res && want.flags.is_none_or(|f| f == flags)
}

/// Byte offsets in `struct io_uring_sqe`.
const SQE_OPCODE: usize = 0;
const SQE_FLAGS: usize = 1;

/// The 64 bytes of an SQE, as the kernel reads them.
fn sqe_bytes(sqe: &squeue::Entry) -> [u8; 64] {
    // SAFETY: squeue::Entry is a repr(C) wrapper of the uapi io_uring_sqe:
    // 64 bytes of integers without padding, all initialised (the crate
    // starts every SQE zeroed). transmute checks the size.
    unsafe { std::mem::transmute::<squeue::Entry, [u8; 64]>(sqe.clone()) }
}

/// `sqe` with its opcode byte replaced, for opcodes the io-uring crate has
/// no builder for (an undefined one).
pub fn with_opcode(sqe: squeue::Entry, opcode: u8) -> squeue::Entry {
    let mut bytes = sqe_bytes(&sqe);
    bytes[SQE_OPCODE] = opcode;
    // SAFETY: as in sqe_bytes; any byte pattern is a valid io_uring_sqe
    // (integers and unions of integers).
    unsafe { std::mem::transmute::<[u8; 64], squeue::Entry>(bytes) }
}
