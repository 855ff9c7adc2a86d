//! `uringtrace check` against what this machine's files say: every answer
//! the report gives is derived here again, independently, from /proc, /sys
//! and uname, so the same tests hold on every kernel the VM suite boots.

mod common;

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use common::{TempDir, bin, require_root};
use serde_json::Value;

fn check(args: &[&str]) -> (Output, String, String) {
    let output = Command::new(bin())
        .arg("check")
        .args(args)
        .output()
        .expect("running uringtrace check");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "check {args:?} panicked:\n{stderr}"
    );
    (output, stdout, stderr)
}

fn check_json() -> Value {
    let (output, stdout, stderr) = check(&["-f", "json"]);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check -f json is not one JSON document ({e}):\n{stdout}"));
    assert_eq!(
        output.status.code(),
        Some(if report["verdict"]["syscalls_traceable"] == true {
            0
        } else {
            1
        }),
        "the exit status follows the verdict\n{stderr}"
    );
    report
}

fn command_output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The tracefs root with events in it, as the tracer looks for it (the
/// check mounts tracefs when nobody has, so run it first).
fn tracefs_root() -> PathBuf {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
        .expect("tracefs is mounted after uringtrace check")
}

fn tracepoint_exists(root: &Path, category: &str, name: &str) -> bool {
    root.join("events").join(category).join(name).is_dir()
}

fn str_list(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
        .collect()
}

#[test]
fn documented_fields_are_there() {
    require_root();
    let report = check_json();
    assert_eq!(report["schema_version"], 1);
    for field in [
        "kernel",
        "btf",
        "who",
        "privileges",
        "ring_buffer",
        "tracefs",
        "tracepoints",
        "program_types",
        "kprobe_pmu",
        "kprobe_targets",
        "events",
        "submit_kprobe",
        "verdict",
    ] {
        assert!(report.get(field).is_some(), "no `{field}` in {report:#}");
    }
    for probe in ["tracepoint", "tp_btf", "fentry", "kprobe"] {
        let probe = &report["program_types"][probe];
        for step in ["load", "attach"] {
            let outcome = &probe[step];
            match outcome["status"].as_str() {
                Some("ok") => {}
                Some("failed") => {
                    assert!(outcome["call"].is_string(), "{outcome}");
                    assert!(outcome["message"].is_string(), "{outcome}");
                    if let Some(errno) = outcome["errno"].as_i64() {
                        assert!(errno > 0, "{outcome}");
                        assert!(outcome["errno_name"].is_string(), "{outcome}");
                    }
                }
                Some("skipped") => assert!(outcome["reason"].is_string(), "{outcome}"),
                _ => panic!("{step} of {probe}: bad status"),
            }
        }
    }
    let privileges = &report["privileges"];
    assert_eq!(privileges["euid"], 0);
    assert_eq!(privileges["sufficient"], true);
    // The headers' source, and a reason exactly when it is the helpers.
    let who = &report["who"];
    match who["header_fields"].as_str() {
        Some("task_struct") => assert!(who["header_fields_reason"].is_null(), "{who}"),
        Some("helpers") => assert!(who["header_fields_reason"].is_string(), "{who}"),
        other => panic!("header_fields {other:?}"),
    }
    // With BTF on 5.11 or later, the plain loads are expected; a fallback
    // there is a regression (slower, and silent but for this report).
    if report["btf"]["present"] == true && kernel_at_least(&report, 5, 11) {
        assert_eq!(who["header_fields"], "task_struct", "{who}");
    }
}

/// Whether the report's kernel release is at least `major.minor`.
fn kernel_at_least(report: &Value, major: u32, minor: u32) -> bool {
    let release = report["kernel"]["release"].as_str().unwrap_or("");
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}

#[test]
fn kernel_release_is_uname() {
    let report = check_json();
    assert_eq!(
        report["kernel"]["release"],
        command_output("uname", &["-r"])
    );
    assert_eq!(
        report["kernel"]["machine"],
        command_output("uname", &["-m"])
    );
}

#[test]
fn btf_reported_iff_vmlinux_btf_exists() {
    let report = check_json();
    let exists = Path::new("/sys/kernel/btf/vmlinux").exists();
    assert_eq!(report["btf"]["present"], exists);
    if exists {
        assert!(
            report["btf"]["types"].as_u64().unwrap_or(0) > 1000,
            "{}",
            report["btf"]
        );
        // The tracing probes found their BTF targets in it.
        let tp_btf = &report["program_types"]["tp_btf"];
        if tp_btf["target"] == "btf_trace_io_uring_complete" {
            assert!(tp_btf["btf_id"].as_u64().unwrap_or(0) > 0, "{tp_btf}");
        }
    } else {
        assert_eq!(
            report["program_types"]["tp_btf"]["load"]["status"],
            "skipped"
        );
    }
    // Who ran a request: the kernel's flag and REQ_F_CREDS need BTF, and
    // without them the report says why.
    let who = &report["who"];
    match who["io_threads"].as_str() {
        Some("task_flags") => {
            assert!(exists, "{who}");
            assert!(who["task_flags_offset"].as_u64().is_some(), "{who}");
        }
        Some("name") => assert!(who["io_threads_reason"].is_string(), "{who}"),
        _ => panic!("io_threads: {who}"),
    }
    if who["creds_readable"] == true {
        assert!(exists && who["creds_bit"].as_u64().is_some(), "{who}");
    } else {
        assert!(who["creds_reason"].is_string(), "{who}");
    }
}

#[test]
fn tracepoints_match_tracefs() {
    require_root();
    let report = check_json();
    let root = tracefs_root();
    assert_eq!(report["tracefs"]["path"], root.display().to_string());
    assert!(
        ["mounted", "mounted_now"].contains(&report["tracefs"]["status"].as_str().unwrap_or("")),
        "{}",
        report["tracefs"]
    );
    let tracepoints = report["tracepoints"].as_array().expect("tracepoints");
    let mut listed = Vec::new();
    for tp in tracepoints {
        let category = tp["category"].as_str().expect("category");
        let names = str_list(&tp["names"]);
        let first_existing = names
            .iter()
            .find(|name| tracepoint_exists(&root, category, name));
        match first_existing {
            Some(name) => {
                assert_eq!(tp["status"], "present", "{tp}");
                assert_eq!(tp["name"], *name, "{tp}");
            }
            None => {
                assert_eq!(tp["status"], "absent", "{tp}");
                assert!(tp["name"].is_null(), "{tp}");
            }
        }
        listed.extend(names.iter().map(|n| format!("{category}:{n}")));
    }
    for call in ["setup", "enter", "register"] {
        for dir in ["enter", "exit"] {
            let name = format!("syscalls:sys_{dir}_io_uring_{call}");
            assert!(listed.contains(&name), "{name} not listed");
        }
    }
    for name in [
        "sched:sched_process_fork",
        "sched:sched_process_exit",
        "io_uring:io_uring_submit_req",
        "io_uring:io_uring_submit_sqe",
        "io_uring:io_uring_complete",
    ] {
        assert!(listed.contains(&name.to_string()), "{name} not listed");
    }
    assert_eq!(tracepoints.len(), 8 + 17);
}

#[test]
fn kprobe_pmu_matches_sysfs() {
    require_root();
    let report = check_json();
    let pmu = Path::new("/sys/bus/event_source/devices/kprobe");
    let reported = &report["kprobe_pmu"];
    assert_eq!(reported["present"], pmu.exists(), "{reported}");
    if pmu.exists() {
        let pmu_type: u64 = std::fs::read_to_string(pmu.join("type"))
            .expect("kprobe PMU type")
            .trim()
            .parse()
            .expect("a number");
        assert_eq!(reported["type"], pmu_type);
        // A kprobe on the io_uring_enter wrapper, as `--attach kprobe` makes.
        let kprobe = &report["program_types"]["kprobe"];
        let target = kprobe["target"].as_str().expect("kprobe target");
        let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("reading kallsyms");
        if kallsyms
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some(target))
        {
            assert_eq!(kprobe["load"]["status"], "ok", "{kprobe}");
            assert_eq!(kprobe["attach"]["status"], "ok", "{kprobe}");
        }
    } else {
        assert!(reported["type"].is_null());
        let attach = &report["program_types"]["kprobe"]["attach"];
        assert_ne!(
            attach["status"], "ok",
            "a kprobe attached without a PMU: {attach}"
        );
    }
}

#[test]
fn kprobe_targets_match_kallsyms() {
    let report = check_json();
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("reading /proc/kallsyms");
    let symbols: std::collections::HashSet<&str> = kallsyms
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let targets = report["kprobe_targets"].as_array().expect("kprobe_targets");
    let names: Vec<&str> = targets
        .iter()
        .map(|t| t["symbol"].as_str().expect("symbol"))
        .collect();
    for wanted in ["io_issue_sqe", "io_poll_issue", "__io_submit_sqe"] {
        assert!(names.contains(&wanted), "{wanted} not listed: {names:?}");
    }
    assert!(
        names.iter().any(|n| n.ends_with("sys_io_uring_enter")),
        "{names:?}"
    );
    for target in targets {
        let symbol = target["symbol"].as_str().expect("symbol");
        assert_eq!(
            target["in_kallsyms"],
            symbols.contains(symbol),
            "{symbol}: {target}"
        );
    }
}

#[test]
fn every_event_gets_a_hook_or_a_reason() {
    require_root();
    let report = check_json();
    let root = tracefs_root();
    let events = report["events"].as_array().expect("events");
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().expect("event"))
        .collect();
    assert_eq!(names.len(), 20, "{names:?}");
    assert_eq!(
        names[..6],
        [
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "ring_create",
            "ring_register",
            "submit"
        ]
    );
    let mut traceable_requests = 0;
    for event in events {
        let name = event["event"].as_str().expect("event");
        let hook = event["hook"].as_str().expect("hook");
        match hook {
            // tp_btf: request events whose record a tp_btf program rebuilds.
            "tracepoint" | "tp_btf" => {
                assert!(
                    hook == "tracepoint" || !name.starts_with("io_uring_"),
                    "{event}"
                );
                // A request event left on the perf-event program says why
                // its tp_btf one is not used: no silent fallback.
                if hook == "tracepoint" && !name.starts_with("io_uring_") {
                    let reason = event["reason"].as_str().unwrap_or("");
                    assert!(
                        !reason.is_empty(),
                        "{name} on its perf-event program without a reason: {event}"
                    );
                }
                // A kernel without the hook or a prototype we do not know
                // is a reason; the kernel refusing our own program is a
                // regression (the fallback still traces, at about twice
                // the cost per request).
                assert_eq!(
                    event["tp_btf_refused"], false,
                    "the kernel refused {name}'s tp_btf program: {event}"
                );
                assert_eq!(event["implemented"], true, "{event}");
                for target in str_list(&event["targets"]) {
                    let (category, tracepoint) = target.split_once(':').expect("category:name");
                    assert!(
                        tracepoint_exists(&root, category, tracepoint),
                        "{name}: {target} does not exist"
                    );
                }
            }
            "kprobe" => {
                assert!(!str_list(&event["targets"]).is_empty(), "{event}");
                // uringtrace attaches the system calls' kprobes, not yet the
                // requests'.
                assert_eq!(
                    event["implemented"],
                    name.starts_with("io_uring_") && cfg!(target_arch = "x86_64"),
                    "{event}"
                );
            }
            "none" => assert!(event["reason"].is_string(), "{event}"),
            other => panic!("{name}: hook {other}"),
        }
        if !name.starts_with("io_uring_") && (hook == "tracepoint" || hook == "tp_btf") {
            traceable_requests += 1;
        }
    }
    assert_eq!(
        report["verdict"]["request_events_traceable"],
        traceable_requests
    );
    // The system calls use their tracepoints whenever all six exist, like
    // `--attach auto`.
    let tracepoints = all_syscall_tracepoints(&root);
    for call in ["setup", "enter", "register"] {
        let plan = events
            .iter()
            .find(|e| e["event"] == format!("io_uring_{call}"))
            .expect("syscall event");
        assert_eq!(plan["hook"] == "tracepoint", tracepoints, "{plan}");
        if !tracepoints && !Path::new("/sys/bus/event_source/devices/kprobe").exists() {
            assert_eq!(plan["hook"], "none", "{plan}");
        }
    }
}

fn all_syscall_tracepoints(root: &Path) -> bool {
    ["setup", "enter", "register"].iter().all(|call| {
        ["enter", "exit"]
            .iter()
            .all(|dir| tracepoint_exists(root, "syscalls", &format!("sys_{dir}_io_uring_{call}")))
    })
}

#[test]
fn exit_status_follows_the_syscall_tracepoints() {
    require_root();
    let (output, stdout, stderr) = check(&[]);
    let root = tracefs_root();
    let kprobe_pmu = Path::new("/sys/bus/event_source/devices/kprobe").exists();
    if all_syscall_tracepoints(&root) {
        assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("verdict: the io_uring system calls can be traced"),
            "{stdout}"
        );
        assert!(stderr.is_empty(), "{stderr}");
    } else if !kprobe_pmu {
        assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stderr.contains("cannot be traced here"), "{stderr}");
    }
    // Else the kprobes decide; check_json holds the status to the verdict.
}

#[test]
fn text_report_agrees_with_json() {
    require_root();
    let report = check_json();
    let (_, text, _) = check(&[]);
    let release = report["kernel"]["release"].as_str().expect("release");
    assert!(
        text.lines()
            .any(|l| l.starts_with("kernel") && l.contains(release)),
        "{text}"
    );
    for tp in report["tracepoints"].as_array().expect("tracepoints") {
        let category = tp["category"].as_str().expect("category");
        let name = tp["name"]
            .as_str()
            .unwrap_or_else(|| str_list(&tp["names"])[0]);
        let status = tp["status"].as_str().expect("status");
        let qualified = format!("{category}:{name}");
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(qualified.as_str()))
            .unwrap_or_else(|| panic!("no line for {qualified}:\n{text}"));
        assert!(line.contains(status), "{line}");
    }
    for event in report["events"].as_array().expect("events") {
        let name = event["event"].as_str().expect("event");
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "no line for event {name}:\n{text}"
        );
    }
}

#[test]
fn unprivileged_says_why_and_exits_1() {
    require_root();
    let dir = TempDir::new("check-noprivilege");
    for format in ["text", "json"] {
        let out = Command::new(bin())
            .args(["check", "-f", format])
            .current_dir(dir.path(""))
            .uid(65534)
            .gid(65534)
            .output()
            .expect("running uringtrace check as nobody");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("io_uring system calls cannot be traced here")
                && stderr.contains("not enough privilege"),
            "{stderr}"
        );
        if format == "json" {
            let report: Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("not JSON as nobody ({e}):\n{stdout}"));
            assert_eq!(report["privileges"]["euid"], 65534);
            assert_eq!(report["privileges"]["sufficient"], false);
            assert_eq!(report["verdict"]["syscalls_traceable"], false);
            // Still a full report: the kernel's answers, not a bail-out.
            assert_eq!(
                report["kernel"]["release"],
                command_output("uname", &["-r"])
            );
            assert_eq!(report["events"].as_array().map(Vec::len), Some(20));
        } else {
            assert!(stdout.contains("not enough to trace"), "{stdout}");
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    for (args, needle) in [
        (&["-f", "xml"][..], "invalid value 'xml'"),
        (&["--bogus"][..], "unexpected argument"),
    ] {
        let (output, _, stderr) = check(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let (output, help, _) = check(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(help.contains("docs/check.md"), "{help}");
}
