//! Requests on a regular file: plain, vectored and fixed-buffer reads and
//! writes, a read through a registered (fixed) file, and the same kinds of
//! requests forced through io-wq with IOSQE_ASYNC.

use std::os::fd::AsRawFd as _;

use anyhow::ensure;
use io_uring::{
    opcode,
    squeue::Flags,
    types::{Fd, Fixed},
};

use super::{basic_ring, fds::temp_file, submit_and_reap};
use crate::workload::{
    abi::{IORING_REGISTER_BUFFERS, IORING_REGISTER_FILES},
    ctx::{Ctx, Request},
    pages::Pages,
    requests::{Touches, Want},
};

/// What the scenarios write: printable, and different at every offset a
/// request reads, so a read from the wrong place shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'!' + (i % 94) as u8).collect()
}

/// Where file-io's writes go: each request its own range of the file.
const PLAIN: std::ops::Range<usize> = 0..64;
const VECTORED: std::ops::Range<usize> = 64..112;
const FIXED: std::ops::Range<usize> = 112..240;
const FILE_LEN: usize = 240;

/// Where in the registered page READ_FIXED lands, clear of what
/// WRITE_FIXED wrote.
const FIXED_READ_AT: usize = 2048;

/// What a read or write on `fd` touches: its offset and length (the
/// iovec count for vectored ones).
fn io(fd: i32, offset: usize, len: usize) -> Touches {
    Touches {
        fd: Some(fd),
        fixed_file: Some(false),
        offset: Some(offset as u64),
        len: Some(len as u64),
        ..Touches::default()
    }
}

pub fn file_io(ctx: &mut Ctx) -> anyhow::Result<()> {
    let file = temp_file()?;
    let raw = file.as_raw_fd();
    let fd = Fd(raw);
    let data = pattern(FILE_LEN);
    // Registered buffers must outlive the ring: declared before it.
    let mut registered = Pages::new(1)?;
    let mut ring = basic_ring(ctx)?;

    let write = opcode::Write::new(fd, data[PLAIN].as_ptr(), PLAIN.len() as u32)
        .offset(PLAIN.start as u64)
        .build();
    let request = Request::new(
        write,
        Want::res(64).touches(io(raw, 0, 64)),
        "WRITE of 64 bytes at offset 0",
    );
    // SAFETY (each submit_and_reap): the buffers and iovecs the SQEs point
    // to live until the requests are reaped, at the end of the call.
    unsafe { submit_and_reap(ctx, &mut ring, vec![request], "a WRITE") }?;

    let mut plain = [0u8; PLAIN.end - PLAIN.start];
    let read = opcode::Read::new(fd, plain.as_mut_ptr(), plain.len() as u32)
        .offset(PLAIN.start as u64)
        .build();
    let request = Request::new(
        read,
        Want::res(64).touches(io(raw, 0, 64)),
        "READ of 64 bytes at offset 0",
    );
    unsafe { submit_and_reap(ctx, &mut ring, vec![request], "a READ") }?;
    ensure!(
        plain[..] == data[PLAIN],
        "READ returned other bytes than WRITE wrote"
    );

    let (first, second) = data[VECTORED].split_at(16);
    let out = [first, second].map(|part| libc::iovec {
        iov_base: part.as_ptr().cast_mut().cast(),
        iov_len: part.len(),
    });
    let writev = opcode::Writev::new(fd, out.as_ptr(), out.len() as u32)
        .offset(VECTORED.start as u64)
        .build();
    let request = Request::new(
        writev,
        Want::res(48).touches(io(raw, 64, 2)),
        "WRITEV of 16+32 bytes at offset 64",
    );
    unsafe { submit_and_reap(ctx, &mut ring, vec![request], "a WRITEV") }?;

    let mut halves = [[0u8; 24]; 2];
    let into = halves.each_mut().map(|half| libc::iovec {
        iov_base: half.as_mut_ptr().cast(),
        iov_len: half.len(),
    });
    let readv = opcode::Readv::new(fd, into.as_ptr(), into.len() as u32)
        .offset(VECTORED.start as u64)
        .build();
    let request = Request::new(
        readv,
        Want::res(48).touches(io(raw, 64, 2)),
        "READV of 24+24 bytes at offset 64",
    );
    unsafe { submit_and_reap(ctx, &mut ring, vec![request], "a READV") }?;
    ensure!(
        halves.concat() == data[VECTORED],
        "READV returned other bytes than WRITEV wrote"
    );

    registered.write_bytes(0, &data[FIXED])?;
    let iovec = libc::iovec {
        iov_base: registered.addr(0) as *mut libc::c_void,
        iov_len: registered.len(),
    };
    // SAFETY: one live iovec over a page that outlives the ring.
    unsafe {
        ctx.register(
            ring.fd(),
            IORING_REGISTER_BUFFERS,
            std::ptr::from_ref(&iovec) as u64,
            1,
            "register one page as fixed buffer 0",
        )
    }?
    .expect(0)?;
    let write_fixed =
        opcode::WriteFixed::new(fd, registered.addr(0) as *const u8, FIXED.len() as u32, 0)
            .offset(FIXED.start as u64)
            .build();
    let request = Request::new(
        write_fixed,
        Want::res(128).touches(io(raw, 112, 128)),
        "WRITE_FIXED of 128 bytes from buffer 0 at offset 112",
    );
    unsafe { submit_and_reap(ctx, &mut ring, vec![request], "a WRITE_FIXED") }?;
    let read_fixed = opcode::ReadFixed::new(
        fd,
        registered.addr(FIXED_READ_AT) as *mut u8,
        FIXED.len() as u32,
        0,
    )
    .offset(FIXED.start as u64)
    .build();
    let request = Request::new(
        read_fixed,
        Want::res(128).touches(io(raw, 112, 128)),
        "READ_FIXED of 128 bytes into buffer 0 at offset 112",
    );
    unsafe { submit_and_reap(ctx, &mut ring, vec![request], "a READ_FIXED") }?;
    ensure!(
        registered.bytes(FIXED_READ_AT, FIXED.len())? == &data[FIXED],
        "READ_FIXED returned other bytes than WRITE_FIXED wrote"
    );

    let files = [file.as_raw_fd()];
    // SAFETY: a live array of one fd, only read.
    unsafe {
        ctx.register(
            ring.fd(),
            IORING_REGISTER_FILES,
            files.as_ptr() as u64,
            files.len() as u32,
            "register the file as fixed file 0",
        )
    }?
    .expect(0)?;
    let mut whole = [0u8; FILE_LEN];
    let read = opcode::Read::new(Fixed(0), whole.as_mut_ptr(), whole.len() as u32)
        .offset(0)
        .build();
    let request = Request::new(
        read,
        Want::res(240).touches(Touches {
            fixed_file: Some(true),
            ..io(0, 0, 240)
        }),
        "READ of the whole file (240 bytes) through fixed file 0 (FIXED_FILE)",
    );
    unsafe { submit_and_reap(ctx, &mut ring, vec![request], "a READ of a fixed file") }?;
    ensure!(
        whole[..] == data[..],
        "the fixed-file READ returned other bytes than were written"
    );
    Ok(())
}

/// IOSQE_ASYNC: the kernel skips the inline attempt and hands each request
/// to an io-wq worker. The READ is linked after the WRITE, so it runs once
/// the WRITE is done and reads what it wrote.
pub fn async_forced(ctx: &mut Ctx) -> anyhow::Result<()> {
    let file = temp_file()?;
    let fd = Fd(file.as_raw_fd());
    let data = pattern(32);
    let mut back = [0u8; 32];
    let mut ring = basic_ring(ctx)?;
    let requests = vec![
        Request::new(
            opcode::Nop::new().build().flags(Flags::ASYNC),
            Want::res(0),
            "NOP with IOSQE_ASYNC",
        ),
        Request::new(
            opcode::Write::new(fd, data.as_ptr(), data.len() as u32)
                .offset(0)
                .build()
                .flags(Flags::ASYNC | Flags::IO_LINK),
            Want::res(32),
            "WRITE of 32 bytes with IOSQE_ASYNC, linked to the READ",
        ),
        Request::new(
            opcode::Read::new(fd, back.as_mut_ptr(), back.len() as u32)
                .offset(0)
                .build()
                .flags(Flags::ASYNC),
            Want::res(32),
            "READ of the 32 bytes with IOSQE_ASYNC, after the WRITE",
        ),
    ];
    // SAFETY: `data` and `back` live until the requests are reaped, at the
    // end of the call.
    unsafe {
        submit_and_reap(
            ctx,
            &mut ring,
            requests,
            "NOP, WRITE and linked READ, all IOSQE_ASYNC",
        )
    }?;
    ensure!(
        back == data[..],
        "the async READ returned other bytes than the WRITE wrote"
    );
    Ok(())
}
