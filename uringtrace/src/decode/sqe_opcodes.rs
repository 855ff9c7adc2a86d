//! Request opcodes (`io_uring_sqe.opcode`, `enum io_uring_op`).

use super::flag_set::ValueNames;

/// The prefix [`short_name`] strips for compact output.
pub const OP_PREFIX: &str = "IORING_OP_";

/// Every `IORING_OP_*` of Linux 6.18 (`IORING_OP_NOP` = 0 up to
/// `IORING_OP_LAST` - 1), plus the later ones up to 7.3 (each marked with
/// the release that added it).
pub static IO_URING_OPS: ValueNames = ValueNames::new(&[
    (0, "IORING_OP_NOP"),
    (1, "IORING_OP_READV"),
    (2, "IORING_OP_WRITEV"),
    (3, "IORING_OP_FSYNC"),
    (4, "IORING_OP_READ_FIXED"),
    (5, "IORING_OP_WRITE_FIXED"),
    (6, "IORING_OP_POLL_ADD"),
    (7, "IORING_OP_POLL_REMOVE"),
    (8, "IORING_OP_SYNC_FILE_RANGE"),
    (9, "IORING_OP_SENDMSG"),
    (10, "IORING_OP_RECVMSG"),
    (11, "IORING_OP_TIMEOUT"),
    (12, "IORING_OP_TIMEOUT_REMOVE"),
    (13, "IORING_OP_ACCEPT"),
    (14, "IORING_OP_ASYNC_CANCEL"),
    (15, "IORING_OP_LINK_TIMEOUT"),
    (16, "IORING_OP_CONNECT"),
    (17, "IORING_OP_FALLOCATE"),
    (18, "IORING_OP_OPENAT"),
    (19, "IORING_OP_CLOSE"),
    (20, "IORING_OP_FILES_UPDATE"),
    (21, "IORING_OP_STATX"),
    (22, "IORING_OP_READ"),
    (23, "IORING_OP_WRITE"),
    (24, "IORING_OP_FADVISE"),
    (25, "IORING_OP_MADVISE"),
    (26, "IORING_OP_SEND"),
    (27, "IORING_OP_RECV"),
    (28, "IORING_OP_OPENAT2"),
    (29, "IORING_OP_EPOLL_CTL"),
    (30, "IORING_OP_SPLICE"),
    (31, "IORING_OP_PROVIDE_BUFFERS"),
    (32, "IORING_OP_REMOVE_BUFFERS"),
    (33, "IORING_OP_TEE"),
    (34, "IORING_OP_SHUTDOWN"),
    (35, "IORING_OP_RENAMEAT"),
    (36, "IORING_OP_UNLINKAT"),
    (37, "IORING_OP_MKDIRAT"),
    (38, "IORING_OP_SYMLINKAT"),
    (39, "IORING_OP_LINKAT"),
    (40, "IORING_OP_MSG_RING"),
    (41, "IORING_OP_FSETXATTR"),
    (42, "IORING_OP_SETXATTR"),
    (43, "IORING_OP_FGETXATTR"),
    (44, "IORING_OP_GETXATTR"),
    (45, "IORING_OP_SOCKET"),
    (46, "IORING_OP_URING_CMD"),
    (47, "IORING_OP_SEND_ZC"),
    (48, "IORING_OP_SENDMSG_ZC"),
    (49, "IORING_OP_READ_MULTISHOT"),
    (50, "IORING_OP_WAITID"),
    (51, "IORING_OP_FUTEX_WAIT"),
    (52, "IORING_OP_FUTEX_WAKE"),
    (53, "IORING_OP_FUTEX_WAITV"),
    (54, "IORING_OP_FIXED_FD_INSTALL"),
    (55, "IORING_OP_FTRUNCATE"),
    (56, "IORING_OP_BIND"),
    (57, "IORING_OP_LISTEN"),
    (58, "IORING_OP_RECV_ZC"),
    (59, "IORING_OP_EPOLL_WAIT"),
    (60, "IORING_OP_READV_FIXED"),
    (61, "IORING_OP_WRITEV_FIXED"),
    (62, "IORING_OP_PIPE"),
    // Linux 6.19 (128-byte SQE forms for IORING_SETUP_SQE_MIXED rings).
    (63, "IORING_OP_NOP128"),
    (64, "IORING_OP_URING_CMD128"),
]);

/// The full `IORING_OP_*` name of `opcode`, if known.
pub fn op_name(opcode: u8) -> Option<&'static str> {
    IO_URING_OPS.name(u64::from(opcode))
}

/// The name of `opcode` without the `IORING_OP_` prefix (e.g. `"READV"`),
/// for compact text output.
pub fn short_name(opcode: u8) -> Option<&'static str> {
    op_name(opcode).map(|name| name.strip_prefix(OP_PREFIX).unwrap_or(name))
}

/// The full name of `opcode`, or its decimal number when unknown.
pub fn render_op(opcode: u8) -> String {
    IO_URING_OPS.render(u64::from(opcode))
}

/// The short name of `opcode`, or its decimal number when unknown.
pub fn render_op_short(opcode: u8) -> String {
    match short_name(opcode) {
        Some(name) => name.to_string(),
        None => opcode.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    #[test]
    fn shape() {
        shape::assert_values_ascending(&IO_URING_OPS);
        shape::assert_dense_from_zero(&IO_URING_OPS);
        assert_eq!(IO_URING_OPS.entries().len(), 65);
        for &(_, name) in IO_URING_OPS.entries() {
            assert!(name.starts_with(OP_PREFIX), "{name}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(op_name(1), Some("IORING_OP_READV"));
        assert_eq!(short_name(1), Some("READV"));
        assert_eq!(short_name(62), Some("PIPE"));
        assert_eq!(short_name(200), None);
        assert_eq!(render_op(0), "IORING_OP_NOP");
        assert_eq!(render_op(200), "200");
        assert_eq!(render_op_short(47), "SEND_ZC");
        assert_eq!(render_op_short(255), "255");
    }
}
