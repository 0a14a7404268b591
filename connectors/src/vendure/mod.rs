//! The Vendure connector: the Admin GraphQL API of a Vendure 3 store (products, variants, stock,
//! orders), logged in as an administrator with the native strategy and Vendure's bearer token
//! method (contracts/realstore.md §2a; Vendure's Admin API reference).
//!
//! Rooms (STYLE habit 3): `config`, `client` (HTTP, login and re-login, budgets, GraphQL
//! envelope), `mapping` (documents and bodies ⇄ neutral model, pure), `tests` (stories against the
//! sandbox's Vendure fake). A test against a real Vendure lives in `tests/realstore`.
//!
//! ## Limits, and where they come from
//!
//! Vendure is self-hosted and has no API rate limit of its own; the budget protects a small shop
//! server (a connector choice, overridable with `limits`).
//!
//! | limit | constant | source |
//! |---|---|---|
//! | variants per stock batch (one `productVariants` read + one `updateProductVariants`) | [`MAX_STOCK_BATCH`] = 100 | connector choice; Vendure's `adminListQueryLimit` default is 1000 |
//! | list page (`take`) for variants and orders | [`MAX_PAGE`] = 100 | same |
//! | listings per push_listings call (up to 2 calls each) | [`MAX_LISTING_BATCH`] = 25 | connector choice |
//! | `updatedAt` resolution | 1 s ([`ORDER_OVERLAP_SECS`]) | Vendure on SQLite/MySQL stores `datetime` without milliseconds (realstore.md §2a) |
//! | session lifetime | [`client::SESSION_LIFETIME`] = 24 h | Vendure's `sessionDuration` default is 1 year; we log in daily |
//!
//! ## What each method does
//!
//! - **Stock model.** Vendure shows buyers `stockOnHand − stockAllocated` (allocated = placed,
//!   unfulfilled orders; `stockOnHand` drops only at fulfilment). omnistock's quantity is what
//!   buyers may still buy, and it reserves Vendure's own orders once it has read them, so the
//!   connector writes `stockOnHand = quantity + stockAllocated` (read in the same batch) and
//!   reports `stockOnHand − stockAllocated` in snapshots. With `stock_location_id` both are taken
//!   from that location's `stockLevels` and written as `stockLevels: [{stockLocationId,
//!   stockOnHand}]`; otherwise Vendure's totals and the plain `stockOnHand` input (the channel's
//!   default location). An order allocated between our read and write is corrected by the next
//!   push once the order is read (the same window any two writers have).
//! - **push_stock**: one `productVariants(filter: {sku: {in: [...]}})` read, then one
//!   `updateProductVariants` for the batch with `{id, stockOnHand | stockLevels, price?}`. No id
//!   cache: the read is needed anyway for `stockAllocated`, and it doubles as the "refresh on a
//!   miss". Unknown SKU or a disabled variant → `NotListed` (push_listings creates or re-enables
//!   it). A price in another currency than the variant's → `Rejected`. Vendure applies the
//!   mutation in one transaction, so one bad input fails it all: on an input error the items are
//!   sent one by one to find the culprit (`USER_INPUT_ERROR` → `Rejected` with the code,
//!   `ENTITY_NOT_FOUND` → `NotListed`). Duplicate SKUs in Vendure (it allows them): the variant with
//!   the lowest id is the one omnistock drives; `stats()` counts the others.
//! - **push_listings**: existing variants get one `updateProductVariants` (enabled, English name,
//!   price, stock); a missing SKU gets `createProduct` (enabled, English name, slug, description)
//!   then `createProductVariants` (sku, price, stock, `trackInventory: TRUE`). Prices are set in the
//!   channel's default currency (read once from `activeChannel`); another currency → `Rejected`.
//!   A lost answer to `createProductVariants` is safe: the retry reads the SKU first and updates.
//!   A lost answer to `createProduct` leaves an empty product behind (Vendure has no idempotency
//!   key); one product per SKU, `group_id` is not used to group variants.
//! - **delist** disables the variant (`enabled: false`): off sale, reversible, history kept; the
//!   product stays. An unknown SKU is already delisted.
//! - **fetch_orders**: `orders(filter: {updatedAt: {after}, active: {eq: false}}, sort: {updatedAt:
//!   ASC}, skip, take)`. `after` is strict and the store keeps whole seconds, so the bound is
//!   `since` truncated to the second minus [`ORDER_OVERLAP_SECS`]; orders are re-read and the
//!   daemon's dedupe (order id + updatedAt version) makes that exactly-once. The page token is the
//!   next `skip`. The external id is the order `code`. States: [`mapping::order_status`].
//! - **snapshot_page**: every variant by id, `skip`/`take`; quantity as above (0 when disabled),
//!   price with the variant's currency.
//! - **healthcheck**: login, then `activeChannel` and `productVariants(take: 1)`.
//!
//! Arguments travel as variables named like the arguments (`$options`, `$input`, `$username`),
//! which is also what the sandbox's fake reads.
//!
//! ## Errors
//!
//! Vendure answers most failures with HTTP 200 and GraphQL `errors` carrying `extensions.code`:
//! `FORBIDDEN` (session expired or missing permission: one re-login, then `Auth`), input errors
//! (`USER_INPUT_ERROR`, `ENTITY_NOT_FOUND`, `BAD_USER_INPUT`, database constraint messages without
//! a code) → per item as above or `Permanent`, `INTERNAL_SERVER_ERROR` → `Transient`. Validation
//! failures come with HTTP 400 (`GRAPHQL_VALIDATION_FAILED`: a schema mismatch, `Permanent`).
//! `login` answers an `ErrorResult` (`INVALID_CREDENTIALS_ERROR`) → `Auth`. 429 from a proxy →
//! `RateLimited`; 5xx and transport failures as everywhere (common::http).

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
use serde_json::{Map, Value, json};

use self::client::{CallError, VendureClient};
use self::mapping::{GqlError, Variant};
use crate::common::http::truncate;
use crate::common::{Backoff, Budget, ConnectorStats, Limits};
use crate::connector::{Capabilities, Connector, Health, OrdersPage, SnapshotPage};
use crate::error::ConnectorError;
use crate::model::{Currency, ItemOutcome, ListingUpdate, RemoteItem, Sku, StockUpdate};

pub use self::client::{AUTH_TOKEN_HEADER, CHANNEL_TOKEN_HEADER, SESSION_LIFETIME};
pub use self::config::VendureConfig;

/// Variants per push_stock call.
pub const MAX_STOCK_BATCH: usize = 100;
/// Listings per push_listings call.
pub const MAX_LISTING_BATCH: usize = 25;
/// `take` of every list read.
pub const MAX_PAGE: usize = 100;
/// Seconds the orders filter reaches back past `since` (Vendure keeps whole seconds).
pub const ORDER_OVERLAP_SECS: i64 = 1;
/// Language of names omnistock writes.
pub const LANGUAGE: &str = "en";
/// Most pages one SKU lookup reads (duplicate SKUs could make a batch span several).
const MAX_LOOKUP_PAGES: usize = 10;

/// Budget operation of Admin API calls.
pub(crate) const OP_ADMIN: &str = "admin";
/// Budget operation of `login`.
pub(crate) const OP_LOGIN: &str = "login";

/// Counters only this connector has.
#[derive(Debug, Default)]
struct VendureCounters {
    duplicate_skus: AtomicU64,
    order_lines_without_sku: AtomicU64,
    custom_order_states: AtomicU64,
    carts_skipped: AtomicU64,
    products_created: AtomicU64,
    split_batches: AtomicU64,
}

/// A Vendure store (one channel of it).
#[derive(Debug)]
pub struct VendureConnector {
    config: VendureConfig,
    client: VendureClient,
    currency: Mutex<Option<Currency>>,
    counters: VendureCounters,
}

fn permanent(message: String) -> ConnectorError {
    ConnectorError::Permanent {
        status: None,
        code: None,
        message,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one item of a variant update became when sent alone.
fn single_outcome(errors: &[GqlError]) -> Option<ItemOutcome> {
    if !mapping::is_input_error(errors) {
        return None;
    }
    let code = errors.iter().find_map(GqlError::code).map(str::to_owned);
    let error = mapping::errors_message(errors);
    Some(if code.as_deref() == Some("ENTITY_NOT_FOUND") {
        ItemOutcome::NotListed { error }
    } else {
        ItemOutcome::Rejected { code, error }
    })
}

impl VendureConnector {
    /// Vendure's defaults: 30 s per request (10 s to connect), 10 requests/s with a bucket of 20,
    /// 100 variants per batch, retries from 1 s doubling to 5 min, a 30 s pause after a 429.
    pub const DEFAULT_LIMITS: Limits = Limits {
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        rate_per_sec: 10.0,
        burst: 20,
        batch_size: MAX_STOCK_BATCH,
        retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        throttle_pause: Duration::from_secs(30),
    };

    /// Builds the connector (no request is sent until the first call).
    pub fn new(config: VendureConfig) -> Result<VendureConnector, ConnectorError> {
        config.validate()?;
        let l = config.limits;
        let budget = Budget::new(
            format!("vendure:{}", config.endpoint),
            l.rate_per_sec,
            l.burst,
        );
        budget.set(OP_ADMIN, l.rate_per_sec, l.burst);
        budget.set(OP_LOGIN, l.rate_per_sec.min(1.0), l.burst.min(3));
        let client = VendureClient::new(&config, budget)?;
        Ok(VendureConnector {
            config,
            client,
            currency: Mutex::new(None),
            counters: VendureCounters::default(),
        })
    }

    fn batch_cap(&self, max: usize) -> usize {
        self.config.limits.batch_size.clamp(1, max)
    }

    fn location(&self) -> Option<&str> {
        self.config.stock_location()
    }

    /// The variants of these SKUs, lowest id per SKU.
    async fn lookup(&self, skus: &[&str]) -> Result<HashMap<String, Variant>, ConnectorError> {
        let mut found: HashMap<String, Variant> = HashMap::new();
        for chunk in skus.chunks(MAX_PAGE) {
            let mut skip = 0usize;
            for _ in 0..MAX_LOOKUP_PAGES {
                let data: mapping::VariantsData = self
                    .client
                    .call_whole(
                        OP_ADMIN,
                        "OmnistockVariantsBySku",
                        mapping::VARIANTS_BY_SKU,
                        json!({"options": mapping::variants_by_sku_options(chunk, skip, MAX_PAGE)}),
                        true,
                    )
                    .await?;
                let list = data.product_variants;
                let n = list.items.len();
                for v in list.items {
                    if !chunk.contains(&v.sku.as_str()) {
                        // Not what we asked for: a server that ignores the filter.
                        continue;
                    }
                    match found.get(&v.sku) {
                        Some(_) => {
                            self.counters.duplicate_skus.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {
                            found.insert(v.sku.clone(), v);
                        }
                    }
                }
                skip += n;
                if n == 0 || skip as u64 >= list.total_items {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The channel's default currency (read once).
    async fn channel_currency(&self) -> Result<Currency, ConnectorError> {
        if let Some(c) = *lock(&self.currency) {
            return Ok(c);
        }
        let data: mapping::ActiveChannelData = self
            .client
            .call_whole(
                OP_ADMIN,
                "OmnistockActiveChannel",
                mapping::ACTIVE_CHANNEL,
                json!({}),
                true,
            )
            .await?;
        let c = Currency::parse(&data.active_channel.default_currency_code).map_err(|_| {
            ConnectorError::Malformed {
                status: None,
                message: format!(
                    "activeChannel.defaultCurrencyCode {:?} is not a currency",
                    truncate(&data.active_channel.default_currency_code, 20)
                ),
            }
        })?;
        *lock(&self.currency) = Some(c);
        Ok(c)
    }

    /// `updateProductVariants` for `inputs` (index into the caller's items, input). One call for
    /// all; on an input error, one call per item to find which ones Vendure refuses.
    async fn update_variants(
        &self,
        inputs: Vec<(usize, Value)>,
        outcomes: &mut [Option<ItemOutcome>],
    ) -> Result<(), ConnectorError> {
        if inputs.is_empty() {
            return Ok(());
        }
        let all: Vec<&Value> = inputs.iter().map(|(_, v)| v).collect();
        match self.send_update(&all).await {
            Ok(updated) => {
                self.apply_updated(&inputs, &updated, outcomes);
                Ok(())
            }
            Err(CallError::Graphql(errors)) if mapping::is_input_error(&errors) => {
                if inputs.len() == 1 {
                    outcomes[inputs[0].0] = single_outcome(&errors);
                    return Ok(());
                }
                self.counters.split_batches.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    items = inputs.len(),
                    error = %mapping::errors_message(&errors),
                    "Vendure refused a variant batch; sending its items one by one."
                );
                for (index, input) in &inputs {
                    match self.send_update(&[input]).await {
                        Ok(updated) => {
                            self.apply_updated(&[(*index, input.clone())], &updated, outcomes);
                        }
                        Err(CallError::Graphql(errors)) => match single_outcome(&errors) {
                            Some(o) => outcomes[*index] = Some(o),
                            None => return Err(mapping::classify_errors(&errors)),
                        },
                        Err(CallError::Call(e)) => return Err(e),
                    }
                }
                Ok(())
            }
            Err(e) => Err(e.into_connector()),
        }
    }

    async fn send_update(&self, inputs: &[&Value]) -> Result<Vec<Option<Variant>>, CallError> {
        let data: mapping::UpdateData = self
            .client
            .call(
                OP_ADMIN,
                "OmnistockUpdateVariants",
                mapping::UPDATE_VARIANTS,
                json!({ "input": inputs }),
                false,
            )
            .await?;
        Ok(data.update_product_variants)
    }

    fn apply_updated(
        &self,
        inputs: &[(usize, Value)],
        updated: &[Option<Variant>],
        outcomes: &mut [Option<ItemOutcome>],
    ) {
        for (i, (index, input)) in inputs.iter().enumerate() {
            let id = input.get("id").and_then(Value::as_str);
            outcomes[*index] = Some(match updated.get(i).and_then(Option::as_ref) {
                Some(v) if Some(v.id.as_str()) == id => ItemOutcome::Applied {
                    external_id: Some(v.id.clone()),
                },
                Some(_) => ItemOutcome::Retry {
                    error: "Vendure answered for another variant than the one sent".into(),
                },
                None => ItemOutcome::Retry {
                    error: "Vendure returned no variant for this update".into(),
                },
            });
        }
    }

    fn stock_input(&self, id: &str, quantity: u32, v: Option<&Variant>) -> Map<String, Value> {
        let allocated = v.map_or(0, |v| v.stock_at(self.location()).1.max(0));
        let mut input = Map::new();
        input.insert("id".into(), json!(id));
        mapping::stock_input(&mut input, self.location(), i64::from(quantity) + allocated);
        input
    }

    /// createProduct + createProductVariants for one listing.
    async fn create_listing(&self, item: &ListingUpdate) -> Result<ItemOutcome, ConnectorError> {
        let sku = item.sku.as_str();
        let name = if item.title.trim().is_empty() {
            sku.to_owned()
        } else {
            item.title.clone()
        };
        let product = json!({
            "enabled": true,
            "translations": [{
                "languageCode": LANGUAGE,
                "name": name,
                "slug": mapping::slug(&item.title, sku),
                "description": item.description,
            }],
        });
        let created: mapping::CreateProductData = match self
            .client
            .call(
                OP_ADMIN,
                "OmnistockCreateProduct",
                mapping::CREATE_PRODUCT,
                json!({ "input": product }),
                false,
            )
            .await
        {
            Ok(d) => d,
            Err(CallError::Graphql(errors)) => match single_outcome(&errors) {
                Some(o) => return Ok(o),
                None => return Err(mapping::classify_errors(&errors)),
            },
            Err(CallError::Call(e)) => return Err(e),
        };
        self.counters
            .products_created
            .fetch_add(1, Ordering::Relaxed);
        let mut variant = Map::new();
        variant.insert("productId".into(), json!(created.create_product.id));
        variant.insert("sku".into(), json!(sku));
        variant.insert("price".into(), json!(item.price.minor));
        variant.insert("trackInventory".into(), json!("TRUE"));
        variant.insert("enabled".into(), json!(true));
        variant.insert(
            "translations".into(),
            json!([{"languageCode": LANGUAGE, "name": name}]),
        );
        mapping::stock_input(&mut variant, self.location(), i64::from(item.quantity));
        let result: Result<mapping::CreateVariantsData, CallError> = self
            .client
            .call(
                OP_ADMIN,
                "OmnistockCreateVariants",
                mapping::CREATE_VARIANTS,
                json!({ "input": [variant] }),
                false,
            )
            .await;
        match result {
            Ok(d) => Ok(
                match d.create_product_variants.first().and_then(Option::as_ref) {
                    Some(v) => ItemOutcome::Applied {
                        external_id: Some(v.id.clone()),
                    },
                    None => ItemOutcome::Retry {
                        error: "Vendure created the product but returned no variant".into(),
                    },
                },
            ),
            Err(CallError::Graphql(errors)) => match single_outcome(&errors) {
                Some(o) => Ok(o),
                None => Err(mapping::classify_errors(&errors)),
            },
            Err(CallError::Call(e)) => Err(e),
        }
    }

    fn parse_skip(page: Option<&str>) -> Result<usize, ConnectorError> {
        match page {
            None => Ok(0),
            Some(p) => p
                .parse::<usize>()
                .map_err(|_| permanent(format!("unreadable page token {:?}", truncate(p, 40)))),
        }
    }
}

/// Refuses a second entry for the same SKU in one batch.
fn duplicate() -> ItemOutcome {
    ItemOutcome::Retry {
        error: "the same SKU came twice in one batch; only the first was sent".into(),
    }
}

#[async_trait]
impl Connector for VendureConnector {
    fn kind(&self) -> &'static str {
        "vendure"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_stock_batch: self.batch_cap(MAX_STOCK_BATCH),
            max_listing_batch: self.batch_cap(MAX_LISTING_BATCH),
            stock_carries_price: true,
            has_orders: true,
            max_bulk_batch: 0,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_stock(&self, items: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        if items.len() > MAX_STOCK_BATCH {
            return Err(permanent(format!(
                "the Vendure connector takes at most {MAX_STOCK_BATCH} items per stock batch, got {}",
                items.len()
            )));
        }
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let mut seen = HashSet::new();
        let mut skus = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if seen.insert(item.sku.as_str()) {
                skus.push(item.sku.as_str());
            } else {
                outcomes[i] = Some(duplicate());
            }
        }
        let variants = self.lookup(&skus).await?;
        let mut inputs = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            let Some(v) = variants.get(item.sku.as_str()) else {
                outcomes[i] = Some(ItemOutcome::NotListed {
                    error: format!("no Vendure variant has SKU {}", item.sku),
                });
                continue;
            };
            if !v.enabled {
                outcomes[i] = Some(ItemOutcome::NotListed {
                    error: format!("Vendure variant {} is disabled", v.id),
                });
                continue;
            }
            let mut input = self.stock_input(&v.id, item.quantity, Some(v));
            if let Some(price) = &item.price {
                match v.currency_code.as_deref() {
                    Some(c) if !c.eq_ignore_ascii_case(price.currency.as_str()) => {
                        outcomes[i] = Some(ItemOutcome::Rejected {
                            code: None,
                            error: format!(
                                "price in {} but the Vendure variant is priced in {}",
                                price.currency,
                                truncate(c, 10)
                            ),
                        });
                        continue;
                    }
                    _ => {
                        input.insert("price".into(), json!(price.minor));
                    }
                }
            }
            inputs.push((i, Value::Object(input)));
        }
        self.update_variants(inputs, &mut outcomes).await?;
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
        if items.len() > MAX_LISTING_BATCH {
            return Err(permanent(format!(
                "the Vendure connector takes at most {MAX_LISTING_BATCH} listings per call, got {}",
                items.len()
            )));
        }
        let currency = self.channel_currency().await?;
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let mut seen = HashSet::new();
        let mut skus = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if item.price.currency != currency {
                outcomes[i] = Some(ItemOutcome::Rejected {
                    code: None,
                    error: format!(
                        "price in {} but the Vendure channel's currency is {currency}",
                        item.price.currency
                    ),
                });
            } else if !seen.insert(item.sku.as_str()) {
                outcomes[i] = Some(duplicate());
            } else {
                skus.push(item.sku.as_str());
            }
        }
        let variants = self.lookup(&skus).await?;
        let mut updates = Vec::new();
        let mut creates = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if outcomes[i].is_some() {
                continue;
            }
            match variants.get(item.sku.as_str()) {
                Some(v) => {
                    let mut input = self.stock_input(&v.id, item.quantity, Some(v));
                    input.insert("enabled".into(), json!(true));
                    input.insert("price".into(), json!(item.price.minor));
                    if !item.title.trim().is_empty() {
                        input.insert(
                            "translations".into(),
                            json!([{"languageCode": LANGUAGE, "name": item.title}]),
                        );
                    }
                    updates.push((i, Value::Object(input)));
                }
                None => creates.push(i),
            }
        }
        self.update_variants(updates, &mut outcomes).await?;
        for i in creates {
            outcomes[i] = Some(self.create_listing(&items[i]).await?);
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

    #[tracing::instrument(level = "debug", skip_all, fields(items = skus.len()), err(level = "debug"))]
    async fn delist(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; skus.len()];
        for (chunk_no, chunk) in skus.chunks(MAX_STOCK_BATCH).enumerate() {
            let base = chunk_no * MAX_STOCK_BATCH;
            let names: Vec<&str> = chunk.iter().map(Sku::as_str).collect();
            let variants = self.lookup(&names).await?;
            let mut inputs = Vec::new();
            let mut seen = HashSet::new();
            for (j, sku) in chunk.iter().enumerate() {
                let i = base + j;
                match variants.get(sku.as_str()) {
                    None => outcomes[i] = Some(ItemOutcome::Applied { external_id: None }),
                    Some(v) if !v.enabled || !seen.insert(v.id.clone()) => {
                        outcomes[i] = Some(ItemOutcome::Applied {
                            external_id: Some(v.id.clone()),
                        });
                    }
                    Some(v) => inputs.push((i, json!({"id": v.id, "enabled": false}))),
                }
            }
            self.update_variants(inputs, &mut outcomes).await?;
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
        let skip = Self::parse_skip(page.as_deref())?;
        let data: mapping::OrdersData = self
            .client
            .call_whole(
                OP_ADMIN,
                "OmnistockOrders",
                mapping::ORDERS,
                json!({"options": mapping::orders_options(
                    &mapping::orders_after(since_ms, ORDER_OVERLAP_SECS),
                    skip,
                    MAX_PAGE,
                )}),
                true,
            )
            .await?;
        let list = data.orders;
        let n = list.items.len();
        let mut orders = Vec::with_capacity(n);
        for o in &list.items {
            let mapped = mapping::channel_order(o).map_err(|message| {
                self.client.note_error();
                ConnectorError::Malformed {
                    status: None,
                    message,
                }
            })?;
            if mapped.custom_state {
                self.counters
                    .custom_order_states
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(order = %o.code, state = %truncate(&o.state, 60), "Vendure order in a custom state; treated as paid.");
            }
            if mapped.lines_without_sku > 0 {
                self.counters
                    .order_lines_without_sku
                    .fetch_add(mapped.lines_without_sku, Ordering::Relaxed);
            }
            match mapped.order {
                Some(order) => orders.push(order),
                None => {
                    self.counters.carts_skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let next = skip + n;
        let next_page = (n > 0 && (next as u64) < list.total_items).then(|| next.to_string());
        Ok(OrdersPage { orders, next_page })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(page = page.as_deref()), err(level = "debug"))]
    async fn snapshot_page(&self, page: Option<String>) -> Result<SnapshotPage, ConnectorError> {
        let skip = Self::parse_skip(page.as_deref())?;
        let data: mapping::VariantsData = self
            .client
            .call_whole(
                OP_ADMIN,
                "OmnistockVariantsPage",
                mapping::VARIANTS_PAGE,
                json!({"options": mapping::variants_page_options(skip, MAX_PAGE)}),
                true,
            )
            .await?;
        let list = data.product_variants;
        let n = list.items.len();
        let mut seen = HashSet::new();
        let items = list
            .items
            .iter()
            .filter_map(|v| {
                let sku = Sku::parse(v.sku.as_str()).ok()?;
                if !seen.insert(sku.clone()) {
                    self.counters.duplicate_skus.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                Some(RemoteItem {
                    external_id: Some(v.id.clone()),
                    quantity: Some(if v.enabled {
                        v.saleable(self.location())
                    } else {
                        0
                    }),
                    price: v.money(),
                    sku,
                })
            })
            .collect();
        let next = skip + n;
        let next_page = (n > 0 && (next as u64) < list.total_items).then(|| next.to_string());
        Ok(SnapshotPage { items, next_page })
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn healthcheck(&self) -> Result<Health, ConnectorError> {
        let started = tokio::time::Instant::now();
        self.client.session().await?;
        let data: mapping::HealthData = self
            .client
            .call_whole(
                OP_ADMIN,
                "OmnistockHealth",
                mapping::HEALTH,
                json!({}),
                true,
            )
            .await?;
        Ok(Health {
            summary: format!(
                "login ok, channel {} ({}), {} variants",
                truncate(&data.active_channel.code, 60),
                truncate(&data.active_channel.default_currency_code, 10),
                data.product_variants.total_items
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
            token_refreshes: self.client.session_stats().refreshes,
            ..ConnectorStats::default()
        }
        .with_budgets(self.client.budget.snapshot());
        let e = &self.counters;
        for (name, value) in [
            ("duplicate_skus", &e.duplicate_skus),
            ("order_lines_without_sku", &e.order_lines_without_sku),
            ("custom_order_states", &e.custom_order_states),
            ("carts_skipped", &e.carts_skipped),
            ("products_created", &e.products_created),
            ("split_batches", &e.split_batches),
        ] {
            stats.extra.insert(name, value.load(Ordering::Relaxed));
        }
        stats
    }
}
