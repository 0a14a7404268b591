//! A listings item and the rules that judge and change its attributes: validation of the
//! attributes the sandbox understands, the requirement sets of a full PUT, JSON-Patch style
//! `add`/`replace`/`merge`/`delete` on top-level attributes, and rendering as the spec's `Item`.
//! Pure logic: no HTTP, no locks.
//!
//! Attributes the fake gives meaning to (everything else is stored and echoed as sent):
//! - `item_name`, `condition_type` — the product facts a `LISTING` submission requires (their
//!   absence is issue 90220, MISSING_ATTRIBUTE); `condition_type` must be one of the spec's
//!   `conditionType` values;
//! - `fulfillment_availability` — entries keyed by `fulfillment_channel_code`; `DEFAULT` is the
//!   merchant-fulfilled quantity (a whole number ≥ 0), other codes (`AMAZON_NA`, …) are FBA;
//! - `purchasable_offer` — entries keyed by `marketplace_id`, `currency`, `audience` (default
//!   `ALL`); `our_price[0].schedule[0].value_with_tax` (a JSON number > 0, at most two decimals) is
//!   the price, in the entry's currency, which must be the marketplace's.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::http::timestamp;
use crate::record::Money;

/// Issue code of a required attribute that was not supplied (Amazon's documented code).
pub const ISSUE_MISSING_ATTRIBUTE: &str = "90220";
/// Issue code of a value the sandbox refuses (a sandbox choice: Amazon's codes for invalid values
/// vary by attribute and are not documented in one place).
pub const ISSUE_INVALID_VALUE: &str = "4000001";
/// Longest SKU Amazon accepts, in characters.
pub const MAX_SKU_CHARS: usize = 40;
/// The merchant-fulfilled channel of `fulfillment_availability`.
pub const DEFAULT_CHANNEL: &str = "DEFAULT";

/// The spec's `ItemSummaryByMarketplace.conditionType` values.
pub(crate) const CONDITION_TYPES: [&str; 13] = [
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

/// The `includedData` values of getListingsItem and searchListingsItems.
pub(crate) const INCLUDED_DATA: [&str; 8] = [
    "summaries",
    "attributes",
    "issues",
    "offers",
    "fulfillmentAvailability",
    "procurement",
    "relationships",
    "productTypes",
];

/// The seller and marketplace every listing belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Account {
    pub seller_id: String,
    pub marketplace_id: String,
    pub currency: String,
}

/// `requirements` of a PUT (or an UPDATE feed message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requirements {
    Listing,
    ProductOnly,
    OfferOnly,
}

impl Requirements {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "LISTING" => Some(Requirements::Listing),
            "LISTING_PRODUCT_ONLY" => Some(Requirements::ProductOnly),
            "LISTING_OFFER_ONLY" => Some(Requirements::OfferOnly),
            _ => None,
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Requirements::Listing => &["item_name", "condition_type"],
            Requirements::ProductOnly => &["item_name"],
            Requirements::OfferOnly => &["condition_type"],
        }
    }
}

/// Issue severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
        }
    }
}

/// An issue about a submission or a listing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Issue {
    pub code: String,
    pub message: String,
    pub severity: Severity,
    pub attribute: Option<String>,
    pub category: &'static str,
    /// Whether the issue keeps the listing from being shown (enforcement LISTING_SUPPRESSED).
    pub suppresses: bool,
}

impl Issue {
    /// 90220: a required attribute is missing.
    pub(crate) fn missing(attribute: &str) -> Issue {
        Issue {
            code: ISSUE_MISSING_ATTRIBUTE.into(),
            message: format!("'{attribute}' is required but not supplied."),
            severity: Severity::Error,
            attribute: Some(attribute.to_owned()),
            category: "MISSING_ATTRIBUTE",
            suppresses: true,
        }
    }

    /// A refused value.
    pub(crate) fn invalid(attribute: Option<&str>, message: impl Into<String>) -> Issue {
        Issue {
            code: ISSUE_INVALID_VALUE.into(),
            message: message.into(),
            severity: Severity::Error,
            attribute: attribute.map(str::to_owned),
            category: "INVALID_ATTRIBUTE",
            suppresses: false,
        }
    }

    /// A `reject_skus` fault's refusal.
    pub(crate) fn rejected(code: u64, message: &str) -> Issue {
        Issue {
            code: code.to_string(),
            message: if message.is_empty() {
                "The submission was rejected.".into()
            } else {
                message.to_owned()
            },
            severity: Severity::Error,
            attribute: None,
            category: "INVALID_ATTRIBUTE",
            suppresses: false,
        }
    }

    pub(crate) fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub(crate) fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    /// The Listings API `Issue` (code, message, severity, categories required).
    pub(crate) fn to_listing_json(&self, marketplace_id: &str) -> Value {
        let mut v = json!({
            "code": self.code,
            "message": self.message,
            "severity": self.severity.as_str(),
            "categories": [self.category],
            "marketplaceIds": [marketplace_id],
        });
        if let Some(a) = &self.attribute {
            v["attributeNames"] = json!([a]);
        }
        if self.suppresses {
            v["enforcements"] = json!({
                "actions": [{"action": "LISTING_SUPPRESSED"}],
                "exemption": {"status": "NOT_EXEMPT"},
            });
        }
        v
    }

    /// A processing-report issue (severity and message required; messageId absent for
    /// feed-level issues).
    pub(crate) fn to_report_json(&self, message_id: Option<u64>, sku: Option<&str>) -> Value {
        let mut v = Map::new();
        if let Some(id) = message_id {
            v.insert("messageId".into(), json!(id));
        }
        if let Some(sku) = sku.filter(|s| !s.is_empty()) {
            v.insert("sku".into(), json!(sku));
        }
        v.insert("code".into(), json!(self.code));
        v.insert("severity".into(), json!(self.severity.as_str()));
        v.insert("message".into(), json!(self.message));
        if let Some(a) = &self.attribute {
            v.insert("attributeName".into(), json!(a));
        }
        Value::Object(v)
    }
}

/// Which data sets to render (`includedData`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Included {
    pub summaries: bool,
    pub attributes: bool,
    pub issues: bool,
    pub offers: bool,
    pub fulfillment_availability: bool,
    pub procurement: bool,
    pub relationships: bool,
    pub product_types: bool,
}

impl Included {
    /// From validated names (see [`INCLUDED_DATA`]); `None` = the default, `summaries`.
    pub(crate) fn from_names(names: Option<&[String]>) -> Included {
        let Some(names) = names.filter(|n| !n.is_empty()) else {
            return Included {
                summaries: true,
                ..Included::default()
            };
        };
        let has = |n: &str| names.iter().any(|x| x == n);
        Included {
            summaries: has("summaries"),
            attributes: has("attributes"),
            issues: has("issues"),
            offers: has("offers"),
            fulfillment_availability: has("fulfillmentAvailability"),
            procurement: has("procurement"),
            relationships: has("relationships"),
            product_types: has("productTypes"),
        }
    }

    /// Everything (control API, snapshots).
    pub(crate) fn all() -> Included {
        Included {
            summaries: true,
            attributes: true,
            issues: true,
            offers: true,
            fulfillment_availability: true,
            procurement: true,
            relationships: true,
            product_types: true,
        }
    }
}

/// One listings item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listing {
    pub sku: String,
    pub asin: String,
    pub product_type: String,
    pub attributes: Map<String, Value>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// The objects of an attribute's array.
fn entries<'a>(
    attrs: &'a Map<String, Value>,
    name: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    attrs
        .get(name)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// Whether an attribute has at least one entry with a non-empty `value`.
fn has_value(attrs: &Map<String, Value>, name: &str) -> bool {
    entries(attrs, name).any(|e| match e.get("value") {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    })
}

/// `"12.99"` → 1299; at most two decimals, digits only.
pub(crate) fn minor_units(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || int.len() > 12
    {
        return None;
    }
    let int: i64 = int.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    Some(int * 100 + frac)
}

/// 1299 → `"12.99"`.
pub(crate) fn format_minor(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// A JSON number > 0 with at most two decimals, as minor units.
fn price_minor(v: &Value) -> Option<i64> {
    if !v.is_number() {
        return None;
    }
    minor_units(&v.to_string()).filter(|m| *m > 0)
}

/// The keys that identify an entry of an attribute (merge and delete match on them).
fn selectors(attribute: &str) -> &'static [&'static str] {
    match attribute {
        "fulfillment_availability" => &["fulfillment_channel_code"],
        "purchasable_offer" => &["marketplace_id", "currency", "audience"],
        _ => &["marketplace_id", "language_tag"],
    }
}

fn selector_value(attribute: &str, key: &str, entry: &Map<String, Value>, acct: &Account) -> Value {
    match entry.get(key) {
        Some(v) => v.clone(),
        None if attribute == "purchasable_offer" => match key {
            "marketplace_id" => json!(acct.marketplace_id),
            "currency" => json!(acct.currency),
            "audience" => json!("ALL"),
            _ => Value::Null,
        },
        None => Value::Null,
    }
}

fn same_entry(
    attribute: &str,
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    acct: &Account,
) -> bool {
    selectors(attribute)
        .iter()
        .all(|k| selector_value(attribute, k, a, acct) == selector_value(attribute, k, b, acct))
}

/// Checks one attribute's value; empty when acceptable.
pub(crate) fn validate_attribute(name: &str, value: &Value, acct: &Account) -> Vec<Issue> {
    let mut issues = Vec::new();
    let Some(items) = value.as_array() else {
        return vec![Issue::invalid(
            Some(name),
            format!("The value of '{name}' must be an array of objects."),
        )];
    };
    if items.iter().any(|i| !i.is_object()) {
        return vec![Issue::invalid(
            Some(name),
            format!("The value of '{name}' must be an array of objects."),
        )];
    }
    let objects = items.iter().filter_map(Value::as_object);
    match name {
        "fulfillment_availability" => {
            for e in objects {
                let code = e.get("fulfillment_channel_code").and_then(Value::as_str);
                if code.is_none_or(|c| c.trim().is_empty()) {
                    issues.push(Issue::invalid(
                        Some(name),
                        "'fulfillment_channel_code' is required for each 'fulfillment_availability' entry.",
                    ));
                }
                if let Some(q) = e.get("quantity")
                    && q.as_u64().and_then(|n| u32::try_from(n).ok()).is_none()
                {
                    issues.push(Issue::invalid(
                        Some(name),
                        format!("The value {q} for 'fulfillment_availability.quantity' is invalid; it must be a whole number 0 or more."),
                    ));
                }
            }
        }
        "purchasable_offer" => {
            for e in objects {
                if let Some(m) = e.get("marketplace_id")
                    && m.as_str() != Some(acct.marketplace_id.as_str())
                {
                    issues.push(Issue::invalid(
                        Some(name),
                        format!("The value {m} for 'purchasable_offer.marketplace_id' does not match the marketplace {}.", acct.marketplace_id),
                    ));
                }
                if let Some(c) = e.get("currency")
                    && c.as_str() != Some(acct.currency.as_str())
                {
                    issues.push(Issue::invalid(
                        Some(name),
                        format!("The value {c} for 'purchasable_offer.currency' is invalid; the marketplace's currency is {}.", acct.currency),
                    ));
                }
                if let Some(prices) = e.get("our_price") {
                    let ok = prices.as_array().is_some_and(|ps| {
                        !ps.is_empty()
                            && ps.iter().all(|p| {
                                p.get("schedule")
                                    .and_then(Value::as_array)
                                    .is_some_and(|s| {
                                        !s.is_empty()
                                            && s.iter().all(|x| {
                                                x.get("value_with_tax")
                                                    .and_then(price_minor)
                                                    .is_some()
                                            })
                                    })
                            })
                    });
                    if !ok {
                        issues.push(Issue::invalid(
                            Some("purchasable_offer.our_price"),
                            "'purchasable_offer.our_price' must be [{\"schedule\":[{\"value_with_tax\":<number greater than 0 with at most 2 decimals>}]}].",
                        ));
                    }
                }
            }
        }
        "condition_type" => {
            for e in objects {
                let ok = e
                    .get("value")
                    .and_then(Value::as_str)
                    .is_some_and(|v| CONDITION_TYPES.contains(&v));
                if !ok {
                    issues.push(Issue::invalid(
                        Some(name),
                        format!(
                            "The value {} for 'condition_type' is invalid; allowed: {}.",
                            e.get("value").unwrap_or(&Value::Null),
                            CONDITION_TYPES.join(", ")
                        ),
                    ));
                }
            }
        }
        "item_name" => {
            for e in objects {
                if e.get("value")
                    .and_then(Value::as_str)
                    .is_none_or(|v| v.trim().is_empty())
                {
                    issues.push(Issue::invalid(
                        Some(name),
                        "'item_name' must have a non-empty string 'value'.",
                    ));
                }
            }
        }
        _ => {}
    }
    issues
}

/// The 90220 issues of a full submission with these requirements.
pub(crate) fn missing_required(attrs: &Map<String, Value>, req: Requirements) -> Vec<Issue> {
    req.required()
        .iter()
        .filter(|a| !has_value(attrs, a))
        .map(|a| Issue::missing(a))
        .collect()
}

/// A patch operation (`PatchOperation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchOp {
    Add,
    Replace,
    Merge,
    Delete,
}

/// One parsed patch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Patch {
    pub op: PatchOp,
    pub path: String,
    pub value: Option<Vec<Map<String, Value>>>,
}

/// Parses `patches` as the request schema defines it (array, minItems 1, each `{op, path,
/// value?}` with `op` in add|replace|merge|delete and `value` an array of objects). The error is a
/// message for a 400 (API) or a message-level issue (feed).
pub(crate) fn parse_patches(v: &Value) -> Result<Vec<Patch>, String> {
    let Some(items) = v.as_array() else {
        return Err("'patches' must be an array.".into());
    };
    if items.is_empty() {
        return Err("'patches' must contain at least one patch operation.".into());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let op = match p.get("op").and_then(Value::as_str) {
                Some("add") => PatchOp::Add,
                Some("replace") => PatchOp::Replace,
                Some("merge") => PatchOp::Merge,
                Some("delete") => PatchOp::Delete,
                _ => {
                    return Err(format!(
                        "patches[{i}].op must be one of add, replace, merge, delete."
                    ));
                }
            };
            let path = p
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("patches[{i}].path is required and must be a string."))?
                .to_owned();
            let value = match p.get("value") {
                None | Some(Value::Null) => None,
                Some(Value::Array(vs)) => Some(
                    vs.iter()
                        .map(|x| x.as_object().cloned())
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| {
                            format!("patches[{i}].value must be an array of objects.")
                        })?,
                ),
                Some(_) => return Err(format!("patches[{i}].value must be an array of objects.")),
            };
            Ok(Patch { op, path, value })
        })
        .collect()
}

/// Applies patches to `attrs`; returns the attribute names touched, or the issues that make the
/// submission INVALID (nothing is applied then — the caller works on a copy).
pub(crate) fn apply_patches(
    attrs: &mut Map<String, Value>,
    patches: &[Patch],
    acct: &Account,
) -> Result<BTreeSet<String>, Vec<Issue>> {
    let mut touched = BTreeSet::new();
    let mut issues = Vec::new();
    for p in patches {
        let name = match p.path.strip_prefix("/attributes/") {
            Some(n) if !n.is_empty() && !n.contains('/') => n.to_owned(),
            _ => {
                issues.push(Issue::invalid(
                    None,
                    format!(
                        "The patch path '{}' is invalid; only top-level attributes ('/attributes/<name>') can be patched.",
                        p.path
                    ),
                ));
                continue;
            }
        };
        let values = p.value.clone().unwrap_or_default();
        match p.op {
            PatchOp::Add | PatchOp::Replace => {
                if p.value.is_none() {
                    issues.push(Issue::invalid(
                        Some(&name),
                        format!(
                            "A 'value' is required to {} '{name}'.",
                            if p.op == PatchOp::Add {
                                "add"
                            } else {
                                "replace"
                            }
                        ),
                    ));
                    continue;
                }
                attrs.insert(
                    name.clone(),
                    Value::Array(values.into_iter().map(Value::Object).collect()),
                );
            }
            PatchOp::Merge => {
                if values.is_empty() {
                    issues.push(Issue::invalid(
                        Some(&name),
                        format!("A non-empty 'value' is required to merge '{name}'."),
                    ));
                    continue;
                }
                if name == "fulfillment_availability"
                    && values.iter().any(|v| {
                        v.get("fulfillment_channel_code")
                            .and_then(Value::as_str)
                            .is_none_or(|c| c.trim().is_empty())
                    })
                {
                    issues.push(Issue::invalid(
                        Some(&name),
                        "Merging 'fulfillment_availability' requires a non-empty 'fulfillment_channel_code' selector.",
                    ));
                    continue;
                }
                let slot = attrs.entry(name.clone()).or_insert_with(|| json!([]));
                if !slot.is_array() {
                    *slot = json!([]);
                }
                let Some(existing) = slot.as_array_mut() else {
                    continue;
                };
                for v in values {
                    let found = existing
                        .iter_mut()
                        .filter_map(Value::as_object_mut)
                        .find(|e| same_entry(&name, e, &v, acct));
                    match found {
                        Some(e) => e.extend(v),
                        None => existing.push(Value::Object(v)),
                    }
                }
            }
            PatchOp::Delete => {
                if values.is_empty() {
                    attrs.remove(&name);
                } else if let Some(existing) = attrs.get_mut(&name).and_then(Value::as_array_mut) {
                    existing.retain(|e| {
                        e.as_object()
                            .is_none_or(|e| !values.iter().any(|v| same_entry(&name, e, v, acct)))
                    });
                    if existing.is_empty() {
                        attrs.remove(&name);
                    }
                }
            }
        }
        touched.insert(name);
    }
    if issues.is_empty() {
        Ok(touched)
    } else {
        Err(issues)
    }
}

impl Listing {
    /// The merchant-fulfilled (`DEFAULT`) quantity.
    pub(crate) fn default_quantity(&self) -> Option<u32> {
        entries(&self.attributes, "fulfillment_availability")
            .find(|e| {
                e.get("fulfillment_channel_code").and_then(Value::as_str) == Some(DEFAULT_CHANNEL)
            })
            .and_then(|e| e.get("quantity"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    }

    /// Whether a non-DEFAULT (FBA) channel is present.
    fn has_fba_channel(&self) -> bool {
        entries(&self.attributes, "fulfillment_availability").any(|e| {
            e.get("fulfillment_channel_code")
                .and_then(Value::as_str)
                .is_some_and(|c| !c.is_empty() && c != DEFAULT_CHANNEL)
        })
    }

    /// Sets the `DEFAULT` quantity, adding the entry if needed.
    pub(crate) fn set_default_quantity(&mut self, quantity: u32) {
        let slot = self
            .attributes
            .entry("fulfillment_availability")
            .or_insert_with(|| json!([]));
        if !slot.is_array() {
            *slot = json!([]);
        }
        let Some(list) = slot.as_array_mut() else {
            return;
        };
        let existing = list.iter_mut().filter_map(Value::as_object_mut).find(|e| {
            e.get("fulfillment_channel_code").and_then(Value::as_str) == Some(DEFAULT_CHANNEL)
        });
        match existing {
            Some(e) => {
                e.insert("quantity".into(), json!(quantity));
            }
            None => list
                .push(json!({"fulfillment_channel_code": DEFAULT_CHANNEL, "quantity": quantity})),
        }
    }

    fn offer_entry<'a>(&'a self, acct: &'a Account) -> Option<&'a Map<String, Value>> {
        let key = json!({}).as_object().cloned().unwrap_or_default();
        entries(&self.attributes, "purchasable_offer")
            .find(|e| same_entry("purchasable_offer", e, &key, acct))
    }

    /// The price buyers pay (`purchasable_offer` for the marketplace, audience ALL).
    pub(crate) fn price(&self, acct: &Account) -> Option<Money> {
        let e = self.offer_entry(acct)?;
        let minor = e
            .get("our_price")?
            .get(0)?
            .get("schedule")?
            .get(0)?
            .get("value_with_tax")
            .and_then(price_minor)?;
        let currency = e
            .get("currency")
            .and_then(Value::as_str)
            .unwrap_or(&acct.currency);
        Some(Money::new(format_minor(minor), currency))
    }

    /// Sets the price, adding the offer entry if needed.
    pub(crate) fn set_price(&mut self, minor: i64, acct: &Account) {
        let price = json!([{"schedule": [{"value_with_tax": minor as f64 / 100.0}]}]);
        let key = json!({}).as_object().cloned().unwrap_or_default();
        let slot = self
            .attributes
            .entry("purchasable_offer")
            .or_insert_with(|| json!([]));
        if !slot.is_array() {
            *slot = json!([]);
        }
        let Some(list) = slot.as_array_mut() else {
            return;
        };
        let existing = list
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .find(|e| same_entry("purchasable_offer", e, &key, acct));
        match existing {
            Some(e) => {
                e.insert("our_price".into(), price);
            }
            None => list.push(json!({
                "marketplace_id": acct.marketplace_id, "currency": acct.currency,
                "audience": "ALL", "our_price": price,
            })),
        }
    }

    fn text(&self, name: &str) -> Option<&str> {
        entries(&self.attributes, name)
            .filter_map(|e| e.get("value").and_then(Value::as_str))
            .find(|v| !v.trim().is_empty())
    }

    /// The title.
    pub(crate) fn item_name(&self) -> Option<&str> {
        self.text("item_name")
    }

    /// The condition, when it is one of the spec's values.
    pub(crate) fn condition(&self) -> Option<&str> {
        self.text("condition_type")
            .filter(|c| CONDITION_TYPES.contains(c))
    }

    /// What Amazon reports about the listing now: the product facts a buyer-facing listing needs.
    pub(crate) fn issues(&self) -> Vec<Issue> {
        missing_required(&self.attributes, Requirements::Listing)
    }

    /// `BUYABLE`/`DISCOVERABLE`: only a complete listing (title, condition, price) is shown, and
    /// it is buyable with merchant stock or an FBA channel.
    pub(crate) fn status(&self, acct: &Account) -> Vec<&'static str> {
        let complete =
            self.item_name().is_some() && self.condition().is_some() && self.price(acct).is_some();
        if !complete {
            return Vec::new();
        }
        if self.default_quantity().unwrap_or(0) > 0 || self.has_fba_channel() {
            vec!["BUYABLE", "DISCOVERABLE"]
        } else {
            vec!["DISCOVERABLE"]
        }
    }

    /// What buyers can buy from the merchant right now.
    pub(crate) fn visible_quantity(&self, acct: &Account) -> u32 {
        if self.status(acct).contains(&"BUYABLE") {
            self.default_quantity().unwrap_or(0)
        } else {
            0
        }
    }

    /// The spec's `Item` with the requested data sets.
    pub(crate) fn render(&self, inc: Included, acct: &Account) -> Value {
        let mp = acct.marketplace_id.as_str();
        let mut item = Map::new();
        item.insert("sku".into(), json!(self.sku));
        if inc.summaries {
            let mut s = Map::new();
            s.insert("marketplaceId".into(), json!(mp));
            s.insert("asin".into(), json!(self.asin));
            s.insert("productType".into(), json!(self.product_type));
            if let Some(c) = self.condition() {
                s.insert("conditionType".into(), json!(c));
            }
            s.insert("status".into(), json!(self.status(acct)));
            if let Some(n) = self.item_name() {
                s.insert("itemName".into(), json!(n));
            }
            s.insert("createdDate".into(), json!(timestamp(self.created)));
            s.insert("lastUpdatedDate".into(), json!(timestamp(self.updated)));
            item.insert("summaries".into(), json!([s]));
        }
        if inc.attributes {
            item.insert("attributes".into(), Value::Object(self.attributes.clone()));
        }
        if inc.issues {
            let issues: Vec<Value> = self
                .issues()
                .iter()
                .map(|i| i.to_listing_json(mp))
                .collect();
            item.insert("issues".into(), json!(issues));
        }
        if inc.offers {
            let offers: Vec<Value> = self
                .price(acct)
                .map(|p| {
                    json!({"marketplaceId": mp, "offerType": "B2C",
                           "price": {"currencyCode": p.currency, "amount": p.value},
                           "audience": {"value": "ALL", "displayName": "Sell on Amazon"}})
                })
                .into_iter()
                .collect();
            item.insert("offers".into(), json!(offers));
        }
        if inc.fulfillment_availability {
            let fa: Vec<Value> = entries(&self.attributes, "fulfillment_availability")
                .filter_map(|e| {
                    let code = e.get("fulfillment_channel_code")?.as_str()?;
                    let mut out = json!({"fulfillmentChannelCode": code});
                    if let Some(q) = e
                        .get("quantity")
                        .and_then(Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok())
                    {
                        out["quantity"] = json!(q);
                    }
                    Some(out)
                })
                .collect();
            item.insert("fulfillmentAvailability".into(), json!(fa));
        }
        if inc.procurement {
            item.insert("procurement".into(), json!([]));
        }
        if inc.relationships {
            item.insert(
                "relationships".into(),
                json!([{"marketplaceId": mp, "relationships": []}]),
            );
        }
        if inc.product_types {
            item.insert(
                "productTypes".into(),
                json!([{"marketplaceId": mp, "productType": self.product_type}]),
            );
        }
        Value::Object(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct() -> Account {
        Account {
            seller_id: "S".into(),
            marketplace_id: "ATVPDKIKX0DER".into(),
            currency: "USD".into(),
        }
    }

    fn listing(attrs: Value) -> Listing {
        Listing {
            sku: "A".into(),
            asin: "B000000001".into(),
            product_type: "PRODUCT".into(),
            attributes: attrs.as_object().cloned().unwrap(),
            created: Utc::now(),
            updated: Utc::now(),
        }
    }

    #[test]
    fn money_parsing() {
        assert_eq!(minor_units("12.99"), Some(1299));
        assert_eq!(minor_units("12.5"), Some(1250));
        assert_eq!(minor_units("12"), Some(1200));
        assert_eq!(minor_units("1.234"), None);
        assert_eq!(minor_units("-1"), None);
        assert_eq!(minor_units("1e3"), None);
        assert_eq!(format_minor(1205), "12.05");
        assert_eq!(price_minor(&json!(12.99)), Some(1299));
        assert_eq!(price_minor(&json!("12.99")), None);
        assert_eq!(price_minor(&json!(0)), None);
    }

    #[test]
    fn merge_updates_the_matching_channel_only() {
        let mut attrs = json!({"fulfillment_availability": [
            {"fulfillment_channel_code": "DEFAULT", "quantity": 3, "lead_time_to_ship_max_days": 2},
            {"fulfillment_channel_code": "AMAZON_NA"}]})
        .as_object()
        .cloned()
        .unwrap();
        let patches = parse_patches(
            &json!([{"op": "merge", "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 9}]}]),
        )
        .unwrap();
        let touched = apply_patches(&mut attrs, &patches, &acct()).unwrap();
        assert!(touched.contains("fulfillment_availability"));
        let l = listing(Value::Object(attrs));
        assert_eq!(l.default_quantity(), Some(9));
        assert_eq!(
            l.attributes["fulfillment_availability"][0]["lead_time_to_ship_max_days"],
            2
        );
        assert_eq!(
            l.attributes["fulfillment_availability"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn nested_paths_and_bad_ops_are_refused() {
        let mut attrs = Map::new();
        let patches = parse_patches(
            &json!([{"op": "replace", "path": "/attributes/item_name/0/value", "value": [{}]}]),
        )
        .unwrap();
        assert!(apply_patches(&mut attrs, &patches, &acct()).is_err());
        assert!(parse_patches(&json!([{"op": "move", "path": "/attributes/x"}])).is_err());
        assert!(parse_patches(&json!([])).is_err());
        assert!(
            parse_patches(&json!([{"op": "add", "path": "/attributes/x", "value": [1]}])).is_err()
        );
    }

    #[test]
    fn price_and_status_follow_the_attributes() {
        let mut l = listing(json!({
            "item_name": [{"value": "Mug"}],
            "condition_type": [{"value": "new_new"}],
            "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": 0}],
        }));
        assert!(l.status(&acct()).is_empty(), "no price yet");
        l.set_price(1999, &acct());
        assert_eq!(l.price(&acct()), Some(Money::new("19.99", "USD")));
        assert_eq!(l.status(&acct()), ["DISCOVERABLE"]);
        l.set_default_quantity(4);
        assert_eq!(l.status(&acct()), ["BUYABLE", "DISCOVERABLE"]);
        assert_eq!(l.visible_quantity(&acct()), 4);
        assert!(l.issues().is_empty());
        let bad = validate_attribute(
            "purchasable_offer",
            &json!([{"currency": "EUR", "our_price": [{"schedule": [{"value_with_tax": "1"}]}]}]),
            &acct(),
        );
        assert_eq!(bad.len(), 2);
        assert!(
            validate_attribute(
                "fulfillment_availability",
                &json!([{"fulfillment_channel_code": "DEFAULT", "quantity": -1}]),
                &acct()
            )
            .len()
                == 1
        );
        assert!(validate_attribute("item_name", &json!({"value": "x"}), &acct()).len() == 1);
    }
}
