//! Errors a connector returns for a whole call, with their retry classification.
//!
//! Connectors classify; shared code acts (STYLE habit 5). Per-item failures inside a batch are
//! [`crate::ItemOutcome`]s, not errors.

use std::time::Duration;

/// How the caller should treat a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The marketplace said "too many requests": pause the account's budget for the operation and
    /// try again; the items' attempts are not counted.
    RateLimited,
    /// Worth retrying with backoff: 5xx, connection refused or reset, a malformed response.
    Transient,
    /// The request may or may not have been applied (timeout after sending). Resending the same
    /// absolute values is safe; the dispatcher retries with backoff.
    Unknown,
    /// Credentials rejected even after a token refresh: the whole channel waits for an operator.
    Auth,
    /// The request itself is wrong and will be wrong again (a 4xx that is not about one item,
    /// a config value the marketplace refuses).
    Permanent,
}

impl ErrorClass {
    /// Stable lower-case name for metrics and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Transient => "transient",
            ErrorClass::Unknown => "unknown_outcome",
            ErrorClass::Auth => "auth",
            ErrorClass::Permanent => "permanent",
        }
    }
}

/// A call that failed as a whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectorError {
    /// HTTP 429 or the marketplace's own throttling signal.
    #[error("rate limited by the marketplace{}: {}", fmt_wait(*.retry_after), bounded(message))]
    RateLimited {
        /// How long the marketplace asked us to wait, when it said.
        retry_after: Option<Duration>,
        /// The marketplace's message.
        message: String,
    },
    /// A failure worth retrying (5xx, connection error before the request was sent, bad body).
    #[error("temporary failure{}: {}", fmt_status(*.status), bounded(message))]
    Transient {
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// The request was sent and no answer came back in time.
    #[error(
        "no answer in time (the request may have been applied): {}",
        bounded(message)
    )]
    Timeout {
        /// What timed out.
        message: String,
    },
    /// Credentials refused.
    #[error("authentication failed{}: {}", fmt_status(*.status), bounded(message))]
    Auth {
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// The marketplace's message (never a token).
        message: String,
    },
    /// A request the marketplace will keep refusing.
    #[error("request refused{}: {}", fmt_status(*.status), bounded(message))]
    Permanent {
        /// HTTP status.
        status: Option<u16>,
        /// The marketplace's error code, when it gives one.
        code: Option<String>,
        /// The marketplace's message.
        message: String,
    },
    /// A response we could not understand (not JSON, wrong shape, too large).
    #[error("malformed response{}: {}", fmt_status(*.status), bounded(message))]
    Malformed {
        /// HTTP status.
        status: Option<u16>,
        /// What was wrong.
        message: String,
    },
}

/// Most characters of a message an error prints. Connectors cut what a marketplace says to
/// [`MAX_MESSAGE_CHARS`](crate::common::http::MAX_MESSAGE_CHARS) where they read it; this bounds
/// whatever else got in (a parser's message quoting a 3 MB string), so no error can flood a log
/// line, `status` or the database.
pub const MAX_ERROR_CHARS: usize = 1000;

fn bounded(message: &str) -> std::borrow::Cow<'_, str> {
    match message.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]).into(),
        None => message.into(),
    }
}

fn fmt_wait(d: Option<Duration>) -> String {
    d.map(|d| format!(" (retry after {} ms)", d.as_millis()))
        .unwrap_or_default()
}

fn fmt_status(s: Option<u16>) -> String {
    s.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl ConnectorError {
    /// How to treat this failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            ConnectorError::RateLimited { .. } => ErrorClass::RateLimited,
            ConnectorError::Transient { .. } | ConnectorError::Malformed { .. } => {
                ErrorClass::Transient
            }
            ConnectorError::Timeout { .. } => ErrorClass::Unknown,
            ConnectorError::Auth { .. } => ErrorClass::Auth,
            ConnectorError::Permanent { .. } => ErrorClass::Permanent,
        }
    }

    /// True when trying the same call again later can succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::RateLimited | ErrorClass::Transient | ErrorClass::Unknown
        )
    }

    /// The wait the marketplace asked for, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectorError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_messages_are_bounded() {
        let huge = "é".repeat(3 << 20);
        let errors = [
            ConnectorError::Malformed {
                status: Some(200),
                message: format!("unexpected response body: invalid type: string \"{huge}\""),
            },
            ConnectorError::Permanent {
                status: Some(400),
                code: None,
                message: huge.clone(),
            },
            ConnectorError::Timeout {
                message: huge.clone(),
            },
        ];
        for e in errors {
            let text = e.to_string();
            assert!(
                text.chars().count() <= MAX_ERROR_CHARS + 80,
                "{}",
                text.len()
            );
            assert!(text.ends_with('…'));
        }
        let short = ConnectorError::Auth {
            status: Some(401),
            message: "token expired".into(),
        };
        assert_eq!(
            short.to_string(),
            "authentication failed (HTTP 401): token expired"
        );
    }
}
