//! What a WooCommerce connector needs to know about the shop, as the daemon hands it over (built
//! from the `[channels.<id>]` section of type `woocommerce`).

use crate::common::http::is_loopback;
use crate::common::{Limits, Secret};
use crate::error::ConnectorError;

/// One WooCommerce shop and its REST API key pair.
#[derive(Debug, Clone, PartialEq)]
pub struct WooCommerceConfig {
    /// The site's base URL (`https://shop.example.com`, or `http://127.0.0.1:18080/woo` for the
    /// sandbox); the connector appends `/wp-json/wc/v3`. Must be `https`, except on localhost /
    /// loopback addresses: over plain HTTP WooCommerce requires OAuth 1.0a signing instead of the
    /// key pair, and Basic credentials would travel in the clear.
    pub endpoint: String,
    /// Consumer key (`ck_…`), read/write; the Basic-auth user name.
    pub consumer_key: Secret,
    /// Consumer secret (`cs_…`); the Basic-auth password.
    pub consumer_secret: Secret,
    /// Timeouts, rate, burst, batch size, retry policy; start from
    /// [`super::WooCommerceConnector::DEFAULT_LIMITS`].
    pub limits: Limits,
}

impl WooCommerceConfig {
    /// `{endpoint}/wp-json/wc/v3`.
    pub(crate) fn api_base(&self) -> String {
        format!("{}/wp-json/wc/v3", self.endpoint.trim_end_matches('/'))
    }

    /// Refuses a config the connector cannot work with, naming every problem (and the key).
    pub(crate) fn validate(&self) -> Result<(), ConnectorError> {
        let mut problems = Vec::new();
        match reqwest::Url::parse(&self.endpoint) {
            Ok(u) if u.host().is_none() => {
                problems.push(format!("endpoint has no host: {:?}", self.endpoint));
            }
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" => {
                if !is_loopback(&self.endpoint) {
                    problems.push(format!(
                        "endpoint {:?} uses plain http: WooCommerce accepts the consumer key pair \
                         (HTTP Basic) only over https (over http it wants OAuth 1.0a signatures, and \
                         the key would travel in the clear); use https:// (http is allowed only for \
                         localhost and 127.0.0.1)",
                        self.endpoint
                    ));
                }
            }
            _ => problems.push(format!(
                "endpoint is not an http(s) URL: {:?}",
                self.endpoint
            )),
        }
        if self.consumer_key.expose().trim().is_empty() {
            problems.push("consumer_key is empty".into());
        }
        if self.consumer_secret.expose().trim().is_empty() {
            problems.push("consumer_secret is empty".into());
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
                message: format!(
                    "invalid WooCommerce connector config: {}",
                    problems.join("; ")
                ),
            })
        }
    }
}
