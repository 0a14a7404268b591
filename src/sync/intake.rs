//! Order intake: polls a channel's orders with a stored cursor and an overlap window, and ingests
//! each order in its own transaction ([`crate::orders::ingest`]).
//!
//! The cursor lives in the *marketplace's* clock: it is the newest `remote_updated_at` seen, so our
//! clock's skew does not matter. Each poll asks for orders modified at or after `cursor − overlap`:
//! marketplaces index orders a little late and some report times at one-second resolution, and an
//! order that shows up late inside the window is still caught. What the window brings back twice is
//! skipped before any write (unless it [supersedes](orders::supersedes) what is stored), and
//! ingestion is idempotent anyway. The cursor is saved only after every page was ingested, so a crash mid-poll
//! re-reads the same window. A channel's first poll starts at "now − overlap": orders placed before
//! omnistock managed the channel are already in the merchant's stock counts.

use std::collections::HashMap;
use std::time::Duration;

use omnistock_connectors::{ChannelOrder, Connector, ConnectorError};
use sqlx::AssertSqlSafe;
use tracing::{debug, info, warn};

use super::SyncPlan;
use crate::orders::{self, Disposition};
use crate::store::{Store, StoreError, now_ms, placeholders};

/// Default overlap window: how far before the cursor each poll starts.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(120);

/// Pages one poll reads at most (a backlog larger than this continues on the next poll, with the
/// cursor advanced to what was ingested).
pub const MAX_PAGES_PER_POLL: usize = 500;

/// The cursor key in `channel_cursors`.
pub const CURSOR_KIND: &str = "orders_cursor";

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Orders the marketplace returned.
    pub seen: usize,
    /// Orders skipped without a write (not newer than what is stored).
    pub unchanged: usize,
    /// Orders recorded for the first time.
    pub new: usize,
    /// Status moves applied to known orders.
    pub updated: usize,
    /// Order lines that could not reserve stock.
    pub oversold_lines: usize,
    /// SKUs whose stock moved (every channel's desired state was recomputed for them).
    pub skus_touched: usize,
    /// The cursor after the poll (marketplace time, unix ms).
    pub cursor: i64,
    /// Pages read.
    pub pages: usize,
    /// Orders the store refused (id, error); the cursor stays before them.
    pub failed: Vec<(String, String)>,
}

/// Reads a channel's stored cursor.
pub async fn cursor(store: &Store, channel: &str) -> Result<Option<i64>, StoreError> {
    let v: Option<String> =
        sqlx::query_scalar("SELECT value FROM channel_cursors WHERE channel = $1 AND kind = $2")
            .bind(channel)
            .bind(CURSOR_KIND)
            .fetch_optional(store.pool())
            .await?;
    Ok(v.and_then(|v| v.parse().ok()))
}

async fn save_cursor(
    store: &Store,
    channel: &str,
    kind: &str,
    value: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO channel_cursors (channel, kind, value, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (channel, kind) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(channel)
    .bind(kind)
    .bind(value.to_string())
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Why a poll stopped.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The marketplace call failed.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Polls `channel` once: every page since the cursor (minus `overlap`), each order ingested.
pub async fn poll_orders(
    store: &Store,
    plan: &SyncPlan,
    channel: &str,
    connector: &dyn Connector,
    overlap: Duration,
) -> Result<PollReport, PollError> {
    let overlap_ms = i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX / 4);
    let stored = cursor(store, channel).await?;
    let start = stored.unwrap_or_else(now_ms);
    let since = start.saturating_sub(overlap_ms);
    let mut report = PollReport {
        cursor: start,
        ..PollReport::default()
    };
    let mut page: Option<String> = None;
    let mut tokens: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut touched: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut hold: Option<i64> = None;
    loop {
        let p = connector.fetch_orders(since, page.take()).await?;
        report.pages += 1;
        report.seen += p.orders.len();
        let fresh = newer_than_stored(store, channel, &p.orders).await?;
        for order in p.orders.iter().filter(|o| fresh.contains(&o.external_id)) {
            let outcome = match orders::ingest_retrying(store, plan, channel, order).await {
                Ok(o) => o,
                Err(e) if !e.is_retriable() => {
                    // One order the store refuses (its lines and the ledger disagree) must not
                    // stop the channel: skip it, keep it visible, and hold the cursor before it
                    // so every poll tries it again.
                    warn!(channel, order = %order.external_id, error = %e, "Order not ingested; it will be retried on every poll.");
                    report
                        .failed
                        .push((order.external_id.clone(), e.to_string()));
                    hold = Some(hold.map_or(order.remote_updated_at_ms, |h: i64| {
                        h.min(order.remote_updated_at_ms)
                    }));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match outcome.disposition {
                Disposition::New => report.new += 1,
                Disposition::Applied { .. } => report.updated += 1,
                _ => report.unchanged += 1,
            }
            report.oversold_lines += outcome.lines.oversold;
            touched.extend(outcome.touched_skus.iter().cloned());
        }
        report.unchanged += p.orders.len() - fresh.len();
        for o in &p.orders {
            report.cursor = report.cursor.max(o.remote_updated_at_ms);
        }
        match p.next_page {
            // A token already given (the same `next` forever, or a cycle): what was read is
            // ingested; reading on would only bring the same pages back.
            Some(next) if !tokens.insert(next.clone()) => {
                warn!(
                    channel,
                    pages = report.pages,
                    "The marketplace returned an order page token it already gave; ending this poll."
                );
                break;
            }
            Some(next) if report.pages < MAX_PAGES_PER_POLL => page = Some(next),
            Some(_) => {
                warn!(
                    channel,
                    pages = report.pages,
                    "Order backlog larger than one poll; continuing on the next poll."
                );
                break;
            }
            None => break,
        }
    }
    report.skus_touched = touched.len();
    if let Some(h) = hold {
        // Never past a failed order: the next polls start before it again.
        report.cursor = report.cursor.min(h - 1);
    }
    // The first poll fixes the starting point even when it found nothing, so the next poll does not
    // slide forward with our clock.
    if stored != Some(report.cursor) {
        save_cursor(store, channel, CURSOR_KIND, report.cursor).await?;
    }
    save_cursor(store, channel, "orders_polled_at", now_ms()).await?;
    if report.new + report.updated > 0 {
        info!(
            channel,
            new = report.new,
            updated = report.updated,
            oversold_lines = report.oversold_lines,
            "Ingested orders."
        );
    } else {
        debug!(channel, seen = report.seen, "Polled orders; nothing new.");
    }
    Ok(report)
}

/// The external ids of `orders` that are new or supersede what is stored ([`orders::supersedes`];
/// no write needed for the rest: the overlap window brings many of them back on every poll).
async fn newer_than_stored(
    store: &Store,
    channel: &str,
    orders: &[ChannelOrder],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut stored: HashMap<String, (String, i64)> = HashMap::new();
    for chunk in orders.chunks(crate::store::IN_CHUNK) {
        let sql = format!(
            "SELECT external_id, status, remote_updated_at FROM orders WHERE channel = $1 AND external_id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(AssertSqlSafe(sql)).bind(channel);
        for o in chunk {
            q = q.bind(o.external_id.as_str());
        }
        stored.extend(
            q.fetch_all(store.pool())
                .await?
                .into_iter()
                .map(|(id, status, at)| (id, (status, at))),
        );
    }
    Ok(orders
        .iter()
        .filter(|o| match stored.get(&o.external_id) {
            None => true,
            Some((status, at)) => orders::supersedes(o, status, *at),
        })
        .map(|o| o.external_id.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use omnistock_connectors::{
        Capabilities, Health, ItemOutcome, ListingUpdate, OrdersPage, Sku, SnapshotPage,
        StockUpdate,
    };

    use super::*;

    /// A marketplace whose order pages always point to the same next page.
    struct SameNextPage {
        calls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Connector for SameNextPage {
        fn kind(&self) -> &'static str {
            "paging"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                max_stock_batch: 1,
                max_listing_batch: 1,
                stock_carries_price: false,
                has_orders: true,
                max_bulk_batch: 0,
            }
        }
        async fn push_stock(&self, _: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
            Ok(Vec::new())
        }
        async fn push_listings(
            &self,
            _: &[ListingUpdate],
        ) -> Result<Vec<ItemOutcome>, ConnectorError> {
            Ok(Vec::new())
        }
        async fn delist(&self, _: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
            Ok(Vec::new())
        }
        async fn fetch_orders(
            &self,
            _: i64,
            _: Option<String>,
        ) -> Result<OrdersPage, ConnectorError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(OrdersPage {
                orders: Vec::new(),
                next_page: Some("LOOP".into()),
            })
        }
        async fn snapshot_page(&self, _: Option<String>) -> Result<SnapshotPage, ConnectorError> {
            Ok(SnapshotPage::default())
        }
        async fn healthcheck(&self) -> Result<Health, ConnectorError> {
            Err(ConnectorError::Timeout {
                message: "unused".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_page_token_given_twice_ends_the_poll() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("intake.db").display());
        let store = Store::open(&url).await.unwrap();
        let conn = SameNextPage {
            calls: AtomicUsize::new(0),
        };
        let report = poll_orders(&store, &SyncPlan::default(), "loop", &conn, DEFAULT_OVERLAP)
            .await
            .unwrap();
        assert_eq!(report.pages, 2, "{report:?}");
        assert_eq!(conn.calls.load(Ordering::SeqCst), 2);
        store.close().await;
    }
}
