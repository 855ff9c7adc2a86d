//! Bad input gets a clear message and a non-zero exit, never a panic.

mod common;

use std::{os::unix::process::CommandExt as _, process::Command};

use common::{TempDir, bin, require_root};

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("running uringtrace");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "uringtrace panicked on {args:?}:\n{stderr}"
    );
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn unknown_pid() {
    require_root();
    // Above the kernel's pid_max limit (4194304), so never a live process.
    let (code, err) = run(&["-p", "999999999"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no such process: 999999999"), "{err}");
}

#[test]
fn unwritable_output() {
    require_root();
    let (code, err) = run(&["-o", "/nonexistent-dir/trace.out", "-d", "0.1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot write the output file /nonexistent-dir/trace.out"),
        "{err}"
    );
}

#[test]
fn bad_flags_and_values() {
    for (args, needle) in [
        (&["--buffer-size", "5000"][..], "not a power of two"),
        (&["-f", "xml"][..], "invalid value 'xml'"),
        (&["--no-such-flag"][..], "unexpected argument"),
        (&["-p", "abc"][..], "invalid digit"),
    ] {
        let (code, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, err) = run(&["-d", "-3"]);
    assert_ne!(code, 0, "{err}");
}

#[test]
fn pid_and_command_together() {
    require_root();
    let (code, err) = run(&["-p", "1", "--", "true"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("either -p PID or a command"), "{err}");
}

#[test]
fn command_that_does_not_exist() {
    require_root();
    let (code, err) = run(&["--", "/nonexistent/program"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot start `/nonexistent/program`"), "{err}");
}

#[test]
fn exit_status_of_the_command() {
    require_root();
    let (code, err) = run(&["--", "sh", "-c", "exit 7"]);
    assert_eq!(code, 7, "{err}");
    let (code, err) = run(&["--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(code, 128 + libc::SIGTERM, "{err}");
}

#[test]
fn without_privilege() {
    require_root();
    let dir = TempDir::new("noprivilege");
    let out = Command::new(bin())
        .args(["-d", "0.1"])
        .current_dir(dir.path(""))
        .uid(65534)
        .gid(65534)
        .output()
        .expect("running uringtrace as nobody");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not enough privilege to trace"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_scenario() {
    let (code, err) = run(&["workload", "no-such-scenario"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("tour"), "the error lists the scenarios: {err}");
}
