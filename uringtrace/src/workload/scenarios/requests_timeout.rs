//! Timeout requests: a TIMEOUT that expires, one that completes by count,
//! one removed, and LINK_TIMEOUTs that fire or are cancelled.

use std::os::fd::AsRawFd as _;

use io_uring::{
    opcode,
    squeue::Flags,
    types::{Fd, Timespec},
};

use super::{basic_ring, fds::pipe, submit_and_reap, submit_and_wait};
use crate::workload::{
    ctx::{Ctx, Request},
    requests::Want,
};

pub fn timeouts(ctx: &mut Ctx) -> anyhow::Result<()> {
    // The short one keeps the scenario quick; the long one outlasts it, as
    // each request with the long one is ended by something else first.
    let short = Timespec::new().nsec(10_000_000);
    let long = Timespec::new().sec(10);
    let (read_end, _write_end) = pipe()?;
    let mut buf = [0u8; 16];
    let mut ring = basic_ring(ctx)?;

    let expires = Request::new(
        opcode::Timeout::new(&short).build(),
        Want::errno(libc::ETIME),
        "TIMEOUT of 10ms with nothing else to wait for: expires (-ETIME)",
    );
    // SAFETY (each submit_and_reap and queue): the timespecs and the
    // buffer outlive the ring.
    unsafe { submit_and_reap(ctx, &mut ring, vec![expires], "a 10ms TIMEOUT") }?;

    let by_count = vec![
        Request::new(
            opcode::Timeout::new(&long).count(1).build(),
            Want::res(0),
            "TIMEOUT of 10s or 1 completion: completed by the NOP after it (res 0)",
        ),
        Request::new(
            opcode::Nop::new().build(),
            Want::res(0),
            "NOP whose completion completes the TIMEOUT",
        ),
    ];
    unsafe {
        submit_and_reap(
            ctx,
            &mut ring,
            by_count,
            "a TIMEOUT counting 1 completion and a NOP",
        )
    }?;

    let removed = Request::new(
        opcode::Timeout::new(&long).build(),
        Want::errno(libc::ECANCELED),
        "TIMEOUT of 10s, removed by TIMEOUT_REMOVE (-ECANCELED)",
    );
    let [target] = unsafe { ctx.queue(&mut ring, vec![removed]) }?[..] else {
        anyhow::bail!("queueing one TIMEOUT gave other than one user_data");
    };
    let remove = Request::new(
        opcode::TimeoutRemove::new(target).build(),
        Want::res(0),
        "TIMEOUT_REMOVE of the 10s TIMEOUT",
    );
    unsafe { ctx.queue(&mut ring, vec![remove]) }?;
    submit_and_wait(ctx, &mut ring, 2, 2, "a 10s TIMEOUT and its TIMEOUT_REMOVE")?;

    // The pipe stays empty, so the READ can only end by the link timeout.
    let guarded = vec![
        Request::new(
            opcode::Read::new(Fd(read_end.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32)
                .build()
                .flags(Flags::IO_LINK),
            Want::errno(libc::ECANCELED),
            "READ on an empty pipe, cancelled by its LINK_TIMEOUT (-ECANCELED)",
        ),
        Request::new(
            opcode::LinkTimeout::new(&short).build(),
            Want::errno(libc::ETIME),
            "LINK_TIMEOUT of 10ms guarding the READ: fires (-ETIME)",
        ),
    ];
    unsafe {
        submit_and_reap(
            ctx,
            &mut ring,
            guarded,
            "a READ on an empty pipe with a 10ms LINK_TIMEOUT",
        )
    }?;

    let in_time = vec![
        Request::new(
            opcode::Nop::new().build().flags(Flags::IO_LINK),
            Want::res(0),
            "NOP guarded by a LINK_TIMEOUT, done at once",
        ),
        Request::new(
            opcode::LinkTimeout::new(&long).build(),
            Want::errno(libc::ECANCELED),
            "LINK_TIMEOUT of 10s whose NOP finished first (-ECANCELED)",
        ),
    ];
    unsafe { submit_and_reap(ctx, &mut ring, in_time, "a NOP with a 10s LINK_TIMEOUT") }?;
    Ok(())
}
