//! One tracing session: attach, optionally start the command, drain the
//! ring buffer until the command exits / the traced processes are gone / the
//! duration ends / a signal arrives, then report what was seen and dropped.

use std::{
    io,
    os::unix::process::ExitStatusExt as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
};
use uringtrace_common::{
    RecordKind,
    filter::TRACED_EXPLICIT,
    summary::{SUMMARY_OFF, SUMMARY_ONLY, SUMMARY_WITH_EVENTS},
};

use crate::{
    alerts::AlertStage,
    attach::{self, AttachOptions, KernelCounters, ProcessFilter},
    cli::{HookMode, TraceArgs},
    clock::WallClock,
    event::{Decoder, Event},
    event_ring::EventRing,
    filter::EventFilter,
    format::{
        Formatter, OutputFormat,
        stats::{self, Dropped, KernelLosses, StatsCounts, StatsRecord},
        timeline::Timeline,
    },
    output::{Output, OutputCounts, Rotation, SinkOptions},
    process_context::ContextCache,
    requests::tracker::{MAX_PENDING, Tracker, TrackerStats},
    summary::{self, Summary},
};

/// How long the output may take, at exit, to write what is queued; what it
/// has not written by then counts as dropped. A file or a reading
/// collector needs milliseconds; a collector that stopped reading would
/// otherwise hold the exit forever.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Records in one drain that mean a burst is going on: the next drain
/// starts at once rather than after a sleep. At millions of events a
/// second, going to sleep between drains (a context switch out and back
/// in, and the programs' wakeup) was a few percent of the consumer's
/// time; a drain of a few hundred records is ~50 us of work, after which
/// the buffer has more whenever the stream is that busy. Below this the
/// wakeup mark and the poll timer take over (crate::wakeup).
const BUSY_DRAIN: usize = 256;

/// What the drain loop saw, for the stats and the final report.
#[derive(Debug, Default)]
struct Tally {
    events: u64,
    /// Decoded but not shown (-e, -x, --ops, join-only hooks; all of them
    /// in the benchmark's count-only mode).
    filtered: u64,
    undecodable: u64,
}

struct Pipeline {
    /// The benchmark's bare consumer: count records, decode nothing.
    count_only: bool,
    decoder: Decoder,
    stages: Stages,
    format: OutputFormat,
    clock: WallClock,
    /// When tracing started and when the last stats record was written.
    started: Instant,
    last_stats: Instant,
}

/// A record that adds to another event instead of being one (a request's
/// object): counted as filtered so that the stats still add up.
fn is_merged(record: &[u8]) -> bool {
    record
        .get(2..4)
        .is_some_and(|k| u16::from_ne_bytes([k[0], k[1]]) == RecordKind::RequestObject as u16)
}

/// What a decoded event goes through: process context, the filters,
/// the output and the timeline, then the rules.
struct Stages {
    filter: EventFilter,
    /// `--timeline`.
    timeline: Option<Timeline>,
    /// `--context`.
    context: Option<ContextCache>,
    formatter: Formatter,
    output: Output,
    /// Detection rules (`monitor`, `--alerts`): run on every decoded event.
    alerts: Option<AlertStage>,
    tally: Tally,
}

impl Stages {
    /// One decoded event. The first error stops the output and stays in
    /// `result`.
    fn show(&mut self, event: &mut Event, result: &mut anyhow::Result<()>) {
        if let Some(cache) = self.context.as_mut() {
            let pid = event.task_mut().pid;
            event.task_mut().context = Some(cache.get(pid));
        }
        if !self.filter.accepts(event) || self.alerts.as_ref().is_some_and(|a| !a.events_shown) {
            self.tally.filtered += 1;
        } else if result.is_ok() {
            let formatter = &self.formatter;
            *result = self.output.event(|line| formatter.write(event, line));
            if let (Some(t), Ok(())) = (self.timeline.as_mut(), &*result) {
                *result = t.record(event);
            }
        }
        // After the event, whether it is shown or not: -e and -x must not
        // hide what a rule needs.
        if let (Some(a), Ok(())) = (self.alerts.as_mut(), &*result) {
            *result = a.check(event, &self.formatter, &mut self.output);
        }
    }
}

impl Pipeline {
    /// One record from the ring buffer.
    fn record(&mut self, record: &[u8]) -> anyhow::Result<()> {
        let stages = &mut self.stages;
        stages.tally.events += 1;
        if self.count_only {
            stages.tally.filtered += 1;
            return Ok(());
        }
        let mut result = Ok(());
        if let Err(err) = self
            .decoder
            .decode(record, &mut |event| stages.show(event, &mut result))
        {
            stages.tally.undecodable += 1;
            if stages.tally.undecodable == 1 {
                eprintln!("uringtrace: dropping an undecodable record: {err}");
            }
        }
        if is_merged(record) || self.decoder.take_dropped() {
            stages.tally.filtered += 1;
        }
        result
    }

    /// Drains every record available now; returns whether that was a
    /// burst in progress (see [`BUSY_DRAIN`]).
    fn drain(&mut self, ring: &mut EventRing) -> anyhow::Result<bool> {
        let n = ring.drain(|record| self.record(record))?;
        let busy = n >= BUSY_DRAIN;
        // A submission held for its object: the batch is over, so it comes
        // now rather than with the next batch.
        let mut result = Ok(());
        let stages = &mut self.stages;
        self.decoder
            .flush(&mut |event| stages.show(event, &mut result));
        result?;
        // In a burst the lines go when the batch is full (in a fraction of
        // a millisecond): handed over after every drain, each small batch
        // was a copy and a wakeup of the writer thread.
        if !busy {
            self.stages.output.flush()?;
        }
        Ok(busy)
    }

    fn stats_counts(&self, k: &KernelCounters, out: OutputCounts) -> StatsCounts {
        StatsCounts {
            events: self.stages.tally.events,
            written: out.written,
            filtered: self.stages.tally.filtered,
            alerts: self.stages.alerts.as_ref().map(|a| a.raised),
            queued: out.queued,
            dropped: Dropped {
                ringbuf: k.ringbuf_full,
                queue: out.dropped,
                undecodable: self.stages.tally.undecodable,
                tracepoint_unreadable: k.tracepoint_read_failed,
                not_run: k.skipped_runs,
            },
            kernel: KernelLosses {
                entry_missing: k.exit_without_entry,
                inflight_full: k.inflight_full,
                rings_full: k.rings_full,
                filter_full: k.filter_full,
            },
        }
    }

    /// Queues a stats record with these counts.
    fn write_stats(&mut self, counts: StatsCounts, last: bool) -> anyhow::Result<()> {
        let now = Instant::now();
        let record = StatsRecord {
            ts_ns: monotonic_ns(),
            last,
            elapsed_s: (now - self.started).as_secs_f64(),
            interval_s: (now - self.last_stats).as_secs_f64(),
            counts,
        };
        self.last_stats = now;
        self.stages
            .output
            .control(stats::render(self.format, &self.clock, &record))?;
        Ok(())
    }
}

/// CLOCK_MONOTONIC, the clock of the events' `ts_ns` (bpf_ktime_get_ns).
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited: nothing more to trace.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// `bpf(BPF_MAP_UPDATE_ELEM)` adding the calling process to the filter.
/// Runs in the child between fork and exec, so only async-signal-safe calls.
fn add_self_to_filter(map_fd: i32) -> io::Result<()> {
    #[repr(C)]
    struct MapUpdateAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u32;
    let value: u8 = TRACED_EXPLICIT;
    let attr = MapUpdateAttr {
        map_fd: map_fd as u32,
        _pad: 0,
        key: &pid as *const u32 as u64,
        value: &value as *const u8 as u64,
        flags: 0,
    };
    // SAFETY: the attr and the key/value it points to live across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_UPDATE_ELEM,
            &attr as *const MapUpdateAttr,
            size_of::<MapUpdateAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn spawn_traced(command: &[String], map_fd: i32) -> anyhow::Result<tokio::process::Child> {
    let (program, args) = command.split_first().context("empty command")?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    // The child puts itself in the in-kernel filter before exec, so its
    // very first io_uring call is traced; forks are followed from there.
    // SAFETY: the closure only makes raw system calls.
    unsafe {
        cmd.pre_exec(move || add_self_to_filter(map_fd));
    }
    cmd.spawn()
        .with_context(|| format!("cannot start `{program}`"))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

pub fn run(args: TraceArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(trace(args))
}

async fn trace(args: TraceArgs) -> anyhow::Result<i32> {
    if !args.pids.is_empty() && !args.command.is_empty() {
        bail!("give either -p PID or a command to start, not both");
    }
    for &pid in &args.pids {
        if !process_exists(pid) {
            bail!("no such process: {pid}");
        }
    }
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        bail!("-d needs a positive number of seconds, not {d}");
    }
    // Bad rule files fail here, before anything is attached.
    let alerts = crate::alerts::stage(&args)?;
    let task_filter = attach::task_filter(args.uid, args.comm.as_deref(), args.cgroup.as_deref())?;
    let timeline = args.timeline.as_deref().map(Timeline::create).transpose()?;
    let output = Output::open(&SinkOptions {
        file: args.output.as_deref(),
        truncate: args.truncate,
        rotation: args.rotate_size.map(|max_bytes| Rotation {
            max_bytes,
            keep: args.rotate_keep,
        }),
        socket: args.socket.as_deref(),
        queue_bytes: args.queue_size,
    })?;
    let summary_mode = if args.summary || (args.hist && !args.with_summary) {
        SUMMARY_ONLY
    } else if args.with_summary {
        SUMMARY_WITH_EVENTS
    } else {
        SUMMARY_OFF
    };
    let tracing_command = !args.command.is_empty();
    let attached = attach::attach(&AttachOptions {
        filter: ProcessFilter {
            pids: args.pids.clone(),
            follow_forks: args.follow_forks || tracing_command,
            restrict: tracing_command,
        },
        buffer_size: args.buffer_size,
        // The rules see every event: -e and --ops then only filter output.
        events: if alerts.is_some() {
            crate::selection::EventSelection::ALL
        } else {
            args.events
        },
        ops: if alerts.is_some() { None } else { args.ops },
        hook_mode: args.hook_mode.kernel_value(),
        summary: summary_mode,
        task_filter,
        attach_mode: args.attach_mode,
    })?;
    if attached.syscall_hook == attach::SyscallHook::Kprobe {
        eprintln!("uringtrace: system calls hooked with kprobes on __x64_sys_io_uring_*");
    }
    if let attach::SubmitHook::Kprobe(symbols) = &attached.submit_hook {
        eprintln!(
            "uringtrace: submissions hooked with kprobes on {} (the first issue of each request)",
            symbols.join(", ")
        );
    }
    if !attached.missing.is_empty() {
        eprintln!(
            "uringtrace: this kernel has no io_uring:{} tracepoint(s): those events are not traced",
            attached.missing.join(", io_uring:")
        );
    }
    if let Some(why) =
        (attached.objects.missing.as_deref()).filter(|why| *why != attach::OBJECTS_NOT_NEEDED)
    {
        eprintln!(
            "uringtrace: what requests touch (paths, addresses, fds) is not decoded on this kernel: {why}"
        );
    }
    if let Some(why) = &attached.workers_by_name {
        eprintln!(
            "uringtrace: io_uring threads are told by their names ({why}): a thread named iou-wrk-*/iou-sqp-* counts as one"
        );
    }

    let clock = WallClock::now();
    let mut pipeline = Pipeline {
        count_only: args.hook_mode != HookMode::Full,
        decoder: Decoder::new(Tracker::new(
            attached.formats.clone(),
            MAX_PENDING,
            attached.objects.clone(),
        )),
        stages: Stages {
            filter: EventFilter {
                failed_only: args.failed,
                events: args.events,
                ops: args.ops,
            },
            formatter: Formatter::new(args.format, clock.clone()),
            timeline,
            context: args.context.then(ContextCache::new),
            output,
            alerts,
            tally: Tally::default(),
        },
        format: args.format,
        clock,
        started: Instant::now(),
        last_stats: Instant::now(),
    };

    // Before anything can tell the user we are tracing: a signal from then
    // on must end in a clean detach with the final report.
    let mut sigint = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut child = if tracing_command {
        Some(spawn_traced(
            &args.command,
            attach::traced_map_fd(&attached.traced),
        )?)
    } else {
        None
    };
    let what = match (&child, args.pids.as_slice()) {
        (Some(c), _) => format!("command pid {}", c.id().unwrap_or(0)),
        (None, []) => "all processes".to_string(),
        (None, pids) => format!(
            "pid {}",
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    eprintln!("uringtrace: tracing {what}");

    // SAFETY: the ring buffer owns its fd, open and unchanged until the
    // AsyncFd that owns the ring buffer is dropped.
    let mut ring =
        unsafe { AsyncFd::register_with_interest(attached.events, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
            .context("polling the ring buffer")?;
    let deadline = args.duration.map(Duration::from_secs_f64);
    let sleep = tokio::time::sleep(deadline.unwrap_or(Duration::from_secs(u64::MAX / 4)));
    tokio::pin!(sleep);
    let mut pid_watch = tokio::time::interval(Duration::from_millis(200));
    // The programs wake us only when a burst fills the buffer past a mark
    // (see crate::wakeup): a slower stream is taken on this timer.
    let mut poll = tokio::time::interval(crate::wakeup::POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stats_period =
        (args.stats_interval > 0.0).then(|| Duration::from_secs_f64(args.stats_interval));
    // Without stats the timer exists but is never polled.
    let period = stats_period.unwrap_or(Duration::from_secs(3600));
    let mut stats_timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    stats_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pipeline.started = Instant::now();
    pipeline.last_stats = pipeline.started;
    let mut exit = 0;

    // Whether the last drain found a burst in progress: then the next one
    // comes at once, without sleeping until the next wakeup or tick.
    let mut busy = false;
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.context("polling the ring buffer")?;
                busy = pipeline.drain(guard.get_inner_mut())?;
                guard.clear_ready();
            }
            // A yield, not a ready future: the runtime polls its timers,
            // signals and the child's exit before the next drain, which a
            // burst that never let the task sleep would otherwise hold off.
            () = tokio::task::yield_now(), if busy => {
                busy = pipeline.drain(ring.get_mut())?;
            }
            _ = poll.tick() => {
                busy = pipeline.drain(ring.get_mut())?;
            }
            status = async { child.as_mut().expect("guarded by the if").wait().await },
                if child.is_some() =>
            {
                exit = exit_code(status.context("waiting for the command")?);
                break;
            }
            _ = pid_watch.tick(), if !args.pids.is_empty() => {
                if args.pids.iter().all(|&p| !process_exists(p)) {
                    break;
                }
            }
            _ = &mut sleep, if deadline.is_some() => break,
            _ = stats_timer.tick(), if stats_period.is_some() => {
                let counts = pipeline.stats_counts(
                    &KernelCounters::read(&attached.counters, &attached.ebpf)?,
                    pipeline.stages.output.counts(),
                );
                pipeline.write_stats(counts, false)?;
            }
            _ = sigint.recv() => {
                if !forward(child.as_ref(), libc::SIGINT) { break; }
            }
            _ = sigterm.recv() => {
                if !forward(child.as_ref(), libc::SIGTERM) { break; }
            }
        }
    }

    // Everything the kernel submitted before we stopped is still in the
    // ring: take it all before reporting.
    pipeline.drain(ring.get_mut())?;
    if let Some(timeline) = pipeline.stages.timeline.take() {
        timeline.finish()?;
    }
    let counters = KernelCounters::read(&attached.counters, &attached.ebpf)?;
    let skipped = crate::missed_runs::by_program(&attached.ebpf);
    let summary = match &attached.summary {
        Some(maps) => {
            let summary = Summary::read(
                maps,
                counters.summary_cqe_overflow,
                counters.summary_table_full,
            )?;
            Some(match args.format {
                OutputFormat::Json => summary::json::render(&summary),
                OutputFormat::Text => summary::text::render(&summary, args.hist).into_bytes(),
            })
        }
        None => None,
    };
    drop(ring);
    // Nothing more to trace: detach before waiting for the output, so the
    // traced processes do not pay for the wait.
    attach::detach(attached.links, attached.ebpf);

    let deadline = Instant::now() + OUTPUT_GRACE;
    let output_counts = pipeline.stages.output.settle(deadline)?;
    if let Some(summary) = summary
        && !pipeline.stages.output.control(summary)?
    {
        eprintln!("uringtrace: the summary did not fit in the output queue (the output is stuck)");
    }
    // The same counts in the last stats record and on stderr.
    let counts = pipeline.stats_counts(&counters, output_counts);
    if stats_period.is_some() {
        pipeline.write_stats(counts, true)?;
    }
    let closed = pipeline.stages.output.close(deadline);
    report(
        &counts,
        &pipeline.decoder.tracker.stats,
        pipeline.decoder.tracker.in_flight(),
    );
    if !skipped.is_empty() {
        let list: Vec<String> = skipped.iter().map(|(p, n)| format!("{p} {n}")).collect();
        eprintln!(
            "uringtrace: programs the kernel did not run, as another tracing program (or a preempted one) held the CPU: {}",
            list.join(", ")
        );
    }
    closed?;
    Ok(exit)
}

/// Passes a stop signal on to the command, whose exit then ends the session
/// (a terminal's Ctrl-C reaches it anyway; a `kill` of uringtrace alone must
/// not leave it running untraced). False when there is no command.
fn forward(child: Option<&tokio::process::Child>, sig: i32) -> bool {
    match child.and_then(|c| c.id()) {
        Some(pid) => {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(pid as i32, sig) };
            true
        }
        None => false,
    }
}

/// The final stderr line, from the counts of the last stats record.
fn report(
    counts: &StatsCounts,
    requests: &TrackerStats,
    (in_flight, skip_success): (usize, usize),
) {
    let (d, k) = (&counts.dropped, &counts.kernel);
    let dropped = d.ringbuf + d.queue + d.undecodable + d.tracepoint_unreadable + d.not_run;
    let mut line = format!(
        "uringtrace: {} events, {} written, {dropped} dropped",
        counts.events, counts.written
    );
    if dropped > 0 {
        line += &format!(
            " (ring buffer full: {}, output queue full: {}, undecodable: {}, programs not run: {})",
            d.ringbuf, d.queue, d.undecodable, d.not_run
        );
    }
    let r = requests;
    let pending = in_flight.saturating_sub(skip_success) as u64;
    // Everything that is not a plain event: each non-zero count is named.
    let notes: [(u64, &str); 13] = [
        (
            k.entry_missing,
            "calls seen only at exit, arguments unknown (started before attach or in-flight table full)",
        ),
        (
            k.inflight_full,
            "calls without arguments (in-flight table full)",
        ),
        (
            k.rings_full,
            "rings of traced processes not remembered (ring table full): their requests on kernel threads may be missing",
        ),
        (
            d.tracepoint_unreadable,
            "tracepoint records unreadable (dropped)",
        ),
        (pending, "requests still in flight"),
        (
            skip_success as u64,
            "requests with IOSQE_CQE_SKIP_SUCCESS and no CQE (succeeded, or not done yet)",
        ),
        (
            r.evicted,
            "requests evicted from the request table (their CQEs show unmatched)",
        ),
        (r.vanished, "requests ended without a traced CQE"),
        (
            r.skipped_cqe,
            "requests ended without a CQE (IOSQE_CQE_SKIP_SUCCESS)",
        ),
        (r.ring_gone, "requests in flight when their ring went away"),
        (r.unmatched, "CQEs without a traced submission"),
        (
            r.reissued,
            "re-issues of submitted requests (io-wq or poll retries) seen by the submit kprobes, not shown",
        ),
        (
            k.filter_full,
            "forked processes NOT traced (filter table full)",
        ),
    ];
    for (count, what) in notes {
        if count > 0 {
            line += &format!("; {count} {what}");
        }
    }
    eprintln!("{line}");
}
