//! `/_control/meta`: the [`MetaHandle`] over HTTP, for a demo driving a sandbox in another
//! process. Unauthenticated, loopback only. Errors are `{"error": "<message>"}` with 404 (unknown
//! SKU/order), 409 (not listed, not enough stock, wrong order state) or 400.
//!
//! | route | effect |
//! |---|---|
//! | `GET /credentials` | [`MetaCredentials`](super::MetaCredentials) |
//! | `POST /listings` ([`MetaSeedListing`]) | seed an item → 201 (the item as the products edge shows it) |
//! | `GET /listings` | every retailer id |
//! | `GET /listings/{sku}` | the item |
//! | `PUT /listings/{sku}/quantity` `{"quantity":n}` | drift: change the quantity out of band |
//! | `POST /orders` `{"lines":[{"sku","quantity"}]}` | place an order → 201 `{"orderId"}` |
//! | `GET /orders`, `GET /orders/{id}` | order ids; one order with every field |
//! | `POST /orders/{id}/cancel`, `POST /orders/{id}/ship` | lifecycle → 204 |
//! | `GET /batches` | [`MetaBatchSnapshot`](super::MetaBatchSnapshot)s |
//! | `PUT /batches/hold` `{"hold":bool}` | hold or release handles → 204 |
//! | `PUT /buc/{use_case}` [`BucLimit`] or `null` | set/remove a BUC budget → 204 |
//! | `PUT /webhook` [`WebhookTarget`] or `null` | set/remove the webhook target → 204 |
//! | `GET /webhook` | [`WebhookCounts`](crate::WebhookCounts) |
//! | `PUT /token/revoked` `{"revoked":bool}` | make the token invalid (190) or valid → 204 |
//! | `GET /writes`, `GET /requests` | Meta's records |
//! | `GET /stats` | `{"requestCounts":{op:n},"count429"}` |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{BucLimit, ControlError, MetaHandle, MetaSeedListing, OrderLine};
use crate::webhook::WebhookTarget;

pub(crate) fn router(meta: MetaHandle) -> Router {
    Router::new()
        .route(
            "/credentials",
            get(|State(m): State<MetaHandle>| async move { Json(m.credentials()) }),
        )
        .route("/listings", post(seed_listing).get(list_skus))
        .route("/listings/{sku}", get(get_listing))
        .route("/listings/{sku}/quantity", put(set_quantity))
        .route("/orders", post(place_order).get(list_orders))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/orders/{id}/ship", post(ship_order))
        .route(
            "/batches",
            get(|State(m): State<MetaHandle>| async move { Json(m.batches()) }),
        )
        .route("/batches/hold", put(hold_batches))
        .route("/buc/{use_case}", put(set_buc))
        .route("/webhook", put(set_webhook).get(webhook_counts))
        .route("/token/revoked", put(revoke_token))
        .route(
            "/writes",
            get(|State(m): State<MetaHandle>| async move { Json(m.writes()) }),
        )
        .route(
            "/requests",
            get(|State(m): State<MetaHandle>| async move { Json(m.requests()) }),
        )
        .route("/stats", get(stats))
        .with_state(meta)
}

async fn seed_listing(
    State(meta): State<MetaHandle>,
    Json(seed): Json<MetaSeedListing>,
) -> Result<Response, ControlError> {
    let sku = seed.sku.clone();
    meta.seed_listing(seed)?;
    let item = meta.product(&sku).ok_or(ControlError::UnknownSku(sku))?;
    Ok((StatusCode::CREATED, Json(item)).into_response())
}

async fn list_skus(State(meta): State<MetaHandle>) -> Response {
    Json(meta.skus()).into_response()
}

async fn get_listing(
    State(meta): State<MetaHandle>,
    Path(sku): Path<String>,
) -> Result<Response, ControlError> {
    meta.product(&sku)
        .map(|p| Json(p).into_response())
        .ok_or(ControlError::UnknownSku(sku))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityBody {
    quantity: u32,
}

async fn set_quantity(
    State(meta): State<MetaHandle>,
    Path(sku): Path<String>,
    Json(body): Json<QuantityBody>,
) -> Result<StatusCode, ControlError> {
    meta.set_quantity_out_of_band(&sku, body.quantity)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrder {
    lines: Vec<OrderLine>,
}

async fn place_order(
    State(meta): State<MetaHandle>,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ControlError> {
    let id = meta.place_order(&body.lines)?;
    Ok((StatusCode::CREATED, Json(json!({"orderId": id}))).into_response())
}

async fn list_orders(State(meta): State<MetaHandle>) -> Response {
    Json(meta.order_ids()).into_response()
}

async fn get_order(
    State(meta): State<MetaHandle>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    meta.order(&id)
        .map(|o| Json(o).into_response())
        .ok_or(ControlError::UnknownOrder(id))
}

async fn cancel_order(
    State(meta): State<MetaHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    meta.cancel_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ship_order(
    State(meta): State<MetaHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    meta.ship_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    hold: bool,
}

async fn hold_batches(State(meta): State<MetaHandle>, Json(body): Json<HoldBody>) -> StatusCode {
    meta.hold_batches(body.hold);
    StatusCode::NO_CONTENT
}

async fn set_buc(
    State(meta): State<MetaHandle>,
    Path(use_case): Path<String>,
    Json(limit): Json<Option<BucLimit>>,
) -> StatusCode {
    meta.set_buc_limit(&use_case, limit);
    StatusCode::NO_CONTENT
}

async fn set_webhook(
    State(meta): State<MetaHandle>,
    Json(target): Json<Option<WebhookTarget>>,
) -> Result<StatusCode, ControlError> {
    if let Some(t) = &target
        && !(0.0..=1.0).contains(&t.duplicate_probability)
    {
        return Err(ControlError::Invalid(
            "duplicate_probability must be within 0.0..=1.0".into(),
        ));
    }
    meta.set_webhook(target);
    Ok(StatusCode::NO_CONTENT)
}

async fn webhook_counts(State(meta): State<MetaHandle>) -> Response {
    Json(meta.webhook_counts()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    revoked: bool,
}

async fn revoke_token(State(meta): State<MetaHandle>, Json(body): Json<RevokeBody>) -> StatusCode {
    meta.revoke_token(body.revoked);
    StatusCode::NO_CONTENT
}

async fn stats(State(meta): State<MetaHandle>) -> Response {
    Json(json!({
        "requestCounts": meta.request_counts(),
        "count429": meta.count_429(),
    }))
    .into_response()
}
