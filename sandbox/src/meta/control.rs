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
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{BucLimit, ControlError, MetaHandle, MetaSeedListing};
use crate::control_common::{self as common, HoldBody, impl_control_handle, no_content};
use crate::webhook::WebhookTarget;

impl_control_handle!(
    MetaHandle,
    seed: MetaSeedListing,
    listing: product -> Value,
    order_ids: order_ids,
);

pub(crate) fn router(meta: MetaHandle) -> Router {
    let router = Router::new()
        .route(
            "/credentials",
            get(|State(m): State<MetaHandle>| async move { Json(m.credentials()) }),
        )
        .route(
            "/listings",
            post(common::seed_listing::<MetaHandle>)
                .get(|State(m): State<MetaHandle>| async move { Json(m.skus()) }),
        )
        .route("/listings/{sku}", get(common::get_listing::<MetaHandle>))
        .route(
            "/listings/{sku}/quantity",
            put(common::set_quantity::<MetaHandle>),
        )
        .route(
            "/orders",
            post(common::place_order::<MetaHandle>).get(common::list_order_ids::<MetaHandle>),
        )
        .route("/orders/{id}", get(common::get_order::<MetaHandle>))
        .route(
            "/orders/{id}/cancel",
            post(common::cancel_order::<MetaHandle>),
        )
        .route(
            "/orders/{id}/ship",
            post(
                |State(m): State<MetaHandle>, Path(id): Path<String>| async move {
                    no_content(m.ship_order(&id))
                },
            ),
        )
        .route(
            "/batches",
            get(|State(m): State<MetaHandle>| async move { Json(m.batches()) }),
        )
        .route(
            "/batches/hold",
            put(
                |State(m): State<MetaHandle>, Json(body): Json<HoldBody>| async move {
                    m.hold_batches(body.hold);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route("/buc/{use_case}", put(set_buc))
        .route(
            "/webhook",
            put(set_webhook)
                .get(|State(m): State<MetaHandle>| async move { Json(m.webhook_counts()) }),
        )
        .route("/token/revoked", put(revoke_token));
    common::record_routes(router)
        .route(
            "/stats",
            get(|State(m): State<MetaHandle>| async move {
                Json(Value::Object(common::stats_body(
                    m.request_counts(),
                    m.count_429(),
                    None,
                )))
            }),
        )
        .with_state(meta)
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    revoked: bool,
}

async fn revoke_token(State(meta): State<MetaHandle>, Json(body): Json<RevokeBody>) -> StatusCode {
    meta.revoke_token(body.revoked);
    StatusCode::NO_CONTENT
}
