//! eBay's error body (`{"errors":[ErrorData]}`, spec schema `Error`) and the error ids we answer with.
//!
//! Ids come from the specs' `x-response-codes` tables (25xxx Inventory, 3xxxx Fulfillment) and from
//! eBay's common REST errors (1xxx OAuth, 2xxx ACCESS; developer.ebay.com/develop/api/sell/error_codes,
//! contracts/README.md §2.2). Where eBay documents no specific id (the revision cap, a bad
//! Content-Type) the sandbox answers with the documented generic one and says so at the constant.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// Common error: the access token is unknown, expired or revoked (HTTP 401).
pub const ERR_INVALID_ACCESS_TOKEN: u64 = 1001;
/// Common error: no `Authorization` header (HTTP 400).
pub const ERR_MISSING_ACCESS_TOKEN: u64 = 1002;
/// Common error: the `Authorization` scheme is not `Bearer` (HTTP 400).
pub const ERR_BAD_TOKEN_TYPE: u64 = 1003;
/// Common error: the token lacks the scope the call needs (HTTP 403).
pub const ERR_INSUFFICIENT_PERMISSIONS: u64 = 1100;
/// Common error: call limit reached (HTTP 429).
pub const ERR_TOO_MANY_REQUESTS: u64 = 2001;
/// Common error: invalid request — used for malformed JSON, bodies over the size limit and a
/// missing/wrong `Content-Type` (eBay documents no more specific id for these).
pub const ERR_INVALID_REQUEST: u64 = 2004;
/// Common error: malformed request (ROUTING) — used for unencoded `[ ] { | }` in a query string,
/// which eBay says MUST be percent-encoded.
pub const ERR_MALFORMED_REQUEST: u64 = 3002;

/// Inventory: system error (HTTP 500).
pub const ERR_SYSTEM: u64 = 25001;
/// Inventory: generic user error. Also the id of the daily revision cap, for which eBay documents
/// no dedicated id, and of "Offer entity already exists".
pub const ERR_USER: u64 = 25002;
/// Inventory: invalid price.
pub const ERR_INVALID_PRICE: u64 = 25003;
/// Inventory: invalid quantity.
pub const ERR_INVALID_QUANTITY: u64 = 25004;
/// Inventory: invalid category id.
pub const ERR_INVALID_CATEGORY: u64 = 25005;
/// Inventory: invalid fulfillment policy.
pub const ERR_FULFILLMENT_POLICY: u64 = 25007;
/// Inventory: invalid payment policy.
pub const ERR_PAYMENT_POLICY: u64 = 25008;
/// Inventory: invalid return policy.
pub const ERR_RETURN_POLICY: u64 = 25009;
/// Inventory: invalid inventory location.
pub const ERR_INVALID_LOCATION: u64 = 25012;
/// Inventory: SKU not found / not available.
pub const ERR_SKU_NOT_FOUND: u64 = 25702;
/// Inventory: invalid pagination values.
pub const ERR_INVALID_PAGINATION: u64 = 25706;
/// Inventory: invalid SKU value (over 50 characters, or characters eBay refuses).
pub const ERR_INVALID_SKU: u64 = 25707;
/// Inventory: invalid value for a field (also the bulk-size cap of bulkUpdatePriceQuantity).
pub const ERR_INVALID_VALUE: u64 = 25709;
/// Inventory: entity not found.
pub const ERR_NOT_FOUND: u64 = 25710;
/// Inventory: offer not available.
pub const ERR_OFFER_NOT_AVAILABLE: u64 = 25713;
/// Inventory: too many inventory items in a bulk request.
pub const ERR_TOO_MANY_ITEMS: u64 = 25727;
/// Inventory: SKU must be unique in the request.
pub const ERR_DUPLICATE_SKU: u64 = 25734;
/// Inventory (location): already exists.
pub const ERR_LOCATION_EXISTS: u64 = 25803;

/// Fulfillment: invalid filter name.
pub const ERR_FILTER_NAME: u64 = 30700;
/// Fulfillment: invalid filter value.
pub const ERR_FILTER_VALUE: u64 = 30800;
/// Fulfillment: invalid date format.
pub const ERR_DATE_FORMAT: u64 = 30810;
/// Fulfillment: start date missing.
pub const ERR_START_DATE_MISSING: u64 = 30820;
/// Fulfillment: start date after end date.
pub const ERR_START_AFTER_END: u64 = 30840;
/// Fulfillment: dates in the future.
pub const ERR_DATE_IN_FUTURE: u64 = 30850;
/// Fulfillment: more than 50 order ids.
pub const ERR_TOO_MANY_ORDER_IDS: u64 = 30900;
/// Fulfillment: invalid offset.
pub const ERR_INVALID_OFFSET: u64 = 31000;
/// Fulfillment: invalid limit.
pub const ERR_INVALID_LIMIT: u64 = 31100;
/// Fulfillment: invalid order id.
pub const ERR_INVALID_ORDER_ID: u64 = 32100;

const DOMAIN_INVENTORY: &str = "API_INVENTORY";
const DOMAIN_FULFILLMENT: &str = "API_FULFILLMENT";

/// One entry of `errors` / `warnings` (spec schema `Error`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorData {
    pub error_id: u64,
    pub domain: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<&'static str>,
    pub category: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub long_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ErrorParameter>,
}

/// `{name, value}` context of an error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ErrorParameter {
    pub name: String,
    pub value: String,
}

impl ErrorData {
    fn new(error_id: u64, domain: &'static str, category: &'static str, message: String) -> Self {
        ErrorData {
            error_id,
            domain,
            subdomain: None,
            category,
            message,
            long_message: None,
            parameters: Vec::new(),
        }
    }

    /// An Inventory API request error.
    pub(crate) fn inventory(error_id: u64, message: impl Into<String>) -> Self {
        let mut e = ErrorData::new(error_id, DOMAIN_INVENTORY, "REQUEST", message.into());
        e.subdomain = Some("Selling");
        e
    }

    /// A Fulfillment API request error.
    pub(crate) fn fulfillment(error_id: u64, message: impl Into<String>) -> Self {
        let mut e = ErrorData::new(error_id, DOMAIN_FULFILLMENT, "REQUEST", message.into());
        e.subdomain = Some("Selling");
        e
    }

    /// Adds a context parameter.
    pub(crate) fn param(mut self, name: &str, value: impl Into<String>) -> Self {
        self.parameters.push(ErrorParameter {
            name: name.to_owned(),
            value: value.into(),
        });
        self
    }

    /// Sets the long message.
    pub(crate) fn long(mut self, long_message: impl Into<String>) -> Self {
        self.long_message = Some(long_message.into());
        self
    }
}

/// An error response: status plus `{"errors":[...]}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EbayError {
    pub status: StatusCode,
    pub errors: Vec<ErrorData>,
}

impl EbayError {
    pub(crate) fn new(status: StatusCode, error: ErrorData) -> Self {
        EbayError {
            status,
            errors: vec![error],
        }
    }

    pub(crate) fn many(status: StatusCode, errors: Vec<ErrorData>) -> Self {
        EbayError { status, errors }
    }

    /// 400 with an Inventory error.
    pub(crate) fn inventory(error_id: u64, message: impl Into<String>) -> Self {
        EbayError::new(
            StatusCode::BAD_REQUEST,
            ErrorData::inventory(error_id, message),
        )
    }

    /// 400 with a Fulfillment error.
    pub(crate) fn fulfillment(error_id: u64, message: impl Into<String>) -> Self {
        EbayError::new(
            StatusCode::BAD_REQUEST,
            ErrorData::fulfillment(error_id, message),
        )
    }

    /// Adds a parameter to the first error.
    pub(crate) fn with_param(mut self, name: &str, value: &str) -> Self {
        if let Some(first) = self.errors.first_mut() {
            first.parameters.push(ErrorParameter {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        }
        self
    }

    /// Replaces the status.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn invalid_access_token() -> Self {
        EbayError::new(
            StatusCode::UNAUTHORIZED,
            ErrorData::new(
                ERR_INVALID_ACCESS_TOKEN,
                "OAuth",
                "REQUEST",
                "Invalid access token".into(),
            )
            .long(
                "Invalid access token. Check the value of the Authorization HTTP request header.",
            ),
        )
    }

    pub(crate) fn missing_access_token() -> Self {
        EbayError::new(
            StatusCode::BAD_REQUEST,
            ErrorData::new(
                ERR_MISSING_ACCESS_TOKEN,
                "OAuth",
                "REQUEST",
                "Missing access token".into(),
            )
            .long("Access token is missing in the Authorization HTTP request header."),
        )
    }

    pub(crate) fn bad_token_type(scheme: &str) -> Self {
        let message = format!("Token type in the Authorization header is invalid:{scheme}");
        EbayError::new(
            StatusCode::BAD_REQUEST,
            ErrorData::new(ERR_BAD_TOKEN_TYPE, "OAuth", "REQUEST", message.clone()).long(message),
        )
    }

    pub(crate) fn insufficient_permissions() -> Self {
        EbayError::new(
            StatusCode::FORBIDDEN,
            ErrorData::new(
                ERR_INSUFFICIENT_PERMISSIONS,
                "ACCESS",
                "REQUEST",
                "Access denied".into(),
            )
            .long("Insufficient permissions to fulfill the request."),
        )
    }

    /// The documented 429 body (contracts/README.md §2.2).
    pub(crate) fn too_many_requests() -> Self {
        EbayError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorData::new(
                ERR_TOO_MANY_REQUESTS,
                "ACCESS",
                "REQUEST",
                "Too many requests.".into(),
            )
            .long("The request limit has been reached for the resource."),
        )
    }

    pub(crate) fn invalid_request(status: StatusCode, detail: impl Into<String>) -> Self {
        EbayError::new(
            status,
            ErrorData::new(
                ERR_INVALID_REQUEST,
                "ACCESS",
                "REQUEST",
                "Invalid request".into(),
            )
            .long(format!(
                "Request has errors. For help, see the documentation for this API. {}",
                detail.into()
            )),
        )
    }

    pub(crate) fn malformed_request(detail: impl Into<String>) -> Self {
        EbayError::new(
            StatusCode::BAD_REQUEST,
            ErrorData::new(
                ERR_MALFORMED_REQUEST,
                "ROUTING",
                "REQUEST",
                "Malformed request".into(),
            )
            .long(format!(
                "The request has errors. For help, see the documentation for this API. {}",
                detail.into()
            )),
        )
    }

    /// A system error with the given 5xx status.
    pub(crate) fn system(status: StatusCode) -> Self {
        let mut e = ErrorData::new(
            ERR_SYSTEM,
            DOMAIN_INVENTORY,
            "APPLICATION",
            "A system error has occurred.".into(),
        );
        e.subdomain = Some("Selling");
        EbayError::new(status, e)
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        json!({ "errors": self.errors })
    }
}

impl IntoResponse for EbayError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_body_is_the_documented_one() {
        let body = EbayError::too_many_requests().body();
        assert_eq!(
            body,
            json!({"errors":[{"errorId":2001,"domain":"ACCESS","category":"REQUEST",
                "message":"Too many requests.",
                "longMessage":"The request limit has been reached for the resource."}]})
        );
    }
}
