//! --attach: the kprobe path gives the same events as the tracepoints, on
//! kernels that have kprobes (the VM suite); where there are none, asking
//! for it fails clearly and `auto` never picks it.

mod common;

use std::process::Command;

use common::{
    TempDir, assert_matches_truth, assert_no_drops, bin, has_kprobes, read_ndjson, require_root,
    skip, trace_scenario,
};

#[test]
fn kprobe_mode_matches_ground_truth() {
    require_root();
    if !has_kprobes() {
        skip(
            "kprobe_mode_matches_ground_truth",
            "no kprobe PMU on this kernel (CONFIG_KPROBES off); the VM suite runs it",
        );
        return;
    }
    let dir = TempDir::new("kprobe");
    let run = trace_scenario(
        &dir,
        "tour",
        "json",
        &["--attach", "kprobe", "-e", "syscalls"],
    );
    assert_no_drops(&run.stderr);
    assert!(
        run.stderr.contains("hooked with kprobes"),
        "not in kprobe mode:\n{}",
        run.stderr
    );
    assert_matches_truth(&run.truth, &read_ndjson(&run.trace_path));
}

#[test]
fn missing_kprobes_fail_clearly_and_auto_uses_tracepoints() {
    require_root();
    let out = Command::new(bin())
        .args(["--attach", "kprobe", "-d", "0.1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if has_kprobes() {
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("hooked with kprobes"), "{stderr}");
    } else {
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("no kprobe PMU"), "{stderr}");
        assert!(stderr.contains("--attach tracepoint"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // auto takes the syscall tracepoints whenever they exist.
    let dir = TempDir::new("auto");
    let run = trace_scenario(&dir, "submit", "json", &["--attach", "auto"]);
    let tracepoints = std::path::Path::new("/sys/kernel/tracing/events/syscalls").exists();
    assert_eq!(
        !run.stderr.contains("hooked with kprobes"),
        tracepoints,
        "{}",
        run.stderr
    );
    assert_matches_truth(&run.truth, &read_ndjson(&run.trace_path));
}
