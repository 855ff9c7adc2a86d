//! The highest event rate T sustains without a drop, with the default ring
//! buffer, at 32 NOPs per enter: T first unpaced; if it dropped, the engine
//! is paced (`nop-bench --rate`) and the rate bisected between the
//! highest that lost nothing and the lowest that lost something (a rate
//! that lost something is tried twice, see [`search`]).

use super::{
    Plan,
    configs::{Config, Tracer},
    runner::{RunResult, RunSpec, Runner},
};

const BATCH: u32 = 32;

/// One run of the search.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The pace asked for; `None` for the unpaced run.
    pub rate: Option<f64>,
    pub nops_per_s: f64,
    /// Events per second (uringtrace's records: one per submission, CQE
    /// and io_uring_enter) over the engine's loop.
    pub events_per_s: f64,
    /// Events over the whole loop, and how many of them were dropped.
    pub events: u64,
    pub dropped: u64,
    /// The larger share of it that the engine or T waited for its CPU.
    pub other_share: f64,
}

#[derive(Debug, Clone)]
pub struct ZeroLoss {
    pub batch: u32,
    pub seconds: f64,
    pub probes: Vec<Probe>,
    /// The fastest probe without a drop.
    pub best: Option<Probe>,
    /// The unpaced run lost nothing: the rate is the engine's limit under
    /// T, not T's.
    pub engine_bound: bool,
}

fn probe(runner: &Runner, plan: &Plan, rate: Option<f64>) -> anyhow::Result<Probe> {
    let spec = RunSpec {
        config: Config::T,
        batch: BATCH,
        seconds: plan.zero_loss_seconds,
        rate,
    };
    let result = runner.run(&spec)?;
    let events = RunResult::workload_events(&result.engine, Tracer::Uringtrace);
    let probe = Probe {
        rate,
        nops_per_s: result.engine.nops_per_s,
        events_per_s: events as f64 / (result.engine.elapsed_ns as f64 / 1e9),
        events,
        dropped: result.tracer.as_ref().and_then(|t| t.dropped).unwrap_or(0),
        other_share: result.other_share(),
    };
    println!(
        "bench: zero-loss probe {}: {:.0} NOPs/s, {:.0} events/s, {} dropped",
        rate.map_or("unpaced".to_string(), |r| format!("at {r:.0} NOPs/s")),
        probe.nops_per_s,
        probe.events_per_s,
        probe.dropped
    );
    Ok(probe)
}

pub fn search(runner: &Runner, plan: &Plan) -> anyhow::Result<ZeroLoss> {
    let unpaced = probe(runner, plan, None)?;
    let mut probes = vec![unpaced.clone()];
    if unpaced.dropped == 0 {
        return Ok(ZeroLoss {
            batch: BATCH,
            seconds: plan.zero_loss_seconds,
            best: Some(unpaced),
            probes,
            engine_bound: true,
        });
    }
    // The first pace: a little under what the consumer drained while it
    // was overrun, since that is about as fast as it can go.
    let per_nop = unpaced.events_per_s / unpaced.nops_per_s;
    let drained = unpaced.events_per_s * (1.0 - unpaced.drop_share()) / per_nop;
    let (mut lo, mut hi) = (0.0_f64, unpaced.nops_per_s);
    let mut rate = (0.9 * drained).clamp(hi * 0.25, hi * 0.95);
    let mut best: Option<Probe> = None;
    for _ in 0..plan.zero_loss_steps {
        let mut p = probe(runner, plan, Some(rate))?;
        // Other work on a shared machine only ever adds drops (a consumer
        // off its CPU for a while lets the buffer fill): a rate that drops
        // once is run again, and one clean run shows T sustains it.
        if p.dropped > 0 && !plan.quick {
            probes.push(p);
            p = probe(runner, plan, Some(rate))?;
        }
        if p.dropped == 0 {
            lo = rate;
            if best
                .as_ref()
                .is_none_or(|b| p.events_per_s > b.events_per_s)
            {
                best = Some(p.clone());
            }
        } else {
            hi = rate;
        }
        probes.push(p);
        rate = (lo + hi) / 2.0;
    }
    Ok(ZeroLoss {
        batch: BATCH,
        seconds: plan.zero_loss_seconds,
        probes,
        best,
        engine_bound: false,
    })
}

impl Probe {
    /// The share of the workload's events that were dropped.
    fn drop_share(&self) -> f64 {
        if self.events == 0 {
            return 0.0;
        }
        (self.dropped as f64 / self.events as f64).min(1.0)
    }
}
