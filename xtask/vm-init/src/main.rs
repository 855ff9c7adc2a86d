//! PID 1 of the uringtrace test VMs, started by `cargo xtask vm-test`.
//!
//! Mounts what the tracer and its tests use, reports the kernel's io_uring
//! tracepoint formats and tracing features, runs every test binary the
//! manifest names, prints one line per test and a final result line, and
//! powers the VM off. Every line meant for xtask starts with
//! `uringtrace-vm: `; the rest of the console is the tests' own output,
//! kept for the log.

mod libtest;
mod manifest;
mod runner;

use std::{
    ffi::CStr,
    fs,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use libtest::Outcome;
use manifest::Manifest;

const MANIFEST: &str = "/uringtrace-vm/manifest";

/// Filesystems the tracer and the tests expect on a normal machine:
/// (source, mount point, type, options).
/// No tmpfs on /tmp: the tracer and the workspace sit in the initramfs at
/// their paths on the host, which may be under /tmp (a CI clone), and a
/// mount there would hide them. The initramfs root is in memory already.
const MOUNTS: [(&str, &str, &str, &str); 8] = [
    ("proc", "/proc", "proc", ""),
    ("sysfs", "/sys", "sysfs", ""),
    ("devtmpfs", "/dev", "devtmpfs", ""),
    ("tmpfs", "/run", "tmpfs", "mode=0755"),
    ("tracefs", "/sys/kernel/tracing", "tracefs", ""),
    ("debugfs", "/sys/kernel/debug", "debugfs", ""),
    ("bpf", "/sys/fs/bpf", "bpf", ""),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2", ""),
];

/// Tracepoint formats reported before the tests: the io_uring event
/// family, and the io_uring system call events the tracer attaches to.
const EVENTS_DIR: &str = "/sys/kernel/tracing/events";

macro_rules! say {
    ($($arg:tt)*) => {
        println!("uringtrace-vm: {}", format_args!($($arg)*))
    };
}

fn main() {
    // PID 1 must not return (the kernel would panic on it): whatever
    // happens, report it and power off.
    if let Err(e) = run() {
        say!("error {e}");
    }
    say!("powering off");
    // SAFETY: sync and reboot take no pointers; RB_POWER_OFF as PID 1 is
    // how a VM ends its run.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    // Only reached if the power-off was refused; xtask's timeout ends it.
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

fn run() -> Result<(), String> {
    say!("init started");
    mount_all();
    if let Err(e) = loopback_up() {
        // Not fatal: the tests on sockets fail and say so.
        say!("warning: bringing up lo: {e}");
    }
    let kernel = kernel_release();
    say!("kernel {kernel}");
    say!("uptime {}", uptime());
    report_features();
    report_formats();

    let manifest = Manifest::read(Path::new(MANIFEST))?;
    let (mut passed, mut failed, mut skipped) = (0u32, 0u32, 0u32);
    for binary in &manifest.tests {
        for (test, outcome) in run_test_binary(&manifest, &binary.name, &binary.path) {
            match outcome {
                Outcome::Pass => {
                    passed += 1;
                    say!("test {} {test} pass", binary.name);
                }
                Outcome::Skip(why) => {
                    skipped += 1;
                    say!("test {} {test} skip {why}", binary.name);
                }
                Outcome::Fail(message) => {
                    failed += 1;
                    say!("test {} {test} fail {message}", binary.name);
                }
            }
        }
    }
    say!("result kernel={kernel} passed={passed} failed={failed} skipped={skipped}");
    Ok(())
}

fn mount_all() {
    for (source, target, fstype, options) in MOUNTS {
        if let Err(e) = mount(source, target, fstype, options) {
            // Not fatal: the tests that need it fail and say what is missing.
            say!("warning: mount {fstype} on {target}: {e}");
        }
    }
    // The tests' temporary directories, shared with the unprivileged run.
    let tmp = fs::create_dir_all("/tmp").and_then(|()| {
        fs::set_permissions("/tmp", std::os::unix::fs::PermissionsExt::from_mode(0o1777))
    });
    if let Err(e) = tmp {
        say!("warning: /tmp (mode 1777): {e}");
    }
}

fn mount(source: &str, target: &str, fstype: &str, options: &str) -> Result<(), String> {
    fs::create_dir_all(target).map_err(|e| format!("creating {target}: {e}"))?;
    let c = |s: &str| std::ffi::CString::new(s).map_err(|e| e.to_string());
    let (source, target_c, fstype, options) = (c(source)?, c(target)?, c(fstype)?, c(options)?);
    // SAFETY: NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ptr(),
            0,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(())
}

/// `ip link set lo up`: on a normal machine something did it at boot,
/// and the workload's socket scenarios connect to 127.0.0.1.
fn loopback_up() -> Result<(), String> {
    let os_error = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: a plain socket call; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_error("socket"));
    }
    // SAFETY: ifreq is plain data, zero is a valid value for it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own;
    // ifru_flags is the union member these requests use. The request
    // number's type differs between glibc and musl, hence the casts.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            Err(os_error("SIOCGIFFLAGS"))
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &mut req) < 0 {
                Err(os_error("SIOCSIFFLAGS"))
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: our own fd.
    unsafe { libc::close(fd) };
    result
}

fn kernel_release() -> String {
    // SAFETY: uname fills the zeroed struct; the release field is
    // NUL-terminated by the kernel.
    unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return "unknown".to_string();
        }
        CStr::from_ptr(uts.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// Seconds since the kernel started, for the boot time in xtask's report.
fn uptime() -> String {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

fn report_features() {
    let yes_no = |p: &str| if Path::new(p).exists() { "yes" } else { "no" };
    // The tracer's kprobe attach mode needs the kprobe PMU; CO-RE-style
    // offset discovery would need BTF.
    say!(
        "feature kprobe_pmu {}",
        yes_no("/sys/bus/event_source/devices/kprobe")
    );
    say!("feature btf_vmlinux {}", yes_no("/sys/kernel/btf/vmlinux"));
}

fn report_formats() {
    let mut events = Vec::new();
    let io_uring = Path::new(EVENTS_DIR).join("io_uring");
    match fs::read_dir(&io_uring) {
        Ok(dir) => events.extend(
            dir.flatten()
                .filter(|e| e.path().join("format").is_file())
                .map(|e| format!("io_uring/{}", e.file_name().to_string_lossy())),
        ),
        Err(e) => say!("warning: {}: {e}", io_uring.display()),
    }
    let syscalls = Path::new(EVENTS_DIR).join("syscalls");
    match fs::read_dir(&syscalls) {
        Ok(dir) => events.extend(dir.flatten().filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let io_uring_call =
                name.starts_with("sys_enter_io_uring_") || name.starts_with("sys_exit_io_uring_");
            io_uring_call.then(|| format!("syscalls/{name}"))
        })),
        Err(e) => say!("warning: {}: {e}", syscalls.display()),
    }
    events.sort();
    for event in events {
        let path = Path::new(EVENTS_DIR).join(&event).join("format");
        match fs::read_to_string(&path) {
            Ok(text) => {
                say!("begin format {event}");
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
                say!("end format {event}");
            }
            Err(e) => say!("warning: {}: {e}", path.display()),
        }
    }
}

/// Lists and runs one test binary; its outcomes, one per test. A test
/// that hangs past the time limit or crashes the binary fails, and the
/// tests after it run in a new process of the binary. A binary that cannot
/// run still yields a failed entry, so the result line counts it.
fn run_test_binary(manifest: &Manifest, name: &str, path: &str) -> Vec<(String, Outcome)> {
    say!("begin test-binary {name}");
    let started = Instant::now();
    let listed = Command::new(path)
        .arg("--list")
        .args(&manifest.args)
        .env_clear()
        .envs(manifest.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output();
    let tests = match listed {
        Ok(out) if out.status.success() => {
            libtest::parse_list(&String::from_utf8_lossy(&out.stdout))
        }
        Ok(out) => {
            let why = format!(
                "`{name} --list` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            say!("end test-binary {name} status=list-failed seconds=0");
            return vec![("(binary)".to_string(), Outcome::Fail(why))];
        }
        Err(e) => {
            say!("end test-binary {name} status=not-started seconds=0");
            return vec![(
                "(binary)".to_string(),
                Outcome::Fail(format!("cannot run {path}: {e}")),
            )];
        }
    };
    let mut done: Vec<(String, Outcome)> = Vec::new();
    let listed = tests.clone();
    let mut pending = tests;
    let mut statuses = Vec::new();
    let mut first = true;
    while !pending.is_empty() {
        let mut args = vec![
            format!("--test-threads={}", manifest.threads),
            // Captured output of passing tests too: that is where a test
            // says `skipped: <why>`.
            "--show-output".to_string(),
        ];
        if first {
            args.extend(manifest.args.iter().cloned());
        } else {
            // The tests a hung or crashed test kept from running, by name.
            args.push("--exact".to_string());
            args.extend(pending.iter().cloned());
        }
        first = false;
        let mut parser = libtest::Parser::default();
        let run = runner::run(path, &args, &manifest.env, manifest.timeout, |line| {
            parser.line(line)
        });
        let (status, cut) = match &run {
            Ok(end) => (end.status.clone(), end.unfinished.clone()),
            Err(e) => ("not-started".to_string(), Some(e.clone())),
        };
        let cut = cut.or_else(|| {
            (!parser.finished())
                .then(|| format!("the test binary ended ({status}) without a summary"))
        });
        statuses.push(status.clone());
        let mut not_run = Vec::new();
        for (test, outcome) in parser.outcomes(&pending, cut.as_deref()) {
            match outcome {
                Some(outcome) => done.push((test, outcome)),
                None => not_run.push(test),
            }
        }
        // Another run for the rest only if this one got through a test;
        // otherwise it would stop the same way again.
        let progressed = not_run.len() < pending.len();
        if !not_run.is_empty() && (!progressed || cut.is_none()) {
            let why = cut.unwrap_or_else(|| format!("the test binary ended ({status})"));
            for test in not_run.drain(..) {
                done.push((test, Outcome::Fail(format!("not run: {why}"))));
            }
        }
        let clean = matches!(&run, Ok(end) if end.success);
        // A non-zero exit with every test accounted as passing (a crash
        // after the summary, say) must not read as a clean run.
        if !clean && !done.iter().any(|(_, o)| matches!(o, Outcome::Fail(_))) {
            done.push((
                "(binary)".to_string(),
                Outcome::Fail(format!("the test binary ended with {status}")),
            ));
        }
        if !not_run.is_empty() {
            say!(
                "rerunning {} test(s) of {name} the cut-short run did not reach",
                not_run.len()
            );
        }
        pending = not_run;
    }
    let seconds = started.elapsed().as_secs_f64();
    let status = if statuses.is_empty() {
        "no-tests".to_string()
    } else {
        statuses.join(",")
    };
    // In --list order whatever run each came from; `(binary)` entries last.
    done.sort_by_key(|(t, _)| listed.iter().position(|n| n == t).unwrap_or(usize::MAX));
    say!("end test-binary {name} status={status} seconds={seconds:.1}");
    done
}
