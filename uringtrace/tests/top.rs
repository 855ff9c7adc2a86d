//! `uringtrace top --json`: the per-interval counts of a process, summed
//! over the refreshes, equal what the workload did.

mod common;

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::{Command, Stdio},
};

use common::{TempDir, bin, read_ndjson, require_root};
use serde_json::Value;

#[test]
fn top_counts_a_workload_exactly() {
    require_root();
    let dir = TempDir::new("top");
    let truth_path = dir.path("truth");
    let mut workload = Command::new(bin())
        .args(["workload", "nop-storm", "--wait-stdin", "--report"])
        .arg(&truth_path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = workload.id();
    let mut top = Command::new(bin())
        .args(["top", "--json", "-i", "0.3", "-p", &pid.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The workload waits until top says it is tracing.
    let mut stderr_lines = BufReader::new(top.stderr.take().unwrap()).lines();
    let first = stderr_lines.next().unwrap().unwrap();
    assert!(first.starts_with("uringtrace top: tracing"), "{first}");
    workload.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(workload.wait().unwrap().success());
    // Done: Ctrl-C makes top print the interval it was in and exit, however
    // slow the machine (a VM under emulation) made the workload.
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(top.id() as i32, libc::SIGINT) };
    let out = top.wait_with_output().unwrap();
    let stderr: Vec<String> = stderr_lines.map_while(Result::ok).collect();
    let stderr = stderr.join("\n");
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("dropped"), "{stderr}");
    let refreshes: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!refreshes.is_empty());
    let truth = read_ndjson(&truth_path);
    let requests: Vec<&Value> = truth.iter().filter(|t| t["event"] == "submit").collect();
    let ring_fd = requests[0]["ring_fd"].as_i64().unwrap();
    let (mut submitted, mut completed, mut errors) = (0, 0, 0);
    for r in refreshes
        .iter()
        .flat_map(|r| r["rings"].as_array().unwrap())
    {
        assert_eq!(r["pid"].as_u64(), Some(u64::from(pid)), "{r}");
        assert_eq!(r["ring_fd"].as_i64(), Some(ring_fd), "{r}");
        submitted += r["submitted"].as_u64().unwrap();
        completed += r["completed"].as_u64().unwrap();
        errors += r["errors"].as_u64().unwrap();
    }
    assert_eq!(
        (submitted, completed, errors),
        (requests.len() as u64, 256, 0)
    );
    assert_eq!(requests.len(), 256);
}
