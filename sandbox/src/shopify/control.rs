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
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{ControlError, ShopifyHandle, ShopifyListingSnapshot, ShopifySeedListing};
use crate::control_common::{self as common, impl_control_handle, no_content};
use crate::webhook::WebhookTarget;

impl_control_handle!(
    ShopifyHandle,
    seed: ShopifySeedListing,
    listing: listing -> ShopifyListingSnapshot,
    order_ids: order_ids,
);

pub(crate) fn router(shop: ShopifyHandle) -> Router {
    let router = Router::new()
        .route(
            "/credentials",
            get(|State(s): State<ShopifyHandle>| async move { Json(s.credentials()) }),
        )
        .route(
            "/listings",
            post(common::seed_listing::<ShopifyHandle>)
                .get(|State(s): State<ShopifyHandle>| async move { Json(s.skus()) }),
        )
        .route("/listings/{sku}", get(common::get_listing::<ShopifyHandle>))
        .route(
            "/listings/{sku}/quantity",
            put(common::set_quantity::<ShopifyHandle>),
        )
        .route(
            "/orders",
            post(common::place_order::<ShopifyHandle>).get(common::list_orders::<ShopifyHandle>),
        )
        .route("/orders/{id}", get(common::get_order::<ShopifyHandle>))
        .route(
            "/orders/{id}/cancel",
            post(common::cancel_order::<ShopifyHandle>),
        )
        .route(
            "/orders/{id}/fulfill",
            post(
                |State(s): State<ShopifyHandle>, Path(id): Path<String>| async move {
                    no_content(s.fulfill_order(&id))
                },
            ),
        )
        .route(
            "/webhook",
            put(
                |State(s): State<ShopifyHandle>, Json(target): Json<Option<WebhookTarget>>| async move {
                    s.set_webhook(target);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/webhook/counts",
            get(|State(s): State<ShopifyHandle>| async move { Json(s.webhook_counts()) }),
        );
    common::record_routes(router)
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

async fn stats(State(shop): State<ShopifyHandle>) -> Json<Value> {
    let mut body = common::stats_body(
        shop.request_counts(),
        shop.count_429(),
        Some(shop.throttled_count()),
    );
    body.insert(
        "throttleStatus".into(),
        serde_json::json!(shop.throttle_status()),
    );
    Json(Value::Object(body))
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
    no_content(shop.set_cost_limits(body.bucket_size, body.restore_rate))
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
    no_content(shop.set_throttle_status(body.status))
}
