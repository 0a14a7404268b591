//! One limits struct for every connector (STYLE habit 6).
//!
//! Each connector publishes its marketplace's defaults as an associated const (e.g.
//! `EbayConnector::DEFAULT_LIMITS`); the daemon starts from those and applies the channel's
//! `limits = { … }` overrides with [`Limits::overridden`]. Only what the merchant's account can
//! change lives here: the marketplace's hard caps (eBay's 25 items per bulk call) are constants in
//! the connector, and a `batch_size` above them is clamped there.

use std::time::Duration;

use super::backoff::Backoff;
use crate::error::ConnectorError;

/// How hard a connector may drive one marketplace account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Whole-request deadline (connect, send, answer, body). When it passes after the request was
    /// sent the outcome is unknown ([`ConnectorError::Timeout`]).
    pub timeout: Duration,
    /// Deadline for opening the connection; failing it means nothing was sent (transient).
    pub connect_timeout: Duration,
    /// Sustained requests per second the account may make (per rate-limited operation).
    pub rate_per_sec: f64,
    /// Requests that may go out back to back after a quiet spell.
    pub burst: u32,
    /// Items per batch call; clamped to the marketplace's maximum by the connector.
    pub batch_size: usize,
    /// How the dispatcher spaces retries of a failed item.
    pub retry: Backoff,
    /// How long an operation's budget pauses after a 429 that did not say how long to wait.
    pub throttle_pause: Duration,
}

impl Limits {
    /// Applies a channel's `limits` overrides (each `None` keeps this value).
    pub fn overridden(
        mut self,
        rate_per_sec: Option<f64>,
        burst: Option<u32>,
        batch_size: Option<u32>,
        timeout_secs: Option<u64>,
    ) -> Limits {
        if let Some(rate) = rate_per_sec {
            self.rate_per_sec = rate;
        }
        if let Some(burst) = burst {
            self.burst = burst;
        }
        if let Some(n) = batch_size {
            self.batch_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(secs) = timeout_secs {
            self.timeout = Duration::from_secs(secs);
        }
        self
    }

    /// Refuses values no account can run with (the config's semantic pass reports them first;
    /// this guards constructors called from elsewhere).
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let bad = |what: String| {
            Err(ConnectorError::Permanent {
                status: None,
                code: None,
                message: format!("invalid connector limits: {what}"),
            })
        };
        if !self.rate_per_sec.is_finite() || self.rate_per_sec <= 0.0 {
            return bad(format!(
                "rate_per_sec must be above 0, got {}",
                self.rate_per_sec
            ));
        }
        if self.burst == 0 {
            return bad("burst must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return bad("timeouts must be above 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Limits = Limits {
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        rate_per_sec: 5.0,
        burst: 10,
        batch_size: 25,
        retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(300)),
        throttle_pause: Duration::from_secs(60),
    };

    #[test]
    fn overrides_replace_only_what_they_name() {
        let l = BASE.overridden(Some(2.0), None, Some(10), Some(5));
        assert_eq!(l.rate_per_sec, 2.0);
        assert_eq!(l.burst, 10);
        assert_eq!(l.batch_size, 10);
        assert_eq!(l.timeout, Duration::from_secs(5));
        assert_eq!(BASE.overridden(None, None, None, None), BASE);
    }

    #[test]
    fn validation_refuses_unusable_values() {
        assert!(BASE.validate().is_ok());
        for bad in [
            BASE.overridden(Some(0.0), None, None, None),
            BASE.overridden(Some(f64::NAN), None, None, None),
            BASE.overridden(None, Some(0), None, None),
            BASE.overridden(None, None, Some(0), None),
            BASE.overridden(None, None, None, Some(0)),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
