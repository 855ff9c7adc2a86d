//! What the 2025 "curing" rootkit showed: a program can read files and talk
//! to the network through io_uring alone, and syscall monitors (Falco,
//! auditd rules on openat/connect, strace -e trace=file,network) see none
//! of it. This scenario opens and reads /etc/passwd, connects to a
//! listener on 127.0.0.1, sends what it read and receives it on the other
//! side, all as io_uring requests: between its first io_uring call and its
//! exit it makes no open, openat, read, connect, accept, send or recv
//! system call (the socket, bind and listen that set up the listener, and
//! the writes of the ground truth, are the only other calls).

use std::os::fd::{AsRawFd as _, FromRawFd as _, IntoRawFd as _, OwnedFd};

use anyhow::{Context as _, ensure};
use io_uring::{opcode, types::Fd};

use super::{basic_ring, fds, submit_and_reap};
use crate::workload::{
    ctx::{Ctx, Request},
    requests::{Touches, Want},
};

/// The file read: on every Linux system, readable by anyone, and the first
/// thing an intruder looks at.
const TARGET: &std::ffi::CStr = c"/etc/passwd";
/// Read at most this much of it.
const CHUNK: usize = 4096;
/// The kernel's O_LARGEFILE (asm-generic/fcntl.h), which it adds to every
/// open on 64-bit and which a tracer reads back; glibc's constant is 0.
const O_LARGEFILE: u64 = 0o100000;

pub fn evasion(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (listener, addr) = fds::tcp_listener()?;
    let client = fds::tcp_socket()?;
    let mut ring = basic_ring(ctx)?;
    // What READ returns: the file's size up to CHUNK (statx, not an open).
    let size = std::fs::metadata(TARGET.to_str()?)
        .with_context(|| format!("stat {TARGET:?}"))?
        .len();
    let want_read = size.min(CHUNK as u64) as i32;

    // The lowest free fd, found without opening anything (which this
    // scenario must not do).
    let file_fd = fds::lowest_free_fd(ring.fd() as i32)?;
    let open_flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
    let open = Request::new(
        opcode::OpenAt::new(Fd(libc::AT_FDCWD), TARGET.as_ptr())
            .flags(open_flags as i32)
            .build(),
        Want::res(file_fd).touches(Touches {
            dfd: Some(libc::AT_FDCWD),
            path: Some(TARGET.to_string_lossy().into_owned()),
            open_flags: Some(open_flags | O_LARGEFILE),
            mode: Some(0),
            ..Touches::default()
        }),
        "OPENAT /etc/passwd read-only, no open(2)",
    );
    // SAFETY (each submit_and_reap): the path, address and buffers live
    // until the requests are reaped, within the call.
    unsafe { submit_and_reap(ctx, &mut ring, vec![open], "an OPENAT of /etc/passwd") }?;
    // SAFETY: the OPENAT just installed this fd, and nothing else owns it.
    let file = unsafe { OwnedFd::from_raw_fd(file_fd) };

    let mut stolen = vec![0u8; CHUNK];
    let read = Request::new(
        opcode::Read::new(Fd(file.as_raw_fd()), stolen.as_mut_ptr(), CHUNK as u32)
            .offset(0)
            .build(),
        Want::res(want_read).touches(Touches {
            fd: Some(file.as_raw_fd()),
            fixed_file: Some(false),
            offset: Some(0),
            len: Some(CHUNK as u64),
            ..Touches::default()
        }),
        "READ of /etc/passwd, no read(2)",
    );
    unsafe { submit_and_reap(ctx, &mut ring, vec![read], "a READ of it") }?;
    stolen.truncate(want_read as usize);

    let accepted = super::requests_net::accept_and_connect(
        ctx,
        &mut ring,
        (&listener, &client, &addr),
        "ACCEPT on the listener (the collecting side), no accept(2)",
        "CONNECT to 127.0.0.1, no connect(2)",
    )?;

    let mut received = vec![0u8; CHUNK];
    let exfiltrate = vec![
        Request::new(
            opcode::Send::new(Fd(client.as_raw_fd()), stolen.as_ptr(), stolen.len() as u32).build(),
            Want::res(want_read).touches(Touches {
                fd: Some(client.as_raw_fd()),
                fixed_file: Some(false),
                len: Some(stolen.len() as u64),
                ..Touches::default()
            }),
            "SEND of what was read, no send(2)",
        ),
        Request::new(
            opcode::Recv::new(
                Fd(accepted.as_raw_fd()),
                received.as_mut_ptr(),
                received.len() as u32,
            )
            .build(),
            Want::res(want_read),
            "RECV of it on the collecting side, no recv(2)",
        ),
    ];
    unsafe { submit_and_reap(ctx, &mut ring, exfiltrate, "a SEND and a RECV") }?;
    ensure!(
        received[..stolen.len()] == stolen[..],
        "the bytes received are not the bytes sent"
    );

    // Closed through io_uring too: close(2) is harmless, but a rootkit
    // leaves nothing a syscall monitor could correlate.
    let close = vec![
        Request::new(
            opcode::Close::new(Fd(file.into_raw_fd())).build(),
            Want::res(0),
            "CLOSE of /etc/passwd",
        ),
        Request::new(
            opcode::Close::new(Fd(accepted.into_raw_fd())).build(),
            Want::res(0),
            "CLOSE of the accepted socket",
        ),
    ];
    unsafe { submit_and_reap(ctx, &mut ring, close, "two CLOSEs") }?;
    Ok(())
}
