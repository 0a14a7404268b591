//! The semantic pass: values that parse but do not make sense, all reported at once.
//!
//! Each [`Problem`] names its key path and, unless the value is a secret, the bad value, so the
//! merchant can fix every problem in one edit. [`crate::config::parse`] then adds positions.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use super::channel::{AMAZON_CONDITIONS, ChannelCommon, ChannelConfig, LimitsConfig};
use super::decimal::{DecimalError, MAX_FRACTION_DIGITS};
use super::error::Problem;
use super::model::{
    Config, DaemonConfig, DecimalInput, PriceKnobsConfig, StockKnobsConfig, redact_url_password,
};
use super::schedule::parse_schedule;
use super::sensitive::Secret;

/// Shortest accepted `daemon.admin_token` when the listener is reachable from other hosts.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;
/// Longest channel id (ids appear in URLs, metrics labels and log lines).
pub const MAX_CHANNEL_ID_CHARS: usize = 40;
/// `round_to` must be below this: it is the tail a price is raised to, not a price.
const MAX_ROUND_TO: i64 = 1000;

/// Every semantic problem of `config`, in the order of the file's sections; empty when valid.
pub fn validate(config: &Config) -> Vec<Problem> {
    let mut v = Validator::default();
    v.daemon(&config.daemon);
    v.locations(config);
    for (id, channel) in &config.channels {
        v.channel(config, id, channel);
    }
    v.rules(config);
    v.problems
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(key, message));
    }

    fn daemon(&mut self, d: &DaemonConfig) {
        let db = &d.database;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            self.push(
                "daemon.database",
                format!(
                    "must start with sqlite: (e.g. \"sqlite://omnistock.db\") or postgres:// or \
                     postgresql://, got {:?}",
                    redact_url_password(db)
                ),
            );
        }
        match d.listen.parse::<SocketAddr>() {
            Err(_) => self.push(
                "daemon.listen",
                format!(
                    "must be an IP address and port such as \"127.0.0.1:8686\", got {:?}",
                    d.listen
                ),
            ),
            Ok(addr) if !addr.ip().is_loopback() => {
                let chars = d.admin_token.as_ref().map(|t| t.expose().chars().count());
                match chars {
                    None => self.push(
                        "daemon.admin_token",
                        format!(
                            "is required because daemon.listen ({addr}) is reachable from other \
                             hosts; set at least {MIN_ADMIN_TOKEN_CHARS} random characters"
                        ),
                    ),
                    Some(n) if n < MIN_ADMIN_TOKEN_CHARS => self.push(
                        "daemon.admin_token",
                        format!(
                            "must be at least {MIN_ADMIN_TOKEN_CHARS} characters because \
                             daemon.listen ({addr}) is reachable from other hosts, got {n}"
                        ),
                    ),
                    Some(_) => {}
                }
            }
            Ok(_) => {}
        }
        if d.reload_poll_ms == 0 {
            self.push("daemon.reload_poll_ms", "must be at least 1, got 0");
        }
        if d.lease_secs == 0 {
            self.push("daemon.lease_secs", "must be at least 1, got 0");
        }
    }

    fn locations(&mut self, config: &Config) {
        if config.locations.is_empty() {
            self.push(
                "locations",
                "must list at least one location: add [[locations]] with an id",
            );
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, location) in config.locations.iter().enumerate() {
            let key = format!("locations[{i}].id");
            if location.id.trim().is_empty() {
                self.push(key, format!("must not be empty, got {:?}", location.id));
            } else if let Some(first) = seen.insert(&location.id, i) {
                seen.insert(&location.id, first);
                self.push(
                    key,
                    format!("{:?} is already the id of locations[{first}]", location.id),
                );
            }
        }
    }

    fn channel(&mut self, config: &Config, id: &str, channel: &ChannelConfig) {
        let at = |key: &str| format!("channels.{id}.{key}");
        let id_ok = (1..=MAX_CHANNEL_ID_CHARS).contains(&id.chars().count())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !id_ok {
            self.push(
                format!("channels.{id}"),
                format!(
                    "has an invalid id {id:?}: use 1–{MAX_CHANNEL_ID_CHARS} characters from a-z, \
                     0-9, _ and - (ids appear in URLs, metrics and logs)"
                ),
            );
        }
        self.common(config, id, channel.common());

        match channel {
            ChannelConfig::Amazon(c) => {
                self.url(&at("endpoint"), &c.endpoint);
                self.url(&at("token_endpoint"), &c.token_endpoint);
                self.required(&at("seller_id"), &c.seller_id);
                if c.marketplace_ids.is_empty() {
                    self.push(
                        at("marketplace_ids"),
                        "must list at least one marketplace id, such as \"ATVPDKIKX0DER\"",
                    );
                }
                for (i, m) in c.marketplace_ids.iter().enumerate() {
                    self.required(&at(&format!("marketplace_ids[{i}]")), m);
                }
                self.required(&at("client_id"), &c.client_id);
                self.secret(&at("client_secret"), &c.client_secret);
                self.secret(&at("refresh_token"), &c.refresh_token);
                self.product_type(&at("product_type"), &c.product_type);
                for (i, r) in c.product_type_rules.iter().enumerate() {
                    self.required(&at(&format!("product_type_rules[{i}].sku")), &r.sku);
                    self.product_type(
                        &at(&format!("product_type_rules[{i}].product_type")),
                        &r.product_type,
                    );
                }
                if let Some(region) = &c.region
                    && !matches!(region.as_str(), "na" | "eu" | "fe")
                {
                    self.push(
                        at("region"),
                        format!("must be \"na\", \"eu\" or \"fe\", got {region:?}"),
                    );
                }
                if !AMAZON_CONDITIONS.contains(&c.condition_type.as_str()) {
                    self.push(
                        at("condition_type"),
                        format!(
                            "must be one of {}, got {:?}",
                            AMAZON_CONDITIONS.join(", "),
                            c.condition_type
                        ),
                    );
                }
                let lt = c.language_tag.as_bytes();
                if !(lt.len() == 5
                    && lt[..2].iter().all(u8::is_ascii_lowercase)
                    && lt[2] == b'_'
                    && lt[3..].iter().all(u8::is_ascii_uppercase))
                {
                    self.push(
                        at("language_tag"),
                        format!("must look like \"en_US\", got {:?}", c.language_tag),
                    );
                }
                if !(1..=86_400).contains(&c.feed_processing_secs) {
                    self.push(
                        at("feed_processing_secs"),
                        format!("must be 1–86400, got {}", c.feed_processing_secs),
                    );
                }
            }
            ChannelConfig::Ebay(c) => {
                self.url(&at("endpoint"), &c.endpoint);
                self.url(&at("token_endpoint"), &c.token_endpoint);
                self.required(&at("client_id"), &c.client_id);
                self.secret(&at("client_secret"), &c.client_secret);
                self.secret(&at("refresh_token"), &c.refresh_token);
                let m = &c.marketplace_id;
                if !(m.len() > 5
                    && m.starts_with("EBAY_")
                    && m[5..].bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
                {
                    self.push(
                        at("marketplace_id"),
                        format!("must be an eBay marketplace id such as \"EBAY_US\", got {m:?}"),
                    );
                }
                self.required(&at("merchant_location_key"), &c.merchant_location_key);
                self.required(&at("policies.fulfillment"), &c.policies.fulfillment);
                self.required(&at("policies.payment"), &c.policies.payment);
                self.required(&at("policies.return"), &c.policies.return_policy);
                if let Some(category) = &c.category_id {
                    self.required(&at("category_id"), category);
                }
                if !is_language_tag(&c.content_language) {
                    self.push(
                        at("content_language"),
                        format!(
                            "must be a language tag such as \"en-US\", got {:?}",
                            c.content_language
                        ),
                    );
                }
            }
            ChannelConfig::Facebook(c) => {
                self.url(&at("endpoint"), &c.endpoint);
                self.required(&at("catalog_id"), &c.catalog_id);
                self.secret(&at("access_token"), &c.access_token);
                self.secret(&at("app_secret"), &c.app_secret);
                match &c.commerce_account_id {
                    Some(account) => self.required(&at("commerce_account_id"), account),
                    None if c.orders_enabled => self.push(
                        at("orders_enabled"),
                        "is true but commerce_account_id is not set; only shops with checkout on \
                         Facebook/Instagram have orders, and they are read from that account",
                    ),
                    None => {}
                }
                if let Some(token) = &c.verify_token {
                    self.secret(&at("verify_token"), token);
                }
                if let Some(template) = &c.link_template {
                    if template.contains("{sku}") {
                        self.url(&at("link_template"), &template.replace("{sku}", "SKU"));
                    } else {
                        self.push(
                            at("link_template"),
                            format!("must contain the placeholder {{sku}}, got {template:?}"),
                        );
                    }
                }
            }
            ChannelConfig::Shopify(c) => {
                self.url(&at("endpoint"), &c.endpoint);
                let v = &c.api_version;
                let dated = v.len() == 7
                    && v.bytes().enumerate().all(|(i, b)| {
                        if i == 4 {
                            b == b'-'
                        } else {
                            b.is_ascii_digit()
                        }
                    });
                if !(dated || v == "unstable") {
                    self.push(
                        at("api_version"),
                        format!("must be a Shopify API version such as \"2026-07\", got {v:?}"),
                    );
                }
                match (&c.access_token, &c.client_id, &c.client_secret) {
                    (None, None, None) => self.push(
                        format!("channels.{id}"),
                        "needs access_token, or client_id and client_secret (client-credentials grant)",
                    ),
                    (Some(_), Some(_), _) | (Some(_), _, Some(_)) => self.push(
                        at("access_token"),
                        "and client_id/client_secret are two ways to sign in; set only one of them",
                    ),
                    (Some(token), None, None) => self.secret(&at("access_token"), token),
                    (None, Some(_), None) => self.push(at("client_secret"), "is required with client_id"),
                    (None, None, Some(_)) => self.push(at("client_id"), "is required with client_secret"),
                    (None, Some(client_id), Some(secret)) => {
                        self.required(&at("client_id"), client_id);
                        self.secret(&at("client_secret"), secret);
                    }
                }
                self.required(&at("location_id"), &c.location_id);
                self.secret(&at("webhook_secret"), &c.webhook_secret);
            }
            ChannelConfig::WooCommerce(c) => {
                self.url(&at("endpoint"), &c.endpoint);
                self.secret(&at("consumer_key"), &c.consumer_key);
                self.secret(&at("consumer_secret"), &c.consumer_secret);
                self.secret(&at("webhook_secret"), &c.webhook_secret);
            }
            ChannelConfig::Vendure(c) => {
                self.url(&at("endpoint"), &c.endpoint);
                self.required(&at("username"), &c.username);
                self.secret(&at("password"), &c.password);
                if let Some(location) = &c.stock_location_id {
                    self.required(&at("stock_location_id"), location);
                }
            }
        }
    }

    fn common(&mut self, config: &Config, id: &str, common: &ChannelCommon) {
        let at = |key: &str| format!("channels.{id}.{key}");
        if common.locations.is_empty() && !config.locations.is_empty() {
            self.push(
                at("locations"),
                "must name at least one location (omit the key to use all of them)",
            );
        }
        let mut defined: Vec<&str> = Vec::new();
        for location in config.location_ids() {
            if !defined.contains(&location) {
                defined.push(location);
            }
        }
        let mut seen = HashSet::new();
        for (i, location) in common.locations.iter().enumerate() {
            let key = at(&format!("locations[{i}]"));
            if !defined.contains(&location.as_str()) {
                self.push(
                    key,
                    format!(
                        "names unknown location {location:?}; defined: {}",
                        quoted(&defined)
                    ),
                );
            } else if !seen.insert(location) {
                self.push(key, format!("names {location:?} twice"));
            }
        }
        self.stock(&at("stock"), &common.stock);
        self.price(&at("price"), &common.price);
        for (name, text) in [
            ("orders", common.schedule.orders()),
            ("reconcile", common.schedule.reconcile()),
        ] {
            if let Err(reason) = parse_schedule(text) {
                self.push(
                    at(&format!("schedule.{name}")),
                    format!(
                        "must be a cron schedule such as \"*/5 * * * *\", got {text:?}: {reason}"
                    ),
                );
            }
        }
        if common.poll_interval_secs == 0 {
            self.push(at("poll_interval_secs"), "must be at least 1, got 0");
        }
        self.limits(&at("limits"), &common.limits);
    }

    fn rules(&mut self, config: &Config) {
        let channel_ids: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        for (i, rule) in config.rules.iter().enumerate() {
            let at = |key: &str| format!("rules[{i}].{key}");
            let matcher = &rule.matcher;
            let valid = match matcher.split_once(':') {
                Some(("sku" | "tag", pattern)) => !pattern.trim().is_empty(),
                _ => false,
            };
            if !valid {
                self.push(
                    at("match"),
                    format!("must be \"sku:GLOB\" (e.g. \"sku:CLEAR-*\") or \"tag:NAME\", got {matcher:?}"),
                );
            }
            match &rule.channels {
                Some(ids) if ids.is_empty() => self.push(
                    at("channels"),
                    "must name at least one channel (omit the key for all channels)",
                ),
                Some(ids) => {
                    for (j, cid) in ids.iter().enumerate() {
                        if !channel_ids.contains(&cid.as_str()) {
                            self.push(
                                at(&format!("channels[{j}]")),
                                format!(
                                    "names unknown channel {cid:?}; defined: {}",
                                    quoted(&channel_ids)
                                ),
                            );
                        }
                    }
                }
                None => {}
            }
            let stock = rule.stock.as_ref().filter(|s| !s.is_empty());
            let price = rule.price.as_ref().filter(|p| !p.is_empty());
            if stock.is_none() && price.is_none() {
                self.push(
                    format!("rules[{i}]"),
                    "sets no stock or price knob, so it would change nothing",
                );
            }
            if let Some(stock) = stock {
                self.stock(&at("stock"), stock);
            }
            if let Some(price) = price {
                self.price(&at("price"), price);
            }
        }
    }

    fn stock(&mut self, at: &str, s: &StockKnobsConfig) {
        for (name, value) in [
            ("buffer", s.buffer),
            ("max", s.max),
            ("min_shown", s.min_shown),
        ] {
            if let Some(n) = value.filter(|n| *n < 0) {
                self.push(
                    format!("{at}.{name}"),
                    format!("must be 0 or more, got {n}"),
                );
            }
        }
        if let Some(p) = s.percent.filter(|p| *p > 100) {
            self.push(format!("{at}.percent"), format!("must be 0–100, got {p}"));
        }
        if let (Some(min), Some(max)) = (s.min_shown, s.max)
            && min > max
            && max >= 0
        {
            self.push(
                format!("{at}.min_shown"),
                format!("must not exceed max ({max}), got {min}"),
            );
        }
    }

    fn price(&mut self, at: &str, p: &PriceKnobsConfig) {
        let parsed =
            |d: &Option<DecimalInput>| d.as_ref().map(|d| (d.as_text().to_owned(), d.parse()));
        if let Some((text, value)) = parsed(&p.multiplier) {
            match value {
                Ok(d) if d.is_positive() => {}
                Ok(_) => self.push(
                    format!("{at}.multiplier"),
                    format!("must be greater than 0, got {text}"),
                ),
                Err(e) => self.decimal_problem(&format!("{at}.multiplier"), &text, e),
            }
        }
        if let Some((text, Err(e))) = parsed(&p.add) {
            self.decimal_problem(&format!("{at}.add"), &text, e);
        }
        if let Some((text, value)) = parsed(&p.round_to) {
            match value {
                Ok(d) if d.is_positive() && d.is_less_than(MAX_ROUND_TO) => {}
                Ok(_) => self.push(
                    format!("{at}.round_to"),
                    format!("must be greater than 0 and less than {MAX_ROUND_TO} (e.g. \"0.99\"), got {text}"),
                ),
                Err(e) => self.decimal_problem(&format!("{at}.round_to"), &text, e),
            }
        }
    }

    fn decimal_problem(&mut self, key: &str, text: &str, e: DecimalError) {
        self.push(
            key,
            format!("{e} (at most {MAX_FRACTION_DIGITS} decimals), got {text:?}"),
        );
    }

    fn limits(&mut self, at: &str, l: &LimitsConfig) {
        if let Some(rate) = l.rate_per_sec.filter(|r| !(r.is_finite() && *r > 0.0)) {
            self.push(
                format!("{at}.rate_per_sec"),
                format!("must be greater than 0, got {rate}"),
            );
        }
        for (name, value) in [("burst", l.burst), ("batch_size", l.batch_size)] {
            if value == Some(0) {
                self.push(format!("{at}.{name}"), "must be at least 1, got 0");
            }
        }
        if l.timeout_secs == Some(0) {
            self.push(format!("{at}.timeout_secs"), "must be at least 1, got 0");
        }
        if l.retry_max_secs == Some(0) {
            self.push(format!("{at}.retry_max_secs"), "must be at least 1, got 0");
        }
    }

    fn url(&mut self, key: &str, url: &str) {
        if let Some(message) = url_problem(url) {
            self.push(key, message);
        }
    }

    fn product_type(&mut self, key: &str, value: &str) {
        let ok = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            self.push(
                key,
                format!("must be an Amazon product type such as \"PRODUCT\" (A-Z, 0-9, _), got {value:?}"),
            );
        }
    }

    fn required(&mut self, key: &str, value: &str) {
        if value.trim().is_empty() {
            self.push(key, "must not be empty");
        }
    }

    /// Like [`Validator::required`]; never shows the value.
    fn secret(&mut self, key: &str, value: &Secret) {
        if value.expose().trim().is_empty() {
            self.push(
                key,
                "must not be empty (if it comes from ${VAR}, that variable is empty)",
            );
        }
    }
}

/// Why `url` is not an absolute http(s) URL without credentials; `None` when it is.
fn url_problem(url: &str) -> Option<String> {
    let invalid = || {
        Some(format!(
            "must be an absolute http:// or https:// URL, got {url:?}"
        ))
    };
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return invalid();
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Some(
            "must not contain a user name or password; put credentials in the channel's secret keys"
                .to_owned(),
        );
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, Some(port))
        }
        _ => (authority, None),
    };
    let bad_port = port.is_some_and(|p| p.parse::<u16>().is_err());
    if host.is_empty() || bad_port || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid();
    }
    None
}

/// `en-US`, `de-DE`, `fr`: a primary language subtag, optionally a region.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or("");
    let region = parts.next();
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
        && parts.next().is_none()
}

fn quoted(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for good in [
            "https://api.ebay.com",
            "http://127.0.0.1:18080/ebay",
            "https://graph.facebook.com/v25.0",
            "http://[::1]:3000/admin-api",
            "https://shop.example.com/?x=1",
        ] {
            assert_eq!(url_problem(good), None, "{good}");
        }
        for bad in [
            "api.ebay.com",
            "ftp://x",
            "https://",
            "https:///x",
            "http://x:port",
            "https://a b",
        ] {
            assert!(url_problem(bad).unwrap().contains("absolute"), "{bad}");
        }
        let creds = url_problem("https://user:pw@x.com").unwrap();
        assert!(!creds.contains("pw"), "{creds}");
    }

    #[test]
    fn language_tags() {
        assert!(is_language_tag("en-US"));
        assert!(is_language_tag("de"));
        assert!(!is_language_tag("en_US"));
        assert!(!is_language_tag("EN-us"));
        assert!(!is_language_tag(""));
    }
}
