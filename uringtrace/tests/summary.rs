//! Summary mode (-c, -S, --hist): the kernel's counts against the
//! workload's ground truth, per system call and per opcode.

mod common;

use std::collections::BTreeMap;

use common::{TempDir, assert_no_drops, read_ndjson, require_root, trace_scenario};
use serde_json::Value;

/// name -> (count, errors, errno name -> count)
type Table = BTreeMap<String, (u64, u64, BTreeMap<String, u64>)>;

fn errno_name(errno: i64) -> String {
    // The tracer's table is what is under test: name errnos independently,
    // through libc's strerror-compatible numbering of the few seen here.
    match errno {
        1 => "EPERM",
        2 => "ENOENT",
        6 => "ENXIO",
        9 => "EBADF",
        13 => "EACCES",
        14 => "EFAULT",
        22 => "EINVAL",
        62 => "ETIME",
        77 => "EBADFD",
        95 => "EOPNOTSUPP",
        125 => "ECANCELED",
        other => panic!("errno {other} not in the test's table"),
    }
    .to_string()
}

fn add(t: &mut Table, name: &str, result: i64) {
    let row = t.entry(name.to_string()).or_default();
    row.0 += 1;
    if result < 0 {
        row.1 += 1;
        *row.2.entry(errno_name(-result)).or_default() += 1;
    }
}

fn traced(rows: &Value) -> Table {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let errnos = r["errnos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().to_string(),
                        e["count"].as_u64().unwrap(),
                    )
                })
                .collect();
            (
                r["name"].as_str().unwrap().to_string(),
                (
                    r["count"].as_u64().unwrap(),
                    r["errors"].as_u64().unwrap(),
                    errnos,
                ),
            )
        })
        .collect()
}

#[test]
fn summary_counts_match_ground_truth() {
    require_root();
    let dir = TempDir::new("summary");
    let run = trace_scenario(&dir, "tour", "json", &["-c"]);
    assert_no_drops(&run.stderr);
    let lines = read_ndjson(&run.trace_path);
    assert_eq!(lines.len(), 1, "-c writes the summary only: {lines:?}");
    let summary = &lines[0];
    assert_eq!(summary["event"], "summary");

    let mut syscalls = Table::new();
    let mut requests = Table::new();
    let mut submitted: BTreeMap<String, u64> = BTreeMap::new();
    let (mut unmatched, mut overflows) = (0, 0);
    for t in &run.truth {
        let event = t["event"].as_str().unwrap();
        if event.starts_with("io_uring_") {
            add(&mut syscalls, event, t["ret"].as_i64().unwrap());
            continue;
        }
        let op = t["opcode_name"]
            .as_str()
            .map_or_else(|| format!("opcode {}", t["opcode"]), str::to_string);
        *submitted.entry(op.clone()).or_default() += 1;
        let cqes = t["cqes"].as_u64().unwrap();
        // A multishot request's extra CQEs come without a request pointer:
        // the kernel counts them as unmatched.
        unmatched += cqes.saturating_sub(1);
        if t.get("overflow") == Some(&Value::Bool(true)) {
            overflows += 1;
        } else if let Some(res) = t["res"].as_i64() {
            add(&mut requests, &op, res);
        }
    }
    assert_eq!(traced(&summary["syscalls"]), syscalls);
    if !common::has_tracepoint("io_uring_req_failed") {
        common::skip(
            "summary_counts_match_ground_truth",
            "this kernel has no io_uring_req_failed tracepoint: SQEs rejected at init are \
             missing from the in-kernel request counts (the system call counts matched)",
        );
        return;
    }
    let mut traced_requests = traced(&summary["requests"]);
    let traced_unmatched = traced_requests.remove("unmatched").map_or(0, |r| r.0);
    assert_eq!(traced_unmatched, unmatched);
    assert_eq!(traced_requests, requests);
    let traced_submitted: BTreeMap<String, u64> = summary["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| Some((r["name"].as_str()?.to_string(), r["submitted"].as_u64()?)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(traced_submitted, submitted);
    assert_eq!(summary["cqe_overflows"], overflows);
    assert_eq!(summary["table_full"], 0);

    // Every timed row: p50 <= p99, avg within the histogram's range, and the
    // histogram holds exactly the timed values.
    for r in summary["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .chain(summary["requests"].as_array().unwrap())
    {
        let timed = r["timed"].as_u64().unwrap();
        let in_hist: u64 = r["hist"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[2].as_u64().unwrap())
            .sum();
        assert_eq!(in_hist, timed, "{r}");
        if r["name"] != "unmatched" {
            assert_eq!(timed, r["count"].as_u64().unwrap(), "{r}");
            assert!(
                r["p50_ns"].as_u64().unwrap() <= r["p99_ns"].as_u64().unwrap(),
                "{r}"
            );
        }
    }
}

#[test]
fn with_summary_keeps_events_and_hist_draws_bars() {
    require_root();
    let dir = TempDir::new("summary-s");
    let run = trace_scenario(&dir, "nop-storm", "json", &["-S"]);
    let lines = read_ndjson(&run.trace_path);
    let (last, events) = lines.split_last().unwrap();
    assert_eq!(last["event"], "summary");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "complete").count(),
        256
    );
    let nop = last["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "IORING_OP_NOP")
        .expect("a NOP row");
    assert_eq!(
        (nop["submitted"].as_u64(), nop["count"].as_u64()),
        (Some(256), Some(256))
    );

    let text = trace_scenario(&dir, "nop-storm", "text", &["--hist"]);
    let out = std::fs::read_to_string(&text.trace_path).unwrap();
    assert!(out.contains("request latency: IORING_OP_NOP"), "{out}");
    assert!(
        out.contains("system call duration: io_uring_enter"),
        "{out}"
    );
    let nop_line = out
        .lines()
        .find(|l| l.starts_with("IORING_OP_NOP"))
        .unwrap_or_else(|| panic!("no NOP row:\n{out}"));
    let cols: Vec<_> = nop_line.split_whitespace().collect();
    assert_eq!(&cols[1..4], ["256", "256", "0"], "{nop_line}");
}
