//! Building headers and handing records to the ring buffer.

use aya_ebpf::helpers::{
    bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_ktime_get_ns,
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

/// Copies `record` into the ring buffer; a full buffer is counted, never
/// silent.
#[inline(always)]
pub fn output<T: 'static>(record: &T) {
    match EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            unsafe { core::ptr::copy_nonoverlapping(record, entry.as_mut_ptr(), 1) };
            entry.submit(0);
        }
        None => count(counters::RINGBUF_FULL),
    }
}

/// The benchmark's RESERVE mode: a record of `T`'s size through the ring
/// buffer, with nothing read or written.
#[inline(always)]
pub fn reserve_only<T: 'static>() {
    match EVENTS.reserve::<T>(0) {
        Some(entry) => entry.submit(0),
        None => count(counters::RINGBUF_FULL),
    }
}
