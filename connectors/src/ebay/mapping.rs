//! eBay's bodies as Rust types, and the pure mappings between them and the neutral model: no I/O
//! here, so every rule can be unit-tested on its own.
//!
//! Response types default every field eBay may omit (`#[serde(default)]`) and ignore fields they do
//! not name, so an additive eBay change cannot break parsing; a body of the wrong shape is
//! [`crate::ConnectorError::Malformed`] at the caller.
//!
//! ## Order status
//!
//! eBay reports an order in three independent fields; [`order_status`] folds them into one
//! [`OrderStatus`], first match wins:
//!
//! | `cancelStatus.cancelState` | payment (`orderPaymentStatus`, `paymentSummary.refunds`) | `orderFulfillmentStatus` | status |
//! |---|---|---|---|
//! | `CANCELED` | any | `NOT_STARTED`, `IN_PROGRESS` | `Cancelled` |
//! | any | `FULLY_REFUNDED`, or completed refunds ≥ the total | `NOT_STARTED`, `IN_PROGRESS` | `Cancelled` |
//! | any | any | `FULFILLED` | `Shipped` |
//! | any | `PAID`, `PARTIALLY_REFUNDED` | `NOT_STARTED`, `IN_PROGRESS` | `Paid` |
//! | any | `PENDING`, `FAILED`, unknown | `NOT_STARTED`, `IN_PROGRESS` | `Pending` |
//!
//! Why: a full refund before shipment is how eBay settles an order that will not ship, so its stock
//! is released like a cancellation's. After shipment a refund is money only — eBay's Fulfillment
//! API does not say whether goods came back (returns live in the Post-Order API), so it never
//! becomes `Returned`: restocking on a refund alone could invent stock (an oversell), which is
//! worse than asking the operator to restock a return by hand. `IN_PROGRESS` (partly shipped)
//! stays `Paid` so every line keeps its reservation until the whole order ships. A cancellation
//! still being requested (`cancelState` `IN_PROGRESS`) changes nothing until eBay decides it;
//! `FAILED` payments keep their reservation (`Pending`) because a held unit is cheaper than an
//! oversell, and eBay cancels such orders itself.
//!
//! ## Order lines
//!
//! A line is keyed by `lineItemId`; its unit price is `lineItemCost` ÷ `quantity`, rounded half
//! up to the minor unit. A line without a SKU (an item listed outside the Inventory API, e.g. in
//! Seller Hub) or with one omnistock could not have sent is **left out** of the order and counted
//! (`order_lines_without_sku`): omnistock does not manage that item, so there is no stock to move,
//! and inventing a SKU from the eBay item id would put phantom SKUs in the ledger. The order itself
//! is still recorded with its other lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::common::http::{MAX_MESSAGE_CHARS, truncate};
use crate::model::{
    ChannelOrder, Currency, ItemOutcome, ListingUpdate, Money, OrderLine, OrderStatus, Sku,
};

// ---- shared ---------------------------------------------------------------------------------

/// eBay's `Amount` (`{"value":"19.99","currency":"USD"}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Amount {
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub currency: String,
}

impl Amount {
    pub(crate) fn from_money(m: &Money) -> Self {
        Amount {
            value: m.amount_text(),
            currency: m.currency.as_str().to_owned(),
        }
    }

    /// The amount in minor units; `None` when eBay sent something unreadable.
    pub(crate) fn to_money(&self) -> Option<Money> {
        let currency = Currency::parse(&self.currency).ok()?;
        Money::parse(&self.value, currency).ok()
    }
}

/// One entry of eBay's `errors`/`warnings` (`ErrorDetailV3`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ErrorDetail {
    pub error_id: u64,
    pub message: String,
    pub long_message: Option<String>,
    pub parameters: Vec<ErrorParameter>,
}

/// `{name, value}` of an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorParameter {
    pub name: String,
    pub value: String,
}

/// An error body: `{"errors":[…]}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorBody {
    pub errors: Vec<ErrorDetail>,
}

impl ErrorBody {
    /// Reads an error body, leniently: an unreadable one has no errors.
    pub(crate) fn parse(body: &[u8]) -> ErrorBody {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The first errorId, as the `code` of a [`crate::ConnectorError`] or [`ItemOutcome`].
    pub(crate) fn code(&self) -> Option<String> {
        self.errors.first().map(|e| e.error_id.to_string())
    }

    /// Every message, `errorId: message` joined with `; `.
    pub(crate) fn message(&self) -> String {
        describe(&self.errors)
    }

    /// The value of a parameter of any error (`offerId` of "Offer entity already exists").
    pub(crate) fn parameter(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .flat_map(|e| &e.parameters)
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

/// `errorId: message; …` (long messages preferred: they say what to fix), at most
/// [`MAX_MESSAGE_CHARS`] characters: an item outcome ends up in the database and in logs.
pub(crate) fn describe(errors: &[ErrorDetail]) -> String {
    let joined = errors
        .iter()
        .take(20)
        .map(|e| {
            let text = e
                .long_message
                .as_deref()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or(&e.message);
            format!(
                "{}: {}",
                e.error_id,
                truncate(text.trim(), MAX_MESSAGE_CHARS)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    truncate(&joined, MAX_MESSAGE_CHARS)
}

// ---- error ids --------------------------------------------------------------------------------

/// Inventory: system error — retry (spec `x-response-codes`).
pub(crate) const ERR_SYSTEM: u64 = 25001;
/// Inventory: generic user error; also "Offer entity already exists" (with an `offerId`
/// parameter) and, in practice, the daily revision cap.
pub(crate) const ERR_USER: u64 = 25002;
/// Inventory: concurrent access of the same inventory object — retry.
pub(crate) const ERR_CONCURRENT: u64 = 25025;
/// Inventory: SKU not found.
pub(crate) const ERR_SKU_NOT_FOUND: u64 = 25702;
/// Inventory: entity not found.
pub(crate) const ERR_NOT_FOUND: u64 = 25710;
/// Inventory: offer not available (none for the SKU, or not published).
pub(crate) const ERR_OFFER_NOT_AVAILABLE: u64 = 25713;

/// What one failed item call or bulk entry means for the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemError {
    pub outcome: ItemOutcome,
    /// eBay refused because the listing reached its daily revision cap.
    pub revision_cap: bool,
}

/// Classifies eBay's per-item errors:
///
/// | errors | outcome |
/// |---|---|
/// | SKU or offer unknown (25702, 25710, 25713) | `NotListed` |
/// | system error or concurrent access (25001, 25025), or an item status ≥ 500 | `Retry` |
/// | the daily revision cap (a 25002 whose message speaks of the revision limit) | `Retry` |
/// | anything else | `Rejected` with the first errorId as code |
pub(crate) fn item_error(status: u16, errors: &[ErrorDetail]) -> ItemError {
    let message = if errors.is_empty() {
        format!("eBay answered HTTP {status} for this item without details")
    } else {
        describe(errors)
    };
    let ids: Vec<u64> = errors.iter().map(|e| e.error_id).collect();
    let revision_cap = errors.iter().any(is_revision_cap);
    let outcome = if revision_cap {
        ItemOutcome::Retry {
            error: format!("listing reached eBay's daily revision cap: {message}"),
        }
    } else if ids.iter().any(|id| {
        matches!(
            *id,
            ERR_SKU_NOT_FOUND | ERR_NOT_FOUND | ERR_OFFER_NOT_AVAILABLE
        )
    }) {
        ItemOutcome::NotListed { error: message }
    } else if status >= 500
        || ids
            .iter()
            .any(|id| matches!(*id, ERR_SYSTEM | ERR_CONCURRENT))
    {
        ItemOutcome::Retry { error: message }
    } else {
        ItemOutcome::Rejected {
            code: ids.first().map(u64::to_string),
            error: message,
        }
    };
    ItemError {
        outcome,
        revision_cap,
    }
}

/// eBay documents no dedicated errorId for the 250-revisions-a-day cap (the sandbox, like eBay,
/// answers a 25002 user error saying so), so the message is what tells it apart.
fn is_revision_cap(e: &ErrorDetail) -> bool {
    let text = format!(
        "{} {}",
        e.message,
        e.long_message.as_deref().unwrap_or_default()
    )
    .to_ascii_lowercase();
    text.contains("revision") && (text.contains("limit") || text.contains("reached"))
}

// ---- inventory items ------------------------------------------------------------------------

/// `InventoryItem` as we send it (createOrReplaceInventoryItem: a full replace).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InventoryItemBody {
    pub product: Product,
    pub condition: &'static str,
    pub availability: Availability,
}

/// `Product`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Product {
    pub title: String,
    pub description: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub aspects: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upc: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ean: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_urls: Vec<String>,
}

/// `Availability`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Availability {
    pub ship_to_location_availability: ShipTo,
}

/// `ShipToLocationAvailability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct ShipTo {
    pub quantity: u32,
}

/// The inventory item for a listing: title, description, option values as aspects (plus the
/// brand, which most categories require as an aspect too), the barcode as UPC (12 digits) or EAN
/// (8 or 13 digits; anything else goes as UPC and eBay judges it), images, condition NEW, and the
/// quantity. `group_id` is not sent: inventory item groups (multi-variation listings) are not
/// used, each SKU is its own listing.
pub(crate) fn inventory_item(item: &ListingUpdate) -> InventoryItemBody {
    let mut aspects: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &item.options {
        aspects.entry(name.clone()).or_default().push(value.clone());
    }
    if let Some(brand) = &item.brand
        && !aspects.keys().any(|k| k.eq_ignore_ascii_case("brand"))
    {
        aspects.insert("Brand".to_owned(), vec![brand.clone()]);
    }
    let (upc, ean) = match item.barcode.as_deref().map(str::trim) {
        Some(code) if !code.is_empty() => {
            let digits = code.len();
            if code.bytes().all(|b| b.is_ascii_digit()) && (digits == 8 || digits == 13) {
                (None, Some(vec![code.to_owned()]))
            } else {
                (Some(vec![code.to_owned()]), None)
            }
        }
        _ => (None, None),
    };
    InventoryItemBody {
        product: Product {
            title: item.title.clone(),
            description: item.description.clone(),
            aspects,
            brand: item.brand.clone(),
            upc,
            ean,
            image_urls: item.image_urls.clone(),
        },
        condition: "NEW",
        availability: Availability {
            ship_to_location_availability: ShipTo {
                quantity: item.quantity,
            },
        },
    }
}

/// One page of getInventoryItems.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct InventoryItemsPage {
    pub total: u64,
    pub next: Option<String>,
    pub inventory_items: Vec<InventoryItemView>,
}

/// The parts of an inventory item the snapshot reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct InventoryItemView {
    pub sku: String,
    pub availability: Option<AvailabilityView>,
}

/// `Availability` as eBay returns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AvailabilityView {
    pub ship_to_location_availability: Option<ShipToView>,
}

/// `ShipToLocationAvailability` as eBay returns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ShipToView {
    pub quantity: Option<i64>,
}

impl InventoryItemView {
    /// The ship-to-home quantity, when set and representable.
    pub(crate) fn quantity(&self) -> Option<u32> {
        self.availability
            .as_ref()?
            .ship_to_location_availability
            .as_ref()?
            .quantity
            .and_then(|q| u32::try_from(q).ok())
    }
}

/// The value of query parameter `name` in a `next`/`prev` link.
pub(crate) fn query_param(link: &str, name: &str) -> Option<String> {
    let (_, query) = link.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

// ---- offers ---------------------------------------------------------------------------------

/// Keys of `EbayOfferDetailsWithId`, the updateOffer body: an existing offer's other keys
/// (offerId, status, listing, sku …) are read-only and are not sent back.
const UPDATABLE_OFFER_KEYS: [&str; 18] = [
    "availableQuantity",
    "categoryId",
    "charity",
    "extendedProducerResponsibility",
    "hideBuyerDetails",
    "includeCatalogProductDetails",
    "listingDescription",
    "listingDuration",
    "listingPolicies",
    "listingStartDate",
    "lotSize",
    "merchantLocationKey",
    "pricingSummary",
    "quantityLimitPerBuyer",
    "regulatory",
    "secondaryCategoryId",
    "storeCategoryNames",
    "tax",
];

/// What an offer should say, whatever else it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfferTerms {
    pub available_quantity: u32,
    pub price: Option<Amount>,
    pub category_id: Option<String>,
    pub listing_description: Option<String>,
    pub fulfillment_policy_id: String,
    pub payment_policy_id: String,
    pub return_policy_id: String,
    pub merchant_location_key: String,
}

impl OfferTerms {
    /// Writes these terms into an offer body (`EbayOfferDetailsWithId` / `…WithKeys`), keeping
    /// every other field — the merchant's own settings (lot size, buyer limits, secondary
    /// category) survive a price change.
    pub(crate) fn apply(&self, body: &mut Map<String, Value>) {
        body.insert(
            "availableQuantity".into(),
            Value::from(self.available_quantity),
        );
        if let Some(price) = &self.price {
            edit_object(body, "pricingSummary", |pricing| {
                let mut amount = Map::new();
                amount.insert("value".into(), Value::from(price.value.clone()));
                amount.insert("currency".into(), Value::from(price.currency.clone()));
                pricing.insert("price".into(), Value::Object(amount));
            });
        }
        if let Some(category) = &self.category_id {
            body.insert("categoryId".into(), Value::from(category.clone()));
        }
        if let Some(description) = &self.listing_description {
            body.insert(
                "listingDescription".into(),
                Value::from(description.clone()),
            );
        }
        edit_object(body, "listingPolicies", |policies| {
            for (key, id) in [
                ("fulfillmentPolicyId", &self.fulfillment_policy_id),
                ("paymentPolicyId", &self.payment_policy_id),
                ("returnPolicyId", &self.return_policy_id),
            ] {
                policies.insert(key.into(), Value::from(id.clone()));
            }
        });
        body.insert(
            "merchantLocationKey".into(),
            Value::from(self.merchant_location_key.clone()),
        );
    }

    /// True when `offer` already says all of this (no updateOffer, no revision spent).
    pub(crate) fn satisfied_by(&self, offer: &OfferView) -> bool {
        let price_ok = match &self.price {
            None => true,
            Some(want) => offer
                .pricing_summary
                .as_ref()
                .and_then(|p| p.price.as_ref())
                .is_some_and(|have| {
                    have.currency == want.currency
                        && have.to_money().is_some()
                        && have.to_money() == want.to_money()
                }),
        };
        let policies = offer.listing_policies.clone().unwrap_or_default();
        price_ok
            && offer.available_quantity == Some(i64::from(self.available_quantity))
            && self
                .category_id
                .as_ref()
                .is_none_or(|c| offer.category_id.as_ref() == Some(c))
            && self
                .listing_description
                .as_ref()
                .is_none_or(|d| offer.listing_description.as_ref() == Some(d))
            && policies.fulfillment_policy_id.as_deref() == Some(&self.fulfillment_policy_id)
            && policies.payment_policy_id.as_deref() == Some(&self.payment_policy_id)
            && policies.return_policy_id.as_deref() == Some(&self.return_policy_id)
            && offer.merchant_location_key.as_deref() == Some(&self.merchant_location_key)
    }
}

/// Edits the object at `key` (made one if missing or not an object) in place.
fn edit_object(map: &mut Map<String, Value>, key: &str, f: impl FnOnce(&mut Map<String, Value>)) {
    let mut inner = match map.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    f(&mut inner);
    map.insert(key.to_owned(), Value::Object(inner));
}

/// The createOffer body (`EbayOfferDetailsWithKeys`).
pub(crate) fn new_offer(sku: &Sku, marketplace_id: &str, terms: &OfferTerms) -> Value {
    let mut body = Map::new();
    body.insert("sku".into(), Value::from(sku.as_str()));
    body.insert("marketplaceId".into(), Value::from(marketplace_id));
    body.insert("format".into(), Value::from("FIXED_PRICE"));
    terms.apply(&mut body);
    Value::Object(body)
}

/// The updatable fields of an existing offer (read-only ones dropped).
fn updatable(existing: &Value) -> Map<String, Value> {
    existing
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| UPDATABLE_OFFER_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The updateOffer body: the existing offer's updatable fields with `terms` written over them.
pub(crate) fn updated_offer(existing: &Value, terms: &OfferTerms) -> Value {
    let mut body = updatable(existing);
    terms.apply(&mut body);
    Value::Object(body)
}

/// The updateOffer body that changes only quantity and, when given, price (bringing back an
/// offer withdrawn at zero; its other terms are as the listing push left them).
pub(crate) fn requantified_offer(existing: &Value, quantity: u32, price: Option<Amount>) -> Value {
    let mut body = updatable(existing);
    body.insert("availableQuantity".into(), Value::from(quantity));
    if let Some(price) = price {
        edit_object(&mut body, "pricingSummary", |pricing| {
            let mut amount = Map::new();
            amount.insert("value".into(), Value::from(price.value));
            amount.insert("currency".into(), Value::from(price.currency));
            pricing.insert("price".into(), Value::Object(amount));
        });
    }
    Value::Object(body)
}

/// An offer as getOffers/getOffer return it (`EbayOfferDetailsWithAll`), the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OfferView {
    pub offer_id: String,
    pub sku: String,
    pub marketplace_id: String,
    pub format: String,
    pub status: String,
    pub available_quantity: Option<i64>,
    pub category_id: Option<String>,
    pub listing_description: Option<String>,
    pub listing_policies: Option<ListingPoliciesView>,
    pub merchant_location_key: Option<String>,
    pub pricing_summary: Option<PricingSummaryView>,
}

impl OfferView {
    /// Live on eBay (`status` `PUBLISHED`).
    pub(crate) fn is_published(&self) -> bool {
        self.status.eq_ignore_ascii_case("PUBLISHED")
    }
}

/// `ListingPolicies`, the ids we set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ListingPoliciesView {
    pub fulfillment_policy_id: Option<String>,
    pub payment_policy_id: Option<String>,
    pub return_policy_id: Option<String>,
}

/// `PricingSummary`, the price.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct PricingSummaryView {
    pub price: Option<Amount>,
}

/// getOffers: a page of offers (kept raw too, for updateOffer's read-modify-write).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OffersPage {
    pub offers: Vec<Value>,
}

/// createOffer's answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OfferCreated {
    pub offer_id: String,
}

// ---- bulkUpdatePriceQuantity ----------------------------------------------------------------

/// The bulkUpdatePriceQuantity body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct BulkPriceQuantity {
    pub requests: Vec<PriceQuantity>,
}

/// One entry: the item-level quantity and, for a published offer, the offer's quantity and price.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PriceQuantity {
    pub sku: String,
    pub ship_to_location_availability: ShipTo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub offers: Vec<OfferPriceQuantity>,
}

/// `OfferPriceQuantity`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OfferPriceQuantity {
    pub offer_id: String,
    pub available_quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<Amount>,
}

/// bulkUpdatePriceQuantity's answer (HTTP 200 or 207).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct BulkResponse {
    pub responses: Vec<PriceQuantityResponse>,
}

/// One result; eBay sends one per offer of an entry, or one per SKU without offers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PriceQuantityResponse {
    pub status_code: u16,
    pub sku: String,
    pub offer_id: Option<String>,
    pub errors: Vec<ErrorDetail>,
}

/// The result for one SKU from all of its responses (matched by SKU, not position): applied when
/// every response is a 200 without errors; otherwise the first failure's classification; a SKU
/// with no response at all is retried (eBay did not say what happened).
pub(crate) fn bulk_result(sku: &str, responses: &[PriceQuantityResponse]) -> Result<(), ItemError> {
    let mine: Vec<&PriceQuantityResponse> = responses.iter().filter(|r| r.sku == sku).collect();
    if mine.is_empty() {
        return Err(ItemError {
            outcome: ItemOutcome::Retry {
                error: "eBay's bulk answer has no result for this SKU".into(),
            },
            revision_cap: false,
        });
    }
    match mine
        .iter()
        .find(|r| r.status_code != 200 || !r.errors.is_empty())
    {
        None => Ok(()),
        Some(failed) => Err(item_error(failed.status_code, &failed.errors)),
    }
}

// ---- orders ---------------------------------------------------------------------------------

/// One page of getOrders.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OrdersPage {
    pub offset: u64,
    pub limit: u64,
    pub total: u64,
    pub next: Option<String>,
    pub orders: Vec<OrderView>,
}

/// An order, the fields we read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OrderView {
    pub order_id: String,
    pub creation_date: String,
    pub last_modified_date: String,
    pub order_fulfillment_status: String,
    pub order_payment_status: String,
    pub cancel_status: Option<CancelStatusView>,
    pub buyer: Option<BuyerView>,
    pub pricing_summary: Option<OrderPricingView>,
    pub payment_summary: Option<PaymentSummaryView>,
    pub line_items: Vec<LineItemView>,
}

/// `CancelStatus`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct CancelStatusView {
    pub cancel_state: String,
}

/// `Buyer`: only the username, an opaque reference.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct BuyerView {
    pub username: Option<String>,
}

/// The order's `PricingSummary`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct OrderPricingView {
    pub total: Option<Amount>,
}

/// `PaymentSummary`, its refunds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PaymentSummaryView {
    pub refunds: Vec<RefundView>,
}

/// `OrderRefund`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RefundView {
    pub amount: Option<Amount>,
    pub refund_status: String,
}

/// `LineItem`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct LineItemView {
    pub line_item_id: String,
    pub sku: Option<String>,
    pub quantity: i64,
    pub line_item_cost: Option<Amount>,
}

/// Folds eBay's cancel, payment and fulfillment fields into one status (table in the module docs).
pub(crate) fn order_status(order: &OrderView) -> OrderStatus {
    let shipped = order
        .order_fulfillment_status
        .eq_ignore_ascii_case("FULFILLED");
    let cancelled = order
        .cancel_status
        .as_ref()
        .is_some_and(|c| c.cancel_state.eq_ignore_ascii_case("CANCELED"));
    let payment = order.order_payment_status.to_ascii_uppercase();
    let refunded = payment == "FULLY_REFUNDED" || refunds_cover_total(order);
    if !shipped && (cancelled || refunded) {
        OrderStatus::Cancelled
    } else if shipped {
        OrderStatus::Shipped
    } else if matches!(payment.as_str(), "PAID" | "PARTIALLY_REFUNDED") {
        OrderStatus::Paid
    } else {
        OrderStatus::Pending
    }
}

/// True when completed refunds (`refundStatus` `REFUNDED`) add up to at least the order total,
/// in its currency.
fn refunds_cover_total(order: &OrderView) -> bool {
    let Some(total) = order
        .pricing_summary
        .as_ref()
        .and_then(|p| p.total.as_ref())
        .and_then(Amount::to_money)
    else {
        return false;
    };
    let refunds = order
        .payment_summary
        .as_ref()
        .map(|p| p.refunds.as_slice())
        .unwrap_or_default();
    let refunded: i64 = refunds
        .iter()
        .filter(|r| r.refund_status.eq_ignore_ascii_case("REFUNDED"))
        .filter_map(|r| r.amount.as_ref().and_then(Amount::to_money))
        .filter(|m| m.currency == total.currency)
        .map(|m| m.minor)
        .fold(0i64, i64::saturating_add);
    total.minor > 0 && refunded >= total.minor
}

/// eBay timestamps (`2015-08-04T19:09:02.768Z`) as unix milliseconds.
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Unix milliseconds as eBay's filter wants them: ISO-8601 UTC with milliseconds
/// (`2026-05-15T08:25:43.511Z`). Out-of-range values clamp to the epoch.
pub(crate) fn format_timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms.max(0))
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A mapped order and how many of its lines were left out (no usable SKU).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MappedOrder {
    pub order: ChannelOrder,
    pub lines_without_sku: u64,
}

/// Maps one order; `Err` names what is missing when eBay sent an order we cannot record (no id,
/// unreadable dates: fields eBay always returns).
pub(crate) fn channel_order(o: &OrderView) -> Result<MappedOrder, String> {
    if o.order_id.trim().is_empty() {
        return Err("an order without orderId".into());
    }
    let placed_at_ms = parse_timestamp(&o.creation_date).ok_or_else(|| {
        format!(
            "order {} has an unreadable creationDate {:?}",
            o.order_id, o.creation_date
        )
    })?;
    let remote_updated_at_ms = parse_timestamp(&o.last_modified_date).ok_or_else(|| {
        format!(
            "order {} has an unreadable lastModifiedDate {:?}",
            o.order_id, o.last_modified_date
        )
    })?;
    let mut lines = Vec::with_capacity(o.line_items.len());
    let mut lines_without_sku = 0;
    for l in &o.line_items {
        let sku = l
            .sku
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| Sku::parse(s).ok());
        let quantity = u32::try_from(l.quantity).ok().filter(|q| *q > 0);
        let (Some(sku), Some(quantity), false) = (sku, quantity, l.line_item_id.is_empty()) else {
            lines_without_sku += 1;
            continue;
        };
        let unit_price = l
            .line_item_cost
            .as_ref()
            .and_then(Amount::to_money)
            .map(|cost| Money {
                minor: div_round_half_up(cost.minor, i64::from(quantity)),
                currency: cost.currency,
            });
        lines.push(OrderLine {
            line_id: l.line_item_id.clone(),
            sku,
            quantity,
            unit_price,
        });
    }
    Ok(MappedOrder {
        order: ChannelOrder {
            external_id: o.order_id.clone(),
            status: order_status(o),
            placed_at_ms,
            remote_updated_at_ms,
            total: o
                .pricing_summary
                .as_ref()
                .and_then(|p| p.total.as_ref())
                .and_then(Amount::to_money),
            buyer_ref: o
                .buyer
                .as_ref()
                .and_then(|b| b.username.clone())
                .filter(|u| !u.is_empty()),
            lines,
            fulfilled_by_channel: false,
        },
        lines_without_sku,
    })
}

/// `n / d` rounded half away from zero (d > 0).
fn div_round_half_up(n: i64, d: i64) -> i64 {
    let q = n / d;
    let r = n % d;
    if r.unsigned_abs() * 2 >= d.unsigned_abs() {
        q + n.signum()
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_descriptions_are_bounded() {
        let huge = "é".repeat(1 << 20);
        let body = serde_json::json!({"errors": [
            {"errorId": 25001, "message": huge, "longMessage": huge},
            {"errorId": 25002, "message": "short"},
        ]});
        let e = ErrorBody::parse(body.to_string().as_bytes());
        let text = e.message();
        assert!(
            text.chars().count() <= MAX_MESSAGE_CHARS + 1,
            "{}",
            text.len()
        );
        assert!(text.starts_with("25001: éé"), "{}", &text[..20]);
        assert_eq!(e.code().as_deref(), Some("25001"));
    }

    fn order(v: Value) -> OrderView {
        serde_json::from_value(v).expect("order view")
    }

    fn base_order() -> Value {
        json!({
            "orderId": "27-00001-00001",
            "creationDate": "2026-05-15T08:25:43.511Z",
            "lastModifiedDate": "2026-05-15T09:00:00.000Z",
            "orderFulfillmentStatus": "NOT_STARTED",
            "orderPaymentStatus": "PAID",
            "buyer": {"username": "buyer_1"},
            "pricingSummary": {"total": {"value": "39.98", "currency": "USD"}},
            "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
            "lineItems": [
                {"lineItemId": "100", "sku": "MUG-RED", "quantity": 2,
                 "lineItemCost": {"value": "39.98", "currency": "USD"}}
            ],
            "somethingNew": {"eBay": "added a field"}
        })
    }

    fn with(mut v: Value, patch: Value) -> Value {
        if let (Some(o), Some(p)) = (v.as_object_mut(), patch.as_object()) {
            for (k, val) in p {
                o.insert(k.clone(), val.clone());
            }
        }
        v
    }

    #[test]
    fn status_table() {
        let cases = [
            (json!({}), OrderStatus::Paid),
            (
                json!({"orderPaymentStatus": "PENDING"}),
                OrderStatus::Pending,
            ),
            (
                json!({"orderPaymentStatus": "FAILED"}),
                OrderStatus::Pending,
            ),
            (
                json!({"orderPaymentStatus": "PARTIALLY_REFUNDED"}),
                OrderStatus::Paid,
            ),
            (
                json!({"orderFulfillmentStatus": "IN_PROGRESS"}),
                OrderStatus::Paid,
            ),
            (
                json!({"orderFulfillmentStatus": "FULFILLED"}),
                OrderStatus::Shipped,
            ),
            (
                json!({"orderFulfillmentStatus": "FULFILLED", "orderPaymentStatus": "FULLY_REFUNDED"}),
                OrderStatus::Shipped,
            ),
            (
                json!({"cancelStatus": {"cancelState": "CANCELED"}, "orderPaymentStatus": "FULLY_REFUNDED"}),
                OrderStatus::Cancelled,
            ),
            (
                json!({"cancelStatus": {"cancelState": "IN_PROGRESS"}}),
                OrderStatus::Paid,
            ),
            (
                json!({"orderPaymentStatus": "FULLY_REFUNDED"}),
                OrderStatus::Cancelled,
            ),
            (
                json!({"paymentSummary": {"refunds": [
                    {"refundStatus": "REFUNDED", "amount": {"value": "20.00", "currency": "USD"}},
                    {"refundStatus": "REFUNDED", "amount": {"value": "19.98", "currency": "USD"}}]}}),
                OrderStatus::Cancelled,
            ),
            (
                json!({"paymentSummary": {"refunds": [
                    {"refundStatus": "PENDING", "amount": {"value": "39.98", "currency": "USD"}}]}}),
                OrderStatus::Paid,
            ),
        ];
        for (patch, want) in cases {
            let o = order(with(base_order(), patch.clone()));
            assert_eq!(order_status(&o), want, "{patch}");
        }
    }

    #[test]
    fn maps_an_order() {
        let m = channel_order(&order(base_order())).unwrap();
        let o = m.order;
        assert_eq!(o.external_id, "27-00001-00001");
        assert_eq!(o.status, OrderStatus::Paid);
        assert_eq!(o.placed_at_ms, 1_778_833_543_511);
        assert_eq!(o.remote_updated_at_ms, 1_778_835_600_000);
        assert_eq!(o.total.unwrap().minor, 3998);
        assert_eq!(o.buyer_ref.as_deref(), Some("buyer_1"));
        assert_eq!(o.lines.len(), 1);
        assert_eq!(o.lines[0].line_id, "100");
        assert_eq!(o.lines[0].quantity, 2);
        assert_eq!(o.lines[0].unit_price.unwrap().minor, 1999);
        assert_eq!(m.lines_without_sku, 0);
    }

    #[test]
    fn lines_without_a_usable_sku_are_left_out_and_counted() {
        let v = with(
            base_order(),
            json!({"lineItems": [
                {"lineItemId": "1", "quantity": 1},
                {"lineItemId": "2", "sku": "", "quantity": 1},
                {"lineItemId": "3", "sku": "BAD\nSKU", "quantity": 1},
                {"lineItemId": "4", "sku": "OK", "quantity": 0},
                {"lineItemId": "5", "sku": "OK", "quantity": -3},
                {"lineItemId": "6", "sku": "OK", "quantity": 3,
                 "lineItemCost": {"value": "10.00", "currency": "USD"}},
            ]}),
        );
        let m = channel_order(&order(v)).unwrap();
        assert_eq!(m.lines_without_sku, 5);
        assert_eq!(m.order.lines.len(), 1);
        assert_eq!(
            m.order.lines[0].unit_price.unwrap().minor,
            333,
            "10.00 / 3 rounds to 3.33"
        );
    }

    #[test]
    fn unreadable_orders_are_errors_not_panics() {
        assert!(channel_order(&order(with(base_order(), json!({"orderId": ""})))).is_err());
        assert!(
            channel_order(&order(with(
                base_order(),
                json!({"lastModifiedDate": "yesterday"})
            )))
            .is_err()
        );
        // Odd amounts lose the total, not the order.
        let m = channel_order(&order(with(
            base_order(),
            json!({"pricingSummary": {"total": {"value": "1e3", "currency": "US$"}}}),
        )))
        .unwrap();
        assert_eq!(m.order.total, None);
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(
            format_timestamp(1_778_833_543_511),
            "2026-05-15T08:25:43.511Z"
        );
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_timestamp(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_timestamp("2026-05-15T08:25:43.511Z"),
            Some(1_778_833_543_511)
        );
        assert_eq!(parse_timestamp("2026-05-15"), None);
    }

    #[test]
    fn item_errors_classify() {
        let e = |id: u64, msg: &str| ErrorDetail {
            error_id: id,
            message: msg.into(),
            ..ErrorDetail::default()
        };
        assert!(matches!(
            item_error(404, &[e(25702, "SKU not found")]).outcome,
            ItemOutcome::NotListed { .. }
        ));
        assert!(matches!(
            item_error(400, &[e(25713, "This Offer is not available")]).outcome,
            ItemOutcome::NotListed { .. }
        ));
        assert!(matches!(
            item_error(500, &[e(25001, "system error")]).outcome,
            ItemOutcome::Retry { .. }
        ));
        assert!(matches!(
            item_error(400, &[e(25025, "concurrent access")]).outcome,
            ItemOutcome::Retry { .. }
        ));
        let cap = item_error(
            400,
            &[e(
                25002,
                "Listing 1 has reached the limit of 250 revisions for this calendar day",
            )],
        );
        assert!(cap.revision_cap);
        assert!(matches!(cap.outcome, ItemOutcome::Retry { .. }));
        assert_eq!(
            item_error(400, &[e(25003, "invalid price")]).outcome,
            ItemOutcome::Rejected {
                code: Some("25003".into()),
                error: "25003: invalid price".into()
            }
        );
    }

    #[test]
    fn bulk_results_match_by_sku() {
        let body: BulkResponse = serde_json::from_value(json!({"responses": [
            {"statusCode": 200, "sku": "B", "offerId": "2", "errors": [], "warnings": []},
            {"statusCode": 400, "sku": "A", "errors": [{"errorId": 25003, "message": "bad price"}]},
        ]}))
        .unwrap();
        assert!(bulk_result("B", &body.responses).is_ok());
        assert!(matches!(
            bulk_result("A", &body.responses).unwrap_err().outcome,
            ItemOutcome::Rejected { .. }
        ));
        assert!(matches!(
            bulk_result("C", &body.responses).unwrap_err().outcome,
            ItemOutcome::Retry { .. }
        ));
    }

    fn listing() -> ListingUpdate {
        ListingUpdate {
            sku: Sku::parse("MUG-RED").unwrap(),
            external_id: None,
            title: "Red mug".into(),
            description: "A red mug".into(),
            brand: Some("Acme".into()),
            barcode: Some("4006381333931".into()),
            image_urls: vec!["https://img.example/mug.jpg".into()],
            options: vec![("Colour".into(), "Red".into())],
            group_id: Some("MUG".into()),
            quantity: 7,
            price: Money::parse("12.99", Currency::parse("USD").unwrap()).unwrap(),
            version: 1,
        }
    }

    #[test]
    fn inventory_item_body() {
        let body = serde_json::to_value(inventory_item(&listing())).unwrap();
        assert_eq!(
            body,
            json!({
                "product": {
                    "title": "Red mug", "description": "A red mug",
                    "aspects": {"Brand": ["Acme"], "Colour": ["Red"]},
                    "brand": "Acme", "ean": ["4006381333931"],
                    "imageUrls": ["https://img.example/mug.jpg"]
                },
                "condition": "NEW",
                "availability": {"shipToLocationAvailability": {"quantity": 7}}
            })
        );
        let mut l = listing();
        l.barcode = Some("012345678905".into());
        l.brand = None;
        let body = serde_json::to_value(inventory_item(&l)).unwrap();
        assert_eq!(body["product"]["upc"], json!(["012345678905"]));
        assert!(body["product"].get("brand").is_none());
    }

    fn terms() -> OfferTerms {
        OfferTerms {
            available_quantity: 7,
            price: Some(Amount {
                value: "12.99".into(),
                currency: "USD".into(),
            }),
            category_id: Some("30120".into()),
            listing_description: Some("A red mug".into()),
            fulfillment_policy_id: "f".into(),
            payment_policy_id: "p".into(),
            return_policy_id: "r".into(),
            merchant_location_key: "main".into(),
        }
    }

    #[test]
    fn offer_update_keeps_merchant_fields_and_drops_read_only_ones() {
        let existing = json!({
            "offerId": "5000000001", "sku": "MUG-RED", "marketplaceId": "EBAY_US",
            "format": "FIXED_PRICE", "status": "PUBLISHED", "listing": {"listingId": "1"},
            "availableQuantity": 3, "quantityLimitPerBuyer": 2, "categoryId": "30120",
            "pricingSummary": {"price": {"value": "10.00", "currency": "USD"}},
            "listingPolicies": {"fulfillmentPolicyId": "f", "paymentPolicyId": "p",
                                "returnPolicyId": "r", "eBayPlusIfEligible": true},
            "merchantLocationKey": "main", "listingDescription": "A red mug"
        });
        let view: OfferView = serde_json::from_value(existing.clone()).unwrap();
        assert!(!terms().satisfied_by(&view), "price and quantity differ");
        let body = updated_offer(&existing, &terms());
        for gone in [
            "offerId",
            "sku",
            "marketplaceId",
            "format",
            "status",
            "listing",
        ] {
            assert!(body.get(gone).is_none(), "{gone}");
        }
        assert_eq!(body["quantityLimitPerBuyer"], 2);
        assert_eq!(body["listingPolicies"]["eBayPlusIfEligible"], true);
        assert_eq!(body["availableQuantity"], 7);
        assert_eq!(body["pricingSummary"]["price"]["value"], "12.99");
        let after: OfferView = serde_json::from_value(body).unwrap();
        assert!(terms().satisfied_by(&after));
    }

    #[test]
    fn new_offer_body() {
        let body = new_offer(&Sku::parse("MUG-RED").unwrap(), "EBAY_US", &terms());
        assert_eq!(body["sku"], "MUG-RED");
        assert_eq!(body["marketplaceId"], "EBAY_US");
        assert_eq!(body["format"], "FIXED_PRICE");
        assert_eq!(body["categoryId"], "30120");
        assert_eq!(
            body["pricingSummary"]["price"],
            json!({"value": "12.99", "currency": "USD"})
        );
    }

    #[test]
    fn next_link_parameters() {
        assert_eq!(
            query_param(
                "http://h/ebay/sell/inventory/v1/inventory_item?limit=200&offset=3",
                "offset"
            )
            .as_deref(),
            Some("3")
        );
        assert_eq!(query_param("http://h/x", "offset"), None);
    }

    #[test]
    fn hostile_bodies_do_not_panic() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"{\"errors\":7}",
            b"{\"errors\":[{\"errorId\":\"x\"}]}",
        ] {
            let e = ErrorBody::parse(body);
            let _ = (e.code(), e.message());
        }
        let page: Result<OrdersPage, _> =
            serde_json::from_str(r#"{"orders":[{"lineItems":[{"quantity":1e40}]}]}"#);
        assert!(page.is_err(), "wrong types are refused, not truncated");
    }
}
