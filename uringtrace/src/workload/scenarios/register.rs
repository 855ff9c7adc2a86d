//! io_uring_register opcodes with their argument forms.

use std::{
    fs::File,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure};

use super::{basic_ring, fds::pipe};
use crate::workload::{
    abi::{
        IO_URING_OP_SUPPORTED, IORING_ENTER_GETEVENTS, IORING_OP_NOP, IORING_REGISTER_BUFFERS,
        IORING_REGISTER_ENABLE_RINGS, IORING_REGISTER_EVENTFD, IORING_REGISTER_EVENTFD_ASYNC,
        IORING_REGISTER_FILES, IORING_REGISTER_PROBE, IORING_REGISTER_RESTRICTIONS,
        IORING_RESTRICTION_REGISTER_OP, IORING_RESTRICTION_SQE_OP, IORING_SETUP_R_DISABLED,
        IORING_UNREGISTER_BUFFERS, IORING_UNREGISTER_EVENTFD, IORING_UNREGISTER_FILES,
        IoUringParams, IoUringProbe, IoUringRestriction, PROBE_OPS,
    },
    ctx::{Ctx, Enter},
    pages::Pages,
};

pub fn buffers(ctx: &mut Ctx) -> anyhow::Result<()> {
    let buffers = Pages::new(2)?;
    let page = Pages::page_size();
    let iovecs = [0, page].map(|offset| libc::iovec {
        iov_base: buffers.addr(offset) as *mut libc::c_void,
        iov_len: page,
    });
    let ring = basic_ring(ctx)?;
    let fd = ring.fd();
    // SAFETY: two live iovecs over pages that outlive the ring (declared
    // before it); the kernel keeps them pinned until unregistered.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_BUFFERS,
            iovecs.as_ptr() as u64,
            iovecs.len() as u32,
            "register 2 one-page buffers",
        )
    }?
    .expect(0)?;
    // SAFETY: UNREGISTER_BUFFERS takes no argument.
    unsafe {
        ctx.register(
            fd,
            IORING_UNREGISTER_BUFFERS,
            0,
            0,
            "unregister the buffers",
        )
    }?
    .expect(0)?;
    Ok(())
}

pub fn files(ctx: &mut Ctx) -> anyhow::Result<()> {
    let null = File::open("/dev/null")?;
    let (read_end, _write_end) = pipe()?;
    // -1 leaves a slot empty (sparse), for later direct-descriptor use.
    let fds: [i32; 3] = [null.as_raw_fd(), -1, read_end.as_raw_fd()];
    let ring = basic_ring(ctx)?;
    let fd = ring.fd();
    // SAFETY: a live array of 3 fds, only read.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_FILES,
            fds.as_ptr() as u64,
            fds.len() as u32,
            "register 3 file slots: /dev/null, sparse (-1), a pipe",
        )
    }?
    .expect(0)?;
    // SAFETY: UNREGISTER_FILES takes no argument.
    unsafe { ctx.register(fd, IORING_UNREGISTER_FILES, 0, 0, "unregister the files") }?
        .expect(0)?;
    Ok(())
}

pub fn eventfd(ctx: &mut Ctx) -> anyhow::Result<()> {
    // SAFETY: eventfd has no memory-safety preconditions.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        bail!("eventfd: {}", std::io::Error::last_os_error());
    }
    // SAFETY: eventfd returned a new fd we own.
    let event = unsafe { OwnedFd::from_raw_fd(raw) };
    let event_fd: i32 = event.as_raw_fd();
    let event_ptr = std::ptr::from_ref(&event_fd) as u64;

    let mut ring = basic_ring(ctx)?;
    let fd = ring.fd();
    // SAFETY: a live int holding the eventfd, only read.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_EVENTFD,
            event_ptr,
            1,
            "register an eventfd",
        )
    }?
    .expect(0)?;
    ctx.queue_nops(&mut ring, 1, "NOP whose completion signals the eventfd")?;
    ctx.enter(
        Enter::new(fd, 1, 0, 0),
        "submit a NOP, whose completion signals the eventfd",
    )?
    .expect(1)?;
    ctx.reap(&mut ring, 1)?;
    let count = read_eventfd(&event, Duration::from_millis(500))?;
    ensure!(
        count == 1,
        "the eventfd counted {count} completions, expected 1"
    );
    // SAFETY: UNREGISTER_EVENTFD takes no argument.
    unsafe {
        ctx.register(
            fd,
            IORING_UNREGISTER_EVENTFD,
            0,
            0,
            "unregister the eventfd",
        )
    }?
    .expect(0)?;
    // SAFETY: as for REGISTER_EVENTFD.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_EVENTFD_ASYNC,
            event_ptr,
            1,
            "register the eventfd for async completions only",
        )
    }?
    .expect(0)?;
    // SAFETY: UNREGISTER_EVENTFD takes no argument.
    unsafe {
        ctx.register(
            fd,
            IORING_UNREGISTER_EVENTFD,
            0,
            0,
            "unregister the async eventfd",
        )
    }?
    .expect(0)?;
    Ok(())
}

/// Reads the eventfd counter, waiting a little in case the kernel signals
/// it from deferred work rather than inline.
fn read_eventfd(event: &OwnedFd, timeout: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into `count`.
        let n = unsafe {
            libc::read(
                event.as_raw_fd(),
                std::ptr::from_mut(&mut count).cast(),
                size_of::<u64>(),
            )
        };
        if n == size_of::<u64>() as isize {
            return Ok(count);
        }
        let err = std::io::Error::last_os_error();
        if n >= 0 || err.raw_os_error() != Some(libc::EAGAIN) {
            bail!("reading the eventfd: {err}");
        }
        if Instant::now() >= deadline {
            bail!("the eventfd was not signalled within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(1));
    }
}

pub fn probe(ctx: &mut Ctx) -> anyhow::Result<()> {
    let ring = basic_ring(ctx)?;
    // The kernel refuses a probe buffer that is not all zeroes.
    let mut probe = Box::<IoUringProbe>::default();
    // SAFETY: a zeroed probe with room for PROBE_OPS ops, written back.
    unsafe {
        ctx.register(
            ring.fd(),
            IORING_REGISTER_PROBE,
            std::ptr::from_mut(&mut *probe) as u64,
            PROBE_OPS as u32,
            "probe the supported opcodes, room for 256",
        )
    }?
    .expect(0)?;
    let nop = probe.ops[usize::from(IORING_OP_NOP)];
    ensure!(
        probe.ops_len > 0 && nop.flags & IO_URING_OP_SUPPORTED != 0,
        "the probe does not list NOP as supported (ops_len {})",
        probe.ops_len
    );
    Ok(())
}

pub fn restrictions(ctx: &mut Ctx) -> anyhow::Result<()> {
    // Restrictions can only be registered while the ring is disabled.
    let params = IoUringParams {
        flags: IORING_SETUP_R_DISABLED,
        ..Default::default()
    };
    let mut ring = ctx.ring(8, params, "8-entry ring, R_DISABLED")?;
    let fd = ring.fd();
    ctx.enter(Enter::new(fd, 0, 0, 0), "enter on the ring still disabled")?
        .expect_errno(libc::EBADFD)?;

    let allow = [
        IoUringRestriction {
            opcode: IORING_RESTRICTION_SQE_OP,
            arg: IORING_OP_NOP,
            ..Default::default()
        },
        IoUringRestriction {
            opcode: IORING_RESTRICTION_REGISTER_OP,
            arg: IORING_REGISTER_PROBE as u8,
            ..Default::default()
        },
    ];
    // SAFETY: a live array of 2 restrictions, only read.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_RESTRICTIONS,
            allow.as_ptr() as u64,
            allow.len() as u32,
            "allow only the NOP request and the PROBE register opcode",
        )
    }?
    .expect(0)?;
    // SAFETY: ENABLE_RINGS takes no argument.
    unsafe { ctx.register(fd, IORING_REGISTER_ENABLE_RINGS, 0, 0, "enable the ring") }?
        .expect(0)?;

    ctx.queue_nops(&mut ring, 1, "NOP, the one request the restrictions allow")?;
    ctx.enter(
        Enter::new(fd, 1, 1, IORING_ENTER_GETEVENTS),
        "submit and wait for an allowed NOP",
    )?
    .expect(1)?;
    ctx.reap(&mut ring, 1)?;

    let mut probe = Box::<IoUringProbe>::default();
    // SAFETY: a zeroed probe with room for PROBE_OPS ops, written back.
    unsafe {
        ctx.register(
            fd,
            IORING_REGISTER_PROBE,
            std::ptr::from_mut(&mut *probe) as u64,
            PROBE_OPS as u32,
            "PROBE, an allowed register opcode",
        )
    }?
    .expect(0)?;
    // SAFETY: UNREGISTER_BUFFERS takes no argument.
    unsafe {
        ctx.register(
            fd,
            IORING_UNREGISTER_BUFFERS,
            0,
            0,
            "UNREGISTER_BUFFERS, a register opcode not allowed",
        )
    }?
    .expect_errno(libc::EACCES)?;
    Ok(())
}
