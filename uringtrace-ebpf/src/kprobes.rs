//! The kprobe path for the system calls (`--attach kprobe`, and `auto` on
//! kernels without syscall tracepoints): a kprobe and a kretprobe on each
//! `__x64_sys_io_uring_*` wrapper, feeding the same entry and exit logic as
//! the tracepoints, so the records are identical.

use aya_ebpf::{
    helpers::bpf_probe_read_kernel,
    macros::{kprobe, kretprobe},
    programs::{ProbeContext, RetProbeContext},
};

use crate::{
    maps::{INFLIGHT_ENTER, INFLIGHT_REGISTER, INFLIGHT_SETUP},
    syscalls::{
        SyscallArgs, finish, try_enter_io_uring_enter, try_enter_io_uring_register,
        try_enter_io_uring_setup,
    },
};

/// The syscall wrappers take the user's registers as a `struct pt_regs *`;
/// x86-64 passes syscall arguments in di, si, dx, r10, r8, r9, at these
/// offsets of `struct pt_regs` (the architecture's fixed frame layout).
const PT_REGS_DI: usize = 112;
const PT_REGS_SI: usize = 104;
const PT_REGS_DX: usize = 96;
const PT_REGS_R10: usize = 56;
const PT_REGS_R8: usize = 72;
const PT_REGS_R9: usize = 64;

struct UserRegs(u64);

impl SyscallArgs for UserRegs {
    #[inline(always)]
    fn arg(&self, n: usize) -> Result<u64, i32> {
        let offset = match n {
            0 => PT_REGS_DI,
            1 => PT_REGS_SI,
            2 => PT_REGS_DX,
            3 => PT_REGS_R10,
            4 => PT_REGS_R8,
            _ => PT_REGS_R9,
        };
        unsafe { bpf_probe_read_kernel((self.0 as usize + offset) as *const u64) }
    }
}

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
