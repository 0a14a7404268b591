//! Graph bodies ⇄ the neutral model, pure (no I/O): `items_batch` requests, batch status and
//! per-item outcomes, products-edge rows, commerce orders.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::common::http::encode_component;
use crate::model::{
    ChannelOrder, Currency, ItemOutcome, ListingUpdate, Money, OrderLine, OrderStatus, RemoteItem,
    Sku, StockUpdate,
};

/// `availability` for a quantity: Meta shows "in stock" items only.
pub fn availability(quantity: u32) -> &'static str {
    if quantity > 0 {
        "in stock"
    } else {
        "out of stock"
    }
}

/// A feed price: `"12.99 USD"`.
pub fn price_text(m: &Money) -> String {
    format!("{} {}", m.amount_text(), m.currency)
}

/// The UPDATE (no upsert) of a stock push: quantity, availability, and the price when managed.
pub fn stock_request(u: &StockUpdate) -> Value {
    let mut data = json!({
        "id": u.sku.as_str(),
        "quantity_to_sell_on_facebook": u.quantity,
        "availability": availability(u.quantity),
    });
    if let Some(p) = &u.price {
        data["price"] = json!(price_text(p));
    }
    json!({"method": "UPDATE", "data": data})
}

/// Variant options Meta has a feed field for (`Colour = Red` → `color`); others go to
/// `additional_variant_attributes`.
fn option_field(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "color" | "colour" => "color",
        "size" => "size",
        "gender" => "gender",
        "material" => "material",
        "pattern" => "pattern",
        "age group" | "age_group" => "age_group",
        _ => return None,
    })
}

/// The UPDATE with upsert of a whole listing (every required feed field; see the module docs of
/// `meta` for why UPDATE and not CREATE).
pub fn listing_request(u: &ListingUpdate, link_template: Option<&str>) -> Value {
    let description = if u.description.trim().is_empty() {
        u.title.clone()
    } else {
        u.description.clone()
    };
    let mut data = Map::new();
    data.insert("id".into(), json!(u.sku.as_str()));
    data.insert("title".into(), json!(u.title));
    data.insert("description".into(), json!(description));
    data.insert("availability".into(), json!(availability(u.quantity)));
    data.insert("condition".into(), json!("new"));
    data.insert("price".into(), json!(price_text(&u.price)));
    data.insert("quantity_to_sell_on_facebook".into(), json!(u.quantity));
    if let Some(t) = link_template {
        data.insert(
            "link".into(),
            json!(t.replace("{sku}", &encode_component(u.sku.as_str()))),
        );
    }
    if let Some(first) = u.image_urls.first() {
        data.insert("image_link".into(), json!(first));
    }
    if u.image_urls.len() > 1 {
        data.insert("additional_image_link".into(), json!(u.image_urls[1..]));
    }
    if let Some(b) = &u.brand {
        data.insert("brand".into(), json!(b));
    }
    if let Some(g) = &u.barcode {
        data.insert("gtin".into(), json!(g));
    }
    if let Some(g) = &u.group_id {
        data.insert("item_group_id".into(), json!(g));
    }
    let mut extra = Map::new();
    for (name, value) in &u.options {
        match option_field(name) {
            Some(f) => {
                data.insert(f.into(), json!(value));
            }
            None => {
                extra.insert(name.clone(), json!(value));
            }
        }
    }
    if !extra.is_empty() {
        data.insert("additional_variant_attributes".into(), Value::Object(extra));
    }
    json!({"method": "UPDATE", "data": Value::Object(data)})
}

/// The DELETE of a delist.
pub fn delete_request(sku: &Sku) -> Value {
    json!({"method": "DELETE", "data": {"id": sku.as_str()}})
}

/// `{"message": …}`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Message {
    #[serde(default)]
    pub message: Option<String>,
}

/// One `validation_status` entry.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Validation {
    #[serde(default)]
    pub retailer_id: Option<String>,
    #[serde(default)]
    pub errors: Vec<Message>,
}

/// The `items_batch` answer.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct BatchResponse {
    #[serde(default)]
    pub handles: Vec<String>,
    #[serde(default)]
    pub validation_status: Vec<Validation>,
}

/// One entry of `errors` in a batch status: `{"line","id","message"}` (`retailer_id` accepted too).
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct BatchItemError {
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub retailer_id: Option<Value>,
    #[serde(default)]
    pub message: Option<String>,
}

/// `CheckBatchRequestStatus` (fields per specs/meta/CheckBatchRequestStatus.json).
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct BatchStatus {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub errors: Vec<BatchItemError>,
    #[serde(default)]
    pub ids_of_invalid_requests: Vec<String>,
}

/// `{"data":[status]}`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct BatchStatusPage {
    #[serde(default)]
    pub data: Vec<BatchStatus>,
}

impl BatchStatus {
    /// Still being processed (`started`, `in_progress`, or no status yet).
    pub(crate) fn pending(&self) -> bool {
        matches!(
            self.status
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            None | Some("started" | "in_progress" | "pending" | "processing")
        )
    }

    /// Finished normally (as opposed to a batch-level failure).
    pub(crate) fn finished(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("finished"))
    }
}

/// How a per-item "does not exist" is read for this kind of push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Stock push: the dispatcher sends a listing next.
    NotListed,
    /// Delist: already gone is done.
    Applied,
    /// Listing push: an error like any other.
    Rejected,
}

fn says_missing(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("does not exist") || m.contains("not found") || m.contains("no item with")
}

/// The outcome of one failed request with Meta's `message`.
pub fn item_error(message: &str, missing: Missing) -> ItemOutcome {
    let message = &crate::common::http::truncate(message, crate::common::http::MAX_MESSAGE_CHARS);
    if says_missing(message) {
        match missing {
            Missing::NotListed => {
                return ItemOutcome::NotListed {
                    error: message.to_owned(),
                };
            }
            Missing::Applied => return ItemOutcome::Applied { external_id: None },
            Missing::Rejected => {}
        }
    }
    ItemOutcome::Rejected {
        code: None,
        error: message.to_owned(),
    }
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Outcomes of the requests of a finished batch: `skus[i]` is request line `i`. Errors are found
/// by retailer id (or by line), `ids_of_invalid_requests` without an error entry are rejected
/// with a generic message, everything else was applied.
pub(crate) fn finished_outcomes(
    skus: &[&str],
    status: &BatchStatus,
    missing: Missing,
) -> Vec<ItemOutcome> {
    let mut by_id: HashMap<String, String> = HashMap::new();
    let mut by_line: HashMap<usize, String> = HashMap::new();
    for e in &status.errors {
        let message = e
            .message
            .clone()
            .unwrap_or_else(|| "Meta refused the item (no message)".into());
        let id = e.id.as_ref().or(e.retailer_id.as_ref()).and_then(id_text);
        match (id, e.line) {
            (Some(id), _) if skus.contains(&id.as_str()) => {
                by_id.entry(id).or_insert(message);
            }
            (_, Some(line)) => {
                if let Ok(l) = usize::try_from(line) {
                    by_line.entry(l).or_insert(message);
                }
            }
            _ => {}
        }
    }
    skus.iter()
        .enumerate()
        .map(|(i, sku)| {
            if let Some(m) = by_id.get(*sku).or_else(|| by_line.get(&i)) {
                item_error(m, missing)
            } else if status.ids_of_invalid_requests.iter().any(|x| x == sku) {
                ItemOutcome::Rejected {
                    code: None,
                    error: "Meta listed the item among the invalid requests of its batch".into(),
                }
            } else {
                ItemOutcome::Applied { external_id: None }
            }
        })
        .collect()
}

// ---- products edge ------------------------------------------------------------------------------

/// Fields requested on the products edge (all are ProductItem fields).
pub const PRODUCT_FIELDS: [&str; 6] = [
    "id",
    "retailer_id",
    "quantity_to_sell_on_facebook",
    "price",
    "currency",
    "availability",
];

/// One products-edge row.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ProductRow {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub retailer_id: Option<String>,
    #[serde(default)]
    pub quantity_to_sell_on_facebook: Option<Value>,
    #[serde(default)]
    pub price: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub availability: Option<String>,
}

/// `paging` of a Graph collection.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    pub cursors: Option<Cursors>,
    #[serde(default)]
    pub next: Option<String>,
}

/// `paging.cursors`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Cursors {
    #[serde(default)]
    pub after: Option<String>,
}

impl Paging {
    /// The next page's `after` cursor: only when Graph says there is a next page.
    pub(crate) fn next_cursor(&self) -> Option<String> {
        self.next.as_ref()?;
        self.cursors
            .as_ref()?
            .after
            .clone()
            .filter(|c| !c.is_empty())
    }
}

/// A page of a Graph collection.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

/// Reads a displayed price (`$1,234.56`, `€12.99`, `12,99 €`, `12.99 USD`) as minor units of
/// `currency`; `None` when no amount can be read.
pub fn parse_display_price(text: &str, currency: Currency) -> Option<Money> {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .collect();
    let kept = kept.trim_matches(|c| c == '.' || c == ',');
    if kept.is_empty() {
        return None;
    }
    let normalized = match (kept.rfind('.'), kept.rfind(',')) {
        (Some(d), Some(c)) if d > c => kept.replace(',', ""),
        (Some(_), Some(_)) => kept.replace('.', "").replace(',', "."),
        (None, Some(c)) if kept.len() - c - 1 == 3 && kept.matches(',').count() >= 1 => {
            // `1,234` is a thousands separator; `12,99` a decimal comma.
            kept.replace(',', "")
        }
        (None, Some(_)) => kept.replace(',', "."),
        _ => kept.to_owned(),
    };
    Money::parse(&normalized, currency).ok()
}

/// A products-edge row as the channel shows it; `None` (logged by the caller) when the row has no
/// usable retailer id.
pub(crate) fn remote_item(row: &ProductRow) -> Option<RemoteItem> {
    let sku = Sku::parse(row.retailer_id.clone()?).ok()?;
    let quantity = row
        .quantity_to_sell_on_facebook
        .as_ref()
        .and_then(|v| match v {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
    let in_stock = row
        .availability
        .as_deref()
        .is_none_or(|a| a.eq_ignore_ascii_case("in stock"));
    let quantity = quantity.map(|q| if in_stock { q } else { 0 });
    let price = match (&row.price, &row.currency) {
        (Some(p), Some(c)) => Currency::parse(c)
            .ok()
            .and_then(|c| parse_display_price(p, c)),
        _ => None,
    };
    Some(RemoteItem {
        sku,
        external_id: row.id.as_ref().and_then(id_text),
        quantity,
        price,
    })
}

// ---- orders -------------------------------------------------------------------------------------

/// `fields` of the commerce_orders call: CommerceOrder fields plus the expanded `items` and
/// `cancellations` edges.
pub const ORDER_FIELDS: &str = "id,order_status,created,last_updated,merchant_order_id,channel,\
estimated_payment_details,items{id,retailer_id,product_id,quantity,price_per_unit},\
cancellations{id,items{retailer_id,quantity}}";

/// Top-level names in [`ORDER_FIELDS`].
#[cfg(test)]
pub(crate) fn order_field_names() -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in ORDER_FIELDS.char_indices() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push(&ORDER_FIELDS[start..i]);
                }
                depth += 1;
            }
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                if !ORDER_FIELDS[start..i].contains('}') {
                    out.push(&ORDER_FIELDS[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if !ORDER_FIELDS[start..].contains('}') {
        out.push(&ORDER_FIELDS[start..]);
    }
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// `{"amount":"12.99","currency":"USD"}`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Amount {
    #[serde(default)]
    pub amount: Option<Value>,
    #[serde(default)]
    pub currency: Option<String>,
}

impl Amount {
    fn money(&self) -> Option<Money> {
        let amount = match self.amount.as_ref()? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Money::parse(&amount, Currency::parse(self.currency.as_deref()?).ok()?).ok()
    }
}

/// An order line.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct OrderItem {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub retailer_id: Option<String>,
    #[serde(default)]
    pub quantity: Option<Value>,
    #[serde(default)]
    pub price_per_unit: Option<Amount>,
}

/// A cancellation and the items it covers.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Cancellation {
    #[serde(default)]
    pub items: Option<Page<OrderItem>>,
}

/// `order_status`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct OrderStatusBody {
    #[serde(default)]
    pub state: Option<String>,
}

/// `estimated_payment_details`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct PaymentDetails {
    #[serde(default)]
    pub total_amount: Option<Amount>,
}

/// A CommerceOrder with the fields we ask for.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Order {
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub order_status: Option<OrderStatusBody>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub estimated_payment_details: Option<PaymentDetails>,
    #[serde(default)]
    pub items: Option<Page<OrderItem>>,
    #[serde(default)]
    pub cancellations: Option<Page<Cancellation>>,
}

impl Order {
    /// The order id.
    pub(crate) fn id(&self) -> Option<String> {
        self.id.as_ref().and_then(id_text).filter(|s| !s.is_empty())
    }

    /// `order_status.state`.
    pub(crate) fn state(&self) -> &str {
        self.order_status
            .as_ref()
            .and_then(|s| s.state.as_deref())
            .unwrap_or("")
    }
}

/// Graph time: ISO 8601 (`2019-01-14T19:17:31+00:00` or `…+0000`) or unix seconds.
pub fn parse_time_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
        .ok()
        .map(|t| t.timestamp_millis())
}

fn qty(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The neutral order, with the number of lines skipped for lack of a usable SKU. States:
/// CREATED / IN_PROGRESS → `Paid` (on-platform checkout is paid at purchase), FB_PROCESSING →
/// `Pending`, COMPLETED → `Shipped`, and any state whose cancellations cover every unit →
/// `Cancelled`. Partly cancelled orders keep only the units not cancelled.
pub(crate) fn channel_order(o: &Order) -> Option<(ChannelOrder, usize)> {
    let id = o.id()?;
    let placed_at_ms = o.created.as_deref().and_then(parse_time_ms)?;
    let updated = o
        .last_updated
        .as_deref()
        .and_then(parse_time_ms)
        .unwrap_or(placed_at_ms);
    let mut cancelled: HashMap<String, u32> = HashMap::new();
    for c in o.cancellations.iter().flat_map(|p| &p.data) {
        for i in c.items.iter().flat_map(|p| &p.data) {
            if let (Some(r), Some(q)) = (&i.retailer_id, qty(i.quantity.as_ref())) {
                let e = cancelled.entry(r.clone()).or_default();
                *e = e.saturating_add(q);
            }
        }
    }
    let mut lines = Vec::new();
    let mut skipped = 0usize;
    let mut ordered_units = 0u64;
    for (n, item) in o.items.iter().flat_map(|p| &p.data).enumerate() {
        let Some(sku) = item.retailer_id.clone().and_then(|r| Sku::parse(r).ok()) else {
            skipped += 1;
            continue;
        };
        let Some(q) = qty(item.quantity.as_ref()) else {
            skipped += 1;
            continue;
        };
        ordered_units += u64::from(q);
        let c = cancelled.entry(sku.as_str().to_owned()).or_default();
        let taken = (*c).min(q);
        *c -= taken;
        let left = q - taken;
        if left == 0 {
            continue;
        }
        lines.push(OrderLine {
            line_id: item
                .id
                .as_ref()
                .and_then(id_text)
                .unwrap_or_else(|| format!("{id}-{n}")),
            sku,
            quantity: left,
            unit_price: item.price_per_unit.as_ref().and_then(Amount::money),
        });
    }
    let all_cancelled = lines.is_empty() && ordered_units > 0;
    let status = if all_cancelled {
        OrderStatus::Cancelled
    } else {
        match o.state() {
            "COMPLETED" => OrderStatus::Shipped,
            "FB_PROCESSING" => OrderStatus::Pending,
            _ => OrderStatus::Paid,
        }
    };
    Some((
        ChannelOrder {
            external_id: id,
            status,
            placed_at_ms,
            remote_updated_at_ms: updated,
            total: o
                .estimated_payment_details
                .as_ref()
                .and_then(|d| d.total_amount.as_ref())
                .and_then(Amount::money),
            buyer_ref: None,
            lines,
            fulfilled_by_channel: false,
        },
        skipped,
    ))
}

/// A stable `idempotency_key` for acknowledging `order_id`: a UUID-shaped SHA-256 digest, so
/// a retry after a crash sends the same key and Meta acknowledges once.
pub fn ack_idempotency_key(order_id: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(format!("omnistock:acknowledge_order:{order_id}").as_bytes());
    let h = hex::encode(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_errors_are_bounded() {
        let huge = "é".repeat(1 << 20);
        let ItemOutcome::Rejected { error, .. } = item_error(&huge, Missing::Rejected) else {
            panic!("rejected")
        };
        assert!(
            error.chars().count() <= crate::common::http::MAX_MESSAGE_CHARS + 1,
            "{}",
            error.len()
        );
    }

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn display_prices_are_read_leniently() {
        let p = |s: &str| parse_display_price(s, usd()).map(|m| m.minor);
        assert_eq!(p("$12.99"), Some(1299));
        assert_eq!(p("$1,234.56"), Some(123_456));
        assert_eq!(p("12,99 €"), Some(1299));
        assert_eq!(p("1.234,56 €"), Some(123_456));
        assert_eq!(p("12.99 USD"), Some(1299));
        assert_eq!(p("$1,234"), Some(123_400));
        assert_eq!(p("free"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("$99999999999999999999999"), None);
    }

    #[test]
    fn requests_carry_feed_fields() {
        let u = StockUpdate {
            sku: Sku::parse("A").unwrap(),
            external_id: None,
            quantity: 0,
            price: Some(Money::parse("12.5", usd()).unwrap()),
            version: 1,
        };
        assert_eq!(
            stock_request(&u),
            json!({"method":"UPDATE","data":{"id":"A","quantity_to_sell_on_facebook":0,
                   "availability":"out of stock","price":"12.50 USD"}})
        );
        let l = ListingUpdate {
            sku: Sku::parse("A/1").unwrap(),
            external_id: None,
            title: "Mug".into(),
            description: String::new(),
            brand: Some("B".into()),
            barcode: None,
            image_urls: vec!["https://i/1".into(), "https://i/2".into()],
            options: vec![
                ("Colour".into(), "Red".into()),
                ("Fit".into(), "Slim".into()),
            ],
            group_id: Some("G".into()),
            quantity: 3,
            price: Money::parse("5", usd()).unwrap(),
            version: 1,
        };
        let r = listing_request(&l, Some("https://shop/p/{sku}"));
        let d = &r["data"];
        assert_eq!(d["link"], "https://shop/p/A%2F1");
        assert_eq!(d["description"], "Mug");
        assert_eq!(d["color"], "Red");
        assert_eq!(d["additional_variant_attributes"]["Fit"], "Slim");
        assert_eq!(d["additional_image_link"], json!(["https://i/2"]));
        assert_eq!(d["item_group_id"], "G");
        assert_eq!(d["availability"], "in stock");
    }

    #[test]
    fn ack_keys_are_stable_and_distinct() {
        assert_eq!(ack_idempotency_key("1"), ack_idempotency_key("1"));
        assert_ne!(ack_idempotency_key("1"), ack_idempotency_key("2"));
        assert_eq!(ack_idempotency_key("1").len(), 36);
    }

    #[test]
    fn order_field_names_are_top_level() {
        assert_eq!(
            order_field_names(),
            [
                "id",
                "order_status",
                "created",
                "last_updated",
                "merchant_order_id",
                "channel",
                "estimated_payment_details",
                "items",
                "cancellations"
            ]
        );
    }

    #[test]
    fn orders_map_states_and_cancellations() {
        let o: Order = serde_json::from_value(json!({
            "id": "1", "order_status": {"state": "IN_PROGRESS"},
            "created": "2026-01-01T00:00:00+0000", "last_updated": "2026-01-01T00:01:00+00:00",
            "items": {"data": [{"id": "11", "retailer_id": "A", "quantity": 2,
                                "price_per_unit": {"amount": "1.50", "currency": "USD"}},
                               {"id": "12", "retailer_id": " bad", "quantity": 1}]},
            "cancellations": {"data": [{"items": {"data": [{"retailer_id": "A", "quantity": 1}]}}]},
        }))
        .unwrap();
        let (c, skipped) = channel_order(&o).unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(c.status, OrderStatus::Paid);
        assert_eq!(c.lines.len(), 1);
        assert_eq!(c.lines[0].quantity, 1);
        assert_eq!(c.remote_updated_at_ms - c.placed_at_ms, 60_000);
        let full: Order = serde_json::from_value(json!({
            "id": 2, "order_status": {"state": "COMPLETED"}, "created": "1700000000",
            "items": {"data": [{"retailer_id": "A", "quantity": 1}]},
            "cancellations": {"data": [{"items": {"data": [{"retailer_id": "A", "quantity": 5}]}}]},
        }))
        .unwrap();
        assert_eq!(
            channel_order(&full).unwrap().0.status,
            OrderStatus::Cancelled
        );
        let hostile: Order = serde_json::from_value(json!({"id": "3"})).unwrap();
        assert!(channel_order(&hostile).is_none(), "no created time");
    }
}
