//! WooCommerce's bodies as Rust types, and the pure mappings between them and the neutral model:
//! no I/O here, so every rule can be unit-tested on its own.
//!
//! Response types default every field WooCommerce may omit and ignore the ones they do not name.
//! They are lenient where real shops differ from the docs: prices may come as strings or numbers,
//! `stock_quantity` as an integer, a float (decimal-stock plugins) or `null`, and a variation's
//! `manage_stock` as `true`, `false` or `"parent"` (stock managed on the parent product).
//!
//! ## Order status
//!
//! | WooCommerce `status` | neutral | why |
//! |---|---|---|
//! | `pending` | `Pending` | awaiting payment; stock stays reserved |
//! | `on-hold` | `Pending` | awaiting payment confirmation (bank transfer, cheque) |
//! | `processing` | `Paid` | paid, not yet shipped |
//! | `completed` | `Shipped` | fulfilled |
//! | `cancelled`, `failed`, `trash` | `Cancelled` | released; WooCommerce restocks them itself |
//! | `refunded` with `date_completed_gmt` | `Shipped` | refunded after shipping: money only; WooCommerce does not say whether goods came back, so nothing is restocked (like eBay) |
//! | `refunded` without it | `Cancelled` | refunded before shipping |
//! | `checkout-draft` | left out | a checkout in progress (block checkout), not an order |
//! | anything else (plugin statuses) | `Pending` | a held unit is cheaper than an oversell |
//!
//! Order lines are keyed by the line item `id`; the unit price is `subtotal` ÷ `quantity`
//! (before discounts), rounded half up. A line without a SKU, or with one omnistock could not
//! have sent, is left out and counted (`order_lines_without_sku`), as for eBay.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::model::{
    ChannelOrder, Currency, ItemOutcome, Money, MoneyError, OrderLine, OrderStatus, Sku,
};

// ---- lenient field readers --------------------------------------------------------------------

/// A string that may arrive as a number or `null`.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    })
}

/// An integer that may arrive as a float, a numeric string or `null`.
fn lenient_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.floor() as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f.floor() as i64),
        _ => None,
    })
}

/// `true`, `false`, or `"parent"` (documented as boolean; variations may inherit).
fn manage_stock<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(matches!(Value::deserialize(d)?, Value::Bool(true)))
}

/// A WordPress REST error: `{"code","message","data":{"status"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct WpError {
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: String,
    #[serde(default)]
    pub data: Option<WpErrorData>,
}

/// `data` of a [`WpError`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct WpErrorData {
    #[serde(default)]
    pub status: Option<u16>,
}

impl WpError {
    /// The error in a body, when it is one (a `code` is required).
    pub(crate) fn parse(body: &[u8]) -> Option<WpError> {
        serde_json::from_slice::<WpError>(body)
            .ok()
            .filter(|e| !e.code.is_empty())
    }

    pub(crate) fn status(&self) -> Option<u16> {
        self.data.as_ref().and_then(|d| d.status)
    }
}

/// What becomes of a batch entry that came back with an `error`:
/// an unknown id (`woocommerce_rest_product_invalid_id`, `…_product_variation_invalid_id`: the
/// product was deleted meanwhile) → `NotListed`; a 5xx → `Retry`; anything else → `Rejected` with
/// WooCommerce's code and message.
pub(crate) fn item_outcome(e: &WpError) -> ItemOutcome {
    let gone = (e.code.starts_with("woocommerce_rest_product") && e.code.ends_with("_invalid_id"))
        || e.code == "woocommerce_rest_invalid_product_id";
    if gone {
        ItemOutcome::NotListed {
            error: format!("{}: {}", e.code, e.message),
        }
    } else if e.status().is_some_and(|s| s >= 500) {
        ItemOutcome::Retry {
            error: format!("{}: {}", e.code, e.message),
        }
    } else {
        ItemOutcome::Rejected {
            code: Some(e.code.clone()),
            error: e.message.clone(),
        }
    }
}

// ---- products and variations -------------------------------------------------------------------

/// A product attribute (`options`) or a variation's (`option`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct AttributeView {
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: String,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub option: Option<String>,
    #[serde(default)]
    pub variation: bool,
    #[serde(default)]
    pub visible: bool,
}

/// A product or variation as `GET /products`, `GET /products/{id}/variations` and the batch
/// endpoints return it (the fields the connector reads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct ProductView {
    #[serde(default)]
    pub id: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub name: String,
    /// `simple`, `variable`, `grouped`, `external`; absent on variations.
    #[serde(default, rename = "type", deserialize_with = "lenient_string")]
    pub kind: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub sku: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub price: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub regular_price: String,
    #[serde(default, deserialize_with = "manage_stock")]
    pub manage_stock: bool,
    #[serde(default, deserialize_with = "lenient_int")]
    pub stock_quantity: Option<i64>,
    #[serde(default)]
    pub parent_id: u64,
    #[serde(default)]
    pub variations: Vec<u64>,
    #[serde(default)]
    pub attributes: Vec<AttributeView>,
}

impl ProductView {
    /// The quantity a shopper can buy, when WooCommerce tracks it (negative = oversold = 0).
    pub(crate) fn quantity(&self) -> Option<u32> {
        if !self.manage_stock {
            return None;
        }
        Some(u32::try_from(self.stock_quantity.unwrap_or(0).max(0)).unwrap_or(u32::MAX))
    }
}

/// A `products/batch` or `variations/batch` answer: each list aligned with the request's.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct BatchResponse {
    #[serde(default)]
    pub create: Vec<Value>,
    #[serde(default)]
    pub update: Vec<Value>,
}

/// One entry of a batch answer.
#[derive(Debug, Clone)]
pub(crate) enum BatchEntry {
    Ok(ProductView),
    Failed(WpError),
}

impl BatchEntry {
    pub(crate) fn read(v: &Value) -> BatchEntry {
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return BatchEntry::Failed(serde_json::from_value(err.clone()).unwrap_or(WpError {
                code: "unreadable_error".into(),
                message: err.to_string(),
                data: None,
            }));
        }
        match serde_json::from_value::<ProductView>(v.clone()) {
            Ok(p) => BatchEntry::Ok(p),
            Err(e) => BatchEntry::Failed(WpError {
                code: "unreadable_entry".into(),
                message: format!("unexpected batch entry: {e}"),
                data: Some(WpErrorData { status: Some(500) }),
            }),
        }
    }
}

/// A `GET /data/currencies/current` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CurrencyView {
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: String,
}

// ---- money and dates ----------------------------------------------------------------------------

/// A WooCommerce amount (`"12.50"`; two decimals even for currencies with fewer, by default) in
/// `currency`; zeros beyond the currency's minor unit are dropped.
pub(crate) fn money(text: &str, currency: Currency) -> Option<Money> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    match Money::parse(t, currency) {
        Ok(m) => Some(m),
        Err(MoneyError::Precision { .. }) if t.contains('.') => {
            let trimmed = t.trim_end_matches('0').trim_end_matches('.');
            Money::parse(trimmed, currency).ok()
        }
        Err(_) => None,
    }
}

/// Reads `YYYY-MM-DDTHH:MM:SS` (a `_gmt` field: UTC, no offset); an offset or `Z` is honoured.
pub(crate) fn parse_gmt(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().timestamp_millis())
}

/// `modified_after` for "at or after `since_ms`": WordPress compares whole seconds, strictly
/// after, so the second before (UTC, no offset, with `dates_are_gmt=true`).
pub(crate) fn modified_after(since_ms: i64) -> String {
    let secs = since_ms.div_euclid(1000) - 1;
    DateTime::<Utc>::from_timestamp(secs.max(0), 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

// ---- orders -------------------------------------------------------------------------------------

/// One `line_items` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct LineView {
    #[serde(default)]
    pub id: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub sku: String,
    #[serde(default, deserialize_with = "lenient_int")]
    pub quantity: Option<i64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub subtotal: String,
}

/// An order as `GET /orders` returns it (the fields the connector reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct OrderView {
    #[serde(default)]
    pub id: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub currency: String,
    #[serde(default)]
    pub date_created_gmt: Option<String>,
    #[serde(default)]
    pub date_modified_gmt: Option<String>,
    #[serde(default)]
    pub date_completed_gmt: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub total: String,
    #[serde(default)]
    pub customer_id: u64,
    #[serde(default)]
    pub line_items: Vec<LineView>,
}

/// The neutral status (see the module table); `None` = not an order yet (`checkout-draft`).
pub(crate) fn order_status(o: &OrderView) -> Option<OrderStatus> {
    Some(match o.status.as_str() {
        "checkout-draft" => return None,
        "processing" => OrderStatus::Paid,
        "completed" => OrderStatus::Shipped,
        "cancelled" | "failed" | "trash" => OrderStatus::Cancelled,
        "refunded" => {
            if o.date_completed_gmt
                .as_deref()
                .is_some_and(|d| !d.is_empty())
            {
                OrderStatus::Shipped
            } else {
                OrderStatus::Cancelled
            }
        }
        _ => OrderStatus::Pending,
    })
}

/// An order and how many of its lines were left out.
#[derive(Debug, Clone)]
pub(crate) struct MappedOrder {
    pub order: ChannelOrder,
    pub lines_without_sku: u64,
}

fn div_round_half_up(n: i64, d: i64) -> i64 {
    if d <= 0 {
        return n;
    }
    (2 * n + d).div_euclid(2 * d)
}

/// Maps one order; `Ok(None)` for a checkout draft, `Err` for an order without id or dates.
pub(crate) fn channel_order(o: &OrderView) -> Result<Option<MappedOrder>, String> {
    let Some(status) = order_status(o) else {
        return Ok(None);
    };
    if o.id == 0 {
        return Err("an order without id".into());
    }
    let created = o.date_created_gmt.as_deref().and_then(parse_gmt);
    let modified = o.date_modified_gmt.as_deref().and_then(parse_gmt);
    let (placed_at_ms, remote_updated_at_ms) = match (created, modified) {
        (Some(c), Some(m)) => (c, m),
        (Some(c), None) => (c, c),
        _ => {
            return Err(format!(
                "order {} has no readable date_created_gmt {:?}",
                o.id, o.date_created_gmt
            ));
        }
    };
    let currency = Currency::parse(&o.currency).ok();
    let mut lines = Vec::with_capacity(o.line_items.len());
    let mut lines_without_sku = 0;
    for l in &o.line_items {
        let sku = Sku::parse(l.sku.as_str()).ok();
        let quantity = l
            .quantity
            .and_then(|q| u32::try_from(q).ok())
            .filter(|q| *q > 0);
        let (Some(sku), Some(quantity), true) = (sku, quantity, l.id != 0) else {
            lines_without_sku += 1;
            continue;
        };
        let unit_price = currency
            .and_then(|c| money(&l.subtotal, c))
            .map(|sub| Money {
                minor: div_round_half_up(sub.minor, i64::from(quantity)),
                currency: sub.currency,
            });
        lines.push(OrderLine {
            line_id: l.id.to_string(),
            sku,
            quantity,
            unit_price,
        });
    }
    Ok(Some(MappedOrder {
        order: ChannelOrder {
            external_id: o.id.to_string(),
            status,
            placed_at_ms,
            remote_updated_at_ms,
            total: currency.and_then(|c| money(&o.total, c)),
            buyer_ref: (o.customer_id != 0).then(|| format!("customer:{}", o.customer_id)),
            lines,
            fulfilled_by_channel: false,
        },
        lines_without_sku,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(status: &str, completed: Option<&str>) -> OrderView {
        serde_json::from_value(json!({
            "id": 727, "status": status, "currency": "USD",
            "date_created_gmt": "2017-03-22T16:28:02", "date_modified_gmt": "2017-03-22T16:28:08",
            "date_completed_gmt": completed, "total": "29.35", "customer_id": 0,
            "line_items": [
                {"id": 315, "sku": "MUG", "quantity": 2, "subtotal": "5.00", "price": 2.5},
                {"id": 316, "sku": "", "quantity": 1, "subtotal": "1.00"},
                {"id": 317, "sku": "X", "quantity": 0, "subtotal": "1.00"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn statuses_map_as_documented() {
        use OrderStatus::*;
        for (s, want) in [
            ("pending", Some(Pending)),
            ("on-hold", Some(Pending)),
            ("processing", Some(Paid)),
            ("completed", Some(Shipped)),
            ("cancelled", Some(Cancelled)),
            ("failed", Some(Cancelled)),
            ("trash", Some(Cancelled)),
            ("refunded", Some(Cancelled)),
            ("checkout-draft", None),
            ("wc-awaiting-shipment", Some(Pending)),
        ] {
            assert_eq!(order_status(&order(s, None)), want, "{s}");
        }
        assert_eq!(
            order_status(&order("refunded", Some("2017-03-23T10:00:00"))),
            Some(Shipped),
            "a refund after shipping is money only"
        );
    }

    #[test]
    fn orders_map_lines_prices_and_dates() {
        let m = channel_order(&order("processing", None)).unwrap().unwrap();
        let o = m.order;
        assert_eq!(o.external_id, "727");
        assert_eq!(o.placed_at_ms, 1_490_200_082_000);
        assert_eq!(o.remote_updated_at_ms, 1_490_200_088_000);
        assert_eq!(o.total.unwrap().minor, 2935);
        assert_eq!(o.lines.len(), 1);
        assert_eq!(o.lines[0].line_id, "315");
        assert_eq!(o.lines[0].unit_price.unwrap().minor, 250);
        assert_eq!(m.lines_without_sku, 2);
        assert!(
            channel_order(&order("checkout-draft", None))
                .unwrap()
                .is_none()
        );
        let mut bad = order("processing", None);
        bad.date_created_gmt = Some("yesterday".into());
        assert!(channel_order(&bad).is_err());
    }

    #[test]
    fn lenient_fields_and_errors() {
        let p: ProductView = serde_json::from_value(json!({
            "id": 1, "sku": "A", "regular_price": 12.5, "manage_stock": "parent",
            "stock_quantity": 3.7
        }))
        .unwrap();
        assert_eq!(p.regular_price, "12.5");
        assert!(!p.manage_stock);
        assert_eq!(p.quantity(), None);
        let p: ProductView =
            serde_json::from_value(json!({"manage_stock": true, "stock_quantity": -2})).unwrap();
        assert_eq!(p.quantity(), Some(0), "oversold shows 0");
        let gone = WpError {
            code: "woocommerce_rest_product_invalid_id".into(),
            message: "Invalid ID.".into(),
            data: Some(WpErrorData { status: Some(400) }),
        };
        assert!(matches!(item_outcome(&gone), ItemOutcome::NotListed { .. }));
        let dup = WpError {
            code: "product_invalid_sku".into(),
            message: "Invalid or duplicated SKU.".into(),
            data: Some(WpErrorData { status: Some(400) }),
        };
        assert_eq!(
            item_outcome(&dup),
            ItemOutcome::Rejected {
                code: Some("product_invalid_sku".into()),
                error: "Invalid or duplicated SKU.".into()
            }
        );
        assert!(WpError::parse(b"<html>").is_none());
        assert!(WpError::parse(br#"{"message":"no code"}"#).is_none());
    }

    #[test]
    fn money_and_dates() {
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(money("1500.00", jpy).unwrap().minor, 1500);
        assert!(money("", jpy).is_none());
        assert!(money("12.5x", jpy).is_none());
        assert_eq!(modified_after(1_490_200_088_000), "2017-03-22T16:28:07");
        assert_eq!(modified_after(1_490_200_088_999), "2017-03-22T16:28:07");
        assert_eq!(parse_gmt("2017-03-22T16:28:08Z"), Some(1_490_200_088_000));
    }
}
