//! The config file's shape: one strict struct per section.
//!
//! Every struct denies unknown fields so a typo is an error with its line, never a silently ignored
//! key. The channel sections live in [`super::channel`]: a channel's `type` selects one of the
//! per-marketplace structs (see [`ChannelKind`]); the settings every channel shares (locations,
//! stock and price knobs, schedules) live in [`ChannelCommon`], held by each variant instead of
//! flattened, because `#[serde(flatten)]` loses line numbers (serde#1183).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::channel::ChannelConfig;
#[cfg(doc)]
use super::channel::{ChannelCommon, ChannelKind};
use super::decimal::{Decimal, DecimalError};
use super::sensitive::Secret;

/// The whole file.
///
/// Not `Deserialize` on purpose: build it with [`crate::config::parse`] or
/// [`crate::config::load`], which read each channel's section separately so that every error keeps
/// the line and column of the offending key (a derived internally-tagged enum would point at the
/// `[channels.x]` header instead).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Process-wide settings: database, admin listener, logging.
    pub daemon: DaemonConfig,
    /// Stock locations (warehouses). At least one; channels draw stock from a subset.
    pub locations: Vec<LocationConfig>,
    /// Sales channels by id (`[channels.ebay_uk]`); the id is what `--channel` and logs use.
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Per-SKU overrides of stock and price knobs; first match wins.
    pub rules: Vec<RuleConfig>,
}

impl Config {
    /// The channel with this id.
    pub fn channel(&self, id: &str) -> Option<&ChannelConfig> {
        self.channels.get(id)
    }

    /// Location ids in file order.
    pub fn location_ids(&self) -> impl Iterator<Item = &str> {
        self.locations.iter().map(|l| l.id.as_str())
    }
}

/// `[daemon]`.
///
/// `Debug` is written by hand: `database` may carry a password (`postgres://user:pass@host/db`),
/// which it hides.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// `sqlite://path` (embedded, single instance) or `postgres://user@host/db` (several instances).
    #[serde(default = "default_database")]
    pub database: String,
    /// Admin API, metrics, webhooks and dashboard listener.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer token for the admin API; required when `listen` is not a loopback address.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// `pretty` for people, `json` for log shippers.
    #[serde(default)]
    pub log_format: LogFormat,
    /// How long shutdown waits for in-flight work before abandoning it.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// How often the config file is checked for changes (SIGHUP reloads at once).
    #[serde(default = "default_reload_poll_ms")]
    pub reload_poll_ms: u64,
    /// Seconds a channel or instance lease lasts without renewal.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            database: default_database(),
            listen: default_listen(),
            admin_token: None,
            log_format: LogFormat::default(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
            reload_poll_ms: default_reload_poll_ms(),
            lease_secs: default_lease_secs(),
        }
    }
}

impl fmt::Debug for DaemonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonConfig")
            .field("database", &redact_url_password(&self.database))
            .field("listen", &self.listen)
            .field("admin_token", &self.admin_token)
            .field("log_format", &self.log_format)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("reload_poll_ms", &self.reload_poll_ms)
            .field("lease_secs", &self.lease_secs)
            .finish()
    }
}

/// `scheme://user:password@host/…` → `scheme://user:***@host/…`; anything else unchanged.
pub(crate) fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let redacted = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        "***".to_owned()
    };
    format!("{}{}{}", &url[..authority_start], redacted, &rest[at..])
}

fn default_database() -> String {
    "sqlite://omnistock.db".to_owned()
}
fn default_listen() -> String {
    "127.0.0.1:8686".to_owned()
}
fn default_shutdown_timeout_secs() -> u64 {
    10
}
fn default_reload_poll_ms() -> u64 {
    1000
}
fn default_lease_secs() -> u64 {
    30
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured when the output is a terminal.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[[locations]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    /// Stable id used in CSV imports, `stock set --location` and channel `locations`.
    pub id: String,
    /// Display name; defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
}

/// Stock knobs. In a channel every knob has a default; in a rule only named knobs override.
///
/// After [`crate::config::parse`], a channel's knobs are filled in: `buffer`, `percent` and
/// `min_shown` are always `Some` (see [`StockKnobsConfig::CHANNEL_DEFAULTS`]); `max` stays `None`
/// when there is no cap. A rule's knobs stay as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockKnobsConfig {
    /// Units held back from the channel (subtracted from available first).
    pub buffer: Option<i64>,
    /// Share of the remaining units shown, 0–100.
    pub percent: Option<u32>,
    /// Never show more than this many.
    pub max: Option<i64>,
    /// When any unit is available, show at least this many (never more than available).
    pub min_shown: Option<i64>,
}

impl StockKnobsConfig {
    /// What a channel shows when it names no knob: everything available, no cap.
    pub const CHANNEL_DEFAULTS: StockKnobsConfig = StockKnobsConfig {
        buffer: Some(0),
        percent: Some(100),
        max: None,
        min_shown: Some(0),
    };

    /// The knobs `self` names, the others from `base`: how a matching rule applies on top of its
    /// channel (`rule.stock.merged_over(&channel.stock)`).
    pub fn merged_over(&self, base: &StockKnobsConfig) -> StockKnobsConfig {
        StockKnobsConfig {
            buffer: self.buffer.or(base.buffer),
            percent: self.percent.or(base.percent),
            max: self.max.or(base.max),
            min_shown: self.min_shown.or(base.min_shown),
        }
    }

    /// True when no knob is named.
    pub fn is_empty(&self) -> bool {
        self == &StockKnobsConfig::default()
    }
}

/// Price knobs: base × multiplier (half up to the minor unit) + add, then round_to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceKnobsConfig {
    /// Factor on the base price; a number or a decimal string (`1.15`, `"1.15"`).
    pub multiplier: Option<DecimalInput>,
    /// Amount added after the multiplier, in major units as a decimal string (`"0.50"`).
    pub add: Option<DecimalInput>,
    /// Raise to the nearest amount ending in this (`"0.99"`: 12.00 → 12.99).
    pub round_to: Option<DecimalInput>,
}

impl PriceKnobsConfig {
    /// The knobs `self` names, the others from `base` (a rule on top of its channel).
    pub fn merged_over(&self, base: &PriceKnobsConfig) -> PriceKnobsConfig {
        PriceKnobsConfig {
            multiplier: self.multiplier.clone().or_else(|| base.multiplier.clone()),
            add: self.add.clone().or_else(|| base.add.clone()),
            round_to: self.round_to.clone().or_else(|| base.round_to.clone()),
        }
    }

    /// True when no knob is named (the base price goes out unchanged).
    pub fn is_empty(&self) -> bool {
        self == &PriceKnobsConfig::default()
    }
}

/// A decimal written as a TOML number or string; kept as text so no float rounding creeps in.
///
/// Deserialized by hand rather than as an untagged enum so a wrong type gets a readable message
/// with its line (untagged enums say only "did not match any variant").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalInput(String);

impl DecimalInput {
    /// The decimal as written, e.g. `"1.15"`.
    pub fn as_text(&self) -> &str {
        &self.0
    }

    /// The exact value; the semantic pass has already rejected text that fails here.
    pub fn parse(&self) -> Result<Decimal, DecimalError> {
        self.0.parse()
    }
}

impl From<&str> for DecimalInput {
    fn from(s: &str) -> Self {
        DecimalInput(s.trim().to_owned())
    }
}

impl<'de> Deserialize<'de> for DecimalInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DecimalInput;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a decimal number such as 1.15 or \"0.50\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DecimalInput, E> {
                Ok(DecimalInput(v.trim().to_owned()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DecimalInput, E> {
                if !v.is_finite() {
                    return Err(E::custom("expected a finite decimal number"));
                }
                // `Display` for f64 prints the shortest text that round-trips: 1.15 -> "1.15".
                Ok(DecimalInput(format!("{v}")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DecimalInput, E> {
                Ok(DecimalInput(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DecimalInput, E> {
                Ok(DecimalInput(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `schedule = { orders = "*/2 * * * *", reconcile = "0 3 * * *" }`.
///
/// After [`crate::config::parse`] both are `Some` (defaults: [`ScheduleConfig::DEFAULT_ORDERS`],
/// [`ScheduleConfig::DEFAULT_RECONCILE`]); turn them into schedules with
/// [`crate::config::parse_schedule`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Order poll schedule (cron, 5-field or the cron crate's 6/7-field form).
    pub orders: Option<String>,
    /// Full reconcile schedule.
    pub reconcile: Option<String>,
}

impl ScheduleConfig {
    /// Poll orders every minute (webhooks and `poll_interval_secs` make it sooner).
    pub const DEFAULT_ORDERS: &str = "* * * * *";
    /// Reconcile every night at 03:00, when marketplaces are quiet.
    pub const DEFAULT_RECONCILE: &str = "0 3 * * *";

    /// The order poll schedule text, default included.
    pub fn orders(&self) -> &str {
        self.orders.as_deref().unwrap_or(Self::DEFAULT_ORDERS)
    }

    /// The reconcile schedule text, default included.
    pub fn reconcile(&self) -> &str {
        self.reconcile.as_deref().unwrap_or(Self::DEFAULT_RECONCILE)
    }
}

/// `[[rules]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `sku:GLOB` (`*` and `?`) or `tag:NAME`.
    #[serde(rename = "match")]
    pub matcher: String,
    /// Channel ids the rule applies to; all channels when absent.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Stock knobs this rule overrides.
    #[serde(default)]
    pub stock: Option<StockKnobsConfig>,
    /// Price knobs this rule overrides.
    #[serde(default)]
    pub price: Option<PriceKnobsConfig>,
}
