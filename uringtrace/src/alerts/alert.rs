//! An alert: which rule fired, and the key fields of the event that made
//! it fire. A decoded value; the formatters show it.

use std::sync::Arc;

use super::{matching::Facts, rule_set::RuleMeta};
use crate::{
    event::Task,
    requests::event::{CredsInfo, Worker},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub rule: Arc<RuleMeta>,
    /// The triggering event's kind (`submit`, `io_uring_register`, ...).
    pub trigger: &'static str,
    /// The triggering event's task and time.
    pub task: Task,
    pub worker: Option<Worker>,
    pub ring: Option<u32>,
    pub ring_fd: Option<i32>,
    pub req: Option<u64>,
    pub user_data: Option<u64>,
    /// The request opcode, or for register events the register opcode.
    pub opcode: Option<Opcode>,
    pub path: Option<Vec<u8>>,
    pub new_path: Option<Vec<u8>>,
    pub addr: Option<String>,
    pub family: Option<&'static str>,
    pub result: Option<i64>,
    pub personality: Option<u16>,
    /// The registered personality's credentials an accepted request runs
    /// under.
    pub creds: Option<CredsInfo>,
    /// Stateful SQPOLL rule: SQ-thread submissions in the quiet streak.
    pub sq_requests: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Request(u8),
    Register(u32),
}

impl Alert {
    pub fn new(rule: &Arc<RuleMeta>, f: &Facts<'_>, sq_requests: Option<u64>) -> Self {
        Self {
            rule: Arc::clone(rule),
            trigger: f.kind,
            task: f.task.clone(),
            worker: f.worker,
            ring: f.ring,
            ring_fd: f.ring_fd,
            req: f.req,
            user_data: f.user_data,
            opcode: f
                .opcode
                .map(Opcode::Request)
                .or(f.register_opcode.map(Opcode::Register)),
            path: f.path.map(<[u8]>::to_vec),
            new_path: f.new_path.map(<[u8]>::to_vec),
            addr: f.addr.map(str::to_string),
            family: f.family,
            result: f.result,
            personality: f.personality,
            creds: f.creds.cloned(),
            sq_requests,
        }
    }
}
