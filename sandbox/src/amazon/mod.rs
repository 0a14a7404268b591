//! The Amazon fake: Login with Amazon's token endpoint, Listings Items API 2021-08-01, Feeds API
//! 2021-06-30 with JSON_LISTINGS_FEED, and Orders API 2026-01-01, mounted at `/amazon` with the
//! real paths below it (`{base}/amazon/auth/o2/token`, `{base}/amazon/listings/2021-08-01/…`,
//! `{base}/amazon/feeds/2021-06-30/…`, `{base}/amazon/orders/2026-01-01/…`). Feed documents are
//! uploaded to and downloaded from presigned URLs on the same server (`{base}/amazon/_s3/{id}?…`).
//!
//! Faithful to contracts/README.md §1 and the official models (`listingsItems_2021-08-01.json`,
//! `feeds_2021-06-30.json`, `orders_2026-01-01.json`, `listings-feed-schema-v2.json`,
//! `listings-feed-processing-report-schema-v2.json`); responses carry exactly the schemas' fields,
//! enums and ISO 8601 date-times. Limits modelled, and where they come from:
//!
//! | limit | value | source |
//! |---|---|---|
//! | access token lifetime | [`ACCESS_TOKEN_TTL_SECS`] = 3600 s (configurable) | §1.1 |
//! | per-operation token buckets | [`USAGE_PLANS`] | §1.2, each operation's "Usage Plan" |
//! | JSON_LISTINGS_FEED submissions | 5 per 300 s, burst 5 ([`JSON_LISTINGS_FEED`] bucket) | §1.2, changelog 2025-05 |
//! | messages per feed | 1..=[`feeds::MAX_FEED_MESSAGES`] (25,000) | listings-feed-schema-v2 |
//! | feed upload size | [`feeds::MAX_UPLOAD_BYTES`] (64 MiB; other bodies [`crate::MAX_BODY_BYTES`]) | sandbox choice |
//! | presigned URL lifetime | [`feeds::PRESIGNED_URL_TTL_SECS`] = 300 s | Feeds spec |
//! | searchListingsItems `pageSize` | 1..=[`listings::MAX_SEARCH_PAGE`] (20), default 10; 1,000 results | spec, §1.3 |
//! | searchOrders `maxResultsPerPage` | 1..=[`orders::MAX_ORDERS_PAGE`] (100), default 100 | spec |
//! | getFeeds `pageSize` | 1..=[`feeds::MAX_FEEDS_PAGE`] (100), default 10 | spec |
//! | SKU length | [`listing::MAX_SKU_CHARS`] = 40 | Seller Central |
//! | paging tokens | valid 24 h | Orders migration guide |
//!
//! Behaviour worth knowing when writing a connector against it:
//! - Auth: LWA `refresh_token` grant (form or JSON; see `auth`); every SP-API call needs
//!   `x-amz-access-token` (403 `Unauthorized` otherwise, details say missing/expired/invalid).
//!   `sellerId` in listings paths must be [`AmazonOptions::seller_id`] (else 403);
//!   `marketplaceIds` is required on listings calls and may only name the seller's marketplace
//!   (else 400 `InvalidInput`). SKUs are percent-decoded from the path.
//! - Rate limits: one bucket per operation (operation names below; `token`, `uploadFeedDocument`
//!   and `downloadFeedDocument` are unlimited unless set), plus a `JSON_LISTINGS_FEED` bucket taken
//!   by createFeed of that type. 429 bodies are `QuotaExceeded` without `x-amzn-RateLimit-Limit`;
//!   200/201/202/400/404 carry that header with the operation's rate.
//! - putListingsItem / patchListingsItem / deleteListingsItem answer 200
//!   `ListingsItemSubmissionResponse`. `ACCEPTED` submissions are applied at once; `INVALID` ones
//!   (issues with severity ERROR) change nothing: a PUT whose `requirements` (default LISTING)
//!   lack `item_name`/`condition_type` (90220, MISSING_ATTRIBUTE), values the fake refuses
//!   (see `listing`), patch paths below top level, a `reject_skus` fault naming the SKU.
//!   `mode=VALIDATION_PREVIEW` answers VALID/INVALID without applying. PATCH of an unknown SKU
//!   creates an offer-only listing (not BUYABLE; GET shows the missing product facts as issues);
//!   DELETE of an unknown SKU is ACCEPTED.
//! - A listing is DISCOVERABLE with a title, a valid condition and a price, and also BUYABLE with
//!   `DEFAULT` stock (or an FBA channel).
//! - Feeds: createFeedDocument (201) → PUT the bytes to the presigned URL with the same
//!   `Content-Type` → createFeed (202). Feed types other than JSON_LISTINGS_FEED: retired legacy
//!   listings types are accepted and end FATAL; anything else is 400. Processing follows the
//!   sandbox clock ([`AmazonOptions::feed_processing`]); messages are applied in messageId order
//!   with the Listings rules; the report (GZIP when [`AmazonOptions::gzip_reports`]) lists
//!   per-message issues; feed-level problems end FATAL with an issue without messageId.
//!   Writes from feeds are logged with operation `JSON_LISTINGS_FEED` and `batch_ref`
//!   `feed <id> message <n>`. `reject_skus` faults apply to feed messages with target `createFeed`.
//! - Orders 2026-01-01: `fulfillment` (status, fulfilledBy), `proceeds`, `buyer`, `recipient`,
//!   `packages`, item `cancellation` appear only when asked for with `includedData` (FULFILLMENT,
//!   PROCEEDS, BUYER, RECIPIENT, PACKAGES, CANCELLATION), as in the real API.
//!
//! Not modelled: variations and package hierarchies, procurement, grantless LWA tokens, the
//! Notifications API, getFeeds' 90-day retention, the SP-API static sandbox's canned test cases.
//!
//! Control (Rust: [`AmazonHandle`]; HTTP: `/_control/amazon/...`, routes in the `control` module).

pub(crate) mod control;
pub mod error;
pub mod feeds;
pub mod listing;
pub mod listings;
pub mod orders;

mod auth;
mod http;
mod state;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read as _;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::Router;
use axum::http::Method;
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::Shared;
use crate::faults::{FaultId, FaultKind, FaultRule, FaultsHandle};
use crate::gate::{GateCtx, Market, Operation};
use crate::ratelimit::RateLimit;
use crate::record::{Money, RequestRecord, WriteRecord};

pub use crate::ebay::{ControlError, OrderLine};
pub use auth::{ACCESS_TOKEN_HEADER, RATE_LIMIT_HEADER};
pub use feeds::JSON_LISTINGS_FEED;

use listing::{Account, Included, Listing, minor_units};
use state::{AmazonState, Config, Ctx};

/// Marketplace name in fault rules and records; also the mount prefix.
pub const MARKETPLACE: &str = "amazon";
/// Default selling partner id.
pub const DEFAULT_SELLER_ID: &str = "A2SANDBOXSELLER1";
/// Default marketplace (amazon.com).
pub const DEFAULT_MARKETPLACE_ID: &str = "ATVPDKIKX0DER";
/// Default currency.
pub const DEFAULT_CURRENCY: &str = "USD";
/// Default product type of seeded listings.
pub const DEFAULT_PRODUCT_TYPE: &str = "PRODUCT";
/// Lifetime of an LWA access token (`expires_in: 3600`).
pub const ACCESS_TOKEN_TTL_SECS: u64 = 3600;
/// Default time a feed takes from IN_QUEUE to DONE.
pub const DEFAULT_FEED_PROCESSING: Duration = Duration::from_secs(2);
/// How often the background task moves feeds along.
const FEED_TICK: Duration = Duration::from_millis(20);

/// Operation name of the LWA token endpoint.
pub const OP_TOKEN: &str = "token";
/// Operation name of the presigned upload (PUT).
pub const OP_UPLOAD: &str = "uploadFeedDocument";
/// Operation name of the presigned download (GET).
pub const OP_DOWNLOAD: &str = "downloadFeedDocument";

/// Every SP-API operation with its documented default usage plan: (operation, rate per second,
/// burst) — contracts/README.md §1.2 and the specs' "Usage Plan" tables.
pub const USAGE_PLANS: [(&str, f64, u32); 13] = [
    ("getListingsItem", 5.0, 10),
    ("putListingsItem", 5.0, 10),
    ("patchListingsItem", 5.0, 5),
    ("deleteListingsItem", 5.0, 5),
    ("searchListingsItems", 5.0, 5),
    ("createFeedDocument", 0.5, 15),
    ("createFeed", 0.0083, 15),
    ("getFeed", 2.0, 15),
    ("cancelFeed", 2.0, 15),
    ("getFeeds", 0.0222, 10),
    ("getFeedDocument", 0.0222, 10),
    ("searchOrders", 0.0056, 20),
    ("getOrder", 0.5, 30),
];
/// JSON_LISTINGS_FEED submissions allowed per [`JSON_LISTINGS_FEED_WINDOW_SECS`] (also the burst).
pub const JSON_LISTINGS_FEED_PER_WINDOW: u32 = 5;
/// The JSON_LISTINGS_FEED window.
pub const JSON_LISTINGS_FEED_WINDOW_SECS: u32 = 300;

/// The app's LWA keys and the seller's refresh token. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmazonCredentials {
    /// LWA client id (`amzn1.application-oa2-client.…`).
    pub client_id: String,
    /// LWA client secret.
    pub client_secret: String,
    /// The seller's long-lived refresh token (`Atzr|…`).
    pub refresh_token: String,
}

impl fmt::Debug for AmazonCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmazonCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("refresh_token", &"***")
            .finish()
    }
}

impl Default for AmazonCredentials {
    fn default() -> Self {
        AmazonCredentials {
            client_id: "amzn1.application-oa2-client.omnistocksandbox".into(),
            client_secret: "amzn1.oa2-cs.v1.sandbox-client-secret".into(),
            refresh_token: "Atzr|sandbox-refresh-token".into(),
        }
    }
}

fn default_product_type() -> String {
    DEFAULT_PRODUCT_TYPE.to_owned()
}

/// A complete, buyable listing that exists before the test starts: title, condition `new_new`,
/// `DEFAULT` quantity and a price in the marketplace's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmazonSeedListing {
    /// The SKU.
    pub sku: String,
    /// Merchant-fulfilled (`DEFAULT`) quantity.
    pub quantity: u32,
    /// Price, a decimal string with at most two decimals (`"19.99"`).
    pub price: String,
    /// Amazon product type.
    #[serde(default = "default_product_type")]
    pub product_type: String,
    /// Title (`item_name`); empty = `Sandbox item <sku>`.
    #[serde(default)]
    pub title: String,
}

impl AmazonSeedListing {
    /// A buyable listing of `quantity` at `price`.
    pub fn new(sku: impl Into<String>, quantity: u32, price: &str) -> Self {
        let sku = sku.into();
        AmazonSeedListing {
            title: format!("Sandbox item {sku}"),
            sku,
            quantity,
            price: price.to_owned(),
            product_type: default_product_type(),
        }
    }
}

/// How to run the Amazon fake.
#[derive(Debug, Clone)]
pub struct AmazonOptions {
    /// Accepted LWA keys and refresh token.
    pub credentials: AmazonCredentials,
    /// The selling partner the credentials speak for.
    pub seller_id: String,
    /// The seller's one marketplace.
    pub marketplace_id: String,
    /// That marketplace's currency.
    pub currency: String,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// Token buckets per operation name (plus [`JSON_LISTINGS_FEED`]); absent = unlimited.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// How long a feed takes from IN_QUEUE (first half) through IN_PROGRESS to DONE.
    pub feed_processing: Duration,
    /// Store processing reports GZIP-compressed (`compressionAlgorithm: GZIP`).
    pub gzip_reports: bool,
    /// Listings present at start.
    pub listings: Vec<AmazonSeedListing>,
}

impl Default for AmazonOptions {
    fn default() -> Self {
        let mut rate_limits: BTreeMap<String, RateLimit> = USAGE_PLANS
            .iter()
            .map(|(op, rate, burst)| ((*op).to_owned(), RateLimit::new(*rate, *burst)))
            .collect();
        rate_limits.insert(
            JSON_LISTINGS_FEED.to_owned(),
            RateLimit::new(
                f64::from(JSON_LISTINGS_FEED_PER_WINDOW)
                    / f64::from(JSON_LISTINGS_FEED_WINDOW_SECS),
                JSON_LISTINGS_FEED_PER_WINDOW,
            ),
        );
        AmazonOptions {
            credentials: AmazonCredentials::default(),
            seller_id: DEFAULT_SELLER_ID.into(),
            marketplace_id: DEFAULT_MARKETPLACE_ID.into(),
            currency: DEFAULT_CURRENCY.into(),
            access_token_ttl: Duration::from_secs(ACCESS_TOKEN_TTL_SECS),
            rate_limits,
            feed_processing: DEFAULT_FEED_PROCESSING,
            gzip_reports: true,
            listings: Vec::new(),
        }
    }
}

impl AmazonOptions {
    /// Defaults without rate limits (for tests that are not about throttling).
    pub fn unlimited() -> Self {
        AmazonOptions {
            rate_limits: BTreeMap::new(),
            ..AmazonOptions::default()
        }
    }

    /// Every SP-API operation (and the JSON_LISTINGS_FEED bucket) at 5 requests per second,
    /// burst 15 — the real SP-API sandbox's throttling.
    pub fn sandbox_plan() -> Self {
        let mut rate_limits: BTreeMap<String, RateLimit> = USAGE_PLANS
            .iter()
            .map(|(op, _, _)| ((*op).to_owned(), RateLimit::new(5.0, 15)))
            .collect();
        rate_limits.insert(JSON_LISTINGS_FEED.to_owned(), RateLimit::new(5.0, 15));
        AmazonOptions {
            rate_limits,
            ..AmazonOptions::default()
        }
    }
}

/// A SKU's state as the seller sees it in Seller Central.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmazonListingSnapshot {
    /// The SKU.
    pub sku: String,
    /// Its ASIN.
    pub asin: String,
    /// Its product type.
    pub product_type: String,
    /// `DEFAULT` (merchant-fulfilled) quantity.
    pub quantity: Option<u32>,
    /// `purchasable_offer` price.
    pub price: Option<Money>,
    /// `BUYABLE` / `DISCOVERABLE`.
    pub status: Vec<String>,
    /// Issues as getListingsItem shows them.
    pub issues: Vec<Value>,
    /// All attributes.
    pub attributes: Value,
}

/// A feed as the seller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedSnapshot {
    /// The feedId.
    pub feed_id: String,
    /// `processingStatus`.
    pub status: String,
    /// Messages in the input document (0 when it is not a JSON feed document).
    pub messages: usize,
    /// The input feed document.
    pub document_id: String,
    /// The processing report's document, once processed.
    pub result_document_id: Option<String>,
}

/// The fake's shared core.
pub(crate) struct Amazon {
    pub(crate) shared: Arc<Shared>,
    state: Mutex<AmazonState>,
    pub(crate) credentials: AmazonCredentials,
    pub(crate) token_ttl: Duration,
    pub(crate) acct: Account,
}

impl fmt::Debug for Amazon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Amazon")
            .field("credentials", &self.credentials)
            .field("seller_id", &self.acct.seller_id)
            .finish_non_exhaustive()
    }
}

impl Amazon {
    pub(crate) fn lock(&self) -> MutexGuard<'_, AmazonState> {
        self.state.lock().expect("amazon state lock")
    }

    /// Runs `f` with the state locked and a context stamped now.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut AmazonState, &Ctx<'_>) -> R) -> R {
        let ctx = Ctx {
            now: self.shared.clock.now(),
            rec: &self.shared.recorder,
            rng: &self.shared.rng,
            faults: &self.shared.faults,
        };
        let mut st = self.lock();
        f(&mut st, &ctx)
    }

    /// Locked state with feeds moved along to now.
    fn pumped<R>(&self, f: impl FnOnce(&mut AmazonState, &Ctx<'_>) -> R) -> R {
        self.with(|st, ctx| {
            st.pump_feeds(ctx);
            f(st, ctx)
        })
    }
}

/// Inspection and control of the Amazon fake, for tests and the demo. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AmazonHandle {
    pub(crate) inner: Arc<Amazon>,
}

static MARKET: Market = Market {
    name: MARKETPLACE,
    classify,
    system_error_body: |status| error::AmazonError::system(status).body().to_string(),
    throttled_body: || error::AmazonError::quota_exceeded().body().to_string(),
};

/// Names the operation a request calls (the models' operationIds, plus `token`,
/// `uploadFeedDocument`, `downloadFeedDocument`). Each operation is its own rate-limit group.
fn classify(method: &Method, path: &str) -> Option<Operation> {
    let path = path.strip_prefix("/amazon").unwrap_or(path);
    let op = |name: &'static str, readonly| {
        Some(Operation {
            name,
            group: name,
            readonly,
        })
    };
    let m = method.as_str();
    if path == "/auth/o2/token" {
        return if m == "POST" {
            op(OP_TOKEN, false)
        } else {
            None
        };
    }
    if let Some(key) = path.strip_prefix("/_s3/") {
        if key.is_empty() || key.contains('/') {
            return None;
        }
        return match m {
            "PUT" => op(OP_UPLOAD, false),
            "GET" => op(OP_DOWNLOAD, true),
            _ => None,
        };
    }
    let segs = |rest: &str| -> Vec<String> { rest.split('/').map(str::to_owned).collect() };
    if let Some(rest) = path.strip_prefix("/listings/2021-08-01/items/") {
        let s = segs(rest);
        if s.iter().any(String::is_empty) {
            return None;
        }
        return match (m, s.len()) {
            ("GET", 1) => op("searchListingsItems", true),
            ("GET", 2) => op("getListingsItem", true),
            ("PUT", 2) => op("putListingsItem", false),
            ("PATCH", 2) => op("patchListingsItem", false),
            ("DELETE", 2) => op("deleteListingsItem", false),
            _ => None,
        };
    }
    if let Some(rest) = path.strip_prefix("/feeds/2021-06-30/") {
        let s = segs(rest);
        let refs: Vec<&str> = s.iter().map(String::as_str).collect();
        return match (m, refs.as_slice()) {
            ("POST", ["documents"]) => op("createFeedDocument", false),
            ("GET", ["documents", id]) if !id.is_empty() => op("getFeedDocument", true),
            ("POST", ["feeds"]) => op("createFeed", false),
            ("GET", ["feeds"]) => op("getFeeds", true),
            ("GET", ["feeds", id]) if !id.is_empty() => op("getFeed", true),
            ("DELETE", ["feeds", id]) if !id.is_empty() => op("cancelFeed", false),
            _ => None,
        };
    }
    if let Some(rest) = path.strip_prefix("/orders/2026-01-01/") {
        let s = segs(rest);
        let refs: Vec<&str> = s.iter().map(String::as_str).collect();
        return match (m, refs.as_slice()) {
            ("GET", ["orders"]) => op("searchOrders", true),
            ("GET", ["orders", id]) if !id.is_empty() => op("getOrder", true),
            _ => None,
        };
    }
    None
}

impl AmazonHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: AmazonOptions) -> anyhow::Result<AmazonHandle> {
        for (op, limit) in &opts.rate_limits {
            shared.limiter.set(MARKETPLACE, op, Some(*limit));
        }
        let acct = Account {
            seller_id: opts.seller_id.clone(),
            marketplace_id: opts.marketplace_id.clone(),
            currency: opts.currency.clone(),
        };
        let cfg = Config {
            acct: acct.clone(),
            feed_processing: opts.feed_processing,
            gzip_reports: opts.gzip_reports,
            base_url: shared.base_url.clone(),
        };
        let now = shared.clock.now();
        let handle = AmazonHandle {
            inner: Arc::new(Amazon {
                shared,
                state: Mutex::new(AmazonState::new(cfg, now)),
                credentials: opts.credentials,
                token_ttl: opts.access_token_ttl,
                acct,
            }),
        };
        for seed in opts.listings {
            let sku = seed.sku.clone();
            handle
                .seed_listing(seed)
                .map_err(|e| anyhow::anyhow!("seeding Amazon listing {sku:?}: {e}"))?;
        }
        Ok(handle)
    }

    /// The `/amazon` router.
    pub(crate) fn router(&self) -> Router {
        let gate = GateCtx {
            shared: self.inner.shared.clone(),
            market: &MARKET,
        };
        let state = self.inner.clone();
        let open = Router::new()
            .route("/auth/o2/token", post(auth::token))
            .route("/_s3/{doc_id}", put(feeds::upload).get(feeds::download))
            .with_state(state.clone());
        let api = Router::new()
            .route(
                "/listings/2021-08-01/items/{seller_id}",
                get(listings::search_items),
            )
            .route(
                "/listings/2021-08-01/items/{seller_id}/{sku}",
                get(listings::get_item)
                    .put(listings::put_item)
                    .patch(listings::patch_item)
                    .delete(listings::delete_item),
            )
            .route(
                "/feeds/2021-06-30/documents",
                post(feeds::create_feed_document),
            )
            .route(
                "/feeds/2021-06-30/documents/{doc_id}",
                get(feeds::get_feed_document),
            )
            .route(
                "/feeds/2021-06-30/feeds",
                post(feeds::create_feed).get(feeds::get_feeds),
            )
            .route(
                "/feeds/2021-06-30/feeds/{feed_id}",
                get(feeds::get_feed).delete(feeds::cancel_feed),
            )
            .route("/orders/2026-01-01/orders", get(orders::search_orders))
            .route(
                "/orders/2026-01-01/orders/{order_id}",
                get(orders::get_order),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::authorize,
            ))
            .with_state(state);
        open.merge(api)
            .route_layer(axum::middleware::from_fn_with_state(
                gate,
                crate::gate::gate,
            ))
    }

    /// Starts the task that moves feeds along the sandbox clock until `shutdown`.
    pub(crate) fn spawn_feed_processor(&self, shutdown: CancellationToken, tracker: &TaskTracker) {
        let weak: Weak<Amazon> = Arc::downgrade(&self.inner);
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(FEED_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let Some(amz) = weak.upgrade() else { break };
                amz.with(|st, ctx| st.pump_feeds(ctx));
            }
        });
    }

    // ---- identity -------------------------------------------------------------------------------

    /// The credentials the token endpoint accepts.
    pub fn credentials(&self) -> AmazonCredentials {
        self.inner.credentials.clone()
    }

    /// The selling partner id listings paths must name.
    pub fn seller_id(&self) -> String {
        self.inner.acct.seller_id.clone()
    }

    /// The seller's marketplace.
    pub fn marketplace_id(&self) -> String {
        self.inner.acct.marketplace_id.clone()
    }

    // ---- seeding and drift ----------------------------------------------------------------------

    /// Creates (or replaces) a complete listing as state that existed before the test: not
    /// logged as a write.
    pub fn seed_listing(&self, seed: AmazonSeedListing) -> Result<(), ControlError> {
        let sku_chars = seed.sku.chars().count();
        if sku_chars == 0
            || sku_chars > listing::MAX_SKU_CHARS
            || seed.sku.chars().any(char::is_control)
        {
            return Err(ControlError::Invalid(format!("invalid SKU {:?}", seed.sku)));
        }
        let Some(minor) = minor_units(seed.price.trim()).filter(|m| *m > 0) else {
            return Err(ControlError::Invalid(format!(
                "invalid price {:?}",
                seed.price
            )));
        };
        if seed.product_type.trim().is_empty() {
            return Err(ControlError::Invalid("empty product type".into()));
        }
        let title = if seed.title.trim().is_empty() {
            format!("Sandbox item {}", seed.sku)
        } else {
            seed.title.clone()
        };
        self.inner.with(|st, ctx| {
            let acct = st.cfg.acct.clone();
            let mp = acct.marketplace_id.as_str();
            let (asin, created) = match st.listings.get(&seed.sku) {
                Some(l) => (l.asin.clone(), l.created),
                None => (st.new_asin(ctx.rng), ctx.now),
            };
            let attributes = json!({
                "item_name": [{"value": title, "language_tag": "en_US", "marketplace_id": mp}],
                "condition_type": [{"value": "new_new", "marketplace_id": mp}],
                "fulfillment_availability": [{"fulfillment_channel_code": listing::DEFAULT_CHANNEL,
                                              "quantity": seed.quantity}],
            });
            let mut l = Listing {
                sku: seed.sku.clone(),
                asin,
                product_type: seed.product_type.clone(),
                attributes: attributes.as_object().cloned().unwrap_or_default(),
                created,
                updated: ctx.now,
            };
            l.set_price(minor, &acct);
            st.listings.insert(seed.sku.clone(), l);
        });
        Ok(())
    }

    /// Changes a SKU's `DEFAULT` quantity as the seller would in Seller Central, without logging
    /// a write: drift for the reconciler.
    pub fn set_quantity_out_of_band(&self, sku: &str, quantity: u32) -> Result<(), ControlError> {
        self.inner.pumped(|st, ctx| {
            let l = st
                .listings
                .get_mut(sku)
                .ok_or_else(|| ControlError::UnknownSku(sku.to_owned()))?;
            l.set_default_quantity(quantity);
            l.updated = ctx.now;
            Ok(())
        })
    }

    /// Changes a SKU's price without logging a write.
    pub fn set_price_out_of_band(&self, sku: &str, price: Money) -> Result<(), ControlError> {
        if price.currency != self.inner.acct.currency {
            return Err(ControlError::Invalid(format!(
                "currency {} is not the marketplace's ({})",
                price.currency, self.inner.acct.currency
            )));
        }
        let Some(minor) = minor_units(price.value.trim()).filter(|m| *m > 0) else {
            return Err(ControlError::Invalid(format!(
                "invalid price {:?}",
                price.value
            )));
        };
        self.inner.pumped(|st, ctx| {
            let acct = st.cfg.acct.clone();
            let l = st
                .listings
                .get_mut(sku)
                .ok_or_else(|| ControlError::UnknownSku(sku.to_owned()))?;
            l.set_price(minor, &acct);
            l.updated = ctx.now;
            Ok(())
        })
    }

    // ---- inspection -----------------------------------------------------------------------------

    /// The `DEFAULT` (merchant-fulfilled) quantity; `None` without a listing or that entry.
    pub fn current_quantity(&self, sku: &str) -> Option<u32> {
        self.inner
            .pumped(|st, _| st.listings.get(sku).and_then(Listing::default_quantity))
    }

    /// The `purchasable_offer` price.
    pub fn current_price(&self, sku: &str) -> Option<Money> {
        self.inner.pumped(|st, _| {
            let acct = st.cfg.acct.clone();
            st.listings.get(sku).and_then(|l| l.price(&acct))
        })
    }

    /// Everything about one SKU.
    pub fn listing(&self, sku: &str) -> Option<AmazonListingSnapshot> {
        self.inner.pumped(|st, _| {
            let acct = st.cfg.acct.clone();
            let l = st.listings.get(sku)?;
            Some(AmazonListingSnapshot {
                sku: l.sku.clone(),
                asin: l.asin.clone(),
                product_type: l.product_type.clone(),
                quantity: l.default_quantity(),
                price: l.price(&acct),
                status: l.status(&acct).into_iter().map(str::to_owned).collect(),
                issues: l
                    .issues()
                    .iter()
                    .map(|i| i.to_listing_json(&acct.marketplace_id))
                    .collect(),
                attributes: Value::Object(l.attributes.clone()),
            })
        })
    }

    /// A listing as getListingsItem renders it with every `includedData`.
    pub fn listing_item(&self, sku: &str) -> Option<Value> {
        self.inner.pumped(|st, _| {
            let acct = st.cfg.acct.clone();
            st.listings
                .get(sku)
                .map(|l| l.render(Included::all(), &acct))
        })
    }

    /// Every SKU, sorted.
    pub fn skus(&self) -> Vec<String> {
        self.inner
            .pumped(|st, _| st.listings.keys().cloned().collect())
    }

    // ---- orders ---------------------------------------------------------------------------------

    /// A buyer checks out these lines from the merchant (UNSHIPPED, fulfilledBy MERCHANT); lowers
    /// the `DEFAULT` quantity. Refused for unknown SKUs, listings that are not DISCOVERABLE, and
    /// when the quantity is short.
    pub fn place_order(&self, lines: &[OrderLine]) -> Result<String, ControlError> {
        self.inner
            .pumped(|st, ctx| st.place_order(ctx, lines, false))
    }

    /// An FBA order (fulfilledBy AMAZON): the `DEFAULT` quantity is untouched.
    pub fn place_fba_order(&self, lines: &[OrderLine]) -> Result<String, ControlError> {
        self.inner
            .pumped(|st, ctx| st.place_order(ctx, lines, true))
    }

    /// The buyer cancels an UNSHIPPED order: CANCELLED; a merchant order's units go back.
    pub fn cancel_order(&self, order_id: &str) -> Result<(), ControlError> {
        self.inner.pumped(|st, ctx| st.cancel_order(ctx, order_id))
    }

    /// The order ships: SHIPPED.
    pub fn ship_order(&self, order_id: &str) -> Result<(), ControlError> {
        self.inner.pumped(|st, ctx| st.ship_order(ctx, order_id))
    }

    /// An order as getOrder renders it with every `includedData`.
    pub fn order(&self, order_id: &str) -> Option<Value> {
        self.inner.with(|st, _| {
            st.orders
                .get(order_id)
                .map(|o| o.render(orders::OrderIncluded::all()))
        })
    }

    /// Every orderId, oldest first.
    pub fn order_ids(&self) -> Vec<String> {
        self.inner.with(|st, _| {
            let mut all: Vec<_> = st.orders.values().collect();
            all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
            all.into_iter().map(|o| o.id.clone()).collect()
        })
    }

    // ---- feeds ----------------------------------------------------------------------------------

    /// Every feed, oldest first.
    pub fn feeds(&self) -> Vec<FeedSnapshot> {
        self.inner
            .pumped(|st, _| st.feeds.values().map(feeds::Feed::snapshot).collect())
    }

    /// A feed's processing report, decompressed and parsed (`None` until processed).
    pub fn feed_report(&self, feed_id: &str) -> Option<Value> {
        let bytes = self.inner.pumped(|st, _| {
            let id: u64 = feed_id.parse().ok()?;
            let doc = st.documents.get(st.feeds.get(&id)?.result_doc.as_ref()?)?;
            Some((doc.content.clone()?, doc.compressed))
        })?;
        let (content, compressed) = bytes;
        if compressed {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&content[..])
                .read_to_end(&mut out)
                .ok()?;
            serde_json::from_slice(&out).ok()
        } else {
            serde_json::from_slice(&content).ok()
        }
    }

    /// While held, submitted feeds stay IN_QUEUE (for kill-mid-feed tests); releasing lets them
    /// run from now on.
    pub fn hold_feeds(&self, hold: bool) {
        self.inner.with(|st, ctx| {
            st.set_hold(hold, ctx.now);
            st.pump_feeds(ctx);
        });
    }

    /// The next `n` feeds submitted end FATAL, with a feed-level issue in their report.
    pub fn fail_next_feeds(&self, n: usize) {
        self.inner.with(|st, _| st.fail_next_feeds = n);
    }

    /// Moves feeds along to the current sandbox time now (the background task does it every
    /// 20 ms anyway).
    pub fn process_feeds(&self) {
        self.inner.with(|st, ctx| st.pump_feeds(ctx));
    }

    // ---- records --------------------------------------------------------------------------------

    /// Every write applied to Amazon, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.inner.shared.recorder.writes(Some(MARKETPLACE))
    }

    /// Every Amazon request received, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.shared.recorder.requests(Some(MARKETPLACE))
    }

    /// Requests received for one operation (e.g. `patchListingsItem`, `token`), whatever their
    /// outcome.
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

    /// 429 responses sent (buckets and fault rules).
    pub fn count_429(&self) -> u64 {
        self.inner.shared.recorder.count_429(MARKETPLACE)
    }

    /// 429 responses sent by the buckets alone.
    pub fn throttled_count(&self) -> u64 {
        self.inner.shared.recorder.throttled(MARKETPLACE)
    }

    // ---- knobs ----------------------------------------------------------------------------------

    /// Sets or removes an operation's bucket (or [`JSON_LISTINGS_FEED`]'s); a new bucket starts
    /// full.
    pub fn set_rate_limit(&self, operation: &str, limit: Option<RateLimit>) {
        self.inner.shared.limiter.set(MARKETPLACE, operation, limit);
    }

    /// The bucket of an operation.
    pub fn rate_limit(&self, operation: &str) -> Option<RateLimit> {
        self.inner.shared.limiter.get(MARKETPLACE, operation)
    }

    /// Expires every access token issued so far (calls then get "has expired").
    pub fn expire_access_tokens(&self) {
        self.inner.with(|st, ctx| {
            for exp in st.tokens.values_mut() {
                if *exp > ctx.now {
                    *exp = ctx.now;
                }
            }
        });
    }

    /// Moves sandbox time forward (shared by all marketplaces): tokens and presigned URLs expire,
    /// feeds progress.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.shared.clock.advance(by);
    }

    /// Adds a fault rule for Amazon (target: an operation name, a path glob or `*`).
    pub fn add_fault(&self, target: &str, kind: FaultKind) -> FaultId {
        self.faults().add(FaultRule::new(MARKETPLACE, target, kind))
    }

    /// The sandbox's fault rules (all marketplaces).
    pub fn faults(&self) -> FaultsHandle {
        FaultsHandle {
            faults: self.inner.shared.faults.clone(),
        }
    }
}

#[cfg(test)]
mod classify_tests {
    use super::*;

    #[test]
    fn operations_are_named_like_the_models() {
        let name = |m: Method, p: &str| classify(&m, p).map(|o| o.name);
        assert_eq!(name(Method::POST, "/amazon/auth/o2/token"), Some("token"));
        assert_eq!(
            name(Method::GET, "/listings/2021-08-01/items/S"),
            Some("searchListingsItems")
        );
        assert_eq!(
            name(Method::PATCH, "/listings/2021-08-01/items/S/A%2FB"),
            Some("patchListingsItem")
        );
        assert_eq!(name(Method::GET, "/listings/2021-08-01/items/S/"), None);
        assert_eq!(
            name(Method::DELETE, "/feeds/2021-06-30/feeds/123"),
            Some("cancelFeed")
        );
        assert_eq!(
            name(Method::GET, "/orders/2026-01-01/orders/111-1-1"),
            Some("getOrder")
        );
        assert_eq!(name(Method::PUT, "/_s3/doc"), Some("uploadFeedDocument"));
        assert_eq!(name(Method::GET, "/nope"), None);
    }
}
