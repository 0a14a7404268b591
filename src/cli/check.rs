//! `omnistock check`: validate the config file, then probe every enabled channel.
//!
//! A probe builds the channel's connector exactly as the daemon does
//! ([`crate::sync::channels::connector`]) and runs its [`Connector::healthcheck`]: a token and a
//! cheap read of the main endpoint, nothing written (STYLE habit 7). Probes run concurrently, each
//! bounded by [`HEALTHCHECK_TIMEOUT`]; one failed probe makes the command exit non-zero, and so
//! does a connector that refuses its section (plain-http WooCommerce keys, a bad Graph URL …).
//! Messages come from the connectors, which never put a secret in an error.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use omnistock_connectors::{Connector, Health};
use tokio::task::JoinSet;

use crate::config::Config;

/// How long one channel's probe may take, token call included.
pub const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only validate the file; do not call the marketplaces.
    #[arg(long)]
    pub skip_healthchecks: bool,
}

/// What probing one channel found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The healthcheck passed.
    Ok(Health),
    /// The connector could not be built, the healthcheck failed, or it timed out.
    Failed(String),
    /// Not probed: disabled, or no connector for its type in this build.
    Skipped(String),
}

/// One channel's probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Channel id.
    pub channel: String,
    /// What happened.
    pub outcome: Outcome,
}

impl Probe {
    /// True when the probe failed.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
    }

    /// One line for people, the channel id padded to `width`:
    /// `ok   ebay_us  token ok, 3 inventory items on eBay (EBAY_US) (123 ms)`.
    pub fn line(&self, width: usize) -> String {
        let (tag, text) = match &self.outcome {
            Outcome::Ok(h) => (
                "ok",
                format!("{} ({} ms)", h.summary, h.latency.as_millis()),
            ),
            Outcome::Failed(e) => ("FAIL", e.clone()),
            Outcome::Skipped(why) => ("skip", why.clone()),
        };
        format!("{tag:<4} {:<width$}  {text}", self.channel)
    }
}

/// Validates the config and prints a summary (secrets as `***`), then the channel probes unless
/// `--skip-healthchecks`; fails when the file is invalid or a probe fails.
pub async fn run(path: &Path, args: Args) -> Result<()> {
    let config = crate::config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}: OK", path.display());
    println!("  database  {}", super::redact_url(&config.daemon.database));
    println!("  listen    {}", config.daemon.listen);
    println!(
        "  locations {}",
        config
            .locations
            .iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (id, c) in &config.channels {
        let on = if c.common().enabled {
            ""
        } else {
            " (disabled)"
        };
        println!("  channel   {id} ({}){on}", c.kind().as_str());
    }
    println!("  rules     {}", config.rules.len());
    if args.skip_healthchecks || config.channels.is_empty() {
        return Ok(());
    }
    println!("healthchecks:");
    let probes = probe_all(&config, HEALTHCHECK_TIMEOUT).await;
    let width = probes.iter().map(|p| p.channel.len()).max().unwrap_or(0);
    for p in &probes {
        println!("  {}", p.line(width));
    }
    let failed: Vec<&str> = probes
        .iter()
        .filter(|p| p.failed())
        .map(|p| p.channel.as_str())
        .collect();
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} channel healthchecks failed: {}",
            failed.len(),
            probes.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Probes every channel of `config` concurrently, each within `timeout`; results in config order.
pub async fn probe_all(config: &Config, timeout: Duration) -> Vec<Probe> {
    let mut probes: Vec<Probe> = Vec::with_capacity(config.channels.len());
    let mut running = JoinSet::new();
    for (id, cfg) in &config.channels {
        let index = probes.len();
        let outcome = if !cfg.common().enabled {
            Outcome::Skipped("disabled (enabled = false)".to_owned())
        } else {
            match crate::sync::channels::connector(id, cfg) {
                Ok((connector, _)) => {
                    running.spawn(async move { (index, probe(connector, timeout).await) });
                    // Replaced when the probe finishes.
                    Outcome::Failed("the probe did not finish".to_owned())
                }
                Err(e) => build_error(id, e),
            }
        };
        probes.push(Probe {
            channel: id.clone(),
            outcome,
        });
    }
    while let Some(done) = running.join_next().await {
        match done {
            Ok((index, outcome)) => probes[index].outcome = outcome,
            // A panicking connector leaves its placeholder failure in place.
            Err(e) => tracing::warn!(error = %e, "A healthcheck task ended abnormally."),
        }
    }
    probes
}

async fn probe(connector: Arc<dyn Connector>, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, connector.healthcheck()).await {
        Ok(Ok(health)) => Outcome::Ok(health),
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
        Err(_) => Outcome::Failed(format!(
            "no answer within {} s (the marketplace or the network is too slow, or unreachable)",
            timeout.as_secs()
        )),
    }
}

/// A connector that refused its section: a failure, with the connector's reason.
fn build_error(id: &str, error: String) -> Outcome {
    let text = error
        .strip_prefix(&format!("channels.{id}: "))
        .map(str::to_owned)
        .unwrap_or(error);
    Outcome::Failed(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(channels: &str) -> Config {
        let text = format!(
            "[daemon]\ndatabase = \"sqlite://x.db\"\n\n[[locations]]\nid = \"main\"\n\n{channels}"
        );
        crate::config::parse(&text, "test.toml", &|_| Some("s3cret".to_owned())).unwrap()
    }

    const WOO_PLAIN_HTTP: &str = "[channels.woo]\ntype = \"woocommerce\"\n\
        endpoint = \"http://shop.example.com\"\nconsumer_key = \"${S}\"\n\
        consumer_secret = \"${S}\"\nwebhook_secret = \"${S}\"\n";

    #[tokio::test]
    async fn a_connector_that_refuses_its_section_fails_with_the_reason() {
        let probes = probe_all(&config(WOO_PLAIN_HTTP), HEALTHCHECK_TIMEOUT).await;
        assert_eq!(probes.len(), 1);
        assert!(probes[0].failed(), "{probes:?}");
        assert!(
            matches!(&probes[0].outcome, Outcome::Failed(w) if w.contains("plain http") && !w.contains("s3cret")),
            "{probes:?}"
        );
    }

    #[tokio::test]
    async fn disabled_channels_are_skipped() {
        let probes = probe_all(
            &config(&format!("{WOO_PLAIN_HTTP}enabled = false\n")),
            HEALTHCHECK_TIMEOUT,
        )
        .await;
        assert!(
            matches!(&probes[0].outcome, Outcome::Skipped(w) if w.contains("disabled")),
            "{probes:?}"
        );
    }

    #[test]
    fn lines_are_aligned_and_say_what_happened() {
        let ok = Probe {
            channel: "ebay".into(),
            outcome: Outcome::Ok(Health {
                summary: "token ok".into(),
                latency: Duration::from_millis(123),
            }),
        };
        let failed = Probe {
            channel: "ebay_uk".into(),
            outcome: Outcome::Failed("authentication failed (HTTP 401): invalid_grant".into()),
        };
        assert_eq!(ok.line(7), "ok   ebay     token ok (123 ms)");
        assert_eq!(
            failed.line(7),
            "FAIL ebay_uk  authentication failed (HTTP 401): invalid_grant"
        );
    }
}
