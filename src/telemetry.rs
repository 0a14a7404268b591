//! Logging setup: `pretty` for people, `json` for log shippers; the level comes from
//! `OMNISTOCK_LOG` (or `RUST_LOG`), default `info`. Secrets never reach here: config secrets are
//! [`crate::config::Secret`]s whose `Debug`/`Display` print `***`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber (once; later calls are ignored, which tests rely on).
pub fn init(format: LogFormat, default_level: &str) {
    let filter = std::env::var("OMNISTOCK_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("{default_level},sqlx=warn,hyper=warn")));
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
