//! Skipping a test loudly. Shared by the integration tests (tests/common)
//! and the unit tests (src/main.rs includes this file by path): both run
//! under `cargo xtask test`, which counts what this writes.

/// Marks the running test as skipped, loudly: a line on stderr, and a line
/// in `$URINGTRACE_SKIP_LOG` when set, which `cargo xtask test` (and the VM
/// suite) read so that a skipped test is never counted as passed.
pub fn skip(test: &str, why: &str) {
    eprintln!("skipped: {test}: {why}");
    if let Some(log) = std::env::var_os("URINGTRACE_SKIP_LOG") {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("opening the skip log {log:?}: {e}"));
        writeln!(f, "{test}: {why}").expect("writing the skip log");
    }
}
