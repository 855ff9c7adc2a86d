//! A session under an event storm. While a burst lasts the consumer drains
//! again at once instead of sleeping until it is woken; the session must
//! still end on time and on a signal. In a test binary of its own: the
//! storm would flood the other tests' whole-system traces.

mod common;

use std::{
    io::Read as _,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{bin, read_until_line, require_root};

/// A NOP storm in a process of its own (not the tracer's command), killed
/// when dropped.
struct Storm(Child);

impl Storm {
    fn start() -> Self {
        let child = Command::new(bin())
            .args(["workload", "nop-bench", "--batch", "32", "--seconds", "60"])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the NOP storm");
        // Until it is submitting.
        std::thread::sleep(Duration::from_millis(200));
        Self(child)
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The number of events on the tracer's final line.
fn events_seen(stderr: &str) -> u64 {
    let last = stderr
        .lines()
        .rev()
        .find(|l| l.contains(" events, "))
        .unwrap_or_else(|| panic!("no final events line:\n{stderr}"));
    last.trim_start_matches("uringtrace: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no event count in {last:?}"))
}

#[test]
fn duration_and_sigint_end_a_session_during_a_storm() {
    require_root();
    let _storm = Storm::start();
    let args = ["-f", "json", "-o", "/dev/null", "-e", "submit,complete"];

    let start = Instant::now();
    let out = Command::new(bin())
        .args(args)
        .args(["-d", "1"])
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        elapsed < Duration::from_secs(6),
        "-d 1 took {elapsed:?} under the storm: {err}"
    );
    // The storm was traced: drops are allowed here (the tracer is not
    // pinned away from the storm), missing it is not.
    assert!(events_seen(&err) >= 10_000, "{err}");

    let mut tracer = Command::new(bin())
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(tracer.stderr.take().unwrap());
    read_until_line(&mut stderr, "uringtrace: tracing all processes");
    std::thread::sleep(Duration::from_secs(1));
    let signalled = Instant::now();
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let status = tracer.wait().unwrap();
    let waited = signalled.elapsed();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(
        waited < Duration::from_secs(5),
        "SIGINT took {waited:?} to stop the tracer under the storm: {rest}"
    );
    assert!(events_seen(&rest) >= 10_000, "{rest}");
}
