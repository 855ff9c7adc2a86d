//! Where formatted events go.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
};

use anyhow::Context as _;

pub struct Output {
    sink: BufWriter<Box<dyn Write>>,
}

impl Output {
    /// Opens the sink before anything is attached, so a bad path fails fast.
    pub fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let sink: Box<dyn Write> = match path {
            Some(path) => Box::new(
                File::create(path)
                    .with_context(|| format!("cannot write the output file {}", path.display()))?,
            ),
            None => Box::new(io::stdout()),
        };
        Ok(Self {
            sink: BufWriter::with_capacity(1 << 16, sink),
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.sink.write_all(bytes).context("writing events")
    }

    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.sink.flush().context("writing events")
    }
}
