//! The eBay fake: OAuth token endpoint, Sell Inventory API v1 and Sell Fulfillment API v1, mounted
//! at `/ebay` with eBay's own paths (`{base}/ebay/identity/v1/oauth2/token`,
//! `{base}/ebay/sell/inventory/v1/...`, `{base}/ebay/sell/fulfillment/v1/...`).
//!
//! Faithful to contracts/README.md §2 and the official specs (`sell_inventory_v1_oas3.json`
//! v1.18.4, `sell_fulfillment_v1_oas3.json`). Limits modelled, and where they come from:
//!
//! | limit | value | source |
//! |---|---|---|
//! | access token lifetime | [`ACCESS_TOKEN_TTL_SECS`] = 7200 s (configurable) | §2.1, oauth-refresh-token-request |
//! | SKU length | [`MAX_SKU_LEN`] = 50 | §2.3, spec `sku` path param |
//! | bulkUpdatePriceQuantity / bulkGetInventoryItem entries | [`MAX_BULK_REQUESTS`] = 25 | §2.3 and eBay's bulk-updates guide |
//! | getInventoryItems `limit` | 1..=[`MAX_INVENTORY_PAGE`] (200), default 25 | §2.3, spec |
//! | getOffers `limit` | default [`DEFAULT_OFFERS_PAGE`] = 100 | spec |
//! | getOrders `limit` | 1..=[`MAX_ORDERS_PAGE`] (200, more = error 31100), default 50 | §2.4, spec |
//! | getOrders `orderIds` | ≤ [`MAX_ORDER_IDS`] = 50 (error 30900) | §2.4, spec |
//! | getOrders without filter | orders created in the last [`DEFAULT_ORDER_WINDOW_DAYS`] = 90 days | spec |
//! | revisions per listing per UTC calendar day | [`REVISION_LIMIT_PER_DAY`] = 250 (configurable) | §2.2, spec notes |
//! | daily call quotas | Inventory [`INVENTORY_CALLS_PER_DAY`] = 2,000,000; Fulfillment [`FULFILLMENT_CALLS_PER_DAY`] = 100,000 | §2.2 |
//!
//! eBay publishes daily quotas only; the sandbox enforces each as a token bucket refilling at
//! quota/86,400 per second holding [`DEFAULT_BURST_WINDOW_SECS`] seconds' worth (a sandbox choice).
//! Throttled calls get HTTP 429 with the documented errorId 2001 body and no `Retry-After` (eBay
//! documents none). Rate-limit groups: `inventory`, `fulfillment`, `identity` (token endpoint;
//! unlimited unless set).
//!
//! Behaviour worth knowing when writing a connector against it:
//! - Auth: `Authorization: Basic base64(client_id:client_secret)` on the token endpoint, form body
//!   `grant_type=refresh_token&refresh_token=…[&scope=…]` (scopes must be a subset of those
//!   granted); `client_credentials` yields an *application* token, which Sell APIs refuse (403,
//!   1100). API calls: no header → 400/1002, non-Bearer → 400/1003, unknown or expired token →
//!   401/1001, missing scope → 403/1100 (eBay's common errors).
//! - `Content-Language` is required on createOrReplaceInventoryItem, createOffer, updateOffer
//!   (400/25709 otherwise); bodies must be `application/json` (415/2004), ≤ 2 MiB (413/2004), and
//!   valid JSON (400/2004).
//! - createOrReplaceInventoryItem is a full replace: omitting `availability` clears the quantity.
//! - getInventoryItems (sorted by SKU) and getOffers take `offset` as a **page number**, as the
//!   spec says; follow `next`. getInventoryItems' `size` is the number of pages (spec), getOffers' the page length.
//!   getOffers for a SKU without offers → 404/25713.
//! - createOffer for a SKU that already has an offer on that marketplace → 400/25002 "Offer entity
//!   already exists" with parameter `offerId` (so a client can recover after a lost response).
//! - publishOffer requires: the inventory item with a quantity set, `pricingSummary.price`,
//!   `categoryId`, the three `listingPolicies` ids, and a `merchantLocationKey` created with
//!   createInventoryLocation; otherwise 400 listing every missing field (25002–25012).
//! - bulkUpdatePriceQuantity: >25 entries → 400/25709; per-entry results with HTTP 200 when all
//!   succeed and 207 otherwise; rules in `state::EbayState::bulk_entry`. A listing shows
//!   min(item quantity, offer availableQuantity).
//! - Revisions: createOrReplaceInventoryItem (on a SKU with a live listing), updateOffer on a live
//!   offer, re-publishing, and each bulk entry touching a listing count one revision of that
//!   listing for the current UTC day; at the cap further revisions fail with 25002 (eBay documents
//!   no dedicated id) until the next day ([`EbayHandle::advance_clock`] moves days).
//! - getOrders: `filter=lastmodifieddate:[from..to]`, `creationdate:[…]` (wins when both), and
//!   `orderfulfillmentstatus:{NOT_STARTED|IN_PROGRESS}` or `{FULFILLED|IN_PROGRESS}`; the brackets,
//!   braces and pipe must arrive percent-encoded (raw ones → 400/3002). Results are sorted by
//!   lastModifiedDate when filtering on it, else by creationDate (oldest first); `offset` counts
//!   records. `next`/`prev` are absolute URLs.
//! - Orders come only from the control API ([`EbayHandle::place_order`]); a sale lowers both the
//!   item quantity and the offer's availableQuantity; cancel and ship bump lastModifiedDate
//!   (strictly increasing). Cancelling does not restock.
//!
//! Not modelled: inventory item groups (multi-variation listings), bulkCreateOrReplaceInventoryItem,
//! bulkCreateOffer/bulkPublishOffer, auctions, listing fees, shipping fulfillments, refunds, the
//! authorization-code grant and the token endpoint's own daily limits, `fieldGroups=TAX_BREAKDOWN`.
//!
//! Every response shape is checked field by field against the official schemas by a test
//! (`responses_match_the_official_schemas`; skipped with a message when the specs are absent).
//!
//! Control (Rust: [`EbayHandle`]; HTTP: `/_control/ebay/...`, routes in the `control` module).

pub(crate) mod control;
pub mod error;
mod state;

mod auth;
mod fulfillment;
mod inventory;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::faults::{FaultId, FaultKind, FaultRule, FaultsHandle};
use crate::gate::{GateCtx, Market, Operation};
use crate::ratelimit::RateLimit;
use crate::record::{Money, WriteRecord};

pub use error::{
    ERR_BAD_TOKEN_TYPE, ERR_INSUFFICIENT_PERMISSIONS, ERR_INVALID_ACCESS_TOKEN,
    ERR_INVALID_REQUEST, ERR_MISSING_ACCESS_TOKEN, ERR_TOO_MANY_REQUESTS, ERR_USER,
};

/// Marketplace name in fault rules and records; also the mount prefix.
pub const MARKETPLACE: &str = "ebay";

/// Lifetime of a user access token (contracts/README.md §2.1: `expires_in: 7200`).
pub const ACCESS_TOKEN_TTL_SECS: u64 = 7200;
/// Longest SKU (spec: "Max length: 50").
pub const MAX_SKU_LEN: usize = 50;
/// Most entries in one bulk call (bulkUpdatePriceQuantity, bulkGetInventoryItem).
pub const MAX_BULK_REQUESTS: usize = 25;
/// Largest getInventoryItems page.
pub const MAX_INVENTORY_PAGE: usize = 200;
/// Default getInventoryItems page.
pub const DEFAULT_INVENTORY_PAGE: usize = 25;
/// Default getOffers page.
pub const DEFAULT_OFFERS_PAGE: usize = 100;
/// Largest getOrders page; more is an error (31100).
pub const MAX_ORDERS_PAGE: usize = 200;
/// Default getOrders page.
pub const DEFAULT_ORDERS_PAGE: usize = 50;
/// Most ids in getOrders `orderIds`.
pub const MAX_ORDER_IDS: usize = 50;
/// getOrders without a date filter returns orders created in this many days.
pub const DEFAULT_ORDER_WINDOW_DAYS: i64 = 90;
/// Revisions per listing per UTC calendar day.
pub const REVISION_LIMIT_PER_DAY: u32 = 250;
/// Inventory API default daily call quota.
pub const INVENTORY_CALLS_PER_DAY: u64 = 2_000_000;
/// Fulfillment API default daily call quota (before Application Growth Check).
pub const FULFILLMENT_CALLS_PER_DAY: u64 = 100_000;
/// Bucket size of the default limits, in seconds of quota (a sandbox choice, not an eBay number).
pub const DEFAULT_BURST_WINDOW_SECS: u32 = 60;
/// Longest `merchantLocationKey` eBay accepts.
pub const MAX_LOCATION_KEY_LEN: usize = 36;

/// Scope for inventory writes.
pub const SCOPE_INVENTORY: &str = "https://api.ebay.com/oauth/api_scope/sell.inventory";
/// Scope for fulfillment.
pub const SCOPE_FULFILLMENT: &str = "https://api.ebay.com/oauth/api_scope/sell.fulfillment";
/// The public scope of application (client-credentials) tokens.
pub const SCOPE_PUBLIC: &str = "https://api.ebay.com/oauth/api_scope";

/// Marketplace of seeded offers and orders.
pub const DEFAULT_MARKETPLACE_ID: &str = "EBAY_US";
/// Location key seeded listings use (and that [`EbayHandle::seed_listing`] creates).
pub const DEFAULT_LOCATION_KEY: &str = "main";
/// The seller every order belongs to.
pub const SELLER_ID: &str = "sandbox_seller";
/// Buyer of orders placed without one.
pub const DEFAULT_BUYER: &str = "sandbox_buyer";

/// Rate-limit group of the Inventory API.
pub const GROUP_INVENTORY: &str = "inventory";
/// Rate-limit group of the Fulfillment API.
pub const GROUP_FULFILLMENT: &str = "fulfillment";
/// Rate-limit group of the token endpoint.
pub const GROUP_IDENTITY: &str = "identity";

/// The app's keys and the seller's grant. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EbayCredentials {
    /// App id (client id).
    pub client_id: String,
    /// Cert id (client secret).
    pub client_secret: String,
    /// The seller's long-lived refresh token.
    pub refresh_token: String,
    /// Scopes the refresh token was granted.
    pub scopes: Vec<String>,
}

impl fmt::Debug for EbayCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EbayCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("refresh_token", &"***")
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl Default for EbayCredentials {
    fn default() -> Self {
        EbayCredentials {
            client_id: "omnistock-sandbox-app".into(),
            client_secret: "sandbox-cert-id".into(),
            refresh_token: "v^1.1#i^1#r^1#sandbox-refresh-token".into(),
            scopes: vec![
                SCOPE_PUBLIC.into(),
                SCOPE_INVENTORY.into(),
                format!("{SCOPE_INVENTORY}.readonly"),
                SCOPE_FULFILLMENT.into(),
                format!("{SCOPE_FULFILLMENT}.readonly"),
            ],
        }
    }
}

/// A listing that exists before the test starts: inventory item, offer, and (if `publish`) a live
/// listing, at [`DEFAULT_LOCATION_KEY`] on [`DEFAULT_MARKETPLACE_ID`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedListing {
    /// The SKU.
    pub sku: String,
    /// Product title.
    pub title: String,
    /// Item-level (ship-to-home) quantity.
    pub quantity: u32,
    /// Offer price.
    pub price: Money,
    /// Offer availableQuantity; `None` leaves it unset (the listing then shows the item quantity).
    #[serde(default)]
    pub offer_quantity: Option<u32>,
    /// Publish the offer.
    #[serde(default = "yes")]
    pub publish: bool,
}

fn yes() -> bool {
    true
}

impl SeedListing {
    /// A published listing of `quantity` at `price` USD.
    pub fn new(sku: impl Into<String>, quantity: u32, price: &str) -> Self {
        let sku = sku.into();
        SeedListing {
            title: format!("Sandbox item {sku}"),
            sku,
            quantity,
            price: Money::new(price, "USD"),
            offer_quantity: None,
            publish: true,
        }
    }
}

/// Ids of a seeded listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeededListing {
    /// The offer.
    pub offer_id: String,
    /// The live listing, when published.
    pub listing_id: Option<String>,
}

/// How to run the eBay fake.
#[derive(Debug, Clone)]
pub struct EbayOptions {
    /// Accepted app keys and refresh token.
    pub credentials: EbayCredentials,
    /// Access token lifetime.
    pub access_token_ttl: Duration,
    /// Inventory API bucket; `None` = unlimited.
    pub inventory_rate_limit: Option<RateLimit>,
    /// Fulfillment API bucket; `None` = unlimited.
    pub fulfillment_rate_limit: Option<RateLimit>,
    /// Revisions per listing per UTC day.
    pub revision_limit_per_day: u32,
    /// Listings present at start.
    pub listings: Vec<SeedListing>,
    /// Inventory locations the seller set up in Seller Hub before connecting omnistock (offers
    /// must name one). Default: [`DEFAULT_LOCATION_KEY`].
    pub locations: Vec<String>,
}

impl Default for EbayOptions {
    fn default() -> Self {
        EbayOptions {
            credentials: EbayCredentials::default(),
            access_token_ttl: Duration::from_secs(ACCESS_TOKEN_TTL_SECS),
            inventory_rate_limit: Some(RateLimit::from_daily_quota(
                INVENTORY_CALLS_PER_DAY,
                DEFAULT_BURST_WINDOW_SECS,
            )),
            fulfillment_rate_limit: Some(RateLimit::from_daily_quota(
                FULFILLMENT_CALLS_PER_DAY,
                DEFAULT_BURST_WINDOW_SECS,
            )),
            revision_limit_per_day: REVISION_LIMIT_PER_DAY,
            listings: Vec::new(),
            locations: vec![DEFAULT_LOCATION_KEY.to_owned()],
        }
    }
}

impl EbayOptions {
    /// Defaults without rate limits (for tests that are not about throttling).
    pub fn unlimited() -> Self {
        EbayOptions {
            inventory_rate_limit: None,
            fulfillment_rate_limit: None,
            ..EbayOptions::default()
        }
    }
}

/// One order line for [`EbayHandle::place_order`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// The SKU bought (must have a live listing).
    pub sku: String,
    /// Units bought.
    pub quantity: u32,
}

impl OrderLine {
    /// `quantity` units of `sku`.
    pub fn new(sku: impl Into<String>, quantity: u32) -> Self {
        OrderLine {
            sku: sku.into(),
            quantity,
        }
    }
}

/// Why a control action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No inventory item with this SKU.
    #[error("no inventory item with SKU {0:?}")]
    UnknownSku(String),
    /// The SKU has no live (published, priced) listing.
    #[error("SKU {0:?} has no live listing")]
    NotListed(String),
    /// The listing shows fewer units than requested.
    #[error("SKU {sku:?} shows {available}, cannot sell {requested}")]
    InsufficientQuantity {
        /// The SKU.
        sku: String,
        /// What the listing shows.
        available: u32,
        /// What the order wanted.
        requested: u32,
    },
    /// No such order.
    #[error("no order {0:?}")]
    UnknownOrder(String),
    /// The order's state does not allow the action.
    #[error("order {id} is {state}; cannot {action} it")]
    InvalidTransition {
        /// The order.
        id: String,
        /// Its state.
        state: String,
        /// What was asked.
        action: &'static str,
    },
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
}

impl ControlError {
    fn status(&self) -> StatusCode {
        match self {
            ControlError::UnknownSku(_) | ControlError::UnknownOrder(_) => StatusCode::NOT_FOUND,
            ControlError::NotListed(_)
            | ControlError::InsufficientQuantity { .. }
            | ControlError::InvalidTransition { .. } => StatusCode::CONFLICT,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// A SKU's state as a buyer and a seller would see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListingSnapshot {
    /// The SKU.
    pub sku: String,
    /// Inventory item ship-to-home quantity.
    pub item_quantity: Option<u32>,
    /// The first offer's id.
    pub offer_id: Option<String>,
    /// The offer's availableQuantity.
    pub offer_quantity: Option<u32>,
    /// The live listing's id.
    pub listing_id: Option<String>,
    /// What buyers see.
    pub visible_quantity: Option<u32>,
    /// Current price.
    pub price: Option<Money>,
    /// Units sold on the live listing.
    pub sold_quantity: u32,
    /// Revisions of the live listing today.
    pub revisions_today: u32,
}

/// The fake's shared core.
pub(crate) struct Ebay {
    pub(crate) shared: Arc<Shared>,
    state: Mutex<state::EbayState>,
    pub(crate) credentials: EbayCredentials,
    pub(crate) token_ttl: Duration,
    pub(crate) revision_limit: u32,
}

impl fmt::Debug for Ebay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ebay")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Ebay {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::EbayState> {
        self.state.lock().expect("ebay state lock")
    }

    /// Runs `f` with the state locked and a context stamped now.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut state::EbayState, &state::Ctx<'_>) -> R) -> R {
        let ctx = state::Ctx {
            now: self.shared.clock.now(),
            rec: &self.shared.recorder,
            revision_limit: self.revision_limit,
            seeding: false,
        };
        let mut st = self.lock();
        f(&mut st, &ctx)
    }

    /// A `reject_skus` fault for this SKU in this call, as an eBay error.
    pub(crate) fn rejection(
        &self,
        operation: &str,
        path: &str,
        sku: &str,
    ) -> Option<crate::faults::SkuRejection> {
        self.shared
            .faults
            .sku_rejection(MARKETPLACE, operation, path, sku)
    }
}

/// Inspection and control of the eBay fake, for tests and the demo. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EbayHandle {
    pub(crate) inner: Arc<Ebay>,
}

static MARKET: Market = Market {
    name: MARKETPLACE,
    classify,
    system_error_body: |status| error::EbayError::system(status).body().to_string(),
    throttled_body: || error::EbayError::too_many_requests().body().to_string(),
};

const INVENTORY_BASE: &str = "/sell/inventory/v1";
const FULFILLMENT_BASE: &str = "/sell/fulfillment/v1";
const TOKEN_PATH: &str = "/identity/v1/oauth2/token";

/// Names the eBay operation (the spec's operationId) a request calls.
fn classify(method: &Method, path: &str) -> Option<Operation> {
    let path = path.strip_prefix("/ebay").unwrap_or(path);
    let op = |name, group, readonly| {
        Some(Operation {
            name,
            group,
            readonly,
        })
    };
    if path == TOKEN_PATH {
        return (method == Method::POST).then_some(Operation {
            name: "getToken",
            group: GROUP_IDENTITY,
            readonly: false,
        });
    }
    if let Some(rest) = path.strip_prefix(FULFILLMENT_BASE) {
        let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        return match (method.as_str(), segs.as_slice()) {
            ("GET", ["order"]) => op("getOrders", GROUP_FULFILLMENT, true),
            ("GET", ["order", _]) => op("getOrder", GROUP_FULFILLMENT, true),
            _ => None,
        };
    }
    let rest = path.strip_prefix(INVENTORY_BASE)?;
    let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let g = GROUP_INVENTORY;
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["inventory_item"]) => op("getInventoryItems", g, true),
        ("GET", ["inventory_item", _]) => op("getInventoryItem", g, true),
        ("PUT", ["inventory_item", _]) => op("createOrReplaceInventoryItem", g, false),
        ("DELETE", ["inventory_item", _]) => op("deleteInventoryItem", g, false),
        ("POST", ["bulk_get_inventory_item"]) => op("bulkGetInventoryItem", g, true),
        ("POST", ["bulk_update_price_quantity"]) => op("bulkUpdatePriceQuantity", g, false),
        ("GET", ["offer"]) => op("getOffers", g, true),
        ("POST", ["offer"]) => op("createOffer", g, false),
        ("GET", ["offer", _]) => op("getOffer", g, true),
        ("PUT", ["offer", _]) => op("updateOffer", g, false),
        ("DELETE", ["offer", _]) => op("deleteOffer", g, false),
        ("POST", ["offer", _, "publish"]) => op("publishOffer", g, false),
        ("POST", ["offer", _, "withdraw"]) => op("withdrawOffer", g, false),
        ("GET", ["location", _]) => op("getInventoryLocation", g, true),
        ("POST", ["location", _]) => op("createInventoryLocation", g, false),
        _ => None,
    }
}

impl EbayHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: EbayOptions) -> anyhow::Result<EbayHandle> {
        shared
            .limiter
            .set(MARKETPLACE, GROUP_INVENTORY, opts.inventory_rate_limit);
        shared
            .limiter
            .set(MARKETPLACE, GROUP_FULFILLMENT, opts.fulfillment_rate_limit);
        let handle = EbayHandle {
            inner: Arc::new(Ebay {
                shared,
                state: Mutex::new(state::EbayState::default()),
                credentials: opts.credentials,
                token_ttl: opts.access_token_ttl,
                revision_limit: opts.revision_limit_per_day,
            }),
        };
        for key in &opts.locations {
            handle.seed_location(key);
        }
        for seed in opts.listings {
            let sku = seed.sku.clone();
            handle
                .seed_listing(seed)
                .map_err(|e| anyhow::anyhow!("seeding eBay listing {sku:?}: {e}"))?;
        }
        Ok(handle)
    }

    /// The `/ebay` router.
    pub(crate) fn router(&self) -> Router {
        let gate = GateCtx {
            shared: self.inner.shared.clone(),
            market: &MARKET,
        };
        let state = self.inner.clone();
        let identity = Router::new()
            .route(TOKEN_PATH, post(auth::token))
            .with_state(state.clone());
        let inv = |p: &str| format!("{INVENTORY_BASE}{p}");
        let ful = |p: &str| format!("{FULFILLMENT_BASE}{p}");
        let api = Router::new()
            .route(&inv("/inventory_item"), get(inventory::get_inventory_items))
            .route(
                &inv("/inventory_item/{sku}"),
                get(inventory::get_inventory_item)
                    .put(inventory::put_inventory_item)
                    .delete(inventory::delete_inventory_item),
            )
            .route(
                &inv("/bulk_get_inventory_item"),
                post(inventory::bulk_get_inventory_item),
            )
            .route(
                &inv("/bulk_update_price_quantity"),
                post(inventory::bulk_update_price_quantity),
            )
            .route(
                &inv("/offer"),
                get(inventory::get_offers).post(inventory::create_offer),
            )
            .route(
                &inv("/offer/{offer_id}"),
                get(inventory::get_offer)
                    .put(inventory::update_offer)
                    .delete(inventory::delete_offer),
            )
            .route(
                &inv("/offer/{offer_id}/publish"),
                post(inventory::publish_offer),
            )
            .route(
                &inv("/offer/{offer_id}/withdraw"),
                post(inventory::withdraw_offer),
            )
            .route(
                &inv("/location/{key}"),
                get(inventory::get_location).post(inventory::create_location),
            )
            .route(&ful("/order"), get(fulfillment::get_orders))
            .route(&ful("/order/{order_id}"), get(fulfillment::get_order))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::authorize,
            ))
            .with_state(state);
        identity
            .merge(api)
            .route_layer(axum::middleware::from_fn_with_state(
                gate,
                crate::gate::gate,
            ))
    }

    // ---- seeding and drift ----------------------------------------------------------------

    /// Creates inventory location `key` (a US warehouse) unless it exists.
    pub fn seed_location(&self, key: &str) {
        let mut st = self.inner.lock();
        st.locations.entry(key.to_owned()).or_insert_with(|| {
            json!({"location": {"address": {"country": "US", "postalCode": "95125"}},
                   "name": "Sandbox warehouse", "merchantLocationStatus": "ENABLED",
                   "locationTypes": ["WAREHOUSE"]})
            .as_object()
            .cloned()
            .unwrap_or_default()
        });
    }

    /// Creates (or replaces) an item, its offer and, if asked, the live listing — as state that
    /// existed before the test, so nothing is logged as a write.
    pub fn seed_listing(&self, seed: SeedListing) -> Result<SeededListing, ControlError> {
        if seed.sku.is_empty() || seed.sku.chars().count() > MAX_SKU_LEN {
            return Err(ControlError::Invalid(format!("invalid SKU {:?}", seed.sku)));
        }
        if state::parse_amount(&json!(seed.price)).is_none() {
            return Err(ControlError::Invalid(format!(
                "invalid price {:?}",
                seed.price
            )));
        }
        // Seeds go through the same rules as API calls, with a scratch recorder and no revision
        // counting, so they leave no trace.
        let scratch = crate::record::Recorder::new();
        let ctx = state::Ctx {
            now: self.inner.shared.clock.now(),
            rec: &scratch,
            revision_limit: u32::MAX,
            seeding: true,
        };
        self.seed_location(DEFAULT_LOCATION_KEY);
        let mut st = self.inner.lock();
        let item = json!({
            "product": {"title": seed.title, "description": format!("{} (sandbox)", seed.title),
                        "imageUrls": ["https://i.ebayimg.com/images/g/sandbox/s-l1600.jpg"]},
            "condition": "NEW",
            "availability": {"shipToLocationAvailability": {"quantity": seed.quantity}},
        });
        st.put_item(&ctx, &seed.sku, "en_US".into(), to_map(item))
            .map_err(|e| ControlError::Invalid(format!("{:?}", e.errors)))?;
        let mut offer = json!({
            "sku": seed.sku,
            "marketplaceId": DEFAULT_MARKETPLACE_ID,
            "format": "FIXED_PRICE",
            "categoryId": "30120",
            "listingDescription": seed.title,
            "listingPolicies": {"fulfillmentPolicyId": "6196932000", "paymentPolicyId": "6196933000",
                                "returnPolicyId": "6196934000"},
            "merchantLocationKey": DEFAULT_LOCATION_KEY,
            "pricingSummary": {"price": seed.price},
        });
        if let Some(q) = seed.offer_quantity {
            offer["availableQuantity"] = json!(q);
        }
        let existing = st
            .offers
            .values()
            .find(|o| o.sku == seed.sku && o.marketplace_id == DEFAULT_MARKETPLACE_ID)
            .map(|o| o.offer_id.clone());
        let offer_id = match existing {
            Some(id) => {
                st.update_offer(&ctx, &id, to_map(offer))
                    .map_err(|e| ControlError::Invalid(format!("{:?}", e.errors)))?;
                id
            }
            None => st
                .create_offer(&ctx, to_map(offer))
                .map_err(|e| ControlError::Invalid(format!("{:?}", e.errors)))?,
        };
        let listing_id = if seed.publish {
            Some(
                st.publish(&ctx, &offer_id)
                    .map_err(|e| ControlError::Invalid(format!("{:?}", e.errors)))?,
            )
        } else {
            None
        };
        Ok(SeededListing {
            offer_id,
            listing_id,
        })
    }

    /// Changes a SKU's quantity as a merchant editing on eBay would (item quantity and the live
    /// offer's availableQuantity, if set) without logging a write: drift for the reconciler.
    pub fn set_quantity_out_of_band(&self, sku: &str, quantity: u32) -> Result<(), ControlError> {
        self.inner.lock().set_quantity_out_of_band(sku, quantity)
    }

    /// Changes the price of a SKU's offers without logging a write.
    pub fn set_price_out_of_band(&self, sku: &str, price: Money) -> Result<(), ControlError> {
        self.inner.lock().set_price_out_of_band(sku, price)
    }

    // ---- orders -----------------------------------------------------------------------------

    /// A buyer ([`DEFAULT_BUYER`]) checks out these lines; returns the new orderId.
    pub fn place_order(&self, lines: &[OrderLine]) -> Result<String, ControlError> {
        self.place_order_as(DEFAULT_BUYER, lines)
    }

    /// With `true`, checkouts are no longer refused when a listing shows fewer units than
    /// ordered: the listing's quantity stays at 0 and the order is created all the same. This is
    /// the marketplace that sold units before the seller's lower quantity reached it (orders
    /// racing a push, a listing cached by the buyer's app); the seller must find the oversell
    /// when it ingests the orders. Off by default; the same knob exists on the Shopify and
    /// WooCommerce fakes.
    pub fn set_allow_oversell(&self, allow: bool) {
        self.inner.lock().allow_oversell = allow;
    }

    /// Like [`EbayHandle::place_order`] with a given buyer username.
    pub fn place_order_as(&self, buyer: &str, lines: &[OrderLine]) -> Result<String, ControlError> {
        let now = self.inner.shared.clock.now();
        self.inner.lock().place_order(now, buyer, lines)
    }

    /// The buyer cancels before shipment: cancelState CANCELED, payment FULLY_REFUNDED.
    pub fn cancel_order(&self, order_id: &str) -> Result<(), ControlError> {
        let now = self.inner.shared.clock.now();
        self.inner.lock().cancel_order(now, order_id)
    }

    /// The seller ships: FULFILLED.
    pub fn ship_order(&self, order_id: &str) -> Result<(), ControlError> {
        let now = self.inner.shared.clock.now();
        self.inner.lock().ship_order(now, order_id)
    }

    /// An order as getOrder returns it.
    pub fn order(&self, order_id: &str) -> Option<Value> {
        self.inner.lock().orders.get(order_id).map(|o| o.render())
    }

    /// Every orderId, oldest first.
    pub fn order_ids(&self) -> Vec<String> {
        let st = self.inner.lock();
        let mut orders: Vec<_> = st.orders.values().collect();
        orders.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        orders.into_iter().map(|o| o.id.clone()).collect()
    }

    // ---- inspection -------------------------------------------------------------------------

    /// Every write applied to eBay, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.inner.shared.recorder.writes(Some(MARKETPLACE))
    }

    /// Every eBay request received, in order.
    pub fn requests(&self) -> Vec<crate::record::RequestRecord> {
        self.inner.shared.recorder.requests(Some(MARKETPLACE))
    }

    /// What buyers see for a SKU (live listing: min(item, offer) quantity; no live listing: the
    /// item quantity; no item: `None`).
    pub fn current_quantity(&self, sku: &str) -> Option<u32> {
        self.inner.lock().visible_quantity(sku)
    }

    /// The live listing's price (else any offer's).
    pub fn current_price(&self, sku: &str) -> Option<Money> {
        self.inner.lock().current_price(sku)
    }

    /// Everything about one SKU.
    pub fn listing(&self, sku: &str) -> Option<ListingSnapshot> {
        let today = self.inner.shared.clock.now().date_naive();
        let st = self.inner.lock();
        let item = st.items.get(sku)?;
        let offer = st
            .published_offer(sku)
            .or_else(|| st.offers.values().find(|o| o.sku == sku));
        Some(ListingSnapshot {
            sku: sku.to_owned(),
            item_quantity: item.quantity,
            offer_id: offer.map(|o| o.offer_id.clone()),
            offer_quantity: offer.and_then(|o| o.available_quantity),
            listing_id: offer.and_then(|o| o.listing_id.clone()),
            visible_quantity: st.visible_quantity(sku),
            price: st.current_price(sku),
            sold_quantity: offer.map_or(0, |o| o.sold_quantity),
            revisions_today: offer
                .and_then(|o| o.listing_id.as_deref())
                .map_or(0, |l| st.revisions_today(l, today)),
        })
    }

    /// The inventory item as getInventoryItem returns it.
    pub fn inventory_item(&self, sku: &str) -> Option<Value> {
        self.inner.lock().items.get(sku).map(|i| i.render())
    }

    /// An offer as getOffer returns it.
    pub fn offer(&self, offer_id: &str) -> Option<Value> {
        self.inner.lock().offers.get(offer_id).map(|o| o.render())
    }

    /// Revisions of a listing on the current (sandbox) UTC day.
    pub fn revisions_today(&self, listing_id: &str) -> u32 {
        let today = self.inner.shared.clock.now().date_naive();
        self.inner.lock().revisions_today(listing_id, today)
    }

    /// Revisions today of the SKU's live listing (0 when it has none).
    pub fn revisions_today_for_sku(&self, sku: &str) -> u32 {
        let today = self.inner.shared.clock.now().date_naive();
        let st = self.inner.lock();
        st.published_offer(sku)
            .and_then(|o| o.listing_id.as_deref())
            .map_or(0, |l| st.revisions_today(l, today))
    }

    /// Requests received for one operation (operationId, e.g. `bulkUpdatePriceQuantity`,
    /// `getToken`), whatever their outcome.
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

    /// 429 responses sent (rate limiter and fault rules).
    pub fn count_429(&self) -> u64 {
        self.inner.shared.recorder.count_429(MARKETPLACE)
    }

    /// 429 responses sent by the rate limiter alone.
    pub fn throttled_count(&self) -> u64 {
        self.inner.shared.recorder.throttled(MARKETPLACE)
    }

    // ---- knobs ------------------------------------------------------------------------------

    /// Sets or removes a group's bucket ([`GROUP_INVENTORY`], [`GROUP_FULFILLMENT`],
    /// [`GROUP_IDENTITY`]); the new bucket starts full.
    pub fn set_rate_limit(&self, group: &str, limit: Option<RateLimit>) {
        self.inner.shared.limiter.set(MARKETPLACE, group, limit);
    }

    /// The bucket of a group.
    pub fn rate_limit(&self, group: &str) -> Option<RateLimit> {
        self.inner.shared.limiter.get(MARKETPLACE, group)
    }

    /// Invalidates every access token issued so far (as if eBay revoked them).
    pub fn expire_access_tokens(&self) {
        self.inner.lock().tokens.clear();
    }

    /// Moves sandbox time forward (shared by all marketplaces): tokens expire, calendar days
    /// roll over.
    pub fn advance_clock(&self, by: Duration) {
        self.inner.shared.clock.advance(by);
    }

    /// Adds a fault rule for eBay (see [`FaultRule`] for `target`).
    pub fn add_fault(&self, target: &str, kind: FaultKind) -> FaultId {
        self.faults().add(FaultRule::new(MARKETPLACE, target, kind))
    }

    /// The sandbox's fault rules (all marketplaces).
    pub fn faults(&self) -> FaultsHandle {
        FaultsHandle {
            faults: self.inner.shared.faults.clone(),
        }
    }

    /// The credentials the token endpoint accepts.
    pub fn credentials(&self) -> EbayCredentials {
        self.inner.credentials.clone()
    }
}

fn to_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
