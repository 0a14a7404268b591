//! The operator's contract (DESIGN §7): one module per subcommand, each a thin layer over the
//! library that prints for people (or JSON) and returns an error the caller turns into a non-zero
//! exit.

mod check;
mod demo;
mod explain;
mod import;
mod orders;
mod resync;
pub mod sandbox;
mod status;
mod stock;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::store::Store;
use crate::sync::SyncPlan;

/// omnistock — keep every sales channel's stock and listings true to one master catalog.
#[derive(Debug, Parser)]
#[command(name = "omnistock", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Config file. Defaults to $OMNISTOCK_CONFIG, then ./omnistock.toml.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "OMNISTOCK_CONFIG",
        default_value = "omnistock.toml"
    )]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: migrations, lease, admin HTTP, config hot reload; stops cleanly on SIGTERM/SIGINT.
    Run,
    /// Validate the config file and probe each channel with a harmless call.
    Check(check::Args),
    /// Upsert catalog and stock from a CSV file, all or nothing.
    Import(import::Args),
    /// Set or adjust on-hand stock.
    #[command(subcommand)]
    Stock(stock::StockCommand),
    /// Per channel: listings waiting to be pushed, errors, quarantined items, last push and poll.
    Status(status::Args),
    /// Show how each channel's quantity and price for a SKU were computed.
    Explain(explain::Args),
    /// The unified order history across channels.
    Orders(orders::Args),
    /// Read what the channels show, print the difference, and push it (unless --dry-run).
    Resync(resync::Args),
    /// Sandbox marketplaces + daemon + sample catalog + orders, printing how fast every channel
    /// follows; exits by itself.
    Demo(demo::Args),
    /// Start the fake marketplaces on local ports, for trying omnistock without accounts.
    Sandbox(sandbox::Args),
}

/// Parses arguments and runs the command.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run => crate::daemon::run(&cli.config).await,
        Command::Check(args) => check::run(&cli.config, args).await,
        Command::Import(args) => import::run(&cli.config, args).await,
        Command::Stock(cmd) => stock::run(&cli.config, cmd).await,
        Command::Status(args) => status::run(&cli.config, args).await,
        Command::Explain(args) => explain::run(&cli.config, args).await,
        Command::Orders(args) => orders::run(&cli.config, args).await,
        Command::Resync(args) => resync::run(&cli.config, args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Sandbox(args) => sandbox::run(args).await,
    }
}

/// What most commands need: the config, its sync plan and an open store with locations in place.
pub struct App {
    /// The loaded config.
    pub config: Config,
    /// Its sync plan.
    pub plan: SyncPlan,
    /// The database.
    pub store: Store,
}

impl App {
    /// Loads the config and opens the database (applying migrations).
    pub async fn open(path: &std::path::Path) -> Result<App> {
        let config = crate::config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let plan = SyncPlan::from_config(&config);
        let store = Store::open(&config.daemon.database)
            .await
            .with_context(|| {
                format!(
                    "cannot open database {}",
                    redact_url(&config.daemon.database)
                )
            })?;
        crate::catalog::sync_locations(&store, &location_pairs(&config)).await?;
        Ok(App {
            config,
            plan,
            store,
        })
    }

    /// (id, type) of every configured channel, in id order.
    pub fn channel_list(&self) -> Vec<(String, String)> {
        channel_list(&self.config)
    }
}

/// (id, type) of every configured channel.
pub fn channel_list(config: &Config) -> Vec<(String, String)> {
    config
        .channels
        .iter()
        .map(|(id, c)| (id.clone(), c.kind().as_str().to_owned()))
        .collect()
}

/// (id, name) of every configured location.
pub fn location_pairs(config: &Config) -> Vec<(String, String)> {
    config
        .locations
        .iter()
        .map(|l| (l.id.clone(), l.name.clone().unwrap_or_else(|| l.id.clone())))
        .collect()
}

/// A database URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host/… → scheme://user:***@host/…
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.split_once('@')
        && let Some((user, _)) = auth.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
