//! What a Vendure connector needs to know about the store, as the daemon hands it over (built from
//! the `[channels.<id>]` section of type `vendure`).

use crate::common::http::is_loopback;
use crate::common::{Limits, Secret};
use crate::error::ConnectorError;

/// One Vendure store (one Vendure channel of it), driven through the Admin API by an administrator
/// with native (username/password) authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct VendureConfig {
    /// Admin API URL, e.g. `https://shop.example.com/admin-api`, or
    /// `http://127.0.0.1:18080/vendure/admin-api` for the sandbox.
    pub endpoint: String,
    /// Administrator identifier (needs the ReadCatalog, UpdateCatalog, CreateCatalog and ReadOrder
    /// permissions on the channel).
    pub username: String,
    /// Administrator password; sent only in the `login` mutation's variables.
    pub password: Secret,
    /// Token of a non-default Vendure channel, sent as the `vendure-token` header; `None` or empty
    /// = the default channel.
    pub channel_token: Option<String>,
    /// Stock location whose stock omnistock sets (`stockLevels`); `None` = Vendure's default
    /// location (the plain `stockOnHand` input, which Vendure applies to the channel's default
    /// location).
    pub stock_location_id: Option<String>,
    /// Timeouts, rate, burst, batch size, retry policy; start from
    /// [`super::VendureConnector::DEFAULT_LIMITS`].
    pub limits: Limits,
}

impl VendureConfig {
    /// The channel token to send, when one is set.
    pub(crate) fn channel_token(&self) -> Option<&str> {
        self.channel_token
            .as_deref()
            .filter(|t| !t.trim().is_empty())
    }

    /// The stock location to write, when one is set.
    pub(crate) fn stock_location(&self) -> Option<&str> {
        self.stock_location_id
            .as_deref()
            .filter(|t| !t.trim().is_empty())
    }

    /// True when the endpoint is on this machine (sandbox, tests): no proxy then.
    pub(crate) fn loopback(&self) -> bool {
        is_loopback(&self.endpoint)
    }

    /// Refuses a config the connector cannot work with, naming every problem.
    pub(crate) fn validate(&self) -> Result<(), ConnectorError> {
        let mut problems = Vec::new();
        let ok = reqwest::Url::parse(&self.endpoint)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            problems.push(format!(
                "endpoint is not an http(s) URL: {:?}",
                self.endpoint
            ));
        }
        if self.username.trim().is_empty() {
            problems.push("username is empty".to_owned());
        }
        if self.password.is_empty() {
            problems.push("password is empty".to_owned());
        }
        if let Some(t) = self.channel_token()
            && !t.bytes().all(|b| b.is_ascii_graphic())
        {
            problems.push("channel_token must be printable ASCII without spaces".to_owned());
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
                message: format!("invalid Vendure connector config: {}", problems.join("; ")),
            })
        }
    }
}
