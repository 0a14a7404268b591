//! `omnistock resync [--channel C]… [--sku S]… [--dry-run] [--full]`.
//!
//! Reads what each channel really shows, prints how it differs from what it should show, and —
//! unless `--dry-run` — marks the differing listings (every listing with `--full`) for a push and
//! sees the push through with a progress bar.
//!
//! Never two pushers for one channel: the push happens under the channel's lease. When no daemon
//! runs, this command takes the lease, pushes, and gives it back. When a daemon owns the channel,
//! this command does not push at all: the marked rows are ordinary dirty rows, which the owner
//! picks up within a quarter second, and this command waits for them to be confirmed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::AssertSqlSafe;
use tokio_util::sync::CancellationToken;

use crate::reconcile::{self, ChannelDiff};
use crate::store::lease::{Lease, channel_lease, holder, owner_id};
use crate::store::{Store, placeholders};
use crate::sync::bulk::BulkRunner;
use crate::sync::channels;
use crate::sync::dispatch::{Dispatcher, PushCounters};

/// Differences printed per channel before "… and N more" (all of them with `--json`).
const MAX_PRINTED: usize = 50;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these channels (repeatable). Default: every enabled channel.
    #[arg(long = "channel", value_name = "C")]
    pub channels: Vec<String>,
    /// Only these SKUs (repeatable).
    #[arg(long = "sku", value_name = "S")]
    pub skus: Vec<String>,
    /// Show the differences; change and push nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Push every listing (of the selected SKUs), whatever the diff says.
    #[arg(long)]
    pub full: bool,
    /// Print the differences as JSON (one object per channel).
    #[arg(long)]
    pub json: bool,
    /// Give up waiting for the pushes after this many seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub wait_secs: u64,
}

/// Runs the resync.
pub async fn run(config: &Path, args: Args) -> Result<()> {
    let app = super::App::open(config).await?;
    let wanted: Vec<String> = if args.channels.is_empty() {
        app.config
            .channels
            .iter()
            .filter(|(_, c)| c.common().enabled)
            .map(|(id, _)| id.clone())
            .collect()
    } else {
        for c in &args.channels {
            if app.config.channel(c).is_none() {
                let known: Vec<&str> = app.config.channels.keys().map(String::as_str).collect();
                bail!(
                    "no channel `{c}` in {}; configured: {}",
                    config.display(),
                    known.join(", ")
                );
            }
        }
        args.channels.clone()
    };
    let only: Option<Vec<String>> = (!args.skus.is_empty()).then(|| args.skus.clone());
    let mut failed = Vec::new();
    for id in &wanted {
        let Some(cfg) = app.config.channel(id) else {
            continue;
        };
        let spec = match channels::spec(id, cfg, app.config.daemon.lease_secs) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                failed.push(id.clone());
                continue;
            }
        };
        if let Err(e) = resync_channel(&app.store, &spec, &args, only.as_deref()).await {
            eprintln!("{id}: {e:#}");
            failed.push(id.clone());
        }
    }
    if !failed.is_empty() {
        bail!("resync failed for: {}", failed.join(", "));
    }
    Ok(())
}

async fn resync_channel(
    store: &Store,
    spec: &crate::sync::engine::ChannelSpec,
    args: &Args,
    only: Option<&[String]>,
) -> Result<()> {
    let id = spec.id.as_str();
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(format!("{id}: reading the channel's listings"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = crate::store::now_ms();
    let remote = reconcile::snapshot(spec.connector.as_ref(), |n| {
        spinner.set_message(format!("{id}: read {n} listings"));
    })
    .await
    .with_context(|| format!("cannot read {id}'s listings"))?;
    spinner.finish_and_clear();
    let desired = reconcile::load_desired(store, id, only).await?;
    let diff = reconcile::diff(id, &desired, &remote, started, only);
    print_diff(&diff, args.json);
    if args.dry_run {
        return Ok(());
    }
    let repairable = diff
        .differences
        .iter()
        .filter(|d| d.is_repairable())
        .count();
    if repairable == 0 && !args.full {
        return Ok(());
    }
    let applied = reconcile::apply(store, &diff, args.full, only).await?;
    let marked: Vec<String> = if args.full {
        Vec::new()
    } else {
        diff.differences
            .iter()
            .filter(|d| d.is_repairable())
            .map(|d| d.sku().to_owned())
            .collect()
    };
    // What to watch: the marked SKUs, or (with --full) the selection.
    // A very long list would only slow every query down: watch the whole channel instead.
    let watch: Option<Vec<String>> = if args.full {
        only.map(<[String]>::to_vec)
    } else {
        Some(marked)
    }
    .filter(|w| w.len() <= 1_000);
    let total = pending(store, id, watch.as_deref())
        .await?
        .max(applied.marked as i64);
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let deadline = Instant::now() + Duration::from_secs(args.wait_secs);
    let owner = owner_id("resync");
    let lease = Lease::acquire(store, &channel_lease(id), &owner, spec.lease_ttl).await?;
    match lease {
        Some(lease) => {
            bar.set_message(format!("{id}: pushing"));
            let dispatcher = Arc::new(Dispatcher {
                channel: id.to_owned(),
                connector: Arc::clone(&spec.connector),
                store: store.clone(),
                options: spec.dispatch.clone(),
                counters: Arc::new(std::sync::Mutex::new(PushCounters::default())),
                bulk: BulkRunner::new(CancellationToken::new()),
                gate: None,
            });
            let keeper = {
                let (store, lease, ttl) = (store.clone(), lease.clone(), spec.lease_ttl);
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep((ttl / 3).max(Duration::from_millis(100))).await;
                        if !matches!(lease.renew(&store, ttl).await, Ok(true)) {
                            return;
                        }
                    }
                })
            };
            let mut done = 0usize;
            let result = loop {
                let r = dispatcher
                    .drain(&lease, watch.as_deref(), deadline, |n| {
                        bar.set_position(u64::try_from(done + n).unwrap_or(0));
                    })
                    .await;
                match r {
                    Ok(n) => done += n,
                    Err(e) => break Err(e),
                }
                // Items the marketplace asked us to retry later are not due yet: wait for them.
                if pending(store, id, watch.as_deref()).await? == 0 || Instant::now() >= deadline {
                    break Ok(());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            keeper.abort();
            lease.release(store).await.ok();
            result.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        None => {
            let who = holder(store, &channel_lease(id))
                .await?
                .map(|h| h.owner)
                .unwrap_or_else(|| "another process".into());
            bar.set_message(format!("{id}: pushed by {who}"));
            loop {
                let left = pending(store, id, watch.as_deref()).await?;
                bar.set_position(u64::try_from(total - left).unwrap_or(0));
                if left == 0 {
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let left = pending(store, id, watch.as_deref()).await?;
    let quarantined = quarantined(store, id, watch.as_deref()).await?;
    bar.finish_and_clear();
    println!(
        "{id}: {} listing(s) marked, {} confirmed, {left} still pending, {quarantined} quarantined",
        applied.marked,
        (total - left).max(0)
    );
    if left > 0 {
        bail!(
            "{left} listing(s) on {id} were not confirmed within {} s",
            args.wait_secs
        );
    }
    Ok(())
}

fn print_diff(diff: &ChannelDiff, json: bool) {
    if json {
        println!("{}", serde_json::to_string(diff).unwrap_or_default());
        return;
    }
    println!(
        "{}: {} listing(s) compared, {} skipped (push in flight), {} difference(s)",
        diff.channel,
        diff.compared,
        diff.skipped_in_flight,
        diff.differences.len()
    );
    for d in diff.differences.iter().take(MAX_PRINTED) {
        println!("  {d}");
    }
    if diff.differences.len() > MAX_PRINTED {
        println!("  … and {} more", diff.differences.len() - MAX_PRINTED);
    }
}

async fn count(store: &Store, sql: &str, channel: &str, only: Option<&[String]>) -> Result<i64> {
    let mut sql = sql.to_owned();
    if let Some(skus) = only {
        if skus.is_empty() {
            return Ok(0);
        }
        sql.push_str(&format!(" AND sku IN ({})", placeholders(2, skus.len())));
    }
    let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(channel);
    if let Some(skus) = only {
        for s in skus {
            q = q.bind(s.as_str());
        }
    }
    Ok(q.fetch_one(store.pool()).await?)
}

async fn pending(store: &Store, channel: &str, only: Option<&[String]>) -> Result<i64> {
    count(
        store,
        "SELECT COUNT(*) FROM channel_items WHERE channel = $1 AND desired_version > pushed_version \
         AND state <> 'quarantined'",
        channel,
        only,
    )
    .await
}

async fn quarantined(store: &Store, channel: &str, only: Option<&[String]>) -> Result<i64> {
    count(
        store,
        "SELECT COUNT(*) FROM channel_items WHERE channel = $1 AND state = 'quarantined'",
        channel,
        only,
    )
    .await
}
