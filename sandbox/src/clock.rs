//! The sandbox's wall clock: real UTC time plus an offset tests can advance.
//!
//! Everything a marketplace dates (orders, token expiry, the calendar day that eBay's revision cap
//! counts in) reads this clock, so a test can jump two hours to expire a token or a day to reset a
//! cap without sleeping. Elapsed times in the logs use a monotonic clock instead (see `record`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Real time shifted by an adjustable offset.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    /// Milliseconds added to the real time; only ever grows, so sandbox time never runs backwards.
    offset_ms: AtomicI64,
}

impl Clock {
    /// The sandbox's idea of now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        chrono::TimeDelta::try_milliseconds(self.offset_ms.load(Ordering::Relaxed))
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Moves sandbox time forward by `by` (saturating: it never wraps into the past).
    pub(crate) fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(ms))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(7200));
        let after = clock.now();
        assert!(after - before >= chrono::Duration::seconds(7200));
    }

    #[test]
    fn absurd_advances_saturate_instead_of_panicking() {
        let clock = Clock::default();
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now(), DateTime::<Utc>::MAX_UTC);
    }
}
