//! Project tasks: `cargo xtask setup|demo|test|lint`.

mod lint;
mod run;
mod setup;
mod test;

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
    /// decode-table tests.
    Setup,
    /// Set up, build, and trace the built-in `tour` workload in text mode.
    Demo,
    /// Set up, then run the unit and integration tests (needs root).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// rustfmt and clippy (-D warnings) on the userspace and eBPF crates.
    Lint,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::run(),
        Task::Demo => {
            setup::run()?;
            run::demo()
        }
        Task::Test { cargo_args } => {
            setup::run()?;
            test::run(&cargo_args)
        }
        Task::Lint => {
            setup::run()?;
            lint::run()
        }
    }
}
