//! The connector of a `type = "woocommerce"` section (being built).

use std::sync::Arc;

use omnistock_connectors::{Connector, Limits};

use crate::config::WooCommerceConfig;

/// Builds the connector of one `woocommerce` section.
pub(super) fn connector(
    id: &str,
    c: &WooCommerceConfig,
) -> Result<(Arc<dyn Connector>, Limits), String> {
    let _ = c;
    Err(format!(
        "channels.{id}: this build has no connector for type `woocommerce` yet; the channel is skipped"
    ))
}
