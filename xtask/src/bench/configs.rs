//! The configurations measured, each as the command line that runs the
//! engine's NOP storm under it: the engine pinned to CPU 0 (`nice` and
//! `taskset` exec it, so it keeps the traced pid), the tracer to CPU 1.

use std::{path::Path, process::Command};

use anyhow::{Context as _, bail};

/// NOPs per io_uring_enter.
pub const BATCHES: [u32; 3] = [1, 8, 32];

const ENGINE_CPU: &str = "0";
const TRACER_CPU: &str = "1";

/// Engine and tracer run at nice -20, in a session of their own whose
/// autogroup is at nice -20 too (with sched_autogroup, nice only ranks
/// tasks within a session): on a machine shared with builds and VMs, a
/// nice-0 task on the same CPU then gets about 1% of it instead of half,
/// so the runs measure the tracers rather than the neighbours (every
/// configuration alike; RT priority would starve the kernel's own per-CPU
/// threads for whole runs).
const NICE: &str = "-20";

/// Run by `sh` in the new session before it execs the command: the
/// session's autogroup gets its nice (no autogroups: nothing to do).
const AUTOGROUP_NICE: &str =
    "{ printf '%s\\n' -20 > /proc/self/autogroup; } 2>/dev/null; exec \"$@\"";

/// The event set of every tracer: io_uring_enter (entry and exit), each
/// request's submission and each CQE. uringtrace's `enter` is one record
/// per call, made at exit; bpftrace fires on both.
const URINGTRACE_EVENTS: &str = "enter,submit,complete";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Config {
    /// The engine alone.
    U,
    /// uringtrace's hooks with empty programs.
    K0,
    /// uringtrace's hooks reserving and submitting a record of the full
    /// size, drained by a consumer that only counts: the bare limit.
    K1,
    /// K1 plus the clock read that stamps every real record: how much of
    /// T's cost over K1 is the timestamp alone.
    K1c,
    /// uringtrace, every event decoded and written as JSON to /dev/null.
    T,
    /// uringtrace's summary mode (`-c`): aggregated in the kernel.
    TSum,
    /// bpftrace counting each probe.
    B1,
    /// bpftrace printing the same fields uringtrace decodes.
    B2,
    /// strace on io_uring_enter.
    S,
}

/// The process that traces, for parsing its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracer {
    Uringtrace,
    Bpftrace,
    Strace,
}

impl Config {
    pub const ALL: [Self; 9] = [
        Self::U,
        Self::K0,
        Self::K1,
        Self::K1c,
        Self::T,
        Self::TSum,
        Self::B1,
        Self::B2,
        Self::S,
    ];

    /// Every configuration, starting at a different one each round so none
    /// always runs right after the same other (a tracer's teardown can
    /// still be settling when the next run starts).
    pub fn rotated(round: u32) -> impl Iterator<Item = Self> {
        let n = Self::ALL.len();
        let skip = round as usize % n;
        Self::ALL.iter().copied().cycle().skip(skip).take(n)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::U => "U",
            Self::K0 => "K0",
            Self::K1 => "K1",
            Self::K1c => "K1c",
            Self::T => "T",
            Self::TSum => "T-sum",
            Self::B1 => "B1",
            Self::B2 => "B2",
            Self::S => "S",
        }
    }

    /// One line for the results.
    pub fn about(self) -> &'static str {
        match self {
            Self::U => "the engine alone, untraced",
            Self::K0 => "uringtrace's hooks, empty programs (--hook-mode empty)",
            Self::K1 => {
                "uringtrace's hooks reserving and submitting a record of the same size, \
                 consumer only counts (--hook-mode reserve)"
            }
            Self::K1c => {
                "K1, each record stamped with the clock as a real one is \
                 (--hook-mode reserve-clock)"
            }
            Self::T => "uringtrace -f json -o /dev/null -e enter,submit,complete",
            Self::TSum => "uringtrace -c -e enter,submit,complete (summary, in-kernel aggregation)",
            Self::B1 => "bpftrace, count() on the same tracepoints",
            Self::B2 => "bpftrace, printf of the same fields (output to a tmpfs file)",
            Self::S => "strace -f -e trace=io_uring_enter -o /dev/null",
        }
    }

    pub fn tracer(self) -> Option<Tracer> {
        match self {
            Self::U => None,
            Self::K0 | Self::K1 | Self::K1c | Self::T | Self::TSum => Some(Tracer::Uringtrace),
            Self::B1 | Self::B2 => Some(Tracer::Bpftrace),
            Self::S => Some(Tracer::Strace),
        }
    }
}

/// A program's full path: bpftrace's -c wants one, and refuses a bare name
/// that PATH resolves twice (/bin and /usr/bin on a merged /usr).
fn full_path(program: &str) -> anyhow::Result<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .with_context(|| format!("no {program} in PATH"))
}

/// The engine's command line: `nice -n -20 taskset -c 0 uringtrace
/// workload nop-bench ...`.
pub fn engine_args(
    uringtrace: &Path,
    batch: u32,
    seconds: f64,
    rate: Option<f64>,
) -> anyhow::Result<Vec<String>> {
    let mut args = vec![
        full_path("nice")?,
        "-n".to_string(),
        NICE.to_string(),
        full_path("taskset")?,
        "-c".to_string(),
        ENGINE_CPU.to_string(),
        uringtrace.display().to_string(),
        "workload".to_string(),
        "nop-bench".to_string(),
        "--batch".to_string(),
        batch.to_string(),
        "--seconds".to_string(),
        seconds.to_string(),
    ];
    if let Some(rate) = rate {
        args.extend(["--rate".to_string(), format!("{rate:.0}")]);
    }
    Ok(args)
}

/// The probe on each tracepoint: `BODY` is the action. Filtered on the
/// command's pid (`cpid`), as uringtrace filters on the traced process.
/// BEGIN prints `ready` once every probe is attached (bpftrace 0.17 fires
/// it after attaching the others and starting the command).
fn bpftrace_script(enter: &str, exit: &str, submit: &str, complete: &str) -> String {
    format!(
        "BEGIN {{ printf(\"ready\\n\"); }}\n\
         tracepoint:syscalls:sys_enter_io_uring_enter /pid == cpid/ {{ {enter} }}\n\
         tracepoint:syscalls:sys_exit_io_uring_enter /pid == cpid/ {{ {exit} }}\n\
         tracepoint:io_uring:io_uring_submit_req /pid == cpid/ {{ {submit} }}\n\
         tracepoint:io_uring:io_uring_complete /pid == cpid/ {{ {complete} }}\n"
    )
}

/// B1: a count per probe (per-CPU maps, printed at exit).
pub fn bpftrace_count_script() -> String {
    bpftrace_script(
        "@enter = count();",
        "@exit = count();",
        "@submit = count();",
        "@complete = count();",
    )
}

/// Lines of the B2 script start with this, so they can be counted apart
/// from the engine's result line and bpftrace's own.
pub const PRINTF_TAG: &str = "ev ";

/// B2: one line per probe with the fields uringtrace reports for it.
pub fn bpftrace_printf_script() -> String {
    bpftrace_script(
        "printf(\"ev %d %d enter fd=%u to_submit=%u min_complete=%u flags=%x argp=%lx argsz=%lu\\n\", \
         pid, tid, args->fd, args->to_submit, args->min_complete, args->flags, args->argp, args->argsz);",
        "printf(\"ev %d %d exit ret=%ld\\n\", pid, tid, args->ret);",
        "printf(\"ev %d %d submit ring=%p req=%p user_data=%llx opcode=%u flags=%llx\\n\", \
         pid, tid, args->ctx, args->req, args->user_data, args->opcode, args->flags);",
        "printf(\"ev %d %d complete ring=%p req=%p user_data=%llx res=%d cflags=%x\\n\", \
         pid, tid, args->ctx, args->req, args->user_data, args->res, args->cflags);",
    )
}

/// uringtrace's arguments for `config` (before `--`).
fn uringtrace_args(config: Config) -> &'static [&'static str] {
    match config {
        Config::K0 => &["--hook-mode", "empty", "-o", "/dev/null"],
        Config::K1 => &["--hook-mode", "reserve", "-o", "/dev/null"],
        Config::K1c => &["--hook-mode", "reserve-clock", "-o", "/dev/null"],
        Config::T => &["-f", "json", "-o", "/dev/null"],
        Config::TSum => &["-c", "-o", "/dev/null"],
        _ => &[],
    }
}

/// The command that runs `engine` (from [`engine_args`]) under `config`.
pub fn command(config: Config, uringtrace: &Path, engine: &[String]) -> anyhow::Result<Command> {
    let (program, rest) = engine.split_first().context("empty engine command")?;
    let cmd = match config.tracer() {
        None => {
            let mut cmd = own_session();
            cmd.arg(program).args(rest);
            cmd
        }
        Some(Tracer::Uringtrace) => {
            let mut cmd = pinned_tracer();
            cmd.arg(uringtrace)
                .args(uringtrace_args(config))
                .args(["-e", URINGTRACE_EVENTS, "--"])
                .args(engine);
            cmd
        }
        Some(Tracer::Bpftrace) => {
            // bpftrace splits -c on spaces itself (no shell).
            if let Some(arg) = engine.iter().find(|a| a.contains(char::is_whitespace)) {
                bail!("bpftrace -c cannot pass `{arg}`: it has a space in it");
            }
            let script = match config {
                Config::B1 => bpftrace_count_script(),
                _ => bpftrace_printf_script(),
            };
            let mut cmd = pinned_tracer();
            cmd.args(["bpftrace", "-e", &script, "-c", &engine.join(" ")]);
            cmd
        }
        Some(Tracer::Strace) => {
            let mut cmd = pinned_tracer();
            cmd.args([
                "strace",
                "-f",
                "-e",
                "trace=io_uring_enter",
                "-o",
                "/dev/null",
                "--",
            ])
            .args(engine);
            cmd
        }
    };
    Ok(cmd)
}

/// `setsid` and the autogroup's nice (see [`NICE`]), ready for a command
/// line. `setsid` and `sh` exec it: it keeps the pid spawned.
fn own_session() -> Command {
    let mut cmd = Command::new("setsid");
    cmd.args(["sh", "-c", AUTOGROUP_NICE, "sh"]);
    cmd
}

/// `nice -n -20 taskset -c 1` in a session of its own, ready for the
/// tracer's command line.
pub fn pinned_tracer() -> Command {
    let mut cmd = own_session();
    cmd.args(["nice", "-n", NICE, "taskset", "-c", TRACER_CPU]);
    cmd
}

/// uringtrace's attach-time command line: the T configuration tracing a
/// command that does nothing until it is stopped.
pub fn uringtrace_idle(uringtrace: &Path) -> Command {
    let mut cmd = pinned_tracer();
    cmd.arg(uringtrace).args(uringtrace_args(Config::T)).args([
        "-e",
        URINGTRACE_EVENTS,
        "--",
        "sleep",
        "600",
    ]);
    cmd
}

/// bpftrace's attach-time command line: the B1 script over the same idle
/// command.
pub fn bpftrace_idle() -> anyhow::Result<Command> {
    let mut cmd = pinned_tracer();
    cmd.args(["bpftrace", "-e", &bpftrace_count_script(), "-c"])
        .arg(format!("{} 600", full_path("sleep")?));
    Ok(cmd)
}

/// Whether this uringtrace has the summary mode (T-sum): `Err` says why
/// not, and T-sum is reported as null with that reason.
pub fn summary_support(uringtrace: &Path) -> anyhow::Result<Result<(), String>> {
    let out = Command::new(uringtrace)
        .arg("--help")
        .output()
        .with_context(|| format!("cannot run {} --help", uringtrace.display()))?;
    let help = String::from_utf8_lossy(&out.stdout);
    Ok(if help.contains("--summary") {
        Ok(())
    } else {
        Err("this uringtrace has no summary mode (-c/--summary): T-sum not measured".to_string())
    })
}
