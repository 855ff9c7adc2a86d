//! The files, pipes and sockets scenarios make requests on, made with
//! plain system calls: only io_uring calls belong in the ground truth.

use std::{
    fs::{File, OpenOptions},
    os::{
        fd::{AsRawFd, FromRawFd as _, OwnedFd, RawFd},
        unix::fs::OpenOptionsExt as _,
    },
};

use anyhow::{Context as _, bail};

fn check(ret: libc::c_int, what: &str) -> anyhow::Result<libc::c_int> {
    if ret < 0 {
        bail!("{what}: {}", std::io::Error::last_os_error());
    }
    Ok(ret)
}

/// A pipe: (read end, write end). Both ends block, so a read on the empty
/// pipe waits (io_uring then arms a poll rather than fail).
pub fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    check(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) },
        "pipe2",
    )?;
    // SAFETY: pipe2 returned two new fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A connected pair of Unix stream sockets.
pub fn socketpair() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds socketpair writes.
    check(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        },
        "socketpair(AF_UNIX, SOCK_STREAM)",
    )?;
    // SAFETY: socketpair returned two new fds we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// An unnamed, empty, readable and writable file in the temp directory
/// (O_TMPFILE): nothing to clean up, whatever happens to the run.
pub fn temp_file() -> anyhow::Result<File> {
    let dir = std::env::temp_dir();
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(&dir)
        .with_context(|| {
            format!(
                "creating an O_TMPFILE file in {} (set TMPDIR to a file system that supports it)",
                dir.display()
            )
        })
}

/// Writes all of `data` with write(2).
pub fn write_all(fd: &impl AsRawFd, data: &[u8]) -> anyhow::Result<()> {
    // SAFETY: reads `data.len()` bytes from `data`.
    let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
    if n != data.len() as isize {
        bail!(
            "write of {} bytes returned {n}: {}",
            data.len(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The fd number the next new fd of this process gets: the lowest free
/// one. Exact as long as the process opens nothing else in between. Found
/// by duplicating `open` (any fd of ours), not by opening a file: the
/// evasion scenario makes no open(2).
pub fn lowest_free_fd(open: RawFd) -> anyhow::Result<i32> {
    // SAFETY: F_DUPFD_CLOEXEC of an fd we own makes a new fd we close.
    let dup = check(
        unsafe { libc::fcntl(open, libc::F_DUPFD_CLOEXEC, 0) },
        "fcntl(F_DUPFD_CLOEXEC)",
    )?;
    // SAFETY: `dup` is ours.
    unsafe { libc::close(dup) };
    Ok(dup)
}

/// A TCP socket listening on 127.0.0.1 at a port the kernel picks, and
/// that address.
pub fn tcp_listener() -> anyhow::Result<(OwnedFd, libc::sockaddr_in)> {
    // SAFETY: socket has no memory-safety preconditions.
    let raw = check(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) },
        "socket(AF_INET, SOCK_STREAM)",
    )?;
    // SAFETY: socket returned a new fd we own.
    let listener = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut addr = loopback(0);
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` is a sockaddr_in of `len` bytes.
    check(
        unsafe { libc::bind(raw, std::ptr::from_ref(&addr).cast(), len) },
        "bind to 127.0.0.1:0",
    )?;
    // SAFETY: listen has no memory-safety preconditions.
    check(unsafe { libc::listen(raw, 4) }, "listen")?;
    let mut got = len;
    // SAFETY: `addr` has room for `got` bytes, written back.
    check(
        unsafe { libc::getsockname(raw, std::ptr::from_mut(&mut addr).cast(), &mut got) },
        "getsockname",
    )?;
    Ok((listener, addr))
}

/// An unconnected TCP socket.
pub fn tcp_socket() -> anyhow::Result<OwnedFd> {
    // SAFETY: socket has no memory-safety preconditions.
    let raw = check(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) },
        "socket(AF_INET, SOCK_STREAM)",
    )?;
    // SAFETY: socket returned a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// 127.0.0.1:`port`.
fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// shutdown(2) of the writing side: the peer reads end of file.
pub fn shutdown_write(fd: &OwnedFd) -> anyhow::Result<()> {
    // SAFETY: shutdown has no memory-safety preconditions.
    check(
        unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) },
        "shutdown(SHUT_WR)",
    )?;
    Ok(())
}
