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
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::Value;

use super::{VendureHandle, VendureSeedListing};
use crate::control_common::{self as common, impl_control_handle, no_content};

impl_control_handle!(
    VendureHandle,
    seed: VendureSeedListing,
    listing: variant -> Value,
    order_ids: order_codes,
    order_id_field: "code",
);

pub(crate) fn router(v: VendureHandle) -> Router {
    let router = Router::new()
        .route(
            "/listings",
            post(common::seed_listing::<VendureHandle>)
                .get(|State(v): State<VendureHandle>| async move { Json(v.skus()) }),
        )
        .route("/listings/{sku}", get(common::get_listing::<VendureHandle>))
        .route(
            "/listings/{sku}/quantity",
            put(common::set_quantity::<VendureHandle>),
        )
        .route(
            "/orders",
            post(common::place_order::<VendureHandle>).get(common::list_order_ids::<VendureHandle>),
        )
        .route("/orders/{id}", get(common::get_order::<VendureHandle>))
        .route(
            "/orders/{id}/cancel",
            post(common::cancel_order::<VendureHandle>),
        )
        .route(
            "/orders/{id}/ship",
            post(
                |State(v): State<VendureHandle>, Path(id): Path<String>| async move {
                    no_content(v.ship_order(&id))
                },
            ),
        )
        .route(
            "/sessions/expire",
            post(|State(v): State<VendureHandle>| async move {
                v.expire_sessions();
                StatusCode::NO_CONTENT
            }),
        );
    common::record_routes(router).with_state(v)
}
