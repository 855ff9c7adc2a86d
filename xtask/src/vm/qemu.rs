//! Boots one kernel with the initramfs under qemu and captures its serial
//! console, under a time limit and watching for a kernel panic.
//!
//! KVM when the host has a usable one, else TCG (slower, but works
//! anywhere). qemu's own fallback (`-accel kvm -accel tcg`) only covers a
//! KVM that fails to open: a nested KVM can open fine and then abort on
//! the first vCPU ("failed to set MSR 0x10a") or hang, so `probe_accel`
//! tries a real boot first.

use std::{
    fs::File,
    io::{Read as _, Write as _},
    path::Path,
    process::{Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;

pub const QEMU: &str = "qemu-system-x86_64";

/// How long the console is still read after a panic line: the rest of the
/// panic report (the stack) is the useful part.
const AFTER_PANIC: Duration = Duration::from_secs(3);

/// `--accel`: how the VMs are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if a test boot under it works, else TCG.
    Auto,
    Kvm,
    Tcg,
}

pub struct Settings {
    /// qemu's -accel arguments.
    pub accel: Vec<&'static str>,
    pub memory_mib: u32,
    pub cpus: u32,
    /// For the whole run.
    pub timeout: Duration,
    /// Longest the console may stay silent: a hung boot or init is caught
    /// long before `timeout`.
    pub silence: Duration,
}

pub enum End {
    /// qemu exited: the guest powered off (or qemu failed, see stderr).
    Exited(ExitStatus),
    /// Killed at `Settings::timeout`.
    TimedOut,
    /// Killed after `Settings::silence` without a console line.
    Silent,
    /// The kernel's "Kernel panic - not syncing" line.
    Panicked(String),
}

pub struct Boot {
    pub end: End,
    /// The console, line by line, `\r` removed.
    pub lines: Vec<String>,
    /// qemu's own messages.
    pub stderr: String,
    pub elapsed: Duration,
}

/// Longest a KVM test boot may take; a working KVM reaches the kernel's
/// "no root" panic in a second or two.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The -accel arguments for `choice`, and what was decided, for the log.
pub fn accel_args(
    choice: AccelChoice,
    vmlinuz: &Path,
    log: &Path,
) -> anyhow::Result<(Vec<&'static str>, String)> {
    const KVM_THEN_TCG: [&str; 4] = ["-accel", "kvm", "-accel", "tcg"];
    match choice {
        AccelChoice::Tcg => return Ok((vec!["-accel", "tcg"], "TCG (--accel tcg)".into())),
        AccelChoice::Kvm => return Ok((vec!["-accel", "kvm"], "KVM (--accel kvm)".into())),
        AccelChoice::Auto => {}
    }
    let tcg = |why: String| Ok((vec!["-accel", "tcg"], format!("TCG: {why}")));
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return tcg("no usable /dev/kvm".into());
    }
    // No initramfs: the kernel boots up to mounting its root and panics,
    // which under a working KVM takes a second or two.
    let settings = Settings {
        accel: vec!["-accel", "kvm"],
        memory_mib: 256,
        cpus: 1,
        timeout: PROBE_TIMEOUT,
        silence: PROBE_TIMEOUT,
    };
    let probe = boot(
        vmlinuz,
        None,
        "rdinit=/nonexistent",
        log,
        &settings,
        |_, _| {},
    )?;
    match probe.end {
        End::Panicked(_) => Ok((KVM_THEN_TCG.to_vec(), "KVM (a test boot worked)".into())),
        End::TimedOut | End::Silent => tcg(format!(
            "a test boot under KVM hung for {} s",
            PROBE_TIMEOUT.as_secs()
        )),
        End::Exited(status) => tcg(format!(
            "qemu under KVM failed ({status}): {}",
            probe.stderr.trim().replace('\n', "; ")
        )),
    }
}

/// Boots `vmlinuz` (with `initrd` as its root, if given), writing the
/// console to `log` and handing each line to `on_line` as it arrives.
pub fn boot(
    vmlinuz: &Path,
    initrd: Option<&Path>,
    append: &str,
    log: &Path,
    settings: &Settings,
    mut on_line: impl FnMut(&str, Duration),
) -> anyhow::Result<Boot> {
    let mut cmd = Command::new(QEMU);
    cmd.args(&settings.accel)
        // Every CPU feature TCG can emulate, so no kernel or binary finds
        // the default qemu64 model too old.
        .args(["-cpu", "max"])
        .args(["-m", &settings.memory_mib.to_string()])
        .args(["-smp", &settings.cpus.to_string()])
        // The serial console on stdout; no network card (nor its boot ROM).
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(vmlinuz)
        // panic=-1: reboot at once on a panic, which -no-reboot turns into
        // qemu exiting. No root=: the initramfs stays the root.
        .arg("-append")
        .arg(format!("console=ttyS0 panic=-1 {append}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(initrd) = initrd {
        cmd.arg("-initrd").arg(initrd);
    }
    let shown = format!("{cmd:?}");
    // Unbuffered: the log of a VM still running (or hung) is up to date.
    let mut log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    writeln!(log_file, "# {shown}").with_context(|| format!("writing {}", log.display()))?;

    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {QEMU}: run `cargo xtask setup`"))?;
    let mut stdout = child.stdout.take().context("qemu's stdout")?;
    let mut stderr = child.stderr.take().context("qemu's stderr")?;
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        // Whatever was read is kept; a read error only cuts it short.
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // Console bytes to the log as they come, lines to the main loop.
    let (tx, rx) = mpsc::channel::<String>();
    let reader = thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = stdout.read(&mut buf)?;
            if n == 0 {
                break;
            }
            log_file.write_all(&buf[..n])?;
            pending.extend_from_slice(&buf[..n]);
            while let Some(at) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=at).collect();
                let line = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if tx.send(line).is_err() {
                    return Ok(());
                }
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(String::from_utf8_lossy(&pending).into_owned());
        }
        log_file.flush()
    });

    let mut lines = Vec::new();
    let mut deadline = started + settings.timeout;
    let mut last_line = started;
    let mut panic_line: Option<String> = None;
    let mut killed: Option<End> = None;
    loop {
        let now = Instant::now();
        if panic_line.is_none() {
            if now >= deadline {
                killed = Some(End::TimedOut);
                break;
            }
            if now >= last_line + settings.silence {
                killed = Some(End::Silent);
                break;
            }
        } else if now >= deadline {
            break;
        }
        let wait = deadline.min(last_line + settings.silence).max(now) - now;
        match rx.recv_timeout(wait.max(Duration::from_millis(10))) {
            Ok(line) => {
                last_line = Instant::now();
                on_line(&line, started.elapsed());
                if panic_line.is_none() && line.contains("Kernel panic - not syncing") {
                    panic_line = Some(line.clone());
                    deadline = Instant::now() + AFTER_PANIC;
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The console closed: qemu has exited.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // On a timeout or a panic qemu may still run; either way it is done.
    if child.try_wait().context("checking on qemu")?.is_none() {
        child.kill().context("killing qemu")?;
    }
    let status = child.wait().context("waiting for qemu")?;
    let elapsed = started.elapsed();
    // Lines still in the channel (read before the kill).
    lines.extend(rx.try_iter());
    let logged = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the console reader panicked"))?;
    logged.with_context(|| format!("writing the console to {}", log.display()))?;
    let stderr = stderr_reader.join().unwrap_or_default();
    let end = match (panic_line, killed) {
        (Some(line), _) => End::Panicked(line),
        (None, Some(end)) => end,
        (None, None) => End::Exited(status),
    };
    Ok(Boot {
        end,
        lines,
        stderr,
        elapsed,
    })
}
