//! The Vendure fake: Vendure 3's Admin API (`{base}/vendure/admin-api`) and Shop API
//! (`{base}/vendure/shop-api`), small but with the real shapes (contracts/realstore.md §2a, checked
//! against a real Vendure 3.7.3):
//!
//! - **Auth**: `login(username, password)` answers `CurrentUser` and the session token in the
//!   `vendure-auth-token` response header (Vendure's bearer token method), or the ErrorResult
//!   `InvalidCredentialsError` (`INVALID_CREDENTIALS_ERROR`). Admin fields without a valid
//!   `Authorization: Bearer` session answer HTTP 200 with a `FORBIDDEN` error and `data: null`.
//!   [`VendureHandle::expire_sessions`] drops every admin session (the connector must log in again).
//!   A `vendure-token` header must name the channel ([`VendureOptions::channel_token`]), else
//!   `CHANNEL_NOT_FOUND`; without it the default channel is used.
//! - **Catalog**: `productVariants(options: {filter: {sku: {eq|in}}, skip, take, sort: {id}})`
//!   (`take` ≤ [`MAX_TAKE`], more is a `USER_INPUT_ERROR`), `productVariant(id)`,
//!   `updateProductVariants(input)` — validated as a whole, then applied (one transaction, like
//!   Vendure): unknown id → `ENTITY_NOT_FOUND`, negative stock → `USER_INPUT_ERROR`, a stock level
//!   at a location other than `"1"` → a code-less "FOREIGN KEY constraint failed" (what SQLite says);
//!   `createProduct(input)` (slugs made unique with `-2`, `-3` …), `createProductVariants(input)`.
//!   `activeChannel` tells the currency ([`VendureOptions::currency`]). Duplicate SKUs are allowed,
//!   as in Vendure.
//! - **Stock**: one location (id `"1"`). Buyers see `stockOnHand − stockAllocated`; a placed order
//!   allocates, cancelling releases, shipping lowers both.
//! - **Orders**: `orders(options: {filter: {updatedAt: {after}, active: {eq}}, sort: {updatedAt},
//!   skip, take})`, `order(id)`, `cancelOrder(input: {orderId})` (an `OrderStateTransitionError`
//!   result when it cannot). `updatedAt` is stored in **whole seconds** (Vendure on SQLite) and
//!   `after` is strict, so a client must reach back past its last poll. Orders come from the Shop
//!   API's guest checkout (`addItemToOrder` → `setCustomerForOrder` → `setOrderShippingAddress` →
//!   `setOrderShippingMethod` → `transitionOrderToState("ArrangingPayment")` → `addPaymentToOrder`
//!   ⇒ `PaymentSettled`) or from [`VendureHandle::place_order`].
//! - **Faults**: operation names are the root field names (`login`, `productVariants`,
//!   `updateProductVariants`, `createProduct`, `createProductVariants`, `orders`, `cancelOrder`,
//!   `activeChannel`, shop fields …); an unparseable document is `invalid`. `reject_skus` makes
//!   `updateProductVariants`/`createProductVariants` fail as a whole with `USER_INPUT_ERROR` when
//!   an input's SKU is listed (Vendure rejects the whole transaction). No rate limit: Vendure has
//!   none (a 429 can be injected).
//!
//! Not a GraphQL engine: the root fields are found in the document text and every argument is
//! read from `variables` under the argument's name (the connector sends them that way); results
//! carry all fields of an object whatever the selection. Not modelled: assets, options, facets,
//! collections, promotions, taxes beyond a flat 20 % on line prices, multiple locations/channels,
//! fulfilments through the API, payments other than one that settles at once, webhooks (Vendure
//! has none).
//!
//! Control: [`VendureHandle`] in Rust, `/_control/vendure/...` over HTTP (see `control`).

mod api;
mod control;
mod state;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Request, State};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Shared;
use crate::ebay::{ControlError, OrderLine};
use crate::faults::FaultsHandle;
use crate::record::{Money, RequestRecord, WriteRecord};

/// Marketplace name in fault rules and records; also the mount prefix.
pub const MARKETPLACE: &str = "vendure";
/// Response header carrying the session token.
pub const AUTH_TOKEN_HEADER: &str = "vendure-auth-token";
/// Request header naming the channel.
pub const CHANNEL_TOKEN_HEADER: &str = "vendure-token";
/// Largest `take` of a list (Vendure's `adminListQueryLimit` default is 1000).
pub const MAX_TAKE: usize = 1000;
/// Operation name of a request whose document could not be read.
pub const OP_INVALID: &str = "invalid";

/// The administrator the Admin API accepts. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendureCredentials {
    /// Administrator identifier (`superadmin` by default, like Vendure's).
    pub username: String,
    /// Password.
    pub password: String,
    /// The channel token to send as `vendure-token`, when the fake requires one.
    pub channel_token: Option<String>,
}

impl fmt::Debug for VendureCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VendureCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .field("channel_token", &self.channel_token)
            .finish()
    }
}

impl Default for VendureCredentials {
    fn default() -> Self {
        VendureCredentials {
            username: "superadmin".into(),
            password: "superadmin".into(),
            channel_token: None,
        }
    }
}

/// A product with one variant that exists before the test starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendureSeedListing {
    /// The variant's SKU.
    pub sku: String,
    /// Units buyers can buy (stockOnHand; nothing allocated).
    pub quantity: u32,
    /// Price as a decimal in the channel currency (`"12.99"`).
    pub price: String,
    /// Product and variant name.
    #[serde(default)]
    pub name: Option<String>,
    /// Variant enabled.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl VendureSeedListing {
    /// An enabled variant of `quantity` at `price`.
    pub fn new(sku: impl Into<String>, quantity: u32, price: &str) -> Self {
        VendureSeedListing {
            sku: sku.into(),
            quantity,
            price: price.to_owned(),
            name: None,
            enabled: true,
        }
    }
}

/// How to run the Vendure fake.
#[derive(Debug, Clone)]
pub struct VendureOptions {
    /// The administrator and channel token accepted.
    pub credentials: VendureCredentials,
    /// The channel's currency (default `USD`, like Vendure's default channel).
    pub currency: String,
    /// Listings present at start.
    pub listings: Vec<VendureSeedListing>,
}

impl Default for VendureOptions {
    fn default() -> Self {
        VendureOptions {
            credentials: VendureCredentials::default(),
            currency: "USD".into(),
            listings: Vec::new(),
        }
    }
}

/// The fake's shared core.
pub(crate) struct Vendure {
    pub(crate) shared: Arc<Shared>,
    state: Mutex<state::State>,
    pub(crate) credentials: VendureCredentials,
    pub(crate) channel_token: Option<String>,
    pub(crate) currency: String,
}

impl fmt::Debug for Vendure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vendure")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Vendure {
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().expect("vendure state lock")
    }
}

/// The operation (fault target, request-count key) of a root field: the field name itself.
pub(crate) fn operation_name(field: &str) -> &'static str {
    const KNOWN: [&str; 17] = [
        "login",
        "activeChannel",
        "productVariants",
        "productVariant",
        "updateProductVariants",
        "createProduct",
        "createProductVariants",
        "orders",
        "order",
        "cancelOrder",
        "activeOrder",
        "addItemToOrder",
        "setCustomerForOrder",
        "setOrderShippingAddress",
        "setOrderShippingMethod",
        "transitionOrderToState",
        "addPaymentToOrder",
    ];
    KNOWN
        .iter()
        .find(|k| **k == field)
        .copied()
        .unwrap_or("unknownField")
}

/// Minor units as a two-decimal string.
pub(crate) fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// A decimal with at most two digits as minor units.
fn parse_minor(text: &str) -> Option<i64> {
    let (int, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if int.is_empty()
        || frac.len() > 2
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    int.checked_mul(100)?.checked_add(frac)
}

/// Inspection and control of the Vendure fake, for tests and the demo. Cheap to clone.
#[derive(Debug, Clone)]
pub struct VendureHandle {
    inner: Arc<Vendure>,
}

impl VendureHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: VendureOptions) -> anyhow::Result<VendureHandle> {
        let handle = VendureHandle {
            inner: Arc::new(Vendure {
                shared,
                state: Mutex::new(state::State::default()),
                channel_token: opts.credentials.channel_token.clone(),
                credentials: opts.credentials,
                currency: opts.currency,
            }),
        };
        for seed in opts.listings {
            let sku = seed.sku.clone();
            handle
                .seed_listing(seed)
                .map_err(|e| anyhow::anyhow!("seeding Vendure listing {sku:?}: {e}"))?;
        }
        Ok(handle)
    }

    /// The `/vendure` router.
    pub(crate) fn router(&self) -> Router {
        let state = self.inner.clone();
        Router::new()
            .route(
                "/admin-api",
                post(|s: State<Arc<Vendure>>, req: Request| api::handle(s, api::Api::Admin, req)),
            )
            .route(
                "/shop-api",
                post(|s: State<Arc<Vendure>>, req: Request| api::handle(s, api::Api::Shop, req)),
            )
            .with_state(state)
    }

    /// The `/_control/vendure` router.
    pub(crate) fn control_router(&self) -> Router {
        control::router(self.clone())
    }

    /// What a connector config needs (`endpoint` = [`VendureHandle::admin_api_url`]).
    pub fn credentials(&self) -> VendureCredentials {
        self.inner.credentials.clone()
    }

    /// `{base}/vendure/admin-api`.
    pub fn admin_api_url(&self) -> String {
        format!("{}/{MARKETPLACE}/admin-api", self.inner.shared.base_url)
    }

    /// `{base}/vendure/shop-api`.
    pub fn shop_api_url(&self) -> String {
        format!("{}/{MARKETPLACE}/shop-api", self.inner.shared.base_url)
    }

    /// Creates a product with this variant — state from before the test, not a write. A SKU that
    /// exists is updated instead (stock, price, enabled).
    pub fn seed_listing(&self, seed: VendureSeedListing) -> Result<(), ControlError> {
        if seed.sku.trim().is_empty() {
            return Err(ControlError::Invalid("empty SKU".into()));
        }
        let price = parse_minor(&seed.price)
            .ok_or_else(|| ControlError::Invalid(format!("invalid price {:?}", seed.price)))?;
        let now = self.inner.shared.clock.now();
        let mut st = self.inner.lock();
        if let Some(v) = st.variant_by_sku_mut(&seed.sku) {
            v.on_hand = i64::from(seed.quantity) + v.allocated;
            v.price = price;
            v.enabled = seed.enabled;
            return Ok(());
        }
        let name = seed
            .name
            .unwrap_or_else(|| format!("Sandbox item {}", seed.sku));
        let p = st.create_product(
            name.clone(),
            String::new(),
            format!("{name} (sandbox)"),
            true,
        );
        st.create_variant(
            now,
            p.id,
            seed.sku,
            name,
            price,
            i64::from(seed.quantity),
            seed.enabled,
        );
        Ok(())
    }

    /// Every SKU (duplicates once), by variant id.
    pub fn skus(&self) -> Vec<String> {
        let st = self.inner.lock();
        let mut out: Vec<String> = Vec::new();
        for v in st.variants.values() {
            if !out.contains(&v.sku) {
                out.push(v.sku.clone());
            }
        }
        out
    }

    /// What buyers can buy (`stockOnHand − stockAllocated`; 0 when disabled); `None` = no variant.
    pub fn current_quantity(&self, sku: &str) -> Option<u32> {
        let st = self.inner.lock();
        let v = st.variant_by_sku(sku)?;
        Some(if v.enabled {
            u32::try_from(v.saleable()).unwrap_or(u32::MAX)
        } else {
            0
        })
    }

    /// `stockOnHand` of the SKU's (first) variant.
    pub fn stock_on_hand(&self, sku: &str) -> Option<i64> {
        self.inner.lock().variant_by_sku(sku).map(|v| v.on_hand)
    }

    /// `stockAllocated` of the SKU's (first) variant.
    pub fn stock_allocated(&self, sku: &str) -> Option<i64> {
        self.inner.lock().variant_by_sku(sku).map(|v| v.allocated)
    }

    /// Whether the SKU's variant is enabled.
    pub fn enabled(&self, sku: &str) -> Option<bool> {
        self.inner.lock().variant_by_sku(sku).map(|v| v.enabled)
    }

    /// The variant's price.
    pub fn current_price(&self, sku: &str) -> Option<Money> {
        let st = self.inner.lock();
        let v = st.variant_by_sku(sku)?;
        Some(Money::new(
            format_minor(v.price),
            self.inner.currency.clone(),
        ))
    }

    /// The variant as the Admin API renders it.
    pub fn variant(&self, sku: &str) -> Option<Value> {
        let st = self.inner.lock();
        st.variant_by_sku(sku)
            .map(|v| v.render(&self.inner.currency))
    }

    /// Number of products.
    pub fn product_count(&self) -> usize {
        self.inner.lock().products.len()
    }

    /// A merchant edits the stock in the Vendure dashboard so that buyers see `quantity`
    /// (stockOnHand = quantity + allocated). Not a write.
    pub fn set_quantity_out_of_band(&self, sku: &str, quantity: u32) -> Result<(), ControlError> {
        let now = self.inner.shared.clock.now();
        let mut st = self.inner.lock();
        let v = st
            .variant_by_sku_mut(sku)
            .ok_or_else(|| ControlError::UnknownSku(sku.to_owned()))?;
        v.on_hand = i64::from(quantity) + v.allocated;
        v.updated_at = state::stored(now);
        Ok(())
    }

    /// A guest buys these lines (payment settles at once); returns the order code. Refuses an
    /// unknown SKU, a disabled variant and a line beyond what buyers can buy.
    pub fn place_order(&self, lines: &[OrderLine]) -> Result<String, ControlError> {
        if lines.is_empty() {
            return Err(ControlError::Invalid("an order needs lines".into()));
        }
        let now = self.inner.shared.clock.now();
        let mut st = self.inner.lock();
        let mut ids = Vec::new();
        for l in lines {
            let v = st
                .variant_by_sku(&l.sku)
                .ok_or_else(|| ControlError::UnknownSku(l.sku.clone()))?;
            if !v.enabled {
                return Err(ControlError::NotListed(l.sku.clone()));
            }
            if l.quantity == 0 {
                return Err(ControlError::Invalid("quantity must be above 0".into()));
            }
            ids.push((v.id, l.quantity));
        }
        let order = st.new_cart(now);
        for (id, q) in ids {
            if let Err((_, message)) = st.add_item(now, order, id, q) {
                st.orders.remove(&order);
                let sku = lines
                    .iter()
                    .find(|l| st.variants.get(&id).is_some_and(|v| v.sku == l.sku))
                    .map_or_else(String::new, |l| l.sku.clone());
                let available = st
                    .variants
                    .get(&id)
                    .map_or(0, |v| u32::try_from(v.saleable()).unwrap_or(0));
                tracing::debug!(%message, "Vendure fake refused an order line.");
                return Err(ControlError::InsufficientQuantity {
                    sku,
                    available,
                    requested: q,
                });
            }
        }
        if let Some(o) = st.orders.get_mut(&order) {
            o.email = Some("buyer@example.com".into());
            o.state = "ArrangingPayment".into();
        }
        st.place(now, order)?;
        Ok(st.orders[&order].code.clone())
    }

    /// Cancels a placed order (by code or id): allocation released.
    pub fn cancel_order(&self, id: &str) -> Result<(), ControlError> {
        let now = self.inner.shared.clock.now();
        let mut st = self.inner.lock();
        let order = st
            .find_order(id)
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        st.cancel(now, order)
    }

    /// Ships a placed order (by code or id): on hand and allocated drop.
    pub fn ship_order(&self, id: &str) -> Result<(), ControlError> {
        let now = self.inner.shared.clock.now();
        let mut st = self.inner.lock();
        let order = st
            .find_order(id)
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        st.ship(now, order)
    }

    /// An order (by code or id) as the Admin API renders it.
    pub fn order(&self, id: &str) -> Option<Value> {
        let st = self.inner.lock();
        let order = st.find_order(id)?;
        Some(st.orders[&order].render(&self.inner.currency))
    }

    /// Codes of placed (not active) orders, oldest first.
    pub fn order_codes(&self) -> Vec<String> {
        let st = self.inner.lock();
        st.orders
            .values()
            .filter(|o| !o.active)
            .map(|o| o.code.clone())
            .collect()
    }

    /// Drops every session (admins must log in again; shop carts are lost).
    pub fn expire_sessions(&self) {
        self.inner.lock().sessions.clear();
    }

    /// Every write applied to Vendure, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.inner.shared.recorder.writes(Some(MARKETPLACE))
    }

    /// Every Vendure request received, in order (`operation` = first root field).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.shared.recorder.requests(Some(MARKETPLACE))
    }

    /// Requests received whose first root field is `op`.
    pub fn request_count(&self, op: &str) -> u64 {
        self.inner.shared.recorder.request_count(MARKETPLACE, op)
    }

    /// 429 answers sent (only injected ones: Vendure has no rate limit).
    pub fn count_429(&self) -> u64 {
        self.inner.shared.recorder.count_429(MARKETPLACE)
    }

    /// The sandbox's fault rules (all marketplaces).
    pub fn faults(&self) -> FaultsHandle {
        FaultsHandle {
            faults: self.inner.shared.faults.clone(),
        }
    }
}
