//! `omnistock run`: the long-running process.
//!
//! Start-up: load the config, take the single-instance lock (SQLite), open the database (migrations),
//! make the configured locations exist, recompute desired state when the sync plan changed since the
//! last run, serve the admin HTTP API, and watch the config file. Shutdown (SIGTERM/SIGINT): cancel
//! every task between units of work and wait for them at most `daemon.shutdown_timeout_secs`.
//!
//! Hot reload: on SIGHUP, and whenever the file's content changes (checked every
//! `daemon.reload_poll_ms`; content, not mtime, so editors' atomic renames and same-second edits are
//! seen), the new file is validated in full. A valid one is swapped in atomically (with a recompute
//! when stock or price knobs changed); an invalid one is logged with its line and column and the
//! daemon keeps running on the last good config.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use tokio::sync::watch;

use crate::config::Config;
use crate::store::lease::owner_id;
use crate::store::{InstanceLock, Store, now_ms};
use crate::sync::engine::Engine;
use crate::sync::{SyncPlan, channels, recompute_all};

/// The config in force and what was derived from it.
#[derive(Debug)]
pub struct Loaded {
    /// The config.
    pub config: Config,
    /// Its sync plan.
    pub plan: SyncPlan,
    /// SHA-256 of the file's bytes.
    pub file_sha256: String,
    /// When it was loaded (unix ms).
    pub loaded_at: i64,
}

/// The outcome of the last reload attempt, for `/api/status` and `/metrics`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadState {
    /// Successful reloads since start.
    pub applied: u64,
    /// Refused (invalid) reloads since start.
    pub refused: u64,
    /// The message of the last refused reload, cleared by the next good one.
    pub last_error: Option<String>,
    /// When the last attempt happened (unix ms).
    pub last_attempt_at: Option<i64>,
}

/// State shared by the daemon's tasks.
#[derive(Debug)]
pub struct Shared {
    /// The database.
    pub store: Store,
    /// The config path.
    pub config_path: PathBuf,
    /// The config in force; replaced whole on reload.
    current: RwLock<Arc<Loaded>>,
    /// Reload bookkeeping.
    reloads: RwLock<ReloadState>,
    /// When the daemon started (unix ms).
    pub started_at: i64,
    /// The channel runtimes.
    pub engine: Arc<Engine>,
    /// Webhook deliveries by channel and outcome.
    pub webhooks: crate::http::webhooks::WebhookStats,
    /// Publishes the sync plan in force to the engine's tasks.
    plan_tx: watch::Sender<Arc<SyncPlan>>,
}

impl Shared {
    /// The config in force.
    pub fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .map(|g| Arc::clone(&g))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// Reload bookkeeping.
    pub fn reloads(&self) -> ReloadState {
        self.reloads
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set_current(&self, l: Loaded) {
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(l),
            Err(p) => *p.into_inner() = Arc::new(l),
        }
    }

    fn record_reload(&self, f: impl FnOnce(&mut ReloadState)) {
        match self.reloads.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }
}

/// A running daemon (the handle tests use; `run` waits for a signal instead).
pub struct Daemon {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// The admin listener's real address (useful with port 0).
    pub http_addr: std::net::SocketAddr,
    cancel: CancellationToken,
    tracker: TaskTracker,
    shutdown_timeout: Duration,
    _lock: Option<InstanceLock>,
}

/// The config at `path` and the SHA-256 of its text, read once and at most
/// [`MAX_CONFIG_BYTES`](crate::config::MAX_CONFIG_BYTES) of it (`--config /dev/zero` is refused,
/// not read into memory).
fn read_config(path: &Path) -> Result<(Config, String), String> {
    let text = crate::config::read_text(path).map_err(|e| e.to_string())?;
    let sha = hex::encode(Sha256::digest(text.as_bytes()));
    let config = crate::config::parse(&text, &path.display().to_string(), &|name| {
        std::env::var(name).ok()
    })
    .map_err(|e| e.to_string())?;
    Ok((config, sha))
}

impl Daemon {
    /// Starts everything and returns once the admin API is listening.
    pub async fn start(config_path: &Path) -> Result<Daemon> {
        let (config, sha) = read_config(config_path).map_err(|e| anyhow::anyhow!(e))?;
        let lock = match crate::store::sqlite_path(&config.daemon.database) {
            Some(p) => Some(InstanceLock::acquire(&p)?),
            None => None,
        };
        let store = Store::open(&config.daemon.database)
            .await
            .with_context(|| {
                format!(
                    "cannot open database {}",
                    crate::cli::redact_url(&config.daemon.database)
                )
            })?;
        crate::catalog::sync_locations(&store, &crate::cli::location_pairs(&config)).await?;
        let plan = SyncPlan::from_config(&config);
        ensure_plan_applied(&store, &plan).await?;
        let listen = config.daemon.listen.clone();
        let shutdown_timeout = Duration::from_secs(config.daemon.shutdown_timeout_secs);
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (plan_tx, plan_rx) = watch::channel(Arc::new(plan.clone()));
        let engine = Engine::new(
            store.clone(),
            owner_id("daemon"),
            plan_rx,
            tracker.clone(),
            cancel.clone(),
        );
        engine.spawn_membership(Duration::from_secs(config.daemon.lease_secs));
        let (specs, problems) = channels::specs(&config);
        let shared = Arc::new(Shared {
            store,
            config_path: config_path.to_owned(),
            current: RwLock::new(Arc::new(Loaded {
                config,
                plan,
                file_sha256: sha,
                loaded_at: now_ms(),
            })),
            reloads: RwLock::new(ReloadState::default()),
            started_at: now_ms(),
            engine,
            webhooks: Default::default(),
            plan_tx,
        });
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen} (daemon.listen)"))?;
        let http_addr = listener.local_addr()?;
        tracker.spawn(crate::http::serve(
            listener,
            Arc::clone(&shared),
            cancel.clone(),
        ));
        tracker.spawn(watch_config(Arc::clone(&shared), cancel.clone()));
        tracker.spawn(prune_events(shared.store.clone(), cancel.clone()));
        for p in &problems {
            warn!(channel = %p.channel, "{}", p.error);
        }
        shared.engine.apply(specs, problems);
        info!(listen = %http_addr, database = %crate::cli::redact_url(shared.store.url()), "omnistock is running.");
        Ok(Daemon {
            shared,
            http_addr,
            cancel,
            tracker,
            shutdown_timeout,
            _lock: lock,
        })
    }

    /// Re-reads the config now (what SIGHUP does).
    pub async fn reload(&self) -> bool {
        reload(&self.shared).await
    }

    /// Stops every task; waits at most the configured shutdown timeout.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(self.shutdown_timeout, self.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                timeout_secs = self.shutdown_timeout.as_secs(),
                "Some tasks did not stop in time; abandoning them."
            );
        }
        self.shared.store.close().await;
        info!("omnistock stopped.");
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: &Path) -> Result<()> {
    let format = crate::config::load(config_path)
        .map(|c| c.daemon.log_format)
        .unwrap_or_default();
    crate::telemetry::init(format, "info");
    let daemon = Daemon::start(config_path).await?;
    wait_for_stop_signal(&daemon).await;
    info!("Shutting down.");
    daemon.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_stop_signal(daemon: &Daemon) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => {
                info!("SIGHUP: reloading the config.");
                daemon.reload().await;
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal(_daemon: &Daemon) {
    let _ = tokio::signal::ctrl_c().await;
}

/// Recomputes all desired state when the plan differs from the one last applied to this database.
async fn ensure_plan_applied(store: &Store, plan: &SyncPlan) -> Result<()> {
    let fp = plan.fingerprint();
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT value FROM channel_cursors WHERE channel = '*' AND kind = 'plan_fingerprint'",
    )
    .fetch_optional(store.pool())
    .await?;
    if stored.as_deref() == Some(fp.as_str()) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let stats = recompute_all(store, plan).await?;
    sqlx::query(
        "INSERT INTO channel_cursors (channel, kind, value, updated_at) VALUES ('*', 'plan_fingerprint', $1, $2) \
         ON CONFLICT (channel, kind) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(&fp)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    info!(
        skus = stats.skus,
        changed = stats.changed,
        ms = started.elapsed().as_millis() as u64,
        "Recomputed desired state for the current config."
    );
    Ok(())
}

/// Validates the file and swaps it in; returns false (keeping the old config) when it is invalid.
async fn reload(shared: &Shared) -> bool {
    let path = shared.config_path.clone();
    let now = now_ms();
    let (config, sha) = match read_config(&path) {
        Ok(v) => v,
        Err(msg) => {
            error!(path = %path.display(), "Config change refused; still running on the last good config:\n{msg}");
            shared.record_reload(|r| {
                r.refused += 1;
                r.last_error = Some(msg);
                r.last_attempt_at = Some(now);
            });
            return false;
        }
    };
    let old = shared.current();
    for (key, a, b) in [
        (
            "daemon.database",
            &old.config.daemon.database,
            &config.daemon.database,
        ),
        (
            "daemon.listen",
            &old.config.daemon.listen,
            &config.daemon.listen,
        ),
    ] {
        if a != b {
            warn!(
                key,
                "This setting changes only when the daemon restarts; the rest of the new config applies now."
            );
        }
    }
    let plan = SyncPlan::from_config(&config);
    if let Err(e) =
        crate::catalog::sync_locations(&shared.store, &crate::cli::location_pairs(&config)).await
    {
        error!(error = %e, "Config change could not be applied (locations); still running on the last good config.");
        shared.record_reload(|r| {
            r.refused += 1;
            r.last_error = Some(e.to_string());
            r.last_attempt_at = Some(now);
        });
        return false;
    }
    if plan != old.plan
        && let Err(e) = ensure_plan_applied(&shared.store, &plan).await
    {
        error!(error = %e, "Recompute after config change failed; still running on the last good config.");
        shared.record_reload(|r| {
            r.refused += 1;
            r.last_error = Some(e.to_string());
            r.last_attempt_at = Some(now);
        });
        return false;
    }
    let (specs, problems) = channels::specs(&config);
    for p in &problems {
        warn!(channel = %p.channel, "{}", p.error);
    }
    shared.plan_tx.send_replace(Arc::new(plan.clone()));
    shared.engine.apply(specs, problems);
    shared.set_current(Loaded {
        config,
        plan,
        file_sha256: sha,
        loaded_at: now,
    });
    shared.record_reload(|r| {
        r.applied += 1;
        r.last_error = None;
        r.last_attempt_at = Some(now);
    });
    info!(path = %path.display(), "Config reloaded.");
    true
}

/// How long `sync_events` (pushes refused, drift found …) are kept.
pub const EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Deletes `sync_events` older than [`EVENT_RETENTION`], at start and then hourly.
async fn prune_events(store: Store, cancel: CancellationToken) {
    loop {
        let cutoff = now_ms() - EVENT_RETENTION.as_millis() as i64;
        match sqlx::query("DELETE FROM sync_events WHERE at < $1")
            .bind(cutoff)
            .execute(store.pool())
            .await
        {
            Ok(r) if r.rows_affected() > 0 => {
                info!(deleted = r.rows_affected(), "Pruned old sync events.")
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "Could not prune old sync events; trying again later."),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// At most `limit` bytes of the file at `path` (enough to see that it changed; a file grown past
/// the config limit changes too, and the reload says why it is refused).
async fn read_prefix(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let file = tokio::fs::File::open(path).await?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).await?;
    Ok(bytes)
}

/// Polls the file's content and reloads when it changes.
async fn watch_config(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut last_seen = shared.current().file_sha256.clone();
    loop {
        let every = Duration::from_millis(shared.current().config.daemon.reload_poll_ms.max(50));
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let Ok(bytes) = read_prefix(&shared.config_path, crate::config::MAX_CONFIG_BYTES + 1).await
        else {
            continue;
        };
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha == last_seen {
            continue;
        }
        last_seen = sha;
        info!(path = %shared.config_path.display(), "Config file changed; validating it.");
        reload(&shared).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn config_reads_are_bounded() {
        // An endless file: refused after the limit, not read into memory.
        let started = std::time::Instant::now();
        let err = read_config(Path::new("/dev/zero")).unwrap_err();
        assert!(err.contains("at most"), "{err}");
        let prefix = read_prefix(Path::new("/dev/zero"), 4096).await.unwrap();
        assert_eq!(prefix.len(), 4096);
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
