//! The VMs' root filesystem: an uncompressed newc cpio archive (the
//! kernel's initramfs format), written here rather than with a cpio tool.
//! Uncompressed because decompressing tens of MB under TCG costs more than
//! loading them.
//!
//! Layout: `/init` (vm-init), busybox and its applet links in `/bin`, the
//! host tools busybox cannot stand in for (with their libraries), the
//! workspace's files and the tracer at their paths on this machine (the
//! tests have those compiled in), the test binaries in
//! `/uringtrace-vm/tests/`, and `/uringtrace-vm/manifest` telling the init
//! what to run.

use std::{
    collections::BTreeSet,
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

use crate::vm::binaries::Binaries;

/// What the manifest tells the init besides the test binaries.
pub struct RunSettings<'a> {
    pub timeout_per_test: u64,
    pub test_threads: u32,
    /// Passed to every test binary (a name filter, say).
    pub test_args: &'a [String],
}

/// One more file for the VM: where it goes (no leading `/`), from where.
pub struct ExtraFile {
    pub inside: String,
    pub source: PathBuf,
    pub mode: u32,
}

/// The userland around the tests.
pub struct Userland<'a> {
    pub busybox: &'a Path,
    pub applets: &'a [String],
    /// The host tools and their libraries.
    pub host_files: &'a [ExtraFile],
    /// The workspace's files, at their paths on this machine.
    pub sources: &'a [ExtraFile],
}

pub fn write(
    path: &Path,
    binaries: &Binaries,
    userland: &Userland,
    settings: &RunSettings,
) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut cpio = Cpio::new(BufWriter::new(file));
    let fill = |cpio: &mut Cpio<BufWriter<File>>| -> anyhow::Result<()> {
        for dir in [
            "dev", "proc", "sys", "tmp", "run", "root", "etc", "sbin", "usr/bin",
        ] {
            cpio.dir(dir, 0o755)?;
        }
        // The kernel opens /dev/console for init's stdio before any
        // devtmpfs is mounted.
        cpio.char_device("dev/console", 0o600, 5, 1)?;
        cpio.char_device("dev/null", 0o666, 1, 3)?;
        cpio.file_from("init", 0o755, &binaries.init)?;
        cpio.file_from("bin/busybox", 0o755, userland.busybox)?;
        for applet in userland.applets {
            cpio.symlink(&format!("bin/{applet}"), "busybox")?;
        }
        for f in userland.host_files.iter().chain(userland.sources) {
            cpio.file_from(&f.inside, f.mode, &f.source)?;
        }
        // Names for the ids the tests use (root, and nobody for the
        // unprivileged run), for the tools that print them.
        cpio.file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )?;
        cpio.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
        let tracer = binaries
            .tracer
            .to_str()
            .context("the tracer's path is not UTF-8")?;
        cpio.file_from(tracer.trim_start_matches('/'), 0o755, &binaries.tracer)?;
        let mut manifest = format!(
            "# written by cargo xtask vm-test\ntimeout {}\nthreads {}\n\
             env PATH=/bin:/sbin:/usr/bin:/usr/sbin\nenv HOME=/root\nenv TMPDIR=/tmp\n",
            settings.timeout_per_test, settings.test_threads
        );
        for arg in settings.test_args {
            if arg.contains('\n') {
                bail!("test argument {arg:?} has a newline");
            }
            manifest.push_str(&format!("arg {arg}\n"));
        }
        for (name, exe) in &binaries.tests {
            let inside = format!("uringtrace-vm/tests/{name}");
            cpio.file_from(&inside, 0o755, exe)?;
            manifest.push_str(&format!("test {name} /{inside}\n"));
        }
        cpio.file("uringtrace-vm/manifest", 0o644, manifest.as_bytes())?;
        Ok(())
    };
    fill(&mut cpio).with_context(|| format!("writing {}", path.display()))?;
    cpio.finish()
        .and_then(|mut out| out.flush())
        .with_context(|| format!("writing {}", path.display()))
}

/// A newc ("070701") archive writer: a 110-byte ASCII header per entry,
/// then the NUL-terminated name and the data, each padded to 4 bytes.
/// Parent directories are added before their entries, as the kernel's
/// unpacker needs them first.
pub struct Cpio<W: Write> {
    out: W,
    written: u64,
    next_inode: u32,
    dirs: BTreeSet<String>,
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

impl<W: Write> Cpio<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            written: 0,
            next_inode: 1,
            dirs: BTreeSet::new(),
        }
    }

    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.parents(path)?;
        if self.dirs.insert(path.to_string()) {
            self.entry(path, S_IFDIR | perm, 2, 0, (0, 0), io::empty())?;
        }
        Ok(())
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.parents(path)?;
        self.entry(path, S_IFREG | perm, 1, data.len() as u64, (0, 0), data)
    }

    pub fn file_from(&mut self, path: &str, perm: u32, source: &Path) -> io::Result<()> {
        let file = File::open(source).map_err(|e| annotate(e, source))?;
        let size = file.metadata().map_err(|e| annotate(e, source))?.len();
        self.parents(path)?;
        self.entry(path, S_IFREG | perm, 1, size, (0, 0), file)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.parents(path)?;
        let t = target.as_bytes();
        self.entry(path, S_IFLNK | 0o777, 1, t.len() as u64, (0, 0), t)
    }

    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.parents(path)?;
        self.entry(path, S_IFCHR | perm, 1, 0, (major, minor), io::empty())
    }

    /// Writes the trailer; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 1, 0, (0, 0), io::empty())?;
        Ok(self.out)
    }

    fn parents(&mut self, path: &str) -> io::Result<()> {
        let mut parent = String::new();
        let components: Vec<&str> = path.split('/').collect();
        for c in &components[..components.len().saturating_sub(1)] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            if self.dirs.insert(parent.clone()) {
                self.entry(&parent.clone(), S_IFDIR | 0o755, 2, 0, (0, 0), io::empty())?;
            }
        }
        Ok(())
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        size: u64,
        (rdev_major, rdev_minor): (u32, u32),
        mut data: impl io::Read,
    ) -> io::Result<()> {
        let size32 = u32::try_from(size).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: {size} bytes is too large for cpio"),
            )
        })?;
        let inode = if name == "TRAILER!!!" {
            0
        } else {
            self.next_inode += 1;
            self.next_inode
        };
        let header = format!(
            "070701{inode:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size32:08x}\
             {dev_major:08x}{dev_minor:08x}{rdev_major:08x}{rdev_minor:08x}{namesize:08x}{check:08x}",
            uid = 0,
            gid = 0,
            mtime = 0,
            dev_major = 0,
            dev_minor = 0,
            namesize = name.len() + 1,
            check = 0,
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        let copied = io::copy(&mut data, &mut self.out)?;
        if copied != size {
            return Err(io::Error::other(format!(
                "{name}: expected {size} bytes, read {copied} (file changed while archiving?)"
            )));
        }
        self.written += copied;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = (4 - self.written % 4) % 4;
        self.put(&[0u8; 3][..n as usize])
    }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout() {
        let mut cpio = Cpio::new(Vec::new());
        cpio.file("a/b", 0o644, b"hello").unwrap();
        let out = cpio.finish().unwrap();
        let text = String::from_utf8_lossy(&out);
        // The parent directory comes first, then the file, then the trailer.
        let a = text.find("a\0").unwrap();
        let b = text.find("a/b\0").unwrap();
        let trailer = text.find("TRAILER!!!\0").unwrap();
        assert!(a < b && b < trailer);
        assert_eq!(out.len() % 4, 0);
        // Every header starts on a 4-byte boundary with the newc magic.
        for (i, _) in text.match_indices("070701") {
            assert_eq!(i % 4, 0);
        }
        // The file's header: regular file 0644, 5 bytes, name size 4.
        let header = &text[b - 110..b];
        assert_eq!(&header[14..22], "000081a4");
        assert_eq!(&header[54..62], "00000005");
        assert_eq!(&header[94..102], "00000004");
        // 110 + 4 bytes of header and name, padded to 116.
        assert_eq!(&text[b + 6..b + 11], "hello");
    }
}
