//! Marketplace webhooks: `POST /webhooks/{channel}` (and Meta's `GET` subscription handshake).
//!
//! A webhook is a *hint*, never a source of truth (DESIGN §5): a delivery whose signature checks
//! out makes the channel's order poller poll now, and the poll — with its cursor, overlap window
//! and exactly-once ingestion — does the rest. So a lost webhook costs one poll interval, a forged
//! one is refused before anything happens, and a duplicated or replayed one changes nothing.
//!
//! For each delivery, in this order:
//! 1. the channel must exist and be of a type that sends webhooks (Shopify, WooCommerce, Meta),
//!    else 404;
//! 2. the body is at most [`MAX_WEBHOOK_BYTES`], else 413 (axum's limit, before any parsing);
//! 3. the signature is an HMAC-SHA256 of the raw body under the channel's secret, compared in
//!    constant time (`Mac::verify_slice`), else 401 — nothing recorded, no poll;
//! 4. the delivery id (`X-Shopify-Event-Id` / `X-Shopify-Webhook-Id`, `X-WC-Webhook-Delivery-ID`,
//!    or for Meta, which sends none, the body's SHA-256) is recorded in `webhook_deliveries`; one
//!    seen before is answered 200 `{"duplicate":true}` and does nothing else;
//! 5. the channel's poller is woken (when this instance runs the channel; another instance's
//!    poller picks the order up on its own interval).
//!
//! The body itself is never parsed as an order: the signature covers bytes, and the poll reads
//! the order from the marketplace's API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use crate::config::ChannelConfig;
use crate::daemon::Shared;
use crate::store::{Store, StoreError, now_ms};

/// Largest webhook body accepted (Shopify and WooCommerce order payloads are a few KiB; Meta's
/// are smaller).
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

/// How long a delivery id is remembered. Marketplaces retry failed deliveries for up to 48 h
/// (Shopify) and 5 attempts (WooCommerce); a week covers both with room.
pub const DEDUPE_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

/// What happened to the deliveries of one channel since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WebhookCounts {
    /// Valid and new: the poller was woken.
    pub accepted: u64,
    /// Valid but seen before (replay or marketplace retry): nothing done.
    pub duplicate: u64,
    /// Signature missing or wrong: refused with 401.
    pub rejected: u64,
    /// Larger than [`MAX_WEBHOOK_BYTES`]: refused with 413.
    pub oversized: u64,
}

/// Per-channel webhook counters, for `/metrics` and `/api/status`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    by_channel: Mutex<BTreeMap<String, WebhookCounts>>,
    inserts: AtomicU64,
}

impl WebhookStats {
    fn bump(&self, channel: &str, f: impl FnOnce(&mut WebhookCounts)) {
        let mut m = self.by_channel.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(channel.to_owned()).or_default());
    }

    /// Counters by channel.
    pub fn snapshot(&self) -> BTreeMap<String, WebhookCounts> {
        self.by_channel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// How one channel type signs its deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// `X-Shopify-Hmac-Sha256: base64(hmac)`.
    Shopify,
    /// `X-WC-Webhook-Signature: base64(hmac)`.
    WooCommerce,
    /// `X-Hub-Signature-256: sha256=hex(hmac)`.
    Meta,
}

/// The scheme and secret of a channel section, or `None` for types without webhooks.
fn scheme(cfg: &ChannelConfig) -> Option<(Scheme, &str)> {
    match cfg {
        ChannelConfig::Shopify(c) => Some((Scheme::Shopify, c.webhook_secret.expose())),
        ChannelConfig::WooCommerce(c) => Some((Scheme::WooCommerce, c.webhook_secret.expose())),
        ChannelConfig::Facebook(c) => Some((Scheme::Meta, c.app_secret.expose())),
        _ => None,
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Checks the delivery's signature; `Err` says what is wrong (for the log, not the sender).
fn verify(scheme: Scheme, secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let (name, given) = match scheme {
        Scheme::Shopify => (
            "X-Shopify-Hmac-Sha256",
            header_str(headers, "x-shopify-hmac-sha256"),
        ),
        Scheme::WooCommerce => (
            "X-WC-Webhook-Signature",
            header_str(headers, "x-wc-webhook-signature"),
        ),
        Scheme::Meta => (
            "X-Hub-Signature-256",
            header_str(headers, "x-hub-signature-256"),
        ),
    };
    let given = given.ok_or_else(|| format!("no {name} header"))?;
    let decoded = match scheme {
        Scheme::Shopify | Scheme::WooCommerce => base64::engine::general_purpose::STANDARD
            .decode(given)
            .map_err(|_| format!("{name} is not base64"))?,
        Scheme::Meta => {
            let hex_part = given
                .strip_prefix("sha256=")
                .ok_or_else(|| format!("{name} does not start with sha256="))?;
            hex::decode(hex_part).map_err(|_| format!("{name} is not hex"))?
        }
    };
    if secret.is_empty() {
        return Err("the channel's webhook secret is empty".into());
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| "unusable webhook secret".to_owned())?;
    mac.update(body);
    mac.verify_slice(&decoded)
        .map_err(|_| format!("{name} does not match the body"))
}

/// The delivery's id for de-duplication.
fn delivery_id(scheme: Scheme, headers: &HeaderMap, body: &[u8]) -> String {
    let given = match scheme {
        Scheme::Shopify => header_str(headers, "x-shopify-event-id")
            .or_else(|| header_str(headers, "x-shopify-webhook-id")),
        Scheme::WooCommerce => header_str(headers, "x-wc-webhook-delivery-id"),
        Scheme::Meta => None,
    };
    match given {
        // Ids are short; a hostile sender cannot make the key column huge.
        Some(id) if id.len() <= 200 => id.to_owned(),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(body))),
    }
}

/// True for WooCommerce's unsigned ping, sent when a webhook is saved: `webhook_id=<n>`.
fn is_woo_ping(headers: &HeaderMap, body: &[u8]) -> bool {
    header_str(headers, "x-wc-webhook-signature").is_none()
        && body.len() <= 40
        && std::str::from_utf8(body)
            .ok()
            .and_then(|b| b.strip_prefix("webhook_id="))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// Records a delivery id; `Ok(false)` when it was recorded before.
async fn record_delivery(store: &Store, channel: &str, id: &str) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "INSERT INTO webhook_deliveries (channel, delivery_id, received_at) VALUES ($1, $2, $3)",
    )
    .bind(channel)
    .bind(id)
    .bind(now_ms())
    .execute(store.pool())
    .await;
    match r {
        Ok(_) => Ok(true),
        Err(e) => {
            let e = StoreError::from(e);
            if e.is_unique_violation() {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

async fn prune(store: &Store) {
    let cutoff = now_ms() - DEDUPE_WINDOW_MS;
    if let Err(e) = sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
        .bind(cutoff)
        .execute(store.pool())
        .await
    {
        debug!(error = %e, "Pruning old webhook deliveries failed; will try again.");
    }
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `POST /webhooks/{channel}`.
pub async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let current = shared.current();
    let Some((scheme, secret)) = current.config.channels.get(&channel).and_then(scheme) else {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "no channel with webhooks by this id"}),
        );
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                shared.webhooks.bump(&channel, |c| c.oversized += 1);
                warn!(channel = %channel, limit = MAX_WEBHOOK_BYTES, "Refused an oversized webhook.");
            }
            return json(status, serde_json::json!({"error": rejection.body_text()}));
        }
    };
    if scheme == Scheme::WooCommerce && is_woo_ping(&headers, &body) {
        return json(StatusCode::OK, serde_json::json!({"ping": true}));
    }
    if let Err(why) = verify(scheme, secret, &headers, &body) {
        shared.webhooks.bump(&channel, |c| c.rejected += 1);
        warn!(channel = %channel, reason = %why, "Refused a webhook with a bad signature.");
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "invalid signature"})),
        )
            .into_response();
    }
    let id = delivery_id(scheme, &headers, &body);
    match record_delivery(&shared.store, &channel, &id).await {
        Ok(true) => {}
        Ok(false) => {
            shared.webhooks.bump(&channel, |c| c.duplicate += 1);
            debug!(channel = %channel, delivery = %id, "Duplicate webhook delivery ignored.");
            return json(StatusCode::OK, serde_json::json!({"duplicate": true}));
        }
        Err(e) => {
            // The marketplace retries a non-2xx delivery; the next poll finds the order anyway.
            warn!(channel = %channel, error = %e, "Could not record a webhook delivery.");
            return json(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "database unavailable"}),
            );
        }
    }
    if shared.webhooks.inserts.fetch_add(1, Ordering::Relaxed) % 512 == 0 {
        prune(&shared.store).await;
    }
    shared.webhooks.bump(&channel, |c| c.accepted += 1);
    // The owner polls; when another instance owns the channel, leave it the hint.
    let polled = shared.engine.poll_now(&channel);
    if !polled && let Err(e) = crate::store::instances::request_poll(&shared.store, &channel).await
    {
        warn!(channel = %channel, error = %e, "Cannot pass the poll hint to the channel's owner.");
    }
    debug!(channel = %channel, delivery = %id, polled, "Webhook accepted.");
    json(
        StatusCode::OK,
        serde_json::json!({"accepted": true, "polled": polled}),
    )
}

/// Query of Meta's subscription handshake.
#[derive(Debug, serde::Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /webhooks/{channel}`: Meta's verification request when the endpoint is subscribed —
/// `hub.mode=subscribe`, the channel's `verify_token`, and a challenge echoed back as plain text.
pub async fn handshake(
    State(shared): State<Arc<Shared>>,
    Path(channel): Path<String>,
    Query(q): Query<Handshake>,
) -> Response {
    let current = shared.current();
    let Some(ChannelConfig::Facebook(c)) = current.config.channels.get(&channel) else {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "no Meta channel by this id"}),
        );
    };
    let Some(expected) = c.verify_token.as_ref() else {
        warn!(channel = %channel, "Meta webhook handshake refused: the channel has no verify_token.");
        return json(
            StatusCode::FORBIDDEN,
            serde_json::json!({"error": "verify_token is not configured"}),
        );
    };
    let given = q.verify_token.unwrap_or_default();
    let ok = q.mode.as_deref() == Some("subscribe")
        && crate::http::constant_time_eq(given.as_bytes(), expected.expose().as_bytes());
    match (ok, q.challenge) {
        (true, Some(challenge)) if challenge.len() <= 256 => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response(),
        _ => {
            warn!(channel = %channel, "Meta webhook handshake refused: wrong mode or verify_token.");
            json(
                StatusCode::FORBIDDEN,
                serde_json::json!({"error": "verification failed"}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn sign_b64(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn each_scheme_accepts_its_signature_and_nothing_else() {
        let body = br#"{"id":1}"#;
        let sig = sign_b64("s3cret", body);
        let shopify = headers(&[("x-shopify-hmac-sha256", sig.clone())]);
        assert_eq!(verify(Scheme::Shopify, "s3cret", &shopify, body), Ok(()));
        assert!(verify(Scheme::Shopify, "other", &shopify, body).is_err());
        assert!(verify(Scheme::Shopify, "s3cret", &shopify, br#"{"id":2}"#).is_err());
        // The right value under the other marketplace's header name is not accepted.
        assert!(verify(Scheme::WooCommerce, "s3cret", &shopify, body).is_err());
        let woo = headers(&[("x-wc-webhook-signature", sig)]);
        assert_eq!(verify(Scheme::WooCommerce, "s3cret", &woo, body), Ok(()));

        let mut mac = Hmac::<Sha256>::new_from_slice(b"app").expect("key");
        mac.update(body);
        let hexsig = hex::encode(mac.finalize().into_bytes());
        let meta = headers(&[("x-hub-signature-256", format!("sha256={hexsig}"))]);
        assert_eq!(verify(Scheme::Meta, "app", &meta, body), Ok(()));
        let bare = headers(&[("x-hub-signature-256", hexsig)]);
        assert!(verify(Scheme::Meta, "app", &bare, body).is_err());
        // Garbage, empty and truncated signatures are refused without panicking.
        for bad in ["", "!!!", "sha256=zz", "AAAA"] {
            let h = headers(&[("x-shopify-hmac-sha256", bad.to_owned())]);
            assert!(
                verify(Scheme::Shopify, "s3cret", &h, body).is_err(),
                "{bad}"
            );
        }
        // An empty secret never verifies (an unset secret must not accept HMAC(""))
        let empty = sign_b64("", body);
        let h = headers(&[("x-shopify-hmac-sha256", empty)]);
        assert!(verify(Scheme::Shopify, "", &h, body).is_err());
    }

    #[test]
    fn delivery_ids_come_from_headers_or_the_body() {
        let h = headers(&[("x-shopify-event-id", "ev-1".into())]);
        assert_eq!(delivery_id(Scheme::Shopify, &h, b"x"), "ev-1");
        let h = headers(&[("x-shopify-webhook-id", "wh-1".into())]);
        assert_eq!(delivery_id(Scheme::Shopify, &h, b"x"), "wh-1");
        let h = headers(&[("x-wc-webhook-delivery-id", "77".into())]);
        assert_eq!(delivery_id(Scheme::WooCommerce, &h, b"x"), "77");
        let a = delivery_id(Scheme::Meta, &HeaderMap::new(), b"one");
        let b = delivery_id(Scheme::Meta, &HeaderMap::new(), b"two");
        assert!(a.starts_with("sha256:") && a != b);
        let long = headers(&[("x-wc-webhook-delivery-id", "9".repeat(500))]);
        assert!(delivery_id(Scheme::WooCommerce, &long, b"x").starts_with("sha256:"));
    }

    #[test]
    fn only_the_exact_woocommerce_ping_is_a_ping() {
        assert!(is_woo_ping(&HeaderMap::new(), b"webhook_id=12"));
        assert!(!is_woo_ping(&HeaderMap::new(), b"webhook_id="));
        assert!(!is_woo_ping(&HeaderMap::new(), b"webhook_id=12&x=1"));
        assert!(!is_woo_ping(&HeaderMap::new(), br#"{"id":12}"#));
        let signed = headers(&[("x-wc-webhook-signature", "abc".into())]);
        assert!(!is_woo_ping(&signed, b"webhook_id=12"));
    }
}
