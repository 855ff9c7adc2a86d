//! Request tracing against the workload's ground truth: every SQE the
//! engine submitted appears once, with its opcode, user_data, flags and the
//! res of its last CQE, joined to its CQEs by request identity; broken
//! chains, overflows, multishot and kernel-thread requests are reported as
//! such; -e, --ops and -x select what they say.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{TempDir, Traced, assert_no_drops, read_ndjson, require_root, trace_scenario};
use serde_json::Value;

const ECANCELED: i64 = 125;
/// The ground truth's names for what a request touches (docs/events.md).
const OBJECT_FIELDS: &[&str] = &[
    "fd",
    "fixed_file",
    "dfd",
    "path",
    "new_dfd",
    "new_path",
    "addr",
    "family",
    "open_flags",
    "op_flags",
    "mode",
    "len",
    "offset",
];
/// IOSQE_ASYNC shares its bit with the kernel's REQ_F_FORCE_ASYNC, which the
/// kernel also sets on its own (ops that always run async, like SHUTDOWN;
/// requests behind a drain): a submission may show it without the SQE
/// having it.
const IOSQE_ASYNC: u64 = 1 << 4;

fn events<'a>(trace: &'a [Value], name: &str) -> Vec<&'a Value> {
    trace.iter().filter(|e| e["event"] == name).collect()
}

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer `{field}` in {v}"))
}

/// One truth request matched to its traced submission and CQEs.
struct Matched<'a> {
    truth: &'a Value,
    submit: &'a Value,
    cqes: Vec<&'a Value>,
}

/// Matches every `submit` line of the ground truth to the trace and checks
/// it; returns the matches for scenario-specific checks. Panics listing
/// every difference.
fn check_requests<'a>(truth: &'a [Value], trace: &'a [Value]) -> Vec<Matched<'a>> {
    let wanted: Vec<&Value> = truth.iter().filter(|t| t["event"] == "submit").collect();
    assert!(!wanted.is_empty(), "the ground truth lists no request");
    let pids: Vec<u64> = truth.iter().map(|t| u(t, "pid")).collect();
    let ours = |e: &&Value| pids.contains(&e["pid"].as_u64().unwrap_or(0));

    // Submissions (and SQEs rejected before issue) by (pid, ring_fd,
    // user_data, opcode), in trace order: rings reuse fds across the
    // scenarios of a tour, and the i-th truth line of a key is the i-th
    // traced one.
    let key = |e: &Value| {
        (
            u(e, "pid"),
            e["ring_fd"].as_i64().unwrap_or(-1),
            u(e, "user_data"),
            u(e, "opcode"),
        )
    };
    let mut traced: HashMap<_, Vec<&Value>> = HashMap::new();
    for e in trace
        .iter()
        .filter(|e| e["event"] == "submit" || e["event"] == "failed")
        .filter(ours)
    {
        traced.entry(key(e)).or_default().push(e);
    }
    let mut cqes_of: HashMap<u64, Vec<&Value>> = HashMap::new();
    for e in trace
        .iter()
        .filter(|e| e["event"] == "complete" || e["event"] == "cqe_overflow")
        .filter(ours)
    {
        if let Some(req) = e["req"].as_u64() {
            cqes_of.entry(req).or_default().push(e);
        }
    }
    let submitted = traced.values().map(Vec::len).sum::<usize>();

    let mut used: HashMap<_, usize> = HashMap::new();
    let mut undecoded = std::collections::BTreeSet::new();
    let overflow_traced = common::has_tracepoint("io_uring_cqe_overflow");
    let failed_traced = common::has_tracepoint("io_uring_req_failed");
    let mut rejected_unseen = 0;
    let mut problems = Vec::new();
    let mut matched = Vec::new();
    for t in &wanted {
        let k = key(t);
        let n = used.entry(k).or_default();
        let Some(s) = traced.get(&k).and_then(|v| v.get(*n)) else {
            // Without io_uring_req_failed (before 5.17) an SQE rejected at
            // init has no submission to trace: only its CQE shows it.
            let by_cqe_only = !failed_traced
                && t["res"].as_i64().is_some_and(|r| r < 0)
                && trace.iter().filter(ours).any(|e| {
                    e["event"] == "complete"
                        && e["user_data"] == t["user_data"]
                        && e["res"] == t["res"]
                });
            if by_cqe_only {
                rejected_unseen += 1;
            } else {
                problems.push(format!("not traced: {t}"));
            }
            continue;
        };
        *n += 1;
        let mut p = Vec::new();
        let (seen, sent) = (u(s, "sqe_flags"), u(t, "sqe_flags"));
        if seen & !IOSQE_ASYNC != sent & !IOSQE_ASYNC
            || (sent & IOSQE_ASYNC != 0 && seen & IOSQE_ASYNC == 0)
        {
            p.push(format!(
                "sqe_flags {} != truth {}",
                s["sqe_flags"], t["sqe_flags"]
            ));
        }
        if s["opcode_name"] != t["opcode_name"] {
            p.push(format!("opcode_name {}", s["opcode_name"]));
        }
        // What it touches: every object field the engine reported, on the
        // submission (read from the kernel's copy of the SQE). A kernel
        // where the tracer cannot read it says so on the record instead.
        if s["decoded"] == false {
            let why = s["decode_error"].as_str().unwrap_or_default();
            assert!(!why.is_empty(), "decoded:false without a reason: {s}");
            undecoded.insert(why.to_string());
        }
        for field in OBJECT_FIELDS.iter().filter(|_| s["decoded"] != false) {
            if let Some(want) = t.get(*field)
                && s.get(*field) != Some(want)
            {
                p.push(format!("{field} {:?} != truth {want}", s.get(*field)));
            }
        }
        let id = u(s, "req");
        let cqes = cqes_of.remove(&id).unwrap_or_default();
        let want_cqes = u(t, "cqes") as usize;
        if cqes.len() != want_cqes {
            p.push(format!("{} CQEs traced, {want_cqes} reaped", cqes.len()));
        }
        let terminal: Vec<_> = cqes.iter().filter(|c| c["more"] == false).collect();
        match (t.get("res"), terminal.as_slice()) {
            (None, []) => {}
            (Some(res), [last]) => {
                if last["res"] != *res {
                    p.push(format!("res {} != truth {res}", last["res"]));
                }
                if let Some(cflags) = t.get("cflags")
                    && last["cflags"] != *cflags
                {
                    p.push(format!("cflags {} != truth {cflags}", last["cflags"]));
                }
                // Without the overflow tracepoint (before 5.19), an
                // overflowed CQE is traced as it is posted, a `complete`.
                let overflowed = t.get("overflow") == Some(&Value::Bool(true)) && overflow_traced;
                if overflowed != (last["event"] == "cqe_overflow") {
                    p.push(format!(
                        "last CQE is a {} event, truth overflow={overflowed}",
                        last["event"]
                    ));
                }
                if !std::ptr::eq(**last, *cqes.last().expect("non-empty")) {
                    p.push("a CQE with F_MORE came after the last one".into());
                }
            }
            (res, last) => p.push(format!(
                "{} terminal CQEs traced, truth res {res:?}",
                last.len()
            )),
        }
        // Latency: each CQE after the submission, in order, and latency_ns
        // is exactly the distance.
        let mut prev = u(s, "ts_ns");
        for (i, c) in cqes.iter().enumerate() {
            let ts = u(c, "ts_ns");
            if ts < prev {
                p.push(format!("CQE {i} at {ts} before {prev}"));
            }
            if u(c, "latency_ns") != ts - u(s, "ts_ns") {
                p.push(format!(
                    "CQE {i}: latency_ns {} != ts difference",
                    c["latency_ns"]
                ));
            }
            if u(c, "cqes") != i as u64 + 1 {
                p.push(format!("CQE {i}: cqes {}", c["cqes"]));
            }
            prev = ts;
        }
        if !p.is_empty() {
            problems.push(format!(
                "{}: {}\n  truth: {t}\n  trace: {s}",
                t["note"],
                p.join("; ")
            ));
        }
        matched.push(Matched {
            truth: t,
            submit: s,
            cqes,
        });
    }
    if submitted != matched.len() {
        problems.push(format!(
            "{submitted} submissions traced for {} in the ground truth",
            matched.len()
        ));
    }
    if !cqes_of.is_empty() {
        problems.push(format!(
            "CQEs of requests the engine did not submit: {:?}",
            cqes_of.values().flatten().collect::<Vec<_>>()
        ));
    }
    assert!(
        problems.is_empty(),
        "requests differ from the ground truth:\n{}",
        problems.join("\n")
    );
    REJECTED_UNSEEN.set(rejected_unseen);
    if rejected_unseen > 0 {
        eprintln!(
            "not covered on this kernel: {rejected_unseen} SQEs rejected at init, seen by their CQE \
             only (no io_uring_req_failed tracepoint)"
        );
    }
    for why in undecoded {
        eprintln!("not covered on this kernel: what requests touch: {why}");
    }
    matched
}

fn trace_requests(dir: &TempDir, scenario: &str, extra: &[&str]) -> (Traced, Vec<Value>) {
    let t = trace_scenario(dir, scenario, "json", extra);
    assert_no_drops(&t.stderr);
    let trace = read_ndjson(&t.trace_path);
    (t, trace)
}

thread_local! {
    /// How many requests the last check_requests of this test (each test
    /// runs on a thread of its own) matched by their CQE alone.
    static REJECTED_UNSEEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The final line reports nothing left unexplained for the workload: the
/// only CQEs without a traced submission are those of SQEs rejected at init
/// on a kernel that cannot trace them (check_requests counted them).
fn assert_all_requests_finished(stderr: &str) {
    for what in ["still in flight", "evicted", "without a traced CQE"] {
        assert!(!stderr.contains(what), "`{what}` in:\n{stderr}");
    }
    const UNMATCHED: &str = " CQEs without a traced submission";
    let unmatched: usize = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" events, "))
        .and_then(|l| l.split("; ").find_map(|part| part.strip_suffix(UNMATCHED)))
        .map_or(0, |n| n.parse().expect("a count"));
    assert_eq!(
        unmatched,
        REJECTED_UNSEEN.get(),
        "CQEs without a traced submission, other than of SQEs rejected at init:\n{stderr}"
    );
}

#[test]
fn tour_requests_match_ground_truth() {
    require_root();
    let dir = TempDir::new("req-tour");
    let (t, trace) = trace_requests(&dir, "tour", &[]);
    let matched = check_requests(&t.truth, &trace);
    assert!(matched.len() > 300, "only {} requests", matched.len());
    assert_all_requests_finished(&t.stderr);
    // The syscalls of the same run are still all there.
    common::assert_matches_truth(&t.truth, &trace);
}

#[test]
fn each_request_scenario_alone() {
    require_root();
    let dir = TempDir::new("req-each");
    for scenario in [
        "nop-storm",
        "file-io",
        "link-chain",
        "timeouts",
        "poll-pipe",
        "net-loopback",
        "multishot-recv",
        "async-forced",
        "fs-paths",
    ] {
        let (t, trace) = trace_requests(&dir, scenario, &[]);
        common::note_engine_skips(&t.skipped);
        if common::engine_skip(&t.skipped, scenario).is_some() {
            continue;
        }
        check_requests(&t.truth, &trace);
        assert_all_requests_finished(&t.stderr);
    }
}

#[test]
fn nop_storm_count_and_text() {
    require_root();
    let dir = TempDir::new("req-storm");
    let (t, trace) = trace_requests(&dir, "nop-storm", &["-e", "submit,complete"]);
    let truth = t.truth.iter().filter(|l| l["event"] == "submit").count();
    assert_eq!(truth, 256);
    assert_eq!(events(&trace, "submit").len(), 256);
    assert_eq!(events(&trace, "complete").len(), 256);
    // -e hid everything else, system calls included.
    assert_eq!(trace.len(), 512, "other events shown");
    // Before 6.1 the completion tracepoint has no request pointer, and CQEs
    // are joined by user_data.
    let joined_by = if common::tracepoint_has_field("io_uring_complete", "req") {
        "req"
    } else {
        "user_data"
    };
    assert!(
        events(&trace, "complete")
            .iter()
            .all(|c| c["route"] == serde_json::json!(["inline"]) && c["matched"] == joined_by)
    );

    let text = trace_scenario(&dir, "submit", "text", &["-e", "submit,complete"]);
    let out = std::fs::read_to_string(&text.trace_path).unwrap();
    // `# stats` lines are about the tracer (tests/stream.rs).
    let lines: Vec<_> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 8, "{out}");
    assert!(lines[0].contains(" submit ring=") && lines[0].contains(" NOP(user_data="));
    assert!(
        lines
            .iter()
            .filter(|l| l.contains(" complete "))
            .all(|l| l.contains(" = 0 <") && l.ends_with("[inline]")),
        "{out}"
    );
}

#[test]
fn broken_chains_are_reported() {
    require_root();
    let dir = TempDir::new("req-chain");
    let (t, trace) = trace_requests(&dir, "link-chain", &[]);
    let matched = check_requests(&t.truth, &trace);
    let fail_links = events(&trace, "fail_link");
    assert!(!fail_links.is_empty(), "no fail_link event");
    // Each cancelled request is named by exactly one fail_link, whose
    // request is the one that broke the chain and which has a failed CQE.
    for m in &matched {
        let res = m.truth["res"].as_i64();
        let id = u(m.submit, "req");
        let naming: Vec<_> = fail_links
            .iter()
            .filter(|f| f["next_req"].as_u64() == Some(id))
            .collect();
        // The head of a chain whose next SQE failed at init is cancelled
        // itself, and names the rest in its own fail_link events.
        let heads_a_broken_chain = fail_links.iter().any(|f| f["req"].as_u64() == Some(id));
        if res == Some(-ECANCELED) && !heads_a_broken_chain {
            assert_eq!(
                naming.len(),
                1,
                "cancelled {} named by {} fail_link events",
                m.truth,
                naming.len()
            );
            for f in naming {
                let breaker = u(f, "req");
                assert!(
                    matched.iter().any(|b| u(b.submit, "req") == breaker
                        && b.truth["res"].as_i64().is_some_and(|r| r < 0)),
                    "fail_link {f} names request {breaker}, which did not fail"
                );
            }
        }
    }
}

#[test]
fn sqe_rejected_at_init_is_reported_whole() {
    require_root();
    if !common::has_tracepoint("io_uring_req_failed") {
        common::skip(
            "sqe_rejected_at_init_is_reported_whole",
            "this kernel has no io_uring_req_failed tracepoint (Linux 5.17+)",
        );
        return;
    }
    let dir = TempDir::new("req-failed");
    let (t, trace) = trace_requests(&dir, "link-chain", &[]);
    let matched = check_requests(&t.truth, &trace);
    // The SQE rejected at init: a `failed` event with the whole SQE and
    // the same error as its CQE.
    let failed = events(&trace, "failed");
    assert!(!failed.is_empty(), "no failed event");
    for f in &failed {
        let id = u(f, "req");
        let m = matched
            .iter()
            .find(|m| u(m.submit, "req") == id)
            .unwrap_or_else(|| panic!("failed event {f} matches no truth line"));
        assert_eq!(f["error"], m.truth["res"], "{f}");
        for field in ["off", "addr", "len", "op_flags", "buf_index", "personality"] {
            assert!(f[field].is_u64(), "{field} missing in {f}");
        }
    }
}

#[test]
fn multishot_completions_join_one_request() {
    require_root();
    let dir = TempDir::new("req-multishot");
    let (t, trace) = trace_requests(&dir, "multishot-recv", &[]);
    if common::skipped_by_engine(
        "multishot_completions_join_one_request",
        &t.skipped,
        "multishot-recv",
    ) {
        return;
    }
    let matched = check_requests(&t.truth, &trace);
    let multishot: Vec<_> = matched.iter().filter(|m| m.cqes.len() > 1).collect();
    assert!(multishot.len() >= 2, "no multishot request");
    for m in multishot {
        let (last, more) = m.cqes.split_last().unwrap();
        assert!(more.iter().all(|c| c["more"] == true), "{:?}", m.cqes);
        assert!(
            more.iter().all(|c| c["cflag_names"]
                .as_array()
                .unwrap()
                .contains(&"IORING_CQE_F_BUFFER".into())
                && c["buffer_id"].is_u64()),
            "{:?}",
            m.cqes
        );
        assert_eq!(last["more"], false);
    }
}

#[test]
fn cq_overflow_is_reported() {
    require_root();
    if !common::has_tracepoint("io_uring_cqe_overflow") {
        common::skip(
            "cq_overflow_is_reported",
            "this kernel has no io_uring_cqe_overflow tracepoint (Linux 5.19+)",
        );
        return;
    }
    let dir = TempDir::new("req-overflow");
    let (t, trace) = trace_requests(&dir, "cq-overflow", &[]);
    let matched = check_requests(&t.truth, &trace);
    let overflowed: Vec<_> = matched
        .iter()
        .filter(|m| m.truth.get("overflow") == Some(&Value::Bool(true)))
        .collect();
    assert!(!overflowed.is_empty(), "the scenario overflowed nothing");
    for m in &overflowed {
        let last = m.cqes.last().unwrap();
        assert_eq!(last["event"], "cqe_overflow");
        assert_eq!(last["matched"], "user_data");
        assert_eq!(last["lost"], Value::Null, "{last}");
    }
    assert_eq!(events(&trace, "cqe_overflow").len(), overflowed.len());
}

#[test]
fn kernel_threads_are_attributed_to_the_ring_owner() {
    require_root();
    let dir = TempDir::new("req-workers");
    for (scenario, worker) in [("sqpoll-requests", "sqpoll"), ("async-forced", "io-wq")] {
        let (t, trace) = trace_requests(&dir, scenario, &[]);
        let matched = check_requests(&t.truth, &trace);
        let pid = u(&t.truth[0], "pid");
        let on_worker: Vec<_> = trace.iter().filter(|e| e["worker"] == worker).collect();
        assert!(
            !on_worker.is_empty(),
            "{scenario}: no event on a {worker} thread"
        );
        for e in &on_worker {
            assert_eq!(u(e, "pid"), pid, "{e}");
            assert_ne!(u(e, "tid"), pid, "{e}");
        }
        if worker == "sqpoll" {
            for m in &matched {
                assert_eq!(m.submit["sq_thread"], true, "{}", m.submit);
                assert_eq!(m.submit["sqpoll"], true, "{}", m.submit);
            }
        } else {
            let forced: Vec<_> = matched
                .iter()
                .filter(|m| u(m.truth, "sqe_flags") & (1 << 4) != 0)
                .collect();
            assert!(!forced.is_empty());
            for m in forced {
                let route = m.cqes.last().unwrap()["route"].as_array().unwrap().clone();
                assert!(route.contains(&"async".into()), "{}: {route:?}", m.truth);
            }
        }
    }
}

#[test]
fn ops_filter_keeps_only_those_opcodes() {
    require_root();
    let dir = TempDir::new("req-ops");
    let (t, trace) = trace_requests(&dir, "file-io", &["--ops", "read,readv", "-e", "requests"]);
    let want: Vec<_> = t
        .truth
        .iter()
        .filter(|l| {
            l["event"] == "submit"
                && ["IORING_OP_READ", "IORING_OP_READV"]
                    .contains(&l["opcode_name"].as_str().unwrap())
        })
        .collect();
    assert!(!want.is_empty());
    let mut by_event: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &trace {
        *by_event.entry(e["event"].as_str().unwrap()).or_default() += 1;
        if e.get("req").is_some() {
            let name = e["opcode_name"]
                .as_str()
                .unwrap_or_else(|| panic!("no opcode: {e}"));
            assert!(["IORING_OP_READ", "IORING_OP_READV"].contains(&name), "{e}");
        }
    }
    assert_eq!(by_event.get("submit"), Some(&want.len()), "{by_event:?}");
    assert_eq!(by_event.get("complete"), Some(&want.len()), "{by_event:?}");
    assert!(!by_event.contains_key("io_uring_enter"));
}

#[test]
fn failed_only_keeps_failed_requests() {
    require_root();
    let dir = TempDir::new("req-x");
    let (t, trace) = trace_requests(&dir, "link-chain", &["-x", "-e", "requests"]);
    let failed_truth = t
        .truth
        .iter()
        .filter(|l| l["event"] == "submit" && l["res"].as_i64().is_some_and(|r| r < 0))
        .count();
    let completes = events(&trace, "complete");
    assert_eq!(completes.len(), failed_truth);
    assert!(completes.iter().all(|c| c["res"].as_i64().unwrap() < 0));
    assert!(events(&trace, "submit").is_empty());
    assert!(!events(&trace, "fail_link").is_empty());
}
