//! The Shopify fake: the Admin GraphQL API and the client-credentials token endpoint, mounted at
//! `/shopify` with the real paths below it (connector endpoint `{base}/shopify`):
//!
//! - `POST /shopify/admin/api/{version}/graphql.json` — body `{"query","variables"?,"operationName"?}`,
//!   header `X-Shopify-Access-Token`;
//! - `POST /shopify/admin/oauth/access_token` — form (or JSON) `grant_type=client_credentials&client_id&client_secret`
//!   → `{"access_token","scope","expires_in"}`.
//!
//! Faithful to contracts/README.md §4 and the 2025-01 introspection schema, with the 2026-04
//! changes of §4.4. What is modelled, and where it comes from:
//!
//! | behaviour | value | source |
//! |---|---|---|
//! | cost bucket (leaky) | [`DEFAULT_BUCKET_SIZE`] 2000 points, [`DEFAULT_RESTORE_RATE`] 100/s (Standard plan), configurable | §4.2 |
//! | requested cost | objects 1, connections `2 + first × node`, mutations 10; refund to the actual cost | §4.2 |
//! | single query max cost | [`MAX_QUERY_COST`] 1000 → `MAX_COST_EXCEEDED` | §4.2 |
//! | throttled | `errors[0].extensions.code = "THROTTLED"` + `extensions.cost`, HTTP [`ShopifyOptions::throttle_status`] (200 or 429) | §4.2 |
//! | page size / input arrays | ≤ 250 | §4.2 |
//! | `inventorySetQuantities` (version ≥ 2026-04) | `changeFromQuantity` in every entry (explicit `null` opts out), mismatch → `CHANGE_FROM_QUANTITY_STALE`; `@idempotent(key:)` mandatory, a replayed key answers the first result without applying again | §4.4 |
//! | all-or-nothing mutations | `productSet`, `inventorySetQuantities`: any userError → nothing applied | Shopify docs |
//! | access tokens | static token or client-credentials tokens living [`ShopifyOptions::access_token_ttl`] (24 h); anything else → 401 | §4.1 |
//! | webhooks | `orders/create`, `orders/cancelled` with `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the body), topic, shop domain, webhook id, event id, API version, triggered-at | §4.6 |
//!
//! Operation names (request counts, fault targets): the first root field of the document
//! (`productVariants`, `productSet`, `inventorySetQuantities`, `inventoryActivate`, `productUpdate`,
//! `productDelete`, `orders`, `shop`, `location`, `nodes`, `product`, `inventoryItem` …; `graphql`
//! when unknown or unparseable) and `token` for the token endpoint. `reject_skus` faults apply to
//! `productSet` (userError on the variant's `sku`, code `INVALID_VARIANT`), `inventorySetQuantities`
//! (code `NON_MUTABLE_INVENTORY_ITEM`) and `productUpdate`.
//!
//! Not modelled: multiple locations beyond the configured one, committed/reserved stock, refunds
//! and fulfillments through the API, `bulkOperationRunQuery`, product media.
//!
//! Control (Rust: [`ShopifyHandle`]; HTTP: `/_control/shopify/...`, routes in `control`).

mod control;
mod exec;
pub mod graphql;
mod state;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Shared;
use crate::faults::{FaultKind, FaultsHandle};
use crate::gate::{ConnKill, GateCtx, Market, Operation};
use crate::record::{Money, RequestRecord, WriteRecord};
use crate::webhook::{WebhookCounts, WebhookTarget, Webhooks, sign_base64};

pub use crate::ebay::{ControlError, OrderLine};
pub use exec::{MAX_INPUT_ARRAY, MAX_PAGE, requested_cost};

use state::{InventoryItem, LineItem, Order, Product, ShopState, Variant, gid, parse_gid};

/// Marketplace name in fault rules and records; also the mount prefix.
pub const MARKETPLACE: &str = "shopify";
/// Default bucket size (`maximumAvailable`).
pub const DEFAULT_BUCKET_SIZE: f64 = 2000.0;
/// Default restore rate (points per second, Standard plan).
pub const DEFAULT_RESTORE_RATE: f64 = 100.0;
/// Largest requested cost of one query.
pub const MAX_QUERY_COST: u64 = 1000;
/// Default location id (`gid://shopify/Location/…`).
pub const DEFAULT_LOCATION_ID: u64 = 76_543_210;
/// Default lifetime of a client-credentials token (Shopify: about 24 h).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(86_399);
/// The access-token header.
pub const ACCESS_TOKEN_HEADER: &str = "X-Shopify-Access-Token";
/// Operation name of the token endpoint.
pub const OP_TOKEN: &str = "token";
/// Scopes granted to client-credentials tokens.
pub const SCOPES: &str = "read_products,write_products,read_inventory,write_inventory,read_orders";

/// Root fields the fake knows, as `'static` operation names for records and faults.
const OPERATIONS: [&str; 15] = [
    "shop",
    "location",
    "product",
    "productVariant",
    "inventoryItem",
    "order",
    "nodes",
    "productVariants",
    "orders",
    "productSet",
    "inventorySetQuantities",
    "inventoryActivate",
    "productUpdate",
    "productDelete",
    "graphql",
];

/// The app's credentials and the static token. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopifyCredentials {
    /// A static Admin API token (`shpat_…`, legacy custom apps).
    pub access_token: String,
    /// Dev Dashboard app client id (client-credentials grant).
    pub client_id: String,
    /// Its client secret (also what real Shopify signs webhooks with).
    pub client_secret: String,
    /// The location whose quantities the connector sets (`gid://shopify/Location/…`).
    pub location_id: String,
    /// `{shop}.myshopify.com`.
    pub shop_domain: String,
    /// The API version the fake was started for (any `YYYY-MM` is served).
    pub api_version: String,
}

impl fmt::Debug for ShopifyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShopifyCredentials")
            .field("access_token", &"***")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("location_id", &self.location_id)
            .field("shop_domain", &self.shop_domain)
            .finish()
    }
}

/// A product with one variant that exists before the test starts: ACTIVE, tracked, stocked at
/// the configured location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifySeedListing {
    /// The variant's SKU.
    pub sku: String,
    /// Available at the configured location.
    pub quantity: u32,
    /// Price, a decimal string with at most two decimals.
    pub price: String,
    /// Product title; empty = `Sandbox item <sku>`.
    #[serde(default)]
    pub title: String,
    /// False = the inventory item is not stocked at the location (ITEM_NOT_STOCKED_AT_LOCATION).
    #[serde(default = "yes")]
    pub stocked: bool,
}

fn yes() -> bool {
    true
}

impl ShopifySeedListing {
    /// `quantity` units of `sku` at `price`.
    pub fn new(sku: impl Into<String>, quantity: u32, price: &str) -> Self {
        ShopifySeedListing {
            sku: sku.into(),
            quantity,
            price: price.to_owned(),
            title: String::new(),
            stocked: true,
        }
    }
}

/// How to start the Shopify fake.
#[derive(Debug, Clone)]
pub struct ShopifyOptions {
    /// Static token and client-credentials app.
    pub credentials: ShopifyCredentials,
    /// Numeric id of the shop's location.
    pub location_id: u64,
    /// Shop currency.
    pub currency: String,
    /// `maximumAvailable` of the cost bucket.
    pub bucket_size: f64,
    /// `restoreRate` (points per second).
    pub restore_rate: f64,
    /// HTTP status of a THROTTLED answer: 200 (what GraphQL clients often see) or 429.
    pub throttle_status: u16,
    /// Lifetime of client-credentials tokens.
    pub access_token_ttl: Duration,
    /// Listings present at start.
    pub listings: Vec<ShopifySeedListing>,
}

impl Default for ShopifyOptions {
    fn default() -> Self {
        ShopifyOptions {
            credentials: ShopifyCredentials {
                access_token: "shpat_sandboxstatictoken0000000000".into(),
                client_id: "sandbox-client-id".into(),
                client_secret: "shpss_sandboxclientsecret".into(),
                location_id: gid("Location", DEFAULT_LOCATION_ID),
                shop_domain: "omnistock-sandbox.myshopify.com".into(),
                api_version: "2026-07".into(),
            },
            location_id: DEFAULT_LOCATION_ID,
            currency: "USD".into(),
            bucket_size: DEFAULT_BUCKET_SIZE,
            restore_rate: DEFAULT_RESTORE_RATE,
            throttle_status: 200,
            access_token_ttl: DEFAULT_TOKEN_TTL,
            listings: Vec::new(),
        }
    }
}

impl ShopifyOptions {
    /// A bucket no test can empty.
    pub fn unlimited() -> Self {
        ShopifyOptions {
            bucket_size: 1e12,
            restore_rate: 1e12,
            ..ShopifyOptions::default()
        }
    }
}

/// The cost bucket's state as `extensions.cost.throttleStatus` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    /// Bucket size.
    pub maximum_available: f64,
    /// Points available now.
    pub currently_available: f64,
    /// Points restored per second.
    pub restore_rate: f64,
}

#[derive(Debug)]
struct Bucket {
    max: f64,
    available: f64,
    restore: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self) {
        let now = Instant::now();
        let secs = now.duration_since(self.at).as_secs_f64();
        self.available = (self.available + secs * self.restore).min(self.max);
        self.at = now;
    }

    fn status(&self) -> ThrottleStatus {
        ThrottleStatus {
            maximum_available: self.max,
            currently_available: self.available.floor(),
            restore_rate: self.restore,
        }
    }
}

/// A variant as a buyer and the merchant see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopifyListingSnapshot {
    /// The SKU.
    pub sku: String,
    /// `gid://shopify/Product/…`.
    pub product_id: String,
    /// `gid://shopify/ProductVariant/…`.
    pub variant_id: String,
    /// `gid://shopify/InventoryItem/…`.
    pub inventory_item_id: String,
    /// Product title.
    pub title: String,
    /// ACTIVE, DRAFT or ARCHIVED.
    pub status: String,
    /// Available at the configured location (`None` = not stocked there).
    pub available: Option<i64>,
    /// Price.
    pub price: Money,
    /// Variant option values.
    pub options: Vec<(String, String)>,
    /// Variants of the product.
    pub product_variants: usize,
}

/// The fake's shared core.
pub(crate) struct Shopify {
    shared: Arc<Shared>,
    state: Mutex<ShopState>,
    bucket: Mutex<Bucket>,
    throttle_status: Mutex<u16>,
    credentials: ShopifyCredentials,
    location_id: u64,
    token_ttl: Duration,
    webhooks: Webhooks,
}

impl fmt::Debug for Shopify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shopify")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Inspection and control of the Shopify fake.
#[derive(Debug, Clone)]
pub struct ShopifyHandle {
    inner: Arc<Shopify>,
}

static MARKET: Market = Market {
    name: MARKETPLACE,
    classify,
    system_error_body,
    throttled_body: || {
        r#"{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}"#.to_owned()
    },
};

fn system_error_body(status: StatusCode) -> String {
    json!({"errors": [{"message": format!("Internal error ({})", status.as_u16()),
                       "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]})
    .to_string()
}

/// Only the token endpoint goes through the shared gate; GraphQL requests are gated in
/// [`graphql`] once the body names the operation.
fn classify(m: &Method, path: &str) -> Option<Operation> {
    let path = path.strip_prefix("/shopify").unwrap_or(path);
    (m == Method::POST && path == "/admin/oauth/access_token").then_some(Operation {
        name: OP_TOKEN,
        group: OP_TOKEN,
        readonly: false,
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// True for `YYYY-MM` with a quarterly month, or `unstable`.
fn valid_version(v: &str) -> bool {
    v == "unstable"
        || (v.len() == 7
            && v[..4].bytes().all(|b| b.is_ascii_digit())
            && matches!(&v[4..], "-01" | "-04" | "-07" | "-10"))
}

impl ShopifyHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: ShopifyOptions) -> anyhow::Result<ShopifyHandle> {
        if !(opts.bucket_size > 0.0 && opts.restore_rate > 0.0) {
            anyhow::bail!("the Shopify cost bucket needs a positive size and restore rate");
        }
        if !matches!(opts.throttle_status, 200 | 429) {
            anyhow::bail!("throttle_status must be 200 or 429");
        }
        let mut credentials = opts.credentials;
        credentials.location_id = gid("Location", opts.location_id);
        let state = ShopState::new(&opts.currency, &credentials.shop_domain, opts.location_id);
        let handle = ShopifyHandle {
            inner: Arc::new(Shopify {
                shared,
                state: Mutex::new(state),
                bucket: Mutex::new(Bucket {
                    max: opts.bucket_size,
                    available: opts.bucket_size,
                    restore: opts.restore_rate,
                    at: Instant::now(),
                }),
                throttle_status: Mutex::new(opts.throttle_status),
                credentials,
                location_id: opts.location_id,
                token_ttl: opts.access_token_ttl,
                webhooks: Webhooks::default(),
            }),
        };
        for seed in opts.listings {
            let sku = seed.sku.clone();
            handle
                .seed_listing(seed)
                .map_err(|e| anyhow::anyhow!("seeding Shopify listing {sku:?}: {e}"))?;
        }
        Ok(handle)
    }

    /// The `/shopify` router.
    pub(crate) fn router(&self) -> Router {
        let gate = GateCtx {
            shared: self.inner.shared.clone(),
            market: &MARKET,
        };
        let token = Router::new()
            .route("/admin/oauth/access_token", post(token))
            .route_layer(axum::middleware::from_fn_with_state(
                gate,
                crate::gate::gate,
            ))
            .with_state(self.inner.clone());
        Router::new()
            .route("/admin/api/{version}/graphql.json", post(graphql))
            .with_state(self.inner.clone())
            .merge(token)
    }

    /// The `/_control/shopify` router.
    pub(crate) fn control_router(&self) -> Router {
        control::router(self.clone())
    }

    // ---- identity -------------------------------------------------------------------------------

    /// What a connector config needs (endpoint = `{base}/shopify`).
    pub fn credentials(&self) -> ShopifyCredentials {
        self.inner.credentials.clone()
    }

    /// `gid://shopify/Location/…` of the shop's location.
    pub fn location_id(&self) -> String {
        gid("Location", self.inner.location_id)
    }

    // ---- seeding and drift ----------------------------------------------------------------------

    /// Creates (or replaces the stock and price of) a one-variant ACTIVE product, as state that
    /// existed before the test: not logged as a write.
    pub fn seed_listing(&self, seed: ShopifySeedListing) -> Result<(), ControlError> {
        if seed.sku.trim().is_empty()
            || seed.sku.chars().count() > 255
            || seed.sku.chars().any(char::is_control)
        {
            return Err(ControlError::Invalid(format!("invalid SKU {:?}", seed.sku)));
        }
        let Some(price) = state::cents(&seed.price) else {
            return Err(ControlError::Invalid(format!(
                "invalid price {:?}",
                seed.price
            )));
        };
        let loc = self.inner.location_id;
        let now = self.inner.shared.clock.now();
        let mut st = lock(&self.inner.state);
        if let Some(v) = st.variant_by_sku(&seed.sku).cloned() {
            if let Some(var) = st.variants.get_mut(&v.id) {
                var.price = price;
            }
            if seed.stocked {
                st.set_available(v.inventory_item_id, loc, i64::from(seed.quantity), now);
            } else if let Some(item) = st.items.get_mut(&v.inventory_item_id) {
                item.levels.remove(&loc);
            }
            return Ok(());
        }
        let (pid, vid, iid) = (st.id(), st.id(), st.id());
        let title = if seed.title.trim().is_empty() {
            format!("Sandbox item {}", seed.sku)
        } else {
            seed.title.clone()
        };
        st.products.insert(
            pid,
            Product {
                id: pid,
                title,
                description_html: String::new(),
                vendor: "Sandbox".into(),
                status: "ACTIVE".into(),
                options: vec![("Title".into(), vec!["Default Title".into()])],
                variant_ids: vec![vid],
                created: now,
                updated: now,
            },
        );
        st.variants.insert(
            vid,
            Variant {
                id: vid,
                product_id: pid,
                sku: seed.sku.clone(),
                price,
                barcode: None,
                options: Vec::new(),
                inventory_item_id: iid,
                created: now,
                updated: now,
            },
        );
        let mut levels = std::collections::BTreeMap::new();
        if seed.stocked {
            levels.insert(loc, i64::from(seed.quantity));
        }
        st.items.insert(
            iid,
            InventoryItem {
                id: iid,
                variant_id: vid,
                tracked: true,
                levels,
                updated: now,
            },
        );
        Ok(())
    }

    /// Changes a SKU's available quantity as the merchant would in the admin (not a write).
    pub fn set_quantity_out_of_band(&self, sku: &str, quantity: u32) -> Result<(), ControlError> {
        let now = self.inner.shared.clock.now();
        let loc = self.inner.location_id;
        let mut st = lock(&self.inner.state);
        let v = st
            .variant_by_sku(sku)
            .cloned()
            .ok_or_else(|| ControlError::UnknownSku(sku.to_owned()))?;
        st.set_available(v.inventory_item_id, loc, i64::from(quantity), now);
        Ok(())
    }

    /// Removes the SKU's inventory level at the location (the item is no longer stocked there).
    pub fn unstock_out_of_band(&self, sku: &str) -> Result<(), ControlError> {
        let loc = self.inner.location_id;
        let mut st = lock(&self.inner.state);
        let v = st
            .variant_by_sku(sku)
            .cloned()
            .ok_or_else(|| ControlError::UnknownSku(sku.to_owned()))?;
        if let Some(item) = st.items.get_mut(&v.inventory_item_id) {
            item.levels.remove(&loc);
        }
        Ok(())
    }

    // ---- inspection -----------------------------------------------------------------------------

    /// What buyers see: available at the location (negative shown as 0) while the product is
    /// ACTIVE, 0 while it is DRAFT or ARCHIVED (delisted), `None` for an unknown SKU or an item
    /// not stocked at the location.
    pub fn current_quantity(&self, sku: &str) -> Option<u32> {
        let st = lock(&self.inner.state);
        let v = st.variant_by_sku(sku)?;
        let q = st.available(sku, self.inner.location_id)?;
        let active = st
            .products
            .get(&v.product_id)
            .is_some_and(|p| p.status == "ACTIVE");
        Some(if active {
            u32::try_from(q.max(0)).unwrap_or(u32::MAX)
        } else {
            0
        })
    }

    /// The variant's price.
    pub fn current_price(&self, sku: &str) -> Option<Money> {
        lock(&self.inner.state).price_of(sku)
    }

    /// Everything about one SKU.
    pub fn listing(&self, sku: &str) -> Option<ShopifyListingSnapshot> {
        let st = lock(&self.inner.state);
        let v = st.variant_by_sku(sku)?;
        let p = st.products.get(&v.product_id)?;
        Some(ShopifyListingSnapshot {
            sku: v.sku.clone(),
            product_id: gid("Product", p.id),
            variant_id: gid("ProductVariant", v.id),
            inventory_item_id: gid("InventoryItem", v.inventory_item_id),
            title: p.title.clone(),
            status: p.status.clone(),
            available: st.available(sku, self.inner.location_id),
            price: Money::new(state::price_text(v.price), st.currency.clone()),
            options: v.options.clone(),
            product_variants: p.variant_ids.len(),
        })
    }

    /// Every SKU, sorted.
    pub fn skus(&self) -> Vec<String> {
        let st = lock(&self.inner.state);
        let mut out: Vec<String> = st
            .variants
            .values()
            .filter(|v| !v.sku.is_empty())
            .map(|v| v.sku.clone())
            .collect();
        out.sort();
        out
    }

    // ---- orders ---------------------------------------------------------------------------------

    /// A buyer checks out these lines (PAID, UNFULFILLED); lowers the available quantity; refused
    /// for unknown SKUs, products that are not ACTIVE, and when short. Sends `orders/create`.
    /// Returns the order's GID.
    pub fn place_order(&self, lines: &[OrderLine]) -> Result<String, ControlError> {
        if lines.is_empty() || lines.iter().any(|l| l.quantity == 0) {
            return Err(ControlError::Invalid(
                "an order needs lines with quantities".into(),
            ));
        }
        let loc = self.inner.location_id;
        let now = self.inner.shared.clock.now();
        let mut st = lock(&self.inner.state);
        let mut wanted: HashMap<&str, u32> = HashMap::new();
        for l in lines {
            *wanted.entry(l.sku.as_str()).or_default() += l.quantity;
        }
        for (sku, q) in &wanted {
            let v = st
                .variant_by_sku(sku)
                .ok_or_else(|| ControlError::UnknownSku((*sku).to_owned()))?;
            if st
                .products
                .get(&v.product_id)
                .is_none_or(|p| p.status != "ACTIVE")
            {
                return Err(ControlError::NotListed((*sku).to_owned()));
            }
            let available = st.available(sku, loc).unwrap_or(0);
            if available < i64::from(*q) && !st.allow_oversell {
                return Err(ControlError::InsufficientQuantity {
                    sku: (*sku).to_owned(),
                    available: u32::try_from(available.max(0)).unwrap_or(0),
                    requested: *q,
                });
            }
        }
        let id = st.id();
        let number = st.next_order_number;
        st.next_order_number += 1;
        let mut order_lines = Vec::new();
        for l in lines {
            let v = st.variant_by_sku(&l.sku).cloned().expect("checked above");
            let title = st
                .products
                .get(&v.product_id)
                .map(|p| p.title.clone())
                .unwrap_or_default();
            let available = st.available(&l.sku, loc).unwrap_or(0);
            st.set_available(
                v.inventory_item_id,
                loc,
                available - i64::from(l.quantity),
                now,
            );
            let line_id = st.id();
            order_lines.push(LineItem {
                id: line_id,
                sku: l.sku.clone(),
                variant_id: v.id,
                product_id: v.product_id,
                title,
                quantity: l.quantity,
                current_quantity: l.quantity,
                price: v.price,
            });
        }
        let order = Order {
            id,
            number,
            created: now,
            updated: now,
            cancelled: None,
            financial: "PAID",
            fulfillment: "UNFULFILLED",
            lines: order_lines,
        };
        let body = st.order_rest_json(&order);
        st.orders.insert(id, order);
        drop(st);
        self.send_webhook("orders/create", &body);
        Ok(gid("Order", id))
    }

    /// With `true`, checkouts are no longer refused when fewer units are available than ordered:
    /// the order is created and `available` goes below 0, as with Shopify's "continue selling
    /// when out of stock" (the shown quantity stays 0). This is the marketplace that sold units
    /// before the seller's lower quantity reached it; the seller must find the oversell when it
    /// ingests the orders. Off by default; the same knob exists on the eBay and WooCommerce fakes.
    pub fn set_allow_oversell(&self, allow: bool) {
        lock(&self.inner.state).allow_oversell = allow;
    }

    fn order_id(id: &str) -> Option<u64> {
        parse_gid("Order", id).or_else(|| id.parse().ok())
    }

    /// The merchant cancels an unfulfilled order with a refund and restock: `cancelledAt` set,
    /// REFUNDED, current quantities 0, units back at the location. Sends `orders/cancelled`.
    pub fn cancel_order(&self, id: &str) -> Result<(), ControlError> {
        let loc = self.inner.location_id;
        let now = self.inner.shared.clock.now();
        let mut st = lock(&self.inner.state);
        let oid = Self::order_id(id)
            .filter(|n| st.orders.contains_key(n))
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        let o = st.orders[&oid].clone();
        if o.cancelled.is_some() || o.fulfillment != "UNFULFILLED" {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: if o.cancelled.is_some() {
                    "cancelled".into()
                } else {
                    o.fulfillment.to_ascii_lowercase()
                },
                action: "cancel",
            });
        }
        for l in &o.lines {
            if let Some(v) = st.variants.get(&l.variant_id).cloned()
                && let Some(q) = st
                    .items
                    .get(&v.inventory_item_id)
                    .and_then(|i| i.levels.get(&loc))
                    .copied()
            {
                st.set_available(
                    v.inventory_item_id,
                    loc,
                    q + i64::from(l.current_quantity),
                    now,
                );
            }
        }
        let order = st.orders.get_mut(&oid).expect("order");
        order.cancelled = Some(now);
        order.updated = now;
        order.financial = "REFUNDED";
        for l in &mut order.lines {
            l.current_quantity = 0;
        }
        let order = order.clone();
        let body = st.order_rest_json(&order);
        drop(st);
        self.send_webhook("orders/cancelled", &body);
        Ok(())
    }

    /// The merchant fulfils an order: FULFILLED. Sends `orders/updated`.
    pub fn fulfill_order(&self, id: &str) -> Result<(), ControlError> {
        let now = self.inner.shared.clock.now();
        let mut st = lock(&self.inner.state);
        let oid = Self::order_id(id)
            .filter(|n| st.orders.contains_key(n))
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        let order = st.orders.get_mut(&oid).expect("order");
        if order.cancelled.is_some() {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: "cancelled".into(),
                action: "fulfill",
            });
        }
        order.fulfillment = "FULFILLED";
        order.updated = now;
        let order = order.clone();
        let body = st.order_rest_json(&order);
        drop(st);
        self.send_webhook("orders/updated", &body);
        Ok(())
    }

    /// An order as the GraphQL `order` field renders it (line items under `_lineItems`).
    pub fn order(&self, id: &str) -> Option<Value> {
        let st = lock(&self.inner.state);
        let o = st.orders.get(&Self::order_id(id)?)?;
        Some(st.order_json(o))
    }

    /// Every order's GID, oldest first.
    pub fn order_ids(&self) -> Vec<String> {
        lock(&self.inner.state)
            .orders
            .keys()
            .map(|id| gid("Order", *id))
            .collect()
    }

    fn send_webhook(&self, topic: &str, body: &Value) {
        let bytes = body.to_string().into_bytes();
        let now = self.inner.shared.clock.now();
        let rng = &self.inner.shared.rng;
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Shopify-Topic".to_owned(), topic.to_owned()),
            (
                "X-Shopify-Shop-Domain".to_owned(),
                self.inner.credentials.shop_domain.clone(),
            ),
            (
                "X-Shopify-API-Version".to_owned(),
                self.inner.credentials.api_version.clone(),
            ),
            ("X-Shopify-Webhook-Id".to_owned(), uuid(rng)),
            ("X-Shopify-Event-Id".to_owned(), uuid(rng)),
            (
                "X-Shopify-Triggered-At".to_owned(),
                now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
        ];
        self.inner
            .webhooks
            .deliver(rng, headers, bytes, |secret, body| {
                vec![(
                    "X-Shopify-Hmac-Sha256".to_owned(),
                    sign_base64(secret, body),
                )]
            });
    }

    /// Where webhooks go (`None` = nowhere).
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        self.inner.webhooks.set_target(target);
    }

    /// What happened to webhook deliveries.
    pub fn webhook_counts(&self) -> WebhookCounts {
        self.inner.webhooks.counts()
    }

    // ---- records --------------------------------------------------------------------------------

    /// Every write applied to Shopify, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.inner.shared.recorder.writes(Some(MARKETPLACE))
    }

    /// Every Shopify request received, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.shared.recorder.requests(Some(MARKETPLACE))
    }

    /// Requests for one operation (root field name or `token`).
    pub fn request_count(&self, operation: &str) -> u64 {
        self.inner
            .shared
            .recorder
            .request_count(MARKETPLACE, operation)
    }

    /// Requests per operation.
    pub fn request_counts(&self) -> HashMap<String, u64> {
        self.inner.shared.recorder.request_counts(MARKETPLACE)
    }

    /// THROTTLED answers sent, whatever their HTTP status (cost bucket and fault rules).
    pub fn count_429(&self) -> u64 {
        self.inner.shared.recorder.count_429(MARKETPLACE)
    }

    /// THROTTLED answers sent by the cost bucket alone.
    pub fn throttled_count(&self) -> u64 {
        self.inner.shared.recorder.throttled(MARKETPLACE)
    }

    // ---- knobs ----------------------------------------------------------------------------------

    /// The cost bucket now.
    pub fn throttle_status(&self) -> ThrottleStatus {
        let mut b = lock(&self.inner.bucket);
        b.refill();
        b.status()
    }

    /// Replaces the bucket's size and restore rate; the bucket starts full.
    pub fn set_cost_limits(&self, bucket_size: f64, restore_rate: f64) -> Result<(), ControlError> {
        if !(bucket_size > 0.0
            && restore_rate > 0.0
            && bucket_size.is_finite()
            && restore_rate.is_finite())
        {
            return Err(ControlError::Invalid(
                "bucket size and restore rate must be positive".into(),
            ));
        }
        let mut b = lock(&self.inner.bucket);
        *b = Bucket {
            max: bucket_size,
            available: bucket_size,
            restore: restore_rate,
            at: Instant::now(),
        };
        Ok(())
    }

    /// Takes `points` out of the bucket now (another app of the same shop spending it).
    pub fn drain_bucket(&self, points: f64) {
        let mut b = lock(&self.inner.bucket);
        b.refill();
        b.available = (b.available - points.max(0.0)).max(0.0);
    }

    /// HTTP status of THROTTLED answers: 200 or 429.
    pub fn set_throttle_status(&self, status: u16) -> Result<(), ControlError> {
        if !matches!(status, 200 | 429) {
            return Err(ControlError::Invalid(
                "throttle status must be 200 or 429".into(),
            ));
        }
        *lock(&self.inner.throttle_status) = status;
        Ok(())
    }

    /// Expires every client-credentials token issued so far (calls then get 401).
    pub fn expire_access_tokens(&self) {
        let now = self.inner.shared.clock.now();
        for exp in lock(&self.inner.state).tokens.values_mut() {
            *exp = (*exp).min(now);
        }
    }

    /// The sandbox's fault rules (all marketplaces); Shopify targets are operation names above.
    pub fn faults(&self) -> FaultsHandle {
        FaultsHandle {
            faults: self.inner.shared.faults.clone(),
        }
    }
}

/// A random RFC 4122 version-4 UUID from the sandbox's PRNG.
fn uuid(rng: &crate::rng::Rng) -> String {
    let h = rng.hex(16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

// ---- HTTP -----------------------------------------------------------------------------------------

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// `POST /admin/oauth/access_token`: the client-credentials grant.
async fn token(State(shop): State<Arc<Shopify>>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    let fields: Option<HashMap<String, String>> = if is_json {
        serde_json::from_slice::<HashMap<String, Value>>(&body)
            .ok()
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                    .collect()
            })
    } else {
        serde_urlencoded::from_bytes(&body).ok()
    };
    let Some(fields) = fields else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body could not be read.",
        );
    };
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only client_credentials is supported for this app.",
        );
    }
    let c = &shop.credentials;
    if get("client_id") != c.client_id || get("client_secret") != c.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        );
    }
    let token = format!("shpat_{}", shop.shared.rng.hex(16));
    let ttl = shop.token_ttl;
    let expires = shop.shared.clock.now()
        + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::MAX);
    lock(&shop.state).tokens.insert(token.clone(), expires);
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "scope": SCOPES, "expires_in": ttl.as_secs()}),
    )
}

#[derive(Deserialize)]
struct GraphqlBody {
    query: String,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default, rename = "operationName")]
    _operation_name: Option<String>,
}

fn throttled_body(requested: u64, status: ThrottleStatus) -> Value {
    json!({
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
        "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": null,
                                "throttleStatus": status}},
    })
}

/// `POST /admin/api/{version}/graphql.json`.
async fn graphql(
    State(shop): State<Arc<Shopify>>,
    Path(version): Path<String>,
    req: Request,
) -> Response {
    let shared = shop.shared.clone();
    let network = shared.faults.latency();
    if !network.is_zero() {
        tokio::time::sleep(network).await;
    }
    if !valid_version(&version) {
        return json_response(StatusCode::NOT_FOUND, &json!({"errors": "Not Found"}));
    }
    let kill = req.extensions().get::<ConnKill>().cloned();
    let token = req
        .headers()
        .get(ACCESS_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            shared.recorder.request(MARKETPLACE, "graphql", None);
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"errors": "Request body too large"}),
            );
        }
    };
    let parsed: Result<GraphqlBody, _> = serde_json::from_slice(&bytes);
    let (op, doc) = match &parsed {
        Ok(b) => match graphql::parse(&b.query) {
            Ok(op) => {
                let name = op
                    .root_fields()
                    .first()
                    .and_then(|f| OPERATIONS.iter().find(|o| **o == f.name))
                    .copied()
                    .unwrap_or("graphql");
                (name, Ok(op))
            }
            Err(e) => ("graphql", Err(e)),
        },
        Err(_) => (
            "graphql",
            Err(graphql::ParseError {
                line: 1,
                message: String::new(),
            }),
        ),
    };
    let query_note = format!("version={version}");
    shared.recorder.request(MARKETPLACE, op, Some(&query_note));
    let path = format!("/admin/api/{version}/graphql.json");
    let plan = shared.faults.plan(MARKETPLACE, op, &path);
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let mut malformed = false;
    let mut after = None;
    match plan.action {
        Some(FaultKind::ServerError { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = body.unwrap_or_else(|| system_error_body(status));
            return (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response();
        }
        Some(FaultKind::TooManyRequests { retry_after_secs }) => {
            shared.recorder.too_many_requests(MARKETPLACE, false);
            let status = lock(&shop.bucket).status();
            let mut resp = json_response(StatusCode::TOO_MANY_REQUESTS, &throttled_body(0, status));
            if let Some(secs) = retry_after_secs {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return resp;
        }
        Some(FaultKind::Hang { after_processing }) => {
            if !after_processing {
                return std::future::pending().await;
            }
            after = Some(true);
        }
        Some(FaultKind::DropConnection { after_processing }) => {
            if !after_processing {
                if let Some(k) = &kill {
                    k.0.cancel();
                }
                return std::future::pending().await;
            }
            after = Some(false);
        }
        Some(FaultKind::MalformedBody) => malformed = true,
        Some(FaultKind::Echo { status }) => {
            return crate::gate::echo(status, &parts.method, &parts.uri, &parts.headers, &bytes);
        }
        Some(FaultKind::Latency { .. } | FaultKind::RejectSkus { .. }) | None => {}
    }
    let resp = answer(&shop, &version, token.as_deref(), parsed, doc);
    match after {
        Some(true) => return std::future::pending().await,
        Some(false) => {
            if let Some(k) = &kill {
                k.0.cancel();
            }
            return std::future::pending().await;
        }
        None => {}
    }
    if malformed {
        let (mut parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
            .await
            .unwrap_or_default();
        let cut = bytes.slice(..bytes.len() / 2);
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(cut));
    }
    resp
}

fn answer(
    shop: &Shopify,
    version: &str,
    token: Option<&str>,
    parsed: Result<GraphqlBody, serde_json::Error>,
    doc: Result<graphql::Operation, graphql::ParseError>,
) -> Response {
    let now = shop.shared.clock.now();
    let authorized = token.is_some_and(|t| {
        t == shop.credentials.access_token
            || lock(&shop.state)
                .tokens
                .get(t)
                .is_some_and(|exp| *exp > now)
    });
    if !authorized {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
        );
    }
    let Ok(body) = parsed else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"errors": {"query": "Required parameter missing or invalid"}}),
        );
    };
    let op = match doc {
        Ok(op) => op,
        Err(e) => {
            return json_response(
                StatusCode::OK,
                &json!({"errors": [{"message": e.to_string(),
                "locations": [{"line": e.line, "column": 1}], "extensions": {"code": "PARSE_ERROR"}}]}),
            );
        }
    };
    let vars = match body.variables {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"errors": {"variables": "must be an object"}}),
            );
        }
    };
    let requested = requested_cost(&op, &vars);
    let status = {
        let mut b = lock(&shop.bucket);
        b.refill();
        b.status()
    };
    if requested > MAX_QUERY_COST {
        return json_response(
            StatusCode::OK,
            &json!({
                "errors": [{"message": format!("Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST}). See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the cost of a query is calculated.")
                            , "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST}}],
                "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": null, "throttleStatus": status}},
            }),
        );
    }
    {
        let mut b = lock(&shop.bucket);
        b.refill();
        if b.available < requested as f64 {
            let status = b.status();
            drop(b);
            shop.shared.recorder.too_many_requests(MARKETPLACE, true);
            let code = StatusCode::from_u16(*lock(&shop.throttle_status)).unwrap_or(StatusCode::OK);
            return json_response(code, &throttled_body(requested, status));
        }
        b.available -= requested as f64;
    }
    let path = format!("/admin/api/{version}/graphql.json");
    let outcome = {
        let mut st = lock(&shop.state);
        exec::Exec {
            st: &mut st,
            vars: &vars,
            version,
            now,
            faults: &shop.shared.faults,
            recorder: &shop.shared.recorder,
            marketplace: MARKETPLACE,
            path: &path,
            actual: 0,
        }
        .run(&op)
    };
    let actual = outcome.actual_cost.min(requested);
    let status = {
        let mut b = lock(&shop.bucket);
        b.refill();
        b.available = (b.available + (requested - actual) as f64).min(b.max);
        b.status()
    };
    let mut body = json!({
        "data": outcome.data,
        "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                                "throttleStatus": status}},
    });
    if !outcome.errors.is_empty() {
        body["errors"] = Value::Array(outcome.errors);
    }
    json_response(StatusCode::OK, &body)
}
