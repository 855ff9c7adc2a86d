//! Load+attach time: from starting the tracer to its saying it traces.
//! uringtrace says `uringtrace: tracing ...` on stderr once every hook is
//! attached and the command started; bpftrace runs BEGIN (which prints
//! `ready`) after attaching every probe and starting the command. Each
//! traces an idle `sleep` and is stopped with SIGINT, as a user would.

use std::{
    fs::File,
    io::{BufRead as _, BufReader, Read as _},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::{configs, runner::Runner};

/// Start-to-ready times, in milliseconds, in the order measured.
#[derive(Debug, Clone, Default)]
pub struct AttachTimes {
    pub uringtrace_ms: Vec<f64>,
    pub bpftrace_ms: Vec<f64>,
}

/// Measures each tracer `rounds` times, alternating which goes first.
pub fn measure(runner: &Runner, rounds: u32) -> anyhow::Result<AttachTimes> {
    let mut times = AttachTimes::default();
    for round in 0..rounds {
        let uringtrace_first = round % 2 == 0;
        for first in [true, false] {
            if first == uringtrace_first {
                let ms = time_to_ready(
                    configs::uringtrace_idle(runner.uringtrace()),
                    Stream::Stderr,
                    "uringtrace: tracing",
                    runner,
                )
                .context("uringtrace's load+attach time")?;
                times.uringtrace_ms.push(ms);
            } else {
                let ms = time_to_ready(configs::bpftrace_idle()?, Stream::Stdout, "ready", runner)
                    .context("bpftrace's load+attach time")?;
                times.bpftrace_ms.push(ms);
            }
        }
        println!(
            "bench: load+attach round {}: uringtrace {:.0} ms, bpftrace {:.0} ms",
            round + 1,
            times.uringtrace_ms.last().copied().unwrap_or(f64::NAN),
            times.bpftrace_ms.last().copied().unwrap_or(f64::NAN),
        );
    }
    Ok(times)
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Starts `cmd`, reads `stream` until a line starting with `ready`, stops
/// the tracer with SIGINT and waits for it. Returns start-to-ready in ms.
fn time_to_ready(
    mut cmd: Command,
    stream: Stream,
    ready: &str,
    runner: &Runner,
) -> anyhow::Result<f64> {
    thread::sleep(Duration::from_millis(200));
    runner.wait_for_quiet()?;
    let other = runner.work_dir().join("attach-other-stream");
    let other_file =
        File::create(&other).with_context(|| format!("creating {}", other.display()))?;
    cmd.stdin(Stdio::null());
    match stream {
        Stream::Stdout => cmd.stdout(Stdio::piped()).stderr(other_file),
        Stream::Stderr => cmd.stdout(other_file).stderr(Stdio::piped()),
    };
    let shown = format!("{cmd:?}");
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("cannot run {shown}"))?;
    let pipe: Box<dyn std::io::Read + Send> = match stream {
        Stream::Stdout => Box::new(child.stdout.take().context("no stdout pipe")?),
        Stream::Stderr => Box::new(child.stderr.take().context("no stderr pipe")?),
    };
    let mut reader = BufReader::new(pipe);
    let mut seen = String::new();
    let mut line = String::new();
    let elapsed = loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("reading the output of {shown}"))?;
        if n == 0 {
            let _ = child.wait();
            bail!("{shown} ended before it was ready:\n{seen}");
        }
        if line.starts_with(ready) {
            break started.elapsed();
        }
        seen.push_str(&line);
    };
    // Read the rest on the side, so the tracer never blocks on a full pipe
    // while it tears down.
    let rest = thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        rest
    });
    let status = stop(&mut child).with_context(|| format!("stopping {shown}"))?;
    // A command the tracer left running would hold the pipe open: its
    // output is only for an error message, not worth waiting long for.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rest.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let rest = if rest.is_finished() {
        rest.join().unwrap_or_default()
    } else {
        Vec::new()
    };
    // SIGINT is how both are meant to be stopped; bpftrace exits 0 then,
    // uringtrace with the command's status (killed by SIGINT: 130).
    if !status.success() && status.code() != Some(130) {
        bail!(
            "{shown} failed after SIGINT ({status}):\n{seen}{}",
            String::from_utf8_lossy(&rest)
        );
    }
    Ok(elapsed.as_secs_f64() * 1e3)
}

/// SIGINT until the tracer exits. One can be lost: bpftrace 0.17 checks
/// for it and then waits in epoll_wait, and a SIGINT landing in between
/// leaves it waiting for events that an idle command never makes; the
/// next SIGINT interrupts the wait.
fn stop(child: &mut Child) -> anyhow::Result<ExitStatus> {
    const AGAIN_AFTER: Duration = Duration::from_secs(1);
    const GIVE_UP: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let mut last = None::<Instant>;
    loop {
        if let Some(status) = child.try_wait().context("waiting for the tracer")? {
            return Ok(status);
        }
        if started.elapsed() > GIVE_UP {
            let _ = child.kill();
            bail!("still running {GIVE_UP:?} after SIGINT: killed");
        }
        if last.is_none_or(|t| t.elapsed() >= AGAIN_AFTER) {
            crate::run::status(Command::new("kill").args(["-INT", &child.id().to_string()]))?;
            last = Some(Instant::now());
        }
        thread::sleep(Duration::from_millis(10));
    }
}
