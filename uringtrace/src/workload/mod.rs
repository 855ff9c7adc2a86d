//! Built-in io_uring workload engine (placeholder, being written).

#[derive(Debug, clap::Args)]
pub struct WorkloadArgs {
    /// Scenario to run.
    pub scenario: Option<String>,
}

pub fn run(_args: WorkloadArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
