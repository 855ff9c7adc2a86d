//! Requests an SQPOLL ring's kernel thread submits on its own: no
//! io_uring_enter at all, completions watched on the CQ.

use std::{os::fd::AsRawFd as _, time::Duration};

use anyhow::ensure;
use io_uring::{opcode, types::Fd};

use super::fds;
use crate::workload::{
    abi::{
        IORING_REGISTER_ENABLE_RINGS, IORING_SETUP_R_DISABLED, IORING_SETUP_SQPOLL, IoUringParams,
    },
    ctx::{Ctx, Request},
    requests::Want,
};

const PIPED: &[u8] = b"read by the SQ thread";

pub fn sqpoll_requests(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (read_end, write_end) = fds::pipe()?;
    fds::write_all(&write_end, PIPED)?;
    let mut buf = [0u8; 64];
    // Created disabled, as in `sqpoll`: the requests are all queued before
    // the SQ thread first looks, so no wakeup enter is ever needed.
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
    let nop = || opcode::Nop::new().build();
    let requests = vec![
        Request::new(nop(), Want::res(0), "NOP submitted by the SQ thread"),
        Request::new(nop(), Want::res(0), "NOP submitted by the SQ thread"),
        Request::new(
            opcode::Read::new(Fd(read_end.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32).build(),
            Want::res(PIPED.len() as i32),
            "READ of the 21 bytes in a pipe, submitted by the SQ thread",
        ),
    ];
    // SAFETY: `buf` outlives the ring.
    unsafe { ctx.queue(&mut ring, requests) }?;
    // SAFETY: ENABLE_RINGS takes no argument.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_ENABLE_RINGS,
            0,
            0,
            "enable the ring; the SQ thread submits the 2 NOPs and the READ",
        )
    }?
    .expect(0)?;
    ctx.poll_reap(&mut ring, 3, Duration::from_secs(1))?;
    ensure!(
        &buf[..PIPED.len()] == PIPED,
        "the READ returned other bytes than the pipe held"
    );
    Ok(())
}
