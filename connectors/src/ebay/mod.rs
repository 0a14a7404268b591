//! The eBay connector: Sell Inventory API v1 for listings and stock, Sell Fulfillment API v1 for
//! orders, OAuth refresh-token grant for user tokens (contracts/README.md §2).
//!
//! Rooms (STYLE habit 3): `config` (what the daemon hands over), `client` (HTTP, auth, budgets,
//! whole-call errors), `mapping` (eBay bodies ⇄ neutral model, pure), `tests` (stories against the
//! sandbox). This file holds the limits and the [`EbayConnector`] that drives them.
//!
//! ## Limits, and where they come from
//!
//! | limit | constant | source |
//! |---|---|---|
//! | 25 entries per bulkUpdatePriceQuantity call | [`MAX_BULK_REQUESTS`] | spec `requests` ("up to 25"); eBay's bulk-updates guide |
//! | getInventoryItems `limit` ≤ 200 (`offset` is a page number) | [`MAX_INVENTORY_PAGE`] | spec getInventoryItems |
//! | getOrders `limit` ≤ 200 (more is an error) | [`MAX_ORDERS_PAGE`] | spec getOrders; contracts §2.4 |
//! | 250 revisions per listing per calendar day | [`MAX_REVISIONS_PER_DAY`] | spec inventory descriptions; contracts §2.2 |
//! | a throttled call is HTTP 429 with errorId 2001 | [`ERR_TOO_MANY_REQUESTS`] | eBay common errors; contracts §2.2 |
//! | Inventory API 2,000,000 calls/day | [`INVENTORY_CALLS_PER_DAY`] | developer.ebay.com api_call_limits; contracts §2.2 |
//! | Fulfillment API 100,000 calls/day (before Growth Check) | [`FULFILLMENT_CALLS_PER_DAY`] | same |
//! | token endpoint: 50,000 refresh grants/day | [`TOKEN_REFRESHES_PER_DAY`] | oauth-rate-limits; contracts §2.1 |
//! | SKU ≤ 50 characters | [`MAX_SKU_LEN`] | spec `sku` path parameter |
//!
//! eBay publishes daily quotas only, so the budgets spread them over the day:
//! [`EbayConnector::DEFAULT_LIMITS`] runs the `inventory` operation at 2,000,000 / 86,400 ≈ 23
//! requests/s; `fulfillment` at ≈ 1.16/s and `identity` (the token endpoint) at ≈ 0.58/s, never
//! above the configured rate. eBay documents no `Retry-After`; a 429 pauses the operation's budget
//! for `limits.throttle_pause` (60 s by default) and the call returns
//! [`ConnectorError::RateLimited`].
//!
//! ## What each method does
//!
//! - **push_listings** (per item): `getOffers` for the SKU on this marketplace; `PUT
//!   inventory_item/{sku}` (full replace: product, condition NEW, quantity); `POST offer`, or
//!   `PUT offer/{id}` only when price, quantity, category, description, policies or location
//!   differ (other fields the merchant set are kept); `POST offer/{id}/publish` when not live.
//!   Applied carries the offerId.
//! - **push_stock**: one `bulk_update_price_quantity` call for up to 25 SKUs, each with the item
//!   quantity and, for a live offer, `offers:[{offerId, availableQuantity, price}]` (eBay shows the
//!   minimum of the two, so both are set). Results are matched by SKU. A SKU without an offer, or
//!   whose offer is not live, comes back `NotListed` so the dispatcher sends the whole listing.
//! - **withdraw_at_zero**: when configured, quantity 0 on a live offer withdraws it (ends the
//!   listing, keeps the offer) and a later quantity above 0 updates and publishes the offer again
//!   (a new listing id). Otherwise a listing at 0 stays live and eBay shows it out of stock.
//! - **delist** withdraws the offer and keeps the inventory item and the offer: ending the listing
//!   is what "off sale" means, it is reversible (publish again), and deleting the item would also
//!   delete its offers and their history on eBay. A SKU without a live offer is already delisted.
//! - **fetch_orders**: `GET order?filter=lastmodifieddate:%5B…..%5D&limit=200&offset=N` — the
//!   brackets are percent-encoded by hand (eBay requires it; the query is never re-encoded); the
//!   page token is the next offset, taken from `next`. Status table and line rules: [`mapping`].
//! - **snapshot_page**: `GET inventory_item?limit=200&offset=P`, following `next` (the offset is
//!   a page number for this call). The quantity reported is the item's
//!   `shipToLocationAvailability.quantity`. eBay shows buyers the minimum of that and the offer's
//!   `availableQuantity`; push_stock always writes both to the same value and sales lower both,
//!   so the item quantity is what buyers see unless someone edits the offer quantity alone on
//!   eBay. Prices are not reported: they live on offers, one extra call per SKU.
//! - **healthcheck**: a token, then `GET inventory_item?limit=1`.
//!
//! ## Errors
//!
//! A failure that concerns the whole account (429, 401/403 after one token refresh, a connection
//! or 5xx failure, a body we cannot read) fails the call as a whole. A 4xx for one item, or a
//! failed entry of a bulk answer, becomes that item's outcome: unknown SKU/offer → `NotListed`;
//! 25001/25025 system errors → `Retry`; business errors → `Rejected` with eBay's errorId as code.
//! The follow-up steps of push_stock (withdraw, republish) report their failures as `Retry` for
//! their item, so the bulk results of the others are kept.
//!
//! ## Revisions
//!
//! Every write that revises a live listing (the item PUT, updateOffer and bulk entries on a
//! published offer) is counted per SKU per **UTC** calendar day, in memory (a restart starts at 0;
//! eBay's own cap error is then caught and the SKU held for the day). At
//! [`MAX_REVISIONS_PER_DAY`] the connector refuses to send the item and answers `Retry` with a
//! message saying so; `stats()` reports `revisions_max_today` and `revision_held_items`.

mod client;
mod config;
mod mapping;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use reqwest::Method;
use serde_json::Value;

use self::client::{Api, EbayClient, Request};
use self::mapping::{
    Amount, BulkPriceQuantity, BulkResponse, ErrorBody, InventoryItemsPage, OfferCreated,
    OfferPriceQuantity, OfferTerms, OfferView, OffersPage, OrdersPage, PriceQuantity, ShipTo,
};
use crate::common::http::encode_component;
use crate::common::{Backoff, Budget, ConnectorStats, Limits};
use crate::connector::{
    Capabilities, Connector, Health, OrdersPage as NeutralOrdersPage, SnapshotPage,
};
use crate::error::ConnectorError;
use crate::model::{ItemOutcome, ListingUpdate, Money, RemoteItem, Sku, StockUpdate};

pub use self::config::{EbayConfig, EbayPolicies, SCOPE_FULFILLMENT, SCOPE_INVENTORY};

/// Entries in one bulkUpdatePriceQuantity call.
pub const MAX_BULK_REQUESTS: usize = 25;
/// Largest getInventoryItems page.
pub const MAX_INVENTORY_PAGE: usize = 200;
/// Largest getOrders page.
pub const MAX_ORDERS_PAGE: usize = 200;
/// Revisions of one listing per calendar day.
pub const MAX_REVISIONS_PER_DAY: u32 = 250;
/// errorId of a throttled call (HTTP 429).
pub const ERR_TOO_MANY_REQUESTS: u64 = 2001;
/// Inventory API default daily call limit.
pub const INVENTORY_CALLS_PER_DAY: u32 = 2_000_000;
/// Fulfillment API default daily call limit.
pub const FULFILLMENT_CALLS_PER_DAY: u32 = 100_000;
/// Refresh-token grants per day at the token endpoint.
pub const TOKEN_REFRESHES_PER_DAY: u32 = 50_000;
/// Longest SKU eBay stores.
pub const MAX_SKU_LEN: usize = 50;
/// Listings per push_listings call: each takes 2–4 sequential requests, so a batch is about as
/// long as a bulk stock call's worth of work (a connector choice, not an eBay limit).
pub const MAX_LISTING_BATCH: usize = 25;
/// Most SKU → offer entries remembered; past this the memo is cleared and rebuilt from
/// `external_id`s and lookups (bounds memory with very large catalogs).
pub const MAX_OFFER_MEMO: usize = 200_000;

/// Budget operation of Inventory API calls.
pub(crate) const OP_INVENTORY: &str = "inventory";
/// Budget operation of Fulfillment API calls.
pub(crate) const OP_FULFILLMENT: &str = "fulfillment";
/// Budget operation of the token endpoint.
pub(crate) const OP_IDENTITY: &str = "identity";

const SECS_PER_DAY: f64 = 86_400.0;
/// Bucket of the fulfillment budget (order polls come in pages of a few calls).
const FULFILLMENT_BURST: u32 = 10;
/// Bucket of the token budget.
const IDENTITY_BURST: u32 = 5;

/// What the connector remembers about a SKU's offer on this marketplace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KnownOffer {
    offer_id: String,
    /// Live on eBay, when known.
    published: Option<bool>,
}

/// Revisions per SKU on one UTC day.
#[derive(Debug, Default)]
struct RevisionLog {
    day: Option<NaiveDate>,
    counts: HashMap<String, u32>,
}

impl RevisionLog {
    /// The counts of `today`, starting afresh when the day changed.
    fn today(&mut self, today: NaiveDate) -> &mut HashMap<String, u32> {
        if self.day != Some(today) {
            self.day = Some(today);
            self.counts.clear();
        }
        &mut self.counts
    }
}

/// Counters only this connector has.
#[derive(Debug, Default)]
struct EbayCounters {
    revision_refusals: AtomicU64,
    order_lines_without_sku: AtomicU64,
    offers_published: AtomicU64,
    offers_withdrawn: AtomicU64,
}

/// What getOffers found for a SKU.
enum Lookup {
    /// The offer on our marketplace: typed view and the raw body (for updateOffer).
    Found(Box<(OfferView, Value)>),
    /// No offer (or no inventory item).
    None,
    /// eBay refused the lookup for this item (e.g. an invalid SKU).
    Failed(ItemOutcome),
}

/// What push_stock does after the bulk call for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Nothing,
    Withdraw,
    Republish,
}

/// One item of a push_stock call that goes into the bulk request.
struct Planned {
    index: usize,
    offer_id: String,
    published: bool,
    after: After,
}

/// An eBay seller account on one marketplace.
#[derive(Debug)]
pub struct EbayConnector {
    config: EbayConfig,
    client: EbayClient,
    offers: Mutex<HashMap<String, KnownOffer>>,
    revisions: Mutex<RevisionLog>,
    counters: EbayCounters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // These maps stay consistent even if a holder panicked; keep serving.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

impl EbayConnector {
    /// eBay's defaults: 30 s per request (10 s to connect), the Inventory API's daily quota spread
    /// over the day (≈ 23/s, bucket of 50), 25 items per batch, retries from 1 s doubling to
    /// 5 min, a 60 s pause after a 429.
    pub const DEFAULT_LIMITS: Limits = Limits {
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        rate_per_sec: INVENTORY_CALLS_PER_DAY as f64 / SECS_PER_DAY,
        burst: 50,
        batch_size: MAX_BULK_REQUESTS,
        retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        throttle_pause: Duration::from_secs(60),
    };

    /// Builds the connector (no request is sent until the first call).
    pub fn new(config: EbayConfig) -> Result<EbayConnector, ConnectorError> {
        config.validate()?;
        let limits = config.limits;
        let budget = Budget::new(
            format!("ebay:{}", config.marketplace_id),
            limits.rate_per_sec,
            limits.burst,
        );
        budget.set(OP_INVENTORY, limits.rate_per_sec, limits.burst);
        budget.set(
            OP_FULFILLMENT,
            limits
                .rate_per_sec
                .min(f64::from(FULFILLMENT_CALLS_PER_DAY) / SECS_PER_DAY),
            limits.burst.min(FULFILLMENT_BURST),
        );
        budget.set(
            OP_IDENTITY,
            limits
                .rate_per_sec
                .min(f64::from(TOKEN_REFRESHES_PER_DAY) / SECS_PER_DAY),
            limits.burst.min(IDENTITY_BURST),
        );
        let client = EbayClient::new(&config, budget)?;
        Ok(EbayConnector {
            config,
            client,
            offers: Mutex::new(HashMap::new()),
            revisions: Mutex::new(RevisionLog::default()),
            counters: EbayCounters::default(),
        })
    }

    fn batch_cap(&self, marketplace_max: usize) -> usize {
        self.config.limits.batch_size.clamp(1, marketplace_max)
    }

    // ---- memo of offers ---------------------------------------------------------------------

    fn remember(&self, sku: &str, offer_id: &str, published: Option<bool>) {
        let mut offers = lock(&self.offers);
        if offers.len() >= MAX_OFFER_MEMO && !offers.contains_key(sku) {
            offers.clear();
        }
        offers.insert(
            sku.to_owned(),
            KnownOffer {
                offer_id: offer_id.to_owned(),
                published,
            },
        );
    }

    fn forget(&self, sku: &str) {
        lock(&self.offers).remove(sku);
    }

    fn known(&self, sku: &str) -> Option<KnownOffer> {
        lock(&self.offers).get(sku).cloned()
    }

    // ---- revisions --------------------------------------------------------------------------

    fn revisions_left(&self, sku: &str) -> u32 {
        let mut log = lock(&self.revisions);
        let used = log.today(today()).get(sku).copied().unwrap_or(0);
        MAX_REVISIONS_PER_DAY.saturating_sub(used)
    }

    fn count_revision(&self, sku: &str) {
        let mut log = lock(&self.revisions);
        let n = log.today(today()).entry(sku.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// eBay said the listing is at its cap: hold the SKU for the rest of the day.
    fn hold_for_today(&self, sku: &str) {
        let mut log = lock(&self.revisions);
        log.today(today())
            .insert(sku.to_owned(), MAX_REVISIONS_PER_DAY);
    }

    fn revision_refusal(&self, sku: &str, needed: u32) -> ItemOutcome {
        self.counters
            .revision_refusals
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            sku,
            needed,
            "Holding an eBay update: the listing used its daily revisions."
        );
        ItemOutcome::Retry {
            error: format!(
                "held: the eBay listing reached its {MAX_REVISIONS_PER_DAY} revisions for today \
                 (UTC); it can be revised again after midnight UTC"
            ),
        }
    }

    // ---- shared steps -----------------------------------------------------------------------

    /// The terms every offer must carry: quantity, price and the account's category, policies
    /// and location.
    fn terms(&self, quantity: u32, price: Option<&Money>, description: Option<&str>) -> OfferTerms {
        let p = &self.config.policies;
        OfferTerms {
            available_quantity: quantity,
            price: price.map(Amount::from_money),
            category_id: self.config.category_id.clone(),
            listing_description: description.map(str::to_owned),
            fulfillment_policy_id: p.fulfillment.clone(),
            payment_policy_id: p.payment.clone(),
            return_policy_id: p.return_policy.clone(),
            merchant_location_key: self.config.merchant_location_key.clone(),
        }
    }

    /// The outcome of a failed single-item call: a 4xx with eBay's errors is the item's
    /// (`NotListed`/`Retry`/`Rejected`); anything else (5xx, no details) fails the whole call.
    fn item_failure(
        &self,
        resp: &crate::common::HttpResponse,
        sku: &str,
    ) -> Result<ItemOutcome, ConnectorError> {
        let errors = ErrorBody::parse(&resp.body);
        if resp.status >= 500 || errors.errors.is_empty() {
            return Err(self.client.error(resp));
        }
        let e = mapping::item_error(resp.status, &errors.errors);
        if e.revision_cap {
            self.hold_for_today(sku);
        }
        if matches!(e.outcome, ItemOutcome::NotListed { .. }) {
            self.forget(sku);
        }
        Ok(e.outcome)
    }

    /// getOffers for `sku` on our marketplace; remembers what it finds.
    async fn lookup_offer(&self, sku: &str) -> Result<Lookup, ConnectorError> {
        let path = format!(
            "/offer?sku={}&marketplace_id={}",
            encode_component(sku),
            encode_component(&self.config.marketplace_id)
        );
        let resp = self
            .client
            .call(&Request::get(Api::Inventory, path))
            .await?;
        if !resp.is_success() {
            let errors = ErrorBody::parse(&resp.body);
            let absent = resp.status == 404
                || errors.errors.iter().any(|e| {
                    matches!(
                        e.error_id,
                        mapping::ERR_OFFER_NOT_AVAILABLE | mapping::ERR_SKU_NOT_FOUND
                    )
                });
            if absent && resp.status < 500 {
                self.forget(sku);
                return Ok(Lookup::None);
            }
            return self.item_failure(&resp, sku).map(Lookup::Failed);
        }
        let page: OffersPage = resp.json()?;
        for raw in page.offers {
            let view: OfferView =
                serde_json::from_value(raw.clone()).map_err(|e| ConnectorError::Malformed {
                    status: Some(resp.status),
                    message: format!("unexpected offer in getOffers: {e}"),
                })?;
            let ours = view.sku == sku
                && (view.marketplace_id.is_empty()
                    || view.marketplace_id == self.config.marketplace_id)
                && (view.format.is_empty() || view.format == "FIXED_PRICE")
                && !view.offer_id.is_empty();
            if ours {
                self.remember(sku, &view.offer_id, Some(view.is_published()));
                return Ok(Lookup::Found(Box::new((view, raw))));
            }
        }
        self.forget(sku);
        Ok(Lookup::None)
    }

    /// getOffer by id (raw and typed).
    async fn get_offer(&self, sku: &str, offer_id: &str) -> Result<Lookup, ConnectorError> {
        let path = format!("/offer/{}", encode_component(offer_id));
        let resp = self
            .client
            .call(&Request::get(Api::Inventory, path))
            .await?;
        if !resp.is_success() {
            return self.item_failure(&resp, sku).map(Lookup::Failed);
        }
        let raw: Value = resp.json()?;
        let view: OfferView =
            serde_json::from_value(raw.clone()).map_err(|e| ConnectorError::Malformed {
                status: Some(resp.status),
                message: format!("unexpected offer in getOffer: {e}"),
            })?;
        Ok(Lookup::Found(Box::new((view, raw))))
    }

    /// publishOffer. `Ok(Err(outcome))` when eBay refused it for this item (missing category,
    /// policy …).
    async fn publish(
        &self,
        sku: &str,
        offer_id: &str,
    ) -> Result<Result<(), ItemOutcome>, ConnectorError> {
        let path = format!("/offer/{}/publish", encode_component(offer_id));
        let resp = self
            .client
            .call(&Request::post_empty(Api::Inventory, path))
            .await?;
        if !resp.is_success() {
            return self.item_failure(&resp, sku).map(Err);
        }
        self.counters
            .offers_published
            .fetch_add(1, Ordering::Relaxed);
        self.remember(sku, offer_id, Some(true));
        Ok(Ok(()))
    }

    /// withdrawOffer; an offer that is not live counts as withdrawn.
    async fn withdraw(
        &self,
        sku: &str,
        offer_id: &str,
    ) -> Result<Result<(), ItemOutcome>, ConnectorError> {
        let path = format!("/offer/{}/withdraw", encode_component(offer_id));
        let resp = self
            .client
            .call(&Request::post_empty(Api::Inventory, path))
            .await?;
        if !resp.is_success() {
            let errors = ErrorBody::parse(&resp.body);
            let not_live = resp.status < 500
                && errors
                    .errors
                    .iter()
                    .any(|e| e.error_id == mapping::ERR_OFFER_NOT_AVAILABLE);
            if !not_live {
                return self.item_failure(&resp, sku).map(Err);
            }
        } else {
            self.counters
                .offers_withdrawn
                .fetch_add(1, Ordering::Relaxed);
        }
        self.remember(sku, offer_id, Some(false));
        Ok(Ok(()))
    }

    /// updateOffer with `body` (read-modify-write of the offer the caller read).
    async fn update_offer(
        &self,
        sku: &str,
        offer_id: &str,
        body: &Value,
    ) -> Result<Result<(), ItemOutcome>, ConnectorError> {
        let path = format!("/offer/{}", encode_component(offer_id));
        let req = Request::json(Api::Inventory, Method::PUT, path, body).with_content_language();
        let resp = self.client.call(&req).await?;
        if !resp.is_success() {
            return self.item_failure(&resp, sku).map(Err);
        }
        Ok(Ok(()))
    }

    // ---- push_listings ----------------------------------------------------------------------

    /// One listing: item, offer, publish (see the module docs).
    async fn push_listing(&self, item: &ListingUpdate) -> Result<ItemOutcome, ConnectorError> {
        let sku = item.sku.as_str();
        if let Some(refused) = sku_too_long(sku) {
            return Ok(refused);
        }
        let existing = match self.lookup_offer(sku).await? {
            Lookup::Found(found) => Some(*found),
            Lookup::None => None,
            Lookup::Failed(outcome) => return Ok(listing_retry(outcome)),
        };
        let terms = self.terms(item.quantity, Some(&item.price), Some(&item.description));
        let live = existing.as_ref().is_some_and(|(v, _)| v.is_published());
        let offer_stale = existing
            .as_ref()
            .is_some_and(|(v, _)| !terms.satisfied_by(v));
        let needed = u32::from(live) * (1 + u32::from(offer_stale));
        if needed > self.revisions_left(sku) {
            return Ok(self.revision_refusal(sku, needed));
        }

        // The inventory item: a full replace with the quantity.
        let path = format!("/inventory_item/{}", encode_component(sku));
        let req = Request::json(
            Api::Inventory,
            Method::PUT,
            path,
            &mapping::inventory_item(item),
        )
        .with_content_language();
        let resp = self.client.call(&req).await?;
        if !resp.is_success() {
            return self.item_failure(&resp, sku).map(listing_retry);
        }
        if live {
            self.count_revision(sku);
        }

        // The offer: create, or update only what differs.
        let (offer_id, mut published) = match existing {
            Some((view, raw)) => {
                if offer_stale {
                    let body = mapping::updated_offer(&raw, &terms);
                    if let Err(outcome) = self.update_offer(sku, &view.offer_id, &body).await? {
                        return Ok(listing_retry(outcome));
                    }
                    if live {
                        self.count_revision(sku);
                    }
                }
                (view.offer_id, live)
            }
            None => match self.create_offer(item, &terms).await? {
                Ok(created) => created,
                Err(outcome) => return Ok(listing_retry(outcome)),
            },
        };

        // Live or not, as configured.
        let want_live = !(self.config.withdraw_at_zero && item.quantity == 0);
        if want_live && !published {
            if let Err(outcome) = self.publish(sku, &offer_id).await? {
                return Ok(listing_retry(outcome));
            }
            published = true;
        } else if !want_live && published {
            if let Err(outcome) = self.withdraw(sku, &offer_id).await? {
                return Ok(listing_retry(outcome));
            }
            published = false;
        }
        self.remember(sku, &offer_id, Some(published));
        Ok(ItemOutcome::Applied {
            external_id: Some(offer_id),
        })
    }

    /// createOffer; when eBay says the offer already exists (a create whose answer we lost), the
    /// existing one is adopted and brought up to date. `Ok((offer_id, published))`.
    async fn create_offer(
        &self,
        item: &ListingUpdate,
        terms: &OfferTerms,
    ) -> Result<Result<(String, bool), ItemOutcome>, ConnectorError> {
        let sku = item.sku.as_str();
        let body = mapping::new_offer(&item.sku, &self.config.marketplace_id, terms);
        let req =
            Request::json(Api::Inventory, Method::POST, "/offer", &body).with_content_language();
        let resp = self.client.call(&req).await?;
        if resp.is_success() {
            let created: OfferCreated = resp.json()?;
            if created.offer_id.is_empty() {
                return Err(ConnectorError::Malformed {
                    status: Some(resp.status),
                    message: "createOffer answered without an offerId".into(),
                });
            }
            self.remember(sku, &created.offer_id, Some(false));
            return Ok(Ok((created.offer_id, false)));
        }
        let errors = ErrorBody::parse(&resp.body);
        // "Offer entity already exists": a 25002 naming the offer.
        let already_exists = resp.status < 500
            && errors
                .errors
                .iter()
                .any(|e| e.error_id == mapping::ERR_USER);
        let existing_id = already_exists
            .then(|| errors.parameter("offerId"))
            .flatten()
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        let Some(offer_id) = existing_id else {
            return self.item_failure(&resp, sku).map(Err);
        };
        tracing::info!(sku, offer_id = %offer_id, "eBay already had an offer for this SKU; adopting it.");
        let (view, raw) = match self.get_offer(sku, &offer_id).await? {
            Lookup::Found(found) => *found,
            Lookup::None => {
                return Ok(Err(ItemOutcome::Retry {
                    error: format!("offer {offer_id} vanished while adopting it"),
                }));
            }
            Lookup::Failed(outcome) => return Ok(Err(outcome)),
        };
        let live = view.is_published();
        if !terms.satisfied_by(&view) {
            if live && self.revisions_left(sku) == 0 {
                return Ok(Err(self.revision_refusal(sku, 1)));
            }
            if let Err(outcome) = self
                .update_offer(sku, &offer_id, &mapping::updated_offer(&raw, terms))
                .await?
            {
                return Ok(Err(outcome));
            }
            if live {
                self.count_revision(sku);
            }
        }
        self.remember(sku, &offer_id, Some(live));
        Ok(Ok((offer_id, live)))
    }

    // ---- push_stock -------------------------------------------------------------------------

    /// The offer of a stock update: its `external_id`, the memo, or getOffers.
    async fn resolve_offer(
        &self,
        item: &StockUpdate,
    ) -> Result<Result<KnownOffer, ItemOutcome>, ConnectorError> {
        let sku = item.sku.as_str();
        let memo = self.known(sku);
        if let Some(id) = item.external_id.as_deref().filter(|id| !id.is_empty()) {
            let published = memo.filter(|k| k.offer_id == id).and_then(|k| k.published);
            return Ok(Ok(KnownOffer {
                offer_id: id.to_owned(),
                published,
            }));
        }
        if let Some(k) = memo {
            return Ok(Ok(k));
        }
        Ok(match self.lookup_offer(sku).await? {
            Lookup::Found(found) => Ok(KnownOffer {
                offer_id: found.0.offer_id.clone(),
                published: Some(found.0.is_published()),
            }),
            Lookup::None => Err(ItemOutcome::NotListed {
                error: "no eBay offer for this SKU on this marketplace".into(),
            }),
            Lookup::Failed(outcome) => Err(outcome),
        })
    }

    /// Follow-up of a bulk entry that landed: end the listing (quantity 0, withdraw_at_zero) or
    /// bring a withdrawn one back. Failures become `Retry` for this item only.
    async fn after_bulk(&self, item: &StockUpdate, plan: &Planned) -> ItemOutcome {
        let sku = item.sku.as_str();
        let applied = ItemOutcome::Applied {
            external_id: Some(plan.offer_id.clone()),
        };
        let step = match plan.after {
            After::Nothing => return applied,
            After::Withdraw => self.withdraw(sku, &plan.offer_id).await,
            After::Republish => self.republish(item, &plan.offer_id).await,
        };
        match step {
            Ok(Ok(())) => applied,
            Ok(Err(ItemOutcome::Rejected { code, error })) => ItemOutcome::Rejected { code, error },
            Ok(Err(other)) => ItemOutcome::Retry {
                error: format!(
                    "quantity set, but {} failed: {}",
                    after_name(plan.after),
                    outcome_text(&other)
                ),
            },
            Err(e) => ItemOutcome::Retry {
                error: format!("quantity set, but {} failed: {e}", after_name(plan.after)),
            },
        }
    }

    /// A withdrawn offer whose stock returned: set its quantity (and price) and publish it.
    async fn republish(
        &self,
        item: &StockUpdate,
        offer_id: &str,
    ) -> Result<Result<(), ItemOutcome>, ConnectorError> {
        let sku = item.sku.as_str();
        let (view, raw) = match self.get_offer(sku, offer_id).await? {
            Lookup::Found(found) => *found,
            Lookup::None => {
                return Ok(Err(ItemOutcome::NotListed {
                    error: format!("offer {offer_id} no longer exists"),
                }));
            }
            Lookup::Failed(outcome) => return Ok(Err(outcome)),
        };
        if view.is_published() {
            self.remember(sku, offer_id, Some(true));
            return Ok(Ok(()));
        }
        let body = mapping::requantified_offer(
            &raw,
            item.quantity,
            item.price.as_ref().map(Amount::from_money),
        );
        if let Err(outcome) = self.update_offer(sku, offer_id, &body).await? {
            return Ok(Err(outcome));
        }
        self.publish(sku, offer_id).await
    }

    // ---- orders and snapshot ----------------------------------------------------------------

    fn parse_offset(page: Option<&str>) -> Result<u64, ConnectorError> {
        match page {
            None => Ok(0),
            Some(token) => token
                .trim()
                .parse::<u64>()
                .map_err(|_| ConnectorError::Permanent {
                    status: None,
                    code: None,
                    message: format!("invalid eBay page token {token:?} (expected an offset)"),
                }),
        }
    }
}

/// eBay stores SKUs of at most 50 characters; longer ones are refused before any call.
fn sku_too_long(sku: &str) -> Option<ItemOutcome> {
    (sku.chars().count() > MAX_SKU_LEN).then(|| ItemOutcome::Rejected {
        code: None,
        error: format!("eBay SKUs are at most {MAX_SKU_LEN} characters"),
    })
}

/// In a listing push, "not listed" cannot be the answer (this *is* the listing push): an offer
/// or item that vanished between two calls is retried.
fn listing_retry(outcome: ItemOutcome) -> ItemOutcome {
    match outcome {
        ItemOutcome::NotListed { error } => ItemOutcome::Retry {
            error: format!("the eBay item or offer changed during the push: {error}"),
        },
        other => other,
    }
}

fn after_name(after: After) -> &'static str {
    match after {
        After::Nothing => "nothing",
        After::Withdraw => "withdrawing the offer",
        After::Republish => "publishing the offer again",
    }
}

fn outcome_text(o: &ItemOutcome) -> String {
    match o {
        ItemOutcome::Applied { .. } => "applied".into(),
        ItemOutcome::Retry { error }
        | ItemOutcome::NotListed { error }
        | ItemOutcome::Rejected { error, .. } => error.clone(),
    }
}

#[async_trait]
impl Connector for EbayConnector {
    fn kind(&self) -> &'static str {
        "ebay"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_stock_batch: self.batch_cap(MAX_BULK_REQUESTS),
            max_listing_batch: self.batch_cap(MAX_LISTING_BATCH),
            stock_carries_price: true,
            has_orders: true,
            max_bulk_batch: 0,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = items.len()), err(level = "debug"))]
    async fn push_stock(&self, items: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        if items.len() > MAX_BULK_REQUESTS {
            return Err(ConnectorError::Permanent {
                status: None,
                code: None,
                message: format!(
                    "eBay takes at most {MAX_BULK_REQUESTS} items per bulk stock update, got {}",
                    items.len()
                ),
            });
        }
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let mut plans: Vec<Planned> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let withdraw_at_zero = self.config.withdraw_at_zero;
        for (index, item) in items.iter().enumerate() {
            let sku = item.sku.as_str();
            if !seen.insert(sku) {
                outcomes[index] = Some(ItemOutcome::Retry {
                    error: "the same SKU came twice in one batch; only the first was sent".into(),
                });
                continue;
            }
            if let Some(refused) = sku_too_long(sku) {
                outcomes[index] = Some(refused);
                continue;
            }
            let known = match self.resolve_offer(item).await? {
                Ok(known) => known,
                Err(outcome) => {
                    outcomes[index] = Some(outcome);
                    continue;
                }
            };
            // Unknown means "assume live": true for offers we created; eBay corrects us if not.
            let published = known.published.unwrap_or(true);
            let after = if published {
                if self.revisions_left(sku) == 0 {
                    outcomes[index] = Some(self.revision_refusal(sku, 1));
                    continue;
                }
                if withdraw_at_zero && item.quantity == 0 {
                    After::Withdraw
                } else {
                    After::Nothing
                }
            } else if item.quantity == 0 {
                After::Nothing
            } else if withdraw_at_zero {
                After::Republish
            } else {
                outcomes[index] = Some(ItemOutcome::NotListed {
                    error: format!("eBay offer {} is not published", known.offer_id),
                });
                continue;
            };
            plans.push(Planned {
                index,
                offer_id: known.offer_id,
                published,
                after,
            });
        }

        if !plans.is_empty() {
            let body = BulkPriceQuantity {
                requests: plans
                    .iter()
                    .map(|p| {
                        let item = &items[p.index];
                        PriceQuantity {
                            sku: item.sku.as_str().to_owned(),
                            ship_to_location_availability: ShipTo {
                                quantity: item.quantity,
                            },
                            // The offers container works only for live offers.
                            offers: if p.published {
                                vec![OfferPriceQuantity {
                                    offer_id: p.offer_id.clone(),
                                    available_quantity: item.quantity,
                                    price: item.price.as_ref().map(Amount::from_money),
                                }]
                            } else {
                                Vec::new()
                            },
                        }
                    })
                    .collect(),
            };
            let req = Request::json(
                Api::Inventory,
                Method::POST,
                "/bulk_update_price_quantity",
                &body,
            );
            let resp = self.client.call(&req).await?;
            if resp.status != 200 && resp.status != 207 {
                return Err(self.client.error(&resp));
            }
            let answer: BulkResponse = resp.json()?;
            for plan in &plans {
                let item = &items[plan.index];
                let sku = item.sku.as_str();
                let outcome = match mapping::bulk_result(sku, &answer.responses) {
                    Ok(()) => {
                        if plan.published {
                            self.count_revision(sku);
                        }
                        self.remember(sku, &plan.offer_id, Some(plan.published));
                        self.after_bulk(item, plan).await
                    }
                    Err(e) => {
                        if e.revision_cap {
                            self.hold_for_today(sku);
                        }
                        if matches!(e.outcome, ItemOutcome::NotListed { .. }) {
                            self.forget(sku);
                        }
                        e.outcome
                    }
                };
                outcomes[plan.index] = Some(outcome);
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
        if items.len() > MAX_LISTING_BATCH {
            return Err(ConnectorError::Permanent {
                status: None,
                code: None,
                message: format!(
                    "the eBay connector takes at most {MAX_LISTING_BATCH} listings per call, got {}",
                    items.len()
                ),
            });
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            outcomes.push(self.push_listing(item).await?);
        }
        Ok(outcomes)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(items = skus.len()), err(level = "debug"))]
    async fn delist(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut outcomes = Vec::with_capacity(skus.len());
        for sku in skus {
            let sku = sku.as_str();
            if sku_too_long(sku).is_some() {
                // eBay cannot hold such a SKU, so it has nothing to take down.
                outcomes.push(ItemOutcome::Applied { external_id: None });
                continue;
            }
            let known = match self.known(sku) {
                Some(k) => Some(k),
                None => match self.lookup_offer(sku).await? {
                    Lookup::Found(found) => Some(KnownOffer {
                        offer_id: found.0.offer_id.clone(),
                        published: Some(found.0.is_published()),
                    }),
                    Lookup::None => None,
                    Lookup::Failed(outcome) => {
                        outcomes.push(outcome);
                        continue;
                    }
                },
            };
            let Some(known) = known else {
                outcomes.push(ItemOutcome::Applied { external_id: None });
                continue;
            };
            if known.published == Some(false) {
                outcomes.push(ItemOutcome::Applied {
                    external_id: Some(known.offer_id),
                });
                continue;
            }
            outcomes.push(match self.withdraw(sku, &known.offer_id).await? {
                Ok(()) => ItemOutcome::Applied {
                    external_id: Some(known.offer_id),
                },
                Err(ItemOutcome::NotListed { .. }) => ItemOutcome::Applied { external_id: None },
                Err(outcome) => outcome,
            });
        }
        Ok(outcomes)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(since_ms, page = page.as_deref()), err(level = "debug"))]
    async fn fetch_orders(
        &self,
        since_ms: i64,
        page: Option<String>,
    ) -> Result<NeutralOrdersPage, ConnectorError> {
        let offset = Self::parse_offset(page.as_deref())?;
        // Built by hand: eBay requires `[` `]` as %5B %5D, and nothing may encode them again.
        let path = format!(
            "/order?filter=lastmodifieddate:%5B{}..%5D&limit={MAX_ORDERS_PAGE}&offset={offset}",
            mapping::format_timestamp(since_ms)
        );
        let resp = self
            .client
            .call(&Request::get(Api::Fulfillment, path))
            .await?;
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let body: OrdersPage = resp.json()?;
        let mut orders = Vec::with_capacity(body.orders.len());
        for o in &body.orders {
            let mapped =
                mapping::channel_order(o).map_err(|message| ConnectorError::Malformed {
                    status: Some(resp.status),
                    message,
                })?;
            if mapped.lines_without_sku > 0 {
                self.counters
                    .order_lines_without_sku
                    .fetch_add(mapped.lines_without_sku, Ordering::Relaxed);
                tracing::info!(order = %mapped.order.external_id, lines = mapped.lines_without_sku, "eBay order lines without a usable SKU left out.");
            }
            orders.push(mapped.order);
        }
        let next_page = body
            .next
            .as_deref()
            .filter(|_| !body.orders.is_empty())
            .map(|next| {
                mapping::query_param(next, "offset")
                    .and_then(|o| o.parse::<u64>().ok())
                    .unwrap_or(offset + body.orders.len() as u64)
            })
            // Never loop on the same page.
            .filter(|next| *next > offset)
            .map(|next| next.to_string());
        Ok(NeutralOrdersPage { orders, next_page })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(page = page.as_deref()), err(level = "debug"))]
    async fn snapshot_page(&self, page: Option<String>) -> Result<SnapshotPage, ConnectorError> {
        let offset = Self::parse_offset(page.as_deref())?;
        let path = format!("/inventory_item?limit={MAX_INVENTORY_PAGE}&offset={offset}");
        let resp = self
            .client
            .call(&Request::get(Api::Inventory, path))
            .await?;
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let body: InventoryItemsPage = resp.json()?;
        let items = body
            .inventory_items
            .iter()
            .filter_map(|i| {
                // A SKU omnistock could not have written is not ours to reconcile.
                let sku = Sku::parse(i.sku.as_str()).ok()?;
                Some(RemoteItem {
                    external_id: self.known(sku.as_str()).map(|k| k.offer_id),
                    quantity: i.quantity(),
                    price: None,
                    sku,
                })
            })
            .collect();
        let next_page = body
            .next
            .as_deref()
            .filter(|_| !body.inventory_items.is_empty())
            // `offset` counts pages here; a `next` without a readable one means the next page.
            .map(|next| {
                mapping::query_param(next, "offset")
                    .and_then(|o| o.parse::<u64>().ok())
                    .unwrap_or(offset + 1)
            })
            .filter(|next| *next > offset)
            .map(|next| next.to_string());
        Ok(SnapshotPage { items, next_page })
    }

    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    async fn healthcheck(&self) -> Result<Health, ConnectorError> {
        let started = tokio::time::Instant::now();
        self.client.token().await?;
        let resp = self
            .client
            .call(&Request::get(Api::Inventory, "/inventory_item?limit=1"))
            .await?;
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let body: InventoryItemsPage = resp.json()?;
        Ok(Health {
            summary: format!(
                "token ok, {} inventory items on eBay ({})",
                body.total, self.config.marketplace_id
            ),
            latency: started.elapsed(),
        })
    }

    fn stats(&self) -> ConnectorStats {
        let c = &self.client.counters;
        let (max_today, held) = {
            let mut log = lock(&self.revisions);
            let counts = log.today(today());
            (
                counts.values().copied().max().unwrap_or(0),
                counts
                    .values()
                    .filter(|n| **n >= MAX_REVISIONS_PER_DAY)
                    .count(),
            )
        };
        let e = &self.counters;
        let mut stats = ConnectorStats {
            requests: c.requests.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            token_refreshes: self.client.token_stats().refreshes,
            ..ConnectorStats::default()
        }
        .with_budgets(self.client.budget.snapshot());
        for (name, value) in [
            ("revisions_max_today", u64::from(max_today)),
            ("revision_held_items", held as u64),
            (
                "revision_refusals",
                e.revision_refusals.load(Ordering::Relaxed),
            ),
            (
                "order_lines_without_sku",
                e.order_lines_without_sku.load(Ordering::Relaxed),
            ),
            (
                "offers_published",
                e.offers_published.load(Ordering::Relaxed),
            ),
            (
                "offers_withdrawn",
                e.offers_withdrawn.load(Ordering::Relaxed),
            ),
            ("offer_memo_size", lock(&self.offers).len() as u64),
        ] {
            stats.extra.insert(name, value);
        }
        stats
    }
}
