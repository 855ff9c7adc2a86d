//! Summary mode (`-c`, `-S`, `--hist`): the kernel's per-CPU aggregates,
//! summed into one table per system call and per request opcode.

pub mod json;
pub mod text;

use anyhow::Context as _;
use aya::maps::{MapData, PerCpuArray, PerCpuHashMap};
use uringtrace_common::summary::{
    CallStats, ERRNO_OPCODE, ERRNO_SYSCALL, HIST_BUCKETS, OP_SLOTS, OP_UNMATCHED, SYSCALL_COUNT,
    SYSCALL_ENTER, SYSCALL_REGISTER, SYSCALL_SETUP, split_errno_key,
};

use crate::decode::sqe_opcodes::op_name;

/// The kernel maps summary mode fills.
pub struct SummaryMaps {
    pub syscalls: PerCpuArray<MapData, CallStats>,
    pub opcodes: PerCpuArray<MapData, CallStats>,
    pub errnos: PerCpuHashMap<MapData, u32, u64>,
}

/// One row: a system call or an opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `io_uring_enter`, `IORING_OP_READ`, or `unmatched` for CQEs whose
    /// submission was not seen.
    pub name: String,
    /// Requests only.
    pub submitted: Option<u64>,
    /// Calls completed, or CQEs.
    pub count: u64,
    pub errors: u64,
    /// (errno, count), most frequent first.
    pub errnos: Vec<(i32, u64)>,
    pub total_ns: u64,
    /// How many durations the histogram holds.
    pub timed: u64,
    pub hist: [u64; HIST_BUCKETS],
}

impl Row {
    fn new(name: String, submitted: Option<u64>, s: &CallStats) -> Self {
        Self {
            name,
            submitted,
            count: s.count,
            errors: s.errors,
            errnos: Vec::new(),
            total_ns: s.total_ns,
            timed: s.timed,
            hist: s.hist,
        }
    }

    pub fn avg_ns(&self) -> Option<u64> {
        (self.timed > 0).then(|| self.total_ns / self.timed)
    }

    /// The `q` quantile (0..1) of the timed values, interpolated linearly
    /// inside its log2 bucket: within a factor of two of the true value.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        if self.timed == 0 {
            return None;
        }
        let rank = (q * self.timed as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, &n) in self.hist.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if seen + n >= rank {
                let (lo, hi) = bucket_range(b);
                let within = (rank - seen) as f64 / n as f64;
                return Some(lo + ((hi - lo) as f64 * within) as u64);
            }
            seen += n;
        }
        None
    }
}

/// The values bucket `b` holds: `[2^(b-1), 2^b)`, bucket 0 only 0.
pub fn bucket_range(b: usize) -> (u64, u64) {
    match b {
        0 => (0, 0),
        63 => (1 << 62, u64::MAX),
        _ => (1 << (b - 1), (1 << b) - 1),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub syscalls: Vec<Row>,
    pub requests: Vec<Row>,
    /// CQEs that went to the overflow list.
    pub cqe_overflows: u64,
    /// Submissions the in-kernel join table had no room for.
    pub table_full: u64,
}

fn syscall_name(index: u32) -> &'static str {
    match index {
        SYSCALL_SETUP => "io_uring_setup",
        SYSCALL_ENTER => "io_uring_enter",
        SYSCALL_REGISTER => "io_uring_register",
        _ => "?",
    }
}

fn sum(values: &[CallStats]) -> CallStats {
    let mut total = CallStats::ZERO;
    for v in values {
        total.count += v.count;
        total.errors += v.errors;
        total.submitted += v.submitted;
        total.total_ns += v.total_ns;
        total.timed += v.timed;
        for (t, h) in total.hist.iter_mut().zip(v.hist.iter()) {
            *t += h;
        }
    }
    total
}

impl Summary {
    pub fn read(maps: &SummaryMaps, cqe_overflows: u64, table_full: u64) -> anyhow::Result<Self> {
        let mut summary = Summary {
            cqe_overflows,
            table_full,
            ..Default::default()
        };
        for index in 0..SYSCALL_COUNT {
            let per_cpu = maps
                .syscalls
                .get(&index, 0)
                .context("reading the system call summary")?;
            let s = sum(&per_cpu);
            if s.count > 0 {
                summary
                    .syscalls
                    .push(Row::new(syscall_name(index).into(), None, &s));
            }
        }
        for index in 0..OP_SLOTS {
            let per_cpu = maps
                .opcodes
                .get(&index, 0)
                .context("reading the request summary")?;
            let s = sum(&per_cpu);
            if s.count > 0 || s.submitted > 0 {
                let name = if index == OP_UNMATCHED {
                    "unmatched".to_string()
                } else {
                    op_name(index as u8).map_or_else(|| format!("opcode {index}"), str::to_string)
                };
                let mut row = Row::new(name, Some(s.submitted), &s);
                row.submitted = (index != OP_UNMATCHED).then_some(s.submitted);
                summary.requests.push(row);
            }
        }
        for entry in maps.errnos.iter() {
            let (key, per_cpu) = entry.context("reading the errno counts")?;
            let n: u64 = per_cpu.iter().sum();
            let (source, index, errno) = split_errno_key(key);
            let name = match source {
                ERRNO_SYSCALL => syscall_name(index).to_string(),
                ERRNO_OPCODE if index == OP_UNMATCHED => "unmatched".to_string(),
                ERRNO_OPCODE => {
                    op_name(index as u8).map_or_else(|| format!("opcode {index}"), str::to_string)
                }
                _ => continue,
            };
            let rows = if source == ERRNO_SYSCALL {
                &mut summary.syscalls
            } else {
                &mut summary.requests
            };
            if let Some(row) = rows.iter_mut().find(|r| r.name == name) {
                row.errnos.push((errno as i32, n));
            }
        }
        for row in summary
            .syscalls
            .iter_mut()
            .chain(summary.requests.iter_mut())
        {
            row.errnos.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_with(values: &[(usize, u64)]) -> Row {
        let mut hist = [0; HIST_BUCKETS];
        let mut timed = 0;
        for &(b, n) in values {
            hist[b] = n;
            timed += n;
        }
        Row {
            name: "x".into(),
            submitted: None,
            count: timed,
            errors: 0,
            errnos: Vec::new(),
            total_ns: 0,
            timed,
            hist,
        }
    }

    #[test]
    fn quantiles_stay_in_their_bucket() {
        // 90 values in [512, 1023], 10 in [65536, 131071].
        let r = row_with(&[(10, 90), (17, 10)]);
        let p50 = r.quantile_ns(0.5).unwrap();
        assert!((512..1024).contains(&p50), "{p50}");
        let p99 = r.quantile_ns(0.99).unwrap();
        assert!((65536..131072).contains(&p99), "{p99}");
        assert_eq!(row_with(&[]).quantile_ns(0.5), None);
    }

    #[test]
    fn bucket_ranges_match_the_kernel_bucketing() {
        use uringtrace_common::summary::bucket;
        for v in [0u64, 1, 2, 3, 1000, 1 << 40, u64::MAX] {
            let (lo, hi) = bucket_range(bucket(v));
            assert!(lo <= v && v <= hi, "{v} not in {lo}..={hi}");
        }
    }
}
