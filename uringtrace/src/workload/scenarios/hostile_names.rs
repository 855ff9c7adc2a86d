//! Command names chosen to break a tracer's output: the thread renames
//! itself (`prctl(PR_SET_NAME)` takes any 15 bytes but NUL) and makes an
//! io_uring call under each name. Every event of those calls carries the
//! name; the output must stay one JSON object per line, and text output
//! free of terminal control sequences.

use anyhow::{Context as _, ensure};

use super::basic_ring;
use crate::workload::{
    abi::IORING_ENTER_GETEVENTS,
    ctx::{Ctx, Enter},
};

/// Each at most 15 bytes, none with a NUL (the kernel would cut there) or
/// a space (the text tests split on spaces; spaces are harmless anyway).
const HOSTILE_NAMES: &[(&[u8], &str)] = &[
    (b"nl\nfake-line", "a newline"),
    (b"cr\rdel\x7f", "a carriage return and DEL"),
    (b"q\"b\\s", "a quote and a backslash"),
    (b"\x1b[31mred\x1b[0m", "ANSI color escapes"),
    (b"bad\xff\xfeutf8", "bytes that are not UTF-8"),
    (b"c1\xc2\x9b31m", "a C1 CSI (U+009B) in UTF-8"),
    ("\u{202e}gpj.exe".as_bytes(), "a right-to-left override"),
];

/// The thread's name, as PR_GET_NAME gives it (NUL-terminated).
fn thread_name() -> anyhow::Result<[u8; 16]> {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes to the buffer.
    let rc = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    ensure!(rc == 0, "PR_GET_NAME: {}", std::io::Error::last_os_error());
    Ok(name)
}

/// `name` must be NUL-terminated.
fn set_thread_name(name: &[u8]) -> anyhow::Result<()> {
    ensure!(name.ends_with(&[0]), "thread name without its NUL");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (at most 16 bytes).
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    ensure!(rc == 0, "PR_SET_NAME: {}", std::io::Error::last_os_error());
    Ok(())
}

pub fn hostile_names(ctx: &mut Ctx) -> anyhow::Result<()> {
    let usual = thread_name()?;
    let mut ring = basic_ring(ctx)?;
    let fd = ring.fd();
    let result = (|| -> anyhow::Result<()> {
        for (name, what) in HOSTILE_NAMES {
            let mut terminated = name.to_vec();
            terminated.push(0);
            set_thread_name(&terminated)
                .with_context(|| format!("naming the thread with {what}"))?;
            // The kernel keeps what it got: the truth must be what a tracer
            // reads from the task.
            let kept = thread_name()?;
            let kept = &kept[..kept.iter().position(|&b| b == 0).unwrap_or(16)];
            ensure!(kept == *name, "the kernel kept {kept:?} of {name:?}");
            ctx.report_thread_name(Some(name));
            ctx.queue_nops(&mut ring, 1, &format!("NOP under a name with {what}"))?;
            ctx.enter(
                Enter::new(fd, 1, 1, IORING_ENTER_GETEVENTS),
                &format!("submit and wait for a NOP, named with {what}"),
            )?
            .expect(1)?;
            ctx.reap(&mut ring, 1)?;
        }
        Ok(())
    })();
    // Back to the usual name whatever happened, for the scenarios after.
    ctx.report_thread_name(None);
    set_thread_name(&usual).context("restoring the thread name")?;
    result
}
