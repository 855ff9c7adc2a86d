//! Project tasks: `cargo xtask setup|demo|test|vm-test|lint|bench`.

mod apt;
mod bench;
mod lint;
mod run;
mod setup;
mod test;
mod vm;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "uringtrace's build, test and demo tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what building the eBPF programs needs (idempotent): nightly
    /// rust-src, LLVM 22, bpf-linker 0.13.0, and newer kernel headers for the
    /// decode-table tests; and for the VM suite, the musl target and qemu.
    Setup,
    /// Set up, build, and trace the built-in `tour` workload in text mode.
    Demo,
    /// Set up, then run the unit and integration tests (needs root), then
    /// the integration tests again in qemu VMs on the kernel matrix (what
    /// `vm-test` runs).
    Test {
        /// The host tests only, without the VM suite.
        #[arg(long)]
        host_only: bool,
        /// Kept for scripts: the VM suite is the default now.
        #[arg(long, hide = true)]
        vm: bool,
        /// Extra arguments for `cargo test` (e.g. a test name filter); the
        /// VM suite runs in full.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run the tracer's integration tests in qemu VMs on Debian's 5.10,
    /// 6.1, 6.12 and sid kernels; print a table of tests by kernel and save
    /// each kernel's io_uring tracepoint formats in target/vm/formats.
    VmTest(vm::VmTestArgs),
    /// rustfmt and clippy (-D warnings) on the userspace and eBPF crates.
    Lint,
    /// Set up, build, and measure what tracing costs a NOP storm:
    /// uringtrace against bpftrace and strace (installed if missing);
    /// writes bench/results.json, results.md and throughput.png.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => {
            setup::run()?;
            setup::vm_tools()
        }
        Task::Demo => {
            setup::run()?;
            run::demo()
        }
        Task::Test {
            host_only,
            vm: _,
            cargo_args,
        } => {
            setup::run()?;
            let vm = !host_only;
            if vm {
                setup::vm_tools()?;
            }
            let host = test::run(&cargo_args);
            if !vm {
                return host;
            }
            // The VM suite runs even when a host test failed: a failure on
            // one kernel only is worth knowing either way.
            if let Err(e) = &host {
                eprintln!("xtask test: host tests failed ({e:#}); running the VM suite anyway");
            }
            // The whole matrix, two VMs at a time: about 4 minutes of tests
            // per kernel under TCG, 8 in all on two CPUs.
            let vms = vm::run(&vm::VmTestArgs::default());
            host.and(vms)
        }
        Task::VmTest(args) => {
            if args.list {
                vm::list();
                return Ok(());
            }
            setup::run()?;
            setup::vm_tools()?;
            vm::run(&args)
        }
        Task::Lint => {
            setup::run()?;
            lint::run()
        }
        Task::Bench(args) => {
            setup::run()?;
            bench::run(&args)
        }
    }
}
