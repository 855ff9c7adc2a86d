//! `cargo xtask bench`: what tracing io_uring costs, uringtrace against
//! bpftrace and strace, on the engine's NOP storm (`uringtrace workload
//! nop-bench`), the cheapest request there is, so the tracers' per-event
//! cost dominates.
//!
//! The engine runs pinned to CPU 0 and every tracer to CPU 1. Each round
//! runs every configuration once at each batch size, in an order rotated
//! from round to round, and every figure reported is a ratio within a
//! round (then the median over rounds), so load that comes and goes on a
//! shared machine hits all configurations alike.

mod analysis;
mod attach;
mod configs;
mod parse;
mod plot;
mod report;
mod runner;
mod sampling;
mod tools;
mod zero_loss;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::run::{cargo, is_root, status, workspace_root};
use configs::{BATCHES, Config};
use runner::{NoisePolicy, RunSpec, Runner};

/// `cargo xtask bench` options.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A short pass (2 rounds of 0.5 s runs, fewer zero-loss and attach
    /// probes) that finishes in under 2 minutes; written to
    /// target/bench-quick unless --out says otherwise.
    #[arg(long)]
    pub quick: bool,
    /// Rounds (each runs every configuration at every batch size once).
    #[arg(long, value_name = "N")]
    pub rounds: Option<u32>,
    /// Length of each run, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<f64>,
    /// Where results.json, results.md and throughput.png go (default:
    /// bench/ for a full run).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Measure this uringtrace binary instead of building one (it must
    /// have the eBPF programs in it).
    #[arg(long, value_name = "PATH")]
    pub uringtrace: Option<PathBuf>,
}

/// How much of everything one invocation measures.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub quick: bool,
    pub rounds: u32,
    pub seconds: f64,
    /// Paced runs of the zero-loss search, after the unpaced one.
    pub zero_loss_steps: u32,
    pub zero_loss_seconds: f64,
    /// Start-to-ready samples of each tracer.
    pub attach_rounds: u32,
    pub noise: NoisePolicy,
}

impl Plan {
    fn new(args: &BenchArgs) -> anyhow::Result<Self> {
        let mut plan = if args.quick {
            Self {
                quick: true,
                rounds: 2,
                seconds: 0.5,
                zero_loss_steps: 3,
                zero_loss_seconds: 0.5,
                attach_rounds: 3,
                // No time to wait for quiet: the runs are taken as they
                // come, and the results say how disturbed they were.
                noise: NoisePolicy {
                    quiet_wait: Duration::ZERO,
                    attempts: 1,
                    budget: Duration::ZERO,
                },
            }
        } else {
            Self {
                quick: false,
                rounds: 5,
                seconds: 3.0,
                zero_loss_steps: 6,
                zero_loss_seconds: 3.0,
                attach_rounds: 7,
                noise: NoisePolicy {
                    quiet_wait: Duration::from_secs(2),
                    attempts: 3,
                    budget: Duration::from_secs(20 * 60),
                },
            }
        };
        if let Some(rounds) = args.rounds {
            if rounds == 0 {
                bail!("--rounds must be at least 1");
            }
            plan.rounds = rounds;
        }
        if let Some(seconds) = args.seconds {
            if !(seconds.is_finite() && seconds > 0.0) {
                bail!("--seconds must be a positive number, not {seconds}");
            }
            plan.seconds = seconds;
            plan.zero_loss_seconds = seconds;
        }
        Ok(plan)
    }
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !is_root() {
        bail!(
            "the benchmark loads eBPF programs and pins processes: run `sudo -E cargo xtask bench`"
        );
    }
    let began = Instant::now();
    let plan = Plan::new(args)?;
    let out_dir = match &args.out {
        Some(dir) => dir.clone(),
        None if plan.quick => workspace_root().join("target/bench-quick"),
        None => workspace_root().join("bench"),
    };
    let versions = tools::ensure()?;
    let uringtrace = match &args.uringtrace {
        Some(path) => path
            .canonicalize()
            .with_context(|| format!("no uringtrace binary at {}", path.display()))?,
        None => {
            status(cargo().args(["build", "--release", "--package", "uringtrace"]))?;
            workspace_root().join("target/release/uringtrace")
        }
    };
    let summary = configs::summary_support(&uringtrace)?;
    let machine = analysis::Machine::now(versions)?;

    let runner = Runner::new(uringtrace.clone(), plan.noise)?;
    let mut runs = Vec::new();
    let total = plan.rounds as usize * BATCHES.len() * Config::ALL.len();
    for round in 0..plan.rounds {
        for &batch in &BATCHES {
            for config in Config::rotated(round) {
                if config == Config::TSum && summary.is_err() {
                    continue;
                }
                let spec = RunSpec {
                    config,
                    batch,
                    seconds: plan.seconds,
                    rate: None,
                };
                let result = runner
                    .run(&spec)
                    .with_context(|| format!("round {}: {}", round + 1, spec.describe()))?;
                println!(
                    "bench: [{:>3}/{total}] round {} {:<5} batch {:>2}: {}",
                    runs.len() + 1,
                    round + 1,
                    config.label(),
                    batch,
                    result.summary_line()
                );
                runs.push(analysis::Run { round, result });
            }
        }
    }

    let zero_loss = zero_loss::search(&runner, &plan)?;
    let attach = attach::measure(&runner, plan.attach_rounds)?;
    let machine = machine.finish()?;
    let results = analysis::Results {
        plan,
        machine,
        runs,
        zero_loss,
        attach,
        tsum_missing: summary.err(),
        noise_spent: runner.noise_spent(),
        duration: began.elapsed(),
    };
    report::write(&results, &out_dir)?;
    println!(
        "bench: done in {:.0} s; {}",
        began.elapsed().as_secs_f64(),
        out_dir.join("results.md").display()
    );
    Ok(())
}
