//! Request plumbing shared by the Amazon handlers: JSON bodies with SP-API's errors, query strings
//! with comma-separated or repeated list parameters, percent-decoded path segments, ISO 8601 times.
//! Everything a client sends is treated as hostile: every failure is an [`AmazonError`], never a
//! panic or axum's plain-text rejection.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::error::AmazonError;
use crate::MAX_BODY_BYTES;

/// Amazon's timestamps: ISO 8601 in UTC with milliseconds (`2024-03-11T13:16:24.630Z`).
pub(crate) fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An ISO 8601 date-time parameter (RFC 3339; `Z` or an offset).
pub(crate) fn parse_time(value: &str, name: &str) -> Result<DateTime<Utc>, AmazonError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            AmazonError::invalid_input(format!(
                "Invalid date-time for '{name}': {value:?}; expected ISO 8601, e.g. 2025-01-01T00:00:00Z."
            ))
        })
}

/// A parsed query string, keeping repeated keys.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses the raw query string; an unparsable one is invalid input.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Query, AmazonError> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
            .map(|pairs| Query { pairs })
            .map_err(|e| AmazonError::invalid_input(format!("Malformed query string: {e}.")))
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// Parameter names present.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// A list parameter (`a,b` or `x=a&x=b`): trimmed, empty items dropped; `None` when absent.
    pub(crate) fn list(&self, name: &str) -> Option<Vec<String>> {
        if !self.has(name) {
            return None;
        }
        Some(
            self.pairs
                .iter()
                .filter(|(k, _)| k == name)
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// A list parameter whose items must be among `allowed`.
    pub(crate) fn enum_list(
        &self,
        name: &str,
        allowed: &[&str],
    ) -> Result<Option<Vec<String>>, AmazonError> {
        let Some(items) = self.list(name) else {
            return Ok(None);
        };
        if let Some(bad) = items.iter().find(|i| !allowed.contains(&i.as_str())) {
            return Err(AmazonError::invalid_input(format!(
                "Invalid value {bad:?} for '{name}'; allowed: {}.",
                allowed.join(", ")
            )));
        }
        Ok(Some(items))
    }

    /// An integer parameter within `range`, else `default`.
    pub(crate) fn int_in(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<usize>,
        default: usize,
    ) -> Result<usize, AmazonError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    AmazonError::invalid_input(format!(
                        "Invalid value {v:?} for '{name}'; it must be an integer from {} to {}.",
                        range.start(),
                        range.end()
                    ))
                }),
        }
    }
}

/// Percent-decodes one path segment; bad escapes or bad UTF-8 are invalid input.
pub(crate) fn decode_segment(raw: &str, what: &str) -> Result<String, AmazonError> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| {
            AmazonError::invalid_input(format!("The {what} in the path is not valid UTF-8."))
        })?;
    Ok(decoded.into_owned())
}

/// The path segments after `prefix` (which ends with `/`), still encoded.
pub(crate) fn segments_after<'a>(path: &'a str, prefix: &str) -> Vec<&'a str> {
    match path.find(prefix) {
        Some(i) => path[i + prefix.len()..].split('/').collect(),
        None => Vec::new(),
    }
}

/// A JSON request body: `Content-Type: application/json` (415), at most [`MAX_BODY_BYTES`] (413,
/// or 400 where the operation's spec declares no 413), valid JSON (400).
pub(crate) async fn json_body(req: Request, too_large: StatusCode) -> Result<Value, AmazonError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err(AmazonError::invalid_input(
            "Unsupported Media Type: the request body must be application/json.",
        )
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            AmazonError::invalid_input(format!("The request body exceeds {MAX_BODY_BYTES} bytes."))
                .with_status(too_large)
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| AmazonError::invalid_input(format!("Could not parse the JSON body: {e}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_accept_csv_and_repeats() {
        let q = Query::parse(Some("a=x,y&a=z&b=&c=1")).unwrap();
        assert_eq!(q.list("a").unwrap(), ["x", "y", "z"]);
        assert_eq!(q.list("b").unwrap(), Vec::<String>::new());
        assert!(q.list("d").is_none());
        assert_eq!(q.int_in("c", 1..=5, 3).unwrap(), 1);
        assert!(q.int_in("a", 1..=5, 3).is_err());
    }

    #[test]
    fn segments_decode_or_fail_cleanly() {
        assert_eq!(decode_segment("A%2FB%20c", "SKU").unwrap(), "A/B c");
        assert!(decode_segment("%FF%FE", "SKU").is_err());
        assert_eq!(
            segments_after("/amazon/listings/2021-08-01/items/S/K%2F1", "/items/"),
            ["S", "K%2F1"]
        );
    }
}
