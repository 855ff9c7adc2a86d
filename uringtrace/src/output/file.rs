//! `-o FILE`: appended to (or truncated, with `--truncate`), created with
//! mode 0600, and optionally rotated by size (`--rotate-size`) to FILE.1,
//! FILE.2, ... at line boundaries.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write as _},
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use super::queue::Sink;

/// Mode of a file uringtrace creates: a trace shows what processes do, for
/// root's eyes only unless the user says otherwise (an existing file keeps
/// the mode it has).
const NEW_FILE_MODE: u32 = 0o600;

/// `--rotate-size` and `--rotate-keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file is rotated before a line that would take it past this size.
    pub max_bytes: u64,
    /// Rotated files kept: FILE.1 (the newest) to FILE.keep.
    pub keep: u32,
}

pub struct FileSink {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    rotation: Option<Rotation>,
}

fn open(path: &Path, truncate: bool, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(!truncate)
        .write(true)
        .truncate(truncate)
        .mode(mode)
        .open(path)
}

impl FileSink {
    pub fn open(path: &Path, truncate: bool, rotation: Option<Rotation>) -> anyhow::Result<Self> {
        let file = open(path, truncate, NEW_FILE_MODE)
            .with_context(|| format!("cannot write the output file {}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat the output file {}", path.display()))?;
        if !meta.is_file() {
            // A FIFO or a device (-o /dev/null) is written as a stream:
            // there is nothing to rotate.
            return Ok(Self {
                path: path.to_owned(),
                file,
                size: 0,
                rotation: None,
            });
        }
        if meta.mode() & 0o077 != 0 {
            eprintln!(
                "uringtrace: warning: {} is readable or writable by others (mode {:04o}); uringtrace keeps the mode of an existing file",
                path.display(),
                meta.mode() & 0o7777
            );
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            size: meta.len(),
            rotation,
        })
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// FILE.(keep-1) to FILE.keep, ..., FILE to FILE.1, then a new FILE
    /// with the mode of the one it replaces.
    fn rotate(&mut self, keep: u32) -> anyhow::Result<()> {
        for n in (1..keep).rev() {
            match std::fs::rename(self.numbered(n), self.numbered(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| {
                        format!("rotating {} to .{}", self.numbered(n).display(), n + 1)
                    });
                }
                _ => {}
            }
        }
        let mode = self
            .file
            .metadata()
            .map_or(NEW_FILE_MODE, |m| m.mode() & 0o7777);
        std::fs::rename(&self.path, self.numbered(1))
            .with_context(|| format!("rotating {} to .1", self.path.display()))?;
        self.file = open(&self.path, false, mode)
            .with_context(|| format!("creating {} after rotating it", self.path.display()))?;
        self.size = 0;
        Ok(())
    }

    fn write_all(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.file
            .write_all(bytes)
            .with_context(|| format!("writing events to {}", self.path.display()))?;
        self.size += bytes.len() as u64;
        Ok(())
    }
}

/// Bytes of the longest run of whole lines at the start of `bytes` that
/// fits in `room`.
fn lines_within(bytes: &[u8], room: u64) -> usize {
    let limit = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
    bytes[..limit]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

impl Sink for FileSink {
    fn write_lines(&mut self, mut bytes: &[u8]) -> anyhow::Result<()> {
        let Some(rotation) = self.rotation else {
            return self.write_all(bytes);
        };
        while !bytes.is_empty() {
            let mut take = lines_within(bytes, rotation.max_bytes.saturating_sub(self.size));
            if take == 0 {
                if self.size > 0 {
                    self.rotate(rotation.keep)?;
                    continue;
                }
                // One line longer than a whole file: it gets a file alone.
                take = bytes
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |i| i + 1);
            }
            self.write_all(&bytes[..take])?;
            bytes = &bytes[take..];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("uringtrace-unit-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn lines_within_stops_at_a_newline() {
        assert_eq!(lines_within(b"ab\ncd\n", 6), 6);
        assert_eq!(lines_within(b"ab\ncd\n", 5), 3);
        assert_eq!(lines_within(b"ab\ncd\n", 2), 0);
    }

    #[test]
    fn new_file_is_private_and_appended_to() {
        let dir = Dir::new("append");
        let path = dir.0.join("trace");
        let mut sink = FileSink::open(&path, false, None).unwrap();
        sink.write_lines(b"one\n").unwrap();
        drop(sink);
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut sink = FileSink::open(&path, false, None).unwrap();
        sink.write_lines(b"two\n").unwrap();
        assert_eq!(read(&path), "one\ntwo\n");
        let mut sink = FileSink::open(&path, true, None).unwrap();
        sink.write_lines(b"three\n").unwrap();
        assert_eq!(read(&path), "three\n");
    }

    #[test]
    fn rotates_at_line_boundaries_and_keeps_n() {
        let dir = Dir::new("rotate");
        let path = dir.0.join("trace");
        let rotation = Rotation {
            max_bytes: 10,
            keep: 2,
        };
        let mut sink = FileSink::open(&path, false, Some(rotation)).unwrap();
        // 4-byte lines: two fit in 10 bytes, a third would not.
        sink.write_lines(b"aaa\nbbb\nccc\nddd\n").unwrap();
        sink.write_lines(b"eee\nfff\nggg\n").unwrap();
        // A line longer than a file gets one to itself.
        sink.write_lines(b"0123456789abc\nhhh\n").unwrap();
        assert_eq!(read(&path), "hhh\n");
        assert_eq!(read(&dir.0.join("trace.1")), "0123456789abc\n");
        assert_eq!(read(&dir.0.join("trace.2")), "ggg\n");
        assert!(!dir.0.join("trace.3").exists());
    }
}
