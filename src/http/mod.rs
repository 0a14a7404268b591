//! The admin HTTP server: `/healthz`, `/metrics` (Prometheus text format) and `/api/status`.
//!
//! Two sources feed both routes: the database ([`crate::status`], the same numbers
//! `omnistock status` prints, shared by every instance) and this process's engine (per running
//! channel: push and poll counters, the lease, the connector's own [`ConnectorStats`]; and the
//! channels that could not start). Engine counters start at 0 when the process starts, as
//! Prometheus counters do. Every per-channel series carries `channel` and `type` labels.
//!
//! `/webhooks/{channel}` receives marketplace webhooks ([`webhooks`]): authenticated by the
//! marketplace's signature instead of the admin token, with its own body limit.
//!
//! Loopback by default. When `daemon.admin_token` is set (required for a non-loopback `listen`),
//! every route but `/healthz` needs `Authorization: Bearer <token>`, compared in constant time.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use omnistock_connectors::{ConnectorStats, ErrorClass};
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::warn;

pub mod webhooks;

use crate::daemon::Shared;
use crate::sync::bulk::BulkCounters;
use crate::sync::dispatch::PushCounters;
use crate::sync::engine::{ChannelProblem, Engine, PollCounters};

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
    // Marketplaces cannot send the admin token: a delivery proves itself by its signature.
    let hooks = Router::new()
        .route(
            "/webhooks/{channel}",
            axum::routing::post(webhooks::receive).get(webhooks::handshake),
        )
        .layer(DefaultBodyLimit::max(webhooks::MAX_WEBHOOK_BYTES));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(protected)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(hooks)
        .with_state(shared)
}

/// Constant-time equality: compares the SHA-256 digests of both sides byte by byte without an
/// early exit, so the time taken tells neither where they differ nor how long the secret is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
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

/// One running channel as the engine sees it now, for `/api/status` and `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct EngineChannel {
    /// Channel id.
    pub channel: String,
    /// Marketplace type.
    pub kind: String,
    /// True while this process holds the channel's lease (only the holder pushes and polls).
    pub lease_held: bool,
    /// The lease's epoch while held.
    pub lease_epoch: Option<i64>,
    /// The dispatcher's counters.
    pub push: PushCounters,
    /// The order poller's counters.
    pub polls: PollCounters,
    /// Bulk jobs (Amazon feeds): submitted, done, aborted, resumed, running.
    pub bulk: BulkCounters,
    /// What the connector counted (requests, 429s, rate budgets, its own counters).
    pub connector: ConnectorStats,
    /// The newest error of the channel: the last failed push call, else the last failed poll.
    pub last_error: Option<String>,
}

/// The engine's side of `/api/status`: running channels and the ones that could not start.
#[derive(Debug, Clone, Serialize)]
pub struct EngineStatus {
    /// This process's lease owner id.
    pub owner: String,
    /// Live instances sharing the database (this one included).
    pub instances: usize,
    /// Channels this instance takes at most: `ceil(channels / instances)`.
    pub fair_share: usize,
    /// Running channels, by id.
    pub channels: Vec<EngineChannel>,
    /// Channels that could not start, with why.
    pub problems: Vec<ChannelProblem>,
}

fn lock<T: Clone>(m: &Mutex<T>) -> T {
    m.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Reads every runtime's counters (cheap: short locks and atomics, no I/O).
pub fn engine_status(engine: &Engine) -> EngineStatus {
    let channels = engine
        .runtimes()
        .iter()
        .map(|rt| {
            let push = lock(&rt.counters);
            let polls = lock(&rt.polls);
            let lease_epoch = rt.lease.borrow().as_ref().map(|l| l.epoch);
            EngineChannel {
                channel: rt.spec.id.clone(),
                kind: rt.spec.kind.clone(),
                lease_held: lease_epoch.is_some(),
                lease_epoch,
                last_error: push.last_error.clone().or_else(|| polls.last_error.clone()),
                push,
                polls,
                bulk: rt.bulk.counters(),
                connector: rt.spec.connector.stats(),
            }
        })
        .collect();
    EngineStatus {
        owner: engine.owner().to_owned(),
        instances: engine.live_instances(),
        fair_share: engine.fair_share(),
        channels,
        problems: engine.problems(),
    }
}

async fn api_status(State(shared): State<Arc<Shared>>) -> Response {
    match crate::status::read(&shared.store, &channel_list(&shared)).await {
        Ok(status) => {
            let current = shared.current();
            let engine = engine_status(&shared.engine);
            let body = serde_json::json!({
                "status": status,
                "engine": engine,
                "webhooks": shared.webhooks.snapshot(),
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

/// A label value escaped for the Prometheus text format (backslash, double quote, newline).
pub fn escape_label_value(v: &str) -> Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `{a="x",b="y"}` with escaped values; empty for no labels.
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A sample value in the text format (`+Inf`, `NaN` spelled as Prometheus wants).
fn sample_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

/// Prometheus text exposition, one metric family at a time (HELP and TYPE once, then its samples).
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, help: &str, kind: &str, samples: Vec<(String, f64)>) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(self.out, "{name}{labels} {}", sample_value(v));
        }
    }
}

/// Every class a whole call can fail with, so each counter exists from the start at 0.
const ERROR_CLASSES: [ErrorClass; 5] = [
    ErrorClass::RateLimited,
    ErrorClass::Transient,
    ErrorClass::Unknown,
    ErrorClass::Auth,
    ErrorClass::Permanent,
];

/// The engine's per-channel families (push, poll, lease, connector) and the channel problems.
fn engine_metrics(m: &mut Exposition, engine: &EngineStatus) {
    let chans = &engine.channels;
    let base = |c: &EngineChannel| labels(&[("channel", &c.channel), ("type", &c.kind)]);
    let with = |c: &EngineChannel, k: &str, v: &str| {
        labels(&[("channel", &c.channel), ("type", &c.kind), (k, v)])
    };
    let per = |f: &dyn Fn(&EngineChannel) -> f64| -> Vec<(String, f64)> {
        chans.iter().map(|c| (base(c), f(c))).collect()
    };
    m.family(
        "omnistock_push_calls_total",
        "Push calls sent to the marketplace (stock and listing batches).",
        "counter",
        per(&|c| c.push.calls as f64),
    );
    m.family(
        "omnistock_push_items_total",
        "Pushed items by what the marketplace said: applied, retry, rejected (quarantined), not_listed.",
        "counter",
        chans
            .iter()
            .flat_map(|c| {
                [
                    ("applied", c.push.applied),
                    ("retry", c.push.retried),
                    ("rejected", c.push.rejected),
                    ("not_listed", c.push.not_listed),
                ]
                .map(|(o, n)| (with(c, "outcome", o), n as f64))
            })
            .collect(),
    );
    m.family(
        "omnistock_push_failed_calls_total",
        "Push calls that failed as a whole, by error class.",
        "counter",
        chans
            .iter()
            .flat_map(|c| {
                let mut by_class: BTreeMap<&str, u64> =
                    ERROR_CLASSES.iter().map(|k| (k.as_str(), 0)).collect();
                for (class, n) in &c.push.failed_calls {
                    *by_class.entry(class.as_str()).or_default() += n;
                }
                by_class
                    .into_iter()
                    .map(|(class, n)| (with(c, "class", class), n as f64))
                    .collect::<Vec<_>>()
            })
            .collect(),
    );
    m.family(
        "omnistock_push_superseded_total",
        "Push results not recorded because a newer version was already confirmed.",
        "counter",
        per(&|c| c.push.superseded as f64),
    );
    m.family(
        "omnistock_channel_consecutive_failures",
        "Failed push rounds in a row (drives the channel backoff; 0 when healthy).",
        "gauge",
        per(&|c| f64::from(c.push.consecutive_failures)),
    );
    m.family(
        "omnistock_channel_lease_held",
        "1 while this process owns the channel (pushes and polls it).",
        "gauge",
        per(&|c| f64::from(u8::from(c.lease_held))),
    );
    m.family(
        "omnistock_order_polls_total",
        "Order polls that finished.",
        "counter",
        per(&|c| c.polls.polls as f64),
    );
    m.family(
        "omnistock_order_poll_failures_total",
        "Order polls that failed.",
        "counter",
        per(&|c| c.polls.failures as f64),
    );
    m.family(
        "omnistock_orders_ingested_total",
        "Orders ingested: new (first seen) or updated (a status move applied).",
        "counter",
        chans
            .iter()
            .flat_map(|c| {
                [("new", c.polls.new_orders), ("updated", c.polls.updates)]
                    .map(|(k, n)| (with(c, "kind", k), n as f64))
            })
            .collect(),
    );
    m.family(
        "omnistock_oversold_lines_total",
        "Order lines ingested that could not reserve stock.",
        "counter",
        per(&|c| c.polls.oversold_lines as f64),
    );
    m.family(
        "omnistock_bulk_jobs_total",
        "Bulk jobs (Amazon JSON_LISTINGS_FEED) by outcome: submitted, done, aborted (FATAL/CANCELLED, every item retried), resumed after a restart or takeover.",
        "counter",
        chans
            .iter()
            .flat_map(|c| {
                [
                    ("submitted", c.bulk.submitted),
                    ("done", c.bulk.done),
                    ("aborted", c.bulk.aborted),
                    ("resumed", c.bulk.resumed),
                ]
                .map(|(k, n)| (with(c, "outcome", k), n as f64))
            })
            .collect(),
    );
    m.family(
        "omnistock_bulk_jobs_running",
        "Bulk jobs this process is submitting or polling now.",
        "gauge",
        per(&|c| c.bulk.running as f64),
    );
    m.family(
        "omnistock_bulk_items_total",
        "Items sent in bulk jobs.",
        "counter",
        per(&|c| c.bulk.items as f64),
    );
    m.family(
        "omnistock_order_last_poll_timestamp_seconds",
        "When the last order poll finished (unix seconds; 0 before the first).",
        "gauge",
        per(&|c| c.polls.last_poll_at.unwrap_or(0) as f64 / 1000.0),
    );
    m.family(
        "omnistock_connector_requests_total",
        "HTTP requests the connector sent (token calls included).",
        "counter",
        per(&|c| c.connector.requests as f64),
    );
    m.family(
        "omnistock_connector_rate_limited_total",
        "Answers that were 429 or the marketplace's own throttling signal.",
        "counter",
        per(&|c| c.connector.rate_limited as f64),
    );
    m.family(
        "omnistock_connector_errors_total",
        "Connector calls that failed as a whole, other than 429s.",
        "counter",
        per(&|c| c.connector.errors as f64),
    );
    m.family(
        "omnistock_connector_token_refreshes_total",
        "Access-token refreshes.",
        "counter",
        per(&|c| c.connector.token_refreshes as f64),
    );
    m.family(
        "omnistock_connector_budget_wait_seconds_total",
        "Time calls spent waiting for the rate budget.",
        "counter",
        per(&|c| c.connector.budget_wait_ms as f64 / 1000.0),
    );
    m.family(
        "omnistock_connector_budget_pauses_total",
        "Rate-budget pauses ordered after 429s.",
        "counter",
        per(&|c| c.connector.budget_pauses as f64),
    );
    m.family(
        "omnistock_rate_budget_per_second",
        "Sustained request rate in force per operation (config default, adjusted by the marketplace).",
        "gauge",
        chans
            .iter()
            .flat_map(|c| {
                c.connector
                    .budgets
                    .iter()
                    .map(|b| (with(c, "operation", &b.operation), b.rate_per_sec))
                    .collect::<Vec<_>>()
            })
            .collect(),
    );
    m.family(
        "omnistock_connector_extra",
        "Connector-specific counters and gauges by name (eBay: revisions_max_today, revision_held_items …).",
        "gauge",
        chans
            .iter()
            .flat_map(|c| {
                c.connector
                    .extra
                    .iter()
                    .map(|(name, v)| (with(c, "name", name), *v as f64))
                    .collect::<Vec<_>>()
            })
            .collect(),
    );
    m.family(
        "omnistock_channel_problem",
        "1 for each enabled channel that could not start (no connector for its type, bad settings).",
        "gauge",
        engine
            .problems
            .iter()
            .map(|p| (labels(&[("channel", &p.channel), ("type", &p.kind)]), 1.0))
            .collect(),
    );
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    // Counts only: the lists `status` shows are not metrics.
    let status = match crate::status::read_limited(&shared.store, &channel_list(&shared), 0).await {
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
    let mut m = Exposition::default();
    let per = |f: &dyn Fn(&crate::status::ChannelStatus) -> i64| -> Vec<(String, f64)> {
        status
            .channels
            .iter()
            .map(|c| {
                (
                    labels(&[("channel", &c.channel), ("type", &c.kind)]),
                    f(c) as f64,
                )
            })
            .collect()
    };
    let one = |v: i64| vec![(String::new(), v as f64)];
    m.family("omnistock_up", "1 while the daemon runs.", "gauge", one(1));
    m.family(
        "omnistock_catalog_skus",
        "Variants in the catalog.",
        "gauge",
        one(status.skus),
    );
    m.family(
        "omnistock_orders",
        "Orders recorded across channels.",
        "gauge",
        one(status.orders),
    );
    m.family(
        "omnistock_channel_items",
        "Listings tracked per channel.",
        "gauge",
        per(&|c| c.items),
    );
    m.family(
        "omnistock_channel_dirty_items",
        "Listings whose desired value is not yet confirmed.",
        "gauge",
        per(&|c| c.dirty),
    );
    m.family(
        "omnistock_channel_oldest_dirty_seconds",
        "Age of the oldest unconfirmed change.",
        "gauge",
        per(&|c| c.oldest_dirty_secs.unwrap_or(0)),
    );
    m.family(
        "omnistock_channel_quarantined_items",
        "Listings the marketplace rejected.",
        "gauge",
        per(&|c| c.quarantined),
    );
    m.family(
        "omnistock_channel_drift_items",
        "Listings found drifted at the last reconcile.",
        "gauge",
        per(&|c| c.drift),
    );
    m.family(
        "omnistock_channel_oversold_lines",
        "Order lines that could not reserve stock.",
        "gauge",
        per(&|c| c.oversold_lines),
    );
    m.family(
        "omnistock_config_reloads_total",
        "Config reloads by result.",
        "counter",
        vec![
            (labels(&[("result", "applied")]), reloads.applied as f64),
            (labels(&[("result", "refused")]), reloads.refused as f64),
        ],
    );
    m.family(
        "omnistock_config_last_reload_ok",
        "0 when the last config change was refused (the daemon runs on the previous config).",
        "gauge",
        one(i64::from(reloads.last_error.is_none())),
    );
    engine_metrics(&mut m, &engine_status(&shared.engine));
    let hooks = shared.webhooks.snapshot();
    let mut samples = Vec::new();
    for (channel, c) in &hooks {
        for (outcome, n) in [
            ("accepted", c.accepted),
            ("duplicate", c.duplicate),
            ("rejected", c.rejected),
            ("oversized", c.oversized),
        ] {
            samples.push((
                labels(&[("channel", channel), ("outcome", outcome)]),
                n as f64,
            ));
        }
    }
    m.family(
        "omnistock_webhooks_total",
        "Webhook deliveries by outcome: accepted (poll woken), duplicate, rejected (bad signature), oversized.",
        "counter",
        samples,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.out,
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
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"abc"));
        assert!(constant_time_eq(b"", b""));
        let token = "admin-token-0123456789abcdef";
        assert!(constant_time_eq(token.as_bytes(), token.as_bytes()));
        assert!(!constant_time_eq(
            token.as_bytes(),
            token.to_uppercase().as_bytes()
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("ebay_us"), "ebay_us");
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(
            labels(&[("channel", "x\"y"), ("type", "ebay")]),
            "{channel=\"x\\\"y\",type=\"ebay\"}"
        );
        assert_eq!(labels(&[]), "");
    }

    #[test]
    fn sample_values_use_prometheus_spelling() {
        assert_eq!(sample_value(3.0), "3");
        assert_eq!(sample_value(0.25), "0.25");
        assert_eq!(sample_value(f64::INFINITY), "+Inf");
        assert_eq!(sample_value(f64::NAN), "NaN");
    }

    #[test]
    fn each_family_has_help_and_type_once() {
        let mut m = Exposition::default();
        m.family(
            "omnistock_x_total",
            "X.",
            "counter",
            vec![
                (labels(&[("channel", "a")]), 1.0),
                (labels(&[("channel", "b")]), 2.0),
            ],
        );
        assert_eq!(
            m.out,
            "# HELP omnistock_x_total X.\n# TYPE omnistock_x_total counter\n\
             omnistock_x_total{channel=\"a\"} 1\nomnistock_x_total{channel=\"b\"} 2\n"
        );
    }
}
