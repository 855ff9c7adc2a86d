//! `workload nop-bench`: the NOP storm `cargo xtask bench` measures
//! tracers with. NOPs, `--batch` per io_uring_enter that submits them and
//! waits for all of them (GETEVENTS, min_complete = batch), reaped from the
//! CQ memory, for `--seconds`; then one JSON line on stdout with what was
//! done and how fast.
//!
//! Without `--report` nothing is recorded per call or per request: the
//! SQEs are built once, and each round is a copy into the SQ, the raw
//! system call and a count of the CQEs, so the time measured is the
//! kernel's (and a tracer's), not the engine's bookkeeping. With
//! `--report` every call and request goes through [`Ctx`] and is written
//! to the ground truth like any scenario's.

use std::{
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail, ensure};
use io_uring::{opcode, squeue};
use serde::Serialize;

use super::{
    abi::{IORING_ENTER_GETEVENTS, IoUringParams},
    ctx::{Ctx, Enter},
    raw,
    ring::Ring,
};

/// The name `workload` takes for this mode.
pub const NAME: &str = "nop-bench";

/// Largest batch: the SQ must hold a whole batch, and the kernel caps SQ
/// entries at 32768.
pub const MAX_BATCH: u32 = 32768;

/// How often, in NOPs, the loop looks at the clock: often enough to stop
/// (and pace) within a few microseconds, rarely enough that the clock read
/// stays out of the measurement at 1 NOP per enter.
const CLOCK_EVERY_NOPS: u32 = 64;

/// Pacing sleeps only when this far ahead of schedule: shorter sleeps cost
/// more in wake-up latency than they smooth.
const MIN_SLEEP: Duration = Duration::from_micros(200);

/// What `--batch`, `--seconds` and `--rate` ask for.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub batch: u32,
    pub duration: Duration,
    /// NOPs per second to pace to; `None`: as fast as the kernel goes.
    pub rate: Option<f64>,
}

/// The result line.
#[derive(Debug, Serialize)]
struct Outcome {
    bench: &'static str,
    batch: u32,
    /// NOPs completed (each one submitted and its CQE reaped).
    nops: u64,
    /// io_uring_enter calls made in the timed loop.
    enters: u64,
    /// When the timed loop started (CLOCK_REALTIME), so a tracer's CPU
    /// time can be read over exactly the loop's span.
    started_unix_ns: u64,
    elapsed_ns: u64,
    nops_per_s: f64,
    /// The paced rate asked for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    /// This process's CPU time, the whole run: a tracer's own CPU is what
    /// its process used beyond this (eBPF programs run in ours).
    cpu_user_us: u64,
    cpu_sys_us: u64,
    /// Time the loop was runnable but waiting for its CPU (the scheduler's
    /// run-queue delay): other work on the CPU that slowed the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    runqueue_wait_ns: Option<u64>,
}

pub fn run(ctx: &mut Ctx, params: Params, record: bool) -> anyhow::Result<()> {
    ensure!(
        (1..=MAX_BATCH).contains(&params.batch),
        "--batch must be 1 to {MAX_BATCH}, not {}",
        params.batch
    );
    if let Some(rate) = params.rate {
        ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number of NOPs per second, not {rate}"
        );
    }
    let mut ring = ctx.ring(
        params.batch,
        IoUringParams::default(),
        &format!("{}-entry ring for the NOP benchmark", params.batch),
    )?;
    // Without schedstats (CONFIG_SCHED_INFO) the wait is not reported.
    let wait_before = runqueue_wait_ns();
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    let start = Instant::now();
    let (nops, enters) = if record {
        recorded_loop(ctx, &mut ring, params, start)?
    } else {
        bare_loop(&mut ring, params, start)?
    };
    let elapsed = start.elapsed();
    let runqueue_wait_ns = wait_before
        .zip(runqueue_wait_ns())
        .map(|(before, after)| after.saturating_sub(before));
    let (cpu_user_us, cpu_sys_us) = own_cpu()?;
    let outcome = Outcome {
        bench: "nop",
        batch: params.batch,
        nops,
        enters,
        started_unix_ns: u64::try_from(started.as_nanos()).unwrap_or(u64::MAX),
        elapsed_ns: u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
        nops_per_s: nops as f64 / elapsed.as_secs_f64(),
        rate: params.rate,
        cpu_user_us,
        cpu_sys_us,
        runqueue_wait_ns,
    };
    println!(
        "{}",
        serde_json::to_string(&outcome).context("serializing the result line")?
    );
    Ok(())
}

/// Where the loop stands against the clock, looked at every
/// [`CLOCK_EVERY_NOPS`] NOPs.
struct Schedule {
    params: Params,
    start: Instant,
    check_every: u64,
}

impl Schedule {
    fn new(params: Params, start: Instant) -> Self {
        Self {
            params,
            start,
            check_every: u64::from(CLOCK_EVERY_NOPS.div_ceil(params.batch)),
        }
    }

    /// After `enters` rounds and `nops` NOPs: whether to go on. Sleeps
    /// first when pacing and ahead of the rate.
    fn go_on(&self, enters: u64, nops: u64) -> bool {
        if !enters.is_multiple_of(self.check_every) {
            return true;
        }
        let now = self.start.elapsed();
        if now >= self.params.duration {
            return false;
        }
        if let Some(rate) = self.params.rate {
            let due = Duration::from_secs_f64(nops as f64 / rate);
            if due > now + MIN_SLEEP {
                thread::sleep((due - now).min(self.params.duration - now));
            }
        }
        true
    }
}

/// Submit-and-wait rounds with nothing recorded: (NOPs, enters).
fn bare_loop(ring: &mut Ring, params: Params, start: Instant) -> anyhow::Result<(u64, u64)> {
    let batch = params.batch;
    // Built once: the kernel copies SQEs out of the SQ, so the same ones can
    // go in again. user_data is the NOP's index in the batch.
    let sqes: Vec<squeue::Entry> = (0..batch)
        .map(|i| opcode::Nop::new().build().user_data(u64::from(i)))
        .collect();
    let fd = ring.fd();
    let schedule = Schedule::new(params, start);
    let (mut nops, mut enters) = (0u64, 0u64);
    loop {
        // SAFETY: a NOP references no memory.
        unsafe { ring.push(&sqes) }.context("queueing a batch of NOPs")?;
        // SAFETY: argp is 0, which the kernel does not read.
        let ret = unsafe { raw::io_uring_enter(fd, batch, batch, IORING_ENTER_GETEVENTS, 0, 0) };
        enters += 1;
        if ret != i64::from(batch) {
            bail!(
                "io_uring_enter #{enters} submitted {ret} of {batch} NOPs ({})",
                super::ctx::describe(ret)
            );
        }
        let reaped = ring.reap_successes().context("reaping NOPs")?;
        if reaped != batch as usize {
            bail!("{reaped} CQEs after waiting for {batch} NOPs");
        }
        nops += u64::from(batch);
        if !schedule.go_on(enters, nops) {
            return Ok((nops, enters));
        }
    }
}

/// The same rounds through [`Ctx`], every call and request in the ground
/// truth.
fn recorded_loop(
    ctx: &mut Ctx,
    ring: &mut Ring,
    params: Params,
    start: Instant,
) -> anyhow::Result<(u64, u64)> {
    let batch = params.batch;
    let fd = ring.fd();
    let schedule = Schedule::new(params, start);
    let (mut nops, mut enters) = (0u64, 0u64);
    loop {
        ctx.queue_nops(ring, batch, "benchmark NOP")?;
        ctx.enter(
            Enter::new(fd, batch, batch, IORING_ENTER_GETEVENTS),
            "submit and wait for a batch of NOPs",
        )?
        .expect(i64::from(batch))?;
        enters += 1;
        ctx.reap(ring, batch as usize)?;
        nops += u64::from(batch);
        if !schedule.go_on(enters, nops) {
            return Ok((nops, enters));
        }
    }
}

/// This thread's run-queue delay so far, in ns: the second field of
/// /proc/thread-self/schedstat.
fn runqueue_wait_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().nth(1)?.parse().ok()
}

/// getrusage(RUSAGE_SELF): (user, system) CPU in microseconds.
fn own_cpu() -> anyhow::Result<(u64, u64)> {
    // SAFETY: rusage is plain integers; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrusage");
    }
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    Ok((us(usage.ru_utime), us(usage.ru_stime)))
}
