//! What each fault test tried, so the figures can be quoted: one line per test appended to the
//! file `OMNISTOCK_FAULT_SUMMARY` names (`scripts/test` sets it and prints the file after each
//! pass; without it the lines go to `<tmp>/omnistock-fault-summary.txt`).

#![allow(dead_code)]

use std::io::Write;

/// The figures of one fault test.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    /// `kill -9`s of a daemon (or `SIGSTOP`s / database restarts, counted as faults).
    pub kills: u64,
    /// Orders placed on the marketplaces.
    pub orders: u64,
    /// Faults injected (5xx, hangs, 429s, drift, duplicate deliveries, restarts …).
    pub faults: u64,
    /// Invariant violations found (a test asserts 0 after recording).
    pub violations: u64,
    /// Anything else worth quoting, e.g. `takeover_ms=3120`.
    pub extra: Vec<(String, String)>,
}

impl Figures {
    /// Adds a `key=value` figure.
    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.extra.push((key.to_owned(), value.to_string()));
        self
    }
}

/// Appends the line for `test` to the summary file.
pub fn record(test: &str, f: &Figures) {
    let path = std::env::var_os("OMNISTOCK_FAULT_SUMMARY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("omnistock-fault-summary.txt"));
    let mut line = format!(
        "[{}] {test}: kills={} orders={} faults={} violations={}",
        crate::support::backend_name(),
        f.kills,
        f.orders,
        f.faults,
        f.violations
    );
    for (k, v) in &f.extra {
        line.push_str(&format!(" {k}={v}"));
    }
    eprintln!("{line}");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(file, "{line}");
    }
}
