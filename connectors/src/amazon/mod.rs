//! The Amazon connector: Selling Partner API Listings Items 2021-08-01 for listings and stock,
//! Feeds 2021-06-30 (`JSON_LISTINGS_FEED`) as the bulk path, Orders 2026-01-01 for orders, and the
//! Login with Amazon refresh-token grant for access tokens (contracts/README.md §1). No AWS
//! signing: SP-API has not required SigV4 since 2023-10-02.
//!
//! Rooms (STYLE habit 3): `config` (what the daemon hands over, regional hosts, usage plans),
//! `client` (HTTP, auth, budgets, whole-call errors, presigned transfers), `mapping` (Amazon bodies
//! ⇄ neutral model, pure), `listings`, `feeds` and `orders` (the connector's methods by API),
//! `tests` (stories against the sandbox). This file holds the limits and the [`AmazonConnector`].
//!
//! ## Limits, and where they come from
//!
//! | limit | constant | source |
//! |---|---|---|
//! | per-operation rate and burst (patchListingsItem 5/s burst 5, createFeed 0.0083/s, searchOrders 0.0056/s burst 20 …) | [`PRODUCTION_PLAN`] | each operation's "Usage Plan" in the official models; contracts §1.2 |
//! | `JSON_LISTINGS_FEED`: 5 submissions per 5 minutes | [`PRODUCTION_PLAN`] (`JSON_LISTINGS_FEED`) | Amazon changelog 2025-05-06; contracts §1.2 |
//! | 25,000 messages per `JSON_LISTINGS_FEED` | [`MAX_FEED_MESSAGES`] | listings-feed-schema-v2 `messages.maxItems` |
//! | searchListingsItems `pageSize` ≤ 20; at most 1,000 SKUs can be paged through | [`MAX_SEARCH_PAGE`] | spec searchListingsItems |
//! | searchOrders `maxResultsPerPage` 1–100 | [`MAX_ORDERS_PAGE`] | spec searchOrders |
//! | PUT and DELETE take exactly one marketplace | — | spec `marketplaceIds.maxItems = 1` |
//! | sandbox hosts: every operation 5 rps, burst 15 | [`SANDBOX_RATE_PER_SEC`], [`SANDBOX_BURST`] | SP-API sandbox docs; contracts §1.1 |
//! | a seller SKU has at most 40 characters | [`MAX_SKU_LEN`] | Seller Central SKU rules |
//! | presigned document URLs expire after 5 minutes | — | spec `CreateFeedDocumentResponse.url` |
//!
//! Throttling: every operation has its own bucket in one [`Budget`] per account, shared by
//! pushes, feeds, order polls and snapshots. `x-amzn-RateLimit-Limit` on an answer replaces that
//! operation's rate ([`Budget::adjust`], never above `limits.rate_per_sec`). A 429 (Amazon sends
//! no `Retry-After`) pauses the operation for one token's refill time, doubling while 429s keep
//! coming, up to `limits.throttle_pause`. searchOrders refills one token every three minutes: when
//! taking one would wait longer than [`MAX_ORDERS_BUDGET_WAIT`], fetch_orders answers
//! [`ConnectorError::RateLimited`] with the wait instead of holding the order poller.
//!
//! ## What each method does
//!
//! - **push_listings**: `putListingsItem` per item (requirements `LISTING`, productType from
//!   `product_type_rules` or `product_type`, attributes in `mapping.rs`).
//! - **push_stock**: `patchListingsItem` per item: `merge` of `/attributes/fulfillment_availability`
//!   (`DEFAULT` channel) and, with a price, `replace` of `/attributes/purchasable_offer` in the same
//!   request (so `stock_carries_price`). Amazon accepts a patch for a SKU it has no listing for (it
//!   makes an offer-only listing), so push_stock never answers `NotListed`; the daemon sends new
//!   items as listings first.
//! - **delist**: `deleteListingsItem` (a SKU Amazon does not know counts as deleted).
//! - Per-item calls of one batch run concurrently, each after taking its operation's budget token;
//!   a batch larger than [`MAX_ITEM_BATCH`] goes in chunks of that size.
//! - **bulk path** (`bulk_*`): one `JSON_LISTINGS_FEED` of up to 25,000 messages; see `feeds.rs`
//!   for the document, the report, FATAL feeds and how `bulk_choice` picks the faster path.
//! - **fetch_orders**: `searchOrders` with `lastUpdatedAfter`, every configured marketplace,
//!   100 per page, `includedData=FULFILLMENT,PROCEEDS`; the next page repeats the same filters with
//!   `paginationToken` (the spec requires it), so the page token carries the filter time too.
//! - **snapshot_page**: `searchListingsItems` (20 per page, `summaries,offers,fulfillmentAvailability,issues`):
//!   ASIN, `DEFAULT` quantity, and the B2C price on the first marketplace. Amazon pages through at
//!   most 1,000 SKUs this way.
//! - **healthcheck**: a token, then `searchListingsItems` with `pageSize=1`.
//!
//! ## Errors
//!
//! Per item: `ACCEPTED` → `Applied` (with the ASIN when Amazon names it; warnings are logged at
//! debug); `INVALID` or any ERROR issue → `Rejected` with the first ERROR code and every ERROR issue
//! as `[code] message (attributes)`; a 4xx other than 401/403/429 → `Rejected` with Amazon's error
//! code; a 429, 5xx, timeout or unreadable answer → `Retry` for that item. When **every** item of a
//! call failed that way (all throttled, Amazon down), the call fails as a whole with the first
//! error instead, so no item burns an attempt on it; 401/403 after one token refresh always fails
//! the whole call (`Auth`).

mod client;
mod config;
mod feeds;
mod listings;
mod mapping;
mod orders;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;

use self::client::AmazonClient;
use self::feeds::FeedState;
use crate::common::{Backoff, Budget, ConnectorStats, Limits};
use crate::connector::{
    BulkDraft, BulkItem, BulkJob, BulkStatus, Capabilities, Connector, Health, OrdersPage,
    SnapshotPage,
};
use crate::error::ConnectorError;
use crate::model::{ItemOutcome, ListingUpdate, Sku, StockUpdate};

pub use self::config::{
    AmazonConfig, AmazonUsagePlan, CONDITION_TYPES, ENDPOINT_EU, ENDPOINT_FE, ENDPOINT_NA,
    LWA_TOKEN_ENDPOINT, MAX_MARKETPLACES, OP_CREATE_FEED, OP_CREATE_FEED_DOCUMENT,
    OP_DELETE_LISTINGS_ITEM, OP_GET_FEED, OP_GET_FEED_DOCUMENT, OP_GET_FEEDS, OP_GET_LISTINGS_ITEM,
    OP_GET_ORDER, OP_JSON_LISTINGS_FEED, OP_PATCH_LISTINGS_ITEM, OP_PUT_LISTINGS_ITEM,
    OP_SEARCH_LISTINGS_ITEMS, OP_SEARCH_ORDERS, OP_TOKEN, PRODUCTION_PLAN, SANDBOX_BURST,
    SANDBOX_ENDPOINT_EU, SANDBOX_ENDPOINT_FE, SANDBOX_ENDPOINT_NA, SANDBOX_RATE_PER_SEC,
    endpoint_for, glob_matches,
};

/// Items per push_stock / push_listings / delist round: each is one request, and patchListingsItem
/// allows 5 per second with a burst of 5, so 10 items take about a second (a connector choice that
/// keeps one dispatcher round short).
pub const MAX_ITEM_BATCH: usize = 10;
/// Messages in one `JSON_LISTINGS_FEED`.
pub const MAX_FEED_MESSAGES: usize = 25_000;
/// Largest searchListingsItems page.
pub const MAX_SEARCH_PAGE: usize = 20;
/// Largest searchOrders page.
pub const MAX_ORDERS_PAGE: usize = 100;
/// Longest seller SKU Amazon stores.
pub const MAX_SKU_LEN: usize = 40;
/// fetch_orders waits at most this long for a searchOrders token; beyond it answers
/// `RateLimited` with the wait.
pub const MAX_ORDERS_BUDGET_WAIT: Duration = Duration::from_secs(5);

/// Connector-side rate of the LWA token endpoint (undocumented there; refreshes are rare).
const TOKEN_RATE_PER_SEC: f64 = 1.0;
/// Bucket of the LWA token endpoint.
const TOKEN_BURST: u32 = 5;

/// Counters only this connector has.
#[derive(Debug, Default)]
struct AmazonCounters {
    order_lines_without_sku: AtomicU64,
    items_rejected: AtomicU64,
}

/// An Amazon seller account in one SP-API region.
#[derive(Debug)]
pub struct AmazonConnector {
    config: AmazonConfig,
    client: AmazonClient,
    feeds: FeedState,
    counters: AmazonCounters,
}

impl AmazonConnector {
    /// Amazon's defaults: 30 s per request (10 s to connect), 10 items per round, retries from
    /// 1 s doubling to 5 min, 429 pauses up to 60 s. `rate_per_sec` and `burst` are caps on the
    /// usage plan and set to its largest values (5/s, 30), so by default the plan rules alone.
    pub const DEFAULT_LIMITS: Limits = Limits {
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        rate_per_sec: 5.0,
        burst: 30,
        batch_size: MAX_ITEM_BATCH,
        retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        throttle_pause: Duration::from_secs(60),
    };

    /// Builds the connector (no request is sent until the first call).
    pub fn new(config: AmazonConfig) -> Result<AmazonConnector, ConnectorError> {
        config.validate()?;
        let limits = config.limits;
        let budget = Budget::new(
            format!("amazon:{}", config.seller_id),
            limits.rate_per_sec,
            limits.burst,
        );
        for (operation, _, _) in PRODUCTION_PLAN {
            let (rate, burst) = config.usage_plan.limit(operation);
            budget.set(
                operation,
                rate.min(limits.rate_per_sec),
                burst.min(limits.burst),
            );
        }
        budget.set(
            OP_TOKEN,
            TOKEN_RATE_PER_SEC.min(limits.rate_per_sec),
            TOKEN_BURST.min(limits.burst),
        );
        let client = AmazonClient::new(&config, budget)?;
        let feeds = FeedState::new(config.feed_processing_estimate);
        Ok(AmazonConnector {
            config,
            client,
            feeds,
            counters: AmazonCounters::default(),
        })
    }

    fn batch_cap(&self) -> usize {
        self.config.limits.batch_size.clamp(1, MAX_ITEM_BATCH)
    }
}

/// Polls every future to completion, concurrently on this task, and returns their outputs in
/// order (what `futures::future::join_all` does, for the handful of calls of one batch).
pub(crate) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Unix milliseconds now (wall clock: bulk drafts and jobs are stored across restarts).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[async_trait]
impl Connector for AmazonConnector {
    fn kind(&self) -> &'static str {
        "amazon"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_stock_batch: self.batch_cap(),
            max_listing_batch: self.batch_cap(),
            stock_carries_price: true,
            has_orders: true,
            max_bulk_batch: MAX_FEED_MESSAGES,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_stock(&self, items: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.patch_stock(items).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_listings(
        &self,
        items: &[ListingUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.put_listings(items).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = skus.len()), err(level = "debug"))]
    async fn delist(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.delete_listings(skus).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(since_ms, page = page.as_deref()), err(level = "debug"))]
    async fn fetch_orders(
        &self,
        since_ms: i64,
        page: Option<String>,
    ) -> Result<OrdersPage, ConnectorError> {
        self.search_orders(since_ms, page.as_deref()).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(page = page.as_deref()), err(level = "debug"))]
    async fn snapshot_page(&self, page: Option<String>) -> Result<SnapshotPage, ConnectorError> {
        self.search_listings(page.as_deref()).await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn healthcheck(&self) -> Result<Health, ConnectorError> {
        self.probe().await
    }

    fn bulk_choice(&self, dirty: usize) -> usize {
        self.choose_bulk(dirty)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn bulk_prepare(&self, items: &[BulkItem]) -> Result<BulkDraft, ConnectorError> {
        self.prepare_feed(items).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(document = %draft.document_id), err(level = "debug"))]
    async fn bulk_submit(&self, draft: &BulkDraft) -> Result<BulkJob, ConnectorError> {
        self.submit_feed(draft).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(feed = %job.id), err(level = "debug"))]
    async fn bulk_poll(&self, job: &BulkJob) -> Result<BulkStatus, ConnectorError> {
        self.poll_feed(job).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(since_ms), err(level = "debug"))]
    async fn bulk_in_flight_since(&self, since_ms: i64) -> Result<bool, ConnectorError> {
        self.feeds_in_flight(since_ms).await
    }

    fn stats(&self) -> ConnectorStats {
        let c = &self.client.counters;
        let tokens = self.client.token_stats();
        let mut stats = ConnectorStats {
            requests: c.requests.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            token_refreshes: tokens.refreshes,
            ..ConnectorStats::default()
        }
        .with_budgets(self.client.budget.snapshot());
        let a = &self.counters;
        for (name, value) in [
            (
                "order_lines_without_sku",
                a.order_lines_without_sku.load(Ordering::Relaxed),
            ),
            ("items_rejected", a.items_rejected.load(Ordering::Relaxed)),
            ("token_invalidations", tokens.invalidations),
        ] {
            stats.extra.insert(name, value);
        }
        self.feeds.stats_into(&mut stats.extra);
        stats
    }
}
