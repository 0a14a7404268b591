//! `/_control/vendure`: the [`VendureHandle`] over HTTP, for a demo driving a sandbox in another
//! process. Unauthenticated, loopback only. Errors are `{"error": "<message>"}` with 404 (unknown
//! SKU/order), 409 (not listed, not enough stock, wrong order state) or 400.
//!
//! | route | effect |
//! |---|---|
//! | `POST /listings` ([`VendureSeedListing`]) | seed a product + variant → 201 the variant |
//! | `GET /listings` | every SKU |
//! | `GET /listings/{sku}` | the variant as the Admin API renders it |
//! | `PUT /listings/{sku}/quantity` `{"quantity":n}` | drift: buyers now see n |
//! | `POST /orders` `{"lines":[{"sku","quantity"}]}` | guest order, payment settled → 201 `{"code"}` |
//! | `GET /orders`, `GET /orders/{code}` | order codes / one order |
//! | `POST /orders/{code}/cancel`, `POST /orders/{code}/ship` | lifecycle → 204 |
//! | `POST /sessions/expire` | drop every session |
//! | `GET /writes`, `GET /requests` | Vendure's records |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ControlError, OrderLine, VendureHandle, VendureSeedListing};

pub(crate) fn router(v: VendureHandle) -> Router {
    Router::new()
        .route("/listings", post(seed_listing).get(list_skus))
        .route("/listings/{sku}", get(get_listing))
        .route("/listings/{sku}/quantity", put(set_quantity))
        .route("/orders", post(place_order).get(list_orders))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/orders/{id}/ship", post(ship_order))
        .route(
            "/sessions/expire",
            post(|State(v): State<VendureHandle>| async move {
                v.expire_sessions();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/writes",
            get(|State(v): State<VendureHandle>| async move { Json(v.writes()) }),
        )
        .route(
            "/requests",
            get(|State(v): State<VendureHandle>| async move { Json(v.requests()) }),
        )
        .with_state(v)
}

async fn seed_listing(
    State(v): State<VendureHandle>,
    Json(seed): Json<VendureSeedListing>,
) -> Result<Response, ControlError> {
    let sku = seed.sku.clone();
    v.seed_listing(seed)?;
    let variant = v.variant(&sku).ok_or(ControlError::UnknownSku(sku))?;
    Ok((StatusCode::CREATED, Json(variant)).into_response())
}

async fn list_skus(State(v): State<VendureHandle>) -> Response {
    Json(v.skus()).into_response()
}

async fn get_listing(
    State(v): State<VendureHandle>,
    Path(sku): Path<String>,
) -> Result<Response, ControlError> {
    let variant = v.variant(&sku).ok_or(ControlError::UnknownSku(sku))?;
    Ok(Json(variant).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuantityBody {
    quantity: u32,
}

async fn set_quantity(
    State(v): State<VendureHandle>,
    Path(sku): Path<String>,
    Json(body): Json<QuantityBody>,
) -> Result<StatusCode, ControlError> {
    v.set_quantity_out_of_band(&sku, body.quantity)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderBody {
    lines: Vec<OrderLine>,
}

async fn place_order(
    State(v): State<VendureHandle>,
    Json(body): Json<OrderBody>,
) -> Result<Response, ControlError> {
    let code = v.place_order(&body.lines)?;
    Ok((StatusCode::CREATED, Json(json!({ "code": code }))).into_response())
}

async fn list_orders(State(v): State<VendureHandle>) -> Response {
    Json(v.order_codes()).into_response()
}

async fn get_order(
    State(v): State<VendureHandle>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    let order = v.order(&id).ok_or(ControlError::UnknownOrder(id))?;
    Ok(Json(order).into_response())
}

async fn cancel_order(
    State(v): State<VendureHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    v.cancel_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ship_order(
    State(v): State<VendureHandle>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    v.ship_order(&id)?;
    Ok(StatusCode::NO_CONTENT)
}
