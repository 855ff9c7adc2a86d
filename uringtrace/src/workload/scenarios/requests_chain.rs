//! Requests that depend on each other: linked chains (IOSQE_IO_LINK) that
//! break, hardlinked ones (IOSQE_IO_HARDLINK) that do not, a chain broken
//! at init, a drain, a CQE skipped on success, and an opcode no kernel
//! has.

use io_uring::{opcode, squeue::Flags, types::Fd};

use super::{basic_ring, submit_and_reap};
use crate::workload::{
    abi::{SQE_FLAG_UNDEFINED, SQE_OPCODE_UNDEFINED},
    ctx::{Ctx, Request},
    kernel_features::Feature,
    requests::{Want, with_opcode},
    ring::Ring,
};

/// Never an open fd.
const BAD_FD: i32 = -1;

pub fn link_chain(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ring = basic_ring(ctx)?;
    // The READs below fail on their fd before touching it; a real buffer
    // keeps the fd the only thing wrong with them.
    let mut buf = [0u8; 16];
    let buf_ptr = buf.as_mut_ptr();
    let bad_read = || opcode::Read::new(Fd(BAD_FD), buf_ptr, buf.len() as u32).build();
    let nop = || opcode::Nop::new().build();

    // Before 5.18 a request's file is looked up at init: the READ on fd -1
    // then fails at init, which fails its whole chain, hardlinked or not,
    // the head that was already accepted included.
    let at_issue = ctx.has(Feature::FileAtIssue);
    let (head, breaker, after) = if at_issue {
        (
            Want::res(0),
            "link: READ on fd -1, fails at execution (-EBADF) and breaks the chain",
            "link: NOP after the broken link, cancelled (-ECANCELED)",
        )
    } else {
        (
            Want::errno(libc::ECANCELED),
            "link: READ on fd -1, fails at init (-EBADF) and fails the chain",
            "link: NOP after the failed link, cancelled (-ECANCELED)",
        )
    };
    let chain = vec![
        Request::new(
            nop().flags(Flags::IO_LINK),
            head,
            "link: NOP, head of a chain that breaks",
        ),
        Request::new(
            bad_read().flags(Flags::IO_LINK),
            Want::errno(libc::EBADF),
            breaker,
        ),
        Request::new(nop(), Want::errno(libc::ECANCELED), after),
    ];
    // SAFETY (each submit_and_reap): the READs' buffer lives until their
    // requests are reaped, within the call.
    unsafe {
        submit_and_reap(
            ctx,
            &mut ring,
            chain,
            "IO_LINK chain NOP, READ (fails), NOP",
        )
    }?;

    let (head, breaker, after) = if at_issue {
        (
            Want::res(0),
            "hardlink: READ on fd -1, fails at execution (-EBADF), the chain goes on",
            Want::res(0),
        )
    } else {
        (
            Want::errno(libc::ECANCELED),
            "hardlink: READ on fd -1, fails at init (-EBADF), which fails even a hardlinked chain",
            Want::errno(libc::ECANCELED),
        )
    };
    let chain = vec![
        Request::new(
            nop().flags(Flags::IO_HARDLINK),
            head,
            "hardlink: NOP, head of a hardlinked chain",
        ),
        Request::new(
            bad_read().flags(Flags::IO_HARDLINK),
            Want::errno(libc::EBADF),
            breaker,
        ),
        Request::new(nop(), after, "hardlink: NOP after the failed hardlink"),
    ];
    unsafe {
        submit_and_reap(
            ctx,
            &mut ring,
            chain,
            "IO_HARDLINK chain NOP, READ (fails), NOP",
        )
    }?;

    // A request that fails at init fails its whole chain, the head that
    // was already accepted included: the kernel keeps assembling the chain
    // (so an SQPOLL submission does not cut it) and fails it at the end.
    let chain = vec![
        Request::new(
            nop().flags(Flags::IO_LINK),
            Want::errno(libc::ECANCELED),
            "init-fail: NOP, head of a chain whose next SQE fails at init: cancelled",
        ),
        Request::new(
            bad_read().flags(Flags::IO_LINK | Flags::from_bits_retain(SQE_FLAG_UNDEFINED)),
            Want::errno(libc::EINVAL),
            "init-fail: READ with the undefined SQE flag bit 7, fails at init (-EINVAL)",
        ),
        Request::new(
            nop(),
            Want::errno(libc::ECANCELED),
            "init-fail: NOP after the SQE that failed at init, cancelled",
        ),
    ];
    unsafe {
        submit_and_reap(
            ctx,
            &mut ring,
            chain,
            "IO_LINK chain NOP, READ (fails at init), NOP",
        )
    }?;

    if !ctx.skip_unless(
        &[Feature::CqeSkipSuccess],
        "CQE_SKIP_SUCCESS, and the IO_DRAIN it makes the ring refuse",
    )? {
        skip_success_then_drain(ctx, &mut ring)?;
    }

    let unknown = vec![Request::new(
        with_opcode(nop(), SQE_OPCODE_UNDEFINED),
        Want::errno(libc::EINVAL),
        "unknown opcode 200, fails at init (-EINVAL)",
    )];
    // SAFETY: a NOP references no memory.
    unsafe { submit_and_reap(ctx, &mut ring, unknown, "an SQE with opcode 200") }?;

    drain_on_its_own_ring(ctx)
}

fn skip_success_then_drain(ctx: &mut Ctx, ring: &mut Ring) -> anyhow::Result<()> {
    let nop = || opcode::Nop::new().build();
    let chain = vec![
        Request::new(
            nop().flags(Flags::IO_LINK | Flags::SKIP_SUCCESS),
            Want::no_cqe(),
            "skip: NOP with CQE_SKIP_SUCCESS, posts no CQE",
        ),
        Request::new(nop(), Want::res(0), "skip: NOP linked after it"),
    ];
    // SAFETY (both): a NOP references no memory.
    unsafe {
        submit_and_reap(
            ctx,
            ring,
            chain,
            "NOP with CQE_SKIP_SUCCESS linked to a NOP",
        )
    }?;

    // From its first CQE_SKIP_SUCCESS on, a ring refuses IO_DRAIN: it could
    // no longer count the completions a drain waits for.
    let drained = vec![Request::new(
        nop().flags(Flags::IO_DRAIN),
        Want::errno(libc::EOPNOTSUPP),
        "drain: NOP with IO_DRAIN after a CQE_SKIP_SUCCESS on the ring, fails at init (-EOPNOTSUPP)",
    )];
    unsafe { submit_and_reap(ctx, ring, drained, "a NOP with IO_DRAIN, refused") }
}

fn drain_on_its_own_ring(ctx: &mut Ctx) -> anyhow::Result<()> {
    let nop = || opcode::Nop::new().build();

    // After a drain the kernel went on forcing the ring's next requests
    // through io-wq (REQ_F_FORCE_ASYNC, bit 4 of the flags it traces), so
    // the drain gets a ring of its own, where nothing follows it.
    let mut drain_ring = basic_ring(ctx)?;
    let drained = vec![
        Request::new(nop(), Want::res(0), "drain: NOP"),
        Request::new(
            nop().flags(Flags::IO_DRAIN),
            Want::res(0),
            "drain: NOP with IO_DRAIN, run once the one before completed (through io-wq)",
        ),
    ];
    unsafe {
        submit_and_reap(
            ctx,
            &mut drain_ring,
            drained,
            "NOP, then a NOP with IO_DRAIN",
        )
    }?;
    Ok(())
}
