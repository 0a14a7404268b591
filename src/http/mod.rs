//! The admin HTTP server: `/healthz`, `/metrics` (Prometheus text format) and `/api/status`.
//!
//! Loopback by default. When `daemon.admin_token` is set (required for a non-loopback `listen`),
//! every route but `/healthz` needs `Authorization: Bearer <token>`, compared in constant time.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::daemon::Shared;

/// Largest request body accepted by any admin route.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Serves until `cancel` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let app = router(shared);
    let r = axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
    if let Err(e) = r {
        warn!(error = %e, "Admin HTTP server stopped with an error.");
    }
}

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/status", get(api_status))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(protected)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// Constant-time equality (no early exit on the first differing byte).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let current = shared.current();
    let Some(token) = current.config.daemon.admin_token.as_ref() else {
        return next.run(req).await;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "admin token required\n",
        )
            .into_response()
    }
}

fn channel_list(shared: &Shared) -> Vec<(String, String)> {
    crate::cli::channel_list(&shared.current().config)
}

async fn api_status(State(shared): State<Arc<Shared>>) -> Response {
    match crate::status::read(&shared.store, &channel_list(&shared)).await {
        Ok(status) => {
            let current = shared.current();
            let body = serde_json::json!({
                "status": status,
                "daemon": {
                    "version": env!("CARGO_PKG_VERSION"),
                    "started_at": shared.started_at,
                    "config_path": shared.config_path.display().to_string(),
                    "config_sha256": current.file_sha256,
                    "config_loaded_at": current.loaded_at,
                    "reloads": shared.reloads(),
                    "database": crate::cli::redact_url(shared.store.url()),
                }
            });
            axum::Json(body).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unavailable: {e}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let status = match crate::status::read(&shared.store, &channel_list(&shared)).await {
        Ok(s) => s,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database unavailable: {e}\n"),
            )
                .into_response();
        }
    };
    let reloads = shared.reloads();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, samples: Vec<(String, i64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let per = |f: &dyn Fn(&crate::status::ChannelStatus) -> i64| -> Vec<(String, i64)> {
        status
            .channels
            .iter()
            .map(|c| {
                (
                    format!("{{channel=\"{}\",type=\"{}\"}}", c.channel, c.kind),
                    f(c),
                )
            })
            .collect()
    };
    gauge(
        "omnistock_up",
        "1 while the daemon runs.",
        "gauge",
        vec![(String::new(), 1)],
    );
    gauge(
        "omnistock_catalog_skus",
        "Variants in the catalog.",
        "gauge",
        vec![(String::new(), status.skus)],
    );
    gauge(
        "omnistock_orders",
        "Orders recorded across channels.",
        "gauge",
        vec![(String::new(), status.orders)],
    );
    gauge(
        "omnistock_channel_items",
        "Listings tracked per channel.",
        "gauge",
        per(&|c| c.items),
    );
    gauge(
        "omnistock_channel_dirty_items",
        "Listings whose desired value is not yet confirmed.",
        "gauge",
        per(&|c| c.dirty),
    );
    gauge(
        "omnistock_channel_oldest_dirty_seconds",
        "Age of the oldest unconfirmed change.",
        "gauge",
        per(&|c| c.oldest_dirty_secs.unwrap_or(0)),
    );
    gauge(
        "omnistock_channel_quarantined_items",
        "Listings the marketplace rejected.",
        "gauge",
        per(&|c| c.quarantined),
    );
    gauge(
        "omnistock_channel_drift_items",
        "Listings found drifted at the last reconcile.",
        "gauge",
        per(&|c| c.drift),
    );
    gauge(
        "omnistock_channel_oversold_lines",
        "Order lines that could not reserve stock.",
        "gauge",
        per(&|c| c.oversold_lines),
    );
    gauge(
        "omnistock_config_reloads_total",
        "Config reloads by result.",
        "counter",
        vec![
            ("{result=\"applied\"}".to_owned(), reloads.applied as i64),
            ("{result=\"refused\"}".to_owned(), reloads.refused as i64),
        ],
    );
    gauge(
        "omnistock_config_last_reload_ok",
        "0 when the last config change was refused (the daemon runs on the previous config).",
        "gauge",
        vec![(String::new(), i64::from(reloads.last_error.is_none()))],
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
