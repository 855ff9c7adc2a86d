//! The `io_uring:*` tracepoints: every request from submission to
//! completion. Each program copies the tracepoint's record as the kernel
//! wrote it (userspace decodes it with this kernel's format file) after two
//! cheap in-kernel filters: the process (or the ring's owner) and `--ops`.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel_buf},
    macros::tracepoint,
    programs::TracePointContext,
};
use uringtrace_common::{
    HDR_IO_WORKER, HDR_TASK_FLAGS_READ, PF_IO_WORKER, counters,
    filter::FILTER_ALL,
    hook_mode,
    layout::OFFSET_ABSENT,
    request::{
        RAW_LARGE, RAW_SMALL, REQUEST_TRACEPOINTS, TP_COMPLETE, TP_CQE_OVERFLOW, TP_REQ_FAILED,
        TP_SUBMIT, TracepointRecord,
    },
    summary::SUMMARY_ONLY,
};

use crate::{
    config,
    emit::{Task, current_task, header, reserve, reserve_only, task_flags},
    maps::{TRACED_RINGS, count},
    process_filter::is_traced,
    summary,
};

/// Index of `io_uring_create` in REQUEST_TRACEPOINTS.
pub(crate) const CREATE: usize = 0;

/// HDR_* bits saying whether the current task is one of io_uring's own
/// threads. Read here, in the kernel, because the thread's name is no
/// proof: any thread can call itself `iou-wrk-1`, but only the kernel sets
/// PF_IO_WORKER.
#[inline(always)]
pub(crate) fn io_worker_bits(task: Task) -> u32 {
    match task_flags(task) {
        Some(flags) if flags & PF_IO_WORKER != 0 => HDR_TASK_FLAGS_READ | HDR_IO_WORKER,
        Some(_) => HDR_TASK_FLAGS_READ,
        None => 0,
    }
}

/// A tracepoint record to filter and emit: the kernel's own (perf-event
/// tracepoint programs) or the same bytes rebuilt by a tp_btf program
/// (`requests_btf`). Offsets are the format file's; `OFFSET_ABSENT` reads
/// as `None`.
pub(crate) trait RawRecord {
    fn u8_at(&self, offset: u32) -> Option<u8>;
    fn u32_at(&self, offset: u32) -> Option<u32>;
    fn u64_at(&self, offset: u32) -> Option<u64>;
    /// Copies the record's first `N` bytes into `dst`.
    fn copy_into<const N: usize>(&self, dst: &mut [u8; N]) -> bool;
}

impl RawRecord for TracePointContext {
    #[inline(always)]
    fn u8_at(&self, offset: u32) -> Option<u8> {
        read_ctx(self, offset)
    }
    #[inline(always)]
    fn u32_at(&self, offset: u32) -> Option<u32> {
        read_ctx(self, offset)
    }
    #[inline(always)]
    fn u64_at(&self, offset: u32) -> Option<u64> {
        read_ctx(self, offset)
    }
    #[inline(always)]
    fn copy_into<const N: usize>(&self, dst: &mut [u8; N]) -> bool {
        unsafe { bpf_probe_read_kernel_buf(self.as_ptr() as *const u8, dst) }.is_ok()
    }
}

#[inline(always)]
fn read_ctx<T>(ctx: &TracePointContext, offset: u32) -> Option<T> {
    if offset == OFFSET_ABSENT {
        return None;
    }
    unsafe { ctx.read_at(offset as usize) }.ok()
}

#[inline(always)]
pub(crate) fn emit<R: RawRecord, const N: usize>(ctx: &R, tp: usize) -> Result<(), i32> {
    match config::hook_mode() {
        hook_mode::FULL => {}
        mode @ (hook_mode::RESERVE | hook_mode::RESERVE_CLOCK) => {
            reserve_only::<TracepointRecord<N>>(mode == hook_mode::RESERVE_CLOCK);
            return Ok(());
        }
        _ => return Ok(()),
    }
    let task = current_task();
    let mut ring_owner = 0;
    if !is_traced(task.tgid) {
        // Not the traced process: still traced when the ring is one of its
        // own and this is a kernel thread working for it.
        let Some(ring) = ctx.u64_at(config::ring_offset(tp)) else {
            return Ok(());
        };
        match unsafe { TRACED_RINGS.get(ring) } {
            Some(owner) => ring_owner = *owner,
            None => return Ok(()),
        }
    }
    if ctx.u32_at(config::nonzero_offset(tp)) == Some(0) {
        return Ok(());
    }
    if config::opcode_filter_enabled()
        && let Some(opcode) = ctx.u8_at(config::opcode_offset(tp))
        && !config::opcode_filter_keeps(opcode)
    {
        return Ok(());
    }
    if summary::enabled() {
        let now = unsafe { bpf_ktime_get_ns() };
        match tp {
            TP_SUBMIT | TP_REQ_FAILED => summary::request_submitted(ctx, tp, now),
            TP_COMPLETE => summary::request_completed(ctx, tp, now),
            TP_CQE_OVERFLOW => summary::cqe_overflowed(),
            _ => {}
        }
        if config::summary_mode() == SUMMARY_ONLY {
            return Ok(());
        }
    }
    let Some(mut entry) = reserve::<TracepointRecord<N>>() else {
        count(counters::RINGBUF_FULL);
        return Ok(());
    };
    let record = entry.as_mut_ptr();
    unsafe {
        // Whole, with its flags: or-ing them in afterwards read the header
        // back from the ring buffer's memory.
        let mut head = header(REQUEST_TRACEPOINTS[tp].kind, task);
        head.flags = io_worker_bits(task);
        (*record).header = head;
        (*record).ring_owner = ring_owner;
        (*record)._pad = 0;
        if !ctx.copy_into(&mut (*record).raw) {
            entry.discard();
            count(counters::TRACEPOINT_READ_FAILED);
            return Ok(());
        }
    }
    entry.submit();
    Ok(())
}

/// io_uring_create also keeps the ring-to-owner table of the process filter
/// up to date: a traced process's new ring is remembered, and a ring address
/// reused by an untraced process is forgotten.
#[tracepoint(category = "io_uring", name = "io_uring_create")]
pub fn io_uring_create(ctx: TracePointContext) -> u32 {
    let _ = try_create(&ctx);
    0
}

pub(crate) fn try_create<R: RawRecord>(ctx: &R) -> Result<(), i32> {
    if config::filter_mode() != FILTER_ALL
        && let Some(ring) = ctx.u64_at(config::ring_offset(CREATE))
    {
        let task = current_task();
        if is_traced(task.tgid) {
            if TRACED_RINGS.insert(ring, task.tgid, 0).is_err() {
                count(counters::RINGS_FULL);
            }
        } else {
            let _ = TRACED_RINGS.remove(ring);
        }
    }
    emit::<_, RAW_SMALL>(ctx, CREATE)
}

macro_rules! request_program {
    ($($name:ident $index:literal $len:ident;)+) => {$(
        #[tracepoint]
        pub fn $name(ctx: TracePointContext) -> u32 {
            let _ = emit::<_, $len>(&ctx, $index);
            0
        }
    )+};
}

// Indexes as in uringtrace_common::request::REQUEST_TRACEPOINTS (checked
// below); the submit program attaches to io_uring_submit_req or, before 6.3,
// io_uring_submit_sqe.
request_program! {
    io_uring_register 1 RAW_SMALL;
    io_uring_submit 2 RAW_SMALL;
    io_uring_complete 3 RAW_SMALL;
    io_uring_req_failed 4 RAW_LARGE;
    io_uring_cqe_overflow 5 RAW_SMALL;
    io_uring_queue_async_work 6 RAW_SMALL;
    io_uring_poll_arm 7 RAW_SMALL;
    io_uring_task_add 8 RAW_SMALL;
    io_uring_defer 9 RAW_SMALL;
    io_uring_link 10 RAW_SMALL;
    io_uring_fail_link 11 RAW_SMALL;
    io_uring_cqring_wait 12 RAW_SMALL;
    io_uring_task_work_run 13 RAW_SMALL;
    io_uring_local_work_run 14 RAW_SMALL;
    io_uring_short_write 15 RAW_SMALL;
    io_uring_file_get 16 RAW_SMALL;
}

const _: () = {
    assert!(REQUEST_TRACEPOINTS[4].raw_len == RAW_LARGE);
    let mut i = 0;
    while i < REQUEST_TRACEPOINTS.len() {
        assert!(i == 4 || REQUEST_TRACEPOINTS[i].raw_len == RAW_SMALL);
        i += 1;
    }
};
