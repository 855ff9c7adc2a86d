//! uringtrace: an eBPF tracer for Linux io_uring.

mod alerts;
mod attach;
mod btf;
mod check;
mod cli;
mod clock;
mod decode;
mod event;
mod event_ring;
mod fasthash;
mod fd_mapping;
mod filter;
mod format;
mod missed_runs;
mod output;
mod privileges;
mod process_context;
mod requests;
mod selection;
mod session;
mod summary;
#[cfg(test)]
#[path = "../tests/common/skip.rs"]
mod test_skip;
mod top;
mod tracefs;
mod wakeup;
mod workload;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Workload(args)) => workload::run(args).map(|()| 0),
        Some(Command::Check(args)) => check::run(args),
        Some(Command::Top(args)) => top::run(args),
        Some(Command::Monitor(args)) => alerts::monitor::run(args),
        None => session::run(cli.trace),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            eprintln!("uringtrace: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
