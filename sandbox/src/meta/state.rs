//! The Meta fake's state: the catalog, `items_batch` handles processed on the sandbox clock,
//! commerce orders, and the Business Use Case (BUC) usage windows. Pure data and rules; the HTTP
//! side lives in `graph`, the control side in `control` and the handle.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{BucLimit, ControlError, OrderLine};
use crate::record::{Money, NewWrite, Recorder};

/// Most requests one `items_batch` call accepts (contracts §3.2).
pub const MAX_BATCH_REQUESTS: usize = 5_000;
/// Fields a CREATE (or an upserting UPDATE of an unknown item) must carry: the catalog's required
/// feed fields (contracts §3.2, Meta's "supported fields" page).
pub const REQUIRED_FIELDS: [&str; 8] = [
    "id",
    "title",
    "description",
    "availability",
    "condition",
    "price",
    "link",
    "image_link",
];
/// `availability` values (enum `ProductItem_availability` in specs/meta/enum_types.json).
pub const AVAILABILITY: [&str; 7] = [
    "available for order",
    "discontinued",
    "in stock",
    "mark_as_sold",
    "out of stock",
    "pending",
    "preorder",
];
/// `condition` values of the catalog feed.
pub const CONDITIONS: [&str; 3] = ["new", "refurbished", "used"];
/// Order states (enum `commercemerchantsettingscommerce_orders_state_enum_param`).
pub const ORDER_STATES: [&str; 4] = ["COMPLETED", "CREATED", "FB_PROCESSING", "IN_PROGRESS"];

/// Graph's timestamps: ISO 8601 with an offset (`2019-01-14T19:17:31+00:00`).
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Parses a decimal amount (`12.99`, `3`) into cents; at most two decimals, not negative.
pub(crate) fn cents(text: &str) -> Option<i64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || frac.len() > 2 || int.len() > 13 {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    Some(int * 100 + frac)
}

/// `12.99` from cents.
pub(crate) fn amount_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Parses a feed price: `"<amount> <ISO 4217 code>"` (`"12.99 USD"`).
pub(crate) fn parse_price(text: &str) -> Option<(i64, String)> {
    let mut parts = text.split_whitespace();
    let (amount, currency) = (parts.next()?, parts.next()?);
    if parts.next().is_some()
        || currency.len() != 3
        || !currency.bytes().all(|b| b.is_ascii_uppercase())
    {
        return None;
    }
    Some((cents(amount)?, currency.to_owned()))
}

/// How the products edge shows a price: `$1,234.56` for the currencies with a well-known symbol,
/// `1,234.56 CHF` otherwise — Graph formats prices for display, so readers must parse leniently.
pub(crate) fn display_price(cents: i64, currency: &str) -> String {
    let int = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let amount = format!("{grouped}.{:02}", cents % 100);
    match currency {
        "USD" => format!("${amount}"),
        "EUR" => format!("€{amount}"),
        "GBP" => format!("£{amount}"),
        other => format!("{amount} {other}"),
    }
}

/// One catalog item, keyed by its retailer id.
#[derive(Debug, Clone)]
pub(crate) struct Product {
    /// Meta's own id of the item (`ProductItem.id`).
    pub fb_id: String,
    /// Feed fields as last written (`title`, `link`, …), `id` excluded.
    pub fields: Map<String, Value>,
    pub price_cents: i64,
    pub currency: String,
    pub quantity: u32,
    pub availability: String,
}

impl Product {
    /// The item as the products edge renders `field`, `None` when the item has no value.
    pub(crate) fn field(&self, retailer_id: &str, field: &str) -> Option<Value> {
        let feed = |name: &str| self.fields.get(name).cloned();
        Some(match field {
            "id" => json!(self.fb_id),
            "retailer_id" => json!(retailer_id),
            "price" => json!(display_price(self.price_cents, &self.currency)),
            "currency" => json!(self.currency),
            "availability" => json!(self.availability),
            "quantity_to_sell_on_facebook" | "inventory" => json!(self.quantity),
            "name" => feed("title")?,
            "url" => feed("link")?,
            "image_url" => feed("image_link")?,
            "retailer_product_group_id" => feed("item_group_id")?,
            "manufacturer_part_number" => feed("mpn")?,
            other => feed(other)?,
        })
    }
}

/// Read-only fields of ProductItem the products edge serves (a subset of specs/meta/ProductItem.json).
pub const PRODUCT_FIELDS: [&str; 17] = [
    "id",
    "retailer_id",
    "name",
    "description",
    "availability",
    "condition",
    "price",
    "currency",
    "quantity_to_sell_on_facebook",
    "inventory",
    "url",
    "image_url",
    "brand",
    "gtin",
    "retailer_product_group_id",
    "manufacturer_part_number",
    "sale_price",
];

/// One request of a batch, after synchronous validation.
#[derive(Debug, Clone)]
pub(crate) struct BatchRequest {
    /// Position in the `requests` array.
    pub line: usize,
    pub method: String,
    pub retailer_id: String,
    pub data: Map<String, Value>,
    /// A `reject_skus` fault decided at submission: the message it ends with.
    pub rejection: Option<String>,
}

/// An `items_batch` handle.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub handle: String,
    pub submitted: DateTime<Utc>,
    pub ready_at: DateTime<Utc>,
    pub allow_upsert: bool,
    pub requests: Vec<BatchRequest>,
    pub finished: bool,
    /// `{"line","id","message"}` per failed request, once finished.
    pub errors: Vec<Value>,
    pub warnings: Vec<Value>,
    pub invalid_ids: Vec<String>,
}

impl Batch {
    /// The `CheckBatchRequestStatus` object.
    pub(crate) fn render(&self, with_ids: bool) -> Value {
        let mut v = json!({
            "handle": self.handle,
            "status": if self.finished { "finished" } else { "in_progress" },
            "errors_total_count": self.errors.len(),
            "errors": self.errors,
            "warnings_total_count": self.warnings.len(),
            "warnings": self.warnings,
        });
        if with_ids {
            v["ids_of_invalid_requests"] = json!(self.invalid_ids);
        }
        v
    }
}

/// One line of a commerce order.
#[derive(Debug, Clone)]
pub(crate) struct OrderItem {
    pub id: String,
    pub retailer_id: String,
    pub product_id: String,
    pub quantity: u32,
    pub price_cents: i64,
    pub currency: String,
}

/// A commerce order.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub id: String,
    pub state: &'static str,
    pub created: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
    pub items: Vec<OrderItem>,
    /// Set by acknowledge_order: (idempotency_key, merchant_order_reference).
    pub ack: Option<(String, String)>,
    pub cancelled: Option<DateTime<Utc>>,
    pub shipped: Option<DateTime<Utc>>,
}

impl Order {
    fn money(cents: i64, currency: &str) -> Value {
        json!({"amount": amount_text(cents), "currency": currency})
    }

    fn total(&self) -> (i64, String) {
        let currency = self
            .items
            .first()
            .map_or_else(|| "USD".to_owned(), |i| i.currency.clone());
        let cents = self
            .items
            .iter()
            .map(|i| i.price_cents * i64::from(i.quantity))
            .sum();
        (cents, currency)
    }

    fn items_edge(&self) -> Value {
        let data: Vec<Value> = self
            .items
            .iter()
            .map(|i| {
                json!({
                    "id": i.id,
                    "retailer_id": i.retailer_id,
                    "product_id": i.product_id,
                    "quantity": i.quantity,
                    "price_per_unit": Order::money(i.price_cents, &i.currency),
                })
            })
            .collect();
        json!({ "data": data })
    }

    fn cancellations_edge(&self) -> Value {
        let data: Vec<Value> = self
            .cancelled
            .iter()
            .map(|at| {
                let items: Vec<Value> = self
                    .items
                    .iter()
                    .map(|i| json!({"id": i.id, "retailer_id": i.retailer_id, "quantity": i.quantity}))
                    .collect();
                json!({
                    "id": format!("{}-c1", self.id),
                    "cancel_reason": {"reason_code": "CUSTOMER_REQUESTED", "reason_description": "Buyer cancelled"},
                    "items": {"data": items},
                    "created": timestamp(*at),
                })
            })
            .collect();
        json!({ "data": data })
    }

    fn shipments_edge(&self) -> Value {
        let data: Vec<Value> = self
            .shipped
            .iter()
            .map(|at| json!({"id": format!("{}-s1", self.id), "created": timestamp(*at)}))
            .collect();
        json!({ "data": data })
    }

    /// One field (or expanded edge) of the order.
    pub(crate) fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "id" => json!(self.id),
            "order_status" => json!({"state": self.state}),
            "created" => json!(timestamp(self.created)),
            "last_updated" => json!(timestamp(self.last_updated)),
            "channel" => json!("facebook"),
            "is_test_order" => json!(true),
            "is_group_buy" | "contains_bopis_items" => json!(false),
            "merchant_order_id" => json!(self.ack.as_ref()?.1),
            "ship_by_date" => json!(
                (self.created + chrono::TimeDelta::days(3))
                    .date_naive()
                    .to_string()
            ),
            "buyer_details" => {
                json!({"name": "Sandbox Buyer", "email": format!("buyer+{}@example.invalid", self.id), "email_remarketing_option": false})
            }
            "shipping_address" => {
                json!({"name": "Sandbox Buyer", "street1": "1 Hacker Way", "city": "Menlo Park", "state": "CA", "postal_code": "94025", "country": "US"})
            }
            "selected_shipping_option" => {
                json!({"name": "Standard", "price": Order::money(0, &self.total().1), "calculated_tax": Order::money(0, &self.total().1), "estimated_shipping_time": {"min_days": 3, "max_days": 5}})
            }
            "estimated_payment_details" => {
                let (cents, currency) = self.total();
                json!({
                    "subtotal": {"items": Order::money(cents, &currency), "shipping": Order::money(0, &currency)},
                    "tax": Order::money(0, &currency),
                    "total_amount": Order::money(cents, &currency),
                    "tax_remitted": true,
                })
            }
            "pre_order_details" => Value::Null,
            "items" => self.items_edge(),
            "cancellations" => self.cancellations_edge(),
            "shipments" => self.shipments_edge(),
            "refunds" | "returns" | "payments" | "promotions" | "promotion_details" => {
                json!({"data": []})
            }
            _ => return None,
        })
    }

    /// The order with `fields` (top-level names), as Graph renders a node.
    pub(crate) fn render(&self, fields: &[String]) -> Value {
        let mut out = Map::new();
        for f in fields {
            if let Some(v) = self.field(f) {
                out.insert(f.clone(), v);
            }
        }
        Value::Object(out)
    }
}

/// Top-level fields of CommerceOrder and the edges Graph lets a caller expand in `fields`.
pub const ORDER_FIELDS: [&str; 23] = [
    "buyer_details",
    "channel",
    "contains_bopis_items",
    "created",
    "estimated_payment_details",
    "id",
    "is_group_buy",
    "is_test_order",
    "last_updated",
    "merchant_order_id",
    "order_status",
    "pre_order_details",
    "selected_shipping_option",
    "ship_by_date",
    "shipping_address",
    "items",
    "cancellations",
    "shipments",
    "refunds",
    "returns",
    "payments",
    "promotions",
    "promotion_details",
];

/// One BUC window of one business object and use case.
#[derive(Debug, Clone)]
pub(crate) struct BucWindow {
    started: DateTime<Utc>,
    calls: u32,
}

/// What a BUC check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BucUsage {
    /// Percent of the window's calls used (0..=100).
    pub call_count: u32,
    /// Minutes until the window resets, when throttled (else 0).
    pub regain_minutes: u32,
    /// True when the call was refused.
    pub throttled: bool,
}

/// Everything the fake knows.
#[derive(Debug)]
pub(crate) struct MetaState {
    pub batch_processing: Duration,
    pub buc: BTreeMap<String, BucLimit>,
    pub products: BTreeMap<String, Product>,
    pub batches: BTreeMap<String, Batch>,
    pub orders: BTreeMap<String, Order>,
    pub windows: HashMap<(String, String), BucWindow>,
    /// While held, batches stay `in_progress`.
    pub hold: bool,
    /// Effective acknowledgements (state changes), per order.
    pub acks: HashMap<String, u32>,
    next_id: u64,
}

/// What a state change needs from the sandbox.
pub(crate) struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub rec: &'a Recorder,
}

impl MetaState {
    pub(crate) fn new(batch_processing: Duration, buc: BTreeMap<String, BucLimit>) -> Self {
        MetaState {
            batch_processing,
            buc,
            products: BTreeMap::new(),
            batches: BTreeMap::new(),
            orders: BTreeMap::new(),
            windows: HashMap::new(),
            hold: false,
            acks: HashMap::new(),
            next_id: 0,
        }
    }

    /// A fresh numeric Graph id (Meta ids are decimal strings).
    pub(crate) fn new_id(&mut self, prefix: u64) -> String {
        self.next_id += 1;
        format!("{}", prefix + self.next_id)
    }

    /// Counts one call against `(object, use_case)`'s window; refuses it when the window is spent.
    pub(crate) fn buc_check(
        &mut self,
        object: &str,
        use_case: &str,
        now: DateTime<Utc>,
    ) -> Option<BucUsage> {
        let limit = *self.buc.get(use_case)?;
        let window = chrono::TimeDelta::try_seconds(
            i64::try_from(limit.window_secs.max(1)).unwrap_or(i64::MAX),
        )
        .unwrap_or(chrono::TimeDelta::hours(1));
        let w = self
            .windows
            .entry((object.to_owned(), use_case.to_owned()))
            .or_insert(BucWindow {
                started: now,
                calls: 0,
            });
        if now >= w.started + window {
            *w = BucWindow {
                started: now,
                calls: 0,
            };
        }
        let calls = limit.calls.max(1);
        if w.calls >= calls {
            let left = (w.started + window - now).num_seconds().max(1);
            return Some(BucUsage {
                call_count: 100,
                regain_minutes: u32::try_from((left + 59) / 60).unwrap_or(u32::MAX),
                throttled: true,
            });
        }
        w.calls += 1;
        Some(BucUsage {
            call_count: (w.calls.saturating_mul(100) / calls).min(100),
            regain_minutes: 0,
            throttled: false,
        })
    }

    // ---- catalog --------------------------------------------------------------------------------

    /// Finishes every batch whose time has come (unless held), in submission order.
    pub(crate) fn pump(&mut self, ctx: &Ctx<'_>) {
        if self.hold {
            return;
        }
        let due: Vec<(DateTime<Utc>, String)> = self
            .batches
            .values()
            .filter(|b| !b.finished && b.ready_at <= ctx.now)
            .map(|b| (b.submitted, b.handle.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for (_, handle) in due {
            self.finish(&handle, ctx);
        }
    }

    fn finish(&mut self, handle: &str, ctx: &Ctx<'_>) {
        let Some(mut batch) = self.batches.remove(handle) else {
            return;
        };
        for r in &batch.requests {
            match self.apply(r, batch.allow_upsert, &batch.handle, ctx) {
                Ok(Some(warning)) => batch
                    .warnings
                    .push(json!({"line": r.line, "id": r.retailer_id, "message": warning})),
                Ok(None) => {}
                Err(message) => {
                    batch
                        .errors
                        .push(json!({"line": r.line, "id": r.retailer_id, "message": message}));
                    if !batch.invalid_ids.contains(&r.retailer_id) {
                        batch.invalid_ids.push(r.retailer_id.clone());
                    }
                }
            }
        }
        batch.finished = true;
        self.batches.insert(batch.handle.clone(), batch);
    }

    /// Applies one request of a finished batch; `Ok(Some(_))` is a warning.
    fn apply(
        &mut self,
        r: &BatchRequest,
        allow_upsert: bool,
        handle: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Option<String>, String> {
        if let Some(message) = &r.rejection {
            return Err(message.clone());
        }
        let id = &r.retailer_id;
        let exists = self.products.contains_key(id);
        match r.method.as_str() {
            "DELETE" => {
                if self.products.remove(id).is_none() {
                    return Ok(Some(format!(
                        "No item with retailer id \"{id}\" exists in this catalog; nothing was deleted."
                    )));
                }
                ctx.rec.write(
                    super::MARKETPLACE,
                    NewWrite {
                        operation: "items_batch",
                        sku: id.clone(),
                        batch_ref: Some(format!("handle {handle} request {} DELETE", r.line)),
                        ..NewWrite::default()
                    },
                );
                return Ok(None);
            }
            "CREATE" if exists => {
                return Err(format!(
                    "An item with retailer id \"{id}\" already exists in this catalog. Use UPDATE to change it."
                ));
            }
            "UPDATE" if !exists && !allow_upsert => {
                return Err(format!(
                    "The item with retailer id \"{id}\" does not exist in this catalog (allow_upsert is false)."
                ));
            }
            _ => {}
        }
        if !exists {
            let missing = missing_required(&r.data);
            if !missing.is_empty() {
                return Err(format!(
                    "The item with retailer id \"{id}\" is new and is missing required fields: {}.",
                    missing.join(", ")
                ));
            }
        }
        let fb_id = match self.products.get(id) {
            Some(p) => p.fb_id.clone(),
            None => self.new_id(7_000_000_000_000_000),
        };
        let product = self.products.entry(id.clone()).or_insert_with(|| Product {
            fb_id: fb_id.clone(),
            fields: Map::new(),
            price_cents: 0,
            currency: String::new(),
            quantity: 0,
            availability: "out of stock".into(),
        });
        for (k, v) in &r.data {
            match k.as_str() {
                "id" => {}
                "price" => {
                    if let Some((cents, currency)) = v.as_str().and_then(parse_price) {
                        product.price_cents = cents;
                        product.currency = currency;
                    }
                }
                "quantity_to_sell_on_facebook" | "inventory" => {
                    if let Some(q) = as_quantity(v) {
                        product.quantity = q;
                    }
                }
                "availability" => {
                    if let Some(a) = v.as_str() {
                        product.availability = a.to_owned();
                    }
                }
                _ => {
                    product.fields.insert(k.clone(), v.clone());
                }
            }
        }
        let touched_qty =
            r.data.contains_key("quantity_to_sell_on_facebook") || r.data.contains_key("inventory");
        ctx.rec.write(
            super::MARKETPLACE,
            NewWrite {
                operation: "items_batch",
                sku: id.clone(),
                listing_ref: Some(fb_id),
                quantity: touched_qty.then_some(product.quantity),
                price: r.data.contains_key("price").then(|| {
                    Money::new(amount_text(product.price_cents), product.currency.clone())
                }),
                visible_quantity: Some(visible(product)),
                batch_ref: Some(format!("handle {handle} request {} {}", r.line, r.method)),
                ..NewWrite::default()
            },
        );
        Ok(None)
    }

    // ---- orders ---------------------------------------------------------------------------------

    /// A buyer checks out: CREATED (the app is registered as order management app, so orders wait
    /// for acknowledgement); lowers `quantity_to_sell_on_facebook`.
    pub(crate) fn place_order(
        &mut self,
        ctx: &Ctx<'_>,
        lines: &[OrderLine],
    ) -> Result<String, ControlError> {
        if lines.is_empty() {
            return Err(ControlError::Invalid(
                "an order needs at least one line".into(),
            ));
        }
        let mut wanted: BTreeMap<&str, u32> = BTreeMap::new();
        for l in lines {
            if l.quantity == 0 {
                return Err(ControlError::Invalid(format!(
                    "line for {:?} has quantity 0",
                    l.sku
                )));
            }
            let p = self
                .products
                .get(&l.sku)
                .ok_or_else(|| ControlError::UnknownSku(l.sku.clone()))?;
            if p.price_cents <= 0 || (p.availability != "in stock" && p.quantity == 0) {
                return Err(ControlError::NotListed(l.sku.clone()));
            }
            let w = wanted.entry(l.sku.as_str()).or_default();
            *w = w.saturating_add(l.quantity);
            if *w > p.quantity {
                return Err(ControlError::InsufficientQuantity {
                    sku: l.sku.clone(),
                    available: p.quantity,
                    requested: *w,
                });
            }
        }
        let id = self.new_id(300_000_000_000_000);
        let mut items = Vec::new();
        for (n, l) in lines.iter().enumerate() {
            let p = self.products.get_mut(&l.sku).expect("checked above");
            p.quantity -= l.quantity;
            if p.quantity == 0 {
                p.availability = "out of stock".into();
            }
            items.push(OrderItem {
                id: format!("{id}{:02}", n + 1),
                retailer_id: l.sku.clone(),
                product_id: p.fb_id.clone(),
                quantity: l.quantity,
                price_cents: p.price_cents,
                currency: p.currency.clone(),
            });
        }
        self.orders.insert(
            id.clone(),
            Order {
                id: id.clone(),
                state: "CREATED",
                created: ctx.now,
                last_updated: ctx.now,
                items,
                ack: None,
                cancelled: None,
                shipped: None,
            },
        );
        Ok(id)
    }

    /// The buyer cancels before shipping: a cancellation of every item, state COMPLETED, the
    /// units back on sale.
    pub(crate) fn cancel_order(&mut self, ctx: &Ctx<'_>, id: &str) -> Result<(), ControlError> {
        let o = self
            .orders
            .get_mut(id)
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        if o.cancelled.is_some() || o.shipped.is_some() {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: o.state.to_owned(),
                action: "cancel",
            });
        }
        o.cancelled = Some(ctx.now);
        o.state = "COMPLETED";
        o.last_updated = ctx.now;
        let items = o.items.clone();
        for i in items {
            if let Some(p) = self.products.get_mut(&i.retailer_id) {
                p.quantity = p.quantity.saturating_add(i.quantity);
                if p.quantity > 0 && p.availability == "out of stock" {
                    p.availability = "in stock".into();
                }
            }
        }
        Ok(())
    }

    /// The merchant ships an acknowledged order: COMPLETED with a shipment.
    pub(crate) fn ship_order(&mut self, ctx: &Ctx<'_>, id: &str) -> Result<(), ControlError> {
        let o = self
            .orders
            .get_mut(id)
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        if o.state != "IN_PROGRESS" {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: o.state.to_owned(),
                action: "ship",
            });
        }
        o.shipped = Some(ctx.now);
        o.state = "COMPLETED";
        o.last_updated = ctx.now;
        Ok(())
    }

    /// `acknowledge_order`: CREATED → IN_PROGRESS. The same idempotency key again answers the same
    /// (no second state change); another key on an order past CREATED is refused.
    pub(crate) fn acknowledge(
        &mut self,
        ctx: &Ctx<'_>,
        id: &str,
        key: &str,
        reference: &str,
    ) -> Result<&'static str, String> {
        let Some(o) = self.orders.get_mut(id) else {
            return Err(format!("Order {id} does not exist."));
        };
        if let Some((k, _)) = &o.ack
            && k == key
        {
            return Ok(o.state);
        }
        if o.state != "CREATED" {
            return Err(format!(
                "Order {id} is in state {} and cannot be acknowledged.",
                o.state
            ));
        }
        o.ack = Some((key.to_owned(), reference.to_owned()));
        o.state = "IN_PROGRESS";
        o.last_updated = ctx.now;
        *self.acks.entry(id.to_owned()).or_default() += 1;
        Ok(o.state)
    }
}

/// What buyers see: the quantity, or 0 when the item is not `in stock`.
pub(crate) fn visible(p: &Product) -> u32 {
    if p.availability == "in stock" {
        p.quantity
    } else {
        0
    }
}

/// A quantity from JSON: a non-negative integer or its decimal string (form bodies are text).
pub(crate) fn as_quantity(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Required feed fields absent (or blank) from `data`.
pub(crate) fn missing_required(data: &Map<String, Value>) -> Vec<&'static str> {
    REQUIRED_FIELDS
        .iter()
        .copied()
        .filter(|f| {
            data.get(*f)
                .is_none_or(|v| v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()))
        })
        .collect()
}

/// Synchronous checks of one request's `data` (what `validation_status` reports): formats and
/// enums; for CREATE also the required fields.
pub(crate) fn validate_request(method: &str, data: &Map<String, Value>) -> Vec<String> {
    let mut errors = Vec::new();
    if method == "CREATE" {
        for f in missing_required(data) {
            errors.push(format!("Missing required field: {f}."));
        }
    }
    if method == "DELETE" {
        return errors;
    }
    if let Some(p) = data.get("price")
        && p.as_str().is_none_or(|s| parse_price(s).is_none())
    {
        errors.push(format!(
            "Invalid price {p}: expected an amount with at most two decimals and an ISO 4217 currency code, e.g. \"12.99 USD\"."
        ));
    }
    if let Some(a) = data.get("availability")
        && !a.as_str().is_some_and(|s| AVAILABILITY.contains(&s))
    {
        errors.push(format!(
            "Invalid availability {a}; allowed: {}.",
            AVAILABILITY.join(", ")
        ));
    }
    if let Some(c) = data.get("condition")
        && !c.as_str().is_some_and(|s| CONDITIONS.contains(&s))
    {
        errors.push(format!(
            "Invalid condition {c}; allowed: new, refurbished, used."
        ));
    }
    for q in ["quantity_to_sell_on_facebook", "inventory"] {
        if let Some(v) = data.get(q)
            && as_quantity(v).is_none()
        {
            errors.push(format!("Invalid {q} {v}: expected a non-negative integer."));
        }
    }
    errors
}
