//! The bulk path: many dirty items in one asynchronous marketplace job (Amazon
//! `JSON_LISTINGS_FEED`), for channels whose connector offers one.
//!
//! Each round the dispatcher asks the connector [`Connector::bulk_choice`] how many of the waiting
//! items should travel in one job; the connector answers by which path finishes sooner under its
//! current budgets. When it says "n", the job runs in the background while per-item calls go on:
//!
//! 1. **building** — in one lease-fenced transaction the rows are taken (`bulk_version` = the
//!    version the job carries, so no round picks them again) and the job is recorded with its
//!    items (SKU, version, desired JSON);
//! 2. **prepared** — the document is uploaded ([`Connector::bulk_prepare`]); the draft is recorded;
//! 3. **submitted** — [`Connector::bulk_submit`]; the job id is recorded *before* the first poll;
//! 4. polled until done ([`Connector::bulk_poll`]), then the outcomes are recorded like a batch's
//!    (version- and lease-fenced), the rows released and the job row deleted, in one transaction.
//!
//! After a restart (or when another instance takes the channel over) [`BulkRunner::resume`] picks
//! every recorded job up by its state: a submitted job is polled, never submitted again; a job
//! still building never reached the marketplace and is dropped (its rows become due again); a
//! prepared job may or may not have been submitted (a crash between submit and record), so the
//! rows stay held until [`Connector::bulk_in_flight_since`] says no job that could be it is
//! still processing, and then go out again with their current values.
//!
//! A row whose desired value changes while its job is pending is due again at once (its
//! `bulk_version` is below the new version) and goes out by a per-item call — an order must not wait
//! for a feed. Because the marketplace may apply the job's older value after that call, the job's
//! completion sends such rows once more (their `pushed_version` is lowered to the job's), so the
//! last write the marketplace applies is the current value.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use omnistock_connectors::common::maybe_gated;
use omnistock_connectors::{BulkDraft, BulkItem, BulkJob, BulkStatus, ItemOutcome};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::dispatch::{
    DirtyItem, Dispatcher, ListingContent, RoundError, event, listing_update, load_listing_content,
    stock_update,
};
use super::recompute::Desired;
use crate::store::{IN_CHUNK, Lease, StoreError, Tx, now_ms, placeholders};

/// Where a recorded job is.
const BUILDING: &str = "building";
const PREPARED: &str = "prepared";
const SUBMITTED: &str = "submitted";

/// How long to wait between checks while a prepared job's fate is unknown, and after a failed poll.
const RECHECK: Duration = Duration::from_secs(15);

/// One item of a recorded job: enough to record its outcome after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobItem {
    sku: String,
    version: i64,
    desired_json: String,
    external_id: Option<String>,
    attempts: i64,
}

impl JobItem {
    fn of(i: &DirtyItem) -> JobItem {
        JobItem {
            sku: i.sku.clone(),
            version: i.version,
            desired_json: i.desired_json.clone(),
            external_id: i.external_id.clone(),
            attempts: i.attempts,
        }
    }

    fn dirty(&self) -> Option<DirtyItem> {
        Some(DirtyItem {
            sku: self.sku.clone(),
            desired: serde_json::from_str::<Desired>(&self.desired_json).ok()?,
            desired_json: self.desired_json.clone(),
            version: self.version,
            pushed: None,
            external_id: self.external_id.clone(),
            attempts: self.attempts,
        })
    }
}

/// Counters of the bulk path (part of the channel's push counters' view).
#[derive(Debug, Clone, Default, Serialize)]
pub struct BulkCounters {
    /// Jobs submitted.
    pub submitted: u64,
    /// Items in submitted jobs.
    pub items: u64,
    /// Jobs finished with per-item outcomes recorded.
    pub done: u64,
    /// Jobs the marketplace aborted as a whole (every item retried).
    pub aborted: u64,
    /// Jobs picked up again after a restart or takeover.
    pub resumed: u64,
    /// Rows sent once more because a per-item call overtook their job.
    pub resent_after_overtake: u64,
    /// Jobs running now.
    pub running: u64,
    /// The last job's id and how long it took (seconds).
    pub last_job: Option<(String, u64)>,
}

/// Runs one channel's bulk jobs in the background.
pub struct BulkRunner {
    running: Mutex<HashSet<String>>,
    cancel: CancellationToken,
    counters: Mutex<BulkCounters>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl BulkRunner {
    /// A runner whose jobs stop (and stay recorded for the next owner) when `cancel` fires.
    pub fn new(cancel: CancellationToken) -> Arc<BulkRunner> {
        Arc::new(BulkRunner {
            running: Mutex::new(HashSet::new()),
            cancel,
            counters: Mutex::new(BulkCounters::default()),
        })
    }

    /// Jobs this process is running now.
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }

    /// A copy of the counters.
    pub fn counters(&self) -> BulkCounters {
        let mut c = lock(&self.counters).clone();
        c.running = self.running() as u64;
        c
    }

    fn bump(&self, f: impl FnOnce(&mut BulkCounters)) {
        f(&mut lock(&self.counters));
    }

    fn claim(&self, id: &str) -> bool {
        lock(&self.running).insert(id.to_owned())
    }

    fn finish(&self, id: &str) {
        lock(&self.running).remove(id);
    }

    /// Starts a job for up to the connector's chosen number of due rows, when it chooses one.
    /// Returns the number of rows taken (0: per-item calls only this round).
    pub async fn maybe_start(
        self: &Arc<Self>,
        d: &Arc<Dispatcher>,
        lease: &Lease,
        only: Option<&[String]>,
    ) -> Result<usize, RoundError> {
        let cap = d.connector.capabilities().max_bulk_batch;
        if cap == 0 || self.cancel.is_cancelled() {
            return Ok(0);
        }
        let due = d.count_due(cap, only).await?;
        if due == 0 {
            return Ok(0);
        }
        let n = d.connector.bulk_choice(due).min(cap);
        if n == 0 {
            return Ok(0);
        }
        let picked = d.pick(n, only).await?;
        let caps = d.connector.capabilities();
        let listing_skus: Vec<String> = picked
            .iter()
            .filter(|i| i.needs_listing(caps.stock_carries_price))
            .map(|i| i.sku.clone())
            .collect();
        let content: HashMap<String, ListingContent> = if listing_skus.is_empty() {
            HashMap::new()
        } else {
            load_listing_content(&d.store, &listing_skus).await?
        };
        // Items the marketplace could not be sent (bad SKU or currency) stay for the per-item path,
        // which quarantines them with the reason.
        let mut items = Vec::with_capacity(picked.len());
        let mut bulk = Vec::with_capacity(picked.len());
        for i in picked {
            let entry = if i.needs_listing(caps.stock_carries_price) {
                listing_update(&i, content.get(&i.sku)).map(BulkItem::Listing)
            } else {
                stock_update(&i).map(BulkItem::Stock)
            };
            if let Some(e) = entry {
                items.push(i);
                bulk.push(e);
            }
        }
        if items.is_empty() {
            return Ok(0);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let job_items: Vec<JobItem> = items.iter().map(JobItem::of).collect();
        let items_json = serde_json::to_string(&job_items)
            .map_err(|e| RoundError::Store(StoreError::Conflict(format!("bulk job items: {e}"))))?;
        let mut tx = d.fenced(lease).await?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO bulk_jobs (channel, id, state, items_json, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&d.channel)
        .bind(&id)
        .bind(BUILDING)
        .bind(&items_json)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        let held: Vec<(&str, i64)> = items.iter().map(|i| (i.sku.as_str(), i.version)).collect();
        update_by_sku(
            &mut tx,
            "UPDATE channel_items SET bulk_version = {v} WHERE channel = $1 AND sku IN ({skus})",
            &d.channel,
            &held,
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        let taken = items.len();
        info!(channel = %d.channel, job = %id, items = taken, due, "Sending a bulk job.");
        self.claim(&id);
        let me = Arc::clone(self);
        let d = Arc::clone(d);
        let lease = lease.clone();
        tokio::spawn(async move {
            let gate = d.gate.clone();
            maybe_gated(gate, me.build_and_run(&d, &lease, &id, job_items, bulk)).await;
            me.finish(&id);
        });
        Ok(taken)
    }

    async fn build_and_run(
        &self,
        d: &Dispatcher,
        lease: &Lease,
        id: &str,
        items: Vec<JobItem>,
        bulk: Vec<BulkItem>,
    ) {
        let draft = tokio::select! {
            _ = self.cancel.cancelled() => return,
            r = d.connector.bulk_prepare(&bulk) => r,
        };
        let draft = match draft {
            Ok(draft) => draft,
            Err(e) => {
                // Nothing reached the marketplace's queue: release the rows to go out again.
                warn!(channel = %d.channel, job = %id, error = %e, "Could not upload the bulk document; its items go out again.");
                self.abandon(d, lease, id, &items, &e.to_string()).await;
                return;
            }
        };
        if let Err(e) = self
            .set_state(d, lease, id, PREPARED, Some(&draft), None)
            .await
        {
            warn!(channel = %d.channel, job = %id, error = %e, "Could not record the prepared bulk job; not submitting it.");
            return;
        }
        let job = tokio::select! {
            _ = self.cancel.cancelled() => return,
            r = d.connector.bulk_submit(&draft) => r,
        };
        let job = match job {
            Ok(job) => job,
            Err(e) => {
                // A submission that failed as a whole may still have been accepted (a timeout
                // after sending): leave it prepared; `resolve_prepared` waits until no job that
                // could be it is processing.
                warn!(channel = %d.channel, job = %id, error = %e, "Bulk job submission failed; checking whether it reached the marketplace.");
                self.resolve_prepared(d, lease, id, &items, &draft).await;
                return;
            }
        };
        if let Err(e) = self
            .set_state(d, lease, id, SUBMITTED, Some(&draft), Some(&job))
            .await
        {
            warn!(channel = %d.channel, job = %id, error = %e, "Could not record the submitted bulk job id; the next owner resolves it.");
            return;
        }
        self.bump(|c| {
            c.submitted += 1;
            c.items += items.len() as u64;
        });
        self.poll_until_done(d, lease, id, &items, &job).await;
    }

    /// Picks up every recorded job of the channel not already running in this process.
    pub async fn resume(
        self: &Arc<Self>,
        d: &Arc<Dispatcher>,
        lease: &Lease,
    ) -> Result<usize, StoreError> {
        let rows = sqlx::query(
            "SELECT id, state, draft_json, job_json, items_json FROM bulk_jobs WHERE channel = $1 ORDER BY created_at",
        )
        .bind(&d.channel)
        .fetch_all(d.store.pool())
        .await?;
        let mut resumed = 0;
        for row in rows {
            let id: String = row.try_get(0)?;
            if !self.claim(&id) {
                continue;
            }
            let state: String = row.try_get(1)?;
            let draft: Option<BulkDraft> = row
                .try_get::<Option<String>, _>(2)?
                .and_then(|j| serde_json::from_str(&j).ok());
            let job: Option<BulkJob> = row
                .try_get::<Option<String>, _>(3)?
                .and_then(|j| serde_json::from_str(&j).ok());
            let items: Vec<JobItem> =
                serde_json::from_str(&row.try_get::<String, _>(4)?).unwrap_or_default();
            info!(channel = %d.channel, job = %id, state = %state, items = items.len(), "Resuming a recorded bulk job.");
            resumed += 1;
            self.bump(|c| c.resumed += 1);
            let me = Arc::clone(self);
            let d = Arc::clone(d);
            let lease = lease.clone();
            tokio::spawn(async move {
                let gate = d.gate.clone();
                maybe_gated(gate, async {
                    match (state.as_str(), draft, job) {
                        (SUBMITTED, _, Some(job)) => {
                            me.poll_until_done(&d, &lease, &id, &items, &job).await
                        }
                        (PREPARED, Some(draft), _) | (SUBMITTED, Some(draft), None) => {
                            me.resolve_prepared(&d, &lease, &id, &items, &draft).await
                        }
                        // Never uploaded (or unreadable): nothing can be processing it.
                        _ => {
                            me.abandon(&d, &lease, &id, &items, "interrupted before submission")
                                .await
                        }
                    }
                })
                .await;
                me.finish(&id);
            });
        }
        Ok(resumed)
    }

    async fn poll_until_done(
        &self,
        d: &Dispatcher,
        lease: &Lease,
        id: &str,
        items: &[JobItem],
        job: &BulkJob,
    ) {
        let mut failures = 0u32;
        loop {
            let status = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = d.connector.bulk_poll(job) => r,
            };
            let wait = match status {
                Ok(BulkStatus::Pending { poll_after }) => {
                    failures = 0;
                    debug!(channel = %d.channel, job = %job.id, "Bulk job still processing.");
                    poll_after
                }
                Ok(BulkStatus::Done { outcomes }) => {
                    let outcomes = if outcomes.len() == items.len() {
                        outcomes
                    } else {
                        let e = format!(
                            "bulk job {} reported {} results for {} items",
                            job.id,
                            outcomes.len(),
                            items.len()
                        );
                        vec![ItemOutcome::Retry { error: e }; items.len()]
                    };
                    match self.complete(d, lease, id, items, &outcomes).await {
                        Ok(()) => {
                            let secs = (now_ms() - job.submitted_at_ms).max(0) as u64 / 1000;
                            let aborted = outcomes
                                .iter()
                                .all(|o| matches!(o, ItemOutcome::Retry { .. }));
                            self.bump(|c| {
                                c.done += 1;
                                if aborted {
                                    c.aborted += 1;
                                }
                                c.last_job = Some((job.id.clone(), secs));
                            });
                            info!(channel = %d.channel, job = %job.id, items = items.len(), secs, aborted, "Bulk job finished.");
                        }
                        Err(e) => {
                            warn!(channel = %d.channel, job = %job.id, error = %e, "Bulk job results not recorded; the next owner polls it again.");
                        }
                    }
                    return;
                }
                Err(e) if e.is_retriable() => {
                    failures = failures.saturating_add(1);
                    debug!(channel = %d.channel, job = %job.id, error = %e, "Polling the bulk job failed; trying again.");
                    d.options
                        .backoff
                        .delay(failures)
                        .max(RECHECK.min(Duration::from_secs(1)))
                }
                Err(e) => {
                    // The marketplace no longer knows the job (or refuses to say): its items go
                    // out again by their current values.
                    warn!(channel = %d.channel, job = %job.id, error = %e, "Cannot poll the bulk job; its items go out again.");
                    let outcomes = vec![
                        ItemOutcome::Retry {
                            error: format!("bulk job {}: {e}", job.id)
                        };
                        items.len()
                    ];
                    if let Err(e) = self.complete(d, lease, id, items, &outcomes).await {
                        warn!(channel = %d.channel, job = %job.id, error = %e, "Could not release the bulk job's items.");
                    }
                    return;
                }
            };
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// A prepared job may have been submitted: wait until no job submitted since it was prepared is
    /// still processing, then let its items go out again with their current values.
    async fn resolve_prepared(
        &self,
        d: &Dispatcher,
        lease: &Lease,
        id: &str,
        items: &[JobItem],
        draft: &BulkDraft,
    ) {
        loop {
            let r = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = d.connector.bulk_in_flight_since(draft.prepared_at_ms) => r,
            };
            match r {
                Ok(false) => break,
                Ok(true) => {
                    debug!(channel = %d.channel, job = %id, "A bulk job that may be ours is still processing; waiting.")
                }
                Err(e) => {
                    debug!(channel = %d.channel, job = %id, error = %e, "Cannot list bulk jobs yet; waiting.")
                }
            }
            // Slow, for real listings (getFeeds allows ~1 call per 45 s); tests' short backoff
            // shortens it.
            let wait = RECHECK
                .min(d.options.backoff.cap())
                .max(Duration::from_millis(100));
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.abandon(
            d,
            lease,
            id,
            items,
            "submission outcome unknown; sent again",
        )
        .await;
    }

    /// Drops a job that cannot (or can no longer) be processing and releases its rows, which are
    /// still dirty and go out again.
    async fn abandon(&self, d: &Dispatcher, lease: &Lease, id: &str, items: &[JobItem], why: &str) {
        let r = async {
            let mut tx = d.fenced(lease).await?;
            release(&mut tx, &d.channel, id, items).await?;
            event(
                &mut tx,
                &d.channel,
                None,
                "bulk_abandoned",
                &format!("job {id}: {why}"),
            )
            .await?;
            tx.commit().await.map_err(StoreError::from)?;
            Ok::<(), RoundError>(())
        }
        .await;
        if let Err(e) = r {
            warn!(channel = %d.channel, job = %id, error = %e, "Could not release an abandoned bulk job.");
        }
    }

    async fn set_state(
        &self,
        d: &Dispatcher,
        lease: &Lease,
        id: &str,
        state: &str,
        draft: Option<&BulkDraft>,
        job: Option<&BulkJob>,
    ) -> Result<(), RoundError> {
        let draft = draft.and_then(|x| serde_json::to_string(x).ok());
        let job = job.and_then(|x| serde_json::to_string(x).ok());
        let mut tx = d.fenced(lease).await?;
        let n = sqlx::query(
            "UPDATE bulk_jobs SET state = $3, draft_json = COALESCE($4, draft_json), \
             job_json = COALESCE($5, job_json), updated_at = $6 WHERE channel = $1 AND id = $2",
        )
        .bind(&d.channel)
        .bind(id)
        .bind(state)
        .bind(draft)
        .bind(job)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
        if n == 0 {
            tx.rollback().await.ok();
            return Err(RoundError::Store(StoreError::NotFound(format!(
                "bulk job {id} is no longer recorded"
            ))));
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Records a finished job's outcomes, sends again rows a per-item call overtook, releases the
    /// rows and deletes the job — one lease-fenced transaction.
    async fn complete(
        &self,
        d: &Dispatcher,
        lease: &Lease,
        id: &str,
        items: &[JobItem],
        outcomes: &[ItemOutcome],
    ) -> Result<(), RoundError> {
        let mut dirty = Vec::with_capacity(items.len());
        let mut kept = Vec::with_capacity(items.len());
        for (item, outcome) in items.iter().zip(outcomes) {
            if let Some(di) = item.dirty() {
                dirty.push(di);
                kept.push(outcome.clone());
            }
        }
        let mut tx = d.fenced(lease).await?;
        let (report, superseded) = d.record_rows(&mut tx, &dirty, &kept).await?;
        // A newer value confirmed while the job was pending may have been overwritten by the job's
        // older one: make such rows due again so the current value is the last write.
        let applied: Vec<(&str, i64)> = items
            .iter()
            .zip(outcomes)
            .filter(|(_, o)| matches!(o, ItemOutcome::Applied { .. }))
            .map(|(i, _)| (i.sku.as_str(), i.version))
            .collect();
        let resent = update_by_sku(
            &mut tx,
            "UPDATE channel_items SET pushed_version = {v} \
             WHERE channel = $1 AND sku IN ({skus}) AND pushed_version > {v}",
            &d.channel,
            &applied,
        )
        .await?;
        release(&mut tx, &d.channel, id, items).await?;
        tx.commit().await.map_err(StoreError::from)?;
        d.note_outcomes(dirty.len(), &kept, report, superseded);
        if resent > 0 {
            info!(channel = %d.channel, job = %id, resent, "Rows updated by per-item calls during the bulk job go out once more.");
        }
        self.bump(|c| c.resent_after_overtake += resent);
        Ok(())
    }
}

/// Clears the rows' hold (only where this job's version still holds them) and deletes the job.
async fn release(
    tx: &mut Tx,
    channel: &str,
    id: &str,
    items: &[JobItem],
) -> Result<(), StoreError> {
    let held: Vec<(&str, i64)> = items.iter().map(|i| (i.sku.as_str(), i.version)).collect();
    update_by_sku(
        tx,
        "UPDATE channel_items SET bulk_version = 0 \
         WHERE channel = $1 AND sku IN ({skus}) AND bulk_version = {v}",
        channel,
        &held,
    )
    .await?;
    sqlx::query("DELETE FROM bulk_jobs WHERE channel = $1 AND id = $2")
        .bind(channel)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Runs `sql` over `rows` (SKU, version) of `channel` in chunks, one statement per chunk instead of
/// one per SKU (a job holds up to 25,000). In `sql`, `$1` is the channel, `{skus}` the chunk's
/// SKU list and `{v}` each row's own version (`CASE sku WHEN … THEN … END`). Returns the rows
/// changed.
async fn update_by_sku(
    tx: &mut Tx,
    sql: &str,
    channel: &str,
    rows: &[(&str, i64)],
) -> Result<u64, StoreError> {
    let mut changed = 0;
    for chunk in rows.chunks(IN_CHUNK) {
        let n = chunk.len();
        let mut case = String::from("CASE sku");
        for k in 0..n {
            case.push_str(&format!(" WHEN ${} THEN ${}", 2 + 2 * k, 3 + 2 * k));
        }
        case.push_str(" END");
        let text = sql
            .replace("{v}", &case)
            .replace("{skus}", &placeholders(2 + 2 * n, n));
        let mut q = sqlx::query(AssertSqlSafe(text)).bind(channel);
        for (sku, version) in chunk {
            q = q.bind(*sku).bind(*version);
        }
        for (sku, _) in chunk {
            q = q.bind(*sku);
        }
        changed += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(changed)
}
