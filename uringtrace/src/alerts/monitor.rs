//! `uringtrace monitor`: the session with every event attached, only the
//! alerts (and the stats) written. A thin front: it builds the trace
//! command's options and runs the same session.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser as _;

use super::rule_set::{self, RuleSources};
use crate::{
    attach::AttachMode,
    cli::{
        Cli, DEFAULT_BUFFER_BYTES, RuleArgs, parse_buffer_size, parse_comm, parse_queue_size,
        parse_rotate_size, parse_stats_interval, parse_uid,
    },
    format::OutputFormat,
};

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// Watch this process and its threads (repeatable). Without -p or a
    /// command, every process on the machine is watched.
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Output format: `json` (one `alert` record per line, docs/events.md)
    /// or `text` (one line per alert).
    #[arg(short = 'f', long, value_enum, default_value_t = OutputFormat::Json)]
    pub format: OutputFormat,

    /// Write the alerts to FILE instead of standard output (appended to; a
    /// new FILE is created with mode 0600).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// With -o, empty FILE first instead of appending to it.
    #[arg(long, requires = "output")]
    pub truncate: bool,

    /// With -o, rotate FILE when the next line would take it past BYTES.
    #[arg(long, value_name = "BYTES", requires = "output", value_parser = parse_rotate_size)]
    pub rotate_size: Option<u64>,

    /// With --rotate-size, how many rotated files to keep.
    #[arg(long, value_name = "N", default_value_t = 5, requires = "rotate_size",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rotate_keep: u32,

    /// Write the alerts to the Unix stream socket a local collector listens
    /// on at PATH.
    #[arg(long, value_name = "PATH", conflicts_with = "output")]
    pub socket: Option<PathBuf>,

    /// Bytes of formatted alerts that may wait for the output; beyond it
    /// alerts are dropped and counted (`queue`). At least 65536.
    #[arg(long, value_name = "BYTES", default_value_t = crate::output::DEFAULT_QUEUE_BYTES,
          value_parser = parse_queue_size)]
    pub queue_size: usize,

    /// Write a `stats` record every SECONDS (events seen, alerts raised,
    /// drops) and one at exit; 0 turns them off.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_stats_interval)]
    pub stats_interval: f64,

    /// Watch only tasks running with this real uid (a number or a user
    /// name). Checked in the kernel.
    #[arg(long, value_name = "UID", value_parser = parse_uid)]
    pub uid: Option<u32>,

    /// Watch only processes with this command name, and their io_uring
    /// worker threads. Checked in the kernel.
    #[arg(long, value_name = "NAME", value_parser = parse_comm)]
    pub comm: Option<String>,

    /// Watch only tasks in this cgroup v2 (not its descendants).
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,

    /// Stop after SECONDS.
    #[arg(short = 'd', long, value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// With -p, also watch every process the watched ones start from now on
    /// (always on with a command).
    #[arg(long)]
    pub follow_forks: bool,

    /// Size of the kernel-to-userspace ring buffer, in bytes (a power of
    /// two, at least 4096). Every event is attached, so a busy machine
    /// needs more than the trace command's usual selection.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_BYTES, value_parser = parse_buffer_size)]
    pub buffer_size: u32,

    /// How to hook the io_uring system calls: `tracepoint`, `kprobe` or
    /// `auto` (as for the trace command).
    #[arg(long = "attach", value_enum, default_value_t = AttachMode::Auto, value_name = "MODE")]
    pub attach_mode: AttachMode,

    #[command(flatten)]
    pub rules: RuleArgs,

    /// Print the rules in force (the built-in ones merged with --rules and
    /// --deny-comm) as a rule file, and exit: the built-in file is the
    /// starting point for your own.
    #[arg(long)]
    pub print_rules: bool,

    /// Start COMMAND and watch it and every process it starts; uringtrace
    /// exits with the command's exit status.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(args: MonitorArgs) -> anyhow::Result<i32> {
    if args.print_rules {
        let merged = rule_set::merge(&sources(&args.rules))?;
        // Printed rules are rules that load: lists resolved too.
        rule_set::compile(&merged)?;
        print!("{}", rule_set::render(&merged));
        return Ok(0);
    }
    // The trace command's defaults (parsed, so that an option added to it
    // later gets its default here too), then what monitor decides.
    let mut trace = Cli::try_parse_from(["uringtrace"])
        .context("building the session options")?
        .trace;
    trace.pids = args.pids;
    trace.format = args.format;
    trace.output = args.output;
    trace.truncate = args.truncate;
    trace.rotate_size = args.rotate_size;
    trace.rotate_keep = args.rotate_keep;
    trace.socket = args.socket;
    trace.queue_size = args.queue_size;
    trace.stats_interval = args.stats_interval;
    trace.attach_mode = args.attach_mode;
    trace.uid = args.uid;
    trace.comm = args.comm;
    trace.cgroup = args.cgroup;
    trace.duration = args.duration;
    trace.follow_forks = args.follow_forks;
    trace.buffer_size = args.buffer_size;
    trace.alerts = true;
    trace.alerts_only = true;
    trace.rules = args.rules;
    trace.command = args.command;
    crate::session::run(trace).context("monitor")
}

pub fn sources(args: &RuleArgs) -> RuleSources {
    RuleSources {
        builtin: !args.no_builtin_rules,
        files: args.files.clone(),
        deny_comm: args.deny_comm.clone(),
    }
}
