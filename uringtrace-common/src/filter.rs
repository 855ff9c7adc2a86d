//! Process filter shared with the kernel.

/// `FILTER_MODE` global: trace every process.
pub const FILTER_ALL: u8 = 0;
/// `FILTER_MODE` global: trace only thread groups in `TRACED_TGIDS`.
pub const FILTER_TGIDS: u8 = 1;

/// Max processes the in-kernel filter holds (the traced process and every
/// descendant when following forks).
pub const MAX_TRACED_TGIDS: u32 = 16384;
/// Values in `TRACED_TGIDS`: how the process got in.
pub const TRACED_EXPLICIT: u8 = 1;
pub const TRACED_FORKED: u8 = 2;
