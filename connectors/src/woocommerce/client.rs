//! WooCommerce over HTTP: HTTP Basic with the consumer key pair on every request, the rate budget
//! in front of every call, and the whole-call error classification of WordPress's answers —
//! which are not always JSON (themes, security plugins and proxies answer with HTML pages).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::config::WooCommerceConfig;
use super::mapping::WpError;
use crate::common::http::{self, HttpResponse, error_for_status, truncate};
use crate::common::{Budget, Secret};
use crate::error::ConnectorError;

/// Response header with the number of pages of a collection.
pub(crate) const TOTAL_PAGES_HEADER: &str = "x-wp-totalpages";

/// Counters for [`crate::Connector::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub errors: AtomicU64,
}

/// An answer read in full, with `X-WP-TotalPages` when the server sent one.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub resp: HttpResponse,
    pub total_pages: Option<u64>,
}

/// The HTTP side of one shop.
#[derive(Debug)]
pub(crate) struct WooClient {
    http: reqwest::Client,
    base: String,
    consumer_key: Secret,
    consumer_secret: Secret,
    throttle_pause: Duration,
    pub(crate) budget: Budget,
    pub(crate) counters: Counters,
}

/// True when the body is (the start of) an HTML page rather than JSON.
fn looks_like_html(body: &[u8]) -> bool {
    let start: Vec<u8> = body
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take(15)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    start.starts_with(b"<!doctype") || start.starts_with(b"<html") || start.starts_with(b"<")
}

impl WooClient {
    pub(crate) fn new(config: &WooCommerceConfig, budget: Budget) -> Result<Self, ConnectorError> {
        Ok(WooClient {
            http: http::build_client(&config.limits, http::is_loopback(&config.endpoint))?,
            base: config.api_base(),
            consumer_key: config.consumer_key.clone(),
            consumer_secret: config.consumer_secret.clone(),
            throttle_pause: config.limits.throttle_pause,
            budget,
            counters: Counters::default(),
        })
    }

    /// The URL of `path` (for messages: it holds no credential).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request. Every answer comes back except those about the whole account:
    /// 401/403 (`Auth`), 429 and 503-with-`Retry-After` (`RateLimited`, budget paused).
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, ConnectorError> {
        self.budget.acquire(super::OP_REST).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let idempotent = method == Method::GET;
        let mut builder = self
            .http
            .request(method, self.url(path))
            .basic_auth(
                self.consumer_key.expose(),
                Some(self.consumer_secret.expose()),
            )
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec()));
        }
        let (resp, pages) = http::send_reading_header(builder, idempotent, TOTAL_PAGES_HEADER)
            .await
            .inspect_err(|_| self.note_error())?;
        let total_pages = pages.and_then(|p| p.trim().parse::<u64>().ok());
        match resp.status {
            429 => Err(self.throttled(&resp)),
            503 if resp.retry_after.is_some() => Err(self.throttled(&resp)),
            401 | 403 => Err(self.error(&resp, path)),
            _ => Ok(Reply { resp, total_pages }),
        }
    }

    /// A GET whose 2xx body is parsed into `T`; any other answer is classified.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<(T, Option<u64>), ConnectorError> {
        let reply = self.send(Method::GET, path, None).await?;
        if !reply.resp.is_success() {
            return Err(self.error(&reply.resp, path));
        }
        Ok((self.parse(&reply.resp)?, reply.total_pages))
    }

    /// Parses a 2xx body, with a clear message when it is an HTML page or cut short.
    pub(crate) fn parse<T: DeserializeOwned>(
        &self,
        resp: &HttpResponse,
    ) -> Result<T, ConnectorError> {
        if looks_like_html(&resp.body) {
            self.note_error();
            return Err(ConnectorError::Malformed {
                status: Some(resp.status),
                message: format!(
                    "WooCommerce answered with an HTML page instead of JSON (a theme, security \
                     plugin or proxy in front of the REST API?): {}",
                    truncate(&resp.snippet(), 200)
                ),
            });
        }
        resp.json().inspect_err(|_| self.note_error())
    }

    /// A throttled answer: pause the budget for `Retry-After` (else the configured default) so
    /// every caller waits, and report it.
    fn throttled(&self, resp: &HttpResponse) -> ConnectorError {
        self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        self.budget.pause(
            super::OP_REST,
            resp.retry_after.unwrap_or(self.throttle_pause),
        );
        let detail = match WpError::parse(&resp.body) {
            Some(e) => format!("{}: {}", e.code, e.message),
            None => truncate(&resp.snippet(), 200),
        };
        ConnectorError::RateLimited {
            retry_after: resp.retry_after,
            message: format!(
                "WooCommerce (or a proxy in front of it) answered HTTP {}: {detail}",
                resp.status
            ),
        }
    }

    pub(crate) fn note_error(&self) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The whole-call error for an answer the connector cannot use, classified by status, with
    /// WordPress's `code` (401 `woocommerce_rest_cannot_view`, `…_authentication_error` → Auth;
    /// 404 `rest_no_route` → Permanent naming the URL …).
    pub(crate) fn error(&self, resp: &HttpResponse, path: &str) -> ConnectorError {
        self.note_error();
        let url = self.url(path.split('?').next().unwrap_or(path));
        match WpError::parse(&resp.body) {
            Some(e) if resp.status == 404 && e.code == "rest_no_route" => {
                ConnectorError::Permanent {
                    status: Some(404),
                    code: Some(e.code),
                    message: format!(
                        "WordPress has no REST route {url}: check that `endpoint` is the site URL, \
                         WooCommerce is active, pretty permalinks are on and nothing blocks /wp-json"
                    ),
                }
            }
            Some(e) => error_for_status(
                resp.status,
                resp.retry_after,
                Some(e.code.clone()),
                format!("{}: {} ({url})", e.code, e.message),
            ),
            None => {
                let kind = if looks_like_html(&resp.body) {
                    "an HTML page"
                } else if resp.body.is_empty() {
                    "an empty body"
                } else {
                    "a body that is not a WordPress error"
                };
                let hint = if resp.status == 404 {
                    " (is `endpoint` the WordPress site URL, with the REST API reachable?)"
                } else {
                    ""
                };
                error_for_status(
                    resp.status,
                    resp.retry_after,
                    None,
                    format!(
                        "{url} answered HTTP {} with {kind}{hint}: {}",
                        resp.status,
                        truncate(&resp.snippet(), 200)
                    ),
                )
            }
        }
    }
}
