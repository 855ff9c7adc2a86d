//! Runs one test binary under a time limit per test, echoing its output to
//! the console and handing every line to the libtest parser.
//!
//! With one test thread libtest prints `test <name> ... ` as each test
//! starts, so the limit restarts on every such line: a binary with many
//! quick tests is fine, one test hanging is not.
//!
//! As PID 1 this also reaps every orphan the tests leave behind (a traced
//! command whose tracer was killed, say), so the child is waited for with
//! `waitpid(-1)` rather than std's `Child::wait`.

use std::{
    fs::File,
    io::{Read as _, Write as _},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::process::CommandExt as _,
    },
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// How long output is still read after the test binary exited: a
/// grandchild holding the pipe open must not stall the run.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

pub struct End {
    /// `exit 0`, `signal 9`, `timeout`.
    pub status: String,
    pub success: bool,
    /// Why the run stopped before its end, if it did.
    pub unfinished: Option<String>,
}

pub fn run(
    path: &str,
    args: &[String],
    env: &[(String, String)],
    test_timeout: Duration,
    mut on_line: impl FnMut(&str),
) -> Result<End, String> {
    let (read_end, write_end) = pipe()?;
    let write_err = write_end
        .try_clone()
        .map_err(|e| format!("duplicating the output pipe: {e}"))?;
    let mut cmd = Command::new(path);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/tmp")
        .stdin(Stdio::null())
        // One pipe for both, so the log keeps the order they were written in.
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(write_err))
        // Its own process group: a timeout kills the tracer processes the
        // tests started too.
        .process_group(0);
    let child = cmd.spawn().map_err(|e| format!("cannot run {path}: {e}"))?;
    // The parent's copies of the pipe's write end must go, or the read
    // end never sees end-of-file.
    drop(cmd);
    let pid = i32::try_from(child.id()).map_err(|e| e.to_string())?;

    let mut test_started = Instant::now();
    let mut output = File::from(read_end);
    let mut pending: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut status: Option<i32> = None;
    let mut exited_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if eof {
            std::thread::sleep(Duration::from_millis(50));
        } else if readable(&output, Duration::from_millis(100)) {
            match output.read(&mut buf) {
                Ok(0) => eof = true,
                Ok(n) => {
                    echo(&buf[..n]);
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(at) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=at).collect();
                        let line = String::from_utf8_lossy(&line);
                        let line = line.trim_end_matches(['\n', '\r']);
                        if line.starts_with("test ") {
                            test_started = Instant::now();
                        }
                        on_line(line);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => eof = true,
            }
        }
        reap(pid, &mut status);
        if status.is_some() {
            let at = *exited_at.get_or_insert_with(Instant::now);
            if eof || at.elapsed() > DRAIN_AFTER_EXIT {
                break;
            }
        } else if !timed_out && test_started.elapsed() > test_timeout {
            timed_out = true;
            kill_group(pid);
        }
    }
    // Whatever the tests left running in the group goes with the binary.
    kill_group(pid);
    if !pending.is_empty() {
        echo(b"\n");
        on_line(String::from_utf8_lossy(&pending).trim_end_matches('\r'));
    }
    let raw = status.unwrap_or(0);
    let (status, success) = if timed_out {
        ("timeout".to_string(), false)
    } else if libc::WIFEXITED(raw) {
        let code = libc::WEXITSTATUS(raw);
        (format!("exit-{code}"), code == 0)
    } else if libc::WIFSIGNALED(raw) {
        (format!("signal-{}", libc::WTERMSIG(raw)), false)
    } else {
        (format!("wait-status-{raw:#x}"), false)
    };
    let unfinished = if timed_out {
        Some(format!(
            "it ran {} s without finishing (--test-timeout) and the binary was killed",
            test_timeout.as_secs()
        ))
    } else if !success {
        Some(format!("the test binary ended with {status}"))
    } else {
        None
    };
    Ok(End {
        status,
        success,
        unfinished,
    })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both fds on success; close-on-exec keeps the
    // read end out of the test binary.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "creating the output pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: both fds are new and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn readable(file: &File, wait: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    // POLLHUP too: the read then returns end-of-file.
    n > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// Reaps every exited process; records the test binary's status.
fn reap(pid: i32, status: &mut Option<i32>) {
    loop {
        let mut raw = 0;
        // SAFETY: waitpid with a valid status pointer.
        let reaped = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if reaped <= 0 {
            return;
        }
        if reaped == pid {
            *status = Some(raw);
        }
    }
}

fn kill_group(pid: i32) {
    // SAFETY: kill(2) of the process group we created; ESRCH (already
    // gone) is fine.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

fn echo(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    // The console is the only place to say it; nothing to do on failure.
    let _ = out.write_all(bytes);
    let _ = out.flush();
}
