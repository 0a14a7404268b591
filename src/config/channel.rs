//! `[channels.<id>]`: one strict struct per marketplace, selected by the section's `type`.
//!
//! Every section has two kinds of keys: the ones all channels share ([`ChannelCommon`]: locations,
//! stock and price knobs, schedules, limits) and the ones of its marketplace ([`AmazonConfig`],
//! [`EbayConfig`], …). [`crate::config::parse`] splits a section's keys between the two and
//! deserializes each half on its own; the per-marketplace struct then carries the shared half in
//! its `common` field. That replaces `#[serde(flatten)]`, which would lose line numbers, and lets
//! an unknown key be reported at its own line with the full list of keys the type accepts.

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Visitor};

use super::model::{PriceKnobsConfig, ScheduleConfig, StockKnobsConfig};
use super::sensitive::Secret;

/// The marketplace a channel talks to: the section's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    /// Amazon Selling Partner API.
    Amazon,
    /// eBay Sell APIs (Inventory, Fulfillment).
    Ebay,
    /// Meta (Facebook/Instagram) commerce catalog.
    Facebook,
    /// Shopify Admin GraphQL API.
    Shopify,
    /// WooCommerce REST API (`/wp-json/wc/v3`).
    WooCommerce,
    /// Vendure Admin GraphQL API.
    Vendure,
}

impl ChannelKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [ChannelKind; 6] = [
        ChannelKind::Amazon,
        ChannelKind::Ebay,
        ChannelKind::Facebook,
        ChannelKind::Shopify,
        ChannelKind::WooCommerce,
        ChannelKind::Vendure,
    ];

    /// The `type` value in the config file (`"woocommerce"`), also used in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Amazon => "amazon",
            ChannelKind::Ebay => "ebay",
            ChannelKind::Facebook => "facebook",
            ChannelKind::Shopify => "shopify",
            ChannelKind::WooCommerce => "woocommerce",
            ChannelKind::Vendure => "vendure",
        }
    }

    /// The kind whose `type` value is `s`, exactly.
    pub fn from_type(s: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Keys only this kind accepts (not `type`, not the [`ChannelCommon`] keys).
    ///
    /// Read from the struct's own `Deserialize` impl, so the list cannot drift from the code.
    pub fn specific_keys(self) -> &'static [&'static str] {
        match self {
            ChannelKind::Amazon => struct_keys::<AmazonConfig>(),
            ChannelKind::Ebay => struct_keys::<EbayConfig>(),
            ChannelKind::Facebook => struct_keys::<FacebookConfig>(),
            ChannelKind::Shopify => struct_keys::<ShopifyConfig>(),
            ChannelKind::WooCommerce => struct_keys::<WooCommerceConfig>(),
            ChannelKind::Vendure => struct_keys::<VendureConfig>(),
        }
    }

    /// Every key a section of this kind accepts besides `type`: its own, then the common ones.
    pub fn keys(self) -> Vec<&'static str> {
        let mut keys = self.specific_keys().to_vec();
        keys.extend_from_slice(ChannelCommon::keys());
        keys
    }

    /// Deserializes this kind's struct from the section's specific keys; `common` is left at its
    /// default for the caller to fill in.
    pub(crate) fn deserialize_specific<'de, D: Deserializer<'de>>(
        self,
        d: D,
    ) -> Result<ChannelConfig, D::Error> {
        Ok(match self {
            ChannelKind::Amazon => ChannelConfig::Amazon(AmazonConfig::deserialize(d)?),
            ChannelKind::Ebay => ChannelConfig::Ebay(EbayConfig::deserialize(d)?),
            ChannelKind::Facebook => ChannelConfig::Facebook(FacebookConfig::deserialize(d)?),
            ChannelKind::Shopify => ChannelConfig::Shopify(ShopifyConfig::deserialize(d)?),
            ChannelKind::WooCommerce => {
                ChannelConfig::WooCommerce(WooCommerceConfig::deserialize(d)?)
            }
            ChannelKind::Vendure => ChannelConfig::Vendure(VendureConfig::deserialize(d)?),
        })
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[channels.<id>]` section: the variant is the section's `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelConfig {
    /// `type = "amazon"`.
    Amazon(AmazonConfig),
    /// `type = "ebay"`.
    Ebay(EbayConfig),
    /// `type = "facebook"`.
    Facebook(FacebookConfig),
    /// `type = "shopify"`.
    Shopify(ShopifyConfig),
    /// `type = "woocommerce"`.
    WooCommerce(WooCommerceConfig),
    /// `type = "vendure"`.
    Vendure(VendureConfig),
}

impl ChannelConfig {
    /// Which marketplace this channel talks to.
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelConfig::Amazon(_) => ChannelKind::Amazon,
            ChannelConfig::Ebay(_) => ChannelKind::Ebay,
            ChannelConfig::Facebook(_) => ChannelKind::Facebook,
            ChannelConfig::Shopify(_) => ChannelKind::Shopify,
            ChannelConfig::WooCommerce(_) => ChannelKind::WooCommerce,
            ChannelConfig::Vendure(_) => ChannelKind::Vendure,
        }
    }

    /// The settings every channel has (locations, knobs, schedules, limits).
    pub fn common(&self) -> &ChannelCommon {
        match self {
            ChannelConfig::Amazon(c) => &c.common,
            ChannelConfig::Ebay(c) => &c.common,
            ChannelConfig::Facebook(c) => &c.common,
            ChannelConfig::Shopify(c) => &c.common,
            ChannelConfig::WooCommerce(c) => &c.common,
            ChannelConfig::Vendure(c) => &c.common,
        }
    }

    /// Mutable access to the shared settings (used while parsing, and by tests).
    pub fn common_mut(&mut self) -> &mut ChannelCommon {
        match self {
            ChannelConfig::Amazon(c) => &mut c.common,
            ChannelConfig::Ebay(c) => &mut c.common,
            ChannelConfig::Facebook(c) => &mut c.common,
            ChannelConfig::Shopify(c) => &mut c.common,
            ChannelConfig::WooCommerce(c) => &mut c.common,
            ChannelConfig::Vendure(c) => &mut c.common,
        }
    }

    /// The API base URL the connector calls.
    pub fn endpoint(&self) -> &str {
        match self {
            ChannelConfig::Amazon(c) => &c.endpoint,
            ChannelConfig::Ebay(c) => &c.endpoint,
            ChannelConfig::Facebook(c) => &c.endpoint,
            ChannelConfig::Shopify(c) => &c.endpoint,
            ChannelConfig::WooCommerce(c) => &c.endpoint,
            ChannelConfig::Vendure(c) => &c.endpoint,
        }
    }
}

/// Keys every channel section accepts, whatever its `type`.
///
/// After [`crate::config::parse`] the defaults are filled in: `locations` lists every location
/// when the section names none, `stock` has [`StockKnobsConfig::CHANNEL_DEFAULTS`] for the knobs
/// it does not name, and both schedules are set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelCommon {
    /// Locations whose stock this channel sells; all locations when absent.
    #[serde(default)]
    pub locations: Vec<String>,
    /// How much of the available stock the channel shows (buffer, percent, cap, floor).
    #[serde(default)]
    pub stock: StockKnobsConfig,
    /// How the channel's price derives from the base price; absent = the base price unchanged.
    #[serde(default)]
    pub price: PriceKnobsConfig,
    /// When to poll orders and run a full reconcile.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// `false` keeps the section (and its history) but stops every push, poll and reconcile.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Seconds between order polls on top of the cron schedule, so a missed webhook costs at
    /// most this long.
    #[serde(default = "default_poll_interval_secs")]
    pub poll_interval_secs: u64,
    /// Each order poll starts this many seconds before the newest change already seen, so orders
    /// the marketplace indexes late are still caught (duplicates are recognised and skipped).
    #[serde(default = "default_order_overlap_secs")]
    pub order_overlap_secs: u64,
    /// Overrides of the marketplace's default rate, burst, batch size and timeout.
    #[serde(default)]
    pub limits: LimitsConfig,
}

impl ChannelCommon {
    /// Default `poll_interval_secs`.
    pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 30;
    /// Default `order_overlap_secs`.
    pub const DEFAULT_ORDER_OVERLAP_SECS: u64 = 120;

    /// The keys this struct accepts, read from its `Deserialize` impl.
    pub fn keys() -> &'static [&'static str] {
        struct_keys::<ChannelCommon>()
    }
}

impl Default for ChannelCommon {
    fn default() -> Self {
        ChannelCommon {
            locations: Vec::new(),
            stock: StockKnobsConfig::CHANNEL_DEFAULTS,
            price: PriceKnobsConfig::default(),
            schedule: ScheduleConfig {
                orders: Some(ScheduleConfig::DEFAULT_ORDERS.to_owned()),
                reconcile: Some(ScheduleConfig::DEFAULT_RECONCILE.to_owned()),
            },
            enabled: default_enabled(),
            poll_interval_secs: default_poll_interval_secs(),
            order_overlap_secs: default_order_overlap_secs(),
            limits: LimitsConfig::default(),
        }
    }
}

fn default_enabled() -> bool {
    true
}
fn default_poll_interval_secs() -> u64 {
    ChannelCommon::DEFAULT_POLL_INTERVAL_SECS
}
fn default_order_overlap_secs() -> u64 {
    ChannelCommon::DEFAULT_ORDER_OVERLAP_SECS
}

/// `limits = { rate_per_sec = 2.0, burst = 5, batch_size = 25, timeout_secs = 30 }`.
///
/// Every key is optional: an absent one keeps the connector's per-marketplace default. Lower them
/// when an account has a smaller quota than the documented one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained requests per second this account may make.
    pub rate_per_sec: Option<f64>,
    /// Requests that may go out at once after a quiet spell.
    pub burst: Option<u32>,
    /// Items per batch call (never above the marketplace's maximum).
    pub batch_size: Option<u32>,
    /// Seconds before a request counts as an unknown outcome.
    pub timeout_secs: Option<u64>,
    /// Longest wait, in seconds, between retries of a failing item or a failing channel (the
    /// backoff is exponential with full jitter up to this cap).
    pub retry_max_secs: Option<u64>,
}

impl LimitsConfig {
    /// True when no limit is overridden.
    pub fn is_empty(&self) -> bool {
        self == &LimitsConfig::default()
    }
}

/// `type = "amazon"`: Selling Partner API, Login with Amazon refresh-token grant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmazonConfig {
    /// The shared channel keys; filled in by the parser, not a key of its own.
    #[serde(skip)]
    pub common: ChannelCommon,
    /// SP-API regional base URL (NA by default; EU and FE accounts, sandboxes and tests override).
    #[serde(default = "AmazonConfig::default_endpoint")]
    pub endpoint: String,
    /// Login with Amazon token URL that trades the refresh token for access tokens.
    #[serde(default = "AmazonConfig::default_token_endpoint")]
    pub token_endpoint: String,
    /// The merchant's seller id; listings calls are addressed to it.
    pub seller_id: String,
    /// Marketplaces the listings are offered in (`ATVPDKIKX0DER` = amazon.com); at least one.
    pub marketplace_ids: Vec<String>,
    /// LWA app client id (not secret on its own, but usually supplied from the environment).
    pub client_id: String,
    /// LWA app client secret.
    pub client_secret: Secret,
    /// LWA refresh token granted by the seller's authorization.
    pub refresh_token: Secret,
    /// Default `productType` for new listings; `product_type_rules` may override it per SKU.
    #[serde(default = "AmazonConfig::default_product_type")]
    pub product_type: String,
    /// Per-SKU product types, first match wins: `[{ sku = "MUG-*", product_type = "DRINKING_CUP" }]`.
    #[serde(default)]
    pub product_type_rules: Vec<AmazonProductTypeRule>,
    /// SP-API region (`na`, `eu`, `fe`) used when `endpoint` is left at its default.
    #[serde(default)]
    pub region: Option<String>,
    /// Talk to Amazon's SP-API sandbox (its host when `endpoint` is left at its default, and its
    /// usage plan: 5 requests/s, burst 15, for every operation).
    #[serde(default)]
    pub sandbox: bool,
    /// `condition_type` of new listings (default `new_new`).
    #[serde(default = "AmazonConfig::default_condition_type")]
    pub condition_type: String,
    /// Language of listing text (default `en_US`).
    #[serde(default = "AmazonConfig::default_language_tag")]
    pub language_tag: String,
    /// Expected seconds from submitting a JSON_LISTINGS_FEED to its report (default 180); the
    /// starting point of the learned figure that decides between per-item patches and a feed.
    #[serde(default = "AmazonConfig::default_feed_processing_secs")]
    pub feed_processing_secs: u64,
}

/// `product_type_rules` entry of an Amazon channel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmazonProductTypeRule {
    /// SKU glob (`*` any run, `?` one character).
    pub sku: String,
    /// Amazon product type, e.g. `DRINKING_CUP`.
    pub product_type: String,
}

impl AmazonConfig {
    /// SP-API North America.
    pub const DEFAULT_ENDPOINT: &str = "https://sellingpartnerapi-na.amazon.com";
    /// Login with Amazon.
    pub const DEFAULT_TOKEN_ENDPOINT: &str = "https://api.amazon.com/auth/o2/token";
    /// The generic product type.
    pub const DEFAULT_PRODUCT_TYPE: &str = "PRODUCT";

    fn default_endpoint() -> String {
        Self::DEFAULT_ENDPOINT.to_owned()
    }
    fn default_token_endpoint() -> String {
        Self::DEFAULT_TOKEN_ENDPOINT.to_owned()
    }
    fn default_product_type() -> String {
        Self::DEFAULT_PRODUCT_TYPE.to_owned()
    }
    fn default_condition_type() -> String {
        "new_new".to_owned()
    }
    fn default_language_tag() -> String {
        "en_US".to_owned()
    }
    fn default_feed_processing_secs() -> u64 {
        180
    }
}

/// Amazon's `condition_type` values (the connector's list, one source).
pub use omnistock_connectors::amazon::CONDITION_TYPES as AMAZON_CONDITIONS;

/// `type = "ebay"`: Sell Inventory and Fulfillment APIs, OAuth refresh-token grant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbayConfig {
    /// The shared channel keys; filled in by the parser, not a key of its own.
    #[serde(skip)]
    pub common: ChannelCommon,
    /// API base URL (production by default; the sandbox is `https://api.sandbox.ebay.com`).
    #[serde(default = "EbayConfig::default_endpoint")]
    pub endpoint: String,
    /// OAuth token URL that trades the refresh token for access tokens.
    #[serde(default = "EbayConfig::default_token_endpoint")]
    pub token_endpoint: String,
    /// Base URL of the Fulfillment API when it differs from `endpoint` (eBay also serves it from
    /// `https://apiz.ebay.com`); default: `endpoint`.
    #[serde(default)]
    pub fulfillment_endpoint: Option<String>,
    /// Application (client) id of the merchant's eBay developer keyset.
    pub client_id: String,
    /// Client secret ("Cert ID") of the keyset.
    pub client_secret: Secret,
    /// User refresh token with the `sell.inventory` and `sell.fulfillment` scopes.
    pub refresh_token: Secret,
    /// Site the offers are published on (`EBAY_US`, `EBAY_GB`, …).
    pub marketplace_id: String,
    /// eBay inventory location key that offers ship from (created beforehand in Seller Hub or
    /// by the connector).
    pub merchant_location_key: String,
    /// Business policy ids every offer needs.
    pub policies: EbayPoliciesConfig,
    /// Default leaf category for new offers; per-SKU attributes may override it.
    #[serde(default)]
    pub category_id: Option<String>,
    /// `Content-Language` of listing text sent to eBay.
    #[serde(default = "EbayConfig::default_content_language")]
    pub content_language: String,
    /// At zero stock, withdraw the offer instead of keeping it listed with quantity 0 (for
    /// accounts without eBay's "out-of-stock control").
    #[serde(default)]
    pub withdraw_at_zero: bool,
}

impl EbayConfig {
    /// eBay production.
    pub const DEFAULT_ENDPOINT: &str = "https://api.ebay.com";
    /// eBay production OAuth.
    pub const DEFAULT_TOKEN_ENDPOINT: &str = "https://api.ebay.com/identity/v1/oauth2/token";
    /// US English.
    pub const DEFAULT_CONTENT_LANGUAGE: &str = "en-US";

    fn default_endpoint() -> String {
        Self::DEFAULT_ENDPOINT.to_owned()
    }
    fn default_token_endpoint() -> String {
        Self::DEFAULT_TOKEN_ENDPOINT.to_owned()
    }
    fn default_content_language() -> String {
        Self::DEFAULT_CONTENT_LANGUAGE.to_owned()
    }
}

/// `policies = { fulfillment = "…", payment = "…", return = "…" }`: eBay business policy ids.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbayPoliciesConfig {
    /// Fulfillment (shipping) policy id.
    pub fulfillment: String,
    /// Payment policy id.
    pub payment: String,
    /// Return policy id (`return` in the file; a Rust keyword, hence the field name).
    #[serde(rename = "return")]
    pub return_policy: String,
}

/// `type = "facebook"`: Meta Graph API catalog (and commerce orders when the shop has checkout).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacebookConfig {
    /// The shared channel keys; filled in by the parser, not a key of its own.
    #[serde(skip)]
    pub common: ChannelCommon,
    /// Graph API base URL including the pinned version.
    #[serde(default = "FacebookConfig::default_endpoint")]
    pub endpoint: String,
    /// Product catalog the items are written to.
    pub catalog_id: String,
    /// System-user access token with `catalog_management` (and `commerce_manage_orders` for
    /// orders).
    pub access_token: Secret,
    /// App secret: signs webhook payloads (`X-Hub-Signature-256`) and API calls (`appsecret_proof`).
    pub app_secret: Secret,
    /// Commerce account whose orders are polled; only shops with checkout on Facebook/Instagram
    /// have one.
    #[serde(default)]
    pub commerce_account_id: Option<String>,
    /// Poll and ingest orders from the commerce account (needs `commerce_account_id`).
    #[serde(default)]
    pub orders_enabled: bool,
    /// Token Meta sends when subscribing the webhook endpoint (`GET /webhooks/{channel}`); the
    /// subscription handshake is refused without it. Deliveries are verified with `app_secret`.
    #[serde(default)]
    pub verify_token: Option<Secret>,
    /// Product page URL of new items, `{sku}` replaced by the percent-encoded SKU. Meta requires
    /// a `link` on every new catalog item; without a template only items already in the catalog
    /// can be updated (new ones are refused by Meta, item by item).
    #[serde(default)]
    pub link_template: Option<String>,
}

impl FacebookConfig {
    /// Graph API v25.0.
    pub const DEFAULT_ENDPOINT: &str = "https://graph.facebook.com/v25.0";

    fn default_endpoint() -> String {
        Self::DEFAULT_ENDPOINT.to_owned()
    }
}

/// `type = "shopify"`: Admin GraphQL API, with an access token or the client-credentials grant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyConfig {
    /// The shared channel keys; filled in by the parser, not a key of its own.
    #[serde(skip)]
    pub common: ChannelCommon,
    /// The shop's base URL (`https://example.myshopify.com`); no default, every shop differs.
    pub endpoint: String,
    /// Pinned Admin API version, so a Shopify release cannot change behaviour under us.
    #[serde(default = "ShopifyConfig::default_api_version")]
    pub api_version: String,
    /// Admin API access token of a custom app; or use `client_id` + `client_secret`.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// App client id for the client-credentials grant (with `client_secret`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// App client secret for the client-credentials grant (with `client_id`).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Inventory location whose quantities omnistock sets (`gid://shopify/Location/…`).
    pub location_id: String,
    /// Secret that signs webhooks (`X-Shopify-Hmac-Sha256`).
    pub webhook_secret: Secret,
}

impl ShopifyConfig {
    /// The Admin API version the connector is written against.
    pub const DEFAULT_API_VERSION: &str = "2026-07";

    fn default_api_version() -> String {
        Self::DEFAULT_API_VERSION.to_owned()
    }
}

/// `type = "woocommerce"`: WooCommerce REST API v3 with a consumer key pair.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WooCommerceConfig {
    /// The shared channel keys; filled in by the parser, not a key of its own.
    #[serde(skip)]
    pub common: ChannelCommon,
    /// The site's base URL; the client adds `/wp-json/wc/v3`.
    pub endpoint: String,
    /// REST API consumer key (`ck_…`), read/write.
    pub consumer_key: Secret,
    /// REST API consumer secret (`cs_…`).
    pub consumer_secret: Secret,
    /// Secret that signs webhooks (`X-WC-Webhook-Signature`).
    pub webhook_secret: Secret,
}

/// `type = "vendure"`: Vendure Admin GraphQL API with a native-auth administrator.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendureConfig {
    /// The shared channel keys; filled in by the parser, not a key of its own.
    #[serde(skip)]
    pub common: ChannelCommon,
    /// Admin API URL (`…/admin-api`).
    pub endpoint: String,
    /// Administrator login.
    pub username: String,
    /// Administrator password.
    pub password: Secret,
    /// Token of a non-default Vendure channel (`vendure-token` header); absent or empty = the
    /// default channel.
    #[serde(default)]
    pub channel_token: Option<String>,
    /// Stock location whose `stockOnHand` is set; absent = Vendure's default location.
    #[serde(default)]
    pub stock_location_id: Option<String>,
}

/// The field names a derived `Deserialize` for a struct declares, i.e. the keys it accepts.
///
/// Asks the impl itself: a probe deserializer records the `fields` argument of
/// `deserialize_struct` and stops there.
pub(crate) fn struct_keys<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("probe done"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut keys: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut keys));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_type_names() {
        for kind in ChannelKind::ALL {
            assert_eq!(ChannelKind::from_type(kind.as_str()), Some(kind));
        }
        assert_eq!(ChannelKind::from_type("Ebay"), None);
    }

    #[test]
    fn keys_come_from_the_structs_and_leave_out_common() {
        let ebay = ChannelKind::Ebay.specific_keys();
        assert!(ebay.contains(&"marketplace_id"));
        assert!(ebay.contains(&"withdraw_at_zero"));
        assert!(!ebay.contains(&"common"), "the skipped field is not a key");
        assert!(!ebay.contains(&"stock"));
        assert_eq!(
            ChannelCommon::keys(),
            [
                "locations",
                "stock",
                "price",
                "schedule",
                "enabled",
                "poll_interval_secs",
                "order_overlap_secs",
                "limits"
            ]
        );
        for kind in ChannelKind::ALL {
            assert!(kind.specific_keys().contains(&"endpoint"), "{kind}");
            let keys = kind.keys();
            let mut unique = keys.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(
                unique.len(),
                keys.len(),
                "{kind}: a key is both common and specific"
            );
        }
    }
}
