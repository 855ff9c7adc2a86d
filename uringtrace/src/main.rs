mod workload;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "uringtrace",
    version,
    about = "Trace Linux io_uring system calls and requests with eBPF"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive io_uring with a built-in scenario (the tracer's test workload).
    Workload(workload::WorkloadArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Workload(args)) => workload::run(args),
        None => Ok(()),
    }
}
