//! `cargo xtask test`: unit tests and host integration tests (which load
//! eBPF, so they need root).

use anyhow::bail;

use crate::{
    run::{cargo, is_root, status},
    setup::kernel_headers_dir,
};

pub fn run(cargo_args: &[String]) -> anyhow::Result<()> {
    if !is_root() {
        bail!("the integration tests load eBPF programs: run `sudo -E cargo xtask test`");
    }
    status(
        cargo()
            .args(["test"])
            .args(cargo_args)
            .env("URINGTRACE_KERNEL_HEADERS", kernel_headers_dir()),
    )
}
