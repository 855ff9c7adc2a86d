//! From the runs to the figures reported: everything relative is a ratio
//! of two runs of the same round and batch size, and the figure is the
//! median of those ratios over the rounds.

use std::{collections::BTreeMap, fs, process::Command, time::Duration};

use anyhow::Context as _;

use super::{
    Plan,
    attach::AttachTimes,
    configs::{BATCHES, Config},
    runner::RunResult,
    tools::Versions,
    zero_loss::ZeroLoss,
};
use crate::run::workspace_root;

/// Where and with what the benchmark ran.
#[derive(Debug, Clone)]
pub struct Machine {
    pub kernel: String,
    pub cpus: usize,
    pub loadavg_start: String,
    pub loadavg_end: String,
    pub versions: Versions,
    /// The commit of the tracer measured, `-dirty` when the tree had
    /// changes.
    pub commit: String,
    pub date: String,
}

fn loadavg() -> anyhow::Result<String> {
    let text = fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    Ok(text
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" "))
}

fn output_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

impl Machine {
    pub fn now(versions: Versions) -> anyhow::Result<Self> {
        let dirty =
            !output_of("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
        Ok(Self {
            kernel: output_of("uname", &["-r"]),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            loadavg_start: loadavg()?,
            loadavg_end: String::new(),
            versions,
            commit: format!(
                "{}{}",
                output_of("git", &["rev-parse", "--short", "HEAD"]),
                if dirty { "-dirty" } else { "" }
            ),
            date: output_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        })
    }

    pub fn finish(mut self) -> anyhow::Result<Self> {
        self.loadavg_end = loadavg()?;
        Ok(self)
    }
}

#[derive(Debug, Clone)]
pub struct Run {
    pub round: u32,
    pub result: RunResult,
}

/// A figure per batch size; `None` where it could not be measured.
pub type ByBatch = BTreeMap<u32, Option<f64>>;

/// Events dropped by one tracer at one batch size, over all rounds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Drops {
    pub dropped: u64,
    pub events: u64,
    /// Runs counted, and how many of them dropped: drops come in runs
    /// whose consumer fell behind (and stayed behind), so one such run
    /// can make the whole sum.
    pub runs: u32,
    pub runs_dropping: u32,
}

impl Drops {
    /// Counts one more run.
    fn add_run(&mut self, dropped: u64, events: u64) {
        self.dropped += dropped;
        self.events += events;
        self.runs += 1;
        self.runs_dropping += u32::from(dropped > 0);
    }

    /// "in K of N runs": how many of the runs dropped.
    pub fn in_runs(&self) -> String {
        format!("in {} of {} runs", self.runs_dropping, self.runs)
    }

    pub fn share(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.dropped as f64 / self.events as f64
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct OtherLoad {
    pub engine_wait_median: Option<f64>,
    pub engine_wait_max: Option<f64>,
    pub tracer_wait_median: Option<f64>,
    pub tracer_wait_max: Option<f64>,
    pub disturbed_runs: usize,
    pub attempts: u32,
}

/// One target of the issue, met or missed and by how much.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub goal: String,
    pub measured: String,
    /// `None`: not measured.
    pub met: Option<bool>,
    /// By how much it was missed (empty when met).
    pub missed_by: String,
}

pub struct Results {
    pub plan: Plan,
    pub machine: Machine,
    pub runs: Vec<Run>,
    pub zero_loss: ZeroLoss,
    pub attach: AttachTimes,
    /// Why T-sum was not measured.
    pub tsum_missing: Option<String>,
    /// Time spent waiting for quiet and running again (see
    /// [`super::runner::NoisePolicy`]).
    pub noise_spent: Duration,
    pub duration: Duration,
}

pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

impl Results {
    /// The runs at `batch`, grouped by round.
    fn rounds(&self, batch: u32) -> Vec<BTreeMap<Config, &RunResult>> {
        let mut by_round: BTreeMap<u32, BTreeMap<Config, &RunResult>> = BTreeMap::new();
        for run in self.runs.iter().filter(|r| r.result.spec.batch == batch) {
            by_round
                .entry(run.round)
                .or_default()
                .insert(run.result.spec.config, &run.result);
        }
        by_round.into_values().collect()
    }

    /// The median over rounds of `f` of each round's runs, per batch size.
    fn per_round(&self, f: impl Fn(&BTreeMap<Config, &RunResult>) -> Option<f64>) -> ByBatch {
        BATCHES
            .iter()
            .map(|&batch| {
                (
                    batch,
                    median(self.rounds(batch).iter().filter_map(&f).collect()),
                )
            })
            .collect()
    }

    /// Median NOPs/s of `config`.
    pub fn throughput(&self, config: Config) -> ByBatch {
        self.per_round(|r| r.get(&config).map(|x| x.engine.nops_per_s))
    }

    /// Throughput of `a` over throughput of `b`, within each round.
    pub fn ratio(&self, a: Config, b: Config) -> ByBatch {
        self.per_round(|r| Some(r.get(&a)?.engine.nops_per_s / r.get(&b)?.engine.nops_per_s))
    }

    /// (U/T − 1) / (U/K1 − 1): what T's whole pipeline costs the traced
    /// program, in units of the bare cost of moving the same records
    /// through the ring buffer.
    pub fn cost_index(&self) -> ByBatch {
        self.per_round(|r| {
            let u = r.get(&Config::U)?.engine.nops_per_s;
            let t = r.get(&Config::T)?.engine.nops_per_s;
            let k1 = r.get(&Config::K1)?.engine.nops_per_s;
            Some((u / t - 1.0) / (u / k1 - 1.0))
        })
    }

    /// The clock read's part of the cost index: (U/K1c − U/K1) / (U/K1 − 1),
    /// what stamping each record with the time adds to the bare limit, in
    /// the cost index's units. The rest of the index is T's other work.
    pub fn cost_index_clock(&self) -> ByBatch {
        self.per_round(|r| {
            let u = r.get(&Config::U)?.engine.nops_per_s;
            let k1 = r.get(&Config::K1)?.engine.nops_per_s;
            let k1c = r.get(&Config::K1c)?.engine.nops_per_s;
            Some((u / k1c - u / k1) / (u / k1 - 1.0))
        })
    }

    /// Events dropped by `config` over all rounds, per batch size; `None`
    /// where the tracer cannot drop.
    pub fn drops(&self, config: Config) -> BTreeMap<u32, Option<Drops>> {
        BATCHES
            .iter()
            .map(|&batch| {
                let mut total: Option<Drops> = None;
                for run in self.runs_of(config, batch) {
                    if let Some(t) = &run.tracer
                        && let Some(dropped) = t.dropped
                    {
                        total.get_or_insert_default().add_run(dropped, t.events);
                    }
                }
                (batch, total)
            })
            .collect()
    }

    fn runs_of(&self, config: Config, batch: u32) -> impl Iterator<Item = &RunResult> {
        self.runs
            .iter()
            .map(|r| &r.result)
            .filter(move |r| r.spec.config == config && r.spec.batch == batch)
    }

    /// The tracer's CPU seconds per million events of the workload, over
    /// all rounds.
    pub fn cpu_per_million_events(&self, config: Config) -> ByBatch {
        BATCHES
            .iter()
            .map(|&batch| {
                let (mut cpu, mut events) = (0.0, 0u64);
                for run in self.runs_of(config, batch) {
                    if let Some(t) = &run.tracer
                        && let Some(c) = t.cpu_s
                    {
                        cpu += c;
                        events += t.events;
                    }
                }
                (batch, (events > 0).then(|| cpu / events as f64 * 1e6))
            })
            .collect()
    }

    /// The tracer's CPU use over the engine's loop, as a share of one CPU
    /// (median over rounds).
    pub fn tracer_cpu_share(&self, config: Config) -> ByBatch {
        self.per_round(|r| {
            let run = r.get(&config)?;
            Some(run.tracer.as_ref()?.cpu_s? / (run.engine.elapsed_ns as f64 / 1e9))
        })
    }

    /// Other work on the machine during the runs: the shares of each
    /// run's loop that the engine, and the tracer, waited for their CPU
    /// (median and maximum over the runs kept); runs kept although
    /// disturbed (after every attempt); and runs made in all.
    pub fn other_load(&self) -> OtherLoad {
        let engine: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.result.engine_wait_share)
            .collect();
        let tracer: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.result.tracer_wait_share)
            .collect();
        OtherLoad {
            engine_wait_median: median(engine.clone()),
            engine_wait_max: engine.iter().copied().reduce(f64::max),
            tracer_wait_median: median(tracer.clone()),
            tracer_wait_max: tracer.iter().copied().reduce(f64::max),
            disturbed_runs: self.runs.iter().filter(|r| r.result.disturbed()).count(),
            attempts: self.runs.iter().map(|r| r.result.runs_made).sum(),
        }
    }

    pub fn attach_ms(&self) -> (Option<f64>, Option<f64>) {
        (
            median(self.attach.uringtrace_ms.clone()),
            median(self.attach.bpftrace_ms.clone()),
        )
    }

    pub fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let t_over_b1 = self.ratio(Config::T, Config::B1);
        let drops_t = self.drops(Config::T);
        for &batch in &BATCHES {
            let ratio = t_over_b1[&batch];
            let drops = drops_t[&batch];
            let met = ratio.map(|r| r >= 1.0 && drops.is_some_and(|d| d.dropped == 0));
            let mut missed = Vec::new();
            if let Some(r) = ratio
                && r < 1.0
            {
                missed.push(format!(
                    "T is {:.0}% slower than B1 (B1 is {:.2}x T)",
                    (1.0 - r) * 100.0,
                    1.0 / r
                ));
            }
            if let Some(d) = drops
                && d.dropped > 0
            {
                missed.push(format!(
                    "T dropped {} events ({:.1}%) {}",
                    d.dropped,
                    d.share() * 100.0,
                    d.in_runs()
                ));
            }
            targets.push(Target {
                name: format!("T >= B1, zero drops, batch {batch}"),
                goal: "T/B1 >= 1 and 0 dropped".to_string(),
                measured: format!(
                    "T/B1 = {}, dropped {}",
                    fmt_opt(ratio, 2),
                    drops.map_or("n/a".to_string(), |d| d.dropped.to_string())
                ),
                met,
                missed_by: missed.join("; "),
            });
        }
        let tsum_over_b1 = self.ratio(Config::TSum, Config::B1);
        for &batch in &BATCHES {
            let ratio = tsum_over_b1[&batch];
            targets.push(Target {
                name: format!("T-sum >= 1.5x B1, batch {batch}"),
                goal: "T-sum/B1 >= 1.5".to_string(),
                measured: match (&self.tsum_missing, ratio) {
                    (Some(why), _) => format!("not measured: {why}"),
                    (None, r) => format!("T-sum/B1 = {}", fmt_opt(r, 2)),
                },
                met: ratio.map(|r| r >= 1.5),
                missed_by: match ratio {
                    Some(r) if r < 1.5 => format!("{:.2} short of 1.5", 1.5 - r),
                    _ => String::new(),
                },
            });
        }
        let cost = self.cost_index();
        for &batch in &BATCHES {
            let c = cost[&batch];
            targets.push(Target {
                name: format!("cost index <= 1.5, batch {batch}"),
                goal: "(U/T - 1) / (U/K1 - 1) <= 1.5".to_string(),
                measured: match drops_t[&batch] {
                    Some(d) if d.dropped > 0 => format!(
                        "{} (flattered: T dropped {:.1}% of the events, and a dropped event \
                         costs the traced program less)",
                        fmt_opt(c, 2),
                        d.share() * 100.0
                    ),
                    _ => fmt_opt(c, 2),
                },
                met: c.map(|c| c <= 1.5),
                missed_by: match c {
                    Some(c) if c > 1.5 => format!("{:.2} over 1.5", c - 1.5),
                    _ => String::new(),
                },
            });
        }
        let zl = &self.zero_loss;
        // Every unpaced run at 32 per enter counts: the rounds' and the
        // zero-loss probe's first, unpaced one.
        let unpaced_probe = zl
            .probes
            .iter()
            .find(|p| p.rate.is_none())
            .filter(|_| zl.batch == 32);
        let d32 = drops_t[&32].map(|mut d| {
            if let Some(p) = unpaced_probe {
                d.add_run(p.dropped, p.events);
            }
            d
        });
        targets.push(Target {
            name: "no drops at the highest rate, batch 32, default ring buffer".to_string(),
            goal: "0 dropped by T unpaced at 32 NOPs per enter (every round's run and the \
                   zero-loss probe's unpaced one)"
                .to_string(),
            measured: match (d32, &zl.best) {
                (Some(d), Some(best)) => format!(
                    "{} dropped ({:.1}%) {}; zero-loss up to {:.0} events/s",
                    d.dropped,
                    d.share() * 100.0,
                    d.in_runs(),
                    best.events_per_s
                ),
                (Some(d), None) => format!(
                    "{} dropped ({:.1}%) {}; no zero-loss rate found",
                    d.dropped,
                    d.share() * 100.0,
                    d.in_runs()
                ),
                (None, _) => "not measured".to_string(),
            },
            met: d32.map(|d| d.dropped == 0),
            missed_by: match (d32, &zl.best, zl.probes.first()) {
                (Some(d), Some(best), Some(unpaced)) if d.dropped > 0 => format!(
                    "{:.1}% of the events dropped, {}; T keeps up with {:.0}% of the unpaced \
                     event rate ({:.0} of {:.0} events/s)",
                    d.share() * 100.0,
                    d.in_runs(),
                    best.events_per_s / unpaced.events_per_s * 100.0,
                    best.events_per_s,
                    unpaced.events_per_s
                ),
                (Some(d), _, _) if d.dropped > 0 => format!(
                    "{:.1}% of the events dropped, {}",
                    d.share() * 100.0,
                    d.in_runs()
                ),
                _ => String::new(),
            },
        });
        let (t, b) = self.attach_ms();
        targets.push(Target {
            name: "load+attach faster than bpftrace".to_string(),
            goal: "uringtrace start-to-ready < bpftrace's".to_string(),
            measured: format!(
                "uringtrace {} ms, bpftrace {} ms",
                fmt_opt(t, 0),
                fmt_opt(b, 0)
            ),
            met: t.zip(b).map(|(t, b)| t < b),
            missed_by: match t.zip(b) {
                Some((t, b)) if t >= b => format!("{:.0} ms slower", t - b),
                _ => String::new(),
            },
        });
        targets
    }
}

pub fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("n/a".to_string(), |v| format!("{v:.decimals$}"))
}
