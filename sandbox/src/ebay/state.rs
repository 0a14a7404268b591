//! eBay's state and the rules that change it: inventory items, offers/listings, locations, orders,
//! tokens and per-listing revision counts. Pure logic, no HTTP: handlers parse, call in here under
//! the state lock, and render. Every applied client write is logged from in here, while the lock is
//! held, so the write log's order is the order in which state changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::*;
use super::{ControlError, MARKETPLACE, OrderLine};
use crate::faults::SkuRejection;
use crate::record::{Money, NewWrite, Recorder};

/// What an operation needs from outside the state.
pub(crate) struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub rec: &'a Recorder,
    pub revision_limit: u32,
    /// Seeding pre-existing state: revisions are not counted (nor, via a scratch recorder, writes).
    pub seeding: bool,
}

impl Ctx<'_> {
    fn today(&self) -> NaiveDate {
        self.now.date_naive()
    }

    fn log(&self, write: NewWrite) {
        self.rec.write(MARKETPLACE, write);
    }
}

/// eBay's timestamp format: `2015-08-04T19:09:02.768Z`.
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An inventory item: the body as last PUT, with the quantity kept apart because sales change it.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub sku: String,
    pub locale: String,
    pub body: Map<String, Value>,
    pub quantity: Option<u32>,
}

impl Item {
    /// `InventoryItemWithSkuLocaleGroupid`.
    pub(crate) fn render(&self) -> Value {
        let mut body = self.body.clone();
        body.insert("sku".into(), json!(self.sku));
        body.insert("locale".into(), json!(self.locale));
        match self.quantity {
            Some(q) => {
                let avail = object_entry(&mut body, "availability");
                let ship = object_entry(avail, "shipToLocationAvailability");
                ship.insert("quantity".into(), json!(q));
            }
            None => {
                if let Some(ship) = body
                    .get_mut("availability")
                    .and_then(|a| a.get_mut("shipToLocationAvailability"))
                    .and_then(Value::as_object_mut)
                {
                    ship.remove("quantity");
                }
            }
        }
        Value::Object(body)
    }
}

fn object_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("just made an object")
}

fn get_path<'a>(map: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = map.get(*first)?;
    for key in rest {
        v = v.get(*key)?;
    }
    Some(v)
}

fn non_empty_str<'a>(map: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    get_path(map, path)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A JSON integer 0..=u32::MAX.
pub(crate) fn as_quantity(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// Parses an eBay `Amount` (`{"value":"19.99","currency":"USD"}`): value a decimal string with at
/// most two decimals, greater than zero; currency three upper-case letters.
pub(crate) fn parse_amount(v: &Value) -> Option<Money> {
    let value = v.get("value")?.as_str()?;
    let currency = v.get("currency")?.as_str()?;
    let minor = parse_minor(value)?;
    if minor <= 0 || currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(Money::new(value, currency))
}

/// `"19.99"` → 1999. At most two decimals, no sign, no exponent.
pub(crate) fn parse_minor(value: &str) -> Option<i64> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if int.is_empty()
        || frac.len() > 2
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    int.checked_mul(100)?.checked_add(frac)
}

/// 1999 → `"19.99"`.
pub(crate) fn format_minor(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// An offer; published when `listing_id` is set.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub offer_id: String,
    pub sku: String,
    pub marketplace_id: String,
    pub format: String,
    /// The body as last written, minus the fields kept below.
    pub body: Map<String, Value>,
    pub available_quantity: Option<u32>,
    pub price: Option<Money>,
    pub listing_id: Option<String>,
    pub sold_quantity: u32,
}

impl Offer {
    /// `EbayOfferDetailsWithAll`.
    pub(crate) fn render(&self) -> Value {
        let mut body = self.body.clone();
        body.insert("offerId".into(), json!(self.offer_id));
        body.insert("sku".into(), json!(self.sku));
        body.insert("marketplaceId".into(), json!(self.marketplace_id));
        body.insert("format".into(), json!(self.format));
        match self.available_quantity {
            Some(q) => body.insert("availableQuantity".into(), json!(q)),
            None => body.remove("availableQuantity"),
        };
        if let Some(price) = &self.price {
            object_entry(&mut body, "pricingSummary").insert("price".into(), json!(price));
        }
        match &self.listing_id {
            Some(listing_id) => {
                body.insert("status".into(), json!("PUBLISHED"));
                body.insert(
                    "listing".into(),
                    json!({"listingId": listing_id, "listingStatus": "ACTIVE",
                           "soldQuantity": self.sold_quantity}),
                );
            }
            None => {
                body.insert("status".into(), json!("UNPUBLISHED"));
                body.remove("listing");
            }
        }
        Value::Object(body)
    }
}

/// The fields of an offer body the sandbox acts on.
struct OfferFields {
    sku: Option<String>,
    marketplace_id: Option<String>,
    format: Option<String>,
    available_quantity: Option<u32>,
    price: Option<Money>,
}

fn offer_fields(body: &Map<String, Value>) -> Result<OfferFields, EbayError> {
    let string = |key: &str| -> Result<Option<String>, EbayError> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(invalid_value(key)),
        }
    };
    let available_quantity = match body.get("availableQuantity") {
        None | Some(Value::Null) => None,
        Some(v) => Some(as_quantity(v).ok_or_else(|| invalid_value("availableQuantity"))?),
    };
    let price = match get_path(body, &["pricingSummary", "price"]) {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_amount(v).ok_or_else(|| {
            EbayError::inventory(
                ERR_INVALID_PRICE,
                "The eBay listing associated with the inventory item, or the unpublished offer has an invalid price.",
            )
        })?),
    };
    Ok(OfferFields {
        sku: string("sku")?,
        marketplace_id: string("marketplaceId")?,
        format: string("format")?,
        available_quantity,
        price,
    })
}

fn invalid_value(field: &str) -> EbayError {
    EbayError::inventory(ERR_INVALID_VALUE, format!("Invalid value for {field}."))
        .with_param("fieldName", field)
}

/// The offer fields kept as state (not rendered from the body).
const OFFER_STATE_FIELDS: [&str; 6] = [
    "offerId",
    "status",
    "listing",
    "sku",
    "marketplaceId",
    "format",
];

/// Order fulfillment state (cancellation is separate, as in eBay's model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fulfillment {
    NotStarted,
    Fulfilled,
}

impl Fulfillment {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Fulfillment::NotStarted => "NOT_STARTED",
            Fulfillment::Fulfilled => "FULFILLED",
        }
    }
}

/// One order line.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub line_item_id: String,
    pub listing_id: String,
    pub sku: String,
    pub title: String,
    pub quantity: u32,
    pub unit_minor: i64,
}

/// An order.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub id: String,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub buyer: String,
    pub currency: String,
    pub marketplace_id: String,
    pub lines: Vec<Line>,
    pub fulfillment: Fulfillment,
    pub cancelled: Option<DateTime<Utc>>,
    pub sales_record: u64,
}

impl Order {
    /// The spec's `Order`, with the fields a seller tool reads.
    pub(crate) fn render(&self) -> Value {
        let money = |minor: i64| json!({"value": format_minor(minor), "currency": self.currency});
        let total: i64 = self
            .lines
            .iter()
            .map(|l| l.unit_minor * i64::from(l.quantity))
            .sum();
        let line_status = self.fulfillment.as_str();
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                let cost = l.unit_minor * i64::from(l.quantity);
                json!({
                    "lineItemId": l.line_item_id,
                    "legacyItemId": l.listing_id,
                    "sku": l.sku,
                    "title": l.title,
                    "quantity": l.quantity,
                    "lineItemCost": money(cost),
                    "total": money(cost),
                    "soldFormat": "FIXED_PRICE",
                    "listingMarketplaceId": self.marketplace_id,
                    "purchaseMarketplaceId": self.marketplace_id,
                    "lineItemFulfillmentStatus": line_status,
                })
            })
            .collect();
        let cancel_status = match self.cancelled {
            Some(at) => {
                json!({"cancelState": "CANCELED", "cancelledDate": timestamp(at), "cancelRequests": []})
            }
            None => json!({"cancelState": "NONE_REQUESTED", "cancelRequests": []}),
        };
        json!({
            "orderId": self.id,
            "creationDate": timestamp(self.created),
            "lastModifiedDate": timestamp(self.modified),
            "orderFulfillmentStatus": self.fulfillment.as_str(),
            "orderPaymentStatus": if self.cancelled.is_some() { "FULLY_REFUNDED" } else { "PAID" },
            "sellerId": super::SELLER_ID,
            "buyer": {"username": self.buyer},
            "pricingSummary": {"priceSubtotal": money(total), "total": money(total)},
            "cancelStatus": cancel_status,
            "salesRecordReference": self.sales_record.to_string(),
            "lineItems": lines,
        })
    }

    /// Moves `lastModifiedDate` to now, strictly after the previous value.
    fn touch(&mut self, now: DateTime<Utc>) {
        let floor = self.modified + chrono::Duration::milliseconds(1);
        self.modified = now.max(floor);
    }
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub scopes: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

/// One bulkUpdatePriceQuantity request entry (`PriceQuantity`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PriceQuantity {
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub ship_to_location_availability: Option<ShipTo>,
    #[serde(default)]
    pub offers: Vec<OfferPriceQuantity>,
}

/// `ShipToLocationAvailability` (only `quantity` is acted on).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ShipTo {
    #[serde(default)]
    pub quantity: Option<i64>,
}

/// `OfferPriceQuantity`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OfferPriceQuantity {
    #[serde(default)]
    pub offer_id: Option<String>,
    #[serde(default)]
    pub available_quantity: Option<i64>,
    #[serde(default)]
    pub price: Option<Value>,
}

/// `PriceQuantityResponse`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PriceQuantityResponse {
    pub status_code: u16,
    pub sku: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_id: Option<String>,
    pub errors: Vec<ErrorData>,
    pub warnings: Vec<ErrorData>,
}

impl PriceQuantityResponse {
    fn ok(sku: &str, offer_id: Option<String>) -> Self {
        PriceQuantityResponse {
            status_code: 200,
            sku: sku.to_owned(),
            offer_id,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn failed(sku: &str, offer_id: Option<String>, status: u16, error: ErrorData) -> Self {
        PriceQuantityResponse {
            status_code: status,
            sku: sku.to_owned(),
            offer_id,
            errors: vec![error],
            warnings: Vec::new(),
        }
    }
}

/// A validated `offers[]` entry of a bulk request.
struct OfferChange {
    quantity: Option<u32>,
    price: Option<Money>,
    listing_id: String,
}

/// Why one bulk response entry failed (boxed: results stay small).
struct ItemFailure {
    status: u16,
    error: Box<ErrorData>,
}

impl ItemFailure {
    fn new(status: u16, error_id: u64, message: impl Into<String>) -> Self {
        ItemFailure {
            status,
            error: Box::new(ErrorData::inventory(error_id, message)),
        }
    }
}

/// Per-listing revisions on one UTC calendar day.
#[derive(Debug, Clone, Copy)]
struct Revisions {
    day: NaiveDate,
    count: u32,
}

/// All of eBay's state.
#[derive(Debug, Default)]
pub(crate) struct EbayState {
    pub items: BTreeMap<String, Item>,
    pub offers: BTreeMap<String, Offer>,
    pub locations: BTreeMap<String, Map<String, Value>>,
    pub orders: BTreeMap<String, Order>,
    pub tokens: HashMap<String, AccessToken>,
    revisions: HashMap<String, Revisions>,
    next_offer: u64,
    next_listing: u64,
    next_order: u64,
    next_line: u64,
    /// Buyers may buy more than the listing shows (see [`super::EbayHandle::set_allow_oversell`]).
    pub allow_oversell: bool,
}

/// First offerId handed out (eBay offerIds are numeric strings).
const FIRST_OFFER_ID: u64 = 5_000_000_001;
/// First listingId (eBay item numbers are 12 digits).
const FIRST_LISTING_ID: u64 = 110_000_000_001;
/// First line item id.
const FIRST_LINE_ITEM_ID: u64 = 10_000_000_000_001;
/// Order ids look like eBay's `NN-NNNNN-NNNNN`.
const FIRST_ORDER_NUMBER: u64 = 1_000_000_001;

impl EbayState {
    fn new_offer_id(&mut self) -> String {
        self.next_offer += 1;
        (FIRST_OFFER_ID + self.next_offer - 1).to_string()
    }

    fn new_listing_id(&mut self) -> String {
        self.next_listing += 1;
        (FIRST_LISTING_ID + self.next_listing - 1).to_string()
    }

    fn new_order_id(&mut self) -> (String, u64) {
        self.next_order += 1;
        let n = FIRST_ORDER_NUMBER + self.next_order - 1;
        (
            format!("27-{:05}-{:05}", (n / 100_000) % 100_000, n % 100_000),
            self.next_order,
        )
    }

    fn new_line_item_id(&mut self) -> String {
        self.next_line += 1;
        (FIRST_LINE_ITEM_ID + self.next_line - 1).to_string()
    }

    // ---- views ---------------------------------------------------------------------------

    /// The first published offer of a SKU (the sandbox, like eBay today, lists a SKU once per
    /// marketplace).
    pub(crate) fn published_offer(&self, sku: &str) -> Option<&Offer> {
        self.offers
            .values()
            .find(|o| o.sku == sku && o.listing_id.is_some())
    }

    fn published_listings(&self, sku: &str) -> Vec<String> {
        self.offers
            .values()
            .filter(|o| o.sku == sku)
            .filter_map(|o| o.listing_id.clone())
            .collect()
    }

    /// What a published offer's listing shows: min(item quantity, offer availableQuantity).
    pub(crate) fn offer_visible(&self, offer: &Offer) -> u32 {
        let item = self
            .items
            .get(&offer.sku)
            .and_then(|i| i.quantity)
            .unwrap_or(0);
        offer.available_quantity.map_or(item, |a| a.min(item))
    }

    /// What buyers see for a SKU: its live listing's quantity; the item's quantity when it has
    /// no live listing; `None` when there is no item.
    pub(crate) fn visible_quantity(&self, sku: &str) -> Option<u32> {
        match self.published_offer(sku) {
            Some(offer) => Some(self.offer_visible(offer)),
            None => self.items.get(sku).map(|i| i.quantity.unwrap_or(0)),
        }
    }

    /// The live listing's price, else any offer's price.
    pub(crate) fn current_price(&self, sku: &str) -> Option<Money> {
        self.published_offer(sku)
            .and_then(|o| o.price.clone())
            .or_else(|| {
                self.offers
                    .values()
                    .find(|o| o.sku == sku)
                    .and_then(|o| o.price.clone())
            })
    }

    pub(crate) fn revisions_today(&self, listing_id: &str, today: NaiveDate) -> u32 {
        self.revisions
            .get(listing_id)
            .filter(|r| r.day == today)
            .map_or(0, |r| r.count)
    }

    // ---- revisions ------------------------------------------------------------------------

    fn revision_cap_error(&self, ctx: &Ctx<'_>, listings: &[String]) -> Option<ErrorData> {
        listings
            .iter()
            .find(|l| self.revisions_today(l, ctx.today()) >= ctx.revision_limit)
            .map(|listing| {
                ErrorData::inventory(
                    ERR_USER,
                    format!(
                        "A user error has occurred. Listing {listing} has reached the limit of {} revisions for this calendar day; it can be revised again on the next calendar day (UTC).",
                        ctx.revision_limit
                    ),
                )
                .param("listingId", listing.clone())
            })
    }

    fn count_revisions(&mut self, ctx: &Ctx<'_>, listings: &[String]) {
        if ctx.seeding {
            return;
        }
        let today = ctx.today();
        for listing in listings {
            let entry = self.revisions.entry(listing.clone()).or_insert(Revisions {
                day: today,
                count: 0,
            });
            if entry.day != today {
                *entry = Revisions {
                    day: today,
                    count: 0,
                };
            }
            entry.count += 1;
        }
    }

    // ---- inventory items ------------------------------------------------------------------

    /// createOrReplaceInventoryItem: full replace; revises the SKU's live listings.
    pub(crate) fn put_item(
        &mut self,
        ctx: &Ctx<'_>,
        sku: &str,
        locale: String,
        mut body: Map<String, Value>,
    ) -> Result<(), EbayError> {
        let quantity = match get_path(
            &body,
            &["availability", "shipToLocationAvailability", "quantity"],
        ) {
            None | Some(Value::Null) => None,
            Some(v) => Some(as_quantity(v).ok_or_else(|| {
                invalid_value("availability.shipToLocationAvailability.quantity")
            })?),
        };
        let listings = self.published_listings(sku);
        if let Some(error) = self.revision_cap_error(ctx, &listings) {
            return Err(EbayError::new(StatusCode::BAD_REQUEST, error));
        }
        body.remove("sku");
        body.remove("locale");
        self.items.insert(
            sku.to_owned(),
            Item {
                sku: sku.to_owned(),
                locale,
                body,
                quantity,
            },
        );
        self.count_revisions(ctx, &listings);
        ctx.log(NewWrite {
            operation: "createOrReplaceInventoryItem",
            sku: sku.to_owned(),
            quantity,
            visible_quantity: self.visible_quantity(sku),
            ..NewWrite::default()
        });
        Ok(())
    }

    pub(crate) fn get_item(&self, sku: &str) -> Result<Value, EbayError> {
        self.items
            .get(sku)
            .map(Item::render)
            .ok_or_else(|| not_found(sku))
    }

    /// deleteInventoryItem: also deletes the SKU's offers and ends their listings, as eBay does.
    pub(crate) fn delete_item(&mut self, ctx: &Ctx<'_>, sku: &str) -> Result<(), EbayError> {
        if self.items.remove(sku).is_none() {
            return Err(not_found(sku).with_status(StatusCode::NOT_FOUND));
        }
        self.offers.retain(|_, o| o.sku != sku);
        ctx.log(NewWrite {
            operation: "deleteInventoryItem",
            sku: sku.to_owned(),
            ..NewWrite::default()
        });
        Ok(())
    }

    // ---- offers ---------------------------------------------------------------------------

    /// createOffer.
    pub(crate) fn create_offer(
        &mut self,
        ctx: &Ctx<'_>,
        mut body: Map<String, Value>,
    ) -> Result<String, EbayError> {
        let fields = offer_fields(&body)?;
        let sku = fields.sku.ok_or_else(|| invalid_value("sku"))?;
        let marketplace_id = fields
            .marketplace_id
            .ok_or_else(|| invalid_value("marketplaceId"))?;
        let format = fields.format.ok_or_else(|| invalid_value("format"))?;
        if format != "FIXED_PRICE" {
            return Err(invalid_value("format"));
        }
        if !self.items.contains_key(&sku) {
            return Err(sku_not_found(&sku));
        }
        if let Some(existing) = self
            .offers
            .values()
            .find(|o| o.sku == sku && o.marketplace_id == marketplace_id && o.format == format)
        {
            return Err(EbayError::inventory(
                ERR_USER,
                "A user error has occurred. Offer entity already exists.",
            )
            .with_param("offerId", &existing.offer_id));
        }
        for key in OFFER_STATE_FIELDS {
            body.remove(key);
        }
        let offer_id = self.new_offer_id();
        let offer = Offer {
            offer_id: offer_id.clone(),
            sku: sku.clone(),
            marketplace_id,
            format,
            body,
            available_quantity: fields.available_quantity,
            price: fields.price.clone(),
            listing_id: None,
            sold_quantity: 0,
        };
        self.offers.insert(offer_id.clone(), offer);
        ctx.log(NewWrite {
            operation: "createOffer",
            sku: sku.clone(),
            listing_ref: Some(offer_id.clone()),
            offer_quantity: fields.available_quantity,
            price: fields.price,
            visible_quantity: self.visible_quantity(&sku),
            ..NewWrite::default()
        });
        Ok(offer_id)
    }

    pub(crate) fn offer(&self, offer_id: &str) -> Result<&Offer, EbayError> {
        self.offers
            .get(offer_id)
            .ok_or_else(|| offer_not_available(offer_id).with_status(StatusCode::NOT_FOUND))
    }

    /// updateOffer: full replace of the offer's body; a live listing is revised (and must stay
    /// publishable).
    pub(crate) fn update_offer(
        &mut self,
        ctx: &Ctx<'_>,
        offer_id: &str,
        mut body: Map<String, Value>,
    ) -> Result<(), EbayError> {
        let existing = self.offer(offer_id)?.clone();
        let fields = offer_fields(&body)?;
        for key in OFFER_STATE_FIELDS {
            body.remove(key);
        }
        let mut updated = Offer {
            body,
            available_quantity: fields.available_quantity,
            price: fields.price.clone(),
            ..existing
        };
        if let Some(m) = fields.marketplace_id {
            updated.marketplace_id = m;
        }
        let listings: Vec<String> = updated.listing_id.iter().cloned().collect();
        if !listings.is_empty() {
            if let Some(error) = self.revision_cap_error(ctx, &listings) {
                return Err(EbayError::new(StatusCode::BAD_REQUEST, error));
            }
            let errors = self.publish_errors(&updated);
            if !errors.is_empty() {
                return Err(EbayError::many(StatusCode::BAD_REQUEST, errors));
            }
        }
        let sku = updated.sku.clone();
        self.offers.insert(offer_id.to_owned(), updated);
        self.count_revisions(ctx, &listings);
        ctx.log(NewWrite {
            operation: "updateOffer",
            sku: sku.clone(),
            listing_ref: Some(offer_id.to_owned()),
            offer_quantity: fields.available_quantity,
            price: fields.price,
            visible_quantity: self.visible_quantity(&sku),
            ..NewWrite::default()
        });
        Ok(())
    }

    /// deleteOffer (ends a live listing).
    pub(crate) fn delete_offer(&mut self, ctx: &Ctx<'_>, offer_id: &str) -> Result<(), EbayError> {
        let offer = self
            .offers
            .remove(offer_id)
            .ok_or_else(|| offer_not_available(offer_id).with_status(StatusCode::NOT_FOUND))?;
        ctx.log(NewWrite {
            operation: "deleteOffer",
            sku: offer.sku.clone(),
            listing_ref: Some(offer_id.to_owned()),
            visible_quantity: self.visible_quantity(&offer.sku),
            ..NewWrite::default()
        });
        Ok(())
    }

    /// What stops an offer from being published: eBay's "Offer fields" list as far as the sandbox
    /// models it (contracts/README.md §2.3: location, price, quantity, category, three policies).
    fn publish_errors(&self, offer: &Offer) -> Vec<ErrorData> {
        let mut errors = Vec::new();
        match self.items.get(&offer.sku) {
            None => errors.push(
                ErrorData::inventory(
                    ERR_SKU_NOT_FOUND,
                    format!("{} could not be found or is not available in the system.", offer.sku),
                )
                .param("sku", offer.sku.clone()),
            ),
            Some(item) if item.quantity.is_none() => errors.push(ErrorData::inventory(
                ERR_INVALID_QUANTITY,
                "The eBay listing associated with the inventory item, or the unpublished offer has an invalid quantity. The inventory item's shipToLocationAvailability.quantity must be set before publishing.",
            )),
            Some(_) => {}
        }
        if offer.price.is_none() {
            errors.push(ErrorData::inventory(
                ERR_INVALID_PRICE,
                "The eBay listing associated with the inventory item, or the unpublished offer has an invalid price. pricingSummary.price is required.",
            ));
        }
        if non_empty_str(&offer.body, &["categoryId"]).is_none() {
            errors.push(ErrorData::inventory(
                ERR_INVALID_CATEGORY,
                "The eBay listing associated with the inventory item, or the unpublished offer has an invalid category ID. categoryId is required.",
            ));
        }
        for (field, id, what) in [
            ("fulfillmentPolicyId", ERR_FULFILLMENT_POLICY, "Fulfillment"),
            ("paymentPolicyId", ERR_PAYMENT_POLICY, "Payment"),
            ("returnPolicyId", ERR_RETURN_POLICY, "Return"),
        ] {
            if non_empty_str(&offer.body, &["listingPolicies", field]).is_none() {
                errors.push(ErrorData::inventory(
                    id,
                    format!("The eBay listing associated with the inventory item, or the unpublished offer has invalid data in the associated {what} policy. listingPolicies.{field} is required."),
                ));
            }
        }
        match non_empty_str(&offer.body, &["merchantLocationKey"]) {
            Some(key) if self.locations.contains_key(key) => {}
            key => errors.push(
                ErrorData::inventory(
                    ERR_INVALID_LOCATION,
                    "Invalid inventory location. merchantLocationKey must name an existing inventory location.",
                )
                .param("merchantLocationKey", key.unwrap_or_default()),
            ),
        }
        errors
    }

    /// publishOffer. Publishing a live offer again revises the listing (same listingId).
    pub(crate) fn publish(&mut self, ctx: &Ctx<'_>, offer_id: &str) -> Result<String, EbayError> {
        let offer = self.offer(offer_id)?.clone();
        let errors = self.publish_errors(&offer);
        if !errors.is_empty() {
            return Err(EbayError::many(StatusCode::BAD_REQUEST, errors));
        }
        let listing_id = match &offer.listing_id {
            Some(listing_id) => {
                let listings = [listing_id.clone()];
                if let Some(error) = self.revision_cap_error(ctx, &listings) {
                    return Err(EbayError::new(StatusCode::BAD_REQUEST, error));
                }
                self.count_revisions(ctx, &listings);
                listing_id.clone()
            }
            None => {
                let listing_id = self.new_listing_id();
                if let Some(o) = self.offers.get_mut(offer_id) {
                    o.listing_id = Some(listing_id.clone());
                    o.sold_quantity = 0;
                }
                listing_id
            }
        };
        ctx.log(NewWrite {
            operation: "publishOffer",
            sku: offer.sku.clone(),
            listing_ref: Some(offer_id.to_owned()),
            offer_quantity: offer.available_quantity,
            price: offer.price.clone(),
            visible_quantity: self.visible_quantity(&offer.sku),
            ..NewWrite::default()
        });
        Ok(listing_id)
    }

    /// withdrawOffer: ends the listing, keeps the offer (unpublished).
    pub(crate) fn withdraw(&mut self, ctx: &Ctx<'_>, offer_id: &str) -> Result<String, EbayError> {
        let offer = self.offer(offer_id)?;
        let Some(listing_id) = offer.listing_id.clone() else {
            return Err(offer_not_available(&format!("{offer_id} is not published")));
        };
        let sku = offer.sku.clone();
        if let Some(o) = self.offers.get_mut(offer_id) {
            o.listing_id = None;
        }
        ctx.log(NewWrite {
            operation: "withdrawOffer",
            sku: sku.clone(),
            listing_ref: Some(offer_id.to_owned()),
            visible_quantity: self.visible_quantity(&sku),
            ..NewWrite::default()
        });
        Ok(listing_id)
    }

    // ---- bulkUpdatePriceQuantity ------------------------------------------------------------

    /// One request entry. The modelled rules (eBay's guide leaves the details open):
    /// - unknown SKU, a fault-rejected SKU or an invalid item-level quantity fail every response of
    ///   the entry and change nothing;
    /// - each offer entry must name an existing, *published* offer of that SKU (the offers container
    ///   works only for published offers), once; failing offers get their own error;
    /// - a listing revised by the entry (the SKU's live listings when the item quantity changes,
    ///   plus each offer's listing) counts one revision; if any is at the daily cap the whole entry
    ///   fails with the cap error;
    /// - responses: one per offer entry, or one for the SKU when there are none.
    pub(crate) fn bulk_entry(
        &mut self,
        ctx: &Ctx<'_>,
        entry: &PriceQuantity,
        rejection: Option<SkuRejection>,
    ) -> Vec<PriceQuantityResponse> {
        let sku = entry.sku.clone().unwrap_or_default();
        let fail_all = |status: u16, error: ErrorData| -> Vec<PriceQuantityResponse> {
            if entry.offers.is_empty() {
                vec![PriceQuantityResponse::failed(&sku, None, status, error)]
            } else {
                entry
                    .offers
                    .iter()
                    .map(|o| {
                        PriceQuantityResponse::failed(
                            &sku,
                            o.offer_id.clone(),
                            status,
                            error.clone(),
                        )
                    })
                    .collect()
            }
        };
        if sku.is_empty() {
            return fail_all(
                400,
                ErrorData::inventory(ERR_INVALID_VALUE, "Invalid value for sku."),
            );
        }
        if let Some(r) = rejection {
            return fail_all(
                r.status,
                ErrorData::inventory(r.error_id, r.message).param("sku", sku.clone()),
            );
        }
        if !self.items.contains_key(&sku) {
            return fail_all(
                404,
                ErrorData::inventory(
                    ERR_SKU_NOT_FOUND,
                    format!("{sku} could not be found or is not available in the system."),
                )
                .param("sku", sku.clone()),
            );
        }
        let new_quantity = match entry
            .ship_to_location_availability
            .as_ref()
            .and_then(|s| s.quantity)
        {
            None => None,
            Some(q) => match u32::try_from(q) {
                Ok(q) => Some(q),
                Err(_) => {
                    return fail_all(
                        400,
                        ErrorData::inventory(
                            ERR_INVALID_VALUE,
                            "Invalid value for shipToLocationAvailability.quantity.",
                        ),
                    );
                }
            },
        };

        // Validate each offer entry.
        let mut seen = BTreeSet::new();
        let checked: Vec<Result<OfferChange, ItemFailure>> = entry
            .offers
            .iter()
            .map(|o| self.check_bulk_offer(&sku, o, &mut seen))
            .collect();

        let mut touched: BTreeSet<String> = checked
            .iter()
            .filter_map(|c| c.as_ref().ok().map(|c| c.listing_id.clone()))
            .collect();
        if new_quantity.is_some() {
            touched.extend(self.published_listings(&sku));
        }
        let touched: Vec<String> = touched.into_iter().collect();
        if let Some(error) = self.revision_cap_error(ctx, &touched) {
            return fail_all(400, error);
        }

        // Apply.
        if let Some(q) = new_quantity
            && let Some(item) = self.items.get_mut(&sku)
        {
            item.quantity = Some(q);
        }
        for (o, c) in entry.offers.iter().zip(&checked) {
            if let (Ok(change), Some(id)) = (c, &o.offer_id)
                && let Some(offer) = self.offers.get_mut(id)
            {
                if change.quantity.is_some() {
                    offer.available_quantity = change.quantity;
                }
                if change.price.is_some() {
                    offer.price = change.price.clone();
                }
            }
        }
        self.count_revisions(ctx, &touched);

        // Respond and log.
        if entry.offers.is_empty() || checked.iter().all(Result::is_err) {
            if new_quantity.is_some() {
                ctx.log(NewWrite {
                    operation: "bulkUpdatePriceQuantity",
                    sku: sku.clone(),
                    quantity: new_quantity,
                    visible_quantity: self.visible_quantity(&sku),
                    ..NewWrite::default()
                });
            }
            if entry.offers.is_empty() {
                return vec![PriceQuantityResponse::ok(&sku, None)];
            }
        }
        entry
            .offers
            .iter()
            .zip(checked)
            .map(|(o, c)| match c {
                Ok(change) => {
                    let id = o.offer_id.clone().unwrap_or_default();
                    let visible = self.offers.get(&id).map(|offer| self.offer_visible(offer));
                    ctx.log(NewWrite {
                        operation: "bulkUpdatePriceQuantity",
                        sku: sku.clone(),
                        listing_ref: Some(id.clone()),
                        quantity: new_quantity,
                        offer_quantity: change.quantity,
                        price: change.price,
                        visible_quantity: visible,
                        batch_ref: None,
                    });
                    PriceQuantityResponse::ok(&sku, Some(id))
                }
                Err(failure) => PriceQuantityResponse::failed(
                    &sku,
                    o.offer_id.clone(),
                    failure.status,
                    *failure.error,
                ),
            })
            .collect()
    }

    /// Validates one `offers[]` entry of a bulkUpdatePriceQuantity request for `sku`.
    fn check_bulk_offer(
        &self,
        sku: &str,
        o: &OfferPriceQuantity,
        seen: &mut BTreeSet<String>,
    ) -> Result<OfferChange, ItemFailure> {
        let id = o
            .offer_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ItemFailure::new(400, ERR_INVALID_VALUE, "Invalid value for offerId.")
            })?;
        if !seen.insert(id.clone()) {
            return Err(ItemFailure::new(
                400,
                ERR_INVALID_VALUE,
                format!("Invalid value for offerId. Duplicate offerId {id}."),
            ));
        }
        let offer = self.offers.get(&id).ok_or_else(|| {
            ItemFailure::new(
                404,
                ERR_OFFER_NOT_AVAILABLE,
                format!("This Offer is not available : {id}."),
            )
        })?;
        if offer.sku != sku {
            return Err(ItemFailure::new(
                400,
                ERR_INVALID_VALUE,
                format!("Invalid value for offerId. Offer {id} does not belong to SKU {sku}."),
            ));
        }
        let Some(listing_id) = offer.listing_id.clone() else {
            return Err(ItemFailure::new(
                400,
                ERR_OFFER_NOT_AVAILABLE,
                format!(
                    "This Offer is not available : {id} is not published; use updateOffer for unpublished offers."
                ),
            ));
        };
        let quantity = match o.available_quantity {
            None => None,
            Some(q) => Some(u32::try_from(q).map_err(|_| {
                ItemFailure::new(
                    400,
                    ERR_INVALID_VALUE,
                    "Invalid value for availableQuantity.",
                )
            })?),
        };
        let price = match &o.price {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_amount(v).ok_or_else(|| {
                ItemFailure::new(
                    400,
                    ERR_INVALID_PRICE,
                    "The eBay listing associated with the inventory item, or the unpublished offer has an invalid price.",
                )
            })?),
        };
        Ok(OfferChange {
            quantity,
            price,
            listing_id,
        })
    }

    // ---- out of band (drift) --------------------------------------------------------------

    /// Sets the item quantity and the live listing's availableQuantity (if it has one) to `qty`,
    /// as a merchant editing the listing on eBay would. Not a write.
    pub(crate) fn set_quantity_out_of_band(
        &mut self,
        sku: &str,
        qty: u32,
    ) -> Result<(), ControlError> {
        let item = self
            .items
            .get_mut(sku)
            .ok_or_else(|| ControlError::UnknownSku(sku.to_owned()))?;
        item.quantity = Some(qty);
        for offer in self
            .offers
            .values_mut()
            .filter(|o| o.sku == sku && o.listing_id.is_some())
        {
            if offer.available_quantity.is_some() {
                offer.available_quantity = Some(qty);
            }
        }
        Ok(())
    }

    /// Sets the price of the SKU's offers. Not a write.
    pub(crate) fn set_price_out_of_band(
        &mut self,
        sku: &str,
        price: Money,
    ) -> Result<(), ControlError> {
        let mut found = false;
        for offer in self.offers.values_mut().filter(|o| o.sku == sku) {
            offer.price = Some(price.clone());
            found = true;
        }
        if found {
            Ok(())
        } else {
            Err(ControlError::NotListed(sku.to_owned()))
        }
    }

    // ---- orders -----------------------------------------------------------------------------

    /// A buyer checks out: every line must be a live listing with enough quantity; the sale lowers
    /// the item's quantity and the offer's availableQuantity, like eBay does.
    pub(crate) fn place_order(
        &mut self,
        now: DateTime<Utc>,
        buyer: &str,
        lines: &[OrderLine],
    ) -> Result<String, ControlError> {
        if lines.is_empty() {
            return Err(ControlError::Invalid(
                "an order needs at least one line".into(),
            ));
        }
        let mut wanted: BTreeMap<&str, u32> = BTreeMap::new();
        for line in lines {
            if line.quantity == 0 {
                return Err(ControlError::Invalid(format!(
                    "line for {} has quantity 0",
                    line.sku
                )));
            }
            *wanted.entry(line.sku.as_str()).or_default() += line.quantity;
        }
        let mut currency = None;
        for (sku, quantity) in &wanted {
            if !self.items.contains_key(*sku) {
                return Err(ControlError::UnknownSku((*sku).to_owned()));
            }
            let offer = self
                .published_offer(sku)
                .ok_or_else(|| ControlError::NotListed((*sku).to_owned()))?;
            let available = self.offer_visible(offer);
            if available < *quantity && !self.allow_oversell {
                return Err(ControlError::InsufficientQuantity {
                    sku: (*sku).to_owned(),
                    available,
                    requested: *quantity,
                });
            }
            let price = offer
                .price
                .as_ref()
                .ok_or_else(|| ControlError::NotListed((*sku).to_owned()))?;
            match &currency {
                None => currency = Some(price.currency.clone()),
                Some(c) if *c != price.currency => {
                    return Err(ControlError::Invalid(
                        "lines in different currencies".into(),
                    ));
                }
                Some(_) => {}
            }
        }
        let mut order_lines = Vec::new();
        let mut marketplace_id = String::from(super::DEFAULT_MARKETPLACE_ID);
        for line in lines {
            let offer = self
                .published_offer(&line.sku)
                .cloned()
                .expect("checked above");
            let item = self.items.get_mut(&line.sku).expect("checked above");
            item.quantity = Some(item.quantity.unwrap_or(0).saturating_sub(line.quantity));
            let title = non_empty_str(&item.body, &["product", "title"])
                .unwrap_or(&line.sku)
                .to_owned();
            if let Some(o) = self.offers.get_mut(&offer.offer_id) {
                o.available_quantity = o
                    .available_quantity
                    .map(|a| a.saturating_sub(line.quantity));
                o.sold_quantity += line.quantity;
            }
            marketplace_id = offer.marketplace_id.clone();
            order_lines.push(Line {
                line_item_id: self.new_line_item_id(),
                listing_id: offer.listing_id.clone().unwrap_or_default(),
                sku: line.sku.clone(),
                title,
                quantity: line.quantity,
                unit_minor: offer
                    .price
                    .as_ref()
                    .and_then(|p| parse_minor(&p.value))
                    .unwrap_or(0),
            });
        }
        let (id, sales_record) = self.new_order_id();
        self.orders.insert(
            id.clone(),
            Order {
                id: id.clone(),
                created: now,
                modified: now,
                buyer: buyer.to_owned(),
                currency: currency.unwrap_or_else(|| "USD".into()),
                marketplace_id,
                lines: order_lines,
                fulfillment: Fulfillment::NotStarted,
                cancelled: None,
                sales_record,
            },
        );
        Ok(id)
    }

    /// Cancels an order that has not shipped. The quantity is not put back on the listing: the
    /// daemon pushes absolute quantities, so it restores stock itself.
    pub(crate) fn cancel_order(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
    ) -> Result<(), ControlError> {
        let order = self
            .orders
            .get_mut(id)
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        if order.fulfillment == Fulfillment::Fulfilled {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: "FULFILLED".into(),
                action: "cancel",
            });
        }
        if order.cancelled.is_some() {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: "CANCELED".into(),
                action: "cancel",
            });
        }
        order.touch(now);
        order.cancelled = Some(order.modified);
        Ok(())
    }

    /// Marks an order shipped (all lines FULFILLED).
    pub(crate) fn ship_order(&mut self, now: DateTime<Utc>, id: &str) -> Result<(), ControlError> {
        let order = self
            .orders
            .get_mut(id)
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        if order.cancelled.is_some() {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: "CANCELED".into(),
                action: "ship",
            });
        }
        if order.fulfillment == Fulfillment::Fulfilled {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: "FULFILLED".into(),
                action: "ship",
            });
        }
        order.touch(now);
        order.fulfillment = Fulfillment::Fulfilled;
        Ok(())
    }
}

fn not_found(sku: &str) -> EbayError {
    EbayError::new(
        StatusCode::NOT_FOUND,
        ErrorData::inventory(
            ERR_NOT_FOUND,
            "We didn't find the resource/entity you are requesting. Please verify the request",
        )
        .param("sku", sku),
    )
}

fn sku_not_found(sku: &str) -> EbayError {
    EbayError::new(
        StatusCode::BAD_REQUEST,
        ErrorData::inventory(
            ERR_SKU_NOT_FOUND,
            format!("{sku} could not be found or is not available in the system."),
        )
        .param("sku", sku),
    )
}

pub(crate) fn offer_not_available(what: &str) -> EbayError {
    EbayError::inventory(
        ERR_OFFER_NOT_AVAILABLE,
        format!("This Offer is not available : {what}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parsing() {
        assert_eq!(parse_minor("19.99"), Some(1999));
        assert_eq!(parse_minor("19.9"), Some(1990));
        assert_eq!(parse_minor("19"), Some(1900));
        assert_eq!(parse_minor("19.999"), None);
        assert_eq!(parse_minor("-1"), None);
        assert_eq!(parse_minor(".5"), None);
        assert_eq!(format_minor(1905), "19.05");
        assert!(parse_amount(&json!({"value":"0.00","currency":"USD"})).is_none());
        assert!(parse_amount(&json!({"value":"1.00","currency":"usd"})).is_none());
        assert!(parse_amount(&json!({"value":1.0,"currency":"USD"})).is_none());
    }

    #[test]
    fn order_ids_look_like_ebay() {
        let mut st = EbayState::default();
        let (id, _) = st.new_order_id();
        assert_eq!(id.len(), "27-10000-00001".len());
        assert!(id.starts_with("27-"));
    }
}
