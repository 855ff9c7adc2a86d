//! POLL_ADD on a pipe: armed and fired by a write, and ready at once.

use std::os::fd::AsRawFd as _;

use io_uring::{opcode, types::Fd};

use super::{basic_ring, fds, submit_and_reap};
use crate::workload::{
    abi::IORING_ENTER_GETEVENTS,
    ctx::{Ctx, Enter, Request},
    requests::Want,
};

pub fn poll_pipe(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (read_end, write_end) = fds::pipe()?;
    let mut ring = basic_ring(ctx)?;
    let fd = ring.fd();
    let pollin = libc::POLLIN as u32;
    let poll = || opcode::PollAdd::new(Fd(read_end.as_raw_fd()), pollin).build();

    let armed = Request::new(
        poll(),
        Want::res(i32::from(libc::POLLIN)),
        "POLL_ADD POLLIN on an empty pipe, fired by a write(2): res = the mask",
    );
    // SAFETY: a POLL_ADD references no memory.
    unsafe { ctx.queue(&mut ring, vec![armed]) }?;
    ctx.enter(
        Enter::new(fd, 1, 0, 0),
        "submit a POLL_ADD on an empty pipe",
    )?
    .expect(1)?;
    // Nothing to read yet: the poll is armed and posts nothing.
    ctx.reap(&mut ring, 0)?;
    fds::write_all(&write_end, b"x")?;
    ctx.enter(
        Enter::new(fd, 0, 1, IORING_ENTER_GETEVENTS),
        "wait for the POLL_ADD the write fired",
    )?
    .expect(0)?;
    ctx.reap(&mut ring, 1)?;

    let ready = Request::new(
        poll(),
        Want::res(i32::from(libc::POLLIN)),
        "POLL_ADD POLLIN on a pipe holding a byte: ready at submission",
    );
    // SAFETY: a POLL_ADD references no memory.
    unsafe { submit_and_reap(ctx, &mut ring, vec![ready], "a POLL_ADD already ready") }?;
    Ok(())
}
