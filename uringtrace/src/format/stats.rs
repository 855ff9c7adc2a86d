//! `stats` records: how many events the tracer saw, wrote and dropped at
//! each stage, so a reader can tell a quiet system from a blind tracer.
//! Written every `--stats-interval` and once at exit (docs/events.md).

use std::fmt::Write as _;

use serde::Serialize;

use super::{
    OutputFormat,
    ndjson::{SCHEMA_VERSION, write_line},
};
use crate::clock::WallClock;

/// Counts since the tracer started (cumulative: a lost record loses
/// nothing, a reader differences two for a rate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsCounts {
    /// Records taken from the kernel ring buffer.
    pub events: u64,
    /// Events the output took (file, socket, standard output).
    pub written: u64,
    /// Events not shown by choice: -e, -x, --ops, and the submissions and
    /// completions attached only to join other events.
    pub filtered: u64,
    /// Alert records raised, when detection rules run (`monitor`,
    /// `--alerts`): written, queued or dropped like events, so with them
    /// `events + alerts` is what the output stages add up to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<u64>,
    /// Events waiting in the output queue.
    pub queued: u64,
    pub dropped: Dropped,
    pub kernel: KernelLosses,
}

/// Events lost, by the stage that lost them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// The kernel ring buffer was full: never seen by userspace.
    pub ringbuf: u64,
    /// The output queue was full (the output did not keep up), or still
    /// held them when the output ran out of time at exit.
    pub queue: u64,
    /// Records userspace could not decode.
    pub undecodable: u64,
    /// Tracepoint records the kernel program could not read.
    pub tracepoint_unreadable: u64,
    /// Hooks that fired but whose program the kernel did not run: the
    /// CPU's recursion guard was held, by another tracing program or a task
    /// preempted inside one of ours (the programs' `recursion_misses`,
    /// which older kernels count for fewer hooks).
    pub not_run: u64,
}

/// What the kernel side saw incompletely, without losing the event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KernelLosses {
    /// System calls seen only at exit, arguments unknown.
    pub entry_missing: u64,
    /// Calls whose arguments found no room in the in-flight table.
    pub inflight_full: u64,
    /// Rings of traced processes the ring table had no room for.
    pub rings_full: u64,
    /// Forked processes the process filter had no room for: NOT traced.
    pub filter_full: u64,
}

pub struct StatsRecord {
    /// Kernel monotonic clock now (the events' clock).
    pub ts_ns: u64,
    /// The last record, written at exit.
    pub last: bool,
    /// Seconds since tracing started.
    pub elapsed_s: f64,
    /// Seconds since the previous stats record (or the start).
    pub interval_s: f64,
    pub counts: StatsCounts,
}

#[derive(Serialize)]
struct Line<'a> {
    schema: u32,
    event: &'static str,
    ts_ns: u64,
    time: String,
    #[serde(rename = "final")]
    last: bool,
    elapsed_s: f64,
    interval_s: f64,
    #[serde(flatten)]
    counts: &'a StatsCounts,
}

/// Microsecond precision is plenty for an interval, and keeps the float
/// short.
fn micros(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e6
}

pub fn render(format: OutputFormat, clock: &WallClock, record: &StatsRecord) -> Vec<u8> {
    let mut out = Vec::new();
    let c = &record.counts;
    match format {
        OutputFormat::Json => write_line(
            &Line {
                schema: SCHEMA_VERSION,
                event: "stats",
                ts_ns: record.ts_ns,
                time: clock.rfc3339(record.ts_ns),
                last: record.last,
                elapsed_s: micros(record.elapsed_s),
                interval_s: micros(record.interval_s),
                counts: c,
            },
            &mut out,
        ),
        OutputFormat::Text => {
            // A comment line: `grep -v '^#'` leaves the events alone.
            let mut line = format!("# stats {}", clock.local_hms(record.ts_ns));
            if record.last {
                line.push_str(" final");
            }
            let (d, k) = (&c.dropped, &c.kernel);
            let alerts = c.alerts.map(|n| format!(" alerts={n}")).unwrap_or_default();
            let _ = writeln!(
                line,
                " events={}{alerts} written={} filtered={} queued={} dropped: ringbuf={} queue={} undecodable={} tracepoint_unreadable={} not_run={}; kernel: entry_missing={} inflight_full={} rings_full={} filter_full={}",
                c.events,
                c.written,
                c.filtered,
                c.queued,
                d.ringbuf,
                d.queue,
                d.undecodable,
                d.tracepoint_unreadable,
                d.not_run,
                k.entry_missing,
                k.inflight_full,
                k.rings_full,
                k.filter_full,
            );
            out.extend_from_slice(line.as_bytes());
        }
    }
    out
}
