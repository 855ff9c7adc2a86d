//! `--timeline FILE`: a Chrome / Perfetto Trace Event JSON file
//! (https://ui.perfetto.dev opens it). Each request is a slice from its
//! submission to its last CQE on its ring's track (async slices: requests
//! of a ring overlap), each io_uring system call a slice on its thread.

use std::{
    collections::HashSet,
    fs::File,
    io::{BufWriter, Write as _},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::{
    decode::sqe_opcodes::render_op_short,
    event::Event,
    requests::event::{RequestDetail, RequestEvent},
};

pub struct Timeline {
    out: BufWriter<File>,
    path: PathBuf,
    first: bool,
    /// Processes, threads and rings already named in the file.
    named_pids: HashSet<u32>,
    named_threads: HashSet<u32>,
}

/// Microseconds, the format's unit, keeping the nanoseconds.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Timeline {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot write the timeline {}", path.display()))?;
        let mut out = BufWriter::new(file);
        out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")
            .with_context(|| format!("writing the timeline {}", path.display()))?;
        Ok(Self {
            out,
            path: path.to_owned(),
            first: true,
            named_pids: HashSet::new(),
            named_threads: HashSet::new(),
        })
    }

    fn push(&mut self, value: &Value) -> anyhow::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, value)?;
        Ok(())
    }

    fn name_task(&mut self, pid: u32, tid: u32, comm: &str) -> anyhow::Result<()> {
        if self.named_pids.insert(pid) {
            self.push(&json!({"ph": "M", "name": "process_name", "pid": pid,
                              "args": {"name": format!("{comm} ({pid})")}}))?;
        }
        if self.named_threads.insert(tid) {
            self.push(
                &json!({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                              "args": {"name": format!("{comm} ({tid})")}}),
            )?;
        }
        Ok(())
    }

    pub fn record(&mut self, event: &Event) -> anyhow::Result<()> {
        self.record_event(event)
            .with_context(|| format!("writing the timeline {}", self.path.display()))
    }

    fn record_event(&mut self, event: &Event) -> anyhow::Result<()> {
        match event {
            Event::Syscall(e) if !e.outcome.entry_missing => {
                self.name_task(e.task.pid, e.task.tid, &e.task.comm())?;
                self.push(&json!({
                    "ph": "X", "cat": "syscall", "name": e.call.name(),
                    "pid": e.task.pid, "tid": e.task.tid,
                    "ts": us(e.task.ts_ns), "dur": us(e.outcome.duration_ns),
                    "args": {"ret": e.outcome.ret},
                }))?;
            }
            Event::Request(e) => self.request(e)?,
            _ => {}
        }
        Ok(())
    }

    fn request(&mut self, e: &RequestEvent) -> anyhow::Result<()> {
        let (RequestDetail::Complete(c) | RequestDetail::CqeOverflow(c)) = &e.detail else {
            return Ok(());
        };
        let (Some(r), Some(latency), Some(ring), true) =
            (c.request, c.latency_ns, e.ring, c.terminal)
        else {
            return Ok(());
        };
        let Some(id) = r.id else { return Ok(()) };
        let pid = e.task.pid;
        if e.worker.is_none() {
            self.name_task(pid, e.task.tid, &e.task.comm())?;
        }
        let track = match ring.fd {
            Some(fd) => format!("ring {} (fd {fd})", ring.id),
            None => format!("ring {}", ring.id),
        };
        let name = r.opcode.map_or_else(|| "?".to_string(), render_op_short);
        let start = e.task.ts_ns.saturating_sub(latency);
        let args = json!({
            "req": id, "user_data": r.user_data, "res": c.res, "cqes": c.cqes,
            "route": c.paths.names(),
        });
        // Async slices: a ring's requests overlap, which nested slices of
        // one track could not show.
        self.push(&json!({"ph": "b", "cat": track, "name": name, "id": id,
                          "pid": pid, "ts": us(start), "args": args}))?;
        self.push(&json!({"ph": "e", "cat": track, "name": name, "id": id,
                          "pid": pid, "ts": us(e.task.ts_ns)}))?;
        Ok(())
    }

    /// Closes the JSON document.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.out
            .write_all(b"\n]}\n")
            .and_then(|()| self.out.flush())
            .with_context(|| format!("writing the timeline {}", self.path.display()))
    }
}
