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
use serde_json::Value;

use super::{
    AmazonHandle, AmazonListingSnapshot, AmazonSeedListing, ControlError, JSON_LISTINGS_FEED,
    OrderLine,
};
use crate::control_common::{self as common, HoldBody, impl_control_handle, no_content};
use crate::ratelimit::RateLimit;
use crate::record::Money;

impl_control_handle!(
    AmazonHandle,
    seed: AmazonSeedListing,
    listing: listing -> AmazonListingSnapshot,
    order_ids: order_ids,
);

pub(crate) fn router(amazon: AmazonHandle) -> Router {
    let router = Router::new()
        .route(
            "/listings",
            post(common::seed_listing::<AmazonHandle>)
                .get(|State(a): State<AmazonHandle>| async move { Json(a.skus()) }),
        )
        .route("/listings/{sku}", get(common::get_listing::<AmazonHandle>))
        .route(
            "/listings/{sku}/quantity",
            put(common::set_quantity::<AmazonHandle>),
        )
        .route("/listings/{sku}/price", put(set_price))
        .route(
            "/orders",
            post(place_order).get(common::list_orders::<AmazonHandle>),
        )
        .route("/orders/fba", post(place_fba_order))
        .route("/orders/{id}", get(common::get_order::<AmazonHandle>))
        .route(
            "/orders/{id}/cancel",
            post(common::cancel_order::<AmazonHandle>),
        )
        .route(
            "/orders/{id}/ship",
            post(
                |State(a): State<AmazonHandle>, Path(id): Path<String>| async move {
                    no_content(a.ship_order(&id))
                },
            ),
        )
        .route(
            "/feeds",
            get(|State(a): State<AmazonHandle>| async move { Json(a.feeds()) }),
        )
        .route("/feeds/{id}/report", get(feed_report))
        .route("/feeds/hold", put(hold_feeds))
        .route("/feeds/fail_next", post(fail_next_feeds));
    common::record_routes(router)
        .route(
            "/stats",
            get(|State(a): State<AmazonHandle>| async move {
                Json(Value::Object(common::stats_body(
                    a.request_counts(),
                    a.count_429(),
                    Some(a.throttled_count()),
                )))
            }),
        )
        .route("/rate_limits/{operation}", put(set_rate_limit))
        .route(
            "/tokens/expire",
            post(|State(a): State<AmazonHandle>| async move {
                a.expire_access_tokens();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(amazon)
}

async fn set_price(
    State(amazon): State<AmazonHandle>,
    Path(sku): Path<String>,
    Json(price): Json<Money>,
) -> Result<StatusCode, ControlError> {
    no_content(amazon.set_price_out_of_band(&sku, price))
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
    Ok(common::order_created("orderId", id))
}

async fn place_fba_order(
    State(amazon): State<AmazonHandle>,
    Json(body): Json<common::PlaceOrderBody>,
) -> Result<Response, ControlError> {
    let id = amazon.place_fba_order(body.lines())?;
    Ok(common::order_created("orderId", id))
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
