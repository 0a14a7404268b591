//! eBay over HTTP: the OAuth refresh-token grant, bearer auth with one retry after a 401, the rate
//! budget in front of every call, and the whole-call error classification.
//!
//! [`EbayClient::call`] answers every HTTP status except the ones that concern the whole account
//! (401/403 → `Auth`, 429 → `RateLimited` after pausing the operation's budget); item-level
//! 4xx/5xx come back as responses for the connector to classify per item.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;

use super::config::EbayConfig;
use super::mapping::ErrorBody;
use crate::common::http::{self, HttpResponse, error_for_status, truncate};
use crate::common::{
    AccessToken, Budget, FetchedToken, Secret, TokenCache, TokenStats, read_token_response,
};
use crate::error::ConnectorError;

/// Which eBay API (and rate budget) a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// Sell Inventory API v1 (items, offers, bulk price/quantity).
    Inventory,
    /// Sell Fulfillment API v1 (orders).
    Fulfillment,
}

impl Api {
    /// The budget operation name.
    pub(crate) fn operation(self) -> &'static str {
        match self {
            Api::Inventory => super::OP_INVENTORY,
            Api::Fulfillment => super::OP_FULFILLMENT,
        }
    }
}

/// One request, kept whole so it can be sent again after a token refresh.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub api: Api,
    pub method: Method,
    /// Path and query below the API's base (`/inventory_item/MUG%2DRED`), already encoded.
    pub path: String,
    /// JSON body.
    pub body: Option<Vec<u8>>,
    /// Send `Content-Language` (eBay requires it on item and offer writes).
    pub content_language: bool,
}

impl Request {
    /// A GET.
    pub(crate) fn get(api: Api, path: impl Into<String>) -> Self {
        Request {
            api,
            method: Method::GET,
            path: path.into(),
            body: None,
            content_language: false,
        }
    }

    /// A request with a JSON body (serialization of our own types cannot fail in practice; if it
    /// did, the body would be `null` and eBay would say so).
    pub(crate) fn json(
        api: Api,
        method: Method,
        path: impl Into<String>,
        body: &impl serde::Serialize,
    ) -> Self {
        Request {
            api,
            method,
            path: path.into(),
            body: Some(serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec())),
            content_language: false,
        }
    }

    /// A POST without a body (publishOffer, withdrawOffer).
    pub(crate) fn post_empty(api: Api, path: impl Into<String>) -> Self {
        Request {
            api,
            method: Method::POST,
            path: path.into(),
            body: None,
            content_language: false,
        }
    }

    /// Adds `Content-Language`.
    pub(crate) fn with_content_language(mut self) -> Self {
        self.content_language = true;
        self
    }
}

/// Counters for [`crate::Connector::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub rate_limited: AtomicU64,
    pub errors: AtomicU64,
}

/// Lifetime assumed when the token endpoint leaves out `expires_in` (eBay documents 7200 s).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(7200);

/// The HTTP side of one eBay account.
#[derive(Debug)]
pub(crate) struct EbayClient {
    http: reqwest::Client,
    inventory_base: String,
    fulfillment_base: String,
    token_endpoint: String,
    client_id: String,
    client_secret: Secret,
    refresh_token: Secret,
    scope: String,
    content_language: String,
    throttle_pause: Duration,
    tokens: TokenCache,
    pub(crate) budget: Budget,
    pub(crate) counters: Counters,
}

impl EbayClient {
    pub(crate) fn new(config: &EbayConfig, budget: Budget) -> Result<Self, ConnectorError> {
        Ok(EbayClient {
            http: http::build_client(&config.limits, config.all_loopback())?,
            inventory_base: config.inventory_base(),
            fulfillment_base: config.fulfillment_base(),
            token_endpoint: config.token_endpoint.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            refresh_token: config.refresh_token.clone(),
            scope: config.scope_param(),
            content_language: config.content_language.clone(),
            throttle_pause: config.limits.throttle_pause,
            tokens: TokenCache::new(),
            budget,
            counters: Counters::default(),
        })
    }

    /// Token refreshes, failures and invalidations so far.
    pub(crate) fn token_stats(&self) -> TokenStats {
        self.tokens.stats()
    }

    /// A valid access token (cached, or refreshed once for all concurrent callers).
    pub(crate) async fn token(&self) -> Result<AccessToken, ConnectorError> {
        self.tokens.get(|| self.fetch_token()).await
    }

    /// The refresh-token grant: `POST token_endpoint` with Basic client credentials and
    /// `grant_type=refresh_token&refresh_token=…&scope=…`.
    #[tracing::instrument(skip_all, err(level = "warn"))]
    async fn fetch_token(&self) -> Result<FetchedToken, ConnectorError> {
        self.budget.acquire(super::OP_IDENTITY).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let request = self
            .http
            .post(&self.token_endpoint)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh_token.expose()),
                ("scope", self.scope.as_str()),
            ]);
        // Asking again only mints another token: safe to treat as a read.
        let resp = http::send(request, true)
            .await
            .inspect_err(|_| self.note_error())?;
        if resp.status == 429 {
            return Err(self.throttled(super::OP_IDENTITY, &resp));
        }
        let token = read_token_response(&resp, "token endpoint", DEFAULT_TOKEN_LIFETIME)
            .inspect_err(|_| self.note_error())?;
        tracing::debug!(lifetime = ?token.lifetime, "Refreshed the eBay access token.");
        Ok(token)
    }

    /// Sends `req` with a bearer token; after a 401 drops the token, refreshes and sends once
    /// more. Returns every answer but 401/403 (`Auth`) and 429 (`RateLimited`, budget paused).
    pub(crate) async fn call(&self, req: &Request) -> Result<HttpResponse, ConnectorError> {
        let token = self.token().await?;
        let mut resp = self.send(req, &token).await?;
        if resp.status == 401 {
            tracing::info!(
                operation = req.api.operation(),
                "eBay refused the access token; refreshing and retrying once."
            );
            self.tokens.invalidate(&token).await;
            let token = self.token().await?;
            resp = self.send(req, &token).await?;
        }
        match resp.status {
            429 => Err(self.throttled(req.api.operation(), &resp)),
            401 | 403 => {
                self.note_error();
                let errors = ErrorBody::parse(&resp.body);
                Err(ConnectorError::Auth {
                    status: Some(resp.status),
                    message: if errors.errors.is_empty() {
                        resp.snippet()
                    } else {
                        errors.message()
                    },
                })
            }
            _ => Ok(resp),
        }
    }

    async fn send(
        &self,
        req: &Request,
        token: &AccessToken,
    ) -> Result<HttpResponse, ConnectorError> {
        self.budget.acquire(req.api.operation()).await;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let base = match req.api {
            Api::Inventory => &self.inventory_base,
            Api::Fulfillment => &self.fulfillment_base,
        };
        let mut builder = self
            .http
            .request(req.method.clone(), format!("{base}{}", req.path))
            .bearer_auth(token.value.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if req.content_language {
            builder = builder.header(reqwest::header::CONTENT_LANGUAGE, &self.content_language);
        }
        if let Some(body) = &req.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        http::send(builder, req.method == Method::GET)
            .await
            .inspect_err(|_| self.note_error())
    }

    /// A 429: pause the operation for `Retry-After` (eBay sends none; then the configured
    /// default) so every caller waits, and report it.
    fn throttled(&self, operation: &str, resp: &HttpResponse) -> ConnectorError {
        self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        self.budget
            .pause(operation, resp.retry_after.unwrap_or(self.throttle_pause));
        let errors = ErrorBody::parse(&resp.body);
        ConnectorError::RateLimited {
            retry_after: resp.retry_after,
            message: if errors.errors.is_empty() {
                format!("{operation} throttled: {}", resp.snippet())
            } else {
                format!("{operation} throttled: {}", errors.message())
            },
        }
    }

    fn note_error(&self) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The whole-call error for an answer the connector cannot use (classified by status, with
    /// eBay's first errorId as the code).
    pub(crate) fn error(&self, resp: &HttpResponse) -> ConnectorError {
        self.note_error();
        let errors = ErrorBody::parse(&resp.body);
        let message = if errors.errors.is_empty() {
            format!(
                "eBay answered HTTP {}: {}",
                resp.status,
                truncate(&resp.snippet(), 200)
            )
        } else {
            errors.message()
        };
        error_for_status(resp.status, resp.retry_after, errors.code(), message)
    }
}
