//! The connector of a `type = "facebook"` section (being built).

use std::sync::Arc;

use omnistock_connectors::{Connector, Limits};

use crate::config::FacebookConfig;

/// Builds the connector of one `facebook` section.
pub(super) fn connector(
    id: &str,
    c: &FacebookConfig,
) -> Result<(Arc<dyn Connector>, Limits), String> {
    let _ = c;
    Err(format!(
        "channels.{id}: this build has no connector for type `facebook` yet; the channel is skipped"
    ))
}
