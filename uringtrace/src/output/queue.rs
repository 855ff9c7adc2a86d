//! The bounded queue between the drain loop and the sink: chunks of whole
//! formatted lines, handed to a writer thread that owns the sink. The drain
//! never waits for the sink; when the queue is full, the events that do not
//! fit are dropped and counted.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// Where the writer thread puts the bytes.
pub trait Sink: Send {
    /// Writes all of `bytes`: whole lines, each ending with a newline.
    fn write_lines(&mut self, bytes: &[u8]) -> anyhow::Result<()>;
}

/// Formatted lines on their way to the sink.
struct Chunk {
    bytes: Vec<u8>,
    /// Events among the lines (stats and summary records are not events).
    events: u64,
}

#[derive(Default)]
struct State {
    chunks: VecDeque<Chunk>,
    /// Events of the chunk the writer is writing now.
    writing: Option<u64>,
    /// Events the sink has taken.
    written: u64,
    /// No more chunks will come: the writer exits once the queue is empty.
    closed: bool,
    /// The session gave up waiting: what the writer finishes from now on is
    /// no longer counted as written (it was counted as dropped).
    abandoned: bool,
    /// The writer has exited (closed and empty, or failed).
    done: bool,
    /// Why the sink failed; taken by the next caller.
    error: Option<anyhow::Error>,
    /// Written chunks' buffers, emptied, for the drain to fill again: a
    /// fresh buffer of this size is an mmap and a page fault per 4 KiB.
    spare: Vec<Vec<u8>>,
}

impl State {
    /// Nothing queued and nothing being written.
    fn idle(&self) -> bool {
        self.chunks.is_empty() && self.writing.is_none()
    }
}

/// Buffers kept for reuse, and the least capacity worth keeping.
const SPARE_BUFFERS: usize = 4;
const SPARE_MIN_BYTES: usize = 64 << 10;

struct Shared {
    state: Mutex<State>,
    /// Tells the writer a chunk came or the queue closed.
    more: Condvar,
    /// Tells the session the queue ran empty or the writer exited.
    progress: Condvar,
    /// Bytes queued or being written. Read without the lock on every event:
    /// only the drain adds and only the writer subtracts, so the drain's
    /// view never undercounts what it added itself.
    bytes: AtomicUsize,
}

impl Shared {
    /// Waits for the writer's progress until `finished` or `deadline`;
    /// returns the lock and whether `finished` came.
    fn wait_until<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        deadline: Instant,
        finished: impl Fn(&State) -> bool,
    ) -> (MutexGuard<'a, State>, bool) {
        loop {
            if finished(&state) {
                return (state, true);
            }
            let now = Instant::now();
            if now >= deadline {
                return (state, false);
            }
            state = self
                .progress
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic of the other side leaves consistent counters behind (each
        // update is a single assignment): keep going with them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The drain's end of the queue.
pub struct Queue {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

/// What the queue has done with the events given to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Taken by the sink.
    pub written: u64,
    /// In the queue, or being written.
    pub queued: u64,
}

impl Queue {
    /// Starts the writer thread, which owns `sink` from now on.
    pub fn start(sink: Box<dyn Sink>) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            more: Condvar::new(),
            progress: Condvar::new(),
            bytes: AtomicUsize::new(0),
        });
        let writer = std::thread::Builder::new()
            .name("uringtrace-out".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || write_chunks(&shared, sink)
            })
            .context("starting the output thread")?;
        Ok(Self {
            shared,
            writer: Some(writer),
        })
    }

    /// Bytes queued or being written.
    pub fn bytes(&self) -> usize {
        self.shared.bytes.load(Ordering::Acquire)
    }

    /// Queues `bytes` (whole lines, `events` of them events). Room is the
    /// caller's to check, with [`Self::bytes`].
    pub fn push(&self, bytes: Vec<u8>, events: u64) -> anyhow::Result<()> {
        let mut state = self.shared.lock();
        if let Some(err) = state.error.take() {
            return Err(err);
        }
        if state.done {
            // Failed before (its error already reported) or closed.
            return Ok(());
        }
        self.shared.bytes.fetch_add(bytes.len(), Ordering::AcqRel);
        state.chunks.push_back(Chunk { bytes, events });
        self.shared.more.notify_one();
        Ok(())
    }

    /// An empty buffer a written chunk left, if there is one.
    pub fn take_spare(&self) -> Option<Vec<u8>> {
        self.shared.lock().spare.pop()
    }

    pub fn counts(&self) -> QueueCounts {
        let state = self.shared.lock();
        QueueCounts {
            written: state.written,
            queued: state.chunks.iter().map(|c| c.events).sum::<u64>() + state.writing.unwrap_or(0),
        }
    }

    /// Waits, at most `timeout`, until the writer has taken everything
    /// queued (or stopped). The drain's way to let the writer have the CPU
    /// they share when it has fallen behind: sleeping here is what puts
    /// the writer on the CPU.
    pub fn wait_until_empty(&self, timeout: Duration) {
        let _ = self
            .shared
            .wait_until(self.shared.lock(), Instant::now() + timeout, |s| {
                s.done || s.error.is_some() || s.idle()
            });
    }

    /// Waits until the sink has taken everything queued, or `deadline`.
    /// Whatever it has not taken by then is given up: the events are
    /// returned, to be counted as dropped. A sink error is returned as such.
    pub fn settle(&self, deadline: Instant) -> anyhow::Result<u64> {
        let (mut state, finished) = self.shared.wait_until(self.shared.lock(), deadline, |s| {
            s.error.is_some() || s.done || s.idle()
        });
        if let Some(err) = state.error.take() {
            return Err(err);
        }
        if finished {
            return Ok(0);
        }
        // The sink is stuck (a collector that stopped reading): what it has
        // in hand may or may not get out, and either way it is too late to
        // count it as written.
        state.abandoned = true;
        let given_up: u64 =
            state.chunks.iter().map(|c| c.events).sum::<u64>() + state.writing.unwrap_or(0);
        let freed: usize = state.chunks.iter().map(|c| c.bytes.len()).sum();
        state.chunks.clear();
        self.shared.bytes.fetch_sub(freed, Ordering::AcqRel);
        Ok(given_up)
    }

    /// No more chunks: lets the writer finish what is queued, until
    /// `deadline`, and returns its error if it failed. A writer still stuck
    /// at the deadline is left behind (process exit ends it).
    pub fn close(mut self, deadline: Instant) -> anyhow::Result<()> {
        let mut state = self.shared.lock();
        state.closed = true;
        self.shared.more.notify_one();
        let (mut state, done) = self.shared.wait_until(state, deadline, |s| s.done);
        if !done {
            return Ok(());
        }
        let error = state.error.take();
        drop(state);
        if let Some(writer) = self.writer.take() {
            // It has exited: this does not wait.
            let _ = writer.join();
        }
        error.map_or(Ok(()), Err)
    }
}

/// The writer thread: takes chunks in order and writes them, until the
/// queue is closed and empty or the sink fails.
fn write_chunks(shared: &Shared, mut sink: Box<dyn Sink>) {
    // The drain and this thread share a CPU when the tracer is pinned or
    // the machine is busy: as SCHED_BATCH (same nice) a new chunk does not
    // preempt the drain mid-batch, which cost two context switches per
    // chunk; this thread runs when the drain waits. Best effort.
    // Zeroed rather than a struct literal: musl's sched_param has more
    // fields than glibc's (the VM suite's static build).
    // SAFETY: sched_param is plain data; all zeroes is priority 0.
    let param: libc::sched_param = unsafe { std::mem::zeroed() };
    // SAFETY: plain system call on the calling thread with a valid param.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    loop {
        let chunk = {
            let mut state = shared.lock();
            loop {
                if let Some(chunk) = state.chunks.pop_front() {
                    state.writing = Some(chunk.events);
                    break chunk;
                }
                if state.closed {
                    state.done = true;
                    shared.progress.notify_all();
                    return;
                }
                state = shared
                    .more
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        let result = sink.write_lines(&chunk.bytes);
        let mut state = shared.lock();
        state.writing = None;
        shared.bytes.fetch_sub(chunk.bytes.len(), Ordering::AcqRel);
        match result {
            Ok(()) => {
                if !state.abandoned {
                    state.written += chunk.events;
                }
                // Only a full batch's buffer: a small chunk is a
                // right-sized copy, no use for the next batch.
                if state.spare.len() < SPARE_BUFFERS && chunk.bytes.capacity() >= SPARE_MIN_BYTES {
                    let mut bytes = chunk.bytes;
                    bytes.clear();
                    state.spare.push(bytes);
                }
                if state.chunks.is_empty() {
                    shared.progress.notify_all();
                }
            }
            Err(err) => {
                let freed: usize = state.chunks.iter().map(|c| c.bytes.len()).sum();
                state.chunks.clear();
                shared.bytes.fetch_sub(freed, Ordering::AcqRel);
                state.error = Some(err);
                state.done = true;
                shared.progress.notify_all();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::mpsc,
        time::{Duration, Instant},
    };

    use super::*;

    /// A sink that collects what it gets, and blocks while told to.
    struct Gate {
        lines: mpsc::Sender<Vec<u8>>,
        open: mpsc::Receiver<()>,
    }

    impl Sink for Gate {
        fn write_lines(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
            self.open.recv().context("gate dropped")?;
            self.lines
                .send(bytes.to_vec())
                .context("collector dropped")?;
            Ok(())
        }
    }

    fn gate() -> (Queue, mpsc::Sender<()>, mpsc::Receiver<Vec<u8>>) {
        let (lines_tx, lines_rx) = mpsc::channel();
        let (open_tx, open_rx) = mpsc::channel();
        let queue = Queue::start(Box::new(Gate {
            lines: lines_tx,
            open: open_rx,
        }))
        .unwrap();
        (queue, open_tx, lines_rx)
    }

    #[test]
    fn written_in_order_and_counted() {
        let (queue, open, lines) = gate();
        queue.push(b"a\n".to_vec(), 1).unwrap();
        queue.push(b"b\nc\n".to_vec(), 2).unwrap();
        assert_eq!(queue.bytes(), 6);
        open.send(()).unwrap();
        open.send(()).unwrap();
        assert_eq!(
            queue
                .settle(Instant::now() + Duration::from_secs(5))
                .unwrap(),
            0
        );
        assert_eq!(
            queue.counts(),
            QueueCounts {
                written: 3,
                queued: 0
            }
        );
        assert_eq!(queue.bytes(), 0);
        queue
            .close(Instant::now() + Duration::from_secs(5))
            .unwrap();
        let got: Vec<Vec<u8>> = lines.try_iter().collect();
        assert_eq!(got, [b"a\n".to_vec(), b"b\nc\n".to_vec()]);
    }

    #[test]
    fn waiting_for_the_writer_ends_when_it_has_written_all_or_at_the_bound() {
        let (queue, open, lines) = gate();
        queue.push(b"a\n".to_vec(), 1).unwrap();
        queue.push(b"b\n".to_vec(), 1).unwrap();
        // The sink is stuck: the wait gives up at its bound, nothing lost.
        let start = Instant::now();
        queue.wait_until_empty(Duration::from_millis(50));
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(queue.bytes(), 4);
        // Let the writer through: the wait ends once both are written,
        // long before its bound.
        open.send(()).unwrap();
        open.send(()).unwrap();
        let start = Instant::now();
        queue.wait_until_empty(Duration::from_secs(30));
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(queue.bytes(), 0);
        assert_eq!(lines.recv().unwrap(), b"a\n");
        assert_eq!(lines.recv().unwrap(), b"b\n");
        // Nothing queued: no wait at all.
        let start = Instant::now();
        queue.wait_until_empty(Duration::from_secs(30));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_stuck_sink_is_given_up_at_the_deadline() {
        let (queue, _open, _lines) = gate();
        queue.push(b"a\n".to_vec(), 1).unwrap();
        queue.push(b"b\n".to_vec(), 1).unwrap();
        queue.push(b"stats\n".to_vec(), 0).unwrap();
        let start = Instant::now();
        let given_up = queue.settle(start + Duration::from_millis(100)).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        // The chunk in the writer's hands included.
        assert_eq!(given_up, 2);
        assert_eq!(queue.counts().written, 0);
        // Only the chunk being written is still held.
        assert_eq!(queue.bytes(), 2);
        let start = Instant::now();
        queue.close(start + Duration::from_millis(50)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_sink_error_reaches_the_drain() {
        struct Broken;
        impl Sink for Broken {
            fn write_lines(&mut self, _: &[u8]) -> anyhow::Result<()> {
                anyhow::bail!("the collector went away")
            }
        }
        let queue = Queue::start(Box::new(Broken)).unwrap();
        queue.push(b"a\n".to_vec(), 1).unwrap();
        let err = queue
            .settle(Instant::now() + Duration::from_secs(5))
            .unwrap_err();
        assert!(err.to_string().contains("went away"), "{err:#}");
    }
}
