//! A ring set up by the engine's own io_uring_setup, mapped and driven
//! through the io-uring crate's queue accessors. Those touch only shared
//! memory: every system call on the ring stays the engine's own.

use std::{
    os::fd::{AsRawFd as _, RawFd},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use io_uring::{IoUring, cqueue, squeue};

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

    /// Copies `sqes` into the SQ and publishes the new tail once, so the
    /// kernel (an SQPOLL thread included) sees all of them or none, and a
    /// linked chain never arrives cut in two. No system call.
    ///
    /// # Safety
    /// Whatever the SQEs point to (buffers, iovecs, timespecs, addresses)
    /// must stay valid until their requests complete.
    pub unsafe fn push(&mut self, sqes: &[squeue::Entry]) -> anyhow::Result<()> {
        let mut sq = self.inner.submission();
        // SAFETY: the caller vouches for what the SQEs point to.
        unsafe { sq.push_multiple(sqes) }.with_context(|| {
            format!(
                "no room for {} SQEs: {} of {} queued",
                sqes.len(),
                sq.len(),
                sq.capacity()
            )
        })?;
        sq.sync();
        Ok(())
    }

    /// Takes every completion posted so far. No system call.
    pub fn reap(&mut self) -> Vec<cqueue::Entry> {
        self.inner.completion().collect()
    }

    /// Takes every completion posted so far without keeping them (the
    /// benchmark's reaping, no allocation), failing on one whose res is not
    /// 0; returns how many. No system call.
    pub fn reap_successes(&mut self) -> anyhow::Result<usize> {
        let mut n = 0;
        for cqe in self.inner.completion() {
            if cqe.result() != 0 {
                bail!(
                    "CQE for user_data {} has res {}",
                    cqe.user_data(),
                    cqe.result()
                );
            }
            n += 1;
        }
        Ok(n)
    }

    /// Waits for `n` completions by watching the CQ tail, without a system
    /// call: with SQPOLL the kernel thread posts them on its own, and an
    /// enter to wait would be an extra call in the report. Returns what
    /// was posted, which may be more than `n`.
    pub fn poll_reap(&mut self, n: usize, timeout: Duration) -> anyhow::Result<Vec<cqueue::Entry>> {
        let deadline = Instant::now() + timeout;
        let mut cqes = Vec::new();
        loop {
            cqes.extend(self.inner.completion());
            if cqes.len() >= n {
                return Ok(cqes);
            }
            if Instant::now() >= deadline {
                bail!("{} of {n} completions after {timeout:?}", cqes.len());
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether the kernel holds completions it could not post because the
    /// CQ was full (IORING_SQ_CQ_OVERFLOW).
    pub fn cq_overflowed(&mut self) -> bool {
        self.inner.submission().cq_overflow()
    }

    /// Completions the kernel dropped for good (the CQ ring's overflow
    /// counter), which a kernel with IORING_FEAT_NODROP only does when it
    /// cannot allocate an overflow entry.
    pub fn cqes_dropped(&mut self) -> u32 {
        self.inner.completion().overflow()
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
