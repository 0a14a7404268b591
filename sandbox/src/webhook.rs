//! Webhooks the fakes send to the daemon when an order is placed or changes, as the real
//! marketplaces do: signed with the shared secret (each marketplace names and encodes its signature
//! its own way), sometimes delivered twice, sometimes late — so receivers must treat them as hints.
//!
//! Each fake builds the body and headers of one delivery and hands them to [`Webhooks::deliver`];
//! this module does the sending, off the request path, with the configured duplicate rate and jitter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::rng::Rng;

/// Where a fake sends its webhooks and how it misbehaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookTarget {
    /// Full URL, e.g. `http://127.0.0.1:8080/webhooks/shopify_main`.
    pub url: String,
    /// The shared secret the signature is computed with.
    pub secret: String,
    /// Probability that a delivery is sent a second time (same delivery id), after the first.
    #[serde(default)]
    pub duplicate_probability: f64,
    /// Each delivery waits a random 0..=`max_jitter_ms` before it is sent, so deliveries of
    /// quick successive events arrive out of order.
    #[serde(default)]
    pub max_jitter_ms: u64,
}

impl WebhookTarget {
    /// Prompt, single deliveries to `url` signed with `secret`.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        WebhookTarget {
            url: url.into(),
            secret: secret.into(),
            duplicate_probability: 0.0,
            max_jitter_ms: 0,
        }
    }
}

/// What happened to the deliveries of one fake (for tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WebhookCounts {
    /// Deliveries attempted, duplicates included.
    pub sent: u64,
    /// Of those, sent a second time on purpose.
    pub duplicates: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered otherwise, or not at all.
    pub failed: u64,
}

/// One fake's webhook sender.
#[derive(Debug, Default)]
pub(crate) struct Webhooks {
    target: Mutex<Option<WebhookTarget>>,
    counts: Arc<Mutex<WebhookCounts>>,
    /// One HTTP client for every delivery (connection reuse), built on first use.
    client: std::sync::OnceLock<Option<reqwest::Client>>,
}

/// HMAC-SHA256 of `body` under `secret`.
pub(crate) fn hmac_sha256(secret: &[u8], body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// `base64(HMAC-SHA256(secret, body))`: Shopify's `X-Shopify-Hmac-Sha256` and WooCommerce's
/// `X-WC-Webhook-Signature`.
pub(crate) fn sign_base64(secret: &str, body: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret.as_bytes(), body))
}

/// `sha256=` + hex: Meta's `X-Hub-Signature-256`.
pub(crate) fn sign_meta(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), body))
    )
}

impl Webhooks {
    pub(crate) fn set_target(&self, target: Option<WebhookTarget>) {
        *self.target.lock().expect("webhook lock") = target;
    }

    pub(crate) fn target(&self) -> Option<WebhookTarget> {
        self.target.lock().expect("webhook lock").clone()
    }

    pub(crate) fn counts(&self) -> WebhookCounts {
        *self.counts.lock().expect("webhook lock")
    }

    /// Sends one delivery in the background when a target is set. `sign` computes the headers
    /// that depend on the secret (the signature) from the body.
    pub(crate) fn deliver(
        &self,
        rng: &Rng,
        mut headers: Vec<(String, String)>,
        body: Vec<u8>,
        sign: impl FnOnce(&str, &[u8]) -> Vec<(String, String)>,
    ) {
        let Some(target) = self.target() else {
            return;
        };
        headers.extend(sign(&target.secret, &body));
        let copies = if rng.next_f64() < target.duplicate_probability {
            2
        } else {
            1
        };
        let jitter = |r: &Rng| {
            if target.max_jitter_ms == 0 {
                Duration::ZERO
            } else {
                Duration::from_millis(r.next_u64() % (target.max_jitter_ms + 1))
            }
        };
        let delays: Vec<Duration> = (0..copies).map(|_| jitter(rng)).collect();
        let counts = self.counts.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.client.get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .ok()
        });
        let Some(client) = client.clone() else {
            return;
        };
        handle.spawn(async move {
            for (i, delay) in delays.into_iter().enumerate() {
                tokio::time::sleep(delay).await;
                let mut req = client.post(&target.url).body(body.clone());
                for (k, v) in &headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                let ok = matches!(req.send().await, Ok(r) if r.status().is_success());
                let mut c = counts.lock().expect("webhook lock");
                c.sent += 1;
                if i > 0 {
                    c.duplicates += 1;
                }
                if ok {
                    c.accepted += 1;
                } else {
                    c.failed += 1;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_documented_encodings() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign_meta("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign_base64("Jefe", b"what do ya want for nothing?"),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }
}
