//! `omnistock stock set|adjust`.

use std::path::Path;

use anyhow::Result;

use crate::catalog::{StockChange, change_stock};

/// Stock subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StockCommand {
    /// Set on-hand stock to an absolute quantity.
    Set {
        /// The SKU.
        sku: String,
        /// The new on-hand quantity (0 or more).
        quantity: i64,
        /// Location (default: the first configured location).
        #[arg(long, short = 'l')]
        location: Option<String>,
    },
    /// Add to (or, with a negative number, remove from) on-hand stock.
    Adjust {
        /// The SKU.
        sku: String,
        /// The change, e.g. +5 or -2.
        #[arg(allow_hyphen_values = true)]
        delta: String,
        /// Location (default: the first configured location).
        #[arg(long, short = 'l')]
        location: Option<String>,
    },
}

/// Runs a stock command.
pub async fn run(config: &Path, cmd: StockCommand) -> Result<()> {
    let (sku, change, location) = match cmd {
        StockCommand::Set {
            sku,
            quantity,
            location,
        } => {
            anyhow::ensure!(quantity >= 0, "quantity must be 0 or more, got {quantity}");
            (sku, StockChange::Set(quantity), location)
        }
        StockCommand::Adjust {
            sku,
            delta,
            location,
        } => {
            let d: i64 = delta
                .trim_start_matches('+')
                .parse()
                .map_err(|_| anyhow::anyhow!("{delta:?} is not a whole number like +5 or -2"))?;
            (sku, StockChange::Adjust(d), location)
        }
    };
    let app = super::App::open(config).await?;
    let location = match location {
        Some(l) => l,
        None => app
            .config
            .locations
            .first()
            .map(|l| l.id.clone())
            .ok_or_else(|| anyhow::anyhow!("no [[locations]] configured"))?,
    };
    let key = format!("manual:{}", uuid::Uuid::new_v4());
    let r = change_stock(&app.store, &app.plan, &sku, &location, change, &key).await?;
    println!(
        "{sku} at {location}: on hand {} → {} (reserved {}); {} channel listing{} to update",
        r.before,
        r.after,
        r.reserved,
        r.listings_changed,
        if r.listings_changed == 1 { "" } else { "s" }
    );
    Ok(())
}
