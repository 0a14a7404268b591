//! What a Shopify connector needs to know about the shop, as the daemon hands it over (built from
//! the `[channels.<id>]` section of type `shopify`), and the operation names of its budgets.

use crate::common::http::is_loopback;
use crate::common::{Limits, Secret};
use crate::error::ConnectorError;

/// How the connector signs in.
#[derive(Debug, Clone, PartialEq)]
pub enum ShopifyAuth {
    /// A non-expiring Admin API token (`shpat_…`) of a legacy custom app.
    AccessToken(Secret),
    /// The client-credentials grant of a Dev Dashboard app: tokens live about 24 h and are
    /// fetched from `{endpoint}/admin/oauth/access_token`.
    ClientCredentials {
        /// The app's client id.
        client_id: String,
        /// The app's client secret.
        client_secret: Secret,
    },
}

/// The connector's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopifyConfig {
    /// The shop's base URL, `https://{shop}.myshopify.com` (the sandbox: `{base}/shopify`).
    pub endpoint: String,
    /// The pinned Admin API version (`2026-07`).
    pub api_version: String,
    /// Static token or client credentials.
    pub auth: ShopifyAuth,
    /// The location whose `available` quantities omnistock sets (`gid://shopify/Location/…`).
    pub location_id: String,
    /// Timeouts, pacing and batch size.
    pub limits: Limits,
}

/// Budget key of every GraphQL call (an operator cap on requests per second; the cost bucket
/// is the real limit).
pub const OP_GRAPHQL: &str = "graphql";
/// Budget key of the token endpoint.
pub const OP_TOKEN: &str = "token";

impl ShopifyConfig {
    /// The version the connector is written against (2026-04 rules: `changeFromQuantity`,
    /// mandatory `@idempotent`).
    pub const DEFAULT_API_VERSION: &str = "2026-07";

    /// `{endpoint}/admin/api/{version}/graphql.json`.
    pub fn graphql_url(&self) -> String {
        format!(
            "{}/admin/api/{}/graphql.json",
            self.endpoint.trim_end_matches('/'),
            self.api_version
        )
    }

    /// `{endpoint}/admin/oauth/access_token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/admin/oauth/access_token",
            self.endpoint.trim_end_matches('/')
        )
    }

    /// True when the endpoint is on this machine (sandbox, tests): no proxy, plain http allowed.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.endpoint)
    }

    /// Refuses what cannot work: a non-http(s) endpoint, plain http off this machine, a version
    /// that is not `YYYY-MM`/`unstable` or older than 2026-04 (the connector relies on
    /// `changeFromQuantity`), empty credentials, a location that is not a Location GID.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let bad = |m: String| {
            Err(ConnectorError::Permanent {
                status: None,
                code: None,
                message: format!("invalid Shopify config: {m}"),
            })
        };
        let url = reqwest::Url::parse(&self.endpoint).ok();
        match url {
            Some(u) if u.scheme() == "https" && u.host().is_some() => {}
            Some(u) if u.scheme() == "http" && self.is_loopback() && u.host().is_some() => {}
            _ => return bad(format!("endpoint {:?} is not an https URL", self.endpoint)),
        }
        let v = &self.api_version;
        let dated = v.len() == 7
            && v[..4].bytes().all(|b| b.is_ascii_digit())
            && matches!(&v[4..], "-01" | "-04" | "-07" | "-10");
        if !(dated || v == "unstable") {
            return bad(format!(
                "api_version {v:?} is not a Shopify version such as 2026-07"
            ));
        }
        if dated && v.as_str() < "2026-04" {
            return bad(format!(
                "api_version {v:?} predates 2026-04; the connector sets stock with changeFromQuantity and @idempotent"
            ));
        }
        match &self.auth {
            ShopifyAuth::AccessToken(t) if t.is_empty() => return bad("empty access token".into()),
            ShopifyAuth::ClientCredentials {
                client_id,
                client_secret,
            } if client_id.trim().is_empty() || client_secret.is_empty() => {
                return bad("empty client_id or client_secret".into());
            }
            _ => {}
        }
        if !self.location_id.starts_with("gid://shopify/Location/")
            || self.location_id["gid://shopify/Location/".len()..].is_empty()
        {
            return bad(format!(
                "location_id {:?} is not a gid://shopify/Location/… id",
                self.location_id
            ));
        }
        self.limits.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shopify::ShopifyConnector;

    fn config() -> ShopifyConfig {
        ShopifyConfig {
            endpoint: "https://x.myshopify.com/".into(),
            api_version: "2026-07".into(),
            auth: ShopifyAuth::AccessToken(Secret::new("shpat_1")),
            location_id: "gid://shopify/Location/1".into(),
            limits: ShopifyConnector::DEFAULT_LIMITS,
        }
    }

    #[test]
    fn urls_and_validation() {
        let c = config();
        assert_eq!(
            c.graphql_url(),
            "https://x.myshopify.com/admin/api/2026-07/graphql.json"
        );
        assert_eq!(
            c.token_url(),
            "https://x.myshopify.com/admin/oauth/access_token"
        );
        assert!(c.validate().is_ok());
        for tweak in [
            |c: &mut ShopifyConfig| c.endpoint = "http://x.myshopify.com".into(),
            |c: &mut ShopifyConfig| c.endpoint = "ftp://x".into(),
            |c: &mut ShopifyConfig| c.api_version = "2025-01".into(),
            |c: &mut ShopifyConfig| c.api_version = "2026-05".into(),
            |c: &mut ShopifyConfig| c.location_id = "1".into(),
            |c: &mut ShopifyConfig| c.auth = ShopifyAuth::AccessToken(Secret::new("")),
        ] {
            let mut c = config();
            tweak(&mut c);
            assert!(c.validate().is_err(), "{c:?}");
        }
        let mut c = config();
        c.endpoint = "http://127.0.0.1:9/shopify".into();
        assert!(c.validate().is_ok());
    }
}
