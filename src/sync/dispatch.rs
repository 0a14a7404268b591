//! The dispatcher: converges one channel account to its desired state.
//!
//! Level-triggered (DESIGN §1): each round reads the rows whose `desired_version >
//! pushed_version`, sends their *current absolute* values in batches of the marketplace's size,
//! and records what the marketplace said. Nothing carries quantities between rounds, so a crash
//! loses nothing (the rows are still dirty after a restart) and 1,000 changes between two rounds
//! are one push of the last value.
//!
//! Ordering (DESIGN §5): quantities that drop to zero first (an oversell is the costly mistake),
//! then other decreases, then new listings and increases, then price/content-only changes.
//!
//! Fencing, twice over:
//! - **version**: a result is recorded with `… WHERE pushed_version < $sent_version`, so an older
//!   push finishing late can never overwrite a newer confirmation;
//! - **lease**: results are recorded only in a transaction that first proves (via
//!   [`Lease::fence`]) that this process still owns the channel; a paused owner that lost its lease
//!   records nothing and stops.
//!
//! Failures:
//! - per item: `Retry` backs the item off (exponential, full jitter); `Rejected` quarantines it with
//!   the marketplace's error while the rest of the batch lands; `NotListed` turns the next attempt
//!   into a listing push;
//! - whole call: a 429 pauses the connector's rate budget (inside the connector) and burns nothing;
//!   an outage or timeout backs the *channel* off, items untouched; a refusal of a multi-item batch
//!   is retried item by item, so one poisoned item cannot block its batch-mates.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use omnistock_connectors::common::{Backoff, SendGate, maybe_gated};
use omnistock_connectors::{
    Connector, ConnectorError, Currency, ErrorClass, ItemOutcome, ListingUpdate, Money, Sku,
    StockUpdate,
};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::bulk::BulkRunner;
use super::recompute::Desired;
use crate::store::{Lease, Store, StoreError, Tx, now_ms, placeholders};

/// Largest number of rows one round reads (a few batches' worth, so a round stays short and new
/// decreases jump the queue quickly).
pub const MAX_ROUND_ITEMS: usize = 2_000;

/// How the dispatcher of one channel behaves.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    /// Items per stock batch (≤ the connector's maximum).
    pub stock_batch: usize,
    /// Items per listing batch (≤ the connector's maximum).
    pub listing_batch: usize,
    /// Batches in flight at once.
    pub concurrency: usize,
    /// Backoff for items the marketplace asked us to retry, and for the channel after a failed call.
    pub backoff: Backoff,
}

/// One dirty row.
#[derive(Debug, Clone)]
pub struct DirtyItem {
    /// SKU.
    pub sku: String,
    /// What the channel should show.
    pub desired: Desired,
    /// Its JSON, recorded as `pushed_json` on success.
    pub desired_json: String,
    /// The version being sent.
    pub version: i64,
    /// What was last confirmed (`None`: never pushed, or the channel lost the listing).
    pub pushed: Option<Desired>,
    /// The channel's listing id.
    pub external_id: Option<String>,
    /// Failed attempts so far.
    pub attempts: i64,
}

impl DirtyItem {
    /// True when this change needs the whole listing sent (new, lost, content or — when the stock
    /// call cannot carry it — price changed).
    pub fn needs_listing(&self, stock_carries_price: bool) -> bool {
        match &self.pushed {
            None => true,
            Some(p) => {
                p.content != self.desired.content
                    || (!stock_carries_price
                        && (p.price_minor != self.desired.price_minor
                            || p.currency != self.desired.currency))
            }
        }
    }
}

/// Counters one channel's dispatcher keeps (for `/metrics`, `status` and the demo).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushCounters {
    /// Calls made (stock + listing).
    pub calls: u64,
    /// Items confirmed.
    pub applied: u64,
    /// Items the marketplace asked to retry.
    pub retried: u64,
    /// Items quarantined.
    pub rejected: u64,
    /// Items that turned out not to be listed.
    pub not_listed: u64,
    /// Whole calls that failed, by class.
    pub failed_calls: HashMap<String, u64>,
    /// Results not recorded because a newer version was already confirmed.
    pub superseded: u64,
    /// When the last call succeeded (unix ms).
    pub last_success_at: Option<i64>,
    /// The last whole-call error.
    pub last_error: Option<String>,
    /// Consecutive failed rounds (drives the channel backoff).
    pub consecutive_failures: u32,
}

/// Shared handle to a channel's counters.
pub type Counters = Arc<Mutex<PushCounters>>;

fn bump(c: &Counters, f: impl FnOnce(&mut PushCounters)) {
    match c.lock() {
        Ok(mut g) => f(&mut g),
        Err(p) => f(&mut p.into_inner()),
    }
}

/// Why a round stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another process owns the channel now.
    #[error("lost the channel lease (another process owns {0} now)")]
    LeaseLost(String),
    /// The marketplace call failed as a whole (already recorded in the counters).
    #[error(transparent)]
    Call(ConnectorError),
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Rows read.
    pub picked: usize,
    /// Items confirmed.
    pub applied: usize,
    /// Items still dirty after the round (retry, quarantine, not listed …).
    pub failed: usize,
}

/// The dispatcher of one channel account.
pub struct Dispatcher {
    /// Channel id.
    pub channel: String,
    /// The connector (shared with the poller and reconcile: one rate budget).
    pub connector: Arc<dyn Connector>,
    /// Database.
    pub store: Store,
    /// Options.
    pub options: DispatchOptions,
    /// Counters.
    pub counters: Counters,
    /// Background bulk jobs (channels whose connector has a bulk path).
    pub bulk: Arc<BulkRunner>,
    /// Checked right before every request (the engine's lease deadline); `None` sends freely
    /// (the CLI's `resync`, which holds its lease for the whole run, and tests).
    pub gate: Option<SendGate>,
}

impl Dispatcher {
    /// Reads up to `limit` dirty rows due now, highest priority first; `only` restricts to SKUs.
    /// Rows whose current version travels in a pending bulk job are not due.
    pub async fn pick(
        &self,
        limit: usize,
        only: Option<&[String]>,
    ) -> Result<Vec<DirtyItem>, StoreError> {
        if only.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        let mut sql = format!(
            "SELECT sku, desired_json, desired_version, pushed_json, external_id, attempts \
             FROM channel_items WHERE {}",
            due_filter(only)
        );
        sql.push_str(
            " ORDER BY CASE \
               WHEN pushed_qty IS NOT NULL AND desired_qty = 0 AND pushed_qty > 0 THEN 0 \
               WHEN pushed_qty IS NOT NULL AND desired_qty < pushed_qty THEN 1 \
               WHEN pushed_qty IS NULL OR desired_qty > pushed_qty THEN 2 \
               ELSE 3 END, updated_at, sku",
        );
        sql.push_str(&format!(" LIMIT {}", limit.max(1)));
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(&self.channel)
            .bind(now_ms());
        for s in only.unwrap_or_default() {
            q = q.bind(s.as_str());
        }
        let rows = q.fetch_all(self.store.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let sku: String = row.try_get(0)?;
            let desired_json: String = row.try_get(1)?;
            let Ok(desired) = serde_json::from_str::<Desired>(&desired_json) else {
                warn!(channel = %self.channel, sku = %sku, "Unreadable desired state; skipping the row.");
                continue;
            };
            let pushed_json: Option<String> = row.try_get(3)?;
            out.push(DirtyItem {
                sku,
                desired,
                desired_json,
                version: row.try_get(2)?,
                pushed: pushed_json.and_then(|j| serde_json::from_str(&j).ok()),
                external_id: row.try_get(4)?,
                attempts: row.try_get(5)?,
            });
        }
        Ok(out)
    }

    /// Counts dirty rows due now, stopping at `cap` (a bounded scan, cheap at any catalog size).
    pub async fn count_due(
        &self,
        cap: usize,
        only: Option<&[String]>,
    ) -> Result<usize, StoreError> {
        if only.is_some_and(<[String]>::is_empty) {
            return Ok(0);
        }
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM channel_items WHERE {} LIMIT {}) t",
            due_filter(only),
            cap.max(1)
        );
        let mut q = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
            .bind(&self.channel)
            .bind(now_ms());
        for s in only.unwrap_or_default() {
            q = q.bind(s.as_str());
        }
        let n = q.fetch_one(self.store.pool()).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// One round: pick, send in batches (up to `concurrency` at once), record. Returns what
    /// happened, or why it stopped (lease lost, a whole-call failure, the database).
    pub async fn round(
        self: &Arc<Self>,
        lease: &Lease,
        only: Option<&[String]>,
    ) -> Result<RoundReport, RoundError> {
        let caps = self.connector.capabilities();
        let stock_batch = self
            .options
            .stock_batch
            .clamp(1, caps.max_stock_batch.max(1));
        let listing_batch = self
            .options
            .listing_batch
            .clamp(1, caps.max_listing_batch.max(1));
        let concurrency = self.options.concurrency.max(1);
        let limit = (stock_batch.max(listing_batch) * concurrency).min(MAX_ROUND_ITEMS);
        // Many waiting items may go out as one asynchronous job (see `bulk`); the rest, and
        // everything that changes meanwhile, by per-item calls.
        let bulked = self.bulk.maybe_start(self, lease, only).await?;
        let items = self.pick(limit, only).await?;
        let mut report = RoundReport {
            picked: items.len() + bulked,
            ..RoundReport::default()
        };
        if items.is_empty() {
            return Ok(report);
        }
        let (listings, stock): (Vec<DirtyItem>, Vec<DirtyItem>) = items
            .into_iter()
            .partition(|i| i.needs_listing(caps.stock_carries_price));
        let mut batches: Vec<Batch> = Vec::new();
        for chunk in stock.chunks(stock_batch) {
            batches.push(Batch::Stock(chunk.to_vec()));
        }
        if !listings.is_empty() {
            let content = load_listing_content(
                &self.store,
                &listings.iter().map(|i| i.sku.clone()).collect::<Vec<_>>(),
            )
            .await?;
            for chunk in listings.chunks(listing_batch) {
                let with: Vec<(DirtyItem, Option<ListingContent>)> = chunk
                    .iter()
                    .map(|i| (i.clone(), content.get(&i.sku).cloned()))
                    .collect();
                batches.push(Batch::Listing(with));
            }
        }
        let mut pending = batches.into_iter();
        let mut set: JoinSet<Result<RoundReport, RoundError>> = JoinSet::new();
        let mut first_error: Option<RoundError> = None;
        loop {
            while set.len() < concurrency && first_error.is_none() {
                let Some(batch) = pending.next() else { break };
                let me = Arc::clone(self);
                let lease = lease.clone();
                set.spawn(async move {
                    let gate = me.gate.clone();
                    maybe_gated(gate, me.send_batch(&lease, batch)).await
                });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            match joined {
                Ok(Ok(r)) => {
                    report.applied += r.applied;
                    report.failed += r.failed;
                }
                Ok(Err(e)) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
                Err(e) => {
                    warn!(channel = %self.channel, error = %e, "A push task failed.");
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn send_batch(&self, lease: &Lease, batch: Batch) -> Result<RoundReport, RoundError> {
        let started = Instant::now();
        let items: Vec<DirtyItem> = batch.items();
        let result = match &batch {
            Batch::Stock(items) => {
                let updates: Vec<StockUpdate> = items.iter().filter_map(stock_update).collect();
                if updates.len() != items.len() {
                    // An unreadable SKU/currency in the catalog: quarantine those, send the rest.
                    return self.quarantine_unsendable(lease, items).await;
                }
                self.connector.push_stock(&updates).await
            }
            Batch::Listing(items) => {
                let updates: Vec<ListingUpdate> = items
                    .iter()
                    .filter_map(|(i, c)| listing_update(i, c.as_ref()))
                    .collect();
                if updates.len() != items.len() {
                    let plain: Vec<DirtyItem> = items.iter().map(|(i, _)| i.clone()).collect();
                    return self.quarantine_unsendable(lease, &plain).await;
                }
                self.connector.push_listings(&updates).await
            }
        };
        bump(&self.counters, |c| c.calls += 1);
        match result {
            Ok(outcomes) if outcomes.len() == items.len() => {
                let r = self.record(lease, &items, &outcomes).await?;
                debug!(
                    channel = %self.channel,
                    kind = batch.kind(),
                    items = items.len(),
                    applied = r.applied,
                    ms = started.elapsed().as_millis() as u64,
                    "Pushed batch."
                );
                bump(&self.counters, |c| {
                    c.last_success_at = Some(now_ms());
                    c.consecutive_failures = 0;
                });
                Ok(r)
            }
            Ok(outcomes) => {
                let e = ConnectorError::Malformed {
                    status: None,
                    message: format!(
                        "connector returned {} outcomes for {} items",
                        outcomes.len(),
                        items.len()
                    ),
                };
                self.note_call_error(&e);
                Err(RoundError::Call(e))
            }
            Err(e) if e.class() == ErrorClass::Permanent && items.len() > 1 => {
                // One item may poison the whole request: send each alone so the others land.
                info!(channel = %self.channel, items = items.len(), error = %e, "Batch refused as a whole; retrying its items one by one.");
                let mut total = RoundReport::default();
                for one in batch.split() {
                    let r = Box::pin(self.send_batch(lease, one)).await?;
                    total.applied += r.applied;
                    total.failed += r.failed;
                }
                Ok(total)
            }
            Err(e) if e.class() == ErrorClass::Permanent => {
                let outcome = ItemOutcome::Rejected {
                    code: match &e {
                        ConnectorError::Permanent { code, .. } => code.clone(),
                        _ => None,
                    },
                    error: e.to_string(),
                };
                self.record(lease, &items, &[outcome]).await
            }
            Err(_) if self.gate.as_ref().is_some_and(|g| !g()) => {
                // Held back (or cut short) because the lease ran out: not the marketplace's fault.
                Err(RoundError::LeaseLost(self.channel.clone()))
            }
            Err(e) => {
                self.note_call_error(&e);
                Err(RoundError::Call(e))
            }
        }
    }

    fn note_call_error(&self, e: &ConnectorError) {
        bump(&self.counters, |c| {
            *c.failed_calls
                .entry(e.class().as_str().to_owned())
                .or_default() += 1;
            c.last_error = Some(e.to_string());
        });
    }

    async fn quarantine_unsendable(
        &self,
        lease: &Lease,
        items: &[DirtyItem],
    ) -> Result<RoundReport, RoundError> {
        let outcomes: Vec<ItemOutcome> = items
            .iter()
            .map(|i| match stock_update(i) {
                Some(_) => ItemOutcome::Retry {
                    error: "held back: a batch-mate could not be sent".into(),
                },
                None => ItemOutcome::Rejected {
                    code: None,
                    error: format!(
                        "omnistock cannot send this item: SKU `{}` or currency `{}` is not valid for a marketplace",
                        i.sku, i.desired.currency
                    ),
                },
            })
            .collect();
        self.record(lease, items, &outcomes).await
    }

    /// Records outcomes, fenced by lease and version, in one transaction.
    async fn record(
        &self,
        lease: &Lease,
        items: &[DirtyItem],
        outcomes: &[ItemOutcome],
    ) -> Result<RoundReport, RoundError> {
        let mut tx = self.fenced(lease).await?;
        let (report, superseded) = self.record_rows(&mut tx, items, outcomes).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.note_outcomes(items.len(), outcomes, report, superseded);
        Ok(report)
    }

    /// A write transaction that has proven this process still owns the channel.
    pub(crate) async fn fenced(&self, lease: &Lease) -> Result<Tx, RoundError> {
        let mut tx = self.store.write().await?;
        if !lease.fence(&mut tx).await? {
            tx.rollback().await.ok();
            return Err(RoundError::LeaseLost(self.channel.clone()));
        }
        Ok(tx)
    }

    /// Writes outcomes into `tx` (version-fenced per row); returns the report and how many were
    /// superseded by a newer confirmation.
    pub(crate) async fn record_rows(
        &self,
        tx: &mut Tx,
        items: &[DirtyItem],
        outcomes: &[ItemOutcome],
    ) -> Result<(RoundReport, u64), RoundError> {
        let now = now_ms();
        let mut report = RoundReport::default();
        let mut superseded = 0u64;
        for (item, outcome) in items.iter().zip(outcomes.iter().cycle()) {
            match outcome {
                ItemOutcome::Applied { external_id } => {
                    let n = sqlx::query(
                        "UPDATE channel_items SET pushed_version = $3, pushed_json = $4, pushed_qty = $5, \
                         external_id = COALESCE($6, external_id), attempts = 0, last_error = NULL, \
                         next_attempt_at = 0, last_pushed_at = $7, \
                         state = CASE WHEN state = 'drift' THEN 'active' ELSE state END \
                         WHERE channel = $1 AND sku = $2 AND pushed_version < $3",
                    )
                    .bind(&self.channel)
                    .bind(&item.sku)
                    .bind(item.version)
                    .bind(&item.desired_json)
                    .bind(item.desired.qty)
                    .bind(external_id.as_deref())
                    .bind(now)
                    .execute(&mut **tx)
                    .await
                    .map_err(StoreError::from)?
                    .rows_affected();
                    if n == 0 {
                        superseded += 1;
                    }
                    report.applied += 1;
                }
                ItemOutcome::Retry { error } => {
                    let delay = self
                        .options
                        .backoff
                        .delay(u32::try_from(item.attempts).unwrap_or(u32::MAX));
                    set_failure(
                        tx,
                        &self.channel,
                        item,
                        error,
                        now + delay.as_millis() as i64,
                        false,
                    )
                    .await?;
                    report.failed += 1;
                }
                ItemOutcome::NotListed { error } => {
                    // Forget what we believed was listed: the next attempt sends the listing.
                    sqlx::query(
                        "UPDATE channel_items SET pushed_json = NULL, pushed_qty = NULL, attempts = attempts + 1, \
                         last_error = $3 WHERE channel = $1 AND sku = $2",
                    )
                    .bind(&self.channel)
                    .bind(&item.sku)
                    .bind(truncate(error))
                    .execute(&mut **tx)
                    .await
                    .map_err(StoreError::from)?;
                    event(tx, &self.channel, Some(&item.sku), "not_listed", error).await?;
                    report.failed += 1;
                }
                ItemOutcome::Rejected { code, error } => {
                    let msg = match code {
                        Some(c) => format!("[{c}] {error}"),
                        None => error.clone(),
                    };
                    set_failure(tx, &self.channel, item, &msg, 0, true).await?;
                    event(tx, &self.channel, Some(&item.sku), "quarantined", &msg).await?;
                    report.failed += 1;
                }
            }
        }
        Ok((report, superseded))
    }

    /// Counts and logs what a recorded batch did.
    pub(crate) fn note_outcomes(
        &self,
        items: usize,
        outcomes: &[ItemOutcome],
        report: RoundReport,
        superseded: u64,
    ) {
        let (retried, rejected, not_listed) = outcomes.iter().fold((0, 0, 0), |acc, o| match o {
            ItemOutcome::Retry { .. } => (acc.0 + 1, acc.1, acc.2),
            ItemOutcome::Rejected { .. } => (acc.0, acc.1 + 1, acc.2),
            ItemOutcome::NotListed { .. } => (acc.0, acc.1, acc.2 + 1),
            ItemOutcome::Applied { .. } => acc,
        });
        if report.failed > 0 {
            let first = outcomes.iter().find_map(|o| match o {
                ItemOutcome::Applied { .. } => None,
                ItemOutcome::Retry { error } | ItemOutcome::NotListed { error } => {
                    Some(error.clone())
                }
                ItemOutcome::Rejected { code, error } => Some(match code {
                    Some(c) => format!("[{c}] {error}"),
                    None => error.clone(),
                }),
            });
            warn!(
                channel = %self.channel,
                items,
                retry = retried,
                quarantined = rejected,
                not_listed,
                first_error = first.as_deref().unwrap_or(""),
                "Some items of a batch were not applied."
            );
        }
        bump(&self.counters, |c| {
            c.applied += report.applied as u64;
            c.retried += retried;
            c.rejected += rejected;
            c.not_listed += not_listed;
            c.superseded += superseded;
        });
    }

    /// Pushes until nothing (of `only`) is dirty and due, or `deadline` passes. Used by `resync`
    /// and tests; the daemon's loop calls [`Dispatcher::round`] itself. `progress` gets the items
    /// confirmed so far.
    pub async fn drain(
        self: &Arc<Self>,
        lease: &Lease,
        only: Option<&[String]>,
        deadline: Instant,
        mut progress: impl FnMut(usize),
    ) -> Result<usize, RoundError> {
        let mut done = 0usize;
        let mut failures = 0u32;
        self.bulk.resume(self, lease).await?;
        while Instant::now() < deadline {
            match self.round(lease, only).await {
                Ok(r) if r.picked == 0 && self.bulk.running() == 0 => break,
                Ok(r) if r.picked == 0 => {
                    // Bulk jobs are still processing; their results land in the background.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(r) => {
                    failures = 0;
                    done += r.applied;
                    progress(done);
                }
                Err(RoundError::Call(e)) if e.is_retriable() => {
                    failures += 1;
                    let wait = if e.class() == ErrorClass::RateLimited {
                        Duration::from_millis(50)
                    } else {
                        self.options.backoff.delay(failures)
                    };
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// The `WHERE` clause of a due dirty row of channel `$1` at time `$2`, SKUs from `$3` on.
fn due_filter(only: Option<&[String]>) -> String {
    let mut w = String::from(
        "channel = $1 AND desired_version > pushed_version AND bulk_version < desired_version \
         AND state <> 'quarantined' AND next_attempt_at <= $2",
    );
    if let Some(skus) = only {
        w.push_str(&format!(" AND sku IN ({})", placeholders(3, skus.len())));
    }
    w
}

async fn set_failure(
    tx: &mut Tx,
    channel: &str,
    item: &DirtyItem,
    error: &str,
    next_attempt_at: i64,
    quarantine: bool,
) -> Result<(), StoreError> {
    // Only the version we sent is affected: if the desired value changed meanwhile, the new value
    // deserves a fresh try (recompute already reset attempts and state).
    sqlx::query(
        "UPDATE channel_items SET attempts = attempts + 1, last_error = $4, next_attempt_at = $5, \
         state = CASE WHEN $6 = 1 THEN 'quarantined' ELSE state END \
         WHERE channel = $1 AND sku = $2 AND desired_version = $3",
    )
    .bind(channel)
    .bind(&item.sku)
    .bind(item.version)
    .bind(truncate(error))
    .bind(next_attempt_at)
    .bind(i64::from(quarantine))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends a `sync_events` row.
pub async fn event(
    tx: &mut Tx,
    channel: &str,
    sku: Option<&str>,
    kind: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sync_events (channel, sku, kind, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(channel)
    .bind(sku)
    .bind(kind)
    .bind(truncate(detail))
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marketplace messages are stored, not novels.
fn truncate(s: &str) -> String {
    const MAX: usize = 1_000;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

enum Batch {
    Stock(Vec<DirtyItem>),
    Listing(Vec<(DirtyItem, Option<ListingContent>)>),
}

impl Batch {
    fn items(&self) -> Vec<DirtyItem> {
        match self {
            Batch::Stock(v) => v.clone(),
            Batch::Listing(v) => v.iter().map(|(i, _)| i.clone()).collect(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Batch::Stock(_) => "stock",
            Batch::Listing(_) => "listing",
        }
    }

    fn split(self) -> Vec<Batch> {
        match self {
            Batch::Stock(v) => v.into_iter().map(|i| Batch::Stock(vec![i])).collect(),
            Batch::Listing(v) => v.into_iter().map(|i| Batch::Listing(vec![i])).collect(),
        }
    }
}

fn money(d: &Desired) -> Option<Money> {
    let currency = Currency::parse(&d.currency).ok()?;
    Some(Money {
        minor: d.price_minor,
        currency,
    })
}

pub(crate) fn stock_update(i: &DirtyItem) -> Option<StockUpdate> {
    Some(StockUpdate {
        sku: Sku::parse(i.sku.clone()).ok()?,
        external_id: i.external_id.clone(),
        quantity: u32::try_from(i.desired.qty.max(0)).unwrap_or(u32::MAX),
        price: Some(money(&i.desired)?),
        version: i.version,
    })
}

pub(crate) fn listing_update(i: &DirtyItem, c: Option<&ListingContent>) -> Option<ListingUpdate> {
    let c = c?;
    Some(ListingUpdate {
        sku: Sku::parse(i.sku.clone()).ok()?,
        external_id: i.external_id.clone(),
        title: c.title.clone(),
        description: c.description.clone(),
        brand: c.brand.clone(),
        barcode: c.barcode.clone(),
        image_urls: c.image_urls.clone(),
        options: c.options.clone(),
        group_id: c.group_id.clone(),
        quantity: u32::try_from(i.desired.qty.max(0)).unwrap_or(u32::MAX),
        price: money(&i.desired)?,
        version: i.version,
    })
}

/// The catalog content of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingContent {
    /// Title (the variant's, which the import defaults to the product's).
    pub title: String,
    /// Description.
    pub description: String,
    /// Brand.
    pub brand: Option<String>,
    /// Barcode.
    pub barcode: Option<String>,
    /// Images.
    pub image_urls: Vec<String>,
    /// Option values.
    pub options: Vec<(String, String)>,
    /// Product id (groups variants).
    pub group_id: Option<String>,
}

/// Loads listing content for `skus` in chunks.
pub async fn load_listing_content(
    store: &Store,
    skus: &[String],
) -> Result<HashMap<String, ListingContent>, StoreError> {
    let mut out = HashMap::with_capacity(skus.len());
    let unique: Vec<&String> = skus.iter().collect::<HashSet<_>>().into_iter().collect();
    for chunk in unique.chunks(crate::store::IN_CHUNK) {
        let sql = format!(
            "SELECT v.sku, v.title, p.description, p.brand, v.barcode, v.image_urls_json, v.options_json, \
             v.product_id FROM variants v JOIN products p ON p.id = v.product_id WHERE v.sku IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in chunk {
            q = q.bind(s.as_str());
        }
        for row in q.fetch_all(store.pool()).await? {
            let sku: String = row.try_get(0)?;
            let brand: String = row.try_get(3)?;
            let images: String = row.try_get(5)?;
            let options: String = row.try_get(6)?;
            // The catalog stores option values as `[[name, value], …]`.
            let options: Vec<(String, String)> = serde_json::from_str(&options).unwrap_or_default();
            out.insert(
                sku,
                ListingContent {
                    title: row.try_get(1)?,
                    description: row.try_get(2)?,
                    brand: (!brand.is_empty()).then_some(brand),
                    barcode: row.try_get(4)?,
                    image_urls: serde_json::from_str(&images).unwrap_or_default(),
                    options,
                    group_id: row.try_get(7)?,
                },
            );
        }
    }
    Ok(out)
}
