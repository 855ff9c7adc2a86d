//! The summary as text: an strace -c style table, and with `--hist` one
//! log2 histogram per row, as bcc's biolatency prints them.

use std::fmt::Write as _;

use super::{Row, Summary, bucket_range};
use crate::decode::errno_names::errno_name;

/// `1.234ms`-style durations with three significant digits.
pub fn duration(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.3}us", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.3}ms", v / 1e6)
    } else {
        format!("{:.3}s", v / 1e9)
    }
}

fn opt(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_string(), duration)
}

fn errnos(row: &Row) -> String {
    row.errnos
        .iter()
        .map(|(e, n)| format!("{} {n}", errno_name(*e).unwrap_or("E?")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(out: &mut String, title: &str, rows: &[Row], requests: bool) {
    let width = rows
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .max(title.len());
    let _ = write!(out, "{title:width$}");
    if requests {
        let _ = write!(out, " {:>10}", "submitted");
    }
    let _ = writeln!(
        out,
        " {:>10} {:>8} {:>12} {:>11} {:>11} {:>11}  errors by errno",
        if requests { "cqes" } else { "calls" },
        "errors",
        "total",
        "avg",
        "p50",
        "p99"
    );
    for r in rows {
        let _ = write!(out, "{:width$}", r.name);
        if requests {
            match r.submitted {
                Some(s) => {
                    let _ = write!(out, " {s:>10}");
                }
                None => {
                    let _ = write!(out, " {:>10}", "-");
                }
            }
        }
        let _ = writeln!(
            out,
            " {:>10} {:>8} {:>12} {:>11} {:>11} {:>11}  {}",
            r.count,
            r.errors,
            if r.timed > 0 {
                duration(r.total_ns)
            } else {
                "-".into()
            },
            opt(r.avg_ns()),
            opt(r.quantile_ns(0.5)),
            opt(r.quantile_ns(0.99)),
            errnos(r)
        );
    }
}

fn histogram(out: &mut String, label: &str, row: &Row) {
    let Some(first) = row.hist.iter().position(|&n| n > 0) else {
        return;
    };
    let last = row.hist.iter().rposition(|&n| n > 0).unwrap_or(first);
    let max = row.hist.iter().copied().max().unwrap_or(1).max(1);
    let _ = writeln!(out, "\n{label}: {}", row.name);
    let _ = writeln!(out, "{:>24} : {:<8} |{:40}|", "ns", "count", "distribution");
    for b in first..=last {
        let (lo, hi) = bucket_range(b);
        let n = row.hist[b];
        let bar = "*".repeat((n * 40 / max) as usize);
        let _ = writeln!(out, "{:>11} -> {:<10} : {n:<8} |{bar:40}|", lo, hi);
    }
}

pub fn render(summary: &Summary, hist: bool) -> String {
    let mut out = String::new();
    if !summary.syscalls.is_empty() {
        table(&mut out, "system call", &summary.syscalls, false);
    }
    if !summary.requests.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        table(&mut out, "request (submit to CQE)", &summary.requests, true);
    }
    if summary.syscalls.is_empty() && summary.requests.is_empty() {
        out.push_str("no io_uring activity traced\n");
    }
    if summary.cqe_overflows > 0 {
        let _ = writeln!(out, "CQ overflows: {}", summary.cqe_overflows);
    }
    if summary.table_full > 0 {
        let _ = writeln!(
            out,
            "{} submissions not joined (request table full): their CQEs count as unmatched",
            summary.table_full
        );
    }
    if hist {
        for row in &summary.syscalls {
            histogram(&mut out, "system call duration", row);
        }
        for row in &summary.requests {
            histogram(&mut out, "request latency", row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use uringtrace_common::summary::HIST_BUCKETS;

    #[test]
    fn durations() {
        assert_eq!(duration(999), "999ns");
        assert_eq!(duration(1_500), "1.500us");
        assert_eq!(duration(2_000_000_000), "2.000s");
    }

    #[test]
    fn table_and_histogram() {
        let mut hist = [0; HIST_BUCKETS];
        hist[11] = 3;
        hist[13] = 1;
        let row = Row {
            name: "IORING_OP_READ".into(),
            submitted: Some(4),
            count: 4,
            errors: 1,
            errnos: vec![(9, 1)],
            total_ns: 10_000,
            timed: 4,
            hist,
        };
        let s = Summary {
            requests: vec![row],
            ..Default::default()
        };
        let text = render(&s, true);
        assert!(text.contains("IORING_OP_READ"), "{text}");
        assert!(text.contains("EBADF 1"), "{text}");
        assert!(text.contains("2.500us"), "{text}");
        assert!(text.contains("1024 -> 2047"), "{text}");
        assert!(
            text.contains("|****************************************|"),
            "{text}"
        );
    }
}
