//! `cargo xtask setup`: what a fresh machine lacks to build and test
//! uringtrace, installed idempotently with a line per step.

use std::{
    fs,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::{
    apt,
    run::{is_root, status, workspace_root},
};

const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PACKAGES: [&str; 2] = ["llvm-22-dev", "libpolly-22-dev"];
/// The VM suite's static binaries (init, tracer, tests) are built for it.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
const QEMU_PACKAGE: &str = "qemu-system-x86";

fn ok(step: &str, detail: &str) {
    println!("setup: {step}: {detail}");
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn run() -> anyhow::Result<()> {
    rust_src()?;
    llvm()?;
    bpf_linker()?;
    kernel_headers()?;
    Ok(())
}

/// What `cargo xtask vm-test` needs on top of `run`: the musl target for
/// static binaries, and qemu.
pub fn vm_tools() -> anyhow::Result<()> {
    musl_target()?;
    qemu()
}

fn musl_target() -> anyhow::Result<()> {
    let step = "Rust target x86_64-unknown-linux-musl";
    // Run from cargo, rustup applies to the toolchain that cargo belongs to
    // (RUSTUP_TOOLCHAIN is set for us).
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("`rustup target list --installed` failed: the VM suite needs rustup")?;
    if installed.lines().any(|l| l.trim() == MUSL_TARGET) {
        ok(step, "present");
        return Ok(());
    }
    ok(step, "installing");
    status(Command::new("rustup").args(["target", "add", MUSL_TARGET]))
}

fn qemu() -> anyhow::Result<()> {
    let step = "qemu-system-x86_64 (apt)";
    if let Some(v) = output(Command::new("qemu-system-x86_64").arg("--version")) {
        ok(step, v.lines().next().unwrap_or("present").trim());
        return Ok(());
    }
    if !is_root() {
        bail!(
            "{step}: missing; run as root: apt-get update && apt-get install -y \
             --no-install-recommends {QEMU_PACKAGE}"
        );
    }
    ok(step, &format!("installing {QEMU_PACKAGE}"));
    status(Command::new("apt-get").args(["update", "-qq"]))?;
    status(
        Command::new("apt-get")
            // The VMs run with -nographic: none of the display front ends
            // qemu recommends.
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                QEMU_PACKAGE,
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn rust_src() -> anyhow::Result<()> {
    let step = "nightly rust-src";
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        "nightly",
    ]))
    .context(
        "`rustup component list --toolchain nightly` failed: the eBPF programs need the \
         nightly toolchain (`rustup toolchain install nightly`)",
    )?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        ok(step, "present");
        return Ok(());
    }
    ok(step, "installing");
    status(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

fn package_installed(name: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", name]))
        .is_some_and(|s| s.contains("install ok installed"))
}

fn llvm() -> anyhow::Result<()> {
    let step = "LLVM 22 (apt)";
    let missing: Vec<_> = LLVM_PACKAGES
        .iter()
        .copied()
        .filter(|p| !package_installed(p))
        .collect();
    if missing.is_empty() {
        ok(step, "present");
        return Ok(());
    }
    if !is_root() {
        bail!(
            "{step}: missing {}; run as root: apt-get update && apt-get install -y {}",
            missing.join(" "),
            missing.join(" ")
        );
    }
    ok(step, &format!("installing {}", missing.join(" ")));
    status(Command::new("apt-get").args(["update", "-qq"]))?;
    status(
        Command::new("apt-get")
            .args(["install", "-y", "-qq"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn bpf_linker() -> anyhow::Result<()> {
    let step = "bpf-linker";
    if let Some(v) = output(Command::new("bpf-linker").arg("--version"))
        && v.contains(BPF_LINKER_VERSION)
    {
        ok(step, &format!("{} present", v.trim()));
        return Ok(());
    }
    ok(
        step,
        &format!("building {BPF_LINKER_VERSION} against LLVM 22 (takes a few minutes)"),
    );
    status(
        Command::new("cargo")
            .args([
                "install",
                "bpf-linker",
                "--locked",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22"),
    )
}

/// Where `kernel_headers` leaves a newer linux-libc-dev; the decode tests
/// read `URINGTRACE_KERNEL_HEADERS` (set by `cargo xtask test`).
pub fn kernel_headers_dir() -> PathBuf {
    workspace_root().join("target/kernel-headers/usr/include")
}

/// Debian sid's linux-libc-dev: io_uring.h of a kernel at least as new as
/// the newest we support, so the decode tables are checked against the
/// kernel's own numbers. Fetched with a private apt configuration; the
/// machine's sources are left alone.
fn kernel_headers() -> anyhow::Result<()> {
    let step = "kernel headers (Debian sid linux-libc-dev)";
    let dir = kernel_headers_dir();
    if dir.join("linux/io_uring.h").is_file() {
        ok(step, &format!("present in {}", dir.display()));
        return Ok(());
    }
    ok(step, "downloading");
    let base = workspace_root().join("target/apt-sid");
    let debs = apt::fetch_debs(&base, "sid", &["linux-libc-dev"])?;
    let root = workspace_root().join("target/kernel-headers");
    fs::create_dir_all(&root)?;
    for deb in debs {
        apt::unpack(&deb, &root)?;
    }
    if !dir.join("linux/io_uring.h").is_file() {
        bail!("{step}: linux/io_uring.h not in the package");
    }
    ok(step, &format!("in {}", dir.display()));
    Ok(())
}
