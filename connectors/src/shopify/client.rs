//! The Admin GraphQL API over HTTP: the access token (static, or the client-credentials grant
//! through the shared [`TokenCache`], refreshed early and once more after a 401), the local model
//! of Shopify's cost bucket every call waits on, THROTTLED handling, and the classification of
//! whole-call failures.
//!
//! ## The cost bucket (contracts §4.2)
//!
//! Shopify keeps a leaky bucket per (app, shop): `maximumAvailable` points, refilled at
//! `restoreRate` per second; a query is charged its *requested* cost up front and refunded the
//! difference to its actual cost. Every answer reports `extensions.cost.throttleStatus`; the
//! [`CostModel`] takes those live values (it starts from the Standard plan's 2,000 / 100 until the
//! first answer) and, before each call, waits until it holds the call's expected cost — the
//! document's estimate, or the `requestedQueryCost` Shopify reported for it last time, whichever
//! is larger — and takes it, so concurrent callers do not all spend the same points.
//!
//! A `THROTTLED` answer (by `errors[].extensions.code`, whatever the HTTP status: 200 or 429)
//! sets the model from its `throttleStatus` and waits `(requested − available) / restoreRate` —
//! never less than a `Retry-After` it carries, which also pauses every other call of the account —
//! before sending the same request again, up to [`MAX_THROTTLED_RETRIES`] times and only while the
//! wait is at most [`MAX_INLINE_WAIT`]; beyond that the call fails as
//! [`ConnectorError::RateLimited`] with that wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::{OP_GRAPHQL, OP_TOKEN, ShopifyAuth, ShopifyConfig};
use super::mapping::Doc;
use crate::common::http::{self, HttpResponse, MAX_MESSAGE_CHARS, error_for_status, truncate};
use crate::common::{
    AccessToken, Budget, FetchedToken, TokenCache, TokenStats, read_token_response,
};
use crate::error::ConnectorError;

/// The header the access token travels in.
pub(crate) const ACCESS_TOKEN_HEADER: &str = "X-Shopify-Access-Token";
/// Lifetime assumed when the token endpoint leaves out `expires_in` (Shopify: about 24 h).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(86_399);
/// Longest THROTTLED wait taken inside a call; longer ones are returned as `RateLimited`.
pub const MAX_INLINE_WAIT: Duration = Duration::from_secs(10);
/// THROTTLED answers waited out inside one call before giving up with `RateLimited`.
pub const MAX_THROTTLED_RETRIES: u32 = 3;
/// Sends of a replay-safe mutation after a connection lost mid-call (same body, same key).
const TRANSPORT_RETRIES: u32 = 1;
/// Bucket size assumed before the first answer (Standard plan).
const INITIAL_BUCKET: f64 = 2000.0;
/// Restore rate assumed before the first answer (Standard plan).
const INITIAL_RESTORE: f64 = 100.0;
/// Slowest restore rate believed (a hostile `restoreRate: 0` must not park the channel forever).
const MIN_RESTORE: f64 = 0.1;
/// Highest cost of a single query Shopify runs (contracts §4.2: larger ones are refused before
/// execution), and so the most a learned requested cost can be.
const MAX_QUERY_COST: f64 = 1000.0;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The local model of the shop's cost bucket.
#[derive(Debug)]
pub(crate) struct CostModel {
    max: f64,
    available: f64,
    restore: f64,
    at: Instant,
}

impl CostModel {
    fn new() -> Self {
        CostModel {
            max: INITIAL_BUCKET,
            available: INITIAL_BUCKET,
            restore: INITIAL_RESTORE,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.available = (self.available + secs * self.restore).min(self.max);
        self.at = now;
    }

    /// Takes `cost` points now, or says how long until they are there.
    fn try_take(&mut self, cost: f64) -> Result<(), Duration> {
        self.refill();
        let need = cost.min(self.max);
        if self.available >= need {
            self.available -= need;
            Ok(())
        } else {
            Err(secs((need - self.available) / self.restore))
        }
    }

    /// Takes Shopify's word for the bucket (hostile values are clamped).
    fn update(&mut self, s: &ThrottleStatus) {
        let max = s.maximum_available;
        if max.is_finite() && max > 0.0 {
            self.max = max.min(1e9);
        }
        let restore = s.restore_rate;
        if restore.is_finite() && restore > 0.0 {
            self.restore = restore.clamp(MIN_RESTORE, 1e9);
        }
        let avail = s.currently_available;
        if avail.is_finite() {
            self.available = avail.clamp(0.0, self.max);
        }
        self.at = Instant::now();
    }
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0))
        .unwrap_or(Duration::from_secs(3600))
        .min(Duration::from_secs(3600))
}

/// `extensions.cost.throttleStatus`.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

/// `extensions.cost`.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    #[serde(default)]
    requested_query_cost: Option<f64>,
    #[serde(default)]
    throttle_status: Option<ThrottleStatus>,
}

/// One top-level GraphQL error.
#[derive(Debug, Clone, Default)]
struct TopError {
    message: String,
    code: Option<String>,
}

fn top_errors(body: &Value) -> Vec<TopError> {
    match body.get("errors") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|e| TopError {
                message: truncate(
                    e.get("message").and_then(Value::as_str).unwrap_or("error"),
                    MAX_MESSAGE_CHARS,
                ),
                code: e
                    .pointer("/extensions/code")
                    .and_then(Value::as_str)
                    .map(|c| truncate(c, 100)),
            })
            .collect(),
        // REST-style `{"errors": "..."}` / `{"errors": {"query": "..."}}` (401, 400).
        Some(Value::String(s)) => vec![TopError {
            message: truncate(s, MAX_MESSAGE_CHARS),
            code: None,
        }],
        Some(v @ Value::Object(_)) => vec![TopError {
            message: truncate(&v.to_string(), MAX_MESSAGE_CHARS),
            code: None,
        }],
        _ => Vec::new(),
    }
}

/// Counters for [`crate::Connector::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub throttled: AtomicU64,
    pub errors: AtomicU64,
    pub cost_waits: AtomicU64,
    pub cost_wait_ms: AtomicU64,
}

/// The HTTP side of one shop.
#[derive(Debug)]
pub(crate) struct ShopifyClient {
    http: reqwest::Client,
    graphql_url: String,
    token_url: String,
    auth: ShopifyAuth,
    tokens: TokenCache,
    cost: Mutex<CostModel>,
    /// Requested costs Shopify reported per document.
    learned: Mutex<HashMap<&'static str, u64>>,
    pub(crate) budget: Budget,
    pub(crate) counters: Counters,
}

impl ShopifyClient {
    pub(crate) fn new(config: &ShopifyConfig, budget: Budget) -> Result<Self, ConnectorError> {
        Ok(ShopifyClient {
            http: http::build_client(&config.limits, config.is_loopback())?,
            graphql_url: config.graphql_url(),
            token_url: config.token_url(),
            auth: config.auth.clone(),
            tokens: TokenCache::new(),
            cost: Mutex::new(CostModel::new()),
            learned: Mutex::new(HashMap::new()),
            budget,
            counters: Counters::default(),
        })
    }

    pub(crate) fn token_stats(&self) -> TokenStats {
        self.tokens.stats()
    }

    fn note_error(&self) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
    }

    async fn token(&self) -> Result<AccessToken, ConnectorError> {
        match &self.auth {
            ShopifyAuth::AccessToken(t) => Ok(AccessToken {
                value: t.clone(),
                generation: 0,
            }),
            ShopifyAuth::ClientCredentials { .. } => self.tokens.get(|| self.fetch_token()).await,
        }
    }

    /// `POST {endpoint}/admin/oauth/access_token` with the client-credentials form.
    #[tracing::instrument(skip_all, err(level = "warn"))]
    async fn fetch_token(&self) -> Result<FetchedToken, ConnectorError> {
        let ShopifyAuth::ClientCredentials {
            client_id,
            client_secret,
        } = &self.auth
        else {
            return Err(ConnectorError::Auth {
                status: None,
                message: "no client credentials configured".into(),
            });
        };
        self.budget.acquire(OP_TOKEN).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let request = self
            .http
            .post(&self.token_url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.expose()),
            ]);
        let resp = http::send(request, true)
            .await
            .inspect_err(|_| self.note_error())?;
        if resp.status == 429 {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(ConnectorError::RateLimited {
                retry_after: resp.retry_after,
                message: "Shopify's token endpoint throttled the client-credentials grant".into(),
            });
        }
        let token = read_token_response(&resp, "Shopify", DEFAULT_TOKEN_LIFETIME)
            .inspect_err(|_| self.note_error())?;
        tracing::debug!(lifetime = ?token.lifetime, "Fetched a Shopify access token.");
        Ok(token)
    }

    fn estimate(&self, doc: &Doc) -> u64 {
        let learned = lock(&self.learned).get(doc.name).copied().unwrap_or(0);
        doc.cost.max(learned)
    }

    /// Waits until the model holds `cost` points, and takes them. A refill longer than
    /// [`MAX_INLINE_WAIT`] (a shop whose bucket is empty and, by what it says, barely refills) is
    /// not slept through inside the call: the GraphQL budget is paused for it, so every caller
    /// waits there, and the call fails as [`ConnectorError::RateLimited`] with that wait.
    async fn reserve(&self, cost: u64) -> Result<(), ConnectorError> {
        let started = Instant::now();
        let mut waited = false;
        let result = loop {
            let wait = lock(&self.cost).try_take(cost as f64);
            match wait {
                Ok(()) => break Ok(()),
                Err(d) if d > MAX_INLINE_WAIT => {
                    self.budget.pause(OP_GRAPHQL, d);
                    break Err(ConnectorError::RateLimited {
                        retry_after: Some(d),
                        message: format!(
                            "Shopify's cost bucket needs {} s to refill {cost} points",
                            d.as_secs()
                        ),
                    });
                }
                Err(d) => {
                    waited = true;
                    tokio::time::sleep(d.max(Duration::from_millis(1))).await;
                }
            }
        };
        if waited {
            self.counters.cost_waits.fetch_add(1, Ordering::Relaxed);
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.counters.cost_wait_ms.fetch_add(ms, Ordering::Relaxed);
        }
        result
    }

    /// Points available in the model now (for tests and stats).
    pub(crate) fn cost_available(&self) -> f64 {
        let mut m = lock(&self.cost);
        m.refill();
        m.available
    }

    /// Runs `doc` with `vars` and returns `data`. Whole-call failures are classified here;
    /// userErrors are the caller's.
    pub(crate) async fn execute(&self, doc: &Doc, vars: Value) -> Result<Value, ConnectorError> {
        let body =
            serde_json::to_vec(&json!({"query": doc.query, "variables": vars})).map_err(|e| {
                ConnectorError::Permanent {
                    status: None,
                    code: None,
                    message: format!("cannot encode the request: {e}"),
                }
            })?;
        let mut refreshed = false;
        let mut throttled = 0u32;
        let mut transport = 0u32;
        loop {
            // The budget first: a pause ordered by a long refill (see `reserve`) is waited out
            // there by every caller, instead of each failing at once again.
            self.budget.acquire(OP_GRAPHQL).await;
            self.reserve(self.estimate(doc)).await?;
            let token = self.token().await?;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let request = self
                .http
                .post(&self.graphql_url)
                .header(ACCESS_TOKEN_HEADER, token.value.expose())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.clone());
            let read_only = doc.query.trim_start().starts_with("query");
            let resp = match http::send(request, read_only).await {
                Ok(r) => r,
                Err(e) => {
                    self.note_error();
                    // A mutation with an idempotency key can go again as it is: a replay of an
                    // applied request answers the first result without applying twice.
                    if doc.replay_safe
                        && transport < TRANSPORT_RETRIES
                        && matches!(
                            e,
                            ConnectorError::Timeout { .. } | ConnectorError::Transient { .. }
                        )
                    {
                        transport += 1;
                        tracing::info!(document = doc.name, error = %e, "Resending an idempotent Shopify mutation after a lost answer.");
                        continue;
                    }
                    return Err(e);
                }
            };
            if resp.status == 401 {
                if let ShopifyAuth::ClientCredentials { .. } = self.auth
                    && !refreshed
                {
                    tracing::info!(
                        document = doc.name,
                        "Shopify refused the access token; fetching a new one and retrying once."
                    );
                    self.tokens.invalidate(&token).await;
                    refreshed = true;
                    continue;
                }
                self.note_error();
                return Err(ConnectorError::Auth {
                    status: Some(401),
                    message: self.message(&resp),
                });
            }
            let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
            if let Some(v) = &parsed {
                self.learn(doc, v);
            }
            let errors = parsed.as_ref().map(top_errors).unwrap_or_default();
            if errors
                .iter()
                .any(|e| e.code.as_deref() == Some("THROTTLED"))
                || resp.status == 429
            {
                self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                let wait = self.throttle_wait(doc, parsed.as_ref(), &resp);
                if resp.retry_after.is_some() {
                    // The server named a time: nobody on this account sends before it, not only
                    // this call (the poller and the other batches share the budget).
                    self.budget.pause(OP_GRAPHQL, wait);
                }
                if throttled < MAX_THROTTLED_RETRIES && wait <= MAX_INLINE_WAIT {
                    throttled += 1;
                    tracing::debug!(
                        document = doc.name,
                        wait_ms = wait.as_millis() as u64,
                        "Shopify throttled the call; waiting for the bucket."
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(ConnectorError::RateLimited {
                    retry_after: Some(wait),
                    message: format!("{} throttled by Shopify's cost bucket", doc.name),
                });
            }
            return self.classify(doc, &resp, parsed, errors);
        }
    }

    /// Updates the cost model and the learned requested cost from an answer.
    fn learn(&self, doc: &Doc, body: &Value) {
        let Some(cost) = body
            .pointer("/extensions/cost")
            .and_then(|c| serde_json::from_value::<Cost>(c.clone()).ok())
        else {
            return;
        };
        if let Some(s) = &cost.throttle_status {
            lock(&self.cost).update(s);
        }
        if let Some(r) = cost.requested_query_cost
            && r.is_finite()
            && r > 0.0
        {
            // Shopify refuses any query above MAX_QUERY_COST before running it; a larger
            // "requested" cost is not a cost to wait for.
            let r = r.min(MAX_QUERY_COST) as u64;
            lock(&self.learned).insert(doc.name, r);
        }
    }

    /// How long a throttled call waits: `(requested − available) / restoreRate` from the answer's
    /// throttleStatus (at least 100 ms), and never less than its `Retry-After`; one second when
    /// the answer says neither.
    ///
    /// A 429 may carry both (a throttleStatus showing points to spare and `Retry-After: 4` from
    /// the edge): the bucket alone would resend at once, into the same refusal.
    fn throttle_wait(&self, doc: &Doc, body: Option<&Value>, resp: &HttpResponse) -> Duration {
        let cost = body
            .and_then(|b| b.pointer("/extensions/cost"))
            .and_then(|c| serde_json::from_value::<Cost>(c.clone()).ok());
        let from_bucket = match cost {
            Some(Cost {
                requested_query_cost,
                throttle_status: Some(s),
            }) => {
                let requested = requested_query_cost
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .unwrap_or(self.estimate(doc) as f64)
                    .min(s.maximum_available.max(1.0));
                let restore = s.restore_rate.clamp(MIN_RESTORE, 1e9);
                let missing = (requested - s.currently_available).max(0.0);
                Some(secs(missing / restore).max(Duration::from_millis(100)))
            }
            _ => None,
        };
        match (from_bucket, resp.retry_after) {
            (Some(b), Some(r)) => b.max(r),
            (Some(b), None) => b,
            (None, Some(r)) => r,
            (None, None) => Duration::from_secs(1),
        }
    }

    fn message(&self, resp: &HttpResponse) -> String {
        let parsed: Option<Value> = serde_json::from_slice(&resp.body).ok();
        let errors = parsed.as_ref().map(top_errors).unwrap_or_default();
        match errors.first() {
            Some(e) => e.message.clone(),
            None => format!("HTTP {}: {}", resp.status, truncate(&resp.snippet(), 200)),
        }
    }

    /// Everything but 401 and THROTTLED.
    fn classify(
        &self,
        doc: &Doc,
        resp: &HttpResponse,
        parsed: Option<Value>,
        errors: Vec<TopError>,
    ) -> Result<Value, ConnectorError> {
        let fail = |e: ConnectorError| {
            self.note_error();
            Err(e)
        };
        if !resp.is_success() {
            let message = format!("{} failed: {}", doc.name, self.message(resp));
            let code = errors.first().and_then(|e| e.code.clone());
            return fail(match resp.status {
                // The shop is locked (unpaid, frozen): nothing works until the merchant acts.
                423 => ConnectorError::Auth {
                    status: Some(423),
                    message: format!("the shop is locked: {message}"),
                },
                // A security rejection: Shopify asks to back off and retry later.
                430 => ConnectorError::Transient {
                    status: Some(430),
                    message,
                },
                status => error_for_status(status, resp.retry_after, code, message),
            });
        }
        let Some(body) = parsed.filter(Value::is_object) else {
            return fail(ConnectorError::Malformed {
                status: Some(resp.status),
                message: format!("{}: the answer is not a JSON object", doc.name),
            });
        };
        if let Some(e) = errors.first() {
            let message = format!("{} failed: {}", doc.name, e.message);
            let code = e.code.clone();
            return fail(match code.as_deref() {
                Some("ACCESS_DENIED" | "UNAUTHORIZED") => ConnectorError::Auth {
                    status: Some(resp.status),
                    message,
                },
                Some("INTERNAL_SERVER_ERROR" | "SERVICE_UNAVAILABLE" | "TIMEOUT") => {
                    ConnectorError::Transient {
                        status: Some(resp.status),
                        message,
                    }
                }
                _ => ConnectorError::Permanent {
                    status: Some(resp.status),
                    code,
                    message,
                },
            });
        }
        match body.get("data") {
            Some(d @ Value::Object(_)) => Ok(d.clone()),
            _ => fail(ConnectorError::Malformed {
                status: Some(resp.status),
                message: format!("{}: the answer has no data", doc.name),
            }),
        }
    }
}

/// A fresh RFC 4122 version-4 UUID for `@idempotent(key:)`, from the OS's random source
/// (through std's randomly seeded hasher) mixed with a counter and the clock.
pub(crate) fn idempotency_key() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u64(nanos);
        h.write_usize(i);
        *w = h.finish();
    }
    let b: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        8 | (b[8] & 0x3),
        &hex[17..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_uuid_v4_and_unique() {
        let a = idempotency_key();
        let b = idempotency_key();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[tokio::test]
    async fn a_refill_longer_than_the_inline_wait_pauses_the_budget_instead_of_sleeping() {
        let config = ShopifyConfig {
            endpoint: "http://127.0.0.1:9/shopify".into(),
            api_version: ShopifyConfig::DEFAULT_API_VERSION.into(),
            auth: ShopifyAuth::AccessToken(crate::common::Secret::new("shpat_x")),
            location_id: "gid://shopify/Location/1".into(),
            limits: super::super::ShopifyConnector::DEFAULT_LIMITS,
        };
        let client = ShopifyClient::new(&config, Budget::new("shop", 100.0, 10)).unwrap();
        // A hostile answer: an empty, huge bucket refilling at 0.1 point/s, and a "requested"
        // cost of a million.
        lock(&client.cost).update(&ThrottleStatus {
            maximum_available: 1e9,
            currently_available: 0.0,
            restore_rate: 0.1,
        });
        let body = json!({"extensions": {"cost": {"requestedQueryCost": 1e6}}});
        client.learn(&super::super::mapping::SHOP, &body);
        let cost = client.estimate(&super::super::mapping::SHOP);
        assert_eq!(
            cost, MAX_QUERY_COST as u64,
            "a learned cost is at most a query's maximum"
        );
        let started = std::time::Instant::now();
        let err = client.reserve(cost).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no sleeping through it"
        );
        let wait = err.retry_after().expect("a wait");
        assert!(
            wait > MAX_INLINE_WAIT && wait <= Duration::from_secs(3600),
            "{wait:?}"
        );
        assert!(matches!(err, ConnectorError::RateLimited { .. }), "{err}");
        assert!(client.budget.paused_for(OP_GRAPHQL).is_some());
        // A wait within the inline bound is simply waited.
        lock(&client.cost).update(&ThrottleStatus {
            maximum_available: 100.0,
            currently_available: 99.0,
            restore_rate: 100.0,
        });
        client.reserve(100).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_model_refills_and_clamps_hostile_values() {
        let mut m = CostModel::new();
        m.update(&ThrottleStatus {
            maximum_available: 100.0,
            currently_available: 10.0,
            restore_rate: 50.0,
        });
        assert_eq!(m.try_take(30.0), Err(Duration::from_millis(400)));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(m.try_take(30.0), Ok(()));
        // A cost above the bucket waits for a full bucket, not forever.
        assert!(m.try_take(1e9).unwrap_err() <= Duration::from_secs(2));
        m.update(&ThrottleStatus {
            maximum_available: f64::NAN,
            currently_available: -5.0,
            restore_rate: 0.0,
        });
        assert_eq!(m.max, 100.0);
        assert_eq!(m.available, 0.0);
        assert_eq!(m.restore, 50.0);
    }
}
