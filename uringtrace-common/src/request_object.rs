//! What a request touches, read at submission from the kernel's own copy of
//! the SQE (the per-opcode data that `io_kiocb_to_cmd()` gives, filled by
//! the opcode's prep): paths, socket addresses, fds, offsets and lengths.
//! Read by a tp_btf program on the submit tracepoint, at offsets userspace
//! takes from the running kernel's BTF (no CO-RE in Rust eBPF).

use crate::header::RecordHeader;

/// Bytes of a path copied (terminating NUL included); longer paths are cut
/// and flagged `OBJ_PATH_TRUNCATED` / `OBJ_PATH2_TRUNCATED`.
pub const PATH_COPY: usize = 256;
/// Bytes of a socket address copied: enough for `sockaddr_un` (110).
pub const SOCKADDR_COPY: usize = 112;

/// `ObjectRecord.flags`.
pub const OBJ_FIXED_FILE: u8 = 1 << 0;
pub const OBJ_PATH_TRUNCATED: u8 = 1 << 1;
pub const OBJ_PATH2_TRUNCATED: u8 = 1 << 2;
/// The request runs under other credentials than its submitter's: the
/// kernel set REQ_F_CREDS because the SQE named a registered personality.
pub const OBJ_CREDS: u8 = 1 << 3;
/// With OBJ_CREDS: `creds_*` hold the ids read from `req->creds`.
pub const OBJ_CREDS_READ: u8 = 1 << 4;

/// What was read, by opcode family (`ObjectRecord.shape`). `SHAPE_NONE`: an
/// opcode without an object, recorded only for its credentials.
pub const SHAPE_NONE: u8 = 0;
pub const SHAPE_OPEN: u8 = 1;
pub const SHAPE_PATH: u8 = 2;
pub const SHAPE_TWO_PATHS: u8 = 3;
pub const SHAPE_SOCKADDR: u8 = 4;
pub const SHAPE_RW: u8 = 5;
pub const SHAPE_SEND_RECV: u8 = 6;
pub const SHAPE_FD: u8 = 7;

/// Read status of a string or buffer: its length (NUL included for
/// strings) when >= 0, the negative errno of the failed read, or this when
/// the kernel did not say where it is.
pub const LEN_UNKNOWN: i32 = i32::MIN;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ObjectRecord {
    pub header: RecordHeader,
    /// The ring and request pointers, to join the submission.
    pub ring: u64,
    pub req: u64,
    pub opcode: u8,
    pub shape: u8,
    /// `OBJ_*`.
    pub flags: u8,
    pub _pad: u8,
    /// The fd the SQE names (a fixed-file index with OBJ_FIXED_FILE), -1
    /// when unknown.
    pub fd: i32,
    /// dirfd of the first / second path.
    pub dfd: i32,
    pub dfd2: i32,
    /// open(2) flags and mode; renameat2/linkat/unlinkat/statx flags; mkdir
    /// mode.
    pub op_flags: u64,
    pub mode: u64,
    /// Buffer length; file offset (reads, writes).
    pub len: u64,
    pub off: u64,
    pub path_len: i32,
    pub path2_len: i32,
    pub addr_len: i32,
    pub _pad2: i32,
    /// With OBJ_CREDS_READ: the credentials the request runs under
    /// (`struct cred` uid, gid, euid, egid, as kernel-global ids).
    pub creds_uid: u32,
    pub creds_gid: u32,
    pub creds_euid: u32,
    pub creds_egid: u32,
    pub path: [u8; PATH_COPY],
    pub path2: [u8; PATH_COPY],
    pub addr: [u8; SOCKADDR_COPY],
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for ObjectRecord {}

/// Offsets (from BTF) of the fields the object program reads; OFFSET_ABSENT
/// where this kernel has no such member. Per-opcode structures live at the
/// start of `struct io_kiocb`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ObjectLayout {
    /// Non-zero once userspace filled it in (BTF found).
    pub enabled: u32,
    /// Index of the `struct io_kiocb *` among the tracepoint's arguments.
    pub req_arg: u32,
    pub req_ctx: u32,
    pub req_opcode: u32,
    pub req_flags: u32,
    /// `io_kiocb.cqe.fd`: the SQE's fd (6.x).
    pub req_fd: u32,
    pub filename_name: u32,
    pub open_dfd: u32,
    pub open_filename: u32,
    pub open_how_flags: u32,
    pub open_how_mode: u32,
    pub unlink_dfd: u32,
    pub unlink_flags: u32,
    pub unlink_filename: u32,
    pub mkdir_dfd: u32,
    pub mkdir_mode: u32,
    pub mkdir_filename: u32,
    pub rename_old_dfd: u32,
    pub rename_new_dfd: u32,
    pub rename_oldpath: u32,
    pub rename_newpath: u32,
    pub rename_flags: u32,
    pub link_old_dfd: u32,
    pub link_new_dfd: u32,
    pub link_oldpath: u32,
    pub link_newpath: u32,
    pub link_flags: u32,
    pub statx_dfd: u32,
    pub statx_flags: u32,
    pub statx_filename: u32,
    pub connect_addr: u32,
    pub connect_addr_len: u32,
    pub rw_pos: u32,
    pub rw_len: u32,
    pub sr_len: u32,
    /// Size of `io_kiocb.flags` (4 before 6.10, then 8).
    pub req_flags_size: u32,
    /// REQ_F_CREDS_BIT, from the kernel's BTF enum (its number changes
    /// between kernels); OFFSET_ABSENT when BTF lacks it.
    pub creds_bit: u32,
    /// `io_kiocb.creds`, and `struct cred`'s ids (`kuid_t.val`).
    pub req_creds: u32,
    pub cred_uid: u32,
    pub cred_gid: u32,
    pub cred_euid: u32,
    pub cred_egid: u32,
    /// Where the SQE's fd is read when io_kiocb keeps no copy of it (no
    /// `cqe.fd`: 5.15's io_uring, as backported to Debian's 5.10): the
    /// ring's `io_ring_ctx` members that locate the SQE the kernel just
    /// took (`sq_array[(cached_sq_head - 1) & (sq_entries - 1)]` indexes
    /// `sq_sqes`), and `io_uring_sqe.fd` and the SQE's size.
    pub ctx_sq_array: u32,
    pub ctx_sq_sqes: u32,
    pub ctx_cached_sq_head: u32,
    pub ctx_sq_entries: u32,
    pub sqe_fd: u32,
    pub sqe_size: u32,
    /// SYMLINKAT's members: `io_link`'s since 6.0, `io_symlink`'s before
    /// (which has no old_dfd and puts new_dfd where io_link has old_dfd).
    pub symlink_new_dfd: u32,
    pub symlink_oldpath: u32,
    pub symlink_newpath: u32,
    /// Non-zero when `io_statx.filename` is the caller's `const char *`
    /// (5.15), not a `struct filename *` the prep took with getname().
    pub statx_user_path: u32,
    pub _pad: u32,
}

impl ObjectLayout {
    pub const OFF: Self = {
        let a = crate::layout::OFFSET_ABSENT;
        Self {
            enabled: 0,
            req_arg: 0,
            req_ctx: a,
            req_opcode: a,
            req_flags: a,
            req_fd: a,
            filename_name: a,
            open_dfd: a,
            open_filename: a,
            open_how_flags: a,
            open_how_mode: a,
            unlink_dfd: a,
            unlink_flags: a,
            unlink_filename: a,
            mkdir_dfd: a,
            mkdir_mode: a,
            mkdir_filename: a,
            rename_old_dfd: a,
            rename_new_dfd: a,
            rename_oldpath: a,
            rename_newpath: a,
            rename_flags: a,
            link_old_dfd: a,
            link_new_dfd: a,
            link_oldpath: a,
            link_newpath: a,
            link_flags: a,
            statx_dfd: a,
            statx_flags: a,
            statx_filename: a,
            connect_addr: a,
            connect_addr_len: a,
            rw_pos: a,
            rw_len: a,
            sr_len: a,
            req_flags_size: 0,
            creds_bit: a,
            req_creds: a,
            cred_uid: a,
            cred_gid: a,
            cred_euid: a,
            cred_egid: a,
            ctx_sq_array: a,
            ctx_sq_sqes: a,
            ctx_cached_sq_head: a,
            ctx_sq_entries: a,
            sqe_fd: a,
            sqe_size: 0,
            symlink_new_dfd: a,
            symlink_oldpath: a,
            symlink_newpath: a,
            statx_user_path: 0,
            _pad: 0,
        }
    };
}

#[cfg(feature = "user")]
unsafe impl aya::Pod for ObjectLayout {}

/// The opcodes decoded (uapi numbers, stable).
pub mod op {
    pub const READV: u8 = 1;
    pub const WRITEV: u8 = 2;
    pub const READ_FIXED: u8 = 4;
    pub const WRITE_FIXED: u8 = 5;
    pub const SENDMSG: u8 = 9;
    pub const RECVMSG: u8 = 10;
    pub const ACCEPT: u8 = 13;
    pub const CONNECT: u8 = 16;
    pub const OPENAT: u8 = 18;
    pub const CLOSE: u8 = 19;
    pub const STATX: u8 = 21;
    pub const READ: u8 = 22;
    pub const WRITE: u8 = 23;
    pub const SEND: u8 = 26;
    pub const RECV: u8 = 27;
    pub const OPENAT2: u8 = 28;
    pub const SHUTDOWN: u8 = 34;
    pub const RENAMEAT: u8 = 35;
    pub const UNLINKAT: u8 = 36;
    pub const MKDIRAT: u8 = 37;
    pub const SYMLINKAT: u8 = 38;
    pub const LINKAT: u8 = 39;
    pub const SEND_ZC: u8 = 47;
    pub const SENDMSG_ZC: u8 = 48;
    pub const READ_MULTISHOT: u8 = 49;
}

/// The opcodes whose object is read, and how.
pub const fn shape_of(opcode: u8) -> Option<u8> {
    Some(match opcode {
        op::OPENAT | op::OPENAT2 => SHAPE_OPEN,
        op::UNLINKAT | op::MKDIRAT | op::STATX => SHAPE_PATH,
        op::RENAMEAT | op::LINKAT | op::SYMLINKAT => SHAPE_TWO_PATHS,
        op::CONNECT => SHAPE_SOCKADDR,
        op::READ
        | op::WRITE
        | op::READV
        | op::WRITEV
        | op::READ_FIXED
        | op::WRITE_FIXED
        | op::READ_MULTISHOT => SHAPE_RW,
        op::SEND | op::RECV | op::SENDMSG | op::RECVMSG | op::SEND_ZC | op::SENDMSG_ZC => {
            SHAPE_SEND_RECV
        }
        op::ACCEPT | op::CLOSE | op::SHUTDOWN => SHAPE_FD,
        _ => return None,
    })
}
