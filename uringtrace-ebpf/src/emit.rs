//! Building headers and handing records to the ring buffer.

use core::mem::MaybeUninit;

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_get_current_uid_gid,
        bpf_ktime_get_ns, bpf_ringbuf_discard, bpf_ringbuf_reserve, bpf_ringbuf_submit,
    },
};
use uringtrace_common::{
    COMM_LEN, RECORD_VERSION, RecordHeader, RecordKind, counters, layout::OFFSET_ABSENT,
};

use crate::{
    config::{self, task_offset as at},
    maps::{EVENTS, count},
};

/// Zeroes a field with a store of its own. LLVM turns a run of plain zero
/// stores into a call to memset, which for BPF is a byte-at-a-time loop:
/// dozens of iterations at run time, each walked again by the verifier on
/// every path that reaches it (most of a program's load time). Volatile
/// stores are kept as written.
#[inline(always)]
pub fn zero<T: Default>(place: &mut T) {
    unsafe { core::ptr::write_volatile(place, T::default()) };
}

/// Zeroes the `T` at `at` a word at a time, for the same reason as
/// [`zero`] (`mem::zeroed` and `[0; N]` compile to the byte-wise memset);
/// in place, because a value returned is copied (by memset again). `T`'s
/// size must be a multiple of 8, and `at` 8-aligned and valid for a `T`.
#[inline(always)]
pub fn zero_words_in<T>(at: *mut T) -> *mut T {
    const { assert!(size_of::<T>().is_multiple_of(8)) };
    let words = at.cast::<u64>();
    for i in 0..size_of::<T>() / 8 {
        unsafe { words.add(i).write_volatile(0) };
    }
    at
}

/// The calling task's identity, split once per program run.
#[derive(Clone, Copy)]
pub struct Task {
    pub tgid: u32,
    pub tid: u32,
    /// `current` as a BTF-typed pointer when TASK_LAYOUT is enabled (the
    /// header's other fields are then loaded from it), else 0.
    pub ptr: u64,
}

/// A member of the object at `base`, read through its BTF-typed pointer:
/// a plain load at an offset the verifier knows (a frozen global), which
/// it turns into a fault-safe one.
#[inline(always)]
pub fn load<T: Copy + Default>(base: u64, offset: u32) -> T {
    if offset == OFFSET_ABSENT || base == 0 {
        return T::default();
    }
    unsafe { ((base + u64::from(offset)) as *const T).read() }
}

#[inline(always)]
pub fn current_task() -> Task {
    if at(|l| &l.enabled) != 0 {
        let ptr = unsafe { bpf_get_current_task_btf() } as u64;
        return Task {
            tgid: load(ptr, at(|l| &l.tgid)),
            tid: load(ptr, at(|l| &l.pid)),
            ptr,
        };
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    Task {
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        ptr: 0,
    }
}

/// `task_struct.flags` of the current task, or None where its offset is
/// unknown (before 5.12, or no BTF) or the read failed.
#[inline(always)]
pub fn task_flags(task: Task) -> Option<u32> {
    let offset = config::task_flags_offset();
    if offset == OFFSET_ABSENT {
        return None;
    }
    if task.ptr != 0 {
        return Some(load(task.ptr, offset));
    }
    let current = unsafe { aya_ebpf::helpers::bpf_get_current_task() };
    if current == 0 {
        return None;
    }
    unsafe { aya_ebpf::helpers::bpf_probe_read_kernel((current + u64::from(offset)) as *const u32) }
        .ok()
}

/// Built whole, every field from its source: built from
/// `RecordHeader::empty` and then assigned, its zeroed `comm` (a byte
/// array) was a call to the byte-wise memset in every program.
#[inline(always)]
pub fn header(kind: RecordKind, task: Task) -> RecordHeader {
    let ts_ns = unsafe { bpf_ktime_get_ns() };
    let (uid, gid, comm) = if task.ptr != 0 {
        let cred: u64 = load(task.ptr, at(|l| &l.cred));
        // Two 8-byte loads: the verifier allows a load anywhere inside the
        // char array, and the kernel pads comm with NULs (older kernels
        // leave old bytes past the NUL, which userspace stops at).
        let comm = at(|l| &l.comm);
        let words: [u64; COMM_LEN / 8] = [load(task.ptr, comm), load(task.ptr, comm + 8)];
        (
            load(cred, at(|l| &l.cred_uid)),
            load(cred, at(|l| &l.cred_gid)),
            unsafe { core::mem::transmute::<[u64; COMM_LEN / 8], [u8; COMM_LEN]>(words) },
        )
    } else {
        let uid_gid = bpf_get_current_uid_gid();
        (uid_gid as u32, (uid_gid >> 32) as u32, current_comm())
    };
    RecordHeader {
        version: RECORD_VERSION,
        kind: kind as u16,
        flags: 0,
        ts_ns,
        pid: task.tgid,
        tid: task.tid,
        uid,
        gid,
        comm,
    }
}

/// The task's command name by the helper, into a buffer zeroed a word at
/// a time: aya's `bpf_get_current_comm()` zeroes a byte array, which LLVM
/// makes a call to the byte-wise memset, and on 6.1 that call's frame
/// (counted as 32 bytes however empty) took the submit program's
/// combined stack to 544 > 512: the verifier refused it, though neither
/// the headers' helper branch nor the `--comm` filter runs there.
#[inline(always)]
pub fn current_comm() -> [u8; COMM_LEN] {
    unsafe { core::mem::transmute::<[u64; COMM_LEN / 8], [u8; COMM_LEN]>(current_comm_words()) }
}

/// [`current_comm`] as words, to compare a word at a time.
#[inline(always)]
pub fn current_comm_words() -> [u64; COMM_LEN / 8] {
    let mut words = MaybeUninit::<[u64; COMM_LEN / 8]>::uninit();
    let at = zero_words_in(words.as_mut_ptr());
    // On failure the helper zeroes the buffer itself.
    unsafe {
        aya_ebpf::helpers::generated::bpf_get_current_comm(at.cast(), COMM_LEN as u32);
        words.assume_init()
    }
}

/// Unconsumed bytes in the ring buffer at which the consumer is woken.
/// Userspace sets it at load time (from `--buffer-size`).
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u64 = 256 << 10;

/// Bytes reserved for a record of `T`: with the ring buffer's own 8-byte
/// header, a whole number of 64-byte cache lines. Records of unpadded
/// sizes (an enter record is 168 bytes with its header) left every record
/// after them straddling lines: a 128-byte request record touched three
/// lines instead of two, and the line it shared with the next record was
/// written by the traced task's CPU while the tracer's CPU read the other
/// half (false sharing between producer and consumer). The padding is
/// never written: userspace reads each record's own size and ignores it.
pub const fn reserved_len<T>() -> usize {
    (size_of::<T>() + 8).next_multiple_of(64) - 8
}

/// A record of `T` reserved in the ring buffer ([`reserved_len`] bytes),
/// to be written in place and then submitted or discarded. Held as a
/// `MaybeUninit<T>` reference, as aya's own entry: the alignment it tells
/// LLVM keeps copies into the record in 8-byte moves (through a `u8`
/// slice they became byte moves, and reading a spilled register a byte at
/// a time is refused by the verifier).
pub struct Entry<T: 'static> {
    record: &'static mut MaybeUninit<T>,
}

impl<T> Entry<T> {
    #[inline(always)]
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.record.as_mut_ptr()
    }

    #[inline(always)]
    pub fn submit(self) {
        let flags = submit_flags::<T>();
        unsafe { bpf_ringbuf_submit(self.record.as_mut_ptr().cast(), flags) };
    }

    #[inline(always)]
    pub fn discard(self) {
        unsafe { bpf_ringbuf_discard(self.record.as_mut_ptr().cast(), 0) };
    }
}

/// Reserves a record of `T`; `None` when the ring buffer is full (the
/// caller counts it).
#[inline(always)]
pub fn reserve<T: 'static>() -> Option<Entry<T>> {
    // The ring buffer's data is 8-byte aligned.
    const { assert!(align_of::<T>() <= 8) };
    // As aya's `RingBuf::reserve`, with our size: the map is the
    // `RingBuf`'s (transparent) definition.
    let map = core::ptr::from_ref(&EVENTS).cast_mut().cast();
    let ptr = unsafe { bpf_ringbuf_reserve(map, reserved_len::<T>() as u64, 0) };
    let record = unsafe { ptr.cast::<MaybeUninit<T>>().as_mut() }?;
    Some(Entry { record })
}

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
fn submit_flags<T>() -> u64 {
    // bpf_ringbuf_reserve has already counted this record (with its 8-byte
    // header) in the available data.
    let size = (reserved_len::<T>() + 8) as u64;
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
    match reserve::<T>() {
        Some(mut entry) => {
            unsafe { core::ptr::copy_nonoverlapping(record, entry.as_mut_ptr(), 1) };
            entry.submit();
        }
        None => count(counters::RINGBUF_FULL),
    }
}

/// The benchmark's RESERVE modes: a record of `T`'s size through the ring
/// buffer, with nothing read or written, or (`stamped`, RESERVE_CLOCK)
/// only the header's time, read from the clock every real header reads.
/// It wakes the consumer the same way as a real record, so that it stays
/// the bare limit of the transport the real programs use. Every record
/// starts with its header.
#[inline(always)]
pub fn reserve_only<T: 'static>(stamped: bool) {
    const { assert!(size_of::<T>() >= size_of::<RecordHeader>()) };
    match reserve::<T>() {
        Some(mut entry) => {
            if stamped {
                let head = entry.as_mut_ptr().cast::<RecordHeader>();
                unsafe { (*head).ts_ns = bpf_ktime_get_ns() };
            }
            entry.submit()
        }
        None => count(counters::RINGBUF_FULL),
    }
}
