//! Userspace filters: what the kernel side cannot decide alone (a
//! completion's opcode is its submission's, known only after the join).

use crate::{
    event::Event,
    selection::{EventSelection, OpcodeSelection},
};

#[derive(Debug, Clone, Copy, Default)]
pub struct EventFilter {
    /// Keep only failures (`-x`).
    pub failed_only: bool,
    /// `-e`: hides the events attached only to join the others.
    pub events: EventSelection,
    /// `--ops`.
    pub ops: Option<OpcodeSelection>,
}

impl EventFilter {
    pub fn accepts(&self, event: &Event) -> bool {
        if !self.events.shows_event(event) {
            return false;
        }
        match event {
            Event::Syscall(e) => !self.failed_only || e.outcome.errno().is_some(),
            Event::Request(e) => {
                if self.failed_only && !e.detail.is_failure() {
                    return false;
                }
                match self.ops {
                    None => true,
                    // Ring-level events (creation, waits) have no opcode and
                    // stay; request events need a known, selected opcode.
                    Some(ops) => match e.detail.request() {
                        Some(r) => r.opcode.is_some_and(|op| ops.keeps(op)),
                        None => !matches!(
                            e.detail,
                            crate::requests::event::RequestDetail::Complete(_)
                                | crate::requests::event::RequestDetail::CqeOverflow(_)
                        ),
                    },
                }
            }
        }
    }
}
