//! The WooCommerce fake: the REST API v3 (`/wp-json/wc/v3/...`) of one WordPress shop, mounted at
//! `/woo` (connector `endpoint` = `{base_url}/woo`, the "site URL").
//!
//! Faithful to contracts/README.md §5 and the official docs (`specs/woocommerce/*.md`). Modelled,
//! and where it comes from:
//!
//! | behaviour | value | source |
//! |---|---|---|
//! | auth | HTTP Basic `consumer_key:consumer_secret`, or `?consumer_key=…&consumer_secret=…` | authentication.md ("Authentication over HTTPS") |
//! | no credentials | 401 `woocommerce_rest_cannot_view` (reads) / `woocommerce_rest_cannot_create` (writes) | WC REST controllers' permission checks |
//! | wrong key / secret | 401 `woocommerce_rest_authentication_error` "Consumer key is invalid." / "Consumer secret is invalid." | WC_REST_Authentication |
//! | batch size | ≤ [`MAX_BATCH_ITEMS`] (100) create+update+delete, else 413 `woocommerce_rest_request_entity_too_large` | products.md batch note; WC_REST_Controller::check_batch_limit |
//! | per-item errors | `{"id":…,"error":{"code","message","data":{"status"}}}` inside HTTP 200 | contracts §5 |
//! | duplicate SKU | per item `product_invalid_sku` "Invalid or duplicated SKU." | WC product data store |
//! | unknown id in an update | per item `woocommerce_rest_product_invalid_id` (variations: `…_variation_invalid_id`) "Invalid ID." | WC_REST_CRUD_Controller |
//! | `per_page` | 1..=[`MAX_PER_PAGE`] (100), default 10, else 400 `rest_invalid_param` | introduction.md "Pagination"; WP REST core |
//! | page past the end | 400 `rest_post_invalid_page_number` | WP REST core |
//! | paging headers | `X-WP-Total`, `X-WP-TotalPages`, `Link` (`rel="next"`, `"prev"`) | introduction.md |
//! | `sku` filter | a comma-separated list (and the whole string) | WC_REST_Products_V2_Controller::prepare_objects_query |
//! | orders `orderby` | `date`, `id`, `include`, `title`, `slug` (else 400) | orders.md "List all orders" parameters |
//! | `modified_after` | strictly after, second resolution; site time unless `dates_are_gmt=true` | orders.md; WP date_query |
//! | `status=any` | every status but `trash` | WP_Query `post_status=any` |
//! | unknown route below `/wp-json` | 404 `rest_no_route` | introduction.md "Errors" |
//! | malformed JSON body | 400 `rest_invalid_json` "Invalid JSON body passed." | WP REST core |
//!
//! WooCommerce documents no rate limit; hosts and WAFs impose their own. [`WooOptions::rate_limit`]
//! (off by default) models such a WAF: over the rate, **429 with `Retry-After` and an HTML body**
//! (what a proxy sends, not WordPress JSON). Other non-JSON answers a connector must survive: any
//! path outside `/wp-json` gets WordPress's HTML 404 page, an oversized body nginx's HTML 413.
//!
//! Rules worth knowing when writing a connector against it:
//! - Products and variations share one id sequence with orders (WordPress posts). Batch deletes
//!   are forced (WooCommerce's batch handler sets `force=true`): the post and its variations go.
//! - `stock_quantity` is honoured only with `manage_stock` true (in the same entry or already);
//!   otherwise ignored silently, as WooCommerce does. `stock_status` follows the quantity.
//! - `GET /products` lists products only, never variations (variations are another post type);
//!   variations are listed per parent at `/products/{id}/variations` (with a `sku` filter).
//! - SKUs are unique across products and variations.
//! - A `reject_skus` fault refuses the SKU in `batchProducts` / `batchVariations` entries with
//!   code [`ERR_REJECTED`], the rule's message, `data.status` = its status and `data.error_id`.
//! - Dates: `date_*_gmt` are UTC, `date_*` site time (UTC−3); both `YYYY-MM-DDTHH:MM:SS`.
//! - Orders come from the control API only ([`WooHandle::place_order`]): paid (`processing`),
//!   stock reduced; cancelling (or `refunded`/`failed`) restores it once. Each change moves
//!   `date_modified` forward by at least a second.
//! - Webhooks ([`WooHandle::set_webhook`]): `order.created` on a sale, `order.updated` on every
//!   status change, body = the order JSON, headers `X-WC-Webhook-{Signature,Topic,Resource,Event,ID,
//!   Delivery-ID,Source}`; the signature is base64(HMAC-SHA256(secret, body)).
//!
//! Not modelled: grouped/external products, sale prices and schedules, categories/tags writes,
//! `PUT /products/{id}` single updates, refunds objects, coupons, taxes, OAuth 1.0a over plain HTTP.
//!
//! Operation names (fault targets, request counts): `listProducts`, `getProduct`,
//! `batchProducts`, `listVariations`, `batchVariations`, `listOrders`, `getOrder`,
//! `getCurrentCurrency`. Control: [`WooHandle`]; over HTTP `/_control/woo/...` (see `control`).

mod api;
mod control;
mod state;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::faults::{FaultId, FaultKind, FaultRule, FaultsHandle};
use crate::gate::{GateCtx, Market, Operation};
use crate::ratelimit::RateLimit;
use crate::record::{Money, RequestRecord, WriteRecord};
use crate::webhook::{WebhookCounts, WebhookTarget, Webhooks};

pub use crate::ebay::{ControlError, OrderLine};

/// Marketplace name in fault rules and records; also the mount prefix.
pub const MARKETPLACE: &str = "woo";
/// Most create+update+delete entries in one batch request.
pub const MAX_BATCH_ITEMS: usize = 100;
/// Largest `per_page`.
pub const MAX_PER_PAGE: usize = 100;
/// `per_page` when absent.
pub const DEFAULT_PER_PAGE: usize = 10;
/// The shop's currency unless set.
pub const DEFAULT_CURRENCY: &str = "USD";
/// Rate-limit group of the WAF model (every API request).
pub const GROUP_WAF: &str = "waf";
/// Code of a per-item error made by a `reject_skus` fault (a sandbox choice; WooCommerce codes
/// are strings, the fault's numeric `error_id` travels in `data.error_id`).
pub const ERR_REJECTED: &str = "woocommerce_rest_sku_rejected";
/// API root below the mount.
pub const API_ROOT: &str = "/wp-json/wc/v3";

/// A WooCommerce / WordPress REST error: `{"code","message","data":{"status",…}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WooError {
    /// HTTP status (also `data.status`).
    pub status: u16,
    /// Machine code, e.g. `woocommerce_rest_cannot_view`.
    pub code: String,
    /// Human message.
    pub message: String,
    /// Extra `data` members besides `status`.
    pub data: Map<String, Value>,
}

impl WooError {
    /// An error with this status, code and message.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        WooError {
            status,
            code: code.into(),
            message: message.into(),
            data: Map::new(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut data = self.data.clone();
        data.insert("status".into(), json!(self.status));
        json!({"code": self.code, "message": self.message, "data": data})
    }
}

impl IntoResponse for WooError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(self.body())).into_response()
    }
}

/// The REST API key pair (WooCommerce → Settings → Advanced → REST API). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WooCredentials {
    /// `ck_…`.
    pub consumer_key: String,
    /// `cs_…`.
    pub consumer_secret: String,
}

impl fmt::Debug for WooCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WooCredentials")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"***")
            .finish()
    }
}

impl Default for WooCredentials {
    fn default() -> Self {
        WooCredentials {
            consumer_key: "ck_5a9f0e1d2c3b4a5968778695a4b3c2d1e0f9a8b7".into(),
            consumer_secret: "cs_0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6".into(),
        }
    }
}

/// A product that exists before the test: a published simple product, or (with
/// [`WooSeedListing::variation_of`]) a variation of a variable product created on demand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WooSeedListing {
    /// The SKU.
    pub sku: String,
    /// Managed stock.
    pub quantity: u32,
    /// Regular price (decimal string).
    pub price: String,
    /// Product name (variations: ignored; named after the parent).
    #[serde(default)]
    pub title: Option<String>,
    /// `publish` unless set (`draft`, `pending`, `private`).
    #[serde(default)]
    pub status: Option<String>,
    /// SKU of the variable product this is a variation of.
    #[serde(default)]
    pub parent_sku: Option<String>,
    /// The variation's attribute values (`{"Colour":"Red"}`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl WooSeedListing {
    /// A published simple product with managed stock.
    pub fn new(sku: impl Into<String>, quantity: u32, price: &str) -> Self {
        WooSeedListing {
            sku: sku.into(),
            quantity,
            price: price.to_owned(),
            title: None,
            status: None,
            parent_sku: None,
            attributes: BTreeMap::new(),
        }
    }

    /// Makes it a variation of the variable product `parent_sku` with `attribute = option`.
    pub fn variation_of(mut self, parent_sku: &str, attribute: &str, option: &str) -> Self {
        self.parent_sku = Some(parent_sku.to_owned());
        self.attributes
            .insert(attribute.to_owned(), option.to_owned());
        self
    }

    /// Sets the post status.
    pub fn with_status(mut self, status: &str) -> Self {
        self.status = Some(status.to_owned());
        self
    }
}

/// How to run the WooCommerce fake.
#[derive(Debug, Clone)]
pub struct WooOptions {
    /// The accepted key pair.
    pub credentials: WooCredentials,
    /// The shop's currency (`woocommerce_currency`).
    pub currency: String,
    /// The WAF in front of the site; `None` (default) = unlimited.
    pub rate_limit: Option<RateLimit>,
    /// `Retry-After` (seconds) of the WAF's 429.
    pub retry_after_secs: u64,
    /// Products present at start.
    pub listings: Vec<WooSeedListing>,
}

impl Default for WooOptions {
    fn default() -> Self {
        WooOptions {
            credentials: WooCredentials::default(),
            currency: DEFAULT_CURRENCY.into(),
            rate_limit: None,
            retry_after_secs: 1,
            listings: Vec::new(),
        }
    }
}

impl WooOptions {
    /// No rate limit (the default; named like the other fakes' options).
    pub fn unlimited() -> Self {
        WooOptions::default()
    }
}

/// A SKU's state as a shopper and the shop manager see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WooListingSnapshot {
    /// The SKU.
    pub sku: String,
    /// Product id (the parent's for a variation).
    pub product_id: u64,
    /// Variation id.
    pub variation_id: Option<u64>,
    /// `simple`, `variable` or `variation`.
    pub kind: String,
    /// Post status.
    pub status: String,
    /// Name.
    pub name: String,
    /// `manage_stock`.
    pub manage_stock: bool,
    /// `stock_quantity` (may be negative after oversold orders).
    pub stock_quantity: Option<i64>,
    /// Regular price.
    pub regular_price: String,
    /// Image URLs.
    pub images: Vec<String>,
    /// Variation attributes.
    pub attributes: BTreeMap<String, String>,
}

/// The fake's shared core.
pub(crate) struct Woo {
    pub(crate) shared: Arc<Shared>,
    state: Mutex<state::WooState>,
    pub(crate) credentials: WooCredentials,
    pub(crate) retry_after_secs: u64,
    pub(crate) webhooks: Webhooks,
    deliveries: AtomicU64,
}

impl fmt::Debug for Woo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Woo")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Woo {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::WooState> {
        self.state.lock().expect("woo state lock")
    }

    /// `{base_url}/woo`, the site URL.
    pub(crate) fn site_url(&self) -> String {
        format!("{}/{MARKETPLACE}", self.shared.base_url)
    }

    /// Sends the order webhook (`created` or `updated`) when a target is set.
    fn order_webhook(&self, order: u64, event: &str) {
        let body = {
            let st = self.lock();
            match st.orders.get(&order) {
                Some(o) => o.render(&st.currency),
                None => return,
            }
        };
        let delivery = self.deliveries.fetch_add(1, Ordering::Relaxed) + 1;
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (
                "X-WC-Webhook-Source".to_owned(),
                format!("{}/", self.site_url()),
            ),
            ("X-WC-Webhook-Topic".to_owned(), format!("order.{event}")),
            ("X-WC-Webhook-Resource".to_owned(), "order".to_owned()),
            ("X-WC-Webhook-Event".to_owned(), event.to_owned()),
            ("X-WC-Webhook-ID".to_owned(), "1".to_owned()),
            ("X-WC-Webhook-Delivery-ID".to_owned(), delivery.to_string()),
        ];
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.webhooks
            .deliver(&self.shared.rng, headers, bytes, |secret, body| {
                vec![(
                    "X-WC-Webhook-Signature".to_owned(),
                    crate::webhook::sign_base64(secret, body),
                )]
            });
    }
}

/// Inspection and control of the WooCommerce fake, for tests and the demo. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WooHandle {
    pub(crate) inner: Arc<Woo>,
}

static MARKET: Market = Market {
    name: MARKETPLACE,
    classify,
    system_error_body: |status| {
        WooError::new(
            status.as_u16(),
            "internal_server_error",
            "There has been a critical error on this website.",
        )
        .body()
        .to_string()
    },
    throttled_body: || {
        WooError::new(429, "too_many_requests", "Too many requests.")
            .body()
            .to_string()
    },
};

/// Names the operation a request calls.
fn classify(method: &Method, path: &str) -> Option<Operation> {
    let path = path.strip_prefix("/woo").unwrap_or(path);
    let rest = path.strip_prefix(API_ROOT)?;
    let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let op = |name, readonly| {
        Some(Operation {
            name,
            group: GROUP_WAF,
            readonly,
        })
    };
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["products"]) => op("listProducts", true),
        ("POST", ["products", "batch"]) => op("batchProducts", false),
        ("GET", ["products", _]) => op("getProduct", true),
        ("GET", ["products", _, "variations"]) => op("listVariations", true),
        ("POST", ["products", _, "variations", "batch"]) => op("batchVariations", false),
        ("GET", ["orders"]) => op("listOrders", true),
        ("GET", ["orders", _]) => op("getOrder", true),
        ("GET", ["data", "currencies", "current"]) => op("getCurrentCurrency", true),
        _ => None,
    }
}

impl WooHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: WooOptions) -> anyhow::Result<WooHandle> {
        shared.limiter.set(MARKETPLACE, GROUP_WAF, opts.rate_limit);
        let site = format!("{}/{MARKETPLACE}", shared.base_url);
        let handle = WooHandle {
            inner: Arc::new(Woo {
                state: Mutex::new(state::WooState::new(opts.currency, site)),
                shared,
                credentials: opts.credentials,
                retry_after_secs: opts.retry_after_secs,
                webhooks: Webhooks::default(),
                deliveries: AtomicU64::new(0),
            }),
        };
        for seed in opts.listings {
            let sku = seed.sku.clone();
            handle
                .seed_listing(seed)
                .map_err(|e| anyhow::anyhow!("seeding WooCommerce product {sku:?}: {e}"))?;
        }
        Ok(handle)
    }

    /// The `/woo` router.
    pub(crate) fn router(&self) -> Router {
        let gate = GateCtx {
            shared: self.inner.shared.clone(),
            market: &MARKET,
        };
        let state = self.inner.clone();
        let r = |p: &str| format!("{API_ROOT}{p}");
        Router::new()
            .route(&r("/products"), get(api::list_products))
            .route(&r("/products/batch"), post(api::batch_products))
            .route(&r("/products/{id}"), get(api::get_product))
            .route(&r("/products/{id}/variations"), get(api::list_variations))
            .route(
                &r("/products/{id}/variations/batch"),
                post(api::batch_variations),
            )
            .route(&r("/orders"), get(api::list_orders))
            .route(&r("/orders/{id}"), get(api::get_order))
            .route(&r("/data/currencies/current"), get(api::current_currency))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                api::authorize,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                gate,
                crate::gate::gate,
            ))
            .fallback(api::not_found)
            .with_state(state)
    }

    /// The `/_control/woo` router.
    pub(crate) fn control_router(&self) -> Router {
        control::router(self.clone())
    }

    // ---- seeding and drift ------------------------------------------------------------------

    /// Creates a product (or a variation, creating its variable parent on first use) as state that
    /// existed before the test: nothing is logged as a write.
    pub fn seed_listing(&self, seed: WooSeedListing) -> Result<(), ControlError> {
        if seed.sku.trim().is_empty() {
            return Err(ControlError::Invalid("empty SKU".into()));
        }
        if state::parse_cents(&seed.price).is_none() {
            return Err(ControlError::Invalid(format!(
                "invalid price {:?}",
                seed.price
            )));
        }
        let scratch = crate::record::Recorder::new();
        let no_faults = |_: &str| -> Option<state::Rejection> { None };
        let ctx = state::Ctx {
            now: self.inner.shared.clock.now(),
            rec: &scratch,
            reject: &no_faults,
            operation: "seed",
        };
        let mut st = self.inner.lock();
        if let Some(existing) = st.by_sku(&seed.sku).map(|p| p.id) {
            st.remove_product(existing);
        }
        let status = seed.status.clone().unwrap_or_else(|| "publish".into());
        let name = seed
            .title
            .clone()
            .unwrap_or_else(|| format!("Sandbox product {}", seed.sku));
        let fail = |e: WooError| ControlError::Invalid(e.message);
        match &seed.parent_sku {
            None => {
                st.create(
                    &ctx,
                    &json!({"name": name, "type": "simple", "sku": seed.sku, "status": status,
                            "regular_price": seed.price, "manage_stock": true,
                            "stock_quantity": seed.quantity,
                            "description": format!("{name} (sandbox)"),
                            "images": [{"src": format!("https://shop.example.com/wp-content/uploads/{}.jpg", seed.sku)}]}),
                    None,
                )
                .map_err(fail)?;
            }
            Some(parent_sku) => {
                let parent = match st.by_sku(parent_sku) {
                    Some(p) if p.kind == state::Kind::Variable => p.id,
                    Some(_) => {
                        return Err(ControlError::Invalid(format!(
                            "{parent_sku:?} is not a variable product"
                        )));
                    }
                    None => {
                        let created = st
                            .create(
                                &ctx,
                                &json!({"name": format!("Sandbox product {parent_sku}"),
                                        "type": "variable", "sku": parent_sku, "status": "publish"}),
                                None,
                            )
                            .map_err(fail)?;
                        created["id"].as_u64().unwrap_or_default()
                    }
                };
                // The parent's attributes list every option its variations use.
                if let Some(p) = st.products.get_mut(&parent) {
                    for (name, option) in &seed.attributes {
                        match p.attributes.iter_mut().find(|a| &a.name == name) {
                            Some(a) => {
                                if !a.options.contains(option) {
                                    a.options.push(option.clone());
                                }
                            }
                            None => p.attributes.push(state::Attribute {
                                name: name.clone(),
                                options: vec![option.clone()],
                                variation: true,
                                visible: true,
                            }),
                        }
                    }
                }
                let attributes: Vec<Value> = seed
                    .attributes
                    .iter()
                    .map(|(n, o)| json!({"name": n, "option": o}))
                    .collect();
                st.create(
                    &ctx,
                    &json!({"sku": seed.sku, "status": status, "regular_price": seed.price,
                            "manage_stock": true, "stock_quantity": seed.quantity,
                            "attributes": attributes}),
                    Some(parent),
                )
                .map_err(fail)?;
            }
        }
        Ok(())
    }

    fn with_product<R>(
        &self,
        sku: &str,
        f: impl FnOnce(&mut state::Product) -> R,
    ) -> Result<R, ControlError> {
        let now = self.inner.shared.clock.now();
        let mut st = self.inner.lock();
        let id = st
            .by_sku(sku)
            .map(|p| p.id)
            .ok_or_else(|| ControlError::UnknownSku(sku.to_owned()))?;
        let p = st.products.get_mut(&id).expect("found by SKU");
        p.modified = now;
        Ok(f(p))
    }

    /// Changes a SKU's stock as a shop manager editing in wp-admin would (managing stock from now
    /// on), without logging a write: drift for the reconciler.
    pub fn set_quantity_out_of_band(&self, sku: &str, quantity: u32) -> Result<(), ControlError> {
        self.with_product(sku, |p| {
            p.manage_stock = true;
            p.stock_quantity = Some(i64::from(quantity));
        })
    }

    /// Changes a SKU's regular price without logging a write.
    pub fn set_price_out_of_band(&self, sku: &str, price: Money) -> Result<(), ControlError> {
        if state::parse_cents(&price.value).is_none() {
            return Err(ControlError::Invalid(format!(
                "invalid price {:?}",
                price.value
            )));
        }
        self.with_product(sku, |p| p.regular_price = price.value)
    }

    /// Sets a SKU's post status (`draft`, `private`, `publish` …) without logging a write.
    pub fn set_status_out_of_band(&self, sku: &str, status: &str) -> Result<(), ControlError> {
        if !state::POST_STATUSES.contains(&status) {
            return Err(ControlError::Invalid(format!("unknown status {status:?}")));
        }
        self.with_product(sku, |p| p.status = status.to_owned())
    }

    /// Deletes a SKU's product (with its variations) or variation for good, as a manager
    /// emptying the trash would.
    pub fn delete_out_of_band(&self, sku: &str) -> Result<(), ControlError> {
        let mut st = self.inner.lock();
        let id = st
            .by_sku(sku)
            .map(|p| p.id)
            .ok_or_else(|| ControlError::UnknownSku(sku.to_owned()))?;
        st.remove_product(id);
        Ok(())
    }

    // ---- orders -----------------------------------------------------------------------------

    /// A shopper checks out and pays: a `processing` order; managed stock drops; `order.created`
    /// webhook. Refuses unknown SKUs, unpublished or unpriced products, and short stock.
    pub fn place_order(&self, lines: &[OrderLine]) -> Result<String, ControlError> {
        let now = self.inner.shared.clock.now();
        let id = self.inner.lock().place_order(now, lines)?;
        self.inner.order_webhook(id, "created");
        Ok(id.to_string())
    }

    /// With `true`, checkouts are no longer refused when a product shows fewer units than
    /// ordered: the order is created and `stock_quantity` goes below 0, as a shop that allows
    /// backorders does (the shown quantity stays 0). This is the marketplace that sold units before
    /// the seller's lower quantity reached it; the seller must find the oversell when it ingests
    /// the orders. Off by default; the same knob exists on the eBay and Shopify fakes.
    pub fn set_allow_oversell(&self, allow: bool) {
        self.inner.lock().allow_oversell = allow;
    }

    /// The shop cancels the order: stock restored, `order.updated` webhook.
    pub fn cancel_order(&self, id: &str) -> Result<(), ControlError> {
        self.set_order_status(id, "cancelled")
    }

    /// The shop ships the order: `completed`.
    pub fn complete_order(&self, id: &str) -> Result<(), ControlError> {
        self.set_order_status(id, "completed")
    }

    /// Moves an order to any WooCommerce status (`on-hold`, `refunded` …); `cancelled`,
    /// `refunded` and `failed` restore reduced stock once. Sends `order.updated`.
    pub fn set_order_status(&self, id: &str, status: &str) -> Result<(), ControlError> {
        let now = self.inner.shared.clock.now();
        self.inner.lock().set_order_status(now, id, status)?;
        if let Ok(n) = id.parse() {
            self.inner.order_webhook(n, "updated");
        }
        Ok(())
    }

    /// An order as `GET /orders/{id}` renders it.
    pub fn order(&self, id: &str) -> Option<Value> {
        let st = self.inner.lock();
        let n: u64 = id.parse().ok()?;
        st.orders.get(&n).map(|o| o.render(&st.currency))
    }

    /// Every order id, oldest first.
    pub fn order_ids(&self) -> Vec<String> {
        self.inner
            .lock()
            .orders
            .keys()
            .map(u64::to_string)
            .collect()
    }

    // ---- inspection -------------------------------------------------------------------------

    /// The key pair the site accepts.
    pub fn credentials(&self) -> WooCredentials {
        self.inner.credentials.clone()
    }

    /// The site URL a connector uses as `endpoint` (`{base_url}/woo`).
    pub fn site_url(&self) -> String {
        self.inner.site_url()
    }

    /// Every SKU (products and variations), sorted.
    pub fn skus(&self) -> Vec<String> {
        let mut skus: Vec<String> = self
            .inner
            .lock()
            .products
            .values()
            .filter(|p| !p.sku.is_empty())
            .map(|p| p.sku.clone())
            .collect();
        skus.sort();
        skus
    }

    /// What a shopper can buy of a SKU: its managed stock (0 when oversold); `None` when the SKU
    /// is unknown or does not manage stock. A draft product keeps its stock (shown again when
    /// published); see [`WooHandle::listing`] for the status.
    pub fn current_quantity(&self, sku: &str) -> Option<u32> {
        self.inner.lock().by_sku(sku)?.visible_quantity()
    }

    /// A SKU's regular price in the shop's currency.
    pub fn current_price(&self, sku: &str) -> Option<Money> {
        let st = self.inner.lock();
        let p = st.by_sku(sku)?;
        (!p.regular_price.is_empty()).then(|| {
            Money::new(
                state::fmt_cents(state::parse_cents(&p.regular_price).unwrap_or(0)),
                st.currency.clone(),
            )
        })
    }

    /// Everything about one SKU.
    pub fn listing(&self, sku: &str) -> Option<WooListingSnapshot> {
        let st = self.inner.lock();
        let p = st.by_sku(sku)?;
        let variation = p.kind == state::Kind::Variation;
        Some(WooListingSnapshot {
            sku: p.sku.clone(),
            product_id: if variation { p.parent_id } else { p.id },
            variation_id: variation.then_some(p.id),
            kind: match p.kind {
                state::Kind::Simple => "simple",
                state::Kind::Variable => "variable",
                state::Kind::Variation => "variation",
            }
            .into(),
            status: p.status.clone(),
            name: p.name.clone(),
            manage_stock: p.manage_stock,
            stock_quantity: p.stock_quantity,
            regular_price: p.regular_price.clone(),
            images: p.images.clone(),
            attributes: p.options.iter().cloned().collect(),
        })
    }

    /// A product or variation as the API renders it.
    pub fn product_json(&self, sku: &str) -> Option<Value> {
        let st = self.inner.lock();
        let p = st.by_sku(sku)?;
        Some(p.render(&st.base_url, &st))
    }

    /// Every write applied to WooCommerce, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.inner.shared.recorder.writes(Some(MARKETPLACE))
    }

    /// Every WooCommerce request received, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.shared.recorder.requests(Some(MARKETPLACE))
    }

    /// Requests received for one operation (`batchProducts` …), whatever their outcome.
    pub fn request_count(&self, operation: &str) -> u64 {
        self.inner
            .shared
            .recorder
            .request_count(MARKETPLACE, operation)
    }

    /// Requests received per operation.
    pub fn request_counts(&self) -> std::collections::HashMap<String, u64> {
        self.inner.shared.recorder.request_counts(MARKETPLACE)
    }

    /// 429 answers sent (WAF model and fault rules).
    pub fn count_429(&self) -> u64 {
        self.inner.shared.recorder.count_429(MARKETPLACE)
    }

    /// 429 answers sent by the WAF model alone.
    pub fn throttled_count(&self) -> u64 {
        self.inner.shared.recorder.throttled(MARKETPLACE)
    }

    // ---- knobs ------------------------------------------------------------------------------

    /// Sets or removes the WAF's limit (a full bucket).
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.inner.shared.limiter.set(MARKETPLACE, GROUP_WAF, limit);
    }

    /// The WAF's limit.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.inner.shared.limiter.get(MARKETPLACE, GROUP_WAF)
    }

    /// Adds a fault rule for WooCommerce (target: an operation name, a path glob or `*`).
    pub fn add_fault(&self, target: &str, kind: FaultKind) -> FaultId {
        self.faults().add(FaultRule::new(MARKETPLACE, target, kind))
    }

    /// The sandbox's fault rules (all marketplaces).
    pub fn faults(&self) -> FaultsHandle {
        FaultsHandle {
            faults: self.inner.shared.faults.clone(),
        }
    }

    /// Where order webhooks go (`None` stops them).
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        self.inner.webhooks.set_target(target);
    }

    /// What happened to the webhook deliveries so far.
    pub fn webhook_counts(&self) -> WebhookCounts {
        self.inner.webhooks.counts()
    }

    /// Moves sandbox time forward (shared by all marketplaces).
    pub fn advance_clock(&self, by: Duration) {
        self.inner.shared.clock.advance(by);
    }
}
