//! The sync plan: each channel's stock and price knobs and the `[[rules]]`, resolved from the config
//! into the exact values [`super::desired`] needs. Built once per config load; a reload that changes
//! the plan's [`SyncPlan::fingerprint`] triggers a full recompute.

use sha2::{Digest, Sha256};

use super::desired::{Decimal, PriceKnobs, StockKnobs, glob_match};
use crate::config::{Config, DecimalInput, PriceKnobsConfig, StockKnobsConfig};

/// One channel's part of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPlan {
    /// Channel id (`ebay_uk`).
    pub id: String,
    /// Locations whose stock this channel sells.
    pub locations: Vec<String>,
    /// The channel's stock knobs.
    pub stock: StockKnobs,
    /// The channel's price knobs.
    pub price: PriceKnobs,
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `sku:GLOB`.
    Sku(String),
    /// `tag:NAME`.
    Tag(String),
}

impl Matcher {
    /// Parses `sku:GLOB` or `tag:NAME`.
    pub fn parse(s: &str) -> Option<Matcher> {
        if let Some(g) = s.strip_prefix("sku:") {
            (!g.is_empty()).then(|| Matcher::Sku(g.to_owned()))
        } else if let Some(t) = s.strip_prefix("tag:") {
            (!t.is_empty()).then(|| Matcher::Tag(t.to_owned()))
        } else {
            None
        }
    }

    /// True when the variant matches.
    pub fn matches(&self, sku: &str, tags: &[String]) -> bool {
        match self {
            Matcher::Sku(g) => glob_match(g, sku),
            Matcher::Tag(t) => tags.iter().any(|x| x == t),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Sku(g) => write!(f, "sku:{g}"),
            Matcher::Tag(t) => write!(f, "tag:{t}"),
        }
    }
}

/// Stock knobs a rule overrides (the others come from the channel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockOverride {
    /// Override of buffer.
    pub buffer: Option<i64>,
    /// Override of percent.
    pub percent: Option<u32>,
    /// Override of max.
    pub max: Option<i64>,
    /// Override of min_shown.
    pub min_shown: Option<i64>,
}

/// Price knobs a rule overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceOverride {
    /// Override of multiplier.
    pub multiplier: Option<Decimal>,
    /// Override of add.
    pub add: Option<Decimal>,
    /// Override of round_to.
    pub round_to: Option<Decimal>,
}

/// One `[[rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulePlan {
    /// What it matches.
    pub matcher: Matcher,
    /// Channels it applies to; all when `None`.
    pub channels: Option<Vec<String>>,
    /// Stock overrides.
    pub stock: StockOverride,
    /// Price overrides.
    pub price: PriceOverride,
}

/// Channels and rules, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// Enabled channels, by id order.
    pub channels: Vec<ChannelPlan>,
    /// Rules in file order (first match wins).
    pub rules: Vec<RulePlan>,
}

/// The knobs that apply to one (channel, SKU) and which rule supplied overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Stock knobs after the rule.
    pub stock: StockKnobs,
    /// Price knobs after the rule.
    pub price: PriceKnobs,
    /// Index into `rules` of the rule that matched.
    pub rule: Option<usize>,
}

fn dec(d: &Option<DecimalInput>) -> Option<Decimal> {
    // The config's semantic pass already refused values that do not parse.
    d.as_ref().and_then(|d| d.parse().ok()).map(Decimal::from)
}

fn stock_override(k: &StockKnobsConfig) -> StockOverride {
    StockOverride {
        buffer: k.buffer,
        percent: k.percent,
        max: k.max,
        min_shown: k.min_shown,
    }
}

fn price_override(k: &PriceKnobsConfig) -> PriceOverride {
    PriceOverride {
        multiplier: dec(&k.multiplier),
        add: dec(&k.add),
        round_to: dec(&k.round_to),
    }
}

impl SyncPlan {
    /// Resolves a validated config: enabled channels with their knobs (defaults filled), and rules.
    pub fn from_config(config: &Config) -> SyncPlan {
        let all_locations: Vec<String> = config.locations.iter().map(|l| l.id.clone()).collect();
        let channels = config
            .channels
            .iter()
            .filter(|(_, c)| c.common().enabled)
            .map(|(id, c)| {
                let common = c.common();
                let d = StockKnobs::default();
                let s = &common.stock;
                ChannelPlan {
                    id: id.clone(),
                    locations: if common.locations.is_empty() {
                        all_locations.clone()
                    } else {
                        common.locations.clone()
                    },
                    stock: StockKnobs {
                        buffer: s.buffer.unwrap_or(d.buffer),
                        percent: s.percent.unwrap_or(d.percent),
                        max: s.max,
                        min_shown: s.min_shown.unwrap_or(d.min_shown),
                    },
                    price: PriceKnobs {
                        multiplier: dec(&common.price.multiplier),
                        add: dec(&common.price.add),
                        round_to: dec(&common.price.round_to),
                    },
                }
            })
            .collect();
        let rules = config
            .rules
            .iter()
            .filter_map(|r| {
                Some(RulePlan {
                    matcher: Matcher::parse(&r.matcher)?,
                    channels: r.channels.clone(),
                    stock: r.stock.as_ref().map(stock_override).unwrap_or_default(),
                    price: r.price.as_ref().map(price_override).unwrap_or_default(),
                })
            })
            .collect();
        SyncPlan { channels, rules }
    }

    /// The channel with this id.
    pub fn channel(&self, id: &str) -> Option<&ChannelPlan> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// Knobs for `sku` (with `tags`) on `channel`: the channel's, overridden by the first matching rule.
    pub fn resolve(&self, channel: &ChannelPlan, sku: &str, tags: &[String]) -> Resolved {
        let mut stock = channel.stock;
        let mut price = channel.price;
        let rule = self.rules.iter().position(|r| {
            r.channels
                .as_ref()
                .is_none_or(|cs| cs.contains(&channel.id))
                && r.matcher.matches(sku, tags)
        });
        if let Some(i) = rule {
            let r = &self.rules[i];
            stock.buffer = r.stock.buffer.unwrap_or(stock.buffer);
            stock.percent = r.stock.percent.unwrap_or(stock.percent);
            stock.max = r.stock.max.or(stock.max);
            stock.min_shown = r.stock.min_shown.unwrap_or(stock.min_shown);
            price.multiplier = r.price.multiplier.or(price.multiplier);
            price.add = r.price.add.or(price.add);
            price.round_to = r.price.round_to.or(price.round_to);
        }
        Resolved { stock, price, rule }
    }

    /// A digest of everything that affects desired state; equal plans give equal fingerprints.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!("{:?}", self).as_bytes());
        hex::encode(&h.finalize()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> SyncPlan {
        let ch = |id: &str, buffer| ChannelPlan {
            id: id.into(),
            locations: vec!["main".into()],
            stock: StockKnobs {
                buffer,
                ..StockKnobs::default()
            },
            price: PriceKnobs::default(),
        };
        SyncPlan {
            channels: vec![ch("ebay", 2), ch("amazon", 3)],
            rules: vec![
                RulePlan {
                    matcher: Matcher::parse("sku:CLEAR-*").unwrap(),
                    channels: Some(vec!["ebay".into()]),
                    stock: StockOverride {
                        buffer: Some(0),
                        ..Default::default()
                    },
                    price: PriceOverride::default(),
                },
                RulePlan {
                    matcher: Matcher::parse("tag:clearance").unwrap(),
                    channels: None,
                    stock: StockOverride {
                        percent: Some(50),
                        ..Default::default()
                    },
                    price: PriceOverride::default(),
                },
            ],
        }
    }

    #[test]
    fn first_matching_rule_overrides_only_named_knobs() {
        let p = plan();
        let ebay = p.channel("ebay").unwrap();
        let amazon = p.channel("amazon").unwrap();
        let r = p.resolve(ebay, "CLEAR-1", &["clearance".into()]);
        assert_eq!(
            (r.rule, r.stock.buffer, r.stock.percent),
            (Some(0), 0, 100),
            "first match wins"
        );
        let r = p.resolve(amazon, "CLEAR-1", &["clearance".into()]);
        assert_eq!(
            (r.rule, r.stock.buffer, r.stock.percent),
            (Some(1), 3, 50),
            "rule 0 is eBay-only"
        );
        let r = p.resolve(amazon, "MUG", &[]);
        assert_eq!((r.rule, r.stock.buffer), (None, 3));
    }

    #[test]
    fn fingerprint_tracks_changes() {
        let a = plan();
        let mut b = plan();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.channels[0].stock.percent = 90;
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn matcher_syntax() {
        assert_eq!(Matcher::parse("sku:"), None);
        assert_eq!(Matcher::parse("color:red"), None);
        assert_eq!(Matcher::parse("tag:x").unwrap().to_string(), "tag:x");
    }
}
