//! Building headers and handing records to the ring buffer.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_ktime_get_ns,
    },
};
use uringtrace_common::{RecordHeader, RecordKind, counters};

use crate::maps::{EVENTS, count};

/// The calling task's identity, split once per program run.
#[derive(Clone, Copy)]
pub struct Task {
    pub tgid: u32,
    pub tid: u32,
}

#[inline(always)]
pub fn current_task() -> Task {
    let pid_tgid = bpf_get_current_pid_tgid();
    Task {
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
    }
}

#[inline(always)]
pub fn header(kind: RecordKind, task: Task) -> RecordHeader {
    let mut header = RecordHeader::empty(kind);
    header.ts_ns = unsafe { bpf_ktime_get_ns() };
    header.pid = task.tgid;
    header.tid = task.tid;
    let uid_gid = bpf_get_current_uid_gid();
    header.uid = uid_gid as u32;
    header.gid = (uid_gid >> 32) as u32;
    header.comm = bpf_get_current_comm().unwrap_or_default();
    header
}

/// Unconsumed bytes in the ring buffer at which the consumer is woken.
/// Userspace sets it at load time (from `--buffer-size`).
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u64 = 256 << 10;

/// The flags for submitting a record of `T`, reserved just before.
///
/// The default (0) wakes the consumer whenever it had caught up, which for
/// a consumer that keeps up is nearly every record: an irq_work self-IPI in
/// the traced task and a context switch in the tracer each time, the
/// largest part of a record's cost. Instead the consumer polls on a short
/// timer, and is woken only when the unconsumed data crosses WAKEUP_BYTES,
/// so a burst is taken long before the buffer fills. Only the record that
/// crosses the mark wakes: past it, the consumer is awake already (or its
/// timer is due), and a wakeup per record would bring back the cost at the
/// worst moment.
#[inline(always)]
pub fn submit_flags<T>() -> u64 {
    // bpf_ringbuf_reserve has already counted this record (with its 8-byte
    // header, rounded up to 8) in the available data.
    let size = ((size_of::<T>() + 8 + 7) & !7) as u64;
    let avail = EVENTS.query(u64::from(BPF_RB_AVAIL_DATA));
    let mark = unsafe { core::ptr::read_volatile(&WAKEUP_BYTES) };
    if avail >= mark && avail < mark + size {
        u64::from(BPF_RB_FORCE_WAKEUP)
    } else {
        u64::from(BPF_RB_NO_WAKEUP)
    }
}

/// Copies `record` into the ring buffer; a full buffer is counted, never
/// silent.
#[inline(always)]
pub fn output<T: 'static>(record: &T) {
    match EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            unsafe { core::ptr::copy_nonoverlapping(record, entry.as_mut_ptr(), 1) };
            entry.submit(submit_flags::<T>());
        }
        None => count(counters::RINGBUF_FULL),
    }
}

/// The benchmark's RESERVE mode: a record of `T`'s size through the ring
/// buffer, with nothing read or written. It wakes the consumer the same
/// way as a real record, so that it stays the bare limit of the transport
/// the real programs use.
#[inline(always)]
pub fn reserve_only<T: 'static>() {
    match EVENTS.reserve::<T>(0) {
        Some(entry) => entry.submit(submit_flags::<T>()),
        None => count(counters::RINGBUF_FULL),
    }
}
