//! Opcodes of io_uring_register(2) (`enum io_uring_register_op`).

use super::flag_set::ValueNames;

/// Every io_uring_register(2) opcode of Linux 6.18, plus the later ones up
/// to 7.3 (each marked with the release that added it).
pub static IO_URING_REGISTER_OPCODES: ValueNames = ValueNames::new(&[
    (0, "IORING_REGISTER_BUFFERS"),
    (1, "IORING_UNREGISTER_BUFFERS"),
    (2, "IORING_REGISTER_FILES"),
    (3, "IORING_UNREGISTER_FILES"),
    (4, "IORING_REGISTER_EVENTFD"),
    (5, "IORING_UNREGISTER_EVENTFD"),
    (6, "IORING_REGISTER_FILES_UPDATE"),
    (7, "IORING_REGISTER_EVENTFD_ASYNC"),
    (8, "IORING_REGISTER_PROBE"),
    (9, "IORING_REGISTER_PERSONALITY"),
    (10, "IORING_UNREGISTER_PERSONALITY"),
    (11, "IORING_REGISTER_RESTRICTIONS"),
    (12, "IORING_REGISTER_ENABLE_RINGS"),
    (13, "IORING_REGISTER_FILES2"),
    (14, "IORING_REGISTER_FILES_UPDATE2"),
    (15, "IORING_REGISTER_BUFFERS2"),
    (16, "IORING_REGISTER_BUFFERS_UPDATE"),
    (17, "IORING_REGISTER_IOWQ_AFF"),
    (18, "IORING_UNREGISTER_IOWQ_AFF"),
    (19, "IORING_REGISTER_IOWQ_MAX_WORKERS"),
    (20, "IORING_REGISTER_RING_FDS"),
    (21, "IORING_UNREGISTER_RING_FDS"),
    (22, "IORING_REGISTER_PBUF_RING"),
    (23, "IORING_UNREGISTER_PBUF_RING"),
    (24, "IORING_REGISTER_SYNC_CANCEL"),
    (25, "IORING_REGISTER_FILE_ALLOC_RANGE"),
    (26, "IORING_REGISTER_PBUF_STATUS"),
    (27, "IORING_REGISTER_NAPI"),
    (28, "IORING_UNREGISTER_NAPI"),
    (29, "IORING_REGISTER_CLOCK"),
    (30, "IORING_REGISTER_CLONE_BUFFERS"),
    (31, "IORING_REGISTER_SEND_MSG_RING"),
    (32, "IORING_REGISTER_ZCRX_IFQ"),
    (33, "IORING_REGISTER_RESIZE_RINGS"),
    (34, "IORING_REGISTER_MEM_REGION"),
    (35, "IORING_REGISTER_QUERY"),
    // Linux 6.19.
    (36, "IORING_REGISTER_ZCRX_CTRL"),
    // Linux 7.0.
    (37, "IORING_REGISTER_BPF_FILTER"),
]);

/// Bit or-ed into the opcode when the `fd` argument is an index into the
/// task's registered ring fds rather than a file descriptor (Linux 6.3).
pub const IORING_REGISTER_USE_REGISTERED_RING: u32 = 1 << 31;

/// The name [`render_register_opcode`] gives the registered-ring bit.
pub const USE_REGISTERED_RING_NAME: &str = "IORING_REGISTER_USE_REGISTERED_RING";

/// Splits the raw `opcode` argument into the opcode proper and whether it
/// carried [`IORING_REGISTER_USE_REGISTERED_RING`].
pub fn decode_register_opcode(raw: u32) -> (u32, bool) {
    (
        raw & !IORING_REGISTER_USE_REGISTERED_RING,
        raw & IORING_REGISTER_USE_REGISTERED_RING != 0,
    )
}

/// The opcode's name (or decimal number when unknown), followed by
/// `|IORING_REGISTER_USE_REGISTERED_RING` when that bit is set.
pub fn render_register_opcode(raw: u32) -> String {
    let (opcode, registered_ring) = decode_register_opcode(raw);
    let name = IO_URING_REGISTER_OPCODES.render(u64::from(opcode));
    if registered_ring {
        format!("{name}|{USE_REGISTERED_RING_NAME}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flag_set::shape;

    #[test]
    fn shape() {
        shape::assert_values_ascending(&IO_URING_REGISTER_OPCODES);
        shape::assert_dense_from_zero(&IO_URING_REGISTER_OPCODES);
        assert_eq!(IO_URING_REGISTER_OPCODES.entries().len(), 38);
    }

    #[test]
    fn modifier_bit_is_split_off() {
        assert_eq!(decode_register_opcode(2), (2, false));
        assert_eq!(decode_register_opcode(2 | (1 << 31)), (2, true));
        assert_eq!(decode_register_opcode(1 << 31), (0, true));
    }

    #[test]
    fn render() {
        assert_eq!(render_register_opcode(0), "IORING_REGISTER_BUFFERS");
        assert_eq!(
            render_register_opcode(2 | IORING_REGISTER_USE_REGISTERED_RING),
            "IORING_REGISTER_FILES|IORING_REGISTER_USE_REGISTERED_RING"
        );
        assert_eq!(render_register_opcode(35), "IORING_REGISTER_QUERY");
        assert_eq!(render_register_opcode(200), "200");
        assert_eq!(
            render_register_opcode(200 | IORING_REGISTER_USE_REGISTERED_RING),
            "200|IORING_REGISTER_USE_REGISTERED_RING"
        );
    }
}
