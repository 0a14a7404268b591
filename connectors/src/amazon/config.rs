//! What an Amazon connector needs to know about the merchant's account, as the daemon hands it
//! over (built from the `[channels.<id>]` section of type `amazon`), the regional hosts, and the
//! documented usage plans its rate budgets start from (contracts/README.md §1.1, §1.2).

use std::time::Duration;

use crate::common::http::is_loopback;
use crate::common::{Limits, Secret};
use crate::error::ConnectorError;

/// SP-API production host, North America (CA, US, MX, BR).
pub const ENDPOINT_NA: &str = "https://sellingpartnerapi-na.amazon.com";
/// SP-API production host, Europe (UK, DE, FR, IT, ES, NL, SE, PL, BE, IE, TR, AE, SA, EG, IN, ZA).
pub const ENDPOINT_EU: &str = "https://sellingpartnerapi-eu.amazon.com";
/// SP-API production host, Far East (JP, AU, SG).
pub const ENDPOINT_FE: &str = "https://sellingpartnerapi-fe.amazon.com";
/// SP-API sandbox host, North America (static and dynamic sandbox; 5 rps, burst 15 everywhere).
pub const SANDBOX_ENDPOINT_NA: &str = "https://sandbox.sellingpartnerapi-na.amazon.com";
/// SP-API sandbox host, Europe.
pub const SANDBOX_ENDPOINT_EU: &str = "https://sandbox.sellingpartnerapi-eu.amazon.com";
/// SP-API sandbox host, Far East.
pub const SANDBOX_ENDPOINT_FE: &str = "https://sandbox.sellingpartnerapi-fe.amazon.com";
/// Login with Amazon token endpoint (the same for every region).
pub const LWA_TOKEN_ENDPOINT: &str = "https://api.amazon.com/auth/o2/token";

/// The SP-API host of a region (`na`, `eu`, `fe`, any case), production or sandbox; `None` for an
/// unknown region.
pub fn endpoint_for(region: &str, sandbox: bool) -> Option<&'static str> {
    let region = region.trim().to_ascii_lowercase();
    Some(match (region.as_str(), sandbox) {
        ("na", false) => ENDPOINT_NA,
        ("eu", false) => ENDPOINT_EU,
        ("fe", false) => ENDPOINT_FE,
        ("na", true) => SANDBOX_ENDPOINT_NA,
        ("eu", true) => SANDBOX_ENDPOINT_EU,
        ("fe", true) => SANDBOX_ENDPOINT_FE,
        _ => return None,
    })
}

// ---- operations (budget keys) -----------------------------------------------------------------

/// Listings Items API `getListingsItem`.
pub const OP_GET_LISTINGS_ITEM: &str = "getListingsItem";
/// Listings Items API `putListingsItem` (push_listings).
pub const OP_PUT_LISTINGS_ITEM: &str = "putListingsItem";
/// Listings Items API `patchListingsItem` (push_stock).
pub const OP_PATCH_LISTINGS_ITEM: &str = "patchListingsItem";
/// Listings Items API `deleteListingsItem` (delist).
pub const OP_DELETE_LISTINGS_ITEM: &str = "deleteListingsItem";
/// Listings Items API `searchListingsItems` (snapshot, healthcheck).
pub const OP_SEARCH_LISTINGS_ITEMS: &str = "searchListingsItems";
/// Feeds API `createFeedDocument`.
pub const OP_CREATE_FEED_DOCUMENT: &str = "createFeedDocument";
/// Feeds API `createFeed`.
pub const OP_CREATE_FEED: &str = "createFeed";
/// Feeds API `getFeed`.
pub const OP_GET_FEED: &str = "getFeed";
/// Feeds API `getFeeds`.
pub const OP_GET_FEEDS: &str = "getFeeds";
/// Feeds API `getFeedDocument`.
pub const OP_GET_FEED_DOCUMENT: &str = "getFeedDocument";
/// Orders API 2026-01-01 `searchOrders`.
pub const OP_SEARCH_ORDERS: &str = "searchOrders";
/// Orders API 2026-01-01 `getOrder`.
pub const OP_GET_ORDER: &str = "getOrder";
/// The feed-type limit of `createFeed` with `JSON_LISTINGS_FEED` (five per five minutes), a
/// bucket of its own beside `createFeed`'s.
pub const OP_JSON_LISTINGS_FEED: &str = "JSON_LISTINGS_FEED";
/// The Login with Amazon token endpoint (no documented limit; a connector choice).
pub const OP_TOKEN: &str = "token";

/// Every SP-API operation the connector calls, with its documented default usage plan
/// `(operation, rate per second, burst)`: the "Usage Plan" table of each operation in the
/// official models (contracts/README.md §1.2), plus the `JSON_LISTINGS_FEED` feed-type limit
/// (5 submissions per 5 minutes, burst 5; Amazon's 2025-05-06 changelog).
pub const PRODUCTION_PLAN: [(&str, f64, u32); 13] = [
    (OP_GET_LISTINGS_ITEM, 5.0, 10),
    (OP_PUT_LISTINGS_ITEM, 5.0, 10),
    (OP_PATCH_LISTINGS_ITEM, 5.0, 5),
    (OP_DELETE_LISTINGS_ITEM, 5.0, 5),
    (OP_SEARCH_LISTINGS_ITEMS, 5.0, 5),
    (OP_CREATE_FEED_DOCUMENT, 0.5, 15),
    (OP_CREATE_FEED, 0.0083, 15),
    (OP_GET_FEED, 2.0, 15),
    (OP_GET_FEEDS, 0.0222, 10),
    (OP_GET_FEED_DOCUMENT, 0.0222, 10),
    (OP_SEARCH_ORDERS, 0.0056, 20),
    (OP_GET_ORDER, 0.5, 30),
    (OP_JSON_LISTINGS_FEED, 5.0 / 300.0, 5),
];

/// Rate of every operation on Amazon's sandbox hosts.
pub const SANDBOX_RATE_PER_SEC: f64 = 5.0;
/// Burst of every operation on Amazon's sandbox hosts.
pub const SANDBOX_BURST: u32 = 15;

/// Which rate and burst each operation's budget starts from. Amazon may grant an account more
/// and says so in `x-amzn-RateLimit-Limit`, which then replaces the rate (never the burst).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AmazonUsagePlan {
    /// The documented default plan of each operation ([`PRODUCTION_PLAN`]).
    Production,
    /// Amazon's sandbox hosts: every operation 5 rps, burst 15.
    Sandbox,
    /// The same rate and burst for every operation (tests, or an account Amazon granted more).
    Custom {
        /// Requests per second.
        rate_per_sec: f64,
        /// Bucket size.
        burst: u32,
    },
}

impl AmazonUsagePlan {
    /// `(rate per second, burst)` of `operation` under this plan. An operation the plan does not
    /// name (none today) gets the slowest listings plan, 5 rps burst 5.
    pub fn limit(&self, operation: &str) -> (f64, u32) {
        match *self {
            AmazonUsagePlan::Production => PRODUCTION_PLAN
                .iter()
                .find(|(op, _, _)| *op == operation)
                .map_or((5.0, 5), |(_, rate, burst)| (*rate, *burst)),
            AmazonUsagePlan::Sandbox => (SANDBOX_RATE_PER_SEC, SANDBOX_BURST),
            AmazonUsagePlan::Custom {
                rate_per_sec,
                burst,
            } => (rate_per_sec, burst),
        }
    }
}

/// The listing conditions Amazon accepts in `condition_type` (spec `ItemSummaryByMarketplace`).
pub const CONDITION_TYPES: [&str; 13] = [
    "new_new",
    "new_open_box",
    "new_oem",
    "refurbished_refurbished",
    "used_like_new",
    "used_very_good",
    "used_good",
    "used_acceptable",
    "collectible_like_new",
    "collectible_very_good",
    "collectible_good",
    "collectible_acceptable",
    "club_club",
];

/// Most marketplaces one createFeed names (spec `CreateFeedSpecification.marketplaceIds`).
pub const MAX_MARKETPLACES: usize = 25;

/// One Amazon seller account in one SP-API region.
///
/// Listings writes, feeds and the snapshot address the **first** of `marketplace_ids` (PUT and
/// DELETE accept exactly one; offers and prices are per marketplace); quantity
/// (`fulfillment_availability`) is shared by the region's marketplaces anyway. Orders are read
/// for all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct AmazonConfig {
    /// SP-API base URL: a regional host ([`endpoint_for`]), or `http://127.0.0.1:PORT/amazon`
    /// for the sandbox. The connector appends `/listings/2021-08-01/…`, `/feeds/2021-06-30/…` and
    /// `/orders/2026-01-01/…`.
    pub endpoint: String,
    /// Base URL of the Feeds API when it differs from `endpoint` (a contract test puts a
    /// validating proxy per spec in front of each API); `None` = `endpoint`.
    pub feeds_endpoint: Option<String>,
    /// Base URL of the Orders API when it differs from `endpoint`; `None` = `endpoint`.
    pub orders_endpoint: Option<String>,
    /// Full URL of the Login with Amazon token endpoint ([`LWA_TOKEN_ENDPOINT`]).
    pub token_endpoint: String,
    /// The merchant's seller id (`sellerId` of every listings call and feed header).
    pub seller_id: String,
    /// Marketplaces of the account (`ATVPDKIKX0DER` = amazon.com); the first is the one listings,
    /// offers and prices are written for. At most [`MAX_MARKETPLACES`].
    pub marketplace_ids: Vec<String>,
    /// LWA client id of the app.
    pub client_id: String,
    /// LWA client secret of the app.
    pub client_secret: Secret,
    /// The seller's LWA refresh token (from authorizing the app).
    pub refresh_token: Secret,
    /// `productType` of listings no rule matches ([`AmazonConfig::DEFAULT_PRODUCT_TYPE`]).
    pub product_type: String,
    /// `(SKU glob, productType)` pairs, first match wins; `*` matches any run of characters and
    /// `?` one character (`("MUG-*", "DRINKING_CUP")`).
    pub product_type_rules: Vec<(String, String)>,
    /// `condition_type` of new listings, one of [`CONDITION_TYPES`] (default `new_new`).
    pub condition_type: String,
    /// `language_tag` of text attributes and the issue locale (`en_US`, `de_DE`).
    pub language_tag: String,
    /// How long a feed is believed to take from submission to DONE before any was seen finish:
    /// the starting point of the learned duration `bulk_choice` compares against (default 180 s).
    pub feed_processing_estimate: Duration,
    /// The rate and burst each operation's budget starts from.
    pub usage_plan: AmazonUsagePlan,
    /// Timeouts, batch size, retry policy; `rate_per_sec` and `burst` cap every operation's
    /// plan (so an operator can slow the connector down). Start from
    /// [`super::AmazonConnector::DEFAULT_LIMITS`].
    pub limits: Limits,
}

impl AmazonConfig {
    /// SP-API North America.
    pub const DEFAULT_ENDPOINT: &str = ENDPOINT_NA;
    /// Login with Amazon.
    pub const DEFAULT_TOKEN_ENDPOINT: &str = LWA_TOKEN_ENDPOINT;
    /// The generic product type.
    pub const DEFAULT_PRODUCT_TYPE: &str = "PRODUCT";
    /// New.
    pub const DEFAULT_CONDITION_TYPE: &str = "new_new";
    /// US English.
    pub const DEFAULT_LANGUAGE_TAG: &str = "en_US";
    /// The learned feed duration starts here.
    pub const DEFAULT_FEED_PROCESSING_ESTIMATE: Duration = Duration::from_secs(180);

    /// The marketplace listings, offers and prices are written for.
    pub(crate) fn primary_marketplace(&self) -> &str {
        self.marketplace_ids.first().map_or("", String::as_str)
    }

    /// The `productType` for `sku`: the first rule whose glob matches, else `product_type`.
    pub fn product_type_for(&self, sku: &str) -> &str {
        self.product_type_rules
            .iter()
            .find(|(pattern, _)| glob_matches(pattern, sku))
            .map_or(self.product_type.as_str(), |(_, product_type)| {
                product_type.as_str()
            })
    }

    /// `{endpoint}/listings/2021-08-01`.
    pub(crate) fn listings_base(&self) -> String {
        format!(
            "{}/listings/2021-08-01",
            self.endpoint.trim_end_matches('/')
        )
    }

    /// `{feeds_endpoint or endpoint}/feeds/2021-06-30`.
    pub(crate) fn feeds_base(&self) -> String {
        let base = self.feeds_endpoint.as_deref().unwrap_or(&self.endpoint);
        format!("{}/feeds/2021-06-30", base.trim_end_matches('/'))
    }

    /// `{orders_endpoint or endpoint}/orders/2026-01-01`.
    pub(crate) fn orders_base(&self) -> String {
        let base = self.orders_endpoint.as_deref().unwrap_or(&self.endpoint);
        format!("{}/orders/2026-01-01", base.trim_end_matches('/'))
    }

    fn urls(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("endpoint", Some(self.endpoint.as_str())),
            ("feeds_endpoint", self.feeds_endpoint.as_deref()),
            ("orders_endpoint", self.orders_endpoint.as_deref()),
            ("token_endpoint", Some(self.token_endpoint.as_str())),
        ]
    }

    /// True when every URL points at this machine (sandbox, tests): no proxy then, and plain
    /// `http` presigned document URLs are accepted.
    pub(crate) fn all_loopback(&self) -> bool {
        self.urls()
            .into_iter()
            .filter_map(|(_, url)| url)
            .all(is_loopback)
    }

    /// Refuses a config the connector cannot work with, naming every problem. (The daemon's
    /// config pass catches these first; this guards other callers.)
    pub(crate) fn validate(&self) -> Result<(), ConnectorError> {
        let mut problems = Vec::new();
        for (name, url) in self.urls() {
            let Some(url) = url else { continue };
            let ok = reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                problems.push(format!("{name} is not an http(s) URL: {url:?}"));
            }
        }
        for (name, empty) in [
            ("seller_id", self.seller_id.trim().is_empty()),
            ("client_id", self.client_id.trim().is_empty()),
            ("client_secret", self.client_secret.is_empty()),
            ("refresh_token", self.refresh_token.is_empty()),
            ("product_type", self.product_type.trim().is_empty()),
        ] {
            if empty {
                problems.push(format!("{name} is empty"));
            }
        }
        if self.marketplace_ids.is_empty() {
            problems.push("marketplace_ids is empty (at least one is needed)".into());
        }
        if self.marketplace_ids.len() > MAX_MARKETPLACES {
            problems.push(format!(
                "marketplace_ids has {} entries; at most {MAX_MARKETPLACES} are allowed",
                self.marketplace_ids.len()
            ));
        }
        for id in &self.marketplace_ids {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                problems.push(format!(
                    "marketplace id {id:?} is not a marketplace id such as ATVPDKIKX0DER"
                ));
            }
        }
        for (pattern, product_type) in &self.product_type_rules {
            if pattern.is_empty() || product_type.trim().is_empty() {
                problems.push(format!(
                    "product_type_rules entry ({pattern:?}, {product_type:?}) needs a SKU pattern and a product type"
                ));
            }
        }
        if !CONDITION_TYPES.contains(&self.condition_type.as_str()) {
            problems.push(format!(
                "condition_type {:?} is not one of {}",
                self.condition_type,
                CONDITION_TYPES.join(", ")
            ));
        }
        let tag = self.language_tag.as_bytes();
        let tag_ok = tag.len() == 5
            && tag[2] == b'_'
            && tag[..2].iter().all(u8::is_ascii_lowercase)
            && tag[3..].iter().all(u8::is_ascii_uppercase);
        if !tag_ok {
            problems.push(format!(
                "language_tag must look like en_US, got {:?}",
                self.language_tag
            ));
        }
        if self.feed_processing_estimate.is_zero()
            || self.feed_processing_estimate > Duration::from_secs(24 * 3600)
        {
            problems.push(format!(
                "feed_processing_estimate must be between 1 s and 1 day, got {:?}",
                self.feed_processing_estimate
            ));
        }
        if let AmazonUsagePlan::Custom {
            rate_per_sec,
            burst,
        } = self.usage_plan
            && (!rate_per_sec.is_finite() || rate_per_sec <= 0.0 || burst == 0)
        {
            problems.push(format!(
                "usage_plan custom needs a rate above 0 and a burst of at least 1, got {rate_per_sec} and {burst}"
            ));
        }
        if let Err(e) = self.limits.validate() {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConnectorError::Permanent {
                status: None,
                code: None,
                message: format!("invalid Amazon connector config: {}", problems.join("; ")),
            })
        }
    }
}

/// True when `text` matches `pattern`, where `*` matches any run of characters (also none) and
/// `?` exactly one; everything else matches itself. Linear backtracking on the last `*`.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (pattern, text, want) in [
            ("MUG-*", "MUG-RED", true),
            ("MUG-*", "MUG-", true),
            ("MUG-*", "PLATE-RED", false),
            ("*-RED", "MUG-RED", true),
            ("M?G-*", "MUG-RED", true),
            ("M?G", "MG", false),
            ("*", "", true),
            ("", "", true),
            ("", "A", false),
            ("A*B*C", "AxxBxxC", true),
            ("A*B*C", "AxxBxx", false),
            ("**?", "é", true),
            ("exact", "exact", true),
        ] {
            assert_eq!(glob_matches(pattern, text), want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn regions() {
        assert_eq!(endpoint_for("NA", false), Some(ENDPOINT_NA));
        assert_eq!(endpoint_for("eu", true), Some(SANDBOX_ENDPOINT_EU));
        assert_eq!(endpoint_for(" fe ", false), Some(ENDPOINT_FE));
        assert_eq!(endpoint_for("us", false), None);
    }

    #[test]
    fn plans() {
        let p = AmazonUsagePlan::Production;
        assert_eq!(p.limit(OP_PATCH_LISTINGS_ITEM), (5.0, 5));
        assert_eq!(p.limit(OP_SEARCH_ORDERS), (0.0056, 20));
        assert_eq!(p.limit(OP_JSON_LISTINGS_FEED), (5.0 / 300.0, 5));
        assert_eq!(
            AmazonUsagePlan::Sandbox.limit(OP_CREATE_FEED),
            (SANDBOX_RATE_PER_SEC, SANDBOX_BURST)
        );
        let c = AmazonUsagePlan::Custom {
            rate_per_sec: 7.0,
            burst: 3,
        };
        assert_eq!(c.limit(OP_GET_ORDER), (7.0, 3));
    }
}
