//! Flags of io_uring_setup(2) (`io_uring_params.flags`).

use super::flag_set::FlagSet;

/// Every `IORING_SETUP_*` flag of Linux 6.18, plus the later ones up to 7.3
/// (each marked with the release that added it), so that rings set up on
/// newer kernels still decode by name.
pub static IO_URING_SETUP_FLAGS: FlagSet = FlagSet::new(&[
    (1 << 0, "IORING_SETUP_IOPOLL"),
    (1 << 1, "IORING_SETUP_SQPOLL"),
    (1 << 2, "IORING_SETUP_SQ_AFF"),
    (1 << 3, "IORING_SETUP_CQSIZE"),
    (1 << 4, "IORING_SETUP_CLAMP"),
    (1 << 5, "IORING_SETUP_ATTACH_WQ"),
    (1 << 6, "IORING_SETUP_R_DISABLED"),
    (1 << 7, "IORING_SETUP_SUBMIT_ALL"),
    (1 << 8, "IORING_SETUP_COOP_TASKRUN"),
    (1 << 9, "IORING_SETUP_TASKRUN_FLAG"),
    (1 << 10, "IORING_SETUP_SQE128"),
    (1 << 11, "IORING_SETUP_CQE32"),
    (1 << 12, "IORING_SETUP_SINGLE_ISSUER"),
    (1 << 13, "IORING_SETUP_DEFER_TASKRUN"),
    (1 << 14, "IORING_SETUP_NO_MMAP"),
    (1 << 15, "IORING_SETUP_REGISTERED_FD_ONLY"),
    (1 << 16, "IORING_SETUP_NO_SQARRAY"),
    (1 << 17, "IORING_SETUP_HYBRID_IOPOLL"),
    (1 << 18, "IORING_SETUP_CQE_MIXED"),
    // Linux 6.19.
    (1 << 19, "IORING_SETUP_SQE_MIXED"),
    // Linux 7.0.
    (1 << 20, "IORING_SETUP_SQ_REWIND"),
]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    #[test]
    fn shape() {
        shape::assert_single_bits_ascending(&IO_URING_SETUP_FLAGS);
        assert_eq!(IO_URING_SETUP_FLAGS.entries().len(), 21);
    }

    #[test]
    fn render() {
        assert_eq!(
            IO_URING_SETUP_FLAGS.render((1 << 12) | (1 << 13)),
            "IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN"
        );
        assert_eq!(
            IO_URING_SETUP_FLAGS.render((1 << 1) | (1 << 21)),
            "IORING_SETUP_SQPOLL|0x200000"
        );
    }
}
