//! What the per-marketplace control routers (`/_control/{marketplace}`) share: the
//! [`ControlHandle`] trait the marketplace handles implement, generic handlers over it, the JSON
//! bodies they take and the response helpers. Each marketplace's `control.rs` keeps its own route
//! table and its marketplace-specific routes; the paths, bodies and answers are unchanged.
//! [`ControlError`] answers `{"error": "<message>"}` through its `IntoResponse` impl in
//! `ebay::control` (next to the private `ControlError::status`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ebay::{ControlError, OrderLine};
use crate::record::{RequestRecord, WriteRecord};

/// A marketplace handle as its control router sees it.
pub(crate) trait ControlHandle: Clone + Send + Sync + 'static {
    /// The `POST /listings` body.
    type Seed: DeserializeOwned + Send + 'static;
    /// What `POST /listings` answers with (201).
    type Seeded: Serialize;
    /// What `GET /listings/{sku}` answers with.
    type Listing: Serialize;
    /// The field of the `POST /orders` answer that carries the new order's id.
    const ORDER_ID_FIELD: &'static str = "orderId";

    /// Seeds a listing and returns what `POST /listings` shows.
    fn seed_for_control(&self, seed: Self::Seed) -> Result<Self::Seeded, ControlError>;
    /// One listing, `None` for an unknown SKU.
    fn control_listing(&self, sku: &str) -> Option<Self::Listing>;
    /// Drift: changes the quantity buyers see, out of band.
    fn set_quantity_out_of_band(&self, sku: &str, quantity: u32) -> Result<(), ControlError>;
    /// Places an order and returns its id.
    fn place_order(&self, lines: &[OrderLine]) -> Result<String, ControlError>;
    /// Cancels an order.
    fn cancel_order(&self, id: &str) -> Result<(), ControlError>;
    /// One order as the control API renders it.
    fn order(&self, id: &str) -> Option<Value>;
    /// Every order id (or code), oldest first.
    fn control_order_ids(&self) -> Vec<String>;
    /// The marketplace's write records.
    fn writes(&self) -> Vec<WriteRecord>;
    /// The marketplace's request records.
    fn requests(&self) -> Vec<RequestRecord>;
}

/// `Ok(())` → 204, errors as `{"error"}`.
pub(crate) fn no_content(result: Result<(), ControlError>) -> Result<StatusCode, ControlError> {
    result.map(|()| StatusCode::NO_CONTENT)
}

/// 201 with `{field: id}`.
pub(crate) fn order_created(field: &str, id: String) -> Response {
    let mut body = Map::new();
    body.insert(field.to_owned(), Value::String(id));
    (StatusCode::CREATED, Json(Value::Object(body))).into_response()
}

/// The `GET /stats` body: `{"requestCounts","count429"}` plus `"throttled"` when given.
pub(crate) fn stats_body(
    request_counts: impl Serialize,
    count_429: u64,
    throttled: Option<u64>,
) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("requestCounts".into(), json!(request_counts));
    body.insert("count429".into(), json!(count_429));
    if let Some(throttled) = throttled {
        body.insert("throttled".into(), json!(throttled));
    }
    body
}

/// `{"quantity":n}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuantityBody {
    pub quantity: u32,
}

/// `{"hold":bool}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoldBody {
    pub hold: bool,
}

/// `{"lines":[{"sku","quantity"}]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaceOrderBody {
    lines: Vec<OrderLine>,
}

impl PlaceOrderBody {
    pub(crate) fn lines(&self) -> &[OrderLine] {
        &self.lines
    }
}

/// `POST /listings` → 201 with what the handle shows for the new listing.
pub(crate) async fn seed_listing<H: ControlHandle>(
    State(h): State<H>,
    Json(seed): Json<H::Seed>,
) -> Result<Response, ControlError> {
    let seeded = h.seed_for_control(seed)?;
    Ok((StatusCode::CREATED, Json(seeded)).into_response())
}

/// `GET /listings/{sku}`.
pub(crate) async fn get_listing<H: ControlHandle>(
    State(h): State<H>,
    Path(sku): Path<String>,
) -> Result<Response, ControlError> {
    h.control_listing(&sku)
        .map(|l| Json(l).into_response())
        .ok_or(ControlError::UnknownSku(sku))
}

/// `PUT /listings/{sku}/quantity` `{"quantity":n}` → 204.
pub(crate) async fn set_quantity<H: ControlHandle>(
    State(h): State<H>,
    Path(sku): Path<String>,
    Json(body): Json<QuantityBody>,
) -> Result<StatusCode, ControlError> {
    no_content(h.set_quantity_out_of_band(&sku, body.quantity))
}

/// `POST /orders` `{"lines":[…]}` → 201 `{ORDER_ID_FIELD: id}`.
pub(crate) async fn place_order<H: ControlHandle>(
    State(h): State<H>,
    Json(body): Json<PlaceOrderBody>,
) -> Result<Response, ControlError> {
    let id = h.place_order(&body.lines)?;
    Ok(order_created(H::ORDER_ID_FIELD, id))
}

/// `GET /orders`: every order, rendered.
pub(crate) async fn list_orders<H: ControlHandle>(State(h): State<H>) -> Response {
    let orders: Vec<_> = h
        .control_order_ids()
        .iter()
        .filter_map(|id| h.order(id))
        .collect();
    Json(orders).into_response()
}

/// `GET /orders`: every order id.
pub(crate) async fn list_order_ids<H: ControlHandle>(State(h): State<H>) -> Response {
    Json(h.control_order_ids()).into_response()
}

/// `GET /orders/{id}`.
pub(crate) async fn get_order<H: ControlHandle>(
    State(h): State<H>,
    Path(id): Path<String>,
) -> Result<Response, ControlError> {
    h.order(&id)
        .map(|o| Json(o).into_response())
        .ok_or(ControlError::UnknownOrder(id))
}

/// `POST /orders/{id}/cancel` → 204.
pub(crate) async fn cancel_order<H: ControlHandle>(
    State(h): State<H>,
    Path(id): Path<String>,
) -> Result<StatusCode, ControlError> {
    no_content(h.cancel_order(&id))
}

/// `GET /writes`.
pub(crate) async fn writes<H: ControlHandle>(State(h): State<H>) -> Json<Vec<WriteRecord>> {
    Json(h.writes())
}

/// `GET /requests`.
pub(crate) async fn requests<H: ControlHandle>(State(h): State<H>) -> Json<Vec<RequestRecord>> {
    Json(h.requests())
}

/// `GET /writes` and `GET /requests` for one marketplace.
pub(crate) fn record_routes<H: ControlHandle>(router: Router<H>) -> Router<H> {
    router
        .route("/writes", axum::routing::get(writes::<H>))
        .route("/requests", axum::routing::get(requests::<H>))
}

/// Implements [`ControlHandle`] by delegating to the handle's inherent methods of the same names.
/// `listing`/`order_ids` name the inherent getters behind `control_listing` and
/// `control_order_ids`. Without `seeded`, `POST /listings` seeds through the inherent
/// `seed_listing` (returning `()`) and answers with the new listing; with it, it answers with what
/// `seed_listing` returns.
macro_rules! impl_control_handle {
    (
        $handle:ty,
        seed: $seed:ty,
        listing: $listing:ident -> $listing_ty:ty,
        order_ids: $order_ids:ident
        $(, order_id_field: $field:literal)? $(,)?
    ) => {
        $crate::control_common::impl_control_handle!(@impl $handle, $seed, $listing_ty,
            $listing -> $listing_ty, $order_ids, [$($field)?],
            |h: &$handle, seed: $seed| {
                let sku = seed.sku.clone();
                <$handle>::seed_listing(h, seed)?;
                <$handle>::$listing(h, &sku).ok_or($crate::ebay::ControlError::UnknownSku(sku))
            });
    };
    (
        $handle:ty,
        seed: $seed:ty => seeded: $seeded:ty,
        listing: $listing:ident -> $listing_ty:ty,
        order_ids: $order_ids:ident $(,)?
    ) => {
        $crate::control_common::impl_control_handle!(@impl $handle, $seed, $seeded,
            $listing -> $listing_ty, $order_ids, [],
            |h: &$handle, seed: $seed| <$handle>::seed_listing(h, seed));
    };
    (@impl $handle:ty, $seed:ty, $seeded:ty, $listing:ident -> $listing_ty:ty, $order_ids:ident, [$($field:literal)?],
        $seed_fn:expr) => {
        impl $crate::control_common::ControlHandle for $handle {
            type Seed = $seed;
            type Seeded = $seeded;
            type Listing = $listing_ty;
            $(const ORDER_ID_FIELD: &'static str = $field;)?

            fn seed_for_control(
                &self,
                seed: Self::Seed,
            ) -> Result<Self::Seeded, $crate::ebay::ControlError> {
                ($seed_fn)(self, seed)
            }
            fn control_listing(&self, sku: &str) -> Option<Self::Listing> {
                <$handle>::$listing(self, sku)
            }
            fn set_quantity_out_of_band(
                &self,
                sku: &str,
                quantity: u32,
            ) -> Result<(), $crate::ebay::ControlError> {
                <$handle>::set_quantity_out_of_band(self, sku, quantity)
            }
            fn place_order(
                &self,
                lines: &[$crate::ebay::OrderLine],
            ) -> Result<String, $crate::ebay::ControlError> {
                <$handle>::place_order(self, lines)
            }
            fn cancel_order(&self, id: &str) -> Result<(), $crate::ebay::ControlError> {
                <$handle>::cancel_order(self, id)
            }
            fn order(&self, id: &str) -> Option<serde_json::Value> {
                <$handle>::order(self, id)
            }
            fn control_order_ids(&self) -> Vec<String> {
                <$handle>::$order_ids(self)
            }
            fn writes(&self) -> Vec<$crate::record::WriteRecord> {
                <$handle>::writes(self)
            }
            fn requests(&self) -> Vec<$crate::record::RequestRecord> {
                <$handle>::requests(self)
            }
        }
    };
}
pub(crate) use impl_control_handle;
