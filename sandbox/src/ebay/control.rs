//! `/_control/ebay`: the [`EbayHandle`] over HTTP, for a demo driving a sandbox in another
//! process. Unauthenticated, loopback only. Errors are `{"error": "<message>"}` with 404 (unknown
//! SKU/order), 409 (not listed, not enough stock, wrong order state) or 400.
//!
//! | route | effect |
//! |---|---|
//! | `POST /orders` `{"lines":[{"sku","quantity"}],"buyer"?}` | place an order → 201 `{"orderId"}` |
//! | `GET /orders`, `GET /orders/{id}` | orders as getOrder renders them |
//! | `POST /orders/{id}/cancel`, `POST /orders/{id}/ship` | lifecycle → 204 |
//! | `POST /listings` ([`SeedListing`]) | seed a listing → 201 [`SeededListing`](super::SeededListing) |
//! | `GET /listings/{sku}` | [`ListingSnapshot`](super::ListingSnapshot) |
//! | `PUT /listings/{sku}/quantity` `{"quantity":n}` | drift: change quantity out of band |
//! | `PUT /listings/{sku}/price` `{"value","currency"}` | drift: change price out of band |
//! | `GET /writes`, `GET /requests` | eBay's records |
//! | `GET /stats` | `{"requestCounts":{op:n},"count429","throttled"}` |
//! | `PUT /rate_limits/{group}` [`RateLimit`] or `null` | set/remove a bucket |
//! | `POST /tokens/expire` | invalidate every access token |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ControlError, EbayHandle, ListingSnapshot, OrderLine, SeedListing, SeededListing};
use crate::control_common::{self as common, impl_control_handle, no_content};
use crate::ratelimit::RateLimit;
use crate::record::Money;

/// Every marketplace's control errors answer `{"error": "<message>"}` with [`ControlError`]'s
/// status.
impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.status(), Json(json!({"error": self.to_string()}))).into_response()
    }
}

impl_control_handle!(
    EbayHandle,
    seed: SeedListing => seeded: SeededListing,
    listing: listing -> ListingSnapshot,
    order_ids: order_ids,
);

pub(crate) fn router(ebay: EbayHandle) -> Router {
    let router =
        Router::new()
            .route(
                "/orders",
                post(place_order).get(common::list_orders::<EbayHandle>),
            )
            .route("/orders/{id}", get(common::get_order::<EbayHandle>))
            .route(
                "/orders/{id}/cancel",
                post(common::cancel_order::<EbayHandle>),
            )
            .route(
                "/orders/{id}/ship",
                post(
                    |State(e): State<EbayHandle>, Path(id): Path<String>| async move {
                        no_content(e.ship_order(&id))
                    },
                ),
            )
            .route("/listings", post(common::seed_listing::<EbayHandle>))
            .route("/listings/{sku}", get(common::get_listing::<EbayHandle>))
            .route(
                "/listings/{sku}/quantity",
                put(common::set_quantity::<EbayHandle>),
            )
            .route(
                "/listings/{sku}/price",
                put(
                    |State(e): State<EbayHandle>,
                     Path(sku): Path<String>,
                     Json(price): Json<Money>| async move {
                        no_content(e.set_price_out_of_band(&sku, price))
                    },
                ),
            );
    common::record_routes(router)
        .route(
            "/stats",
            get(|State(e): State<EbayHandle>| async move {
                Json(Value::Object(common::stats_body(
                    e.request_counts(),
                    e.count_429(),
                    Some(e.throttled_count()),
                )))
            }),
        )
        .route("/rate_limits/{group}", put(set_rate_limit))
        .route(
            "/tokens/expire",
            post(|State(e): State<EbayHandle>| async move {
                e.expire_access_tokens();
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(ebay)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrder {
    lines: Vec<OrderLine>,
    #[serde(default)]
    buyer: Option<String>,
}

async fn place_order(
    State(ebay): State<EbayHandle>,
    Json(body): Json<PlaceOrder>,
) -> Result<Response, ControlError> {
    let buyer = body.buyer.as_deref().unwrap_or(super::DEFAULT_BUYER);
    let id = ebay.place_order_as(buyer, &body.lines)?;
    Ok(common::order_created("orderId", id))
}

async fn set_rate_limit(
    State(ebay): State<EbayHandle>,
    Path(group): Path<String>,
    Json(limit): Json<Option<RateLimit>>,
) -> Result<StatusCode, ControlError> {
    if ![
        super::GROUP_INVENTORY,
        super::GROUP_FULFILLMENT,
        super::GROUP_IDENTITY,
    ]
    .contains(&group.as_str())
    {
        return Err(ControlError::Invalid(format!(
            "unknown rate-limit group {group:?}"
        )));
    }
    if let Some(l) = limit
        && (l.rate_per_sec.is_nan() || l.rate_per_sec < 0.0)
    {
        return Err(ControlError::Invalid(
            "rate_per_sec must be 0 or more".into(),
        ));
    }
    ebay.set_rate_limit(&group, limit);
    Ok(StatusCode::NO_CONTENT)
}
