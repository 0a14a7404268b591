//! The connector of a `type = "shopify"` section (being built).

use std::sync::Arc;

use omnistock_connectors::{Connector, Limits};

use crate::config::ShopifyConfig;

/// Builds the connector of one `shopify` section.
pub(super) fn connector(
    id: &str,
    c: &ShopifyConfig,
) -> Result<(Arc<dyn Connector>, Limits), String> {
    let _ = c;
    Err(format!(
        "channels.{id}: this build has no connector for type `shopify` yet; the channel is skipped"
    ))
}
