//! What the engine and the tracers print, read back: the engine's JSON
//! result line, uringtrace's closing tally, bpftrace's counts and its
//! `Lost N events` lines.

use std::{
    fs::File,
    io::{BufRead as _, BufReader},
    path::Path,
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::configs::PRINTF_TAG;

/// The engine's result line (`workload nop-bench`).
#[derive(Debug, Clone)]
pub struct Engine {
    pub nops: u64,
    pub enters: u64,
    pub started_unix_ns: u64,
    pub elapsed_ns: u64,
    pub nops_per_s: f64,
    /// The engine's own CPU time, the eBPF programs run in it included.
    pub cpu_s: f64,
    /// Time the engine's loop waited for its CPU; `None` without
    /// schedstats.
    pub wait_s: Option<f64>,
}

impl Engine {
    fn parse(line: &str) -> anyhow::Result<Self> {
        let v: Value = serde_json::from_str(line).context("not JSON")?;
        let int = |key: &str| {
            v[key]
                .as_u64()
                .with_context(|| format!("no integer `{key}`"))
        };
        Ok(Self {
            nops: int("nops")?,
            enters: int("enters")?,
            started_unix_ns: int("started_unix_ns")?,
            elapsed_ns: int("elapsed_ns")?,
            nops_per_s: v["nops_per_s"].as_f64().context("no `nops_per_s`")?,
            cpu_s: (int("cpu_user_us")? + int("cpu_sys_us")?) as f64 / 1e6,
            wait_s: v["runqueue_wait_ns"].as_u64().map(|ns| ns as f64 / 1e9),
        })
    }

    pub fn ended_unix_ns(&self) -> u64 {
        self.started_unix_ns + self.elapsed_ns
    }
}

/// What a run's standard output held (the engine's, and a bpftrace
/// tracer's, which share it).
#[derive(Debug, Default)]
pub struct Stdout {
    pub engine: Option<Engine>,
    /// bpftrace's `@name: N` map lines, summed.
    pub map_counts: u64,
    /// bpftrace's `Lost N events` lines, summed.
    pub lost: u64,
    /// bpftrace printf lines (B2).
    pub printed: u64,
}

/// Reads a run's standard output, which for B2 can be large: line by line.
pub fn stdout(path: &Path) -> anyhow::Result<Stdout> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Stdout::default();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        scan_line(&String::from_utf8_lossy(&line), &mut out)
            .with_context(|| format!("in {}", path.display()))?;
    }
    Ok(out)
}

fn scan_line(line: &str, out: &mut Stdout) -> anyhow::Result<()> {
    if line.starts_with(PRINTF_TAG) {
        out.printed += 1;
    } else if line.contains("\"bench\":\"nop\"") {
        out.engine = Some(Engine::parse(line).with_context(|| format!("engine line `{line}`"))?);
    } else if let Some(n) = line
        .strip_prefix("Lost ")
        .and_then(|rest| rest.strip_suffix(" events"))
    {
        out.lost += n.trim().parse::<u64>().context("a `Lost N events` line")?;
    } else if let Some((name, n)) = line.split_once(": ")
        && name.starts_with('@')
    {
        out.map_counts += n.trim().parse::<u64>().context("a bpftrace map line")?;
    }
    Ok(())
}

/// uringtrace's closing line: `uringtrace: N events, N written, N dropped
/// (...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub events: u64,
    pub written: u64,
    pub dropped: u64,
}

pub fn uringtrace_tally(stderr: &str) -> anyhow::Result<Tally> {
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("uringtrace: ")
                .filter(|r| r.contains(" events, "))
        })
        .context("uringtrace printed no closing `N events, N written, N dropped` line")?;
    let mut numbers = line
        .split(',')
        .map(|part| part.split_whitespace().next().and_then(|n| n.parse().ok()));
    let (Some(Some(events)), Some(Some(written)), Some(Some(dropped))) =
        (numbers.next(), numbers.next(), numbers.next())
    else {
        bail!("cannot read uringtrace's closing line `{line}`");
    };
    Ok(Tally {
        events,
        written,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally() {
        let stderr = "uringtrace: tracing command pid 5\nuringtrace: 427473 events, 427472 written, \
                      433258 dropped (ring buffer full: 433258, undecodable: 0); 17351 requests ended\n";
        assert_eq!(
            uringtrace_tally(stderr).unwrap(),
            Tally {
                events: 427473,
                written: 427472,
                dropped: 433258
            }
        );
        assert!(uringtrace_tally("uringtrace: tracing command pid 5\n").is_err());
    }

    #[test]
    fn bpftrace_lines() {
        let mut out = Stdout::default();
        for line in [
            "Attaching 5 probes...",
            "ready",
            "{\"bench\":\"nop\",\"batch\":32,\"nops\":64,\"enters\":2,\"started_unix_ns\":5,\
             \"elapsed_ns\":1000,\"nops_per_s\":64000000.0,\"cpu_user_us\":1,\"cpu_sys_us\":2}",
            "ev 1 1 submit ring=0x1 req=0x2 user_data=0 opcode=0 flags=0",
            "ev 1 1 exit ret=32",
            "Lost 26725 events",
            "",
            "@complete: 474368",
            "@enter: 14824",
        ] {
            scan_line(line, &mut out).unwrap();
        }
        assert_eq!(out.printed, 2);
        assert_eq!(out.lost, 26725);
        assert_eq!(out.map_counts, 474368 + 14824);
        let engine = out.engine.unwrap();
        assert_eq!(
            (engine.nops, engine.enters, engine.ended_unix_ns()),
            (64, 2, 1005)
        );
        assert!((engine.cpu_s - 3e-6).abs() < 1e-12);
    }
}
