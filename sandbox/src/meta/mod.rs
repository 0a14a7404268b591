//! The Meta fake: Graph API product catalog (`items_batch`, `check_batch_request_status`, the
//! `products` edge, the catalog node) and commerce orders (`commerce_orders`, order nodes and
//! edges, `acknowledge_order`), mounted at `/meta` with Graph paths below it:
//! `{base}/meta/v25.0/{catalog_id}/items_batch`. Any `vMAJOR.MINOR` version segment is accepted,
//! so a connector's `endpoint` is `{base}/meta/v25.0`.
//!
//! Faithful to contracts/README.md §3 and the codegen specs in contracts/specs/meta/. Limits
//! modelled, and where they come from:
//!
//! | limit | value | source |
//! |---|---|---|
//! | requests per `items_batch` call | 1..=[`MAX_BATCH_REQUESTS`] (5,000); more → code 100 | §3.2 |
//! | request body | [`crate::MAX_BODY_BYTES`]; larger → HTTP 500 code 1 "Please reduce the amount of data…" | §3.1 (code 1) |
//! | BUC per business object and use case | [`MetaOptions::buc`]: calls per fixed window on the sandbox clock | §3.1; "100 calls per hour" for catalog batch, commerce best practices |
//! | products page | `limit` ≤ [`graph::MAX_PRODUCTS_PAGE`], default 25 | Graph default page size |
//! | commerce_orders page | `limit` ≤ [`graph::MAX_ORDERS_PAGE`], default 25 | §3.4 |
//!
//! Behaviour worth knowing when writing a connector against it:
//! - **Auth**: the access token as `Authorization: Bearer …` or `access_token=`; anything else is
//!   code 190 (missing: 104). `appsecret_proof` = hex HMAC-SHA256(app_secret, access_token) in the
//!   query string is required ([`MetaOptions::require_appsecret_proof`]): missing or wrong is
//!   code 100 with Meta's messages. Errors are HTTP 400 unless said otherwise; classify by `code`.
//! - **BUC**: every catalog and commerce call counts against a window per (object, use case):
//!   `catalog_batch` (items_batch, keyed by catalog), `catalog_management` (other catalog calls),
//!   `commerce` (orders, keyed by commerce account). Answers carry `X-Business-Use-Case-Usage`
//!   `{"<id>":[{"type","call_count","total_cputime","total_time","estimated_time_to_regain_access"}]}`
//!   (percent; minutes). A spent window answers HTTP 400 with code 80014 (catalog_batch), 80009
//!   (catalog_management) or 613 (commerce), `is_transient: true`, and the header with
//!   `call_count: 100` and the minutes until the window resets.
//! - **items_batch** (JSON or form body; `requests` may be a JSON string): `item_type` must be
//!   `PRODUCT_ITEM`; each request `{"method":"CREATE|UPDATE|DELETE","data":{"id":…}}`.
//!   Synchronous `validation_status` (only requests with errors): unknown method, no `data.id`,
//!   CREATE missing a required field ([`state::REQUIRED_FIELDS`]), a price that is not
//!   `"12.99 USD"`, an unknown `availability`/`condition`, a bad quantity. Those are not ingested;
//!   the rest go into one handle (`handles` is empty when nothing is ingested).
//! - **Handles** finish [`MetaOptions::batch_processing`] after submission (sandbox clock), in
//!   submission order; until then `status` is `in_progress`, then `finished`. Per-request errors
//!   then appear in `errors` (`{"line","id","message"}`) and, with
//!   `load_ids_of_invalid_requests=true`, in `ids_of_invalid_requests`: a `reject_skus` fault on
//!   `items_batch` (decided at submission, message = the fault's), UPDATE of an unknown item with
//!   `allow_upsert=false` ("… does not exist in this catalog …"), a new item (CREATE, or UPDATE
//!   with upsert) missing required fields, CREATE of an existing item. DELETE of an unknown item
//!   is a warning. Applied requests are logged as writes (`items_batch`, batch_ref
//!   `handle <h> request <line> <METHOD>`).
//! - **products** edge: `fields` among [`state::PRODUCT_FIELDS`] (others: code 100 "Tried
//!   accessing nonexisting field"), sorted by retailer id, cursor paging
//!   (`paging.cursors.after`, `paging.next` only when there is more). `price` is formatted for
//!   display (`$1,234.56`, `€12.99`, `12.99 CHF`), `currency` separate.
//! - **commerce_orders**: `state` (default CREATED only), `updated_after`/`updated_before`
//!   (unix seconds or ISO 8601; `last_updated >= updated_after`), `filters`, `fields` (CommerceOrder
//!   fields and the expandable edges `items`, `cancellations`, `shipments` … rendered as
//!   `{"data":[…]}`; nested field lists are accepted and ignored), cursor paging in creation
//!   order (an order acknowledged or cancelled while a caller pages keeps its place).
//! - **acknowledge_order**: `idempotency_key` required; CREATED → IN_PROGRESS (with
//!   `merchant_order_id` = the reference). The same key again answers the same state without a
//!   second change; another key on an order past CREATED is code 100.
//! - **Orders** placed through the handle start CREATED and lower `quantity_to_sell_on_facebook`;
//!   a buyer cancellation adds a cancellation of every item, moves the order to COMPLETED and
//!   restores the units; shipping (after acknowledgement) moves it to COMPLETED with a shipment.
//! - **Webhooks** (when a target is set): `POST` JSON
//!   `{"object":"page","entry":[{"id":"<commerce account>","time":<unix>,"changes":[{"field":"commerce_orders","value":{"order_id":"…","event":"ORDER_CREATED"|"ORDER_CANCELLED"}}]}]}`
//!   with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
//! - Faults: target an operation name ([`OPERATIONS`]) or a path glob; 5xx faults answer Graph
//!   code 2 (`is_transient`), 429 faults code 4.
//!
//! Not modelled: product sets, feeds, localized overrides, refunds/returns, shipments through the
//! API, `order_management_apps` registration (orders always wait in CREATED), field expansion of
//! nested field lists.
//!
//! Control (Rust: [`MetaHandle`]; HTTP: `/_control/meta/...`, routes in the `control` module).

pub(crate) mod control;
pub mod graph;
pub mod state;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::Method;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Shared;
use crate::faults::{FaultId, FaultKind, FaultRule, FaultsHandle};
use crate::gate::{GateCtx, Market, Operation};
use crate::record::{Money, RequestRecord, WriteRecord};
use crate::webhook::{WebhookCounts, WebhookTarget, Webhooks, sign_meta};

pub use crate::ebay::{ControlError, OrderLine};
pub use graph::{BUC_HEADER, appsecret_proof};
pub use state::MAX_BATCH_REQUESTS;

use state::{Ctx, MetaState, Product, amount_text, cents};

/// Marketplace name in fault rules and records; also the mount prefix.
pub const MARKETPLACE: &str = "meta";
/// The Graph version the docs and the connector's default endpoint use.
pub const GRAPH_VERSION: &str = "v25.0";
/// Default catalog id.
pub const DEFAULT_CATALOG_ID: &str = "1234567890123456";
/// Default commerce account (commerce merchant settings) id.
pub const DEFAULT_COMMERCE_ACCOUNT_ID: &str = "9876543210987654";
/// Default time from `items_batch` to a `finished` handle.
pub const DEFAULT_BATCH_PROCESSING: Duration = Duration::from_secs(1);

/// BUC use case of `items_batch`.
pub const USE_CASE_BATCH: &str = "catalog_batch";
/// BUC use case of the other catalog calls.
pub const USE_CASE_CATALOG: &str = "catalog_management";
/// BUC use case of commerce order calls.
pub const USE_CASE_COMMERCE: &str = "commerce";

/// Operation `POST /{catalog}/items_batch`.
pub const OP_ITEMS_BATCH: &str = "items_batch";
/// Operation `GET /{catalog}/check_batch_request_status`.
pub const OP_BATCH_STATUS: &str = "check_batch_request_status";
/// Operation `GET /{catalog}/products`.
pub const OP_PRODUCTS: &str = "products";
/// Operation `GET /{id}` (the catalog or an order).
pub const OP_GET_NODE: &str = "get_node";
/// Operation `GET /{commerce account}/commerce_orders`.
pub const OP_COMMERCE_ORDERS: &str = "commerce_orders";
/// Operation `POST /{order}/acknowledge_order`.
pub const OP_ACKNOWLEDGE: &str = "acknowledge_order";
/// Operation `GET /{order}/items|cancellations|shipments`.
pub const OP_ORDER_EDGE: &str = "order_edge";
/// Every operation name (fault targets, `request_count` keys).
pub const OPERATIONS: [&str; 7] = [
    OP_ITEMS_BATCH,
    OP_BATCH_STATUS,
    OP_PRODUCTS,
    OP_GET_NODE,
    OP_COMMERCE_ORDERS,
    OP_ACKNOWLEDGE,
    OP_ORDER_EDGE,
];

/// What a connector config for this fake needs. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaCredentials {
    /// The system-user access token.
    pub access_token: String,
    /// The app secret (`appsecret_proof` key; also what webhooks are signed with by default).
    pub app_secret: String,
    /// The product catalog.
    pub catalog_id: String,
    /// The commerce account whose orders are listed.
    pub commerce_account_id: String,
}

impl fmt::Debug for MetaCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaCredentials")
            .field("access_token", &"***")
            .field("app_secret", &"***")
            .field("catalog_id", &self.catalog_id)
            .field("commerce_account_id", &self.commerce_account_id)
            .finish()
    }
}

/// One BUC budget: `calls` per fixed window of `window_secs` (sandbox clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucLimit {
    /// Calls allowed per window.
    pub calls: u32,
    /// Window length in seconds.
    pub window_secs: u64,
}

impl BucLimit {
    /// `calls` per `window_secs`.
    pub fn new(calls: u32, window_secs: u64) -> Self {
        BucLimit { calls, window_secs }
    }
}

/// A complete, in-stock catalog item that exists before the test starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSeedListing {
    /// The retailer id (SKU).
    pub sku: String,
    /// `quantity_to_sell_on_facebook`.
    pub quantity: u32,
    /// Price, a decimal with at most two decimals (`"19.99"`).
    pub price: String,
    /// ISO 4217 currency; empty = the fake's currency.
    #[serde(default)]
    pub currency: String,
    /// Title; empty = `Sandbox item <sku>`.
    #[serde(default)]
    pub title: String,
}

impl MetaSeedListing {
    /// An in-stock item of `quantity` at `price`.
    pub fn new(sku: impl Into<String>, quantity: u32, price: &str) -> Self {
        MetaSeedListing {
            sku: sku.into(),
            quantity,
            price: price.to_owned(),
            currency: String::new(),
            title: String::new(),
        }
    }
}

/// How to run the Meta fake.
#[derive(Debug, Clone)]
pub struct MetaOptions {
    /// Accepted token and app secret (catalog and commerce ids are taken from the fields below).
    pub credentials: MetaCredentials,
    /// The one product catalog.
    pub catalog_id: String,
    /// The one commerce account.
    pub commerce_account_id: String,
    /// Currency of seeded items.
    pub currency: String,
    /// BUC budgets per use case ([`USE_CASE_BATCH`], [`USE_CASE_CATALOG`], [`USE_CASE_COMMERCE`]);
    /// absent = unlimited (the header is then not sent).
    pub buc: BTreeMap<String, BucLimit>,
    /// Time from `items_batch` to a `finished` handle.
    pub batch_processing: Duration,
    /// Refuse calls without `appsecret_proof` (what "Require App Secret" does in the app settings).
    pub require_appsecret_proof: bool,
    /// Items present at start.
    pub listings: Vec<MetaSeedListing>,
}

impl Default for MetaOptions {
    /// Catalog batch 100 calls per hour ("update up to 5,000 items with up to 100 calls per
    /// hour", commerce best practices), other catalog calls 1,000 per hour, commerce 500 per hour
    /// (sandbox choices in the spirit of the BUC formulas).
    fn default() -> Self {
        let buc = BTreeMap::from([
            (USE_CASE_BATCH.to_owned(), BucLimit::new(100, 3600)),
            (USE_CASE_CATALOG.to_owned(), BucLimit::new(1000, 3600)),
            (USE_CASE_COMMERCE.to_owned(), BucLimit::new(500, 3600)),
        ]);
        MetaOptions {
            credentials: MetaCredentials {
                access_token: "EAASandboxSystemUserToken".into(),
                app_secret: "sandbox-app-secret".into(),
                catalog_id: DEFAULT_CATALOG_ID.into(),
                commerce_account_id: DEFAULT_COMMERCE_ACCOUNT_ID.into(),
            },
            catalog_id: DEFAULT_CATALOG_ID.into(),
            commerce_account_id: DEFAULT_COMMERCE_ACCOUNT_ID.into(),
            currency: "USD".into(),
            buc,
            batch_processing: DEFAULT_BATCH_PROCESSING,
            require_appsecret_proof: true,
            listings: Vec::new(),
        }
    }
}

impl MetaOptions {
    /// Defaults without BUC limits (for tests that are not about throttling).
    pub fn unlimited() -> Self {
        MetaOptions {
            buc: BTreeMap::new(),
            ..MetaOptions::default()
        }
    }
}

/// A batch handle as the seller would see it in Commerce Manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaBatchSnapshot {
    /// The handle.
    pub handle: String,
    /// `in_progress` or `finished`.
    pub status: String,
    /// Requests ingested (validation failures excluded).
    pub requests: usize,
    /// Retailer ids that failed.
    pub invalid_ids: Vec<String>,
}

/// The fake's shared core.
pub(crate) struct Meta {
    pub(crate) shared: Arc<Shared>,
    state: Mutex<MetaState>,
    pub(crate) credentials: MetaCredentials,
    pub(crate) catalog_id: String,
    pub(crate) commerce_account_id: String,
    pub(crate) currency: String,
    pub(crate) require_proof: bool,
    revoked: AtomicBool,
    webhooks: Webhooks,
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meta")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Meta {
    pub(crate) fn lock(&self) -> MutexGuard<'_, MetaState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the state locked and a context stamped now.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut MetaState, &Ctx<'_>) -> R) -> R {
        let ctx = Ctx {
            now: self.shared.clock.now(),
            rec: &self.shared.recorder,
        };
        let mut st = self.lock();
        f(&mut st, &ctx)
    }

    /// Locked state with due batches finished.
    pub(crate) fn pumped<R>(&self, f: impl FnOnce(&mut MetaState, &Ctx<'_>) -> R) -> R {
        self.with(|st, ctx| {
            st.pump(ctx);
            f(st, ctx)
        })
    }

    pub(crate) fn token_revoked(&self) -> bool {
        self.revoked.load(Ordering::Relaxed)
    }

    /// Queues validated requests as one handle.
    pub(crate) fn submit_batch(
        &self,
        requests: Vec<state::BatchRequest>,
        allow_upsert: bool,
    ) -> String {
        let handle = format!("AcxR{}", self.shared.rng.hex(12));
        self.with(|st, ctx| {
            let ready_at = ctx.now
                + chrono::TimeDelta::from_std(st.batch_processing)
                    .unwrap_or(chrono::TimeDelta::zero());
            st.batches.insert(
                handle.clone(),
                state::Batch {
                    handle: handle.clone(),
                    submitted: ctx.now,
                    ready_at,
                    allow_upsert,
                    requests,
                    finished: false,
                    errors: Vec::new(),
                    warnings: Vec::new(),
                    invalid_ids: Vec::new(),
                },
            );
            st.pump(ctx);
        });
        handle
    }

    /// Sends the `commerce_orders` webhook for `order_id` when a target is set.
    fn notify(&self, order_id: &str, event: &str) {
        let body = json!({
            "object": "page",
            "entry": [{
                "id": self.commerce_account_id,
                "time": self.shared.clock.now().timestamp(),
                "changes": [{"field": "commerce_orders", "value": {"order_id": order_id, "event": event}}],
            }],
        });
        self.webhooks.deliver(
            &self.shared.rng,
            vec![("Content-Type".into(), "application/json".into())],
            body.to_string().into_bytes(),
            |secret, body| vec![("X-Hub-Signature-256".into(), sign_meta(secret, body))],
        );
    }
}

/// Inspection and control of the Meta fake, for tests and the demo. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MetaHandle {
    pub(crate) inner: Arc<Meta>,
}

static MARKET: Market = Market {
    name: MARKETPLACE,
    classify,
    system_error_body: |status| graph::GraphError::system(status).body().to_string(),
    throttled_body: || graph::GraphError::app_limit().body().to_string(),
};

/// Names the operation a request calls (see [`OPERATIONS`]).
fn classify(method: &Method, path: &str) -> Option<Operation> {
    let path = path.strip_prefix("/meta").unwrap_or(path);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let op = |name: &'static str, readonly| {
        Some(Operation {
            name,
            group: name,
            readonly,
        })
    };
    if segs.iter().any(|s| s.is_empty()) || !segs[0].starts_with('v') {
        return None;
    }
    match (method.as_str(), &segs[1..]) {
        ("GET", [_]) => op(OP_GET_NODE, true),
        ("POST", [_, "items_batch"]) => op(OP_ITEMS_BATCH, false),
        ("GET", [_, "check_batch_request_status"]) => op(OP_BATCH_STATUS, true),
        ("GET", [_, "products"]) => op(OP_PRODUCTS, true),
        ("GET", [_, "commerce_orders"]) => op(OP_COMMERCE_ORDERS, true),
        ("POST", [_, "acknowledge_order"]) => op(OP_ACKNOWLEDGE, false),
        ("GET", [_, "items" | "cancellations" | "shipments"]) => op(OP_ORDER_EDGE, true),
        _ => None,
    }
}

impl MetaHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: MetaOptions) -> anyhow::Result<MetaHandle> {
        let mut credentials = opts.credentials;
        credentials.catalog_id = opts.catalog_id.clone();
        credentials.commerce_account_id = opts.commerce_account_id.clone();
        let state = MetaState::new(opts.batch_processing, opts.buc);
        let handle = MetaHandle {
            inner: Arc::new(Meta {
                shared,
                state: Mutex::new(state),
                credentials,
                catalog_id: opts.catalog_id,
                commerce_account_id: opts.commerce_account_id,
                currency: opts.currency,
                require_proof: opts.require_appsecret_proof,
                revoked: AtomicBool::new(false),
                webhooks: Webhooks::default(),
            }),
        };
        for seed in opts.listings {
            let sku = seed.sku.clone();
            handle
                .seed_listing(seed)
                .map_err(|e| anyhow::anyhow!("seeding Meta item {sku:?}: {e}"))?;
        }
        Ok(handle)
    }

    /// The `/meta` router.
    pub(crate) fn router(&self) -> Router {
        let gate = GateCtx {
            shared: self.inner.shared.clone(),
            market: &MARKET,
        };
        let state = self.inner.clone();
        Router::new()
            .route("/{version}/{id}", get(graph::get_node))
            .route(
                "/{version}/{id}/{edge}",
                get(graph::get_edge).post(graph::post_edge),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                graph::authorize,
            ))
            .with_state(state)
            .route_layer(axum::middleware::from_fn_with_state(
                gate,
                crate::gate::gate,
            ))
    }

    /// The `/_control/meta` router.
    pub(crate) fn control_router(&self) -> Router {
        control::router(self.clone())
    }

    // ---- identity -------------------------------------------------------------------------------

    /// Token, app secret, catalog and commerce account a connector config needs.
    pub fn credentials(&self) -> MetaCredentials {
        self.inner.credentials.clone()
    }

    /// The connector `endpoint` for a sandbox at `base_url`: `{base_url}/meta/v25.0`.
    pub fn endpoint(base_url: &str) -> String {
        format!("{}/meta/{GRAPH_VERSION}", base_url.trim_end_matches('/'))
    }

    /// Makes the access token invalid (code 190 from now on), or valid again.
    pub fn revoke_token(&self, revoked: bool) {
        self.inner.revoked.store(revoked, Ordering::Relaxed);
    }

    // ---- catalog --------------------------------------------------------------------------------

    /// Creates (or replaces) a complete, in-stock item as state that existed before the test:
    /// not logged as a write.
    pub fn seed_listing(&self, seed: MetaSeedListing) -> Result<(), ControlError> {
        if seed.sku.trim().is_empty() || seed.sku.chars().any(char::is_control) {
            return Err(ControlError::Invalid(format!("invalid SKU {:?}", seed.sku)));
        }
        let Some(price) = cents(seed.price.trim()).filter(|c| *c > 0) else {
            return Err(ControlError::Invalid(format!(
                "invalid price {:?}",
                seed.price
            )));
        };
        let currency = if seed.currency.is_empty() {
            self.inner.currency.clone()
        } else {
            seed.currency.clone()
        };
        let title = if seed.title.trim().is_empty() {
            format!("Sandbox item {}", seed.sku)
        } else {
            seed.title.clone()
        };
        self.inner.with(|st, _| {
            let fb_id = match st.products.get(&seed.sku) {
                Some(p) => p.fb_id.clone(),
                None => st.new_id(7_000_000_000_000_000),
            };
            let fields = json!({
                "title": title,
                "description": format!("{title}, seeded in the sandbox."),
                "condition": "new",
                "link": format!("https://shop.example.invalid/p/{}", seed.sku),
                "image_link": format!("https://shop.example.invalid/img/{}.jpg", seed.sku),
                "brand": "Sandbox",
            });
            st.products.insert(
                seed.sku.clone(),
                Product {
                    fb_id,
                    fields: fields.as_object().cloned().unwrap_or_default(),
                    price_cents: price,
                    currency,
                    quantity: seed.quantity,
                    availability: if seed.quantity > 0 {
                        "in stock"
                    } else {
                        "out of stock"
                    }
                    .into(),
                },
            );
        });
        Ok(())
    }

    /// Every retailer id, sorted.
    pub fn skus(&self) -> Vec<String> {
        self.inner
            .pumped(|st, _| st.products.keys().cloned().collect())
    }

    /// `quantity_to_sell_on_facebook` of an item.
    pub fn current_quantity(&self, sku: &str) -> Option<u32> {
        self.inner
            .pumped(|st, _| st.products.get(sku).map(|p| p.quantity))
    }

    /// The item's `availability`.
    pub fn current_availability(&self, sku: &str) -> Option<String> {
        self.inner
            .pumped(|st, _| st.products.get(sku).map(|p| p.availability.clone()))
    }

    /// The item's price.
    pub fn current_price(&self, sku: &str) -> Option<Money> {
        self.inner.pumped(|st, _| {
            st.products
                .get(sku)
                .map(|p| Money::new(amount_text(p.price_cents), p.currency.clone()))
        })
    }

    /// Every field of an item as the products edge renders it.
    pub fn product(&self, sku: &str) -> Option<Value> {
        self.inner.pumped(|st, _| {
            let p = st.products.get(sku)?;
            let mut out = serde_json::Map::new();
            for f in state::PRODUCT_FIELDS {
                if let Some(v) = p.field(sku, f) {
                    out.insert(f.to_owned(), v);
                }
            }
            Some(Value::Object(out))
        })
    }

    /// Changes an item's quantity as a human in Commerce Manager would, without logging a write.
    pub fn set_quantity_out_of_band(&self, sku: &str, quantity: u32) -> Result<(), ControlError> {
        self.inner.pumped(|st, _| {
            let p = st
                .products
                .get_mut(sku)
                .ok_or_else(|| ControlError::UnknownSku(sku.to_owned()))?;
            p.quantity = quantity;
            Ok(())
        })
    }

    // ---- batches --------------------------------------------------------------------------------

    /// Every handle, sorted by handle.
    pub fn batches(&self) -> Vec<MetaBatchSnapshot> {
        self.inner.pumped(|st, _| {
            st.batches
                .values()
                .map(|b| MetaBatchSnapshot {
                    handle: b.handle.clone(),
                    status: if b.finished {
                        "finished"
                    } else {
                        "in_progress"
                    }
                    .into(),
                    requests: b.requests.len(),
                    invalid_ids: b.invalid_ids.clone(),
                })
                .collect()
        })
    }

    /// While held, handles stay `in_progress`; releasing lets due ones finish.
    pub fn hold_batches(&self, hold: bool) {
        self.inner.with(|st, ctx| {
            st.hold = hold;
            st.pump(ctx);
        });
    }

    /// Finishes due handles now (every read does it anyway).
    pub fn process_batches(&self) {
        self.inner.with(|st, ctx| st.pump(ctx));
    }

    /// Sets or removes a use case's BUC budget (a fresh window).
    pub fn set_buc_limit(&self, use_case: &str, limit: Option<BucLimit>) {
        self.inner.with(|st, _| {
            match limit {
                Some(l) => st.buc.insert(use_case.to_owned(), l),
                None => st.buc.remove(use_case),
            };
            st.windows.retain(|(_, u), _| u != use_case);
        });
    }

    // ---- orders ---------------------------------------------------------------------------------

    /// A buyer checks out (CREATED); lowers the shown quantities; refused for unknown SKUs and
    /// short stock. Sends `ORDER_CREATED` when a webhook target is set.
    pub fn place_order(&self, lines: &[OrderLine]) -> Result<String, ControlError> {
        let id = self.inner.pumped(|st, ctx| st.place_order(ctx, lines))?;
        self.inner.notify(&id, "ORDER_CREATED");
        Ok(id)
    }

    /// The buyer cancels: a full cancellation, COMPLETED, units back. Sends `ORDER_CANCELLED`.
    pub fn cancel_order(&self, order_id: &str) -> Result<(), ControlError> {
        self.inner
            .pumped(|st, ctx| st.cancel_order(ctx, order_id))?;
        self.inner.notify(order_id, "ORDER_CANCELLED");
        Ok(())
    }

    /// The merchant ships an acknowledged order: COMPLETED with a shipment.
    pub fn ship_order(&self, order_id: &str) -> Result<(), ControlError> {
        self.inner.with(|st, ctx| st.ship_order(ctx, order_id))
    }

    /// An order with every field and edge.
    pub fn order(&self, order_id: &str) -> Option<Value> {
        let fields: Vec<String> = state::ORDER_FIELDS
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        self.inner
            .with(|st, _| st.orders.get(order_id).map(|o| o.render(&fields)))
    }

    /// An order's state (`CREATED`, `IN_PROGRESS`, `COMPLETED`).
    pub fn order_state(&self, order_id: &str) -> Option<String> {
        self.inner
            .with(|st, _| st.orders.get(order_id).map(|o| o.state.to_owned()))
    }

    /// Every order id, oldest first.
    pub fn order_ids(&self) -> Vec<String> {
        self.inner.with(|st, _| {
            let mut all: Vec<_> = st.orders.values().collect();
            all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
            all.into_iter().map(|o| o.id.clone()).collect()
        })
    }

    /// Acknowledgements that changed an order's state (a replay with the same key is not one).
    pub fn acknowledgements(&self, order_id: &str) -> u32 {
        self.inner
            .with(|st, _| st.acks.get(order_id).copied().unwrap_or(0))
    }

    // ---- webhooks -------------------------------------------------------------------------------

    /// Where order webhooks go (`None` stops them).
    pub fn set_webhook(&self, target: Option<WebhookTarget>) {
        self.inner.webhooks.set_target(target);
    }

    /// What happened to the deliveries so far.
    pub fn webhook_counts(&self) -> WebhookCounts {
        self.inner.webhooks.counts()
    }

    // ---- records --------------------------------------------------------------------------------

    /// Every write applied to the catalog, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.inner.shared.recorder.writes(Some(MARKETPLACE))
    }

    /// Every Meta request received, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.shared.recorder.requests(Some(MARKETPLACE))
    }

    /// Requests received for one operation ([`OPERATIONS`]), whatever their outcome.
    pub fn request_count(&self, operation: &str) -> u64 {
        self.inner
            .shared
            .recorder
            .request_count(MARKETPLACE, operation)
    }

    /// Requests received per operation.
    pub fn request_counts(&self) -> HashMap<String, u64> {
        self.inner.shared.recorder.request_counts(MARKETPLACE)
    }

    /// Throttled answers (BUC codes and 429 faults), whatever their HTTP status.
    pub fn count_429(&self) -> u64 {
        self.inner.shared.recorder.count_429(MARKETPLACE)
    }

    // ---- faults and clock -----------------------------------------------------------------------

    /// Adds a fault rule for Meta (target: an operation name, a path glob or `*`).
    pub fn add_fault(&self, target: &str, kind: FaultKind) -> FaultId {
        self.faults().add(FaultRule::new(MARKETPLACE, target, kind))
    }

    /// The sandbox's fault rules (all marketplaces).
    pub fn faults(&self) -> FaultsHandle {
        FaultsHandle {
            faults: self.inner.shared.faults.clone(),
        }
    }

    /// Moves sandbox time forward (shared by all marketplaces): handles finish, BUC windows reset.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.shared.clock.advance(by);
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn operations_are_named_by_edge() {
        let name = |m: Method, p: &str| classify(&m, p).map(|o| o.name);
        assert_eq!(
            name(Method::POST, "/meta/v25.0/123/items_batch"),
            Some(OP_ITEMS_BATCH)
        );
        assert_eq!(
            name(Method::GET, "/meta/v25.0/123/check_batch_request_status"),
            Some(OP_BATCH_STATUS)
        );
        assert_eq!(name(Method::GET, "/meta/v19.0/123"), Some(OP_GET_NODE));
        assert_eq!(
            name(Method::POST, "/meta/v25.0/55/acknowledge_order"),
            Some(OP_ACKNOWLEDGE)
        );
        assert_eq!(
            name(Method::GET, "/meta/v25.0/55/items"),
            Some(OP_ORDER_EDGE)
        );
        assert_eq!(name(Method::GET, "/meta/v25.0//products"), None);
        assert_eq!(name(Method::DELETE, "/meta/v25.0/1/products"), None);
    }
}
