//! io_uring_enter argument forms: submit, wait, the sigmask and timeout
//! arguments, SQPOLL wakeups and registered ring indexes.

use std::time::Duration;

use anyhow::Context as _;

use super::basic_ring;
use crate::workload::{
    abi::{
        IO_RINGFD_REG_MAX, IORING_ENTER_ABS_TIMER, IORING_ENTER_EXT_ARG, IORING_ENTER_EXT_ARG_REG,
        IORING_ENTER_GETEVENTS, IORING_ENTER_NO_IOWAIT, IORING_ENTER_REGISTERED_RING,
        IORING_ENTER_SQ_WAIT, IORING_ENTER_SQ_WAKEUP, IORING_MEM_REGION_REG_WAIT_ARG,
        IORING_MEM_REGION_TYPE_USER, IORING_REG_WAIT_TS, IORING_REGISTER_ENABLE_RINGS,
        IORING_REGISTER_MEM_REGION, IORING_REGISTER_PROBE, IORING_REGISTER_RING_FDS,
        IORING_REGISTER_USE_REGISTERED_RING, IORING_SETUP_R_DISABLED, IORING_SETUP_SQPOLL,
        IORING_UNREGISTER_RING_FDS, IoUringMemRegionReg, IoUringParams, IoUringProbe,
        IoUringRegWait, IoUringRegionDesc, IoUringRsrcUpdate, KERNEL_SIGSET_SIZE, KernelTimespec,
        PROBE_OPS, sig_bit,
    },
    ctx::{Ctx, Enter, EnterArg, Request, WaitArg},
    kernel_features::Feature,
    pages::Pages,
    requests::Want,
};

/// The signals every sigmask in these scenarios blocks.
const MASK: u64 = sig_bit(libc::SIGUSR1) | sig_bit(libc::SIGUSR2);

/// Short enough to keep the scenarios quick, long enough to be a real wait.
const TIMEOUT: KernelTimespec = KernelTimespec::from_millis(10);

pub fn submit(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ring = basic_ring(ctx)?;
    ctx.queue_nops(&mut ring, 4, "NOP submitted with no flags")?;
    ctx.enter(Enter::new(ring.fd(), 4, 0, 0), "submit 4 NOPs, no flags")?
        .expect(4)?;
    // NOPs complete inline, so the completions are posted by the time the
    // submitting call returns.
    ctx.reap(&mut ring, 4)?;
    Ok(())
}

pub fn getevents(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ring = basic_ring(ctx)?;
    let fd = ring.fd();
    ctx.queue_nops(&mut ring, 4, "NOP submitted with GETEVENTS")?;
    ctx.enter(
        Enter::new(fd, 4, 4, IORING_ENTER_GETEVENTS),
        "submit 4 NOPs and wait for 4 completions",
    )?
    .expect(4)?;
    ctx.enter(
        Enter::new(fd, 0, 4, IORING_ENTER_GETEVENTS),
        "wait for 4 completions, already posted",
    )?
    .expect(0)?;
    ctx.reap(&mut ring, 4)?;
    Ok(())
}

/// Every wait here has nothing to wait for, so each ends at its timeout.
/// On kernels without min_wait_usec, ABS_TIMER or NO_IOWAIT, those waits
/// are made anyway: the kernel refuses them (-EINVAL), and the tracer must
/// decode a refused call as well as an accepted one.
pub fn ext_arg_timeout(ctx: &mut Ctx) -> anyhow::Result<()> {
    // The ring first: its setup tells which features the kernel has.
    let ring = basic_ring(ctx)?;
    if ctx.skip_unless(&[Feature::ExtArg], "")? {
        return Ok(());
    }
    let min_wait_abs_timer = ctx.has(Feature::MinWaitAbsTimer);
    let no_iowait = ctx.has(Feature::NoIowait);
    let fd = ring.fd();
    let ext = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    let wait_for = |flags, wait| Enter {
        fd,
        to_submit: 0,
        min_complete: 1,
        flags,
        arg: EnterArg::Ext(wait),
    };

    let wait = WaitArg::new(Some(TIMEOUT), None, 0);
    ctx.enter(wait_for(ext, &wait), "EXT_ARG with a 10ms timeout")?
        .expect_errno(libc::ETIME)?;

    let wait = WaitArg::new(Some(TIMEOUT), None, 2000);
    ctx.enter(
        wait_for(ext, &wait),
        "EXT_ARG with a 10ms timeout and min_wait_usec 2000",
    )?
    .expect_if(min_wait_abs_timer, -i64::from(libc::ETIME), libc::EINVAL)?;

    // The ring's clock is CLOCK_MONOTONIC unless IORING_REGISTER_CLOCK
    // says otherwise.
    let now = monotonic_now()?;
    let deadline = KernelTimespec {
        tv_sec: now.tv_sec + (now.tv_nsec + TIMEOUT.tv_nsec) / 1_000_000_000,
        tv_nsec: (now.tv_nsec + TIMEOUT.tv_nsec) % 1_000_000_000,
    };
    let wait = WaitArg::new(Some(deadline), None, 0);
    ctx.enter(
        wait_for(ext | IORING_ENTER_ABS_TIMER, &wait),
        "EXT_ARG with ABS_TIMER: CLOCK_MONOTONIC now + 10ms",
    )?
    .expect_if(min_wait_abs_timer, -i64::from(libc::ETIME), libc::EINVAL)?;

    let wait = WaitArg::new(Some(TIMEOUT), None, 0);
    ctx.enter(
        wait_for(ext | IORING_ENTER_NO_IOWAIT, &wait),
        "EXT_ARG with a 10ms timeout and NO_IOWAIT",
    )?
    .expect_if(no_iowait, -i64::from(libc::ETIME), libc::EINVAL)?;
    Ok(())
}

/// One 5-second wait: long enough for a tracer to attach while the call is
/// in the kernel (its entry is then never seen), even under emulation in the
/// VM suite with other VMs running. An EXT_ARG wait that times
/// out; before EXT_ARG (5.11) a wait has no timeout of its own, and a
/// 5-second TIMEOUT request submitted by the same call ends it instead.
pub fn long_wait(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ring = basic_ring(ctx)?;
    if !ctx.has(Feature::ExtArg) {
        let five_seconds = io_uring::types::Timespec::new().sec(5);
        let timeout = Request::new(
            io_uring::opcode::Timeout::new(&five_seconds).build(),
            Want::errno(libc::ETIME),
            "TIMEOUT of 5s that ends the wait (-ETIME)",
        );
        // SAFETY: the timespec lives until the request completes, within
        // the call below.
        unsafe { ctx.queue(&mut ring, vec![timeout]) }?;
        ctx.enter(
            Enter::new(ring.fd(), 1, 1, IORING_ENTER_GETEVENTS),
            "submit a 5s TIMEOUT and wait for it",
        )?
        .expect(1)?;
        ctx.reap(&mut ring, 1)?;
        return Ok(());
    }
    let wait = WaitArg::new(Some(KernelTimespec::from_millis(5000)), None, 0);
    ctx.enter(
        Enter {
            fd: ring.fd(),
            to_submit: 0,
            min_complete: 1,
            flags: IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
            arg: EnterArg::Ext(&wait),
        },
        "EXT_ARG wait that times out after 5s",
    )?
    .expect_errno(libc::ETIME)?;
    Ok(())
}

fn monotonic_now() -> anyhow::Result<libc::timespec> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        anyhow::bail!(
            "clock_gettime(CLOCK_MONOTONIC): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(now)
}

/// The kernel applies a wait's sigmask only when it has to sleep, so the
/// mask-only wait has a completion ready (it could otherwise block for
/// ever) and the other one, with nothing pending, sleeps until its timeout
/// under the mask.
pub fn ext_arg_sigmask(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ring = basic_ring(ctx)?;
    if ctx.skip_unless(&[Feature::ExtArg], "")? {
        return Ok(());
    }
    let fd = ring.fd();
    let flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;

    ctx.queue_nops(&mut ring, 1, "NOP submitted with an EXT_ARG sigmask wait")?;
    let wait = WaitArg::new(None, Some(MASK), 0);
    ctx.enter(
        Enter {
            fd,
            to_submit: 1,
            min_complete: 1,
            flags,
            arg: EnterArg::Ext(&wait),
        },
        "submit a NOP and wait with an EXT_ARG sigmask SIGUSR1|SIGUSR2, no timeout",
    )?
    .expect(1)?;
    ctx.reap(&mut ring, 1)?;

    let wait = WaitArg::new(Some(TIMEOUT), Some(MASK), 0);
    ctx.enter(
        Enter {
            fd,
            to_submit: 0,
            min_complete: 1,
            flags,
            arg: EnterArg::Ext(&wait),
        },
        "EXT_ARG with sigmask SIGUSR1|SIGUSR2 and a 10ms timeout",
    )?
    .expect_errno(libc::ETIME)?;
    Ok(())
}

/// A legacy sigset wait has no timeout: a completion must be ready for it
/// to return.
pub fn legacy_sigmask(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ring = basic_ring(ctx)?;
    let fd = ring.fd();
    ctx.queue_nops(
        &mut ring,
        1,
        "NOP whose completion a legacy-sigmask wait finds",
    )?;
    ctx.enter(Enter::new(fd, 1, 0, 0), "submit a NOP")?
        .expect(1)?;
    let mask = MASK;
    ctx.enter(
        Enter {
            fd,
            to_submit: 0,
            min_complete: 1,
            flags: IORING_ENTER_GETEVENTS,
            arg: EnterArg::Sigset(&mask),
        },
        "wait for the posted completion with a legacy sigmask SIGUSR1|SIGUSR2",
    )?
    .expect(0)?;
    ctx.reap(&mut ring, 1)?;
    Ok(())
}

/// Byte offsets of the two wait slots in the region, and of the sigset the
/// second one points to.
const SLOT_TIMEOUT: usize = 0;
const SLOT_SIGMASK: usize = size_of::<IoUringRegWait>();
const REGION_SIGSET: usize = 1024;

pub fn ext_arg_reg(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut region = Pages::new(1)?;
    region.write(
        SLOT_TIMEOUT,
        IoUringRegWait {
            ts: TIMEOUT,
            flags: IORING_REG_WAIT_TS,
            ..Default::default()
        },
    )?;
    region.write(REGION_SIGSET, MASK)?;
    region.write(
        SLOT_SIGMASK,
        IoUringRegWait {
            ts: TIMEOUT,
            flags: IORING_REG_WAIT_TS,
            sigmask: region.addr(REGION_SIGSET),
            sigmask_sz: KERNEL_SIGSET_SIZE,
            ..Default::default()
        },
    )?;

    // The kernel accepts a wait region only before the ring is enabled, so
    // that no waiter can be reading it while it changes.
    let params = IoUringParams {
        flags: IORING_SETUP_R_DISABLED,
        ..Default::default()
    };
    let ring = ctx.ring(8, params, "8-entry ring, R_DISABLED")?;
    let fd = ring.fd();
    if ctx.skip_unless(&[Feature::WaitRegions], "")? {
        return Ok(());
    }

    let mut desc = IoUringRegionDesc {
        user_addr: region.addr(0),
        size: region.len() as u64,
        flags: IORING_MEM_REGION_TYPE_USER,
        ..Default::default()
    };
    let reg = IoUringMemRegionReg {
        region_uptr: std::ptr::from_mut(&mut desc) as u64,
        flags: IORING_MEM_REGION_REG_WAIT_ARG,
        ..Default::default()
    };
    // SAFETY: `reg` and `desc` are live (the kernel writes `desc` back);
    // the region's page outlives the ring (declared before it), and the
    // kernel keeps it pinned anyway.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_MEM_REGION,
            std::ptr::from_ref(&reg) as u64,
            1,
            "register a one-page user-memory wait region (REG_WAIT_ARG)",
        )
    }?
    .expect(0)?;
    // SAFETY: ENABLE_RINGS takes no argument.
    unsafe { ctx.register(fd, IORING_REGISTER_ENABLE_RINGS, 0, 0, "enable the ring") }?
        .expect(0)?;

    let wait_at = |offset: usize| Enter {
        fd,
        to_submit: 0,
        min_complete: 1,
        flags: IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG | IORING_ENTER_EXT_ARG_REG,
        arg: EnterArg::ExtReg {
            offset: offset as u64,
        },
    };
    ctx.enter(
        wait_at(SLOT_TIMEOUT),
        "EXT_ARG_REG, slot at offset 0: 10ms timeout",
    )?
    .expect_errno(libc::ETIME)?;
    ctx.enter(
        wait_at(SLOT_SIGMASK),
        "EXT_ARG_REG, slot at offset 64: 10ms timeout and sigmask SIGUSR1|SIGUSR2",
    )?
    .expect_errno(libc::ETIME)?;
    // Slots must be 8-byte aligned.
    ctx.enter(wait_at(4), "EXT_ARG_REG at misaligned offset 4")?
        .expect_errno(libc::EFAULT)?;
    Ok(())
}

/// SQPOLL: the kernel's SQ thread submits what we queue, and io_uring_enter
/// is only needed to wake it once it has gone idle.
pub fn sqpoll(ctx: &mut Ctx) -> anyhow::Result<()> {
    // Created disabled so the first NOPs are already queued when the SQ
    // thread first looks: were it to go idle before they were queued (a
    // slow start, a busy machine), only an extra enter could wake it, and
    // the number of calls would depend on timing.
    let params = IoUringParams {
        flags: IORING_SETUP_SQPOLL | IORING_SETUP_R_DISABLED,
        sq_thread_idle: 10,
        ..Default::default()
    };
    let mut ring = ctx.ring(
        8,
        params,
        "8-entry SQPOLL ring, sq_thread_idle 10ms, R_DISABLED",
    )?;
    let fd = ring.fd();
    ctx.queue_nops(
        &mut ring,
        2,
        "NOP queued before the ring is enabled, submitted by the SQ thread",
    )?;
    // SAFETY: ENABLE_RINGS takes no argument.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_ENABLE_RINGS,
            0,
            0,
            "enable the ring; the SQ thread submits the 2 queued NOPs",
        )
    }?
    .expect(0)?;
    let wait = Duration::from_secs(1);
    ctx.poll_reap(&mut ring, 2, wait)
        .context("NOPs queued for the SQ thread")?;
    ring.poll_need_wakeup(wait)?;

    ctx.queue_nops(
        &mut ring,
        1,
        "NOP the SQ thread submits once woken by SQ_WAKEUP",
    )?;
    ctx.enter(
        Enter::new(fd, 1, 0, IORING_ENTER_SQ_WAKEUP),
        "SQ_WAKEUP: wake the idle SQ thread for 1 queued NOP",
    )?
    .expect(1)?;
    ctx.enter(
        Enter::new(fd, 0, 1, IORING_ENTER_GETEVENTS),
        "wait for the NOP the SQ thread submitted",
    )?
    .expect(0)?;
    ctx.reap(&mut ring, 1)?;
    ctx.enter(
        Enter::new(fd, 0, 0, IORING_ENTER_SQ_WAIT),
        "SQ_WAIT with room in the SQ",
    )?
    .expect(0)?;
    Ok(())
}

pub fn registered_ring(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ring = basic_ring(ctx)?;
    if ctx.skip_unless(&[Feature::RegisteredRings], "")? {
        return Ok(());
    }
    let via_index = ctx.has(Feature::RegisterViaRegisteredRing);
    let fd = ring.fd();
    let mut update = IoUringRsrcUpdate {
        // -1U: let the kernel pick a free slot and write it back.
        offset: u32::MAX,
        resv: 0,
        data: u64::from(fd),
    };
    // SAFETY: one live rsrc_update, which the kernel writes back.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_RING_FDS,
            std::ptr::from_mut(&mut update) as u64,
            1,
            "REGISTER_RING_FDS: the ring fd at a kernel-chosen index",
        )
    }?
    .expect(1)?;
    let index = update.offset;
    anyhow::ensure!(
        index < IO_RINGFD_REG_MAX,
        "the kernel registered the ring at index {index}"
    );

    ctx.queue_nops(&mut ring, 1, "NOP submitted through the ring index")?;
    ctx.enter(
        Enter::new(
            index,
            1,
            1,
            IORING_ENTER_GETEVENTS | IORING_ENTER_REGISTERED_RING,
        ),
        "REGISTERED_RING: submit and wait for a NOP through the ring index",
    )?
    .expect(1)?;
    ctx.reap(&mut ring, 1)?;

    let mut probe = Box::<IoUringProbe>::default();
    // SAFETY: a zeroed probe with room for PROBE_OPS ops, written back.
    unsafe {
        ctx.register(
            index,
            IORING_REGISTER_PROBE | IORING_REGISTER_USE_REGISTERED_RING,
            std::ptr::from_mut(&mut *probe) as u64,
            PROBE_OPS as u32,
            "REGISTER_PROBE through the ring index (USE_REGISTERED_RING)",
        )
    }?
    // Before USE_REGISTERED_RING, the flag makes an unknown opcode.
    .expect_if(via_index, 0, libc::EINVAL)?;

    let mut update = IoUringRsrcUpdate {
        offset: index,
        resv: 0,
        data: 0,
    };
    // SAFETY: one live rsrc_update.
    unsafe {
        ctx.register(
            fd,
            IORING_UNREGISTER_RING_FDS,
            std::ptr::from_mut(&mut update) as u64,
            1,
            "UNREGISTER_RING_FDS: free the index",
        )
    }?
    .expect(1)?;

    ctx.enter(
        Enter::new(index, 0, 0, IORING_ENTER_REGISTERED_RING),
        "REGISTERED_RING with the index just freed",
    )?
    .expect_errno(libc::EBADF)?;
    ctx.enter(
        Enter::new(IO_RINGFD_REG_MAX, 0, 0, IORING_ENTER_REGISTERED_RING),
        "REGISTERED_RING with index 16, past the table",
    )?
    .expect_errno(libc::EINVAL)?;
    Ok(())
}
