//! A thread that names itself like io_uring's own threads: `iou-wrk-99`
//! (an io-wq worker's name), then `iou-sqp-99` (an SQPOLL thread's). Any
//! thread may take such a name (`prctl(PR_SET_NAME)`), so a tracer that
//! went by names would file this thread's requests under a kernel worker
//! and, before 5.12's threads, under the ring's owner. Under each name it
//! submits a NOP inline, and a NOP with IOSQE_ASYNC, which a real io-wq
//! worker completes: the tracer must tell the one from the other.

use anyhow::{Context as _, ensure};
use io_uring::{opcode, squeue};

use super::{basic_ring, submit_and_reap};
use crate::workload::{
    ctx::{Ctx, Request},
    requests::Want,
};

const FAKE_NAMES: &[&[u8]] = &[b"iou-wrk-99", b"iou-sqp-99"];

fn set_thread_name(name: &[u8]) -> anyhow::Result<()> {
    let mut terminated = name.to_vec();
    terminated.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (at most 16 bytes).
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, terminated.as_ptr()) };
    ensure!(rc == 0, "PR_SET_NAME: {}", std::io::Error::last_os_error());
    Ok(())
}

pub fn fake_worker_names(ctx: &mut Ctx) -> anyhow::Result<()> {
    // A thread of its own: its name goes with it, and the engine's main
    // thread keeps its own for the scenarios after.
    std::thread::scope(|s| {
        s.spawn(|| in_thread(ctx))
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the fake worker thread panicked")))
    })
}

fn in_thread(ctx: &mut Ctx) -> anyhow::Result<()> {
    let mut ring = basic_ring(ctx)?;
    let result = (|| -> anyhow::Result<()> {
        for name in FAKE_NAMES {
            let shown = String::from_utf8_lossy(name);
            set_thread_name(name).with_context(|| format!("naming the thread {shown}"))?;
            ctx.report_thread_name(Some(name));
            let inline = format!("NOP from a thread named {shown}");
            let offloaded = format!("NOP with IOSQE_ASYNC from a thread named {shown}");
            let nops = vec![
                Request::new(opcode::Nop::new().build(), Want::res(0), &inline),
                Request::new(
                    opcode::Nop::new().build().flags(squeue::Flags::ASYNC),
                    Want::res(0),
                    &offloaded,
                ),
            ];
            // SAFETY: a NOP references no memory.
            unsafe { submit_and_reap(ctx, &mut ring, nops, &format!("2 NOPs as {shown}")) }?;
        }
        Ok(())
    })();
    ctx.report_thread_name(None);
    result
}
