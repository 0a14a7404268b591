//! The front door every marketplace request passes: simulated network latency, request counting,
//! and the fault rules (`faults`) applied before and after the marketplace's own handler.
//!
//! Each marketplace describes itself with a [`Market`]: its name, how to name the operation a
//! request calls (so faults, counters and rate limits speak the marketplace's own operation names),
//! and its bodies for a system error and a throttled call. The gate stores the [`Operation`] in the
//! request extensions for the marketplace's auth and rate-limit layer and its handlers.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::faults::FaultKind;

/// The operation a request calls, as the marketplace names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operation {
    /// Operation name (eBay: the spec's operationId).
    pub name: &'static str,
    /// Rate-limit group the operation draws from.
    pub group: &'static str,
    /// Whether a read-only scope suffices.
    pub readonly: bool,
}

/// What the gate needs to know of a marketplace.
#[derive(Debug)]
pub(crate) struct Market {
    /// Mount name, also the `marketplace` of fault rules and records.
    pub name: &'static str,
    /// Names the operation for a method and a path relative to the mount; `None` = not ours.
    pub classify: fn(&Method, &str) -> Option<Operation>,
    /// Body of a system error with this status.
    pub system_error_body: fn(StatusCode) -> String,
    /// Body of a throttled (429) call.
    pub throttled_body: fn() -> String,
}

/// Closes this request's connection without a response when cancelled (set by the accept loop).
#[derive(Debug, Clone)]
pub(crate) struct ConnKill(pub CancellationToken);

/// State of one marketplace's gate.
#[derive(Clone)]
pub(crate) struct GateCtx {
    pub shared: Arc<Shared>,
    pub market: &'static Market,
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The middleware (install with `route_layer` so only matched routes pass through it).
pub(crate) async fn gate(State(ctx): State<GateCtx>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let Some(op) = (ctx.market.classify)(req.method(), &path) else {
        return next.run(req).await;
    };
    let market = ctx.market;
    let network = ctx.shared.faults.latency();
    if !network.is_zero() {
        tokio::time::sleep(network).await;
    }
    ctx.shared
        .recorder
        .request(market.name, op.name, req.uri().query());
    let plan = ctx.shared.faults.plan(market.name, op.name, &path);
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let kill = req.extensions().get::<ConnKill>().cloned();
    req.extensions_mut().insert(op);
    let Some(action) = plan.action else {
        return next.run(req).await;
    };
    if let FaultKind::Echo { status } = action {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
            .await
            .unwrap_or_default();
        return echo(status, &parts.method, &parts.uri, &parts.headers, &bytes);
    }
    tracing::debug!(marketplace = market.name, operation = op.name, fault = ?action, "Injecting fault.");
    match action {
        FaultKind::ServerError { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = body.unwrap_or_else(|| (market.system_error_body)(status));
            json_response(status, body)
        }
        FaultKind::TooManyRequests { retry_after_secs } => {
            ctx.shared.recorder.too_many_requests(market.name, false);
            let mut resp = json_response(StatusCode::TOO_MANY_REQUESTS, (market.throttled_body)());
            if let Some(secs) = retry_after_secs {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        FaultKind::Hang { after_processing } => {
            if after_processing {
                drop(next.run(req).await);
            }
            std::future::pending().await
        }
        FaultKind::DropConnection { after_processing } => {
            if after_processing {
                drop(next.run(req).await);
            }
            if let Some(kill) = kill {
                kill.0.cancel();
            }
            std::future::pending().await
        }
        FaultKind::MalformedBody => malformed(next.run(req).await).await,
        FaultKind::Latency { .. } | FaultKind::RejectSkus { .. } | FaultKind::Echo { .. } => {
            next.run(req).await
        }
    }
}

/// The answer of [`FaultKind::Echo`]: the request, as text, in every error field clients read
/// (eBay/Amazon/GraphQL `errors[].message`, eBay `longMessage`, Meta `error.message`, OAuth
/// `error_description`, WooCommerce `message`).
pub(crate) fn echo(
    status: u16,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Response {
    // Credentials first, so that a client cutting long messages still shows them (or not).
    let mut lines: Vec<(bool, String)> = headers
        .iter()
        .map(|(name, value)| {
            let n = name.as_str();
            let credential = ["auth", "token", "key", "secret"]
                .iter()
                .any(|w| n.contains(w));
            (
                !credential,
                format!("{n}: {}", String::from_utf8_lossy(value.as_bytes())),
            )
        })
        .collect();
    lines.sort_by_key(|(rest, _)| *rest);
    let mut text = String::new();
    for (_, line) in lines {
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(&format!("{method} {uri}\n"));
    text.push_str(&String::from_utf8_lossy(body));
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "errors": [{"errorId": 25001, "code": "ECHO", "message": text, "longMessage": text,
                    "details": text, "extensions": {"code": "INTERNAL_SERVER_ERROR"}}],
        "error": {"message": text, "type": "OAuthException", "code": 1},
        "error_description": text,
        "code": "echo",
        "message": text,
    });
    json_response(status, body.to_string())
}

/// The real response with its JSON body cut in half (a 204 becomes a 200 carrying a fragment).
async fn malformed(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    let cut = if bytes.len() >= 2 {
        bytes.slice(..bytes.len() / 2)
    } else {
        Bytes::from_static(b"{\"errors\":[{\"errorId\":")
    };
    if parts.status == StatusCode::NO_CONTENT {
        parts.status = StatusCode::OK;
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(cut))
}
