//! Socket requests: ACCEPT, CONNECT, SEND, RECV, SHUTDOWN and CLOSE over
//! TCP on 127.0.0.1, and multishot RECVs into a registered ring of
//! provided buffers.

use std::os::fd::{AsRawFd as _, FromRawFd as _, IntoRawFd as _, OwnedFd};

use anyhow::{bail, ensure};
use io_uring::{opcode, squeue::Flags, types::Fd};

use super::{basic_ring, fds, submit_and_reap, submit_and_wait};
use crate::workload::{
    abi::{
        BUF_RING_TAIL_OFFSET, IORING_CQE_BUFFER_SHIFT, IORING_CQE_F_BUFFER, IORING_CQE_F_MORE,
        IORING_CQE_F_SOCK_NONEMPTY, IORING_ENTER_GETEVENTS, IORING_REGISTER_PBUF_RING, IoUringBuf,
        IoUringBufReg,
    },
    ctx::{Ctx, Enter, Request},
    kernel_features::Feature,
    pages::Pages,
    requests::{Touches, Want},
    ring::Ring,
};

const PING: &[u8] = b"ping over loopback";

pub fn net_loopback(ctx: &mut Ctx) -> anyhow::Result<()> {
    let (listener, addr) = fds::tcp_listener()?;
    let client = fds::tcp_socket()?;
    let mut ring = basic_ring(ctx)?;
    let shutdown = !ctx.skip_unless(
        &[Feature::RenameUnlinkShutdown],
        "SHUTDOWN and the RECV at end of file",
    )?;
    let accepted = accept_and_connect(
        ctx,
        &mut ring,
        (&listener, &client, &addr),
        "ACCEPT on a listening TCP socket: res = the new fd",
        "CONNECT to the listener on 127.0.0.1",
    )?;

    let mut buf = [0u8; 64];
    let len = PING.len() as i32;
    let exchange = vec![
        Request::new(
            opcode::Send::new(Fd(client.as_raw_fd()), PING.as_ptr(), PING.len() as u32).build(),
            Want::res(len).touches(Touches {
                fd: Some(client.as_raw_fd()),
                fixed_file: Some(false),
                len: Some(PING.len() as u64),
                ..Touches::default()
            }),
            "SEND of 18 bytes from the client",
        ),
        Request::new(
            opcode::Recv::new(Fd(accepted.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32).build(),
            Want::res(len),
            "RECV of the 18 bytes on the accepted socket",
        ),
    ];
    unsafe { submit_and_reap(ctx, &mut ring, exchange, "a SEND and a RECV") }?;
    ensure!(
        &buf[..PING.len()] == PING,
        "RECV returned other bytes than were sent"
    );

    if shutdown {
        eof_after_shutdown(ctx, &mut ring, &client, &accepted, &mut buf)?;
    }

    let close = Request::new(
        opcode::Close::new(Fd(accepted.into_raw_fd())).build(),
        Want::res(0),
        "CLOSE of the accepted socket",
    );
    unsafe { submit_and_reap(ctx, &mut ring, vec![close], "a CLOSE") }?;
    Ok(())
}

/// An ACCEPT on `listener` and a CONNECT of `client` to its `addr`, in one
/// submission; the accepted socket.
pub(super) fn accept_and_connect(
    ctx: &mut Ctx,
    ring: &mut Ring,
    (listener, client, addr): (&OwnedFd, &OwnedFd, &libc::sockaddr_in),
    accept_note: &str,
    connect_note: &str,
) -> anyhow::Result<OwnedFd> {
    // ACCEPT's res is the fd it installs: the lowest free one, as nothing
    // else opens an fd until it completes.
    let accepted_fd = fds::lowest_free_fd(ring.fd() as i32)?;
    let connect = vec![
        Request::new(
            opcode::Accept::new(
                Fd(listener.as_raw_fd()),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
            .flags(libc::SOCK_CLOEXEC)
            .build(),
            Want::res(accepted_fd),
            accept_note,
        ),
        Request::new(
            opcode::Connect::new(
                Fd(client.as_raw_fd()),
                std::ptr::from_ref(addr).cast(),
                size_of_val(addr) as libc::socklen_t,
            )
            .build(),
            Want::res(0).touches(Touches {
                fd: Some(client.as_raw_fd()),
                fixed_file: Some(false),
                addr: Some(format!("127.0.0.1:{}", u16::from_be(addr.sin_port))),
                family: Some("inet"),
                ..Touches::default()
            }),
            connect_note,
        ),
    ];
    // SAFETY: the address lives until the requests are reaped, within the
    // call.
    unsafe { submit_and_reap(ctx, ring, connect, "an ACCEPT and a CONNECT") }?;
    // SAFETY: the ACCEPT just installed this fd, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(accepted_fd) })
}

fn eof_after_shutdown(
    ctx: &mut Ctx,
    ring: &mut Ring,
    client: &OwnedFd,
    accepted: &OwnedFd,
    buf: &mut [u8; 64],
) -> anyhow::Result<()> {
    // Kernels before the flag post the end of file with no flags.
    let nonempty = if ctx.has(Feature::SockNonempty) {
        IORING_CQE_F_SOCK_NONEMPTY
    } else {
        0
    };
    let eof = vec![
        Request::new(
            opcode::Shutdown::new(Fd(client.as_raw_fd()), libc::SHUT_WR)
                .build()
                .flags(Flags::IO_LINK),
            Want::res(0),
            "SHUTDOWN(SHUT_WR) of the client, linked to the RECV",
        ),
        Request::new(
            opcode::Recv::new(Fd(accepted.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32).build(),
            // TCP counts a received FIN as readable (tcp_inq_hint), so even
            // the end of file comes flagged SOCK_NONEMPTY.
            Want::res(0).cflags(nonempty),
            "RECV on the accepted socket after the peer's shutdown: end of file (res 0, SOCK_NONEMPTY)",
        ),
    ];
    // SAFETY: the buffer lives until the requests are reaped, within the
    // call.
    unsafe { submit_and_reap(ctx, ring, eof, "a SHUTDOWN and a linked RECV") }
}

/// The provided-buffer group the multishot RECVs take buffers from.
const BGID: u16 = 7;
const BUFFERS: u16 = 8;
const BUFFER_LEN: usize = 64;

/// A multishot RECV posts one CQE per message, each flagged F_MORE and
/// F_BUFFER with the id of the buffer it filled; it ends with a CQE
/// without F_MORE: end of file after the peer's shutdown (res 0), or
/// -ECANCELED after an ASYNC_CANCEL. Each message is sent (send(2)) only
/// once the CQE of the one before is reaped, so no two share a CQE.
pub fn multishot_recv(ctx: &mut Ctx) -> anyhow::Result<()> {
    // Both pinned by the kernel until the ring goes: declared before it.
    let mut buf_ring = Pages::new(1)?;
    let buffers = Pages::new(1)?;
    for bid in 0..BUFFERS {
        let entry = IoUringBuf {
            addr: buffers.addr(usize::from(bid) * BUFFER_LEN),
            len: BUFFER_LEN as u32,
            bid,
            resv: 0,
        };
        buf_ring.write(usize::from(bid) * size_of::<IoUringBuf>(), entry)?;
    }
    // The tail overlays entry 0, so it is written after the entries.
    buf_ring.write(BUF_RING_TAIL_OFFSET, BUFFERS)?;
    let mut ring = basic_ring(ctx)?;
    if ctx.skip_unless(&[Feature::MultishotRecv], "")? {
        return Ok(());
    }
    let reg = IoUringBufReg {
        ring_addr: buf_ring.addr(0),
        ring_entries: u32::from(BUFFERS),
        bgid: BGID,
        ..Default::default()
    };
    // SAFETY: a live buf_reg, only read; the buffer ring it names
    // outlives the ring.
    unsafe {
        ctx.register(
            ring.fd(),
            IORING_REGISTER_PBUF_RING,
            std::ptr::from_ref(&reg) as u64,
            1,
            "register a ring of 8 provided 64-byte buffers, group 7",
        )
    }?
    .expect(0)?;

    // Buffers are used in ring order: ids 0, 1, 2 for the first RECV, 3
    // and 4 for the second.
    let (reader, writer) = fds::socketpair()?;
    let messages: [&[u8]; 3] = [b"first", b"second message", b"the third message"];
    let want = Want::multishot(received(&messages, 0), Want::res(0));
    let user_data = arm(
        ctx,
        &mut ring,
        &reader,
        want,
        "RECV multishot (3 messages, then end of file after the peer's shutdown)",
    )?;
    for (i, message) in messages.iter().enumerate() {
        deliver(ctx, &mut ring, &writer, message, &buffers, i)?;
    }
    fds::shutdown_write(&writer)?;
    ctx.enter(
        Enter::new(ring.fd(), 0, 1, IORING_ENTER_GETEVENTS),
        &format!("wait for the end of RECV multishot {user_data}: the peer shut down"),
    )?
    .expect(0)?;
    ctx.reap(&mut ring, 1)?;

    let (reader, writer) = fds::socketpair()?;
    let messages: [&[u8]; 2] = [b"fourth", b"fifth message"];
    let want = Want::multishot(received(&messages, 3), Want::errno(libc::ECANCELED));
    let user_data = arm(
        ctx,
        &mut ring,
        &reader,
        want,
        "RECV multishot (2 messages, then cancelled by ASYNC_CANCEL: -ECANCELED)",
    )?;
    for (i, message) in messages.iter().enumerate() {
        deliver(ctx, &mut ring, &writer, message, &buffers, 3 + i)?;
    }
    let cancel = Request::new(
        opcode::AsyncCancel::new(user_data).build(),
        Want::res(0),
        "ASYNC_CANCEL of the second RECV multishot, by user_data",
    );
    // SAFETY: an ASYNC_CANCEL references no memory.
    unsafe { ctx.queue(&mut ring, vec![cancel]) }?;
    submit_and_wait(
        ctx,
        &mut ring,
        1,
        2,
        "an ASYNC_CANCEL and the RECV multishot it ends",
    )?;
    Ok(())
}

/// The F_MORE CQEs a multishot RECV posts for `messages`, whose buffers
/// are taken from id `first_bid` on.
fn received(messages: &[&[u8]], first_bid: u16) -> Vec<(i32, u32)> {
    (first_bid..)
        .zip(messages)
        .map(|(bid, message)| {
            (
                message.len() as i32,
                IORING_CQE_F_MORE
                    | IORING_CQE_F_BUFFER
                    | (u32::from(bid) << IORING_CQE_BUFFER_SHIFT),
            )
        })
        .collect()
}

/// Queues and submits a multishot RECV on `socket` with nothing to read
/// yet, so it posts nothing until a message comes.
fn arm(
    ctx: &mut Ctx,
    ring: &mut Ring,
    socket: &OwnedFd,
    want: Want,
    note: &str,
) -> anyhow::Result<u64> {
    let recv = Request::new(
        opcode::RecvMulti::new(Fd(socket.as_raw_fd()), BGID).build(),
        want,
        note,
    );
    // SAFETY: the RECV's memory is the registered buffer ring, which
    // outlives the ring.
    let [user_data] = unsafe { ctx.queue(ring, vec![recv]) }?[..] else {
        bail!("queueing one RECV gave other than one user_data");
    };
    ctx.enter(
        Enter::new(ring.fd(), 1, 0, 0),
        &format!("submit RECV multishot {user_data} on an empty socket"),
    )?
    .expect(1)?;
    ctx.reap(ring, 0)?;
    Ok(user_data)
}

/// Sends `message` with send(2) and reaps the one CQE the multishot RECV
/// posts for it, checking the bytes landed in buffer `bid`.
fn deliver(
    ctx: &mut Ctx,
    ring: &mut Ring,
    writer: &OwnedFd,
    message: &[u8],
    buffers: &Pages,
    bid: usize,
) -> anyhow::Result<()> {
    fds::write_all(writer, message)?;
    ctx.enter(
        Enter::new(ring.fd(), 0, 1, IORING_ENTER_GETEVENTS),
        &format!(
            "wait for the RECV multishot CQE of a {}-byte message",
            message.len()
        ),
    )?
    .expect(0)?;
    ctx.reap(ring, 1)?;
    ensure!(
        buffers.bytes(bid * BUFFER_LEN, message.len())? == message,
        "provided buffer {bid} does not hold the message sent"
    );
    Ok(())
}
