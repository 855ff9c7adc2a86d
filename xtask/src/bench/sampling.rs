//! The tracer's CPU time and run-queue delay read from /proc while a run
//! goes on (all its threads; the engine it waits for is not in them),
//! sampled often enough to be read over exactly the engine's timed loop;
//! and a wait for both CPUs to be quiet before a run.

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
    /// The tracer's CPU time and run-queue delay, in ns, summed over its
    /// threads.
    pub tracer: Option<TaskTimes>,
    /// CPU time spent on the tracer's CPU (CPU 1) by anything, in ns
    /// (/proc/stat, in 10 ms ticks).
    pub tracer_cpu_busy_ns: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskTimes {
    pub cpu_ns: u64,
    pub wait_ns: u64,
}

pub fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One sample; `tracer` is the pid whose times to read.
pub fn sample(tracer: Option<u32>) -> Sample {
    Sample {
        unix_ns: now_unix_ns(),
        // One that is gone has no times, and its last sample stands.
        tracer: tracer.and_then(|pid| process_times(pid).ok()),
        tracer_cpu_busy_ns: cpu_busy_ticks()
            .ok()
            .map(|[_, cpu1]| (cpu1 as f64 / TICKS_PER_S * 1e9) as u64),
    }
}

/// The schedstat (`cpu_ns wait_ns timeslices`) of every thread of `pid`,
/// summed: the scheduler's own nanosecond counts, where /proc/PID/stat
/// has 10 ms ticks.
fn process_times(pid: u32) -> anyhow::Result<TaskTimes> {
    let dir = format!("/proc/{pid}/task");
    let mut total = TaskTimes::default();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = entry
            .with_context(|| format!("reading {dir}"))?
            .path()
            .join("schedstat");
        // A thread that ended since the listing has no schedstat left.
        if let Ok(text) = fs::read_to_string(&path) {
            let t =
                parse_schedstat(&text).with_context(|| format!("parsing {}", path.display()))?;
            total.cpu_ns += t.cpu_ns;
            total.wait_ns += t.wait_ns;
        }
    }
    Ok(total)
}

fn parse_schedstat(text: &str) -> Option<TaskTimes> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some(TaskTimes {
        cpu_ns: fields.next()??,
        wait_ns: fields.next()??,
    })
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

    /// The tracer's CPU seconds and run-queue wait seconds between `from`
    /// and `to`, if the samples cover that span.
    pub fn tracer_between(&self, from: u64, to: u64) -> Option<(f64, f64)> {
        let cpu_a = self.at(from, |s| Some(s.tracer?.cpu_ns))?;
        let cpu_b = self.at(to, |s| Some(s.tracer?.cpu_ns))?;
        let wait_a = self.at(from, |s| Some(s.tracer?.wait_ns))?;
        let wait_b = self.at(to, |s| Some(s.tracer?.wait_ns))?;
        Some(((cpu_b - cpu_a) / 1e9, (wait_b - wait_a) / 1e9))
    }

    /// Seconds the tracer's CPU was busy (with anything) between `from`
    /// and `to`.
    pub fn tracer_cpu_busy_between(&self, from: u64, to: u64) -> Option<f64> {
        let a = self.at(from, |s| s.tracer_cpu_busy_ns)?;
        let b = self.at(to, |s| s.tracer_cpu_busy_ns)?;
        Some((b - a) / 1e9)
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
    fn schedstat() {
        assert_eq!(
            parse_schedstat("2474913 68151 12\n"),
            Some(TaskTimes {
                cpu_ns: 2474913,
                wait_ns: 68151
            })
        );
        assert_eq!(parse_schedstat("12"), None);
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
        for (t, ns) in [(0, 0), (1_000_000_000, 100), (2_000_000_000, 150)] {
            series.push(Sample {
                unix_ns: t,
                tracer: Some(TaskTimes {
                    cpu_ns: ns * 10_000_000,
                    wait_ns: ns * 1_000_000,
                }),
                tracer_cpu_busy_ns: Some(ns * 12_000_000),
            });
        }
        let (cpu, wait) = series.tracer_between(500_000_000, 1_500_000_000).unwrap();
        assert!((cpu - 0.75).abs() < 1e-9, "{cpu}");
        assert!((wait - 0.075).abs() < 1e-9, "{wait}");
        assert!(series.tracer_between(500_000_000, 3_000_000_000).is_none());
        let busy = series
            .tracer_cpu_busy_between(500_000_000, 1_500_000_000)
            .unwrap();
        assert!((busy - 0.9).abs() < 1e-9, "{busy}");
    }
}
