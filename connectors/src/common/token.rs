//! An OAuth access-token cache shared by every caller of one connector.
//!
//! The daemon's dispatcher, order poller and reconciler share one connector per channel, so they
//! share its token: one refresh serves them all (marketplaces cap token calls per day — eBay
//! 50,000 refresh grants, contracts §2.1). The cache:
//! - refreshes ahead of expiry, by [`refresh_margin`] (the smaller of 5 minutes and a tenth of the
//!   lifetime), so no call goes out with a token about to lapse;
//! - is single-flight: callers arriving during a refresh wait for it and share its result, success
//!   or failure, instead of each calling the token endpoint;
//! - keeps serving a still-valid token when an early refresh fails for a retriable reason;
//! - forgets a token the marketplace refused ([`TokenCache::invalidate`]), so the connector's
//!   one retry after a 401 goes out with a fresh one.
//!
//! Time is tokio's clock, so tests can pause and advance it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use serde::Deserialize;

use super::http::{HttpResponse, error_for_status, truncate};
use super::sensitive::Secret;
use crate::error::{ConnectorError, ErrorClass};

/// A token endpoint's answer (OAuth 2: eBay identity, Login with Amazon).
#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token endpoint's refusal (`{"error","error_description"}`, OAuth's shape).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OAuthError {
    error: String,
    error_description: String,
}

/// Reads a token endpoint's answer to a refresh-token grant (a 429 is the caller's, before this).
///
/// A refusal (`invalid_client`, `invalid_grant`, `invalid_scope` … with 400/401/403) is
/// [`ConnectorError::Auth`]: the app keys or the seller's grant are wrong or revoked and an operator
/// must act; other statuses classify as usual. `who` names the endpoint in messages ("Login with
/// Amazon"); `default_lifetime` stands in for a missing `expires_in`.
pub fn read_token_response(
    resp: &HttpResponse,
    who: &str,
    default_lifetime: Duration,
) -> Result<FetchedToken, ConnectorError> {
    if !resp.is_success() {
        let e: OAuthError = serde_json::from_slice(&resp.body).unwrap_or_default();
        let message = if e.error.is_empty() {
            format!("{who} answered: {}", resp.snippet())
        } else {
            format!(
                "{who} refused the refresh token grant: {} ({})",
                truncate(&e.error, 100),
                truncate(&e.error_description, 300)
            )
        };
        return Err(match resp.status {
            400 | 401 | 403 => ConnectorError::Auth {
                status: Some(resp.status),
                message,
            },
            status => error_for_status(status, resp.retry_after, None, message),
        });
    }
    let token: TokenResponse = resp.json()?;
    if token.access_token.is_empty() {
        return Err(ConnectorError::Malformed {
            status: Some(resp.status),
            message: format!("{who} returned an empty access_token"),
        });
    }
    Ok(FetchedToken {
        value: Secret::new(token.access_token),
        lifetime: token
            .expires_in
            .map_or(default_lifetime, Duration::from_secs),
    })
}

/// Longest early refresh.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// After an early refresh failed, the next attempt waits at most this long.
const FAILED_REFRESH_HOLDOFF: Duration = Duration::from_secs(30);

/// Longest lifetime believed (a year); a larger `expires_in` is clamped rather than trusted.
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long before expiry a token of this lifetime is refreshed: the smaller of 5 minutes and
/// 10 % of the lifetime (a 2-hour eBay token: 5 minutes; a 60-second token: 6 seconds).
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_REFRESH_MARGIN)
}

/// What the token endpoint returned.
#[derive(Debug, Clone)]
pub struct FetchedToken {
    /// The access token.
    pub value: Secret,
    /// Its lifetime from now (`expires_in`).
    pub lifetime: Duration,
}

/// A token handed to a caller. `generation` identifies it for [`TokenCache::invalidate`].
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The bearer token.
    pub value: Secret,
    /// Which refresh produced it.
    pub generation: u64,
}

#[derive(Debug)]
struct Cached {
    value: Secret,
    generation: u64,
    refresh_at: Instant,
    expires_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Cached>,
    generation: u64,
    /// The last refresh's failure, for callers that waited on it.
    last_error: Option<ConnectorError>,
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenStats {
    /// Successful refreshes.
    pub refreshes: u64,
    /// Failed refreshes.
    pub failures: u64,
    /// Tokens dropped after the marketplace refused them.
    pub invalidations: u64,
}

/// The cache. See the module docs.
#[derive(Debug, Default)]
pub struct TokenCache {
    state: Mutex<State>,
    /// Completed refresh attempts; read before waiting on the lock to tell whether a refresh
    /// finished meanwhile.
    attempts: AtomicU64,
    refreshes: AtomicU64,
    failures: AtomicU64,
    invalidations: AtomicU64,
}

impl TokenCache {
    /// An empty cache: the first [`TokenCache::get`] fetches.
    pub fn new() -> Self {
        TokenCache::default()
    }

    /// A valid token: the cached one, or a new one from `fetch` when there is none, it is due
    /// for refresh, or it was invalidated. Concurrent callers share one `fetch`.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<AccessToken, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<FetchedToken, ConnectorError>>,
    {
        let attempts_seen = self.attempts.load(Ordering::Acquire);
        let mut st = self.state.lock().await;
        let now = Instant::now();
        if let Some(c) = &st.current
            && now < c.refresh_at
        {
            return Ok(c.token());
        }
        // A refresh finished while we waited for the lock and left no usable token: share its
        // failure rather than hitting the token endpoint again at once.
        if self.attempts.load(Ordering::Acquire) != attempts_seen
            && let Some(e) = &st.last_error
        {
            if let Some(c) = st.current.as_ref().filter(|c| now < c.expires_at) {
                return Ok(c.token());
            }
            return Err(e.clone());
        }
        let result = fetch().await;
        self.attempts.fetch_add(1, Ordering::AcqRel);
        let now = Instant::now();
        match result {
            Ok(fetched) => {
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                let lifetime = fetched.lifetime.min(MAX_LIFETIME);
                st.generation += 1;
                let cached = Cached {
                    value: fetched.value,
                    generation: st.generation,
                    refresh_at: now + lifetime - refresh_margin(lifetime),
                    expires_at: now + lifetime,
                };
                let token = cached.token();
                st.current = Some(cached);
                st.last_error = None;
                Ok(token)
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                st.last_error = Some(e.clone());
                // An early refresh that failed for a passing reason: the old token still works.
                if e.class() != ErrorClass::Auth
                    && let Some(c) = st.current.as_mut().filter(|c| now < c.expires_at)
                {
                    // Try again soon, not on every call: half the remaining life, at most 30 s.
                    c.refresh_at = now + ((c.expires_at - now) / 2).min(FAILED_REFRESH_HOLDOFF);
                    tracing::warn!(error = %e, "Token refresh failed; using the current token until it expires.");
                    return Ok(c.token());
                }
                st.current = None;
                Err(e)
            }
        }
    }

    /// Drops `stale` after the marketplace refused it (401), so the next [`TokenCache::get`]
    /// refreshes. A token from a newer refresh is kept: a second caller that saw the same 401
    /// must not throw away the replacement the first one already fetched.
    pub async fn invalidate(&self, stale: &AccessToken) {
        let mut st = self.state.lock().await;
        if st
            .current
            .as_ref()
            .is_some_and(|c| c.generation == stale.generation)
        {
            st.current = None;
            self.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counters for metrics.
    pub fn stats(&self) -> TokenStats {
        TokenStats {
            refreshes: self.refreshes.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
        }
    }
}

impl Cached {
    fn token(&self) -> AccessToken {
        AccessToken {
            value: self.value.clone(),
            generation: self.generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// A token endpoint that counts calls and hands out `t1`, `t2`, … living `lifetime`.
    #[derive(Clone)]
    struct Endpoint {
        calls: Arc<AtomicU32>,
        lifetime: Duration,
        delay: Duration,
    }

    impl Endpoint {
        fn new(lifetime: Duration) -> Self {
            Endpoint {
                calls: Arc::new(AtomicU32::new(0)),
                lifetime,
                delay: Duration::ZERO,
            }
        }

        async fn fetch(&self) -> Result<FetchedToken, ConnectorError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(self.delay).await;
            Ok(FetchedToken {
                value: Secret::new(format!("t{n}")),
                lifetime: self.lifetime,
            })
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn margin_is_the_smaller_of_five_minutes_and_a_tenth() {
        assert_eq!(
            refresh_margin(Duration::from_secs(7200)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(60)),
            Duration::from_secs(6)
        );
        assert_eq!(refresh_margin(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn reuses_then_refreshes_ahead_of_expiry() {
        let cache = TokenCache::new();
        let ep = Endpoint::new(Duration::from_secs(7200));
        for _ in 0..10 {
            let t = cache.get(|| ep.fetch()).await.unwrap();
            assert_eq!(t.value.expose(), "t1");
        }
        assert_eq!(ep.calls(), 1);
        // Just before the 5-minute margin: still the first token.
        tokio::time::advance(Duration::from_secs(7200 - 301)).await;
        assert_eq!(cache.get(|| ep.fetch()).await.unwrap().value.expose(), "t1");
        // Inside the margin: refreshed although not yet expired.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get(|| ep.fetch()).await.unwrap().value.expose(), "t2");
        assert_eq!(ep.calls(), 2);
        assert_eq!(cache.stats().refreshes, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_refresh() {
        let cache = Arc::new(TokenCache::new());
        let mut ep = Endpoint::new(Duration::from_secs(7200));
        ep.delay = Duration::from_millis(500);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let cache = cache.clone();
                let ep = ep.clone();
                tokio::spawn(async move { cache.get(|| ep.fetch()).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().value.expose(), "t1");
        }
        assert_eq!(ep.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_share_a_failure_instead_of_retrying() {
        let cache = Arc::new(TokenCache::new());
        let calls = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let cache = cache.clone();
                let calls = calls.clone();
                tokio::spawn(async move {
                    cache
                        .get(|| async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Err::<FetchedToken, _>(ConnectorError::Transient {
                                status: Some(503),
                                message: "down".into(),
                            })
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.stats().failures, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_forces_a_refresh_but_spares_a_newer_token() {
        let cache = TokenCache::new();
        let ep = Endpoint::new(Duration::from_secs(7200));
        let first = cache.get(|| ep.fetch()).await.unwrap();
        cache.invalidate(&first).await;
        let second = cache.get(|| ep.fetch()).await.unwrap();
        assert_eq!(second.value.expose(), "t2");
        // A late caller reports the same stale token: the new one survives.
        cache.invalidate(&first).await;
        assert_eq!(cache.get(|| ep.fetch()).await.unwrap().value.expose(), "t2");
        assert_eq!(ep.calls(), 2);
        assert_eq!(cache.stats().invalidations, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_early_refresh_keeps_the_valid_token() {
        let cache = TokenCache::new();
        let ep = Endpoint::new(Duration::from_secs(7200));
        cache.get(|| ep.fetch()).await.unwrap();
        tokio::time::advance(Duration::from_secs(7000)).await;
        let t = cache
            .get(|| async {
                Err(ConnectorError::Transient {
                    status: None,
                    message: "down".into(),
                })
            })
            .await
            .unwrap();
        assert_eq!(t.value.expose(), "t1", "still valid for 200 s");
        tokio::time::advance(Duration::from_secs(300)).await;
        let e = cache
            .get(|| async {
                Err(ConnectorError::Auth {
                    status: Some(400),
                    message: "invalid_grant".into(),
                })
            })
            .await
            .unwrap_err();
        assert_eq!(e.class(), ErrorClass::Auth);
    }
}
