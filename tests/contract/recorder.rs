//! A recording pass-through in front of each Prism: the connector talks to the recorder, the
//! recorder forwards every request unchanged to Prism and keeps what Prism answered — status,
//! `sl-violations` header, Prism's own problem+json errors — so a violation is reported with
//! Prism's exact message even when the connector swallows the response. Each exchange is named
//! by the spec's operationId, which gives the coverage report.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::http;

/// Largest request body the recorder buffers.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Where Prism's own errors live (`https://stoplight.io/prism/errors#VIOLATIONS` …).
pub const PRISM_ERROR_TYPE: &str = "https://stoplight.io/prism/errors#";

/// One validation message from Prism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `Error` or `Warning` (Prism's words).
    pub severity: String,
    /// `request.header`, `response.body.offers` …
    pub location: String,
    /// Prism's message, verbatim.
    pub message: String,
}

impl Finding {
    fn from_json(v: &Value) -> Finding {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Finding {
            severity: text("severity"),
            location: v
                .get("location")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .unwrap_or_default(),
            message: text("message"),
        }
    }

    /// True for `Error` severity.
    pub fn is_error(&self) -> bool {
        self.severity.eq_ignore_ascii_case("error")
    }
}

/// One request through Prism and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// HTTP method.
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// The spec's operationId, or `?` when no path matches.
    pub operation: String,
    /// The request body.
    pub request_body: Vec<u8>,
    /// Status Prism answered; 0 when the forward itself failed.
    pub status: u16,
    /// Prism's own error type (`VIOLATIONS`, `UNPROCESSABLE_ENTITY`, `UNAUTHORIZED`,
    /// `NO_PATH_MATCHED_ERROR`, `FetchError` …) when Prism generated the response.
    pub prism_error: Option<String>,
    /// Messages from the `sl-violations` header and from a Prism error's `validation`.
    pub findings: Vec<Finding>,
    /// The response body (for reports).
    pub response_body: String,
}

impl Exchange {
    /// True when Prism objected: its own error response, or an error-severity finding.
    pub fn is_violation(&self) -> bool {
        self.prism_error.is_some()
            || self.findings.iter().any(Finding::is_error)
            || self.status == 0
    }

    /// Number of entries in a bulk call's `requests` array.
    pub fn bulk_len(&self) -> Option<usize> {
        let body: Value = serde_json::from_slice(&self.request_body).ok()?;
        body.get("requests")?.as_array().map(Vec::len)
    }

    /// One line for reports.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {} ({}) -> {}",
            self.method, self.target, self.operation, self.status
        );
        if let Some(kind) = &self.prism_error {
            s.push_str(&format!(" Prism {kind}"));
        }
        for f in &self.findings {
            s.push_str(&format!(
                "\n      [{}] {}: {}",
                f.severity, f.location, f.message
            ));
        }
        if self.findings.is_empty() && (self.status >= 400 || self.status == 0) {
            let body: String = self.response_body.chars().take(600).collect();
            s.push_str(&format!("\n      {body}"));
        }
        s
    }
}

/// The operations of one spec: (method, path template split in segments, operationId).
#[derive(Debug, Clone, Default)]
pub struct Operations {
    ops: Vec<(String, Vec<String>, String)>,
}

impl Operations {
    /// Reads the (prefixed) spec.
    pub fn from_spec(path: &Path) -> Operations {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let spec: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        let mut ops = Vec::new();
        for (template, item) in spec["paths"].as_object().into_iter().flatten() {
            let segments: Vec<String> = template.split('/').map(str::to_owned).collect();
            for (method, op) in item.as_object().into_iter().flatten() {
                if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                    ops.push((method.to_ascii_uppercase(), segments.clone(), id.to_owned()));
                }
            }
        }
        Operations { ops }
    }

    /// Every operationId of the spec, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.ops.iter().map(|(_, _, id)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The operationId of `method path` (query ignored); the template with the most literal
    /// segments wins (`/offer/get_listing_fees` over `/offer/{offerId}`).
    pub fn name(&self, method: &str, target: &str) -> String {
        let path = target.split('?').next().unwrap_or("");
        let segments: Vec<&str> = path.split('/').collect();
        self.ops
            .iter()
            .filter(|(m, t, _)| {
                m == method
                    && t.len() == segments.len()
                    && t.iter()
                        .zip(&segments)
                        .all(|(t, s)| t.starts_with('{') || t == s)
            })
            .max_by_key(|(_, t, _)| t.iter().filter(|s| !s.starts_with('{')).count())
            .map_or_else(|| "?".to_owned(), |(_, _, id)| id.clone())
    }
}

#[derive(Debug)]
struct Inner {
    prism: SocketAddr,
    operations: Operations,
    exchanges: Mutex<Vec<Exchange>>,
}

/// The recorder in front of one Prism. Stops serving when dropped.
#[derive(Debug)]
pub struct Recorder {
    /// `http://127.0.0.1:PORT` — give this to the client instead of Prism's URL.
    pub url: String,
    inner: Arc<Inner>,
    shutdown: CancellationToken,
}

impl Recorder {
    /// Starts forwarding 127.0.0.1:(free port) to `prism`.
    pub async fn start(prism: SocketAddr, operations: Operations) -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the recorder");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("recorder address")
        );
        let inner = Arc::new(Inner {
            prism,
            operations,
            exchanges: Mutex::new(Vec::new()),
        });
        let router = Router::new().fallback(forward).with_state(inner.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Recorder {
            url,
            inner,
            shutdown,
        }
    }

    /// Every operationId of the spec behind this recorder.
    pub fn operation_ids(&self) -> Vec<String> {
        self.inner.operations.ids()
    }

    /// Every exchange so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.inner.exchanges.lock().expect("exchanges").clone()
    }

    /// Number of exchanges so far (a mark for [`Recorder::since`]).
    pub fn mark(&self) -> usize {
        self.inner.exchanges.lock().expect("exchanges").len()
    }

    /// Exchanges after a mark.
    pub fn since(&self, mark: usize) -> Vec<Exchange> {
        self.exchanges().into_iter().skip(mark).collect()
    }

    /// Sends a hand-made request through this recorder (and so through Prism).
    pub async fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> http::RawResponse {
        let addr: SocketAddr = self
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("recorder address");
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        http::send(addr, method, target, &headers, body.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("hand-made {method} {target}: {e}"))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn forward(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default()
        .to_vec();
    let method = parts.method.as_str().to_owned();
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut exchange = Exchange {
        operation: inner.operations.name(&method, &target),
        method,
        target,
        request_body: body,
        status: 0,
        prism_error: None,
        findings: Vec::new(),
        response_body: String::new(),
    };
    let result = http::send(
        inner.prism,
        &exchange.method,
        &exchange.target,
        &headers,
        &exchange.request_body,
    )
    .await;
    let response = match result {
        Ok(r) => {
            exchange.status = r.status;
            exchange.response_body = r.text();
            if let Some(v) = r.header("sl-violations")
                && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(v)
            {
                exchange
                    .findings
                    .extend(items.iter().map(Finding::from_json));
            }
            if r.header("content-type")
                .is_some_and(|c| c.starts_with("application/problem+json"))
                && let Ok(problem) = serde_json::from_slice::<Value>(&r.body)
                && let Some(kind) = problem["type"].as_str()
            {
                // Neither eBay nor Amazon (and so neither fake) answers problem+json: this is
                // Prism's own error, a validation one (`…#VIOLATIONS`) or a failed forward
                // (`FetchError`).
                let kind = kind.strip_prefix(PRISM_ERROR_TYPE).unwrap_or(kind);
                exchange.prism_error = Some(kind.to_owned());
                for f in problem["validation"].as_array().into_iter().flatten() {
                    let f = Finding::from_json(f);
                    if !exchange.findings.contains(&f) {
                        exchange.findings.push(f);
                    }
                }
            }
            let mut builder = Response::builder().status(r.status);
            for (name, value) in &r.headers {
                if !http::is_managed_header(name) {
                    builder = builder.header(name, value);
                }
            }
            builder
                .body(Body::from(r.body))
                .unwrap_or_else(|_| bad_gateway("unrepresentable response"))
        }
        Err(e) => {
            exchange.response_body = e.clone();
            bad_gateway(&e)
        }
    };
    inner.exchanges.lock().expect("exchanges").push(exchange);
    response
}

fn bad_gateway(why: &str) -> Response {
    let mut r = Response::new(Body::from(format!("contract recorder: {why}")));
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_prefer_literal_segments() {
        let ops = Operations {
            ops: vec![
                (
                    "POST".into(),
                    "/sell/inventory/v1/offer/{offerId}"
                        .split('/')
                        .map(Into::into)
                        .collect(),
                    "updateOffer".into(),
                ),
                (
                    "POST".into(),
                    "/sell/inventory/v1/offer/get_listing_fees"
                        .split('/')
                        .map(Into::into)
                        .collect(),
                    "getListingFees".into(),
                ),
            ],
        };
        assert_eq!(
            ops.name("POST", "/sell/inventory/v1/offer/get_listing_fees"),
            "getListingFees"
        );
        assert_eq!(
            ops.name("POST", "/sell/inventory/v1/offer/42?x=1"),
            "updateOffer"
        );
        assert_eq!(ops.name("GET", "/sell/inventory/v1/offer/42"), "?");
    }
}
