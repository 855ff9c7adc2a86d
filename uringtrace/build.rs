//! Builds the eBPF object (uringtrace-ebpf, for the bpf target, with the
//! nightly toolchain and bpf-linker) and leaves it in OUT_DIR, where
//! `load.rs` embeds it. `cargo xtask setup` installs what this needs.

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};
use aya_build::Toolchain;

fn main() -> anyhow::Result<()> {
    // AYA_BUILD_SKIP=1 builds the userspace side alone (quick checks on a
    // machine without the eBPF toolchain). The binary then carries an empty
    // object and says so when asked to trace.
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    if env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        let out = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
        fs::write(out.join("uringtrace"), b"").context("writing the placeholder object")?;
        return Ok(());
    }
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("MetadataCommand::exec")?;
    let ebpf_package = packages
        .into_iter()
        .find(|cargo_metadata::Package { name, .. }| name.as_str() == "uringtrace-ebpf")
        .ok_or_else(|| anyhow!("uringtrace-ebpf package not found"))?;
    let cargo_metadata::Package {
        name,
        manifest_path,
        ..
    } = ebpf_package;
    let ebpf_package = aya_build::Package {
        name: name.as_str(),
        root_dir: manifest_path
            .parent()
            .ok_or_else(|| anyhow!("no parent for {manifest_path}"))?
            .as_str(),
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf_package], Toolchain::default()).context(
        "building the eBPF object failed: run `cargo xtask setup` (nightly rust-src, \
         llvm-22-dev, bpf-linker 0.13.0)",
    )
}
