//! `/_control/amazon`: the [`AmazonHandle`] over HTTP, for a demo driving a sandbox in another
//! process. Unauthenticated, loopback only. Errors are `{"error": "<message>"}` with 404 (unknown
//! SKU/order), 409 (not listed, not enough stock, wrong order state) or 400.
//!
//! | route | effect |
//! |---|---|
//! | `POST /listings` ([`AmazonSeedListing`]) | seed a listing → 201 [`AmazonListingSnapshot`](super::AmazonListingSnapshot) |
//! | `GET /listings` | every SKU |
//! | `GET /listings/{sku}` | [`AmazonListingSnapshot`](super::AmazonListingSnapshot) |
//! | `PUT /listings/{sku}/quantity` `{"quantity":n}` | drift: change the DEFAULT quantity out of band |
//! | `PUT /listings/{sku}/price` `{"value","currency"}` | drift: change the price out of band |
//! | `POST /orders` `{"lines":[{"sku","quantity"}],"fba"?:bool}` | place an order → 201 `{"orderId"}` |
//! | `POST /orders/fba` `{"lines":[…]}` | place an FBA order → 201 `{"orderId"}` |
//! | `GET /orders`, `GET /orders/{id}` | orders as getOrder renders them (all data sets) |
//! | `POST /orders/{id}/cancel`, `POST /orders/{id}/ship` | lifecycle → 204 |
//! | `GET /feeds` | [`FeedSnapshot`](super::FeedSnapshot)s |
//! | `GET /feeds/{id}/report` | the processing report, decompressed |
//! | `PUT /feeds/hold` `{"hold":bool}` | hold or release queued feeds → 204 |
//! | `POST /feeds/fail_next` `{"count":n}` | the next n feeds end FATAL → 204 |
//! | `GET /writes`, `GET /requests` | Amazon's records |
//! | `GET /stats` | `{"requestCounts":{op:n},"count429","throttled"}` |
//! | `PUT /rate_limits/{operation}` [`RateLimit`] or `null` | set/remove a bucket |
//! | `POST /tokens/expire` | expire every access token |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{AmazonHandle, AmazonSeedListing, ControlError, JSON_LISTINGS_FEED, OrderLine};
use crate::ratelimit::RateLimit;
use crate::record::Money;

pub(crate) fn router(amazon: AmazonHandle) -> Router {
    Router::new()
        .route("/listings", post(seed_listing).get(list_skus))
        .route("/listings/{sku}", get(get_listing))
        .route("/listings/{sku}/quantity", put(set_quantity))
        .route("/listings/{sku}/price", put(set_price))
        .route("/orders", post(place_order).get(list_orders))
        .route("/orders/fba", post(place_fba_order))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/orders/{id}/ship", post(ship_order))
        .route(
            "/feeds",
            get(|State(a): State<AmazonHandle>| async move { Json(a.feeds()) }),
        )
        .route("/feeds/{id}/report", get(feed_report))
        .route("/feeds/hold", put(hold_feeds))
        .route("/feeds/fail_next", post(fail_next_feeds))
        .route(
            "/writes",
            get(|State(a): State<AmazonHandle>| async move { Json(a.writes()) }),
        )
        .route(
            "/requests",
            get(|State(a): State<AmazonHandle>| async move { Json(a.requests()) }),
        )
        .route("/stats", get(stats))
        .route("/rate_limits/{operation}", put(set_rate_limit))
        .route("/tokens/expire", post(expire_tokens))
        .with_state(amazon)
}

async fn seed_listing(
    State(amazon): State<AmazonHandle>,
    Json(seed): Json<AmazonSeedListing>,
) -> Result<Response, ControlError> {
    let sku = seed.sku.clone();
    amazon.seed_listing(seed)?;
    let snapshot = amazon.listing(&sku).ok_or(ControlError::UnknownSku(sku))?;
    Ok((StatusCode::CREATED, Json(snapshot)).into_response())
}

async fn list_skus(State(amazon): State<AmazonHandle>) -> Response {
    Json(amazon.skus()).into_response()
}

async fn get_listing(
    State(amazon): State<AmazonHandle>,
    Path(sku): Path<String>,
) -> Result<Response, ControlError> {
    amazon
        .listing(&sku)
        .map(|l| Json(l).into_response())
        .ok_or(ControlError::UnknownSku(sku))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityBody {
    quantity: u32,
}

async fn set_quantity(
    State(amazon): State<AmazonHandle>,
    Path(sku): Path<String>,
    Json(body): Json<QuantityBody>,
) -> Result<StatusCode, ControlError> {
    amazon.set_quantity_out_of_band(&sku, body.quantity)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_price(
    State(amazon): State<AmazonHandle>,
    Path(sku): Path<String>,
    Json(price): Json<Money>,
) -> Result<StatusCode, ControlError> {
    amazon.set_price_out_of_band(&sku, price)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrder {
    lines: Vec<OrderLine>,
    #[serde(default)]
    fba: bool,
}

async fn place_order(
    State(amazon): State<AmazonHandle>,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ControlError> {
    let id = if body.fba {
        amazon.place_fba_order(&body.lines)?
    } else {
        amazon.place_order(&body.lines)?
    };
    Ok((StatusCode::CREATED, Json(json!({"orderId": id}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FbaOrder {
    lines: Vec<OrderLine>,
}

async fn place_fba_order(
    State(amazon): State<AmazonHandle>,
    Json(body): Json<FbaOrder>,
) -> Result<Response, ControlError> {
    let id = amazon.place_fba_order(&body.lines)?;
    Ok((StatusCode::CREATED, Json(json!({"orderId": id}))).into_response())
}

async fn list_orders(State(amazon): State<AmazonHandle>) -> Response {
    let orders: Vec<_> = amazon
        .order_ids()
        .iter()
        .filter_map(|id| amazon.order(id))
        .collect();
    Json(orders).into_response()
}

async fn get_order(
    State(amazon): State<AmazonHandle>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    amazon
        .order(&id)
        .map(|o| Json(o).into_response())
        .ok_or(ControlError::UnknownOrder(id))
}

async fn cancel_order(
    State(amazon): State<AmazonHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    amazon.cancel_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ship_order(
    State(amazon): State<AmazonHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    amazon.ship_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn feed_report(
    State(amazon): State<AmazonHandle>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    amazon
        .feed_report(&id)
        .map(|r| Json(r).into_response())
        .ok_or_else(|| ControlError::Invalid(format!("feed {id:?} has no processing report")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    hold: bool,
}

async fn hold_feeds(State(amazon): State<AmazonHandle>, Json(body): Json<HoldBody>) -> StatusCode {
    amazon.hold_feeds(body.hold);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNextBody {
    count: usize,
}

async fn fail_next_feeds(
    State(amazon): State<AmazonHandle>,
    Json(body): Json<FailNextBody>,
) -> StatusCode {
    amazon.fail_next_feeds(body.count);
    StatusCode::NO_CONTENT
}

async fn stats(State(amazon): State<AmazonHandle>) -> Response {
    Json(json!({
        "requestCounts": amazon.request_counts(),
        "count429": amazon.count_429(),
        "throttled": amazon.throttled_count(),
    }))
    .into_response()
}

async fn set_rate_limit(
    State(amazon): State<AmazonHandle>,
    Path(operation): Path<String>,
    Json(limit): Json<Option<RateLimit>>,
) -> Result<StatusCode, ControlError> {
    let known = super::USAGE_PLANS.iter().any(|(op, _, _)| *op == operation)
        || [
            JSON_LISTINGS_FEED,
            super::OP_TOKEN,
            super::OP_UPLOAD,
            super::OP_DOWNLOAD,
        ]
        .contains(&operation.as_str());
    if !known {
        return Err(ControlError::Invalid(format!(
            "unknown Amazon operation {operation:?}"
        )));
    }
    if let Some(l) = limit
        && (l.rate_per_sec.is_nan() || l.rate_per_sec < 0.0)
    {
        return Err(ControlError::Invalid(
            "rate_per_sec must be 0 or more".into(),
        ));
    }
    amazon.set_rate_limit(&operation, limit);
    Ok(StatusCode::NO_CONTENT)
}

async fn expire_tokens(State(amazon): State<AmazonHandle>) -> StatusCode {
    amazon.expire_access_tokens();
    StatusCode::NO_CONTENT
}
