//! NDJSON for alerts (docs/events.md, "Alerts"): the rule, then the
//! triggering event's key fields, flattened and named as in the event
//! records (`path`, `addr`, `ring`, `req`, `opcode_name`, ...).

use std::borrow::Cow;

use serde::Serialize;

use super::ndjson::{CommFields, SCHEMA_VERSION, lossless_text, write_line};
use crate::{
    alerts::alert::{Alert, Opcode},
    clock::WallClock,
    decode::{
        errno_names::errno_name, register_opcodes::IO_URING_REGISTER_OPCODES, sqe_opcodes::op_name,
    },
    requests::event::CredsInfo,
};

#[derive(Serialize)]
struct Line<'a> {
    schema: u32,
    event: &'static str,
    ts_ns: u64,
    time: String,
    rule: &'a str,
    severity: &'static str,
    mitre: &'a str,
    explanation: &'a str,
    trigger: &'static str,
    pid: u32,
    tid: u32,
    uid: u32,
    gid: u32,
    #[serde(flatten)]
    comm: CommFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ring: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ring_fd: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    req: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_data: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    opcode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    opcode_name: Option<Option<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_path_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno: Option<Option<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    personality: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creds: Option<&'a CredsInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sq_requests: Option<u64>,
}

pub fn write(alert: &Alert, clock: &WallClock, out: &mut Vec<u8>) {
    let (path, path_hex) = split(alert.path.as_deref());
    let (new_path, new_path_hex) = split(alert.new_path.as_deref());
    let (opcode, opcode_name) = match alert.opcode {
        Some(Opcode::Request(op)) => (Some(u32::from(op)), Some(op_name(op))),
        Some(Opcode::Register(op)) => (
            Some(op),
            Some(IO_URING_REGISTER_OPCODES.name(u64::from(op))),
        ),
        None => (None, None),
    };
    let t = &alert.task;
    let line = Line {
        schema: SCHEMA_VERSION,
        event: "alert",
        ts_ns: t.ts_ns,
        time: clock.rfc3339(t.ts_ns),
        rule: &alert.rule.id,
        severity: alert.rule.severity.name(),
        mitre: &alert.rule.mitre,
        explanation: &alert.rule.explanation,
        trigger: alert.trigger,
        pid: t.pid,
        tid: t.tid,
        uid: t.uid,
        gid: t.gid,
        comm: CommFields::new(&t.comm_bytes),
        worker: alert.worker.map(|w| w.name()),
        ring: alert.ring,
        ring_fd: alert.ring_fd,
        req: alert.req,
        user_data: alert.user_data,
        opcode,
        opcode_name,
        path,
        path_hex,
        new_path,
        new_path_hex,
        addr: alert.addr.as_deref(),
        family: alert.family,
        result: alert.result,
        errno: alert.result.map(|r| {
            (-4095..0)
                .contains(&r)
                .then(|| errno_name((-r) as i32))
                .flatten()
        }),
        personality: alert.personality,
        creds: alert.creds.as_ref(),
        sq_requests: alert.sq_requests,
    };
    write_line(&line, out);
}

/// A path's text and, when it is not UTF-8, its bytes in hex.
fn split(bytes: Option<&[u8]>) -> (Option<Cow<'_, str>>, Option<String>) {
    match bytes {
        Some(b) => {
            let (text, hex) = lossless_text(b);
            (Some(text), hex)
        }
        None => (None, None),
    }
}
