//! The system calls on the raw `sys_enter`/`sys_exit` tracepoints, which
//! fire for every call and pass the user registers: the default hook.
//!
//! Why not the `syscalls:sys_{enter,exit}_io_uring_*` tracepoints: the
//! kernel runs a perf tracepoint's program only when no other tracing
//! program runs on that CPU (one per-CPU `bpf_prog_active`), and a task
//! preempted while holding it — any `bpf()` map lookup or update holds it,
//! preemptibly, on kernels built with full or lazy preemption such as
//! Debian's 7.x — makes every other task on that CPU skip its syscall
//! programs. The 7.2 VM lost a process's first io_uring_setup entry that
//! way. Raw tracepoints only refuse to re-enter the same program on a CPU,
//! which a system call cannot do. They also skip building the perf record.
//! The cost: the entry program runs for every system call of every task,
//! and returns after one comparison for all but io_uring's three.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use uringtrace_common::syscall::{
    NR_IO_URING_ENTER, NR_IO_URING_REGISTER, NR_IO_URING_SETUP, RAW_ENTER, RAW_REGISTER, RAW_SETUP,
};

use crate::{
    config,
    maps::{INFLIGHT_ENTER, INFLIGHT_REGISTER, INFLIGHT_SETUP},
    syscalls::{
        finish, try_enter_io_uring_enter, try_enter_io_uring_register, try_enter_io_uring_setup,
    },
    user_regs::UserRegs,
};

/// The selected call among io_uring's three, if `nr` is one.
#[inline(always)]
fn selected(nr: u64) -> Option<u8> {
    let bit = match nr {
        NR_IO_URING_SETUP => RAW_SETUP,
        NR_IO_URING_ENTER => RAW_ENTER,
        NR_IO_URING_REGISTER => RAW_REGISTER,
        _ => return None,
    };
    (config::raw_syscalls() & bit != 0).then_some(bit)
}

/// `sys_enter(struct pt_regs *regs, long id)`.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn raw_sys_enter(ctx: RawTracePointContext) -> u32 {
    let Some(call) = selected(ctx.arg::<u64>(1)) else {
        return 0;
    };
    let regs = UserRegs(ctx.arg(0));
    if regs.is_ia32() {
        return 0;
    }
    let _ = match call {
        RAW_SETUP => try_enter_io_uring_setup(&regs),
        RAW_ENTER => try_enter_io_uring_enter(&regs),
        _ => try_enter_io_uring_register(&regs),
    };
    0
}

/// `sys_exit(struct pt_regs *regs, long ret)`: the call's number is the
/// saved `orig_ax`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn raw_sys_exit(ctx: RawTracePointContext) -> u32 {
    let regs = UserRegs(ctx.arg(0));
    let Some(call) = regs.syscall_nr().ok().and_then(selected) else {
        return 0;
    };
    if regs.is_ia32() {
        return 0;
    }
    let ret = Ok(ctx.arg::<i64>(1));
    let _ = match call {
        RAW_SETUP => finish(ret, &INFLIGHT_SETUP),
        RAW_ENTER => finish(ret, &INFLIGHT_ENTER),
        _ => finish(ret, &INFLIGHT_REGISTER),
    };
    0
}
