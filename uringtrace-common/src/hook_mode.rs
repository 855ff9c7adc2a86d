//! What the programs do once their hook fires: trace (the default), or one
//! of the benchmark's reference points, which keep the same hooks and
//! record sizes so the cost of tracing itself can be measured against them.

/// Trace: filter, read, emit.
pub const FULL: u8 = 0;
/// Return at once: the cost of the hooks alone.
pub const EMPTY: u8 = 1;
/// Reserve and submit a record of the same size, untouched: the bare cost
/// of moving the records through the ring buffer.
pub const RESERVE: u8 = 2;
/// RESERVE, with the record stamped by the clock every real record reads
/// (bpf_ktime_get_ns): how much of tracing's cost is the timestamp alone.
pub const RESERVE_CLOCK: u8 = 3;
