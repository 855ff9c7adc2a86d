//! When the consumer hears of new records. The programs submit without
//! waking it (a wakeup per record costs the traced task an irq_work and the
//! tracer a context switch, more than the rest of a record's transport),
//! except for the record that makes the unconsumed data cross
//! [`wakeup_bytes`]; the consumer drains on a [`POLL_INTERVAL`] timer too,
//! which bounds how late a quiet trace's events are shown.

use std::time::Duration;

/// The longest a record waits in the ring buffer when events are few (the
/// latency of a quiet trace); busier traces cross the wakeup mark first.
/// Short enough for a person watching, long enough that an idle tracer
/// wakes only 50 times a second.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Largest wakeup mark: about 2,000 records, a few milliseconds of the
/// fastest event stream, so even a burst that starts right after a timer
/// drain is taken long before the default 16 MiB buffer fills.
const MAX_WAKEUP_BYTES: u64 = 256 << 10;

/// Unconsumed bytes at which the programs wake the consumer, for a ring
/// buffer of `buffer_size` bytes: a thirtysecond of it, so a small
/// `--buffer-size` still has room for what comes while the consumer is
/// being scheduled.
pub fn wakeup_bytes(buffer_size: u32) -> u64 {
    (u64::from(buffer_size) / 32).clamp(8, MAX_WAKEUP_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_is_a_fraction_of_small_buffers_and_bounded_for_large() {
        assert_eq!(wakeup_bytes(4096), 128);
        assert_eq!(wakeup_bytes(1 << 20), 32 << 10);
        assert_eq!(wakeup_bytes(8 << 20), 256 << 10);
        assert_eq!(wakeup_bytes(1 << 30), 256 << 10);
    }
}
