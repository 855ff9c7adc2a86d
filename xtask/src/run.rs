//! Running commands with their command line shown, and the demo.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs `cmd`, failing with its command line when it fails.
pub fn status(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed: {status}");
    }
    Ok(())
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

pub fn demo() -> anyhow::Result<()> {
    status(cargo().args(["build", "--release", "--package", "uringtrace"]))?;
    let bin = workspace_root().join("target/release/uringtrace");
    if !is_root() {
        bail!(
            "tracing needs root: run `sudo {} -- {} workload tour`",
            bin.display(),
            bin.display()
        );
    }
    println!("==> {} -- {} workload tour", bin.display(), bin.display());
    status(
        Command::new(&bin)
            .arg("--")
            .arg(&bin)
            .args(["workload", "tour"]),
    )
}
