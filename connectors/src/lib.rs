//! Marketplace connectors for omnistock and the neutral model they share.
//!
//! The daemon speaks only this crate's neutral types ([`model`]); each marketplace module maps them
//! to its own API. This crate knows nothing of SQL, cron or the daemon's config file beyond each
//! connector's own section.

pub mod common;
pub mod connector;
pub mod error;
pub mod model;

#[cfg(feature = "amazon")]
pub mod amazon;
#[cfg(feature = "ebay")]
pub mod ebay;
#[cfg(feature = "meta")]
pub mod meta;
#[cfg(feature = "shopify")]
pub mod shopify;
#[cfg(feature = "vendure")]
pub mod vendure;
#[cfg(feature = "woocommerce")]
pub mod woocommerce;

pub use common::{ConnectorStats, Limits, Secret};
pub use connector::{
    BulkDraft, BulkItem, BulkJob, BulkStatus, Capabilities, Connector, Health, OrdersPage,
    SnapshotPage,
};
pub use error::{ConnectorError, ErrorClass};

#[cfg(feature = "amazon")]
pub use amazon::{AmazonConfig, AmazonConnector, AmazonUsagePlan};
#[cfg(feature = "ebay")]
pub use ebay::{EbayConfig, EbayConnector, EbayPolicies};
#[cfg(feature = "meta")]
pub use meta::{MetaConfig, MetaConnector};
#[cfg(feature = "shopify")]
pub use shopify::{ShopifyAuth, ShopifyConfig, ShopifyConnector};
#[cfg(feature = "vendure")]
pub use vendure::{VendureConfig, VendureConnector};
#[cfg(feature = "woocommerce")]
pub use woocommerce::{WooCommerceConfig, WooCommerceConnector};

pub use model::{
    ChannelOrder, Currency, ItemOutcome, ListingUpdate, Money, MoneyError, OrderLine, OrderStatus,
    Quantity, RemoteItem, Sku, SkuError, StockUpdate,
};
