//! Rate budgets per (account, operation), shared by every caller of one connector (DESIGN §5).
//!
//! One connector object serves a channel's dispatcher, order poller and reconciler, so its
//! [`Budget`] is the account's single source of pacing: every request first takes a token from
//! its operation's bucket ([`Budget::acquire`]). Buckets are governor GCRA limiters with a sustained
//! rate and a burst.
//!
//! The server has the last word:
//! - a 429 pauses the operation for `Retry-After` (or the connector's default) with
//!   [`Budget::pause`]; everyone waits, and no item burns a retry attempt on it;
//! - a rate the server announces (Amazon `x-amzn-RateLimit-Limit`, Shopify's restore rate …)
//!   replaces the bucket with [`Budget::adjust`].
//!
//! Time is tokio's clock (governor reads it through [`TokioClock`]), so tests can pause and
//! advance it instead of sleeping.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::Serialize;
use tokio::time::Instant;

/// Slowest rate a bucket can hold (one request per ~11.6 days); lower values are raised to it so
/// the refill period stays representable.
const MIN_RATE_PER_SEC: f64 = 1e-6;

/// governor's view of tokio's clock: nanoseconds since the budget was created.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// One operation's bucket and pause.
#[derive(Debug)]
struct Bucket {
    limiter: Arc<Limiter>,
    rate_per_sec: f64,
    burst: u32,
    paused_until: Option<Instant>,
    /// A shadow of the limiter's GCRA state for [`Budget::estimate_wait`] (governor cannot be
    /// read without taking a token): when the bucket will be full again; `None` = full now.
    full_at: Option<Instant>,
}

/// Counters of one operation.
#[derive(Debug, Default)]
struct Counters {
    acquired: AtomicU64,
    waits: AtomicU64,
    waited_nanos: AtomicU64,
    pauses: AtomicU64,
    adjustments: AtomicU64,
}

#[derive(Debug)]
struct Operation {
    bucket: Mutex<Bucket>,
    counters: Counters,
}

/// What one operation's budget looks like now (for `status` and metrics).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetSnapshot {
    /// The operation (`inventory`, `fulfillment`, `identity` …).
    pub operation: String,
    /// Sustained rate in force.
    pub rate_per_sec: f64,
    /// Bucket size in force.
    pub burst: u32,
    /// Tokens handed out.
    pub acquired: u64,
    /// Acquisitions that had to wait (empty bucket or pause).
    pub waits: u64,
    /// Total time callers spent waiting, in milliseconds.
    pub waited_ms: u64,
    /// Pauses ordered (429s).
    pub pauses: u64,
    /// Rate changes the server announced.
    pub adjustments: u64,
    /// Remaining pause, in milliseconds (0 when not paused).
    pub paused_for_ms: u64,
}

/// The rate budgets of one marketplace account. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Budget {
    account: String,
    clock: TokioClock,
    default_rate: f64,
    default_burst: u32,
    operations: Mutex<BTreeMap<String, Arc<Operation>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves consistent data; keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Time between two tokens at `rate_per_sec` (clamped like the limiter's).
fn period_of(rate_per_sec: f64) -> Duration {
    let rate = if rate_per_sec.is_finite() {
        rate_per_sec.max(MIN_RATE_PER_SEC)
    } else {
        MIN_RATE_PER_SEC
    };
    Duration::try_from_secs_f64(1.0 / rate)
        .unwrap_or(Duration::MAX)
        .max(Duration::from_nanos(1))
}

fn limiter(clock: TokioClock, rate_per_sec: f64, burst: u32) -> Arc<Limiter> {
    let period = period_of(rate_per_sec);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or(Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    Arc::new(RateLimiter::direct_with_clock(quota, clock))
}

impl Budget {
    /// Budgets for `account` (a label for logs: `ebay:EBAY_US`); operations not set with
    /// [`Budget::set`] get `default_rate` per second with a bucket of `default_burst`.
    pub fn new(account: impl Into<String>, default_rate: f64, default_burst: u32) -> Self {
        Budget {
            account: account.into(),
            clock: TokioClock {
                origin: Instant::now(),
            },
            default_rate,
            default_burst,
            operations: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sets an operation's rate and burst (a full bucket).
    pub fn set(&self, operation: &str, rate_per_sec: f64, burst: u32) {
        let op = self.operation(operation);
        let mut b = lock(&op.bucket);
        b.limiter = limiter(self.clock, rate_per_sec, burst);
        b.rate_per_sec = rate_per_sec;
        b.burst = burst;
        b.full_at = None;
    }

    fn operation(&self, name: &str) -> Arc<Operation> {
        let mut ops = lock(&self.operations);
        ops.entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Operation {
                    bucket: Mutex::new(Bucket {
                        limiter: limiter(self.clock, self.default_rate, self.default_burst),
                        rate_per_sec: self.default_rate,
                        burst: self.default_burst,
                        paused_until: None,
                        full_at: None,
                    }),
                    counters: Counters::default(),
                })
            })
            .clone()
    }

    /// Waits until `operation` may send one request: past any pause, then a token from its
    /// bucket. Cancel-safe (dropping the future gives nothing back and takes nothing).
    pub async fn acquire(&self, operation: &str) {
        let op = self.operation(operation);
        let started = Instant::now();
        let mut waited = false;
        loop {
            let (limiter, paused_until) = {
                let b = lock(&op.bucket);
                (b.limiter.clone(), b.paused_until)
            };
            if let Some(until) = paused_until
                && until > Instant::now()
            {
                waited = true;
                tokio::time::sleep_until(until).await;
                // The pause may have been extended meanwhile: look again.
                continue;
            }
            match limiter.check() {
                Ok(()) => break,
                Err(not_until) => {
                    waited = true;
                    tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
                }
            }
        }
        {
            // Keep the estimate's shadow in step: one more token owed, refilled after `period`.
            let mut b = lock(&op.bucket);
            let now = Instant::now();
            let from = b.full_at.filter(|t| *t > now).unwrap_or(now);
            b.full_at = Some(from + period_of(b.rate_per_sec));
        }
        let c = &op.counters;
        c.acquired.fetch_add(1, Ordering::Relaxed);
        if waited {
            c.waits.fetch_add(1, Ordering::Relaxed);
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            c.waited_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    /// Stops `operation` for `wait` (a 429's `Retry-After`, or the connector's default): every
    /// caller's [`Budget::acquire`] waits until then. A longer pause already in force stays.
    pub fn pause(&self, operation: &str, wait: Duration) {
        let op = self.operation(operation);
        let until = Instant::now() + wait;
        {
            let mut b = lock(&op.bucket);
            if b.paused_until.is_none_or(|p| p < until) {
                b.paused_until = Some(until);
            }
        }
        op.counters.pauses.fetch_add(1, Ordering::Relaxed);
        tracing::info!(account = %self.account, operation, wait_ms = wait.as_millis() as u64, "Rate budget paused after a throttled call.");
    }

    /// Replaces `operation`'s sustained rate with the one the server announced (the burst stays).
    /// A rate equal to the one in force changes nothing, so a header repeated on every answer
    /// does not reset the bucket.
    ///
    /// The new bucket starts as empty as the old one was: an announced rate is not a fresh burst.
    /// (A lower rate typically arrives while the account is busy — its bucket spent — and a full
    /// new bucket would send a burst into the server's lowered limit: the 429s the header was
    /// there to prevent.)
    pub fn adjust(&self, operation: &str, rate_per_sec: f64) {
        if !rate_per_sec.is_finite() || rate_per_sec <= 0.0 {
            return;
        }
        let op = self.operation(operation);
        let mut b = lock(&op.bucket);
        if (b.rate_per_sec - rate_per_sec).abs() <= f64::EPSILON * b.rate_per_sec.abs() {
            return;
        }
        tracing::info!(account = %self.account, operation, from = b.rate_per_sec, to = rate_per_sec, "Rate budget adjusted to the server's limit.");
        // Tokens missing from the old bucket now (its GCRA debt in old periods, from the shadow).
        let now = Instant::now();
        let debt = b
            .full_at
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let old_period = period_of(b.rate_per_sec);
        let missing = (debt.as_secs_f64() / old_period.as_secs_f64()).ceil();
        let missing = if missing.is_finite() && missing > 0.0 {
            (missing as u32).min(b.burst.max(1))
        } else {
            0
        };
        let fresh = limiter(self.clock, rate_per_sec, b.burst);
        if let Some(n) = NonZeroU32::new(missing) {
            // Cannot fail: n ≤ burst on a full bucket.
            let _ = fresh.check_n(n);
        }
        b.limiter = fresh;
        b.rate_per_sec = rate_per_sec;
        b.full_at = (missing > 0).then(|| now + period_of(rate_per_sec).saturating_mul(missing));
        op.counters.adjustments.fetch_add(1, Ordering::Relaxed);
    }

    /// Remaining pause of `operation` (`None` when it is not paused).
    pub fn paused_for(&self, operation: &str) -> Option<Duration> {
        let op = self.operation(operation);
        let b = lock(&op.bucket);
        b.paused_until
            .map(|until| until.saturating_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }

    /// How long [`Budget::acquire`] would wait now for the `n`-th of `n` back-to-back tokens of
    /// `operation` (remaining pause included), without taking any: 0 while the bucket holds `n`,
    /// else the refill time of the missing ones. A read-only estimate for choosing between paths
    /// (Amazon's per-item calls or a feed); concurrent callers may make the real wait longer.
    pub fn estimate_wait(&self, operation: &str, n: u32) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let op = self.operation(operation);
        let b = lock(&op.bucket);
        let now = Instant::now();
        let period = period_of(b.rate_per_sec);
        // GCRA: the bucket owes `debt` of refill; the n-th token goes out once
        // `debt + n × period` fits in `burst × period`.
        let debt = b
            .full_at
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let needed = debt.saturating_add(period.saturating_mul(n));
        let room = period.saturating_mul(b.burst.max(1));
        let refill = needed.saturating_sub(room);
        let pause = b
            .paused_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
        refill.max(pause)
    }

    /// The sustained rate and burst in force for `operation`.
    pub fn limit(&self, operation: &str) -> (f64, u32) {
        let op = self.operation(operation);
        let b = lock(&op.bucket);
        (b.rate_per_sec, b.burst)
    }

    /// Every operation's budget and counters, by name.
    pub fn snapshot(&self) -> Vec<BudgetSnapshot> {
        let ops: Vec<(String, Arc<Operation>)> = lock(&self.operations)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let now = Instant::now();
        ops.into_iter()
            .map(|(name, op)| {
                let (rate_per_sec, burst, paused_until) = {
                    let b = lock(&op.bucket);
                    (b.rate_per_sec, b.burst, b.paused_until)
                };
                let c = &op.counters;
                BudgetSnapshot {
                    operation: name,
                    rate_per_sec,
                    burst,
                    acquired: c.acquired.load(Ordering::Relaxed),
                    waits: c.waits.load(Ordering::Relaxed),
                    waited_ms: c.waited_nanos.load(Ordering::Relaxed) / 1_000_000,
                    pauses: c.pauses.load(Ordering::Relaxed),
                    adjustments: c.adjustments.load(Ordering::Relaxed),
                    paused_for_ms: paused_until.map_or(0, |u| {
                        u64::try_from(u.saturating_duration_since(now).as_millis())
                            .unwrap_or(u64::MAX)
                    }),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(b: &Budget, op: &str) -> BudgetSnapshot {
        b.snapshot()
            .into_iter()
            .find(|s| s.operation == op)
            .expect("operation known")
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_sustained_rate() {
        let b = Budget::new("test", 10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            b.acquire("inventory").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst goes at once");
        for _ in 0..10 {
            b.acquire("inventory").await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(990) && elapsed <= Duration::from_millis(1010),
            "ten more at 10/s take a second: {elapsed:?}"
        );
        let s = snap(&b, "inventory");
        assert_eq!(s.acquired, 15);
        assert_eq!(s.waits, 10);
        assert!(s.waited_ms >= 900);
    }

    #[tokio::test(start_paused = true)]
    async fn operations_have_separate_buckets() {
        let b = Budget::new("test", 1.0, 1);
        b.set("fulfillment", 1.0, 1);
        let start = Instant::now();
        b.acquire("inventory").await;
        b.acquire("fulfillment").await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        b.acquire("inventory").await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller() {
        let b = Arc::new(Budget::new("test", 1000.0, 100));
        b.acquire("inventory").await;
        b.pause("inventory", Duration::from_secs(30));
        assert_eq!(b.paused_for("inventory"), Some(Duration::from_secs(30)));
        // A shorter pause does not cut the longer one short.
        b.pause("inventory", Duration::from_secs(5));
        let start = Instant::now();
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move {
                    b.acquire("inventory").await;
                    Instant::now()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap() - start, Duration::from_secs(30));
        }
        assert_eq!(b.paused_for("inventory"), None);
        assert!(
            b.paused_for("fulfillment").is_none(),
            "other operations run"
        );
        let s = snap(&b, "inventory");
        assert_eq!(s.pauses, 2);
        assert_eq!(s.waits, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn adjust_swaps_the_rate() {
        let b = Budget::new("test", 10.0, 1);
        b.acquire("op").await;
        b.adjust("op", 2.0);
        b.adjust("op", 2.0);
        b.adjust("op", f64::NAN);
        let start = Instant::now();
        // The bucket was spent: the next token comes at the new rate, then every 500 ms.
        b.acquire("op").await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        b.acquire("op").await;
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
        let s = snap(&b, "op");
        assert_eq!(s.rate_per_sec, 2.0);
        assert_eq!(s.adjustments, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_announced_rate_keeps_the_bucket_as_full_as_it_was() {
        // Busy when the lower rate arrives: no new burst.
        let b = Budget::new("test", 5.0, 10);
        for _ in 0..10 {
            b.acquire("op").await;
        }
        b.adjust("op", 1.0);
        let start = Instant::now();
        for _ in 0..3 {
            b.acquire("op").await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(3), "paced at once");
        // Rested when it arrives: the burst is still there.
        let rested = Budget::new("test", 5.0, 10);
        rested.acquire("op").await;
        tokio::time::advance(Duration::from_secs(5)).await;
        rested.adjust("op", 1.0);
        let start = Instant::now();
        for _ in 0..10 {
            rested.acquire("op").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "a full bucket stays full");
        // Half spent: half a burst.
        let half = Budget::new("test", 10.0, 10);
        for _ in 0..5 {
            half.acquire("op").await;
        }
        half.adjust("op", 1.0);
        let start = Instant::now();
        for _ in 0..5 {
            half.acquire("op").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        half.acquire("op").await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn estimates_follow_the_bucket_and_the_pause() {
        let b = Budget::new("test", 10.0, 5);
        assert_eq!(b.estimate_wait("op", 0), Duration::ZERO);
        assert_eq!(b.estimate_wait("op", 5), Duration::ZERO, "a full bucket");
        assert_eq!(b.estimate_wait("op", 15), Duration::from_secs(1));
        for _ in 0..5 {
            b.acquire("op").await;
        }
        assert_eq!(b.estimate_wait("op", 1), Duration::from_millis(100));
        let start = Instant::now();
        b.acquire("op").await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(100),
            "the estimate was right"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.estimate_wait("op", 5), Duration::ZERO, "refilled");
        b.pause("op", Duration::from_secs(30));
        assert_eq!(b.estimate_wait("op", 1), Duration::from_secs(30));
        assert_eq!(b.limit("op"), (10.0, 5));
        b.adjust("op", 2.0);
        assert_eq!(b.limit("op"), (2.0, 5));
        // Absurd values stay finite.
        let slow = Budget::new("test", 1e-30, 0);
        assert!(slow.estimate_wait("x", u32::MAX) > Duration::from_secs(1));
    }

    #[test]
    fn absurd_rates_do_not_panic() {
        for rate in [0.0, -1.0, f64::INFINITY, 1e-30, 1e30] {
            let b = Budget::new("test", rate, 0);
            b.set("x", rate, 0);
            assert_eq!(b.snapshot().len(), 1);
        }
    }
}
