//! The kprobe submit path: a kprobe on each function that issues requests
//! (uringtrace_common::issue::ISSUE_HOOKS) reads the `struct io_kiocb`
//! fields of a submission at offsets userspace took from BTF and sends one
//! record per issue. A request issued again (io-wq retry, poll retry) gives
//! another record; userspace keeps the first as its submission, because
//! only userspace sees the request's CQEs and so knows when a request
//! address is reused for a new one.

use aya_ebpf::{helpers::bpf_probe_read_kernel, macros::kprobe, programs::ProbeContext};
use uringtrace_common::{
    RecordKind, counters, hook_mode,
    issue::{HOOK_IO_ISSUE_SQE, HOOK_IO_POLL_ISSUE, HOOK_IO_SUBMIT_SQE, IssueLayout, IssueRecord},
    layout::OFFSET_ABSENT,
};

use crate::{
    config,
    emit::{current_task, header, reserve},
    maps::{TRACED_RINGS, count},
    process_filter::is_traced,
    requests::io_worker_bits,
};

/// IORING_SETUP_SQPOLL (uapi).
const IORING_SETUP_SQPOLL: u32 = 1 << 1;

/// Set by userspace from this kernel's BTF before loading.
#[unsafe(no_mangle)]
static ISSUE_LAYOUT: IssueLayout = IssueLayout::OFF;

#[inline(always)]
fn at(field: impl FnOnce(&IssueLayout) -> &u32) -> u32 {
    unsafe { core::ptr::read_volatile(field(&ISSUE_LAYOUT)) }
}

#[inline(always)]
fn read<T: Copy>(base: u64, offset: u32) -> Option<T> {
    if offset == OFFSET_ABSENT || base == 0 {
        return None;
    }
    unsafe { bpf_probe_read_kernel((base + u64::from(offset)) as *const T) }.ok()
}

#[kprobe]
pub fn kprobe_io_issue_sqe(ctx: ProbeContext) -> u32 {
    let _ = issued(&ctx, HOOK_IO_ISSUE_SQE);
    0
}

#[kprobe]
pub fn kprobe_io_poll_issue(ctx: ProbeContext) -> u32 {
    let _ = issued(&ctx, HOOK_IO_POLL_ISSUE);
    0
}

#[kprobe]
pub fn kprobe_io_submit_sqe(ctx: ProbeContext) -> u32 {
    let _ = issued(&ctx, HOOK_IO_SUBMIT_SQE);
    0
}

#[inline(always)]
fn issued(ctx: &ProbeContext, hook: u8) -> Option<()> {
    if at(|l| &l.enabled) == 0 || config::hook_mode() != hook_mode::FULL {
        return None;
    }
    // A constant per program (no table lookup left for the verifier).
    let req: u64 = if hook == HOOK_IO_SUBMIT_SQE {
        ctx.arg(1)?
    } else {
        ctx.arg(0)?
    };
    let ring: u64 = read(req, at(|l| &l.req_ctx))?;
    let task = current_task();
    let mut ring_owner = 0;
    if !is_traced(task.tgid) {
        ring_owner = *unsafe { TRACED_RINGS.get(ring) }?;
    }
    let opcode: u8 = read(req, at(|l| &l.req_opcode))?;
    if config::opcode_filter_enabled() && !config::opcode_filter_keeps(opcode) {
        return None;
    }
    let req_flags = if at(|l| &l.req_flags_size) == 8 {
        read::<u64>(req, at(|l| &l.req_flags)).unwrap_or(0)
    } else {
        u64::from(read::<u32>(req, at(|l| &l.req_flags)).unwrap_or(0))
    };
    let sq_thread = match read::<u32>(ring, at(|l| &l.ctx_flags)) {
        Some(f) => u8::from(f & IORING_SETUP_SQPOLL != 0),
        None => 2,
    };
    let user_data: u64 = read(req, at(|l| &l.req_user_data)).unwrap_or(0);
    let Some(mut entry) = reserve::<IssueRecord>() else {
        count(counters::RINGBUF_FULL);
        return None;
    };
    let r = unsafe { &mut *entry.as_mut_ptr() };
    r.header = header(RecordKind::Issue, task);
    r.header.flags |= io_worker_bits(task);
    r.ring_owner = ring_owner;
    r.hook = hook;
    r.sq_thread = sq_thread;
    r.opcode = opcode;
    r._pad = 0;
    r.ring = ring;
    r.req = req;
    r.user_data = user_data;
    r.req_flags = req_flags;
    entry.submit();
    Some(())
}
