//! Per-request flags (`io_uring_sqe.flags`, `IOSQE_*`).

use super::flag_set::FlagSet;

/// Every `IOSQE_*` flag of Linux 6.18 (none were added up to 7.3). The
/// header defines them as `1U << IOSQE_*_BIT`; these are the shifted values.
pub static IOSQE_FLAGS: FlagSet = FlagSet::new(&[
    (1 << 0, "IOSQE_FIXED_FILE"),
    (1 << 1, "IOSQE_IO_DRAIN"),
    (1 << 2, "IOSQE_IO_LINK"),
    (1 << 3, "IOSQE_IO_HARDLINK"),
    (1 << 4, "IOSQE_ASYNC"),
    (1 << 5, "IOSQE_BUFFER_SELECT"),
    (1 << 6, "IOSQE_CQE_SKIP_SUCCESS"),
]);

/// Renders `io_uring_sqe.flags`, e.g. `"IOSQE_IO_LINK|IOSQE_ASYNC"`.
pub fn render_sqe_flags(flags: u8) -> String {
    IOSQE_FLAGS.render(u64::from(flags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    #[test]
    fn shape() {
        shape::assert_single_bits_ascending(&IOSQE_FLAGS);
        assert_eq!(IOSQE_FLAGS.entries().len(), 7);
    }

    #[test]
    fn render() {
        assert_eq!(render_sqe_flags(0), "0");
        assert_eq!(render_sqe_flags(0x14), "IOSQE_IO_LINK|IOSQE_ASYNC");
        assert_eq!(render_sqe_flags(0x81), "IOSQE_FIXED_FILE|0x80");
    }
}
