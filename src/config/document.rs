//! TOML text → [`Config`], keeping the position of every error.
//!
//! The document is parsed once into toml's spanned tree ([`DeTable`]). Everything but `channels`
//! is deserialized straight from it. Each channel section is handled in two steps, because serde's
//! internally tagged enums buffer the section and report errors at its `[channels.x]` header:
//!
//! 1. read `type` and pick the [`ChannelKind`];
//! 2. check every key against that kind's keys (an unknown key is reported at its own line with
//!    the keys the type accepts and the closest one), then split the keys between the
//!    kind's struct and [`ChannelCommon`] and deserialize each from its spanned half.
//!
//! All sections are read even after an error, so one run reports every broken section. serde
//! messages get the key path they are about, found by span in a [`KeyIndex`] of the document.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};

use super::channel::{ChannelCommon, ChannelConfig, ChannelKind};
use super::model::{
    Config, DaemonConfig, LocationConfig, RuleConfig, ScheduleConfig, StockKnobsConfig,
};

/// An error at a byte range of the parsed (interpolated) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// Bytes of the interpolated text the error is about, when the parser knows.
    pub(crate) span: Option<Range<usize>>,
    /// The message, already naming the key or table.
    pub(crate) message: String,
}

/// A parsed config and the index that locates its keys.
pub(crate) struct Parsed {
    /// The config, defaults filled in, not yet validated.
    pub(crate) config: Config,
    /// Where each key is, to locate the semantic pass's problems.
    pub(crate) index: KeyIndex,
}

/// The top level minus `channels`, which [`Reader::read_channel`] reads section by section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopLevel {
    /// [`Config::daemon`].
    #[serde(default)]
    daemon: DaemonConfig,
    /// [`Config::locations`].
    #[serde(default)]
    locations: Vec<LocationConfig>,
    /// Removed from the tree before deserializing; declared so a misspelt top-level key's error
    /// lists `channels` among the valid ones.
    #[serde(default, rename = "channels")]
    _channels: Option<serde::de::IgnoredAny>,
    /// [`Config::rules`].
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

/// Parses `text` (already interpolated); on failure, every error found.
pub(crate) fn parse_document(text: &str) -> Result<Parsed, Vec<Located>> {
    let document = DeTable::parse(text).map_err(|e| {
        vec![Located {
            span: e.span(),
            message: e.message().trim_end().to_owned(),
        }]
    })?;
    let index = KeyIndex::build(document.get_ref());
    let mut reader = Reader {
        index: &index,
        kinds: HashMap::new(),
        errors: Vec::new(),
    };

    let root_span = document.span();
    let mut root = document.into_inner();
    let channels = root.remove("channels");
    let top = TopLevel::deserialize(toml::de::Deserializer::from(Spanned::new(root_span, root)))
        .map_err(|e| reader.serde_error(&e))
        .ok();
    // What a channel naming no locations sells from: each defined id once, in file order (a
    // duplicate id is the semantic pass's to report, not to repeat in every channel).
    let mut location_ids: Vec<String> = Vec::new();
    for location in top.iter().flat_map(|t| &t.locations) {
        if !location_ids.contains(&location.id) {
            location_ids.push(location.id.clone());
        }
    }

    let mut parsed_channels = BTreeMap::new();
    if let Some(channels) = channels {
        let span = channels.span();
        match channels.into_inner() {
            DeValue::Table(table) => {
                for (id, section) in table {
                    if let Some((id, channel)) = reader.read_channel(id, section, &location_ids) {
                        parsed_channels.insert(id, channel);
                    }
                }
            }
            other => reader.error(
                Some(span),
                format!(
                    "`channels` must be a table of sections such as [channels.ebay], found {}",
                    article(other.type_str())
                ),
            ),
        }
    }

    let errors = reader.errors;
    match top {
        Some(top) if errors.is_empty() => Ok(Parsed {
            config: Config {
                daemon: top.daemon,
                locations: top.locations,
                channels: parsed_channels,
                rules: top.rules,
            },
            index,
        }),
        _ => Err(errors),
    }
}

/// Collects every error of one document while its parts are read.
struct Reader<'a> {
    /// Locates serde errors by span.
    index: &'a KeyIndex,
    /// Each channel's kind once known, to name it in messages.
    kinds: HashMap<String, ChannelKind>,
    /// Everything wrong so far, in the order found.
    errors: Vec<Located>,
}

impl Reader<'_> {
    fn error(&mut self, span: Option<Range<usize>>, message: String) {
        self.errors.push(Located { span, message });
    }

    /// Records a serde error, rewritten to name the key or table it is about.
    fn serde_error(&mut self, e: &toml::de::Error) {
        let message = self.explain(e.span(), e.message().trim_end());
        self.error(e.span(), message);
    }

    fn explain(&self, span: Option<Range<usize>>, message: &str) -> String {
        let Some(span) = span else {
            return message.to_owned();
        };
        if let Some((name, candidates)) = unknown_name(message, "unknown field `") {
            let table = self.index.key_path(&span).map(|p| parent(p).to_owned());
            let place = table
                .map(|t| format!(" in {}", self.table_label(&t)))
                .unwrap_or_default();
            return unknown_message("field", &name, &place, &candidates);
        }
        if let Some((name, candidates)) = unknown_name(message, "unknown variant `") {
            let place = match self.index.value_path(&span) {
                Some(p) => format!(" for {p}"),
                None => String::new(),
            };
            return unknown_message("value", &name, &place, &candidates);
        }
        if message.starts_with("missing field `")
            && let Some(path) = self.index.value_path(&span)
        {
            return format!("{message} in {}", self.table_label(path));
        }
        match self
            .index
            .value_path(&span)
            .or_else(|| self.index.key_path(&span))
        {
            Some(path) => format!("{path}: {message}"),
            None => message.to_owned(),
        }
    }

    /// `[channels.ebay] (type "ebay")`, `[daemon]`, `rules[0].stock`, `the top level`.
    fn table_label(&self, path: &str) -> String {
        if path.is_empty() {
            return "the top level".to_owned();
        }
        if path.contains('[') {
            return format!("`{path}`");
        }
        if let Some(id) = path.strip_prefix("channels.")
            && let Some(kind) = self.kinds.get(id)
        {
            return format!("[{path}] (type \"{kind}\")");
        }
        format!("[{path}]")
    }

    /// Reads one `[channels.<id>]` section; `None` after recording its errors.
    fn read_channel(
        &mut self,
        id: Spanned<DeString<'_>>,
        section: Spanned<DeValue<'_>>,
        location_ids: &[String],
    ) -> Option<(String, ChannelConfig)> {
        let id = id.into_inner().into_owned();
        let span = section.span();
        let types = quoted_list(ChannelKind::ALL.iter().map(|k| k.as_str()));
        let mut table = match section.into_inner() {
            DeValue::Table(table) => table,
            other => {
                self.error(
                    Some(span),
                    format!(
                        "[channels.{id}] must be a table with a `type` ({types}), found {}",
                        article(other.type_str())
                    ),
                );
                return None;
            }
        };

        let Some(type_value) = table.remove("type") else {
            self.error(
                Some(span),
                format!("missing field `type` in [channels.{id}]; expected one of {types}"),
            );
            return None;
        };
        let type_span = type_value.span();
        let Some(type_name) = type_value.get_ref().as_str() else {
            let found = article(type_value.get_ref().type_str());
            self.error(
                Some(type_span),
                format!(
                    "`type` in [channels.{id}] must be a string, one of {types}; found {found}"
                ),
            );
            return None;
        };
        let Some(kind) = ChannelKind::from_type(type_name) else {
            let names: Vec<&str> = ChannelKind::ALL.iter().map(|k| k.as_str()).collect();
            let hint = did_you_mean(type_name, &names)
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            self.error(
                Some(type_span),
                format!("unknown channel type `{type_name}` in [channels.{id}]; {hint}expected one of {types}"),
            );
            return None;
        };
        self.kinds.insert(id.clone(), kind);

        // Split the keys between the kind's struct and the common one; report strangers here,
        // at their own position, with the whole list of keys this type takes.
        let mut specific = DeTable::new();
        let mut common = DeTable::new();
        let mut unknown = false;
        for (key, value) in table {
            let name: &str = key.get_ref();
            if ChannelCommon::keys().contains(&name) {
                common.insert(key, value);
            } else if kind.specific_keys().contains(&name) {
                specific.insert(key, value);
            } else {
                unknown = true;
                let message = unknown_message(
                    "field",
                    name,
                    &format!(" in {}", self.table_label(&format!("channels.{id}"))),
                    &kind.keys(),
                );
                self.error(Some(key.span()), message);
            }
        }
        if unknown {
            // The typo usually also makes a required key "missing"; saying so would be noise.
            return None;
        }

        let names_locations = common.contains_key("locations");
        let channel = kind
            .deserialize_specific(ValueDeserializer::from(Spanned::new(
                span.clone(),
                DeValue::Table(specific),
            )))
            .map_err(|e| self.serde_error(&e));
        let common = ChannelCommon::deserialize(ValueDeserializer::from(Spanned::new(
            span,
            DeValue::Table(common),
        )))
        .map_err(|e| self.serde_error(&e));
        let (mut channel, mut common) = (channel.ok()?, common.ok()?);

        if !names_locations {
            common.locations = location_ids.to_vec();
        }
        common.stock = common
            .stock
            .merged_over(&StockKnobsConfig::CHANNEL_DEFAULTS);
        let schedule = &mut common.schedule;
        schedule
            .orders
            .get_or_insert_with(|| ScheduleConfig::DEFAULT_ORDERS.to_owned());
        schedule
            .reconcile
            .get_or_insert_with(|| ScheduleConfig::DEFAULT_RECONCILE.to_owned());
        *channel.common_mut() = common;
        normalize(&mut channel);
        Some((id, channel))
    }
}

/// Small clean-ups every consumer would otherwise repeat.
fn normalize(channel: &mut ChannelConfig) {
    // A base URL with a trailing slash would give `//` when the connector appends a path.
    let endpoint = match channel {
        ChannelConfig::Amazon(c) => &mut c.endpoint,
        ChannelConfig::Ebay(c) => &mut c.endpoint,
        ChannelConfig::Facebook(c) => &mut c.endpoint,
        ChannelConfig::Shopify(c) => &mut c.endpoint,
        ChannelConfig::WooCommerce(c) => &mut c.endpoint,
        ChannelConfig::Vendure(c) => &mut c.endpoint,
    };
    let trimmed_len = endpoint.trim_end_matches('/').len();
    if trimmed_len > "https://".len() {
        endpoint.truncate(trimmed_len);
    }
    if let ChannelConfig::Vendure(c) = channel
        && c.channel_token.as_deref() == Some("")
    {
        c.channel_token = None;
    }
}

/// `"table"` → `"a table"`, `"array"` → `"an array"`.
fn article(type_str: &str) -> String {
    let an = type_str.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {type_str}", if an { "an" } else { "a" })
}

/// Parses serde's "unknown field `x`, expected one of `a`, `b`" (or "… expected `a` or `b`",
/// "… there are no fields") into the name and the candidates.
fn unknown_name(message: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(prefix)?;
    let (name, expected) = rest.split_once('`')?;
    let candidates = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((name.to_owned(), candidates))
}

fn unknown_message<S: AsRef<str>>(what: &str, name: &str, place: &str, candidates: &[S]) -> String {
    let hint = did_you_mean(name, candidates)
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default();
    let expected = match candidates {
        [] => "this table takes no keys".to_owned(),
        [one] => format!("expected `{}`", one.as_ref()),
        many => format!(
            "expected one of {}",
            quoted_list(many.iter().map(AsRef::as_ref))
        ),
    };
    format!("unknown {what} `{name}`{place}; {hint}{expected}")
}

fn quoted_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidate closest to `name` when it is close enough to be a typo.
pub(crate) fn did_you_mean<'a, S: AsRef<str>>(name: &str, candidates: &'a [S]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| c.as_ref())
        .map(|c| (edit_distance(&name, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).clamp(1, 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance by characters, counting a swap of two neighbours as one edit (optimal string
/// alignment): `ebya` is one edit from `ebay`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j] = distance between a[..i] and b[..j]
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The path of the table a key path is in: `channels.ebay.stock.percnt` → `channels.ebay.stock`.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// Every key path of the document with the spans of its key and value, both ways.
///
/// Paths are dotted, with array elements as `[i]`: `channels.ebay.stock.percent`,
/// `rules[0].match`. The semantic pass names keys the same way, so its problems can be located.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    /// Path → span of its key (of the element, for array items).
    spans: HashMap<String, Range<usize>>,
    /// Span of a key → its path.
    by_key: HashMap<(usize, usize), String>,
    /// Span of a value → its path.
    by_value: HashMap<(usize, usize), String>,
}

impl KeyIndex {
    fn build(root: &DeTable<'_>) -> KeyIndex {
        let mut index = KeyIndex::default();
        index.add_table(root, "");
        index
    }

    fn add_table(&mut self, table: &DeTable<'_>, prefix: &str) {
        for (key, value) in table.iter() {
            let path = if prefix.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{prefix}.{}", key.get_ref())
            };
            let key_span = key.span();
            self.by_key
                .insert((key_span.start, key_span.end), path.clone());
            self.spans.insert(path.clone(), key_span);
            self.add_value(value, path);
        }
    }

    fn add_value(&mut self, value: &Spanned<DeValue<'_>>, path: String) {
        let span = value.span();
        self.by_value
            .entry((span.start, span.end))
            .or_insert_with(|| path.clone());
        match value.get_ref() {
            DeValue::Table(table) => self.add_table(table, &path),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.spans
                        .entry(item_path.clone())
                        .or_insert_with(|| item.span());
                    self.add_value(item, item_path);
                }
            }
            _ => {}
        }
    }

    fn key_path(&self, span: &Range<usize>) -> Option<&str> {
        self.by_key.get(&(span.start, span.end)).map(String::as_str)
    }

    fn value_path(&self, span: &Range<usize>) -> Option<&str> {
        self.by_value
            .get(&(span.start, span.end))
            .map(String::as_str)
    }

    /// Where `path` is written, or its nearest written ancestor (a defaulted key has no position
    /// of its own: point at its table).
    pub(crate) fn span_of(&self, mut path: &str) -> Option<Range<usize>> {
        loop {
            if let Some(span) = self.spans.get(path) {
                return Some(span.clone());
            }
            if path.is_empty() {
                return None;
            }
            path = parent(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<(String, String)> {
        let errors = match parse_document(text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(errors) => errors,
        };
        errors
            .into_iter()
            .map(|e| {
                (
                    e.span.map(|s| text[s].to_owned()).unwrap_or_default(),
                    e.message,
                )
            })
            .collect()
    }

    const EBAY: &str = r#"
[[locations]]
id = "main"

[channels.ebay]
type = "ebay"
client_id = "id"
client_secret = "secret"
refresh_token = "token"
marketplace_id = "EBAY_US"
merchant_location_key = "main"
policies = { fulfillment = "f", payment = "p", return = "r" }
"#;

    #[test]
    fn reads_a_channel_and_fills_in_its_defaults() {
        let parsed = parse_document(EBAY).unwrap();
        let ChannelConfig::Ebay(ebay) = &parsed.config.channels["ebay"] else {
            panic!()
        };
        assert_eq!(ebay.endpoint, "https://api.ebay.com");
        assert_eq!(ebay.policies.return_policy, "r");
        assert_eq!(ebay.content_language, "en-US");
        assert_eq!(ebay.common.locations, ["main"]);
        assert_eq!(ebay.common.stock, StockKnobsConfig::CHANNEL_DEFAULTS);
        assert_eq!(ebay.common.schedule.orders.as_deref(), Some("* * * * *"));
        assert_eq!(ebay.common.poll_interval_secs, 30);
        assert!(ebay.common.enabled);
    }

    #[test]
    fn an_unknown_key_is_reported_at_the_key_with_the_type() {
        let text = EBAY.replace("marketplace_id", "marketplace_idd");
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "marketplace_idd");
        assert!(
            errors[0].1.starts_with(
                "unknown field `marketplace_idd` in [channels.ebay] (type \"ebay\"); did you mean \
                 `marketplace_id`? expected one of `endpoint`,"
            ),
            "{}",
            errors[0].1
        );
        assert!(
            errors[0].1.contains("`poll_interval_secs`"),
            "common keys are listed too"
        );
    }

    #[test]
    fn nested_errors_name_their_table_and_key() {
        let errors = errors(&format!("{EBAY}stock = {{ percnt = 1 }}\n"));
        assert_eq!(errors[0].0, "percnt");
        assert_eq!(
            errors[0].1,
            "unknown field `percnt` in [channels.ebay.stock]; did you mean `percent`? expected \
             one of `buffer`, `percent`, `max`, `min_shown`"
        );
        assert_eq!(errors.len(), 1, "{errors:?}");

        let errors = super::tests::errors(&format!("{EBAY}enabled = \"yes\"\n"));
        assert_eq!(errors[0].0, "\"yes\"");
        assert_eq!(
            errors[0].1,
            "channels.ebay.enabled: invalid type: string \"yes\", expected a boolean"
        );
    }

    #[test]
    fn a_missing_key_names_the_section() {
        let errors = errors(&EBAY.replace("merchant_location_key = \"main\"\n", ""));
        assert_eq!(errors[0].0, "[channels.ebay]");
        assert_eq!(
            errors[0].1,
            "missing field `merchant_location_key` in [channels.ebay] (type \"ebay\")"
        );
    }

    #[test]
    fn type_problems_are_reported_at_the_type() {
        let errors = errors(&EBAY.replace("type = \"ebay\"", "type = \"ebya\""));
        assert_eq!(errors[0].0, "\"ebya\"");
        assert!(errors[0].1.starts_with("unknown channel type `ebya` in [channels.ebay]; did you mean `ebay`? expected one of `amazon`, `ebay`"), "{}", errors[0].1);

        let errors = super::tests::errors(&EBAY.replace("type = \"ebay\"", "type = 3"));
        assert!(errors[0].1.contains("must be a string"), "{errors:?}");

        let errors = super::tests::errors(&EBAY.replace("type = \"ebay\"\n", ""));
        assert_eq!(errors[0].0, "[channels.ebay]");
        assert!(
            errors[0].1.starts_with("missing field `type`"),
            "{errors:?}"
        );
    }

    #[test]
    fn every_broken_section_is_reported() {
        let text = format!(
            "[daemon]\nlissten = \"x\"\n{}\n[channels.other]\ntype = \"woocommerce\"\nendpont = \"x\"\n",
            EBAY.replace("client_id", "clientid")
        );
        let errors = errors(&text);
        let spans: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(spans, ["lissten", "clientid", "endpont"], "{errors:?}");
        assert!(
            errors[0]
                .1
                .starts_with("unknown field `lissten` in [daemon]; did you mean `listen`?")
        );
    }

    #[test]
    fn top_level_typos_list_channels_among_the_keys() {
        let errors = errors("[chanels.ebay]\ntype = \"ebay\"\n");
        assert_eq!(
            errors[0].1,
            "unknown field `chanels` in the top level; did you mean `channels`? expected one of \
             `daemon`, `locations`, `channels`, `rules`"
        );
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let errors = errors("[daemon]\nlisten = \"127.0.0.1:1\n");
        assert!(!errors[0].1.is_empty());
    }

    #[test]
    fn the_index_locates_paths_and_falls_back_to_ancestors() {
        let text = "[[rules]]\nmatch = \"sku:A*\"\nstock = { buffer = 1 }\n";
        let parsed = parse_document(text).unwrap();
        let at = |p: &str| parsed.index.span_of(p).map(|s| &text[s]);
        assert_eq!(at("rules[0].stock.buffer"), Some("buffer"));
        assert_eq!(at("rules[0].match"), Some("match"));
        assert_eq!(at("rules[0].stock.percent"), Some("stock"));
        assert_eq!(at("daemon.listen"), None);
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(
            did_you_mean("marketplace_idd", &["marketplace_id", "endpoint"]),
            Some("marketplace_id")
        );
        assert_eq!(did_you_mean("Buffer", &["buffer"]), Some("buffer"));
        assert_eq!(did_you_mean("xyz", &["buffer", "max"]), None);
        assert_eq!(did_you_mean("ebya", &["amazon", "ebay"]), Some("ebay"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ebya", "ebay"), 1);
    }
}
