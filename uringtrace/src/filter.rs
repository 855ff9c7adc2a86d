//! Userspace filters: the ones the kernel side cannot apply cheaply.

use crate::event::SyscallEvent;

#[derive(Debug, Clone, Copy, Default)]
pub struct EventFilter {
    /// Keep only calls that failed (`-x`).
    pub failed_only: bool,
}

impl EventFilter {
    pub fn accepts(&self, event: &SyscallEvent) -> bool {
        !self.failed_only || event.outcome.errno().is_some()
    }
}
