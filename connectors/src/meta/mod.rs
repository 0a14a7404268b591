//! The Meta connector: Graph API product catalog (`items_batch`, `check_batch_request_status`,
//! the `products` edge) for listings and stock, and commerce orders (`commerce_orders`,
//! `acknowledge_order`) where the shop still has checkout on Facebook/Instagram
//! (contracts/README.md §3).
//!
//! Rooms (STYLE habit 3): `config` (what the daemon hands over), `client` (HTTP, token,
//! `appsecret_proof`, BUC header, Graph errors), `mapping` (Graph bodies ⇄ neutral model, pure),
//! `tests` (stories against the sandbox). This file holds the limits, the batch flow and the
//! [`MetaConnector`].
//!
//! ## Limits, and where they come from
//!
//! | limit | constant | source |
//! |---|---|---|
//! | requests per `items_batch`: 5,000, "keep under 3,000" | [`MAX_BATCH_ITEMS`] = 2,500 | contracts §3.2 |
//! | payload ≤ 28 MB; code 1 "reduce the amount of data" | split in halves ([`client::is_too_much_data`]) | contracts §3.1–3.2 |
//! | catalog batch: "up to 100 calls per hour" | [`config::DEFAULT_ITEMS_BATCH_PER_HOUR`] | commerce best practices, contracts §3.2 |
//! | BUC usage header, throttled at 100 % | [`client::SLOWDOWN_FROM_PERCENT`] | graph-api rate limiting, contracts §3.1 |
//! | commerce_orders page: default 25 | [`ORDERS_PAGE`] | contracts §3.4 |
//!
//! Throttling: one [`Budget`] per catalog with three operations (`items_batch`, `catalog` for
//! status/products/catalog reads, `commerce` for orders). Every answer's
//! `X-Business-Use-Case-Usage` is read: from 75 % usage the operation's rate is scaled down
//! linearly (to 5 % just before 100 %), and a non-zero `estimated_time_to_regain_access` pauses
//! it for that many minutes. Throttle codes (4, 17, 32, 613, 80001–80014) and HTTP 429 fail the
//! call as `RateLimited` with that wait (or `limits.throttle_pause`).
//!
//! ## What each method does
//!
//! - **push_stock**: one `items_batch` (`item_type=PRODUCT_ITEM`, `allow_upsert=false`) of UPDATE
//!   requests carrying `quantity_to_sell_on_facebook`, `availability` and, when managed, `price`
//!   (`"12.99 USD"`), so `stock_carries_price`. An item Meta does not have fails in the batch with
//!   "does not exist" → `NotListed`.
//! - **push_listings**: UPDATE with `allow_upsert=true` and every required feed field (title,
//!   description, availability, condition, price, link from `link_template`, image_link, brand,
//!   gtin, item_group_id, variant attributes). UPDATE rather than CREATE on purpose: a CREATE
//!   resent after a timeout fails because the first one created the item, while an upserting
//!   UPDATE of absolute values is safe to resend (DESIGN §5).
//! - **delist**: DELETE requests; an item Meta does not have counts as deleted.
//! - **Batch results** (the design choice): a push submits, reads the synchronous
//!   `validation_status` (errors → `Rejected` with Meta's messages, not ingested), then polls
//!   `check_batch_request_status?handle=…&load_ids_of_invalid_requests=true` within the call,
//!   first at once and then after 250 ms doubling to 5 s, until `finished` or `batch_wait`
//!   (default 60 s) has passed. Per-item `errors` and `ids_of_invalid_requests` become `Rejected`
//!   (or `NotListed`), the rest `Applied`. Items whose handle is still in progress at the bound,
//!   or whose batch failed as a whole, come back as `Retry`: the values are absolute, so resending
//!   them is safe and the dispatcher's backoff spaces it. A code-1 answer splits the batch in
//!   halves until single items, which are then `Rejected`.
//! - **fetch_orders** (only with `orders_enabled`): `commerce_orders` with
//!   `state=CREATED,IN_PROGRESS,COMPLETED`, `updated_after` (unix seconds), the fields in
//!   [`mapping::ORDER_FIELDS`] and cursor paging. Each CREATED order is acknowledged
//!   (`acknowledge_order` with `merchant_order_reference` = the order id and an `idempotency_key`
//!   derived from the order id, so a retry after a crash is idempotent) before it is reported;
//!   an order acknowledged by this process is not acknowledged again. A throttled or failed
//!   acknowledgement fails the call (the page is fetched again); one Meta refuses for good is
//!   logged and the order still reported, since its stock is sold either way.
//! - **snapshot_page**: the products edge with `retailer_id, quantity_to_sell_on_facebook, price,
//!   currency, availability`; an item not "in stock" shows 0; prices are parsed from Graph's
//!   display format with `currency`.
//! - **healthcheck**: `GET /{catalog_id}?fields=id,name,product_count`, and with orders one
//!   `commerce_orders` call of one order.

mod client;
mod config;
mod mapping;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::time::Instant;

use self::client::{Call, MetaClient};
use self::mapping::{
    BatchResponse, BatchStatus, BatchStatusPage, Missing, Order, Page, ProductRow,
};
use crate::common::http::{MAX_MESSAGE_CHARS, encode_component, truncate};
use crate::common::{Backoff, Budget, ConnectorStats, Limits};
use crate::connector::{Capabilities, Connector, Health, OrdersPage, SnapshotPage};
use crate::error::ConnectorError;
use crate::model::{ItemOutcome, ListingUpdate, Sku, StockUpdate};

pub use self::client::{SLOWDOWN_FROM_PERCENT, appsecret_proof, is_throttle_code};
pub use self::config::{
    DEFAULT_BATCH_WAIT, DEFAULT_ENDPOINT, DEFAULT_ITEMS_BATCH_PER_HOUR, MetaConfig, OP_CATALOG,
    OP_COMMERCE, OP_ITEMS_BATCH,
};
pub use self::mapping::{ORDER_FIELDS, PRODUCT_FIELDS, ack_idempotency_key};

/// Items per `items_batch` call: under Meta's advised 3,000.
pub const MAX_BATCH_ITEMS: usize = 2_500;
/// Products per snapshot page.
pub const SNAPSHOT_PAGE: usize = 500;
/// Orders per commerce_orders page (Graph's default page size).
pub const ORDERS_PAGE: usize = 25;
/// First wait between batch status polls; doubles up to [`POLL_MAX`].
pub const POLL_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between batch status polls.
pub const POLL_MAX: Duration = Duration::from_secs(5);
/// Order ids remembered as acknowledged (the set is cleared beyond this).
const MAX_REMEMBERED_ACKS: usize = 100_000;
/// Burst of the `items_batch` budget.
const ITEMS_BATCH_BURST: u32 = 10;

/// Counters only this connector has.
#[derive(Debug, Default)]
struct MetaCounters {
    items_rejected: AtomicU64,
    items_unresolved: AtomicU64,
    batch_splits: AtomicU64,
    orders_acknowledged: AtomicU64,
    ack_failures: AtomicU64,
    order_lines_without_sku: AtomicU64,
}

/// A Meta catalog (and, with orders, its commerce account).
#[derive(Debug)]
pub struct MetaConnector {
    config: MetaConfig,
    client: MetaClient,
    acked: Mutex<HashSet<String>>,
    counters: MetaCounters,
}

/// One prepared request of a push: the SKU it is about and the Graph request.
struct Prepared<'a> {
    sku: &'a str,
    request: Value,
}

impl MetaConnector {
    /// Meta's defaults: 60 s per request (a large batch takes a while to upload), 1,000 items per
    /// batch, 2 requests per second (burst 10) for reads and orders, retries from 2 s doubling
    /// to 10 min, 60 s pauses after a throttle that names no wait.
    pub const DEFAULT_LIMITS: Limits = Limits {
        timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(10),
        rate_per_sec: 2.0,
        burst: 10,
        batch_size: 1_000,
        retry: Backoff::new(Duration::from_secs(2), Duration::from_secs(600)),
        throttle_pause: Duration::from_secs(60),
    };

    /// Builds the connector (no request is sent until the first call).
    pub fn new(config: MetaConfig) -> Result<MetaConnector, ConnectorError> {
        config.validate()?;
        let l = config.limits;
        let budget = Budget::new(
            format!("meta:{}", config.catalog_id),
            l.rate_per_sec,
            l.burst,
        );
        let batch_rate = (f64::from(config.items_batch_per_hour) / 3600.0).min(l.rate_per_sec);
        budget.set(OP_ITEMS_BATCH, batch_rate, ITEMS_BATCH_BURST.min(l.burst));
        budget.set(OP_CATALOG, l.rate_per_sec, l.burst);
        budget.set(OP_COMMERCE, l.rate_per_sec, l.burst);
        let rates = HashMap::from([
            (OP_ITEMS_BATCH, batch_rate),
            (OP_CATALOG, l.rate_per_sec),
            (OP_COMMERCE, l.rate_per_sec),
        ]);
        let client = MetaClient::new(&config, budget, rates)?;
        Ok(MetaConnector {
            config,
            client,
            acked: Mutex::new(HashSet::new()),
            counters: MetaCounters::default(),
        })
    }

    fn batch_cap(&self) -> usize {
        self.config.limits.batch_size.clamp(1, MAX_BATCH_ITEMS)
    }

    fn catalog(&self) -> String {
        encode_component(&self.config.catalog_id)
    }

    /// Pushes prepared requests in chunks of the batch cap; outcomes aligned with `items`.
    async fn push(
        &self,
        items: Vec<Prepared<'_>>,
        allow_upsert: bool,
        missing: Missing,
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut out = Vec::with_capacity(items.len());
        let mut rest = items;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(self.batch_cap()));
            out.extend(self.submit(&rest, allow_upsert, missing).await?);
            rest = tail;
        }
        for o in &out {
            match o {
                ItemOutcome::Rejected { .. } => {
                    self.counters.items_rejected.fetch_add(1, Ordering::Relaxed);
                }
                ItemOutcome::Retry { .. } => {
                    self.counters
                        .items_unresolved
                        .fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// One `items_batch` call (split in halves on code 1) and its handle.
    async fn submit(
        &self,
        items: &[Prepared<'_>],
        allow_upsert: bool,
        missing: Missing,
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let body = json!({
            "item_type": "PRODUCT_ITEM",
            "allow_upsert": allow_upsert,
            "requests": items.iter().map(|p| &p.request).collect::<Vec<_>>(),
        });
        let path = format!("/{}/items_batch", self.catalog());
        let resp = match self
            .client
            .call(&Call::post(OP_ITEMS_BATCH, path, body))
            .await
        {
            Ok(r) => r,
            Err(e) if client::is_too_much_data(&e) && items.len() > 1 => {
                self.counters.batch_splits.fetch_add(1, Ordering::Relaxed);
                let (a, b) = items.split_at(items.len() / 2);
                let mut out = Box::pin(self.submit(a, allow_upsert, missing)).await?;
                out.extend(Box::pin(self.submit(b, allow_upsert, missing)).await?);
                return Ok(out);
            }
            Err(e) if client::is_too_much_data(&e) => {
                return Ok(vec![ItemOutcome::Rejected {
                    code: Some("1".into()),
                    error: e.to_string(),
                }]);
            }
            Err(e) => return Err(e),
        };
        let answer: BatchResponse = resp.json()?;
        let mut outcomes: Vec<Option<ItemOutcome>> = items.iter().map(|_| None).collect();
        for v in &answer.validation_status {
            if v.errors.is_empty() {
                continue;
            }
            let error = truncate(
                &v.errors
                    .iter()
                    .take(20)
                    .filter_map(|e| e.message.as_deref())
                    .map(|m| truncate(m, MAX_MESSAGE_CHARS))
                    .collect::<Vec<_>>()
                    .join("; "),
                MAX_MESSAGE_CHARS,
            );
            let id = v.retailer_id.as_deref().unwrap_or("");
            for (i, p) in items.iter().enumerate() {
                if p.sku == id && outcomes[i].is_none() {
                    outcomes[i] = Some(ItemOutcome::Rejected {
                        code: Some("validation".into()),
                        error: error.clone(),
                    });
                }
            }
        }
        let pending: Vec<usize> = (0..items.len())
            .filter(|i| outcomes[*i].is_none())
            .collect();
        if !pending.is_empty() {
            let resolved = match answer.handles.first() {
                None => pending
                    .iter()
                    .map(|_| ItemOutcome::Retry {
                        error: "Meta returned no batch handle: nothing was ingested".into(),
                    })
                    .collect(),
                Some(handle) => {
                    let skus: Vec<&str> = items.iter().map(|p| p.sku).collect();
                    let all = self.await_handle(handle, &skus, missing).await?;
                    pending.iter().map(|i| all[*i].clone()).collect::<Vec<_>>()
                }
            };
            for (i, o) in pending.into_iter().zip(resolved) {
                outcomes[i] = Some(o);
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(ItemOutcome::Retry {
                    error: "no outcome".into(),
                })
            })
            .collect())
    }

    /// Polls a handle until it finishes or `batch_wait` passes; outcomes for every line.
    async fn await_handle(
        &self,
        handle: &str,
        skus: &[&str],
        missing: Missing,
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let deadline = Instant::now() + self.config.batch_wait;
        let mut delay = POLL_FIRST;
        // The handle goes into messages and logs: a real one is short, a hostile one is cut.
        let shown = truncate(handle, 100);
        let mut last_error: Option<ConnectorError> = None;
        loop {
            // A status check must not outlive the bound (a throttled catalog budget may be paused
            // for minutes): past the deadline the items are simply unresolved.
            let Ok(status) = tokio::time::timeout_at(deadline, self.batch_status(handle)).await
            else {
                break;
            };
            match status {
                Ok(s) if !s.pending() => {
                    if s.finished() {
                        return Ok(mapping::finished_outcomes(skus, &s, missing));
                    }
                    let status = s.status.unwrap_or_default();
                    return Ok(skus
                        .iter()
                        .map(|_| ItemOutcome::Retry {
                            error: format!("Meta batch {shown} ended {:?}", truncate(&status, 100)),
                        })
                        .collect());
                }
                Ok(_) => {}
                Err(e @ ConnectorError::Auth { .. }) => return Err(e),
                Err(e) => last_error = Some(e),
            }
            let now = Instant::now();
            if now + delay > deadline {
                break;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(POLL_MAX);
        }
        let why = last_error
            .map(|e| format!(" (last status check: {e})"))
            .unwrap_or_default();
        tracing::info!(
            handle = %shown,
            items = skus.len(),
            "Meta batch still in progress; its items will be sent again."
        );
        Ok(skus
            .iter()
            .map(|_| ItemOutcome::Retry {
                error: format!(
                    "Meta batch {shown} still in progress after {} s{why}; the absolute values will be sent again",
                    self.config.batch_wait.as_secs()
                ),
            })
            .collect())
    }

    async fn batch_status(&self, handle: &str) -> Result<BatchStatus, ConnectorError> {
        let path = format!(
            "/{}/check_batch_request_status?handle={}&load_ids_of_invalid_requests=true",
            self.catalog(),
            encode_component(handle)
        );
        let page: BatchStatusPage = self
            .client
            .call(&Call::get(OP_CATALOG, path))
            .await?
            .json()?;
        page.data
            .into_iter()
            .next()
            .ok_or(ConnectorError::Malformed {
                status: Some(200),
                message: "check_batch_request_status answered no status".into(),
            })
    }

    async fn orders_page(
        &self,
        since_ms: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Order>, ConnectorError> {
        let account = self.config.commerce_account_id.as_deref().unwrap_or("");
        let mut path = format!(
            "/{}/commerce_orders?state=CREATED,IN_PROGRESS,COMPLETED&updated_after={}&fields={}&limit={limit}",
            encode_component(account),
            since_ms.div_euclid(1000).max(0),
            encode_component(mapping::ORDER_FIELDS),
        );
        if let Some(a) = after {
            path.push_str(&format!("&after={}", encode_component(a)));
        }
        self.client
            .call(&Call::get(OP_COMMERCE, path))
            .await?
            .json()
    }

    /// Acknowledges a CREATED order once (per process; Meta dedups by the idempotency key).
    async fn acknowledge(&self, order_id: &str) -> Result<(), ConnectorError> {
        if self
            .acked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(order_id)
        {
            return Ok(());
        }
        let path = format!("/{}/acknowledge_order", encode_component(order_id));
        let body = json!({
            "merchant_order_reference": order_id,
            "idempotency_key": mapping::ack_idempotency_key(order_id),
        });
        match self.client.call(&Call::post(OP_COMMERCE, path, body)).await {
            Ok(_) => {
                self.counters
                    .orders_acknowledged
                    .fetch_add(1, Ordering::Relaxed);
                let mut acked = self.acked.lock().unwrap_or_else(|p| p.into_inner());
                if acked.len() >= MAX_REMEMBERED_ACKS {
                    acked.clear();
                }
                acked.insert(order_id.to_owned());
                Ok(())
            }
            Err(e) if matches!(e, ConnectorError::Permanent { .. }) => {
                self.counters.ack_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(order = order_id, error = %e, "Meta refused to acknowledge an order; reporting it anyway.");
                Ok(())
            }
            Err(e) => {
                self.counters.ack_failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

#[async_trait]
impl Connector for MetaConnector {
    fn kind(&self) -> &'static str {
        "facebook"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_stock_batch: self.batch_cap(),
            max_listing_batch: self.batch_cap(),
            stock_carries_price: true,
            has_orders: self.config.orders_enabled,
            max_bulk_batch: 0,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_stock(&self, items: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let prepared = items
            .iter()
            .map(|u| Prepared {
                sku: u.sku.as_str(),
                request: mapping::stock_request(u),
            })
            .collect();
        self.push(prepared, false, Missing::NotListed).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_listings(
        &self,
        items: &[ListingUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let template = self.config.link_template.as_deref();
        let prepared = items
            .iter()
            .map(|u| Prepared {
                sku: u.sku.as_str(),
                request: mapping::listing_request(u, template),
            })
            .collect();
        self.push(prepared, true, Missing::Rejected).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = skus.len()), err(level = "debug"))]
    async fn delist(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let prepared = skus
            .iter()
            .map(|s| Prepared {
                sku: s.as_str(),
                request: mapping::delete_request(s),
            })
            .collect();
        self.push(prepared, false, Missing::Applied).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(since_ms, page = page.as_deref()), err(level = "debug"))]
    async fn fetch_orders(
        &self,
        since_ms: i64,
        page: Option<String>,
    ) -> Result<OrdersPage, ConnectorError> {
        if !self.config.orders_enabled {
            return Ok(OrdersPage::default());
        }
        let answer = self
            .orders_page(since_ms, page.as_deref(), ORDERS_PAGE)
            .await?;
        let mut orders = Vec::with_capacity(answer.data.len());
        for o in &answer.data {
            let Some((order, skipped)) = mapping::channel_order(o) else {
                tracing::warn!(order = ?o.id(), "Skipping a Meta order without an id or a readable creation time.");
                continue;
            };
            if skipped > 0 {
                self.counters
                    .order_lines_without_sku
                    .fetch_add(skipped as u64, Ordering::Relaxed);
            }
            if o.state() == "CREATED" {
                self.acknowledge(&order.external_id).await?;
            }
            orders.push(order);
        }
        Ok(OrdersPage {
            orders,
            next_page: answer
                .paging
                .as_ref()
                .and_then(mapping::Paging::next_cursor),
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(page = page.as_deref()), err(level = "debug"))]
    async fn snapshot_page(&self, page: Option<String>) -> Result<SnapshotPage, ConnectorError> {
        let mut path = format!(
            "/{}/products?fields={}&limit={SNAPSHOT_PAGE}",
            self.catalog(),
            encode_component(&PRODUCT_FIELDS.join(","))
        );
        if let Some(after) = &page {
            path.push_str(&format!("&after={}", encode_component(after)));
        }
        let answer: Page<ProductRow> = self
            .client
            .call(&Call::get(OP_CATALOG, path))
            .await?
            .json()?;
        let mut items = Vec::with_capacity(answer.data.len());
        for row in &answer.data {
            match mapping::remote_item(row) {
                Some(item) => items.push(item),
                None => {
                    tracing::warn!(retailer_id = ?row.retailer_id, "Skipping a Meta item whose retailer id is not a valid SKU.")
                }
            }
        }
        let next_page = answer
            .paging
            .as_ref()
            .and_then(mapping::Paging::next_cursor);
        if next_page.is_some() && next_page == page {
            return Err(ConnectorError::Malformed {
                status: Some(200),
                message: "the products edge returned the same cursor again".into(),
            });
        }
        Ok(SnapshotPage { items, next_page })
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn healthcheck(&self) -> Result<Health, ConnectorError> {
        let started = Instant::now();
        let path = format!("/{}?fields=id,name,product_count", self.catalog());
        let catalog: Value = self
            .client
            .call(&Call::get(OP_CATALOG, path))
            .await?
            .json()?;
        let name = catalog.get("name").and_then(Value::as_str).unwrap_or("?");
        let count = catalog
            .get("product_count")
            .and_then(Value::as_u64)
            .map_or_else(|| "?".to_owned(), |n| n.to_string());
        let mut summary = format!("catalog {name:?} ok, {count} items");
        if self.config.orders_enabled {
            self.orders_page(0, None, 1).await?;
            summary.push_str(", commerce orders ok");
        }
        Ok(Health {
            summary: crate::common::http::truncate(&summary, 200),
            latency: started.elapsed(),
        })
    }

    fn stats(&self) -> ConnectorStats {
        let c = &self.client.counters;
        let mut stats = ConnectorStats {
            requests: c.requests.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            ..ConnectorStats::default()
        }
        .with_budgets(self.client.budget.snapshot());
        let m = &self.counters;
        for (name, value) in [
            ("items_rejected", m.items_rejected.load(Ordering::Relaxed)),
            (
                "items_unresolved",
                m.items_unresolved.load(Ordering::Relaxed),
            ),
            ("batch_splits", m.batch_splits.load(Ordering::Relaxed)),
            (
                "orders_acknowledged",
                m.orders_acknowledged.load(Ordering::Relaxed),
            ),
            ("ack_failures", m.ack_failures.load(Ordering::Relaxed)),
            (
                "order_lines_without_sku",
                m.order_lines_without_sku.load(Ordering::Relaxed),
            ),
            ("buc_usage_percent", c.buc_percent.load(Ordering::Relaxed)),
            ("buc_slowdowns", c.buc_slowdowns.load(Ordering::Relaxed)),
        ] {
            stats.extra.insert(name, value);
        }
        stats
    }
}
