//! `cargo xtask vm-test`: the tracer's integration tests inside VMs, one
//! per kernel of the matrix (Debian's 5.10, 6.1, 6.12 and sid's kernel).
//!
//! Static musl builds of the tracer and its test binaries go into one
//! initramfs with a small init (xtask/vm-init); qemu boots each kernel
//! with it; the init runs the tests and prints their outcomes on the
//! serial console, which is parsed back into a table. Each kernel's
//! io_uring tracepoint formats are saved under `target/vm/formats/`.

mod binaries;
mod busybox;
mod console;
mod host_tools;
mod initramfs;
mod kernels;
mod qemu;
mod report;
mod sources;

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::run::workspace_root;
use kernels::Prepared;
use report::KernelRun;

/// `cargo xtask vm-test` options.
#[derive(Debug, clap::Args)]
pub struct VmTestArgs {
    /// Kernels to boot, comma-separated (e.g. `--kernel 6.1,7.2`); all of
    /// the matrix by default (see --list).
    #[arg(long, value_delimiter = ',')]
    pub kernel: Vec<String>,
    /// Show the kernel matrix (and which kernels are cached) and exit.
    #[arg(long)]
    pub list: bool,
    /// Look up the newest package of each kernel again instead of reusing
    /// the one cached in target/vm/kernels.
    #[arg(long)]
    pub refresh_kernels: bool,
    /// How qemu runs the VMs: KVM if usable (a test boot decides), else
    /// the TCG emulator.
    #[arg(long, value_enum, default_value_t = qemu::AccelChoice::Auto)]
    pub accel: qemu::AccelChoice,
    /// VMs running at once.
    #[arg(long, default_value_t = DEFAULT_JOBS)]
    pub jobs: usize,
    /// Virtual CPUs per VM. More than one costs time under TCG (two VMs of
    /// one CPU finish sooner than one of two), and a 7.2 guest with two
    /// TCG CPUs oopsed (int3 in trace_syscall_exit) while tracepoints were
    /// being switched on and off.
    #[arg(long, default_value_t = DEFAULT_CPUS)]
    pub cpus: u32,
    /// Memory per VM, in MiB.
    #[arg(long, default_value_t = DEFAULT_MEMORY_MIB)]
    pub memory: u32,
    /// Time limit per VM, in seconds (boot and every test); the VM is
    /// killed when it is reached. A VM whose console stays silent for
    /// --test-timeout + 60 s (a hung boot or init) is killed sooner.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT)]
    pub timeout: u64,
    /// Time limit per test inside the VM, in seconds: a test still running
    /// then fails, its binary is killed and the tests after it run in a new
    /// process.
    #[arg(long, default_value_t = DEFAULT_TEST_TIMEOUT)]
    pub test_timeout: u64,
    /// Test threads per test binary (libtest's --test-threads).
    #[arg(long, default_value_t = DEFAULT_TEST_THREADS)]
    pub test_threads: u32,
    /// Build the tracer and the tests without optimisations: quicker to
    /// build, but under TCG the tracer then attaches so slowly that timing
    /// tests (a call in flight at attach) can miss their window.
    #[arg(long)]
    pub debug: bool,
    /// Arguments for every test binary, e.g. a test name filter.
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

const DEFAULT_JOBS: usize = 2;
const DEFAULT_CPUS: u32 = 1;
const DEFAULT_MEMORY_MIB: u32 = 1024;
const DEFAULT_TIMEOUT: u64 = 1500;
const DEFAULT_TEST_TIMEOUT: u64 = 300;
/// A console silent this much longer than a test may run: the VM's init
/// (which reports every test it kills) or its kernel is stuck.
const SILENCE_MARGIN: Duration = Duration::from_secs(60);
const DEFAULT_TEST_THREADS: u32 = 1;

/// What `cargo xtask test` runs after the host tests.
impl Default for VmTestArgs {
    fn default() -> Self {
        Self {
            kernel: Vec::new(),
            list: false,
            refresh_kernels: false,
            accel: qemu::AccelChoice::Auto,
            jobs: DEFAULT_JOBS,
            cpus: DEFAULT_CPUS,
            memory: DEFAULT_MEMORY_MIB,
            timeout: DEFAULT_TIMEOUT,
            test_timeout: DEFAULT_TEST_TIMEOUT,
            test_threads: DEFAULT_TEST_THREADS,
            debug: false,
            test_args: Vec::new(),
        }
    }
}

fn vm_dir() -> PathBuf {
    workspace_root().join("target/vm")
}

pub fn list() {
    println!("{:6}  {:9}  {:52}  cached", "kernel", "debian", "suites");
    for k in &kernels::MATRIX {
        let suites: Vec<String> = k
            .sources
            .iter()
            .map(|s| format!("{}/{}", s.archive, s.suite))
            .collect();
        println!(
            "{:6}  {:9}  {:52}  {}",
            k.name,
            k.release,
            suites.join(" "),
            kernels::cached_package(k).unwrap_or_else(|| "-".to_string())
        );
    }
}

pub fn run(args: &VmTestArgs) -> anyhow::Result<()> {
    if args.jobs == 0 || args.cpus == 0 {
        bail!("--jobs and --cpus must be at least 1");
    }
    let selected = kernels::select(&args.kernel)?;
    let wall = Instant::now();

    let built = binaries::build(args.debug)?;
    let busybox_bin = busybox::prepare()?;
    let applets = busybox::applets(&busybox_bin)?;
    let host_files = host_tools::collect()?;
    let source_files = sources::collect()?;
    let prepared: Vec<Prepared> = selected
        .iter()
        .map(|k| kernels::prepare(k, args.refresh_kernels))
        .collect::<anyhow::Result<_>>()?;

    let dir = vm_dir();
    fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.display()))?;
    let initrd = dir.join("initramfs.cpio");
    initramfs::write(
        &initrd,
        &built,
        &initramfs::Userland {
            busybox: &busybox_bin,
            applets: &applets,
            host_files: &host_files,
            sources: &source_files,
        },
        &initramfs::RunSettings {
            timeout_per_test: args.test_timeout,
            test_threads: args.test_threads,
            test_args: &args.test_args,
        },
    )?;
    let size = fs::metadata(&initrd).map(|m| m.len()).unwrap_or(0);
    println!(
        "vm-test: initramfs {} ({} MiB); {} kernel(s), {} at a time, {} CPU(s) and {} MiB each",
        initrd.display(),
        size >> 20,
        prepared.len(),
        args.jobs,
        args.cpus,
        args.memory
    );

    let (accel, why) = qemu::accel_args(
        args.accel,
        &prepared.first().context("no kernel selected")?.vmlinuz,
        &dir.join("logs/accel-probe.log"),
    )?;
    println!("vm-test: accelerator: {why}");
    let settings = qemu::Settings {
        accel,
        memory_mib: args.memory,
        cpus: args.cpus,
        timeout: Duration::from_secs(args.timeout),
        silence: Duration::from_secs(args.test_timeout) + SILENCE_MARGIN,
    };
    let next = AtomicUsize::new(0);
    let runs: Mutex<Vec<(usize, KernelRun)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.jobs.min(prepared.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(kernel) = prepared.get(i) else {
                        break;
                    };
                    let run = boot_one(kernel, &initrd, &settings);
                    // A poisoned lock means another VM thread panicked;
                    // its run is lost, this one is still worth keeping.
                    let mut runs = runs.lock().unwrap_or_else(|p| p.into_inner());
                    runs.push((i, run));
                }
            });
        }
    });
    let mut runs = runs.into_inner().unwrap_or_else(|p| p.into_inner());
    runs.sort_by_key(|(i, _)| *i);
    let runs: Vec<KernelRun> = runs.into_iter().map(|(_, r)| r).collect();
    if runs.len() != prepared.len() {
        bail!(
            "{} of {} VM runs were lost",
            prepared.len() - runs.len(),
            prepared.len()
        );
    }
    for run in &runs {
        save_formats(run)?;
    }
    println!(
        "vm-test: tracepoint formats in {}",
        dir.join("formats").display()
    );
    let summary = report::print(&runs, wall.elapsed());
    if !summary.broken_kernels.is_empty() {
        bail!(
            "no result from kernel(s) {}: see FAILED above and their logs",
            summary.broken_kernels.join(", ")
        );
    }
    if runs.iter().all(|r| r.console.tests.is_empty()) {
        bail!(
            "no test ran in any VM{}",
            if args.test_args.is_empty() {
                String::new()
            } else {
                format!(
                    " (do the test arguments {:?} match any test name?)",
                    args.test_args
                )
            }
        );
    }
    if summary.failed > 0 {
        bail!("{} test(s) failed in the VMs", summary.failed);
    }
    Ok(())
}

/// Boots one kernel and reads its run back; a VM that fails to start,
/// hangs or panics is a run with a problem, not an error, so the other
/// kernels still report.
fn boot_one(kernel: &Prepared, initrd: &Path, settings: &qemu::Settings) -> KernelRun {
    let name = kernel.name;
    let log = vm_dir().join("logs").join(format!("{name}.log"));
    println!("vm-test: [{name}] booting {}", kernel.package);
    let mut init_at: Option<Duration> = None;
    let mut result_at: Option<Duration> = None;
    let booted = qemu::boot(
        &kernel.vmlinuz,
        Some(initrd),
        "rdinit=/init",
        &log,
        settings,
        |line, at| {
            let Some(message) = line
                .find(console::PREFIX)
                .map(|i| &line[i + console::PREFIX.len()..])
            else {
                return;
            };
            if message == "init started" {
                init_at = Some(at);
                println!(
                    "vm-test: [{name}] init started after {:.1} s",
                    at.as_secs_f64()
                );
            } else if let Some(end) = message.strip_prefix("end test-binary ") {
                println!("vm-test: [{name}] {end}");
            } else if message.starts_with("result ") {
                result_at = Some(at);
                println!("vm-test: [{name}] {message}");
            } else if message.contains(" fail ") && message.starts_with("test ") {
                println!("vm-test: [{name}] {message}");
            }
        },
    );
    let mut run = KernelRun {
        name,
        package: kernel.package.clone(),
        console: console::Console::default(),
        problem: None,
        boot: init_at,
        tests: init_at.zip(result_at).map(|(a, b)| b.saturating_sub(a)),
        total: Duration::ZERO,
        log: log.clone(),
    };
    let boot = match booted {
        Ok(boot) => boot,
        Err(e) => {
            run.problem = Some(format!("{e:#}"));
            return run;
        }
    };
    run.total = boot.elapsed;
    run.console = console::parse(&boot.lines);
    let stderr = boot.stderr.trim();
    run.problem = match &boot.end {
        qemu::End::Panicked(line) => Some(format!("kernel panic: {}", line.trim())),
        qemu::End::TimedOut => Some(format!(
            "timed out after {} s and killed (--timeout); last console line: {}",
            settings.timeout.as_secs(),
            boot.lines.last().map_or("(none)", String::as_str)
        )),
        qemu::End::Silent => Some(format!(
            "no console output for {} s, killed (the kernel or vm-init is stuck); \
             last console line: {}",
            settings.silence.as_secs(),
            boot.lines.last().map_or("(none)", String::as_str)
        )),
        qemu::End::Exited(_) if run.console.result.is_some() => None,
        qemu::End::Exited(status) if run.console.release.is_none() => Some(format!(
            "qemu exited ({status}) before vm-init started{}",
            if stderr.is_empty() {
                String::new()
            } else {
                format!("; qemu says: {stderr}")
            }
        )),
        qemu::End::Exited(status) => Some(format!(
            "qemu exited ({status}) without vm-init's result line; last console line: {}",
            boot.lines.last().map_or("(none)", String::as_str)
        )),
    };
    if let Some(problem) = &run.problem {
        println!(
            "vm-test: [{name}] FAILED: {problem} (log {})",
            log.display()
        );
    }
    run
}

/// `target/vm/formats/<kernel>/<group>/<event>/format`, and a `kernel`
/// file saying which kernel and what it has.
fn save_formats(run: &KernelRun) -> anyhow::Result<()> {
    if run.console.formats.is_empty() {
        return Ok(());
    }
    let dir = vm_dir().join("formats").join(run.name);
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    for (event, text) in &run.console.formats {
        // Event names come from the guest: no `..` climbing out.
        if event
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            continue;
        }
        let event_dir = dir.join(event);
        fs::create_dir_all(&event_dir)
            .with_context(|| format!("creating {}", event_dir.display()))?;
        fs::write(event_dir.join("format"), text)
            .with_context(|| format!("writing {}", event_dir.display()))?;
    }
    let mut about = format!(
        "release: {}\npackage: {}\n",
        run.console.release.as_deref().unwrap_or("unknown"),
        run.package
    );
    for (k, v) in &run.console.features {
        about.push_str(&format!("{k}: {v}\n"));
    }
    fs::write(dir.join("kernel"), about).with_context(|| format!("writing {}", dir.display()))
}
