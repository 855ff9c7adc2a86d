//! A ring set up by the engine's own io_uring_setup, mapped and driven
//! through the io-uring crate's queue accessors. Those touch only shared
//! memory: every system call on the ring stays the engine's own.

use std::{
    os::fd::{AsRawFd as _, RawFd},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use io_uring::{IoUring, cqueue, opcode};

use super::abi::IoUringParams;

pub struct Ring {
    inner: IoUring,
}

impl Ring {
    /// Maps the rings of `fd`, which io_uring_setup just returned with
    /// `params` written back. Takes ownership of `fd`, closing it even when
    /// mapping fails.
    pub fn from_setup(fd: RawFd, params: IoUringParams) -> anyhow::Result<Self> {
        // SAFETY: io_uring::Parameters is a repr(transparent) wrapper of the
        // crate's io_uring_params binding, documented as constructible from
        // any correctly laid-out value; ours mirrors the same uapi struct
        // (its size is pinned in abi.rs, and transmute checks it again).
        let params = unsafe { std::mem::transmute::<IoUringParams, io_uring::Parameters>(params) };
        // SAFETY: `fd` is a ring we own and `params` is what the kernel
        // filled in for it. from_fd owns the fd from here, also on error.
        let inner = unsafe { IoUring::from_fd(fd, params) }.context("mmap of the ring")?;
        Ok(Self { inner })
    }

    /// The ring's fd, as io_uring_enter and io_uring_register take it.
    pub fn fd(&self) -> u32 {
        self.inner.as_raw_fd() as u32
    }

    /// Queues `n` NOPs (user_data 0..n) and publishes the new SQ tail; no
    /// system call.
    pub fn push_nops(&mut self, n: u32) -> anyhow::Result<()> {
        let mut sq = self.inner.submission();
        for i in 0..n {
            let nop = opcode::Nop::new().build().user_data(u64::from(i));
            // SAFETY: a NOP references no memory.
            unsafe { sq.push(&nop) }.context("the submission queue is full")?;
        }
        sq.sync();
        Ok(())
    }

    /// Takes every completion posted so far.
    pub fn reap(&mut self) -> Vec<cqueue::Entry> {
        self.inner.completion().collect()
    }

    /// Takes the completions posted so far and checks there are exactly
    /// `n`, all successful.
    pub fn expect_completions(&mut self, n: usize) -> anyhow::Result<Vec<cqueue::Entry>> {
        let cqes = self.reap();
        check_completions(&cqes, n)?;
        Ok(cqes)
    }

    /// Waits for `n` completions by watching the CQ tail, without a system
    /// call: with SQPOLL the kernel thread posts them on its own, and an
    /// enter to wait would be an extra call in the report.
    pub fn poll_completions(
        &mut self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<cqueue::Entry>> {
        let deadline = Instant::now() + timeout;
        let mut cqes = Vec::new();
        while cqes.len() < n {
            cqes.extend(self.inner.completion());
            if cqes.len() >= n {
                break;
            }
            if Instant::now() >= deadline {
                bail!("{} of {n} completions after {timeout:?}", cqes.len());
            }
            thread::sleep(Duration::from_millis(1));
        }
        check_completions(&cqes, n)?;
        Ok(cqes)
    }

    /// Waits until the SQPOLL thread has gone idle and asks to be woken
    /// (IORING_SQ_NEED_WAKEUP), without a system call.
    pub fn poll_need_wakeup(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.inner.submission().need_wakeup() {
            if Instant::now() >= deadline {
                bail!("the SQ thread did not go idle within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

fn check_completions(cqes: &[cqueue::Entry], n: usize) -> anyhow::Result<()> {
    if cqes.len() != n {
        bail!("{} completions, expected {n}", cqes.len());
    }
    if let Some(bad) = cqes.iter().find(|c| c.result() < 0) {
        bail!(
            "request {} failed: {}",
            bad.user_data(),
            std::io::Error::from_raw_os_error(-bad.result())
        );
    }
    Ok(())
}
