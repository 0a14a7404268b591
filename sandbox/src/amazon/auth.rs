//! Login with Amazon (the token endpoint) and the access-token check plus per-operation token
//! bucket in front of every SP-API call (contracts/README.md §1.1–1.2).
//!
//! Token endpoint: `grant_type=refresh_token` with `refresh_token`, `client_id`, `client_secret`
//! as a form body or JSON (client credentials may also come as HTTP Basic). Errors use LWA's
//! `{"error","error_description"}`: wrong client → 401 `invalid_client`; wrong refresh token →
//! 400 `invalid_grant`; another grant → 400 `unsupported_grant_type`; missing fields, bad body →
//! 400 `invalid_request`.
//!
//! SP-API calls need `x-amz-access-token`; missing, unknown and expired tokens get 403
//! `Unauthorized` (details say which). Then the operation's bucket: empty → 429 `QuotaExceeded`
//! without `x-amzn-RateLimit-Limit`; responses with status 200/201/202/400/404 carry that header
//! with the operation's rate (e.g. `5.0`), as SP-API does. Every SP-API response carries
//! `x-amzn-RequestId`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::error::AmazonError;
use super::state::uuid;
use super::{Amazon, MARKETPLACE, OP_TOKEN};
use crate::MAX_BODY_BYTES;
use crate::gate::Operation;

/// The header carrying the LWA access token.
pub const ACCESS_TOKEN_HEADER: &str = "x-amz-access-token";
/// The rate header SP-API adds to 200/400/404 responses.
pub const RATE_LIMIT_HEADER: &str = "x-amzn-RateLimit-Limit";

fn lwa_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn missing(name: &str) -> Response {
    lwa_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("The request is missing a required parameter : {name}"),
    )
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// The token request's fields, from a form or a JSON body.
fn fields(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let v: Value = serde_json::from_slice(body).ok()?;
        let obj = v.as_object()?;
        Some(
            obj.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect(),
        )
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .map(|pairs| pairs.into_iter().collect())
    } else {
        None
    }
}

/// `POST /auth/o2/token`.
pub(crate) async fn token(State(amz): State<Arc<Amazon>>, req: Request) -> Response {
    if !amz.shared.limiter.try_acquire(MARKETPLACE, OP_TOKEN) {
        amz.shared.recorder.too_many_requests(MARKETPLACE, true);
        return AmazonError::quota_exceeded().into_response();
    }
    let headers = req.headers().clone();
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await else {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body is too large.",
        );
    };
    let Some(form) = fields(&headers, &body) else {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body must be application/x-www-form-urlencoded or application/json.",
        );
    };
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let Some(grant_type) = field("grant_type") else {
        return missing("grant_type");
    };
    if grant_type != "refresh_token" {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server",
        );
    }
    let basic = basic_credentials(&headers);
    let client_id = field("client_id").or(basic.as_ref().map(|b| b.0.as_str()));
    let client_secret = field("client_secret").or(basic.as_ref().map(|b| b.1.as_str()));
    let Some(client_id) = client_id else {
        return missing("client_id");
    };
    let Some(client_secret) = client_secret else {
        return missing("client_secret");
    };
    let Some(refresh_token) = field("refresh_token") else {
        return missing("refresh_token");
    };
    let creds = &amz.credentials;
    if client_id != creds.client_id || client_secret != creds.client_secret {
        return lwa_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    if refresh_token != creds.refresh_token {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        );
    }
    let now = amz.shared.clock.now();
    let ttl = amz.token_ttl;
    let expires_at = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let access_token = format!("Atza|{}", amz.shared.rng.hex(96));
    {
        let mut st = amz.lock();
        // Keep recently expired tokens so a late call is told "expired", not "invalid".
        let horizon = now - chrono::Duration::days(1);
        st.tokens.retain(|_, exp| *exp > horizon);
        st.tokens.insert(access_token.clone(), expires_at);
    }
    let expires_in = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    Json(json!({
        "access_token": access_token,
        "refresh_token": creds.refresh_token,
        "token_type": "bearer",
        "expires_in": expires_in,
    }))
    .into_response()
}

fn check_token(amz: &Amazon, headers: &HeaderMap) -> Result<(), AmazonError> {
    let Some(value) = headers.get(ACCESS_TOKEN_HEADER) else {
        return Err(AmazonError::unauthorized(
            "Access token is missing in the request header.",
        ));
    };
    let token = value.to_str().unwrap_or("").trim();
    if token.is_empty() {
        return Err(AmazonError::unauthorized(
            "Access token is missing in the request header.",
        ));
    }
    let now = amz.shared.clock.now();
    match amz.lock().tokens.get(token) {
        Some(exp) if *exp > now => Ok(()),
        Some(_) => Err(AmazonError::unauthorized(
            "The access token you provided has expired.",
        )),
        None => Err(AmazonError::unauthorized(
            "The access token you provided is revoked, malformed or invalid.",
        )),
    }
}

/// `5.0`, `0.0083`: the rate as SP-API prints it.
pub(crate) fn rate_header_value(rate_per_sec: f64) -> String {
    format!("{rate_per_sec:?}")
}

/// Middleware on every SP-API route: token, bucket, then the handler; response headers.
pub(crate) async fn authorize(
    State(amz): State<Arc<Amazon>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(op) = req.extensions().get::<Operation>().copied() else {
        return next.run(req).await;
    };
    let mut resp = if let Err(e) = check_token(&amz, req.headers()) {
        e.into_response()
    } else if !amz.shared.limiter.try_acquire(MARKETPLACE, op.group) {
        amz.shared.recorder.too_many_requests(MARKETPLACE, true);
        tracing::debug!(operation = op.name, "Throttled Amazon call.");
        AmazonError::quota_exceeded().into_response()
    } else {
        let mut resp = next.run(req).await;
        if matches!(resp.status().as_u16(), 200 | 201 | 202 | 400 | 404)
            && let Some(limit) = amz.shared.limiter.get(MARKETPLACE, op.group)
            && let Ok(v) = HeaderValue::from_str(&rate_header_value(limit.rate_per_sec))
        {
            resp.headers_mut().insert(RATE_LIMIT_HEADER, v);
        }
        resp
    };
    if let Ok(v) = HeaderValue::from_str(&uuid(&amz.shared.rng)) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_print_like_sp_api() {
        assert_eq!(rate_header_value(5.0), "5.0");
        assert_eq!(rate_header_value(0.0083), "0.0083");
        assert_eq!(rate_header_value(0.5), "0.5");
    }
}
