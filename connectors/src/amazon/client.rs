//! SP-API over HTTP: the Login with Amazon refresh-token grant, `x-amz-access-token` with one
//! retry after a refused token, the per-operation rate budget in front of every call, the server's
//! `x-amzn-RateLimit-Limit`, 429 pauses, and the transfers to and from presigned document URLs.
//!
//! [`AmazonClient::call`] answers every HTTP status except the ones that concern the whole account
//! (401/403 after one refresh → `Auth`, 429 → `RateLimited` after pausing the operation's budget);
//! item-level 4xx/5xx come back as responses for the connector to classify per item.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use reqwest::Method;

use super::config::{AmazonConfig, OP_TOKEN};
use super::mapping::ErrorList;
use crate::common::http::{self, HttpResponse, error_for_status, truncate};
use crate::common::{
    AccessToken, Budget, FetchedToken, Secret, TokenCache, TokenStats, read_token_response,
};
use crate::error::ConnectorError;

/// The header every SP-API call carries its LWA access token in.
pub(crate) const ACCESS_TOKEN_HEADER: &str = "x-amz-access-token";
/// The header Amazon announces an operation's rate in (best effort, on 2xx/400/404 only).
pub(crate) const RATE_LIMIT_HEADER: &str = "x-amzn-RateLimit-Limit";
/// Lifetime assumed when LWA leaves out `expires_in` (Amazon documents one hour).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// Shortest pause after a 429.
const MIN_THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// Largest processing report downloaded (compressed or not).
pub(crate) const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// Which SP-API an operation belongs to (its base URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// Listings Items API 2021-08-01.
    Listings,
    /// Feeds API 2021-06-30.
    Feeds,
    /// Orders API 2026-01-01.
    Orders,
}

/// One request, kept whole so it can be sent again after a token refresh.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The budget operation (`patchListingsItem` …).
    pub operation: &'static str,
    pub api: Api,
    pub method: Method,
    /// Path and query below the API's base, already encoded.
    pub path: String,
    /// JSON body.
    pub body: Option<Vec<u8>>,
}

impl Request {
    /// A GET.
    pub(crate) fn get(operation: &'static str, api: Api, path: impl Into<String>) -> Self {
        Request {
            operation,
            api,
            method: Method::GET,
            path: path.into(),
            body: None,
        }
    }

    /// A DELETE.
    pub(crate) fn delete(operation: &'static str, api: Api, path: impl Into<String>) -> Self {
        Request {
            method: Method::DELETE,
            ..Request::get(operation, api, path)
        }
    }

    /// A request with a JSON body.
    pub(crate) fn json(
        operation: &'static str,
        api: Api,
        method: Method,
        path: impl Into<String>,
        body: &serde_json::Value,
    ) -> Self {
        Request {
            operation,
            api,
            method,
            path: path.into(),
            body: Some(serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec())),
        }
    }
}

/// Counters for [`crate::Connector::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub errors: AtomicU64,
}

/// The HTTP side of one Amazon account.
#[derive(Debug)]
pub(crate) struct AmazonClient {
    http: reqwest::Client,
    listings_base: String,
    feeds_base: String,
    orders_base: String,
    token_endpoint: String,
    client_id: String,
    client_secret: Secret,
    refresh_token: Secret,
    /// Plain-http document URLs are accepted only when every endpoint is on this machine.
    allow_plain_http: bool,
    throttle_pause: Duration,
    /// The operator's ceiling on any rate the server announces.
    max_rate: f64,
    tokens: TokenCache,
    /// 429s in a row per operation (the pause doubles with each).
    throttled_in_a_row: Mutex<HashMap<&'static str, u32>>,
    pub(crate) budget: Budget,
    pub(crate) counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AmazonClient {
    pub(crate) fn new(config: &AmazonConfig, budget: Budget) -> Result<Self, ConnectorError> {
        let direct = config.all_loopback();
        Ok(AmazonClient {
            http: http::build_client(&config.limits, direct)?,
            listings_base: config.listings_base(),
            feeds_base: config.feeds_base(),
            orders_base: config.orders_base(),
            token_endpoint: config.token_endpoint.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            refresh_token: config.refresh_token.clone(),
            allow_plain_http: direct,
            throttle_pause: config.limits.throttle_pause,
            max_rate: config.limits.rate_per_sec,
            tokens: TokenCache::new(),
            throttled_in_a_row: Mutex::new(HashMap::new()),
            budget,
            counters: Counters::default(),
        })
    }

    /// Token refreshes, failures and invalidations so far.
    pub(crate) fn token_stats(&self) -> TokenStats {
        self.tokens.stats()
    }

    /// A valid access token (cached, or refreshed once for all concurrent callers).
    pub(crate) async fn token(&self) -> Result<AccessToken, ConnectorError> {
        self.tokens.get(|| self.fetch_token()).await
    }

    /// The LWA refresh-token grant: `POST token_endpoint` with the form
    /// `grant_type=refresh_token&refresh_token=…&client_id=…&client_secret=…`.
    #[tracing::instrument(skip_all, err(level = "warn"))]
    async fn fetch_token(&self) -> Result<FetchedToken, ConnectorError> {
        self.budget.acquire(OP_TOKEN).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let request = self
            .http
            .post(&self.token_endpoint)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh_token.expose()),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose()),
            ]);
        // Asking again only mints another token: safe to treat as a read.
        let resp = http::send(request, true)
            .await
            .inspect_err(|_| self.note_error())?;
        if resp.status == 429 {
            return Err(self.throttled(OP_TOKEN, &resp));
        }
        let token = read_token_response(&resp, "Login with Amazon", DEFAULT_TOKEN_LIFETIME)
            .inspect_err(|_| self.note_error())?;
        tracing::debug!(lifetime = ?token.lifetime, "Refreshed the Amazon access token.");
        Ok(token)
    }

    /// Sends `req` with the access token; after a 401 or 403 (Amazon answers an expired token
    /// with 403 `Unauthorized`) drops the token, refreshes and sends once more. Returns every
    /// answer but 401/403 (`Auth`) and 429 (`RateLimited`, the operation's budget paused).
    pub(crate) async fn call(&self, req: &Request) -> Result<HttpResponse, ConnectorError> {
        let token = self.token().await?;
        let mut resp = self.send(req, &token).await?;
        if matches!(resp.status, 401 | 403) {
            tracing::info!(
                operation = req.operation,
                status = resp.status,
                "Amazon refused the access token; refreshing and retrying once."
            );
            self.tokens.invalidate(&token).await;
            let token = self.token().await?;
            resp = self.send(req, &token).await?;
        }
        match resp.status {
            429 => Err(self.throttled(req.operation, &resp)),
            401 | 403 => {
                self.note_error();
                let errors = ErrorList::parse(&resp.body);
                Err(ConnectorError::Auth {
                    status: Some(resp.status),
                    message: if errors.errors.is_empty() {
                        resp.snippet()
                    } else {
                        errors.message()
                    },
                })
            }
            _ => {
                lock(&self.throttled_in_a_row).remove(req.operation);
                Ok(resp)
            }
        }
    }

    async fn send(
        &self,
        req: &Request,
        token: &AccessToken,
    ) -> Result<HttpResponse, ConnectorError> {
        self.budget.acquire(req.operation).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let base = match req.api {
            Api::Listings => &self.listings_base,
            Api::Feeds => &self.feeds_base,
            Api::Orders => &self.orders_base,
        };
        let mut builder = self
            .http
            .request(req.method.clone(), format!("{base}{}", req.path))
            .header(ACCESS_TOKEN_HEADER, token.value.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &req.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let (resp, rate) = http::send_reading_header(
            builder,
            matches!(req.method, Method::GET),
            RATE_LIMIT_HEADER,
        )
        .await
        .inspect_err(|_| self.note_error())?;
        if resp.status != 429
            && let Some(rate) = rate.as_deref().and_then(|r| r.trim().parse::<f64>().ok())
            && rate.is_finite()
            && rate > 0.0
        {
            self.budget.adjust(req.operation, rate.min(self.max_rate));
        }
        Ok(resp)
    }

    /// A 429: pause the operation so every caller waits, and report it. Amazon documents no
    /// `Retry-After`; without one the pause is one token's refill time (at least 1 s), doubling
    /// with each 429 in a row, at most `limits.throttle_pause` (or one token's time when that is
    /// longer).
    fn throttled(&self, operation: &'static str, resp: &HttpResponse) -> ConnectorError {
        self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        // Requests already in flight when the first 429 paused the operation come back 429 too;
        // they are the same episode, not more 429s "in a row", and must not stretch the pause.
        let already_paused = self.budget.paused_for(operation).is_some();
        let in_a_row = {
            let mut map = lock(&self.throttled_in_a_row);
            let n = map.entry(operation).or_insert(0);
            if !already_paused || *n == 0 {
                *n = n.saturating_add(1);
            }
            *n
        };
        let wait = resp
            .retry_after
            .unwrap_or_else(|| self.throttle_wait(operation, in_a_row));
        self.budget.pause(operation, wait);
        let errors = ErrorList::parse(&resp.body);
        ConnectorError::RateLimited {
            retry_after: Some(wait),
            message: if errors.errors.is_empty() {
                format!("{operation} throttled: {}", resp.snippet())
            } else {
                format!("{operation} throttled: {}", errors.message())
            },
        }
    }

    /// The pause after the `in_a_row`-th 429 in a row of `operation`.
    pub(crate) fn throttle_wait(&self, operation: &str, in_a_row: u32) -> Duration {
        let (rate, _) = self.budget.limit(operation);
        let one_token = Duration::try_from_secs_f64(1.0 / rate.max(1e-6))
            .unwrap_or(Duration::MAX)
            .max(MIN_THROTTLE_PAUSE);
        let cap = self
            .throttle_pause
            .max(MIN_THROTTLE_PAUSE)
            .max(one_token.min(Duration::from_secs(3600)));
        let base = one_token.min(cap);
        let factor = 1u32
            .checked_shl(in_a_row.saturating_sub(1).min(16))
            .unwrap_or(u32::MAX);
        base.saturating_mul(factor).min(cap)
    }

    fn note_error(&self) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The whole-call error for an answer the connector cannot use, classified by status, with
    /// Amazon's first error code as the code.
    pub(crate) fn error(&self, resp: &HttpResponse) -> ConnectorError {
        self.note_error();
        let errors = ErrorList::parse(&resp.body);
        let message = if errors.errors.is_empty() {
            format!(
                "Amazon answered HTTP {}: {}",
                resp.status,
                truncate(&resp.snippet(), 200)
            )
        } else {
            errors.message()
        };
        error_for_status(resp.status, resp.retry_after, errors.code(), message)
    }

    /// Checks a presigned document URL Amazon handed out: absolute http(s) with a host, and
    /// https unless every endpoint is on this machine (sandbox, tests).
    fn document_url(&self, url: &str) -> Result<reqwest::Url, ConnectorError> {
        let parsed = reqwest::Url::parse(url.trim()).ok().filter(|u| {
            u.host().is_some()
                && (u.scheme() == "https" || (u.scheme() == "http" && self.allow_plain_http))
        });
        parsed.ok_or_else(|| ConnectorError::Malformed {
            status: None,
            message: "Amazon handed out a document URL that is not an absolute https URL".into(),
        })
    }

    /// Uploads a feed document to its presigned URL: a PUT with the same `Content-Type` the
    /// document was created with and no SP-API credentials (the URL carries its own signature).
    /// Any refusal is worth preparing again (an expired URL is a 403 here, not an auth problem),
    /// except 413 (the document is too large and will stay so).
    pub(crate) async fn upload(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), ConnectorError> {
        let url = self.document_url(url)?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let request = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        // Uploading again replaces the document: idempotent.
        let resp = http::send(request, true)
            .await
            .inspect_err(|_| self.note_error())?;
        if resp.is_success() {
            return Ok(());
        }
        self.note_error();
        let message = format!(
            "uploading the feed document failed: HTTP {}: {}",
            resp.status,
            truncate(&resp.snippet(), 200)
        );
        Err(if resp.status == 413 {
            ConnectorError::Permanent {
                status: Some(413),
                code: None,
                message,
            }
        } else {
            ConnectorError::Transient {
                status: Some(resp.status),
                message,
            }
        })
    }

    /// Downloads a document from its presigned URL (no SP-API credentials), at most
    /// [`MAX_DOCUMENT_BYTES`].
    pub(crate) async fn download(&self, url: &str) -> Result<Vec<u8>, ConnectorError> {
        let url = self.document_url(url)?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let resp = http::send_limited(self.http.get(url), true, MAX_DOCUMENT_BYTES)
            .await
            .inspect_err(|_| self.note_error())?;
        if resp.is_success() {
            return Ok(resp.body);
        }
        self.note_error();
        Err(ConnectorError::Transient {
            status: Some(resp.status),
            message: format!(
                "downloading the processing report failed: HTTP {}: {}",
                resp.status,
                truncate(&resp.snippet(), 200)
            ),
        })
    }
}
