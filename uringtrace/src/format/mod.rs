//! Formatters: decoded events to text lines or NDJSON objects. They read
//! decoded values only; the decode tables give every name.

pub mod json;
pub mod text;

use crate::{clock::WallClock, event::SyscallEvent};

/// Output formats a user can pick with `-f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One strace-like line per call.
    Text,
    /// One JSON object per line (NDJSON); see docs/events.md.
    Json,
}

pub struct Formatter {
    format: OutputFormat,
    clock: WallClock,
}

impl Formatter {
    pub fn new(format: OutputFormat, clock: WallClock) -> Self {
        Self { format, clock }
    }

    /// Appends the event, with its newline, to `out`.
    pub fn write(&self, event: &SyscallEvent, out: &mut Vec<u8>) {
        match self.format {
            OutputFormat::Text => text::write(event, &self.clock, out),
            OutputFormat::Json => json::write(event, &self.clock, out),
        }
    }
}
