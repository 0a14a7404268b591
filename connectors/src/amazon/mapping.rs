//! Amazon's bodies as Rust types, and the pure mappings between them and the neutral model: no
//! I/O here, so every rule can be unit-tested on its own.
//!
//! Response types default every field Amazon may omit (`#[serde(default)]`) and ignore fields they
//! do not name, so an additive change cannot break parsing; a body of the wrong shape (a string
//! where a number belongs, a number out of range) is [`crate::ConnectorError::Malformed`] at the
//! caller, never a panic. Feed processing reports are read field by field from a
//! [`serde_json::Value`], so one odd issue costs that issue, not the report.
//!
//! ## Listing attributes (putListingsItem, feed `UPDATE`)
//!
//! | neutral | attribute | notes |
//! |---|---|---|
//! | title | `item_name` | `language_tag`, `marketplace_id` |
//! | brand | `brand` | left out when empty |
//! | description | `product_description` | left out when empty |
//! | (config) | `condition_type` | `new_new` by default |
//! | barcode | `externally_assigned_product_identifier` | EAN-13 → `ean`, UPC-A (12) → `upc`, GTIN-14 → `gtin`, check digit verified; anything else is left out |
//! | image_urls | `main_product_image_locator`, `other_product_image_locator_1..8` | http(s) URLs only |
//! | price | `purchasable_offer` | first marketplace, currency, audience `ALL`, `our_price[0].schedule[0].value_with_tax` |
//! | quantity | `fulfillment_availability` | `DEFAULT` (merchant-fulfilled) channel |
//! | options `Color`/`Colour`, `Size` | `color`, `size` | the generic attributes most product types have; other option names are not sent (their attribute names depend on the product type) |
//! | external_id (an ASIN) | `merchant_suggested_asin` | helps Amazon match the existing catalog item |
//!
//! `group_id` is not sent: variation families (`parentage_level`, `child_parent_sku_relationship`,
//! `variation_theme`) need product-type-specific themes; each SKU is its own listing.
//!
//! ## Prices
//!
//! `value_with_tax` is a JSON **number**. It is built from the decimal text of the minor units
//! (`1299` USD → `"12.99"` → `12.99`), never from float arithmetic, and checked to read back as the
//! same minor units; an amount a JSON number cannot carry exactly (more than 15 significant
//! digits) or a negative one is refused for that item.
//!
//! ## Order status
//!
//! Orders API 2026-01-01 reports one `fulfillment.fulfillmentStatus` ([`order_status`]):
//!
//! | `fulfillmentStatus` | status | why |
//! |---|---|---|
//! | `PENDING_AVAILABILITY`, `PENDING` | `Pending` | placed, payment not yet authorized: reserves stock |
//! | `UNSHIPPED` | `Paid` | ready to ship |
//! | `PARTIALLY_SHIPPED` | `Paid` | every line keeps its reservation until the whole order ships (as eBay's `IN_PROGRESS`) |
//! | `SHIPPED` | `Shipped` | |
//! | `CANCELLED` | `Cancelled` | |
//! | `UNFULFILLABLE` | `Cancelled` | Amazon will not fulfil it (Amazon-fulfilled non-retail orders only) |
//! | missing or unknown | `Pending` | a held unit is cheaper than an oversell |
//!
//! `fulfillment.fulfilledBy = AMAZON` marks an FBA order (`fulfilled_by_channel`): recorded, never
//! reserved. A line without a usable `product.sellerSku`, `orderItemId` or a positive
//! `quantityOrdered` is left out and counted, like eBay's; the order keeps its other lines.

use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Map, Number, Value, json};

use crate::common::http::truncate;
use crate::connector::BulkItem;
use crate::model::{
    ChannelOrder, Currency, ItemOutcome, ListingUpdate, Money, OrderLine, OrderStatus, RemoteItem,
    Sku, StockUpdate, parse_minor,
};

/// The merchant-fulfilled channel of `fulfillment_availability`.
pub(crate) const CHANNEL_DEFAULT: &str = "DEFAULT";
/// JSON Patch op of the quantity: `merge` keeps the merchant's handling time and restock date
/// (a `replace` would drop them).
pub(crate) const QUANTITY_PATCH_OP: &str = "merge";
/// JSON Patch op of the price: the offer of the (marketplace, currency, audience) is replaced.
pub(crate) const PRICE_PATCH_OP: &str = "replace";
/// Most characters of one item's joined issue text.
pub(crate) const MAX_ISSUE_TEXT: usize = 2_000;
/// Most issues of one message described in its outcome.
const MAX_ISSUES_PER_ITEM: usize = 20;
/// Extra images Amazon takes (`other_product_image_locator_1` … `_8`).
pub(crate) const MAX_OTHER_IMAGES: usize = 8;

// ---- errors ---------------------------------------------------------------------------------

/// One entry of SP-API's `ErrorList`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub(crate) struct ApiError {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
}

/// `{"errors":[…]}`, the error body of every SP-API operation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorList {
    pub errors: Vec<ApiError>,
}

impl ErrorList {
    /// Reads an error body, leniently: an unreadable one has no errors.
    pub(crate) fn parse(body: &[u8]) -> ErrorList {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The first error code, as the `code` of an error or outcome.
    pub(crate) fn code(&self) -> Option<String> {
        self.errors
            .iter()
            .map(|e| e.code.trim())
            .find(|c| !c.is_empty())
            .map(str::to_owned)
    }

    /// `code: message (details)` joined with `; `.
    pub(crate) fn message(&self) -> String {
        let text = self
            .errors
            .iter()
            .map(|e| {
                let details = e
                    .details
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                format!("{}: {}{details}", e.code.trim(), e.message.trim())
            })
            .collect::<Vec<_>>()
            .join("; ");
        truncate(&text, MAX_ISSUE_TEXT)
    }
}

// ---- submissions (put / patch / delete) ---------------------------------------------------------

/// An `Issue` of a listings submission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Issue {
    pub code: String,
    pub message: String,
    pub severity: String,
    pub attribute_names: Vec<String>,
}

impl Issue {
    fn is_error(&self) -> bool {
        self.severity.eq_ignore_ascii_case("ERROR")
    }

    /// `[code] message (attr, attr)`.
    fn describe(&self) -> String {
        describe_issue(&self.code, &self.message, &self.attribute_names)
    }
}

/// `[code] message (attr, attr)`, without the parts Amazon left empty.
fn describe_issue(code: &str, message: &str, attributes: &[String]) -> String {
    let mut out = String::new();
    if !code.trim().is_empty() {
        out.push_str(&format!("[{}] ", code.trim()));
    }
    out.push_str(message.trim());
    let attributes: Vec<&str> = attributes
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
        .collect();
    if !attributes.is_empty() {
        out.push_str(&format!(" ({})", attributes.join(", ")));
    }
    out
}

/// `ItemIdentifiersByMarketplace`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct IdentifiersByMarketplace {
    pub marketplace_id: String,
    pub asin: Option<String>,
}

/// `ListingsItemSubmissionResponse`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SubmissionResponse {
    pub sku: String,
    pub status: String,
    pub submission_id: String,
    pub issues: Vec<Issue>,
    pub identifiers: Vec<IdentifiersByMarketplace>,
}

/// What a submission answer means for its item:
///
/// | answer | outcome |
/// |---|---|
/// | `INVALID`, or any `ERROR` issue | `Rejected` (first ERROR code; every ERROR issue as `[code] message (attributes)`, `; `-joined) |
/// | `ACCEPTED` (or `VALID`) with warnings or nothing | `Applied`, with the ASIN when Amazon names one |
/// | any other status | `Retry` |
pub(crate) fn submission_outcome(resp: &SubmissionResponse, marketplace_id: &str) -> ItemOutcome {
    let errors: Vec<&Issue> = resp.issues.iter().filter(|i| i.is_error()).collect();
    let status = resp.status.trim().to_ascii_uppercase();
    if status == "INVALID" || !errors.is_empty() {
        if errors.is_empty() {
            return ItemOutcome::Rejected {
                code: None,
                error: "Amazon answered INVALID without naming an issue".into(),
            };
        }
        return rejected(errors.iter().map(|i| (i.code.as_str(), i.describe())));
    }
    match status.as_str() {
        "ACCEPTED" | "VALID" => {
            let asin = resp
                .identifiers
                .iter()
                .filter(|i| i.marketplace_id.is_empty() || i.marketplace_id == marketplace_id)
                .find_map(|i| i.asin.clone())
                .filter(|a| is_asin(a));
            ItemOutcome::Applied { external_id: asin }
        }
        other => ItemOutcome::Retry {
            error: format!(
                "Amazon answered the submission with status {:?}",
                truncate(other, 40)
            ),
        },
    }
}

/// `Rejected` from `(code, description)` pairs of ERROR issues.
fn rejected<'a>(errors: impl Iterator<Item = (&'a str, String)>) -> ItemOutcome {
    let mut code = None;
    let mut texts = Vec::new();
    for (c, text) in errors.take(MAX_ISSUES_PER_ITEM) {
        if code.is_none() && !c.trim().is_empty() {
            code = Some(c.trim().to_owned());
        }
        texts.push(text);
    }
    ItemOutcome::Rejected {
        code,
        error: truncate(&texts.join("; "), MAX_ISSUE_TEXT),
    }
}

/// True for a 10-character ASIN (upper-case letters and digits).
pub(crate) fn is_asin(s: &str) -> bool {
    s.len() == 10
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

// ---- attributes ---------------------------------------------------------------------------------

/// What every attribute needs besides the item.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub marketplace_id: &'a str,
    pub language_tag: &'a str,
    pub condition_type: &'a str,
}

impl Context<'_> {
    /// `[{"value": v, "language_tag": …, "marketplace_id": …}]`.
    fn text(&self, value: &str) -> Value {
        json!([{
            "value": value,
            "language_tag": self.language_tag,
            "marketplace_id": self.marketplace_id,
        }])
    }

    fn image(&self, url: &str) -> Value {
        json!([{"media_location": url, "marketplace_id": self.marketplace_id}])
    }
}

/// `value_with_tax` for `price`: a JSON number written from the decimal text, checked to read
/// back as the same minor units.
pub(crate) fn price_number(price: &Money) -> Result<Number, String> {
    if price.minor < 0 {
        return Err(format!("price {price} is negative"));
    }
    let text = price.amount_text();
    // "13.00" → "13", "12.90" → "12.9": the shortest text, as a JSON number reads.
    let short = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text.as_str()
    };
    let exponent = price.currency.exponent();
    let number = Number::from_str(short)
        .ok()
        .filter(|n| parse_minor(&n.to_string(), exponent).ok() == Some(price.minor))
        .ok_or_else(|| format!("price {price} cannot be sent exactly as a JSON number"))?;
    Ok(number)
}

/// `purchasable_offer` for the first marketplace.
pub(crate) fn purchasable_offer(price: &Money, ctx: &Context<'_>) -> Result<Value, String> {
    Ok(json!([{
        "marketplace_id": ctx.marketplace_id,
        "currency": price.currency.as_str(),
        "audience": "ALL",
        "our_price": [{"schedule": [{"value_with_tax": price_number(price)?}]}],
    }]))
}

/// `fulfillment_availability` of the merchant-fulfilled channel.
pub(crate) fn fulfillment_availability(quantity: u32) -> Value {
    json!([{"fulfillment_channel_code": CHANNEL_DEFAULT, "quantity": quantity}])
}

/// GS1 check digit over every digit but the last.
fn gs1_check_ok(code: &str) -> bool {
    let digits: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != code.len() || digits.len() < 2 {
        return false;
    }
    let (body, check) = digits.split_at(digits.len() - 1);
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    (10 - sum % 10) % 10 == check[0]
}

/// The `externally_assigned_product_identifier` type of a barcode: EAN-13 → `ean`, UPC-A → `upc`,
/// GTIN-14 → `gtin`, each with a valid check digit; `None` for anything else.
pub(crate) fn barcode_type(code: &str) -> Option<&'static str> {
    if !gs1_check_ok(code) {
        return None;
    }
    match code.len() {
        13 => Some("ean"),
        12 => Some("upc"),
        14 => Some("gtin"),
        _ => None,
    }
}

/// The generic attribute a variant option maps to, when there is one every product type shares.
fn option_attribute(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "color" | "colour" => Some("color"),
        "size" => Some("size"),
        _ => None,
    }
}

fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url.trim())
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// The attributes of a whole listing (see the module docs). `Err` when the price cannot be sent.
pub(crate) fn listing_attributes(
    item: &ListingUpdate,
    ctx: &Context<'_>,
) -> Result<Map<String, Value>, String> {
    let mut a = Map::new();
    let title = item.title.trim();
    if !title.is_empty() {
        a.insert("item_name".into(), ctx.text(title));
    }
    if let Some(brand) = item
        .brand
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        a.insert("brand".into(), ctx.text(brand));
    }
    let description = item.description.trim();
    if !description.is_empty() {
        a.insert("product_description".into(), ctx.text(description));
    }
    a.insert(
        "condition_type".into(),
        json!([{"value": ctx.condition_type, "marketplace_id": ctx.marketplace_id}]),
    );
    if let Some(code) = item
        .barcode
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        match barcode_type(code) {
            Some(kind) => {
                a.insert(
                    "externally_assigned_product_identifier".into(),
                    json!([{"type": kind, "value": code, "marketplace_id": ctx.marketplace_id}]),
                );
            }
            None => {
                tracing::debug!(sku = %item.sku, "Barcode is not a valid EAN-13, UPC-A or GTIN-14; not sent to Amazon.")
            }
        }
    }
    if let Some(asin) = item.external_id.as_deref().filter(|id| is_asin(id)) {
        a.insert(
            "merchant_suggested_asin".into(),
            json!([{"value": asin, "marketplace_id": ctx.marketplace_id}]),
        );
    }
    let mut images = item
        .image_urls
        .iter()
        .map(|u| u.trim())
        .filter(|u| is_http_url(u));
    if let Some(main) = images.next() {
        a.insert("main_product_image_locator".into(), ctx.image(main));
    }
    for (n, url) in images.take(MAX_OTHER_IMAGES).enumerate() {
        a.insert(
            format!("other_product_image_locator_{}", n + 1),
            ctx.image(url),
        );
    }
    for (name, value) in &item.options {
        let value = value.trim();
        if let Some(attribute) = option_attribute(name)
            && !value.is_empty()
            && !a.contains_key(attribute)
        {
            a.insert(attribute.into(), ctx.text(value));
        }
    }
    a.insert(
        "purchasable_offer".into(),
        purchasable_offer(&item.price, ctx)?,
    );
    a.insert(
        "fulfillment_availability".into(),
        fulfillment_availability(item.quantity),
    );
    Ok(a)
}

/// The JSON Patch operations of a stock update: quantity, and the price when it has one.
pub(crate) fn stock_patches(item: &StockUpdate, ctx: &Context<'_>) -> Result<Vec<Value>, String> {
    let mut patches = vec![json!({
        "op": QUANTITY_PATCH_OP,
        "path": "/attributes/fulfillment_availability",
        "value": fulfillment_availability(item.quantity),
    })];
    if let Some(price) = &item.price {
        patches.push(json!({
            "op": PRICE_PATCH_OP,
            "path": "/attributes/purchasable_offer",
            "value": purchasable_offer(price, ctx)?,
        }));
    }
    Ok(patches)
}

/// `ListingsItemPutRequest`.
pub(crate) fn put_body(product_type: &str, attributes: Map<String, Value>) -> Value {
    json!({"productType": product_type, "requirements": "LISTING", "attributes": attributes})
}

/// `ListingsItemPatchRequest`.
pub(crate) fn patch_body(product_type: &str, patches: Vec<Value>) -> Value {
    json!({"productType": product_type, "patches": patches})
}

// ---- feeds --------------------------------------------------------------------------------------

/// One message of a `JSON_LISTINGS_FEED` document (listings-feed-message-schema-v2): a stock
/// update is a `PATCH` with the same patches as push_stock, a listing an `UPDATE` with the same
/// attributes as push_listings, a delist a `DELETE`.
pub(crate) fn feed_message(
    message_id: u32,
    item: &BulkItem,
    product_type: &str,
    ctx: &Context<'_>,
) -> Result<Value, String> {
    let sku = item.sku().as_str();
    Ok(match item {
        BulkItem::Stock(u) => json!({
            "messageId": message_id,
            "sku": sku,
            "operationType": "PATCH",
            "productType": product_type,
            "patches": stock_patches(u, ctx)?,
        }),
        BulkItem::Listing(l) => json!({
            "messageId": message_id,
            "sku": sku,
            "operationType": "UPDATE",
            "productType": product_type,
            "requirements": "LISTING",
            "attributes": listing_attributes(l, ctx)?,
        }),
        BulkItem::Delist(_) => json!({
            "messageId": message_id,
            "sku": sku,
            "operationType": "DELETE",
        }),
    })
}

/// The whole feed document (listings-feed-schema-v2): header with the seller, version `2.0`, the
/// issue locale and a report asking for `issues`, then the messages. Compact JSON.
pub(crate) fn feed_document(seller_id: &str, issue_locale: &str, messages: Vec<Value>) -> Vec<u8> {
    let doc = json!({
        "header": {
            "sellerId": seller_id,
            "version": "2.0",
            "issueLocale": issue_locale,
            "report": {"includedData": ["issues"], "apiVersion": "2021-08-01"},
        },
        "messages": messages,
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// What a processing report says, aligned with the feed's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportOutcomes {
    /// One outcome per entry (message `i + 1`).
    pub outcomes: Vec<ItemOutcome>,
    /// Issues without a (valid) messageId: about the feed as a whole.
    pub feed_issues: Vec<String>,
    /// `summary.messagesProcessed`, when readable.
    pub processed: Option<u64>,
}

/// Reads a processing report (listings-feed-processing-report-schema-v2) into per-entry
/// outcomes for a feed of `items` messages:
///
/// - an `ERROR` issue naming message `n` → entry `n − 1` is `Rejected` (first ERROR code, every
///   ERROR issue as `[code] message (attributeName)`);
/// - a message with only warnings or no issue at all → `Applied` when `summary.messagesProcessed`
///   covers the whole feed, else `Retry` (the report does not say which messages were skipped, so
///   none of the silent ones is taken as applied);
/// - issues without a messageId (or naming a message the feed did not have) are feed-level.
///
/// `Err` when the document is not a JSON object.
pub(crate) fn report_outcomes(body: &[u8], items: usize) -> Result<ReportOutcomes, String> {
    let report: Value =
        serde_json::from_slice(body).map_err(|e| format!("unreadable processing report: {e}"))?;
    let Some(report) = report.as_object() else {
        return Err("the processing report is not a JSON object".into());
    };
    let processed = report
        .get("summary")
        .and_then(|s| s.get("messagesProcessed"))
        .and_then(Value::as_u64);
    let mut errors: Vec<Vec<(String, String)>> = vec![Vec::new(); items];
    let mut feed_issues = Vec::new();
    let issues = report
        .get("issues")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for issue in issues {
        let Some(issue) = issue.as_object() else {
            continue;
        };
        let text = |key: &str| issue.get(key).and_then(Value::as_str).unwrap_or_default();
        let attributes: Vec<String> = issue
            .get("attributeName")
            .and_then(Value::as_str)
            .map(|a| vec![a.to_owned()])
            .unwrap_or_default();
        let described = describe_issue(text("code"), text("message"), &attributes);
        let message = issue
            .get("messageId")
            .and_then(Value::as_u64)
            .and_then(|id| usize::try_from(id).ok())
            .filter(|id| (1..=items).contains(id));
        match message {
            Some(id) => {
                if text("severity").eq_ignore_ascii_case("ERROR") {
                    errors[id - 1].push((text("code").to_owned(), described));
                }
            }
            None => {
                if feed_issues.len() < MAX_ISSUES_PER_ITEM {
                    feed_issues.push(described);
                }
            }
        }
    }
    let covered = processed.is_some_and(|p| p >= items as u64);
    let outcomes = errors
        .into_iter()
        .enumerate()
        .map(|(i, errs)| {
            if !errs.is_empty() {
                rejected(errs.iter().map(|(c, t)| (c.as_str(), t.clone())))
            } else if covered {
                ItemOutcome::Applied { external_id: None }
            } else {
                ItemOutcome::Retry {
                    error: format!(
                        "Amazon's processing report does not cover message {} (messages processed: {})",
                        i + 1,
                        processed.map_or_else(|| "unknown".to_owned(), |p| p.to_string())
                    ),
                }
            }
        })
        .collect();
    Ok(ReportOutcomes {
        outcomes,
        feed_issues,
        processed,
    })
}

/// `createFeedDocument`'s answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct CreatedDocument {
    pub feed_document_id: String,
    pub url: String,
}

/// `createFeed`'s answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct CreatedFeed {
    pub feed_id: String,
}

/// `Feed`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct FeedView {
    pub feed_id: String,
    pub feed_type: String,
    pub processing_status: String,
    pub created_time: Option<String>,
    pub processing_end_time: Option<String>,
    pub result_feed_document_id: Option<String>,
}

/// `GetFeedsResponse`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct FeedsPage {
    pub feeds: Vec<FeedView>,
    pub next_token: Option<String>,
}

/// `FeedDocument`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct FeedDocumentView {
    pub feed_document_id: String,
    pub url: String,
    pub compression_algorithm: Option<String>,
}

// ---- snapshot -----------------------------------------------------------------------------------

/// `Pagination` (listings and orders share the shape).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Pagination {
    pub next_token: Option<String>,
}

/// `ItemSearchResults`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SearchResults {
    pub number_of_results: u64,
    pub pagination: Option<Pagination>,
    pub items: Vec<ItemView>,
}

/// The parts of a listings `Item` the snapshot reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ItemView {
    pub sku: String,
    pub summaries: Vec<SummaryView>,
    pub offers: Vec<OfferView>,
    pub fulfillment_availability: Vec<AvailabilityView>,
}

/// `ItemSummaryByMarketplace` (the ASIN).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SummaryView {
    pub marketplace_id: String,
    pub asin: Option<String>,
}

/// `ItemOfferByMarketplace`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OfferView {
    pub marketplace_id: String,
    pub offer_type: String,
    pub price: Option<MoneyView>,
    pub audience: Option<AudienceView>,
}

/// `Audience`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AudienceView {
    pub value: Option<String>,
}

/// `FulfillmentAvailability`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AvailabilityView {
    pub fulfillment_channel_code: String,
    pub quantity: Option<i64>,
}

/// SP-API `Money` (`{"currencyCode":"USD","amount":"12.99"}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct MoneyView {
    pub currency_code: String,
    pub amount: String,
}

impl MoneyView {
    /// The amount in minor units; `None` when unreadable (or more precise than the currency).
    pub(crate) fn to_money(&self) -> Option<Money> {
        let currency = Currency::parse(&self.currency_code).ok()?;
        Money::parse(&self.amount, currency).ok()
    }
}

impl ItemView {
    /// What this item shows on `marketplace_id`: the ASIN of its summary, the `DEFAULT`
    /// quantity, and the price of the B2C offer (audience `ALL` preferred). `None` for a SKU
    /// omnistock could not have written.
    pub(crate) fn remote_item(&self, marketplace_id: &str) -> Option<RemoteItem> {
        let sku = Sku::parse(self.sku.as_str()).ok()?;
        let asin = self
            .summaries
            .iter()
            .filter(|s| s.marketplace_id.is_empty() || s.marketplace_id == marketplace_id)
            .find_map(|s| s.asin.clone())
            .filter(|a| !a.is_empty());
        let quantity = self
            .fulfillment_availability
            .iter()
            .find(|f| f.fulfillment_channel_code == CHANNEL_DEFAULT)
            .and_then(|f| f.quantity)
            .and_then(|q| u32::try_from(q).ok());
        let b2c: Vec<&OfferView> = self
            .offers
            .iter()
            .filter(|o| o.marketplace_id == marketplace_id && o.offer_type == "B2C")
            .collect();
        let price = b2c
            .iter()
            .find(|o| {
                o.audience
                    .as_ref()
                    .and_then(|a| a.value.as_deref())
                    .is_none_or(|v| v == "ALL")
            })
            .or_else(|| b2c.first())
            .and_then(|o| o.price.as_ref())
            .and_then(MoneyView::to_money);
        Some(RemoteItem {
            sku,
            external_id: asin,
            quantity,
            price,
        })
    }
}

// ---- orders -------------------------------------------------------------------------------------

/// `SearchOrdersResponse`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OrdersPage {
    pub orders: Vec<OrderView>,
    pub pagination: Option<Pagination>,
}

/// The parts of an `Order` omnistock reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OrderView {
    pub order_id: String,
    pub created_time: String,
    pub last_updated_time: String,
    pub proceeds: Option<OrderProceedsView>,
    pub fulfillment: Option<OrderFulfillmentView>,
    pub order_items: Vec<OrderItemView>,
}

/// `OrderProceeds`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OrderProceedsView {
    pub grand_total: Option<MoneyView>,
}

/// `OrderFulfillment`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OrderFulfillmentView {
    pub fulfillment_status: String,
    pub fulfilled_by: Option<String>,
}

/// `OrderItem`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OrderItemView {
    pub order_item_id: String,
    pub quantity_ordered: i64,
    pub product: Option<ItemProductView>,
}

/// `ItemProduct`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ItemProductView {
    pub seller_sku: Option<String>,
    pub price: Option<ItemPriceView>,
}

/// `ItemPrice`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ItemPriceView {
    pub unit_price: Option<MoneyView>,
}

/// The status of an order (table in the module docs).
pub(crate) fn order_status(o: &OrderView) -> OrderStatus {
    let status = o
        .fulfillment
        .as_ref()
        .map(|f| f.fulfillment_status.as_str())
        .unwrap_or_default();
    match status {
        "UNSHIPPED" | "PARTIALLY_SHIPPED" => OrderStatus::Paid,
        "SHIPPED" => OrderStatus::Shipped,
        "CANCELLED" | "UNFULFILLABLE" => OrderStatus::Cancelled,
        _ => OrderStatus::Pending,
    }
}

/// An order and how many of its lines were left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappedOrder {
    pub order: ChannelOrder,
    pub lines_without_sku: u64,
}

/// Maps one order; `Err` names what is unreadable (no id, bad timestamps).
pub(crate) fn channel_order(o: &OrderView) -> Result<MappedOrder, String> {
    if o.order_id.trim().is_empty() {
        return Err("an Amazon order without an orderId".into());
    }
    let placed_at_ms = parse_timestamp(&o.created_time).ok_or_else(|| {
        format!(
            "order {}: unreadable createdTime {:?}",
            o.order_id,
            truncate(&o.created_time, 40)
        )
    })?;
    let remote_updated_at_ms = parse_timestamp(&o.last_updated_time).ok_or_else(|| {
        format!(
            "order {}: unreadable lastUpdatedTime {:?}",
            o.order_id,
            truncate(&o.last_updated_time, 40)
        )
    })?;
    let mut lines = Vec::with_capacity(o.order_items.len());
    let mut lines_without_sku = 0;
    for item in &o.order_items {
        let product = item.product.as_ref();
        let sku = product
            .and_then(|p| p.seller_sku.as_deref())
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| Sku::parse(s).ok());
        let quantity = u32::try_from(item.quantity_ordered).ok().filter(|q| *q > 0);
        let (Some(sku), Some(quantity), false) =
            (sku, quantity, item.order_item_id.trim().is_empty())
        else {
            lines_without_sku += 1;
            continue;
        };
        let unit_price = product
            .and_then(|p| p.price.as_ref())
            .and_then(|p| p.unit_price.as_ref())
            .and_then(MoneyView::to_money);
        lines.push(OrderLine {
            line_id: item.order_item_id.clone(),
            sku,
            quantity,
            unit_price,
        });
    }
    let fulfilled_by_amazon = o
        .fulfillment
        .as_ref()
        .and_then(|f| f.fulfilled_by.as_deref())
        .is_some_and(|by| by.eq_ignore_ascii_case("AMAZON"));
    Ok(MappedOrder {
        order: ChannelOrder {
            external_id: o.order_id.clone(),
            status: order_status(o),
            placed_at_ms,
            remote_updated_at_ms,
            total: o
                .proceeds
                .as_ref()
                .and_then(|p| p.grand_total.as_ref())
                .and_then(MoneyView::to_money),
            buyer_ref: None,
            lines,
            fulfilled_by_channel: fulfilled_by_amazon,
        },
        lines_without_sku,
    })
}

/// ISO 8601 UTC to the second, rounded down (`2026-05-15T08:25:43Z`): the filter form
/// searchOrders and getFeeds take. Rounding down widens a "since" filter, never narrows it.
pub(crate) fn format_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000).max(0);
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Parses an RFC 3339 timestamp into unix milliseconds.
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const M: &str = "ATVPDKIKX0DER";

    fn ctx() -> Context<'static> {
        Context {
            marketplace_id: M,
            language_tag: "en_US",
            condition_type: "new_new",
        }
    }

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::parse("USD").unwrap()).unwrap()
    }

    fn listing() -> ListingUpdate {
        ListingUpdate {
            sku: Sku::parse("MUG-RED").unwrap(),
            external_id: None,
            title: "Red mug".into(),
            description: "A red mug".into(),
            brand: Some("Acme".into()),
            barcode: Some("4006381333931".into()),
            image_urls: vec![
                "https://img.example/mug.jpg".into(),
                "not a url".into(),
                "https://img.example/mug-2.jpg".into(),
            ],
            options: vec![
                ("Colour".into(), "Red".into()),
                ("Material".into(), "Stoneware".into()),
            ],
            group_id: Some("MUG".into()),
            quantity: 7,
            price: usd("12.99"),
            version: 1,
        }
    }

    /// Reads a spec file from ../shared at test time; `None` (with a note) when it is absent.
    fn spec(name: &str) -> Option<Vec<u8>> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/contracts/specs/amazon")
            .join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                eprintln!("SKIPPED: {} not readable ({e})", path.display());
                None
            }
        }
    }

    #[test]
    fn prices_are_exact_json_numbers() {
        for (amount, currency, want) in [
            ("12.99", "USD", "12.99"),
            ("13.00", "USD", "13"),
            ("12.90", "USD", "12.9"),
            ("0.10", "USD", "0.1"),
            ("0.07", "USD", "0.07"),
            ("1500", "JPY", "1500"),
            ("1.234", "KWD", "1.234"),
            ("99999999999.99", "USD", "99999999999.99"),
            ("0.00", "USD", "0"),
        ] {
            let m = Money::parse(amount, Currency::parse(currency).unwrap()).unwrap();
            let n = price_number(&m).unwrap();
            assert_eq!(
                serde_json::to_string(&n).unwrap(),
                want,
                "{amount} {currency}"
            );
        }
        assert!(price_number(&usd("-1.00")).is_err());
        let huge = Money {
            minor: 1_234_567_890_123_456_789,
            currency: Currency::parse("USD").unwrap(),
        };
        assert!(
            price_number(&huge).is_err(),
            "19 digits do not fit a double"
        );
    }

    #[test]
    fn barcodes() {
        assert_eq!(barcode_type("4006381333931"), Some("ean"));
        assert_eq!(barcode_type("012345678905"), Some("upc"));
        assert_eq!(barcode_type("10012345678902"), Some("gtin"));
        assert_eq!(barcode_type("4006381333932"), None, "bad check digit");
        assert_eq!(barcode_type("96385074"), None, "EAN-8 is not sent");
        assert_eq!(barcode_type("40063813339x1"), None);
        assert_eq!(barcode_type(""), None);
        assert_eq!(barcode_type("٤٠٠٦٣٨١٣٣٣٩٣١"), None, "ASCII digits only");
    }

    #[test]
    fn listing_attributes_map_every_field() {
        let a = listing_attributes(&listing(), &ctx()).unwrap();
        assert_eq!(
            Value::Object(a),
            json!({
                "item_name": [{"value": "Red mug", "language_tag": "en_US", "marketplace_id": M}],
                "brand": [{"value": "Acme", "language_tag": "en_US", "marketplace_id": M}],
                "product_description": [{"value": "A red mug", "language_tag": "en_US", "marketplace_id": M}],
                "condition_type": [{"value": "new_new", "marketplace_id": M}],
                "externally_assigned_product_identifier": [{"type": "ean", "value": "4006381333931", "marketplace_id": M}],
                "main_product_image_locator": [{"media_location": "https://img.example/mug.jpg", "marketplace_id": M}],
                "other_product_image_locator_1": [{"media_location": "https://img.example/mug-2.jpg", "marketplace_id": M}],
                "color": [{"value": "Red", "language_tag": "en_US", "marketplace_id": M}],
                "purchasable_offer": [{"marketplace_id": M, "currency": "USD", "audience": "ALL",
                                       "our_price": [{"schedule": [{"value_with_tax": 12.99}]}]}],
                "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}]
            })
        );
        let mut l = listing();
        l.brand = Some("  ".into());
        l.barcode = Some("12345".into());
        l.external_id = Some("B07N4M94X4".into());
        l.image_urls = (0..12)
            .map(|i| format!("https://img.example/{i}.jpg"))
            .collect();
        let a = listing_attributes(&l, &ctx()).unwrap();
        assert!(!a.contains_key("brand"));
        assert!(!a.contains_key("externally_assigned_product_identifier"));
        assert_eq!(a["merchant_suggested_asin"][0]["value"], "B07N4M94X4");
        assert!(a.contains_key("other_product_image_locator_8"));
        assert!(!a.contains_key("other_product_image_locator_9"));
        l.price.minor = -5;
        assert!(listing_attributes(&l, &ctx()).is_err());
    }

    #[test]
    fn stock_patches_carry_quantity_and_price() {
        let mut u = StockUpdate {
            sku: Sku::parse("MUG-RED").unwrap(),
            external_id: None,
            quantity: 4,
            price: None,
            version: 3,
        };
        let body = patch_body("PRODUCT", stock_patches(&u, &ctx()).unwrap());
        assert_eq!(
            body,
            json!({"productType": "PRODUCT", "patches": [
                {"op": "merge", "path": "/attributes/fulfillment_availability",
                 "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 4}]}]})
        );
        u.price = Some(usd("21.50"));
        let patches = stock_patches(&u, &ctx()).unwrap();
        assert_eq!(
            patches[1],
            json!({"op": "replace", "path": "/attributes/purchasable_offer",
                   "value": [{"marketplace_id": M, "currency": "USD", "audience": "ALL",
                              "our_price": [{"schedule": [{"value_with_tax": 21.5}]}]}]})
        );
    }

    #[test]
    fn put_and_patch_bodies_follow_the_listings_model() {
        let Some(model) = spec("listingsItems_2021-08-01.json") else {
            return;
        };
        let model: Value = serde_json::from_slice(&model).unwrap();
        let defs = &model["definitions"];
        let put = put_body("PRODUCT", listing_attributes(&listing(), &ctx()).unwrap());
        let u = StockUpdate {
            sku: Sku::parse("MUG-RED").unwrap(),
            external_id: None,
            quantity: 4,
            price: Some(usd("9.99")),
            version: 1,
        };
        let patch = patch_body("PRODUCT", stock_patches(&u, &ctx()).unwrap());
        for (body, def) in [
            (&put, "ListingsItemPutRequest"),
            (&patch, "ListingsItemPatchRequest"),
        ] {
            let schema = &defs[def];
            for key in schema["required"].as_array().unwrap() {
                assert!(body.get(key.as_str().unwrap()).is_some(), "{def}.{key}");
            }
            for key in body.as_object().unwrap().keys() {
                assert!(
                    schema["properties"].get(key).is_some(),
                    "{def} has no {key}"
                );
            }
        }
        let requirements = defs["ListingsItemPutRequest"]["properties"]["requirements"]["enum"]
            .as_array()
            .unwrap();
        assert!(requirements.contains(&put["requirements"]));
        assert!(put["attributes"].is_object());
        let op = &defs["PatchOperation"];
        let patches = patch["patches"].as_array().unwrap();
        assert!(
            patches.len() as u64
                >= defs["ListingsItemPatchRequest"]["properties"]["patches"]["minItems"]
                    .as_u64()
                    .unwrap()
        );
        for p in patches {
            for key in op["required"].as_array().unwrap() {
                assert!(p.get(key.as_str().unwrap()).is_some(), "{key}");
            }
            assert!(
                op["properties"]["op"]["enum"]
                    .as_array()
                    .unwrap()
                    .contains(&p["op"])
            );
            assert!(p["value"].as_array().unwrap().iter().all(Value::is_object));
        }
    }

    fn submission(v: Value) -> SubmissionResponse {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn submission_answers_classify() {
        let ok = submission(
            json!({"sku": "A", "status": "ACCEPTED", "submissionId": "1",
            "issues": [{"code": "18448", "message": "incomplete", "severity": "WARNING", "categories": []}]}),
        );
        assert_eq!(
            submission_outcome(&ok, M),
            ItemOutcome::Applied { external_id: None }
        );
        let with_asin = submission(
            json!({"sku": "A", "status": "ACCEPTED", "submissionId": "1",
            "identifiers": [{"marketplaceId": "OTHER", "asin": "B000000000"},
                            {"marketplaceId": M, "asin": "B07N4M94X4"}]}),
        );
        assert_eq!(
            submission_outcome(&with_asin, M),
            ItemOutcome::Applied {
                external_id: Some("B07N4M94X4".into())
            }
        );
        let invalid = submission(json!({"sku": "A", "status": "INVALID", "submissionId": "1",
            "issues": [
              {"code": "90220", "message": "'condition_type' is required but not supplied.", "severity": "ERROR",
               "attributeNames": ["condition_type"], "categories": ["MISSING_ATTRIBUTE"]},
              {"code": "1", "message": "just a warning", "severity": "WARNING"},
              {"code": "99022", "message": "bad price", "severity": "ERROR"}]}));
        assert_eq!(
            submission_outcome(&invalid, M),
            ItemOutcome::Rejected {
                code: Some("90220".into()),
                error: "[90220] 'condition_type' is required but not supplied. (condition_type); \
                        [99022] bad price"
                    .into()
            }
        );
        let accepted_with_error = submission(
            json!({"sku": "A", "status": "ACCEPTED", "submissionId": "1",
            "issues": [{"code": "", "message": "no", "severity": "ERROR"}]}),
        );
        assert!(matches!(
            submission_outcome(&accepted_with_error, M),
            ItemOutcome::Rejected { code: None, .. }
        ));
        let bare_invalid = submission(json!({"status": "INVALID"}));
        assert!(matches!(
            submission_outcome(&bare_invalid, M),
            ItemOutcome::Rejected { code: None, .. }
        ));
        let odd = submission(json!({"status": "MAYBE"}));
        assert!(matches!(
            submission_outcome(&odd, M),
            ItemOutcome::Retry { .. }
        ));
    }

    #[test]
    fn error_lists_read_leniently() {
        let e = ErrorList::parse(
            br#"{"errors":[{"code":"QuotaExceeded","message":"You exceeded your quota for the requested resource.","details":""}]}"#,
        );
        assert_eq!(e.code().as_deref(), Some("QuotaExceeded"));
        assert_eq!(
            e.message(),
            "QuotaExceeded: You exceeded your quota for the requested resource."
        );
        for body in [&b""[..], b"null", b"[]", b"{\"errors\":7}", b"<html>"] {
            let e = ErrorList::parse(body);
            assert_eq!(e.code(), None);
        }
    }

    fn bulk_items() -> Vec<BulkItem> {
        vec![
            BulkItem::Delist(Sku::parse("OLD").unwrap()),
            BulkItem::Stock(StockUpdate {
                sku: Sku::parse("MUG-RED").unwrap(),
                external_id: None,
                quantity: 10,
                price: Some(usd("9.99")),
                version: 2,
            }),
            BulkItem::Listing(listing()),
        ]
    }

    #[test]
    fn feed_documents_follow_the_v2_schema() {
        let messages: Vec<Value> = bulk_items()
            .iter()
            .enumerate()
            .map(|(i, item)| feed_message(i as u32 + 1, item, "PRODUCT", &ctx()).unwrap())
            .collect();
        let doc: Value =
            serde_json::from_slice(&feed_document("A2SELLER", "en_US", messages)).unwrap();
        assert_eq!(
            doc["header"],
            json!({"sellerId": "A2SELLER", "version": "2.0", "issueLocale": "en_US",
                   "report": {"includedData": ["issues"], "apiVersion": "2021-08-01"}})
        );
        let messages = doc["messages"].as_array().unwrap();
        assert_eq!(
            messages[0],
            json!({"messageId": 1, "sku": "OLD", "operationType": "DELETE"})
        );
        assert_eq!(messages[1]["operationType"], "PATCH");
        assert_eq!(messages[1]["patches"].as_array().unwrap().len(), 2);
        assert_eq!(messages[2]["operationType"], "UPDATE");
        assert_eq!(messages[2]["requirements"], "LISTING");
        assert_eq!(
            messages[2]["attributes"]["item_name"][0]["value"],
            "Red mug"
        );
        check_against_schema(&doc);
    }

    /// The v2 feed schema's rules, checked by hand (no JSON Schema validator in the tree): the
    /// header's required keys and const version, message ids in range and unique, and each
    /// operation's oneOf branch (required and forbidden keys). Keys come from the schema file when
    /// it is readable.
    fn check_against_schema(doc: &Value) {
        let Some(schema) = spec("listings-feed-schema-v2.json") else {
            return;
        };
        let schema: Value = serde_json::from_slice(&schema).unwrap();
        let header_schema = &schema["properties"]["header"];
        for key in header_schema["required"].as_array().unwrap() {
            assert!(doc["header"].get(key.as_str().unwrap()).is_some(), "{key}");
        }
        assert_eq!(
            doc["header"]["version"],
            header_schema["properties"]["version"]["const"]
        );
        let allowed: Vec<&Value> =
            header_schema["properties"]["report"]["properties"]["includedData"]["items"]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .collect();
        for d in doc["header"]["report"]["includedData"].as_array().unwrap() {
            assert!(allowed.contains(&d), "{d}");
        }
        let message_schema = &schema["properties"]["messages"]["items"];
        let max = schema["properties"]["messages"]["maxItems"]
            .as_u64()
            .unwrap();
        let messages = doc["messages"].as_array().unwrap();
        assert!(!messages.is_empty() && messages.len() as u64 <= max);
        let mut ids = std::collections::BTreeSet::new();
        for m in messages {
            for key in message_schema["required"].as_array().unwrap() {
                assert!(m.get(key.as_str().unwrap()).is_some(), "{key} in {m}");
            }
            let id = m["messageId"].as_u64().unwrap();
            assert!(
                id >= message_schema["properties"]["messageId"]["minimum"]
                    .as_u64()
                    .unwrap()
            );
            assert!(
                id <= message_schema["properties"]["messageId"]["maximum"]
                    .as_u64()
                    .unwrap()
            );
            assert!(ids.insert(id), "unique messageId");
            let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
            for k in &keys {
                assert!(
                    message_schema["properties"].get(k.as_str()).is_some(),
                    "unknown key {k}"
                );
            }
            let branch = message_schema["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["properties"]["operationType"]["const"] == m["operationType"])
                .expect("a oneOf branch for the operation");
            for key in branch["required"].as_array().into_iter().flatten() {
                assert!(m.get(key.as_str().unwrap()).is_some(), "{key} in {m}");
            }
            for (key, rule) in branch["properties"].as_object().unwrap() {
                if rule == &Value::Bool(false) {
                    assert!(m.get(key).is_none(), "{key} forbidden in {m}");
                }
            }
            if let Some(patches) = m.get("patches") {
                let ops =
                    &message_schema["properties"]["patches"]["items"]["properties"]["op"]["enum"];
                for p in patches.as_array().unwrap() {
                    assert!(ops.as_array().unwrap().contains(&p["op"]), "{p}");
                    assert!(p["path"].is_string());
                    assert!(p["value"].as_array().unwrap().iter().all(Value::is_object));
                }
            }
            if let Some(attributes) = m.get("attributes") {
                assert!(!attributes.as_object().unwrap().is_empty());
            }
        }
    }

    #[test]
    fn the_official_report_example_maps_per_message() {
        let Some(body) = spec("listings-feed-processing-report-schema-v2.example.json") else {
            return;
        };
        // The example reports 4 processed messages, ERRORs on messages 4 and 5.
        let r = report_outcomes(&body, 5).unwrap();
        assert_eq!(r.processed, Some(4));
        assert_eq!(
            r.outcomes[3],
            ItemOutcome::Rejected {
                code: Some("90220".into()),
                error: "[90220] '[batteries_required]' is required but not supplied.; \
                        [90220] '[supplier_declared_dg_hz_regulation]' is required but not supplied."
                    .into()
            }
        );
        match &r.outcomes[4] {
            ItemOutcome::Rejected { code, error } => {
                assert_eq!(code.as_deref(), Some("99022"));
                assert!(error.ends_with("(purchasable_offer.our_price)"), "{error}");
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
        // 4 processed of 5: the silent ones are not taken as applied.
        assert!(matches!(r.outcomes[0], ItemOutcome::Retry { .. }));
        // Read as a 4-message feed, the silent ones are covered.
        let r = report_outcomes(&body, 4).unwrap();
        for o in &r.outcomes[..3] {
            assert_eq!(o, &ItemOutcome::Applied { external_id: None });
        }
        assert!(matches!(r.outcomes[3], ItemOutcome::Rejected { .. }));
        assert!(
            r.feed_issues.len() == 1,
            "message 5 is outside a 4-message feed"
        );
    }

    #[test]
    fn reports_with_feed_level_issues_and_hostile_shapes() {
        let body = br#"{"header":{"sellerId":"A","version":"2.0","feedId":"1"},
            "issues":[{"severity":"ERROR","message":"The feed header is invalid.","code":"4000004"},
                      {"messageId":1.5,"severity":"ERROR","message":"odd id"},
                      {"messageId":-1,"severity":"ERROR","message":"negative"},
                      "not an object",
                      {"messageId":2,"severity":"WARNING","message":"w"}],
            "summary":{"errors":1,"warnings":1,"messagesProcessed":2,"messagesAccepted":2,"messagesInvalid":0}}"#;
        let r = report_outcomes(body, 2).unwrap();
        assert_eq!(r.feed_issues[0], "[4000004] The feed header is invalid.");
        assert_eq!(r.feed_issues.len(), 3);
        assert!(
            r.outcomes
                .iter()
                .all(|o| *o == ItemOutcome::Applied { external_id: None })
        );
        for bad in [&b""[..], b"[]", b"null", b"{\"issues\":", b"\"x\""] {
            assert!(
                report_outcomes(bad, 3).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let r = report_outcomes(br#"{"issues":{"a":1},"summary":"x"}"#, 2).unwrap();
        assert!(
            r.outcomes
                .iter()
                .all(|o| matches!(o, ItemOutcome::Retry { .. }))
        );
        let r = report_outcomes(br#"{"summary":{"messagesProcessed":1e3}}"#, 1).unwrap();
        assert_eq!(r.processed, None, "not an integer");
        assert_eq!(report_outcomes(b"{}", 0).unwrap().outcomes, Vec::new());
        // Many errors on one message stay bounded.
        let many: Vec<Value> = (0..1000)
            .map(|i| json!({"messageId": 1, "severity": "ERROR", "code": "1", "message": format!("problem {i} ").repeat(20)}))
            .collect();
        let body =
            serde_json::to_vec(&json!({"issues": many, "summary": {"messagesProcessed": 1}}))
                .unwrap();
        let ItemOutcome::Rejected { error, .. } = &report_outcomes(&body, 1).unwrap().outcomes[0]
        else {
            panic!("rejected")
        };
        assert!(error.chars().count() <= MAX_ISSUE_TEXT + 1);
    }

    #[test]
    fn snapshot_items_read_the_marketplace_offer() {
        let page: SearchResults = serde_json::from_value(json!({
            "numberOfResults": 3,
            "pagination": {"nextToken": "t2"},
            "items": [
                {"sku": "MUG-RED",
                 "summaries": [{"marketplaceId": M, "asin": "B07N4M94X4", "productType": "PRODUCT"}],
                 "offers": [
                    {"marketplaceId": M, "offerType": "B2B", "price": {"currencyCode": "USD", "amount": "9.00"}},
                    {"marketplaceId": "A2EUQ1WTGCTBG2", "offerType": "B2C", "price": {"currencyCode": "CAD", "amount": "15.00"}},
                    {"marketplaceId": M, "offerType": "B2C", "price": {"currencyCode": "USD", "amount": "12.5"},
                     "audience": {"value": "ALL", "displayName": "Sell on Amazon"}}],
                 "fulfillmentAvailability": [{"fulfillmentChannelCode": "AMAZON_NA", "quantity": 99},
                                             {"fulfillmentChannelCode": "DEFAULT", "quantity": 4}]},
                {"sku": "NO-OFFER"},
                {"sku": "BAD\nSKU"}
            ]
        }))
        .unwrap();
        assert_eq!(page.pagination.unwrap().next_token.as_deref(), Some("t2"));
        let items: Vec<RemoteItem> = page.items.iter().filter_map(|i| i.remote_item(M)).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].external_id.as_deref(), Some("B07N4M94X4"));
        assert_eq!(items[0].quantity, Some(4));
        assert_eq!(items[0].price, Some(usd("12.50")));
        assert_eq!(
            items[1],
            RemoteItem {
                sku: Sku::parse("NO-OFFER").unwrap(),
                external_id: None,
                quantity: None,
                price: None
            }
        );
        let hostile: Result<SearchResults, _> = serde_json::from_value(json!({
            "items": [{"sku": "A", "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": 1e40}]}]
        }));
        assert!(hostile.is_err(), "wrong types are refused, not truncated");
        let negative: SearchResults = serde_json::from_value(json!({
            "items": [{"sku": "A", "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": -3}]}]
        }))
        .unwrap();
        assert_eq!(negative.items[0].remote_item(M).unwrap().quantity, None);
    }

    fn order(v: Value) -> OrderView {
        serde_json::from_value(v).unwrap()
    }

    fn base_order() -> Value {
        json!({
            "orderId": "123-4567890-1234567",
            "createdTime": "2026-05-15T08:25:43Z",
            "lastUpdatedTime": "2026-05-15T09:00:00.500Z",
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": M},
            "proceeds": {"grandTotal": {"amount": "154.99", "currencyCode": "USD"}},
            "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
            "orderItems": [
                {"orderItemId": "12345678901234", "quantityOrdered": 2,
                 "product": {"asin": "B08N5WRWNW", "sellerSku": "ECHO-DOT",
                             "price": {"unitPrice": {"amount": "49.99", "currencyCode": "USD"}}}}
            ],
            "buyer": {"buyerName": "never stored"}
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
    fn order_status_table() {
        for (status, want) in [
            ("PENDING_AVAILABILITY", OrderStatus::Pending),
            ("PENDING", OrderStatus::Pending),
            ("UNSHIPPED", OrderStatus::Paid),
            ("PARTIALLY_SHIPPED", OrderStatus::Paid),
            ("SHIPPED", OrderStatus::Shipped),
            ("CANCELLED", OrderStatus::Cancelled),
            ("UNFULFILLABLE", OrderStatus::Cancelled),
            ("SOMETHING_NEW", OrderStatus::Pending),
        ] {
            let o = order(with(
                base_order(),
                json!({"fulfillment": {"fulfillmentStatus": status}}),
            ));
            assert_eq!(order_status(&o), want, "{status}");
        }
        let mut v = base_order();
        v.as_object_mut().unwrap().remove("fulfillment");
        assert_eq!(order_status(&order(v)), OrderStatus::Pending);
    }

    #[test]
    fn maps_an_order() {
        let m = channel_order(&order(base_order())).unwrap();
        let o = m.order;
        assert_eq!(o.external_id, "123-4567890-1234567");
        assert_eq!(o.status, OrderStatus::Paid);
        assert_eq!(o.placed_at_ms, 1_778_833_543_000);
        assert_eq!(o.remote_updated_at_ms, 1_778_835_600_500);
        assert_eq!(o.total, Some(usd("154.99")));
        assert_eq!(o.buyer_ref, None, "no personal data");
        assert!(!o.fulfilled_by_channel);
        assert_eq!(
            o.lines,
            vec![OrderLine {
                line_id: "12345678901234".into(),
                sku: Sku::parse("ECHO-DOT").unwrap(),
                quantity: 2,
                unit_price: Some(usd("49.99")),
            }]
        );
        let fba = channel_order(&order(with(
            base_order(),
            json!({"fulfillment": {"fulfillmentStatus": "SHIPPED", "fulfilledBy": "AMAZON"}}),
        )))
        .unwrap();
        assert!(fba.order.fulfilled_by_channel);
        assert_eq!(fba.order.status, OrderStatus::Shipped);
    }

    #[test]
    fn lines_without_a_usable_sku_are_left_out_and_counted() {
        let v = with(
            base_order(),
            json!({"orderItems": [
                {"orderItemId": "1", "quantityOrdered": 1, "product": {}},
                {"orderItemId": "2", "quantityOrdered": 1},
                {"orderItemId": "3", "quantityOrdered": 1, "product": {"sellerSku": " "}},
                {"orderItemId": "4", "quantityOrdered": 1, "product": {"sellerSku": "BAD\tSKU"}},
                {"orderItemId": "5", "quantityOrdered": 0, "product": {"sellerSku": "OK"}},
                {"orderItemId": "", "quantityOrdered": 1, "product": {"sellerSku": "OK"}},
                {"orderItemId": "7", "quantityOrdered": 3,
                 "product": {"sellerSku": "OK", "price": {"unitPrice": {"amount": "1.999", "currencyCode": "USD"}}}},
            ]}),
        );
        let m = channel_order(&order(v)).unwrap();
        assert_eq!(m.lines_without_sku, 6);
        assert_eq!(m.order.lines.len(), 1);
        assert_eq!(m.order.lines[0].unit_price, None, "too precise for USD");
    }

    #[test]
    fn unreadable_orders_are_errors_not_panics() {
        assert!(channel_order(&order(with(base_order(), json!({"orderId": ""})))).is_err());
        assert!(
            channel_order(&order(with(
                base_order(),
                json!({"lastUpdatedTime": "yesterday"})
            )))
            .is_err()
        );
        let page: Result<OrdersPage, _> = serde_json::from_str(
            r#"{"orders":[{"orderId":"1","orderItems":[{"quantityOrdered":"2"}]}]}"#,
        );
        assert!(page.is_err());
        let page: Result<OrdersPage, _> = serde_json::from_str(r#"{"orders":{}}"#);
        assert!(page.is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(1_778_833_543_999), "2026-05-15T08:25:43Z");
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(-5), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(i64::MAX), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_timestamp("2026-05-15T08:25:43Z"),
            Some(1_778_833_543_000)
        );
        assert_eq!(
            parse_timestamp("2026-05-15T10:25:43+02:00"),
            Some(1_778_833_543_000)
        );
        assert_eq!(parse_timestamp("2026-05-15"), None);
    }
}
