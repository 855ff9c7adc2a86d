//! What each request touches, read at submission by a tp_btf program on the
//! submit tracepoint (or the same code as a raw tracepoint where the
//! verifier refuses tp_btf's request argument): its `struct io_kiocb *` gives the opcode's own data
//! (the kernel's copy of the SQE, after prep), at offsets userspace took
//! from this kernel's BTF. One record per decoded request, emitted before
//! the submit tracepoint's own record when both programs are attached in
//! that order. Requests that run under a registered personality get a
//! record too, whatever their opcode: the credentials `req->creds` names.

use aya_ebpf::{
    helpers::{
        bpf_probe_read_kernel,
        generated::{bpf_probe_read_kernel_str, bpf_probe_read_user, bpf_probe_read_user_str},
    },
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use uringtrace_common::{
    RecordKind, counters, hook_mode,
    layout::OFFSET_ABSENT,
    request_object::{
        LEN_UNKNOWN, OBJ_CREDS, OBJ_CREDS_READ, OBJ_FIXED_FILE, OBJ_PATH_TRUNCATED,
        OBJ_PATH2_TRUNCATED, ObjectRecord, PATH_COPY, SHAPE_FD, SHAPE_NONE, SHAPE_OPEN, SHAPE_PATH,
        SHAPE_RW, SHAPE_SEND_RECV, SHAPE_SOCKADDR, SHAPE_TWO_PATHS, SOCKADDR_COPY, op, shape_of,
    },
    summary::SUMMARY_ONLY,
};

use crate::{
    config::{self, object_offset as at},
    emit::{current_task, header, load, reserve, zero},
    maps::{TRACED_RINGS, count},
    process_filter::is_traced,
};

/// REQ_F_FIXED_FILE: the SQE's fd is an index into the registered files.
/// Bit 0 on every kernel: the low byte of the request flags is the SQE's
/// IOSQE_* byte (uapi).
const REQ_F_FIXED_FILE: u64 = 1 << 0;

/// `shape_of` for every opcode.
static SHAPES: [u8; 256] = {
    let mut table = [SHAPE_NONE; 256];
    let mut opcode = 0;
    while opcode < 256 {
        if let Some(shape) = shape_of(opcode as u8) {
            table[opcode] = shape;
        }
        opcode += 1;
    }
    table
};

#[inline(always)]
fn read<T: Copy>(base: u64, offset: u32) -> Option<T> {
    if offset == OFFSET_ABSENT || base == 0 {
        return None;
    }
    unsafe { bpf_probe_read_kernel((base + u64::from(offset)) as *const T) }.ok()
}

/// Which memory a string is read from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Memory {
    Kernel,
    /// The submitter's (5.15 keeps STATX's path there until issue).
    User,
}

/// Copies the NUL-terminated string at `ptr` into `dst`; its length (NUL
/// included), or a negative errno, or LEN_UNKNOWN without a pointer.
#[inline(always)]
fn read_str(ptr: Option<u64>, dst: &mut [u8; PATH_COPY], memory: Memory) -> i32 {
    let Some(p) = ptr.filter(|&p| p != 0) else {
        return LEN_UNKNOWN;
    };
    let (dst_ptr, src) = (dst.as_mut_ptr().cast(), p as *const core::ffi::c_void);
    (unsafe {
        if memory == Memory::User {
            bpf_probe_read_user_str(dst_ptr, PATH_COPY as u32, src)
        } else {
            bpf_probe_read_kernel_str(dst_ptr, PATH_COPY as u32, src)
        }
    }) as i32
}

/// The SQE's fd: `io_kiocb.cqe.fd` where the kernel keeps it; else (5.15)
/// from the SQE `io_get_sqe()` just took, whose index is the one before
/// the ring's `cached_sq_head`. That SQE is shared memory: a submitter
/// racing the kernel could rewrite its fd between the kernel's read and
/// this one (docs/events.md says so); the paths and addresses stay the
/// kernel's own.
#[inline(always)]
fn sqe_fd(req: u64, ring: u64) -> Option<i32> {
    if at(|l| &l.req_fd) != OFFSET_ABSENT {
        return read(req, at(|l| &l.req_fd));
    }
    let head: u32 = read(ring, at(|l| &l.ctx_cached_sq_head))?;
    let entries: u32 = read(ring, at(|l| &l.ctx_sq_entries))?;
    let array: u64 = read(ring, at(|l| &l.ctx_sq_array))?;
    let sqes: u64 = read(ring, at(|l| &l.ctx_sq_sqes))?;
    let slot = head.wrapping_sub(1) & entries.wrapping_sub(1);
    let index: u32 = read(array, slot.wrapping_mul(4))?;
    if index >= entries {
        return None;
    }
    let sqe = sqes + u64::from(index) * u64::from(at(|l| &l.sqe_size));
    read(sqe, at(|l| &l.sqe_fd))
}

/// `io_kiocb.flags`, u32 or (6.10+) u64 as BTF said.
#[inline(always)]
fn req_flags(req: u64) -> u64 {
    let offset = at(|l| &l.req_flags);
    if at(|l| &l.req_flags_size) == 8 {
        read::<u64>(req, offset).unwrap_or(0)
    } else {
        u64::from(read::<u32>(req, offset).unwrap_or(0))
    }
}

/// Whether the request carries REQ_F_CREDS, whose bit comes from BTF.
#[inline(always)]
fn runs_under_creds(flags: u64) -> bool {
    let bit = at(|l| &l.creds_bit);
    bit < 64 && flags & (1u64 << bit) != 0
}

/// `req->creds`' uid, gid, euid, egid; `None` when an offset is unknown
/// or a read faulted.
#[inline(always)]
fn read_creds(req: u64) -> Option<[u32; 4]> {
    let cred: u64 = read(req, at(|l| &l.req_creds))?;
    Some([
        read(cred, at(|l| &l.cred_uid))?,
        read(cred, at(|l| &l.cred_gid))?,
        read(cred, at(|l| &l.cred_euid))?,
        read(cred, at(|l| &l.cred_egid))?,
    ])
}

/// A `struct filename *` member's name.
#[inline(always)]
fn read_filename(req: u64, member: u32, name: u32, dst: &mut [u8; PATH_COPY]) -> i32 {
    let filename: Option<u64> = read(req, member);
    read_str(
        filename.and_then(|f| read::<u64>(f, name)),
        dst,
        Memory::Kernel,
    )
}

#[btf_tracepoint(function = "io_uring_submit_req")]
pub fn io_uring_submit_object(ctx: BtfTracePointContext) -> u32 {
    // tp_btf arguments are read at constant offsets only.
    let req: u64 = if at(|l| &l.req_arg) == 0 {
        ctx.arg(0)
    } else {
        ctx.arg(1)
    };
    let _ = try_object(req);
    0
}

/// The same program as a raw tracepoint, for kernels whose verifier refuses
/// the tp_btf one (5.15's io_uring backported to 5.10, whose submit
/// tracepoint's request is argument 1, an untyped `void *`). Raw
/// tracepoint arguments are plain u64s, and every read of the request goes
/// through bpf_probe_read_kernel anyway. One entry point per request
/// argument, userspace loading the one its layout names: a
/// choice between the two in one program compiles to a load through the
/// context pointer moved by the chosen offset, which the verifier refuses
/// unless that offset is 0 ("dereference of modified ctx ptr"; the tp_btf
/// program's failure on 5.10, where the request is argument 1). Attached
/// by name from userspace: the section's tracepoint is only a default.
#[raw_tracepoint(tracepoint = "io_uring_submit_req")]
pub fn io_uring_submit_object_raw0(ctx: RawTracePointContext) -> i32 {
    let _ = try_object(ctx.arg(0));
    0
}

/// [`io_uring_submit_object_raw0`] for a request at argument 1
/// (`io_uring_submit_sqe(void *ctx, void *req, ...)`).
#[raw_tracepoint(tracepoint = "io_uring_submit_sqe")]
pub fn io_uring_submit_object_raw1(ctx: RawTracePointContext) -> i32 {
    let _ = try_object(ctx.arg(1));
    0
}

/// The object record of the request the submit tp_btf program
/// (`requests_btf`) is about to report, when userspace folded this program
/// into that one (OBJECTS_IN_SUBMIT): one program run per submission instead
/// of two. `req` is BTF-typed there, so the two fields every request needs
/// are plain loads; the rest is read as in the standalone program.
#[inline(always)]
pub(crate) fn object_in_submit(req: u64) {
    if !config::objects_in_submit() || !objects_wanted() {
        return;
    }
    let opcode: u8 = load(req, at(|l| &l.req_opcode));
    let flags = if at(|l| &l.req_flags_size) == 8 {
        load::<u64>(req, at(|l| &l.req_flags))
    } else {
        u64::from(load::<u32>(req, at(|l| &l.req_flags)))
    };
    if has_object(opcode, flags) {
        let _ = object(req, opcode, flags);
    }
}

/// Whether a request of `opcode` with `flags` has an object record: asked
/// before the call, which a NOP storm would otherwise pay on every
/// submission for nothing (a BPF-to-BPF call and return, each through
/// the kernel's return thunk on CPUs that need one).
#[inline(always)]
fn has_object(opcode: u8, flags: u64) -> bool {
    opcode_shape(opcode) != SHAPE_NONE || runs_under_creds(flags)
}

/// From a table, not a `match`: the verifier then sees one unknown shape,
/// not a constant per opcode group walked through all that follows once
/// per constant (eight times the load time).
#[inline(always)]
fn opcode_shape(opcode: u8) -> u8 {
    unsafe { core::ptr::read_volatile(&SHAPES[usize::from(opcode)]) }
}

#[inline(always)]
fn objects_wanted() -> bool {
    at(|l| &l.enabled) != 0
        && config::hook_mode() == hook_mode::FULL
        && config::summary_mode() != SUMMARY_ONLY
}

#[inline(always)]
fn try_object(req: u64) -> Option<()> {
    if !objects_wanted() {
        return None;
    }
    let opcode: u8 = read(req, at(|l| &l.req_opcode))?;
    let flags = req_flags(req);
    if !has_object(opcode, flags) {
        return None;
    }
    object(req, opcode, flags)
}

#[inline(never)]
fn object(req: u64, opcode: u8, flags: u64) -> Option<()> {
    // The callers asked has_object.
    let under_creds = runs_under_creds(flags);
    let shape = opcode_shape(opcode);
    let ring: u64 = read(req, at(|l| &l.req_ctx)).unwrap_or(0);
    let task = current_task();
    if !is_traced(task.tgid) && unsafe { TRACED_RINGS.get(ring) }.is_none() {
        return None;
    }
    if config::opcode_filter_enabled() && !config::opcode_filter_keeps(opcode) {
        return None;
    }
    let Some(mut entry) = reserve::<ObjectRecord>() else {
        count(counters::RINGBUF_FULL);
        return None;
    };
    let r = unsafe { &mut *entry.as_mut_ptr() };
    r.header = header(RecordKind::RequestObject, task);
    r.ring = ring;
    r.req = req;
    r.opcode = opcode;
    r.shape = shape;
    r._pad = 0;
    r._pad2 = 0;
    r.flags = if flags & REQ_F_FIXED_FILE != 0 {
        OBJ_FIXED_FILE
    } else {
        0
    };
    for field in [
        &mut r.creds_uid,
        &mut r.creds_gid,
        &mut r.creds_euid,
        &mut r.creds_egid,
    ] {
        zero(field);
    }
    if under_creds {
        r.flags |= OBJ_CREDS;
        if let Some([uid, gid, euid, egid]) = read_creds(req) {
            r.flags |= OBJ_CREDS_READ;
            r.creds_uid = uid;
            r.creds_gid = gid;
            r.creds_euid = euid;
            r.creds_egid = egid;
        }
    }
    r.fd = match shape {
        SHAPE_RW | SHAPE_SEND_RECV | SHAPE_SOCKADDR | SHAPE_FD => sqe_fd(req, ring).unwrap_or(-1),
        _ => -1,
    };
    r.dfd = -1;
    r.dfd2 = -1;
    zero(&mut r.op_flags);
    zero(&mut r.mode);
    zero(&mut r.len);
    zero(&mut r.off);
    r.path_len = LEN_UNKNOWN;
    r.path2_len = LEN_UNKNOWN;
    r.addr_len = LEN_UNKNOWN;
    let name = at(|l| &l.filename_name);
    match shape {
        SHAPE_OPEN => {
            r.dfd = read(req, at(|l| &l.open_dfd)).unwrap_or(-1);
            r.op_flags = read(req, at(|l| &l.open_how_flags)).unwrap_or(0);
            r.mode = read(req, at(|l| &l.open_how_mode)).unwrap_or(0);
            r.path_len = read_filename(req, at(|l| &l.open_filename), name, &mut r.path);
        }
        SHAPE_PATH => match opcode {
            op::UNLINKAT => {
                r.dfd = read(req, at(|l| &l.unlink_dfd)).unwrap_or(-1);
                r.op_flags = u64::from(read::<u32>(req, at(|l| &l.unlink_flags)).unwrap_or(0));
                r.path_len = read_filename(req, at(|l| &l.unlink_filename), name, &mut r.path);
            }
            op::MKDIRAT => {
                r.dfd = read(req, at(|l| &l.mkdir_dfd)).unwrap_or(-1);
                r.mode = u64::from(read::<u32>(req, at(|l| &l.mkdir_mode)).unwrap_or(0));
                r.path_len = read_filename(req, at(|l| &l.mkdir_filename), name, &mut r.path);
            }
            _ => {
                r.dfd = read(req, at(|l| &l.statx_dfd)).unwrap_or(-1);
                r.op_flags = u64::from(read::<u32>(req, at(|l| &l.statx_flags)).unwrap_or(0));
                r.path_len = if at(|l| &l.statx_user_path) != 0 {
                    // What the kernel will read at issue, from the same memory.
                    read_str(
                        read(req, at(|l| &l.statx_filename)),
                        &mut r.path,
                        Memory::User,
                    )
                } else {
                    read_filename(req, at(|l| &l.statx_filename), name, &mut r.path)
                };
            }
        },
        SHAPE_TWO_PATHS => {
            if opcode == op::RENAMEAT {
                r.dfd = read(req, at(|l| &l.rename_old_dfd)).unwrap_or(-1);
                r.dfd2 = read(req, at(|l| &l.rename_new_dfd)).unwrap_or(-1);
                r.op_flags = u64::from(read::<u32>(req, at(|l| &l.rename_flags)).unwrap_or(0));
                r.path_len = read_filename(req, at(|l| &l.rename_oldpath), name, &mut r.path);
                r.path2_len = read_filename(req, at(|l| &l.rename_newpath), name, &mut r.path2);
            } else if opcode == op::SYMLINKAT {
                // The first path is the link's text: no dirfd, no flags.
                r.dfd2 = read(req, at(|l| &l.symlink_new_dfd)).unwrap_or(-1);
                r.path_len = read_filename(req, at(|l| &l.symlink_oldpath), name, &mut r.path);
                r.path2_len = read_filename(req, at(|l| &l.symlink_newpath), name, &mut r.path2);
            } else {
                r.dfd = read(req, at(|l| &l.link_old_dfd)).unwrap_or(-1);
                r.dfd2 = read(req, at(|l| &l.link_new_dfd)).unwrap_or(-1);
                r.op_flags = u64::from(read::<u32>(req, at(|l| &l.link_flags)).unwrap_or(0));
                r.path_len = read_filename(req, at(|l| &l.link_oldpath), name, &mut r.path);
                r.path2_len = read_filename(req, at(|l| &l.link_newpath), name, &mut r.path2);
            }
        }
        SHAPE_SOCKADDR => {
            // The prep keeps the caller's pointer: read the address the way
            // the kernel did, from the submitting task's memory.
            let user: u64 = read(req, at(|l| &l.connect_addr)).unwrap_or(0);
            let len: i32 = read(req, at(|l| &l.connect_addr_len)).unwrap_or(0);
            r.addr_len = if user == 0 || len <= 0 {
                LEN_UNKNOWN
            } else {
                let size = if len as usize > SOCKADDR_COPY {
                    SOCKADDR_COPY as u32
                } else {
                    len as u32
                };
                let rc = unsafe {
                    bpf_probe_read_user(
                        r.addr.as_mut_ptr().cast(),
                        size,
                        user as *const core::ffi::c_void,
                    )
                };
                if rc < 0 { rc as i32 } else { size as i32 }
            };
        }
        SHAPE_RW => {
            r.off = read(req, at(|l| &l.rw_pos)).unwrap_or(0);
            r.len = u64::from(read::<u32>(req, at(|l| &l.rw_len)).unwrap_or(0));
        }
        SHAPE_SEND_RECV => {
            r.len = u64::from(read::<u32>(req, at(|l| &l.sr_len)).unwrap_or(0));
        }
        _ => {}
    }
    if r.path_len >= PATH_COPY as i32 {
        r.flags |= OBJ_PATH_TRUNCATED;
    }
    if r.path2_len >= PATH_COPY as i32 {
        r.flags |= OBJ_PATH2_TRUNCATED;
    }
    entry.submit();
    Some(())
}
