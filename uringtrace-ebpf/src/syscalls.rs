//! io_uring_setup, io_uring_enter and io_uring_register on the
//! `syscalls:sys_{enter,exit}_*` tracepoints. Entry reads the arguments (and
//! the user memory they point to, in the caller's context, as the kernel is
//! about to read it) into an in-flight slot; exit adds the result and emits
//! one record per call.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_ktime_get_ns, bpf_probe_read_user},
    macros::tracepoint,
    maps::HashMap,
    programs::TracePointContext,
};
use uringtrace_common::{
    HDR_ENTRY_MISSING_FLAG, RECORD_VERSION, RecordHeader, RecordKind, counters, hook_mode,
    summary::{SUMMARY_ONLY, SYSCALL_ENTER, SYSCALL_REGISTER, SYSCALL_SETUP},
    syscall::{
        ENTER_ARG_EXT, ENTER_ARG_EXT_REG, ENTER_ARG_SIGSET, EnterArg, EnterRecord,
        GETEVENTS_ARG_SIZE, KERNEL_SIGSET_SIZE, READ_NONE, READ_OK, READ_SIZE_MISMATCH, ReadStatus,
        RegisterRecord, SETUP_PARAMS_READ_SIZE, SetupParams, SetupRecord, SyscallResult,
    },
};

use crate::{
    config,
    emit::{Task, current_task, header, output, reserve, reserve_only, zero, zero_words_in},
    maps::{INFLIGHT_ENTER, INFLIGHT_REGISTER, INFLIGHT_SETUP, count},
    process_filter::is_traced,
    summary,
};

const IORING_ENTER_EXT_ARG: u32 = 1 << 3;
const IORING_ENTER_EXT_ARG_REG: u32 = 1 << 6;

// unknown_args_in relies on it.
const _: () = assert!(READ_NONE == 0);

/// The records that carry one call: header and result come first in each.
pub trait CallRecord: Copy + 'static {
    const KIND: RecordKind;
    /// Its slot in the summary's SYSCALL_STATS.
    const SUMMARY_INDEX: u32;
    fn prefix(&mut self) -> (&mut RecordHeader, &mut SyscallResult);
    /// A record of this kind with nothing known of the call, in `slot`, the
    /// caller's stack: every field zero (every read status READ_NONE, which
    /// is 0) but the header's version and kind. Built in place: returned
    /// by value, it would be a second copy in a stack frame the verifier
    /// caps at 512 bytes; and the header's zeroes written as a value would
    /// compile to the byte-wise memset again.
    #[inline(always)]
    fn unknown_args_in(slot: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        // SAFETY: zero_words_in made every byte 0, valid for records of plain
        // integers (#[repr(C)]).
        let record = unsafe { &mut *zero_words_in(slot.as_mut_ptr()) };
        let head = record.prefix().0;
        unsafe {
            core::ptr::write_volatile(&mut head.version, RECORD_VERSION);
            core::ptr::write_volatile(&mut head.kind, Self::KIND as u16);
        }
        record
    }
    /// Reads what the kernel wrote back through the arguments (setup only).
    fn at_exit(&mut self) {}
}

/// Where a system call's six arguments come from: the syscall tracepoint's
/// record, or (kprobe mode) the user registers the syscall wrapper got.
pub trait SyscallArgs {
    fn arg(&self, n: usize) -> Result<u64, i32>;
    /// All six at once.
    #[inline(always)]
    fn args(&self) -> Result<[u64; 6], i32> {
        Ok([
            self.arg(0)?,
            self.arg(1)?,
            self.arg(2)?,
            self.arg(3)?,
            self.arg(4)?,
            self.arg(5)?,
        ])
    }
}

/// Where the syscall tracepoints' records have had their arguments and
/// result since they exist (after the 8 common bytes and the syscall
/// number): read there with plain context loads, whose offset must be in
/// the instruction; any other offset the format file gives is read with
/// bpf_probe_read_kernel, a helper call per read.
const USUAL_ARGS_OFFSET: usize = 16;
const USUAL_RET_OFFSET: usize = 16;

/// The 8 bytes at `OFFSET` of a perf-event tracepoint record.
#[inline(always)]
fn ctx_u64<const OFFSET: usize>(ctx: &TracePointContext) -> u64 {
    unsafe { *(ctx.as_ptr().cast::<u8>().add(OFFSET) as *const u64) }
}

/// Argument `n` at USUAL_ARGS_OFFSET (a constant offset per argument).
#[inline(always)]
fn usual_arg(ctx: &TracePointContext, n: usize) -> u64 {
    match n {
        0 => ctx_u64::<{ USUAL_ARGS_OFFSET }>(ctx),
        1 => ctx_u64::<{ USUAL_ARGS_OFFSET + 8 }>(ctx),
        2 => ctx_u64::<{ USUAL_ARGS_OFFSET + 16 }>(ctx),
        3 => ctx_u64::<{ USUAL_ARGS_OFFSET + 24 }>(ctx),
        4 => ctx_u64::<{ USUAL_ARGS_OFFSET + 32 }>(ctx),
        _ => ctx_u64::<{ USUAL_ARGS_OFFSET + 40 }>(ctx),
    }
}

impl SyscallArgs for TracePointContext {
    #[inline(always)]
    fn arg(&self, n: usize) -> Result<u64, i32> {
        if config::syscall_args_offset() == USUAL_ARGS_OFFSET {
            return Ok(usual_arg(self, n));
        }
        unsafe { self.read_at::<u64>(config::syscall_args_offset() + n * 8) }
    }
    /// Elsewhere, one helper call for the six slots, which lie side by
    /// side (each bpf_probe_read_kernel costs as much as the copy).
    #[inline(always)]
    fn args(&self) -> Result<[u64; 6], i32> {
        if config::syscall_args_offset() == USUAL_ARGS_OFFSET {
            return Ok([0, 1, 2, 3, 4, 5].map(|n| usual_arg(self, n)));
        }
        unsafe { self.read_at::<[u64; 6]>(config::syscall_args_offset()) }
    }
}

#[inline(always)]
fn arg(ctx: &impl SyscallArgs, n: usize) -> Result<u64, i32> {
    ctx.arg(n)
}

#[inline(always)]
fn status<T>(read: Result<T, i32>, store: impl FnOnce(T)) -> ReadStatus {
    match read {
        Ok(value) => {
            store(value);
            READ_OK
        }
        Err(errno) => errno,
    }
}

/// The current thread's slot, which the call's record is written into in
/// place (built on the stack and copied in, it cost a copy and a memset per
/// call). A thread's slot outlives its calls: the exit marks it finished
/// (see [`finish`]) and the thread's exit removes it (process_filter). A
/// call then costs one lookup, where an insert at entry and a delete at
/// exit took a hash-map element allocation, the bucket lock and a free for
/// every call. A thread's first call inserts it. None when the table is
/// full (counted).
#[inline(always)]
fn slot_of<T: CallRecord>(inflight: &HashMap<u32, T>, task: Task) -> Option<*mut T> {
    if let Some(slot) = inflight.get_ptr_mut(task.tid) {
        return Some(slot);
    }
    let mut fresh = core::mem::MaybeUninit::uninit();
    let record: &T = T::unknown_args_in(&mut fresh);
    if inflight.insert(task.tid, record, 0).is_err() {
        count(counters::INFLIGHT_FULL);
        return None;
    }
    inflight.get_ptr_mut(task.tid)
}

/// The in-flight call of the current thread, if its entry was seen: a slot
/// whose start time is 0 is one whose call has finished.
#[inline(always)]
fn in_flight<T: CallRecord>(inflight: &HashMap<u32, T>, task: Task) -> Option<*mut T> {
    let slot = inflight.get_ptr_mut(task.tid)?;
    (unsafe { (*slot).prefix().0.ts_ns } != 0).then_some(slot)
}

/// The calling thread, when its entry to a call is to be recorded: full
/// tracing, a traced process, and more than summary mode's start time.
#[inline(always)]
fn entering<T: CallRecord>(inflight: &HashMap<u32, T>) -> Option<Task> {
    if config::hook_mode() != hook_mode::FULL {
        return None;
    }
    let task = current_task();
    if !is_traced(task.tgid) || begin_timed_only(inflight, task) {
        return None;
    }
    Some(task)
}

/// The calling thread's slot with the call's header and an empty result
/// written in it. The rest still holds the thread's previous call: every
/// other field is the caller's to write.
#[inline(always)]
fn started<T: CallRecord>(inflight: &HashMap<u32, T>, task: Task) -> Option<&'static mut T> {
    let slot = slot_of(inflight, task)?;
    // Only this thread uses its slot.
    let record = unsafe { &mut *slot };
    let (head, result) = record.prefix();
    *head = header(T::KIND, task);
    zero(&mut result.ret);
    zero(&mut result.duration_ns);
    Some(record)
}

/// Summary mode without events (`-c`) only counts the call and its
/// duration: the entry keeps its start time and reads nothing else (no
/// arguments, user memory, name or ids). True when it did so.
#[inline(always)]
fn begin_timed_only<T: CallRecord>(inflight: &HashMap<u32, T>, task: Task) -> bool {
    if config::summary_mode() != SUMMARY_ONLY {
        return false;
    }
    // The thread's slot only gets the new start time.
    if let Some(slot) = slot_of(inflight, task) {
        unsafe { (*slot).prefix().0.ts_ns = bpf_ktime_get_ns() };
    }
    true
}

/// The result of a syscall exit tracepoint.
#[inline(always)]
fn tracepoint_ret(ctx: &TracePointContext) -> Result<i64, i32> {
    if config::syscall_ret_offset() == USUAL_RET_OFFSET {
        return Ok(ctx_u64::<{ USUAL_RET_OFFSET }>(ctx) as i64);
    }
    unsafe { ctx.read_at(config::syscall_ret_offset()) }
}

#[inline(always)]
pub fn finish<T: CallRecord>(ret: Result<i64, i32>, inflight: &HashMap<u32, T>) -> Result<(), i32> {
    let ret = ret?;
    match config::hook_mode() {
        hook_mode::FULL => {}
        mode @ (hook_mode::RESERVE | hook_mode::RESERVE_CLOCK) => {
            reserve_only::<T>(mode == hook_mode::RESERVE_CLOCK);
            return Ok(());
        }
        _ => return Ok(()),
    }
    let task = current_task();
    let now = unsafe { bpf_ktime_get_ns() };
    match in_flight(inflight, task) {
        Some(slot) => {
            let record = unsafe { &mut *slot };
            let (header, result) = record.prefix();
            result.ret = ret;
            result.duration_ns = now.saturating_sub(header.ts_ns);
            if summary::enabled() {
                summary::call_finished(T::SUMMARY_INDEX, ret, true, result.duration_ns);
            }
            if config::summary_mode() != SUMMARY_ONLY {
                record.at_exit();
                output(record);
            }
            // Finished; the slot stays for the thread's next call.
            record.prefix().0.ts_ns = 0;
        }
        None => {
            if !is_traced(task.tgid) {
                return Ok(());
            }
            count(counters::EXIT_WITHOUT_ENTRY);
            if summary::enabled() {
                summary::call_finished(T::SUMMARY_INDEX, ret, false, 0);
            }
            if config::summary_mode() == SUMMARY_ONLY {
                return Ok(());
            }
            // Written in place: a record built on the stack and copied
            // becomes a byte-wise memset of the ring-buffer entry.
            let Some(mut entry) = reserve::<T>() else {
                count(counters::RINGBUF_FULL);
                return Ok(());
            };
            let record = unsafe { &mut *zero_words_in(entry.as_mut_ptr()) };
            let (head, result) = record.prefix();
            *head = header(T::KIND, task);
            head.flags |= HDR_ENTRY_MISSING_FLAG;
            result.ret = ret;
            entry.submit();
        }
    }
    Ok(())
}

// ---- io_uring_enter -------------------------------------------------------

impl CallRecord for EnterRecord {
    const KIND: RecordKind = RecordKind::Enter;
    const SUMMARY_INDEX: u32 = SYSCALL_ENTER;
    fn prefix(&mut self) -> (&mut RecordHeader, &mut SyscallResult) {
        (&mut self.header, &mut self.result)
    }
}

#[tracepoint(category = "syscalls", name = "sys_enter_io_uring_enter")]
pub fn sys_enter_io_uring_enter(ctx: TracePointContext) -> u32 {
    let _ = try_enter_io_uring_enter(&ctx);
    0
}

pub fn try_enter_io_uring_enter(ctx: &impl SyscallArgs) -> Result<(), i32> {
    let Some(task) = entering(&INFLIGHT_ENTER) else {
        return Ok(());
    };
    let [fd, to_submit, min_complete, flags, argp, argsz] = ctx.args()?;
    let flags = flags as u32;
    let Some(record) = started(&INFLIGHT_ENTER, task) else {
        return Ok(());
    };
    record.fd = fd as u32;
    record.to_submit = to_submit as u32;
    record.min_complete = min_complete as u32;
    record.flags = flags;
    record.argp = argp;
    record.argsz = argsz;
    record.arg = read_enter_arg(flags, argp, argsz);
    Ok(())
}

/// `struct io_uring_getevents_arg` (include/uapi/linux/io_uring.h).
#[repr(C)]
#[derive(Clone, Copy)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `struct __kernel_timespec`.
#[repr(C)]
#[derive(Clone, Copy)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// Reads the last two arguments the way the kernel will: a sigset without
/// EXT_ARG, a getevents_arg (and what it points to) with it, nothing with
/// EXT_ARG_REG (the argument is an offset into a registered region).
#[inline(always)]
fn read_enter_arg(flags: u32, argp: u64, argsz: u64) -> EnterArg {
    let mut arg = EnterArg::default();
    if flags & IORING_ENTER_EXT_ARG_REG != 0 {
        arg.arg_kind = ENTER_ARG_EXT_REG;
        return arg;
    }
    if flags & IORING_ENTER_EXT_ARG == 0 {
        arg.arg_kind = ENTER_ARG_SIGSET;
        arg.arg_status = if argp == 0 {
            READ_NONE
        } else if argsz != KERNEL_SIGSET_SIZE {
            READ_SIZE_MISMATCH
        } else {
            status(unsafe { bpf_probe_read_user(argp as *const u64) }, |mask| {
                arg.sigmask = mask
            })
        };
        return arg;
    }
    arg.arg_kind = ENTER_ARG_EXT;
    if argp == 0 {
        arg.arg_status = READ_NONE;
        return arg;
    }
    if argsz != GETEVENTS_ARG_SIZE {
        arg.arg_status = READ_SIZE_MISMATCH;
        return arg;
    }
    let ext = match unsafe { bpf_probe_read_user(argp as *const GeteventsArg) } {
        Ok(ext) => ext,
        Err(errno) => {
            arg.arg_status = errno;
            return arg;
        }
    };
    arg.arg_status = READ_OK;
    arg.sigmask_ptr = ext.sigmask;
    arg.sigmask_sz = ext.sigmask_sz;
    arg.min_wait_usec = ext.min_wait_usec;
    arg.ts_ptr = ext.ts;
    if ext.sigmask != 0 {
        arg.sigmask_status = if u64::from(ext.sigmask_sz) != KERNEL_SIGSET_SIZE {
            READ_SIZE_MISMATCH
        } else {
            status(
                unsafe { bpf_probe_read_user(ext.sigmask as *const u64) },
                |mask| arg.sigmask = mask,
            )
        };
    }
    if ext.ts != 0 {
        arg.ts_status = status(
            unsafe { bpf_probe_read_user(ext.ts as *const KernelTimespec) },
            |ts| {
                arg.ts_sec = ts.tv_sec;
                arg.ts_nsec = ts.tv_nsec;
            },
        );
    }
    arg
}

#[tracepoint(category = "syscalls", name = "sys_exit_io_uring_enter")]
pub fn sys_exit_io_uring_enter(ctx: TracePointContext) -> u32 {
    let _ = finish(tracepoint_ret(&ctx), &INFLIGHT_ENTER);
    0
}

// ---- io_uring_register ----------------------------------------------------

impl CallRecord for RegisterRecord {
    const KIND: RecordKind = RecordKind::Register;
    const SUMMARY_INDEX: u32 = SYSCALL_REGISTER;
    fn prefix(&mut self) -> (&mut RecordHeader, &mut SyscallResult) {
        (&mut self.header, &mut self.result)
    }
}

#[tracepoint(category = "syscalls", name = "sys_enter_io_uring_register")]
pub fn sys_enter_io_uring_register(ctx: TracePointContext) -> u32 {
    let _ = try_enter_io_uring_register(&ctx);
    0
}

pub fn try_enter_io_uring_register(ctx: &impl SyscallArgs) -> Result<(), i32> {
    let Some(task) = entering(&INFLIGHT_REGISTER) else {
        return Ok(());
    };
    let [fd, opcode, arg, nr_args, ..] = ctx.args()?;
    let Some(record) = started(&INFLIGHT_REGISTER, task) else {
        return Ok(());
    };
    record.fd = fd as u32;
    record.opcode = opcode as u32;
    record.arg = arg;
    record.nr_args = nr_args as u32;
    zero(&mut record._pad);
    Ok(())
}

#[tracepoint(category = "syscalls", name = "sys_exit_io_uring_register")]
pub fn sys_exit_io_uring_register(ctx: TracePointContext) -> u32 {
    let _ = finish(tracepoint_ret(&ctx), &INFLIGHT_REGISTER);
    0
}

// ---- io_uring_setup -------------------------------------------------------

impl CallRecord for SetupRecord {
    const KIND: RecordKind = RecordKind::Setup;
    const SUMMARY_INDEX: u32 = SYSCALL_SETUP;
    fn prefix(&mut self) -> (&mut RecordHeader, &mut SyscallResult) {
        (&mut self.header, &mut self.result)
    }
    fn at_exit(&mut self) {
        // Only a successful setup writes the params back.
        if self.params_ptr != 0 && self.result.ret >= 0 {
            self.params_out_status = read_params(self.params_ptr, &mut self.params_out);
        }
    }
}

/// The leading words of `struct io_uring_params`, in order.
#[repr(C)]
#[derive(Clone, Copy)]
struct ParamsHead([u32; SETUP_PARAMS_READ_SIZE / 4]);

#[inline(always)]
fn read_params(ptr: u64, out: &mut SetupParams) -> ReadStatus {
    status(
        unsafe { bpf_probe_read_user(ptr as *const ParamsHead) },
        |ParamsHead(words)| {
            *out = SetupParams {
                sq_entries: words[0],
                cq_entries: words[1],
                flags: words[2],
                sq_thread_cpu: words[3],
                sq_thread_idle: words[4],
                features: words[5],
                wq_fd: words[6],
                _pad: 0,
            };
        },
    )
}

#[tracepoint(category = "syscalls", name = "sys_enter_io_uring_setup")]
pub fn sys_enter_io_uring_setup(ctx: TracePointContext) -> u32 {
    let _ = try_enter_io_uring_setup(&ctx);
    0
}

pub fn try_enter_io_uring_setup(ctx: &impl SyscallArgs) -> Result<(), i32> {
    let Some(task) = entering(&INFLIGHT_SETUP) else {
        return Ok(());
    };
    let entries = arg(ctx, 0)? as u32;
    let params_ptr = arg(ctx, 1)?;
    let Some(record) = started(&INFLIGHT_SETUP, task) else {
        return Ok(());
    };
    record.entries = entries;
    record.params_ptr = params_ptr;
    // Unread params stay zero (and their status READ_NONE, 0), as in a
    // new slot; a failed read leaves them so too.
    zero_words_in(&mut record.params_in);
    zero_words_in(&mut record.params_out);
    zero(&mut record.params_out_status);
    zero(&mut record._pad);
    record.params_status = if params_ptr == 0 {
        READ_NONE
    } else {
        read_params(params_ptr, &mut record.params_in)
    };
    Ok(())
}

#[tracepoint(category = "syscalls", name = "sys_exit_io_uring_setup")]
pub fn sys_exit_io_uring_setup(ctx: TracePointContext) -> u32 {
    let _ = finish(tracepoint_ret(&ctx), &INFLIGHT_SETUP);
    0
}
