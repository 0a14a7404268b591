//! The connector of a `type = "facebook"` section: the Meta catalog (and commerce orders when
//! `orders_enabled`), with Meta's default limits and the section's overrides.

use std::sync::Arc;

use omnistock_connectors::meta::{MetaConfig, MetaConnector};
use omnistock_connectors::{Connector, Limits};

use crate::config::FacebookConfig;

/// Builds the connector of one `facebook` section.
pub(super) fn connector(
    id: &str,
    c: &FacebookConfig,
) -> Result<(Arc<dyn Connector>, Limits), String> {
    let l = super::limits(MetaConnector::DEFAULT_LIMITS, &c.common.limits);
    let mut cfg = MetaConfig::new(
        c.endpoint.clone(),
        c.catalog_id.clone(),
        c.access_token.clone(),
        c.app_secret.clone(),
        l,
    );
    cfg.commerce_account_id = c.commerce_account_id.clone();
    cfg.orders_enabled = c.orders_enabled;
    cfg.link_template = c.link_template.clone();
    // An operator who raised `rate_per_sec` means catalog batches too; otherwise Meta's
    // documented 100 batch calls per hour rule.
    if let Some(rate) = c.common.limits.rate_per_sec {
        cfg.items_batch_per_hour = (rate * 3600.0).clamp(1.0, f64::from(u32::MAX)) as u32;
    }
    let conn = MetaConnector::new(cfg).map_err(|e| format!("channels.{id}: {e}"))?;
    Ok((Arc::new(conn), l))
}
