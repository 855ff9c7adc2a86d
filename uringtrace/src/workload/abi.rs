//! The io_uring kernel ABI the engine passes by hand: constants and
//! `#[repr(C)]` mirrors of the uapi structs (include/uapi/linux/io_uring.h).
//! Mirrored here rather than taken from the io-uring crate because the crate
//! keeps its bindings private, and because the engine must be able to build
//! argument forms the crate never would (bad pointers, odd sizes).

// Setup flags (io_uring_params.flags).
pub const IORING_SETUP_SQPOLL: u32 = 1 << 1;
pub const IORING_SETUP_SQ_AFF: u32 = 1 << 2;
pub const IORING_SETUP_CQSIZE: u32 = 1 << 3;
pub const IORING_SETUP_CLAMP: u32 = 1 << 4;
pub const IORING_SETUP_ATTACH_WQ: u32 = 1 << 5;
pub const IORING_SETUP_R_DISABLED: u32 = 1 << 6;
pub const IORING_SETUP_SUBMIT_ALL: u32 = 1 << 7;
pub const IORING_SETUP_COOP_TASKRUN: u32 = 1 << 8;
pub const IORING_SETUP_TASKRUN_FLAG: u32 = 1 << 9;
pub const IORING_SETUP_SQE128: u32 = 1 << 10;
pub const IORING_SETUP_CQE32: u32 = 1 << 11;
pub const IORING_SETUP_SINGLE_ISSUER: u32 = 1 << 12;
pub const IORING_SETUP_DEFER_TASKRUN: u32 = 1 << 13;
pub const IORING_SETUP_NO_SQARRAY: u32 = 1 << 16;

/// Far above every setup flag a kernel defines (they have grown one bit at a
/// time from bit 0 and are below bit 20 as of 6.18), so io_uring_setup must
/// refuse it.
pub const SETUP_FLAG_UNDEFINED: u32 = 1 << 30;

/// `IORING_MAX_ENTRIES`: larger SQ sizes need IORING_SETUP_CLAMP.
pub const IORING_MAX_ENTRIES: u32 = 32768;

// io_uring_enter flags.
pub const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
pub const IORING_ENTER_SQ_WAKEUP: u32 = 1 << 1;
pub const IORING_ENTER_SQ_WAIT: u32 = 1 << 2;
pub const IORING_ENTER_EXT_ARG: u32 = 1 << 3;
pub const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;
pub const IORING_ENTER_ABS_TIMER: u32 = 1 << 5;
pub const IORING_ENTER_EXT_ARG_REG: u32 = 1 << 6;
pub const IORING_ENTER_NO_IOWAIT: u32 = 1 << 7;

/// Far above every enter flag a kernel defines (bit 7 is the last in 6.18).
pub const ENTER_FLAG_UNDEFINED: u32 = 1 << 20;

/// `IO_RINGFD_REG_MAX`: slots in a thread's registered-ring table.
pub const IO_RINGFD_REG_MAX: u32 = 16;

// io_uring_register opcodes.
pub const IORING_REGISTER_BUFFERS: u32 = 0;
pub const IORING_UNREGISTER_BUFFERS: u32 = 1;
pub const IORING_REGISTER_FILES: u32 = 2;
pub const IORING_UNREGISTER_FILES: u32 = 3;
pub const IORING_REGISTER_EVENTFD: u32 = 4;
pub const IORING_UNREGISTER_EVENTFD: u32 = 5;
pub const IORING_REGISTER_EVENTFD_ASYNC: u32 = 7;
pub const IORING_REGISTER_PROBE: u32 = 8;
pub const IORING_REGISTER_RESTRICTIONS: u32 = 11;
pub const IORING_REGISTER_ENABLE_RINGS: u32 = 12;
pub const IORING_REGISTER_RING_FDS: u32 = 20;
pub const IORING_UNREGISTER_RING_FDS: u32 = 21;
pub const IORING_REGISTER_PBUF_RING: u32 = 22;
pub const IORING_REGISTER_MEM_REGION: u32 = 34;
pub const IORING_REGISTER_USE_REGISTERED_RING: u32 = 1 << 31;

/// Far above `IORING_REGISTER_LAST` (below 40 in 6.18) yet without the
/// USE_REGISTERED_RING bit, so the kernel rejects the opcode itself.
pub const REGISTER_OPCODE_UNDEFINED: u32 = 255;

// struct io_uring_restriction opcodes.
pub const IORING_RESTRICTION_REGISTER_OP: u16 = 0;
pub const IORING_RESTRICTION_SQE_OP: u16 = 1;

pub const IORING_OP_NOP: u8 = 0;

/// Far above `IORING_OP_LAST` (below 70 in 6.18), so the kernel fails the
/// request at init.
pub const SQE_OPCODE_UNDEFINED: u8 = 200;

/// The one io_uring_sqe.flags bit no kernel defines (IOSQE_* end at bit
/// 6, CQE_SKIP_SUCCESS).
pub const SQE_FLAG_UNDEFINED: u8 = 1 << 7;

// io_uring_cqe.flags.
pub const IORING_CQE_F_BUFFER: u32 = 1 << 0;
pub const IORING_CQE_F_MORE: u32 = 1 << 1;
pub const IORING_CQE_F_SOCK_NONEMPTY: u32 = 1 << 2;
/// With F_BUFFER, the buffer id sits in the upper 16 bits.
pub const IORING_CQE_BUFFER_SHIFT: u32 = 16;

/// `IO_URING_OP_SUPPORTED` in io_uring_probe_op.flags.
pub const IO_URING_OP_SUPPORTED: u16 = 1 << 0;

pub const IORING_MEM_REGION_TYPE_USER: u32 = 1;
pub const IORING_MEM_REGION_REG_WAIT_ARG: u64 = 1;
pub const IORING_REG_WAIT_TS: u32 = 1;

/// `sizeof(sigset_t)` in the kernel (`_NSIG / 8` on 64-bit): the only
/// sigset size io_uring_enter accepts.
pub const KERNEL_SIGSET_SIZE: u32 = 8;

/// The kernel's sigset bit for a signal number: bit n-1 is signal n.
pub const fn sig_bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoSqringOffsets {
    pub head: u32,
    pub tail: u32,
    pub ring_mask: u32,
    pub ring_entries: u32,
    pub flags: u32,
    pub dropped: u32,
    pub array: u32,
    pub resv1: u32,
    pub user_addr: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoCqringOffsets {
    pub head: u32,
    pub tail: u32,
    pub ring_mask: u32,
    pub ring_entries: u32,
    pub overflow: u32,
    pub cqes: u32,
    pub flags: u32,
    pub resv1: u32,
    pub user_addr: u64,
}

/// `struct io_uring_params`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringParams {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub flags: u32,
    pub sq_thread_cpu: u32,
    pub sq_thread_idle: u32,
    pub features: u32,
    pub wq_fd: u32,
    pub resv: [u32; 3],
    pub sq_off: IoSqringOffsets,
    pub cq_off: IoCqringOffsets,
}

/// `struct __kernel_timespec`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelTimespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

impl KernelTimespec {
    pub const fn from_millis(ms: i64) -> Self {
        Self {
            tv_sec: ms / 1000,
            tv_nsec: (ms % 1000) * 1_000_000,
        }
    }
}

/// `struct io_uring_getevents_arg` (IORING_ENTER_EXT_ARG).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringGeteventsArg {
    pub sigmask: u64,
    pub sigmask_sz: u32,
    pub min_wait_usec: u32,
    pub ts: u64,
}

/// `struct io_uring_reg_wait` (IORING_ENTER_EXT_ARG_REG).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringRegWait {
    pub ts: KernelTimespec,
    pub min_wait_usec: u32,
    pub flags: u32,
    pub sigmask: u64,
    pub sigmask_sz: u32,
    pub pad: [u32; 3],
    pub pad2: [u64; 2],
}

/// `struct io_uring_region_desc`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringRegionDesc {
    pub user_addr: u64,
    pub size: u64,
    pub flags: u32,
    pub id: u32,
    pub mmap_offset: u64,
    pub resv: [u64; 4],
}

/// `struct io_uring_mem_region_reg` (IORING_REGISTER_MEM_REGION).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringMemRegionReg {
    pub region_uptr: u64,
    pub flags: u64,
    pub resv: [u64; 2],
}

/// `struct io_uring_rsrc_update` (IORING_(UN)REGISTER_RING_FDS).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringRsrcUpdate {
    pub offset: u32,
    pub resv: u32,
    pub data: u64,
}

/// `struct io_uring_restriction`; the union of register_op, sqe_op and
/// sqe_flags is the one byte `arg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringRestriction {
    pub opcode: u16,
    pub arg: u8,
    pub resv: u8,
    pub resv2: [u32; 3],
}

/// `struct io_uring_buf_reg` (IORING_REGISTER_PBUF_RING).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringBufReg {
    pub ring_addr: u64,
    pub ring_entries: u32,
    pub bgid: u16,
    pub flags: u16,
    pub resv: [u64; 3],
}

/// `struct io_uring_buf`, one entry of a provided-buffer ring. The ring's
/// tail overlays `resv` of entry 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringBuf {
    pub addr: u64,
    pub len: u32,
    pub bid: u16,
    pub resv: u16,
}

/// Byte offset of a buffer ring's tail (`struct io_uring_buf_ring.tail`).
pub const BUF_RING_TAIL_OFFSET: usize = 14;

/// `struct io_uring_probe_op`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoUringProbeOp {
    pub op: u8,
    pub resv: u8,
    pub flags: u16,
    pub resv2: u32,
}

/// Ops in a probe buffer: the most IORING_REGISTER_PROBE accepts.
pub const PROBE_OPS: usize = 256;

/// `struct io_uring_probe` with room for [`PROBE_OPS`] ops.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IoUringProbe {
    pub last_op: u8,
    pub ops_len: u8,
    pub resv: u16,
    pub resv2: [u32; 3],
    pub ops: [IoUringProbeOp; PROBE_OPS],
}

impl Default for IoUringProbe {
    fn default() -> Self {
        Self {
            last_op: 0,
            ops_len: 0,
            resv: 0,
            resv2: [0; 3],
            ops: [IoUringProbeOp::default(); PROBE_OPS],
        }
    }
}

// A size mismatch would make the kernel read past or short of what we mean,
// so pin every size the uapi header fixes.
const _: () = {
    assert!(size_of::<IoUringParams>() == 120);
    assert!(size_of::<KernelTimespec>() == 16);
    assert!(size_of::<IoUringGeteventsArg>() == 24);
    assert!(size_of::<IoUringRegWait>() == 64);
    assert!(size_of::<IoUringRegionDesc>() == 64);
    assert!(size_of::<IoUringMemRegionReg>() == 32);
    assert!(size_of::<IoUringRsrcUpdate>() == 16);
    assert!(size_of::<IoUringRestriction>() == 16);
    assert!(size_of::<IoUringProbeOp>() == 8);
    assert!(size_of::<IoUringBufReg>() == 40);
    assert!(size_of::<IoUringBuf>() == 16);
    assert!(size_of::<IoUringProbe>() == 16 + 8 * PROBE_OPS);
};
