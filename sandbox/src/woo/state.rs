//! The WooCommerce fake's state and rules: products (simple and variable), variations, orders —
//! WordPress posts sharing one id sequence — and how a batch entry, a sale or a cancellation
//! changes them. No HTTP here: handlers in `api` parse requests and call these methods with the
//! state locked.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use super::{ControlError, MARKETPLACE, OrderLine, WooError};
use crate::record::{Money, NewWrite, Recorder};

/// Site timezone of the fake shop: UTC−3 (the documentation's examples are in it too), so local
/// and `_gmt` dates differ and a client that forgets `dates_are_gmt=true` filters wrongly.
pub(crate) const SITE_UTC_OFFSET_HOURS: i64 = -3;

/// Statuses a product or variation may have (spec: `status` options).
pub(crate) const POST_STATUSES: [&str; 4] = ["draft", "pending", "private", "publish"];

/// What a product row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Simple,
    Variable,
    Variation,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Simple => "simple",
            Kind::Variable => "variable",
            Kind::Variation => "variation",
        }
    }
}

/// A product attribute of a variable product (local, by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute {
    pub name: String,
    pub options: Vec<String>,
    pub variation: bool,
    pub visible: bool,
}

/// A product or a variation (both are posts in WordPress).
#[derive(Debug, Clone)]
pub(crate) struct Product {
    pub id: u64,
    /// The variable product of a variation; 0 for products.
    pub parent_id: u64,
    pub kind: Kind,
    pub name: String,
    pub sku: String,
    pub status: String,
    pub catalog_visibility: String,
    pub description: String,
    pub regular_price: String,
    pub manage_stock: bool,
    pub stock_quantity: Option<i64>,
    pub images: Vec<String>,
    /// Variable products: their attributes.
    pub attributes: Vec<Attribute>,
    /// Variations: their `(attribute name, option)` pairs.
    pub options: Vec<(String, String)>,
    /// Variable products: their variations' ids.
    pub variations: Vec<u64>,
    pub total_sales: u64,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
}

/// One order line.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub id: u64,
    pub product_id: u64,
    pub variation_id: u64,
    pub name: String,
    pub sku: String,
    pub quantity: u32,
    /// Unit price in cents.
    pub price_cents: i64,
}

/// An order.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub id: u64,
    pub status: String,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub paid: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub lines: Vec<Line>,
    pub customer_id: u64,
    /// Stock was taken from managed products (restored once on cancellation).
    pub stock_reduced: bool,
}

/// Everything the fake shop holds.
#[derive(Debug)]
pub(crate) struct WooState {
    next_id: u64,
    next_line_id: u64,
    pub products: BTreeMap<u64, Product>,
    pub orders: BTreeMap<u64, Order>,
    pub currency: String,
    pub base_url: String,
    /// Customers may buy more than the product shows (see
    /// [`super::WooHandle::set_allow_oversell`]).
    pub allow_oversell: bool,
}

/// A `reject_skus` fault's verdict on a SKU: HTTP status, numeric error id, message.
pub(crate) type Rejection = (u16, u64, String);

/// Context of one mutation.
pub(crate) struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub rec: &'a Recorder,
    /// The fault check for `reject_skus` rules: `Some((code status, message))` refuses the SKU.
    pub reject: &'a dyn Fn(&str) -> Option<Rejection>,
    /// Operation name for write records.
    pub operation: &'static str,
}

/// `YYYY-MM-DDTHH:MM:SS`, as WooCommerce formats dates (no offset).
pub(crate) fn wc_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// The site-local rendering of a UTC time.
pub(crate) fn local_date(t: DateTime<Utc>) -> String {
    wc_date(t + TimeDelta::hours(SITE_UTC_OFFSET_HOURS))
}

/// Cents of a decimal string (`"12.5"` → 1250); `None` when not a plain decimal with ≤ 2 places.
pub(crate) fn parse_cents(s: &str) -> Option<i64> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    int.checked_mul(100)?.checked_add(frac)
}

/// `1250` → `"12.50"`.
pub(crate) fn fmt_cents(c: i64) -> String {
    format!("{}.{:02}", c / 100, (c % 100).abs())
}

/// `a` with `b`'s members added (two `json!` halves: one is past the macro's recursion limit).
fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// A per-item error (`{"code","message","data":{"status"}}`).
pub(crate) fn item_error(code: &str, message: impl Into<String>, status: u16) -> WooError {
    WooError::new(status, code, message)
}

fn invalid_param(name: &str, why: &str) -> WooError {
    let mut e = WooError::new(
        400,
        "rest_invalid_param",
        format!("Invalid parameter(s): {name}"),
    );
    e.data.insert("params".into(), json!({ name: why }));
    e
}

impl Product {
    pub(crate) fn listing_ref(&self) -> String {
        if self.kind == Kind::Variation {
            format!("{}:{}", self.parent_id, self.id)
        } else {
            self.id.to_string()
        }
    }

    pub(crate) fn stock_status(&self) -> &'static str {
        match (self.manage_stock, self.stock_quantity) {
            (true, Some(q)) if q <= 0 => "outofstock",
            _ => "instock",
        }
    }

    /// What buyers can buy now: the managed stock (never below 0).
    pub(crate) fn visible_quantity(&self) -> Option<u32> {
        if !self.manage_stock {
            return None;
        }
        Some(u32::try_from(self.stock_quantity.unwrap_or(0).max(0)).unwrap_or(u32::MAX))
    }

    fn links(&self, base: &str) -> Value {
        let api = format!("{base}/wp-json/wc/v3");
        if self.kind == Kind::Variation {
            json!({
                "self": [{"href": format!("{api}/products/{}/variations/{}", self.parent_id, self.id)}],
                "collection": [{"href": format!("{api}/products/{}/variations", self.parent_id)}],
                "up": [{"href": format!("{api}/products/{}", self.parent_id)}],
            })
        } else {
            json!({
                "self": [{"href": format!("{api}/products/{}", self.id)}],
                "collection": [{"href": format!("{api}/products")}],
            })
        }
    }

    fn image(&self, i: usize, src: &str) -> Value {
        let name = src.rsplit('/').next().unwrap_or("image");
        json!({
            "id": self.id * 100 + i as u64,
            "date_created": local_date(self.created),
            "date_created_gmt": wc_date(self.created),
            "date_modified": local_date(self.modified),
            "date_modified_gmt": wc_date(self.modified),
            "src": src,
            "name": name,
            "alt": "",
        })
    }

    /// The product as `GET /products/{id}` renders it (documented fields only).
    pub(crate) fn render(&self, base: &str, st: &WooState) -> Value {
        if self.kind == Kind::Variation {
            return self.render_variation(base);
        }
        let price = if self.kind == Kind::Variable {
            self.variations
                .iter()
                .filter_map(|v| st.products.get(v))
                .filter_map(|v| parse_cents(&v.regular_price))
                .min()
                .map(fmt_cents)
                .unwrap_or_default()
        } else {
            self.regular_price.clone()
        };
        let head = json!({
            "id": self.id,
            "name": self.name,
            "slug": slug(&self.name),
            "permalink": format!("{base}/product/{}/", slug(&self.name)),
            "date_created": local_date(self.created),
            "date_created_gmt": wc_date(self.created),
            "date_modified": local_date(self.modified),
            "date_modified_gmt": wc_date(self.modified),
            "type": self.kind.as_str(),
            "status": self.status,
            "featured": false,
            "catalog_visibility": self.catalog_visibility,
            "description": self.description,
            "short_description": "",
            "sku": self.sku,
            "price": price,
            "regular_price": if self.kind == Kind::Variable { String::new() } else { self.regular_price.clone() },
            "sale_price": "",
            "date_on_sale_from": null,
            "date_on_sale_from_gmt": null,
            "date_on_sale_to": null,
            "date_on_sale_to_gmt": null,
            "price_html": format!("<span class=\"woocommerce-Price-amount amount\">{price}</span>"),
            "on_sale": false,
            "purchasable": !price.is_empty(),
            "total_sales": self.total_sales,
            "virtual": false,
            "downloadable": false,
            "downloads": [],
            "download_limit": -1,
            "download_expiry": -1,
        });
        let rest = json!({
            "external_url": "",
            "button_text": "",
            "tax_status": "taxable",
            "tax_class": "",
            "manage_stock": self.manage_stock,
            "stock_quantity": if self.manage_stock { json!(self.stock_quantity) } else { Value::Null },
            "stock_status": self.stock_status(),
            "backorders": "no",
            "backorders_allowed": false,
            "backordered": false,
            "sold_individually": false,
            "weight": "",
            "dimensions": {"length": "", "width": "", "height": ""},
            "shipping_required": true,
            "shipping_taxable": true,
            "shipping_class": "",
            "shipping_class_id": 0,
            "reviews_allowed": true,
            "average_rating": "0.00",
            "rating_count": 0,
            "related_ids": [],
            "upsell_ids": [],
            "cross_sell_ids": [],
            "parent_id": 0,
            "purchase_note": "",
            "categories": [{"id": 9, "name": "Clothing", "slug": "clothing"}],
            "tags": [],
            "images": self.images.iter().enumerate().map(|(i, s)| self.image(i, s)).collect::<Vec<_>>(),
            "attributes": self.attributes.iter().enumerate().map(|(i, a)| json!({
                "id": 0, "name": a.name, "position": i, "visible": a.visible,
                "variation": a.variation, "options": a.options,
            })).collect::<Vec<_>>(),
            "default_attributes": [],
            "variations": self.variations,
            "grouped_products": [],
            "menu_order": 0,
            "meta_data": [],
            "_links": self.links(base),
        });
        merge(head, rest)
    }

    fn render_variation(&self, base: &str) -> Value {
        json!({
            "id": self.id,
            "date_created": local_date(self.created),
            "date_created_gmt": wc_date(self.created),
            "date_modified": local_date(self.modified),
            "date_modified_gmt": wc_date(self.modified),
            "description": self.description,
            "permalink": format!("{base}/product/{}/?variation_id={}", self.parent_id, self.id),
            "sku": self.sku,
            "price": self.regular_price,
            "regular_price": self.regular_price,
            "sale_price": "",
            "date_on_sale_from": null,
            "date_on_sale_from_gmt": null,
            "date_on_sale_to": null,
            "date_on_sale_to_gmt": null,
            "on_sale": false,
            "status": self.status,
            "purchasable": !self.regular_price.is_empty(),
            "virtual": false,
            "downloadable": false,
            "downloads": [],
            "download_limit": -1,
            "download_expiry": -1,
            "tax_status": "taxable",
            "tax_class": "",
            "manage_stock": self.manage_stock,
            "stock_quantity": if self.manage_stock { json!(self.stock_quantity) } else { Value::Null },
            "stock_status": self.stock_status(),
            "backorders": "no",
            "backorders_allowed": false,
            "backordered": false,
            "weight": "",
            "dimensions": {"length": "", "width": "", "height": ""},
            "shipping_class": "",
            "shipping_class_id": 0,
            "image": self.images.first().map(|s| self.image(0, s)).unwrap_or(Value::Null),
            "attributes": self.options.iter().map(|(n, o)| json!({"id": 0, "name": n, "option": o})).collect::<Vec<_>>(),
            "menu_order": 0,
            "meta_data": [],
            "_links": self.links(base),
        })
    }
}

impl Order {
    fn total_cents(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| l.price_cents * i64::from(l.quantity))
            .sum()
    }

    /// The order as `GET /orders/{id}` renders it.
    pub(crate) fn render(&self, currency: &str) -> Value {
        let total = fmt_cents(self.total_cents());
        let opt = |t: Option<DateTime<Utc>>, f: fn(DateTime<Utc>) -> String| match t {
            Some(t) => json!(f(t)),
            None => Value::Null,
        };
        let address = json!({
            "first_name": "Sandbox", "last_name": "Buyer", "company": "", "address_1": "1 Test Street",
            "address_2": "", "city": "San Francisco", "state": "CA", "postcode": "94103", "country": "US",
        });
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| {
                let sub = fmt_cents(l.price_cents * i64::from(l.quantity));
                json!({
                    "id": l.id, "name": l.name, "product_id": l.product_id,
                    "variation_id": l.variation_id, "quantity": l.quantity, "tax_class": "",
                    "subtotal": sub, "subtotal_tax": "0.00", "total": sub, "total_tax": "0.00",
                    "taxes": [], "meta_data": [], "sku": l.sku,
                    // Documented as a number ("price": 6 in the examples).
                    "price": l.price_cents as f64 / 100.0,
                })
            })
            .collect();
        let mut billing = address.clone();
        billing["email"] = json!("buyer@example.com");
        billing["phone"] = json!("(555) 555-5555");
        let head = json!({
            "id": self.id,
            "parent_id": 0,
            "number": self.id.to_string(),
            "order_key": format!("wc_order_{:013x}", self.id * 7919),
            "created_via": "checkout",
            "version": "8.9.3",
            "status": self.status,
            "currency": currency,
            "date_created": local_date(self.created),
            "date_created_gmt": wc_date(self.created),
            "date_modified": local_date(self.modified),
            "date_modified_gmt": wc_date(self.modified),
            "discount_total": "0.00",
            "discount_tax": "0.00",
            "shipping_total": "0.00",
            "shipping_tax": "0.00",
            "cart_tax": "0.00",
            "total": total,
            "total_tax": "0.00",
            "prices_include_tax": false,
        });
        let rest = json!({
            "customer_id": self.customer_id,
            "customer_ip_address": "127.0.0.1",
            "customer_user_agent": "sandbox",
            "customer_note": "",
            "billing": billing,
            "shipping": address,
            "payment_method": "bacs",
            "payment_method_title": "Direct Bank Transfer",
            "transaction_id": "",
            "date_paid": opt(self.paid, local_date),
            "date_paid_gmt": opt(self.paid, wc_date),
            "date_completed": opt(self.completed, local_date),
            "date_completed_gmt": opt(self.completed, wc_date),
            "cart_hash": "",
            "meta_data": [],
            "line_items": lines,
            "tax_lines": [],
            "shipping_lines": [],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
        });
        merge(head, rest)
    }
}

/// Fields a product create or update may carry, read leniently like WordPress does (unknown
/// fields ignored), with the types checked.
#[derive(Debug, Default)]
struct Fields {
    name: Option<String>,
    kind: Option<Kind>,
    sku: Option<String>,
    status: Option<String>,
    catalog_visibility: Option<String>,
    description: Option<String>,
    regular_price: Option<String>,
    manage_stock: Option<bool>,
    stock_quantity: Option<i64>,
    images: Option<Vec<String>>,
    attributes: Option<Vec<Attribute>>,
    options: Option<Vec<(String, String)>>,
}

fn string_field(m: &Map<String, Value>, name: &str) -> Result<Option<String>, WooError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if name != "sku" => Ok(Some(n.to_string())),
        Some(_) => Err(invalid_param(
            name,
            &format!("{name} is not of type string."),
        )),
    }
}

fn parse_fields(m: &Map<String, Value>, variation: bool) -> Result<Fields, WooError> {
    let mut f = Fields {
        name: string_field(m, "name")?,
        sku: string_field(m, "sku")?,
        status: string_field(m, "status")?,
        catalog_visibility: string_field(m, "catalog_visibility")?,
        description: string_field(m, "description")?,
        regular_price: string_field(m, "regular_price")?,
        ..Fields::default()
    };
    if let Some(t) = string_field(m, "type")? {
        f.kind = Some(match t.as_str() {
            "simple" => Kind::Simple,
            "variable" => Kind::Variable,
            "grouped" | "external" => {
                return Err(invalid_param(
                    "type",
                    "the sandbox models simple and variable products only.",
                ));
            }
            _ => {
                return Err(invalid_param(
                    "type",
                    "type is not one of simple, grouped, external, and variable.",
                ));
            }
        });
    }
    if let Some(s) = &f.status
        && !POST_STATUSES.contains(&s.as_str())
    {
        return Err(invalid_param(
            "status",
            "status is not one of draft, pending, private, and publish.",
        ));
    }
    if let Some(v) = &f.catalog_visibility
        && !["visible", "catalog", "search", "hidden"].contains(&v.as_str())
    {
        return Err(invalid_param(
            "catalog_visibility",
            "catalog_visibility is not one of visible, catalog, search, and hidden.",
        ));
    }
    if let Some(p) = &f.regular_price
        && !p.is_empty()
        && parse_cents(p).is_none()
    {
        return Err(invalid_param(
            "regular_price",
            "regular_price is not a valid price.",
        ));
    }
    match m.get("manage_stock") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => f.manage_stock = Some(*b),
        Some(_) => {
            return Err(invalid_param(
                "manage_stock",
                "manage_stock is not of type boolean.",
            ));
        }
    }
    match m.get("stock_quantity") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_i64() {
            Some(q) => f.stock_quantity = Some(q),
            None => {
                return Err(invalid_param(
                    "stock_quantity",
                    "stock_quantity is not of type integer.",
                ));
            }
        },
    }
    let src_of = |v: &Value| v.get("src").and_then(Value::as_str).map(str::to_owned);
    if variation {
        if let Some(img) = m.get("image").filter(|v| !v.is_null()) {
            f.images = Some(src_of(img).into_iter().collect());
        }
        if let Some(attrs) = m.get("attributes") {
            let list = attrs
                .as_array()
                .ok_or_else(|| invalid_param("attributes", "attributes is not of type array."))?;
            let mut out = Vec::new();
            for a in list {
                let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
                let option = a.get("option").and_then(Value::as_str).unwrap_or_default();
                if name.is_empty() {
                    return Err(invalid_param("attributes", "every attribute needs a name."));
                }
                out.push((name.to_owned(), option.to_owned()));
            }
            f.options = Some(out);
        }
    } else {
        if let Some(imgs) = m.get("images") {
            let list = imgs
                .as_array()
                .ok_or_else(|| invalid_param("images", "images is not of type array."))?;
            f.images = Some(list.iter().filter_map(src_of).collect());
        }
        if let Some(attrs) = m.get("attributes") {
            let list = attrs
                .as_array()
                .ok_or_else(|| invalid_param("attributes", "attributes is not of type array."))?;
            let mut out = Vec::new();
            for a in list {
                let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
                if name.is_empty() {
                    return Err(invalid_param("attributes", "every attribute needs a name."));
                }
                out.push(Attribute {
                    name: name.to_owned(),
                    options: a
                        .get("options")
                        .and_then(Value::as_array)
                        .map(|o| {
                            o.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    variation: a.get("variation").and_then(Value::as_bool).unwrap_or(false),
                    visible: a.get("visible").and_then(Value::as_bool).unwrap_or(false),
                });
            }
            f.attributes = Some(out);
        }
    }
    Ok(f)
}

impl WooState {
    pub(crate) fn new(currency: String, base_url: String) -> Self {
        WooState {
            next_id: 10,
            next_line_id: 1,
            products: BTreeMap::new(),
            orders: BTreeMap::new(),
            currency,
            base_url,
            allow_oversell: false,
        }
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The product or variation holding `sku`.
    pub(crate) fn by_sku(&self, sku: &str) -> Option<&Product> {
        if sku.is_empty() {
            return None;
        }
        self.products.values().find(|p| p.sku == sku)
    }

    fn sku_taken(&self, sku: &str, except: Option<u64>) -> bool {
        !sku.is_empty()
            && self
                .products
                .values()
                .any(|p| p.sku == sku && Some(p.id) != except)
    }

    fn record(&self, ctx: &Ctx<'_>, p: &Product) {
        ctx.rec.write(
            MARKETPLACE,
            NewWrite {
                operation: ctx.operation,
                sku: p.sku.clone(),
                listing_ref: Some(p.listing_ref()),
                quantity: p.visible_quantity(),
                price: (!p.regular_price.is_empty())
                    .then(|| Money::new(p.regular_price.clone(), self.currency.clone())),
                visible_quantity: if p.status == "publish" {
                    p.visible_quantity()
                } else {
                    Some(0)
                },
                ..NewWrite::default()
            },
        );
    }

    fn rejection(ctx: &Ctx<'_>, sku: &str) -> Option<WooError> {
        (ctx.reject)(sku).map(|(status, error_id, message)| {
            let mut e = item_error(super::ERR_REJECTED, message, status);
            e.data.insert("error_id".into(), json!(error_id));
            e
        })
    }

    fn apply(p: &mut Product, f: Fields) {
        if let Some(v) = f.name {
            p.name = v;
        }
        if let Some(v) = f.sku {
            p.sku = v;
        }
        if let Some(v) = f.status {
            p.status = v;
        }
        if let Some(v) = f.catalog_visibility {
            p.catalog_visibility = v;
        }
        if let Some(v) = f.description {
            p.description = v;
        }
        if let Some(v) = f.regular_price {
            p.regular_price = v;
        }
        if let Some(v) = f.manage_stock {
            p.manage_stock = v;
        }
        // stock_quantity is honoured only while the product manages stock.
        if let Some(q) = f.stock_quantity
            && p.manage_stock
        {
            p.stock_quantity = Some(q);
        }
        if let Some(v) = f.images {
            p.images = v;
        }
        if let Some(v) = f.attributes {
            p.attributes = v;
        }
        if let Some(v) = f.options {
            p.options = v;
        }
    }

    /// One `create` entry of `products/batch` (or of a variations batch when `parent` is set).
    pub(crate) fn create(
        &mut self,
        ctx: &Ctx<'_>,
        body: &Value,
        parent: Option<u64>,
    ) -> Result<Value, WooError> {
        let m = body
            .as_object()
            .ok_or_else(|| item_error("rest_invalid_param", "Invalid parameter(s): body", 400))?;
        let f = parse_fields(m, parent.is_some())?;
        let sku = f.sku.clone().unwrap_or_default();
        if let Some(e) = Self::rejection(ctx, &sku) {
            return Err(e);
        }
        if self.sku_taken(&sku, None) {
            return Err(item_error(
                "product_invalid_sku",
                "Invalid or duplicated SKU.",
                400,
            ));
        }
        if parent.is_none() && f.name.as_deref().is_none_or(str::is_empty) {
            return Err(item_error(
                "woocommerce_rest_product_invalid_name",
                "A product needs a name.",
                400,
            ));
        }
        let id = self.new_id();
        let kind = if parent.is_some() {
            Kind::Variation
        } else {
            f.kind.unwrap_or(Kind::Simple)
        };
        let mut p = Product {
            id,
            parent_id: parent.unwrap_or(0),
            kind,
            name: String::new(),
            sku: String::new(),
            status: "publish".into(),
            catalog_visibility: "visible".into(),
            description: String::new(),
            regular_price: String::new(),
            manage_stock: false,
            stock_quantity: None,
            images: Vec::new(),
            attributes: Vec::new(),
            options: Vec::new(),
            variations: Vec::new(),
            total_sales: 0,
            created: ctx.now,
            modified: ctx.now,
        };
        Self::apply(&mut p, f);
        if let Some(parent) = parent {
            let parent_name = self
                .products
                .get(&parent)
                .map(|pp| pp.name.clone())
                .unwrap_or_default();
            let opts: Vec<&str> = p.options.iter().map(|(_, o)| o.as_str()).collect();
            p.name = format!("{parent_name} - {}", opts.join(", "));
            if let Some(pp) = self.products.get_mut(&parent) {
                pp.variations.push(id);
                pp.modified = ctx.now;
            }
        }
        self.record(ctx, &p);
        let out = p.render(&self.base_url.clone(), self);
        self.products.insert(id, p);
        Ok(out)
    }

    /// One `update` entry (`{"id":…}` plus fields); `parent` for variations.
    pub(crate) fn update(
        &mut self,
        ctx: &Ctx<'_>,
        body: &Value,
        parent: Option<u64>,
    ) -> Result<Value, WooError> {
        let invalid_id = || {
            if parent.is_some() {
                item_error(
                    "woocommerce_rest_product_variation_invalid_id",
                    "Invalid ID.",
                    400,
                )
            } else {
                item_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 400)
            }
        };
        let m = body.as_object().ok_or_else(invalid_id)?;
        let id = m.get("id").and_then(Value::as_u64).ok_or_else(invalid_id)?;
        let ok = self.products.get(&id).is_some_and(|p| match parent {
            Some(parent) => p.kind == Kind::Variation && p.parent_id == parent,
            None => p.kind != Kind::Variation,
        });
        if !ok {
            return Err(invalid_id());
        }
        let f = parse_fields(m, parent.is_some())?;
        let current_sku = self.products[&id].sku.clone();
        let sku = f.sku.clone().unwrap_or(current_sku);
        if let Some(e) = Self::rejection(ctx, &sku) {
            return Err(e);
        }
        if self.sku_taken(&sku, Some(id)) {
            return Err(item_error(
                "product_invalid_sku",
                "Invalid or duplicated SKU.",
                400,
            ));
        }
        let base = self.base_url.clone();
        let mut p = self.products[&id].clone();
        Self::apply(&mut p, f);
        p.modified = ctx.now;
        self.record(ctx, &p);
        self.products.insert(id, p);
        Ok(self.products[&id].render(&base, self))
    }

    /// One `delete` entry: batch deletes are forced (WooCommerce's batch handler sets
    /// `force=true`), so the post is gone, with its variations.
    pub(crate) fn delete(&mut self, id: &Value, parent: Option<u64>) -> Result<Value, WooError> {
        let code = if parent.is_some() {
            "woocommerce_rest_product_variation_invalid_id"
        } else {
            "woocommerce_rest_product_invalid_id"
        };
        let id = id
            .as_u64()
            .ok_or_else(|| item_error(code, "Invalid ID.", 404))?;
        let ok = self.products.get(&id).is_some_and(|p| match parent {
            Some(parent) => p.parent_id == parent,
            None => p.kind != Kind::Variation,
        });
        if !ok {
            return Err(item_error(code, "Invalid ID.", 404));
        }
        let base = self.base_url.clone();
        let rendered = self.products[&id].render(&base, self);
        self.remove_product(id);
        Ok(rendered)
    }

    /// Deletes a product (and its variations) or a variation.
    pub(crate) fn remove_product(&mut self, id: u64) {
        let Some(p) = self.products.remove(&id) else {
            return;
        };
        for v in p.variations {
            self.products.remove(&v);
        }
        if p.parent_id != 0
            && let Some(parent) = self.products.get_mut(&p.parent_id)
        {
            parent.variations.retain(|v| *v != id);
        }
    }

    // ---- orders -----------------------------------------------------------------------------

    /// A shopper checks out and pays: status `processing`, managed stock reduced.
    pub(crate) fn place_order(
        &mut self,
        now: DateTime<Utc>,
        lines: &[OrderLine],
    ) -> Result<u64, ControlError> {
        if lines.is_empty() {
            return Err(ControlError::Invalid("an order needs lines".into()));
        }
        let mut wanted: BTreeMap<u64, u32> = BTreeMap::new();
        for l in lines {
            if l.quantity == 0 {
                return Err(ControlError::Invalid(format!(
                    "line for {:?} has quantity 0",
                    l.sku
                )));
            }
            let p = self
                .by_sku(&l.sku)
                .ok_or_else(|| ControlError::UnknownSku(l.sku.clone()))?;
            let parent_live = p.parent_id == 0
                || self
                    .products
                    .get(&p.parent_id)
                    .is_some_and(|pp| pp.status == "publish");
            if p.kind == Kind::Variable
                || p.status != "publish"
                || !parent_live
                || p.regular_price.is_empty()
            {
                return Err(ControlError::NotListed(l.sku.clone()));
            }
            let total = wanted.entry(p.id).or_default();
            *total = total.saturating_add(l.quantity);
            if let Some(available) = p.visible_quantity()
                && available < *total
                && !self.allow_oversell
            {
                return Err(ControlError::InsufficientQuantity {
                    sku: l.sku.clone(),
                    available,
                    requested: *total,
                });
            }
        }
        let id = self.new_id();
        let mut order_lines = Vec::new();
        for l in lines {
            let pid = self.by_sku(&l.sku).map(|p| p.id).unwrap_or_default();
            let line_id = self.next_line_id;
            self.next_line_id += 1;
            let p = self.products.get_mut(&pid).expect("checked above");
            if p.manage_stock {
                p.stock_quantity = Some(p.stock_quantity.unwrap_or(0) - i64::from(l.quantity));
            }
            p.total_sales += u64::from(l.quantity);
            let (product_id, variation_id) = if p.kind == Kind::Variation {
                (p.parent_id, p.id)
            } else {
                (p.id, 0)
            };
            order_lines.push(Line {
                id: line_id,
                product_id,
                variation_id,
                name: p.name.clone(),
                sku: p.sku.clone(),
                quantity: l.quantity,
                price_cents: parse_cents(&p.regular_price).unwrap_or(0),
            });
        }
        self.orders.insert(
            id,
            Order {
                id,
                status: "processing".into(),
                created: now,
                modified: now,
                paid: Some(now),
                completed: None,
                lines: order_lines,
                customer_id: 0,
                stock_reduced: true,
            },
        );
        Ok(id)
    }

    /// Moves an order to `status`. `cancelled` (and `refunded`/`failed` before shipping) restores
    /// the stock once, as WooCommerce does; `completed` stamps `date_completed`.
    pub(crate) fn set_order_status(
        &mut self,
        now: DateTime<Utc>,
        id: &str,
        status: &str,
    ) -> Result<(), ControlError> {
        const STATUSES: [&str; 8] = [
            "pending",
            "processing",
            "on-hold",
            "completed",
            "cancelled",
            "refunded",
            "failed",
            "trash",
        ];
        if !STATUSES.contains(&status) {
            return Err(ControlError::Invalid(format!(
                "unknown order status {status:?}"
            )));
        }
        let n: u64 = id
            .parse()
            .map_err(|_| ControlError::UnknownOrder(id.to_owned()))?;
        let order = self
            .orders
            .get(&n)
            .cloned()
            .ok_or_else(|| ControlError::UnknownOrder(id.to_owned()))?;
        if order.status == "cancelled" && status == "cancelled" {
            return Err(ControlError::InvalidTransition {
                id: id.to_owned(),
                state: order.status,
                action: "cancel",
            });
        }
        let restock = matches!(status, "cancelled" | "refunded" | "failed") && order.stock_reduced;
        if restock {
            for l in &order.lines {
                let pid = if l.variation_id != 0 {
                    l.variation_id
                } else {
                    l.product_id
                };
                if let Some(p) = self.products.get_mut(&pid)
                    && p.manage_stock
                {
                    p.stock_quantity = Some(p.stock_quantity.unwrap_or(0) + i64::from(l.quantity));
                }
            }
        }
        let o = self.orders.get_mut(&n).expect("present");
        o.stock_reduced &= !restock;
        o.status = status.to_owned();
        // Second resolution, strictly increasing: a change is always visible to modified_after.
        o.modified = now.max(o.modified + TimeDelta::seconds(1));
        if status == "completed" {
            o.completed = Some(o.modified);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_round_trip() {
        assert_eq!(parse_cents("12.5"), Some(1250));
        assert_eq!(parse_cents("12"), Some(1200));
        assert_eq!(parse_cents(".99"), Some(99));
        assert_eq!(parse_cents("1.999"), None);
        assert_eq!(parse_cents("1e3"), None);
        assert_eq!(parse_cents(""), None);
        assert_eq!(fmt_cents(1250), "12.50");
        assert_eq!(fmt_cents(5), "0.05");
        assert_eq!(slug("Blue T-Shirt  (L)"), "blue-t-shirt-l");
    }
}
