//! `/_control/woo`: the [`WooHandle`] over HTTP, for a demo driving a sandbox in another process.
//! Unauthenticated, loopback only. Errors are `{"error": "<message>"}` with 404 (unknown SKU or
//! order), 409 (not listed, not enough stock, wrong order state) or 400.
//!
//! | route | effect |
//! |---|---|
//! | `POST /listings` ([`WooSeedListing`]) | seed a product or variation → 201 [`WooListingSnapshot`](super::WooListingSnapshot) |
//! | `GET /listings` | every SKU |
//! | `GET /listings/{sku}` | [`WooListingSnapshot`](super::WooListingSnapshot) |
//! | `PUT /listings/{sku}/quantity` `{"quantity":n}` | drift: change the stock out of band |
//! | `PUT /listings/{sku}/price` `{"value","currency"}` | drift: change the regular price out of band |
//! | `PUT /listings/{sku}/status` `{"status":"draft"}` | change the post status out of band |
//! | `DELETE /listings/{sku}` | delete the product for good |
//! | `POST /orders` `{"lines":[{"sku","quantity"}]}` | a paid order → 201 `{"orderId"}` |
//! | `GET /orders`, `GET /orders/{id}` | orders as the API renders them |
//! | `POST /orders/{id}/cancel`, `POST /orders/{id}/complete` | lifecycle → 204 |
//! | `PUT /orders/{id}/status` `{"status":"on-hold"}` | any WooCommerce status → 204 |
//! | `PUT /webhook` ([`WebhookTarget`] or `null`), `GET /webhook` | set the target / read [`WebhookCounts`](crate::WebhookCounts) |
//! | `GET /writes`, `GET /requests` | WooCommerce's records |
//! | `GET /stats` | `{"requestCounts":{op:n},"count429","throttled"}` |
//! | `PUT /rate_limit` [`RateLimit`] or `null` | set/remove the WAF's limit |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ControlError, OrderLine, WooHandle, WooSeedListing};
use crate::ratelimit::RateLimit;
use crate::record::Money;
use crate::webhook::WebhookTarget;

pub(crate) fn router(woo: WooHandle) -> Router {
    Router::new()
        .route("/listings", post(seed_listing).get(list_skus))
        .route("/listings/{sku}", get(get_listing).delete(delete_listing))
        .route("/listings/{sku}/quantity", put(set_quantity))
        .route("/listings/{sku}/price", put(set_price))
        .route("/listings/{sku}/status", put(set_status))
        .route("/orders", post(place_order).get(list_orders))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/orders/{id}/complete", post(complete_order))
        .route("/orders/{id}/status", put(set_order_status))
        .route("/webhook", put(set_webhook).get(webhook_counts))
        .route(
            "/writes",
            get(|State(w): State<WooHandle>| async move { Json(w.writes()) }),
        )
        .route(
            "/requests",
            get(|State(w): State<WooHandle>| async move { Json(w.requests()) }),
        )
        .route("/stats", get(stats))
        .route("/rate_limit", put(set_rate_limit))
        .with_state(woo)
}

async fn seed_listing(
    State(woo): State<WooHandle>,
    Json(seed): Json<WooSeedListing>,
) -> Result<Response, ControlError> {
    let sku = seed.sku.clone();
    woo.seed_listing(seed)?;
    let snapshot = woo.listing(&sku).ok_or(ControlError::UnknownSku(sku))?;
    Ok((StatusCode::CREATED, Json(snapshot)).into_response())
}

async fn list_skus(State(woo): State<WooHandle>) -> Response {
    Json(woo.skus()).into_response()
}

async fn get_listing(
    State(woo): State<WooHandle>,
    Path(sku): Path<String>,
) -> Result<Response, ControlError> {
    woo.listing(&sku)
        .map(|l| Json(l).into_response())
        .ok_or(ControlError::UnknownSku(sku))
}

async fn delete_listing(
    State(woo): State<WooHandle>,
    Path(sku): Path<String>,
) -> Result<StatusCode, ControlError> {
    woo.delete_out_of_band(&sku)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityBody {
    quantity: u32,
}

async fn set_quantity(
    State(woo): State<WooHandle>,
    Path(sku): Path<String>,
    Json(body): Json<QuantityBody>,
) -> Result<StatusCode, ControlError> {
    woo.set_quantity_out_of_band(&sku, body.quantity)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_price(
    State(woo): State<WooHandle>,
    Path(sku): Path<String>,
    Json(price): Json<Money>,
) -> Result<StatusCode, ControlError> {
    woo.set_price_out_of_band(&sku, price)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

async fn set_status(
    State(woo): State<WooHandle>,
    Path(sku): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<StatusCode, ControlError> {
    woo.set_status_out_of_band(&sku, &body.status)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrder {
    lines: Vec<OrderLine>,
}

async fn place_order(
    State(woo): State<WooHandle>,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ControlError> {
    let id = woo.place_order(&body.lines)?;
    Ok((StatusCode::CREATED, Json(json!({"orderId": id}))).into_response())
}

async fn list_orders(State(woo): State<WooHandle>) -> Response {
    let orders: Vec<_> = woo
        .order_ids()
        .iter()
        .filter_map(|id| woo.order(id))
        .collect();
    Json(orders).into_response()
}

async fn get_order(
    State(woo): State<WooHandle>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    woo.order(&id)
        .map(|o| Json(o).into_response())
        .ok_or(ControlError::UnknownOrder(id))
}

async fn cancel_order(
    State(woo): State<WooHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    woo.cancel_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn complete_order(
    State(woo): State<WooHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    woo.complete_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_order_status(
    State(woo): State<WooHandle>,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<StatusCode, ControlError> {
    woo.set_order_status(&id, &body.status)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_webhook(
    State(woo): State<WooHandle>,
    Json(target): Json<Option<WebhookTarget>>,
) -> StatusCode {
    woo.set_webhook(target);
    StatusCode::NO_CONTENT
}

async fn webhook_counts(State(woo): State<WooHandle>) -> Response {
    Json(woo.webhook_counts()).into_response()
}

async fn stats(State(woo): State<WooHandle>) -> Response {
    Json(json!({
        "requestCounts": woo.request_counts(),
        "count429": woo.count_429(),
        "throttled": woo.throttled_count(),
    }))
    .into_response()
}

async fn set_rate_limit(
    State(woo): State<WooHandle>,
    Json(limit): Json<Option<RateLimit>>,
) -> StatusCode {
    woo.set_rate_limit(limit);
    StatusCode::NO_CONTENT
}
