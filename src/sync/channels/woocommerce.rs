//! The connector of a `type = "woocommerce"` section: the site URL and the REST API key pair go
//! to the WooCommerce connector as they are (secrets unprinted), with the channel's `limits`
//! applied to WooCommerce's defaults (one conservative budget for the whole site: WooCommerce
//! documents no rate limit). `webhook_secret` is the daemon's, for verifying
//! `X-WC-Webhook-Signature`; the connector does not need it.

use std::sync::Arc;

use omnistock_connectors::{
    Connector, Limits, WooCommerceConfig as ConnectorConfig, WooCommerceConnector,
};

use crate::config::WooCommerceConfig;

/// Builds the connector of one `woocommerce` section.
pub(super) fn connector(
    id: &str,
    c: &WooCommerceConfig,
) -> Result<(Arc<dyn Connector>, Limits), String> {
    let l = super::limits(WooCommerceConnector::DEFAULT_LIMITS, &c.common.limits);
    let conn = WooCommerceConnector::new(ConnectorConfig {
        endpoint: c.endpoint.clone(),
        consumer_key: c.consumer_key.clone(),
        consumer_secret: c.consumer_secret.clone(),
        limits: l,
    })
    .map_err(|e| format!("channels.{id}: {e}"))?;
    Ok((Arc::new(conn), l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelCommon;

    fn section(endpoint: &str) -> WooCommerceConfig {
        WooCommerceConfig {
            common: ChannelCommon::default(),
            endpoint: endpoint.into(),
            consumer_key: "ck_test".into(),
            consumer_secret: "cs_test".into(),
            webhook_secret: "whsec".into(),
        }
    }

    #[test]
    fn a_section_becomes_a_woocommerce_connector_with_its_limits() {
        let (conn, limits) = connector("woo", &section("https://shop.example.com")).unwrap();
        assert_eq!(conn.kind(), "woocommerce");
        assert_eq!(limits, WooCommerceConnector::DEFAULT_LIMITS);
        assert!(connector("woo", &section("http://127.0.0.1:18080/woo")).is_ok());
        let Err(e) = connector("woo", &section("http://shop.example.com")) else {
            panic!("plain http to another host")
        };
        assert!(
            e.starts_with("channels.woo: ") && e.contains("endpoint"),
            "{e}"
        );
        assert!(!e.contains("cs_test"), "{e}");
    }
}
