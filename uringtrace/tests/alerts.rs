//! Detections (docs/rules.md) against the workload's ground truth: each
//! built-in rule fires exactly for what the engine did (one `file-open`
//! per OPENAT with its path, one `net-connect` with the CONNECT's address,
//! the SQPOLL rule for the SQPOLL ring and not for a normal one, the deny
//! list for the listed name only), user rule files add rules that fire as
//! written, bad rule files stop uringtrace with their position, and every
//! alert record is valid against docs/schema.

mod common;

use std::process::{Command, Output};

use common::{TempDir, bin, read_ndjson, require_root, schema_validator};
use serde_json::Value;

/// Every record of the file is valid against the schema.
fn assert_valid(records: &[Value]) {
    let validator = schema_validator();
    for record in records {
        let errors: Vec<String> = validator
            .iter_errors(record)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{record}\n  {}", errors.join("\n  "));
    }
}

struct Run {
    /// The records written (alerts, and events with --alerts), without stats.
    records: Vec<Value>,
    truth: Vec<Value>,
    /// The engine's `skipped` lines (see common::read_truth).
    skipped: Vec<Value>,
    stderr: String,
}

/// `uringtrace ARGS... -o trace -- uringtrace workload SCENARIO --report
/// truth` (ARGS start with `monitor`, or are trace options).
fn run(dir: &TempDir, args: &[&str], scenario: &str) -> Run {
    let trace = dir.path(&format!("{scenario}.out"));
    let truth = dir.path(&format!("{scenario}.truth"));
    let output = Command::new(bin())
        .args(args)
        .args(["--truncate", "-o"])
        .arg(&trace)
        .arg("--")
        .arg(bin())
        .args(["workload", scenario, "--report"])
        .arg(&truth)
        .output()
        .expect("running uringtrace");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "uringtrace {args:?} on {scenario} failed: {:?}\n{stderr}",
        output.status
    );
    let records = read_ndjson(&trace);
    assert_valid(&records);
    let (skipped, truth) = common::read_truth(&truth);
    Run {
        records,
        truth,
        skipped,
        stderr,
    }
}

fn alerts<'a>(records: &'a [Value], rule: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["event"] == "alert" && r["rule"] == rule)
        .collect()
}

/// In submission order: the engine writes a request's line when it reaps
/// it, and user_data counts up from 1 over the run.
fn truth_requests<'a>(truth: &'a [Value], opcodes: &[&str]) -> Vec<&'a Value> {
    let mut requests: Vec<&Value> = truth
        .iter()
        .filter(|t| t["event"] == "submit")
        .filter(|t| {
            opcodes
                .iter()
                .any(|op| t["opcode_name"] == format!("IORING_OP_{op}"))
        })
        .collect();
    requests.sort_by_key(|t| t["user_data"].as_u64());
    requests
}

/// The alerts of `rule` are exactly the truth's requests of `opcodes`, in
/// order, with the same path, new path and address.
fn assert_one_alert_per_request(run: &Run, rule: &str, opcodes: &[&str]) {
    let want = truth_requests(&run.truth, opcodes);
    let got = alerts(&run.records, rule);
    assert!(!want.is_empty(), "the truth has no {opcodes:?} request");
    assert_eq!(
        got.len(),
        want.len(),
        "{rule}: {} alerts for {} requests\nalerts: {got:#?}\ntruth: {want:#?}",
        got.len(),
        want.len()
    );
    for (alert, truth) in got.iter().zip(&want) {
        for field in [
            "opcode_name",
            "user_data",
            "ring_fd",
            "pid",
            "path",
            "new_path",
            "addr",
        ] {
            assert_eq!(
                alert.get(field),
                truth.get(field),
                "{rule}: `{field}` differs\n  alert: {alert}\n  truth: {truth}"
            );
        }
        assert_eq!(alert["trigger"], "submit", "{alert}");
        assert!(alert["mitre"].as_str().is_some_and(|m| m.starts_with('T')));
    }
}

#[test]
fn file_rules_fire_once_per_request_with_its_paths() {
    require_root();
    let dir = TempDir::new("alerts-fs");
    let run = run(&dir, &["monitor"], "fs-paths");
    if common::skipped_by_engine(
        "file_rules_fire_once_per_request_with_its_paths",
        &run.skipped,
        "fs-paths",
    ) || common::skipped_without_objects(
        "file_rules_fire_once_per_request_with_its_paths",
        &run.stderr,
    ) {
        return;
    }
    assert!(
        run.records
            .iter()
            .all(|r| r["event"] == "alert" || r["event"] == "stats"),
        "monitor wrote something else than alerts"
    );
    assert_one_alert_per_request(&run, "file-open", &["OPENAT", "OPENAT2"]);
    assert_one_alert_per_request(&run, "file-delete", &["UNLINKAT"]);
    assert_one_alert_per_request(
        &run,
        "file-rename-link",
        &["RENAMEAT", "LINKAT", "SYMLINKAT"],
    );
    // Nothing here is a credential file, a connection, a personality.
    for rule in [
        "credential-file-open",
        "net-connect",
        "personality-registered",
        "request-under-personality",
        "deny-comm",
        "sqpoll-io-without-enter",
    ] {
        assert!(alerts(&run.records, rule).is_empty(), "{rule} fired");
    }
    assert!(run.stderr.contains(" 0 dropped"), "{}", run.stderr);
}

#[test]
fn connect_alert_names_the_peer() {
    require_root();
    let dir = TempDir::new("alerts-net");
    let run = run(&dir, &["monitor"], "net-loopback");
    if common::skipped_without_objects("connect_alert_names_the_peer", &run.stderr) {
        return;
    }
    assert_one_alert_per_request(&run, "net-connect", &["CONNECT"]);
    let alert = alerts(&run.records, "net-connect")[0];
    assert!(
        alert["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{alert}"
    );
    assert_eq!(alert["family"], "inet");
    assert_eq!(alert["severity"], "medium");
    assert_eq!(alert["mitre"], "T1071");
}

#[test]
fn sqpoll_rule_fires_for_the_sqpoll_ring_only() {
    require_root();
    let dir = TempDir::new("alerts-sqpoll");
    let run = run(&dir, &["monitor"], "sqpoll-requests");
    let fired = alerts(&run.records, "sqpoll-io-without-enter");
    let requests = truth_requests(&run.truth, &["NOP", "READ"]);
    assert_eq!(requests.len(), 3, "the scenario changed: {requests:?}");
    assert_eq!(fired.len(), 1, "{fired:#?}");
    let alert = fired[0];
    // Fired by the third request of the quiet streak, the READ.
    assert_eq!(alert["sq_requests"], 3, "{alert}");
    assert_eq!(alert["ring_fd"], requests[0]["ring_fd"], "{alert}");
    assert_eq!(alert["pid"], requests[0]["pid"], "{alert}");
    assert_eq!(alert["worker"], "sqpoll", "{alert}");
    assert_eq!(alert["user_data"], 3, "{alert}");

    // A normal ring: every request goes through io_uring_enter.
    let normal = run_ok(&dir, &["monitor"], "nop-storm");
    assert!(alerts(&normal.records, "sqpoll-io-without-enter").is_empty());
}

fn run_ok(dir: &TempDir, args: &[&str], scenario: &str) -> Run {
    run(dir, args, scenario)
}

#[test]
fn deny_comm_fires_for_listed_names_only() {
    require_root();
    let dir = TempDir::new("alerts-deny");
    // The workload runs as `uringtrace`.
    let listed = run(
        &dir,
        &["monitor", "--deny-comm", "nginx,uringtr*"],
        "nop-storm",
    );
    let fired = alerts(&listed.records, "deny-comm");
    let pid = listed.truth[0]["pid"].clone();
    assert_eq!(fired.len(), 1, "once per process: {fired:#?}");
    assert_eq!(fired[0]["pid"], pid);
    assert_eq!(fired[0]["comm"], "uringtrace");
    assert_eq!(fired[0]["severity"], "high");
    // The first event of the process: its first ring's creation (the
    // tracepoint runs inside io_uring_setup, whose record comes at exit).
    assert_eq!(fired[0]["trigger"], "ring_create", "{}", fired[0]);

    let other = run(&dir, &["monitor", "--deny-comm", "nginx,sshd"], "nop-storm");
    assert!(alerts(&other.records, "deny-comm").is_empty());
    let none = run(&dir, &["monitor"], "nop-storm");
    assert!(alerts(&none.records, "deny-comm").is_empty());
}

#[test]
fn user_rules_fire_as_written() {
    require_root();
    let dir = TempDir::new("alerts-user");
    let rules = dir.path("site.json");
    std::fs::write(
        &rules,
        r#"{
  "lists": {"mine": ["uringtrace"]},
  "rules": [
    {"id": "site.nop", "severity": "info", "mitre": "T1106",
     "explanation": "a NOP from the workload",
     "match": {"event": ["complete"], "opcode": ["nop"], "comm": ["@mine"], "result": "success"}},
    {"id": "site.nop-ring", "severity": "low", "mitre": "T1106",
     "explanation": "a ring that ran NOPs", "once_per": "ring",
     "match": {"event": ["submit"], "opcode": ["IORING_OP_NOP"]}},
    {"id": "site.never", "severity": "critical", "mitre": "T1106",
     "explanation": "never: the workload is not uid 4242",
     "match": {"uid": [4242]}}
  ]
}"#,
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    let run = run(
        &dir,
        &["monitor", "--no-builtin-rules", "--rules", rules],
        "nop-storm",
    );
    let nops = truth_requests(&run.truth, &["NOP"]);
    assert_eq!(nops.len(), 256);
    let fired = alerts(&run.records, "site.nop");
    assert_eq!(fired.len(), nops.len());
    for (alert, truth) in fired.iter().zip(&nops) {
        assert_eq!(alert["trigger"], "complete");
        assert_eq!(alert["user_data"], truth["user_data"]);
        assert_eq!(alert["result"], truth["res"]);
        assert_eq!(alert["severity"], "info");
    }
    assert_eq!(alerts(&run.records, "site.nop-ring").len(), 1);
    assert!(alerts(&run.records, "site.never").is_empty());
    // --no-builtin-rules: nothing else.
    assert!(
        run.records
            .iter()
            .filter(|r| r["event"] == "alert")
            .all(|r| r["rule"].as_str().unwrap().starts_with("site.")),
    );
}

#[test]
fn alerts_interleave_with_the_events_shown() {
    require_root();
    let dir = TempDir::new("alerts-trace");
    // -e shows the enters only; the rules still see every submission.
    let run = run(&dir, &["-f", "json", "--alerts", "-e", "enter"], "fs-paths");
    if common::skipped_by_engine(
        "alerts_interleave_with_the_events_shown",
        &run.skipped,
        "fs-paths",
    ) || common::skipped_without_objects("alerts_interleave_with_the_events_shown", &run.stderr)
    {
        return;
    }
    let kinds: std::collections::BTreeSet<&str> = run
        .records
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["alert", "io_uring_enter"].into_iter().collect(),
        "{kinds:?}"
    );
    assert_one_alert_per_request(&run, "file-open", &["OPENAT", "OPENAT2"]);
}

#[test]
fn text_alerts_are_one_line_each() {
    require_root();
    let dir = TempDir::new("alerts-text");
    let out = dir.path("alerts.txt");
    let output = Command::new(bin())
        .args(["monitor", "-f", "text", "--stats-interval", "0", "-o"])
        .arg(&out)
        .arg("--")
        .args([bin(), "workload", "net-loopback"])
        .output()
        .expect("running uringtrace");
    assert!(output.status.success(), "{output:?}");
    if common::skipped_without_objects(
        "text_alerts_are_one_line_each",
        &String::from_utf8_lossy(&output.stderr),
    ) {
        return;
    }
    let text = std::fs::read_to_string(&out).unwrap();
    let connect: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" net-connect "))
        .collect();
    assert_eq!(connect.len(), 1, "{text}");
    assert!(
        connect[0].contains(" ALERT medium net-connect [T1071] ")
            && connect[0].contains(" addr=127.0.0.1:"),
        "{}",
        connect[0]
    );
}

/// REGISTER_PERSONALITY works from 5.6 on: the alert is checked on every
/// kernel, the requests run under it only where their credentials can be
/// read (requests_under_a_personality_show_its_credentials_and_alert).
#[test]
fn personality_registration_is_an_alert() {
    require_root();
    let dir = TempDir::new("alerts-personality");
    let run = run(&dir, &["monitor"], "requests-personality");
    let register = run
        .truth
        .iter()
        .find(|t| t["event"] == "io_uring_register" && t["opcode"] == 9)
        .expect("the truth's REGISTER_PERSONALITY");
    let fired = alerts(&run.records, "personality-registered");
    assert_eq!(fired.len(), 1, "{:#?}", run.records);
    assert_eq!(fired[0]["trigger"], "io_uring_register");
    assert_eq!(fired[0]["opcode_name"], "IORING_REGISTER_PERSONALITY");
    assert_eq!(fired[0]["result"], register["ret"]);
    assert_eq!(fired[0]["pid"], register["pid"]);
    assert_eq!(fired[0]["mitre"], "T1134");
}

fn uringtrace(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("running uringtrace")
}

#[test]
fn bad_rule_files_say_where() {
    let dir = TempDir::new("alerts-bad");
    let cases = [
        (
            "syntax.json",
            "{\"rules\": [\n  {\"id\": \"x\",}\n]}",
            ":2:",
        ),
        (
            "typo.json",
            "{\"rules\": [{\"id\": \"x\", \"severity\": \"low\", \"mitre\": \"T1005\",\n \"explanation\": \"e\", \"match\": {\"opcod\": [\"NOP\"]}}]}",
            "unknown field `opcod`",
        ),
        (
            "opcode.json",
            "{\"rules\": [{\"id\": \"x\", \"severity\": \"low\", \"mitre\": \"T1005\",\n \"explanation\": \"e\", \"match\": {\"opcode\": [\"OPENNAT\"]}}]}",
            "unknown request opcode `OPENNAT`",
        ),
        (
            "mitre.json",
            "{\"rules\": [{\"id\": \"x\", \"severity\": \"low\", \"mitre\": \"ATT&CK\", \"explanation\": \"e\"}]}",
            "not a MITRE ATT&CK technique id",
        ),
        (
            "list.json",
            "{\"rules\": [{\"id\": \"x\", \"severity\": \"low\", \"mitre\": \"T1005\", \"explanation\": \"e\", \"match\": {\"comm\": [\"@nope\"]}}]}",
            "`@nope`",
        ),
    ];
    for (name, text, says) in cases {
        let path = dir.path(name);
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap();
        for args in [
            &["monitor", "--print-rules", "--rules", path][..],
            &["-f", "json", "--rules", path, "-d", "1"][..],
        ] {
            let output = uringtrace(args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!output.status.success(), "{name}: {args:?} succeeded");
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(
                stderr.contains(says) && (name == "list.json" || stderr.contains(path)),
                "{name} {args:?}: {stderr}"
            );
        }
    }
    let missing = uringtrace(&["monitor", "--print-rules", "--rules", "/nonexistent/r.json"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/r.json"));
}

#[test]
fn print_rules_is_a_rule_file() {
    let dir = TempDir::new("alerts-print");
    let output = uringtrace(&["monitor", "--print-rules", "--deny-comm", "nginx"]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let printed: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(printed["lists"]["deny_comm"], serde_json::json!(["nginx"]));
    let ids: Vec<&str> = printed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"file-open") && ids.contains(&"sqpoll-io-without-enter"));
    // It reads back as a rule file.
    let path = dir.path("printed.json");
    std::fs::write(&path, &text).unwrap();
    let again = uringtrace(&[
        "monitor",
        "--print-rules",
        "--no-builtin-rules",
        "--rules",
        path.to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{again:?}");
    assert_eq!(String::from_utf8(again.stdout).unwrap(), text);
}

/// A truth request's credentials, when it ran under the personality.
fn creds_of(truth: &Value) -> Option<&Value> {
    truth.get("creds")
}

/// Whether this kernel is older than `major.minor` (`uname -r`).
fn kernel_before(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(a), Some(b)) => (a, b) < (major, minor),
        _ => false,
    }
}

/// The trace's `event` record of the truth's request (same ring fd and
/// user_data).
fn traced<'a>(records: &'a [Value], event: &str, truth: &Value) -> &'a Value {
    let found: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["event"] == event
                && r["user_data"] == truth["user_data"]
                && r["ring_fd"] == truth["ring_fd"]
        })
        .collect();
    assert_eq!(found.len(), 1, "{event} of {truth}: {found:#?}");
    found[0]
}

#[test]
fn requests_under_a_personality_show_its_credentials_and_alert() {
    require_root();
    if kernel_before(5, 12) {
        // Personalities were io-wq work identities then: no REQ_F_CREDS.
        common::skip(
            "requests_under_a_personality_show_its_credentials_and_alert",
            "REQ_F_CREDS and io_kiocb.creds came in 5.12",
        );
        return;
    }
    let dir = TempDir::new("alerts-creds");
    let run = run(&dir, &["-f", "json", "--alerts"], "requests-personality");
    let requests = truth_requests(&run.truth, &["NOP", "OPENAT"]);
    let under: Vec<&Value> = requests
        .iter()
        .copied()
        .filter(|t| creds_of(t).is_some())
        .collect();
    // The scenario: a NOP and an OPENAT under the personality, the same
    // OPENAT without it.
    assert_eq!(requests.len(), 3, "the scenario changed: {requests:#?}");
    assert_eq!(under.len(), 2, "{requests:#?}");
    let want = serde_json::json!({"uid": 4201, "gid": 4301, "euid": 4202, "egid": 4302});
    for truth in &requests {
        let submit = traced(&run.records, "submit", truth);
        let complete = traced(&run.records, "complete", truth);
        assert_eq!(complete["res"], truth["res"], "{complete}");
        // The submitter is root; the request is not.
        assert_eq!(
            (submit["uid"].as_u64(), submit["gid"].as_u64()),
            (Some(0), Some(0))
        );
        match creds_of(truth) {
            Some(creds) => {
                assert_eq!(creds, &want, "the truth itself: {truth}");
                let mut traced_creds = want.clone();
                traced_creds["decoded"] = true.into();
                assert_eq!(submit["creds"], traced_creds, "{submit}");
                assert_eq!(complete["creds"], traced_creds, "{complete}");
            }
            None => {
                assert!(submit.get("creds").is_none(), "{submit}");
                assert!(complete.get("creds").is_none(), "{complete}");
            }
        }
    }
    // The OPENAT under the personality was refused: its ids, not root's.
    assert_eq!(under[1]["opcode_name"], "IORING_OP_OPENAT");
    assert_eq!(under[1]["res"], EACCES);

    let fired = alerts(&run.records, "request-under-personality");
    assert_eq!(fired.len(), under.len(), "{fired:#?}");
    for (alert, truth) in fired.iter().zip(&under) {
        assert_eq!(alert["trigger"], "submit", "{alert}");
        assert_eq!(alert["user_data"], truth["user_data"], "{alert}");
        assert_eq!(alert["opcode_name"], truth["opcode_name"], "{alert}");
        assert_eq!(alert["pid"], truth["pid"], "{alert}");
        assert_eq!(alert["uid"], 0, "{alert}");
        assert_eq!(alert["creds"]["uid"], 4201, "{alert}");
        assert_eq!(alert["creds"]["euid"], 4202, "{alert}");
        assert_eq!(alert["creds"]["gid"], 4301, "{alert}");
        assert_eq!(alert["creds"]["egid"], 4302, "{alert}");
        assert_eq!(alert["mitre"], "T1134");
    }
    let registered = alerts(&run.records, "personality-registered");
    let register = run
        .truth
        .iter()
        .find(|t| t["event"] == "io_uring_register" && t["opcode"] == 9)
        .expect("the truth's REGISTER_PERSONALITY");
    assert_eq!(registered.len(), 1, "{registered:#?}");
    assert_eq!(registered[0]["result"], register["ret"]);

    // Text: the same credentials after the request.
    let out = dir.path("creds.txt");
    let output = Command::new(bin())
        .args(["--alerts", "-o"])
        .arg(&out)
        .arg("--")
        .args([bin(), "workload", "requests-personality"])
        .output()
        .expect("running uringtrace");
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&out).unwrap();
    let shown = " creds=uid=4201,gid=4301,euid=4202,egid=4302";
    let count = |keep: &dyn Fn(&str) -> bool| text.lines().filter(|l| keep(l)).count();
    let event = |l: &str| !l.contains(" ALERT ");
    assert_eq!(
        count(&|l| event(l) && l.contains(" submit ring=") && l.ends_with(shown)),
        2,
        "{text}"
    );
    assert_eq!(
        count(&|l| event(l) && l.contains(" complete ring=") && l.contains(&format!("{shown} = "))),
        2,
        "{text}"
    );
    assert_eq!(count(&|l| l.contains(shown)), 2 + 2 + 3, "{text}");
    assert_eq!(
        count(&|l| l.contains(" ALERT medium request-under-personality ") && l.ends_with(shown)),
        2,
        "{text}"
    );
}

/// EACCES, as a CQE's res.
const EACCES: i64 = -13;

/// A thread named `iou-wrk-99`, then `iou-sqp-99`, is not an io_uring
/// thread: its events carry no `worker` and are its own; only the real
/// io-wq worker that completes its IOSQE_ASYNC NOPs is one.
#[test]
fn threads_named_like_workers_are_not_workers() {
    require_root();
    if kernel_before(5, 12) {
        common::skip(
            "threads_named_like_workers_are_not_workers",
            "before 5.12 io_uring threads are told by name (docs/events.md)",
        );
        return;
    }
    let dir = TempDir::new("alerts-fake-worker");
    let rules = dir.path("workers.json");
    std::fs::write(
        &rules,
        r#"{"rules": [
    {"id": "site.io-wq", "severity": "info", "mitre": "T1106",
     "explanation": "an event on an io-wq worker", "match": {"worker": ["io-wq"]}},
    {"id": "site.sqpoll", "severity": "info", "mitre": "T1106",
     "explanation": "an event on an SQPOLL thread", "match": {"worker": ["sqpoll"]}}
  ]}"#,
    )
    .unwrap();
    let rules = rules.to_str().unwrap();
    let run = run(
        &dir,
        &["-f", "json", "--no-builtin-rules", "--rules", rules],
        "fake-worker-names",
    );
    let requests = truth_requests(&run.truth, &["NOP"]);
    assert_eq!(requests.len(), 4, "the scenario changed: {requests:#?}");
    let (pid, tid) = (&requests[0]["pid"], &requests[0]["tid"]);
    assert_ne!(pid, tid, "the scenario names a thread of its own");
    // Every event of the renamed thread is its own, under its own name.
    let mine: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["event"] != "alert" && &r["tid"] == tid)
        .collect();
    assert!(mine.len() >= 8, "{mine:#?}");
    for r in &mine {
        assert!(r.get("worker").is_none(), "a thread named a worker: {r}");
        assert_eq!(&r["pid"], pid, "{r}");
    }
    assert!(mine.iter().any(|r| r["comm"] == "iou-wrk-99"));
    assert!(mine.iter().any(|r| r["comm"] == "iou-sqp-99"));
    for truth in &requests {
        let submit = traced(&run.records, "submit", truth);
        let complete = traced(&run.records, "complete", truth);
        assert_eq!(&submit["tid"], tid, "{submit}");
        assert!(submit.get("worker").is_none(), "{submit}");
        if truth["sqe_flags"] == 0 {
            assert_eq!(&complete["tid"], tid, "{complete}");
            assert!(complete.get("worker").is_none(), "{complete}");
            assert_eq!(
                complete["route"],
                serde_json::json!(["inline"]),
                "{complete}"
            );
        } else {
            // IOSQE_ASYNC: completed by a real io-wq worker of the process.
            assert_ne!(&complete["tid"], tid, "{complete}");
            assert_eq!(complete["worker"], "io-wq", "{complete}");
            assert_eq!(&complete["pid"], pid, "{complete}");
            assert!(
                complete["route"]
                    .as_array()
                    .unwrap()
                    .contains(&"async".into())
            );
        }
    }
    // The rules on `worker` see the same: the real worker only.
    let io_wq = alerts(&run.records, "site.io-wq");
    assert!(!io_wq.is_empty());
    assert!(
        io_wq
            .iter()
            .all(|a| &a["tid"] != tid && a["worker"] == "io-wq")
    );
    assert!(alerts(&run.records, "site.sqpoll").is_empty());
}
