//! The connector of a `type = "shopify"` section: the Admin GraphQL API at `endpoint`, pinned to
//! `api_version`, signing in with `access_token` or the client-credentials grant
//! (`client_id` + `client_secret`), setting quantities at `location_id`. `webhook_secret` is the
//! webhook receiver's, not the connector's.

use std::sync::Arc;

use omnistock_connectors::shopify::{ShopifyAuth, ShopifyConfig as ConnectorConfig};
use omnistock_connectors::{Connector, Limits, ShopifyConnector};

use crate::config::ShopifyConfig;

/// Builds the connector of one `shopify` section.
pub(super) fn connector(
    id: &str,
    c: &ShopifyConfig,
) -> Result<(Arc<dyn Connector>, Limits), String> {
    let l = super::limits(ShopifyConnector::DEFAULT_LIMITS, &c.common.limits);
    let auth = match (&c.access_token, &c.client_id, &c.client_secret) {
        (Some(token), None, None) => ShopifyAuth::AccessToken(token.clone()),
        (None, Some(client_id), Some(client_secret)) => ShopifyAuth::ClientCredentials {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
        },
        _ => {
            return Err(format!(
                "channels.{id}: set access_token, or client_id and client_secret (not both)"
            ));
        }
    };
    let conn = ShopifyConnector::new(ConnectorConfig {
        endpoint: c.endpoint.clone(),
        api_version: c.api_version.clone(),
        auth,
        location_id: c.location_id.clone(),
        limits: l,
    })
    .map_err(|e| format!("channels.{id}: {e}"))?;
    Ok((Arc::new(conn), l))
}
