//! The built-in io_uring workload engine: scenarios that make io_uring
//! system calls with every argument form the tracer must decode, valid and
//! invalid, and requests of every kind it must follow, and write the ground
//! truth of what they did (see [`report`]).
//!
//! Every io_uring_setup, io_uring_enter and io_uring_register goes through
//! [`ctx::Ctx`], which makes the raw system call itself: a library's
//! convenience calls would add calls, or arguments, the report cannot know.

mod abi;
mod bench;
mod ctx;
mod kernel_features;
mod pages;
mod raw;
mod report;
mod requests;
mod ring;
mod scenarios;

use std::{io::BufRead as _, path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};

use self::{ctx::Ctx, report::Report, scenarios::SCENARIOS};

#[derive(Debug, clap::Args)]
pub struct WorkloadArgs {
    /// Scenario to run; `--list` shows them all, and `tour` runs every one
    /// in a fixed order. `nop-bench` (not listed, not in `tour`) is the NOP
    /// storm of `cargo xtask bench`: NOPs, `--batch` per submit-and-wait
    /// io_uring_enter, for `--seconds`, then one JSON line on stdout with
    /// the NOPs done, the time taken, NOPs/s and the process's CPU time.
    #[arg(value_name = "SCENARIO", required_unless_present = "list")]
    pub scenario: Option<String>,

    /// nop-bench: NOPs per io_uring_enter (default 32).
    #[arg(long, value_name = "N", help_heading = "nop-bench")]
    pub batch: Option<u32>,

    /// nop-bench: how long to run (default 2).
    #[arg(long, value_name = "SECONDS", help_heading = "nop-bench")]
    pub seconds: Option<f64>,

    /// nop-bench: submit at most this many NOPs per second, sleeping when
    /// ahead (default: as fast as the kernel completes them).
    #[arg(long, value_name = "NOPS", help_heading = "nop-bench")]
    pub rate: Option<f64>,

    /// List the scenarios, each with a one-line description, and exit.
    #[arg(long, conflicts_with_all = ["scenario", "report", "wait_stdin"])]
    pub list: bool,

    /// Write the ground truth to FILE: one JSON line per io_uring system
    /// call the scenario made (setup, enter, register), in order, with the
    /// tracer's field names and the kernel's return value; and one `submit`
    /// line per request (SQE) it queued, with the outcome it reaped. Lines
    /// are written as the calls happen and the requests complete, so a
    /// failed run keeps what it did.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Before the first io_uring call, wait for one line on standard input,
    /// so a tracer can attach to this process first.
    #[arg(long)]
    pub wait_stdin: bool,
}

pub fn run(args: WorkloadArgs) -> anyhow::Result<()> {
    if args.list {
        list();
        return Ok(());
    }
    let name = args
        .scenario
        .clone()
        .context("no scenario given; `--list` shows them")?;
    let bench_args = args.batch.is_some() || args.seconds.is_some() || args.rate.is_some();
    if name == bench::NAME {
        return run_bench(&args);
    }
    if bench_args {
        bail!(
            "--batch, --seconds and --rate are for `{}` only",
            bench::NAME
        );
    }
    let scenario = scenarios::find(&name).with_context(|| {
        let names: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
        format!(
            "unknown scenario `{name}`; valid scenarios: {}",
            names.join(", ")
        )
    })?;

    let report = Report::create(args.report.as_deref())?;
    wait_stdin(args.wait_stdin)?;
    let mut ctx = Ctx::new(report);
    let result = scenarios::run(&mut ctx, scenario);
    eprintln!(
        "workload {}: {} io_uring calls, {} requests{}",
        scenario.name,
        ctx.calls(),
        ctx.requests(),
        if result.is_ok() { "" } else { ", failed" }
    );
    result
}

fn run_bench(args: &WorkloadArgs) -> anyhow::Result<()> {
    let seconds = args.seconds.unwrap_or(2.0);
    if !(seconds.is_finite() && seconds > 0.0) {
        bail!("--seconds must be a positive number, not {seconds}");
    }
    let params = bench::Params {
        batch: args.batch.unwrap_or(32),
        duration: Duration::from_secs_f64(seconds),
        rate: args.rate,
    };
    let report = Report::create(args.report.as_deref())?;
    wait_stdin(args.wait_stdin)?;
    let mut ctx = Ctx::new(report);
    ctx.set_scenario(bench::NAME);
    bench::run(&mut ctx, params, args.report.is_some())
        .and_then(|()| ctx.check_requests_finished())
        .with_context(|| format!("`{}` failed", bench::NAME))
}

fn wait_stdin(wait: bool) -> anyhow::Result<()> {
    if wait {
        let mut line = String::new();
        // End of input also releases the wait: whoever held stdin is gone
        // and there is nothing left to wait for.
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading standard input (--wait-stdin)")?;
    }
    Ok(())
}

fn list() {
    let width = SCENARIOS.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in SCENARIOS {
        println!("{:width$}  {}", s.name, s.about);
    }
}
