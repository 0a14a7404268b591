//! Orders (`orders` sorted by `UPDATED_AT`, filtered by `updated_at:>=`), the snapshot
//! (`productVariants` paged, ACTIVE products only) and the healthcheck (`shop`, `location`).

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};

use super::ShopifyConnector;
use super::mapping::{
    self, LINES_PAGE, LineNode, MORE_LINES_PAGE, ORDER_LINES, ORDERS, ORDERS_PAGE, OrderNode, Page,
    SHOP, SNAPSHOT, SNAPSHOT_PAGE, VariantNode,
};
use super::stock::VariantRef;
use crate::connector::{Health, OrdersPage, SnapshotPage};
use crate::error::ConnectorError;
use crate::model::{Currency, Money, RemoteItem, Sku};

/// Follow-up pages of one order's line items read at most (100 lines each).
const MAX_LINE_PAGES: usize = 50;

fn malformed(what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Malformed {
        status: Some(200),
        message: format!("{what}: {e}"),
    }
}

impl ShopifyConnector {
    /// The shop's currency (read once).
    pub(crate) async fn currency(&self) -> Result<Currency, ConnectorError> {
        if let Some(c) = *self.currency_cache() {
            return Ok(c);
        }
        let data = self
            .client
            .execute(&SHOP, json!({"locationId": self.config.location_id}))
            .await?;
        let code = data
            .pointer("/shop/currencyCode")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("shop", "no currencyCode"))?;
        let c = Currency::parse(code).map_err(|e| malformed("shop", e))?;
        *self.currency_cache() = Some(c);
        Ok(c)
    }

    pub(crate) async fn probe(&self) -> Result<Health, ConnectorError> {
        let started = Instant::now();
        let data = self
            .client
            .execute(&SHOP, json!({"locationId": self.config.location_id}))
            .await?;
        let name = data
            .pointer("/shop/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        if let Some(c) = data
            .pointer("/shop/currencyCode")
            .and_then(Value::as_str)
            .and_then(|c| Currency::parse(c).ok())
        {
            *self.currency_cache() = Some(c);
        }
        let location = data.get("location").filter(|l| l.is_object());
        let Some(location) = location else {
            return Err(ConnectorError::Permanent {
                status: Some(200),
                code: Some("LOCATION_NOT_FOUND".into()),
                message: format!(
                    "location {} does not exist in this shop",
                    self.config.location_id
                ),
            });
        };
        if location.get("isActive").and_then(Value::as_bool) == Some(false) {
            return Err(ConnectorError::Permanent {
                status: Some(200),
                code: Some("LOCATION_INACTIVE".into()),
                message: format!("location {} is deactivated", self.config.location_id),
            });
        }
        Ok(Health {
            summary: format!(
                "shop {:?}, location {:?}, {:.0} cost points available",
                mapping_trunc(name),
                mapping_trunc(location.get("name").and_then(Value::as_str).unwrap_or("?")),
                self.client.cost_available()
            ),
            latency: started.elapsed(),
        })
    }

    pub(crate) async fn orders_page(
        &self,
        since_ms: i64,
        page: Option<&str>,
    ) -> Result<OrdersPage, ConnectorError> {
        let (since, cursor) = match page {
            Some(t) => mapping::parse_orders_token(t)
                .map(|(s, c)| (s, Some(c)))
                .ok_or_else(|| ConnectorError::Permanent {
                    status: None,
                    code: None,
                    message: "unreadable orders page token".into(),
                })?,
            None => (since_ms, None),
        };
        let data = self
            .client
            .execute(
                &ORDERS,
                json!({"first": ORDERS_PAGE, "after": cursor, "query": mapping::orders_search(since),
                       "lines": LINES_PAGE}),
            )
            .await?;
        let page: Page<OrderNode> =
            serde_json::from_value(data.get("orders").cloned().unwrap_or(Value::Null))
                .map_err(|e| malformed("orders", e))?;
        let mut orders = Vec::with_capacity(page.nodes.len());
        let mut counts = mapping::LineCounts::default();
        for node in &page.nodes {
            let mut lines = node.line_items.nodes.clone();
            if let Some(after) = node.line_items.next() {
                lines.extend(self.more_lines(&node.id, after).await?);
            }
            orders.push(
                mapping::order(node, &lines, &mut counts).map_err(|e| malformed("order", e))?,
            );
        }
        self.counters
            .order_lines_without_sku
            .fetch_add(counts.without_sku, Ordering::Relaxed);
        Ok(OrdersPage {
            orders,
            next_page: page.next().map(|c| mapping::orders_token(since, &c)),
        })
    }

    async fn more_lines(
        &self,
        order_id: &str,
        mut after: String,
    ) -> Result<Vec<LineNode>, ConnectorError> {
        let mut out = Vec::new();
        for _ in 0..MAX_LINE_PAGES {
            let data = self
                .client
                .execute(
                    &ORDER_LINES,
                    json!({"id": order_id, "after": after, "first": MORE_LINES_PAGE}),
                )
                .await?;
            let page: Page<LineNode> = serde_json::from_value(
                data.pointer("/order/lineItems")
                    .cloned()
                    .unwrap_or(Value::Null),
            )
            .map_err(|e| malformed("order lineItems", e))?;
            out.extend(page.nodes.iter().cloned());
            match page.next() {
                Some(c) => after = c,
                None => return Ok(out),
            }
        }
        Err(malformed(
            "order lineItems",
            format!("more than {} pages", MAX_LINE_PAGES),
        ))
    }

    pub(crate) async fn snapshot(
        &self,
        page: Option<&str>,
    ) -> Result<SnapshotPage, ConnectorError> {
        let currency = self.currency().await?;
        let data = self
            .client
            .execute(
                &SNAPSHOT,
                json!({"first": SNAPSHOT_PAGE, "after": page, "locationId": self.config.location_id}),
            )
            .await?;
        let page: Page<VariantNode> =
            serde_json::from_value(data.get("productVariants").cloned().unwrap_or(Value::Null))
                .map_err(|e| malformed("productVariants", e))?;
        let mut items = Vec::new();
        for node in &page.nodes {
            let Some((sku_text, r)) = VariantRef::from_node(node) else {
                continue;
            };
            let Ok(sku) = Sku::parse(sku_text.as_str()) else {
                continue;
            };
            self.remember(&sku_text, r.clone());
            // DRAFT and ARCHIVED products are not on sale: not listed, as far as buyers see.
            if r.product_status != "ACTIVE" {
                continue;
            }
            items.push(RemoteItem {
                sku,
                external_id: Some(r.variant_id.clone()),
                quantity: r
                    .available
                    .map(|q| u32::try_from(q.max(0)).unwrap_or(u32::MAX)),
                price: node
                    .price
                    .as_deref()
                    .and_then(|p| Money::parse(p, currency).ok()),
            });
        }
        Ok(SnapshotPage {
            items,
            next_page: page.next(),
        })
    }
}

fn mapping_trunc(s: &str) -> String {
    crate::common::http::truncate(s, 60)
}
