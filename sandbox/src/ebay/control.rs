//! `/_control/ebay`: the [`EbayHandle`] over HTTP, for a demo driving a sandbox in another
//! process. Unauthenticated, loopback only. Errors are `{"error": "<message>"}` with 404 (unknown
//! SKU/order), 409 (not listed, not enough stock, wrong order state) or 400.
//!
//! | route | effect |
//! |---|---|
//! | `POST /orders` `{"lines":[{"sku","quantity"}],"buyer"?}` | place an order → 201 `{"orderId"}` |
//! | `GET /orders`, `GET /orders/{id}` | orders as getOrder renders them |
//! | `POST /orders/{id}/cancel`, `POST /orders/{id}/ship` | lifecycle → 204 |
//! | `POST /listings` ([`SeedListing`]) | seed a listing → 201 [`SeededListing`](super::SeededListing) |
//! | `GET /listings/{sku}` | [`ListingSnapshot`](super::ListingSnapshot) |
//! | `PUT /listings/{sku}/quantity` `{"quantity":n}` | drift: change quantity out of band |
//! | `PUT /listings/{sku}/price` `{"value","currency"}` | drift: change price out of band |
//! | `GET /writes`, `GET /requests` | eBay's records |
//! | `GET /stats` | `{"requestCounts":{op:n},"count429","throttled"}` |
//! | `PUT /rate_limits/{group}` [`RateLimit`] or `null` | set/remove a bucket |
//! | `POST /tokens/expire` | invalidate every access token |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ControlError, EbayHandle, OrderLine, SeedListing};
use crate::ratelimit::RateLimit;
use crate::record::Money;

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({"error": self.to_string()}))).into_response()
    }
}

pub(crate) fn router(ebay: EbayHandle) -> Router {
    Router::new()
        .route("/orders", post(place_order).get(list_orders))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/orders/{id}/ship", post(ship_order))
        .route("/listings", post(seed_listing))
        .route("/listings/{sku}", get(get_listing))
        .route("/listings/{sku}/quantity", put(set_quantity))
        .route("/listings/{sku}/price", put(set_price))
        .route(
            "/writes",
            get(|State(e): State<EbayHandle>| async move { Json(e.writes()) }),
        )
        .route(
            "/requests",
            get(|State(e): State<EbayHandle>| async move { Json(e.requests()) }),
        )
        .route("/stats", get(stats))
        .route("/rate_limits/{group}", put(set_rate_limit))
        .route("/tokens/expire", post(expire_tokens))
        .with_state(ebay)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrder {
    lines: Vec<OrderLine>,
    #[serde(default)]
    buyer: Option<String>,
}

async fn place_order(
    State(ebay): State<EbayHandle>,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ControlError> {
    let buyer = body.buyer.as_deref().unwrap_or(super::DEFAULT_BUYER);
    let id = ebay.place_order_as(buyer, &body.lines)?;
    Ok((StatusCode::CREATED, Json(json!({"orderId": id}))).into_response())
}

async fn list_orders(State(ebay): State<EbayHandle>) -> Response {
    let orders: Vec<_> = ebay
        .order_ids()
        .iter()
        .filter_map(|id| ebay.order(id))
        .collect();
    Json(orders).into_response()
}

async fn get_order(
    State(ebay): State<EbayHandle>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    ebay.order(&id)
        .map(|o| Json(o).into_response())
        .ok_or(ControlError::UnknownOrder(id))
}

async fn cancel_order(
    State(ebay): State<EbayHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    ebay.cancel_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ship_order(
    State(ebay): State<EbayHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    ebay.ship_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn seed_listing(
    State(ebay): State<EbayHandle>,
    Json(seed): Json<SeedListing>,
) -> Result<Response, ControlError> {
    let seeded = ebay.seed_listing(seed)?;
    Ok((StatusCode::CREATED, Json(seeded)).into_response())
}

async fn get_listing(
    State(ebay): State<EbayHandle>,
    Path(sku): Path<String>,
) -> Result<Response, ControlError> {
    ebay.listing(&sku)
        .map(|l| Json(l).into_response())
        .ok_or(ControlError::UnknownSku(sku))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityBody {
    quantity: u32,
}

async fn set_quantity(
    State(ebay): State<EbayHandle>,
    Path(sku): Path<String>,
    Json(body): Json<QuantityBody>,
) -> Result<StatusCode, ControlError> {
    ebay.set_quantity_out_of_band(&sku, body.quantity)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_price(
    State(ebay): State<EbayHandle>,
    Path(sku): Path<String>,
    Json(price): Json<Money>,
) -> Result<StatusCode, ControlError> {
    ebay.set_price_out_of_band(&sku, price)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stats(State(ebay): State<EbayHandle>) -> Response {
    Json(json!({
        "requestCounts": ebay.request_counts(),
        "count429": ebay.count_429(),
        "throttled": ebay.throttled_count(),
    }))
    .into_response()
}

async fn set_rate_limit(
    State(ebay): State<EbayHandle>,
    Path(group): Path<String>,
    Json(limit): Json<Option<RateLimit>>,
) -> Result<StatusCode, ControlError> {
    if ![
        super::GROUP_INVENTORY,
        super::GROUP_FULFILLMENT,
        super::GROUP_IDENTITY,
    ]
    .contains(&group.as_str())
    {
        return Err(ControlError::Invalid(format!(
            "unknown rate-limit group {group:?}"
        )));
    }
    if let Some(l) = limit
        && (l.rate_per_sec.is_nan() || l.rate_per_sec < 0.0)
    {
        return Err(ControlError::Invalid(
            "rate_per_sec must be 0 or more".into(),
        ));
    }
    ebay.set_rate_limit(&group, limit);
    Ok(StatusCode::NO_CONTENT)
}

async fn expire_tokens(State(ebay): State<EbayHandle>) -> StatusCode {
    ebay.expire_access_tokens();
    StatusCode::NO_CONTENT
}
