//! One run: the engine's NOP storm under one configuration, its output in
//! files on tmpfs, the tracer's CPU sampled from /proc while it runs.

use std::{
    cell::Cell,
    fs::{self, File},
    path::{Path, PathBuf},
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use super::{
    configs::{self, Config, Tracer},
    parse::{self, Engine},
    sampling::{self, Series},
};

/// How often the tracer's and CPU 0's times are read: often enough that
/// interpolating over the engine's loop is off by well under a tick
/// (10 ms) per second measured; rarely enough to cost nothing.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// Left between runs, for the previous tracer's teardown (its links are
/// released after RCU grace periods) to settle.
const PAUSE_BETWEEN_RUNS: Duration = Duration::from_millis(200);

/// A run is disturbed when the engine spent more than this share of its
/// loop runnable but waiting for its CPU: other work in the way.
pub const MAX_ENGINE_WAIT: f64 = 0.05;
/// The same for the tracer, held to a looser bound: a tracer waits a
/// little at each wake-up even on an idle CPU, a few percent for one that
/// wakes thousands of times a second. Only waits behind other work count
/// (see [`TracerOutcome::wait_s`]).
pub const MAX_TRACER_WAIT: f64 = 0.15;

/// What to do about other work on the machine: wait for both CPUs to be
/// quiet before a run, and run again when it was disturbed (see
/// [`RunResult::disturbed`]).
#[derive(Debug, Clone, Copy)]
pub struct NoisePolicy {
    pub quiet_wait: Duration,
    pub attempts: u32,
    /// Time the whole benchmark may spend waiting and running again; once
    /// spent, runs go ahead at once and are kept as they are (the results
    /// say how noisy they were), so a machine that never quiets down does
    /// not hold the benchmark for hours.
    pub budget: Duration,
}

/// Beyond its own length, how long a run may take before it is killed
/// (a tracer that never ends must not hang the benchmark).
const RUN_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct RunSpec {
    pub config: Config,
    pub batch: u32,
    pub seconds: f64,
    /// Paced NOPs per second (the zero-loss search); `None`: unpaced.
    pub rate: Option<f64>,
}

impl RunSpec {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} at {} NOPs per enter for {} s",
            self.config.label(),
            self.batch,
            self.seconds
        );
        if let Some(rate) = self.rate {
            s += &format!(", paced to {rate:.0} NOPs/s");
        }
        s
    }
}

/// What a tracer did during a run.
#[derive(Debug, Clone)]
pub struct TracerOutcome {
    /// Events the traced workload made, as this tracer counts them (see
    /// [`RunResult::workload_events`]).
    pub events: u64,
    /// Events the tracer says it got: uringtrace's `N events` (records
    /// received), bpftrace's map counts (B1) or printed lines (B2).
    pub received: Option<u64>,
    /// Events lost: uringtrace's `N dropped`, bpftrace's `Lost N events`;
    /// `None` where the tracer cannot lose any (strace stops the engine;
    /// B1 counts in the kernel).
    pub dropped: Option<u64>,
    /// The tracer process's CPU seconds over the engine's loop.
    pub cpu_s: Option<f64>,
    /// Seconds the tracer waited for its CPU over the engine's loop,
    /// behind other work: the run-queue delay of its threads, at most the
    /// CPU time others had on its CPU (its threads waiting for one
    /// another, the drain and its writer, are not a disturbance).
    pub wait_s: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub spec: RunSpec,
    pub engine: Engine,
    pub tracer: Option<TracerOutcome>,
    /// The share of the engine's loop that the engine, and the tracer,
    /// were runnable but waiting for their CPU: other work that got in
    /// their way.
    pub engine_wait_share: Option<f64>,
    pub tracer_wait_share: Option<f64>,
    /// Which of the runs made for this spec this is (the least disturbed),
    /// and how many were made.
    pub attempts: u32,
    pub runs_made: u32,
    /// From start to exit, tracer start-up and teardown included.
    pub wall_s: f64,
}

impl RunResult {
    /// The events a tracer of `tracer` kind sees in this run: uringtrace
    /// one record per submission, per CQE and per io_uring_enter call;
    /// bpftrace a probe firing per submission, per CQE, and at the entry
    /// and the exit of each call; strace each io_uring_enter call.
    pub fn workload_events(engine: &Engine, tracer: Tracer) -> u64 {
        match tracer {
            Tracer::Uringtrace => 2 * engine.nops + engine.enters,
            Tracer::Bpftrace => 2 * engine.nops + 2 * engine.enters,
            Tracer::Strace => engine.enters,
        }
    }

    pub fn summary_line(&self) -> String {
        let mut s = format!("{:>10.0} NOPs/s", self.engine.nops_per_s);
        if let Some(t) = &self.tracer {
            if let Some(dropped) = t.dropped {
                s += &format!(", {dropped} dropped");
            }
            if let Some(cpu) = t.cpu_s {
                s += &format!(", tracer CPU {cpu:.2} s");
            }
        }
        let other = self.other_share();
        if other > 0.02 {
            s += &format!(" (waited for a CPU {:.0}% of the time)", other * 100.0);
        }
        if self.attempts > 1 {
            s += &format!(" [kept attempt {}]", self.attempts);
        }
        s
    }

    /// The larger share of the engine's loop that the engine or the
    /// tracer waited for its CPU.
    pub fn other_share(&self) -> f64 {
        self.engine_wait_share
            .unwrap_or(0.0)
            .max(self.tracer_wait_share.unwrap_or(0.0))
    }

    /// How far over its bound ([`MAX_ENGINE_WAIT`], [`MAX_TRACER_WAIT`])
    /// the engine's or the tracer's wait went: over 1 is disturbed.
    pub fn disturbance(&self) -> f64 {
        let engine = self.engine_wait_share.unwrap_or(0.0) / MAX_ENGINE_WAIT;
        let tracer = self.tracer_wait_share.unwrap_or(0.0) / MAX_TRACER_WAIT;
        engine.max(tracer)
    }

    pub fn disturbed(&self) -> bool {
        self.disturbance() > 1.0
    }
}

pub struct Runner {
    uringtrace: PathBuf,
    work_dir: PathBuf,
    noise: NoisePolicy,
    /// Of the noise budget, spent so far.
    noise_spent: Cell<Duration>,
}

impl Runner {
    /// Output goes to a directory on tmpfs when there is one: B2 writes
    /// megabytes per second, and a disk would make it pay for I/O.
    pub fn new(uringtrace: PathBuf, noise: NoisePolicy) -> anyhow::Result<Self> {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let work_dir = base.join(format!("uringtrace-bench-{}", std::process::id()));
        fs::create_dir_all(&work_dir)
            .with_context(|| format!("creating {}", work_dir.display()))?;
        Ok(Self {
            uringtrace,
            work_dir,
            noise,
            noise_spent: Cell::new(Duration::ZERO),
        })
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    pub fn uringtrace(&self) -> &Path {
        &self.uringtrace
    }

    /// Runs `spec` once the machine is quiet, again while other work
    /// disturbed it (up to the policy's attempts); keeps the least
    /// disturbed run.
    pub fn run(&self, spec: &RunSpec) -> anyhow::Result<RunResult> {
        let mut best: Option<RunResult> = None;
        let mut made = 0;
        for attempt in 1..=self.noise.attempts.max(1) {
            made = attempt;
            thread::sleep(PAUSE_BETWEEN_RUNS);
            let began = Instant::now();
            self.wait_for_quiet()?;
            self.spend(began.elapsed());
            let began = Instant::now();
            let mut result = self.run_once(spec)?;
            if attempt > 1 {
                self.spend(began.elapsed());
            }
            result.attempts = attempt;
            let quiet = !result.disturbed();
            if best
                .as_ref()
                .is_none_or(|b| result.disturbance() < b.disturbance())
            {
                best = Some(result);
            }
            if quiet || self.budget_left().is_zero() {
                break;
            }
        }
        let mut best = best.context("no run made")?;
        best.runs_made = made;
        Ok(best)
    }

    /// Waits for a quiet machine as long as the policy and the budget let.
    pub fn wait_for_quiet(&self) -> anyhow::Result<bool> {
        sampling::wait_for_quiet(self.noise.quiet_wait.min(self.budget_left()))
    }

    fn spend(&self, d: Duration) {
        self.noise_spent.set(self.noise_spent.get() + d);
    }

    fn budget_left(&self) -> Duration {
        self.noise.budget.saturating_sub(self.noise_spent.get())
    }

    /// Of the noise budget, what was spent.
    pub fn noise_spent(&self) -> Duration {
        self.noise_spent.get()
    }

    fn run_once(&self, spec: &RunSpec) -> anyhow::Result<RunResult> {
        let engine_args =
            configs::engine_args(&self.uringtrace, spec.batch, spec.seconds, spec.rate)?;
        let mut cmd = configs::command(spec.config, &self.uringtrace, &engine_args)?;
        let stdout_path = self.work_dir.join("stdout");
        let stderr_path = self.work_dir.join("stderr");
        let stdout = File::create(&stdout_path)
            .with_context(|| format!("creating {}", stdout_path.display()))?;
        let stderr = File::create(&stderr_path)
            .with_context(|| format!("creating {}", stderr_path.display()))?;
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let shown = format!("{cmd:?}");

        let started = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("cannot run {shown}"))?;
        let tracer_pid = spec.config.tracer().map(|_| child.id());
        let limit = Duration::from_secs_f64(spec.seconds) + RUN_GRACE;
        let mut series = Series::default();
        let status = loop {
            series.push(sampling::sample(tracer_pid));
            if let Some(status) = child.try_wait().context("waiting for the run")? {
                break status;
            }
            if started.elapsed() > limit {
                // Best effort: the error below is what matters.
                let _ = child.kill();
                let _ = child.wait();
                bail!("{shown} still running after {limit:?}: killed");
            }
            thread::sleep(SAMPLE_EVERY);
        };
        let wall_s = started.elapsed().as_secs_f64();
        let stderr = fs::read_to_string(&stderr_path)
            .with_context(|| format!("reading {}", stderr_path.display()))?;
        if !status.success() {
            bail!("{shown} failed ({status}):\n{}", tail(&stderr));
        }
        let out = parse::stdout(&stdout_path)?;
        let engine = out
            .engine
            .with_context(|| format!("{shown} printed no result line:\n{}", tail(&stderr)))?;
        let (from, to) = (engine.started_unix_ns, engine.ended_unix_ns());
        let tracer = match spec.config.tracer() {
            None => None,
            Some(kind) => {
                let events = RunResult::workload_events(&engine, kind);
                let (received, dropped) = match (kind, spec.config) {
                    (Tracer::Uringtrace, _) => {
                        let tally = parse::uringtrace_tally(&stderr)
                            .with_context(|| format!("{shown}:\n{}", tail(&stderr)))?;
                        (Some(tally.events), Some(tally.dropped))
                    }
                    (Tracer::Bpftrace, Config::B1) => (Some(out.map_counts), None),
                    (Tracer::Bpftrace, _) => (Some(out.printed), Some(out.lost)),
                    (Tracer::Strace, _) => (None, None),
                };
                let between = series.tracer_between(from, to);
                let others = match (series.tracer_cpu_busy_between(from, to), between) {
                    (Some(busy), Some((cpu, _))) => Some((busy - cpu).max(0.0)),
                    _ => None,
                };
                Some(TracerOutcome {
                    events,
                    received,
                    dropped,
                    cpu_s: between.map(|(cpu, _)| cpu),
                    wait_s: between.map(|(_, wait)| match others {
                        Some(others) => wait.min(others),
                        None => wait,
                    }),
                })
            }
        };
        let loop_s = engine.elapsed_ns as f64 / 1e9;
        let engine_wait_share = engine.wait_s.map(|w| w / loop_s);
        let tracer_wait_share = tracer.as_ref().and_then(|t| t.wait_s).map(|w| w / loop_s);
        Ok(RunResult {
            spec: *spec,
            engine,
            tracer,
            engine_wait_share,
            tracer_wait_share,
            attempts: 1,
            runs_made: 1,
            wall_s,
        })
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // Best effort: a leftover directory on tmpfs is only clutter.
        let _ = fs::remove_dir_all(&self.work_dir);
    }
}

/// The last lines of a tracer's stderr, for an error message; bpftrace's
/// warning that it could not raise RLIMIT_MEMLOCK (needless with the
/// kernel's memcg accounting of BPF memory) left out.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("RLIMIT_MEMLOCK"))
        .collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
