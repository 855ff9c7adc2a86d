//! A static busybox for the commands the tests start (`sleep`, `mount`,
//! `uname`...), from Debian's busybox-static package. The shell itself
//! comes from this machine (see host_tools).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{
    apt::{self, Source},
    run::workspace_root,
    vm::{host_tools, kernels::apt_for},
};

/// Where busybox comes from; any release would do, this one is shared with
/// the 6.1 kernel's package lists.
const RELEASE: &str = "bookworm";
const SOURCES: &[Source] = &[
    Source::main("bookworm"),
    Source::security("bookworm-security"),
];

/// The applets to link in /bin: every one this busybox has (the tests run
/// `sleep`, `uname`, `mount`..., a VM being debugged by hand wants the
/// rest), except those `host_tools` brings in their full form.
pub fn applets(busybox_bin: &Path) -> anyhow::Result<Vec<String>> {
    let out = Command::new(busybox_bin)
        .arg("--list")
        .output()
        .with_context(|| format!("cannot run {} --list", busybox_bin.display()))?;
    if !out.status.success() {
        bail!("{} --list failed: {}", busybox_bin.display(), out.status);
    }
    let applets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| {
            !a.is_empty()
                && !a.contains('/')
                && *a != "busybox"
                && !host_tools::TOOLS.iter().any(|(tool, _)| tool == a)
        })
        .map(str::to_string)
        .collect();
    if !applets.iter().any(|a| a == "sleep") {
        bail!("{} has no sleep applet", busybox_bin.display());
    }
    Ok(applets)
}

/// The cached busybox binary, fetched on first use.
pub fn prepare() -> anyhow::Result<PathBuf> {
    let dir = workspace_root().join("target/vm/busybox");
    let bin = dir.join("busybox");
    if bin.is_file() {
        return Ok(bin);
    }
    println!("vm-test: busybox: downloading busybox-static from Debian {RELEASE}");
    let apt = apt_for(RELEASE, SOURCES)?;
    apt.update()?;
    let debs = apt.download(&["busybox-static".to_string()])?;
    let unpacked = dir.with_extension("unpack");
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked)
            .with_context(|| format!("removing {}", unpacked.display()))?;
    }
    for deb in &debs {
        apt::unpack(deb, &unpacked)?;
    }
    let found = ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|p| unpacked.join(p))
        .find(|p| p.is_file())
        .context("busybox-static has no bin/busybox or usr/bin/busybox")?;
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Copied then renamed: an interrupted fetch leaves no half file behind.
    let partial = dir.join("busybox.partial");
    fs::copy(&found, &partial)
        .with_context(|| format!("copying {} to {}", found.display(), partial.display()))?;
    fs::rename(&partial, &bin).with_context(|| format!("renaming {}", partial.display()))?;
    fs::remove_dir_all(&unpacked).with_context(|| format!("removing {}", unpacked.display()))?;
    Ok(bin)
}
