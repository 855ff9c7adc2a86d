//! Indexes of the per-CPU counters array (`COUNTERS`). Each counts events the
//! kernel side could not deliver or had to degrade; userspace sums them over
//! CPUs and reports every non-zero one.

/// A record was dropped: the ring buffer had no room (reserve failed).
pub const RINGBUF_FULL: u32 = 0;
/// A call's entry could not be stored (in-flight table full): its record
/// arrives with HDR_ENTRY_MISSING.
pub const INFLIGHT_FULL: u32 = 1;
/// A call exited with no stored entry (started before attach, or above).
pub const EXIT_WITHOUT_ENTRY: u32 = 2;
/// A forked child of a traced process could not be added to the filter.
pub const FILTER_FULL: u32 = 3;

/// A traced process created a ring the kernel could not remember (owner
/// table full): that ring's requests on other tasks may be missed.
pub const RINGS_FULL: u32 = 4;
/// A tracepoint record could not be copied (never seen; counted so it could
/// not be silent).
pub const TRACEPOINT_READ_FAILED: u32 = 5;

/// Summary mode: a submission could not be remembered (request table
/// full), so its CQE counts as unmatched, without latency.
pub const SUMMARY_TABLE_FULL: u32 = 6;
/// Summary mode: a CQE went to the CQ overflow list.
pub const SUMMARY_CQE_OVERFLOW: u32 = 7;

pub const COUNT: u32 = 8;
