//! How a session ends: duration, signals; each prints the final line.

mod common;

use std::{
    io::{BufReader, Read as _},
    process::{Child, ChildStderr, Command, Stdio},
    time::{Duration, Instant},
};

use common::{TempDir, assert_no_drops, bin, require_root};

#[test]
fn duration_stops_the_tracer() {
    require_root();
    let dir = TempDir::new("duration");
    let start = Instant::now();
    let out = Command::new(bin())
        .args(["-d", "0.5", "-o"])
        .arg(dir.path("trace"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "stopped early"
    );
    assert!(err.contains("uringtrace: tracing all processes"), "{err}");
    assert_no_drops(&err);
}

/// Starts uringtrace with `args` and waits for its "tracing" line, after
/// which it is attached and handles signals.
fn start_tracer(args: &[&str], ready: &str) -> (Child, BufReader<ChildStderr>) {
    let mut tracer = Command::new(bin())
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(tracer.stderr.take().unwrap());
    common::read_until_line(&mut stderr, ready);
    (tracer, stderr)
}

/// Sends `signal` and returns the exit code and the rest of stderr.
fn signal_and_wait(
    mut tracer: Child,
    mut stderr: BufReader<ChildStderr>,
    signal: i32,
) -> (Option<i32>, String) {
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(tracer.id() as i32, signal) };
    let status = tracer.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    (status.code(), rest)
}

fn stops_on(signal: i32) {
    require_root();
    let dir = TempDir::new("signal");
    let out = dir.path("trace");
    let (tracer, stderr) = start_tracer(&["-o", out.to_str().unwrap()], "uringtrace: tracing");
    let (code, rest) = signal_and_wait(tracer, stderr, signal);
    assert_eq!(code, Some(0), "signal {signal}: {rest}");
    assert_no_drops(&rest);
}

#[test]
fn sigint_detaches_cleanly() {
    stops_on(libc::SIGINT);
}

#[test]
fn sigterm_detaches_cleanly() {
    stops_on(libc::SIGTERM);
}

#[test]
fn signal_to_the_tracer_reaches_the_command() {
    require_root();
    let dir = TempDir::new("forward");
    let out = dir.path("trace");
    let (tracer, stderr) = start_tracer(
        &["-o", out.to_str().unwrap(), "--", "sleep", "30"],
        "uringtrace: tracing command",
    );
    let start = Instant::now();
    let (code, rest) = signal_and_wait(tracer, stderr, libc::SIGTERM);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the command kept running"
    );
    // The command died of the forwarded SIGTERM; uringtrace reports that.
    assert_eq!(code, Some(128 + libc::SIGTERM), "{rest}");
    assert_no_drops(&rest);
}
