//! `omnistock check`: validate the config file.

use std::path::Path;

use anyhow::Result;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only validate the file; do not call the marketplaces.
    #[arg(long)]
    pub skip_healthchecks: bool,
}

/// Validates the config and prints a summary (secrets as `***`).
pub async fn run(path: &Path, args: Args) -> Result<()> {
    let config = crate::config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}: OK", path.display());
    println!("  database  {}", super::redact_url(&config.daemon.database));
    println!("  listen    {}", config.daemon.listen);
    println!(
        "  locations {}",
        config
            .locations
            .iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (id, c) in &config.channels {
        let on = if c.common().enabled {
            ""
        } else {
            " (disabled)"
        };
        println!("  channel   {id} ({}){on}", c.kind().as_str());
    }
    println!("  rules     {}", config.rules.len());
    if !args.skip_healthchecks && !config.channels.is_empty() {
        println!(
            "  healthchecks: no marketplace connector is built into this version yet; \
             only the file was checked (use --skip-healthchecks to silence this)"
        );
    }
    Ok(())
}
