//! The Vendure fake's store: products, variants with stock at the default location, orders in
//! Vendure's default order process, sessions. Pure data and rules; the GraphQL layer (`api`)
//! renders it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Value, json};

use super::ControlError;

/// The one stock location (Vendure's "Default Stock Location").
pub(crate) const DEFAULT_LOCATION: &str = "1";

/// A product.
#[derive(Debug, Clone)]
pub(crate) struct Product {
    pub id: u64,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub enabled: bool,
}

/// A product variant.
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub id: u64,
    pub product_id: u64,
    pub sku: String,
    pub name: String,
    pub enabled: bool,
    /// Minor units of the channel currency.
    pub price: i64,
    pub track_inventory: bool,
    pub on_hand: i64,
    pub allocated: i64,
    pub updated_at: DateTime<Utc>,
}

impl Variant {
    /// What buyers can buy.
    pub(crate) fn saleable(&self) -> i64 {
        (self.on_hand - self.allocated).max(0)
    }

    pub(crate) fn render(&self, currency: &str) -> Value {
        json!({
            "__typename": "ProductVariant",
            "id": self.id.to_string(),
            "productId": self.product_id.to_string(),
            "sku": self.sku,
            "name": self.name,
            "enabled": self.enabled,
            "price": self.price,
            "priceWithTax": self.price,
            "currencyCode": currency,
            "trackInventory": if self.track_inventory { "TRUE" } else { "FALSE" },
            "stockOnHand": self.on_hand,
            "stockAllocated": self.allocated,
            "stockLevels": [{
                "id": self.id.to_string(),
                "stockLocationId": DEFAULT_LOCATION,
                "stockOnHand": self.on_hand,
                "stockAllocated": self.allocated,
            }],
            "updatedAt": iso(self.updated_at),
        })
    }
}

/// An order line.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub id: u64,
    pub variant_id: u64,
    pub sku: String,
    pub quantity: u32,
    pub unit_price_with_tax: i64,
}

/// An order (or a cart: `active`).
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub id: u64,
    pub code: String,
    pub state: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    /// Whole seconds, like Vendure on SQLite.
    pub updated_at: DateTime<Utc>,
    pub placed_at: Option<DateTime<Utc>>,
    pub customer_id: Option<u64>,
    pub email: Option<String>,
    pub shipping_set: bool,
    pub lines: Vec<Line>,
}

impl Order {
    pub(crate) fn total_with_tax(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| l.unit_price_with_tax * i64::from(l.quantity))
            .sum()
    }

    pub(crate) fn render(&self, currency: &str) -> Value {
        json!({
            "__typename": "Order",
            "id": self.id.to_string(),
            "code": self.code,
            "state": self.state,
            "active": self.active,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "orderPlacedAt": self.placed_at.map(iso),
            "totalWithTax": self.total_with_tax(),
            "total": self.total_with_tax(),
            "currencyCode": currency,
            "customer": self.customer_id.map(|id| json!({"id": id.to_string(), "emailAddress": self.email})),
            "lines": self.lines.iter().map(|l| json!({
                "id": l.id.to_string(),
                "quantity": l.quantity,
                "unitPriceWithTax": l.unit_price_with_tax,
                "productVariant": {"id": l.variant_id.to_string(), "sku": l.sku},
            })).collect::<Vec<_>>(),
        })
    }
}

/// Vendure's ISO-8601 with milliseconds.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What a session may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Session {
    /// An administrator.
    Admin,
    /// A shop visitor, with their active order.
    Shop { order: Option<u64> },
}

/// The whole store.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub products: BTreeMap<u64, Product>,
    pub variants: BTreeMap<u64, Variant>,
    pub orders: BTreeMap<u64, Order>,
    pub sessions: HashMap<String, Session>,
    next_id: u64,
    next_line: u64,
    next_customer: u64,
    /// Slugs in use (Vendure appends `-2`, `-3` … to a taken one).
    slugs: HashMap<String, u32>,
}

/// Stored time: whole seconds (Vendure on SQLite keeps `datetime` without milliseconds).
pub(crate) fn stored(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(0)
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The first variant (lowest id) with this SKU.
    pub(crate) fn variant_by_sku(&self, sku: &str) -> Option<&Variant> {
        self.variants.values().find(|v| v.sku == sku)
    }

    pub(crate) fn variant_by_sku_mut(&mut self, sku: &str) -> Option<&mut Variant> {
        self.variants.values_mut().find(|v| v.sku == sku)
    }

    pub(crate) fn create_product(
        &mut self,
        name: String,
        slug: String,
        description: String,
        enabled: bool,
    ) -> Product {
        let id = self.id();
        let base = if slug.is_empty() {
            name.to_lowercase().replace(' ', "-")
        } else {
            slug
        };
        let n = self.slugs.entry(base.clone()).or_insert(0);
        *n += 1;
        let slug = if *n == 1 { base } else { format!("{base}-{n}") };
        let p = Product {
            id,
            name,
            slug,
            description,
            enabled,
        };
        self.products.insert(id, p.clone());
        p
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_variant(
        &mut self,
        now: DateTime<Utc>,
        product_id: u64,
        sku: String,
        name: String,
        price: i64,
        on_hand: i64,
        enabled: bool,
    ) -> u64 {
        let id = self.id();
        self.variants.insert(
            id,
            Variant {
                id,
                product_id,
                sku,
                name,
                enabled,
                price,
                track_inventory: true,
                on_hand,
                allocated: 0,
                updated_at: stored(now),
            },
        );
        id
    }

    /// A cart for a shop session.
    pub(crate) fn new_cart(&mut self, now: DateTime<Utc>) -> u64 {
        let id = self.id();
        let code = format!("SBX{id:013}");
        self.orders.insert(
            id,
            Order {
                id,
                code,
                state: "AddingItems".into(),
                active: true,
                created_at: now,
                updated_at: stored(now),
                placed_at: None,
                customer_id: None,
                email: None,
                shipping_set: false,
                lines: Vec::new(),
            },
        );
        id
    }

    /// Adds units of a variant to a cart (merging with an existing line).
    pub(crate) fn add_item(
        &mut self,
        now: DateTime<Utc>,
        order_id: u64,
        variant_id: u64,
        quantity: u32,
    ) -> Result<(), (String, String)> {
        let Some(v) = self.variants.get(&variant_id).cloned() else {
            return Err((
                "ENTITY_NOT_FOUND".into(),
                format!("No ProductVariant with the id \"{variant_id}\" could be found"),
            ));
        };
        if !v.enabled {
            return Err((
                "ENTITY_NOT_FOUND".into(),
                format!("No ProductVariant with the id \"{variant_id}\" could be found"),
            ));
        }
        let in_cart: u32 = self.orders.get(&order_id).map_or(0, |o| {
            o.lines
                .iter()
                .filter(|l| l.variant_id == variant_id)
                .map(|l| l.quantity)
                .sum()
        });
        if v.track_inventory && i64::from(in_cart + quantity) > v.saleable() {
            return Err((
                "INSUFFICIENT_STOCK_ERROR".into(),
                format!(
                    "Only {} items were added to the order due to insufficient stock",
                    v.saleable()
                ),
            ));
        }
        self.next_line += 1;
        let line_id = self.next_line;
        let Some(order) = self.orders.get_mut(&order_id) else {
            return Err(("ENTITY_NOT_FOUND".into(), "no active order".into()));
        };
        if let Some(line) = order.lines.iter_mut().find(|l| l.variant_id == variant_id) {
            line.quantity += quantity;
        } else {
            order.lines.push(Line {
                id: line_id,
                variant_id,
                sku: v.sku.clone(),
                quantity,
                // The fake's tax: 20 % like the realstore recipe's Standard Tax.
                unit_price_with_tax: v.price * 6 / 5,
            });
        }
        order.updated_at = stored(now);
        Ok(())
    }

    /// Payment settles: the cart becomes a placed order and its stock is allocated.
    pub(crate) fn place(&mut self, now: DateTime<Utc>, order_id: u64) -> Result<(), ControlError> {
        let order = self
            .orders
            .get(&order_id)
            .cloned()
            .ok_or_else(|| ControlError::UnknownOrder(order_id.to_string()))?;
        for l in &order.lines {
            let v = self
                .variants
                .get(&l.variant_id)
                .ok_or_else(|| ControlError::UnknownSku(l.sku.clone()))?;
            if v.track_inventory && i64::from(l.quantity) > v.saleable() {
                return Err(ControlError::InsufficientQuantity {
                    sku: l.sku.clone(),
                    available: u32::try_from(v.saleable()).unwrap_or(0),
                    requested: l.quantity,
                });
            }
        }
        for l in &order.lines {
            if let Some(v) = self.variants.get_mut(&l.variant_id)
                && v.track_inventory
            {
                v.allocated += i64::from(l.quantity);
            }
        }
        self.next_customer += 1;
        let customer = self.next_customer;
        let o = self.orders.get_mut(&order_id).expect("checked above");
        o.state = "PaymentSettled".into();
        o.active = false;
        o.placed_at = Some(now);
        o.updated_at = stored(now);
        if o.customer_id.is_none() {
            o.customer_id = Some(customer);
        }
        Ok(())
    }

    /// Cancels a placed order: allocation released (Vendure's default cancellation restocks).
    pub(crate) fn cancel(&mut self, now: DateTime<Utc>, order_id: u64) -> Result<(), ControlError> {
        let order = self
            .orders
            .get(&order_id)
            .cloned()
            .ok_or_else(|| ControlError::UnknownOrder(order_id.to_string()))?;
        if order.active || !matches!(order.state.as_str(), "PaymentSettled" | "PaymentAuthorized") {
            return Err(ControlError::InvalidTransition {
                id: order.code,
                state: order.state,
                action: "cancel",
            });
        }
        for l in &order.lines {
            if let Some(v) = self.variants.get_mut(&l.variant_id)
                && v.track_inventory
            {
                v.allocated = (v.allocated - i64::from(l.quantity)).max(0);
            }
        }
        let o = self.orders.get_mut(&order_id).expect("checked above");
        o.state = "Cancelled".into();
        o.updated_at = stored(now);
        Ok(())
    }

    /// Ships a placed order: stock leaves the shelf (on hand and allocated both drop).
    pub(crate) fn ship(&mut self, now: DateTime<Utc>, order_id: u64) -> Result<(), ControlError> {
        let order = self
            .orders
            .get(&order_id)
            .cloned()
            .ok_or_else(|| ControlError::UnknownOrder(order_id.to_string()))?;
        if order.state != "PaymentSettled" {
            return Err(ControlError::InvalidTransition {
                id: order.code,
                state: order.state,
                action: "ship",
            });
        }
        for l in &order.lines {
            if let Some(v) = self.variants.get_mut(&l.variant_id)
                && v.track_inventory
            {
                v.allocated = (v.allocated - i64::from(l.quantity)).max(0);
                v.on_hand = (v.on_hand - i64::from(l.quantity)).max(0);
            }
        }
        let o = self.orders.get_mut(&order_id).expect("checked above");
        o.state = "Shipped".into();
        o.updated_at = stored(now);
        Ok(())
    }

    /// An order id by id text or code.
    pub(crate) fn find_order(&self, id_or_code: &str) -> Option<u64> {
        id_or_code
            .parse::<u64>()
            .ok()
            .filter(|id| self.orders.contains_key(id))
            .or_else(|| {
                self.orders
                    .values()
                    .find(|o| o.code == id_or_code)
                    .map(|o| o.id)
            })
    }
}
