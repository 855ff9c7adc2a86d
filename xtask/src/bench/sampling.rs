//! CPU time read from /proc while a run goes on: the tracer process's own
//! (all its threads; the engine it waits for is not in it), and each
//! CPU's, sampled often enough to be read over exactly the engine's timed
//! loop; and a wait for both CPUs to be quiet before a run.

use std::{
    fs, thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;

/// /proc reports CPU time in USER_HZ ticks, 100 per second on every
/// architecture Linux runs on (the ABI fixes it, whatever HZ is).
const TICKS_PER_S: f64 = 100.0;

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub unix_ns: u64,
    /// utime + stime of the tracer, in ticks.
    pub tracer_ticks: Option<u64>,
    /// Busy ticks (everything but idle and iowait) of CPU 0 and CPU 1.
    pub cpu_busy: [u64; 2],
}

pub fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One sample; `tracer` is the pid whose CPU time to read.
pub fn sample(tracer: Option<u32>) -> anyhow::Result<Sample> {
    let unix_ns = now_unix_ns();
    // A tracer that has exited but is not yet reaped still has its stat;
    // one already reaped has none, and its last sample stands.
    let tracer_ticks = tracer.and_then(|pid| process_ticks(pid).ok());
    Ok(Sample {
        unix_ns,
        tracer_ticks,
        cpu_busy: cpu_busy_ticks()?,
    })
}

/// utime + stime of `pid` (fields 14 and 15 of /proc/PID/stat).
fn process_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_process_ticks(&stat).with_context(|| format!("parsing {path}"))
}

fn parse_process_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted after its last `)`, from field 3 (the state).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

fn cpu_busy_ticks() -> anyhow::Result<[u64; 2]> {
    let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    Ok([
        parse_cpu_busy(&stat, "cpu0 ").context("no cpu0 line in /proc/stat")?,
        parse_cpu_busy(&stat, "cpu1 ").context("no cpu1 line in /proc/stat")?,
    ])
}

fn parse_cpu_busy(stat: &str, prefix: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with(prefix))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice;
    // guest time is already counted in user.
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some(total - idle)
}

/// The samples of one run.
#[derive(Debug, Default)]
pub struct Series {
    samples: Vec<Sample>,
}

impl Series {
    pub fn push(&mut self, s: Sample) {
        self.samples.push(s);
    }

    /// `value` at `unix_ns`, linear between the samples around it.
    fn at(&self, unix_ns: u64, value: impl Fn(&Sample) -> Option<u64>) -> Option<f64> {
        let points: Vec<(u64, u64)> = self
            .samples
            .iter()
            .filter_map(|s| Some((s.unix_ns, value(s)?)))
            .collect();
        let after = points.iter().position(|&(t, _)| t >= unix_ns)?;
        let (t1, v1) = points[after];
        if after == 0 {
            return (t1 == unix_ns).then_some(v1 as f64);
        }
        let (t0, v0) = points[after - 1];
        let f = (unix_ns - t0) as f64 / (t1 - t0).max(1) as f64;
        Some(v0 as f64 + f * (v1 as f64 - v0 as f64))
    }

    /// CPU seconds the tracer used between `from` and `to`, if the samples
    /// cover that span.
    pub fn tracer_cpu_s(&self, from: u64, to: u64) -> Option<f64> {
        let a = self.at(from, |s| s.tracer_ticks)?;
        let b = self.at(to, |s| s.tracer_ticks)?;
        Some((b - a) / TICKS_PER_S)
    }

    /// CPU `cpu`'s (0 or 1) busy seconds between `from` and `to`.
    pub fn cpu_busy_s(&self, cpu: usize, from: u64, to: u64) -> Option<f64> {
        let a = self.at(from, |s| Some(s.cpu_busy[cpu]))?;
        let b = self.at(to, |s| Some(s.cpu_busy[cpu]))?;
        Some((b - a) / TICKS_PER_S)
    }
}

/// A CPU busier than this with other work makes a run noisy.
pub const QUIET_SHARE: f64 = 0.10;

/// Waits up to `max_wait` for a window in which both CPUs are at most
/// [`QUIET_SHARE`] busy (other users of a shared machine: builds, VMs);
/// returns whether one came.
pub fn wait_for_quiet(max_wait: Duration) -> anyhow::Result<bool> {
    const WINDOW: Duration = Duration::from_millis(300);
    if max_wait.is_zero() {
        return Ok(false);
    }
    let started = Instant::now();
    loop {
        let before = cpu_busy_ticks()?;
        thread::sleep(WINDOW);
        let after = cpu_busy_ticks()?;
        let busiest = (0..2)
            .map(|c| (after[c] - before[c]) as f64 / TICKS_PER_S / WINDOW.as_secs_f64())
            .fold(0.0, f64::max);
        if busiest <= QUIET_SHARE {
            return Ok(true);
        }
        if started.elapsed() >= max_wait {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_stat() {
        let stat = "123 (a (b) c) S 1 123 123 0 -1 4194304 100 0 0 0 250 75 3 4 20 0 1 0 5 0 0";
        assert_eq!(parse_process_ticks(stat), Some(325));
    }

    #[test]
    fn cpu_lines() {
        let stat =
            "cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 10 1 20 300 5 2 3 4 0 0\ncpu1 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(parse_cpu_busy(stat, "cpu0 "), Some(40));
        assert_eq!(parse_cpu_busy(stat, "cpu1 "), Some(6));
    }

    #[test]
    fn interpolation() {
        let mut series = Series::default();
        for (t, ticks) in [(0, 0), (1_000_000_000, 100), (2_000_000_000, 150)] {
            series.push(Sample {
                unix_ns: t,
                tracer_ticks: Some(ticks),
                cpu_busy: [ticks, 0],
            });
        }
        let cpu = series.tracer_cpu_s(500_000_000, 1_500_000_000).unwrap();
        assert!((cpu - 0.75).abs() < 1e-9, "{cpu}");
        assert!(series.tracer_cpu_s(500_000_000, 3_000_000_000).is_none());
    }
}
