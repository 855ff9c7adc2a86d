//! A static busybox for the VMs' `sh` (the tests run `sh -c`) and the few
//! commands they start, from Debian's busybox-static package.

use std::{fs, path::PathBuf};

use anyhow::Context as _;

use crate::{
    apt::{self, Source},
    run::workspace_root,
    vm::kernels::apt_for,
};

/// Where busybox comes from; any release would do, this one is shared with
/// the 6.1 kernel's package lists.
const RELEASE: &str = "bookworm";
const SOURCES: &[Source] = &[
    Source::main("bookworm"),
    Source::security("bookworm-security"),
];

/// Applets linked in /bin: what the tests start (`sh`, `sleep`, `true`),
/// and enough to look around when debugging a VM by hand.
pub const APPLETS: [&str; 16] = [
    "sh", "sleep", "true", "false", "cat", "echo", "env", "kill", "ls", "mkdir", "rm", "ps", "id",
    "uname", "dmesg", "mount",
];

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
