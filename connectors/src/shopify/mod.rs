//! The Shopify connector: the Admin GraphQL API (`POST {shop}/admin/api/{version}/graphql.json`
//! with `X-Shopify-Access-Token`), pinned to 2026-07, with a static token or the
//! client-credentials grant (contracts/README.md §4).
//!
//! Rooms (STYLE habit 3): `config` (what the daemon hands over), `client` (HTTP, token, the cost
//! bucket model, THROTTLED, whole-call errors), `mapping` (documents, answers ⇄ neutral model,
//! pure), `stock` (SKU lookups and `inventorySetQuantities`), `listings` (`productSet`, delist),
//! `orders` (orders, snapshot, healthcheck), `tests` (stories against the sandbox, and the
//! contract check of every document against the 2025-01 introspection schema).
//!
//! ## Limits, and where they come from
//!
//! | limit | constant | source |
//! |---|---|---|
//! | cost bucket: 2,000 points, 100 restored per second (Standard plan; live values from every answer) | `client::CostModel` | §4.2 |
//! | a query may request at most 1,000 points | the page sizes below | §4.2 |
//! | input arrays ≤ 250 (`quantities`) | [`MAX_STOCK_BATCH`] | §4.2 |
//! | connections ≤ 250 per page | [`mapping::SNAPSHOT_PAGE`] (100), lookups of 50 SKUs | §4.2 |
//! | orders: 25 per page with 30 lines each (≈ 877 points) | `ORDERS_PAGE`, `LINES_PAGE` | §4.2, §4.5 |
//! | client-credentials tokens live ~24 h | `client::DEFAULT_TOKEN_LIFETIME` | §4.1 |
//! | `changeFromQuantity` and `@idempotent` mandatory on inventorySetQuantities | — | §4.4 (2026-04) |
//!
//! ## What each method does
//!
//! - **push_stock**: SKUs → variants through a cache (misses looked up with
//!   `productVariants(query: "sku:\"A\" OR sku:\"B\"")`, SKUs quoted and escaped), then one
//!   `inventorySetQuantities` for the batch with `changeFromQuantity` = the last quantity read or
//!   written and a fresh `@idempotent` key; stale → re-read, re-plan (see `stock`). Unknown SKU
//!   after the lookup → `NotListed`. Not stocked at the location → `inventoryActivate`, then set.
//!   Price is not carried (`stock_carries_price: false`): prices travel with listings.
//! - **push_listings**: `productSet(synchronous: true)` per product (see `listings`).
//! - **delist**: DRAFT, or 0 for a variant of a product that stays on sale (see `listings`).
//! - **fetch_orders**: `orders(sortKey: UPDATED_AT, query: "updated_at:>='…' status:any")`;
//!   status mapping and line quantities in `mapping::order_status` / `mapping::order`.
//! - **snapshot_page**: `productVariants` pages of 100: SKU, price, `available` at the location,
//!   variants of ACTIVE products only.
//! - **healthcheck**: `shop` and the configured `location`.
//!
//! `external_id` in outcomes and snapshots is the ProductVariant GID.
//!
//! ## Errors
//!
//! Per item: userErrors mapped by their `field` path (`["input","quantities","3",…]`,
//! `["input","variants","1",…]`) → `Rejected` with the code (`CHANGE_FROM_QUANTITY_STALE` and
//! `ITEM_NOT_STOCKED_AT_LOCATION` are handled, not reported). Whole call: THROTTLED → waits, then
//! `RateLimited`; 401 → one token refresh (client credentials), then `Auth`; 403 / ACCESS_DENIED
//! → `Auth`; 423 (shop locked) → `Auth`; 430 and 5xx → `Transient`; other top-level GraphQL
//! errors → `Permanent` with their code; unreadable answers → `Malformed`.

mod client;
mod config;
mod listings;
mod mapping;
mod orders;
mod stock;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use self::client::ShopifyClient;
use self::stock::VariantRef;
use crate::common::{Backoff, Budget, ConnectorStats, Limits};
use crate::connector::{Capabilities, Connector, Health, OrdersPage, SnapshotPage};
use crate::error::ConnectorError;
use crate::model::{Currency, ItemOutcome, ListingUpdate, Sku, StockUpdate};

pub use self::client::{MAX_INLINE_WAIT, MAX_THROTTLED_RETRIES};
pub use self::config::{OP_GRAPHQL, OP_TOKEN, ShopifyAuth, ShopifyConfig};
pub use self::stock::MAX_PLANS;

/// Items per push_stock call: `inventorySetQuantities` takes at most 250 quantities.
pub const MAX_STOCK_BATCH: usize = 250;
/// Items per push_listings call (one productSet per product; a round stays short).
pub const MAX_LISTING_BATCH: usize = 25;

/// Connector-side rate of the token endpoint (refreshes are rare).
const TOKEN_RATE_PER_SEC: f64 = 1.0;
/// Bucket of the token endpoint.
const TOKEN_BURST: u32 = 5;

/// Counters only this connector has.
#[derive(Debug, Default)]
struct ShopifyCounters {
    lookups: AtomicU64,
    activations: AtomicU64,
    stale_replans: AtomicU64,
    items_rejected: AtomicU64,
    order_lines_without_sku: AtomicU64,
}

/// One Shopify shop and location.
#[derive(Debug)]
pub struct ShopifyConnector {
    config: ShopifyConfig,
    client: ShopifyClient,
    /// SKU → variant, inventory item, product, last known `available`.
    variants: Mutex<HashMap<String, VariantRef>>,
    currency: Mutex<Option<Currency>>,
    counters: ShopifyCounters,
}

impl ShopifyConnector {
    /// Shopify's defaults: 30 s per request (10 s to connect), 250 items per stock batch, retries
    /// from 1 s doubling to 5 min. `rate_per_sec`/`burst` cap requests per second on top of the
    /// cost bucket (Shopify's GraphQL limit is by cost, not by request; 20/s, 40 is a courtesy).
    pub const DEFAULT_LIMITS: Limits = Limits {
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        rate_per_sec: 20.0,
        burst: 40,
        batch_size: MAX_STOCK_BATCH,
        retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        throttle_pause: Duration::from_secs(10),
    };

    /// Builds the connector (no request is sent until the first call).
    pub fn new(config: ShopifyConfig) -> Result<ShopifyConnector, ConnectorError> {
        config.validate()?;
        let limits = config.limits;
        let budget = Budget::new(
            format!("shopify:{}", config.endpoint),
            limits.rate_per_sec,
            limits.burst,
        );
        budget.set(OP_GRAPHQL, limits.rate_per_sec, limits.burst);
        budget.set(
            OP_TOKEN,
            TOKEN_RATE_PER_SEC.min(limits.rate_per_sec),
            TOKEN_BURST.min(limits.burst),
        );
        let client = ShopifyClient::new(&config, budget)?;
        Ok(ShopifyConnector {
            config,
            client,
            variants: Mutex::new(HashMap::new()),
            currency: Mutex::new(None),
            counters: ShopifyCounters::default(),
        })
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, VariantRef>> {
        self.variants.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn currency_cache(&self) -> MutexGuard<'_, Option<Currency>> {
        self.currency.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stock_cap(&self) -> usize {
        self.config.limits.batch_size.clamp(1, MAX_STOCK_BATCH)
    }
}

#[async_trait]
impl Connector for ShopifyConnector {
    fn kind(&self) -> &'static str {
        "shopify"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_stock_batch: self.stock_cap(),
            max_listing_batch: self.config.limits.batch_size.clamp(1, MAX_LISTING_BATCH),
            stock_carries_price: false,
            has_orders: true,
            max_bulk_batch: 0,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_stock(&self, items: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(self.stock_cap()) {
            out.extend(self.set_stock(chunk).await?);
        }
        Ok(out)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_listings(
        &self,
        items: &[ListingUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.set_products(items).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = skus.len()), err(level = "debug"))]
    async fn delist(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.take_down(skus).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(since_ms, page = page.as_deref()), err(level = "debug"))]
    async fn fetch_orders(
        &self,
        since_ms: i64,
        page: Option<String>,
    ) -> Result<OrdersPage, ConnectorError> {
        self.orders_page(since_ms, page.as_deref()).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(page = page.as_deref()), err(level = "debug"))]
    async fn snapshot_page(&self, page: Option<String>) -> Result<SnapshotPage, ConnectorError> {
        self.snapshot(page.as_deref()).await
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn healthcheck(&self) -> Result<Health, ConnectorError> {
        self.probe().await
    }

    fn stats(&self) -> ConnectorStats {
        let c = &self.client.counters;
        let tokens = self.client.token_stats();
        let mut stats = ConnectorStats {
            requests: c.requests.load(Ordering::Relaxed),
            rate_limited: c.throttled.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            token_refreshes: tokens.refreshes,
            ..ConnectorStats::default()
        }
        .with_budgets(self.client.budget.snapshot());
        let s = &self.counters;
        for (name, value) in [
            ("variant_lookups", s.lookups.load(Ordering::Relaxed)),
            (
                "inventory_activations",
                s.activations.load(Ordering::Relaxed),
            ),
            ("stale_replans", s.stale_replans.load(Ordering::Relaxed)),
            ("items_rejected", s.items_rejected.load(Ordering::Relaxed)),
            (
                "order_lines_without_sku",
                s.order_lines_without_sku.load(Ordering::Relaxed),
            ),
            ("token_invalidations", tokens.invalidations),
            ("cost_waits", c.cost_waits.load(Ordering::Relaxed)),
            ("cost_wait_ms", c.cost_wait_ms.load(Ordering::Relaxed)),
            ("cost_points_available", self.client.cost_available() as u64),
        ] {
            stats.extra.insert(name, value);
        }
        stats
    }
}
