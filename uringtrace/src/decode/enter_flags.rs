//! Flags of io_uring_enter(2), from `include/uapi/linux/io_uring.h`.

use super::flag_set::FlagSet;

/// Every `IORING_ENTER_*` flag of Linux 6.18 (none were added up to 7.3).
pub static IO_URING_ENTER_FLAGS: FlagSet = FlagSet::new(&[
    (1 << 0, "IORING_ENTER_GETEVENTS"),
    (1 << 1, "IORING_ENTER_SQ_WAKEUP"),
    (1 << 2, "IORING_ENTER_SQ_WAIT"),
    (1 << 3, "IORING_ENTER_EXT_ARG"),
    (1 << 4, "IORING_ENTER_REGISTERED_RING"),
    (1 << 5, "IORING_ENTER_ABS_TIMER"),
    (1 << 6, "IORING_ENTER_EXT_ARG_REG"),
    (1 << 7, "IORING_ENTER_NO_IOWAIT"),
]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    #[test]
    fn shape() {
        shape::assert_single_bits_ascending(&IO_URING_ENTER_FLAGS);
        assert_eq!(IO_URING_ENTER_FLAGS.entries().len(), 8);
    }

    #[test]
    fn render() {
        assert_eq!(
            IO_URING_ENTER_FLAGS.render(0x11),
            "IORING_ENTER_GETEVENTS|IORING_ENTER_REGISTERED_RING"
        );
        assert_eq!(
            IO_URING_ENTER_FLAGS.render(0x101),
            "IORING_ENTER_GETEVENTS|0x100"
        );
    }
}
