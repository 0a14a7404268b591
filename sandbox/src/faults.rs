//! Fault injection, shared by every marketplace (DESIGN.md §8: "5xx, 429, latency, timeouts,
//! dropped connections, malformed bodies, per-item rejections").
//!
//! A [`FaultRule`] names a marketplace, a target and a [`FaultKind`]. The target is the
//! marketplace's operation name (eBay uses the operationIds of its OpenAPI specs, e.g.
//! `bulkUpdatePriceQuantity`), a path glob relative to the marketplace's mount (`/sell/inventory/v1/offer/*/publish`;
//! `*` matches any run of characters), or `*` for every operation. Each rule fires at most `times`
//! times (unlimited when absent), after letting the first `skip` matching requests through, and then
//! only with `probability` (dice from the sandbox's seeded PRNG).
//!
//! Per request the rules are read in insertion order: every firing `latency` rule adds its delay;
//! the first other firing rule decides the outcome, and later ones are not consulted (their counts
//! are not spent). `reject_skus` rules are not consulted per request but per SKU, by the handlers
//! of calls that carry SKUs; `times` then counts rejected SKUs.
//!
//! A global latency (simulated network round trip) applies to every marketplace request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Identifies a rule once added, to inspect or remove it.
pub type FaultId = u64;

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this 5xx status without processing. `body` defaults to the marketplace's own
    /// error body for a system error.
    ServerError {
        /// HTTP status, e.g. 500 or 503.
        status: u16,
        /// Response body (sent as JSON content type); `None` = the marketplace's system error body.
        #[serde(default)]
        body: Option<String>,
    },
    /// Answer 429 with the marketplace's throttle body, without processing.
    TooManyRequests {
        /// Adds `Retry-After: <secs>` when set.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Delay the request by this much, then process it normally.
    Latency {
        /// Added delay in milliseconds.
        ms: u64,
    },
    /// Never answer (the client times out). With `after_processing` the request is applied first,
    /// which is the "unknown outcome" case: the write landed but the client cannot know.
    Hang {
        /// Apply the request before going silent.
        #[serde(default)]
        after_processing: bool,
    },
    /// Close the connection without a response, before or after applying the request.
    DropConnection {
        /// Apply the request before closing.
        #[serde(default)]
        after_processing: bool,
    },
    /// Apply the request, then send its JSON body cut in half (or a bare fragment when empty).
    MalformedBody,
    /// Answer with this status, without processing, and a body that echoes the request — method,
    /// path and query, every header (`Authorization` included) and the body — in every field a
    /// client reads an error message from: a debugging proxy or a hostile endpoint, to check that
    /// no credential the client sent comes back out of it into a log or an error.
    Echo {
        /// HTTP status, e.g. 401 or 500.
        status: u16,
    },
    /// In calls that carry SKUs, reject these SKUs (bulk calls: per item; single calls: the whole
    /// call) with the marketplace's error shape, this errorId and message.
    RejectSkus {
        /// SKUs to refuse.
        skus: Vec<String>,
        /// Per-item (or whole-call) HTTP status; default 400.
        #[serde(default = "default_reject_status")]
        status: u16,
        /// The marketplace error code (eBay: `errorId`).
        error_id: u64,
        /// The error message.
        message: String,
    },
}

fn default_reject_status() -> u16 {
    400
}

fn any_target() -> String {
    "*".to_owned()
}

fn certain() -> f64 {
    1.0
}

impl FaultKind {
    /// A 5xx with the marketplace's default body.
    pub fn server_error(status: u16) -> Self {
        FaultKind::ServerError { status, body: None }
    }

    /// A 429 without `Retry-After`.
    pub fn too_many_requests() -> Self {
        FaultKind::TooManyRequests {
            retry_after_secs: None,
        }
    }

    /// Added latency.
    pub fn latency(by: Duration) -> Self {
        FaultKind::Latency {
            ms: u64::try_from(by.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Reject these SKUs with a 400 item error.
    pub fn reject_skus(
        skus: impl IntoIterator<Item = impl Into<String>>,
        error_id: u64,
        message: impl Into<String>,
    ) -> Self {
        FaultKind::RejectSkus {
            skus: skus.into_iter().map(Into::into).collect(),
            status: default_reject_status(),
            error_id,
            message: message.into(),
        }
    }
}

/// One fault rule. Build with [`FaultRule::new`] and the chained setters, or send it as JSON to
/// `POST /_control/faults`:
/// `{"marketplace":"ebay","target":"bulkUpdatePriceQuantity","kind":{"type":"server_error","status":503},"times":2}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Marketplace name (`ebay`, later `amazon`, `meta`, `shopify`, `woo`).
    pub marketplace: String,
    /// Operation name, path glob starting with `/`, or `*`.
    #[serde(default = "any_target")]
    pub target: String,
    /// What happens.
    pub kind: FaultKind,
    /// Fire at most this many times; `None` = every time.
    #[serde(default)]
    pub times: Option<u64>,
    /// Chance of firing once eligible, 0.0–1.0.
    #[serde(default = "certain")]
    pub probability: f64,
    /// Let this many matching requests (or SKUs) through before the rule becomes eligible.
    #[serde(default)]
    pub skip: u64,
}

impl FaultRule {
    /// A rule that fires on every matching request.
    pub fn new(marketplace: impl Into<String>, target: impl Into<String>, kind: FaultKind) -> Self {
        FaultRule {
            marketplace: marketplace.into(),
            target: target.into(),
            kind,
            times: None,
            probability: 1.0,
            skip: 0,
        }
    }

    /// Fire at most `n` times.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Fire with probability `p` once eligible.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = p;
        self
    }

    /// Let the first `n` matches through.
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    fn matches(&self, marketplace: &str, operation: &str, path: &str) -> bool {
        if self.marketplace != marketplace {
            return false;
        }
        if self.target == "*" || self.target == operation {
            return true;
        }
        self.target.starts_with('/') && glob_match(&self.target, path)
    }
}

/// A rule with its counters, as listed by [`FaultsHandle::list`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultStatus {
    /// The rule's id.
    pub id: FaultId,
    /// The rule as added.
    pub rule: FaultRule,
    /// How many times it fired.
    pub fired: u64,
    /// How many matches were let through by `skip`.
    pub skipped: u64,
}

#[derive(Debug)]
struct Entry {
    id: FaultId,
    rule: FaultRule,
    fired: u64,
    skipped: u64,
}

impl Entry {
    fn exhausted(&self) -> bool {
        self.rule.times.is_some_and(|t| self.fired >= t)
    }

    /// Decides whether this matching rule fires now, spending its counters if so.
    fn roll(&mut self, rng: &Rng) -> bool {
        if self.exhausted() {
            return false;
        }
        if self.skipped < self.rule.skip {
            self.skipped += 1;
            return false;
        }
        if self.rule.probability < 1.0 && rng.next_f64() >= self.rule.probability {
            return false;
        }
        self.fired += 1;
        true
    }
}

/// The outcome the rules chose for one request.
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    /// Sum of firing latency rules.
    pub latency: Duration,
    /// The deciding rule's kind, if any.
    pub action: Option<FaultKind>,
}

/// A per-SKU rejection chosen by a `reject_skus` rule.
#[derive(Debug, Clone)]
pub(crate) struct SkuRejection {
    pub status: u16,
    pub error_id: u64,
    pub message: String,
}

/// The rule set and global latency of one sandbox.
#[derive(Debug)]
pub(crate) struct Faults {
    rules: Mutex<(FaultId, Vec<Entry>)>,
    latency_ms: AtomicU64,
    rng: Rng,
}

impl Faults {
    pub(crate) fn new(seed: u64, latency: Duration) -> Self {
        Faults {
            rules: Mutex::new((0, Vec::new())),
            latency_ms: AtomicU64::new(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
            rng: Rng::new(seed),
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    /// Chooses what happens to one request.
    pub(crate) fn plan(&self, marketplace: &str, operation: &str, path: &str) -> FaultPlan {
        let mut guard = self.rules.lock().expect("faults lock");
        let mut plan = FaultPlan::default();
        for entry in guard.1.iter_mut() {
            if matches!(entry.rule.kind, FaultKind::RejectSkus { .. })
                || !entry.rule.matches(marketplace, operation, path)
            {
                continue;
            }
            if let FaultKind::Latency { ms } = entry.rule.kind {
                if entry.roll(&self.rng) {
                    plan.latency += Duration::from_millis(ms);
                }
            } else if plan.action.is_none() && entry.roll(&self.rng) {
                plan.action = Some(entry.rule.kind.clone());
            }
        }
        plan
    }

    /// Whether a `reject_skus` rule refuses this SKU in this call.
    pub(crate) fn sku_rejection(
        &self,
        marketplace: &str,
        operation: &str,
        path: &str,
        sku: &str,
    ) -> Option<SkuRejection> {
        let mut guard = self.rules.lock().expect("faults lock");
        for entry in guard.1.iter_mut() {
            let FaultKind::RejectSkus {
                skus,
                status,
                error_id,
                message,
            } = &entry.rule.kind
            else {
                continue;
            };
            if !entry.rule.matches(marketplace, operation, path) || !skus.iter().any(|s| s == sku) {
                continue;
            }
            let rejection = SkuRejection {
                status: *status,
                error_id: *error_id,
                message: message.clone(),
            };
            if entry.roll(&self.rng) {
                return Some(rejection);
            }
        }
        None
    }
}

/// Adds, lists and removes fault rules and sets the global latency. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FaultsHandle {
    pub(crate) faults: std::sync::Arc<Faults>,
}

impl FaultsHandle {
    /// Adds a rule (after the existing ones) and returns its id.
    pub fn add(&self, rule: FaultRule) -> FaultId {
        let mut guard = self.faults.rules.lock().expect("faults lock");
        guard.0 += 1;
        let id = guard.0;
        guard.1.push(Entry {
            id,
            rule,
            fired: 0,
            skipped: 0,
        });
        id
    }

    /// Removes one rule; `false` if there was none with that id.
    pub fn remove(&self, id: FaultId) -> bool {
        let mut guard = self.faults.rules.lock().expect("faults lock");
        let before = guard.1.len();
        guard.1.retain(|e| e.id != id);
        guard.1.len() != before
    }

    /// Removes every rule (the global latency stays).
    pub fn clear(&self) {
        self.faults.rules.lock().expect("faults lock").1.clear();
    }

    /// Every rule with its counters, in evaluation order.
    pub fn list(&self) -> Vec<FaultStatus> {
        let guard = self.faults.rules.lock().expect("faults lock");
        guard
            .1
            .iter()
            .map(|e| FaultStatus {
                id: e.id,
                rule: e.rule.clone(),
                fired: e.fired,
                skipped: e.skipped,
            })
            .collect()
    }

    /// How many times a rule fired (0 for an unknown id).
    pub fn fired(&self, id: FaultId) -> u64 {
        let guard = self.faults.rules.lock().expect("faults lock");
        guard.1.iter().find(|e| e.id == id).map_or(0, |e| e.fired)
    }

    /// Sets the simulated network latency added to every marketplace request.
    pub fn set_latency(&self, latency: Duration) {
        self.faults.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The simulated network latency.
    pub fn latency(&self) -> Duration {
        self.faults.latency()
    }
}

/// `*` matches any run of characters (including `/`); everything else literally.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle() -> FaultsHandle {
        FaultsHandle {
            faults: std::sync::Arc::new(Faults::new(1, Duration::ZERO)),
        }
    }

    #[test]
    fn glob() {
        assert!(glob_match(
            "/sell/inventory/v1/offer/*/publish",
            "/sell/inventory/v1/offer/123/publish"
        ));
        assert!(!glob_match(
            "/sell/inventory/v1/offer/*/publish",
            "/sell/inventory/v1/offer/123/withdraw"
        ));
        assert!(glob_match("/sell/*", "/sell/a/b/c"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("/a", "/ab"));
    }

    #[test]
    fn times_and_skip_are_honoured() {
        let h = handle();
        let id = h.add(
            FaultRule::new("ebay", "getOrders", FaultKind::server_error(503))
                .times(2)
                .skip(1),
        );
        let fired: Vec<bool> = (0..5)
            .map(|_| h.faults.plan("ebay", "getOrders", "/x").action.is_some())
            .collect();
        assert_eq!(fired, [false, true, true, false, false]);
        assert_eq!(h.fired(id), 2);
        assert!(h.faults.plan("amazon", "getOrders", "/x").action.is_none());
    }

    #[test]
    fn latency_accumulates_and_first_action_wins() {
        let h = handle();
        h.add(FaultRule::new(
            "ebay",
            "*",
            FaultKind::latency(Duration::from_millis(5)),
        ));
        h.add(FaultRule::new("ebay", "*", FaultKind::server_error(500)));
        let later = h.add(FaultRule::new("ebay", "*", FaultKind::too_many_requests()));
        h.add(FaultRule::new(
            "ebay",
            "/p/*",
            FaultKind::latency(Duration::from_millis(7)),
        ));
        let plan = h.faults.plan("ebay", "op", "/p/q");
        assert_eq!(plan.latency, Duration::from_millis(12));
        assert_eq!(plan.action, Some(FaultKind::server_error(500)));
        assert_eq!(h.fired(later), 0, "a rule that did not decide is not spent");
    }

    #[test]
    fn probability_zero_never_fires() {
        let h = handle();
        h.add(FaultRule::new("ebay", "*", FaultKind::server_error(500)).probability(0.0));
        assert!((0..100).all(|_| h.faults.plan("ebay", "op", "/").action.is_none()));
    }

    #[test]
    fn sku_rejection_counts_skus() {
        let h = handle();
        h.add(
            FaultRule::new(
                "ebay",
                "bulkUpdatePriceQuantity",
                FaultKind::reject_skus(["BAD"], 25002, "nope"),
            )
            .times(1),
        );
        let f = &h.faults;
        assert!(
            f.sku_rejection("ebay", "bulkUpdatePriceQuantity", "/", "GOOD")
                .is_none()
        );
        assert_eq!(
            f.sku_rejection("ebay", "bulkUpdatePriceQuantity", "/", "BAD")
                .map(|r| r.error_id),
            Some(25002)
        );
        assert!(
            f.sku_rejection("ebay", "bulkUpdatePriceQuantity", "/", "BAD")
                .is_none()
        );
    }

    #[test]
    fn rule_json_round_trip() {
        let json = r#"{"marketplace":"ebay","target":"getOrders","kind":{"type":"too_many_requests","retry_after_secs":3},"times":1}"#;
        let rule: FaultRule = serde_json::from_str(json).unwrap();
        assert_eq!(
            rule.kind,
            FaultKind::TooManyRequests {
                retry_after_secs: Some(3)
            }
        );
        assert!(
            serde_json::from_str::<FaultRule>(
                r#"{"marketplace":"ebay","kind":{"type":"malformed_body"},"oops":1}"#
            )
            .is_err()
        );
    }
}
