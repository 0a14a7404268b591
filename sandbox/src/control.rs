//! `/_control`: the sandbox's own HTTP control API, so a demo in another process can inject
//! faults, move the clock and read the records. Marketplace-specific control lives with each
//! marketplace (`/_control/ebay` in `ebay::control`, `/_control/amazon` in `amazon::control`).
//! Routes are listed in the crate docs.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::Shared;
use crate::amazon::AmazonHandle;
use crate::ebay::EbayHandle;
use crate::faults::{FaultId, FaultRule, FaultsHandle};

#[derive(Clone)]
struct Ctl {
    shared: Arc<Shared>,
}

impl Ctl {
    fn faults(&self) -> FaultsHandle {
        FaultsHandle {
            faults: self.shared.faults.clone(),
        }
    }
}

pub(crate) fn router(shared: Arc<Shared>, ebay: EbayHandle, amazon: AmazonHandle) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/faults/{id}", delete(remove_fault))
        .route("/latency", put(set_latency))
        .route("/clock/advance", post(advance_clock))
        .route("/writes", get(writes))
        .route("/requests", get(requests))
        .with_state(Ctl { shared })
        .nest("/ebay", crate::ebay::control::router(ebay))
        .nest("/amazon", crate::amazon::control::router(amazon))
}

async fn list_faults(State(ctl): State<Ctl>) -> Response {
    Json(ctl.faults().list()).into_response()
}

async fn add_fault(State(ctl): State<Ctl>, Json(rule): Json<FaultRule>) -> Response {
    if !(0.0..=1.0).contains(&rule.probability) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "probability must be within 0.0..=1.0"})),
        )
            .into_response();
    }
    let id = ctl.faults().add(rule);
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn clear_faults(State(ctl): State<Ctl>) -> StatusCode {
    ctl.faults().clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(ctl): State<Ctl>, Path(id): Path<FaultId>) -> StatusCode {
    if ctl.faults().remove(id) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyBody {
    ms: u64,
}

async fn set_latency(State(ctl): State<Ctl>, Json(body): Json<LatencyBody>) -> StatusCode {
    ctl.faults().set_latency(Duration::from_millis(body.ms));
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    secs: u64,
}

/// Furthest one call moves the clock (about ten years), so dates stay representable.
const MAX_ADVANCE_SECS: u64 = 10 * 366 * 86_400;

async fn advance_clock(State(ctl): State<Ctl>, Json(body): Json<AdvanceBody>) -> Response {
    if body.secs > MAX_ADVANCE_SECS {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("secs must be at most {MAX_ADVANCE_SECS}") })),
        )
            .into_response();
    }
    ctl.shared.clock.advance(Duration::from_secs(body.secs));
    Json(json!({ "now": ctl.shared.clock.now().to_rfc3339() })).into_response()
}

async fn writes(State(ctl): State<Ctl>) -> Response {
    Json(ctl.shared.recorder.writes(None)).into_response()
}

async fn requests(State(ctl): State<Ctl>) -> Response {
    Json(ctl.shared.recorder.requests(None)).into_response()
}
