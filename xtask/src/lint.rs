//! `cargo xtask lint`: formatting and clippy for every crate, the eBPF one
//! included (built for its own target, since it cannot build for the host).

use crate::run::{cargo, status};

pub fn run() -> anyhow::Result<()> {
    status(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // Default members only: the eBPF crate cannot build for the host.
    status(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    status(
        cargo()
            .current_dir(crate::run::workspace_root().join("uringtrace-ebpf"))
            .args([
                "+nightly",
                "clippy",
                "--package",
                "uringtrace-ebpf",
                "--target",
                "bpfel-unknown-none",
                "-Z",
                "build-std=core",
                "--release",
                "--",
                "-D",
                "warnings",
            ]),
    )
}
