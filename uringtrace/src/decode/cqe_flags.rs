//! Completion flags (`io_uring_cqe.flags`, `IORING_CQE_F_*`).

use super::flag_set::FlagSet;

/// Every `IORING_CQE_F_*` flag of Linux 6.18 that lives in the low 16 bits
/// (none were added up to 7.3). [`IORING_CQE_F_TSTAMP_HW`] is left out on
/// purpose: it sits in the bits that otherwise carry the buffer id.
pub static IORING_CQE_FLAGS: FlagSet = FlagSet::new(&[
    (1 << 0, "IORING_CQE_F_BUFFER"),
    (1 << 1, "IORING_CQE_F_MORE"),
    (1 << 2, "IORING_CQE_F_SOCK_NONEMPTY"),
    (1 << 3, "IORING_CQE_F_NOTIF"),
    (1 << 4, "IORING_CQE_F_BUF_MORE"),
    (1 << 5, "IORING_CQE_F_SKIP"),
    (1 << 15, "IORING_CQE_F_32"),
]);

/// `IORING_CQE_F_BUFFER`: the upper 16 bits of the flags hold a buffer id.
pub const IORING_CQE_F_BUFFER: u32 = 1 << 0;

/// How far the buffer id is shifted up in `io_uring_cqe.flags`.
pub const IORING_CQE_BUFFER_SHIFT: u32 = 16;

/// Set only in completions of `SOCKET_URING_OP_TX_TIMESTAMP` commands
/// (Linux 6.17), where the bits above it hold the timestamp type; in other
/// completions the same bit is part of a buffer id, so it has no place in
/// [`IORING_CQE_FLAGS`].
pub const IORING_CQE_F_TSTAMP_HW: u32 = 1 << 16;

/// The provided-buffer id a completion carries, if `IORING_CQE_F_BUFFER`
/// is set.
pub fn cqe_buffer_id(flags: u32) -> Option<u16> {
    if flags & IORING_CQE_F_BUFFER == 0 {
        return None;
    }
    u16::try_from(flags >> IORING_CQE_BUFFER_SHIFT).ok()
}

/// Renders the flag bits of `io_uring_cqe.flags`. When
/// `IORING_CQE_F_BUFFER` is set, the buffer id bits are left out (get them
/// from [`cqe_buffer_id`]) rather than shown as an unknown remainder.
pub fn render_cqe_flags(flags: u32) -> String {
    let bits = if flags & IORING_CQE_F_BUFFER != 0 {
        flags & ((1 << IORING_CQE_BUFFER_SHIFT) - 1)
    } else {
        flags
    };
    IORING_CQE_FLAGS.render(u64::from(bits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    #[test]
    fn shape() {
        shape::assert_single_bits_ascending(&IORING_CQE_FLAGS);
        assert_eq!(IORING_CQE_FLAGS.entries().len(), 7);
        assert!(IORING_CQE_FLAGS.known_bits() < 1 << IORING_CQE_BUFFER_SHIFT);
    }

    #[test]
    fn buffer_id() {
        assert_eq!(cqe_buffer_id(0), None);
        assert_eq!(cqe_buffer_id(7 << 16), None);
        assert_eq!(cqe_buffer_id((7 << 16) | 1), Some(7));
        assert_eq!(cqe_buffer_id(0xffff_0003), Some(0xffff));
    }

    #[test]
    fn render() {
        assert_eq!(render_cqe_flags(0), "0");
        assert_eq!(
            render_cqe_flags((42 << 16) | 0x3),
            "IORING_CQE_F_BUFFER|IORING_CQE_F_MORE"
        );
        assert_eq!(render_cqe_flags(1 << 15), "IORING_CQE_F_32");
        assert_eq!(
            render_cqe_flags(IORING_CQE_F_TSTAMP_HW | 0x2),
            "IORING_CQE_F_MORE|0x10000"
        );
    }
}
