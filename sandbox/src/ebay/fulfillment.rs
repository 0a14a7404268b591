//! Sell Fulfillment API handlers: getOrders (filter, orderIds, paging) and getOrder
//! (contracts/README.md §2.4). The filter grammar is parsed by [`parse_filter`], a pure function.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::error::*;
use super::inventory::query_map;
use super::state::Order;
use super::{
    DEFAULT_ORDER_WINDOW_DAYS, DEFAULT_ORDERS_PAGE, Ebay, FULFILLMENT_BASE, MAX_ORDER_IDS,
    MAX_ORDERS_PAGE,
};

/// `from..to` (inclusive; `to` optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateRange {
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

impl DateRange {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.from && self.to.is_none_or(|to| t <= to)
    }
}

/// A parsed `filter` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OrderFilter {
    pub created: Option<DateRange>,
    pub modified: Option<DateRange>,
    /// Accepted `orderFulfillmentStatus` values.
    pub statuses: Option<Vec<&'static str>>,
}

/// The only status combinations eBay supports.
const STATUS_COMBINATIONS: [[&str; 2]; 2] =
    [["NOT_STARTED", "IN_PROGRESS"], ["FULFILLED", "IN_PROGRESS"]];

fn parse_date(s: &str, name: &str) -> Result<DateTime<Utc>, EbayError> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            EbayError::fulfillment(ERR_DATE_FORMAT, "Invalid date format")
                .with_param("filter", name)
        })
}

fn parse_range(name: &str, value: &str) -> Result<DateRange, EbayError> {
    let inner = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .ok_or_else(|| invalid_filter_value(name, value))?;
    let (from, to) = inner
        .split_once("..")
        .ok_or_else(|| invalid_filter_value(name, value))?;
    if from.trim().is_empty() {
        return Err(
            EbayError::fulfillment(ERR_START_DATE_MISSING, "Start date is missing")
                .with_param("filter", name),
        );
    }
    let from = parse_date(from, name)?;
    let to = if to.trim().is_empty() {
        None
    } else {
        Some(parse_date(to, name)?)
    };
    if to.is_some_and(|to| from > to) {
        return Err(EbayError::fulfillment(
            ERR_START_AFTER_END,
            "Start date should be before end date",
        )
        .with_param("filter", name));
    }
    Ok(DateRange { from, to })
}

fn invalid_filter_value(name: &str, value: &str) -> EbayError {
    EbayError::fulfillment(
        ERR_FILTER_VALUE,
        format!("Invalid filter value {value} for filter {name}"),
    )
    .with_param("filter", name)
}

/// Parses eBay's `filter` (already percent-decoded): comma-separated `name:value` criteria.
pub(crate) fn parse_filter(raw: &str, now: DateTime<Utc>) -> Result<OrderFilter, EbayError> {
    let mut filter = OrderFilter::default();
    for criterion in raw.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let (name, value) = criterion.split_once(':').ok_or_else(|| {
            EbayError::fulfillment(ERR_FILTER_NAME, format!("Invalid filter name: {criterion}"))
        })?;
        match name.trim().to_ascii_lowercase().as_str() {
            "creationdate" => filter.created = Some(parse_range("creationdate", value.trim())?),
            "lastmodifieddate" => {
                filter.modified = Some(parse_range("lastmodifieddate", value.trim())?);
            }
            "orderfulfillmentstatus" => {
                let inner = value
                    .trim()
                    .strip_prefix('{')
                    .and_then(|v| v.strip_suffix('}'))
                    .ok_or_else(|| invalid_filter_value(name, value))?;
                let mut wanted: Vec<&str> = inner.split('|').map(str::trim).collect();
                wanted.sort_unstable();
                let combo = STATUS_COMBINATIONS
                    .iter()
                    .find(|c| {
                        let mut c = c.to_vec();
                        c.sort_unstable();
                        c == wanted
                    })
                    .ok_or_else(|| invalid_filter_value(name, value))?;
                filter.statuses = Some(combo.to_vec());
            }
            other => {
                return Err(EbayError::fulfillment(
                    ERR_FILTER_NAME,
                    format!("Invalid filter name: {other}"),
                ));
            }
        }
    }
    for range in [filter.created, filter.modified].into_iter().flatten() {
        if range.from > now {
            return Err(EbayError::fulfillment(
                ERR_DATE_IN_FUTURE,
                "Start and end dates can't be in the future",
            ));
        }
    }
    Ok(filter)
}

/// Characters eBay requires percent-encoded in the query string.
const MUST_BE_ENCODED: [char; 5] = ['[', ']', '{', '}', '|'];

fn order_link(ebay: &Ebay, filter: Option<&str>, limit: usize, offset: usize) -> String {
    let limit = limit.to_string();
    let offset = offset.to_string();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(f) = filter {
        pairs.push(("filter", f));
    }
    pairs.push(("limit", &limit));
    pairs.push(("offset", &offset));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!(
        "{}/ebay{FULFILLMENT_BASE}/order?{query}",
        ebay.shared.base_url
    )
}

/// `GET /order` (getOrders).
pub(crate) async fn get_orders(
    State(ebay): State<Arc<Ebay>>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, EbayError> {
    if let Some(raw) = &raw
        && raw.contains(MUST_BE_ENCODED)
    {
        return Err(EbayError::malformed_request(
            "The characters [ ] { } | must be percent-encoded (%5B %5D %7B %7D %7C).",
        ));
    }
    let q = query_map(raw.as_deref())?;
    let now = ebay.shared.clock.now();

    if let Some(ids) = q.get("orderIds") {
        let mut wanted: Vec<&str> = ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if wanted.len() > MAX_ORDER_IDS {
            return Err(EbayError::fulfillment(
                ERR_TOO_MANY_ORDER_IDS,
                format!(
                    "Exceeded maximum number of order IDs (the current limit is {MAX_ORDER_IDS})"
                ),
            ));
        }
        if wanted.is_empty() {
            return Err(EbayError::fulfillment(
                ERR_INVALID_ORDER_ID,
                "Invalid order ID: ",
            ));
        }
        wanted.dedup();
        let st = ebay.lock();
        let orders: Vec<Value> = wanted
            .iter()
            .filter_map(|id| st.orders.get(*id))
            .map(Order::render)
            .collect();
        let query = serde_urlencoded::to_string([("orderIds", ids.as_str())]).unwrap_or_default();
        return Ok(Json(json!({
            "href": format!("{}/ebay{FULFILLMENT_BASE}/order?{query}", ebay.shared.base_url),
            "limit": MAX_ORDER_IDS,
            "offset": 0,
            "total": orders.len(),
            "orders": orders,
        })));
    }

    let filter_raw = q.get("filter").map(String::as_str);
    let filter = parse_filter(filter_raw.unwrap_or(""), now)?;
    let limit = match q.get("limit") {
        None => DEFAULT_ORDERS_PAGE,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_ORDERS_PAGE).contains(l))
            .ok_or_else(|| {
                EbayError::fulfillment(ERR_INVALID_LIMIT, format!("Invalid limit: {v}"))
            })?,
    };
    let offset = match q.get("offset") {
        None => 0,
        Some(v) => v.trim().parse::<usize>().map_err(|_| {
            EbayError::fulfillment(ERR_INVALID_OFFSET, format!("Invalid offset: {v}"))
        })?,
    };

    // creationdate wins when both are given; without either, the last 90 days of creations.
    let by_modified = filter.created.is_none() && filter.modified.is_some();
    let range = filter.created.or(filter.modified).unwrap_or(DateRange {
        from: now - chrono::Duration::days(DEFAULT_ORDER_WINDOW_DAYS),
        to: None,
    });
    let st = ebay.lock();
    let mut selected: Vec<&Order> = st
        .orders
        .values()
        .filter(|o| range.contains(if by_modified { o.modified } else { o.created }))
        .filter(|o| {
            filter
                .statuses
                .as_ref()
                .is_none_or(|s| s.contains(&o.fulfillment.as_str()))
        })
        .collect();
    selected.sort_by(|a, b| {
        let key = |o: &Order| {
            (
                if by_modified { o.modified } else { o.created },
                o.id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let total = selected.len();
    let orders: Vec<Value> = selected
        .iter()
        .skip(offset)
        .take(limit)
        .map(|o| o.render())
        .collect();
    let mut body = json!({
        "href": order_link(&ebay, filter_raw, limit, offset),
        "limit": limit,
        "offset": offset,
        "total": total,
        "orders": orders,
    });
    if offset.saturating_add(limit) < total {
        body["next"] = json!(order_link(&ebay, filter_raw, limit, offset + limit));
    }
    if offset > 0 {
        body["prev"] = json!(order_link(
            &ebay,
            filter_raw,
            limit,
            offset.saturating_sub(limit)
        ));
    }
    Ok(Json(body))
}

/// `GET /order/{orderId}`.
pub(crate) async fn get_order(
    State(ebay): State<Arc<Ebay>>,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, EbayError> {
    let st = ebay.lock();
    st.orders
        .get(&order_id)
        .map(|o| Json(o.render()))
        .ok_or_else(|| {
            EbayError::fulfillment(
                ERR_INVALID_ORDER_ID,
                format!("Invalid order ID: {order_id}"),
            )
            .with_status(StatusCode::NOT_FOUND)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn error_id(e: EbayError) -> u64 {
        e.errors[0].error_id
    }

    #[test]
    fn parses_open_and_closed_ranges() {
        let f = parse_filter("lastmodifieddate:[2026-05-15T08:25:43.511Z..]", now()).unwrap();
        let m = f.modified.unwrap();
        assert_eq!(
            m.from,
            "2026-05-15T08:25:43.511Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(m.to, None);
        let f = parse_filter(
            "creationdate:[2026-03-21T08:25:43.511Z..2026-04-21T08:25:43.511Z],lastmodifieddate:[2026-05-15T08:25:43.511Z..],orderfulfillmentstatus:{NOT_STARTED|IN_PROGRESS}",
            now(),
        )
        .unwrap();
        assert!(f.created.unwrap().to.is_some());
        assert!(f.modified.is_some());
        assert_eq!(f.statuses, Some(vec!["NOT_STARTED", "IN_PROGRESS"]));
    }

    #[test]
    fn rejects_bad_filters_with_ebay_ids() {
        let cases = [
            ("color:[2026-01-01T00:00:00Z..]", ERR_FILTER_NAME),
            ("lastmodifieddate:2026-01-01T00:00:00Z", ERR_FILTER_VALUE),
            ("lastmodifieddate:[yesterday..]", ERR_DATE_FORMAT),
            (
                "lastmodifieddate:[..2026-01-01T00:00:00Z]",
                ERR_START_DATE_MISSING,
            ),
            (
                "lastmodifieddate:[2026-02-01T00:00:00Z..2026-01-01T00:00:00Z]",
                ERR_START_AFTER_END,
            ),
            (
                "lastmodifieddate:[2027-01-01T00:00:00Z..]",
                ERR_DATE_IN_FUTURE,
            ),
            (
                "orderfulfillmentstatus:{NOT_STARTED|FULFILLED}",
                ERR_FILTER_VALUE,
            ),
        ];
        for (raw, id) in cases {
            assert_eq!(error_id(parse_filter(raw, now()).unwrap_err()), id, "{raw}");
        }
    }

    #[test]
    fn empty_filter_is_no_filter() {
        assert_eq!(parse_filter("", now()).unwrap(), OrderFilter::default());
    }
}
