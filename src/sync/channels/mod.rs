//! From the config file's channel sections to running connectors.
//!
//! The `connectors` crate knows nothing of the config file: this module maps each section to its
//! connector's own config (secrets passed through unprinted), applies the channel's `limits`
//! overrides to the marketplace defaults, and derives the engine's [`ChannelSpec`].

mod facebook;
mod shopify;
mod vendure;
mod woocommerce;

use std::sync::Arc;
use std::time::Duration;

use omnistock_connectors::amazon::{AmazonUsagePlan, endpoint_for};
use omnistock_connectors::common::Backoff;
use omnistock_connectors::{
    AmazonConfig as AmazonConnectorConfig, AmazonConnector, Connector, EbayConfig, EbayConnector,
    EbayPolicies, Limits,
};
use sha2::{Digest, Sha256};

use super::dispatch::DispatchOptions;
use super::engine::{ChannelProblem, ChannelSpec};
use crate::config::{ChannelConfig, Config, LimitsConfig, parse_schedule};

/// Batches in flight per channel. Marketplace limits are per account and the budget inside the
/// connector spaces requests; a few batches in flight hide network latency.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// A channel's limits: the marketplace defaults with the section's `limits` overrides applied.
pub(super) fn limits(base: Limits, l: &LimitsConfig) -> Limits {
    let mut out = base.overridden(l.rate_per_sec, l.burst, l.batch_size, l.timeout_secs);
    if let Some(max) = l.retry_max_secs {
        out.retry = Backoff::new(
            out.retry.base().min(Duration::from_secs(max)),
            Duration::from_secs(max),
        );
    }
    out
}

/// Builds the connector of one channel section, or says why there is none.
pub fn connector(id: &str, cfg: &ChannelConfig) -> Result<(Arc<dyn Connector>, Limits), String> {
    match cfg {
        ChannelConfig::Ebay(c) => {
            let l = limits(EbayConnector::DEFAULT_LIMITS, &c.common.limits);
            let conn = EbayConnector::new(EbayConfig {
                endpoint: c.endpoint.clone(),
                fulfillment_endpoint: c.fulfillment_endpoint.clone(),
                token_endpoint: c.token_endpoint.clone(),
                client_id: c.client_id.clone(),
                client_secret: c.client_secret.clone(),
                refresh_token: c.refresh_token.clone(),
                scopes: EbayConfig::default_scopes(),
                marketplace_id: c.marketplace_id.clone(),
                merchant_location_key: c.merchant_location_key.clone(),
                policies: EbayPolicies {
                    fulfillment: c.policies.fulfillment.clone(),
                    payment: c.policies.payment.clone(),
                    return_policy: c.policies.return_policy.clone(),
                },
                category_id: c.category_id.clone(),
                content_language: c.content_language.clone(),
                withdraw_at_zero: c.withdraw_at_zero,
                limits: l,
            })
            .map_err(|e| format!("channels.{id}: {e}"))?;
            Ok((Arc::new(conn), l))
        }
        ChannelConfig::Amazon(c) => {
            let l = limits(AmazonConnector::DEFAULT_LIMITS, &c.common.limits);
            let conn = AmazonConnector::new(amazon_config(c, l))
                .map_err(|e| format!("channels.{id}: {e}"))?;
            Ok((Arc::new(conn), l))
        }
        ChannelConfig::Facebook(c) => facebook::connector(id, c),
        ChannelConfig::Shopify(c) => shopify::connector(id, c),
        ChannelConfig::WooCommerce(c) => woocommerce::connector(id, c),
        ChannelConfig::Vendure(c) => vendure::connector(id, c),
    }
}

/// The connector's view of an `amazon` section.
///
/// The host: an explicit `endpoint` wins; left at its default, `region` and `sandbox` pick one
/// of Amazon's hosts. The usage plan: `limits.rate_per_sec`/`burst` set every operation's budget
/// (tests, or an account Amazon granted more); otherwise `sandbox = true` means the SP-API
/// sandbox's plan (5 rps, burst 15) and anything else the documented production plans.
fn amazon_config(c: &crate::config::AmazonConfig, l: Limits) -> AmazonConnectorConfig {
    let default = crate::config::AmazonConfig::DEFAULT_ENDPOINT;
    let endpoint = if c.endpoint != default || (c.region.is_none() && !c.sandbox) {
        c.endpoint.clone()
    } else {
        endpoint_for(c.region.as_deref().unwrap_or("na"), c.sandbox)
            .unwrap_or(default)
            .to_owned()
    };
    let custom = &c.common.limits;
    let usage_plan = if custom.rate_per_sec.is_some() || custom.burst.is_some() {
        AmazonUsagePlan::Custom {
            rate_per_sec: l.rate_per_sec,
            burst: l.burst,
        }
    } else if c.sandbox {
        AmazonUsagePlan::Sandbox
    } else {
        AmazonUsagePlan::Production
    };
    AmazonConnectorConfig {
        endpoint,
        feeds_endpoint: None,
        orders_endpoint: None,
        token_endpoint: c.token_endpoint.clone(),
        seller_id: c.seller_id.clone(),
        marketplace_ids: c.marketplace_ids.clone(),
        client_id: c.client_id.clone(),
        client_secret: c.client_secret.clone(),
        refresh_token: c.refresh_token.clone(),
        product_type: c.product_type.clone(),
        product_type_rules: c
            .product_type_rules
            .iter()
            .map(|r| (r.sku.clone(), r.product_type.clone()))
            .collect(),
        condition_type: c.condition_type.clone(),
        language_tag: c.language_tag.clone(),
        feed_processing_estimate: Duration::from_secs(c.feed_processing_secs),
        usage_plan,
        limits: l,
    }
}

/// A fingerprint of everything in a section that a running channel depends on, secrets included
/// (hashed, never printed), so a reload restarts exactly the channels whose section changed.
pub fn fingerprint(cfg: &ChannelConfig, lease_secs: u64) -> String {
    let mut h = Sha256::new();
    h.update(format!("{cfg:?}|{lease_secs}"));
    for s in secrets(cfg) {
        h.update([0u8]);
        h.update(s.as_bytes());
    }
    hex::encode(h.finalize())
}

fn secrets(cfg: &ChannelConfig) -> Vec<String> {
    match cfg {
        ChannelConfig::Ebay(c) => vec![
            c.client_secret.expose().to_owned(),
            c.refresh_token.expose().to_owned(),
        ],
        ChannelConfig::Amazon(c) => vec![
            c.client_secret.expose().to_owned(),
            c.refresh_token.expose().to_owned(),
        ],
        ChannelConfig::Facebook(c) => vec![
            c.access_token.expose().to_owned(),
            c.app_secret.expose().to_owned(),
        ],
        ChannelConfig::Shopify(c) => vec![
            c.access_token
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default(),
            c.client_secret
                .as_ref()
                .map(|s| s.expose().to_owned())
                .unwrap_or_default(),
            c.webhook_secret.expose().to_owned(),
        ],
        ChannelConfig::WooCommerce(c) => vec![
            c.consumer_key.expose().to_owned(),
            c.consumer_secret.expose().to_owned(),
            c.webhook_secret.expose().to_owned(),
        ],
        ChannelConfig::Vendure(c) => vec![c.password.expose().to_owned()],
    }
}

/// The engine's view of every enabled channel, plus the channels that cannot run.
pub fn specs(config: &Config) -> (Vec<ChannelSpec>, Vec<ChannelProblem>) {
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    for (id, cfg) in &config.channels {
        let common = cfg.common();
        if !common.enabled {
            continue;
        }
        match spec(id, cfg, config.daemon.lease_secs) {
            Ok(s) => specs.push(s),
            Err(error) => problems.push(ChannelProblem {
                channel: id.clone(),
                kind: cfg.kind().as_str().to_owned(),
                error,
            }),
        }
    }
    (specs, problems)
}

/// The spec of one channel.
pub fn spec(id: &str, cfg: &ChannelConfig, lease_secs: u64) -> Result<ChannelSpec, String> {
    let (connector, l) = connector(id, cfg)?;
    let common = cfg.common();
    let caps = connector.capabilities();
    let schedule = |text: &str| parse_schedule(text).ok();
    Ok(ChannelSpec {
        id: id.to_owned(),
        kind: cfg.kind().as_str().to_owned(),
        dispatch: DispatchOptions {
            stock_batch: l.batch_size.min(caps.max_stock_batch).max(1),
            listing_batch: l.batch_size.min(caps.max_listing_batch).max(1),
            concurrency: DEFAULT_CONCURRENCY,
            backoff: l.retry,
        },
        connector,
        poll_interval: Duration::from_secs(common.poll_interval_secs.max(1)),
        overlap: Duration::from_secs(common.order_overlap_secs),
        orders_schedule: schedule(common.schedule.orders()),
        reconcile_schedule: schedule(common.schedule.reconcile()),
        lease_ttl: Duration::from_secs(lease_secs.max(1)),
        fingerprint: fingerprint(cfg, lease_secs),
    })
}
