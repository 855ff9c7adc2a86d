//! `results.json`, `results.md` and `throughput.png` from the results.

use std::{fmt::Write as _, fs, path::Path};

use anyhow::Context as _;
use serde_json::{Map, Value, json};

use super::{
    analysis::{ByBatch, Drops, Results, Run, fmt_opt},
    configs::{BATCHES, Config},
    plot,
    runner::{MAX_ENGINE_WAIT, MAX_TRACER_WAIT},
};

/// Drop shares above this mark a throughput as flattered by the drops.
const DROP_MARK: f64 = 0.001;

/// NOPs/s the issue measured once on this machine, for comparison:
/// (configuration, batch 1, batch 32).
const ISSUE_REFERENCE: [(Config, f64, f64); 4] = [
    (Config::U, 2.1e6, 13e6),
    (Config::B1, 0.49e6, 2.1e6),
    (Config::B2, 44e3, 76e3),
    (Config::S, 9e3, 290e3),
];

pub fn write(results: &Results, dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json_path = dir.join("results.json");
    let text = serde_json::to_string_pretty(&json(results)).context("serializing the results")?;
    fs::write(&json_path, text + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let png = dir.join("throughput.png");
    plot::throughput(results, &png)?;
    let md_path = dir.join("results.md");
    fs::write(&md_path, markdown(results))
        .with_context(|| format!("writing {}", md_path.display()))?;
    Ok(())
}

fn by_batch(v: &ByBatch) -> Value {
    Value::Object(
        v.iter()
            .map(|(batch, x)| (batch.to_string(), json!(x)))
            .collect::<Map<_, _>>(),
    )
}

fn drops_json(v: &std::collections::BTreeMap<u32, Option<Drops>>) -> Value {
    Value::Object(
        v.iter()
            .map(|(batch, d)| (batch.to_string(), json!(d.map(|d| d.dropped))))
            .collect(),
    )
}

/// Per batch size: in how many of the runs the tracer dropped.
fn drop_runs_json(v: &std::collections::BTreeMap<u32, Option<Drops>>) -> Value {
    Value::Object(
        v.iter()
            .map(|(batch, d)| {
                let runs = d.map(|d| json!({"runs": d.runs, "runs_dropping": d.runs_dropping}));
                (batch.to_string(), json!(runs))
            })
            .collect(),
    )
}

fn drop_shares_json(v: &std::collections::BTreeMap<u32, Option<Drops>>) -> Value {
    Value::Object(
        v.iter()
            .map(|(batch, d)| (batch.to_string(), json!(d.map(|d| d.share()))))
            .collect(),
    )
}

fn json(r: &Results) -> Value {
    let m = &r.machine;
    let configs: Vec<Config> = Config::ALL
        .into_iter()
        .filter(|&c| c != Config::TSum || r.tsum_missing.is_none())
        .collect();
    let per_config = |f: &dyn Fn(Config) -> Value| -> Value {
        Value::Object(
            configs
                .iter()
                .map(|&c| (c.label().to_string(), f(c)))
                .collect(),
        )
    };
    let (attach_t, attach_b) = r.attach_ms();
    let other = r.other_load();
    let zl = &r.zero_loss;
    let tsum_over_b1 = match &r.tsum_missing {
        Some(_) => Value::Null,
        None => by_batch(&r.ratio(Config::TSum, Config::B1)),
    };
    json!({
        "machine": {
            "kernel": m.kernel,
            "cpus": m.cpus,
            "bpftrace": m.versions.bpftrace,
            "strace": m.versions.strace,
            "uringtrace_commit": m.commit,
            "date": m.date,
            "loadavg_start": m.loadavg_start,
            "loadavg_end": m.loadavg_end,
            "engine_wait_share_median": other.engine_wait_median,
            "engine_wait_share_max": other.engine_wait_max,
            "tracer_wait_share_median": other.tracer_wait_median,
            "tracer_wait_share_max": other.tracer_wait_max,
            "disturbed_runs_kept": other.disturbed_runs,
            "runs_made": other.attempts,
            "noise_wait_and_rerun_s": r.noise_spent.as_secs_f64(),
        },
        "method": {
            "quick": r.plan.quick,
            "rounds": r.plan.rounds,
            "seconds_per_run": r.plan.seconds,
            "batches": BATCHES,
            "engine_cpu": 0,
            "tracer_cpu": 1,
            "ratios": "per round (same batch size), median over rounds",
            "duration_s": r.duration.as_secs_f64(),
        },
        "configurations": per_config(&|c| json!(c.about())),
        "throughput_nops_per_s": per_config(&|c| by_batch(&r.throughput(c))),
        "relative_to_u": per_config(&|c| by_batch(&r.ratio(c, Config::U))),
        "cost_index": by_batch(&r.cost_index()),
        "cost_index_clock": by_batch(&r.cost_index_clock()),
        "t_over_b1": by_batch(&r.ratio(Config::T, Config::B1)),
        "t_over_b2": by_batch(&r.ratio(Config::T, Config::B2)),
        "tsum_over_b1": tsum_over_b1,
        "tsum_note": r.tsum_missing,
        "drops_t": drops_json(&r.drops(Config::T)),
        "drops_t_share": drop_shares_json(&r.drops(Config::T)),
        "drops_t_runs": drop_runs_json(&r.drops(Config::T)),
        "drops_k1": drops_json(&r.drops(Config::K1)),
        "drops_k1c": drops_json(&r.drops(Config::K1c)),
        "drops_b2": drops_json(&r.drops(Config::B2)),
        "drops_b2_share": drop_shares_json(&r.drops(Config::B2)),
        "zero_loss_rate_t": zl.best.as_ref().map(|b| b.events_per_s),
        "zero_loss": {
            "batch": zl.batch,
            "seconds_per_probe": zl.seconds,
            "engine_bound": zl.engine_bound,
            "nops_per_s": zl.best.as_ref().map(|b| b.nops_per_s),
            "probes": zl.probes.iter().map(|p| json!({
                "paced_nops_per_s": p.rate,
                "nops_per_s": p.nops_per_s,
                "events_per_s": p.events_per_s,
                "events": p.events,
                "dropped": p.dropped,
                "other_load_share": p.other_share,
            })).collect::<Vec<_>>(),
        },
        "tracer_cpu_s_per_million_events": per_config(&|c| by_batch(&r.cpu_per_million_events(c))),
        "tracer_cpu_share": per_config(&|c| by_batch(&r.tracer_cpu_share(c))),
        "attach_ms_t": attach_t,
        "attach_ms_bpftrace": attach_b,
        "attach_samples_ms": {
            "uringtrace": r.attach.uringtrace_ms,
            "bpftrace": r.attach.bpftrace_ms,
        },
        "targets": r.targets().iter().map(|t| json!({
            "target": t.name,
            "goal": t.goal,
            "measured": t.measured,
            "met": t.met,
            "missed_by": t.missed_by,
        })).collect::<Vec<_>>(),
        "runs": r.runs.iter().map(run_json).collect::<Vec<_>>(),
    })
}

/// One run as kept (built apart: the whole results object in one `json!`
/// goes past the macro's recursion limit).
fn run_json(run: &Run) -> Value {
    let x = &run.result;
    let t = x.tracer.as_ref();
    json!({
        "round": run.round + 1,
        "config": x.spec.config.label(),
        "batch": x.spec.batch,
        "nops": x.engine.nops,
        "enters": x.engine.enters,
        "elapsed_ns": x.engine.elapsed_ns,
        "nops_per_s": x.engine.nops_per_s,
        "engine_cpu_s": x.engine.cpu_s,
        "events": t.map(|t| t.events),
        "received": t.and_then(|t| t.received),
        "dropped": t.and_then(|t| t.dropped),
        "tracer_cpu_s": t.and_then(|t| t.cpu_s),
        "engine_wait_share": x.engine_wait_share,
        "tracer_wait_share": x.tracer_wait_share,
        "kept_attempt": x.attempts,
        "runs_made": x.runs_made,
        "wall_s": x.wall_s,
    })
}

/// `1.23M`, `456K`, `789`.
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

fn header(out: &mut String, cells: &[&str]) {
    row(
        out,
        &cells.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
    );
    row(
        out,
        &cells.iter().map(|_| "---".to_string()).collect::<Vec<_>>(),
    );
}

fn batch_header(first: &str) -> Vec<String> {
    std::iter::once(first.to_string())
        .chain(BATCHES.iter().map(|b| format!("batch {b}")))
        .collect()
}

fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let configs: Vec<Config> = Config::ALL
        .into_iter()
        .filter(|&c| c != Config::TSum || r.tsum_missing.is_none())
        .collect();
    let _ = writeln!(md, "# Benchmark: tracing a NOP storm\n");
    let _ = writeln!(
        md,
        "`cargo xtask bench{}` on {} (Linux {}, {} CPUs), uringtrace {}, {}, strace {}. \
         {} rounds of {} s runs; took {:.0} s. Load average {} at the start, {} at the end.\n",
        if r.plan.quick { " --quick" } else { "" },
        m.date,
        m.kernel,
        m.cpus,
        m.commit,
        m.versions.bpftrace,
        m.versions.strace.trim_start_matches("strace -- version "),
        r.plan.rounds,
        r.plan.seconds,
        r.duration.as_secs_f64(),
        m.loadavg_start,
        m.loadavg_end,
    );
    let other = r.other_load();
    let _ = writeln!(
        md,
        "The engine (`uringtrace workload nop-bench`: NOPs, N per submit-and-wait \
         `io_uring_enter`, reaped from the CQ) runs on CPU 0, every tracer on CPU 1. The \
         machine is shared: both run at nice -20, each run waits (a while) for both CPUs to \
         be quiet, and is made again (up to {} times, within {:.0} s in all) when the engine \
         spent more than {} of it runnable but waiting for its CPU (run-queue delay, from \
         schedstat), or the tracer more than {} (a tracer waits a little at every wake-up \
         even on an idle CPU; only waits behind other work count: at most the CPU time other \
         tasks had on CPU 1, from /proc/stat, not uringtrace's drain and writer threads \
         waiting for each other). {:.0} s went to waiting and running again; {} runs were made \
         for the {} kept. The engine waited {} of the run in the median run kept ({} in the \
         worst), the tracer {} ({}); {} runs were kept although disturbed. Every figure \
         below is a ratio of runs of the same round, then the median over rounds.\n",
        r.plan.noise.attempts,
        r.plan.noise.budget.as_secs_f64(),
        pct(Some(MAX_ENGINE_WAIT)),
        pct(Some(MAX_TRACER_WAIT)),
        r.noise_spent.as_secs_f64(),
        other.attempts,
        r.runs.len(),
        pct(other.engine_wait_median),
        pct(other.engine_wait_max),
        pct(other.tracer_wait_median),
        pct(other.tracer_wait_max),
        other.disturbed_runs,
    );

    let _ = writeln!(md, "## Throughput\n");
    let _ = writeln!(
        md,
        "NOPs per second (median over rounds), and in parentheses relative to U in the same \
         round.\n"
    );
    let mut cols = vec!["configuration".to_string()];
    cols.extend(BATCHES.iter().map(|b| format!("batch {b}")));
    cols.push("issue's one-off figures (1 / 32)".to_string());
    let cols_ref: Vec<&str> = cols.iter().map(String::as_str).collect();
    header(&mut md, &cols_ref);
    let mut any_dropped = false;
    for &c in &configs {
        let thr = r.throughput(c);
        let rel = r.ratio(c, Config::U);
        let drops = r.drops(c);
        let mut cells = vec![format!("**{}**: {}", c.label(), c.about())];
        for b in BATCHES {
            let mark = if drops[&b].is_some_and(|d| d.share() > DROP_MARK) {
                any_dropped = true;
                " †"
            } else {
                ""
            };
            cells.push(match (thr[&b], rel[&b]) {
                (Some(t), Some(x)) if c != Config::U => format!("{} ({x:.3}){mark}", si(t)),
                (Some(t), _) => si(t),
                _ => "n/a".to_string(),
            });
        }
        cells.push(
            ISSUE_REFERENCE
                .iter()
                .find(|(rc, _, _)| *rc == c)
                .map_or(String::new(), |(_, a, b)| {
                    format!("{} / {}", si(*a), si(*b))
                }),
        );
        row(&mut md, &cells);
    }
    if any_dropped {
        let _ = writeln!(
            md,
            "\n† Dropped more than {}% of its events (see below). A program that finds the ring \
             buffer full skips the copy and returns, so a tracer that drops slows the traced \
             program less than one that delivers every event would: these figures flatter it. \
             The zero-loss rate below is T's throughput without drops.",
            DROP_MARK * 100.0
        );
    }
    if let Some(why) = &r.tsum_missing {
        let _ = writeln!(md, "\nT-sum: {why}.");
    }
    let _ = writeln!(md, "\n![NOPs per second by batch size](throughput.png)\n");

    let _ = writeln!(md, "## Targets\n");
    header(&mut md, &["target", "goal", "measured", "met", "missed by"]);
    for t in r.targets() {
        row(
            &mut md,
            &[
                t.name,
                t.goal,
                t.measured,
                match t.met {
                    Some(true) => "yes".to_string(),
                    Some(false) => "**no**".to_string(),
                    None => "not measured".to_string(),
                },
                t.missed_by,
            ],
        );
    }

    let _ = writeln!(md, "\n## Ratios\n");
    let cols = batch_header("ratio (median of per-round ratios)");
    header(
        &mut md,
        &cols.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // Whether each ratio has T in it, whose drops flatter it.
    let mut ratios = vec![
        ("T / B1", r.ratio(Config::T, Config::B1), true),
        ("T / B2", r.ratio(Config::T, Config::B2), true),
        ("T / S", r.ratio(Config::T, Config::S), true),
    ];
    if r.tsum_missing.is_none() {
        ratios.push(("T-sum / B1", r.ratio(Config::TSum, Config::B1), false));
    }
    ratios.push(("cost index (U/T - 1) / (U/K1 - 1)", r.cost_index(), true));
    ratios.push((
        "of which the clock read (U/K1c - U/K1) / (U/K1 - 1)",
        r.cost_index_clock(),
        false,
    ));
    let t_drops = r.drops(Config::T);
    let t_dropped = |b: &u32| t_drops[b].is_some_and(|d| d.share() > DROP_MARK);
    for (name, v, has_t) in ratios {
        let mut cells = vec![name.to_string()];
        cells.extend(BATCHES.iter().map(|b| {
            let mark = if has_t && t_dropped(b) { " †" } else { "" };
            format!("{}{mark}", fmt_opt(v[b], 3))
        }));
        row(&mut md, &cells);
    }
    if BATCHES.iter().any(t_dropped) {
        let _ = writeln!(
            md,
            "\n† T dropped events at this batch size: T's side of the ratio is flattered \
             (see Throughput)."
        );
    }

    let _ = writeln!(md, "\n## Where T's cost goes\n");
    let _ = writeln!(
        md,
        "Each step's slowdown of the engine, relative to the step before (median of per-round \
         ratios): the hooks firing at all (U to K0), moving full-size records through the ring \
         buffer (K0 to K1), stamping each with the time as every real record is (K1 to K1c: \
         one bpf_ktime_get_ns per record), and uringtrace's real programs, which read the \
         arguments and filter, with a consumer that decodes and formats (K1c to T). The \
         consumer's CPU share \
         is of CPU 1 over the engine's loop; near 100% it cannot keep up and the ring buffer \
         fills.\n"
    );
    let cols = batch_header("step");
    header(
        &mut md,
        &cols.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for (name, a, b) in [
        ("U / K0: hooks firing", Config::U, Config::K0),
        (
            "K0 / K1: records through the ring buffer",
            Config::K0,
            Config::K1,
        ),
        ("K1 / K1c: the clock read", Config::K1, Config::K1c),
        (
            "K1c / T: uringtrace's programs and consumer",
            Config::K1c,
            Config::T,
        ),
    ] {
        let v = r.ratio(a, b);
        let mut cells = vec![name.to_string()];
        cells.extend(BATCHES.iter().map(|batch| {
            let mark = if b == Config::T && t_dropped(batch) {
                " †"
            } else {
                ""
            };
            format!("{}{mark}", fmt_opt(v[batch], 2))
        }));
        row(&mut md, &cells);
    }
    for c in [Config::K1, Config::T] {
        let v = r.tracer_cpu_share(c);
        let mut cells = vec![format!("{} consumer CPU share", c.label())];
        cells.extend(BATCHES.iter().map(|b| pct(v[b])));
        row(&mut md, &cells);
    }

    let _ = writeln!(md, "\n## Dropped events\n");
    let _ = writeln!(
        md,
        "Summed over all rounds, and how many runs dropped at all: uringtrace's own count (`N dropped` on its last line: ring \
         buffer full, undecodable), bpftrace's `Lost N events` lines. B1 counts in the kernel \
         and strace stops the traced process, so neither can drop.\n"
    );
    let cols = batch_header("tracer");
    header(
        &mut md,
        &cols.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for c in [Config::K1, Config::K1c, Config::T, Config::B2] {
        let d = r.drops(c);
        let mut cells = vec![c.label().to_string()];
        cells.extend(BATCHES.iter().map(|b| match d[b] {
            Some(d) => format!(
                "{} of {} ({:.1}%), {}",
                d.dropped,
                d.events,
                d.share() * 100.0,
                d.in_runs()
            ),
            None => "n/a".to_string(),
        }));
        row(&mut md, &cells);
    }

    let zl = &r.zero_loss;
    let _ = writeln!(md, "\n## Highest rate T sustains with zero drops\n");
    let _ = writeln!(
        md,
        "Method: T at {} NOPs per enter with the default ring buffer (16 MiB), {} s per probe. \
         First unpaced; if that drops, the engine is paced (`nop-bench --rate`, sleeping when \
         ahead) and the rate bisected, starting a little under what the consumer drained \
         while overrun. A rate that drops is run a second time{}: other work on the machine \
         can only add drops (the 16 MiB buffer holds about 130K records, ~27 ms of events \
         at 4.9M a second, so a consumer kept off its CPU that long overflows it), so \
         one clean run shows T sustains the rate. Events are T's records: one per \
         submission, per CQE and per io_uring_enter.\n",
        zl.batch,
        zl.seconds,
        if r.plan.quick {
            " (not with --quick)"
        } else {
            ""
        }
    );
    match &zl.best {
        Some(best) if zl.engine_bound => {
            let _ = writeln!(
                md,
                "**{} events/s** ({} NOPs/s): the unpaced run dropped nothing, so this is the \
                 engine's limit under T, not T's.\n",
                si(best.events_per_s),
                si(best.nops_per_s)
            );
        }
        Some(best) => {
            let _ = writeln!(
                md,
                "**{} events/s** ({} NOPs/s) without a drop.\n",
                si(best.events_per_s),
                si(best.nops_per_s)
            );
        }
        None => {
            let _ = writeln!(md, "No probe ran without drops.\n");
        }
    }
    header(
        &mut md,
        &[
            "paced at (NOPs/s)",
            "NOPs/s",
            "events/s",
            "dropped",
            "waited for a CPU",
        ],
    );
    for p in &zl.probes {
        row(
            &mut md,
            &[
                p.rate.map_or("unpaced".to_string(), si),
                si(p.nops_per_s),
                si(p.events_per_s),
                format!(
                    "{} ({:.1}%)",
                    p.dropped,
                    p.dropped as f64 / p.events.max(1) as f64 * 100.0
                ),
                pct(Some(p.other_share)),
            ],
        );
    }

    let _ = writeln!(md, "\n## Tracer CPU per million events\n");
    let _ = writeln!(
        md,
        "CPU seconds of the tracer process (all its threads, from /proc/PID/task/*/schedstat, \
         sampled every 20 ms and interpolated over the engine's loop; eBPF programs run in the engine and are \
         not in it), per million events of the workload as each tracer sees them: uringtrace a \
         record per submission, CQE and io_uring_enter; bpftrace a probe per submission and \
         CQE and two per io_uring_enter; strace one per io_uring_enter.\n"
    );
    let cols = batch_header("configuration");
    header(
        &mut md,
        &cols.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    for &c in configs.iter().filter(|c| c.tracer().is_some()) {
        let v = r.cpu_per_million_events(c);
        let share = r.tracer_cpu_share(c);
        let mut cells = vec![c.label().to_string()];
        cells.extend(
            BATCHES
                .iter()
                .map(|b| format!("{} s ({} of CPU 1)", fmt_opt(v[b], 3), pct(share[b]))),
        );
        row(&mut md, &cells);
    }

    let (t, b) = r.attach_ms();
    let _ = writeln!(md, "\n## Load and attach time\n");
    let _ = writeln!(
        md,
        "From starting the tracer to its ready line, tracing an idle `sleep` (uringtrace: \
         `uringtrace: tracing ...` on stderr, after every hook is attached and the command \
         started; bpftrace: its BEGIN probe's `ready`, which bpftrace 0.17 runs after attaching \
         every probe and starting the command). Alternating, {} times each; median.\n",
        r.attach.uringtrace_ms.len()
    );
    header(&mut md, &["tracer", "median", "samples (ms)"]);
    for (name, median, samples) in [
        ("uringtrace (T)", t, &r.attach.uringtrace_ms),
        ("bpftrace (B1 script)", b, &r.attach.bpftrace_ms),
    ] {
        row(
            &mut md,
            &[
                name.to_string(),
                format!("{} ms", fmt_opt(median, 0)),
                samples
                    .iter()
                    .map(|s| format!("{s:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ],
        );
    }

    let _ = writeln!(md, "\n## Method\n");
    let _ = writeln!(
        md,
        "- Each round runs every configuration once at each batch size (1, 8, 32 NOPs per \
         enter), the configurations in an order rotated from round to round; each run is a \
         fresh tracer and a fresh engine.\n\
         - The engine is pinned with `taskset -c 0` (it is the tracer's command, so it is \
         traced from exec), the tracer with `taskset -c 1`; both run at `nice -n -20` in a \
         session of their own (`setsid`) whose autogroup is set to nice -20 too, since with \
         sched_autogroup nice alone does not rank tasks of different sessions.\n\
         - The engine's throughput is its own count over its own timed loop, so start-up and \
         teardown of the tracers are not in it.\n\
         - bpftrace filters on `pid == cpid`, uringtrace on the traced process in the kernel. \
         B2's printf output goes to a file on tmpfs rather than /dev/null, because bpftrace's \
         `Lost N events` lines go to the same stream and /dev/null would hide them.\n\
         - All runs are in `results.json` (`runs`), with each run's dropped and received \
         counts and the tracer's CPU time.\n"
    );
    md
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |v| format!("{:.0}%", v * 100.0))
}
