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
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves sandbox time forward by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX / 2);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
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
}
