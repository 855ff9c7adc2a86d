//! Features the kernel reports back from io_uring_setup(2)
//! (`io_uring_params.features`).

use super::flag_set::FlagSet;

/// Every `IORING_FEAT_*` flag of Linux 6.18 (none were added up to 7.3).
pub static IO_URING_FEATURES: FlagSet = FlagSet::new(&[
    (1 << 0, "IORING_FEAT_SINGLE_MMAP"),
    (1 << 1, "IORING_FEAT_NODROP"),
    (1 << 2, "IORING_FEAT_SUBMIT_STABLE"),
    (1 << 3, "IORING_FEAT_RW_CUR_POS"),
    (1 << 4, "IORING_FEAT_CUR_PERSONALITY"),
    (1 << 5, "IORING_FEAT_FAST_POLL"),
    (1 << 6, "IORING_FEAT_POLL_32BITS"),
    (1 << 7, "IORING_FEAT_SQPOLL_NONFIXED"),
    (1 << 8, "IORING_FEAT_EXT_ARG"),
    (1 << 9, "IORING_FEAT_NATIVE_WORKERS"),
    (1 << 10, "IORING_FEAT_RSRC_TAGS"),
    (1 << 11, "IORING_FEAT_CQE_SKIP"),
    (1 << 12, "IORING_FEAT_LINKED_FILE"),
    (1 << 13, "IORING_FEAT_REG_REG_RING"),
    (1 << 14, "IORING_FEAT_RECVSEND_BUNDLE"),
    (1 << 15, "IORING_FEAT_MIN_TIMEOUT"),
    (1 << 16, "IORING_FEAT_RW_ATTR"),
    (1 << 17, "IORING_FEAT_NO_IOWAIT"),
]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    #[test]
    fn shape() {
        shape::assert_single_bits_ascending(&IO_URING_FEATURES);
        assert_eq!(IO_URING_FEATURES.entries().len(), 18);
    }

    #[test]
    fn render_every_feature_of_6_18() {
        let all = (1u64 << 18) - 1;
        assert_eq!(IO_URING_FEATURES.names(all).len(), 18);
        assert_eq!(
            IO_URING_FEATURES.render(all | (1 << 18)).rsplit('|').next(),
            Some("0x40000")
        );
    }
}
