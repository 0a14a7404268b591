//! The Shopify fake's store: products, variants, inventory items and levels, locations, orders,
//! access tokens and idempotency keys, and how each renders as a GraphQL object.
//!
//! Rendered objects are JSON with every scalar field a client may select plus hidden `_…` keys
//! for fields that take arguments (`inventoryLevel(locationId:)`, `quantities(names:)`,
//! `variants(first:)`, `lineItems(first:)`); `exec` projects them onto the client's selection.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::record::Money;

/// `gid://shopify/{kind}/{id}`.
pub(crate) fn gid(kind: &str, id: u64) -> String {
    format!("gid://shopify/{kind}/{id}")
}

/// The numeric id of a GID of `kind`.
pub(crate) fn parse_gid(kind: &str, text: &str) -> Option<u64> {
    text.strip_prefix("gid://shopify/")?
        .strip_prefix(kind)?
        .strip_prefix('/')?
        .parse()
        .ok()
}

/// ISO 8601 with seconds, as Shopify's `DateTime` scalar.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses a decimal price with at most two decimals into cents.
pub(crate) fn cents(text: &str) -> Option<i64> {
    let t = text.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty()
        || int.len() > 12
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut v: i64 = int.parse().ok()?;
    v = v.checked_mul(100)?;
    let f: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    v.checked_add(f)
}

/// Cents as `"12.50"`.
pub(crate) fn price_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[derive(Debug, Clone)]
pub(crate) struct Product {
    pub id: u64,
    pub title: String,
    pub description_html: String,
    pub vendor: String,
    pub status: String,
    /// `(name, values)` in position order.
    pub options: Vec<(String, Vec<String>)>,
    pub variant_ids: Vec<u64>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub id: u64,
    pub product_id: u64,
    pub sku: String,
    pub price: i64,
    pub barcode: Option<String>,
    pub options: Vec<(String, String)>,
    pub inventory_item_id: u64,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct InventoryItem {
    pub id: u64,
    pub variant_id: u64,
    pub tracked: bool,
    /// location id → available.
    pub levels: BTreeMap<u64, i64>,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub(crate) struct LineItem {
    pub id: u64,
    pub sku: String,
    pub variant_id: u64,
    pub product_id: u64,
    pub title: String,
    pub quantity: u32,
    pub current_quantity: u32,
    pub price: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub id: u64,
    pub number: u64,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub cancelled: Option<DateTime<Utc>>,
    pub financial: &'static str,
    pub fulfillment: &'static str,
    pub lines: Vec<LineItem>,
}

impl Order {
    pub(crate) fn total(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| l.price * i64::from(l.quantity))
            .sum()
    }
}

/// One applied inventorySetQuantities, remembered by its idempotency key.
#[derive(Debug, Clone)]
pub(crate) struct Replay {
    /// The request's input, to tell a replay from a reuse of the key for something else.
    pub input: Value,
    /// The field's resolved value, answered again for a replay.
    pub result: Value,
}

#[derive(Debug)]
pub(crate) struct ShopState {
    pub next_id: u64,
    pub next_order_number: u64,
    pub products: BTreeMap<u64, Product>,
    pub variants: BTreeMap<u64, Variant>,
    pub items: BTreeMap<u64, InventoryItem>,
    /// id → name.
    pub locations: BTreeMap<u64, String>,
    pub orders: BTreeMap<u64, Order>,
    /// access token → expiry.
    pub tokens: HashMap<String, DateTime<Utc>>,
    pub replays: HashMap<String, Replay>,
    pub currency: String,
    pub shop_name: String,
    pub domain: String,
    /// Buyers may buy more than is available (see
    /// [`super::ShopifyHandle::set_allow_oversell`]).
    pub allow_oversell: bool,
}

impl ShopState {
    pub(crate) fn new(currency: &str, domain: &str, location_id: u64) -> Self {
        let mut locations = BTreeMap::new();
        locations.insert(location_id, "Shop location".to_owned());
        ShopState {
            next_id: 1_000,
            next_order_number: 1001,
            products: BTreeMap::new(),
            variants: BTreeMap::new(),
            items: BTreeMap::new(),
            locations,
            orders: BTreeMap::new(),
            tokens: HashMap::new(),
            replays: HashMap::new(),
            currency: currency.to_owned(),
            shop_name: "omnistock sandbox".to_owned(),
            domain: domain.to_owned(),
            allow_oversell: false,
        }
    }

    pub(crate) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The variant with this SKU (SKUs are unique in this fake, as productSet enforces).
    pub(crate) fn variant_by_sku(&self, sku: &str) -> Option<&Variant> {
        self.variants.values().find(|v| v.sku == sku)
    }

    /// Available at `location` of the variant with this SKU.
    pub(crate) fn available(&self, sku: &str, location: u64) -> Option<i64> {
        let v = self.variant_by_sku(sku)?;
        self.items
            .get(&v.inventory_item_id)?
            .levels
            .get(&location)
            .copied()
    }

    pub(crate) fn set_available(
        &mut self,
        item_id: u64,
        location: u64,
        q: i64,
        now: DateTime<Utc>,
    ) {
        if let Some(item) = self.items.get_mut(&item_id) {
            item.levels.insert(location, q);
            item.updated = now;
            let vid = item.variant_id;
            if let Some(v) = self.variants.get_mut(&vid) {
                v.updated = now;
            }
        }
    }

    pub(crate) fn price_of(&self, sku: &str) -> Option<Money> {
        self.variant_by_sku(sku)
            .map(|v| Money::new(price_text(v.price), self.currency.clone()))
    }

    // ---- rendering ------------------------------------------------------------------------------

    pub(crate) fn location_json(&self, id: u64) -> Value {
        json!({
            "__typename": "Location",
            "id": gid("Location", id),
            "name": self.locations.get(&id).cloned().unwrap_or_default(),
            "isActive": true,
        })
    }

    pub(crate) fn level_json(&self, item: &InventoryItem, location: u64, available: i64) -> Value {
        json!({
            "__typename": "InventoryLevel",
            "id": format!("gid://shopify/InventoryLevel/{}?inventory_item_id={}", location, item.id),
            "location": self.location_json(location),
            "updatedAt": iso(item.updated),
            "_quantities": {"available": available, "on_hand": available, "committed": 0,
                            "incoming": 0, "reserved": 0, "damaged": 0, "safety_stock": 0,
                            "quality_control": 0},
        })
    }

    pub(crate) fn item_json(&self, item: &InventoryItem) -> Value {
        let sku = self
            .variants
            .get(&item.variant_id)
            .map(|v| v.sku.clone())
            .unwrap_or_default();
        let levels: serde_json::Map<String, Value> = item
            .levels
            .iter()
            .map(|(loc, q)| (gid("Location", *loc), self.level_json(item, *loc, *q)))
            .collect();
        json!({
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", item.id),
            "sku": sku,
            "tracked": item.tracked,
            "updatedAt": iso(item.updated),
            "_levels": levels,
        })
    }

    /// A variant; `with_product` adds its product (without the product's variants).
    pub(crate) fn variant_json(&self, v: &Variant, with_product: bool) -> Value {
        let item = self
            .items
            .get(&v.inventory_item_id)
            .map_or(Value::Null, |i| self.item_json(i));
        let total: i64 = self
            .items
            .get(&v.inventory_item_id)
            .map_or(0, |i| i.levels.values().sum());
        let title = if v.options.is_empty() {
            "Default Title".to_owned()
        } else {
            v.options
                .iter()
                .map(|(_, val)| val.as_str())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let mut out = json!({
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", v.id),
            "legacyResourceId": v.id.to_string(),
            "sku": v.sku,
            "title": title,
            "price": price_text(v.price),
            "barcode": v.barcode,
            "inventoryQuantity": total,
            "selectedOptions": v.options.iter().map(|(n, val)| json!({"name": n, "value": val})).collect::<Vec<_>>(),
            "inventoryItem": item,
            "createdAt": iso(v.created),
            "updatedAt": iso(v.updated),
        });
        if with_product && let Some(p) = self.products.get(&v.product_id) {
            out["product"] = self.product_json(p, false);
        }
        out
    }

    /// A product; `with_variants` adds the hidden variant list behind `variants(first:)`.
    pub(crate) fn product_json(&self, p: &Product, with_variants: bool) -> Value {
        let mut out = json!({
            "__typename": "Product",
            "id": gid("Product", p.id),
            "legacyResourceId": p.id.to_string(),
            "title": p.title,
            "descriptionHtml": p.description_html,
            "vendor": p.vendor,
            "status": p.status,
            "options": p.options.iter().enumerate().map(|(i, (n, vals))| json!({
                "__typename": "ProductOption", "name": n, "position": i + 1, "values": vals,
            })).collect::<Vec<_>>(),
            "variantsCount": {"__typename": "Count", "count": p.variant_ids.len(), "precision": "EXACT"},
            "createdAt": iso(p.created),
            "updatedAt": iso(p.updated),
        });
        if with_variants {
            out["_variants"] = Value::Array(
                p.variant_ids
                    .iter()
                    .filter_map(|id| self.variants.get(id))
                    .map(|v| self.variant_json(v, false))
                    .collect(),
            );
        }
        out
    }

    pub(crate) fn order_json(&self, o: &Order) -> Value {
        let money = |cents: i64| {
            json!({"__typename": "MoneyBag",
                   "shopMoney": {"__typename": "MoneyV2", "amount": price_text(cents), "currencyCode": self.currency}})
        };
        let lines: Vec<Value> = o
            .lines
            .iter()
            .map(|l| {
                json!({
                    "__typename": "LineItem",
                    "id": gid("LineItem", l.id),
                    "sku": l.sku,
                    "name": l.title,
                    "title": l.title,
                    "quantity": l.quantity,
                    "currentQuantity": l.current_quantity,
                    "originalUnitPriceSet": money(l.price),
                    "variant": self.variants.get(&l.variant_id).map_or(Value::Null, |v| json!({
                        "__typename": "ProductVariant", "id": gid("ProductVariant", v.id), "sku": v.sku})),
                })
            })
            .collect();
        json!({
            "__typename": "Order",
            "id": gid("Order", o.id),
            "legacyResourceId": o.id.to_string(),
            "name": format!("#{}", o.number),
            "createdAt": iso(o.created),
            "updatedAt": iso(o.updated),
            "processedAt": iso(o.created),
            "cancelledAt": o.cancelled.map(iso),
            "closed": o.cancelled.is_some(),
            "displayFinancialStatus": o.financial,
            "displayFulfillmentStatus": o.fulfillment,
            "currencyCode": self.currency,
            "totalPriceSet": money(o.total()),
            "_lineItems": lines,
        })
    }

    /// The REST-style order of a webhook body (`orders/create` …).
    pub(crate) fn order_rest_json(&self, o: &Order) -> Value {
        json!({
            "id": o.id,
            "admin_graphql_api_id": gid("Order", o.id),
            "name": format!("#{}", o.number),
            "order_number": o.number,
            "created_at": iso(o.created),
            "updated_at": iso(o.updated),
            "cancelled_at": o.cancelled.map(iso),
            "cancel_reason": o.cancelled.map(|_| "customer"),
            "financial_status": o.financial.to_ascii_lowercase(),
            "fulfillment_status": Value::Null,
            "currency": self.currency,
            "total_price": price_text(o.total()),
            "line_items": o.lines.iter().map(|l| json!({
                "id": l.id,
                "admin_graphql_api_id": gid("LineItem", l.id),
                "sku": l.sku,
                "title": l.title,
                "quantity": l.quantity,
                "current_quantity": l.current_quantity,
                "price": price_text(l.price),
                "variant_id": l.variant_id,
                "product_id": l.product_id,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gids_and_prices() {
        assert_eq!(parse_gid("Location", &gid("Location", 7)), Some(7));
        assert_eq!(parse_gid("Location", "gid://shopify/Product/7"), None);
        assert_eq!(parse_gid("Location", "gid://shopify/Location/x"), None);
        assert_eq!(cents("12.5"), Some(1250));
        assert_eq!(cents("3"), Some(300));
        assert_eq!(cents("1.234"), None);
        assert_eq!(cents("-1"), None);
        assert_eq!(cents("9999999999999"), None);
        assert_eq!(price_text(1205), "12.05");
    }
}
