//! The Orders API 2026-01-01 side of the connector: searchOrders by `lastUpdatedAfter`, paged.
//! (Orders API v0 is deprecated and not used.)

use std::sync::atomic::Ordering;

use super::client::{Api, Request};
use super::config::OP_SEARCH_ORDERS;
use super::mapping::{self, OrdersPage as AmazonOrdersPage};
use super::{AmazonConnector, MAX_ORDERS_BUDGET_WAIT, MAX_ORDERS_PAGE};
use crate::common::http::encode_component;
use crate::connector::OrdersPage;
use crate::error::ConnectorError;

/// Datasets every searchOrders asks for: the fulfillment status and channel, and the total.
/// (`BUYER` and `RECIPIENT` are never asked for: omnistock stores no personal data.)
const INCLUDED_DATA: &str = "FULFILLMENT,PROCEEDS";

/// Separates the filter time from Amazon's token in our page token.
const PAGE_TOKEN_SEPARATOR: char = '|';

/// Our page token: `{since_ms}|{nextToken}`. searchOrders wants the same filters again with
/// `paginationToken`, so the token remembers the filter time of the first page.
fn page_token(since_ms: i64, next_token: &str) -> String {
    format!("{since_ms}{PAGE_TOKEN_SEPARATOR}{next_token}")
}

/// `(since_ms, Amazon's nextToken)` from our page token.
fn parse_page_token(token: &str) -> Option<(i64, &str)> {
    let (since, next) = token.split_once(PAGE_TOKEN_SEPARATOR)?;
    let since = since.parse::<i64>().ok()?;
    (!next.is_empty()).then_some((since, next))
}

impl AmazonConnector {
    /// fetch_orders: one searchOrders page of orders updated at or after `since_ms` (or the
    /// page token's own filter time), in every configured marketplace.
    pub(super) async fn search_orders(
        &self,
        since_ms: i64,
        page: Option<&str>,
    ) -> Result<OrdersPage, ConnectorError> {
        let (since_ms, token) = match page.map(str::trim).filter(|p| !p.is_empty()) {
            None => (since_ms, None),
            Some(p) => {
                let (since, next) =
                    parse_page_token(p).ok_or_else(|| ConnectorError::Permanent {
                        status: None,
                        code: None,
                        message: "invalid Amazon orders page token".into(),
                    })?;
                (since, Some(next))
            }
        };
        // searchOrders refills one token every ~3 minutes: do not hold the poller that long.
        let wait = self.client.budget.estimate_wait(OP_SEARCH_ORDERS, 1);
        if wait > MAX_ORDERS_BUDGET_WAIT {
            return Err(ConnectorError::RateLimited {
                retry_after: Some(wait),
                message: format!(
                    "searchOrders budget empty for {} s more (Amazon allows one call per ~{} s after its burst)",
                    wait.as_secs(),
                    (1.0 / self.client.budget.limit(OP_SEARCH_ORDERS).0.max(1e-6)).round()
                ),
            });
        }
        let marketplaces = self
            .config
            .marketplace_ids
            .iter()
            .map(|m| encode_component(m))
            .collect::<Vec<_>>()
            .join(",");
        let mut path = format!(
            "/orders?lastUpdatedAfter={}&marketplaceIds={marketplaces}&maxResultsPerPage={MAX_ORDERS_PAGE}&includedData={INCLUDED_DATA}",
            encode_component(&mapping::format_timestamp(since_ms)),
        );
        if let Some(token) = token {
            path.push_str(&format!("&paginationToken={}", encode_component(token)));
        }
        let resp = self
            .client
            .call(&Request::get(OP_SEARCH_ORDERS, Api::Orders, path))
            .await?;
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let body: AmazonOrdersPage = resp.json()?;
        let mut orders = Vec::with_capacity(body.orders.len());
        for o in &body.orders {
            let mapped =
                mapping::channel_order(o).map_err(|message| ConnectorError::Malformed {
                    status: Some(resp.status),
                    message,
                })?;
            if mapped.lines_without_sku > 0 {
                self.counters
                    .order_lines_without_sku
                    .fetch_add(mapped.lines_without_sku, Ordering::Relaxed);
                tracing::info!(order = %mapped.order.external_id, lines = mapped.lines_without_sku, "Amazon order lines without a usable SKU left out.");
            }
            orders.push(mapped.order);
        }
        let next_page = body
            .pagination
            .and_then(|p| p.next_token)
            .filter(|t| !t.trim().is_empty() && Some(t.as_str()) != token)
            .map(|t| page_token(since_ms, &t));
        Ok(OrdersPage { orders, next_page })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_carry_the_filter_time() {
        let t = page_token(1_778_833_543_000, "2YgYW55|IGNh");
        assert_eq!(
            parse_page_token(&t),
            Some((1_778_833_543_000, "2YgYW55|IGNh"))
        );
        assert_eq!(parse_page_token(&page_token(-5, "x")), Some((-5, "x")));
        for bad in ["", "123", "abc|x", "123|", "|x"] {
            assert_eq!(parse_page_token(bad), None, "{bad:?}");
        }
    }
}
