//! `cargo xtask lint`: formatting and clippy for every crate, the eBPF one
//! included (built for its own target, since it cannot build for the host).

use crate::run::{cargo, status};

pub fn run() -> anyhow::Result<()> {
    status(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // Default members only: the eBPF crate cannot build for the host.
    status(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    // `+nightly` goes through the rustup proxy, not the cargo running us;
    // RUSTC etc. from that cargo would pin the stable compiler.
    status(
        std::process::Command::new("cargo")
            .current_dir(crate::run::workspace_root().join("uringtrace-ebpf"))
            .env_remove("RUSTC")
            .env_remove("RUSTC_WRAPPER")
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("RUSTDOC")
            .env_remove("CARGO")
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
