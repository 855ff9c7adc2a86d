//! Programs the tests run that busybox lacks or implements differently,
//! copied from this machine into the initramfs together with the shared
//! libraries `ldd` says they load (the VM has no other userland).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::vm::initramfs::ExtraFile;

/// (program, why the VM needs this machine's copy).
pub const TOOLS: [(&str, &str); 2] = [
    (
        "sh",
        "the tests' `sh -c` scripts start programs by PATH, and Debian's static busybox \
         shell runs its own applets first, whatever PATH says (setpriv among them)",
    ),
    (
        "setpriv",
        "uringtrace/tests/task_filters.rs runs `setpriv --reuid`, which busybox's setpriv lacks",
    ),
];

/// The tools (in /bin, ahead of busybox's applets in PATH and where
/// `#!/bin/sh` looks) and their libraries, at the paths the dynamic loader
/// will look for them.
pub fn collect() -> anyhow::Result<Vec<ExtraFile>> {
    let mut files: Vec<ExtraFile> = Vec::new();
    for (tool, why) in TOOLS {
        let path = find_in_path(tool)
            .with_context(|| format!("{tool} is not installed on this machine: {why}"))?;
        files.push(ExtraFile {
            inside: format!("bin/{tool}"),
            source: path.clone(),
            mode: 0o755,
        });
        for lib in libraries(&path)? {
            let inside = lib
                .to_str()
                .with_context(|| format!("library path {} is not UTF-8", lib.display()))?
                .trim_start_matches('/')
                .to_string();
            if !files.iter().any(|f| f.inside == inside) {
                files.push(ExtraFile {
                    inside,
                    source: lib,
                    mode: 0o755,
                });
            }
        }
    }
    Ok(files)
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// The absolute paths in `ldd`'s answer: `name => /path (addr)` and the
/// loader's `/path (addr)`; the vDSO has none.
fn libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd (libc-bin) to find the libraries of the host tools")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // A static binary makes ldd fail with "not a dynamic executable".
    if !out.status.success() {
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let target = line.split_once("=>").map_or(line, |(_, t)| t).trim();
        if target.starts_with("not found") {
            bail!("{}: ldd says {}", binary.display(), line.trim());
        }
        if let Some(path) = target.split_whitespace().next()
            && path.starts_with('/')
        {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}
