//! Static (musl) builds of what runs inside the VMs: the init, the tracer
//! (with its eBPF object embedded) and the tracer's integration test
//! binaries. The executables are found in cargo's JSON messages.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::Stdio,
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::{run::cargo, setup::MUSL_TARGET};

pub struct Binaries {
    pub init: PathBuf,
    /// The tracer, at the path the tests have compiled in
    /// (`CARGO_BIN_EXE_uringtrace`): the initramfs puts it there too.
    pub tracer: PathBuf,
    /// (test target name, executable), by name.
    pub tests: Vec<(String, PathBuf)>,
}

/// Builds all three; the tracer and the tests optimised unless `debug`.
pub fn build(debug: bool) -> anyhow::Result<Binaries> {
    let init = artifacts(&["build", "--release", "--package", "vm-init"])?
        .into_iter()
        .find(|a| a.kind == "bin" && a.name == "vm-init")
        .map(|a| a.executable)
        .context("cargo built no vm-init executable")?;
    // `--test '*'`: the integration tests (and the binary they run) only;
    // plain `--no-run` would also build the tracer's unit tests, a second
    // build of the whole crate the VMs never run.
    let mut args = vec!["test", "--no-run", "--package", "uringtrace", "--test", "*"];
    if !debug {
        args.push("--release");
    }
    let built = artifacts(&args)?;
    let tracer = built
        .iter()
        .find(|a| a.kind == "bin" && a.name == "uringtrace" && !a.test)
        .map(|a| a.executable.clone())
        .context("cargo test --no-run built no uringtrace binary")?;
    // Integration tests only: the unit tests do not depend on the kernel
    // (and read the host's headers), the host run covers them.
    let mut tests: Vec<(String, PathBuf)> = built
        .into_iter()
        .filter(|a| a.kind == "test" && a.test)
        .map(|a| (a.name, a.executable))
        .collect();
    // Cargo reports them as they finish building: sorted, every run has
    // the same order.
    tests.sort();
    if tests.is_empty() {
        bail!("cargo test --no-run built no integration test binary of uringtrace");
    }
    Ok(Binaries {
        init,
        tracer,
        tests,
    })
}

struct Artifact {
    kind: String,
    name: String,
    test: bool,
    executable: PathBuf,
}

/// Runs `cargo <args> --target musl` and returns the executables it
/// reports (diagnostics go to the terminal as usual).
fn artifacts(args: &[&str]) -> anyhow::Result<Vec<Artifact>> {
    let mut cmd = cargo();
    cmd.args(args)
        .args([
            "--target",
            MUSL_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped());
    let shown = format!("{cmd:?}");
    println!("vm-test: cargo {}", args.join(" "));
    let mut child = cmd.spawn().with_context(|| format!("cannot run {shown}"))?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut found = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.with_context(|| format!("reading the output of {shown}"))?;
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(executable) = msg["executable"].as_str() else {
            continue;
        };
        found.push(Artifact {
            kind: msg["target"]["kind"][0].as_str().unwrap_or("").to_string(),
            name: msg["target"]["name"].as_str().unwrap_or("").to_string(),
            test: msg["profile"]["test"].as_bool().unwrap_or(false),
            executable: PathBuf::from(executable),
        });
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(found)
}
