//! `omnistock sandbox`: the fake marketplaces on local ports.

use anyhow::Result;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the sandbox until interrupted.
pub async fn run(_args: Args) -> Result<()> {
    anyhow::bail!("the sandbox command is not wired yet")
}
