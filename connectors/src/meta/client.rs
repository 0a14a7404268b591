//! The Graph API over HTTP: the token as `Authorization: Bearer` (never in a URL or a log),
//! `appsecret_proof` on every call, the budget in front of every call, the
//! `X-Business-Use-Case-Usage` header (slow down as usage nears 100 %, pause for
//! `estimated_time_to_regain_access`), and Graph error bodies classified by `code`.
//!
//! [`MetaClient::call`] answers `Ok` only for 2xx; every Graph error becomes a
//! [`ConnectorError`]: throttling codes (4, 17, 32, 613, 80001–80014, or HTTP 429) →
//! `RateLimited` with the wait; 190/102/104, permission codes (10, 200–299) and a refused
//! `appsecret_proof` → `Auth`; code 1 "reduce the amount of data" → `Permanent` with code `"1"`
//! (the batch code splits on it, see [`is_too_much_data`]); `is_transient`, codes 1/2 and 5xx →
//! `Transient`; anything else (code 100 …) → `Permanent` with the code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::config::{MetaConfig, OP_ITEMS_BATCH};
use crate::common::http::{self, HttpResponse, MAX_RETRY_AFTER, error_for_status, truncate};
use crate::common::{Budget, Secret};
use crate::error::ConnectorError;

/// The BUC usage header.
pub(crate) const BUC_HEADER: &str = "x-business-use-case-usage";
/// Usage (percent of the BUC window) from which the budget slows down.
pub const SLOWDOWN_FROM_PERCENT: f64 = 75.0;
/// Slowest fraction of the configured rate the slow-down goes to (just before 100 %).
pub const SLOWEST_FACTOR: f64 = 0.05;
/// Graph codes that mean "throttled": app (4), user (17), page (32), custom (613), and the BUC
/// family 80001–80014 (80014 = catalog batch) [contracts §3.1].
pub fn is_throttle_code(code: u32) -> bool {
    matches!(code, 4 | 17 | 32 | 613) || (80_001..=80_014).contains(&code)
}

/// True for code 1 "Please reduce the amount of data you're asking for": the batch is too large
/// and must be split.
pub fn is_too_much_data(e: &ConnectorError) -> bool {
    matches!(e, ConnectorError::Permanent { code: Some(c), .. } if c == "1")
}

/// `appsecret_proof`: hex HMAC-SHA256 of the access token keyed by the app secret.
pub fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(access_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A Graph error body (fields we read; unknown ones ignored, all optional).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GraphErrorBody {
    #[serde(default)]
    pub error: Option<GraphError>,
}

/// `{"message","type","code","error_subcode","is_transient","fbtrace_id"}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GraphError {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<u32>,
    #[serde(default)]
    pub error_subcode: Option<u32>,
    #[serde(default)]
    pub is_transient: Option<bool>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

/// What one `X-Business-Use-Case-Usage` value says: the highest usage percent of any entry and
/// the longest `estimated_time_to_regain_access`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct BucUsage {
    pub percent: f64,
    pub regain: Duration,
}

/// Parses `{"<id>":[{"type","call_count","total_cputime","total_time","estimated_time_to_regain_access"}]}`;
/// `None` when it is not that shape.
pub(crate) fn parse_buc(value: &str) -> Option<BucUsage> {
    let v: Value = serde_json::from_str(value).ok()?;
    let mut usage = BucUsage::default();
    let mut seen = false;
    for entries in v.as_object()?.values() {
        for e in entries.as_array()? {
            seen = true;
            for k in ["call_count", "total_cputime", "total_time"] {
                if let Some(p) = e.get(k).and_then(Value::as_f64)
                    && p.is_finite()
                {
                    usage.percent = usage.percent.max(p.clamp(0.0, 1000.0));
                }
            }
            if let Some(m) = e
                .get("estimated_time_to_regain_access")
                .and_then(Value::as_f64)
                && m.is_finite()
                && m > 0.0
            {
                let wait = Duration::try_from_secs_f64(m * 60.0)
                    .unwrap_or(MAX_RETRY_AFTER)
                    .min(MAX_RETRY_AFTER);
                usage.regain = usage.regain.max(wait);
            }
        }
    }
    seen.then_some(usage)
}

/// One Graph call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// Budget operation.
    pub op: &'static str,
    pub method: Method,
    /// Path and query below the endpoint (`/123/products?fields=…`), already encoded.
    pub path: String,
    /// JSON body.
    pub body: Option<Value>,
}

impl Call {
    pub(crate) fn get(op: &'static str, path: String) -> Self {
        Call {
            op,
            method: Method::GET,
            path,
            body: None,
        }
    }

    pub(crate) fn post(op: &'static str, path: String, body: Value) -> Self {
        Call {
            op,
            method: Method::POST,
            path,
            body: Some(body),
        }
    }
}

/// Counters for [`crate::Connector::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub errors: AtomicU64,
    /// Highest BUC usage percent in the last answer that carried the header (gauge).
    pub buc_percent: AtomicU64,
    pub buc_slowdowns: AtomicU64,
}

/// The HTTP side of one catalog (and commerce account).
#[derive(Debug)]
pub(crate) struct MetaClient {
    http: reqwest::Client,
    base: String,
    token: Secret,
    /// Derived from the token and the app secret; as sensitive as the token.
    proof: Secret,
    throttle_pause: Duration,
    /// Each operation's configured rate, the ceiling the BUC slow-down scales.
    base_rates: HashMap<&'static str, f64>,
    slowed: Mutex<HashMap<&'static str, bool>>,
    pub(crate) budget: Budget,
    pub(crate) counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MetaClient {
    pub(crate) fn new(
        config: &MetaConfig,
        budget: Budget,
        base_rates: HashMap<&'static str, f64>,
    ) -> Result<Self, ConnectorError> {
        let direct = http::is_loopback(&config.endpoint);
        Ok(MetaClient {
            http: http::build_client(&config.limits, direct)?,
            base: config.base(),
            proof: Secret::new(appsecret_proof(
                config.app_secret.expose(),
                config.access_token.expose(),
            )),
            token: config.access_token.clone(),
            throttle_pause: config.limits.throttle_pause,
            base_rates,
            slowed: Mutex::new(HashMap::new()),
            budget,
            counters: Counters::default(),
        })
    }

    fn note_error(&self) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends one call (after its budget token) and classifies the answer.
    pub(crate) async fn call(&self, call: &Call) -> Result<HttpResponse, ConnectorError> {
        self.budget.acquire(call.op).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let sep = if call.path.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{}{sep}appsecret_proof={}",
            self.base,
            call.path,
            self.proof.expose()
        );
        let mut builder = self
            .http
            .request(call.method.clone(), url)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &call.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()));
        }
        let (resp, buc) =
            http::send_reading_header(builder, call.method == Method::GET, BUC_HEADER)
                .await
                .inspect_err(|_| self.note_error())?;
        let usage = buc.as_deref().and_then(parse_buc);
        if let Some(u) = usage {
            self.observe(call.op, u);
        }
        if resp.is_success() {
            return Ok(resp);
        }
        Err(self.classify(call.op, &resp, usage))
    }

    /// Slows `op` down as the BUC usage nears 100 %, or restores its rate.
    fn observe(&self, op: &'static str, u: BucUsage) {
        let pct = u64::try_from(u.percent.round() as i64).unwrap_or(0);
        self.counters.buc_percent.store(pct, Ordering::Relaxed);
        let base = self.base_rates.get(op).copied().unwrap_or(1.0);
        let mut slowed = lock(&self.slowed);
        if u.percent >= SLOWDOWN_FROM_PERCENT {
            let factor =
                ((100.0 - u.percent) / (100.0 - SLOWDOWN_FROM_PERCENT)).clamp(SLOWEST_FACTOR, 1.0);
            self.budget.adjust(op, base * factor);
            self.counters.buc_slowdowns.fetch_add(1, Ordering::Relaxed);
            slowed.insert(op, true);
            tracing::debug!(
                operation = op,
                usage = u.percent,
                "Meta BUC usage high; slowing down."
            );
        } else if slowed.remove(op).is_some() {
            self.budget.adjust(op, base);
        }
        if !u.regain.is_zero() {
            self.budget.pause(op, u.regain);
        }
    }

    /// The whole-call error for a non-2xx answer.
    fn classify(
        &self,
        op: &'static str,
        resp: &HttpResponse,
        usage: Option<BucUsage>,
    ) -> ConnectorError {
        let body: GraphErrorBody = serde_json::from_slice(&resp.body).unwrap_or_default();
        let err = body.error.unwrap_or_default();
        let code = err.code;
        let message = match (&err.message, code) {
            (Some(m), Some(c)) => {
                let sub = err
                    .error_subcode
                    .map(|s| format!(", subcode {s}"))
                    .unwrap_or_default();
                let trace = err
                    .fbtrace_id
                    .as_deref()
                    .map(|t| format!(", fbtrace_id {}", truncate(t, 40)))
                    .unwrap_or_default();
                format!("Graph error {c}{sub}: {}{trace}", truncate(m, 300))
            }
            _ => format!(
                "Graph answered HTTP {}: {}",
                resp.status,
                truncate(&resp.snippet(), 200)
            ),
        };
        if resp.status == 429 || code.is_some_and(is_throttle_code) {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            let wait = usage
                .map(|u| u.regain)
                .filter(|d| !d.is_zero())
                .or(resp.retry_after)
                .unwrap_or(self.throttle_pause);
            self.budget.pause(op, wait);
            if op == OP_ITEMS_BATCH {
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "Meta throttled catalog batch uploads."
                );
            }
            return ConnectorError::RateLimited {
                retry_after: Some(wait),
                message,
            };
        }
        self.note_error();
        let auth = match code {
            Some(102 | 104 | 190 | 10) => true,
            Some(c) if (200..=299).contains(&c) => true,
            Some(100) => err
                .message
                .as_deref()
                .is_some_and(|m| m.contains("appsecret_proof")),
            _ => matches!(resp.status, 401),
        };
        if auth {
            return ConnectorError::Auth {
                status: Some(resp.status),
                message,
            };
        }
        if code == Some(1)
            && err
                .message
                .as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("reduce the amount of data"))
        {
            return ConnectorError::Permanent {
                status: Some(resp.status),
                code: Some("1".into()),
                message,
            };
        }
        if err.is_transient == Some(true) || matches!(code, Some(1 | 2)) || resp.status >= 500 {
            return ConnectorError::Transient {
                status: Some(resp.status),
                message,
            };
        }
        match code {
            Some(c) => ConnectorError::Permanent {
                status: Some(resp.status),
                code: Some(c.to_string()),
                message,
            },
            None => error_for_status(resp.status, resp.retry_after, None, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_is_hex_hmac_sha256_of_the_token() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            appsecret_proof("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn buc_header_is_read_leniently() {
        let u = parse_buc(
            r#"{"123":[{"type":"catalog_batch","call_count":80,"total_cputime":10,"total_time":91,"estimated_time_to_regain_access":0}],
                "456":[{"type":"commerce","call_count":5,"estimated_time_to_regain_access":2}]}"#,
        )
        .unwrap();
        assert_eq!(u.percent, 91.0);
        assert_eq!(u.regain, Duration::from_secs(120));
        assert_eq!(parse_buc("not json"), None);
        assert_eq!(parse_buc("[1,2]"), None);
        assert_eq!(parse_buc(r#"{"1":"x"}"#), None);
        let huge =
            parse_buc(r#"{"1":[{"call_count":1e300,"estimated_time_to_regain_access":1e300}]}"#)
                .unwrap();
        assert_eq!(huge.percent, 1000.0);
        assert_eq!(huge.regain, MAX_RETRY_AFTER);
    }

    #[test]
    fn throttle_codes() {
        for c in [4, 17, 32, 613, 80_001, 80_009, 80_014] {
            assert!(is_throttle_code(c), "{c}");
        }
        for c in [1, 2, 100, 190, 80_015] {
            assert!(!is_throttle_code(c), "{c}");
        }
    }
}
