//! Shopify GraphQL ⇄ neutral model, with no I/O: the documents the connector sends (every input
//! travels in `variables`; only the search string carries data, escaped by [`sku_search`]), the
//! answers' shapes, userError field paths, and the order status mapping.

use serde::Deserialize;
use serde_json::Value;

use crate::common::http::truncate;
use crate::model::{ChannelOrder, Currency, Money, OrderLine, OrderStatus, Sku};

/// A GraphQL document and the connector's estimate of its requested cost (used before the first
/// answer teaches the real one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Doc {
    /// A short name for logs and the learned-cost table.
    pub name: &'static str,
    /// The document.
    pub query: &'static str,
    /// Estimated requested cost.
    pub cost: u64,
    /// A mutation whose resend cannot apply twice (`@idempotent` key in its variables), so a
    /// connection lost after sending may be retried with the same body.
    pub replay_safe: bool,
}

/// SKUs per lookup query (the search string stays short; one page holds every match).
pub(crate) const LOOKUP_CHUNK: usize = 50;
/// Variants per snapshot page.
pub(crate) const SNAPSHOT_PAGE: u64 = 100;
/// Orders per page: 25 orders × (1 + money 2 + 30 lines + 2) ≈ 877 points, under the 1,000 cap.
pub(crate) const ORDERS_PAGE: u64 = 25;
/// Line items read with each order; more are paged with [`ORDER_LINES`].
pub(crate) const LINES_PAGE: u64 = 30;
/// Line items per follow-up page.
pub(crate) const MORE_LINES_PAGE: u64 = 100;

/// SKU → variant, inventory item, product and available quantity at the location.
pub(crate) const LOOKUP: Doc = Doc {
    name: "lookupVariants",
    query: concat!(
        "query LookupVariants($first: Int!, $query: String!, $locationId: ID!) { productVariants(first: $first, query: $query) { nodes { ",
        "id sku price product { id status variantsCount { count } } inventoryItem { id tracked inventoryLevel(locationId: $locationId) { quantities(names: [\"available\"]) { name quantity } } }",
        " } } }"
    ),
    cost: 2 + LOOKUP_CHUNK as u64 * 7,
    replay_safe: false,
};

/// Every variant, paged (reconcile).
pub(crate) const SNAPSHOT: Doc = Doc {
    name: "snapshotVariants",
    query: concat!(
        "query SnapshotVariants($first: Int!, $after: String, $locationId: ID!) { productVariants(first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { ",
        "id sku price product { id status variantsCount { count } } inventoryItem { id tracked inventoryLevel(locationId: $locationId) { quantities(names: [\"available\"]) { name quantity } } }",
        " } } }"
    ),
    cost: 2 + SNAPSHOT_PAGE * 7,
    replay_safe: false,
};

/// Re-reads `available` of inventory items at the location (after `CHANGE_FROM_QUANTITY_STALE`).
pub(crate) const READ_LEVELS: Doc = Doc {
    name: "readLevels",
    query: "query ReadLevels($ids: [ID!]!, $locationId: ID!) { nodes(ids: $ids) { ... on InventoryItem { id inventoryLevel(locationId: $locationId) { quantities(names: [\"available\"]) { name quantity } } } } }",
    cost: 250 * 3,
    replay_safe: false,
};

/// Sets absolute `available` quantities with compare-and-set and an idempotency key (2026-04).
pub(crate) const SET_QUANTITIES: Doc = Doc {
    name: "inventorySetQuantities",
    query: "mutation SetQuantities($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) { inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) { inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } } userErrors { code field message } } }",
    cost: 10,
    replay_safe: true,
};

/// Stocks an inventory item at the location.
pub(crate) const ACTIVATE: Doc = Doc {
    name: "inventoryActivate",
    query: "mutation Activate($inventoryItemId: ID!, $locationId: ID!) { inventoryActivate(inventoryItemId: $inventoryItemId, locationId: $locationId) { inventoryLevel { id quantities(names: [\"available\"]) { name quantity } } userErrors { field message } } }",
    cost: 10,
    replay_safe: false,
};

/// Creates or updates a product with its variants.
pub(crate) const PRODUCT_SET: Doc = Doc {
    name: "productSet",
    query: "mutation ProductSet($input: ProductSetInput!, $synchronous: Boolean!) { productSet(input: $input, synchronous: $synchronous) { product { id status variants(first: 250) { nodes { id sku inventoryItem { id } } } } userErrors { code field message } } }",
    cost: 10,
    replay_safe: false,
};

/// The variants of a product (kept when one of them is updated: productSet replaces the list).
pub(crate) const PRODUCT_VARIANTS: Doc = Doc {
    name: "productVariantsOf",
    query: "query ProductVariantsOf($id: ID!) { product(id: $id) { id variants(first: 250) { nodes { id sku selectedOptions { name value } } } } }",
    cost: 1 + 2 + 250 * 2,
    replay_safe: false,
};

/// Sets a product's status (delist = DRAFT).
pub(crate) const PRODUCT_UPDATE: Doc = Doc {
    name: "productUpdate",
    query: "mutation ProductUpdate($product: ProductUpdateInput!) { productUpdate(product: $product) { product { id status } userErrors { field message } } }",
    cost: 10,
    replay_safe: false,
};

/// Orders updated since a time, oldest update first.
pub(crate) const ORDERS: Doc = Doc {
    name: "orders",
    query: "query Orders($first: Int!, $after: String, $query: String!, $lines: Int!) { orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) { pageInfo { hasNextPage endCursor } nodes { id name createdAt updatedAt cancelledAt displayFinancialStatus displayFulfillmentStatus totalPriceSet { shopMoney { amount currencyCode } } lineItems(first: $lines) { pageInfo { hasNextPage endCursor } nodes { id sku quantity currentQuantity } } } } }",
    cost: 2 + ORDERS_PAGE * (1 + 2 + 2 + LINES_PAGE),
    replay_safe: false,
};

/// The rest of an order's line items.
pub(crate) const ORDER_LINES: Doc = Doc {
    name: "orderLines",
    query: "query OrderLines($id: ID!, $after: String, $first: Int!) { order(id: $id) { id lineItems(first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { id sku quantity currentQuantity } } } }",
    cost: 1 + 2 + MORE_LINES_PAGE,
    replay_safe: false,
};

/// Healthcheck and the shop currency.
pub(crate) const SHOP: Doc = Doc {
    name: "shop",
    query: "query Shop($locationId: ID!) { shop { name currencyCode } location(id: $locationId) { id name isActive } }",
    cost: 2,
    replay_safe: false,
};

/// Every document (the contract test checks each against the schema).
#[cfg(test)]
pub(crate) const ALL_DOCS: [Doc; 11] = [
    LOOKUP,
    SNAPSHOT,
    READ_LEVELS,
    SET_QUANTITIES,
    ACTIVATE,
    PRODUCT_SET,
    PRODUCT_VARIANTS,
    PRODUCT_UPDATE,
    ORDERS,
    ORDER_LINES,
    SHOP,
];

/// `sku:"A" OR sku:"B\"C"`: every SKU quoted, `\` and `"` escaped, so a SKU cannot add terms,
/// operators or wildcards to the search.
pub(crate) fn sku_search<'a>(skus: impl IntoIterator<Item = &'a str>) -> String {
    skus.into_iter()
        .map(|s| {
            let mut q = String::with_capacity(s.len() + 6);
            q.push_str("sku:\"");
            for c in s.chars() {
                if matches!(c, '\\' | '"') {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            q
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// `updated_at:>='2026-05-01T00:00:00Z' status:any` for orders updated at or after `since_ms`
/// (second precision, rounded down: a few orders come twice, none is missed).
pub(crate) fn orders_search(since_ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(since_ms.max(0))
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ");
    format!("updated_at:>='{at}' status:any")
}

/// A userError.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UserError {
    pub code: Option<String>,
    pub field: Option<Vec<String>>,
    pub message: String,
}

impl UserError {
    /// The list index after `list` in the field path (`["input","quantities","3","quantity"]`
    /// with `list = "quantities"` → 3).
    pub(crate) fn index_in(&self, list: &str) -> Option<usize> {
        let f = self.field.as_ref()?;
        let pos = f.iter().position(|p| p == list)?;
        f.get(pos + 1)?.parse().ok()
    }

    /// `[CODE] message (field.path)`, bounded.
    pub(crate) fn describe(&self) -> String {
        let code = self.code.as_deref().unwrap_or("USER_ERROR");
        let field = self
            .field
            .as_ref()
            .map(|f| format!(" ({})", f.join(".")))
            .unwrap_or_default();
        truncate(&format!("[{code}] {}{field}", self.message), 300)
    }
}

/// Reads `payload.userErrors` of a mutation (missing = none).
pub(crate) fn user_errors(payload: &Value) -> Result<Vec<UserError>, String> {
    match payload.get("userErrors") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| format!("unreadable userErrors: {e}"))
        }
    }
}

/// One variant as LOOKUP and SNAPSHOT read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VariantNode {
    pub id: String,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub price: Option<String>,
    #[serde(default)]
    pub product: Option<ProductNode>,
    #[serde(default)]
    pub inventory_item: Option<ItemNode>,
}

/// A product as the variant queries read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProductNode {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub variants_count: Option<Count>,
}

/// `{count}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Count {
    pub count: u64,
}

/// An inventory item with its level at the location.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemNode {
    pub id: String,
    #[serde(default)]
    pub inventory_level: Option<LevelNode>,
}

/// An inventory level's quantities.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LevelNode {
    #[serde(default)]
    pub quantities: Vec<QuantityNode>,
}

/// `{name, quantity}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct QuantityNode {
    pub name: String,
    pub quantity: i64,
}

impl ItemNode {
    /// `available` at the location; `None` when the item is not stocked there.
    pub(crate) fn available(&self) -> Option<i64> {
        self.inventory_level.as_ref().map(|l| {
            l.quantities
                .iter()
                .find(|q| q.name == "available")
                .map_or(0, |q| q.quantity)
        })
    }
}

/// A connection page.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub nodes: Vec<T>,
    #[serde(default)]
    pub page_info: Option<PageInfo>,
}

/// `pageInfo`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageInfo {
    pub has_next_page: bool,
    #[serde(default)]
    pub end_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The cursor of the next page, when there is one.
    pub(crate) fn next(&self) -> Option<String> {
        self.page_info
            .as_ref()
            .filter(|p| p.has_next_page)
            .and_then(|p| p.end_cursor.clone())
    }
}

/// An order as ORDERS reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderNode {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub cancelled_at: Option<String>,
    #[serde(default)]
    pub display_financial_status: Option<String>,
    #[serde(default)]
    pub display_fulfillment_status: Option<String>,
    #[serde(default)]
    pub total_price_set: Option<MoneyBag>,
    pub line_items: Page<LineNode>,
}

/// `{shopMoney{amount currencyCode}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MoneyBag {
    pub shop_money: MoneyV2,
}

/// `{amount, currencyCode}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MoneyV2 {
    pub amount: String,
    pub currency_code: String,
}

/// A line item.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LineNode {
    pub id: String,
    #[serde(default)]
    pub sku: Option<String>,
    pub quantity: u32,
    #[serde(default)]
    pub current_quantity: Option<u32>,
}

/// The neutral status of an order:
///
/// | Shopify | status |
/// |---|---|
/// | `cancelledAt` set | Cancelled |
/// | REFUNDED / VOIDED, nothing fulfilled | Cancelled (nothing will ship; stock released) |
/// | REFUNDED, (partially) fulfilled or RESTOCKED | Returned |
/// | fulfillment FULFILLED / PARTIALLY_FULFILLED | Shipped |
/// | PAID, PARTIALLY_PAID, PARTIALLY_REFUNDED, AUTHORIZED | Paid |
/// | PENDING, EXPIRED, anything else | Pending |
pub(crate) fn order_status(
    cancelled: bool,
    financial: Option<&str>,
    fulfillment: Option<&str>,
) -> OrderStatus {
    let shipped = matches!(fulfillment, Some("FULFILLED" | "PARTIALLY_FULFILLED"));
    if cancelled {
        return OrderStatus::Cancelled;
    }
    match financial {
        Some("REFUNDED") if shipped || fulfillment == Some("RESTOCKED") => OrderStatus::Returned,
        Some("REFUNDED" | "VOIDED") => OrderStatus::Cancelled,
        _ if shipped => OrderStatus::Shipped,
        Some("PAID" | "PARTIALLY_PAID" | "PARTIALLY_REFUNDED" | "AUTHORIZED") => OrderStatus::Paid,
        _ => OrderStatus::Pending,
    }
}

fn ms(iso: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("unreadable date-time {:?}", truncate(iso, 40)))
}

/// What became of an order's lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineCounts {
    /// Lines without a SKU (custom items), left out.
    pub without_sku: u64,
}

/// The neutral order. Lines carry `currentQuantity` (what the buyer still gets after removals
/// and refunds) — except in a cancelled order, whose lines keep their ordered quantity so the
/// ledger can release exactly what it reserved. Lines that end at 0 units in a live order are
/// left out, as are lines without a SKU (custom items).
pub(crate) fn order(
    node: &OrderNode,
    lines: &[LineNode],
    counts: &mut LineCounts,
) -> Result<ChannelOrder, String> {
    let status = order_status(
        node.cancelled_at.is_some(),
        node.display_financial_status.as_deref(),
        node.display_fulfillment_status.as_deref(),
    );
    let keep_ordered = status == OrderStatus::Cancelled;
    let mut out = Vec::new();
    for l in lines {
        let Some(sku) = l.sku.as_deref().filter(|s| !s.trim().is_empty()) else {
            counts.without_sku += 1;
            continue;
        };
        let Ok(sku) = Sku::parse(sku) else {
            counts.without_sku += 1;
            continue;
        };
        let quantity = if keep_ordered {
            l.quantity
        } else {
            l.current_quantity.unwrap_or(l.quantity)
        };
        if quantity == 0 {
            continue;
        }
        out.push(OrderLine {
            line_id: l.id.clone(),
            sku,
            quantity,
            unit_price: None,
        });
    }
    let total = node.total_price_set.as_ref().and_then(|m| {
        Currency::parse(&m.shop_money.currency_code)
            .ok()
            .and_then(|c| Money::parse(&m.shop_money.amount, c).ok())
    });
    Ok(ChannelOrder {
        external_id: node.id.clone(),
        status,
        placed_at_ms: ms(&node.created_at)?,
        remote_updated_at_ms: ms(&node.updated_at)?,
        total,
        buyer_ref: None,
        lines: out,
        fulfilled_by_channel: false,
    })
}

/// Orders page token: the filter time and the cursor (the next page must repeat the query).
pub(crate) fn orders_token(since_ms: i64, cursor: &str) -> String {
    format!("{since_ms}:{cursor}")
}

/// Reads [`orders_token`].
pub(crate) fn parse_orders_token(token: &str) -> Option<(i64, String)> {
    let (since, cursor) = token.split_once(':')?;
    Some((since.parse().ok()?, cursor.to_owned()).to_owned()).filter(|(_, c)| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_search_quotes_and_escapes() {
        assert_eq!(sku_search(["A"]), r#"sku:"A""#);
        assert_eq!(
            sku_search(["A B", r#"x" OR sku:*"#, r"back\slash"]),
            r#"sku:"A B" OR sku:"x\" OR sku:*" OR sku:"back\\slash""#
        );
    }

    #[test]
    fn orders_search_rounds_down_to_seconds() {
        assert_eq!(
            orders_search(1_777_000_000_999),
            "updated_at:>='2026-04-24T03:06:40Z' status:any"
        );
        assert_eq!(
            orders_search(-5),
            "updated_at:>='1970-01-01T00:00:00Z' status:any"
        );
    }

    #[test]
    fn statuses_map() {
        use OrderStatus::*;
        assert_eq!(
            order_status(true, Some("PAID"), Some("UNFULFILLED")),
            Cancelled
        );
        assert_eq!(order_status(false, Some("PAID"), Some("UNFULFILLED")), Paid);
        assert_eq!(order_status(false, Some("AUTHORIZED"), None), Paid);
        assert_eq!(order_status(false, Some("PENDING"), None), Pending);
        assert_eq!(
            order_status(false, Some("PAID"), Some("FULFILLED")),
            Shipped
        );
        assert_eq!(
            order_status(false, Some("REFUNDED"), Some("FULFILLED")),
            Returned
        );
        assert_eq!(
            order_status(false, Some("REFUNDED"), Some("UNFULFILLED")),
            Cancelled
        );
        assert_eq!(order_status(false, Some("VOIDED"), None), Cancelled);
        assert_eq!(order_status(false, None, None), Pending);
    }

    #[test]
    fn field_paths_name_items() {
        let e = UserError {
            code: Some("CHANGE_FROM_QUANTITY_STALE".into()),
            field: Some(vec![
                "input".into(),
                "quantities".into(),
                "3".into(),
                "changeFromQuantity".into(),
            ]),
            message: "stale".into(),
        };
        assert_eq!(e.index_in("quantities"), Some(3));
        assert_eq!(e.index_in("variants"), None);
        assert!(
            e.describe()
                .starts_with("[CHANGE_FROM_QUANTITY_STALE] stale")
        );
    }

    #[test]
    fn order_tokens_round_trip() {
        assert_eq!(
            parse_orders_token(&orders_token(5, "abc:d")),
            Some((5, "abc:d".into()))
        );
        assert_eq!(parse_orders_token("x:y"), None);
        assert_eq!(parse_orders_token("5:"), None);
    }

    #[test]
    fn orders_map_lines() {
        let node: OrderNode = serde_json::from_value(serde_json::json!({
            "id": "gid://shopify/Order/1", "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:01:00Z",
            "cancelledAt": null, "displayFinancialStatus": "PARTIALLY_REFUNDED", "displayFulfillmentStatus": "UNFULFILLED",
            "totalPriceSet": {"shopMoney": {"amount": "30.00", "currencyCode": "USD"}},
            "lineItems": {"nodes": [
                {"id": "L1", "sku": "A", "quantity": 3, "currentQuantity": 2},
                {"id": "L2", "sku": "B", "quantity": 1, "currentQuantity": 0},
                {"id": "L3", "sku": null, "quantity": 1, "currentQuantity": 1}]}
        })).unwrap();
        let mut counts = LineCounts::default();
        let o = order(&node, &node.line_items.nodes, &mut counts).unwrap();
        assert_eq!(o.status, OrderStatus::Paid);
        assert_eq!(o.lines.len(), 1);
        assert_eq!(o.lines[0].quantity, 2);
        assert_eq!(counts.without_sku, 1);
        assert_eq!(o.total.unwrap().minor, 3000);
    }
}
