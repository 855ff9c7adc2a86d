//! The output stream as a pipeline sees it: every JSON record valid against
//! docs/schema, hostile command names unable to break a line or reach a
//! terminal, the file and socket sinks, a collector that stops reading
//! (drops, not memory), and the stats records.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead as _, BufReader, Read as _},
    os::unix::{fs::PermissionsExt as _, net::UnixListener},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{TempDir, assert_no_drops, bin, require_root, schema_validator, trace_scenario};
use serde_json::Value;

/// Every line of `text`, each checked to be exactly one JSON object.
fn json_lines(text: &str) -> Vec<Value> {
    assert!(
        text.ends_with('\n'),
        "the output does not end with a newline"
    );
    text.lines()
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"));
            assert!(v.is_object(), "not an object: {l}");
            v
        })
        .collect()
}

/// Schema errors of `record`, as text.
fn schema_errors(validator: &jsonschema::Validator, record: &Value) -> Vec<String> {
    validator
        .iter_errors(record)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// The numbers of the final stderr line: events, written, dropped, and the
/// `output queue full` count (0 when nothing was dropped).
#[derive(Debug, PartialEq, Eq)]
struct FinalLine {
    events: u64,
    written: u64,
    dropped: u64,
    queue: u64,
}

fn final_line(stderr: &str) -> FinalLine {
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("uringtrace: ")
                .filter(|r| r.contains(" events, "))
        })
        .unwrap_or_else(|| panic!("no final line on stderr:\n{stderr}"));
    let number_before = |what: &str| -> u64 {
        let end = line
            .find(what)
            .unwrap_or_else(|| panic!("no `{what}` in `{line}`"));
        line[..end]
            .rsplit([' ', '('])
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number before `{what}` in `{line}`"))
    };
    let queue = line.find("output queue full: ").map_or(0, |at| {
        let rest = &line[at + "output queue full: ".len()..];
        rest[..rest.find(',').expect("a comma after the queue count")]
            .parse()
            .expect("the queue count")
    });
    FinalLine {
        events: number_before(" events,"),
        written: number_before(" written,"),
        dropped: number_before(" dropped"),
        queue,
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex {hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// The exact bytes of a record's command name: `comm_hex` when present,
/// else `comm`'s UTF-8.
fn comm_bytes(record: &Value) -> Vec<u8> {
    match record.get("comm_hex") {
        Some(hex) => decode_hex(hex.as_str().expect("comm_hex is a string")),
        None => record["comm"]
            .as_str()
            .expect("comm is a string")
            .as_bytes()
            .to_vec(),
    }
}

#[test]
fn every_record_matches_the_schema() {
    require_root();
    let validator = schema_validator();
    let dir = TempDir::new("schema");
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    // Every scenario with the summary at the end and stats along the way,
    // then the summary alone, and a failures-only run.
    for (name, extra) in [
        ("tour", &["-S", "--hist", "--stats-interval", "0.1"][..]),
        ("tour", &["-c"][..]),
        ("link-chain", &["-x"][..]),
    ] {
        let run = trace_scenario(&dir, name, "json", extra);
        let text = std::fs::read_to_string(&run.trace_path).unwrap();
        for (line, record) in text.lines().zip(json_lines(&text)) {
            assert!(
                line.starts_with("{\"schema\":1,"),
                "`schema` is not the first field: {line}"
            );
            let errors = schema_errors(&validator, &record);
            assert!(errors.is_empty(), "{line}\n  {}", errors.join("\n  "));
            *kinds
                .entry(record["event"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    // Not vacuous: the runs covered the kinds of every family.
    for kind in [
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "ring_create",
        "ring_register",
        "submit",
        "complete",
        "cqe_overflow",
        "failed",
        "async",
        "poll_arm",
        "task_add",
        "defer",
        "link",
        "fail_link",
        "file_get",
        "cqring_wait",
        "task_work_run",
        "summary",
        "stats",
    ] {
        // Events from tracepoints this kernel lacks (5.10: req_failed,
        // cqe_overflow, task_work_run) cannot be there.
        let tracepoint = match kind {
            "failed" => Some("io_uring_req_failed"),
            "cqe_overflow" => Some("io_uring_cqe_overflow"),
            "task_work_run" => Some("io_uring_task_work_run"),
            _ => None,
        };
        if let Some(tp) = tracepoint.filter(|tp| !common::has_tracepoint(tp)) {
            eprintln!("not covered on this kernel: `{kind}` records (no {tp} tracepoint)");
            continue;
        }
        assert!(kinds.contains_key(kind), "no `{kind}` record: {kinds:?}");
    }
}

#[test]
fn the_schema_catches_a_changed_record() {
    require_root();
    let validator = schema_validator();
    let dir = TempDir::new("schema-strict");
    let run = trace_scenario(&dir, "submit", "json", &[]);
    let text = std::fs::read_to_string(&run.trace_path).unwrap();
    let records = json_lines(&text);
    for kind in ["io_uring_enter", "submit", "complete", "stats"] {
        let good = records
            .iter()
            .find(|r| r["event"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {text}"));
        assert!(schema_errors(&validator, good).is_empty(), "{good}");
        let field = match kind {
            "stats" => "written",
            "complete" => "res",
            _ => "tid",
        };
        let mut renamed = good.clone();
        let value = renamed
            .as_object_mut()
            .unwrap()
            .remove(field)
            .expect("the field");
        assert!(
            !schema_errors(&validator, &renamed).is_empty(),
            "a record without `{field}` passes: {renamed}"
        );
        renamed[format!("{field}_renamed")] = value;
        assert!(
            !schema_errors(&validator, &renamed).is_empty(),
            "a record with `{field}` renamed passes: {renamed}"
        );
        let mut retyped = good.clone();
        retyped[field] = Value::String("1".into());
        assert!(
            !schema_errors(&validator, &retyped).is_empty(),
            "a record with a string `{field}` passes: {retyped}"
        );
        let mut newer = good.clone();
        newer["schema"] = 2.into();
        assert!(
            !schema_errors(&validator, &newer).is_empty(),
            "schema 2 passes"
        );
    }
}

/// The names hostile-names gives its thread, as the ground truth says.
fn hostile_truth(truth: &[Value]) -> Vec<Vec<u8>> {
    let names: Vec<Vec<u8>> = truth
        .iter()
        .filter(|t| t.get("comm").is_some())
        .map(comm_bytes)
        .collect();
    // Not vacuous: each class of hostile byte is there.
    for (needle, what) in [
        (&b"\n"[..], "a newline"),
        (b"\r", "a carriage return"),
        (b"\x7f", "DEL"),
        (b"\"", "a quote"),
        (b"\\", "a backslash"),
        (b"\x1b[", "an ANSI escape"),
        (b"\xff", "invalid UTF-8"),
        (b"\xc2\x9b", "a C1 control"),
        ("\u{202e}".as_bytes(), "a right-to-left override"),
    ] {
        assert!(
            names
                .iter()
                .any(|n| n.windows(needle.len()).any(|w| w == needle)),
            "no name with {what} in the ground truth"
        );
    }
    names
}

#[test]
fn hostile_names_stay_one_json_object_per_line() {
    require_root();
    let dir = TempDir::new("hostile-json");
    let run = trace_scenario(&dir, "hostile-names", "json", &[]);
    assert_no_drops(&run.stderr);
    let raw = std::fs::read(&run.trace_path).unwrap();
    // Nothing a terminal acts on, even in JSON: C0 controls other than the
    // newlines, DEL, C1 controls in UTF-8 and U+2028/U+2029.
    for (i, w) in raw.windows(3).enumerate() {
        assert!(
            (w[0] >= 0x20 || w[0] == b'\n') && w[0] != 0x7f,
            "byte {:#x} at {i}",
            w[0]
        );
        assert!(
            !(w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1])),
            "a C1 control at {i}"
        );
        assert!(
            !(w[0] == 0xe2 && w[1] == 0x80 && (w[2] == 0xa8 || w[2] == 0xa9)),
            "a line separator at {i}"
        );
    }
    let text = String::from_utf8(raw).expect("JSON output is UTF-8");
    let records = json_lines(&text);
    let names = hostile_truth(&run.truth);
    // The calls under each name carry it, byte for byte (the comparison
    // with the truth includes comm and comm_hex).
    common::assert_matches_truth(&run.truth, &records);
    let pid = run.truth[0]["pid"].as_u64().unwrap();
    let enters: Vec<Vec<u8>> = records
        .iter()
        .filter(|r| r["event"] == "io_uring_enter" && r["pid"] == pid)
        .map(comm_bytes)
        .collect();
    assert_eq!(enters, names);
    // So do the requests submitted under them: one NOP each.
    let submits: BTreeSet<Vec<u8>> = records
        .iter()
        .filter(|r| (r["event"] == "submit" || r["event"] == "complete") && r["pid"] == pid)
        .map(comm_bytes)
        .collect();
    assert_eq!(submits, names.iter().cloned().collect());
    // comm_hex exactly when the name is not UTF-8.
    for r in records.iter().filter(|r| r.get("comm").is_some()) {
        let bytes = comm_bytes(r);
        assert_eq!(
            r.get("comm_hex").is_some(),
            std::str::from_utf8(&bytes).is_err(),
            "{r}"
        );
    }
}

#[test]
fn hostile_names_reach_text_escaped() {
    require_root();
    let dir = TempDir::new("hostile-text");
    let run = trace_scenario(&dir, "hostile-names", "text", &[]);
    assert_no_drops(&run.stderr);
    hostile_truth(&run.truth);
    let raw = std::fs::read(&run.trace_path).unwrap();
    for (i, line) in raw.split_inclusive(|&b| b == b'\n').enumerate() {
        let (last, body) = line.split_last().unwrap();
        assert_eq!(*last, b'\n', "line {i} does not end with a newline");
        for (j, w) in body.windows(2).enumerate() {
            assert!(
                w[0] >= 0x20 && w[0] != 0x7f,
                "line {i}: control byte {:#x} at {j}",
                w[0]
            );
            assert!(
                !(w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1])),
                "line {i}: C1 control at {j}"
            );
        }
        if let Some(&b) = body.last() {
            assert!(
                b >= 0x20 && b != 0x7f,
                "line {i}: control byte {b:#x} at its end"
            );
        }
    }
    let text = String::from_utf8(raw).expect("text output is UTF-8");
    // Each name shows escaped on its submit, complete and enter lines.
    for shown in [
        "nl\\x0afake-line",
        "cr\\x0ddel\\x7f",
        "q\"b\\\\s",
        "\\x1b[31mred\\x1b[0m",
        "bad\\xff\\xfeutf8",
        "c1\\xc2\\x9b31m",
        "\\xe2\\x80\\xaegpj.exe",
    ] {
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.split(' ').nth(2) == Some(shown))
            .collect();
        assert_eq!(
            lines.len(),
            3,
            "`{shown}` on {} lines:\n{text}",
            lines.len()
        );
        for event in [" submit ", " complete ", " io_uring_enter("] {
            assert!(
                lines.iter().any(|l| l.contains(event)),
                "`{shown}`: no{event}line"
            );
        }
    }
}

/// `uringtrace -f json ARGS -- uringtrace workload SCENARIO`: its stderr.
fn trace_into(args: &[&str], scenario: &str) -> String {
    let out = Command::new(bin())
        .args(["-f", "json"])
        .args(args)
        .arg("--")
        .arg(bin())
        .args(["workload", scenario])
        .output()
        .expect("running uringtrace");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "uringtrace failed: {stderr}");
    stderr
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn output_file_is_private_and_appended_to() {
    require_root();
    let dir = TempDir::new("file-sink");
    let path = dir.path("trace");
    let p = path.to_str().unwrap();
    let err = trace_into(&["-o", p], "submit");
    let first = std::fs::read_to_string(&path).unwrap();
    let first_lines = json_lines(&first).len() as u64;
    assert_eq!(mode(&path), 0o600, "a new output file is created 0600");
    // The events and the final stats record.
    assert_eq!(first_lines, final_line(&err).written + 1, "{err}");

    let err = trace_into(&["-o", p], "submit");
    let both = std::fs::read_to_string(&path).unwrap();
    assert!(both.starts_with(&first), "the second run did not append");
    assert_eq!(
        json_lines(&both).len() as u64,
        first_lines + final_line(&err).written + 1
    );

    let err = trace_into(&["-o", p, "--truncate"], "submit");
    let last = std::fs::read_to_string(&path).unwrap();
    assert_eq!(json_lines(&last).len() as u64, final_line(&err).written + 1);
    assert_eq!(mode(&path), 0o600);

    // An existing file keeps the mode its owner gave it, with a warning.
    let shared = dir.path("shared");
    std::fs::write(&shared, "").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = trace_into(&["-o", shared.to_str().unwrap()], "submit");
    assert_eq!(mode(&shared), 0o644);
    assert!(
        err.contains("readable or writable by others (mode 0644)"),
        "{err}"
    );
}

/// FILE, FILE.1, ... FILE.n as they exist after a rotated run.
fn rotated(path: &Path) -> Vec<PathBuf> {
    let mut files = vec![path.to_owned()];
    for n in 1.. {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        let numbered = PathBuf::from(name);
        if !numbered.exists() {
            break;
        }
        files.push(numbered);
    }
    files
}

#[test]
fn output_file_rotates_by_size() {
    require_root();
    const MAX: u64 = 4096;
    let dir = TempDir::new("rotate");

    // Enough room for every rotated file: all lines are kept.
    let path = dir.path("all");
    let err = trace_into(
        &[
            "-o",
            path.to_str().unwrap(),
            "--rotate-size",
            "4096",
            "--rotate-keep",
            "1000",
        ],
        "nop-storm",
    );
    let files = rotated(&path);
    // nop-storm writes some 180 KB of JSON.
    assert!(files.len() > 20, "only {} files", files.len());
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for (i, text) in texts.iter().enumerate() {
        let size = text.len() as u64;
        assert!(size <= MAX, "{} has {size} bytes", files[i].display());
        assert!(text.ends_with('\n'), "{} ends mid-line", files[i].display());
        assert_eq!(mode(&files[i]), 0o600, "{}", files[i].display());
        // A rotated file was full: the first line of the next newer file
        // did not fit in it.
        if i > 0 {
            let next_line = texts[i - 1].lines().next().unwrap().len() as u64 + 1;
            assert!(
                size + next_line > MAX,
                "{} rotated with {size} bytes before a {next_line}-byte line",
                files[i].display()
            );
        }
    }
    // Oldest first, the files are the stream: the final stats record last,
    // every event once.
    let records: Vec<Value> = texts.iter().rev().flat_map(|t| json_lines(t)).collect();
    let (last, events) = records.split_last().unwrap();
    assert_eq!(last["event"], "stats");
    assert_eq!(last["final"], true);
    assert_eq!(events.len() as u64, final_line(&err).written, "{err}");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "complete").count(),
        256
    );

    // Keep 3: FILE and FILE.1 to FILE.3, nothing older.
    let path = dir.path("three");
    trace_into(
        &[
            "-o",
            path.to_str().unwrap(),
            "--rotate-size",
            "4096",
            "--rotate-keep",
            "3",
        ],
        "nop-storm",
    );
    let kept = rotated(&path);
    assert_eq!(kept.len(), 4, "{kept:?}");
    for file in &kept {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.len() as u64 <= MAX && !json_lines(&text).is_empty());
    }
    let newest = json_lines(&std::fs::read_to_string(&kept[0]).unwrap());
    assert_eq!(newest.last().unwrap()["event"], "stats");
}

/// VmRSS of `pid` in KiB, if it still runs.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[test]
fn a_collector_that_stops_reading_costs_drops_not_memory() {
    require_root();
    const QUEUE: u64 = 1 << 20;
    const RUNS: u32 = 150;
    let dir = TempDir::new("stalled");
    let socket = dir.path("collector.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // The collector: accepts, then never reads until the tracer is gone.
    let collector = std::thread::spawn(move || listener.accept().unwrap().0);
    let done = dir.path("done");
    let script = format!(
        "for i in $(seq {RUNS}); do {} workload nop-storm 2>/dev/null || exit 1; done; touch {}",
        bin(),
        done.display()
    );
    let start = Instant::now();
    let mut tracer = Command::new(bin())
        .args(["-f", "json", "--socket"])
        .arg(&socket)
        .args([
            "--queue-size",
            &QUEUE.to_string(),
            "--buffer-size",
            "1048576",
            "--stats-interval",
            "0.5",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = tracer.id();
    let stderr = tracer.stderr.take().unwrap();
    let attached = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let attached = Arc::clone(&attached);
        move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let line = line.unwrap();
                if line.starts_with("uringtrace: tracing") {
                    attached.store(true, Ordering::Release);
                }
                text += &line;
                text.push('\n');
            }
            text
        }
    });
    // The tracer's memory, sampled from the moment it is attached (loading
    // the programs and the kernel's BTF costs what it costs, once).
    let mut samples = Vec::new();
    let mut done_at = None;
    while let Some(kib) = rss_kib(pid) {
        if attached.load(Ordering::Acquire) {
            samples.push(kib);
        }
        if done_at.is_none() && done.exists() {
            done_at = Some(Instant::now());
        }
        if start.elapsed() > Duration::from_secs(240) {
            panic!("the tracer is still running after 240 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = tracer.wait().unwrap();
    let exited_at = Instant::now();
    let err = reader.join().unwrap();
    assert!(status.success(), "{err}");
    let done_at = done_at.unwrap_or_else(|| panic!("the workload did not finish: {err}"));

    // On time: the command's end, then at most the 2 s the output gets to
    // settle, plus the detach.
    let exit_delay = exited_at - done_at;
    assert!(
        exit_delay < Duration::from_secs(6),
        "the tracer took {exit_delay:?} to exit after the command"
    );

    let f = final_line(&err);
    assert!(f.queue > 0, "nothing dropped at the queue: {err}");
    assert_eq!(f.events - f.written, f.queue, "{err}");
    // Bounded: the queue's 1 MiB (and the ring buffer's pages, touched as
    // they are read) over the memory it had once attached, while the
    // dropped events alone were several times that.
    assert!(samples.len() > 10, "only {} samples", samples.len());
    let early = samples[0];
    let peak = *samples.iter().max().unwrap();
    let growth_kib = peak.saturating_sub(early);
    let dropped_kib = f.queue * 300 / 1024;
    eprintln!(
        "stalled collector: {} events, {} written, {} dropped at the queue (~{dropped_kib} KiB); \
         RSS early {early} KiB, peak {peak} KiB; exit {exit_delay:?} after the command",
        f.events, f.written, f.queue
    );
    assert!(
        growth_kib < 6 * 1024,
        "the tracer grew by {growth_kib} KiB (from {early} to {peak})"
    );
    assert!(
        dropped_kib > 4 * growth_kib.max(1024),
        "not enough dropped to tell a bound from no bound: {dropped_kib} KiB"
    );

    // What the collector finally reads: whole JSON lines, at least the
    // events counted as written (the chunk cut off at exit may add a few).
    let mut stream = collector.join().unwrap();
    let mut got = String::new();
    stream.read_to_string(&mut got).unwrap();
    let complete = &got[..got.rfind('\n').map_or(0, |i| i + 1)];
    let events = json_lines(complete)
        .iter()
        .filter(|r| r["event"] != "stats")
        .count() as u64;
    assert!(
        events >= f.written,
        "the collector got {events} events, {} counted as written",
        f.written
    );
}

#[test]
fn stats_records_come_at_the_interval_and_add_up() {
    require_root();
    let dir = TempDir::new("stats");
    let path = dir.path("trace");
    let start = Instant::now();
    let out = Command::new(bin())
        .args(["-f", "json", "--stats-interval", "0.2", "-o"])
        .arg(&path)
        .args(["--", "sh", "-c"])
        .arg(format!("{} workload nop-storm; sleep 1.2", bin()))
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_no_drops(&err);
    let text = std::fs::read_to_string(&path).unwrap();
    let stats: Vec<Value> = json_lines(&text)
        .into_iter()
        .filter(|r| r["event"] == "stats")
        .collect();
    let (last, periodic) = stats.split_last().expect("a stats record");
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("\"event\":\"stats\""),
        "the final stats record is not the last line"
    );
    assert_eq!(last["final"], true);
    assert!(periodic.iter().all(|s| s["final"] == false));
    // Every 0.2 s over about 1.3 s of tracing, within scheduling slack.
    let expected = elapsed.as_secs_f64() / 0.2;
    assert!(
        periodic.len() >= 4 && (periodic.len() as f64) <= expected + 1.0,
        "{} periodic records in {elapsed:?}",
        periodic.len()
    );
    for s in periodic {
        let interval = s["interval_s"].as_f64().unwrap();
        assert!(
            (0.15..1.0).contains(&interval),
            "interval_s {interval}: {s}"
        );
    }
    let n = |s: &Value, k: &str| -> u64 {
        s.pointer(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no {k} in {s}"))
    };
    // Cumulative: never decreasing; and every event accounted for.
    for pair in stats.windows(2) {
        for k in [
            "/events",
            "/written",
            "/filtered",
            "/dropped/queue",
            "/ts_ns",
        ] {
            assert!(n(&pair[0], k) <= n(&pair[1], k), "{k} went down: {pair:?}");
        }
    }
    for s in &stats {
        assert_eq!(
            n(s, "/events"),
            n(s, "/written")
                + n(s, "/filtered")
                + n(s, "/queued")
                + n(s, "/dropped/queue")
                + n(s, "/dropped/undecodable"),
            "{s}"
        );
    }
    // The nop-storm's 256 NOPs and their CQEs were seen.
    assert!(n(last, "/events") > 512, "{last}");
    assert_eq!(n(last, "/queued"), 0);
    // The final record says what the final stderr line says.
    let f = final_line(&err);
    assert_eq!(
        (n(last, "/events"), n(last, "/written")),
        (f.events, f.written),
        "{err}"
    );
    let dropped: u64 = [
        "ringbuf",
        "queue",
        "undecodable",
        "tracepoint_unreadable",
        "not_run",
    ]
    .iter()
    .map(|k| n(last, &format!("/dropped/{k}")))
    .sum();
    assert_eq!(dropped, f.dropped);
    assert_eq!(n(last, "/dropped/queue"), f.queue);

    // Text: the same as a comment line, the final one last.
    let text_run = trace_scenario(&dir, "submit", "text", &["--stats-interval", "0.2"]);
    let text = std::fs::read_to_string(&text_run.trace_path).unwrap();
    let last_line = text.lines().last().unwrap();
    let f = final_line(&text_run.stderr);
    assert!(
        last_line.starts_with("# stats ")
            && last_line.contains(" final ")
            && last_line.contains(&format!(" events={} written={} ", f.events, f.written)),
        "{last_line}\n{}",
        text_run.stderr
    );
}

#[test]
fn bad_output_options_say_what_is_wrong() {
    for (args, says) in [
        (
            &["--rotate-size", "100", "-o", "/tmp/x"][..],
            "at least 4096",
        ),
        (&["--queue-size", "1000"][..], "at least 65536"),
        (
            &["--stats-interval", "0.001"][..],
            "give 0 (no stats) or at least 0.01",
        ),
        (&["--truncate"][..], "--output <FILE>"),
        (
            &["-o", "/tmp/x", "--socket", "/tmp/y"][..],
            "cannot be used with",
        ),
        (
            &["--socket", "/nonexistent-dir/collector.sock"][..],
            "cannot connect to the collector at /nonexistent-dir/collector.sock",
        ),
    ] {
        let out = Command::new(bin())
            .args(args)
            .args(["-d", "0.1"])
            .output()
            .expect("running uringtrace");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
