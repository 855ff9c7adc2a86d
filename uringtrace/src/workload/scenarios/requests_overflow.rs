//! More completions than the CQ holds: the kernel keeps the excess on its
//! overflow list (IORING_SQ_CQ_OVERFLOW) and moves it to the CQ when an
//! enter finds room.

use anyhow::ensure;

use crate::workload::{
    abi::{IORING_ENTER_GETEVENTS, IORING_SETUP_CQSIZE, IoUringParams},
    ctx::{Ctx, Enter, Request},
    requests::Want,
};

const ENTRIES: u32 = 4;

/// Two batches of 4 NOPs on a ring whose CQ holds 4: the first batch fills
/// the CQ, so every NOP of the second completes onto the overflow list.
/// NOPs complete inline in submission order, so which ones overflow is
/// the same on every run.
pub fn cq_overflow(ctx: &mut Ctx) -> anyhow::Result<()> {
    let params = IoUringParams {
        flags: IORING_SETUP_CQSIZE,
        cq_entries: ENTRIES,
        ..Default::default()
    };
    let mut ring = ctx.ring(ENTRIES, params, "4-entry ring, CQSIZE: 4 CQ entries")?;
    let fd = ring.fd();

    let first = ctx.queue_nops(&mut ring, ENTRIES, "NOP of the first batch: fills the CQ")?;
    ctx.enter(
        Enter::new(fd, ENTRIES, 0, 0),
        "submit 4 NOPs: the CQ is now full",
    )?
    .expect(i64::from(ENTRIES))?;
    let nops = (0..ENTRIES)
        .map(|_| {
            Request::new(
                io_uring::opcode::Nop::new().build(),
                Want::res(0).overflowed(),
                "NOP of the second batch: completes while the CQ is full (overflow)",
            )
        })
        .collect();
    // SAFETY: a NOP references no memory.
    let second = unsafe { ctx.queue(&mut ring, nops) }?;
    ctx.enter(
        Enter::new(fd, ENTRIES, 0, 0),
        "submit 4 more NOPs: their completions overflow",
    )?
    .expect(i64::from(ENTRIES))?;
    ensure!(
        ring.cq_overflowed(),
        "the kernel did not flag a CQ overflow after 8 completions into a 4-entry CQ"
    );

    let reaped = ctx.reap(&mut ring, ENTRIES as usize)?;
    ensure!(
        reaped
            .iter()
            .map(|c| c.user_data())
            .eq(first.iter().copied()),
        "the CQ held other completions than the first batch's"
    );
    ctx.enter(
        Enter::new(fd, 0, ENTRIES, IORING_ENTER_GETEVENTS),
        "wait for 4: flushes the overflowed completions into the CQ",
    )?
    .expect(0)?;
    let reaped = ctx.reap(&mut ring, ENTRIES as usize)?;
    ensure!(
        reaped
            .iter()
            .map(|c| c.user_data())
            .eq(second.iter().copied()),
        "the overflow flush brought other completions than the second batch's"
    );
    ensure!(
        !ring.cq_overflowed() && ring.cqes_dropped() == 0,
        "completions still overflowed ({}) or dropped ({}) after the flush",
        ring.cq_overflowed(),
        ring.cqes_dropped()
    );
    Ok(())
}
