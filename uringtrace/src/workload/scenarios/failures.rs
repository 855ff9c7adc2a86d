//! Calls the kernel refuses, one per way an argument can be wrong. The
//! tracer must decode these as faithfully as the good ones: bad pointers
//! it cannot read, sizes the kernel rejects without reading.

use std::{fs::File, os::fd::AsRawFd as _};

use super::basic_ring;
use crate::workload::{
    abi::{
        ENTER_FLAG_UNDEFINED, IORING_ENTER_EXT_ARG, IORING_ENTER_GETEVENTS,
        IORING_UNREGISTER_BUFFERS, IoUringParams, KERNEL_SIGSET_SIZE, KernelTimespec,
        REGISTER_OPCODE_UNDEFINED, SETUP_FLAG_UNDEFINED, sig_bit,
    },
    ctx::{Ctx, Enter, EnterArg, WaitArg},
};

/// Below `vm.mmap_min_addr`, so never mapped: every read of it faults.
const UNMAPPED: u64 = 8;

const TIMEOUT: KernelTimespec = KernelTimespec::from_millis(10);

pub fn failures(ctx: &mut Ctx) -> anyhow::Result<()> {
    // A fresh ring with nothing pending: any wait on it has to sleep, so
    // the kernel really reads (and rejects) the sigmask arguments.
    let ring = basic_ring(ctx)?;
    let fd = ring.fd();
    let null = File::open("/dev/null")?;
    let not_ring = null.as_raw_fd() as u32;
    // Opened and closed last: no call below creates an fd (they all fail),
    // so the number stays free.
    let closed = File::open("/dev/null")?.as_raw_fd() as u32;

    enter_failures(ctx, fd, not_ring, closed)?;
    register_failures(ctx, fd, not_ring, closed)?;
    setup_failures(ctx)?;
    Ok(())
}

fn enter_failures(ctx: &mut Ctx, fd: u32, not_ring: u32, closed: u32) -> anyhow::Result<()> {
    ctx.enter(Enter::new(closed, 0, 0, 0), "enter on a closed fd")?
        .expect_errno(libc::EBADF)?;
    ctx.enter(
        Enter::new(not_ring, 0, 0, 0),
        "enter on /dev/null, not a ring",
    )?
    .expect_errno(libc::EOPNOTSUPP)?;
    ctx.enter(
        Enter::new(fd, 0, 0, ENTER_FLAG_UNDEFINED),
        "enter with flag bit 20, which no kernel defines",
    )?
    .expect_errno(libc::EINVAL)?;

    let wait_for = |flags, arg| Enter {
        fd,
        to_submit: 0,
        min_complete: 1,
        flags,
        arg,
    };
    let legacy = IORING_ENTER_GETEVENTS;
    let ext = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;

    ctx.enter(
        wait_for(
            legacy,
            EnterArg::Raw {
                argp: UNMAPPED,
                argsz: u64::from(KERNEL_SIGSET_SIZE),
            },
        ),
        "legacy sigset at unmapped address 8",
    )?
    .expect_errno(libc::EFAULT)?;
    let mask = sig_bit(libc::SIGUSR1);
    ctx.enter(
        wait_for(
            legacy,
            EnterArg::Raw {
                argp: std::ptr::from_ref(&mask) as u64,
                argsz: 128,
            },
        ),
        "legacy sigset with argsz 128 (glibc's sigset_t size)",
    )?
    .expect_errno(libc::EINVAL)?;

    let wait = WaitArg::new(Some(TIMEOUT), None, 0);
    ctx.enter(
        wait_for(
            ext,
            EnterArg::Raw {
                argp: std::ptr::from_ref(&wait.arg) as u64,
                argsz: 16,
            },
        ),
        "EXT_ARG with argsz 16",
    )?
    .expect_errno(libc::EINVAL)?;
    ctx.enter(
        wait_for(
            ext,
            EnterArg::Raw {
                argp: UNMAPPED,
                argsz: size_of_val(&wait.arg) as u64,
            },
        ),
        "EXT_ARG at unmapped address 8",
    )?
    .expect_errno(libc::EFAULT)?;

    let mut wait = WaitArg::new(None, None, 0);
    wait.arg.ts = UNMAPPED;
    ctx.enter(
        wait_for(ext, EnterArg::Ext(&wait)),
        "EXT_ARG whose ts is at unmapped address 8",
    )?
    .expect_errno(libc::EFAULT)?;

    let mut wait = WaitArg::new(Some(TIMEOUT), None, 0);
    wait.arg.sigmask = UNMAPPED;
    wait.arg.sigmask_sz = KERNEL_SIGSET_SIZE;
    ctx.enter(
        wait_for(ext, EnterArg::Ext(&wait)),
        "EXT_ARG with a 10ms timeout and its sigmask at unmapped address 8",
    )?
    .expect_errno(libc::EFAULT)?;

    let mut wait = WaitArg::new(Some(TIMEOUT), Some(mask), 0);
    wait.arg.sigmask_sz = 128;
    ctx.enter(
        wait_for(ext, EnterArg::Ext(&wait)),
        "EXT_ARG with a 10ms timeout and sigmask_sz 128",
    )?
    .expect_errno(libc::EINVAL)?;
    Ok(())
}

fn register_failures(ctx: &mut Ctx, fd: u32, not_ring: u32, closed: u32) -> anyhow::Result<()> {
    // SAFETY (all four): no argument; the kernel refuses each call before
    // it would look at one.
    unsafe {
        ctx.register(
            fd,
            REGISTER_OPCODE_UNDEFINED,
            0,
            0,
            "register opcode 255, which no kernel defines",
        )
    }?
    .expect_errno(libc::EINVAL)?;
    unsafe {
        ctx.register(
            not_ring,
            IORING_UNREGISTER_BUFFERS,
            0,
            0,
            "register on /dev/null, not a ring",
        )
    }?
    .expect_errno(libc::EOPNOTSUPP)?;
    unsafe {
        ctx.register(
            closed,
            IORING_UNREGISTER_BUFFERS,
            0,
            0,
            "register on a closed fd",
        )
    }?
    .expect_errno(libc::EBADF)?;
    unsafe {
        ctx.register(
            fd,
            IORING_UNREGISTER_BUFFERS,
            0,
            0,
            "UNREGISTER_BUFFERS with no buffers registered",
        )
    }?
    .expect_errno(libc::ENXIO)?;
    Ok(())
}

fn setup_failures(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut p = IoUringParams {
        flags: SETUP_FLAG_UNDEFINED,
        ..Default::default()
    };
    ctx.setup(8, &mut p, "setup with flag bit 30, which no kernel defines")?
        .expect_errno(libc::EINVAL)?;
    // SAFETY: nothing is mapped at UNMAPPED for the kernel to write to.
    unsafe { ctx.setup_unreadable(8, UNMAPPED, "setup with params at unmapped address 8") }?
        .expect_errno(libc::EFAULT)?;
    let mut p = IoUringParams::default();
    ctx.setup(0, &mut p, "setup with 0 entries")?
        .expect_errno(libc::EINVAL)?;
    Ok(())
}
