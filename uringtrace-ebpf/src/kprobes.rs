//! The kprobe path for the system calls (`--attach kprobe`, and `auto` on
//! kernels without syscall tracepoints): a kprobe and a kretprobe on each
//! `__x64_sys_io_uring_*` wrapper, feeding the same entry and exit logic as
//! the tracepoints, so the records are identical.

use aya_ebpf::{
    macros::{kprobe, kretprobe},
    programs::{ProbeContext, RetProbeContext},
};

use crate::{
    maps::{INFLIGHT_ENTER, INFLIGHT_REGISTER, INFLIGHT_SETUP},
    syscalls::{
        finish, try_enter_io_uring_enter, try_enter_io_uring_register, try_enter_io_uring_setup,
    },
    user_regs::UserRegs,
};

/// The syscall wrappers take the user's registers as a `struct pt_regs *`.
#[inline(always)]
fn user_regs(ctx: &ProbeContext) -> Option<UserRegs> {
    ctx.arg::<u64>(0).map(UserRegs)
}

#[kprobe]
pub fn kprobe_io_uring_enter(ctx: ProbeContext) -> u32 {
    if let Some(regs) = user_regs(&ctx) {
        let _ = try_enter_io_uring_enter(&regs);
    }
    0
}

#[kretprobe]
pub fn kretprobe_io_uring_enter(ctx: RetProbeContext) -> u32 {
    let _ = finish(Ok(ctx.ret::<i64>()), &INFLIGHT_ENTER);
    0
}

#[kprobe]
pub fn kprobe_io_uring_register(ctx: ProbeContext) -> u32 {
    if let Some(regs) = user_regs(&ctx) {
        let _ = try_enter_io_uring_register(&regs);
    }
    0
}

#[kretprobe]
pub fn kretprobe_io_uring_register(ctx: RetProbeContext) -> u32 {
    let _ = finish(Ok(ctx.ret::<i64>()), &INFLIGHT_REGISTER);
    0
}

#[kprobe]
pub fn kprobe_io_uring_setup(ctx: ProbeContext) -> u32 {
    if let Some(regs) = user_regs(&ctx) {
        let _ = try_enter_io_uring_setup(&regs);
    }
    0
}

#[kretprobe]
pub fn kretprobe_io_uring_setup(ctx: RetProbeContext) -> u32 {
    let _ = finish(Ok(ctx.ret::<i64>()), &INFLIGHT_SETUP);
    0
}
