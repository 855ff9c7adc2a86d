//! The command line. Every doc comment here is `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{
    alerts::monitor::MonitorArgs,
    attach::AttachMode,
    check::CheckArgs,
    format::OutputFormat,
    selection::{EventSelection, OpcodeSelection},
    top::TopArgs,
    workload::WorkloadArgs,
};

/// Trace Linux io_uring with eBPF: every io_uring_setup, io_uring_enter and
/// io_uring_register call, fully decoded, and every request the rings run,
/// from submission to completion (the requests strace cannot see).
///
/// Without -p or a command, every process on the machine is traced.
///
/// Examples:
///   sudo uringtrace -- ./my-server          trace a command and its children
///   sudo uringtrace -p 1234 -f json         trace a running process as NDJSON
///   sudo uringtrace -x -o failures.log      every failed call and request
///   sudo uringtrace -e submit,complete --ops read,write -p 1234
#[derive(Debug, Parser)]
#[command(
    name = "uringtrace",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub trace: TraceArgs,
}

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// Trace this process and its threads (repeatable). Fails if the process
    /// does not exist.
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Output format: `text` (strace-like lines) or `json` (one JSON object
    /// per line, schema in docs/events.md).
    #[arg(short = 'f', long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Write events to FILE instead of standard output. FILE is appended
    /// to; a new FILE is created with mode 0600 (an existing one keeps its
    /// mode).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// With -o, empty FILE first instead of appending to it.
    #[arg(long, requires = "output")]
    pub truncate: bool,

    /// With -o, rotate FILE when the next line would take it past BYTES:
    /// FILE becomes FILE.1, FILE.1 becomes FILE.2, ... (at line boundaries;
    /// at least 4096).
    #[arg(long, value_name = "BYTES", requires = "output", value_parser = parse_rotate_size)]
    pub rotate_size: Option<u64>,

    /// With --rotate-size, how many rotated files to keep (FILE.1 to
    /// FILE.N; older ones are deleted).
    #[arg(long, value_name = "N", default_value_t = 5, requires = "rotate_size",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rotate_keep: u32,

    /// Write events to the Unix stream socket a local collector listens on
    /// at PATH, instead of standard output.
    #[arg(long, value_name = "PATH", conflicts_with = "output")]
    pub socket: Option<PathBuf>,

    /// Bytes of formatted events that may wait for the output (file,
    /// socket, standard output). The tracer never waits for its output:
    /// when the queue is full, events are dropped and counted (`queue` in
    /// the stats and in the final line). At least 65536.
    #[arg(long, value_name = "BYTES", default_value_t = crate::output::DEFAULT_QUEUE_BYTES,
          value_parser = parse_queue_size)]
    pub queue_size: usize,

    /// Write a `stats` record every SECONDS (events seen, written, dropped
    /// at each stage, cumulative) and a last one at exit, so a reader can
    /// tell a quiet system from a blind tracer; 0 turns them off.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_stats_interval)]
    pub stats_interval: f64,

    /// Summary only, like `strace -c`: per system call and per request
    /// opcode, calls, errors by errno, total / average / p50 / p99 time
    /// (request latency: submission to CQE), counted in the kernel; no
    /// per-event output. Printed at the end (text table, or one JSON object
    /// with -f json).
    #[arg(short = 'c', long = "summary", conflicts_with = "with_summary")]
    pub summary: bool,

    /// Events and, at the end, the summary table (`-c`).
    #[arg(short = 'S', long = "with-summary")]
    pub with_summary: bool,

    /// With the summary, log2 histograms (as text bars) of each system
    /// call's duration (io_uring_enter's includes its wait) and each
    /// opcode's submit-to-CQE latency. Alone, implies -c.
    #[arg(long)]
    pub hist: bool,

    /// Add who each process is to every JSON record: `ppid`, `exe`,
    /// `cgroup`, `cgroup_id`, `container_id` (from the cgroup path),
    /// `pid_ns`, `mnt_ns`. Read from /proc at a process's first event.
    #[arg(long)]
    pub context: bool,

    /// Also write a timeline to FILE: Chrome / Perfetto Trace Event JSON
    /// (open it in https://ui.perfetto.dev), each request a slice from
    /// submission to its last CQE on its ring's track, each system call a
    /// slice on its thread. Follows -e, --ops and the task filters.
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,

    /// Show only failures: system calls with a negative return value,
    /// requests whose CQE has a negative res, requests that failed before
    /// issue (`failed`) and broken link chains (`fail_link`).
    #[arg(short = 'x', long)]
    pub failed: bool,

    /// Events to show, comma-separated: system calls `enter`, `setup`,
    /// `register` (or `io_uring_enter`, ...), requests `submit`, `complete`,
    /// `failed`, `cqe_overflow`, `async`, `poll_arm`, `task_add`, `defer`,
    /// `link`, `fail_link`, `cqring_wait`, `task_work_run`,
    /// `local_work_run`, `short_write`, `file_get`, `ring_create`,
    /// `ring_register`; groups `syscalls`, `requests`, `all` (default).
    /// Hooks of unselected events are not attached (submissions and
    /// completions are, hidden, when other request events need them to be
    /// joined to their request).
    #[arg(short = 'e', long = "events", value_name = "LIST", value_parser = parse_events, default_value = "all")]
    pub events: EventSelection,

    /// Show only requests with these opcodes, comma-separated, by name with
    /// or without `IORING_OP_` (`read,write,sendmsg`) or number. Filtered in
    /// the kernel where the tracepoint carries the opcode; completions by
    /// their submission's opcode. System calls are not affected.
    #[arg(long, value_name = "LIST", value_parser = parse_ops)]
    pub ops: Option<OpcodeSelection>,

    /// How to hook the io_uring system calls: `tracepoint`
    /// (syscalls:sys_{enter,exit}_io_uring_*), `kprobe` (kprobe + kretprobe
    /// on the __x64_sys_io_uring_* wrappers, for kernels without syscall
    /// tracepoints), or `auto`: tracepoints when present, else kprobes.
    /// Request events always come from the io_uring tracepoints.
    #[arg(long = "attach", value_enum, default_value_t = AttachMode::Auto, value_name = "MODE")]
    pub attach_mode: AttachMode,

    /// Trace only tasks running with this real uid (a number or a user
    /// name). Checked in the kernel.
    #[arg(long, value_name = "UID", value_parser = parse_uid)]
    pub uid: Option<u32>,

    /// Trace only processes with this command name (`comm`, at most 15
    /// bytes), and their io_uring worker threads. Checked in the kernel.
    #[arg(long, value_name = "NAME", value_parser = parse_comm)]
    pub comm: Option<String>,

    /// Trace only tasks in this cgroup v2 (a directory under
    /// /sys/fs/cgroup, absolute or relative to it; not its descendants).
    /// Checked in the kernel.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,

    /// Stop tracing after SECONDS (a command keeps running, untraced).
    #[arg(short = 'd', long, value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// With -p, also trace every process the traced ones start from now on
    /// (always on when tracing a command).
    #[arg(long)]
    pub follow_forks: bool,

    /// Size of the kernel-to-userspace ring buffer, in bytes: a power of two,
    /// at least 4096 (default 16 MiB). A bigger buffer absorbs longer
    /// bursts and longer stalls of the tracer; every record that does not
    /// fit is counted and reported as dropped.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_BYTES, value_parser = parse_buffer_size)]
    pub buffer_size: u32,

    /// Benchmark reference points (`cargo xtask bench`): `empty` programs
    /// that return at once, `reserve` programs that only move records of
    /// the same size through the ring buffer, drained without decoding, or
    /// `reserve-clock`, the same with each record stamped with the time.
    #[arg(long, value_enum, default_value_t = HookMode::Full, hide = true)]
    pub hook_mode: HookMode,

    /// Also run the detection rules (docs/rules.md) on every event and
    /// write an `alert` record after each event that makes one fire,
    /// interleaved with the events. The rules see every event, whatever
    /// -e, -x and --ops show. Implied by --rules and --deny-comm.
    #[arg(long, conflicts_with = "summary")]
    pub alerts: bool,

    #[command(flatten)]
    pub rules: RuleArgs,

    /// Alerts only, no events: set by `uringtrace monitor`.
    #[arg(skip)]
    pub alerts_only: bool,

    /// Start COMMAND and trace it and every process it starts (like
    /// `strace -f`); uringtrace exits with the command's exit status.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Where the detection rules come from (`--alerts`, `monitor`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RuleArgs {
    /// Add the rules of FILE (JSON, format in docs/rules.md) to the
    /// built-in ones (repeatable; later files win: a rule with the id of an
    /// earlier one replaces it). A file that does not parse stops
    /// uringtrace with its line and column.
    #[arg(long = "rules", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Leave the built-in rules out: only the --rules files apply.
    #[arg(long)]
    pub no_builtin_rules: bool,

    /// Command names (comm, globs allowed) that should never use io_uring,
    /// comma-separated (`nginx,sshd`): added to the list `deny_comm`, which
    /// the built-in rule `deny-comm` alerts on (once per process).
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub deny_comm: Vec<String>,
}

pub(crate) fn parse_rotate_size(s: &str) -> Result<u64, String> {
    let n: u64 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a byte count: {e}"))?;
    if n < 4096 {
        return Err(format!(
            "{n} is too small for a file of events: at least 4096"
        ));
    }
    Ok(n)
}

pub(crate) fn parse_queue_size(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|e| format!("`{s}` is not a byte count: {e}"))?;
    if n < crate::output::MIN_QUEUE_BYTES {
        return Err(format!(
            "{n} bytes is room for a few events only: at least {}",
            crate::output::MIN_QUEUE_BYTES
        ));
    }
    Ok(n)
}

pub(crate) fn parse_stats_interval(s: &str) -> Result<f64, String> {
    let seconds: f64 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a number of seconds: {e}"))?;
    if !(seconds.is_finite() && (seconds == 0.0 || seconds >= 0.01)) {
        return Err(format!(
            "{seconds}: give 0 (no stats) or at least 0.01 seconds"
        ));
    }
    Ok(seconds)
}

/// `--buffer-size` default: ~130,000 request records, ~27 ms of the
/// fastest stream measured (4.9M records a second), which a consumer that
/// keeps up on average needs to ride out the stalls a shared machine
/// gives it: in the NOP storm at 32 per enter, runs that dropped went
/// from 5 of 22 with 8 MiB to 1 of 22 (interleaved, same binary). 32 MiB
/// did no better there and cost ~7 ms more to load (the kernel allocates
/// and zeroes the whole buffer); 16 MiB cost none measurable.
pub const DEFAULT_BUFFER_BYTES: u32 = 16 << 20;

pub(crate) fn parse_buffer_size(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .parse()
        .map_err(|e| format!("`{s}` is not a byte count: {e}"))?;
    if n < 4096 || !n.is_power_of_two() {
        return Err(format!("{n} is not a power of two of at least 4096"));
    }
    Ok(n)
}

/// What the eBPF programs do (see uringtrace_common::hook_mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookMode {
    Full,
    Empty,
    Reserve,
    ReserveClock,
}

impl HookMode {
    pub fn kernel_value(self) -> u8 {
        use uringtrace_common::hook_mode;
        match self {
            Self::Full => hook_mode::FULL,
            Self::Empty => hook_mode::EMPTY,
            Self::Reserve => hook_mode::RESERVE,
            Self::ReserveClock => hook_mode::RESERVE_CLOCK,
        }
    }
}

pub(crate) fn parse_uid(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse() {
        return Ok(n);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| format!("`{s}` is not a uid, and /etc/passwd is unreadable: {e}"))?;
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(s))
                .then(|| f.nth(1)?.parse().ok())
                .flatten()
        })
        .ok_or_else(|| format!("no user `{s}` in /etc/passwd"))
}

pub(crate) fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 15 || s.contains('\0') {
        return Err(format!(
            "`{s}` cannot be a command name: the kernel keeps 1 to 15 bytes"
        ));
    }
    Ok(s.to_string())
}

fn parse_events(s: &str) -> Result<EventSelection, String> {
    EventSelection::parse(s).map_err(|e| e.to_string())
}

fn parse_ops(s: &str) -> Result<OpcodeSelection, String> {
    OpcodeSelection::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive io_uring with a built-in scenario: the workload the tracer is
    /// tested against (`--list` shows the scenarios).
    Workload(WorkloadArgs),

    /// A live view of the rings, refreshed like top(1): per process and
    /// ring, submissions/s, CQEs/s, requests in flight, errors, CQ
    /// overflows, io-wq offloads and SQPOLL wake-ups.
    Top(TopArgs),
    /// Probe this kernel and report what uringtrace can see here.
    ///
    /// BTF, privileges, the BPF ring buffer, tracefs, every tracepoint
    /// uringtrace uses, which program types load and attach (tracepoint,
    /// tp_btf, fentry, kprobe), the kprobe targets, and the hook each event
    /// kind gets. Exits 1 when the io_uring system calls cannot be traced.
    Check(CheckArgs),

    /// Detections: run the rules (built-in, and yours with --rules) on
    /// every io_uring event and write only `alert` records (and the stats),
    /// NDJSON by default.
    ///
    /// Built-in rules: files opened, deleted, renamed or linked and network
    /// connections made through io_uring; an SQPOLL ring doing I/O without
    /// io_uring_enter; personalities (saved credentials) registered and
    /// used; io_uring used by a process on the --deny-comm list. Each alert
    /// has a rule id, a severity, an explanation and a MITRE ATT&CK
    /// technique id (docs/rules.md).
    ///
    /// Examples:
    ///   sudo uringtrace monitor -o /var/log/uring-alerts.ndjson
    ///   sudo uringtrace monitor --deny-comm nginx,sshd --rules site.json
    ///   uringtrace monitor --print-rules
    Monitor(MonitorArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn buffer_size_must_be_power_of_two() {
        assert!(parse_buffer_size("4096").is_ok());
        assert!(parse_buffer_size("5000").is_err());
        assert!(parse_buffer_size("1024").is_err());
        assert!(parse_buffer_size("lots").is_err());
    }

    #[test]
    fn command_after_double_dash() {
        let cli = Cli::try_parse_from(["uringtrace", "-f", "json", "--", "ls", "-l"]).unwrap();
        assert_eq!(cli.trace.command, ["ls", "-l"]);
        assert_eq!(cli.trace.format, OutputFormat::Json);
    }
}
