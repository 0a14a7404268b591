//! Stoplight Prism processes for the suite, through `scripts/prism` (install, prepared spec
//! copies per market, start, stop). A [`Prism`] stops its process by PID when dropped, panics included.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `OMNISTOCK_REQUIRE_CONTRACT=1`: Prism or the specs missing is a failure, not a skip (CI).
pub const REQUIRE_ENV: &str = "OMNISTOCK_REQUIRE_CONTRACT";

/// `scripts/prism` in this checkout.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/prism")
}

/// Runs `scripts/prism ARGS` and returns its trimmed stdout, or its stderr as the error.
fn run_script(args: &[&str]) -> Result<String, String> {
    let out = Command::new(script())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Where Prism and one market's prepared specs are.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The folder with the market's prepared spec copies (`~/.cache/omnistock/prism/specs/ebay`).
    pub specs: PathBuf,
}

impl Setup {
    /// The prepared copy of a spec (`sell_inventory_v1_oas3.json`, `feeds_2021-06-30.json` …).
    pub fn spec(&self, name: &str) -> PathBuf {
        self.specs.join(name)
    }

    /// The folder of the official specs a prepared copy was made from (its `.source` file, written
    /// by `scripts/prism`), for the files that are read where they are (Amazon's feed schemas).
    pub fn official_dir(&self, name: &str) -> PathBuf {
        let source = self.specs.join(format!("{name}.source"));
        let text = std::fs::read_to_string(&source)
            .unwrap_or_else(|e| panic!("reading {}: {e}", source.display()));
        Path::new(text.trim())
            .parent()
            .unwrap_or_else(|| panic!("{} names no folder", source.display()))
            .to_path_buf()
    }

    /// The corrections `scripts/prism` made to a spec (`x-omnistock-errata`), one line each.
    pub fn errata(&self, name: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.spec(name)).unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("x-omnistock-errata").cloned())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }
}

/// Finds Prism and prepares `market`'s specs (`ebay`, `amazon`). `None` (after printing
/// `SKIPPED: …`) when either is absent, unless [`REQUIRE_ENV`] is set, which turns absence into a
/// panic.
pub fn setup(test: &str, market: &str) -> Option<Setup> {
    let found = run_script(&["path"])
        .map_err(|e| format!("Prism is not installed ({e})"))
        .and_then(|_| {
            run_script(&["specs", market]).map_err(|e| format!("no {market} specs ({e})"))
        });
    match found {
        Ok(specs) => Some(Setup {
            specs: PathBuf::from(specs),
        }),
        Err(why) if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") => {
            panic!("{test}: {why}, and {REQUIRE_ENV}=1 makes the contract check mandatory")
        }
        Err(why) => {
            let line = format!("SKIPPED: {test}: {why}. The contract check did not run.");
            // Straight to the process's stderr, past libtest's capture, so a plain `cargo test`
            // (and the CI log) shows it; the captured copy appears with --nocapture.
            match std::fs::OpenOptions::new().append(true).open("/dev/stderr") {
                Ok(mut tty) => {
                    let _ = writeln!(tty, "{line}");
                }
                Err(_) => eprintln!("{line}"),
            }
            None
        }
    }
}

/// A free port on 127.0.0.1 (free when asked; Prism binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One running `prism proxy --errors`. Dropping it stops the process by its PID.
#[derive(Debug)]
pub struct Prism {
    /// Which spec, for messages.
    pub name: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its address.
    pub addr: std::net::SocketAddr,
    /// Prism's log (stdout and stderr).
    pub log: PathBuf,
    /// How long the start took (spawn to accepting connections).
    pub startup: Duration,
    pid_file: PathBuf,
}

impl Prism {
    /// Starts a proxy for `spec` in front of `upstream`, PID and log files in `dir`. Tries another
    /// port once if the first start fails (another process may have taken the free port).
    pub fn start(name: &str, spec: &Path, upstream: &str, dir: &Path) -> Prism {
        let pid_file = dir.join(format!("{name}.pid"));
        let log = dir.join(format!("{name}.log"));
        let mut last_error = String::new();
        for _ in 0..2 {
            let port = free_port();
            let t0 = Instant::now();
            // The guard exists before the process does, so a panic from here on still stops it.
            let mut prism = Prism {
                name: name.to_owned(),
                url: format!("http://127.0.0.1:{port}"),
                addr: ([127, 0, 0, 1], port).into(),
                log: log.clone(),
                startup: Duration::ZERO,
                pid_file: pid_file.clone(),
            };
            match run_script(&[
                "start",
                "--port",
                &port.to_string(),
                "--spec",
                &spec.to_string_lossy(),
                "--upstream",
                upstream,
                "--pid-file",
                &pid_file.to_string_lossy(),
                "--log",
                &log.to_string_lossy(),
            ]) {
                Ok(url) => {
                    assert_eq!(url, prism.url, "scripts/prism start printed another URL");
                    prism.startup = t0.elapsed();
                    return prism;
                }
                Err(e) => last_error = e,
            }
        }
        panic!("Prism ({name}) did not start: {last_error}");
    }

    /// The PID from the PID file.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        if let Err(e) = run_script(&["stop", "--pid-file", &self.pid_file.to_string_lossy()]) {
            eprintln!("stopping Prism ({}): {e}", self.name);
        }
    }
}

/// How bad a Prism log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// `⚠  warning`.
    Warning,
    /// `✖  error` or `fatal`.
    Error,
}

/// The log lines at warning severity or worse. Prism's CLI logger writes a symbol and the level
/// as a column: `[2:23:49 PM] › [HTTP SERVER] put /x ✖  error     Request terminated with error: …`.
pub fn log_findings(log: &str) -> Vec<(Severity, String)> {
    log.lines()
        .filter_map(|line| {
            let severity = if line.contains("✖  error") || line.contains("✖  fatal") {
                Severity::Error
            } else if line.contains("⚠  warning") {
                Severity::Warning
            } else {
                return None;
            };
            Some((severity, line.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_classified_by_their_level_column() {
        let log = "\
[2:23:40 PM] › [CLI] ▶  start     Prism is listening on http://127.0.0.1:4077
[2:23:49 PM] › [HTTP SERVER] get /sell/inventory/v1/offer ℹ  info      Request received
[2:23:49 PM] ›     [PROXY] ℹ  info      The upstream call to /error/x has returned 200
[2:23:49 PM] › [HTTP SERVER] put /sell/inventory/v1/inventory_item/A ✖  error     Request terminated with error: https://stoplight.io/prism/errors#UNPROCESSABLE_ENTITY: Invalid request
[2:23:49 PM] ›     [PROXY] ⚠  warning   Unable to match the returned status code with those defined in the document: 201";
        let found = log_findings(log);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].0, Severity::Error);
        assert!(found[0].1.contains("UNPROCESSABLE_ENTITY"));
        assert_eq!(found[1].0, Severity::Warning);
    }
}
