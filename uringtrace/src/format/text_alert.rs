//! Text lines for alerts:
//! `TIME PID/TID COMM ALERT severity rule-id [MITRE] explanation: key=value...`.

use std::fmt::Write as _;

use super::text::{printable_bytes, task_prefix};
use crate::{
    alerts::alert::{Alert, Opcode},
    clock::WallClock,
    decode::{register_opcodes::render_register_opcode, sqe_opcodes::render_op_short},
};

pub fn write(alert: &Alert, clock: &WallClock, out: &mut Vec<u8>) {
    let mut line = task_prefix(&alert.task, clock);
    let _ = write!(
        line,
        " ALERT {} {} [{}] {}: on {}",
        alert.rule.severity.name(),
        alert.rule.id,
        alert.rule.mitre,
        alert.rule.explanation,
        alert.trigger
    );
    if let Some(w) = alert.worker {
        let _ = write!(line, " [{}]", w.name());
    }
    if let Some(ring) = alert.ring {
        let _ = write!(line, " ring={ring}");
        if let Some(fd) = alert.ring_fd {
            let _ = write!(line, "(fd {fd})");
        }
    }
    if let Some(req) = alert.req {
        let _ = write!(line, " req={req}");
    }
    match alert.opcode {
        Some(Opcode::Request(op)) => {
            let _ = write!(line, " {}", render_op_short(op));
        }
        Some(Opcode::Register(op)) => {
            let _ = write!(line, " {}", render_register_opcode(op));
        }
        None => {}
    }
    // Paths are the traced process's bytes: escaped like command names.
    if let Some(path) = &alert.path {
        let _ = write!(line, " path=\"{}\"", printable_bytes(path));
    }
    if let Some(path) = &alert.new_path {
        let _ = write!(line, " new_path=\"{}\"", printable_bytes(path));
    }
    if let Some(addr) = &alert.addr {
        let _ = write!(line, " addr={}", printable_bytes(addr.as_bytes()));
    }
    if let Some(result) = alert.result {
        let _ = write!(line, " result={result}");
    }
    if let Some(p) = alert.personality {
        let _ = write!(line, " personality={p}");
    }
    if let Some(creds) = &alert.creds {
        let _ = write!(line, "{creds}");
    }
    if let Some(n) = alert.sq_requests {
        let _ = write!(line, " sq_requests={n}");
    }
    line.push('\n');
    out.extend_from_slice(line.as_bytes());
}
