//! --timeline: the Perfetto / Chrome Trace Event file holds one slice per
//! request (submission to last CQE) and one per system call, matching the
//! NDJSON trace of the same run.

mod common;

use std::collections::HashMap;

use common::{TempDir, assert_no_drops, read_ndjson, require_root, trace_scenario};
use serde_json::Value;

#[test]
fn timeline_matches_the_trace() {
    require_root();
    let dir = TempDir::new("timeline");
    let timeline_path = dir.path("timeline.json");
    let run = trace_scenario(
        &dir,
        "tour",
        "json",
        &["--timeline", timeline_path.to_str().unwrap()],
    );
    assert_no_drops(&run.stderr);
    let trace = read_ndjson(&run.trace_path);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&timeline_path).unwrap())
        .expect("the timeline is one JSON document");
    let events = doc["traceEvents"].as_array().expect("traceEvents");

    // Requests: every last CQE with a latency is one b/e pair, same id,
    // lasting exactly its latency.
    let mut begins: HashMap<u64, &Value> = HashMap::new();
    let mut ends: HashMap<u64, &Value> = HashMap::new();
    for e in events {
        match e["ph"].as_str() {
            Some("b") => assert!(begins.insert(e["id"].as_u64().unwrap(), e).is_none()),
            Some("e") => assert!(ends.insert(e["id"].as_u64().unwrap(), e).is_none()),
            _ => {}
        }
    }
    let finished: Vec<&Value> = trace
        .iter()
        .filter(|e| {
            (e["event"] == "complete" || e["event"] == "cqe_overflow")
                && e["more"] == false
                && e["latency_ns"].is_u64()
        })
        .collect();
    assert!(finished.len() > 300);
    assert_eq!(begins.len(), finished.len());
    assert_eq!(ends.len(), finished.len());
    for c in finished {
        let id = c["req"].as_u64().unwrap();
        let (b, e) = (begins[&id], ends[&id]);
        let name = match c["opcode_name"].as_str() {
            Some(n) => n.trim_start_matches("IORING_OP_").to_string(),
            // An opcode no kernel defines shows as its number.
            None => c["opcode"].to_string(),
        };
        assert_eq!(b["name"], name.as_str(), "{c}");
        assert_eq!(b["pid"], c["pid"]);
        assert_eq!(b["args"]["res"], c["res"]);
        let ring = format!("ring {} (fd {})", c["ring"], c["ring_fd"]);
        assert_eq!(b["cat"], ring.as_str());
        let dur_us = e["ts"].as_f64().unwrap() - b["ts"].as_f64().unwrap();
        let latency_us = c["latency_ns"].as_f64().unwrap() / 1000.0;
        assert!(
            (dur_us - latency_us).abs() < 0.002,
            "{dur_us} vs {latency_us}"
        );
        assert!((e["ts"].as_f64().unwrap() - c["ts_ns"].as_f64().unwrap() / 1000.0).abs() < 0.002);
    }
    // System calls: one complete slice each, on the caller's thread.
    let calls: Vec<&Value> = trace
        .iter()
        .filter(|e| {
            e["event"]
                .as_str()
                .is_some_and(|n| n.starts_with("io_uring_"))
        })
        .collect();
    let slices: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(slices.len(), calls.len());
    for (c, s) in calls.iter().zip(&slices) {
        assert_eq!((&s["name"], &s["tid"]), (&c["event"], &c["tid"]));
        assert_eq!(s["args"]["ret"], c["ret"]);
        let dur = s["dur"].as_f64().unwrap() * 1000.0;
        assert!((dur - c["duration_ns"].as_f64().unwrap()).abs() < 2.0);
    }
    // Every process and thread with slices is named.
    assert!(
        events
            .iter()
            .any(|e| e["ph"] == "M" && e["name"] == "process_name")
    );
}
