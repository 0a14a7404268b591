//! Vendure's GraphQL documents and bodies ⇄ the neutral model. Pure: no I/O.
//!
//! Every document is a constant with `$variables`; nothing is ever interpolated into one.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::common::http::truncate;
use crate::error::ConnectorError;
use crate::model::{ChannelOrder, Currency, Money, OrderLine, OrderStatus, Sku};

/// `login` with the native strategy; the session token is the `vendure-auth-token` header.
pub const LOGIN: &str = "mutation OmnistockLogin($username: String!, $password: String!) {
  login(username: $username, password: $password, rememberMe: true) {
    __typename
    ... on CurrentUser { id identifier }
    ... on ErrorResult { errorCode message }
  }
}";

/// The fields of a variant every variant document selects (the test
/// `documents_read_the_same_variant_fields` keeps them in step).
#[cfg(test)]
const VARIANT_FIELDS: &str = "id sku enabled price currencyCode stockOnHand stockAllocated \
     stockLevels { stockLocationId stockOnHand stockAllocated }";

/// Variants by SKU: `options` = [`variants_by_sku_options`].
pub const VARIANTS_BY_SKU: &str = "query OmnistockVariantsBySku($options: ProductVariantListOptions) {
  productVariants(options: $options) {
    totalItems
    items { id sku enabled price currencyCode stockOnHand stockAllocated stockLevels { stockLocationId stockOnHand stockAllocated } }
  }
}";

/// One page of every variant: `options` = [`variants_page_options`].
pub const VARIANTS_PAGE: &str = "query OmnistockVariantsPage($options: ProductVariantListOptions) {
  productVariants(options: $options) {
    totalItems
    items { id sku enabled price currencyCode stockOnHand stockAllocated stockLevels { stockLocationId stockOnHand stockAllocated } }
  }
}";

/// Absolute stock (and price, enabled) for many variants in one transaction.
pub const UPDATE_VARIANTS: &str = "mutation OmnistockUpdateVariants($input: [UpdateProductVariantInput!]!) {
  updateProductVariants(input: $input) {
    id sku enabled price currencyCode stockOnHand stockAllocated stockLevels { stockLocationId stockOnHand stockAllocated }
  }
}";

/// A product to hang a new variant on.
pub const CREATE_PRODUCT: &str = "mutation OmnistockCreateProduct($input: CreateProductInput!) {
  createProduct(input: $input) { id slug }
}";

/// The variant (SKU, price, stock) of a new product.
pub const CREATE_VARIANTS: &str = "mutation OmnistockCreateVariants($input: [CreateProductVariantInput!]!) {
  createProductVariants(input: $input) {
    id sku enabled price currencyCode stockOnHand stockAllocated stockLevels { stockLocationId stockOnHand stockAllocated }
  }
}";

/// Placed orders changed after a time: `options` = [`orders_options`].
pub const ORDERS: &str = "query OmnistockOrders($options: OrderListOptions) {
  orders(options: $options) {
    totalItems
    items {
      id code state orderPlacedAt createdAt updatedAt totalWithTax currencyCode
      customer { id }
      lines { id quantity unitPriceWithTax productVariant { id sku } }
    }
  }
}";

/// The cheapest authenticated read (healthcheck), with the channel's currency.
pub const HEALTH: &str = "query OmnistockHealth {
  activeChannel { id code defaultCurrencyCode }
  productVariants(options: { take: 1 }) { totalItems }
}";

/// The channel's currency (prices of new variants are in it).
pub const ACTIVE_CHANNEL: &str = "query OmnistockActiveChannel {
  activeChannel { id code defaultCurrencyCode }
}";

/// `ProductVariantListOptions` for SKUs: `sku in [...]`, lowest id first.
pub fn variants_by_sku_options(skus: &[&str], skip: usize, take: usize) -> Value {
    json!({"filter": {"sku": {"in": skus}}, "skip": skip, "take": take, "sort": {"id": "ASC"}})
}

/// `ProductVariantListOptions` for one page of every variant, by id.
pub fn variants_page_options(skip: usize, take: usize) -> Value {
    json!({"skip": skip, "take": take, "sort": {"id": "ASC"}})
}

/// `OrderListOptions`: placed orders (`active = false`) updated strictly after `after`, oldest
/// change first.
pub fn orders_options(after: &str, skip: usize, take: usize) -> Value {
    json!({
        "filter": {"updatedAt": {"after": after}, "active": {"eq": false}},
        "sort": {"updatedAt": "ASC"},
        "skip": skip,
        "take": take,
    })
}

// ---- the GraphQL envelope -----------------------------------------------------------------------

/// `{"data": …, "errors": […]}`.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: serde::de::DeserializeOwned"))]
pub struct GqlResponse<T> {
    /// The operation's result (`null` when it failed as a whole).
    #[serde(default)]
    pub data: Option<T>,
    /// Errors, if any.
    #[serde(default)]
    pub errors: Vec<GqlError>,
}

/// One GraphQL error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GqlError {
    /// Human-readable message.
    pub message: String,
    /// The field path it concerns (`["updateProductVariants"]`).
    pub path: Vec<Value>,
    /// `{"code": "FORBIDDEN" | "USER_INPUT_ERROR" | "ENTITY_NOT_FOUND" | …}`.
    pub extensions: Option<Value>,
}

impl GqlError {
    /// `extensions.code`.
    pub fn code(&self) -> Option<&str> {
        self.extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
    }
}

/// Codes of errors that concern what was sent (the same request fails again).
const INPUT_CODES: [&str; 5] = [
    "USER_INPUT_ERROR",
    "BAD_USER_INPUT",
    "ENTITY_NOT_FOUND",
    "GRAPHQL_VALIDATION_FAILED",
    "GRAPHQL_PARSE_FAILED",
];

/// True when the errors are about the input (one item of a batch may be the cause).
pub fn is_input_error(errors: &[GqlError]) -> bool {
    !errors.is_empty()
        && errors.iter().all(|e| {
            e.code().is_none_or(|c| INPUT_CODES.contains(&c))
                && e.code() != Some("GRAPHQL_VALIDATION_FAILED")
                && e.code() != Some("GRAPHQL_PARSE_FAILED")
        })
}

/// The message of a list of errors (the first three, bounded).
pub fn errors_message(errors: &[GqlError]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .take(3)
        .map(|e| match e.code() {
            Some(code) => format!("{}: {}", truncate(code, 60), truncate(&e.message, 200)),
            None => truncate(&e.message, 200),
        })
        .collect();
    parts.join("; ")
}

/// A whole-call error from GraphQL errors: `FORBIDDEN` → Auth; `INTERNAL_SERVER_ERROR` (or a
/// code we do not know) → Transient; input and validation errors → Permanent with the code.
pub fn classify_errors(errors: &[GqlError]) -> ConnectorError {
    let message = format!("Vendure: {}", errors_message(errors));
    let first = errors.iter().find_map(GqlError::code);
    match first {
        Some("FORBIDDEN" | "UNAUTHORIZED") => ConnectorError::Auth {
            status: Some(200),
            message,
        },
        Some(code) if INPUT_CODES.contains(&code) || code == "CHANNEL_NOT_FOUND" => {
            ConnectorError::Permanent {
                status: None,
                code: Some(code.to_owned()),
                message,
            }
        }
        // An error without a code is a database constraint or similar about the input.
        None => ConnectorError::Permanent {
            status: None,
            code: None,
            message,
        },
        Some(_) => ConnectorError::Transient {
            status: None,
            message,
        },
    }
}

// ---- bodies -------------------------------------------------------------------------------------

/// `data` of [`LOGIN`].
#[derive(Debug, Deserialize)]
pub struct LoginResult {
    /// `CurrentUser | InvalidCredentialsError | NativeAuthStrategyError`.
    pub login: Option<LoginUnion>,
}

/// The login union, flattened.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginUnion {
    /// CurrentUser id.
    #[serde(default)]
    pub id: Option<String>,
    /// ErrorResult code.
    #[serde(default)]
    pub error_code: Option<String>,
    /// ErrorResult message.
    #[serde(default)]
    pub message: Option<String>,
}

/// A stock level of a variant at one location.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StockLevel {
    /// Stock location id.
    pub stock_location_id: String,
    /// Units on hand there.
    pub stock_on_hand: i64,
    /// Units allocated to placed, unfulfilled orders there.
    #[serde(default)]
    pub stock_allocated: i64,
}

/// A product variant as the connector reads it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    /// Variant id.
    pub id: String,
    /// SKU (Vendure does not enforce uniqueness).
    pub sku: String,
    /// Shown in the shop.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Price in minor units of `currency_code`.
    #[serde(default)]
    pub price: Option<i64>,
    /// The channel's currency for this price.
    #[serde(default)]
    pub currency_code: Option<String>,
    /// On hand, summed over locations.
    #[serde(default)]
    pub stock_on_hand: i64,
    /// Allocated, summed over locations.
    #[serde(default)]
    pub stock_allocated: i64,
    /// Per location.
    #[serde(default)]
    pub stock_levels: Vec<StockLevel>,
}

fn yes() -> bool {
    true
}

impl Variant {
    /// (on hand, allocated) at `location`, or the totals when no location is configured.
    pub fn stock_at(&self, location: Option<&str>) -> (i64, i64) {
        match location {
            None => (self.stock_on_hand, self.stock_allocated),
            Some(loc) => self
                .stock_levels
                .iter()
                .find(|l| l.stock_location_id == loc)
                .map_or((0, 0), |l| (l.stock_on_hand, l.stock_allocated)),
        }
    }

    /// What buyers can still buy from `location`: on hand minus allocated, at least 0.
    pub fn saleable(&self, location: Option<&str>) -> u32 {
        let (on_hand, allocated) = self.stock_at(location);
        u32::try_from((on_hand - allocated).max(0)).unwrap_or(u32::MAX)
    }

    /// The price as neutral money, when readable.
    pub fn money(&self) -> Option<Money> {
        Some(Money {
            minor: self.price?,
            currency: Currency::parse(self.currency_code.as_deref()?).ok()?,
        })
    }
}

/// A paginated list (`productVariants`, `orders`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    /// Items on this page.
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    /// Items over all pages.
    #[serde(default)]
    pub total_items: u64,
}

/// `data` of [`VARIANTS_BY_SKU`] and [`VARIANTS_PAGE`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantsData {
    /// The list.
    pub product_variants: List<Variant>,
}

/// `data` of [`HEALTH`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthData {
    /// The channel.
    pub active_channel: ActiveChannel,
    /// Only `totalItems`.
    pub product_variants: List<Value>,
}

/// `data` of [`ACTIVE_CHANNEL`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveChannelData {
    /// The channel.
    pub active_channel: ActiveChannel,
}

/// The channel the session works in.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveChannel {
    /// Channel code (`__default_channel__`).
    #[serde(default)]
    pub code: String,
    /// Currency of prices set without a currency.
    pub default_currency_code: String,
}

/// `data` of [`UPDATE_VARIANTS`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateData {
    /// One entry per input, in input order (`null` for a variant Vendure could not return).
    pub update_product_variants: Vec<Option<Variant>>,
}

/// `data` of [`CREATE_PRODUCT`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateProductData {
    /// The product.
    pub create_product: IdOnly,
}

/// `{ id }`.
#[derive(Debug, Deserialize)]
pub struct IdOnly {
    /// The id.
    pub id: String,
}

/// `data` of [`CREATE_VARIANTS`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateVariantsData {
    /// The created variants, in input order.
    pub create_product_variants: Vec<Option<Variant>>,
}

/// `data` of [`ORDERS`].
#[derive(Debug, Deserialize)]
pub struct OrdersData {
    /// The list.
    pub orders: List<Order>,
}

/// An order as the connector reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Order code (what the customer and the merchant see); omnistock's external id.
    pub code: String,
    /// State in Vendure's order process.
    pub state: String,
    /// When the customer completed checkout.
    #[serde(default)]
    pub order_placed_at: Option<String>,
    /// When the order (cart) was created.
    pub created_at: String,
    /// Last change (1-second resolution on SQLite).
    pub updated_at: String,
    /// Total with tax, minor units.
    #[serde(default)]
    pub total_with_tax: Option<i64>,
    /// Currency of the order.
    #[serde(default)]
    pub currency_code: Option<String>,
    /// The customer (guest checkouts create one too).
    #[serde(default)]
    pub customer: Option<IdOnly>,
    /// Lines.
    #[serde(default)]
    pub lines: Vec<Line>,
}

/// An order line.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// Line id.
    pub id: String,
    /// Units (after cancellations of part of the line).
    pub quantity: u32,
    /// Unit price with tax, minor units.
    #[serde(default)]
    pub unit_price_with_tax: Option<i64>,
    /// The variant bought.
    #[serde(default)]
    pub product_variant: Option<LineVariant>,
}

/// The variant of a line.
#[derive(Debug, Deserialize)]
pub struct LineVariant {
    /// SKU.
    #[serde(default)]
    pub sku: Option<String>,
}

// ---- orders -------------------------------------------------------------------------------------

/// Maps a state of Vendure's default order process (`DefaultOrderProcess`, Vendure 3):
///
/// | Vendure state | neutral | why |
/// |---|---|---|
/// | `Created`, `Draft`, `AddingItems`, `ArrangingPayment` | — (skipped) | a cart or an admin draft, not an order yet; Vendure allocates no stock |
/// | `PaymentAuthorized`, `PaymentSettled` | Paid | placed; Vendure allocates the stock |
/// | `Modifying`, `ArrangingAdditionalPayment` | Paid | an admin edits a placed order; stock stays allocated |
/// | `PartiallyShipped`, `Shipped`, `PartiallyDelivered`, `Delivered` | Shipped | a fulfilment was created: Vendure lowered stockOnHand |
/// | `Cancelled` | Cancelled | allocation released (Vendure restocks) |
///
/// A custom state (a plugin's order process) is `None` here; the caller treats it as Paid (stock
/// stays reserved, the safe side) and counts it.
pub fn order_status(state: &str) -> Option<Option<OrderStatus>> {
    Some(match state {
        "Created" | "Draft" | "AddingItems" | "ArrangingPayment" => None,
        "PaymentAuthorized" | "PaymentSettled" | "Modifying" | "ArrangingAdditionalPayment" => {
            Some(OrderStatus::Paid)
        }
        "PartiallyShipped" | "Shipped" | "PartiallyDelivered" | "Delivered" => {
            Some(OrderStatus::Shipped)
        }
        "Cancelled" => Some(OrderStatus::Cancelled),
        _ => return None,
    })
}

/// A mapped order and what was left out.
#[derive(Debug)]
pub struct MappedOrder {
    /// The order; `None` for a cart or draft.
    pub order: Option<ChannelOrder>,
    /// Lines without a usable SKU.
    pub lines_without_sku: u64,
    /// The state was not one of Vendure's defaults.
    pub custom_state: bool,
}

/// Parses Vendure's ISO-8601 `DateTime` into unix milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("unreadable date {:?}: {e}", truncate(text, 40)))
}

/// `since_ms` as the `after` bound of the orders filter: whole seconds (what Vendure stores on
/// SQLite and MySQL), moved back by `overlap_secs` so that an order updated within the same second
/// as the previous poll's newest one is read again (the daemon deduplicates by id and version).
pub fn orders_after(since_ms: i64, overlap_secs: i64) -> String {
    let secs = since_ms.div_euclid(1000).saturating_sub(overlap_secs);
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or(chrono::DateTime::UNIX_EPOCH)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Maps one order.
pub fn channel_order(o: &Order) -> Result<MappedOrder, String> {
    let (status, custom_state) = match order_status(&o.state) {
        Some(s) => (s, false),
        None => (Some(OrderStatus::Paid), true),
    };
    let Some(status) = status else {
        return Ok(MappedOrder {
            order: None,
            lines_without_sku: 0,
            custom_state,
        });
    };
    let currency = o
        .currency_code
        .as_deref()
        .and_then(|c| Currency::parse(c).ok());
    let money = |minor: Option<i64>| {
        Some(Money {
            minor: minor?,
            currency: currency?,
        })
    };
    let mut lines = Vec::with_capacity(o.lines.len());
    let mut without = 0u64;
    for l in &o.lines {
        let sku = l
            .product_variant
            .as_ref()
            .and_then(|v| v.sku.as_deref())
            .and_then(|s| Sku::parse(s).ok());
        let Some(sku) = sku else {
            without += 1;
            continue;
        };
        if l.quantity == 0 {
            // Fully cancelled line (Vendure keeps it at quantity 0).
            continue;
        }
        lines.push(OrderLine {
            line_id: l.id.clone(),
            sku,
            quantity: l.quantity,
            unit_price: money(l.unit_price_with_tax),
        });
    }
    let updated = parse_time(&o.updated_at)?;
    let placed = match &o.order_placed_at {
        Some(t) => parse_time(t)?,
        None => parse_time(&o.created_at)?,
    };
    Ok(MappedOrder {
        order: Some(ChannelOrder {
            external_id: o.code.clone(),
            status,
            placed_at_ms: placed,
            remote_updated_at_ms: updated,
            total: money(o.total_with_tax),
            buyer_ref: o.customer.as_ref().map(|c| format!("customer:{}", c.id)),
            lines,
            fulfilled_by_channel: false,
        }),
        lines_without_sku: without,
        custom_state,
    })
}

// ---- inputs -------------------------------------------------------------------------------------

/// The stock part of an `UpdateProductVariantInput`/`CreateProductVariantInput`: `stockOnHand` at
/// the default location, or `stockLevels` at the configured one.
pub fn stock_input(
    input: &mut serde_json::Map<String, Value>,
    location: Option<&str>,
    on_hand: i64,
) {
    match location {
        None => {
            input.insert("stockOnHand".into(), json!(on_hand));
        }
        Some(loc) => {
            input.insert(
                "stockLevels".into(),
                json!([{"stockLocationId": loc, "stockOnHand": on_hand}]),
            );
        }
    }
}

/// A URL slug from a title: lower-case ASCII letters and digits, runs of anything else as one `-`
/// (Vendure makes it unique by appending `-2`, `-3` … when taken).
pub fn slug(title: &str, sku: &str) -> String {
    let mut out = String::new();
    for c in title.chars().chain(" ".chars()).chain(sku.chars()) {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let cut: String = out.chars().take(100).collect();
    if cut.is_empty() {
        "product".to_owned()
    } else {
        cut.trim_end_matches('-').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_default_order_process() {
        assert_eq!(order_status("AddingItems"), Some(None));
        assert_eq!(order_status("ArrangingPayment"), Some(None));
        assert_eq!(
            order_status("PaymentSettled"),
            Some(Some(OrderStatus::Paid))
        );
        assert_eq!(
            order_status("PaymentAuthorized"),
            Some(Some(OrderStatus::Paid))
        );
        assert_eq!(order_status("Modifying"), Some(Some(OrderStatus::Paid)));
        assert_eq!(
            order_status("PartiallyShipped"),
            Some(Some(OrderStatus::Shipped))
        );
        assert_eq!(order_status("Delivered"), Some(Some(OrderStatus::Shipped)));
        assert_eq!(
            order_status("Cancelled"),
            Some(Some(OrderStatus::Cancelled))
        );
        assert_eq!(order_status("AwaitingPickup"), None);
    }

    #[test]
    fn the_after_bound_is_whole_seconds_minus_the_overlap() {
        // 2026-01-01T00:00:12.345Z
        let ms = 1_767_225_612_345;
        assert_eq!(orders_after(ms, 1), "2026-01-01T00:00:11.000Z");
        assert_eq!(orders_after(ms, 0), "2026-01-01T00:00:12.000Z");
        assert_eq!(orders_after(0, 5), "1969-12-31T23:59:55.000Z");
    }

    #[test]
    fn slugs_are_plain() {
        assert_eq!(slug("Blue Mug!", "MUG-BLUE"), "blue-mug-mug-blue");
        assert_eq!(slug("Ünïcode", "É"), "n-code");
        assert_eq!(slug("", "É"), "product");
    }

    #[test]
    fn errors_classify_by_code() {
        use crate::error::ErrorClass;
        let err = |code: Option<&str>| GqlError {
            message: "m".into(),
            path: vec![],
            extensions: code.map(|c| json!({ "code": c })),
        };
        assert_eq!(
            classify_errors(&[err(Some("FORBIDDEN"))]).class(),
            ErrorClass::Auth
        );
        assert_eq!(
            classify_errors(&[err(Some("INTERNAL_SERVER_ERROR"))]).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            classify_errors(&[err(Some("USER_INPUT_ERROR"))]).class(),
            ErrorClass::Permanent
        );
        assert!(is_input_error(&[err(Some("USER_INPUT_ERROR"))]));
        assert!(is_input_error(&[err(None)]));
        assert!(!is_input_error(&[err(Some("GRAPHQL_VALIDATION_FAILED"))]));
        assert!(!is_input_error(&[err(Some("INTERNAL_SERVER_ERROR"))]));
        assert!(!is_input_error(&[]));
    }

    #[test]
    fn documents_read_the_same_variant_fields() {
        for doc in [
            VARIANTS_BY_SKU,
            VARIANTS_PAGE,
            UPDATE_VARIANTS,
            CREATE_VARIANTS,
        ] {
            assert!(doc.contains(VARIANT_FIELDS), "{doc}");
        }
    }
}
