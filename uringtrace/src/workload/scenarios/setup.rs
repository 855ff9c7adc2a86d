//! io_uring_setup with every io_uring_params field the tracer reports set
//! to something other than zero.

use std::os::fd::AsRawFd as _;

use anyhow::{bail, ensure};

use crate::workload::{
    abi::{
        IORING_MAX_ENTRIES, IORING_SETUP_ATTACH_WQ, IORING_SETUP_CLAMP, IORING_SETUP_COOP_TASKRUN,
        IORING_SETUP_CQE32, IORING_SETUP_CQSIZE, IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_NO_SQARRAY, IORING_SETUP_SINGLE_ISSUER, IORING_SETUP_SQ_AFF,
        IORING_SETUP_SQE128, IORING_SETUP_SQPOLL, IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_TASKRUN_FLAG, IoUringParams,
    },
    ctx::Ctx,
    kernel_features::Feature,
};

pub fn params(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut p = IoUringParams {
        flags: IORING_SETUP_CQSIZE,
        cq_entries: 64,
        ..Default::default()
    };
    let cqsize = ctx
        .setup(4, &mut p, "CQSIZE: 4 SQ entries, 64 CQ entries")?
        .expect_fd()?;
    ensure!(
        (p.sq_entries, p.cq_entries) == (4, 64),
        "CQSIZE ring got {} SQ and {} CQ entries",
        p.sq_entries,
        p.cq_entries
    );

    let mut p = IoUringParams {
        flags: IORING_SETUP_ATTACH_WQ,
        wq_fd: cqsize.as_raw_fd() as u32,
        ..Default::default()
    };
    drop(
        ctx.setup(4, &mut p, "ATTACH_WQ: share the CQSIZE ring's io-wq")?
            .expect_fd()?,
    );
    drop(cqsize);

    let mut p = IoUringParams {
        flags: IORING_SETUP_CLAMP,
        ..Default::default()
    };
    drop(
        ctx.setup(
            IORING_MAX_ENTRIES * 4,
            &mut p,
            "CLAMP: 131072 entries, clamped to the 32768 maximum",
        )?
        .expect_fd()?,
    );
    ensure!(
        p.sq_entries == IORING_MAX_ENTRIES,
        "CLAMP ring got {} SQ entries",
        p.sq_entries
    );

    // The first CPU this process may run on, so SQ_AFF works under any
    // affinity mask the test harness sets.
    let cpu = first_allowed_cpu()?;
    let mut p = IoUringParams {
        flags: IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF,
        sq_thread_cpu: cpu,
        sq_thread_idle: 5,
        ..Default::default()
    };
    drop(
        ctx.setup(
            4,
            &mut p,
            &format!("SQPOLL+SQ_AFF: SQ thread pinned to CPU {cpu}, idle 5ms"),
        )?
        .expect_fd()?,
    );

    // Flags a kernel does not know make io_uring_setup fail (-EINVAL): on
    // older kernels these two calls are refused, and traced as such.
    let mut p = IoUringParams {
        flags: IORING_SETUP_SINGLE_ISSUER
            | IORING_SETUP_DEFER_TASKRUN
            | IORING_SETUP_SUBMIT_ALL
            | IORING_SETUP_NO_SQARRAY,
        ..Default::default()
    };
    drop(
        ctx.setup(
            4,
            &mut p,
            "SINGLE_ISSUER|DEFER_TASKRUN|SUBMIT_ALL|NO_SQARRAY",
        )?
        .expect_fd_if(ctx.has(Feature::NoSqArray), libc::EINVAL)?,
    );

    let mut p = IoUringParams {
        flags: IORING_SETUP_COOP_TASKRUN
            | IORING_SETUP_TASKRUN_FLAG
            | IORING_SETUP_SQE128
            | IORING_SETUP_CQE32,
        ..Default::default()
    };
    drop(
        ctx.setup(4, &mut p, "COOP_TASKRUN|TASKRUN_FLAG|SQE128|CQE32")?
            .expect_fd_if(ctx.has(Feature::CoopTaskrunBigEntries), libc::EINVAL)?,
    );
    Ok(())
}

fn first_allowed_cpu() -> anyhow::Result<u32> {
    // SAFETY: cpu_set_t is plain data; all zeroes is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        bail!("sched_getaffinity: {}", std::io::Error::last_os_error());
    }
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: `cpu` is below CPU_SETSIZE.
        if unsafe { libc::CPU_ISSET(cpu, &set) } {
            return Ok(cpu as u32);
        }
    }
    bail!("sched_getaffinity returned an empty CPU set")
}
