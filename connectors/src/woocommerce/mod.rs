//! The WooCommerce connector: REST API v3 (`{endpoint}/wp-json/wc/v3`) with the shop's consumer
//! key pair (contracts/README.md §5, `specs/woocommerce/*.md`).
//!
//! Rooms (STYLE habit 3): `config` (what the daemon hands over), `client` (HTTP Basic, budget,
//! whole-call errors), `mapping` (WooCommerce bodies ⇄ neutral model, pure), `tests` (stories
//! against the sandbox). This file holds the limits, the SKU index and [`WooCommerceConnector`].
//!
//! ## Limits, and where they come from
//!
//! | limit | constant | source |
//! |---|---|---|
//! | 100 objects (create+update+delete) per batch request, else 413 `woocommerce_rest_request_entity_too_large` | [`MAX_BATCH_ITEMS`] | products.md / product-variations.md batch notes; WC_REST_Controller::check_batch_limit |
//! | `per_page` ≤ 100 (WordPress core refuses more with `rest_invalid_param`) | [`MAX_PER_PAGE`] | introduction.md "Pagination"; contracts §5 |
//! | orders `orderby`: `date`, `id`, `include`, `title`, `slug` — no `modified` | — | orders.md "List all orders" parameters |
//! | no documented rate limit (host / WAF dependent) | [`WooCommerceConnector::DEFAULT_LIMITS`] | contracts §5, §7 |
//!
//! WooCommerce documents no throttling, so the connector runs one conservative budget for the
//! whole site (operation `rest`, 5 requests/s, bucket of 10; `limits` overrides it): every call
//! hits the same PHP workers. A 429 — or a 503 with `Retry-After` (maintenance mode, a host's
//! limiter) — pauses that budget for `Retry-After` (else `limits.throttle_pause`) and fails the
//! call as [`ConnectorError::RateLimited`].
//!
//! ## Authentication
//!
//! HTTP Basic, consumer key as user name, consumer secret as password, on every request
//! (authentication.md "Authentication over HTTPS"). Over plain HTTP WooCommerce wants OAuth 1.0a
//! signatures instead, and Basic credentials would travel in the clear, so a non-`https`
//! `endpoint` is refused unless it is localhost / a loopback address (the sandbox, local docker).
//! The key pair is a [`Secret`](crate::Secret): never logged, never in an error.
//!
//! ## The SKU index
//!
//! WooCommerce addresses products and variations by id; a variation's writes also need its parent
//! id (`/products/{parent}/variations/batch`). The connector keeps SKU → (product id, variation id)
//! in memory, filled by every lookup, create and snapshot, and refreshed on a miss:
//! 1. `GET /products?sku=A,B,…&status=any&per_page=100` — WooCommerce splits `sku` on commas
//!    (WC_REST_Products_V2_Controller::prepare_objects_query; the docs say only "a specific SKU"),
//!    up to [`SKU_LOOKUP_CHUNK`] SKUs per call; a SKU holding a comma is looked up alone. This
//!    finds products, never variations (another post type).
//! 2. Still missing: a scan of every variable product's variations (`GET
//!    /products?type=variable`, then `GET /products/{id}/variations`, all pages), at most once per
//!    [`VARIATION_SCAN_INTERVAL`] unless a create just found the SKU taken.
//!
//! A SKU found nowhere is [`ItemOutcome::NotListed`]. `external_id`s the connector hands out are
//! `"{product}"` or `"{product}:{variation}"`; a stock update carrying one skips the lookup.
//!
//! ## What each method does
//!
//! - **push_stock**: `POST /products/batch {"update":[{"id","manage_stock":true,"stock_quantity",
//!   "regular_price"?}]}` for products and `POST /products/{parent}/variations/batch` per parent,
//!   ≤ 100 entries (`limits.batch_size`) per request; a call may carry more items, split in order. Per-item `error`s inside the 200: an unknown id (product deleted
//!   meanwhile) → `NotListed` (and forgotten); a 5xx → `Retry`; anything else → `Rejected` with
//!   WooCommerce's code and message. An entry applied on a product that is not published (draft,
//!   private) → `NotListed`, so the dispatcher sends the whole listing, which publishes it.
//!   A price in another currency than the shop's (`GET /data/currencies/current`) is `Rejected`.
//! - **push_listings**: an existing product or variation is updated (name/description, price,
//!   stock, images, `status: publish`). A new SKU without `group_id`/options becomes a simple
//!   product (`products/batch` create: name, type simple, sku, regular_price, description,
//!   images `[{src}]`, manage_stock, stock_quantity, status publish). A new SKU with `group_id`
//!   and options becomes a variation of the variable product whose SKU is the `group_id`:
//!   created (type variable, local attributes from the options, `variation: true`) when absent,
//!   its attributes extended when it lacks an option value, then `variations/batch` create with
//!   `attributes [{name, option}]`. A `group_id` naming a simple product is `Rejected`.
//! - **delist**: products → `status: draft`, variations → `status: private` (WooCommerce's
//!   "disabled" variation). Chosen over `catalog_visibility: hidden`, which hides a product from
//!   the catalog but keeps it purchasable by direct link; a draft keeps its id, SKU, stock and
//!   history, and push_listings publishes it again. An unknown SKU is already delisted.
//! - **fetch_orders**: `GET /orders?modified_after=<UTC, no offset>&dates_are_gmt=true&status=any&
//!   per_page=100&page=N&orderby=id&order=asc`; the page number is the opaque token, the next
//!   page exists while `N < X-WP-TotalPages`. `modified` is not an allowed `orderby`, so pages are
//!   in id (= creation) order; `id` rather than `date` because dates have second resolution and
//!   ties would make page boundaries unstable. An order modified while the pages are read may move
//!   into the filtered set and shift later pages by one; the daemon's next poll starts
//!   `order_overlap_secs` before the newest change it saw, which covers it (it cannot be older
//!   than the poll's start). `modified_after` is exclusive and whole-second, so it is sent one
//!   second early. Status table and line rules: [`mapping`].
//! - **snapshot_page**: `GET /products?status=publish&per_page=100&page=N&orderby=id&order=asc`,
//!   and for each variable product on the page all its variations; variable parents themselves
//!   are not items (their variations are). Quantity = `stock_quantity` when `manage_stock`, else
//!   unknown; price = `regular_price` in the shop's currency. Drafts are not reported: the
//!   channel does not show them.
//! - **healthcheck**: the shop's currency, then `GET /products?per_page=1` (`X-WP-TotalPages` =
//!   the product count).

mod client;
mod config;
mod mapping;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use self::client::WooClient;
use self::mapping::{BatchEntry, BatchResponse, CurrencyView, OrderView, ProductView, WpError};
use crate::common::http::encode_component;
use crate::common::{Backoff, Budget, ConnectorStats, Limits};
use crate::connector::{Capabilities, Connector, Health, OrdersPage, SnapshotPage};
use crate::error::ConnectorError;
use crate::model::{Currency, ItemOutcome, ListingUpdate, RemoteItem, Sku, StockUpdate};

pub use self::config::WooCommerceConfig;

/// Objects per batch request (create + update + delete).
pub const MAX_BATCH_ITEMS: usize = 100;
/// Largest `per_page`.
pub const MAX_PER_PAGE: usize = 100;
/// SKUs per `GET /products?sku=…` lookup (keeps URLs short; a connector choice).
pub const SKU_LOOKUP_CHUNK: usize = 25;
/// Shortest time between two scans of every variable product's variations.
pub const VARIATION_SCAN_INTERVAL: Duration = Duration::from_secs(60);
/// Most pages one scan or one snapshot page reads of a collection (100 × 100 = 10,000 items).
pub const MAX_PAGES: u64 = 100;
/// Most SKU → id entries remembered; past this the index is cleared and rebuilt by lookups.
pub const MAX_INDEX: usize = 500_000;

/// Budget operation of every call (one site, one set of PHP workers).
pub(crate) const OP_REST: &str = "rest";

/// Where a SKU lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    product: u64,
    variation: Option<u64>,
}

impl Loc {
    fn external_id(self) -> String {
        match self.variation {
            Some(v) => format!("{}:{v}", self.product),
            None => self.product.to_string(),
        }
    }

    /// Reads an `external_id` this connector handed out.
    fn parse(s: &str) -> Option<Loc> {
        let (p, v) = match s.split_once(':') {
            Some((p, v)) => (p, Some(v)),
            None => (s, None),
        };
        let product = p.trim().parse().ok().filter(|n| *n > 0)?;
        let variation = match v {
            Some(v) => Some(v.trim().parse().ok().filter(|n| *n > 0)?),
            None => None,
        };
        Some(Loc { product, variation })
    }
}

#[derive(Debug, Default)]
struct Index {
    by_sku: HashMap<String, Loc>,
    last_scan: Option<Instant>,
}

/// Counters only this connector has.
#[derive(Debug, Default)]
struct WooCounters {
    sku_lookups: AtomicU64,
    variation_scans: AtomicU64,
    order_lines_without_sku: AtomicU64,
}

/// One WooCommerce shop.
#[derive(Debug)]
pub struct WooCommerceConnector {
    config: WooCommerceConfig,
    client: WooClient,
    index: Mutex<Index>,
    /// The shop's currency once read (`None` inside: the shop does not say).
    currency: tokio::sync::OnceCell<Option<Currency>>,
    counters: WooCounters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn page_token(page: Option<&str>) -> Result<u64, ConnectorError> {
    match page {
        None => Ok(1),
        Some(t) => t
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ConnectorError::Permanent {
                status: None,
                code: None,
                message: format!("invalid WooCommerce page token {t:?} (expected a page number)"),
            }),
    }
}

/// A batch entry to send, and whose outcome it is.
struct Entry<K> {
    owner: K,
    body: Value,
}

/// What one batch entry came to.
enum Sent {
    Applied(ProductView),
    Failed(ItemOutcome),
}

impl WooCommerceConnector {
    /// WooCommerce's defaults: 30 s per request (10 s to connect), 5 requests/s with a bucket of
    /// 10 for the whole site (no documented limit; shared hosting is the common case), 100 items
    /// per batch, retries from 1 s doubling to 5 min, a 30 s pause after a 429 without
    /// `Retry-After`.
    pub const DEFAULT_LIMITS: Limits = Limits {
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        rate_per_sec: 5.0,
        burst: 10,
        batch_size: MAX_BATCH_ITEMS,
        retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        throttle_pause: Duration::from_secs(30),
    };

    /// Builds the connector (no request is sent until the first call).
    pub fn new(config: WooCommerceConfig) -> Result<WooCommerceConnector, ConnectorError> {
        config.validate()?;
        let limits = config.limits;
        let host = reqwest::Url::parse(&config.endpoint)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let budget = Budget::new(
            format!("woocommerce:{host}"),
            limits.rate_per_sec,
            limits.burst,
        );
        budget.set(OP_REST, limits.rate_per_sec, limits.burst);
        let client = WooClient::new(&config, budget)?;
        Ok(WooCommerceConnector {
            config,
            client,
            index: Mutex::new(Index::default()),
            currency: tokio::sync::OnceCell::new(),
            counters: WooCounters::default(),
        })
    }

    fn batch_cap(&self) -> usize {
        self.config.limits.batch_size.clamp(1, MAX_BATCH_ITEMS)
    }

    // ---- the SKU index ----------------------------------------------------------------------

    fn remember(&self, sku: &str, loc: Loc) {
        if sku.is_empty() {
            return;
        }
        let mut idx = lock(&self.index);
        if idx.by_sku.len() >= MAX_INDEX && !idx.by_sku.contains_key(sku) {
            idx.by_sku.clear();
        }
        idx.by_sku.insert(sku.to_owned(), loc);
    }

    fn forget(&self, sku: &str) {
        lock(&self.index).by_sku.remove(sku);
    }

    fn known(&self, sku: &str) -> Option<Loc> {
        lock(&self.index).by_sku.get(sku).copied()
    }

    /// Where each SKU lives: the index, then a lookup by SKU, then (at most once per interval,
    /// or when `force_scan`) a scan of the variations. Absent SKUs are not in the map.
    async fn resolve(
        &self,
        skus: &[&str],
        force_scan: bool,
    ) -> Result<HashMap<String, Loc>, ConnectorError> {
        let mut found = HashMap::new();
        let mut missing: Vec<&str> = Vec::new();
        for sku in skus {
            match self.known(sku) {
                Some(loc) => {
                    found.insert((*sku).to_owned(), loc);
                }
                None => missing.push(sku),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        for view in self.lookup_products(&missing).await? {
            if missing.contains(&view.sku.as_str()) {
                let loc = Loc {
                    product: view.id,
                    variation: None,
                };
                self.remember(&view.sku, loc);
                found.insert(view.sku.clone(), loc);
            }
        }
        missing.retain(|s| !found.contains_key(*s));
        if missing.is_empty() {
            return Ok(found);
        }
        let due = force_scan
            || lock(&self.index)
                .last_scan
                .is_none_or(|t| t.elapsed() >= VARIATION_SCAN_INTERVAL);
        if due {
            self.scan_variations().await?;
            for sku in missing {
                if let Some(loc) = self.known(sku) {
                    found.insert(sku.to_owned(), loc);
                }
            }
        }
        Ok(found)
    }

    /// `GET /products?sku=A,B,…` in chunks (a SKU with a comma alone).
    async fn lookup_products(&self, skus: &[&str]) -> Result<Vec<ProductView>, ConnectorError> {
        let (alone, plain): (Vec<&str>, Vec<&str>) =
            skus.iter().copied().partition(|s| s.contains(','));
        let mut groups: Vec<Vec<&str>> = plain
            .chunks(SKU_LOOKUP_CHUNK)
            .map(<[&str]>::to_vec)
            .collect();
        groups.extend(alone.into_iter().map(|s| vec![s]));
        let mut out = Vec::new();
        for group in groups {
            self.counters.sku_lookups.fetch_add(1, Ordering::Relaxed);
            let list: Vec<String> = group.iter().map(|s| encode_component(s)).collect();
            let path = format!(
                "/products?sku={}&status=any&per_page={MAX_PER_PAGE}",
                list.join(",")
            );
            let (page, _): (Vec<ProductView>, _) = self.client.get(&path).await?;
            out.extend(page);
        }
        Ok(out)
    }

    /// Every page of a collection at `path` (which has no `page` yet).
    async fn all_pages(&self, path: &str) -> Result<Vec<ProductView>, ConnectorError> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let (items, pages): (Vec<ProductView>, _) =
                self.client.get(&format!("{path}&page={page}")).await?;
            let empty = items.is_empty();
            out.extend(items);
            let more = match pages {
                Some(total) => page < total,
                None => !empty && out.len() as u64 == page * MAX_PER_PAGE as u64,
            };
            if !more || page >= MAX_PAGES {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// Indexes every variation of every variable product.
    async fn scan_variations(&self) -> Result<(), ConnectorError> {
        self.counters
            .variation_scans
            .fetch_add(1, Ordering::Relaxed);
        let parents = self
            .all_pages(&format!(
                "/products?type=variable&status=any&per_page={MAX_PER_PAGE}&orderby=id&order=asc"
            ))
            .await?;
        for parent in parents.iter().filter(|p| p.kind == "variable") {
            self.index_variations(parent.id, "any").await?;
        }
        lock(&self.index).last_scan = Some(Instant::now());
        Ok(())
    }

    /// Reads (and indexes) the variations of one variable product.
    async fn index_variations(
        &self,
        parent: u64,
        status: &str,
    ) -> Result<Vec<ProductView>, ConnectorError> {
        let variations = self
            .all_pages(&format!(
                "/products/{parent}/variations?status={status}&per_page={MAX_PER_PAGE}&orderby=id&order=asc"
            ))
            .await?;
        for v in &variations {
            self.remember(
                &v.sku,
                Loc {
                    product: parent,
                    variation: Some(v.id),
                },
            );
        }
        Ok(variations)
    }

    /// The shop's currency, read once (`None` when the shop does not say: prices are then not
    /// compared).
    async fn shop_currency(&self) -> Result<Option<Currency>, ConnectorError> {
        self.currency
            .get_or_try_init(|| async {
                match self
                    .client
                    .get::<CurrencyView>("/data/currencies/current")
                    .await
                {
                    Ok((c, _)) => Ok(Currency::parse(&c.code).ok()),
                    Err(ConnectorError::Permanent { message, .. }) => {
                        tracing::warn!(%message, "WooCommerce did not tell its currency; prices are not compared.");
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .copied()
    }

    // ---- batches ----------------------------------------------------------------------------

    /// Sends `creates` and `updates` to a batch endpoint in requests of ≤ 100, returning each
    /// entry's result with its owner. A whole-call failure that concerns one endpoint only
    /// (4xx) becomes every entry's outcome; account-wide ones (429, auth, 5xx, timeouts) fail.
    async fn batch<K: Clone>(
        &self,
        path: &str,
        creates: Vec<Entry<K>>,
        updates: Vec<Entry<K>>,
    ) -> Result<Vec<(K, Sent)>, ConnectorError> {
        let cap = self.batch_cap();
        let mut out = Vec::with_capacity(creates.len() + updates.len());
        let tagged: Vec<(bool, Entry<K>)> = creates
            .into_iter()
            .map(|e| (true, e))
            .chain(updates.into_iter().map(|e| (false, e)))
            .collect();
        for chunk in tagged.chunks(cap) {
            let create: Vec<&Value> = chunk
                .iter()
                .filter(|(c, _)| *c)
                .map(|(_, e)| &e.body)
                .collect();
            let update: Vec<&Value> = chunk
                .iter()
                .filter(|(c, _)| !*c)
                .map(|(_, e)| &e.body)
                .collect();
            let mut body = serde_json::Map::new();
            if !create.is_empty() {
                body.insert("create".into(), json!(create));
            }
            if !update.is_empty() {
                body.insert("update".into(), json!(update));
            }
            let reply = self
                .client
                .send(Method::POST, path, Some(&Value::Object(body)))
                .await?;
            if !reply.resp.is_success() {
                let e = self.client.error(&reply.resp, path);
                let permanent = matches!(e, ConnectorError::Permanent { .. });
                // A 4xx about this endpoint only (a parent deleted meanwhile, a refused entry)
                // is every entry's outcome; the other items of the call still go.
                let outcome = match WpError::parse(&reply.resp.body) {
                    Some(wp)
                        if permanent
                            && (reply.resp.status != 404 || wp.code.ends_with("_invalid_id")) =>
                    {
                        mapping::item_outcome(&wp)
                    }
                    _ => return Err(e),
                };
                out.extend(
                    chunk
                        .iter()
                        .map(|(_, e)| (e.owner.clone(), Sent::Failed(outcome.clone()))),
                );
                continue;
            }
            let answer: BatchResponse = self.client.parse(&reply.resp)?;
            let (mut ci, mut ui) = (answer.create.into_iter(), answer.update.into_iter());
            for (is_create, entry) in chunk {
                let got = if *is_create { ci.next() } else { ui.next() };
                let sent = match got.as_ref().map(BatchEntry::read) {
                    Some(BatchEntry::Ok(view)) => Sent::Applied(view),
                    Some(BatchEntry::Failed(e)) => Sent::Failed(mapping::item_outcome(&e)),
                    None => Sent::Failed(ItemOutcome::Retry {
                        error: "WooCommerce's batch answer has no entry for this item".into(),
                    }),
                };
                out.push((entry.owner.clone(), sent));
            }
        }
        Ok(out)
    }

    fn batch_path(parent: Option<u64>) -> String {
        match parent {
            Some(p) => format!("/products/{p}/variations/batch"),
            None => "/products/batch".into(),
        }
    }

    /// Outcome of an applied entry: `NotListed` when the product is not published.
    fn applied(&self, sku: &str, loc: Loc, view: &ProductView) -> ItemOutcome {
        self.remember(sku, loc);
        if !view.status.is_empty() && view.status != "publish" {
            return ItemOutcome::NotListed {
                error: format!(
                    "WooCommerce product {} is {}, not published",
                    loc.external_id(),
                    view.status
                ),
            };
        }
        ItemOutcome::Applied {
            external_id: Some(loc.external_id()),
        }
    }

    fn failed(&self, sku: &str, outcome: ItemOutcome) -> ItemOutcome {
        if matches!(outcome, ItemOutcome::NotListed { .. }) {
            self.forget(sku);
        }
        outcome
    }

    // ---- listings ---------------------------------------------------------------------------

    fn listing_body(item: &ListingUpdate, variation: bool) -> serde_json::Map<String, Value> {
        let mut b = serde_json::Map::new();
        b.insert("sku".into(), json!(item.sku.as_str()));
        b.insert("regular_price".into(), json!(item.price.amount_text()));
        b.insert("description".into(), json!(item.description));
        b.insert("manage_stock".into(), json!(true));
        b.insert("stock_quantity".into(), json!(item.quantity));
        b.insert("status".into(), json!("publish"));
        if variation {
            if let Some(src) = item.image_urls.first() {
                b.insert("image".into(), json!({"src": src}));
            }
            b.insert(
                "attributes".into(),
                json!(
                    item.options
                        .iter()
                        .map(|(n, o)| json!({"name": n, "option": o}))
                        .collect::<Vec<_>>()
                ),
            );
        } else {
            b.insert("name".into(), json!(item.title));
            if !item.image_urls.is_empty() {
                b.insert(
                    "images".into(),
                    json!(
                        item.image_urls
                            .iter()
                            .map(|s| json!({"src": s}))
                            .collect::<Vec<_>>()
                    ),
                );
            }
        }
        b
    }

    /// The variable product of a group: found (with its attributes) or to be created.
    async fn find_parent(&self, group: &str) -> Result<Option<ProductView>, ConnectorError> {
        let found = self.lookup_products(&[group]).await?;
        Ok(found.into_iter().find(|p| p.sku == group))
    }
}

/// Who an entry of the listing push belongs to.
#[derive(Debug, Clone)]
enum Owner {
    Item(usize),
    Parent(String),
}

/// Merges option values into a parent's attributes; `true` when something was added.
fn merge_attributes(attrs: &mut Vec<Value>, options: &[(String, String)]) -> bool {
    let mut changed = false;
    for (name, value) in options {
        match attrs
            .iter_mut()
            .find(|a| a["name"].as_str() == Some(name.as_str()))
        {
            Some(a) => {
                let list = a["options"].as_array().cloned().unwrap_or_default();
                if !list.iter().any(|o| o.as_str() == Some(value.as_str())) {
                    let mut list = list;
                    list.push(json!(value));
                    a["options"] = json!(list);
                    a["variation"] = json!(true);
                    changed = true;
                }
            }
            None => {
                attrs.push(
                    json!({"name": name, "options": [value], "variation": true, "visible": true}),
                );
                changed = true;
            }
        }
    }
    changed
}

#[async_trait]
impl Connector for WooCommerceConnector {
    fn kind(&self) -> &'static str {
        "woocommerce"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_stock_batch: self.batch_cap(),
            max_listing_batch: self.batch_cap(),
            stock_carries_price: true,
            has_orders: true,
            max_bulk_batch: 0,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_stock(&self, items: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let currency = if items.iter().any(|i| i.price.is_some()) {
            self.shop_currency().await?
        } else {
            None
        };
        let mut seen = HashSet::new();
        let mut wanted: Vec<&str> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let sku = item.sku.as_str();
            if !seen.insert(sku) {
                outcomes[i] = Some(ItemOutcome::Retry {
                    error: "the same SKU came twice in one batch; only the first was sent".into(),
                });
                continue;
            }
            if let (Some(p), Some(c)) = (&item.price, currency)
                && p.currency != c
            {
                outcomes[i] = Some(ItemOutcome::Rejected {
                    code: None,
                    error: format!(
                        "price in {} but the WooCommerce shop sells in {c}",
                        p.currency
                    ),
                });
                continue;
            }
            if self.known(sku).is_none()
                && let Some(loc) = item.external_id.as_deref().and_then(Loc::parse)
            {
                self.remember(sku, loc);
            }
            wanted.push(sku);
        }
        let locs = self.resolve(&wanted, false).await?;
        let mut groups: BTreeMap<Option<u64>, Vec<Entry<(usize, Loc)>>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            let Some(loc) = locs.get(item.sku.as_str()).copied() else {
                outcomes[i] = Some(ItemOutcome::NotListed {
                    error: format!("no WooCommerce product or variation has SKU {}", item.sku),
                });
                continue;
            };
            let mut body = json!({
                "id": loc.variation.unwrap_or(loc.product),
                "manage_stock": true,
                "stock_quantity": item.quantity,
            });
            if let Some(p) = &item.price {
                body["regular_price"] = json!(p.amount_text());
            }
            let parent = loc.variation.map(|_| loc.product);
            groups.entry(parent).or_default().push(Entry {
                owner: (i, loc),
                body,
            });
        }
        for (parent, entries) in groups {
            let path = Self::batch_path(parent);
            for ((i, loc), sent) in self.batch(&path, Vec::new(), entries).await? {
                let sku = items[i].sku.as_str();
                outcomes[i] = Some(match sent {
                    Sent::Applied(view) => self.applied(sku, loc, &view),
                    Sent::Failed(o) => self.failed(sku, o),
                });
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(ItemOutcome::Retry {
                    error: "not sent".into(),
                })
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_listings(
        &self,
        items: &[ListingUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let currency = self.shop_currency().await?;
        let mut seen = HashSet::new();
        let mut wanted = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if !seen.insert(item.sku.as_str()) {
                outcomes[i] = Some(ItemOutcome::Retry {
                    error: "the same SKU came twice in one batch; only the first was sent".into(),
                });
            } else if currency.is_some_and(|c| c != item.price.currency) {
                outcomes[i] = Some(ItemOutcome::Rejected {
                    code: None,
                    error: format!(
                        "price in {} but the WooCommerce shop sells in {}",
                        item.price.currency,
                        currency.map(|c| c.to_string()).unwrap_or_default()
                    ),
                });
            } else {
                wanted.push(item.sku.as_str());
            }
        }
        let locs = self.resolve(&wanted, false).await?;

        // Phase A: products (updates, new simple products, new or extended variable parents).
        let mut creates: Vec<Entry<Owner>> = Vec::new();
        let mut updates: Vec<Entry<Owner>> = Vec::new();
        let mut variation_entries: BTreeMap<u64, (Vec<Entry<Owner>>, Vec<Entry<Owner>>)> =
            BTreeMap::new();
        let mut new_in_group: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            match locs.get(item.sku.as_str()) {
                Some(loc) if loc.variation.is_some() => {
                    let mut b = Self::listing_body(item, true);
                    b.insert("id".into(), json!(loc.variation));
                    b.remove("attributes");
                    variation_entries
                        .entry(loc.product)
                        .or_default()
                        .1
                        .push(Entry {
                            owner: Owner::Item(i),
                            body: Value::Object(b),
                        });
                }
                Some(loc) => {
                    let mut b = Self::listing_body(item, false);
                    b.insert("id".into(), json!(loc.product));
                    updates.push(Entry {
                        owner: Owner::Item(i),
                        body: Value::Object(b),
                    });
                }
                None => match item.group_id.as_deref().filter(|g| !g.trim().is_empty()) {
                    Some(group) if !item.options.is_empty() => {
                        new_in_group.entry(group.to_owned()).or_default().push(i);
                    }
                    _ => {
                        let mut b = Self::listing_body(item, false);
                        b.insert("type".into(), json!("simple"));
                        creates.push(Entry {
                            owner: Owner::Item(i),
                            body: Value::Object(b),
                        });
                    }
                },
            }
        }
        let mut parents: HashMap<String, u64> = HashMap::new();
        for (group, members) in &new_in_group {
            let options: Vec<(String, String)> = members
                .iter()
                .flat_map(|i| items[*i].options.iter().cloned())
                .collect();
            match self.find_parent(group).await? {
                Some(p) if p.kind != "variable" => {
                    for i in members {
                        outcomes[*i] = Some(ItemOutcome::Rejected {
                            code: None,
                            error: format!(
                                "group {group:?} is a {} product on WooCommerce, not a variable one",
                                if p.kind.is_empty() {
                                    "non-variable"
                                } else {
                                    p.kind.as_str()
                                }
                            ),
                        });
                    }
                }
                Some(p) => {
                    parents.insert(group.clone(), p.id);
                    let mut attrs: Vec<Value> = p
                        .attributes
                        .iter()
                        .map(|a| {
                            json!({"name": a.name, "options": a.options,
                                   "variation": a.variation, "visible": a.visible})
                        })
                        .collect();
                    if merge_attributes(&mut attrs, &options) {
                        updates.push(Entry {
                            owner: Owner::Parent(group.clone()),
                            body: json!({"id": p.id, "attributes": attrs}),
                        });
                    }
                }
                None => {
                    let first = &items[members[0]];
                    let mut attrs = Vec::new();
                    merge_attributes(&mut attrs, &options);
                    let mut b = json!({
                        "name": first.title, "type": "variable", "sku": group,
                        "status": "publish", "description": first.description,
                        "attributes": attrs,
                    });
                    if !first.image_urls.is_empty() {
                        b["images"] = json!(
                            first
                                .image_urls
                                .iter()
                                .map(|s| json!({"src": s}))
                                .collect::<Vec<_>>()
                        );
                    }
                    creates.push(Entry {
                        owner: Owner::Parent(group.clone()),
                        body: b,
                    });
                }
            }
        }
        let mut parent_failures: HashMap<String, ItemOutcome> = HashMap::new();
        let mut taken: Vec<usize> = Vec::new();
        for (owner, sent) in self.batch("/products/batch", creates, updates).await? {
            match (owner, sent) {
                (Owner::Item(i), Sent::Applied(view)) => {
                    let loc = Loc {
                        product: view.id,
                        variation: None,
                    };
                    outcomes[i] = Some(self.applied(items[i].sku.as_str(), loc, &view));
                }
                (Owner::Item(i), Sent::Failed(o)) => {
                    if let ItemOutcome::Rejected { code: Some(c), .. } = &o
                        && c == "product_invalid_sku"
                    {
                        taken.push(i);
                    }
                    outcomes[i] = Some(self.failed(items[i].sku.as_str(), o));
                }
                (Owner::Parent(g), Sent::Applied(view)) => {
                    self.remember(
                        &g,
                        Loc {
                            product: view.id,
                            variation: None,
                        },
                    );
                    parents.insert(g, view.id);
                }
                (Owner::Parent(g), Sent::Failed(o)) => {
                    parents.remove(&g);
                    parent_failures.insert(g, o);
                }
            }
        }
        if !taken.is_empty() {
            // The SKU exists although the lookups did not find it: a product or variation created
            // meanwhile (found by a fresh lookup and scan: the next attempt updates it), or one
            // the API does not show (in the trash: stays rejected).
            let skus: Vec<&str> = taken.iter().map(|i| items[*i].sku.as_str()).collect();
            let found = self.resolve(&skus, true).await?;
            for i in taken {
                if let Some(loc) = found.get(items[i].sku.as_str()) {
                    outcomes[i] = Some(ItemOutcome::Retry {
                        error: format!(
                            "SKU {} appeared on WooCommerce as {} during the push; the next attempt updates it",
                            items[i].sku,
                            loc.external_id()
                        ),
                    });
                }
            }
        }

        // Phase B: variations, per parent.
        for (group, members) in &new_in_group {
            if let Some(o) = parent_failures.get(group) {
                for i in members {
                    outcomes[*i] = Some(match o {
                        ItemOutcome::NotListed { error } => ItemOutcome::Retry {
                            error: format!("the variable product {group:?} changed: {error}"),
                        },
                        other => other.clone(),
                    });
                }
                continue;
            }
            let Some(parent) = parents.get(group) else {
                continue;
            };
            for i in members {
                if outcomes[*i].is_some() {
                    continue;
                }
                variation_entries.entry(*parent).or_default().0.push(Entry {
                    owner: Owner::Item(*i),
                    body: Value::Object(Self::listing_body(&items[*i], true)),
                });
            }
        }
        for (parent, (creates, updates)) in variation_entries {
            let path = Self::batch_path(Some(parent));
            for (owner, sent) in self.batch(&path, creates, updates).await? {
                let Owner::Item(i) = owner else { continue };
                let sku = items[i].sku.as_str();
                outcomes[i] = Some(match sent {
                    Sent::Applied(view) => self.applied(
                        sku,
                        Loc {
                            product: parent,
                            variation: Some(view.id),
                        },
                        &view,
                    ),
                    Sent::Failed(o) => self.failed(sku, o),
                });
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| match o {
                // This is the listing push: "not listed" cannot be its answer.
                Some(ItemOutcome::NotListed { error }) => ItemOutcome::Retry {
                    error: format!("the WooCommerce product changed during the push: {error}"),
                },
                Some(o) => o,
                None => ItemOutcome::Retry {
                    error: "not sent".into(),
                },
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = skus.len()), err(level = "debug"))]
    async fn delist(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; skus.len()];
        let wanted: Vec<&str> = skus.iter().map(Sku::as_str).collect();
        let locs = self.resolve(&wanted, false).await?;
        let mut groups: BTreeMap<Option<u64>, Vec<Entry<(usize, Loc)>>> = BTreeMap::new();
        let mut seen = HashSet::new();
        for (i, sku) in skus.iter().enumerate() {
            let Some(loc) = locs.get(sku.as_str()).copied() else {
                outcomes[i] = Some(ItemOutcome::Applied { external_id: None });
                continue;
            };
            if !seen.insert(sku.as_str()) {
                outcomes[i] = Some(ItemOutcome::Applied {
                    external_id: Some(loc.external_id()),
                });
                continue;
            }
            let (id, status) = match loc.variation {
                Some(v) => (v, "private"),
                None => (loc.product, "draft"),
            };
            groups
                .entry(loc.variation.map(|_| loc.product))
                .or_default()
                .push(Entry {
                    owner: (i, loc),
                    body: json!({"id": id, "status": status}),
                });
        }
        for (parent, entries) in groups {
            let path = Self::batch_path(parent);
            for ((i, loc), sent) in self.batch(&path, Vec::new(), entries).await? {
                outcomes[i] = Some(match sent {
                    Sent::Applied(_) => ItemOutcome::Applied {
                        external_id: Some(loc.external_id()),
                    },
                    // Gone is as delisted as it gets.
                    Sent::Failed(ItemOutcome::NotListed { .. }) => {
                        self.forget(skus[i].as_str());
                        ItemOutcome::Applied { external_id: None }
                    }
                    Sent::Failed(o) => o,
                });
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(ItemOutcome::Retry {
                    error: "not sent".into(),
                })
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(since_ms, page = page.as_deref()), err(level = "debug"))]
    async fn fetch_orders(
        &self,
        since_ms: i64,
        page: Option<String>,
    ) -> Result<OrdersPage, ConnectorError> {
        let n = page_token(page.as_deref())?;
        let path = format!(
            "/orders?modified_after={}&dates_are_gmt=true&status=any&per_page={MAX_PER_PAGE}&page={n}&orderby=id&order=asc",
            mapping::modified_after(since_ms)
        );
        let reply = self.client.send(Method::GET, &path, None).await?;
        if !reply.resp.is_success() {
            return Err(self.client.error(&reply.resp, &path));
        }
        let views: Vec<OrderView> = self.client.parse(&reply.resp)?;
        let count = views.len();
        let mut orders = Vec::with_capacity(count);
        for v in &views {
            let mapped = mapping::channel_order(v).map_err(|message| {
                self.client.note_error();
                ConnectorError::Malformed {
                    status: Some(reply.resp.status),
                    message,
                }
            })?;
            let Some(mapped) = mapped else { continue };
            if mapped.lines_without_sku > 0 {
                self.counters
                    .order_lines_without_sku
                    .fetch_add(mapped.lines_without_sku, Ordering::Relaxed);
                tracing::info!(order = %mapped.order.external_id, lines = mapped.lines_without_sku, "WooCommerce order lines without a usable SKU left out.");
            }
            orders.push(mapped.order);
        }
        let more = match reply.total_pages {
            Some(total) => n < total,
            None => count == MAX_PER_PAGE,
        };
        Ok(OrdersPage {
            orders,
            next_page: more.then(|| (n + 1).to_string()),
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(page = page.as_deref()), err(level = "debug"))]
    async fn snapshot_page(&self, page: Option<String>) -> Result<SnapshotPage, ConnectorError> {
        let n = page_token(page.as_deref())?;
        let currency = self.shop_currency().await?;
        let path = format!(
            "/products?status=publish&per_page={MAX_PER_PAGE}&page={n}&orderby=id&order=asc"
        );
        let (products, total_pages): (Vec<ProductView>, _) = self.client.get(&path).await?;
        let count = products.len();
        let price = |v: &ProductView| currency.and_then(|c| mapping::money(&v.regular_price, c));
        let mut items = Vec::new();
        for p in &products {
            if p.kind == "variable" {
                for v in self.index_variations(p.id, "publish").await? {
                    let Ok(sku) = Sku::parse(v.sku.as_str()) else {
                        continue;
                    };
                    items.push(RemoteItem {
                        external_id: Some(format!("{}:{}", p.id, v.id)),
                        quantity: v.quantity(),
                        price: price(&v),
                        sku,
                    });
                }
                continue;
            }
            if matches!(p.kind.as_str(), "grouped" | "external") {
                continue;
            }
            let Ok(sku) = Sku::parse(p.sku.as_str()) else {
                continue;
            };
            self.remember(
                sku.as_str(),
                Loc {
                    product: p.id,
                    variation: None,
                },
            );
            items.push(RemoteItem {
                external_id: Some(p.id.to_string()),
                quantity: p.quantity(),
                price: price(p),
                sku,
            });
        }
        let more = match total_pages {
            Some(total) => n < total,
            None => count == MAX_PER_PAGE,
        };
        Ok(SnapshotPage {
            items,
            next_page: more.then(|| (n + 1).to_string()),
        })
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn healthcheck(&self) -> Result<Health, ConnectorError> {
        let started = tokio::time::Instant::now();
        let currency = self.shop_currency().await?;
        let (_, pages): (Vec<ProductView>, _) =
            self.client.get("/products?per_page=1&status=any").await?;
        Ok(Health {
            summary: format!(
                "key pair ok, {} products, currency {}",
                pages.map_or_else(|| "an unknown number of".into(), |n| n.to_string()),
                currency.map_or_else(|| "unknown".into(), |c| c.to_string())
            ),
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
        let w = &self.counters;
        for (name, value) in [
            ("sku_lookups", w.sku_lookups.load(Ordering::Relaxed)),
            ("variation_scans", w.variation_scans.load(Ordering::Relaxed)),
            (
                "order_lines_without_sku",
                w.order_lines_without_sku.load(Ordering::Relaxed),
            ),
            ("sku_index_size", lock(&self.index).by_sku.len() as u64),
        ] {
            stats.extra.insert(name, value);
        }
        stats
    }
}
