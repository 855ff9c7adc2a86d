//! `cargo xtask test`: unit tests and host integration tests (which load
//! eBPF, so they need root).

use std::{
    io::{BufRead as _, BufReader},
    process::Stdio,
};

use anyhow::{Context as _, bail};

use crate::{
    run::{cargo, is_root},
    setup::kernel_headers_dir,
};

pub fn run(cargo_args: &[String]) -> anyhow::Result<()> {
    if !is_root() {
        bail!("the integration tests load eBPF programs: run `sudo -E cargo xtask test`");
    }
    // Tests that cannot run on this kernel say so in this file (and on
    // stderr): libtest counts them as passed, this run must not.
    let skip_log = crate::run::workspace_root().join("target/xtask-test-skips.log");
    let _ = std::fs::remove_file(&skip_log);
    let mut child = cargo()
        // Every test binary runs, whatever the first failure.
        .args(["test", "--no-fail-fast"])
        .args(cargo_args)
        .env("URINGTRACE_KERNEL_HEADERS", kernel_headers_dir())
        .env("URINGTRACE_SKIP_LOG", &skip_log)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |what: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| part.trim().strip_suffix(what))
                    .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
            ignored += count(" ignored");
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    let skips: Vec<String> = std::fs::read_to_string(&skip_log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    for skip in &skips {
        println!("skipped: {skip}");
    }
    let passed = passed.saturating_sub(skips.len() as u64);
    let skipped = ignored + skips.len() as u64;
    // One closing line over every test binary: cargo's own last line is
    // the last binary's, often a doc-test run with nothing in it.
    println!("xtask-test: {passed} passed, {failed} failed, {skipped} skipped");
    if !status.success() {
        bail!("cargo test failed: {status}");
    }
    if passed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(())
}
