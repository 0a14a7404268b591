//! Exponential backoff with full jitter, capped (DESIGN §5).
//!
//! Full jitter (a uniform draw in `0..=min(cap, base × 2^attempt)`) spreads the retries of many
//! items and many daemons over the whole window instead of letting them return in lock-step — the
//! "retry into 429 storms" failure DESIGN names. The dispatcher uses it per item; connectors use
//! it nowhere else, because a 429 pauses the rate budget instead (see [`super::Budget`]).

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with full jitter: attempt `n` (0-based) waits a random time in
/// `0..=min(cap, base × 2^n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first retry's window.
    base: Duration,
    /// Largest window, whatever the attempt.
    cap: Duration,
}

impl Backoff {
    /// A policy from its base and cap (`cap` below `base` is raised to `base`).
    pub const fn new(base: Duration, cap: Duration) -> Self {
        let cap = if cap.as_nanos() < base.as_nanos() {
            base
        } else {
            cap
        };
        Backoff { base, cap }
    }

    /// Ceiling of the first retry's window.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// Largest window, whatever the attempt.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The upper bound of attempt `attempt`'s window: `min(cap, base × 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// A random wait for attempt `attempt` (0-based), uniform in `0..=ceiling(attempt)`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        // Modulo bias is at most 2^-64 × ceiling: irrelevant for a retry delay.
        Duration::from_nanos(random_u64() % nanos.saturating_add(1).max(1))
    }
}

/// A cheap random number: SipHash with the process's random keys over a per-thread counter. Good
/// enough to decorrelate retries; not for anything secret (nothing here is).
fn random_u64() -> u64 {
    thread_local! {
        static STATE: (RandomState, Cell<u64>) = (RandomState::new(), Cell::new(0));
    }
    STATE.with(|(keys, counter)| {
        let n = counter.get().wrapping_add(1);
        counter.set(n);
        let mut h = keys.build_hasher();
        h.write_u64(n);
        h.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let ceilings: Vec<u128> = (0..7).map(|a| b.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2), "no overflow");
    }

    #[test]
    fn delays_stay_within_the_window_and_spread() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 0..40 {
            let ceiling = b.ceiling(attempt);
            for _ in 0..50 {
                assert!(b.delay(attempt) <= ceiling, "attempt {attempt}");
            }
        }
        let draws: std::collections::BTreeSet<Duration> = (0..100).map(|_| b.delay(5)).collect();
        assert!(draws.len() > 50, "full jitter spreads retries: {draws:?}");
        let mean = (0..2000).map(|_| b.delay(10).as_secs_f64()).sum::<f64>() / 2000.0;
        assert!(
            (0.8..1.2).contains(&mean),
            "uniform over 0..=2s: mean {mean}"
        );
    }

    #[test]
    fn zero_base_means_no_wait_and_cap_is_at_least_base() {
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::ZERO).delay(3),
            Duration::ZERO
        );
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(b.cap(), Duration::from_secs(5));
    }
}
