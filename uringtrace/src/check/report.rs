//! What the check found, as data: the JSON document of `check -f json`
//! (documented in docs/check.md, which must change with it) and what the
//! text report is rendered from.

use std::io;

use serde::Serialize;

use crate::decode::errno_names::errno_name;

/// Bumped when a field changes meaning or disappears; new fields may be
/// added without a bump.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub kernel: Kernel,
    pub btf: Btf,
    /// What the kernel lets uringtrace say about who ran a request.
    pub who: Who,
    pub privileges: Privileges,
    /// Creating a `BPF_MAP_TYPE_RINGBUF` map, the tracer's event channel.
    pub ring_buffer: Outcome,
    pub tracefs: Tracefs,
    pub tracepoints: Vec<TracepointStatus>,
    pub program_types: ProgramTypes,
    pub kprobe_pmu: KprobePmu,
    pub kprobe_targets: Vec<KprobeTarget>,
    pub events: Vec<EventPlan>,
    /// What `--attach kprobe` takes the `submit` events from.
    pub submit_kprobe: SubmitKprobes,
    pub verdict: Verdict,
}

/// The issue-path kprobes `--attach kprobe` would attach for `submit`.
#[derive(Debug, Serialize)]
pub struct SubmitKprobes {
    /// Symbols probed.
    pub targets: Vec<String>,
    /// The others, with why (outside the kernel-version window, not in
    /// kallsyms, blacklisted, no kprobe PMU).
    pub skipped: Vec<SkippedKprobe>,
    /// With no target: what is used instead (`tracepoint
    /// io_uring:io_uring_submit_req`, or `none: ...`).
    pub fallback: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SkippedKprobe {
    pub symbol: &'static str,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Kernel {
    /// `uname -r`, or `unknown` if uname failed.
    pub release: String,
    /// `uname -m`.
    pub machine: String,
}

#[derive(Debug, Serialize)]
pub struct Btf {
    pub path: &'static str,
    pub present: bool,
    /// Types in it, when it parsed.
    pub types: Option<usize>,
    /// Why it could not be read or parsed.
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Who {
    /// How io_uring's own threads (io-wq, SQPOLL) are told from the
    /// process's: `task_flags` (PF_IO_WORKER, read in the kernel) or `name`
    /// (`iou-wrk-*`/`iou-sqp-*`, which any thread can take).
    pub io_threads: &'static str,
    /// `task_struct.flags`' offset, with `task_flags`.
    pub task_flags_offset: Option<u32>,
    /// With `name`: why.
    pub io_threads_reason: Option<String>,
    /// REQ_F_CREDS_BIT from BTF: requests run under a registered
    /// personality can be told apart.
    pub creds_bit: Option<u32>,
    /// Their credentials can be read (io_kiocb.creds and struct cred's ids
    /// in BTF).
    pub creds_readable: bool,
    /// Why not, when not.
    pub creds_reason: Option<String>,
    /// Where each record's pid, tid, uid, gid and command name come from:
    /// `task_struct` (plain loads through `bpf_get_current_task_btf()`,
    /// member offsets from BTF; 5.11+) or `helpers` (a helper call for
    /// each, slower).
    pub header_fields: &'static str,
    /// With `helpers`: why.
    pub header_fields_reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Privileges {
    pub euid: u32,
    pub cap_sys_admin: bool,
    pub cap_bpf: bool,
    pub cap_perfmon: bool,
    /// What uringtrace requires to trace: CAP_SYS_ADMIN, or CAP_BPF and
    /// CAP_PERFMON.
    pub sufficient: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TracefsStatus {
    /// Already mounted.
    Mounted,
    /// Not mounted; the check mounted it, as the tracer would.
    MountedNow,
    /// Mounted, but its events cannot be read (no privilege).
    Unreadable,
    /// Not mounted and could not be mounted.
    Unavailable,
}

#[derive(Debug, Serialize)]
pub struct Tracefs {
    pub status: TracefsStatus,
    pub path: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Present,
    Absent,
    /// tracefs could not be read: the check cannot tell.
    Unknown,
}

#[derive(Debug, Serialize)]
pub struct TracepointStatus {
    pub category: &'static str,
    /// The names it has had, newest first.
    pub names: &'static [&'static str],
    pub status: Presence,
    /// The name this kernel has, when present.
    pub name: Option<&'static str>,
    /// Why the status is unknown.
    pub error: Option<String>,
}

impl TracepointStatus {
    pub fn is_present(&self) -> bool {
        self.status == Presence::Present
    }

    /// `category:name`, with the name this kernel has if any.
    pub fn qualified(&self) -> String {
        format!("{}:{}", self.category, self.name.unwrap_or(self.names[0]))
    }
}

/// The result of one step of a probe.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed {
        /// The system call or bpf command that failed.
        call: &'static str,
        errno: Option<i32>,
        errno_name: Option<&'static str>,
        message: String,
        /// The verifier log's last lines, for a refused load.
        log: Option<String>,
    },
    Skipped {
        reason: String,
    },
}

impl Outcome {
    pub fn failed(call: &'static str, error: &io::Error) -> Self {
        let errno = error.raw_os_error();
        Self::Failed {
            call,
            errno,
            errno_name: errno.and_then(errno_name),
            message: super::io_error_text(error),
            log: None,
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Self {
        Self::Skipped {
            reason: reason.into(),
        }
    }
}

/// One program type, tried for real: a two-instruction program loaded and
/// attached to `target`, then detached.
#[derive(Debug, Serialize)]
pub struct ProgramProbe {
    /// What it was attached to (a tracepoint, BTF type or kernel function).
    pub target: Option<String>,
    /// The vmlinux BTF id of the target (tp_btf, fentry).
    pub btf_id: Option<u32>,
    pub load: Outcome,
    pub attach: Outcome,
}

#[derive(Debug, Serialize)]
pub struct ProgramTypes {
    /// BPF_PROG_TYPE_TRACEPOINT on a perf tracepoint event: what
    /// uringtrace attaches today.
    pub tracepoint: ProgramProbe,
    /// BPF_PROG_TYPE_TRACING / BPF_TRACE_RAW_TP on a BTF tracepoint.
    pub tp_btf: ProgramProbe,
    /// BPF_PROG_TYPE_TRACING / BPF_TRACE_FENTRY on a kernel function.
    pub fentry: ProgramProbe,
    /// BPF_PROG_TYPE_KPROBE on a kprobe perf event (kprobe PMU).
    pub kprobe: ProgramProbe,
}

#[derive(Debug, Serialize)]
pub struct KprobePmu {
    pub present: bool,
    /// Its perf event type number.
    #[serde(rename = "type")]
    pub pmu_type: Option<u32>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct KprobeTarget {
    pub symbol: String,
    /// What uringtrace would hook there.
    pub purpose: &'static str,
    /// Whether `/proc/kallsyms` has the exact name; null if unreadable.
    pub in_kallsyms: Option<bool>,
    /// Compiler clones of it (`name.isra.0`), which a kprobe on the name
    /// does not reach.
    pub clones: Vec<String>,
    /// Whether the kprobe blacklist lists it; null if the blacklist is
    /// unreadable (debugfs not mounted, or no privilege).
    pub blacklisted: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// A perf-event tracepoint program (the record the kernel built).
    Tracepoint,
    /// A tp_btf program on the tracepoint, rebuilding the record from its
    /// arguments (request events, where the kernel takes it).
    TpBtf,
    Kprobe,
    None,
}

/// The hook uringtrace uses for one event kind on this kernel: the one
/// `--attach auto` picks.
#[derive(Debug, Serialize)]
pub struct EventPlan {
    /// As in the events' JSON `event` field and `-e`.
    pub event: &'static str,
    pub hook: HookKind,
    /// Tracepoints (`category:name`) or kernel symbols (a kprobe on each,
    /// `%return` for a kretprobe).
    pub targets: Vec<String>,
    /// Whether uringtrace can attach this hook today.
    pub implemented: bool,
    /// Why the event cannot be traced, when it cannot; for a request
    /// event on a perf-event tracepoint program, why not tp_btf.
    pub reason: Option<String>,
    /// A request event on its perf-event program because the kernel
    /// refused uringtrace's tp_btf program for it (the verifier, or the
    /// attach): a bug to report, where a kernel without the hook or BTF
    /// is not. False everywhere else.
    pub tp_btf_refused: bool,
}

impl EventPlan {
    pub fn traceable(&self) -> bool {
        self.hook != HookKind::None && self.implemented
    }
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    /// io_uring_setup, io_uring_enter and io_uring_register can all be
    /// traced; the exit status is 0 exactly when this is true.
    pub syscalls_traceable: bool,
    /// How many of the request events can be traced, of how many.
    pub request_events_traceable: usize,
    pub request_events: usize,
    /// What stands in the way of tracing the system calls.
    pub problems: Vec<String>,
}
