//! `uringtrace top`: a live view of the rings, refreshed like top(1). Per
//! process and ring, each interval: submissions, CQEs, errors, requests in
//! flight, CQ overflows, SQPOLL wake-ups and io-wq offloads.

use std::{
    collections::BTreeMap,
    io::{IsTerminal as _, Write as _},
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};

use crate::{
    attach::{self, AttachMode, AttachOptions, ProcessFilter},
    event::{Call, Decoder, Event},
    event_ring::EventRing,
    requests::{
        event::RequestDetail,
        tracker::{MAX_PENDING, Tracker},
    },
    selection::EventSelection,
};

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// Only this process (repeatable); default: every process.
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Seconds between refreshes.
    #[arg(short = 'i', long, default_value_t = 1.0, value_name = "SECONDS")]
    pub interval: f64,

    /// Stop after this many refreshes (default: until Ctrl-C).
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,

    /// One JSON object per refresh (counts per interval) instead of the
    /// table, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// One ring's counts over one interval.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RingCounts {
    pub submitted: u64,
    pub completed: u64,
    pub errors: u64,
    pub cqe_overflows: u64,
    /// Requests handed to io-wq workers.
    pub iowq: u64,
    /// io_uring_enter calls with IORING_ENTER_SQ_WAKEUP (by the owner, so
    /// per process, not per ring).
    pub sq_wakeups: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey {
    pid: u32,
    /// 0: the process's calls not tied to a ring (SQ wake-ups).
    ring: u32,
}

#[derive(Default)]
struct Window {
    rows: BTreeMap<RowKey, RingCounts>,
    /// Per (pid, ring): comm and ring fd, kept across intervals.
    names: BTreeMap<RowKey, (String, Option<i32>)>,
}

const IORING_ENTER_SQ_WAKEUP: u32 = 1 << 1;

impl Window {
    fn add(&mut self, event: &Event) {
        let (key, comm, fd) = match event {
            Event::Syscall(e) => match &e.call {
                Call::Enter(c) if c.flags & IORING_ENTER_SQ_WAKEUP != 0 => {
                    let key = RowKey {
                        pid: e.task.pid,
                        ring: 0,
                    };
                    self.rows.entry(key.clone()).or_default().sq_wakeups += 1;
                    self.names
                        .entry(key)
                        .or_insert_with(|| (e.task.comm().into_owned(), None));
                    return;
                }
                _ => return,
            },
            Event::Request(e) => {
                let Some(ring) = e.ring else { return };
                (
                    RowKey {
                        pid: e.task.pid,
                        ring: ring.id,
                    },
                    // A worker thread's comm is not the process's.
                    e.worker.is_none().then(|| e.task.comm().into_owned()),
                    ring.fd,
                )
            }
        };
        let Event::Request(e) = event else { return };
        let c = self.rows.entry(key.clone()).or_default();
        match &e.detail {
            RequestDetail::Submit { .. } | RequestDetail::Failed { .. } => c.submitted += 1,
            RequestDetail::Complete(cqe) => {
                c.completed += 1;
                if cqe.res < 0 {
                    c.errors += 1;
                }
            }
            RequestDetail::CqeOverflow(cqe) => {
                c.cqe_overflows += 1;
                if cqe.res < 0 {
                    c.errors += 1;
                }
            }
            RequestDetail::Async { .. } => c.iowq += 1,
            _ => {}
        }
        let name = self.names.entry(key).or_insert_with(|| (String::new(), fd));
        if let Some(comm) = comm
            && name.0.is_empty()
        {
            name.0 = comm;
        }
        if name.1.is_none() {
            name.1 = fd;
        }
    }
}

#[derive(Serialize)]
struct JsonRow<'a> {
    pid: u32,
    comm: &'a str,
    ring: Option<u32>,
    ring_fd: Option<i32>,
    in_flight: usize,
    #[serde(flatten)]
    counts: RingCounts,
}

#[derive(Serialize)]
struct JsonRefresh<'a> {
    event: &'static str,
    interval_s: f64,
    rings: Vec<JsonRow<'a>>,
}

fn render(window: &Window, in_flight: &BTreeMap<u32, usize>, interval: f64, json: bool) -> String {
    let rows: Vec<JsonRow> = window
        .rows
        .iter()
        .map(|(k, c)| {
            let (comm, fd) = window
                .names
                .get(k)
                .map_or(("", None), |(c, f)| (c.as_str(), *f));
            JsonRow {
                pid: k.pid,
                comm,
                ring: (k.ring != 0).then_some(k.ring),
                ring_fd: fd,
                in_flight: in_flight.get(&k.ring).copied().unwrap_or(0),
                counts: *c,
            }
        })
        .collect();
    if json {
        let mut line = serde_json::to_string(&JsonRefresh {
            event: "top",
            interval_s: interval,
            rings: rows,
        })
        .unwrap_or_default();
        line.push('\n');
        return line;
    }
    let per_s = |n: u64| n as f64 / interval;
    let mut out = format!(
        "{:>7} {:<16} {:>5} {:>4} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9}\n",
        "PID",
        "COMM",
        "RING",
        "FD",
        "SUBMIT/s",
        "CQE/s",
        "INFLIGHT",
        "ERRORS",
        "OVERFLOW",
        "IOWQ/s",
        "SQWAKE/s"
    );
    for r in &rows {
        let comm: String = r.comm.chars().filter(|c| !c.is_control()).collect();
        out += &format!(
            "{:>7} {:<16} {:>5} {:>4} {:>10.0} {:>10.0} {:>8} {:>8} {:>8} {:>8.0} {:>9.0}\n",
            r.pid,
            comm,
            r.ring.map_or_else(|| "-".into(), |r| r.to_string()),
            r.ring_fd.map_or_else(|| "-".into(), |f| f.to_string()),
            per_s(r.counts.submitted),
            per_s(r.counts.completed),
            r.in_flight,
            r.counts.errors,
            r.counts.cqe_overflows,
            per_s(r.counts.iowq),
            per_s(r.counts.sq_wakeups),
        );
    }
    if rows.is_empty() {
        out += "(no io_uring activity in this interval)\n";
    }
    out
}

/// Adds every record in the ring buffer to the window.
fn take(ring: &mut EventRing, decoder: &mut Decoder, window: &mut Window, undecodable: &mut u64) {
    let Ok(_) = ring.drain(|record| {
        if decoder
            .decode(record, &mut |event| window.add(event))
            .is_err()
        {
            *undecodable += 1;
        }
        Ok::<(), std::convert::Infallible>(())
    });
    decoder.flush(&mut |event| window.add(event));
}

/// Takes everything in the ring buffer into the window, prints it and
/// starts the next one.
fn refresh(
    ring: &mut AsyncFd<EventRing>,
    decoder: &mut Decoder,
    window: &mut Window,
    undecodable: &mut u64,
    args: &TopArgs,
    tty: bool,
) -> anyhow::Result<()> {
    // Everything submitted to the ring buffer so far belongs to this
    // interval.
    take(ring.get_mut(), decoder, window, undecodable);
    let in_flight = decoder.tracker.in_flight_by_ring();
    let text = render(window, &in_flight, args.interval, args.json);
    let mut stdout = std::io::stdout().lock();
    if tty {
        // Home and clear, as top(1) redraws.
        let _ = write!(stdout, "\x1b[H\x1b[2J");
    }
    stdout
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    stdout.flush().context("writing to stdout")?;
    window.rows.clear();
    Ok(())
}

pub fn run(args: TopArgs) -> anyhow::Result<i32> {
    if !(args.interval.is_finite() && args.interval > 0.0) {
        bail!(
            "--interval needs a positive number of seconds, not {}",
            args.interval
        );
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(top(args))
}

async fn top(args: TopArgs) -> anyhow::Result<i32> {
    let events =
        EventSelection::parse("enter,submit,failed,complete,cqe_overflow,async,ring_create")
            .expect("valid event names");
    let attached = attach::attach(&AttachOptions {
        filter: ProcessFilter {
            pids: args.pids.clone(),
            follow_forks: false,
            restrict: false,
        },
        buffer_size: 8 << 20,
        events,
        ops: None,
        hook_mode: uringtrace_common::hook_mode::FULL,
        summary: uringtrace_common::summary::SUMMARY_OFF,
        task_filter: uringtrace_common::filter::TaskFilter::OFF,
        attach_mode: AttachMode::Auto,
    })?;
    let mut decoder = Decoder::new(Tracker::new(
        attached.formats.clone(),
        MAX_PENDING,
        attached.objects.clone(),
    ));
    let mut sigint = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    // Only once the handlers are in: a Ctrl-C from then on ends in a last
    // refresh, not a killed process.
    // Tells a script when counting has started.
    eprintln!(
        "uringtrace top: tracing {}",
        if args.pids.is_empty() {
            "all processes".to_string()
        } else {
            format!("pid {:?}", args.pids)
        }
    );
    // SAFETY: the ring buffer owns its fd until the AsyncFd is dropped.
    let mut ring =
        unsafe { AsyncFd::register_with_interest(attached.events, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
            .context("polling the ring buffer")?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(args.interval));
    tick.tick().await;
    let tty = std::io::stdout().is_terminal() && !args.json;
    let mut window = Window::default();
    let mut refreshes = 0;
    let mut undecodable = 0u64;
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.context("polling the ring buffer")?;
                take(guard.get_inner_mut(), &mut decoder, &mut window, &mut undecodable);
                guard.clear_ready();
            }
            _ = tick.tick() => {
                refresh(&mut ring, &mut decoder, &mut window, &mut undecodable, &args, tty)?;
                refreshes += 1;
                if args.count.is_some_and(|n| refreshes >= n) {
                    break;
                }
            }
            // The interval cut short still shows what it counted.
            _ = sigint.recv() => {
                refresh(&mut ring, &mut decoder, &mut window, &mut undecodable, &args, tty)?;
                break;
            }
            _ = sigterm.recv() => {
                refresh(&mut ring, &mut decoder, &mut window, &mut undecodable, &args, tty)?;
                break;
            }
        }
    }
    let counters = attach::KernelCounters::read(&attached.counters, &attached.ebpf)?;
    let dropped = counters.ringbuf_full
        + counters.tracepoint_read_failed
        + undecodable
        + counters.skipped_runs;
    if dropped > 0 {
        eprintln!(
            "uringtrace top: {dropped} events dropped (ring buffer full: {}, undecodable: {undecodable}, programs not run: {}): the counts above are too low",
            counters.ringbuf_full, counters.skipped_runs
        );
    }
    drop(ring);
    attach::detach(attached.links, attached.ebpf);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rates_and_placeholders() {
        let mut w = Window::default();
        let key = RowKey { pid: 7, ring: 2 };
        w.rows.insert(
            key.clone(),
            RingCounts {
                submitted: 10,
                completed: 8,
                errors: 1,
                ..Default::default()
            },
        );
        w.names.insert(key, ("srv\x1b".into(), Some(5)));
        let text = render(&w, &BTreeMap::from([(2, 2)]), 2.0, false);
        let row = text.lines().nth(1).unwrap();
        let cols: Vec<_> = row.split_whitespace().collect();
        assert_eq!(
            cols,
            ["7", "srv", "2", "5", "5", "4", "2", "1", "0", "0", "0"]
        );
        let json = render(&w, &BTreeMap::new(), 2.0, true);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["rings"][0]["submitted"], 10);
        assert_eq!(v["rings"][0]["ring_fd"], 5);
    }
}
