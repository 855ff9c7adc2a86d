//! The other tracers and what the benchmark needs around them, from
//! Debian's packages, installed only when missing.

use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::run::status;

/// The font the plot's text is drawn with (read at run time: plotters'
/// own font loading needs fontconfig's development files to build).
pub const PLOT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// What is installed, each with the package that provides it.
const NEEDED: [(&str, &str); 4] = [
    ("bpftrace", "bpftrace"),
    ("strace", "strace"),
    ("taskset", "util-linux"),
    (PLOT_FONT, "fonts-dejavu-core"),
];

/// Versions of the tools measured, for the results.
#[derive(Debug, Clone)]
pub struct Versions {
    pub bpftrace: String,
    pub strace: String,
}

fn present(what: &str) -> bool {
    if what.starts_with('/') {
        return std::path::Path::new(what).is_file();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {what}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn first_line(program: &str, arg: &str) -> anyhow::Result<String> {
    let out = Command::new(program)
        .arg(arg)
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program} {arg}"))?;
    if !out.status.success() {
        bail!("{program} {arg} failed: {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string())
}

/// Installs what is missing (`apt-get install -y`), then returns the
/// versions of bpftrace and strace.
pub fn ensure() -> anyhow::Result<Versions> {
    let mut missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(what, _)| !present(what))
        .map(|&(_, package)| package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        println!("bench: bpftrace, strace, taskset and the plot font: present");
    } else {
        println!("bench: installing {}", missing.join(" "));
        status(Command::new("apt-get").args(["update", "-qq"]))?;
        status(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
        .context("installing the benchmark's tools from Debian's packages")?;
    }
    Ok(Versions {
        bpftrace: first_line("bpftrace", "--version")?,
        strace: first_line("strace", "-V")?,
    })
}
