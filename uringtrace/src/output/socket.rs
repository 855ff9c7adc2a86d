//! `--socket PATH`: NDJSON (or text) to a local collector listening on a
//! Unix stream socket.

use std::{io::Write as _, os::unix::net::UnixStream, path::Path};

use anyhow::Context as _;

use super::queue::Sink;

pub struct SocketSink {
    stream: UnixStream,
    /// For messages: the collector's socket path.
    name: String,
}

impl SocketSink {
    /// Connects before anything is attached, so a collector that is not
    /// there fails the start rather than the first event.
    pub fn connect(path: &Path) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(path).with_context(|| {
            format!(
                "cannot connect to the collector at {} (a Unix stream socket a local collector listens on)",
                path.display()
            )
        })?;
        Ok(Self {
            stream,
            name: path.display().to_string(),
        })
    }
}

impl Sink for SocketSink {
    fn write_lines(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream
            .write_all(bytes)
            .with_context(|| format!("writing events to the collector at {}", self.name))
    }
}
