//! File-system requests that name paths, the ones security monitoring needs
//! to see through io_uring: OPENAT, OPENAT2, STATX, MKDIRAT, RENAMEAT,
//! LINKAT, SYMLINKAT, UNLINKAT, in a fresh directory; one name carries a
//! newline and an escape sequence, as a hostile program's would.

use std::{
    ffi::CString,
    os::{fd::AsRawFd as _, unix::ffi::OsStrExt as _},
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use io_uring::{opcode, types};

use super::{basic_ring, submit_and_reap};
use crate::workload::{
    ctx::{Ctx, Request},
    kernel_features::Feature,
    requests::{Touches, Want},
};

const AT_FDCWD: i32 = libc::AT_FDCWD;

/// A directory removed when the scenario ends, however it ends.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("uringtrace-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn c_path(p: &Path) -> anyhow::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).context("a path with a NUL byte")
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

pub fn fs_paths(ctx: &mut Ctx) -> anyhow::Result<()> {
    let scratch = ScratchDir::new()?;
    let dir = &scratch.0;
    let file = dir.join("file");
    // A hostile name: newline, ESC[31m, quote and backslash (valid UTF-8,
    // so it comes out as `path` exactly).
    let hostile = dir.join("evil\n\u{1b}[31m\"\\name");
    let subdir = dir.join("sub");
    let renamed = dir.join("renamed");
    let hardlink = dir.join("hardlink");
    let symlink = dir.join("symlink");
    let (c_file, c_hostile, c_subdir, c_renamed, c_hardlink, c_symlink) = (
        c_path(&file)?,
        c_path(&hostile)?,
        c_path(&subdir)?,
        c_path(&renamed)?,
        c_path(&hardlink)?,
        c_path(&symlink)?,
    );
    let target = CString::new("file")?;
    let mut ring = basic_ring(ctx)?;
    let needs = [Feature::MkdirSymlinkLink, Feature::RenameUnlinkShutdown];
    if ctx.skip_unless(&needs, "")? {
        return Ok(());
    }
    // OPENAT's res is the fd it installs: the lowest free one.
    let opened_fd = super::fds::lowest_free_fd(ring.fd() as i32)?;
    let open_flags = (libc::O_CREAT | libc::O_RDWR | libc::O_CLOEXEC) as u64;
    // The kernel opens with O_LARGEFILE added on 64-bit (build_open_how),
    // and that is what it keeps and a tracer reads. glibc's O_LARGEFILE is
    // 0 on 64-bit: the kernel's value, from asm-generic/fcntl.h.
    let largefile = 0o100000;

    let opens = vec![Request::new(
        opcode::OpenAt::new(types::Fd(AT_FDCWD), c_file.as_ptr())
            .flags(open_flags as i32)
            .mode(0o600)
            .build(),
        Want::res(opened_fd).touches(Touches {
            dfd: Some(AT_FDCWD),
            path: Some(text(&file)),
            open_flags: Some(open_flags | largefile),
            mode: Some(0o600),
            ..Touches::default()
        }),
        "OPENAT of a new file: O_CREAT|O_RDWR|O_CLOEXEC, mode 0600",
    )];
    // SAFETY: the paths live until the requests are reaped.
    unsafe { submit_and_reap(ctx, &mut ring, opens, "an OPENAT") }?;
    // SAFETY: the OPENAT just installed this fd; closing it is ours to do.
    unsafe { libc::close(opened_fd) };

    let how = types::OpenHow::new()
        .flags((libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC) as u64)
        .mode(0o640);
    let mut statx_buf = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let dir_fd = std::fs::File::open(dir).context("opening the scratch directory")?;
    let opened2_fd = super::fds::lowest_free_fd(ring.fd() as i32)?;
    let batch = vec![
        Request::new(
            opcode::OpenAt2::new(types::Fd(AT_FDCWD), c_hostile.as_ptr(), &how).build(),
            Want::res(opened2_fd).touches(Touches {
                dfd: Some(AT_FDCWD),
                path: Some(text(&hostile)),
                open_flags: Some(
                    (libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC) as u64 | largefile,
                ),
                mode: Some(0o640),
                ..Touches::default()
            }),
            "OPENAT2 creating a file whose name has a newline and ESC[31m",
        ),
        Request::new(
            opcode::Statx::new(
                types::Fd(dir_fd.as_raw_fd()),
                c"file".as_ptr(),
                statx_buf.as_mut_ptr().cast(),
            )
            .mask(libc::STATX_SIZE)
            .build(),
            Want::res(0).touches(Touches {
                dfd: Some(dir_fd.as_raw_fd()),
                path: Some("file".into()),
                op_flags: Some(0),
                ..Touches::default()
            }),
            "STATX of `file` relative to a directory fd",
        ),
        Request::new(
            opcode::MkDirAt::new(types::Fd(AT_FDCWD), c_subdir.as_ptr())
                .mode(0o750)
                .build(),
            Want::res(0).touches(Touches {
                dfd: Some(AT_FDCWD),
                path: Some(text(&subdir)),
                mode: Some(0o750),
                ..Touches::default()
            }),
            "MKDIRAT, mode 0750",
        ),
    ];
    // SAFETY: the paths, `how` and the statx buffer live until reaped.
    unsafe { submit_and_reap(ctx, &mut ring, batch, "OPENAT2, STATX, MKDIRAT") }?;
    // SAFETY: the OPENAT2 installed this fd.
    unsafe { libc::close(opened2_fd) };

    let links = vec![
        Request::new(
            opcode::LinkAt::new(
                types::Fd(AT_FDCWD),
                c_file.as_ptr(),
                types::Fd(AT_FDCWD),
                c_hardlink.as_ptr(),
            )
            .build(),
            Want::res(0).touches(Touches {
                dfd: Some(AT_FDCWD),
                path: Some(text(&file)),
                new_dfd: Some(AT_FDCWD),
                new_path: Some(text(&hardlink)),
                op_flags: Some(0),
                ..Touches::default()
            }),
            "LINKAT: a hard link to `file`",
        ),
        Request::new(
            opcode::SymlinkAt::new(types::Fd(AT_FDCWD), target.as_ptr(), c_symlink.as_ptr())
                .build(),
            Want::res(0).touches(Touches {
                path: Some("file".into()),
                new_dfd: Some(AT_FDCWD),
                new_path: Some(text(&symlink)),
                ..Touches::default()
            }),
            "SYMLINKAT: `symlink` -> `file`",
        ),
    ];
    // SAFETY: the paths live until reaped.
    unsafe { submit_and_reap(ctx, &mut ring, links, "LINKAT, SYMLINKAT") }?;

    let cleanup = vec![
        Request::new(
            opcode::RenameAt::new(
                types::Fd(AT_FDCWD),
                c_hardlink.as_ptr(),
                types::Fd(AT_FDCWD),
                c_renamed.as_ptr(),
            )
            .build(),
            Want::res(0).touches(Touches {
                dfd: Some(AT_FDCWD),
                path: Some(text(&hardlink)),
                new_dfd: Some(AT_FDCWD),
                new_path: Some(text(&renamed)),
                op_flags: Some(0),
                ..Touches::default()
            }),
            "RENAMEAT of the hard link",
        ),
        Request::new(
            opcode::UnlinkAt::new(types::Fd(AT_FDCWD), c_subdir.as_ptr())
                .flags(libc::AT_REMOVEDIR)
                .build(),
            Want::res(0).touches(Touches {
                dfd: Some(AT_FDCWD),
                path: Some(text(&subdir)),
                op_flags: Some(libc::AT_REMOVEDIR as u64),
                ..Touches::default()
            }),
            "UNLINKAT with AT_REMOVEDIR of the directory",
        ),
        Request::new(
            opcode::UnlinkAt::new(types::Fd(AT_FDCWD), c"/nonexistent/uringtrace".as_ptr()).build(),
            Want::errno(libc::ENOENT).touches(Touches {
                dfd: Some(AT_FDCWD),
                path: Some("/nonexistent/uringtrace".into()),
                op_flags: Some(0),
                ..Touches::default()
            }),
            "UNLINKAT of a path that does not exist: -ENOENT",
        ),
    ];
    // SAFETY: the paths live until reaped. Linked one after the other is
    // not needed: a rename and unlinks of different names.
    unsafe { submit_and_reap(ctx, &mut ring, cleanup, "RENAMEAT, UNLINKATs") }?;
    Ok(())
}
