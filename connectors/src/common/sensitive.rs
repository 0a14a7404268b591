//! Credentials the daemon hands to a connector, in a wrapper that cannot be printed.
//!
//! `Debug` and `Display` show `***`, so a secret cannot reach a log line, an error message or a
//! panic message by accident (DESIGN §10, STYLE habit 11); the one place that must send it calls
//! [`Secret::expose`].

use std::fmt;

use serde::Deserialize;

/// A secret string: client secret, refresh token, access token, password. The daemon's config
/// file deserializes straight into it (`config::Secret` is this type), so a secret never exists
/// as a plain, printable string between the file and the connector.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty (a config that forgot to set it).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("v^1.1#refresh");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "v^1.1#refresh");
        assert!(Secret::from("").is_empty());
    }
}
