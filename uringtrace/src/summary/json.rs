//! The summary as one JSON object (`"event": "summary"`), the last line of
//! `-f json` output in summary mode (docs/events.md).

use serde::Serialize;

use super::{Row, Summary, bucket_range};
use crate::{
    decode::errno_names::errno_name,
    format::ndjson::{SCHEMA_VERSION, write_line},
};

#[derive(Serialize)]
struct Line<'a> {
    schema: u32,
    event: &'static str,
    syscalls: Vec<JsonRow<'a>>,
    requests: Vec<JsonRow<'a>>,
    cqe_overflows: u64,
    table_full: u64,
}

#[derive(Serialize)]
struct JsonRow<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    submitted: Option<u64>,
    count: u64,
    errors: u64,
    errnos: Vec<Errno>,
    total_ns: u64,
    timed: u64,
    avg_ns: Option<u64>,
    p50_ns: Option<u64>,
    p99_ns: Option<u64>,
    /// Non-empty log2 buckets: `[low_ns, high_ns, count]`.
    hist: Vec<[u64; 3]>,
}

#[derive(Serialize)]
struct Errno {
    errno: i32,
    name: Option<&'static str>,
    count: u64,
}

fn row(r: &Row) -> JsonRow<'_> {
    JsonRow {
        name: &r.name,
        submitted: r.submitted,
        count: r.count,
        errors: r.errors,
        errnos: r
            .errnos
            .iter()
            .map(|&(errno, count)| Errno {
                errno,
                name: errno_name(errno),
                count,
            })
            .collect(),
        total_ns: r.total_ns,
        timed: r.timed,
        avg_ns: r.avg_ns(),
        p50_ns: r.quantile_ns(0.5),
        p99_ns: r.quantile_ns(0.99),
        hist: r
            .hist
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, &n)| {
                let (lo, hi) = bucket_range(b);
                [lo, hi, n]
            })
            .collect(),
    }
}

pub fn render(summary: &Summary) -> Vec<u8> {
    let line = Line {
        schema: SCHEMA_VERSION,
        event: "summary",
        syscalls: summary.syscalls.iter().map(row).collect(),
        requests: summary.requests.iter().map(row).collect(),
        cqe_overflows: summary.cqe_overflows,
        table_full: summary.table_full,
    };
    let mut out = Vec::new();
    write_line(&line, &mut out);
    out
}
