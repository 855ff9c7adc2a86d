//! --uid, --comm, --cgroup: two workloads that differ only in that
//! attribute run side by side; the trace holds exactly the selected one's
//! calls and requests, checked against its ground truth.

mod common;

use std::{os::unix::fs::symlink, process::Command};

use common::{TempDir, assert_matches_truth, assert_no_drops, bin, read_ndjson, require_root};
use serde_json::Value;

/// Runs `uringtrace -f json <filter> -- sh -c SCRIPT` and returns the
/// trace. The scripts end in `&& wait $!`: the exit status is the
/// workloads', so one failing (a ground truth cut short) fails the test
/// here, not later as a trace that differs.
fn trace_script(dir: &TempDir, filter: &[&str], script: &str) -> Vec<Value> {
    let trace = dir.path("trace");
    let out = Command::new(bin())
        // A fresh trace per call: -o appends.
        .args(["-f", "json", "--truncate", "-o"])
        .arg(&trace)
        .args(filter)
        .args(["--", "sh", "-c", script])
        .output()
        .expect("running uringtrace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown only when the test fails (libtest captures it): the tracer's
    // counters and notes, for a trace that differs from the ground truth.
    eprintln!("uringtrace {filter:?} stderr:\n{stderr}");
    assert!(out.status.success(), "{stderr}");
    assert_no_drops(&stderr);
    read_ndjson(&trace)
}

fn pids(events: &[Value]) -> Vec<u64> {
    let mut p: Vec<u64> = events.iter().filter_map(|e| e["pid"].as_u64()).collect();
    p.sort();
    p.dedup();
    p
}

#[test]
fn comm_selects_one_of_two_workloads_with_its_workers() {
    require_root();
    let dir = TempDir::new("comm");
    // Same binary under two names: two comms.
    let a = dir.path("uring-a");
    let b = dir.path("uring-b");
    symlink(bin(), &a).unwrap();
    symlink(bin(), &b).unwrap();
    let script = format!(
        "{a} workload async-forced --report {ta} & {b} workload async-forced --report {tb} && wait $!",
        a = a.display(),
        b = b.display(),
        ta = dir.path("a.truth").display(),
        tb = dir.path("b.truth").display(),
    );
    let trace = trace_script(&dir, &["--comm", "uring-a"], &script);
    let truth_a = read_ndjson(&dir.path("a.truth"));
    let truth_b = read_ndjson(&dir.path("b.truth"));
    let pid_a = truth_a[0]["pid"].as_u64().unwrap();
    assert_ne!(pid_a, truth_b[0]["pid"].as_u64().unwrap());
    assert_eq!(pids(&trace), [pid_a], "only uring-a's events");
    assert_matches_truth(&truth_a, &trace);
    // Its io-wq worker threads (named iou-wrk-*) pass with it.
    assert!(
        trace
            .iter()
            .any(|e| e["worker"] == "io-wq" && e["comm"].as_str().unwrap().starts_with("iou-wrk")),
        "no worker event"
    );
    let submits = trace.iter().filter(|e| e["event"] == "submit").count() as u64;
    let wanted = truth_a.iter().filter(|t| t["event"] == "submit").count() as u64;
    // Exact, but for submissions whose program the kernel reported skipped.
    let skipped = common::skipped_runs_so_far();
    assert!(
        submits <= wanted && submits + skipped >= wanted,
        "{submits} submissions traced, {wanted} made, {skipped} program runs skipped"
    );
}

#[test]
fn uid_selects_by_real_uid() {
    require_root();
    let dir = TempDir::new("uid");
    std::fs::set_permissions(
        dir.path(""),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    // The same scenario as root and as nobody (65534): setpriv changes the
    // uid for the second one only.
    let script = format!(
        "{bin} workload submit --report {t0} & setpriv --reuid=65534 --regid=65534 --clear-groups {bin} workload submit --report {t1} && wait $!",
        bin = bin(),
        t0 = dir.path("root.truth").display(),
        t1 = dir.path("nobody.truth").display(),
    );
    for (uid, truth) in [("65534", "nobody.truth"), ("0", "root.truth")] {
        let trace = trace_script(&dir, &["--uid", uid], &script);
        let truth = read_ndjson(&dir.path(truth));
        assert_eq!(
            pids(&trace),
            [truth[0]["pid"].as_u64().unwrap()],
            "--uid {uid}"
        );
        assert_matches_truth(&truth, &trace);
        assert!(
            trace
                .iter()
                .all(|e| e["uid"].as_u64().unwrap().to_string() == uid)
        );
    }
}

#[test]
fn cgroup_selects_by_cgroup_v2() {
    require_root();
    let dir = TempDir::new("cgroup");
    // Use the machine's cgroup2 mount if /sys/fs/cgroup is one, else mount
    // the v2 hierarchy privately.
    let mount = dir.path("cg2");
    let root = if std::path::Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
        std::path::PathBuf::from("/sys/fs/cgroup")
    } else {
        std::fs::create_dir_all(&mount).unwrap();
        let st = Command::new("mount")
            .args(["-t", "cgroup2", "none"])
            .arg(&mount)
            .status()
            .unwrap();
        assert!(st.success(), "cannot mount cgroup2");
        mount.clone()
    };
    let cg = root.join(format!("uringtrace-test-{}", std::process::id()));
    std::fs::create_dir(&cg).unwrap();
    let script = format!(
        "sh -c 'echo $$ > {procs} && exec {bin} workload submit --report {t_in}' & {bin} workload submit --report {t_out} && wait $!",
        procs = cg.join("cgroup.procs").display(),
        bin = bin(),
        t_in = dir.path("in.truth").display(),
        t_out = dir.path("out.truth").display(),
    );
    let trace = trace_script(&dir, &["--cgroup", cg.to_str().unwrap()], &script);
    let truth = read_ndjson(&dir.path("in.truth"));
    let result = std::panic::catch_unwind(|| {
        assert_eq!(pids(&trace), [truth[0]["pid"].as_u64().unwrap()]);
        assert_matches_truth(&truth, &trace);
    });
    let _ = std::fs::remove_dir(&cg);
    if mount.exists() {
        let _ = Command::new("umount").arg(&mount).status();
    }
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn context_names_the_process() {
    require_root();
    use std::os::unix::ffi::OsStrExt as _;
    let dir = TempDir::new("context");
    // --context reads /proc when an event is decoded: a process that lives
    // a while (long-wait: 5 s) is still there however loaded the machine.
    let run = common::trace_scenario(&dir, "long-wait", "json", &["--context"]);
    let trace = read_ndjson(&run.trace_path);
    let truth_pid = run.truth[0]["pid"].as_u64().unwrap();
    let ns = |what: &str| -> u64 {
        let link = std::fs::read_link(format!("/proc/self/ns/{what}")).unwrap();
        let text = link.to_str().unwrap().to_string();
        text[text.find('[').unwrap() + 1..text.len() - 1]
            .parse()
            .unwrap()
    };
    let own_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_cgroup = own_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap()
        .to_string();
    let events: Vec<&Value> = trace.iter().filter(|e| e["event"] != "stats").collect();
    assert!(!events.is_empty());
    for e in events {
        assert_eq!(e["pid"].as_u64(), Some(truth_pid));
        // The traced command is uringtrace's child, started from bin().
        assert_eq!(
            e["exe"].as_str().map(str::as_bytes),
            Some(
                std::path::Path::new(bin())
                    .canonicalize()
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
            ),
            "{e}"
        );
        assert!(
            e["ppid"].as_u64().is_some_and(|p| p != truth_pid && p > 1),
            "{e}"
        );
        assert_eq!(e["pid_ns"].as_u64(), Some(ns("pid")), "{e}");
        assert_eq!(e["mnt_ns"].as_u64(), Some(ns("mnt")), "{e}");
        assert_eq!(e["cgroup"].as_str(), Some(own_cgroup.as_str()), "{e}");
    }
    // Without --context, none of it.
    let plain = common::trace_scenario(&dir, "submit", "json", &[]);
    let plain = read_ndjson(&plain.trace_path);
    assert!(
        plain
            .iter()
            .all(|e| e.get("exe").is_none() && e.get("ppid").is_none())
    );
}
