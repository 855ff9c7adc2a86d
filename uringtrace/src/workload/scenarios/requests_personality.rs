//! Requests run under a registered personality: the thread takes other
//! credentials (uid 4201, euid 4202, gid 4301, egid 4302: four different
//! ids, so a tracer that reads the wrong `struct cred` member shows a wrong
//! number), registers them in the ring (IORING_REGISTER_PERSONALITY), takes
//! its own back, and then submits, as root, a NOP and an OPENAT that name
//! the personality. The kernel runs them with the saved credentials: the
//! OPENAT of a root-only file fails with EACCES, while the same OPENAT
//! without the personality succeeds. This is how a process keeps using
//! credentials it no longer has, out of sight of anything that looks at
//! the submitting task's.

use std::{
    ffi::CString,
    os::unix::{ffi::OsStrExt as _, fs::PermissionsExt as _},
    path::PathBuf,
};

use anyhow::{Context as _, ensure};
use io_uring::{opcode, types};

use super::{basic_ring, submit_and_reap};
use crate::workload::{
    ctx::{Ctx, Request},
    requests::{Creds, Touches, Want},
};

const IORING_REGISTER_PERSONALITY: u32 = 9;
const IORING_UNREGISTER_PERSONALITY: u32 = 10;

/// The credentials registered: none of them the submitter's (root's).
const PERSONALITY: Creds = Creds {
    uid: 4201,
    gid: 4301,
    euid: 4202,
    egid: 4302,
};

/// The kernel's value (asm-generic/fcntl.h); it adds it to every open on
/// 64-bit, and glibc's O_LARGEFILE is 0 there.
const O_LARGEFILE: u64 = 0o100000;

/// A root-only file (mode 0600) in a directory of its own, removed when
/// the scenario ends.
struct Scratch {
    dir: PathBuf,
    file: PathBuf,
}

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("uringtrace-personality-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Traversable by the personality's ids, so only the file's own
        // mode refuses them.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let file = dir.join("root-only");
        std::fs::write(&file, b"secret\n")
            .with_context(|| format!("creating {}", file.display()))?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self { dir, file })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The calling thread's real, effective and saved ids.
fn resids(uid: bool) -> anyhow::Result<[u32; 3]> {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: both calls only write the three ids they are given.
    let rc = unsafe {
        if uid {
            libc::getresuid(&mut r, &mut e, &mut s)
        } else {
            libc::getresgid(&mut r, &mut e, &mut s)
        }
    };
    ensure!(
        rc == 0,
        "getres{}id: {}",
        if uid { "u" } else { "g" },
        std::io::Error::last_os_error()
    );
    Ok([r, e, s])
}

/// setresuid/setresgid for this thread alone: the raw system calls, not
/// glibc's wrappers, which change every thread of the process.
fn set_resids(uid: bool, [r, e, s]: [u32; 3]) -> anyhow::Result<()> {
    let nr = if uid {
        libc::SYS_setresuid
    } else {
        libc::SYS_setresgid
    };
    // SAFETY: the system call takes three ids and touches no memory.
    let rc = unsafe { libc::syscall(nr, r, e, s) };
    ensure!(
        rc == 0,
        "setres{}id({r}, {e}, {s}): {}",
        if uid { "u" } else { "g" },
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Runs `f` with the personality's ids on this thread, then restores the
/// thread's own, whatever `f` returned. The saved ids stay root's, which is
/// what lets the thread come back.
fn as_personality<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let (uids, gids) = (resids(true)?, resids(false)?);
    // Groups first: once the uids are not root, the gids cannot change.
    set_resids(false, [PERSONALITY.gid, PERSONALITY.egid, gids[2]])?;
    if let Err(e) = set_resids(true, [PERSONALITY.uid, PERSONALITY.euid, uids[2]]) {
        set_resids(false, gids)?;
        return Err(e);
    }
    let result = f();
    set_resids(true, uids).context("restoring the thread's uids")?;
    set_resids(false, gids).context("restoring the thread's gids")?;
    // Changing the euid made the process non-dumpable; undo that too.
    // SAFETY: PR_SET_DUMPABLE takes an integer.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) };
    result
}

pub fn requests_personality(ctx: &mut Ctx) -> anyhow::Result<()> {
    // SAFETY: geteuid cannot fail.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "this scenario takes other credentials and back: run it as root"
    );
    let scratch = Scratch::new()?;
    let c_file = CString::new(scratch.file.as_os_str().as_bytes())?;
    let path = scratch.file.to_string_lossy().into_owned();
    let mut ring = basic_ring(ctx)?;
    let fd = ring.fd();

    let id = as_personality(|| {
        // SAFETY: REGISTER_PERSONALITY takes no argument.
        unsafe {
            ctx.register(
                fd,
                IORING_REGISTER_PERSONALITY,
                0,
                0,
                "REGISTER_PERSONALITY as uid 4201/euid 4202, gid 4301/egid 4302",
            )
        }?
        .expect_ok()
    })?;
    // SAFETY: geteuid cannot fail.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the thread is not root again"
    );
    let personality = u16::try_from(id).context("a personality id beyond u16")?;

    let open_flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
    let touches = |creds: Option<Creds>| Touches {
        dfd: Some(libc::AT_FDCWD),
        path: Some(path.clone()),
        open_flags: Some(open_flags | O_LARGEFILE),
        mode: Some(0),
        creds,
        ..Touches::default()
    };
    let under = vec![
        Request::new(
            opcode::Nop::new().build().personality(personality),
            Want::res(0).touches(Touches {
                creds: Some(PERSONALITY),
                ..Touches::default()
            }),
            "NOP under the personality",
        ),
        Request::new(
            opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), c_file.as_ptr())
                .flags(open_flags as i32)
                .build()
                .personality(personality),
            Want::errno(libc::EACCES).touches(touches(Some(PERSONALITY))),
            "OPENAT of a root-only file under the personality: EACCES",
        ),
    ];
    // SAFETY: the path lives until the requests are reaped.
    unsafe { submit_and_reap(ctx, &mut ring, under, "a NOP and an OPENAT under it") }?;

    // The same open as the submitter itself: root may.
    let opened_fd = super::fds::lowest_free_fd(ring.fd() as i32)?;
    let own = vec![Request::new(
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), c_file.as_ptr())
            .flags(open_flags as i32)
            .build(),
        Want::res(opened_fd).touches(touches(None)),
        "the same OPENAT with the submitter's own credentials",
    )];
    // SAFETY: the path lives until the request is reaped.
    unsafe { submit_and_reap(ctx, &mut ring, own, "the OPENAT without personality") }?;
    // SAFETY: the OPENAT just installed this fd; closing it is ours to do.
    unsafe { libc::close(opened_fd) };

    // SAFETY: UNREGISTER_PERSONALITY takes the id in nr_args, no pointer.
    unsafe {
        ctx.register(
            fd,
            IORING_UNREGISTER_PERSONALITY,
            0,
            u32::from(personality),
            "UNREGISTER_PERSONALITY",
        )
    }?
    .expect(0)?;
    Ok(())
}
