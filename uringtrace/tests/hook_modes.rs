//! The benchmark's reference points (`--hook-mode`, cargo xtask bench's K1
//! and K1c) move exactly the records uringtrace's real programs do, on the
//! same hooks: their cost is compared with T's, so a mode that missed a
//! hook or fired twice would make every ratio wrong. In a test binary of
//! its own: the reserve modes skip the process filter (it is part of T's
//! work, not the bare limit's) and so count every process's io_uring
//! events, which the other tests' workloads would add to.

mod common;

use std::process::Command;

use common::{bin, require_root};
use serde_json::Value;

/// The tracer's final line: events, written, dropped.
fn final_counts(stderr: &str) -> (u64, u64, u64) {
    let last = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" events, "))
        .unwrap_or_else(|| panic!("no final events line:\n{stderr}"));
    let numbers: Vec<u64> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers[..] {
        [events, written, dropped, ..] => (events, written, dropped),
        _ => panic!("not events, written, dropped: {last:?}"),
    }
}

/// The engine's result line.
fn engine_counts(stdout: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"bench\""))
        .unwrap_or_else(|| panic!("no result line from the engine:\n{stdout}"));
    let v: Value = serde_json::from_str(line).unwrap();
    (v["nops"].as_u64().unwrap(), v["enters"].as_u64().unwrap())
}

#[test]
fn reference_modes_move_the_records_of_every_event() {
    require_root();
    for (mode, decodes) in [("reserve", false), ("reserve-clock", false), ("full", true)] {
        let out = Command::new(bin())
            .args(["--hook-mode", mode, "-f", "json", "-o", "/dev/null"])
            .args(["-e", "enter,submit,complete", "--"])
            .arg(bin())
            // Paced well below what the consumer drains: no drops.
            .args(["workload", "nop-bench", "--batch", "8", "--seconds", "0.3"])
            .args(["--rate", "100000"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "--hook-mode {mode}: {stderr}");
        let (nops, enters) = engine_counts(&stdout);
        assert!(nops >= 8_000, "--hook-mode {mode}: only {nops} NOPs");
        let (events, written, dropped) = final_counts(&stderr);
        assert_eq!(dropped, 0, "--hook-mode {mode}: {stderr}");
        // A submission and a CQE per NOP, a record per io_uring_enter, and
        // the ring's creation (always hooked: it keeps the ring table).
        let shown = 2 * nops + enters;
        assert_eq!(
            (events, written),
            (shown + 1, if decodes { shown } else { 0 }),
            "--hook-mode {mode}: {nops} NOPs in {enters} io_uring_enter calls\n{stderr}"
        );
    }
}
