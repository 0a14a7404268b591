//! SP-API's error body (`ErrorList`: `{"errors":[{"code","message","details"}]}`, the same schema
//! in the Listings Items, Feeds and Orders models) and the codes the fake answers with.
//!
//! Codes and messages follow contracts/README.md §1.1–1.2 and what SP-API is seen to return:
//! `Unauthorized` / "Access to requested resource is denied." (403, with `x-amzn-ErrorType:
//! AccessDeniedException`), `QuotaExceeded` (429), `InvalidInput` (400), `NotFound` (404),
//! `InternalFailure` (500) and `ServiceUnavailable` (503). `details` is always present (possibly
//! empty), as in Amazon's own answers.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

/// Request failed validation (HTTP 400).
pub const CODE_INVALID_INPUT: &str = "InvalidInput";
/// Missing, invalid or expired access token, or a seller the token does not speak for (HTTP 403).
pub const CODE_UNAUTHORIZED: &str = "Unauthorized";
/// The resource does not exist (HTTP 404).
pub const CODE_NOT_FOUND: &str = "NotFound";
/// The operation's (or the feed type's) token bucket is empty (HTTP 429).
pub const CODE_QUOTA_EXCEEDED: &str = "QuotaExceeded";
/// Server-side failure (HTTP 500).
pub const CODE_INTERNAL_FAILURE: &str = "InternalFailure";
/// Temporary unavailability (HTTP 503 and other 5xx).
pub const CODE_SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";

/// The `message` of every 403.
pub const MESSAGE_UNAUTHORIZED: &str = "Access to requested resource is denied.";
/// The `message` of every 429 (contracts/README.md §1.1).
pub const MESSAGE_QUOTA_EXCEEDED: &str = "You exceeded your quota for the requested resource.";

/// One entry of `errors` (spec schema `Error`: code and message required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorItem {
    pub code: String,
    pub message: String,
    pub details: String,
}

/// An error response: status plus `{"errors":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AmazonError {
    pub status: StatusCode,
    pub errors: Vec<ErrorItem>,
}

impl AmazonError {
    pub(crate) fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        details: impl Into<String>,
    ) -> Self {
        AmazonError {
            status,
            errors: vec![ErrorItem {
                code: code.to_owned(),
                message: message.into(),
                details: details.into(),
            }],
        }
    }

    /// 400 `InvalidInput`.
    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        AmazonError::new(StatusCode::BAD_REQUEST, CODE_INVALID_INPUT, message, "")
    }

    /// 404 `NotFound`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        AmazonError::new(StatusCode::NOT_FOUND, CODE_NOT_FOUND, message, "")
    }

    /// 403 `Unauthorized` with these details.
    pub(crate) fn unauthorized(details: impl Into<String>) -> Self {
        AmazonError::new(
            StatusCode::FORBIDDEN,
            CODE_UNAUTHORIZED,
            MESSAGE_UNAUTHORIZED,
            details,
        )
    }

    /// The documented 429 body.
    pub(crate) fn quota_exceeded() -> Self {
        AmazonError::new(
            StatusCode::TOO_MANY_REQUESTS,
            CODE_QUOTA_EXCEEDED,
            MESSAGE_QUOTA_EXCEEDED,
            "",
        )
    }

    /// A server error with this 5xx status.
    pub(crate) fn system(status: StatusCode) -> Self {
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            AmazonError::new(
                status,
                CODE_INTERNAL_FAILURE,
                "We encountered an internal error. Please try again.",
                "",
            )
        } else {
            AmazonError::new(
                status,
                CODE_SERVICE_UNAVAILABLE,
                "Service is temporarily unavailable. Please try again later.",
                "",
            )
        }
    }

    /// Replaces the status.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn body(&self) -> Value {
        json!({ "errors": self.errors })
    }
}

impl IntoResponse for AmazonError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut resp = (status, Json(self.body())).into_response();
        if status == StatusCode::FORBIDDEN {
            resp.headers_mut().insert(
                "x-amzn-ErrorType",
                HeaderValue::from_static("AccessDeniedException"),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_body_is_the_documented_one() {
        assert_eq!(
            AmazonError::quota_exceeded().body(),
            json!({"errors":[{"code":"QuotaExceeded",
                "message":"You exceeded your quota for the requested resource.","details":""}]})
        );
    }
}
