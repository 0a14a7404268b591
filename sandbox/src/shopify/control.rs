//! `/_control/shopify`: the [`ShopifyHandle`] over HTTP, for a demo driving a sandbox in another
//! process. Unauthenticated, loopback only. Errors are `{"error": "<message>"}` with 404 (unknown
//! SKU/order), 409 (not listed, not enough stock, wrong order state) or 400.
//!
//! | route | effect |
//! |---|---|
//! | `GET /credentials` | [`ShopifyCredentials`](super::ShopifyCredentials) |
//! | `POST /listings` ([`ShopifySeedListing`]) | seed a product → 201 [`ShopifyListingSnapshot`](super::ShopifyListingSnapshot) |
//! | `GET /listings`, `GET /listings/{sku}` | every SKU / one listing |
//! | `PUT /listings/{sku}/quantity` `{"quantity":n}` | drift: change the available quantity out of band |
//! | `POST /orders` `{"lines":[{"sku","quantity"}]}` | place an order → 201 `{"orderId"}` (webhook `orders/create`) |
//! | `GET /orders`, `GET /orders/{id}` | orders as the GraphQL `order` field renders them |
//! | `POST /orders/{id}/cancel`, `POST /orders/{id}/fulfill` | lifecycle → 204 (webhooks) |
//! | `PUT /webhook` [`WebhookTarget`] or `null` | where webhooks go |
//! | `GET /webhook/counts` | [`WebhookCounts`](crate::WebhookCounts) |
//! | `GET /writes`, `GET /requests` | Shopify's records |
//! | `GET /stats` | `{"requestCounts","count429","throttled","throttleStatus"}` |
//! | `PUT /cost` `{"bucketSize","restoreRate"}` | replace the cost bucket |
//! | `PUT /throttle_status` `{"status":200\|429}` | HTTP status of THROTTLED answers |
//! | `POST /tokens/expire` | expire every client-credentials token |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ControlError, OrderLine, ShopifyHandle, ShopifySeedListing};
use crate::webhook::WebhookTarget;

pub(crate) fn router(shop: ShopifyHandle) -> Router {
    Router::new()
        .route(
            "/credentials",
            get(|State(s): State<ShopifyHandle>| async move { Json(s.credentials()) }),
        )
        .route(
            "/listings",
            post(seed_listing).get(|State(s): State<ShopifyHandle>| async move { Json(s.skus()) }),
        )
        .route("/listings/{sku}", get(get_listing))
        .route("/listings/{sku}/quantity", put(set_quantity))
        .route("/orders", post(place_order).get(list_orders))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/orders/{id}/fulfill", post(fulfill_order))
        .route("/webhook", put(set_webhook))
        .route(
            "/webhook/counts",
            get(|State(s): State<ShopifyHandle>| async move { Json(s.webhook_counts()) }),
        )
        .route(
            "/writes",
            get(|State(s): State<ShopifyHandle>| async move { Json(s.writes()) }),
        )
        .route(
            "/requests",
            get(|State(s): State<ShopifyHandle>| async move { Json(s.requests()) }),
        )
        .route("/stats", get(stats))
        .route("/cost", put(set_cost))
        .route("/throttle_status", put(set_throttle_status))
        .route(
            "/tokens/expire",
            post(|State(s): State<ShopifyHandle>| async move {
                s.expire_access_tokens();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(shop)
}

async fn seed_listing(
    State(shop): State<ShopifyHandle>,
    Json(seed): Json<ShopifySeedListing>,
) -> Result<Response, ControlError> {
    let sku = seed.sku.clone();
    shop.seed_listing(seed)?;
    let snapshot = shop.listing(&sku).ok_or(ControlError::UnknownSku(sku))?;
    Ok((StatusCode::CREATED, Json(snapshot)).into_response())
}

async fn get_listing(
    State(shop): State<ShopifyHandle>,
    Path(sku): Path<String>,
) -> Result<Response, ControlError> {
    shop.listing(&sku)
        .map(|l| Json(l).into_response())
        .ok_or(ControlError::UnknownSku(sku))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityBody {
    quantity: u32,
}

async fn set_quantity(
    State(shop): State<ShopifyHandle>,
    Path(sku): Path<String>,
    Json(body): Json<QuantityBody>,
) -> Result<StatusCode, ControlError> {
    shop.set_quantity_out_of_band(&sku, body.quantity)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrder {
    lines: Vec<OrderLine>,
}

async fn place_order(
    State(shop): State<ShopifyHandle>,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ControlError> {
    let id = shop.place_order(&body.lines)?;
    Ok((StatusCode::CREATED, Json(json!({"orderId": id}))).into_response())
}

async fn list_orders(State(shop): State<ShopifyHandle>) -> Response {
    let orders: Vec<_> = shop
        .order_ids()
        .iter()
        .filter_map(|id| shop.order(id))
        .collect();
    Json(orders).into_response()
}

async fn get_order(
    State(shop): State<ShopifyHandle>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    shop.order(&id)
        .map(|o| Json(o).into_response())
        .ok_or(ControlError::UnknownOrder(id))
}

async fn cancel_order(
    State(shop): State<ShopifyHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    shop.cancel_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn fulfill_order(
    State(shop): State<ShopifyHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    shop.fulfill_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_webhook(
    State(shop): State<ShopifyHandle>,
    Json(target): Json<Option<WebhookTarget>>,
) -> StatusCode {
    shop.set_webhook(target);
    StatusCode::NO_CONTENT
}

async fn stats(State(shop): State<ShopifyHandle>) -> Response {
    Json(json!({
        "requestCounts": shop.request_counts(),
        "count429": shop.count_429(),
        "throttled": shop.throttled_count(),
        "throttleStatus": shop.throttle_status(),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CostBody {
    bucket_size: f64,
    restore_rate: f64,
}

async fn set_cost(
    State(shop): State<ShopifyHandle>,
    Json(body): Json<CostBody>,
) -> Result<StatusCode, ControlError> {
    shop.set_cost_limits(body.bucket_size, body.restore_rate)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: u16,
}

async fn set_throttle_status(
    State(shop): State<ShopifyHandle>,
    Json(body): Json<StatusBody>,
) -> Result<StatusCode, ControlError> {
    shop.set_throttle_status(body.status)?;
    Ok(StatusCode::NO_CONTENT)
}
