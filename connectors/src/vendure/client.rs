//! Vendure over HTTP: the `login` mutation and its bearer session token, one re-login after a
//! refusal, the `vendure-token` channel header, the rate budget in front of every call, and the
//! classification of GraphQL answers.
//!
//! Every document is a constant of [`super::mapping`]; values travel only in `variables`, so no
//! SKU, name or password is ever spliced into GraphQL text.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::config::VendureConfig;
use super::mapping::{self, GqlError, GqlResponse, LoginResult};
use crate::common::http::{self, HttpResponse, error_for_status, truncate};
use crate::common::{AccessToken, Budget, FetchedToken, Secret, TokenCache, TokenStats};
use crate::error::ConnectorError;

/// Response header carrying the session token (Vendure's `bearer` token method).
pub const AUTH_TOKEN_HEADER: &str = "vendure-auth-token";
/// Request header selecting a channel by its token.
pub const CHANNEL_TOKEN_HEADER: &str = "vendure-token";

/// How long a session is trusted before logging in again. Vendure's default `sessionDuration` is
/// one year (with `rememberMe`); a daily login is cheap and survives a shortened setting. A session
/// Vendure dropped earlier (restart with a new secret, logout, admin changes) is caught by the
/// re-login after a `FORBIDDEN` answer.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Error codes (`extensions.code`) meaning "this session may not do that": one re-login, then
/// [`ConnectorError::Auth`].
const AUTH_CODES: [&str; 2] = ["FORBIDDEN", "UNAUTHORIZED"];

/// Counters for [`crate::Connector::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub errors: AtomicU64,
}

/// The HTTP side of one Vendure store.
#[derive(Debug)]
pub(crate) struct VendureClient {
    http: reqwest::Client,
    endpoint: String,
    username: String,
    password: Secret,
    channel_token: Option<String>,
    throttle_pause: Duration,
    sessions: TokenCache,
    pub(crate) budget: Budget,
    pub(crate) counters: Counters,
}

/// A whole-call failure, or the GraphQL errors of an answer that otherwise arrived (the caller
/// decides whether they concern one item).
#[derive(Debug)]
pub(crate) enum CallError {
    /// The call failed as a whole.
    Call(ConnectorError),
    /// Vendure answered with `errors` (and no usable `data`) that are not about the session.
    Graphql(Vec<GqlError>),
}

impl From<ConnectorError> for CallError {
    fn from(e: ConnectorError) -> Self {
        CallError::Call(e)
    }
}

impl CallError {
    /// The whole-call error: GraphQL errors classified by their codes.
    pub(crate) fn into_connector(self) -> ConnectorError {
        match self {
            CallError::Call(e) => e,
            CallError::Graphql(errors) => mapping::classify_errors(&errors),
        }
    }
}

impl VendureClient {
    pub(crate) fn new(config: &VendureConfig, budget: Budget) -> Result<Self, ConnectorError> {
        Ok(VendureClient {
            http: http::build_client(&config.limits, config.loopback())?,
            endpoint: config.endpoint.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            channel_token: config.channel_token().map(str::to_owned),
            throttle_pause: config.limits.throttle_pause,
            sessions: TokenCache::new(),
            budget,
            counters: Counters::default(),
        })
    }

    /// Logins, failures and dropped sessions so far.
    pub(crate) fn session_stats(&self) -> TokenStats {
        self.sessions.stats()
    }

    /// A session token (cached, or from one login shared by all concurrent callers).
    pub(crate) async fn session(&self) -> Result<AccessToken, ConnectorError> {
        self.sessions.get(|| self.login()).await
    }

    /// `login(username, password)`; the token is the `vendure-auth-token` response header.
    #[tracing::instrument(skip_all, err(level = "warn"))]
    async fn login(&self) -> Result<FetchedToken, ConnectorError> {
        let body = json!({
            "operationName": "OmnistockLogin",
            "query": mapping::LOGIN,
            "variables": {"username": self.username, "password": self.password.expose()},
        });
        let (resp, token) = self.post(super::OP_LOGIN, &body, None, false).await?;
        if resp.status == 429 {
            return Err(self.throttled(super::OP_LOGIN, &resp));
        }
        if !resp.is_success() {
            return Err(self.status_error(&resp));
        }
        let answer: GqlResponse<LoginResult> = resp.json()?;
        if let Some(data) = answer.data.as_ref().and_then(|d| d.login.as_ref())
            && let Some(code) = &data.error_code
        {
            self.note_error();
            return Err(ConnectorError::Auth {
                status: Some(resp.status),
                message: format!(
                    "Vendure refused the login of {:?}: {} ({})",
                    truncate(&self.username, 100),
                    truncate(code, 100),
                    truncate(data.message.as_deref().unwrap_or(""), 300)
                ),
            });
        }
        if !answer.errors.is_empty() {
            self.note_error();
            return Err(mapping::classify_errors(&answer.errors));
        }
        let logged_in = answer
            .data
            .as_ref()
            .and_then(|d| d.login.as_ref())
            .is_some_and(|l| l.id.is_some());
        if !logged_in {
            self.note_error();
            return Err(ConnectorError::Malformed {
                status: Some(resp.status),
                message: "the login answer holds neither a CurrentUser nor an ErrorResult".into(),
            });
        }
        match token.filter(|t| !t.is_empty()) {
            Some(token) => Ok(FetchedToken {
                value: Secret::new(token),
                lifetime: SESSION_LIFETIME,
            }),
            None => {
                self.note_error();
                Err(ConnectorError::Permanent {
                    status: Some(resp.status),
                    code: None,
                    message: format!(
                        "Vendure accepted the login but sent no {AUTH_TOKEN_HEADER} header: \
                         its authOptions.tokenMethod must include 'bearer'"
                    ),
                })
            }
        }
    }

    /// Runs one GraphQL operation and returns its `data`. A session refusal (HTTP 401/403 or a
    /// `FORBIDDEN` error) drops the session, logs in again and sends once more; a second refusal
    /// is [`ConnectorError::Auth`]. Other GraphQL errors come back as [`CallError::Graphql`].
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        name: &'static str,
        query: &'static str,
        variables: Value,
        idempotent: bool,
    ) -> Result<T, CallError> {
        let body = json!({"operationName": name, "query": query, "variables": variables});
        let mut relogged = false;
        loop {
            let session = self.session().await?;
            let (resp, _) = self
                .post(operation, &body, Some(&session), idempotent)
                .await?;
            if resp.status == 429 {
                return Err(self.throttled(operation, &resp).into());
            }
            let refused = matches!(resp.status, 401 | 403)
                || (resp.is_success() && refused_session(&resp.body));
            if refused {
                if !relogged {
                    tracing::info!(
                        operation,
                        "Vendure refused the session; logging in again and retrying once."
                    );
                    self.sessions.invalidate(&session).await;
                    relogged = true;
                    continue;
                }
                self.note_error();
                return Err(ConnectorError::Auth {
                    status: Some(resp.status),
                    message: format!(
                        "Vendure refused {operation} after a fresh login (the administrator \
                         lacks a permission on this channel?): {}",
                        truncate(&resp.snippet(), 300)
                    ),
                }
                .into());
            }
            // GraphQL servers answer validation failures with 400 and a GraphQL body.
            if !resp.is_success() && resp.status != 400 {
                return Err(self.status_error(&resp).into());
            }
            let answer: GqlResponse<T> = resp.json().inspect_err(|_| self.note_error())?;
            return match answer.data {
                Some(data) if answer.errors.is_empty() => Ok(data),
                _ if !answer.errors.is_empty() => {
                    self.note_error();
                    Err(CallError::Graphql(answer.errors))
                }
                _ => {
                    self.note_error();
                    Err(ConnectorError::Malformed {
                        status: Some(resp.status),
                        message: format!("{operation}: the answer holds neither data nor errors"),
                    }
                    .into())
                }
            };
        }
    }

    /// Like [`VendureClient::call`], classifying GraphQL errors as a whole-call error.
    pub(crate) async fn call_whole<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        name: &'static str,
        query: &'static str,
        variables: Value,
        idempotent: bool,
    ) -> Result<T, ConnectorError> {
        self.call(operation, name, query, variables, idempotent)
            .await
            .map_err(CallError::into_connector)
    }

    async fn post(
        &self,
        operation: &'static str,
        body: &Value,
        session: Option<&AccessToken>,
        idempotent: bool,
    ) -> Result<(HttpResponse, Option<String>), ConnectorError> {
        self.budget.acquire(operation).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let mut builder = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec()));
        if let Some(session) = session {
            builder = builder.bearer_auth(session.value.expose());
        }
        if let Some(channel) = &self.channel_token {
            builder = builder.header(CHANNEL_TOKEN_HEADER, channel);
        }
        http::send_reading_header(builder, idempotent, AUTH_TOKEN_HEADER)
            .await
            .inspect_err(|_| self.note_error())
    }

    /// A 429 (from a proxy in front of Vendure, or a rate-limit plugin): pause the operation's
    /// budget for `Retry-After` (else the configured pause) and report it.
    fn throttled(&self, operation: &str, resp: &HttpResponse) -> ConnectorError {
        self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        self.budget
            .pause(operation, resp.retry_after.unwrap_or(self.throttle_pause));
        ConnectorError::RateLimited {
            retry_after: resp.retry_after,
            message: format!("{operation} throttled: {}", truncate(&resp.snippet(), 200)),
        }
    }

    fn status_error(&self, resp: &HttpResponse) -> ConnectorError {
        self.note_error();
        error_for_status(
            resp.status,
            resp.retry_after,
            None,
            format!(
                "Vendure answered HTTP {}: {}",
                resp.status,
                truncate(&resp.snippet(), 200)
            ),
        )
    }

    pub(crate) fn note_error(&self) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// True when a 200 answer's errors say the session may not do this (`FORBIDDEN`).
fn refused_session(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<GqlError>,
    }
    serde_json::from_slice::<Errors>(body).is_ok_and(|e| {
        e.errors
            .iter()
            .any(|e| e.code().is_some_and(|c| AUTH_CODES.contains(&c)))
    })
}
