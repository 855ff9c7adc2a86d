//! The kernel matrix: Debian kernel packages, resolved from the package
//! indexes at run time, downloaded with the private apt and unpacked under
//! `target/vm/kernels/<name>/` (only `vmlinuz` and `config` are kept).
//! Nothing is installed; a cached kernel is reused until `--refresh-kernels`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

use crate::{
    apt::{self, PrivateApt, Source},
    run::workspace_root,
};

/// One kernel of the matrix.
#[derive(Debug)]
pub struct Kernel {
    /// Upstream major.minor: `--kernel` takes it, and the package name
    /// starts `linux-image-<name>.`.
    pub name: &'static str,
    /// Debian release it comes from, for the listing.
    pub release: &'static str,
    pub sources: &'static [Source],
}

pub const MATRIX: [Kernel; 4] = [
    Kernel {
        name: "5.10",
        release: "bullseye",
        sources: &[
            Source::main("bullseye"),
            Source::security("bullseye-security"),
        ],
    },
    Kernel {
        name: "6.1",
        release: "bookworm",
        sources: &[
            Source::main("bookworm"),
            Source::security("bookworm-security"),
        ],
    },
    Kernel {
        name: "6.12",
        release: "trixie",
        sources: &[Source::main("trixie"), Source::security("trixie-security")],
    },
    Kernel {
        name: "7.2",
        release: "sid",
        sources: &[Source::main("sid")],
    },
];

/// Options the VM boots with no module loaded: the initramfs is the root,
/// the console a serial port. Each must be `=y`.
const REQUIRED_CONFIG: [(&str, &str); 13] = [
    (
        "CONFIG_BLK_DEV_INITRD",
        "the initramfs is the root filesystem",
    ),
    ("CONFIG_BINFMT_ELF", "running the static test binaries"),
    (
        "CONFIG_SERIAL_8250_CONSOLE",
        "console=ttyS0, the only output",
    ),
    ("CONFIG_DEVTMPFS", "/dev"),
    ("CONFIG_TMPFS", "/tmp"),
    ("CONFIG_PROC_FS", "/proc"),
    ("CONFIG_SYSFS", "/sys"),
    ("CONFIG_DEBUG_FS", "/sys/kernel/debug"),
    ("CONFIG_IO_URING", "io_uring itself"),
    ("CONFIG_BPF_SYSCALL", "loading the tracer's eBPF programs"),
    ("CONFIG_BPF_EVENTS", "eBPF programs on tracepoints"),
    (
        "CONFIG_FTRACE_SYSCALLS",
        "the syscalls:sys_{enter,exit}_* tracepoints",
    ),
    (
        "CONFIG_EVENT_TRACING",
        "tracefs events and their format files",
    ),
];

/// A kernel ready to boot.
#[derive(Debug)]
pub struct Prepared {
    pub name: &'static str,
    pub vmlinuz: PathBuf,
    /// `<package> <version>` it was unpacked from.
    pub package: String,
}

pub fn select(names: &[String]) -> anyhow::Result<Vec<&'static Kernel>> {
    if names.is_empty() {
        return Ok(MATRIX.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            MATRIX.iter().find(|k| k.name == n.trim()).with_context(|| {
                let known: Vec<&str> = MATRIX.iter().map(|k| k.name).collect();
                format!("no kernel {n:?} in the matrix; known: {}", known.join(", "))
            })
        })
        .collect()
}

fn cache_dir(kernel: &Kernel) -> PathBuf {
    workspace_root().join("target/vm/kernels").join(kernel.name)
}

/// The private apt of one Debian release (shared by what comes from it).
pub fn apt_for(release: &str, sources: &[Source]) -> anyhow::Result<PrivateApt> {
    PrivateApt::new(
        &workspace_root().join("target/vm/apt").join(release),
        sources,
    )
}

/// `<package> <version>` of the cached kernel, if there is one.
pub fn cached_package(kernel: &Kernel) -> Option<String> {
    let dir = cache_dir(kernel);
    if !dir.join("vmlinuz").is_file() || !dir.join("config").is_file() {
        return None;
    }
    fs::read_to_string(dir.join("package"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The cached kernel, or the newest package of the matrix entry fetched
/// and unpacked; its config checked either way.
pub fn prepare(kernel: &'static Kernel, refresh: bool) -> anyhow::Result<Prepared> {
    let dir = cache_dir(kernel);
    let package = match cached_package(kernel) {
        Some(package) if !refresh => {
            println!("vm-test: kernel {}: {package} (cached)", kernel.name);
            package
        }
        _ => fetch(kernel, &dir)?,
    };
    check_config(&dir.join("config"))
        .with_context(|| format!("kernel {} ({package}) cannot run the VM suite", kernel.name))?;
    Ok(Prepared {
        name: kernel.name,
        vmlinuz: dir.join("vmlinuz"),
        package,
    })
}

fn fetch(kernel: &'static Kernel, dir: &Path) -> anyhow::Result<String> {
    let apt = apt_for(kernel.release, kernel.sources)?;
    apt.update()?;
    let image = newest_image(kernel, &apt)?;
    // `linux-image-<abi>` holds the kernel itself up to trixie; from sid on
    // it is a meta package and the kernel is in `linux-binary-<abi>`, its
    // config in `linux-base-<abi>`.
    let abi = image
        .name
        .strip_prefix("linux-image-")
        .context("resolved a package that is not linux-image-*")?;
    let mut packages = vec![format!("{}={}", image.name, image.version)];
    for dep in &image.depends {
        if *dep == format!("linux-binary-{abi}") || *dep == format!("linux-base-{abi}") {
            packages.push(dep.clone());
        }
    }
    let package = format!("{} {}", image.name, image.version);
    println!(
        "vm-test: kernel {}: downloading {} ({})",
        kernel.name,
        package,
        packages.join(" ")
    );
    let debs = apt.download(&packages)?;

    let unpacked = dir.with_extension("unpack");
    let fresh = dir.with_extension("new");
    for d in [&unpacked, &fresh] {
        if d.exists() {
            fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
        }
    }
    for deb in &debs {
        apt::unpack(deb, &unpacked)?;
    }
    let vmlinuz = find_one(&unpacked, abi, "vmlinuz")?;
    let config = find_one(&unpacked, abi, "config")?;
    fs::create_dir_all(&fresh).with_context(|| format!("creating {}", fresh.display()))?;
    copy(&vmlinuz, &fresh.join("vmlinuz"))?;
    copy(&config, &fresh.join("config"))?;
    fs::write(fresh.join("package"), format!("{package}\n"))
        .with_context(|| format!("writing {}", fresh.display()))?;
    // Swapped in whole, so an interrupted fetch never looks cached.
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::rename(&fresh, dir).with_context(|| format!("renaming {}", fresh.display()))?;
    // The modules (hundreds of MB) and the .debs are not needed again.
    fs::remove_dir_all(&unpacked).with_context(|| format!("removing {}", unpacked.display()))?;
    for deb in &debs {
        fs::remove_file(deb).with_context(|| format!("removing {}", deb.display()))?;
    }
    println!(
        "vm-test: kernel {}: {package} in {}",
        kernel.name,
        dir.display()
    );
    Ok(package)
}

/// The newest `linux-image-<name>.<abi>-amd64` in the release: the generic
/// amd64 flavour, not cloud/rt, not a -dbg or -unsigned package.
fn newest_image(kernel: &Kernel, apt: &PrivateApt) -> anyhow::Result<apt::Package> {
    let prefix = format!("linux-image-{}.", kernel.name);
    let names: Vec<String> = apt
        .package_names(&prefix)?
        .into_iter()
        .filter(|n| is_generic_image(n, &prefix))
        .collect();
    let mut newest: Option<apt::Package> = None;
    for package in apt.show(&names)? {
        let newer = match &newest {
            None => true,
            Some(best) => apt::version_newer(&package.version, &best.version)?,
        };
        if newer {
            newest = Some(package);
        }
    }
    newest.with_context(|| {
        let any = apt
            .package_names("linux-image-")
            .map(|v| {
                v.into_iter()
                    .filter(|n| is_generic_image(n, "linux-image-"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        format!(
            "Debian {} has no {prefix}*-amd64 kernel (it has: {any}); update MATRIX in \
             xtask/src/vm/kernels.rs",
            kernel.release
        )
    })
}

fn is_generic_image(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix("-amd64"))
        // An ABI like `0-56`, `107+deb13`, `13+deb14`: nothing but digits,
        // separators and "deb", so no flavour word (cloud, rt) and no
        // -dbg/-unsigned/-template suffix.
        .is_some_and(|abi| {
            !abi.is_empty()
                && abi.starts_with(|c: char| c.is_ascii_digit())
                && abi
                    .replace("deb", "")
                    .chars()
                    .all(|c| c.is_ascii_digit() || ".+-".contains(c))
        })
}

/// `boot/<what>-<abi>` (up to trixie) or `usr/lib/modules/<abi>/<what>`
/// (from sid on).
fn find_one(root: &Path, abi: &str, what: &str) -> anyhow::Result<PathBuf> {
    let candidates = [
        root.join("boot").join(format!("{what}-{abi}")),
        root.join("usr/lib/modules").join(abi).join(what),
        root.join("lib/modules").join(abi).join(what),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "no {what} in the unpacked kernel packages (looked for {})",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

fn check_config(config: &Path) -> anyhow::Result<()> {
    let text =
        fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let mut missing = Vec::new();
    for (option, why) in REQUIRED_CONFIG {
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(option)?.strip_prefix('='));
        if value != Some("y") {
            let is = value.map_or("not set".to_string(), |v| format!("={v}"));
            missing.push(format!("{option} is {is}, needed for {why}"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "{}: the VM loads no modules, so these must be built in: {}",
            config.display(),
            missing.join("; ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_images_only() {
        for (name, prefix) in [
            ("linux-image-5.10.0-46-amd64", "linux-image-5.10."),
            ("linux-image-6.12.107+deb13-amd64", "linux-image-6.12."),
            ("linux-image-7.2.13+deb14-amd64", "linux-image-7.2."),
        ] {
            assert!(is_generic_image(name, prefix), "{name}");
        }
        for name in [
            "linux-image-6.1.0-56-rt-amd64",
            "linux-image-6.1.0-56-cloud-amd64",
            "linux-image-6.1.0-56-amd64-dbg",
            "linux-image-6.1.0-56-amd64-unsigned",
            "linux-image-6.1-amd64",
        ] {
            assert!(!is_generic_image(name, "linux-image-6.1."), "{name}");
        }
    }
}
