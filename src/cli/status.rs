//! `omnistock status [--json]`.

use std::path::Path;

use anyhow::Result;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints per-channel status read from the database: counts, the last push error, the order
/// cursor, drift and quarantine events of the last 24 h, and quarantined items (the first
/// [`crate::status::TEXT_LIST_MAX`] as text, up to [`crate::status::LIST_MAX`] with `--json`).
pub async fn run(config: &Path, args: Args) -> Result<()> {
    let app = super::App::open(config).await?;
    let status = crate::status::read(&app.store, &app.channel_list()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!("{status}");
    }
    Ok(())
}
