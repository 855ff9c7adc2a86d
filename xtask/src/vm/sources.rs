//! The workspace's own files, at their absolute paths in the VM: tests read
//! data through `env!("CARGO_MANIFEST_DIR")` (the JSON Schema in docs/, for
//! one), a path compiled in as this machine's.

use std::{os::unix::fs::PermissionsExt as _, path::PathBuf, process::Command};

use anyhow::{Context as _, bail};

use crate::{run::workspace_root, vm::initramfs::ExtraFile};

/// Every file git tracks or would track (ignored ones, target/ included,
/// left out): about a megabyte of sources, docs and data.
pub fn collect() -> anyhow::Result<Vec<ExtraFile>> {
    let root = workspace_root();
    let out = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("cannot run git ls-files: the VM suite copies the workspace's files by it")?;
    if !out.status.success() {
        bail!(
            "git ls-files in {} failed ({}): the VM suite needs a git checkout to know the \
             workspace's files: {}",
            root.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let root_str = root
        .to_str()
        .context("the workspace path is not UTF-8")?
        .trim_start_matches('/')
        .to_string();
    let mut files = Vec::new();
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name =
            std::str::from_utf8(name).context("a file name in the workspace is not UTF-8")?;
        let source: PathBuf = root.join(name);
        // Tracked but deleted in the working tree: nothing to copy.
        let Ok(meta) = source.metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        files.push(ExtraFile {
            inside: format!("{root_str}/{name}"),
            source,
            mode: meta.permissions().mode() & 0o777,
        });
    }
    Ok(files)
}
