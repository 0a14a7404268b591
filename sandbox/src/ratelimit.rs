//! Token buckets per (marketplace, resource group), checked before a request reaches its handler.
//!
//! Each bucket starts full, refills continuously at `rate_per_sec` up to `burst`, and each request
//! takes one token; an empty bucket means HTTP 429 with the marketplace's own throttle body. A
//! group without a configured limit is never throttled.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// A token-bucket limit: a sustained rate and a burst (bucket size).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Tokens added per second.
    pub rate_per_sec: f64,
    /// Bucket size: how many requests may arrive back to back after a quiet period.
    pub burst: u32,
}

impl RateLimit {
    /// A limit of `rate_per_sec` with a bucket of `burst`.
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        RateLimit {
            rate_per_sec,
            burst,
        }
    }

    /// A daily call quota spread evenly over the day, with a bucket holding `burst_window_secs`
    /// worth of calls. Marketplaces that publish only daily quotas (eBay) are modelled this way.
    pub fn from_daily_quota(calls_per_day: u64, burst_window_secs: u32) -> Self {
        let rate_per_sec = calls_per_day as f64 / 86_400.0;
        let burst = (rate_per_sec * f64::from(burst_window_secs))
            .ceil()
            .max(1.0) as u32;
        RateLimit {
            rate_per_sec,
            burst,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    fn full(limit: RateLimit) -> Self {
        Bucket {
            limit,
            tokens: f64::from(limit.burst),
            refilled_at: Instant::now(),
        }
    }

    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled_at).as_secs_f64();
        self.refilled_at = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.rate_per_sec).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// All buckets of one sandbox.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl RateLimiter {
    /// Sets (a full bucket) or removes the limit of one group.
    pub(crate) fn set(&self, marketplace: &str, group: &str, limit: Option<RateLimit>) {
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let key = (marketplace.to_owned(), group.to_owned());
        match limit {
            Some(limit) => {
                buckets.insert(key, Bucket::full(limit));
            }
            None => {
                buckets.remove(&key);
            }
        }
    }

    /// The limit in force for a group, if any.
    pub(crate) fn get(&self, marketplace: &str, group: &str) -> Option<RateLimit> {
        let buckets = self.buckets.lock().expect("rate limiter lock");
        buckets
            .get(&(marketplace.to_owned(), group.to_owned()))
            .map(|b| b.limit)
    }

    /// Takes one token; `false` means the request must be answered with 429.
    pub(crate) fn try_acquire(&self, marketplace: &str, group: &str) -> bool {
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        match buckets.get_mut(&(marketplace.to_owned(), group.to_owned())) {
            Some(bucket) => bucket.try_take(),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_quota_spreads_over_the_day() {
        let limit = RateLimit::from_daily_quota(86_400, 60);
        assert!((limit.rate_per_sec - 1.0).abs() < 1e-9);
        assert_eq!(limit.burst, 60);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_burst_then_refills_at_rate() {
        let limiter = RateLimiter::default();
        limiter.set("m", "g", Some(RateLimit::new(2.0, 3)));
        assert!((0..3).all(|_| limiter.try_acquire("m", "g")));
        assert!(!limiter.try_acquire("m", "g"));
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert!(limiter.try_acquire("m", "g"));
        assert!(!limiter.try_acquire("m", "g"));
        assert!(
            limiter.try_acquire("m", "other"),
            "unconfigured groups are free"
        );
    }
}
