//! Where formatted records go: standard output, a file (`-o`, appended,
//! optionally rotated) or a local collector's Unix socket (`--socket`).
//! The drain loop never writes to the sink itself: it puts whole lines in a
//! bounded queue that a writer thread empties, so a sink that stops taking
//! them (a collector that stopped reading, a stalled pipe) costs dropped
//! events, counted, never memory or a stalled drain.

mod file;
mod queue;
mod socket;

use std::{fs::File, os::fd::AsFd as _, path::Path, time::Instant};

use anyhow::Context as _;

pub use self::file::Rotation;
use self::{
    file::FileSink,
    queue::{Queue, Sink},
    socket::SocketSink,
};

/// `--queue-size` default: room for some 20,000 events of a few hundred
/// bytes, the same order as the kernel ring buffer's default.
pub const DEFAULT_QUEUE_BYTES: usize = 8 << 20;

/// The longest the drain waits for a writer that has fallen behind: a
/// small part of the time the default ring buffer holds at the fastest
/// event stream measured (16 MiB of 128-byte records at ~5M a second:
/// ~27 ms).
const WRITER_CATCH_UP: std::time::Duration = std::time::Duration::from_millis(2);
/// Below this, a few long lines would fill the queue.
pub const MIN_QUEUE_BYTES: usize = 64 << 10;
/// Stats and summary records may use this much room beyond the events'
/// budget: with a stuck sink events are dropped first, and a stats record
/// still gets in (the next ones, until this is full too; they carry
/// cumulative counts, so a lost one loses nothing).
const CONTROL_RESERVE: usize = 64 << 10;
/// Lines go to the writer in chunks of about this size: each one is a
/// wakeup of the writer thread.
const BATCH_BYTES: usize = 256 << 10;

/// Where to write, from the command line.
#[derive(Debug, Clone, Default)]
pub struct SinkOptions<'a> {
    /// `-o FILE`; standard output without it (and without a socket).
    pub file: Option<&'a Path>,
    /// `--truncate`: empty the file first instead of appending.
    pub truncate: bool,
    pub rotation: Option<Rotation>,
    /// `--socket PATH`.
    pub socket: Option<&'a Path>,
    /// `--queue-size`: bytes of formatted events waiting for the sink.
    pub queue_bytes: usize,
}

/// What happened to the events given to [`Output::event`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputCounts {
    /// Taken by the sink.
    pub written: u64,
    /// Waiting in the queue.
    pub queued: u64,
    /// Dropped: no room in the queue, or still queued when the sink ran out
    /// of time at exit.
    pub dropped: u64,
}

pub struct Output {
    queue: Queue,
    /// Bytes of events the queue may hold.
    capacity: usize,
    /// Lines not yet handed to the queue (counted against `capacity`).
    batch: Vec<u8>,
    batch_events: u64,
    batch_limit: usize,
    dropped: u64,
}

struct StdoutSink(File);

impl Sink for StdoutSink {
    fn write_lines(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        use std::io::Write as _;
        self.0
            .write_all(bytes)
            .context("writing events to standard output")
    }
}

impl Output {
    /// Opens the sink before anything is attached, so a bad path or an
    /// absent collector fails fast, and starts the writer thread.
    pub fn open(options: &SinkOptions<'_>) -> anyhow::Result<Self> {
        let sink: Box<dyn Sink> = match (options.file, options.socket) {
            (Some(path), _) => Box::new(FileSink::open(path, options.truncate, options.rotation)?),
            (None, Some(path)) => Box::new(SocketSink::connect(path)?),
            (None, None) => Box::new(StdoutSink(File::from(
                std::io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .context("standard output is not open")?,
            ))),
        };
        let capacity = options.queue_bytes.max(MIN_QUEUE_BYTES);
        let batch_limit = BATCH_BYTES.min(capacity / 4);
        Ok(Self {
            queue: Queue::start(sink)?,
            capacity,
            batch: Vec::with_capacity(batch_limit * 2),
            batch_events: 0,
            batch_limit,
            dropped: 0,
        })
    }

    /// One event: `format` appends its line. Dropped, and counted, when the
    /// queue has no room for it.
    pub fn event(&mut self, format: impl FnOnce(&mut Vec<u8>)) -> anyhow::Result<()> {
        let start = self.batch.len();
        format(&mut self.batch);
        if self.queue.bytes() + self.batch.len() > self.capacity {
            self.batch.truncate(start);
            self.dropped += 1;
            return Ok(());
        }
        self.batch_events += 1;
        if self.batch.len() >= self.batch_limit {
            self.flush()?;
            self.let_writer_catch_up();
        }
        Ok(())
    }

    /// When the writer is behind by half the queue or more, waits (at most
    /// [`WRITER_CATCH_UP`]) for it to write what is queued.
    ///
    /// The writer runs as SCHED_BATCH on the drain's CPU (see the queue):
    /// it gets the CPU when the drain sleeps. A long drain (a full ring
    /// buffer is ~60,000 records, ~25 MB of JSON) or one kept busy by a
    /// burst sleeps rarely, and the queue (8 MiB: a few milliseconds of a
    /// NOP storm's JSON) filled while the writer waited for a scheduler
    /// slice. Checked at each full batch. A sink that is really slow is
    /// not waited for longer than the bound: then its queue fills, and the
    /// drops are counted, as before.
    fn let_writer_catch_up(&self) {
        if self.queue.bytes() >= self.capacity / 2 {
            self.queue.wait_until_empty(WRITER_CATCH_UP);
        }
    }

    /// Hands the lines so far to the writer; reports a sink that failed.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let lines = if self.batch.len() >= self.batch_limit {
            let fresh = self
                .queue
                .take_spare()
                .unwrap_or_else(|| Vec::with_capacity(self.batch_limit * 2));
            std::mem::replace(&mut self.batch, fresh)
        } else {
            // A small batch: queue a right-sized copy, keep the buffer.
            let lines = self.batch.clone();
            self.batch.clear();
            lines
        };
        self.queue
            .push(lines, std::mem::take(&mut self.batch_events))
    }

    /// A record that is not an event (stats, the summary), after the events
    /// so far. False when even the reserve beyond the events' budget is
    /// full: it is not written.
    pub fn control(&mut self, record: Vec<u8>) -> anyhow::Result<bool> {
        self.flush()?;
        if self.queue.bytes() + record.len() > self.capacity + CONTROL_RESERVE {
            return Ok(false);
        }
        self.queue.push(record, 0)?;
        Ok(true)
    }

    pub fn counts(&self) -> OutputCounts {
        let q = self.queue.counts();
        OutputCounts {
            written: q.written,
            queued: q.queued + self.batch_events,
            dropped: self.dropped,
        }
    }

    /// Waits until the sink has taken every event queued, or `deadline`;
    /// the events it has not taken by then count as dropped. After this the
    /// counts are final.
    pub fn settle(&mut self, deadline: Instant) -> anyhow::Result<OutputCounts> {
        self.flush()?;
        self.dropped += self.queue.settle(deadline)?;
        Ok(self.counts())
    }

    /// Lets the writer finish what is queued, until `deadline`.
    pub fn close(mut self, deadline: Instant) -> anyhow::Result<()> {
        self.flush()?;
        self.queue.close(deadline)
    }
}
