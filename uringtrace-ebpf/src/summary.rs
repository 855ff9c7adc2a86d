//! Summary mode: counts, errors and latency histograms kept in per-CPU maps
//! (no record per event). Requests are joined in the kernel: the
//! submission's time and opcode wait in REQUEST_STARTS for its CQE.

use uringtrace_common::{
    counters,
    summary::{
        CallStats, ERRNO_OPCODE, ERRNO_SYSCALL, OP_UNMATCHED, RequestKey, RequestStart,
        SUMMARY_OFF, bucket, errno_key,
    },
};

use crate::{
    config,
    maps::{ERRNO_COUNTS, OP_STATS, REQUEST_STARTS, SYSCALL_STATS, count},
    requests::RawRecord,
};

/// IORING_CQE_F_MORE: not the request's last CQE.
const CQE_F_MORE: u32 = 1 << 1;

#[inline(always)]
pub fn enabled() -> bool {
    config::summary_mode() != SUMMARY_OFF
}

/// Adds one call or CQE; `duration_ns` only counts when `timed`.
///
/// Not an `Option<u64>`: LLVM leaves the payload of a `None` undefined and
/// may store whatever register held it, which the verifier rejects as a
/// read of an uninitialized register.
#[inline(always)]
fn add(stats: *mut CallStats, failed: bool, timed: bool, duration_ns: u64) {
    // Per-CPU slot: no other writer can race with this one.
    let s = unsafe { &mut *stats };
    s.count += 1;
    if failed {
        s.errors += 1;
    }
    if timed {
        s.total_ns += duration_ns;
        s.timed += 1;
        let b = bucket(duration_ns);
        if let Some(slot) = s.hist.get_mut(b) {
            *slot += 1;
        }
    }
}

#[inline(always)]
fn count_errno(source: u32, index: u32, errno: u32) {
    let key = errno_key(source, index, errno);
    match ERRNO_COUNTS.get_ptr_mut(key) {
        Some(n) => unsafe { *n += 1 },
        None => {
            let _ = ERRNO_COUNTS.insert(key, 1, 0);
        }
    }
}

/// A system call's exit: `index` is a SYSCALL_* index; `duration_ns`
/// counts only when `timed` (the entry was seen).
#[inline(always)]
pub fn call_finished(index: u32, ret: i64, timed: bool, duration_ns: u64) {
    let Some(stats) = SYSCALL_STATS.get_ptr_mut(index) else {
        return;
    };
    let failed = (-4095..0).contains(&ret);
    add(stats, failed, timed, duration_ns);
    if failed {
        count_errno(ERRNO_SYSCALL, index, (-ret) as u32);
    }
}

/// The key of the request an event is about: its pointer, or its
/// user_data on kernels without one.
#[inline(always)]
fn key(ctx: &impl RawRecord, tp: usize) -> Option<RequestKey> {
    let ring = ctx.u64_at(config::ring_offset(tp))?;
    let req = match ctx.u64_at(config::req_offset(tp)) {
        Some(req) => req,
        None => ctx.u64_at(config::user_data_offset(tp))?,
    };
    Some(RequestKey { ring, req })
}

/// submit, or an SQE rejected at submission (its CQE follows).
#[inline(always)]
pub fn request_submitted(ctx: &impl RawRecord, tp: usize, now: u64) {
    let Some(opcode) = ctx.u32_at(config::opcode_offset(tp)) else {
        return;
    };
    let opcode = opcode & 0xff;
    if let Some(stats) = OP_STATS.get_ptr_mut(opcode) {
        unsafe { (*stats).submitted += 1 };
    }
    let Some(key) = key(ctx, tp) else {
        return;
    };
    let start = RequestStart {
        ts_ns: now,
        opcode,
        _pad: 0,
    };
    if let Some(slot) = REQUEST_STARTS.get_ptr_mut(key) {
        // A reused request (see REQUEST_STARTS).
        unsafe { *slot = start };
        return;
    }
    if REQUEST_STARTS.insert(key, start, 0).is_err() {
        count(counters::SUMMARY_TABLE_FULL);
    }
}

/// A CQE: joined to its submission by request pointer (multishot's extra
/// CQEs have none and count as unmatched, without latency).
#[inline(always)]
pub fn request_completed(ctx: &impl RawRecord, tp: usize, now: u64) {
    let res = ctx.u32_at(config::res_offset(tp)).unwrap_or(0) as i32;
    let cflags = ctx.u32_at(config::cflags_offset(tp)).unwrap_or(0);
    let key = key(ctx, tp).filter(|k| k.req != 0);
    // An entry with no start time is a finished request's.
    let slot = key
        .and_then(|k| REQUEST_STARTS.get_ptr_mut(k))
        .filter(|s| unsafe { (**s).ts_ns } != 0);
    let (index, timed, latency) = match slot {
        Some(s) => {
            let s = unsafe { &*s };
            (s.opcode, true, now.saturating_sub(s.ts_ns))
        }
        // With --ops, a missing submission was filtered out, not lost.
        None if config::opcode_filter_enabled() => return,
        None => (OP_UNMATCHED, false, 0),
    };
    if let Some(stats) = OP_STATS.get_ptr_mut(index) {
        add(stats, res < 0, timed, latency);
    }
    if res < 0 {
        count_errno(ERRNO_OPCODE, index, res.unsigned_abs());
    }
    if cflags & CQE_F_MORE == 0
        && let Some(s) = slot
    {
        // Finished: left for the LRU or the request's next use.
        unsafe { (*s).ts_ns = 0 };
    }
}

/// An overflowed CQE: counted; its request stays in the table until the
/// kernel reuses the request (the table is bounded).
#[inline(always)]
pub fn cqe_overflowed() {
    count(counters::SUMMARY_CQE_OVERFLOW);
}
