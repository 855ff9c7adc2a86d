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

/// What to do about other work on the machine: wait for both CPUs to be
/// quiet before a run, and run again when other work took more than
/// [`sampling::QUIET_SHARE`] of either CPU during the engine's loop.
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
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub spec: RunSpec,
    pub engine: Engine,
    pub tracer: Option<TracerOutcome>,
    /// CPU 0's busy time over the engine's loop beyond the engine's own,
    /// as a share of the loop: load from elsewhere that slowed it.
    pub cpu0_other_share: Option<f64>,
    /// The same for CPU 1 beyond the tracer's own (all of it for U).
    pub cpu1_other_share: Option<f64>,
    /// Runs made to get this one (more than 1 when others were noisy).
    pub attempts: u32,
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
        if other > 0.05 {
            s += &format!(
                " (up to {:.0}% of a CPU busy with other work)",
                other * 100.0
            );
        }
        if self.attempts > 1 {
            s += &format!(" [attempt {}]", self.attempts);
        }
        s
    }

    /// The larger share of CPU 0 or (for a tracer) CPU 1 that other work
    /// took during the engine's loop.
    pub fn other_share(&self) -> f64 {
        let cpu1 = if self.tracer.is_some() {
            self.cpu1_other_share
        } else {
            None
        };
        self.cpu0_other_share
            .unwrap_or(0.0)
            .max(cpu1.unwrap_or(0.0))
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
        for attempt in 1..=self.noise.attempts.max(1) {
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
            let quiet = result.other_share() <= sampling::QUIET_SHARE;
            if best
                .as_ref()
                .is_none_or(|b| result.other_share() < b.other_share())
            {
                best = Some(result);
            }
            if quiet || self.budget_left().is_zero() {
                break;
            }
        }
        best.context("no run made")
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
            series.push(sampling::sample(tracer_pid)?);
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
                Some(TracerOutcome {
                    events,
                    received,
                    dropped,
                    cpu_s: series.tracer_cpu_s(from, to),
                })
            }
        };
        let loop_s = engine.elapsed_ns as f64 / 1e9;
        let cpu0_other_share = series
            .cpu_busy_s(0, from, to)
            .map(|busy| ((busy - engine.cpu_s) / loop_s).max(0.0));
        let tracer_cpu = tracer.as_ref().and_then(|t| t.cpu_s).unwrap_or(0.0);
        let cpu1_other_share = series
            .cpu_busy_s(1, from, to)
            .map(|busy| ((busy - tracer_cpu) / loop_s).max(0.0));
        Ok(RunResult {
            spec: *spec,
            engine,
            tracer,
            cpu0_other_share,
            cpu1_other_share,
            attempts: 1,
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
