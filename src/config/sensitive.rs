//! Secrets that cannot be printed: `Debug` and `Display` show `***`.
//!
//! The config file deserializes secrets straight into the connectors' own wrapper, so the value
//! travels from the file (after `${VAR}` interpolation) to the one request that sends it without
//! ever being a printable `String`.

pub use omnistock_connectors::Secret;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s: Secret = toml::from_str::<toml::Value>("v = \"hunter2\"")
            .ok()
            .and_then(|v| v.get("v").cloned())
            .and_then(|v| v.try_into().ok())
            .expect("deserializes");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
    }
}
