//! What the daemon hands the Meta connector, checked once at construction.

use std::time::Duration;

use crate::common::{Limits, Secret};
use crate::error::ConnectorError;

/// Graph API v25.0, the version the specs in contracts/specs/meta were generated from.
pub const DEFAULT_ENDPOINT: &str = "https://graph.facebook.com/v25.0";
/// Default longest wait for a batch handle inside one push call.
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_secs(60);
/// Default `items_batch` calls per hour: "update up to 5,000 items with up to 100 calls per hour"
/// (commerce best practices, contracts §3.2).
pub const DEFAULT_ITEMS_BATCH_PER_HOUR: u32 = 100;

/// Budget operation of `items_batch`.
pub const OP_ITEMS_BATCH: &str = "items_batch";
/// Budget operation of the other catalog calls (batch status, products, the catalog node).
pub const OP_CATALOG: &str = "catalog";
/// Budget operation of commerce order calls (list, acknowledge).
pub const OP_COMMERCE: &str = "commerce";

/// The Meta connector's settings.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// Graph API base including the version (`https://graph.facebook.com/v25.0`).
    pub endpoint: String,
    /// The product catalog written to.
    pub catalog_id: String,
    /// System-user access token (`catalog_management`, `commerce_manage_orders`).
    pub access_token: Secret,
    /// App secret: the key of `appsecret_proof`.
    pub app_secret: Secret,
    /// Commerce account (commerce merchant settings) whose orders are read.
    pub commerce_account_id: Option<String>,
    /// Poll orders (only shops with checkout on Facebook/Instagram have them).
    pub orders_enabled: bool,
    /// Product page URL for new items, `{sku}` replaced by the percent-encoded SKU. Meta requires
    /// `link` on new items; without a template new items are refused by Meta (existing items can
    /// still be updated).
    pub link_template: Option<String>,
    /// Longest a push call waits for its batch handle to finish before answering `Retry` for the
    /// items still unresolved.
    pub batch_wait: Duration,
    /// `items_batch` calls per hour the budget allows (BUC "catalog batch").
    pub items_batch_per_hour: u32,
    /// Timeouts, rates (other operations), batch size, retries.
    pub limits: Limits,
}

impl MetaConfig {
    /// A config with the defaults for everything but the account.
    pub fn new(
        endpoint: impl Into<String>,
        catalog_id: impl Into<String>,
        access_token: Secret,
        app_secret: Secret,
        limits: Limits,
    ) -> Self {
        MetaConfig {
            endpoint: endpoint.into(),
            catalog_id: catalog_id.into(),
            access_token,
            app_secret,
            commerce_account_id: None,
            orders_enabled: false,
            link_template: None,
            batch_wait: DEFAULT_BATCH_WAIT,
            items_batch_per_hour: DEFAULT_ITEMS_BATCH_PER_HOUR,
            limits,
        }
    }

    /// Refuses settings no account can run with.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let bad = |message: String| {
            Err(ConnectorError::Permanent {
                status: None,
                code: None,
                message,
            })
        };
        self.limits.validate()?;
        let url = reqwest::Url::parse(&self.endpoint).ok();
        if !url.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
            return bad(format!(
                "endpoint {:?} is not an http(s) URL",
                self.endpoint
            ));
        }
        // Graph ids are decimal strings; anything usable as one path segment is accepted (the
        // sandbox's ids need not be numeric), encoded when sent.
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "/?#%".contains(c))
        };
        if !id_ok(&self.catalog_id) {
            return bad(format!(
                "catalog_id {:?} is not a Graph id",
                self.catalog_id
            ));
        }
        if self.access_token.is_empty() || self.app_secret.is_empty() {
            return bad("access_token and app_secret must be set".into());
        }
        if self.orders_enabled {
            match &self.commerce_account_id {
                Some(id) if id_ok(id) => {}
                _ => {
                    return bad("orders_enabled needs commerce_account_id (a Graph id)".into());
                }
            }
        }
        if let Some(t) = &self.link_template
            && !t.contains("{sku}")
        {
            return bad(format!("link_template {t:?} has no {{sku}} placeholder"));
        }
        if self.items_batch_per_hour == 0 {
            return bad("items_batch_per_hour must be at least 1".into());
        }
        Ok(())
    }

    /// The endpoint without a trailing slash.
    pub(crate) fn base(&self) -> String {
        self.endpoint.trim_end_matches('/').to_owned()
    }
}
