//! The `evasion` scenario does what the 2025 "curing" rootkit showed
//! syscall monitors miss: it opens and reads /etc/passwd, connects to a
//! listener and sends what it read, all through io_uring. uringtrace must
//! show each of those operations with its path or address and raise the
//! matching alerts, while a syscall-only trace of the same run (ftrace's
//! syscall events, what openat/connect monitoring watches) sees none.

mod common;

use std::{
    io::{BufReader, Write as _},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{TempDir, bin, read_ndjson, read_truth, read_until_line, require_root};
use serde_json::Value;

/// The system calls a syscall monitor would watch for these operations.
const WATCHED: &[&str] = &[
    "open", "openat", "openat2", "read", "pread64", "readv", "connect", "accept", "accept4",
    "sendto", "sendmsg", "recvfrom", "recvmsg",
];

/// An ftrace instance with syscall entry events for one pid: a syscall-only
/// tracer of its own, independent of uringtrace. Removed on drop.
struct SyscallTrace {
    dir: PathBuf,
    enabled: Vec<PathBuf>,
}

impl SyscallTrace {
    fn start(pid: u32, calls: &[&str]) -> Self {
        let root = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .iter()
            .map(PathBuf::from)
            .find(|r| r.join("instances").is_dir())
            .expect("tracefs with instances");
        let dir = root.join(format!("instances/uringtrace-evasion-{pid}"));
        std::fs::create_dir(&dir).expect("creating an ftrace instance");
        let mut trace = Self {
            dir,
            enabled: Vec::new(),
        };
        std::fs::write(trace.dir.join("set_event_pid"), pid.to_string()).unwrap();
        for call in calls {
            let enable = trace
                .dir
                .join(format!("events/syscalls/sys_enter_{call}/enable"));
            // A call this architecture does not have (open on arm64).
            if enable.exists() {
                std::fs::write(&enable, "1").unwrap();
                trace.enabled.push(enable);
            }
        }
        trace
    }

    /// The event lines recorded so far (the header's `#` lines left out).
    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("trace"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for SyscallTrace {
    fn drop(&mut self) {
        for enable in &self.enabled {
            let _ = std::fs::write(enable, "0");
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn evasion_is_visible_and_alerted_where_syscall_tracing_sees_nothing() {
    require_root();
    let test = "evasion_is_visible_and_alerted_where_syscall_tracing_sees_nothing";
    let dir = TempDir::new("evasion");
    let truth_path = dir.path("truth");
    let trace_path = dir.path("trace");
    // The workload waits on stdin once its report is open: from then on its
    // only system calls are the scenario's.
    let mut workload = Command::new(bin())
        .args(["workload", "evasion", "--wait-stdin", "--report"])
        .arg(&truth_path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = workload.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !truth_path.exists() {
        assert!(Instant::now() < deadline, "the workload did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));

    // The control: io_uring_enter is watched too, so an empty result for
    // the others means they were not made, not that nothing was recorded.
    let mut calls = WATCHED.to_vec();
    calls.push("io_uring_enter");
    let syscalls = SyscallTrace::start(pid, &calls);
    let mut tracer = Command::new(bin())
        .args(["-f", "json", "--alerts", "-p", &pid.to_string(), "-o"])
        .arg(&trace_path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(tracer.stderr.take().unwrap());
    let before = read_until_line(&mut stderr, "uringtrace: tracing pid");
    workload.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(workload.wait().unwrap().success(), "the workload failed");
    let status = tracer.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let stderr = before.concat() + &rest;
    assert!(status.success(), "uringtrace failed:\n{stderr}");
    common::assert_no_drops(&stderr);
    let seen_by_syscalls = syscalls.lines();
    drop(syscalls);

    let (skipped, truth) = read_truth(&truth_path);
    assert!(skipped.is_empty(), "{skipped:?}");
    let enters = truth
        .iter()
        .filter(|t| t["event"] == "io_uring_enter")
        .count();
    let (control, others): (Vec<&String>, Vec<&String>) = seen_by_syscalls
        .iter()
        .partition(|l| l.contains("sys_io_uring_enter("));
    assert_eq!(
        control.len(),
        enters,
        "the syscall trace missed io_uring_enter calls: {seen_by_syscalls:#?}"
    );
    assert!(
        others.is_empty(),
        "the scenario made system calls a syscall monitor sees: {others:#?}"
    );

    if common::skipped_without_objects(test, &stderr) {
        return;
    }
    let trace = read_ndjson(&trace_path);
    let submits: Vec<&Value> = truth.iter().filter(|t| t["event"] == "submit").collect();
    assert_eq!(submits.len(), 8, "the scenario changed: {submits:#?}");
    for want in &submits {
        let got = trace
            .iter()
            .find(|e| e["event"] == "submit" && e["user_data"] == want["user_data"])
            .unwrap_or_else(|| panic!("not traced: {want}"));
        for field in [
            "opcode_name",
            "pid",
            "ring_fd",
            "fd",
            "dfd",
            "path",
            "open_flags",
            "addr",
            "family",
            "len",
            "offset",
        ] {
            if let Some(v) = want.get(field) {
                assert_eq!(got.get(field), Some(v), "{field}: {got}");
            }
        }
        let done = trace
            .iter()
            .find(|e| e["event"] == "complete" && e["user_data"] == want["user_data"])
            .unwrap_or_else(|| panic!("no completion for {want}"));
        assert_eq!(done["res"], want["res"], "{done}");
    }

    let alerts: Vec<&Value> = trace.iter().filter(|e| e["event"] == "alert").collect();
    let alert_for = |rule: &str, opcode: &str| -> (&Value, &Value) {
        let want = submits
            .iter()
            .find(|t| t["opcode_name"] == opcode)
            .copied()
            .unwrap_or_else(|| panic!("no {opcode} in the truth"));
        let fired: Vec<&&Value> = alerts.iter().filter(|a| a["rule"] == rule).collect();
        assert_eq!(fired.len(), 1, "{rule}: {fired:#?}");
        (fired[0], want)
    };
    let (open, want) = alert_for("file-open", "IORING_OP_OPENAT");
    assert_eq!(open["path"], "/etc/passwd", "{open}");
    assert_eq!(open["pid"], want["pid"], "{open}");
    assert_eq!(open["user_data"], want["user_data"], "{open}");
    let (connect, want) = alert_for("net-connect", "IORING_OP_CONNECT");
    assert_eq!(connect["addr"], want["addr"], "{connect}");
    assert_eq!(connect["pid"], want["pid"], "{connect}");
    for alert in [open, connect] {
        assert!(alert["mitre"].as_str().is_some_and(|m| m.starts_with('T')));
    }
}
