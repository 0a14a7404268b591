//! What an eBay connector needs to know about the merchant's account, as the daemon hands it over
//! (built from the `[channels.<id>]` section of type `ebay`).

use crate::common::http::is_loopback;
use crate::common::{Limits, Secret};
use crate::error::ConnectorError;

/// Scope for inventory and offer writes.
pub const SCOPE_INVENTORY: &str = "https://api.ebay.com/oauth/api_scope/sell.inventory";
/// Scope for reading orders.
pub const SCOPE_FULFILLMENT: &str = "https://api.ebay.com/oauth/api_scope/sell.fulfillment";

/// One eBay seller account on one marketplace (site).
#[derive(Debug, Clone, PartialEq)]
pub struct EbayConfig {
    /// API base URL without a path below the host's API root: `https://api.ebay.com`, or
    /// `http://127.0.0.1:18080/ebay` for the sandbox. The connector appends
    /// `/sell/inventory/v1/…`.
    pub endpoint: String,
    /// Base URL for the Fulfillment API (orders); `None` = `endpoint`. Lets a contract test put a
    /// separate validating proxy in front of fulfillment (eBay also serves it from
    /// `https://apiz.ebay.com`).
    pub fulfillment_endpoint: Option<String>,
    /// Full URL of the OAuth token endpoint
    /// (`https://api.ebay.com/identity/v1/oauth2/token`).
    pub token_endpoint: String,
    /// App id (client id) of the merchant's keyset.
    pub client_id: String,
    /// Cert id (client secret) of the keyset.
    pub client_secret: Secret,
    /// The seller's long-lived refresh token (user consent, ~18 months).
    pub refresh_token: Secret,
    /// Scopes requested on refresh; empty = [`EbayConfig::default_scopes`]. Must be the granted
    /// scopes or a subset.
    pub scopes: Vec<String>,
    /// Site the offers live on (`EBAY_US`, `EBAY_GB`, …).
    pub marketplace_id: String,
    /// Inventory location offers ship from (created in Seller Hub or with createInventoryLocation).
    pub merchant_location_key: String,
    /// Business policy ids every published offer needs.
    pub policies: EbayPolicies,
    /// Leaf category for new offers; an existing offer keeps its own when this is `None`.
    pub category_id: Option<String>,
    /// `Content-Language` of listing text (`en-US`, `de-DE`); eBay requires it on item and offer
    /// writes.
    pub content_language: String,
    /// At quantity 0, withdraw the offer (end the listing) and publish it again when stock
    /// returns, instead of leaving a live listing showing "out of stock". For accounts without
    /// eBay's out-of-stock control.
    pub withdraw_at_zero: bool,
    /// Timeouts, rate, burst, batch size, retry policy; start from
    /// [`super::EbayConnector::DEFAULT_LIMITS`].
    pub limits: Limits,
}

/// Business policy ids (Seller Hub → Business policies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbayPolicies {
    /// Fulfillment (shipping) policy id.
    pub fulfillment: String,
    /// Payment policy id.
    pub payment: String,
    /// Return policy id (`return` in the config file).
    pub return_policy: String,
}

impl EbayConfig {
    /// eBay production API.
    pub const DEFAULT_ENDPOINT: &str = "https://api.ebay.com";
    /// eBay production OAuth token endpoint.
    pub const DEFAULT_TOKEN_ENDPOINT: &str = "https://api.ebay.com/identity/v1/oauth2/token";
    /// US English.
    pub const DEFAULT_CONTENT_LANGUAGE: &str = "en-US";

    /// `sell.inventory` and `sell.fulfillment`: what the connector calls.
    pub fn default_scopes() -> Vec<String> {
        vec![SCOPE_INVENTORY.to_owned(), SCOPE_FULFILLMENT.to_owned()]
    }

    /// The scopes to request, space-separated as OAuth wants them.
    pub(crate) fn scope_param(&self) -> String {
        if self.scopes.is_empty() {
            Self::default_scopes().join(" ")
        } else {
            self.scopes.join(" ")
        }
    }

    /// `{endpoint}/sell/inventory/v1`.
    pub(crate) fn inventory_base(&self) -> String {
        format!("{}/sell/inventory/v1", self.endpoint.trim_end_matches('/'))
    }

    /// `{fulfillment_endpoint or endpoint}/sell/fulfillment/v1`.
    pub(crate) fn fulfillment_base(&self) -> String {
        let base = self
            .fulfillment_endpoint
            .as_deref()
            .unwrap_or(&self.endpoint);
        format!("{}/sell/fulfillment/v1", base.trim_end_matches('/'))
    }

    /// True when every URL points at this machine (sandbox, tests): no proxy then.
    pub(crate) fn all_loopback(&self) -> bool {
        [
            Some(self.endpoint.as_str()),
            self.fulfillment_endpoint.as_deref(),
            Some(self.token_endpoint.as_str()),
        ]
        .into_iter()
        .flatten()
        .all(is_loopback)
    }

    /// Refuses a config the connector cannot work with, naming every problem. (The daemon's
    /// config pass catches these first; this guards other callers.)
    pub(crate) fn validate(&self) -> Result<(), ConnectorError> {
        let mut problems = Vec::new();
        for (name, url) in [
            ("endpoint", Some(self.endpoint.as_str())),
            ("fulfillment_endpoint", self.fulfillment_endpoint.as_deref()),
            ("token_endpoint", Some(self.token_endpoint.as_str())),
        ] {
            let Some(url) = url else { continue };
            let ok = reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                problems.push(format!("{name} is not an http(s) URL: {url:?}"));
            }
        }
        for (name, empty) in [
            ("client_id", self.client_id.trim().is_empty()),
            ("client_secret", self.client_secret.is_empty()),
            ("refresh_token", self.refresh_token.is_empty()),
            ("marketplace_id", self.marketplace_id.trim().is_empty()),
            (
                "merchant_location_key",
                self.merchant_location_key.trim().is_empty(),
            ),
            (
                "policies.fulfillment",
                self.policies.fulfillment.trim().is_empty(),
            ),
            ("policies.payment", self.policies.payment.trim().is_empty()),
            (
                "policies.return",
                self.policies.return_policy.trim().is_empty(),
            ),
        ] {
            if empty {
                problems.push(format!("{name} is empty"));
            }
        }
        let lang = self.content_language.as_bytes();
        let lang_ok = lang.len() == 5
            && lang[2] == b'-'
            && lang[..2].iter().all(u8::is_ascii_alphabetic)
            && lang[3..].iter().all(u8::is_ascii_alphabetic);
        if !lang_ok {
            problems.push(format!(
                "content_language must look like en-US, got {:?}",
                self.content_language
            ));
        }
        if let Err(e) = self.limits.validate() {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConnectorError::Permanent {
                status: None,
                code: None,
                message: format!("invalid eBay connector config: {}", problems.join("; ")),
            })
        }
    }
}
