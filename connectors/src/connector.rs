//! The contract every marketplace connector implements.
//!
//! The daemon's dispatcher, order poller and reconciler speak only this trait. A connector turns
//! neutral values into its marketplace's requests and classifies what comes back; the shared code
//! in [`crate::common`] acts on that classification (rate budgets, backoff, token refresh), so a
//! reader who knows one connector knows them all.
//!
//! Results are per item and aligned with the input: `outcomes[i]` belongs to `items[i]`. A call
//! that fails as a whole (429, outage, auth) returns `Err(ConnectorError)` and nothing is recorded
//! for its items; the dispatcher decides from [`ConnectorError::class`] whether that burns an
//! attempt.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::common::ConnectorStats;
use crate::error::ConnectorError;
use crate::model::{ChannelOrder, ItemOutcome, ListingUpdate, RemoteItem, Sku, StockUpdate};

fn no_bulk_path() -> ConnectorError {
    ConnectorError::Permanent {
        status: None,
        code: None,
        message: "this marketplace has no bulk path".into(),
    }
}

/// What a connector can do and the batch sizes its marketplace allows. The dispatcher fills
/// batches up to these sizes (and never beyond the config's `limits.batch_size` when smaller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Largest number of [`StockUpdate`]s one [`Connector::push_stock`] call accepts.
    pub max_stock_batch: usize,
    /// Largest number of [`ListingUpdate`]s one [`Connector::push_listings`] call accepts.
    pub max_listing_batch: usize,
    /// True when a stock push also sets the price (eBay `bulkUpdatePriceQuantity`), so a price
    /// change alone can travel as a stock update.
    pub stock_carries_price: bool,
    /// True when the channel has orders to poll (Meta without on-platform checkout has none).
    pub has_orders: bool,
    /// Largest number of items one bulk job holds (Amazon `JSON_LISTINGS_FEED`: 25,000); 0 when
    /// the marketplace has no asynchronous bulk path and every write goes through
    /// [`Connector::push_stock`] / [`Connector::push_listings`].
    pub max_bulk_batch: usize,
}

/// One entry of a bulk job: the same absolute values the per-item calls carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BulkItem {
    /// Set quantity (and price) of an existing listing.
    Stock(StockUpdate),
    /// Create or replace a whole listing.
    Listing(ListingUpdate),
    /// Take a listing off sale.
    Delist(Sku),
}

impl BulkItem {
    /// The SKU the entry is about.
    pub fn sku(&self) -> &Sku {
        match self {
            BulkItem::Stock(u) => &u.sku,
            BulkItem::Listing(u) => &u.sku,
            BulkItem::Delist(s) => s,
        }
    }
}

/// A bulk document uploaded but not yet submitted (Amazon: `createFeedDocument` + upload done,
/// `createFeed` not yet called). The daemon records it *before* submitting, so that after a crash
/// between submission and recording the job id it still knows a job may be running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkDraft {
    /// The marketplace's id of the uploaded document (`feedDocumentId`).
    pub document_id: String,
    /// When the draft was made (unix ms, local clock).
    pub prepared_at_ms: i64,
    /// Entries in the document; entry `i` is message `i + 1`.
    pub items: usize,
}

/// A submitted bulk job. Serializable: the daemon stores it before polling, and after a restart
/// polls this job instead of submitting again (DESIGN §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkJob {
    /// The marketplace's job id (`feedId`).
    pub id: String,
    /// The document it processes.
    pub document_id: String,
    /// When it was submitted (unix ms, local clock).
    pub submitted_at_ms: i64,
    /// Entries in the job, aligned with the items given to [`Connector::bulk_prepare`].
    pub items: usize,
}

/// Where a bulk job is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkStatus {
    /// Queued or processing; ask again after `poll_after`.
    Pending {
        /// The connector's suggestion for the next poll (from its budget and the job's age).
        poll_after: Duration,
    },
    /// Finished: one outcome per entry, aligned by index. A job the marketplace aborted as a whole
    /// (Amazon `FATAL`, `CANCELLED`) comes back as `Retry` for every entry, with the reason.
    Done {
        /// Per-entry outcomes.
        outcomes: Vec<ItemOutcome>,
    },
}

/// One page of orders modified at or after a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdersPage {
    /// Orders on this page, in the marketplace's order.
    pub orders: Vec<ChannelOrder>,
    /// Opaque token for the next page; `None` on the last page.
    pub next_page: Option<String>,
}

/// One page of what the channel really shows (reconcile input).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPage {
    /// Items on this page.
    pub items: Vec<RemoteItem>,
    /// Opaque token for the next page; `None` on the last page.
    pub next_page: Option<String>,
}

/// What a healthcheck found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// One line for `omnistock check` (`"token ok, 3 inventory items"`).
    pub summary: String,
    /// Round trip of the probe.
    pub latency: Duration,
}

/// A marketplace account, as the daemon drives it.
///
/// Every method is safe to call again after a timeout: writes carry absolute values, never deltas
/// (DESIGN §5: "a timeout is an unknown outcome: resend the absolute value").
#[async_trait]
pub trait Connector: Send + Sync {
    /// The marketplace type (`"ebay"`, `"amazon"` …), for logs and metrics.
    fn kind(&self) -> &'static str;

    /// Batch sizes and features.
    fn capabilities(&self) -> Capabilities;

    /// Sets quantity (and, when [`Capabilities::stock_carries_price`], price) for existing
    /// listings. `items.len()` never exceeds `max_stock_batch`. An item the channel does not list
    /// yet comes back as [`ItemOutcome::NotListed`]; the dispatcher then sends it through
    /// [`Connector::push_listings`].
    async fn push_stock(&self, items: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError>;

    /// Creates or replaces whole listings (content, price, quantity), publishing them where the
    /// marketplace needs that. `items.len()` never exceeds `max_listing_batch`.
    async fn push_listings(
        &self,
        items: &[ListingUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError>;

    /// Takes listings off sale (SKU removed from the catalog or from the channel).
    async fn delist(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError>;

    /// Orders created or modified at or after `since_ms` (unix milliseconds, the marketplace's
    /// clock). `page` is the previous page's `next_page`.
    async fn fetch_orders(
        &self,
        since_ms: i64,
        page: Option<String>,
    ) -> Result<OrdersPage, ConnectorError>;

    /// One page of the channel's listings as it shows them now.
    async fn snapshot_page(&self, page: Option<String>) -> Result<SnapshotPage, ConnectorError>;

    /// A cheap call that exercises auth and the main endpoint.
    async fn healthcheck(&self) -> Result<Health, ConnectorError>;

    /// How many of `dirty` waiting items should go into one asynchronous bulk job now, or 0 to
    /// keep using per-item calls. Each connector decides by which path finishes sooner under its
    /// current budgets. The default has no bulk path.
    fn bulk_choice(&self, dirty: usize) -> usize {
        let _ = dirty;
        0
    }

    /// Builds and uploads the bulk document for `items` (≤ `max_bulk_batch`); nothing is applied
    /// until [`Connector::bulk_submit`].
    async fn bulk_prepare(&self, items: &[BulkItem]) -> Result<BulkDraft, ConnectorError> {
        let _ = items;
        Err(no_bulk_path())
    }

    /// Submits a prepared document as a job.
    async fn bulk_submit(&self, draft: &BulkDraft) -> Result<BulkJob, ConnectorError> {
        let _ = draft;
        Err(no_bulk_path())
    }

    /// Asks where a job is; when done, reads its per-entry results.
    async fn bulk_poll(&self, job: &BulkJob) -> Result<BulkStatus, ConnectorError> {
        let _ = job;
        Err(no_bulk_path())
    }

    /// True while any bulk job submitted at or after `since_ms` (unix ms) may still be processing.
    /// Resolves a draft whose submission outcome is unknown (crash between submit and record):
    /// the daemon waits until this is false, then re-sends the draft's items by their current values.
    async fn bulk_in_flight_since(&self, since_ms: i64) -> Result<bool, ConnectorError> {
        let _ = since_ms;
        Ok(false)
    }

    /// What the connector has done so far (requests, 429s, budget waits, its own counters), for
    /// metrics and `omnistock status`. Cheap: reads counters, sends nothing.
    fn stats(&self) -> ConnectorStats {
        ConnectorStats::default()
    }
}
