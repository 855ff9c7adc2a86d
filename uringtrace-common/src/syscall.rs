//! Records of the three io_uring system calls, one per completed call:
//! the arguments as read at entry, the result and duration from exit.

use crate::header::RecordHeader;

/// Result of a call, filled in at syscall exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SyscallResult {
    /// Kernel return value: negative errno on failure.
    pub ret: i64,
    /// Exit time minus entry time; 0 when the entry was missed.
    pub duration_ns: u64,
}

/// How reading one user pointer went, in the caller's context at entry.
/// Values >= 0 are the `READ_*` constants, negative ones the errno of the
/// failed `bpf_probe_read_user` (-EFAULT for a bad pointer).
pub type ReadStatus = i32;
/// The pointer was NULL (or the flags say it is not a pointer): nothing to read.
pub const READ_NONE: ReadStatus = 0;
pub const READ_OK: ReadStatus = 1;
/// Not read because the size the caller passed is not the size the kernel
/// accepts (the kernel fails such a call with EINVAL without reading).
pub const READ_SIZE_MISMATCH: ReadStatus = 2;

/// What `argp`/`argsz` of io_uring_enter were taken to be, from the flags.
pub const ENTER_ARG_SIGSET: u32 = 0;
pub const ENTER_ARG_EXT: u32 = 1;
/// `IORING_ENTER_EXT_ARG_REG`: argp is an offset into a registered region.
pub const ENTER_ARG_EXT_REG: u32 = 2;

/// Size of the kernel's `sigset_t` on every 64-bit architecture we build for
/// (`_NSIG / 8`); io_uring_enter rejects any other sigsz.
pub const KERNEL_SIGSET_SIZE: u64 = 8;
/// `sizeof(struct io_uring_getevents_arg)`.
pub const GETEVENTS_ARG_SIZE: u64 = 24;

/// The decoded `argp` of io_uring_enter, as read at entry. The caller can
/// change the memory after the kernel read it (or before): values are a
/// snapshot at syscall entry (TOCTOU), which the output says.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EnterArg {
    /// `ENTER_ARG_*`.
    pub arg_kind: u32,
    /// Reading `struct io_uring_getevents_arg` (EXT_ARG) or the sigset (legacy).
    pub arg_status: ReadStatus,
    /// Reading the sigset that `io_uring_getevents_arg.sigmask` points to.
    pub sigmask_status: ReadStatus,
    /// Reading the timespec that `io_uring_getevents_arg.ts` points to.
    pub ts_status: ReadStatus,
    /// `io_uring_getevents_arg.sigmask` (EXT_ARG).
    pub sigmask_ptr: u64,
    /// The signal mask bits (legacy sigset or the EXT_ARG one).
    pub sigmask: u64,
    /// `io_uring_getevents_arg.sigmask_sz`.
    pub sigmask_sz: u32,
    /// `io_uring_getevents_arg.min_wait_usec` (6.12+; `pad` before).
    pub min_wait_usec: u32,
    /// `io_uring_getevents_arg.ts`.
    pub ts_ptr: u64,
    pub ts_sec: i64,
    pub ts_nsec: i64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EnterRecord {
    pub header: RecordHeader,
    pub result: SyscallResult,
    /// Ring fd, or a registered-ring index with IORING_ENTER_REGISTERED_RING.
    pub fd: u32,
    pub to_submit: u32,
    pub min_complete: u32,
    pub flags: u32,
    pub argp: u64,
    pub argsz: u64,
    pub arg: EnterArg,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RegisterRecord {
    pub header: RecordHeader,
    pub result: SyscallResult,
    pub fd: u32,
    /// Raw opcode, including IORING_REGISTER_USE_REGISTERED_RING.
    pub opcode: u32,
    pub arg: u64,
    pub nr_args: u32,
    pub _pad: u32,
}

/// The fields of `struct io_uring_params` the tracer keeps: what the caller
/// asked for (read at entry) and what the kernel answered (read at exit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SetupParams {
    pub sq_entries: u32,
    pub cq_entries: u32,
    pub flags: u32,
    pub sq_thread_cpu: u32,
    pub sq_thread_idle: u32,
    pub features: u32,
    pub wq_fd: u32,
    pub _pad: u32,
}

/// Bytes of `struct io_uring_params` read: up to and including `wq_fd`
/// (the rest is reserved words and ring offsets the tracer ignores).
pub const SETUP_PARAMS_READ_SIZE: usize = 28;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SetupRecord {
    pub header: RecordHeader,
    pub result: SyscallResult,
    pub entries: u32,
    /// Reading the params at entry.
    pub params_status: ReadStatus,
    pub params_ptr: u64,
    /// As passed in by the caller.
    pub params_in: SetupParams,
    /// As written back by the kernel on success (sq/cq entries, features).
    pub params_out_status: ReadStatus,
    pub _pad: u32,
    pub params_out: SetupParams,
}

// Userspace reads the header and the result of any call record at the same
// offsets, whatever its kind.
const _: () = {
    use core::mem::{offset_of, size_of};
    let at = size_of::<RecordHeader>();
    assert!(offset_of!(EnterRecord, result) == at);
    assert!(offset_of!(RegisterRecord, result) == at);
    assert!(offset_of!(SetupRecord, result) == at);
};

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for EnterRecord {}
    unsafe impl aya::Pod for RegisterRecord {}
    unsafe impl aya::Pod for SetupRecord {}
}
