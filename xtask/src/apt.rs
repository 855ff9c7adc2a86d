//! Debian packages fetched with a private apt configuration: its own
//! sources list, package lists and download directory under `target/`, so
//! the machine's apt sources and state are never touched and nothing is
//! installed. Used for sid's kernel headers (setup) and for the VM suite's
//! kernels and busybox.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::run::status;

const MIRROR: &str = "http://deb.debian.org";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// One line of the private sources list.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// `debian`, or `debian-security` for the `<suite>-security` suites.
    pub archive: &'static str,
    pub suite: &'static str,
}

impl Source {
    pub const fn main(suite: &'static str) -> Self {
        Self {
            archive: "debian",
            suite,
        }
    }

    pub const fn security(suite: &'static str) -> Self {
        Self {
            archive: "debian-security",
            suite,
        }
    }
}

/// The candidate version of a package, as `apt-cache show` gives it.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Names only, alternatives flattened.
    pub depends: Vec<String>,
}

pub struct PrivateApt {
    sources: PathBuf,
    lists: PathBuf,
    debs: PathBuf,
}

impl PrivateApt {
    /// A private apt rooted at `base` reading `sources`.
    pub fn new(base: &Path, sources: &[Source]) -> anyhow::Result<Self> {
        let apt = Self {
            sources: base.join("sources.list"),
            lists: base.join("lists"),
            debs: base.join("debs"),
        };
        fs::create_dir_all(apt.lists.join("partial"))
            .with_context(|| format!("creating {}", apt.lists.display()))?;
        fs::create_dir_all(&apt.debs)
            .with_context(|| format!("creating {}", apt.debs.display()))?;
        // Only the Packages indexes: the machine's apt.conf.d may enable
        // translations or AppStream metadata we have no use for.
        let list: String = sources
            .iter()
            .map(|s| {
                format!(
                    "deb [signed-by={KEYRING} target=Packages] {MIRROR}/{} {} main\n",
                    s.archive, s.suite
                )
            })
            .collect();
        fs::write(&apt.sources, list)
            .with_context(|| format!("writing {}", apt.sources.display()))?;
        Ok(apt)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.arg(format!("-oDir::Etc::SourceList={}", self.sources.display()))
            .arg("-oDir::Etc::SourceParts=/dev/null")
            .arg(format!("-oDir::State::Lists={}", self.lists.display()))
            .arg("-oDir::Cache::pkgcache=")
            .arg("-oDir::Cache::srcpkgcache=")
            .arg("-oAPT::Get::List-Cleanup=0")
            .arg("-oDebug::NoLocking=1")
            // The download directory is ours, not readable by the _apt
            // sandbox user; without this apt warns on every download.
            .arg("-oAPT::Sandbox::User=root");
        cmd
    }

    pub fn update(&self) -> anyhow::Result<()> {
        status(self.command("apt-get").args(["-qq", "update"])).context(
            "updating the private package lists failed: is deb.debian.org reachable \
             (an http proxy set in the environment or /etc/apt/apt.conf.d is used)?",
        )
    }

    /// Names of the packages starting with `prefix`.
    pub fn package_names(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let out = stdout_of(self.command("apt-cache").args(["pkgnames", prefix]))?;
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        Ok(names)
    }

    /// The candidate of each of `packages`.
    pub fn show(&self, packages: &[String]) -> anyhow::Result<Vec<Package>> {
        if packages.is_empty() {
            return Ok(Vec::new());
        }
        let out = stdout_of(
            self.command("apt-cache")
                .args(["show", "--no-all-versions"])
                .args(packages),
        )?;
        Ok(parse_stanzas(&out))
    }

    /// Downloads `packages` (`name` or `name=version`) unless already
    /// there; returns their .deb files.
    pub fn download(&self, packages: &[String]) -> anyhow::Result<Vec<PathBuf>> {
        // The file names come from apt itself: versions with an epoch are
        // spelled with %3a in them.
        let uris = stdout_of(
            self.command("apt-get")
                .current_dir(&self.debs)
                .args(["-qq", "--print-uris", "download"])
                .args(packages),
        )?;
        let files: Vec<PathBuf> = uris
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(|f| self.debs.join(f))
            .collect();
        if files.len() != packages.len() {
            bail!(
                "apt-get --print-uris download {} named {} files: {uris}",
                packages.join(" "),
                files.len()
            );
        }
        let missing: Vec<&String> = packages
            .iter()
            .zip(&files)
            .filter(|(_, f)| !f.is_file())
            .map(|(p, _)| p)
            .collect();
        if !missing.is_empty() {
            status(
                self.command("apt-get")
                    .current_dir(&self.debs)
                    .args(["-qq", "download"])
                    .args(missing),
            )?;
        }
        for f in &files {
            if !f.is_file() {
                bail!("apt-get download left no {}", f.display());
            }
        }
        Ok(files)
    }
}

/// `apt-get download` of `packages` from Debian `suite`, with a private
/// sources list and state under `base`. Returns the .deb files.
pub fn fetch_debs(
    base: &Path,
    suite: &'static str,
    packages: &[&str],
) -> anyhow::Result<Vec<PathBuf>> {
    let apt = PrivateApt::new(base, &[Source::main(suite)])?;
    apt.update()?;
    let packages: Vec<String> = packages.iter().map(|p| p.to_string()).collect();
    apt.download(&packages)
}

/// `a` is a newer Debian version than `b` (dpkg's own comparison).
pub fn version_newer(a: &str, b: &str) -> anyhow::Result<bool> {
    let st = Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .context("cannot run dpkg --compare-versions")?;
    Ok(st.success())
}

/// Unpacks `deb` into `dir` (no maintainer scripts, nothing installed).
pub fn unpack(deb: &Path, dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    status(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))
}

fn stdout_of(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("{shown}: output is not UTF-8"))
}

/// `apt-cache show` stanzas: Package, Version and Depends of each.
fn parse_stanzas(text: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|stanza| {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            };
            let depends = field("Depends")
                .unwrap_or("")
                .split([',', '|'])
                .filter_map(|d| d.split_whitespace().next())
                .map(str::to_string)
                .collect();
            Some(Package {
                name: field("Package")?.to_string(),
                version: field("Version")?.to_string(),
                depends,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas() {
        let text = "Package: linux-image-7.2.13+deb14-amd64\nSource: linux-signed-amd64 (7.2.13+1)\n\
                    Version: 7.2.13-1\nDepends: dracut | initramfs-tools (>= 0.120+deb8u2), \
                    linux-binary-7.2.13+deb14-amd64 (= 7.2.13-1)\nSize: 1892\n\n\
                    Package: busybox-static\nVersion: 1:1.35.0-4+b3\n\n";
        let p = parse_stanzas(text);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].version, "7.2.13-1");
        assert_eq!(
            p[0].depends,
            [
                "dracut",
                "initramfs-tools",
                "linux-binary-7.2.13+deb14-amd64"
            ]
        );
        assert_eq!(p[1].name, "busybox-static");
        assert!(p[1].depends.is_empty());
    }
}
