//! The merchant's config file: load → interpolate `${VAR}` → parse (strict, with line numbers) →
//! validate (every problem at once).
//!
//! [`load`] reads a file (bounded, UTF-8) and hands it to [`parse`], which runs the pipeline on
//! text; the daemon's hot reload calls the same function, so an edit is refused with the same
//! messages `omnistock check` prints. The steps, one module each:
//!
//! 1. `interpolate`: `${VAR}` from the environment, inside double-quoted strings only, escaped
//!    so a value cannot break the TOML; every missing variable reported at once.
//! 2. `document`: TOML with spans; each `[channels.<id>]` read in two steps (its `type`, then
//!    its strict struct) so an unknown key is reported at its own line.
//! 3. [`validate()`]: the semantic pass, every problem with its key path and value.
//!
//! Errors are a [`ConfigError`], whose `Display` is the text for the merchant. Secrets are
//! [`Secret`]s, so `{:?}` of a whole [`Config`] is safe to log; [`redacted_summary`] is a shorter
//! view for people.

pub mod channel;
mod decimal;
mod document;
mod error;
mod interpolate;
pub mod model;
mod schedule;
pub mod sensitive;
mod validate;

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

pub use channel::{
    AMAZON_CONDITIONS, AmazonConfig, AmazonProductTypeRule, ChannelCommon, ChannelConfig,
    ChannelKind, EbayConfig, EbayPoliciesConfig, FacebookConfig, LimitsConfig, ShopifyConfig,
    VendureConfig, WooCommerceConfig,
};
pub use decimal::{Decimal, DecimalError, MAX_FRACTION_DIGITS};
pub use error::{ConfigError, Diagnostic, Position, Problem};
pub use model::*;
pub use schedule::parse_schedule;
pub use sensitive::Secret;
pub use validate::{MAX_CHANNEL_ID_CHARS, MIN_ADMIN_TOKEN_CHARS, validate};

/// Largest config file accepted. A real one is a few kilobytes; the bound keeps a wrong path
/// (a log file, `/dev/zero`) from being read into memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads, interpolates from the process environment, parses and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, &|name| std::env::var(name).ok())
}

/// [`load`] with the environment supplied by the caller (tests, `check` with overrides).
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let text = read_text(path)?;
    parse(&text, &path.display().to_string(), env)
}

/// The file's text: at most [`MAX_CONFIG_BYTES`], valid UTF-8.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let origin = path.display().to_string();
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let declared = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::new();
    // Read one byte past the limit so a file that grows (or a device without a size) is caught.
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    let size = declared.max(bytes.len() as u64);
    if size > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            origin,
            size,
            limit: MAX_CONFIG_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..offset]);
        ConfigError::NotUtf8 {
            origin,
            offset,
            position: Position::of_offset(&valid, offset),
        }
    })
}

/// Interpolates, parses and validates config `text`; `origin` names it in messages (the path),
/// `env` looks up `${VAR}`s.
pub fn parse(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let origin = origin.to_owned();

    let interpolated = interpolate::interpolate(text, env).map_err(|issues| {
        let diagnostics = issues
            .into_iter()
            .map(|i| Diagnostic::at(text, Some(i.span), i.message))
            .collect();
        ConfigError::Interpolation {
            origin: origin.clone(),
            diagnostics,
        }
    })?;

    let parsed = document::parse_document(&interpolated.text).map_err(|errors| {
        let mut diagnostics: Vec<Diagnostic> = errors
            .into_iter()
            .map(|e| match e.span {
                Some(span) => {
                    let message = interpolated.redact(&e.message, &span);
                    let original = interpolated.original_offset(span.start, false)
                        ..interpolated.original_offset(span.end, true);
                    Diagnostic::at(text, Some(original), message)
                }
                None => Diagnostic::at(text, None, e.message),
            })
            .collect();
        diagnostics.sort_by_key(|d| d.position);
        ConfigError::Parse {
            origin: origin.clone(),
            diagnostics,
        }
    })?;

    let mut problems = validate(&parsed.config);
    if problems.is_empty() {
        return Ok(parsed.config);
    }
    for problem in &mut problems {
        problem.position = parsed
            .index
            .span_of(&problem.key)
            .map(|span| Position::of_offset(text, interpolated.original_offset(span.start, false)));
    }
    // File order; problems without a position (keys left at their default) last.
    problems.sort_by_key(|p| (p.position.is_none(), p.position));
    Err(ConfigError::Invalid { origin, problems })
}

/// A few lines describing `config` for people (`omnistock check`, the startup log): what runs
/// where, never a secret (only whether one is set).
pub fn redacted_summary(config: &Config) -> String {
    let d = &config.daemon;
    let mut out = String::new();
    let token = if d.admin_token.is_some() {
        "admin token set"
    } else {
        "no admin token"
    };
    let _ = writeln!(out, "database: {}", model::redact_url_password(&d.database));
    let _ = writeln!(out, "listen: {} ({token})", d.listen);
    let locations: Vec<&str> = config.location_ids().collect();
    let _ = writeln!(out, "locations: {}", locations.join(", "));
    let _ = writeln!(out, "channels: {}", config.channels.len());
    for (id, channel) in &config.channels {
        let c = channel.common();
        let state = if c.enabled { "enabled" } else { "disabled" };
        let _ = writeln!(
            out,
            "  {id}: {} {state}, {}",
            channel.kind(),
            channel.endpoint()
        );
        let s = &c.stock;
        let show = |v: Option<i64>| v.map_or("none".to_owned(), |v| v.to_string());
        let _ = writeln!(
            out,
            "    locations {}; stock buffer {}, percent {}, max {}, min_shown {}",
            c.locations.join(", "),
            show(s.buffer),
            s.percent.unwrap_or(100),
            show(s.max),
            show(s.min_shown),
        );
        if !c.price.is_empty() {
            let p = &c.price;
            let show =
                |v: &Option<DecimalInput>| v.as_ref().map_or("-", |d| d.as_text()).to_owned();
            let _ = writeln!(
                out,
                "    price multiplier {}, add {}, round_to {}",
                show(&p.multiplier),
                show(&p.add),
                show(&p.round_to)
            );
        }
        let _ = writeln!(
            out,
            "    orders {:?} + every {}s, reconcile {:?}",
            c.schedule.orders(),
            c.poll_interval_secs,
            c.schedule.reconcile()
        );
    }
    let _ = writeln!(out, "rules: {}", config.rules.len());
    for (i, rule) in config.rules.iter().enumerate() {
        let on = rule
            .channels
            .as_ref()
            .map_or("all channels".to_owned(), |c| c.join(", "));
        let _ = writeln!(out, "  rules[{i}]: {} on {on}", rule.matcher);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap, HashSet};

    use super::channel::struct_keys;
    use super::*;

    /// The example is the merchant's reference and a test fixture (STYLE habit 12).
    const EXAMPLE: &str = include_str!("../../config/omnistock.example.toml");

    fn tables<'a>(values: impl Iterator<Item = &'a toml::Value>) -> Vec<&'a toml::Table> {
        values.filter_map(toml::Value::as_table).collect()
    }

    /// Keys of `keys` that appear in none of `tables`, as `at.key`.
    fn missing(at: &str, keys: &[&str], tables: &[&toml::Table]) -> Vec<String> {
        keys.iter()
            .filter(|k| !tables.iter().any(|t| t.contains_key(**k)))
            .map(|k| format!("{at}.{k}"))
            .collect()
    }

    #[test]
    fn the_example_shows_every_key_the_code_accepts() {
        let doc: toml::Table = toml::from_str(EXAMPLE).unwrap();
        let channels: Vec<&toml::Table> = tables(doc["channels"].as_table().unwrap().values());
        let rules: Vec<&toml::Table> = tables(doc["rules"].as_array().unwrap().iter());
        let sub = |name: &str| -> Vec<&toml::Table> {
            tables(channels.iter().chain(&rules).filter_map(|t| t.get(name)))
        };

        let mut missing_keys = Vec::new();
        missing_keys.extend(missing(
            "",
            &["daemon", "locations", "channels", "rules"],
            &[&doc],
        ));
        missing_keys.extend(missing(
            "daemon",
            struct_keys::<DaemonConfig>(),
            &tables(doc.get("daemon").into_iter()),
        ));
        missing_keys.extend(missing(
            "locations",
            struct_keys::<LocationConfig>(),
            &tables(doc["locations"].as_array().unwrap().iter()),
        ));
        missing_keys.extend(missing("rules", struct_keys::<RuleConfig>(), &rules));
        missing_keys.extend(missing("channels.*", ChannelCommon::keys(), &channels));
        for kind in ChannelKind::ALL {
            let of_kind: Vec<&toml::Table> = channels
                .iter()
                .copied()
                .filter(|t| t.get("type").and_then(|v| v.as_str()) == Some(kind.as_str()))
                .collect();
            assert!(!of_kind.is_empty(), "the example has no {kind} channel");
            missing_keys.extend(missing(kind.as_str(), kind.specific_keys(), &of_kind));
        }
        missing_keys.extend(missing(
            "stock",
            struct_keys::<StockKnobsConfig>(),
            &sub("stock"),
        ));
        missing_keys.extend(missing(
            "price",
            struct_keys::<PriceKnobsConfig>(),
            &sub("price"),
        ));
        missing_keys.extend(missing(
            "schedule",
            struct_keys::<ScheduleConfig>(),
            &sub("schedule"),
        ));
        missing_keys.extend(missing(
            "limits",
            struct_keys::<LimitsConfig>(),
            &sub("limits"),
        ));
        missing_keys.extend(missing(
            "policies",
            struct_keys::<EbayPoliciesConfig>(),
            &sub("policies"),
        ));
        assert!(
            missing_keys.is_empty(),
            "add these keys to the example: {missing_keys:?}"
        );
    }

    #[test]
    fn every_key_in_the_example_is_explained_the_first_time_it_appears() {
        let doc: toml::Table = toml::from_str(EXAMPLE).unwrap();
        let kinds: HashMap<&str, &str> = doc["channels"]
            .as_table()
            .unwrap()
            .iter()
            .map(|(id, t)| (id.as_str(), t["type"].as_str().unwrap()))
            .collect();
        let lines: Vec<&str> = EXAMPLE.lines().map(str::trim).collect();
        let is_key = |l: &str| !l.is_empty() && !l.starts_with('#') && !l.starts_with('[');
        let mut seen = HashSet::new();
        let mut section = String::new();
        let mut undocumented = BTreeSet::new();
        for (i, line) in lines.iter().enumerate() {
            if let Some(header) = line.strip_prefix('[') {
                let path = header.trim_matches(['[', ']']);
                section = match path.split('.').collect::<Vec<_>>()[..] {
                    ["channels", id] => format!("channels:{}", kinds[id]),
                    // A sub-table of a channel is a common key written another way.
                    // (`=` marks a section whose keys all count as that one key.)
                    ["channels", _, sub] => format!("=channels:common.{sub}"),
                    _ => path.to_owned(),
                };
                continue;
            }
            if !is_key(line) {
                continue;
            }
            let key = line.split('=').next().unwrap().trim();
            let identity = if let Some(whole) = section.strip_prefix('=') {
                whole.to_owned()
            } else if section.starts_with("channels:")
                && (key == "type" || ChannelCommon::keys().contains(&key))
            {
                format!("channels:common.{key}")
            } else {
                format!("{section}.{key}")
            };
            if !seen.insert(identity.clone()) {
                continue;
            }
            // A comment at the end of the line or right above it; or, for keys explained
            // together, a comment above the group that names the key.
            let run = lines[..i].iter().rev().take_while(|l| is_key(l)).count();
            let comment: Vec<&str> = lines[..i - run]
                .iter()
                .rev()
                .take_while(|l| l.starts_with('#'))
                .copied()
                .collect();
            let documented = line.contains(" # ")
                || (run == 0 && !comment.is_empty())
                || comment.iter().any(|c| c.contains(key));
            if !documented {
                undocumented.insert(format!("line {}: {identity}", i + 1));
            }
        }
        assert!(
            undocumented.is_empty(),
            "explain these keys in the example: {undocumented:?}"
        );
    }

    #[test]
    fn a_summary_names_channels_but_no_secret() {
        let config = parse(EXAMPLE, "example", &|name| Some(format!("hidden-{name}"))).unwrap();
        let summary = redacted_summary(&config);
        assert!(
            summary
                .contains("  amazon_us: amazon enabled, https://sellingpartnerapi-na.amazon.com"),
            "{summary}"
        );
        assert!(
            summary.contains("  shop_b2b: shopify disabled"),
            "{summary}"
        );
        assert!(
            summary.contains("rules[0]: sku:CLEAR-* on ebay"),
            "{summary}"
        );
        for secret in [
            "hidden-AMAZON_CLIENT_SECRET",
            "hidden-OMNISTOCK_ADMIN_TOKEN",
            "hidden-WOO_CONSUMER_KEY",
        ] {
            assert!(!summary.contains(secret), "{summary}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let text = "[[locations]]\nid = \"main\"\n";
        let with_bom = parse(&format!("\u{feff}{text}"), "bom", &|_| None).unwrap();
        assert_eq!(with_bom, parse(text, "plain", &|_| None).unwrap());
        assert_eq!(with_bom.locations[0].id, "main");
    }
}
