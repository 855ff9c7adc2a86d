//! Requests in bulk: NOPs, the cheapest request there is, in numbers.

use crate::workload::{
    abi::{IORING_ENTER_GETEVENTS, IoUringParams},
    ctx::{Ctx, Enter},
};

const BATCHES: u32 = 8;
const BATCH: u32 = 32;

/// 256 NOPs, 32 per io_uring_enter, each batch reaped before the next so
/// the CQ (64 entries) never fills.
pub fn nop_storm(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ring = ctx.ring(BATCH, IoUringParams::default(), "32-entry ring, no flags")?;
    let fd = ring.fd();
    for batch in 1..=BATCHES {
        ctx.queue_nops(&mut ring, BATCH, &format!("NOP of batch {batch}/{BATCHES}"))?;
        ctx.enter(
            Enter::new(fd, BATCH, BATCH, IORING_ENTER_GETEVENTS),
            &format!("submit and wait for batch {batch}/{BATCHES}: 32 NOPs"),
        )?
        .expect(i64::from(BATCH))?;
        ctx.reap(&mut ring, BATCH as usize)?;
    }
    Ok(())
}
