//! Shared harness of the integration tests: run the tracer on the built-in
//! workload and compare what it saw with the workload's ground truth.
#![allow(dead_code)] // each test binary uses part of it

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

mod skip;
pub use skip::skip;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_uringtrace")
}

/// These tests load eBPF programs: without root they cannot say anything,
/// so they fail rather than pass vacuously.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("these tests load eBPF programs and need root: run `sudo -E cargo xtask test`");
    }
}

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "uringtrace-test-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The records of an NDJSON file, without the tracer's `stats` records
/// (about the tracer, not the traced; tests/stream.rs checks them).
pub fn read_ndjson(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .filter(|record: &Value| record["event"] != "stats")
        .collect()
}

pub struct Traced {
    pub output: Output,
    pub stderr: String,
    /// The calls and requests the engine made.
    pub truth: Vec<Value>,
    /// The engine's `skipped` lines: what it did not do on this kernel.
    pub skipped: Vec<Value>,
    pub trace_path: PathBuf,
}

/// `uringtrace -f FORMAT --truncate -o trace -- uringtrace workload SCENARIO
/// --report truth` (a fresh trace for each run of a scenario: -o appends).
pub fn trace_scenario(dir: &TempDir, scenario: &str, format: &str, extra: &[&str]) -> Traced {
    let trace_path = dir.path(&format!("{scenario}.trace"));
    let truth_path = dir.path(&format!("{scenario}.truth"));
    let output = Command::new(bin())
        .args(["-f", format, "--truncate", "-o"])
        .arg(&trace_path)
        .args(extra)
        .arg("--")
        .arg(bin())
        .args(["workload", scenario, "--report"])
        .arg(&truth_path)
        .output()
        .expect("running uringtrace");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "uringtrace on scenario {scenario} failed: {:?}\n{stderr}",
        output.status
    );
    let (skipped, truth) = read_truth(&truth_path);
    Traced {
        truth,
        skipped,
        output,
        stderr,
        trace_path,
    }
}

/// The final stderr line must say nothing was dropped.
pub fn assert_no_drops(stderr: &str) {
    let last = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" events, "))
        .unwrap_or_else(|| panic!("no final events line on stderr:\n{stderr}"));
    let not_run = skipped_runs(last);
    if not_run > 0 && last.contains(&format!(" {not_run} dropped ")) {
        // Only runs the kernel skipped, counted by the kernel itself: on
        // kernels that run syscall-tracepoint programs preemptibly (7.x with
        // lazy preemption), a task preempted inside one of our programs
        // makes another task's hook on that CPU skip its program. Loud, and
        // [`assert_matches_truth`] then accepts at most that many calls
        // missing or seen only at exit, every other call still exact.
        eprintln!(
            "kernel skipped {not_run} program run(s) (recursion_misses), reported by the tracer: {last}"
        );
        SKIPPED_RUNS.with(|s| s.set(s.get() + not_run));
        return;
    }
    assert!(last.contains(" 0 dropped"), "events were dropped: {last}");
}

/// Program runs the kernel skipped in this test's traces so far, as the
/// tracer reported them (see assert_no_drops): the most events a count
/// taken from them may lack.
pub fn skipped_runs_so_far() -> u64 {
    SKIPPED_RUNS.with(|s| s.get())
}

/// "programs not run: N" of the tracer's final line.
fn skipped_runs(line: &str) -> u64 {
    line.split("programs not run: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

thread_local! {
    /// Program runs the kernel skipped in this test's traces, as the tracer
    /// reported them (see assert_no_drops).
    static SKIPPED_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `truth` ⊆ `seen`: every field the engine wrote has the same value in the
/// trace (objects compared field by field the same way). `note` is the
/// engine's comment, not a traced value.
pub fn subset_mismatches(truth: &Value, seen: &Value, path: &str, out: &mut Vec<String>) {
    match (truth, seen) {
        (Value::Object(t), Value::Object(s)) => {
            for (k, v) in t {
                if k == "note" {
                    continue;
                }
                let p = format!("{path}.{k}");
                match s.get(k) {
                    Some(sv) => subset_mismatches(v, sv, &p, out),
                    None => out.push(format!("{p}: missing in trace (truth {v})")),
                }
            }
        }
        _ if truth == seen => {}
        _ => out.push(format!("{path}: truth {truth} != traced {seen}")),
    }
}

pub fn by_tid(events: &[Value]) -> BTreeMap<u64, Vec<&Value>> {
    let mut m: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in events {
        m.entry(e["tid"].as_u64().expect("tid"))
            .or_default()
            .push(e);
    }
    m
}

/// The system calls the ground truth and the trace both list; the other
/// lines (the engine's `submit` lines, the tracer's request events) are
/// compared elsewhere.
const SYSCALL_EVENTS: [&str; 3] = ["io_uring_setup", "io_uring_enter", "io_uring_register"];

fn is_syscall(event: &Value) -> bool {
    event["event"]
        .as_str()
        .is_some_and(|name| SYSCALL_EVENTS.contains(&name))
}

/// Every call in the ground truth appears exactly once in the trace, in
/// order per thread, with identical fields; and the trace has no other call
/// of the workload's processes. The exception: as many calls as the kernel
/// skipped our programs for (reported by the tracer, see assert_no_drops)
/// may be missing or seen only at exit, and are named on stderr.
pub fn assert_matches_truth(truth: &[Value], trace: &[Value]) {
    let truth: Vec<Value> = truth.iter().filter(|t| is_syscall(t)).cloned().collect();
    assert!(!truth.is_empty(), "the ground truth lists no system call");
    let pids: Vec<u64> = truth
        .iter()
        .map(|t| t["pid"].as_u64().expect("pid"))
        .collect();
    let traced: Vec<Value> = trace
        .iter()
        .filter(|e| is_syscall(e) && pids.contains(&e["pid"].as_u64().unwrap_or(0)))
        .cloned()
        .collect();
    let want = by_tid(&truth);
    let got = by_tid(&traced);
    let mut problems = Vec::new();
    // Calls the kernel kept from our programs (assert_no_drops): each one
    // either missing or seen only at exit, within the reported count.
    let mut allowed = SKIPPED_RUNS.with(|s| s.get());
    let mut excused = Vec::new();
    for (tid, calls) in &want {
        let seen = got.get(tid).map(Vec::as_slice).unwrap_or(&[]);
        let mut j = 0;
        for (i, t) in calls.iter().enumerate() {
            let s = seen.get(j);
            let mut out = Vec::new();
            if let Some(s) = s {
                subset_mismatches(t, s, "", &mut out);
            }
            if s.is_some() && out.is_empty() {
                j += 1;
                continue;
            }
            let exit_only = s.is_some_and(|s| {
                s["entry_missing"] == true && s["event"] == t["event"] && s["ret"] == t["ret"]
            });
            if allowed > 0 && (exit_only || s.is_none_or(|s| s["event"] != t["event"])) {
                allowed -= 1;
                excused.push(format!(
                    "tid {tid} call #{i} ({}) {}",
                    t["note"],
                    if exit_only {
                        "seen only at exit"
                    } else {
                        "missing"
                    }
                ));
                if exit_only {
                    j += 1;
                }
                continue;
            }
            match s {
                None => problems.push(format!(
                    "tid {tid}: {} calls in the ground truth, {} traced",
                    calls.len(),
                    seen.len()
                )),
                Some(s) => problems.push(format!(
                    "tid {tid} call #{i} ({}): {}\n  truth: {t}\n  trace: {s}",
                    t["note"],
                    out.join("; ")
                )),
            }
            j += 1;
        }
        if j < seen.len() {
            problems.push(format!(
                "tid {tid}: {} calls in the ground truth, {} traced",
                calls.len(),
                seen.len()
            ));
        }
    }
    if !excused.is_empty() {
        eprintln!(
            "calls the kernel's skipped program runs account for: {}",
            excused.join("; ")
        );
    }
    for tid in got.keys() {
        if !want.contains_key(tid) {
            problems.push(format!("tid {tid}: traced calls the engine did not make"));
        }
    }
    assert!(
        problems.is_empty(),
        "trace differs from the ground truth:\n{}",
        problems.join("\n")
    );
}

/// Whether this kernel has the kprobe PMU (CONFIG_KPROBES).
pub fn has_kprobes() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// The JSON Schema of every record (docs/schema), compiled in: the VM suite
/// runs the test binaries where the source tree is not.
pub fn schema_validator() -> jsonschema::Validator {
    let text = include_str!("../../../docs/schema/uringtrace-event.schema.json");
    let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
    assert!(
        jsonschema::meta::is_valid(&schema),
        "the schema is not a valid draft 2020-12 schema"
    );
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

/// The ground truth the engine wrote: its `skipped` lines, and the rest.
pub fn read_truth(path: &Path) -> (Vec<Value>, Vec<Value>) {
    read_ndjson(path)
        .into_iter()
        .partition(|t| t["event"] == "skipped")
}

/// The reason the engine gave for skipping `scenario` as a whole on this
/// kernel (its `skipped` ground-truth line), if it did.
pub fn engine_skip(skipped: &[Value], scenario: &str) -> Option<String> {
    skipped
        .iter()
        .find(|t| t["scenario"] == scenario)
        .map(|t| t["reason"].as_str().unwrap_or("no reason").to_string())
}

/// Skips `test` loudly when the engine skipped `scenario` on this kernel:
/// there is then nothing of it to compare. Returns whether it did.
pub fn skipped_by_engine(test: &str, skipped: &[Value], scenario: &str) -> bool {
    match engine_skip(skipped, scenario) {
        Some(reason) => {
            skip(test, &format!("the engine skipped `{scenario}`: {reason}"));
            true
        }
        None => false,
    }
}

/// The parts of scenarios the engine left out on this kernel, for a test
/// covering several scenarios to say what it did not check (a line on
/// stderr each, not a skip: the rest was checked).
pub fn note_engine_skips(skipped: &[Value]) {
    for t in skipped {
        eprintln!(
            "not covered on this kernel: {}: {}",
            t["scenario"].as_str().unwrap_or("?"),
            t["reason"].as_str().unwrap_or("?")
        );
    }
}

/// The tracefs directory of io_uring tracepoint `name`, when this kernel
/// has that tracepoint.
fn tracepoint_dir(name: &str) -> Option<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .map(|root| Path::new(root).join("events/io_uring").join(name))
        .find(|dir| dir.join("format").exists())
}

/// Whether this kernel has the io_uring tracepoint `name`.
pub fn has_tracepoint(name: &str) -> bool {
    tracepoint_dir(name).is_some()
}

/// Whether the io_uring tracepoint `name` exists and its record has
/// `field` (e.g. 5.10's io_uring_complete has no `req`).
pub fn tracepoint_has_field(name: &str, field: &str) -> bool {
    let Some(dir) = tracepoint_dir(name) else {
        return false;
    };
    let format = std::fs::read_to_string(dir.join("format")).unwrap_or_default();
    format.lines().any(|l| {
        l.trim_start().starts_with("field:")
            && l.split(';')
                .next()
                .is_some_and(|decl| decl.rsplit([' ', '*']).next().is_some_and(|n| n == field))
    })
}

/// Reads `stderr` up to the line starting with `prefix` (the tracer's
/// "tracing" line) and returns the lines before it: warnings about the
/// kernel, such as tracepoints it lacks, may come first.
pub fn read_until_line(stderr: &mut impl std::io::BufRead, prefix: &str) -> Vec<String> {
    let mut before = Vec::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).expect("reading stderr");
        assert!(
            n > 0,
            "stderr ended before a line starting with {prefix:?}:\n{}",
            before.join("")
        );
        if line.starts_with(prefix) {
            return before;
        }
        before.push(line);
    }
}

/// Skips `test` loudly when the tracer said (on `stderr`) that it cannot
/// decode what requests touch on this kernel. Returns whether it did.
pub fn skipped_without_objects(test: &str, stderr: &str) -> bool {
    const SAID: &str =
        "uringtrace: what requests touch (paths, addresses, fds) is not decoded on this kernel: ";
    match stderr.lines().find_map(|l| l.strip_prefix(SAID)) {
        Some(why) => {
            skip(
                test,
                &format!("the tracer decodes no request objects here: {why}"),
            );
            true
        }
        None => false,
    }
}
