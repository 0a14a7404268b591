//! `omnistock import FILE.csv [--dry-run]`.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::catalog::import::{ImportError, ImportOptions, import_file};

/// Arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Columns: sku,title,price,quantity (required); product_id, description, brand, barcode, \
currency, location, tags, image_urls, weight_g, option1_name, option1_value … option9_value, components \
(optional). Lists are |-separated; components is SKU:QTY|SKU:QTY and makes the row a bundle (leave its \
quantity empty). An empty quantity leaves that SKU's stock unchanged."
)]
pub struct Args {
    /// The CSV file.
    pub file: PathBuf,
    /// Validate and show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Location for rows without a `location` value (default: the first configured location).
    #[arg(long)]
    pub location: Option<String>,
    /// Currency for rows without a `currency` value.
    #[arg(long, default_value = "USD")]
    pub currency: String,
}

/// Runs the import.
pub async fn run(config: &Path, args: Args) -> Result<()> {
    let app = super::App::open(config).await?;
    let locations: Vec<String> = app.config.locations.iter().map(|l| l.id.clone()).collect();
    let default_location = match args.location {
        Some(l) => l,
        None => locations
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no [[locations]] in the config"))?,
    };
    let opts = ImportOptions {
        dry_run: args.dry_run,
        default_location,
        locations,
        default_currency: args.currency,
    };
    let started = std::time::Instant::now();
    match import_file(&app.store, &app.plan, &args.file, &opts).await {
        Ok(report) => {
            println!("{}: {report}", args.file.display());
            println!("({:.2} s)", started.elapsed().as_secs_f64());
            Ok(())
        }
        Err(e @ ImportError::Invalid(..)) => Err(anyhow::anyhow!("{}: {e}", args.file.display())),
        Err(e) => Err(e.into()),
    }
}
