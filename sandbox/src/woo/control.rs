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
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{ControlError, WooHandle, WooListingSnapshot, WooSeedListing};
use crate::control_common::{self as common, impl_control_handle, no_content};
use crate::ratelimit::RateLimit;
use crate::record::Money;
use crate::webhook::WebhookTarget;

impl_control_handle!(
    WooHandle,
    seed: WooSeedListing,
    listing: listing -> WooListingSnapshot,
    order_ids: order_ids,
);

pub(crate) fn router(woo: WooHandle) -> Router {
    let router = Router::new()
        .route(
            "/listings",
            post(common::seed_listing::<WooHandle>)
                .get(|State(w): State<WooHandle>| async move { Json(w.skus()) }),
        )
        .route(
            "/listings/{sku}",
            get(common::get_listing::<WooHandle>).delete(
                |State(w): State<WooHandle>, Path(sku): Path<String>| async move {
                    no_content(w.delete_out_of_band(&sku))
                },
            ),
        )
        .route(
            "/listings/{sku}/quantity",
            put(common::set_quantity::<WooHandle>),
        )
        .route("/listings/{sku}/price", put(set_price))
        .route("/listings/{sku}/status", put(set_status))
        .route(
            "/orders",
            post(common::place_order::<WooHandle>).get(common::list_orders::<WooHandle>),
        )
        .route("/orders/{id}", get(common::get_order::<WooHandle>))
        .route(
            "/orders/{id}/cancel",
            post(common::cancel_order::<WooHandle>),
        )
        .route(
            "/orders/{id}/complete",
            post(
                |State(w): State<WooHandle>, Path(id): Path<String>| async move {
                    no_content(w.complete_order(&id))
                },
            ),
        )
        .route("/orders/{id}/status", put(set_order_status))
        .route(
            "/webhook",
            put(
                |State(w): State<WooHandle>, Json(target): Json<Option<WebhookTarget>>| async move {
                    w.set_webhook(target);
                    StatusCode::NO_CONTENT
                },
            )
            .get(|State(w): State<WooHandle>| async move { Json(w.webhook_counts()) }),
        );
    common::record_routes(router)
        .route(
            "/stats",
            get(|State(w): State<WooHandle>| async move {
                Json(Value::Object(common::stats_body(
                    w.request_counts(),
                    w.count_429(),
                    Some(w.throttled_count()),
                )))
            }),
        )
        .route(
            "/rate_limit",
            put(
                |State(w): State<WooHandle>, Json(limit): Json<Option<RateLimit>>| async move {
                    w.set_rate_limit(limit);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(woo)
}

async fn set_price(
    State(woo): State<WooHandle>,
    Path(sku): Path<String>,
    Json(price): Json<Money>,
) -> Result<StatusCode, ControlError> {
    no_content(woo.set_price_out_of_band(&sku, price))
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
    no_content(woo.set_status_out_of_band(&sku, &body.status))
}

async fn set_order_status(
    State(woo): State<WooHandle>,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<StatusCode, ControlError> {
    no_content(woo.set_order_status(&id, &body.status))
}
