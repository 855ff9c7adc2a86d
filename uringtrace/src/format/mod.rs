//! Formatters: decoded events to text lines or NDJSON objects. They read
//! decoded values only; the decode tables give every name.

pub mod json;
pub mod json_alert;
pub mod json_fields;
pub mod json_request;
pub mod json_writer;
pub mod ndjson;
pub mod stats;
pub mod text;
pub mod text_alert;
pub mod text_request;
pub mod timeline;

use crate::{alerts::alert::Alert, clock::WallClock, event::Event};

/// Output formats a user can pick with `-f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One strace-like line per call or request event.
    Text,
    /// One JSON object per line (NDJSON); see docs/events.md.
    Json,
}

pub struct Formatter {
    format: OutputFormat,
    clock: WallClock,
    tasks: json_fields::TaskCache,
}

impl Formatter {
    pub fn new(format: OutputFormat, clock: WallClock) -> Self {
        Self {
            format,
            clock,
            tasks: json_fields::TaskCache::default(),
        }
    }

    /// Appends the event, with its newline, to `out`.
    pub fn write(&self, event: &Event, out: &mut Vec<u8>) {
        match (self.format, event) {
            (OutputFormat::Text, Event::Syscall(e)) => text::write(e, &self.clock, out),
            (OutputFormat::Json, Event::Syscall(e)) => {
                json::write(e, &self.clock, &self.tasks, out)
            }
            (OutputFormat::Text, Event::Request(e)) => text_request::write(e, &self.clock, out),
            (OutputFormat::Json, Event::Request(e)) => {
                json_request::write(e, &self.clock, &self.tasks, out)
            }
        }
    }

    /// Appends the alert, with its newline, to `out`.
    pub fn write_alert(&self, alert: &Alert, out: &mut Vec<u8>) {
        match self.format {
            OutputFormat::Text => text_alert::write(alert, &self.clock, out),
            OutputFormat::Json => json_alert::write(alert, &self.clock, out),
        }
    }
}
