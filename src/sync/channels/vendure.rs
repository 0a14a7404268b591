//! The connector of a `type = "vendure"` section (being built).

use std::sync::Arc;

use omnistock_connectors::{Connector, Limits};

use crate::config::VendureConfig;

/// Builds the connector of one `vendure` section.
pub(super) fn connector(
    id: &str,
    c: &VendureConfig,
) -> Result<(Arc<dyn Connector>, Limits), String> {
    let _ = c;
    Err(format!(
        "channels.{id}: this build has no connector for type `vendure` yet; the channel is skipped"
    ))
}
