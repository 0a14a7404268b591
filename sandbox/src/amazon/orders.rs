//! Orders API v2026-01-01: the order model, its rendering per `includedData`, the control-side
//! lifecycle (place, place FBA, ship, cancel) and the searchOrders / getOrder handlers
//! (contracts/README.md §1.5, spec `orders_2026-01-01.json`).
//!
//! Fulfillment status moves `UNSHIPPED` → `SHIPPED` or `UNSHIPPED` → `CANCELLED` (the spec's
//! `FulfillmentStatus` enum); every change stamps a strictly later `lastUpdatedTime`. A
//! merchant-fulfilled order takes its units from the listing's `DEFAULT` quantity (refused when
//! short) and a cancellation puts them back; FBA orders (`fulfilledBy: AMAZON`) never touch it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::error::AmazonError;
use super::http::{Query, decode_segment, parse_time, segments_after, timestamp};
use super::listing::{Account, format_minor, minor_units};
use super::state::{AmazonState, Ctx};
use super::{Amazon, ControlError, OrderLine};
use crate::record::Money;

/// Largest searchOrders page (`maxResultsPerPage` 1..=100, default 100).
pub const MAX_ORDERS_PAGE: usize = 100;
/// Most `marketplaceIds` in searchOrders.
pub const MAX_ORDER_MARKETPLACES: usize = 50;
/// `createdBefore` / `lastUpdatedBefore` must be at least this many minutes before now.
pub const BEFORE_MARGIN_MINUTES: i64 = 2;

/// The spec's `includedData` values.
pub(crate) const ORDER_INCLUDED_DATA: [&str; 11] = [
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
];

const FULFILLMENT_STATUSES: [&str; 7] = [
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
];

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Unshipped,
    Shipped,
    Cancelled,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Unshipped => "UNSHIPPED",
            Status::Shipped => "SHIPPED",
            Status::Cancelled => "CANCELLED",
        }
    }
}

/// One order line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub item_id: String,
    pub sku: String,
    pub asin: String,
    pub title: String,
    pub quantity: u32,
    pub unit_minor: i64,
    pub currency: String,
    pub condition: Option<String>,
}

/// One order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    pub id: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub status: Status,
    /// Fulfilled by Amazon.
    pub fba: bool,
    pub lines: Vec<Line>,
    pub shipped: Option<DateTime<Utc>>,
    pub marketplace_id: String,
}

fn marketplace_name(id: &str) -> &'static str {
    match id {
        "ATVPDKIKX0DER" => "Amazon.com",
        "A2EUQ1WTGCTBG2" => "Amazon.ca",
        "A1F83G8C2ARO7P" => "Amazon.co.uk",
        "A1PA6795UKMFR9" => "Amazon.de",
        "A13V1IB3VIYZZH" => "Amazon.fr",
        "APJ6JRA9NG5V4" => "Amazon.it",
        "A1RKKUPIHCS9HS" => "Amazon.es",
        "A1VC38T7YXB528" => "Amazon.co.jp",
        "A39IBJ37TRP1C6" => "Amazon.com.au",
        _ => "Amazon",
    }
}

/// Listing condition (`used_like_new`) → the order's `conditionType`/`conditionSubtype`.
fn order_condition(c: &str) -> (&'static str, &'static str) {
    let (kind, sub) = c.split_once('_').unwrap_or((c, ""));
    let kind = match kind {
        "used" => "USED",
        "collectible" => "COLLECTIBLE",
        "refurbished" => "REFURBISHED",
        "club" => "CLUB",
        _ => "NEW",
    };
    let sub = match sub {
        "like_new" => "MINT",
        "very_good" => "VERY_GOOD",
        "good" => "GOOD",
        "acceptable" => "ACCEPTABLE",
        "open_box" => "OPEN_BOX",
        "oem" => "OEM",
        "refurbished" => "REFURBISHED",
        "club" => "CLUB",
        _ => "NEW",
    };
    (kind, sub)
}

/// Which optional data sets to render.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OrderIncluded {
    buyer: bool,
    recipient: bool,
    proceeds: bool,
    cancellation: bool,
    fulfillment: bool,
    packages: bool,
}

impl OrderIncluded {
    fn from_names(names: &[String]) -> Self {
        let has = |n: &str| names.iter().any(|x| x == n);
        OrderIncluded {
            buyer: has("BUYER"),
            recipient: has("RECIPIENT"),
            proceeds: has("PROCEEDS"),
            cancellation: has("CANCELLATION"),
            fulfillment: has("FULFILLMENT"),
            packages: has("PACKAGES"),
        }
    }

    /// Everything (control API).
    pub(crate) fn all() -> Self {
        OrderIncluded {
            buyer: true,
            recipient: true,
            proceeds: true,
            cancellation: true,
            fulfillment: true,
            packages: true,
        }
    }
}

fn money(minor: i64, currency: &str) -> Value {
    json!({"amount": format_minor(minor), "currencyCode": currency})
}

impl Order {
    /// The spec's `Order` with the requested data sets (the core fields are always present).
    pub(crate) fn render(&self, inc: OrderIncluded) -> Value {
        let currency = self.lines.first().map_or("USD", |l| l.currency.as_str());
        let total: i64 = self
            .lines
            .iter()
            .map(|l| l.unit_minor.saturating_mul(i64::from(l.quantity)))
            .fold(0i64, i64::saturating_add);
        let items: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                let mut product = json!({
                    "asin": l.asin, "title": l.title, "sellerSku": l.sku,
                    "price": {"unitPrice": money(l.unit_minor, &l.currency)},
                });
                let (kind, sub) = order_condition(l.condition.as_deref().unwrap_or("new_new"));
                product["condition"] = json!({"conditionType": kind, "conditionSubtype": sub});
                let mut item = Map::new();
                item.insert("orderItemId".into(), json!(l.item_id));
                item.insert("quantityOrdered".into(), json!(l.quantity));
                item.insert("product".into(), product);
                if inc.proceeds {
                    let sub = money(
                        l.unit_minor.saturating_mul(i64::from(l.quantity)),
                        &l.currency,
                    );
                    item.insert(
                        "proceeds".into(),
                        json!({"proceedsTotal": sub, "breakdowns": [{"type": "ITEM", "subtotal": sub}]}),
                    );
                }
                if inc.cancellation && self.status == Status::Cancelled {
                    item.insert(
                        "cancellation".into(),
                        json!({"cancellationRequest": {"requester": "BUYER", "cancelReason": "BUYER_CANCELED"},
                               "cancellationExecution": {"cancelledBy": "MERCHANT", "cancelReason": "BUYER_CANCELED"}}),
                    );
                }
                if inc.fulfillment {
                    let done = if self.status == Status::Shipped { l.quantity } else { 0 };
                    let open = if self.status == Status::Unshipped { l.quantity } else { 0 };
                    item.insert(
                        "fulfillment".into(),
                        json!({"quantityFulfilled": done, "quantityUnfulfilled": open}),
                    );
                }
                Value::Object(item)
            })
            .collect();
        let mut order = Map::new();
        order.insert("orderId".into(), json!(self.id));
        order.insert("createdTime".into(), json!(timestamp(self.created)));
        order.insert("lastUpdatedTime".into(), json!(timestamp(self.updated)));
        order.insert(
            "salesChannel".into(),
            json!({"channelName": "AMAZON", "marketplaceId": self.marketplace_id,
                   "marketplaceName": marketplace_name(&self.marketplace_id)}),
        );
        if inc.buyer {
            order.insert(
                "buyer".into(),
                json!({"buyerName": "Sandbox Buyer", "buyerEmail": format!("{}@marketplace.amazon.com", self.id)}),
            );
        }
        if inc.recipient {
            order.insert(
                "recipient".into(),
                json!({"deliveryAddress": {"name": "Sandbox Buyer", "addressLine1": "410 Terry Ave N",
                    "city": "Seattle", "stateOrRegion": "WA", "postalCode": "98109",
                    "countryCode": "US", "addressType": "RESIDENTIAL"}}),
            );
        }
        if inc.proceeds {
            order.insert(
                "proceeds".into(),
                json!({"grandTotal": money(total, currency)}),
            );
        }
        if inc.fulfillment {
            let ship_by = self.created + chrono::Duration::days(2);
            order.insert(
                "fulfillment".into(),
                json!({"fulfillmentStatus": self.status.as_str(),
                       "fulfilledBy": if self.fba { "AMAZON" } else { "MERCHANT" },
                       "fulfillmentServiceLevel": "STANDARD",
                       "shipByWindow": {"earliestDateTime": timestamp(self.created),
                                        "latestDateTime": timestamp(ship_by)}}),
            );
        }
        order.insert("orderItems".into(), json!(items));
        if inc.packages
            && !self.fba
            && let Some(shipped) = self.shipped
        {
            let package_items: Vec<Value> = self
                .lines
                .iter()
                .map(|l| json!({"orderItemId": l.item_id, "quantity": l.quantity}))
                .collect();
            order.insert(
                "packages".into(),
                json!([{"packageReferenceId": "1", "createdTime": timestamp(shipped),
                        "packageStatus": {"status": "SHIPPED"}, "carrier": "USPS",
                        "shipTime": timestamp(shipped), "shippingService": "Standard",
                        "trackingNumber": format!("9400{}", self.id.replace('-', "")),
                        "packageItems": package_items}]),
            );
        }
        Value::Object(order)
    }
}

impl AmazonState {
    /// The next order timestamp: now in whole milliseconds (the precision clients see), but
    /// strictly after the previous one.
    fn order_stamp(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let t = if now > self.order_clock {
            now
        } else {
            self.order_clock + chrono::Duration::milliseconds(1)
        };
        self.order_clock = t;
        t
    }

    /// A buyer checks out these lines (merchant-fulfilled unless `fba`).
    pub(crate) fn place_order(
        &mut self,
        ctx: &Ctx<'_>,
        lines: &[OrderLine],
        fba: bool,
    ) -> Result<String, ControlError> {
        if lines.is_empty() {
            return Err(ControlError::Invalid(
                "an order needs at least one line".into(),
            ));
        }
        let acct: Account = self.cfg.acct.clone();
        let mut wanted: HashMap<&str, u32> = HashMap::new();
        for line in lines {
            if line.quantity == 0 {
                return Err(ControlError::Invalid(format!(
                    "line for {:?} orders 0 units",
                    line.sku
                )));
            }
            let listing = self
                .listings
                .get(&line.sku)
                .ok_or_else(|| ControlError::UnknownSku(line.sku.clone()))?;
            if listing.price(&acct).is_none() {
                return Err(ControlError::NotListed(line.sku.clone()));
            }
            let total = wanted.entry(line.sku.as_str()).or_default();
            *total = total.saturating_add(line.quantity);
        }
        if !fba {
            for (sku, qty) in &wanted {
                let listing = &self.listings[*sku];
                if !listing.status(&acct).contains(&"DISCOVERABLE") {
                    return Err(ControlError::NotListed((*sku).to_owned()));
                }
                let available = listing.default_quantity().unwrap_or(0);
                if available < *qty {
                    return Err(ControlError::InsufficientQuantity {
                        sku: (*sku).to_owned(),
                        available,
                        requested: *qty,
                    });
                }
            }
        }
        let stamp = self.order_stamp(ctx.now);
        let mut order_lines = Vec::new();
        for line in lines {
            let item_id = self.new_order_item_id(ctx.rng);
            let listing = &self.listings[&line.sku];
            let price = listing
                .price(&acct)
                .unwrap_or_else(|| Money::new("0.00", &acct.currency));
            order_lines.push(Line {
                item_id,
                sku: line.sku.clone(),
                asin: listing.asin.clone(),
                title: listing
                    .item_name()
                    .map_or_else(|| format!("Sandbox item {}", line.sku), str::to_owned),
                quantity: line.quantity,
                unit_minor: minor_units(&price.value).unwrap_or(0),
                currency: price.currency,
                condition: listing.condition().map(str::to_owned),
            });
        }
        if !fba {
            for (sku, qty) in &wanted {
                if let Some(l) = self.listings.get_mut(*sku) {
                    let left = l.default_quantity().unwrap_or(0).saturating_sub(*qty);
                    l.set_default_quantity(left);
                    l.updated = ctx.now;
                }
            }
        }
        let id = self.new_order_id(ctx.rng);
        self.orders.insert(
            id.clone(),
            Order {
                id: id.clone(),
                created: stamp,
                updated: stamp,
                status: Status::Unshipped,
                fba,
                lines: order_lines,
                shipped: None,
                marketplace_id: acct.marketplace_id,
            },
        );
        Ok(id)
    }

    /// The buyer cancels before shipment; a merchant order's units go back to the listing.
    pub(crate) fn cancel_order(&mut self, ctx: &Ctx<'_>, id: &str) -> Result<(), ControlError> {
        let order = self
            .orders
            .get(id)
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        if order.status != Status::Unshipped {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: order.status.as_str().to_owned(),
                action: "cancel",
            });
        }
        let restock: Vec<(String, u32)> = if order.fba {
            Vec::new()
        } else {
            order
                .lines
                .iter()
                .map(|l| (l.sku.clone(), l.quantity))
                .collect()
        };
        for (sku, qty) in restock {
            if let Some(l) = self.listings.get_mut(&sku) {
                let q = l.default_quantity().unwrap_or(0).saturating_add(qty);
                l.set_default_quantity(q);
                l.updated = ctx.now;
            }
        }
        let stamp = self.order_stamp(ctx.now);
        if let Some(o) = self.orders.get_mut(id) {
            o.status = Status::Cancelled;
            o.updated = stamp;
        }
        Ok(())
    }

    /// The seller (or Amazon, for FBA) ships.
    pub(crate) fn ship_order(&mut self, ctx: &Ctx<'_>, id: &str) -> Result<(), ControlError> {
        let status = self
            .orders
            .get(id)
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?
            .status;
        if status != Status::Unshipped {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: status.as_str().to_owned(),
                action: "ship",
            });
        }
        let stamp = self.order_stamp(ctx.now);
        if let Some(o) = self.orders.get_mut(id) {
            o.status = Status::Shipped;
            o.updated = stamp;
            o.shipped = Some(stamp);
        }
        Ok(())
    }
}

// ---- handlers ---------------------------------------------------------------------------------

type St = State<Arc<Amazon>>;

/// The validated searchOrders filter (also what a pagination token must be replayed with).
#[derive(Debug, Clone, PartialEq)]
struct OrderFilter {
    by_created: bool,
    after: DateTime<Utc>,
    before: Option<DateTime<Utc>>,
    statuses: Option<Vec<String>>,
    marketplaces: Option<Vec<String>>,
    fulfilled_by: Option<Vec<String>>,
}

impl OrderFilter {
    fn to_value(&self) -> Value {
        json!({
            "byCreated": self.by_created,
            "after": timestamp(self.after),
            "before": self.before.map(timestamp),
            "statuses": self.statuses,
            "marketplaces": self.marketplaces,
            "fulfilledBy": self.fulfilled_by,
        })
    }

    fn parse(q: &Query, now: DateTime<Utc>) -> Result<OrderFilter, AmazonError> {
        let created_after = q.get("createdAfter");
        let updated_after = q.get("lastUpdatedAfter");
        let (by_created, after) = match (created_after, updated_after) {
            (Some(c), None) => (true, parse_time(c, "createdAfter")?),
            (None, Some(u)) => (false, parse_time(u, "lastUpdatedAfter")?),
            _ => {
                return Err(AmazonError::invalid_input(
                    "Exactly one of 'createdAfter' and 'lastUpdatedAfter' must be provided.",
                ));
            }
        };
        if by_created && q.has("lastUpdatedBefore") {
            return Err(AmazonError::invalid_input(
                "'lastUpdatedBefore' cannot be combined with 'createdAfter'.",
            ));
        }
        if !by_created && q.has("createdBefore") {
            return Err(AmazonError::invalid_input(
                "'createdBefore' cannot be combined with 'lastUpdatedAfter'.",
            ));
        }
        let before_name = if by_created {
            "createdBefore"
        } else {
            "lastUpdatedBefore"
        };
        let before = q
            .get(before_name)
            .map(|b| parse_time(b, before_name))
            .transpose()?;
        if let Some(b) = before {
            if b < after {
                return Err(AmazonError::invalid_input(format!(
                    "'{before_name}' must be equal to or after the '{}' date.",
                    if by_created {
                        "createdAfter"
                    } else {
                        "lastUpdatedAfter"
                    }
                )));
            }
            if b > now - chrono::Duration::minutes(BEFORE_MARGIN_MINUTES) {
                return Err(AmazonError::invalid_input(format!(
                    "'{before_name}' must be at least {BEFORE_MARGIN_MINUTES} minutes before the time of the request."
                )));
            }
        }
        let statuses = q.enum_list("fulfillmentStatuses", &FULFILLMENT_STATUSES)?;
        let fulfilled_by = q.enum_list("fulfilledBy", &["MERCHANT", "AMAZON"])?;
        let marketplaces = q.list("marketplaceIds");
        if marketplaces
            .as_ref()
            .is_some_and(|m| m.len() > MAX_ORDER_MARKETPLACES)
        {
            return Err(AmazonError::invalid_input(format!(
                "At most {MAX_ORDER_MARKETPLACES} 'marketplaceIds' are allowed."
            )));
        }
        Ok(OrderFilter {
            by_created,
            after,
            before,
            statuses,
            marketplaces,
            fulfilled_by,
        })
    }

    fn key(&self, o: &Order) -> (String, String) {
        let t = if self.by_created {
            o.created
        } else {
            o.updated
        };
        (timestamp(t), o.id.clone())
    }

    fn matches(&self, o: &Order) -> bool {
        let t = if self.by_created {
            o.created
        } else {
            o.updated
        };
        t >= self.after
            && self.before.is_none_or(|b| t <= b)
            && self
                .statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| x == o.status.as_str()))
            && self
                .marketplaces
                .as_ref()
                .is_none_or(|m| m.contains(&o.marketplace_id))
            && self.fulfilled_by.as_ref().is_none_or(|f| {
                f.iter()
                    .any(|x| x == if o.fba { "AMAZON" } else { "MERCHANT" })
            })
    }
}

fn included(q: &Query) -> Result<OrderIncluded, AmazonError> {
    Ok(q.enum_list("includedData", &ORDER_INCLUDED_DATA)?
        .map(|n| OrderIncluded::from_names(&n))
        .unwrap_or_default())
}

/// `GET /orders/2026-01-01/orders` (searchOrders): results sorted by the filtered time (oldest
/// first) then orderId; `nextToken` is a keyset cursor, so orders updated while paging move behind
/// it instead of shifting pages.
pub(crate) async fn search_orders(
    State(amz): St,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmazonError> {
    let q = Query::parse(raw.as_deref())?;
    let page = q.int_in("maxResultsPerPage", 1..=MAX_ORDERS_PAGE, MAX_ORDERS_PAGE)?;
    let inc = included(&q)?;
    amz.with(|st, ctx| {
        let filter = OrderFilter::parse(&q, ctx.now)?;
        let filter_value = filter.to_value();
        let (after, seen) = match q.get("paginationToken") {
            Some(token) => {
                let c = st.cursor(token, ctx.now)?;
                if c.filter != filter_value {
                    return Err(AmazonError::invalid_input(
                        "The paginationToken must be used with the same parameters as the request that returned it (except maxResultsPerPage and includedData).",
                    ));
                }
                (Some(c.after), c.seen)
            }
            None => (None, 0),
        };
        let mut matching: Vec<&Order> = st
            .orders
            .values()
            .filter(|o| filter.matches(o))
            .filter(|o| after.as_ref().is_none_or(|a| filter.key(o) > *a))
            .collect();
        matching.sort_by_key(|o| filter.key(o));
        let more = matching.len() > page;
        matching.truncate(page);
        let orders: Vec<Value> = matching.iter().map(|o| o.render(inc)).collect();
        let last = matching.last().map(|o| filter.key(o));
        let mut body = json!({ "orders": orders });
        let bound = timestamp(filter.before.unwrap_or(ctx.now));
        if filter.by_created {
            body["createdBefore"] = json!(bound);
        } else {
            body["lastUpdatedBefore"] = json!(bound);
        }
        if more && let Some(last) = last {
            let token = st.new_cursor(ctx, filter_value, last, seen + orders.len());
            body["pagination"] = json!({ "nextToken": token });
        }
        Ok(Json(body).into_response())
    })
}

/// `GET /orders/2026-01-01/orders/{orderId}` (getOrder).
pub(crate) async fn get_order(
    State(amz): St,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmazonError> {
    let q = Query::parse(raw.as_deref())?;
    let inc = included(&q)?;
    let raw_id = segments_after(uri.path(), "/orders/2026-01-01/orders/")
        .first()
        .copied()
        .unwrap_or("");
    let id = decode_segment(raw_id, "orderId")?;
    let st = amz.lock();
    let order = st
        .orders
        .get(&id)
        .ok_or_else(|| AmazonError::not_found(format!("Order {id:?} was not found.")))?;
    Ok(Json(json!({ "order": order.render(inc) })).into_response())
}
