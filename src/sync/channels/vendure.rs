//! The connector of a `type = "vendure"` section: the Vendure Admin GraphQL API
//! (`omnistock_connectors::vendure`), logged in as an administrator.

use std::sync::Arc;

use omnistock_connectors::{Connector, Limits, VendureConfig as ConnectorConfig, VendureConnector};

use crate::config::VendureConfig;

/// Builds the connector of one `vendure` section: Vendure's default limits with the section's
/// `limits` overrides; an empty `channel_token` or `stock_location_id` means Vendure's default
/// channel or stock location.
pub(super) fn connector(
    id: &str,
    c: &VendureConfig,
) -> Result<(Arc<dyn Connector>, Limits), String> {
    let l = super::limits(VendureConnector::DEFAULT_LIMITS, &c.common.limits);
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
    let conn = VendureConnector::new(ConnectorConfig {
        endpoint: c.endpoint.clone(),
        username: c.username.clone(),
        password: c.password.clone(),
        channel_token: non_empty(&c.channel_token),
        stock_location_id: non_empty(&c.stock_location_id),
        limits: l,
    })
    .map_err(|e| format!("channels.{id}: {e}"))?;
    Ok((Arc::new(conn), l))
}
