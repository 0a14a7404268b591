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

    /// What the connector has done so far (requests, 429s, budget waits, its own counters), for
    /// metrics and `omnistock status`. Cheap: reads counters, sends nothing.
    fn stats(&self) -> ConnectorStats {
        ConnectorStats::default()
    }
}
