//! eBay OAuth: the token endpoint (refresh-token and client-credentials grants) and the bearer
//! check plus rate limit in front of every Sell API call (contracts/README.md §2.1–2.2).
//!
//! Token endpoint errors use the OAuth shape `{"error","error_description"}` eBay's identity
//! service returns: bad client credentials → 401 `invalid_client`; bad refresh token → 400
//! `invalid_grant`; scopes beyond the grant → 400 `invalid_scope`; other grants → 400
//! `unsupported_grant_type`; missing fields or wrong content type → 400 `invalid_request`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use super::error::EbayError;
use super::state::AccessToken;
use super::{
    Ebay, GROUP_FULFILLMENT, GROUP_IDENTITY, GROUP_INVENTORY, MARKETPLACE, SCOPE_FULFILLMENT,
    SCOPE_INVENTORY, SCOPE_PUBLIC,
};
use crate::gate::Operation;

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn invalid_request() -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "request is missing a required parameter or malformed.",
    )
}

/// `client_id:client_secret` from `Authorization: Basic …`.
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

/// `POST /identity/v1/oauth2/token`.
pub(crate) async fn token(
    State(ebay): State<Arc<Ebay>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !ebay.shared.limiter.try_acquire(MARKETPLACE, GROUP_IDENTITY) {
        ebay.shared.recorder.too_many_requests(MARKETPLACE, true);
        return EbayError::too_many_requests().into_response();
    }
    let creds = &ebay.credentials;
    match basic_credentials(&headers) {
        Some((id, secret)) if id == creds.client_id && secret == creds.client_secret => {}
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
        }
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return invalid_request();
    }
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return invalid_request();
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let requested: Option<Vec<String>> =
        field("scope").map(|s| s.split_whitespace().map(str::to_owned).collect());
    let (scopes, token_type) = match field("grant_type") {
        None => return invalid_request(),
        Some("refresh_token") => {
            let Some(refresh_token) = field("refresh_token") else {
                return invalid_request();
            };
            if refresh_token != creds.refresh_token {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the provided authorization refresh token is invalid or was issued to another client",
                );
            }
            let scopes = requested.unwrap_or_else(|| creds.scopes.clone());
            if scopes.is_empty() || !scopes.iter().all(|s| creds.scopes.contains(s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "the requested scope is invalid, unknown, malformed, or exceeds the scope granted to the client",
                );
            }
            (scopes, "User Access Token")
        }
        Some("client_credentials") => {
            let scopes = requested.unwrap_or_else(|| vec![SCOPE_PUBLIC.to_owned()]);
            if scopes.iter().any(|s| s != SCOPE_PUBLIC) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "the requested scope is invalid, unknown, malformed, or exceeds the scope granted to the client",
                );
            }
            (scopes, "Application Access Token")
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant type in request is not supported by the authorization server",
            );
        }
    };
    let now = ebay.shared.clock.now();
    let ttl = ebay.token_ttl;
    let expires_at =
        now + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::seconds(7200));
    let access_token = format!("v^1.1#i^1#p^3#r^0#I^3#f^0#t^{}", ebay.shared.rng.hex(48));
    {
        let mut st = ebay.lock();
        st.tokens.retain(|_, t| t.expires_at > now);
        st.tokens
            .insert(access_token.clone(), AccessToken { scopes, expires_at });
    }
    let expires_in = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    Json(json!({
        "access_token": access_token,
        "expires_in": expires_in,
        "token_type": token_type,
    }))
    .into_response()
}

/// The scope a group's calls need (readonly variants suffice for reads).
fn group_scope(group: &str) -> Option<&'static str> {
    match group {
        GROUP_INVENTORY => Some(SCOPE_INVENTORY),
        GROUP_FULFILLMENT => Some(SCOPE_FULFILLMENT),
        _ => None,
    }
}

fn check_token(ebay: &Ebay, headers: &HeaderMap, op: Operation) -> Result<(), EbayError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(EbayError::missing_access_token)?
        .to_str()
        .map_err(|_| EbayError::invalid_access_token())?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(EbayError::bad_token_type(scheme));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(EbayError::missing_access_token());
    }
    let now = ebay.shared.clock.now();
    let st = ebay.lock();
    let issued = st
        .tokens
        .get(token)
        .filter(|t| t.expires_at > now)
        .ok_or_else(EbayError::invalid_access_token)?;
    if let Some(base) = group_scope(op.group) {
        let readonly = format!("{base}.readonly");
        let allowed = issued
            .scopes
            .iter()
            .any(|s| s == base || (op.readonly && *s == readonly));
        if !allowed {
            return Err(EbayError::insufficient_permissions());
        }
    }
    Ok(())
}

/// Middleware on every Sell API route: valid bearer token with the right scope, then a token
/// from the group's bucket.
pub(crate) async fn authorize(State(ebay): State<Arc<Ebay>>, req: Request, next: Next) -> Response {
    let Some(op) = req.extensions().get::<Operation>().copied() else {
        return next.run(req).await;
    };
    if let Err(error) = check_token(&ebay, req.headers(), op) {
        return error.into_response();
    }
    if !ebay.shared.limiter.try_acquire(MARKETPLACE, op.group) {
        ebay.shared.recorder.too_many_requests(MARKETPLACE, true);
        tracing::debug!(operation = op.name, "Throttled eBay call.");
        return EbayError::too_many_requests().into_response();
    }
    next.run(req).await
}
