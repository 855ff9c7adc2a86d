//! The tracer against the workload engine's ground truth: every io_uring
//! system call the engine made appears exactly once, with identical fields,
//! in both output formats.

mod common;

use std::{
    io::{BufReader, Write as _},
    process::{Command, Stdio},
};

use common::{
    TempDir, assert_matches_truth, assert_no_drops, bin, read_ndjson, require_root, trace_scenario,
};
use serde_json::{Value, json};

fn scenarios() -> Vec<String> {
    let out = Command::new(bin())
        .args(["workload", "--list"])
        .output()
        .expect("uringtrace workload --list");
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(names.iter().any(|n| n == "tour"), "no tour in {names:?}");
    names
}

#[test]
fn tour_json_matches_ground_truth() {
    require_root();
    let dir = TempDir::new("tour-json");
    let run = trace_scenario(&dir, "tour", "json", &[]);
    assert_no_drops(&run.stderr);
    let trace = read_ndjson(&run.trace_path);
    assert_matches_truth(&run.truth, &trace);
    // The tour covers every call kind, failures included.
    for event in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
        assert!(
            run.truth.iter().any(|t| t["event"] == event),
            "tour makes no {event}"
        );
    }
    for errno in ["EBADF", "EOPNOTSUPP", "EINVAL", "EFAULT", "ETIME"] {
        assert!(
            trace.iter().any(|e| e["errno"] == errno),
            "no call failed with {errno} in the tour"
        );
    }
}

#[test]
fn every_scenario_matches_ground_truth() {
    require_root();
    let dir = TempDir::new("scenarios");
    for name in scenarios() {
        if name == "tour" {
            continue;
        }
        // The system call hooks only: 30 attaches and detaches of every
        // hook do not fit the VM suite's time limit under emulation, and
        // tests/requests.rs covers the requests scenario by scenario.
        let run = trace_scenario(&dir, &name, "json", &["-e", "syscalls"]);
        common::note_engine_skips(&run.skipped);
        assert_no_drops(&run.stderr);
        assert_matches_truth(&run.truth, &read_ndjson(&run.trace_path));
    }
}

#[test]
fn failed_only_keeps_exactly_the_failures() {
    require_root();
    let dir = TempDir::new("failed");
    let run = trace_scenario(&dir, "tour", "json", &["-x"]);
    let trace = read_ndjson(&run.trace_path);
    let failures: Vec<Value> = run
        .truth
        .iter()
        .filter(|t| t["ret"].as_i64().is_some_and(|r| r < 0))
        .cloned()
        .collect();
    assert!(!failures.is_empty());
    assert_matches_truth(&failures, &trace);
    // Request events under -x are failures too (tests/requests.rs checks
    // them against the truth).
    for e in &trace {
        let failed = match (e["ret"].as_i64(), e["res"].as_i64()) {
            (Some(ret), _) => ret < 0,
            (None, Some(res)) => res < 0,
            (None, None) => e["event"] == "failed" || e["event"] == "fail_link",
        };
        assert!(failed, "not a failure: {e}");
    }
}

/// Flag names of io_uring_enter, from include/uapi/linux/io_uring.h; kept
/// apart from the tracer's table so the text test checks it.
const ENTER_FLAG_BITS: [(&str, u64); 8] = [
    ("IORING_ENTER_GETEVENTS", 1 << 0),
    ("IORING_ENTER_SQ_WAKEUP", 1 << 1),
    ("IORING_ENTER_SQ_WAIT", 1 << 2),
    ("IORING_ENTER_EXT_ARG", 1 << 3),
    ("IORING_ENTER_REGISTERED_RING", 1 << 4),
    ("IORING_ENTER_ABS_TIMER", 1 << 5),
    ("IORING_ENTER_EXT_ARG_REG", 1 << 6),
    ("IORING_ENTER_NO_IOWAIT", 1 << 7),
];

fn flag_bits(rendered: &str) -> u64 {
    if rendered == "0" {
        return 0;
    }
    rendered
        .split('|')
        .map(|name| {
            ENTER_FLAG_BITS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| *b)
                .or_else(|| u64::from_str_radix(name.trim_start_matches("0x"), 16).ok())
                .unwrap_or_else(|| panic!("unknown flag {name:?} in {rendered:?}"))
        })
        .fold(0, |a, b| a | b)
}

/// Splits `a, {b, c}, [d e], f` at top-level commas.
fn split_args(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().unwrap().push(c);
    }
    out.into_iter().map(|a| a.trim().to_string()).collect()
}

/// A text line back into the fields the ground truth has.
fn parse_text_line(line: &str) -> Value {
    let mut it = line.splitn(4, ' ');
    let _time = it.next().unwrap();
    let (pid, tid) = it.next().unwrap().split_once('/').expect("pid/tid");
    let _comm = it.next().unwrap();
    let call = it.next().unwrap();
    let (name, rest) = call.split_once('(').expect("call(");
    let cut = rest.rfind(") = ").expect(") = ");
    let args = split_args(&rest[..cut]);
    let result = &rest[cut + 4..];
    let ret = if let Some(err) = result.strip_prefix("-1 ") {
        // "-1 EBADF (Bad file descriptor) <..>": the message identifies the
        // errno independently of the tracer's name table.
        let msg = &err[err.find('(').unwrap() + 1..err.find(')').unwrap()];
        let errno = (1..4096)
            .find(|&e| {
                let s = std::io::Error::from_raw_os_error(e).to_string();
                s.strip_suffix(&format!(" (os error {e})")) == Some(msg)
            })
            .unwrap_or_else(|| panic!("unknown error message {msg:?}"));
        -i64::from(errno)
    } else {
        result.split_whitespace().next().unwrap().parse().unwrap()
    };
    let num = |s: &str| -> u64 {
        if s == "NULL" {
            0
        } else if let Some(h) = s.strip_prefix("0x") {
            u64::from_str_radix(h, 16).unwrap_or_else(|e| panic!("{s:?}: {e} in {line}"))
        } else {
            s.trim_start_matches("ring_index=")
                .parse()
                .unwrap_or_else(|e| panic!("{s:?}: {e} in {line}"))
        }
    };
    let mut v = json!({"event": name, "pid": pid.parse::<u64>().unwrap(),
                       "tid": tid.parse::<u64>().unwrap(), "ret": ret});
    match name {
        "io_uring_enter" => {
            v["fd"] = json!(num(&args[0]));
            v["to_submit"] = json!(num(&args[1]));
            v["min_complete"] = json!(num(&args[2]));
            v["flags"] = json!(flag_bits(&args[3]));
            v["argsz"] = json!(num(&args[5]));
        }
        "io_uring_register" => {
            v["fd"] = json!(num(&args[0]));
            v["arg"] = json!(num(&args[2]));
            v["nr_args"] = json!(num(&args[3]));
        }
        "io_uring_setup" => {
            v["entries"] = json!(num(&args[0]));
        }
        other => panic!("unexpected call {other}"),
    }
    v
}

/// Keeps only the ground-truth fields the text parser recovers.
fn text_view(truth: &Value) -> Value {
    let keep: &[&str] = match truth["event"].as_str().unwrap() {
        "io_uring_enter" => &["fd", "to_submit", "min_complete", "flags", "argsz"],
        "io_uring_register" => &["fd", "arg", "nr_args"],
        _ => &["entries"],
    };
    let mut v = json!({"event": truth["event"], "pid": truth["pid"], "tid": truth["tid"],
                       "ret": truth["ret"], "note": truth["note"]});
    for k in keep {
        if let Some(x) = truth.get(*k) {
            v[*k] = x.clone();
        }
    }
    v
}

#[test]
fn tour_text_matches_ground_truth() {
    require_root();
    let dir = TempDir::new("tour-text");
    let run = trace_scenario(&dir, "tour", "text", &["-e", "syscalls"]);
    assert_no_drops(&run.stderr);
    let text = std::fs::read_to_string(&run.trace_path).unwrap();
    // `# stats` lines are about the tracer (tests/stream.rs).
    let trace: Vec<Value> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(parse_text_line)
        .collect();
    let truth: Vec<Value> = run.truth.iter().map(text_view).collect();
    assert_matches_truth(&truth, &trace);
}

#[test]
fn pid_filter_sees_only_its_process() {
    require_root();
    let dir = TempDir::new("pid-filter");
    let spawn = |name: &str| {
        Command::new(bin())
            .args(["workload", "submit", "--wait-stdin", "--report"])
            .arg(dir.path(name))
            .stdin(Stdio::piped())
            .spawn()
            .expect("starting a workload")
    };
    let mut a = spawn("a.truth");
    let mut b = spawn("b.truth");
    let trace_path = dir.path("a.trace");
    let mut tracer = Command::new(bin())
        .args(["-f", "json", "-p", &a.id().to_string(), "-o"])
        .arg(&trace_path)
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting uringtrace");
    let mut stderr = BufReader::new(tracer.stderr.take().unwrap());
    common::read_until_line(&mut stderr, "uringtrace: tracing pid");
    for w in [&mut a, &mut b] {
        w.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    // The tracer stops by itself once its only process is gone.
    let status = tracer.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert_no_drops(&rest);
    let trace = read_ndjson(&trace_path);
    let truth_a = read_ndjson(&dir.path("a.truth"));
    let truth_b = read_ndjson(&dir.path("b.truth"));
    assert_matches_truth(&truth_a, &trace);
    let b_pid = truth_b[0]["pid"].as_u64().unwrap();
    assert!(
        trace.iter().all(|e| e["pid"].as_u64() != Some(b_pid)),
        "the other workload (pid {b_pid}) leaked into the trace"
    );
    assert!(
        trace.iter().all(|e| e["pid"] == truth_a[0]["pid"]),
        "the trace has calls of processes other than the traced one"
    );
}

#[test]
fn follows_forks_of_the_command() {
    require_root();
    let dir = TempDir::new("forks");
    let trace_path = dir.path("trace");
    let truth_path = dir.path("truth");
    // sh forks the workload: its calls must be traced from the first one.
    let script = format!(
        "{} workload submit --report {} && exit 0",
        bin(),
        truth_path.display()
    );
    let out = Command::new(bin())
        .args(["-f", "json", "-o"])
        .arg(&trace_path)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_no_drops(&err);
    assert_matches_truth(&read_ndjson(&truth_path), &read_ndjson(&trace_path));
}

/// A call already in the kernel when the tracer attaches is still reported,
/// with its real result, marked `entry_missing` instead of dropped.
#[test]
fn call_in_flight_at_attach_is_reported() {
    require_root();
    let dir = TempDir::new("in-flight");
    let truth_path = dir.path("truth");
    let mut workload = Command::new(bin())
        .args(["workload", "long-wait", "--report"])
        .arg(&truth_path)
        .spawn()
        .unwrap();
    // The report is written call by call: once the setup line is there the
    // 5 s wait is about to start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_to_string(&truth_path).map_or(true, |t| t.lines().count() < 1) {
        assert!(
            std::time::Instant::now() < deadline,
            "workload did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let trace_path = dir.path("trace");
    let tracer = Command::new(bin())
        // Only the system call hooks: attaching must fit in the 5 s wait,
        // also on a loaded machine.
        .args([
            "-f",
            "json",
            "-e",
            "syscalls",
            "-p",
            &workload.id().to_string(),
            "-o",
        ])
        .arg(&trace_path)
        .output()
        .unwrap();
    assert!(workload.wait().unwrap().success());
    let err = String::from_utf8_lossy(&tracer.stderr);
    assert!(tracer.status.success(), "{err}");
    assert_no_drops(&err);
    assert!(
        err.contains("; 1 calls seen only at exit"),
        "the final line must count the call whose entry was missed: {err}"
    );
    // Calls only: before 5.11 the wait is ended by a TIMEOUT request, which
    // has a line of its own.
    let truth: Vec<Value> = read_ndjson(&truth_path)
        .into_iter()
        .filter(|t| t["event"] != "submit")
        .collect();
    let trace = read_ndjson(&trace_path);
    assert_eq!(truth.len(), 2, "setup and one wait: {truth:?}");
    assert_eq!(trace.len(), 1, "only the wait is traced: {trace:?}");
    let (want, got) = (&truth[1], &trace[0]);
    assert_eq!(got["event"], "io_uring_enter");
    assert_eq!(got["entry_missing"], true);
    assert_eq!(got["pid"], want["pid"]);
    assert_eq!(got["tid"], want["tid"]);
    assert_eq!(got["ret"], want["ret"]);
    if want["ret"] == -i64::from(libc::ETIME) {
        assert_eq!(got["errno"], "ETIME");
    }
    assert!(
        got.get("fd").is_none(),
        "arguments of a missed entry are unknown"
    );
}

/// The test helpers' own contract: program runs the kernel skipped, as the
/// tracer reports them, excuse that many calls (missing, or seen only at
/// exit with the right result) and no more; without them the same trace
/// fails.
#[test]
fn skipped_program_runs_excuse_only_as_many_calls() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let call = |event: &str, ret: i64| json!({"event": event, "pid": 1, "tid": 1, "ret": ret});
    let mut setup = call("io_uring_setup", 3);
    setup["entries"] = json!(8);
    let mut enter = call("io_uring_enter", 1);
    enter["fd"] = json!(3);
    let truth = [setup, enter.clone()];
    let mut exit_only = call("io_uring_setup", 3);
    exit_only["entry_missing"] = json!(true);
    let trace = [exit_only, enter.clone()];
    let fails = |trace: &[Value]| {
        catch_unwind(AssertUnwindSafe(|| assert_matches_truth(&truth, trace))).is_err()
    };
    assert!(
        fails(&trace),
        "an exit-only call passed without a skipped run"
    );
    assert_no_drops(
        "uringtrace: 2 events, 2 written, 1 dropped (ring buffer full: 0, output queue full: 0, undecodable: 0, programs not run: 1)",
    );
    assert!(!fails(&trace));
    assert!(
        !fails(&[enter.clone()]),
        "one missing call, one skipped run"
    );
    assert!(fails(&[]), "two calls missing, one skipped run");
    let mut wrong = call("io_uring_setup", 4);
    wrong["entry_missing"] = json!(true);
    assert!(
        fails(&[wrong, enter]),
        "an exit-only call with another result"
    );
    // Other drops are never excused.
    assert!(
        catch_unwind(|| assert_no_drops(
            "uringtrace: 2 events, 1 written, 2 dropped (ring buffer full: 1, output queue full: 0, undecodable: 0, programs not run: 1)"
        ))
        .is_err()
    );
}
