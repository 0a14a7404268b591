//! The storage seam: one schema and one set of runtime queries for SQLite and PostgreSQL.
//!
//! Both backends run the very same SQL text through sqlx's `Any` driver: queries use `$N`
//! placeholders (SQLite reads `$N` as positional), integers are BIGINT (unix milliseconds for
//! time, minor units for money) and JSON is TEXT. Migrations are kept per backend
//! (`migrations/sqlite`, `migrations/postgres`) because DDL differs (autoincrement keys).
//!
//! Writes go through [`Store::write`]: on SQLite `BEGIN IMMEDIATE` takes the single writer lock up
//! front, so a read-modify-write transaction never fails half way with `SQLITE_BUSY`; on PostgreSQL
//! writers lock the SKUs they touch with `SELECT … FOR UPDATE` ([`Store::lock_skus`]) in a global
//! order, so concurrent recomputes of the same bundle cannot lose each other's update.

pub mod instances;
pub mod lease;
mod lock;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, AssertSqlSafe, Executor};

pub use lease::Lease;
pub use lock::InstanceLock;

/// An open write transaction.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Most `$N` parameters put in one multi-row statement. Both databases allow far more (SQLite
/// 32,766, PostgreSQL 65,535), but SQLite looks each `$N` name up in a linear list when binding,
/// so binding costs grow with the square of the count: 30,000 parameters made a 384,000-row upsert
/// take 56 s; at this size the lookup cost is noise and the round trips are still few.
pub const MAX_PARAMS: usize = 2_000;

/// Rows per `IN (…)` lookup chunk.
pub const IN_CHUNK: usize = 500;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded, single instance.
    Sqlite,
    /// Shared by several instances.
    Postgres,
}

/// Errors from the store. Matchable; [`StoreError::is_retriable`] tells transient from permanent.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one we support.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
    /// The driver failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Another omnistock process holds the SQLite database.
    #[error("{0}")]
    Locked(String),
    /// A referenced row does not exist (unknown SKU, location …).
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is stored (negative stock, reservation underflow …).
    #[error("{0}")]
    Conflict(String),
}

impl StoreError {
    /// True for errors worth retrying the whole transaction for: lost connections, SQLite busy,
    /// PostgreSQL serialization failures and deadlocks.
    pub fn is_retriable(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => {
                let code = e.code().unwrap_or_default();
                // SQLite: 5 BUSY, 6 LOCKED (+ extended codes 261, 517 …); PG: 40001, 40P01, 57P01..
                matches!(
                    code.as_ref(),
                    "5" | "6" | "261" | "517" | "40001" | "40P01" | "57P01" | "57P02" | "57P03"
                )
            }
            StoreError::Db(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Protocol(_),
            ) => true,
            _ => false,
        }
    }

    /// True when a unique constraint refused the row (idempotency key already used …).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// A handle on the database: a pool plus what the backend needs to know.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
}

impl Store {
    /// Connects and applies pending migrations. `sqlite://PATH` creates the file when missing.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let mut opts = AnyConnectOptions::from_str(&normalize_url(url, backend))?;
        opts = sqlx::ConnectOptions::log_statements(opts, tracing::log::LevelFilter::Trace);
        let pool_opts = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let pool = match backend {
            Backend::Sqlite => {
                pool_opts
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL: readers never block the writer. FULL: a committed order survives
                            // power loss. busy_timeout: a CLI write waits for the daemon's writer.
                            // cache_size 32 MiB (default 2 MiB): a 100k-row import otherwise spills
                            // its dirty pages to the WAL again and again inside the transaction.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 15000; \
                                 PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?
            }
            Backend::Postgres => pool_opts.max_connections(16).connect_with(opts).await?,
        };
        let store = Store {
            pool,
            backend,
            url: url.to_owned(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The URL this store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// For SQLite, the database file path (the instance lock lives beside it).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        sqlite_path(&self.url)
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite).
    pub async fn write(&self) -> Result<Tx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Locks the catalog rows of `skus` until the transaction ends (PostgreSQL; SQLite already
    /// holds the database's single writer lock). Sorted, so two writers never wait on each other
    /// in a cycle.
    pub async fn lock_skus(&self, tx: &mut Tx, skus: &[String]) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite || skus.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&String> = skus.iter().collect();
        sorted.sort();
        sorted.dedup();
        for chunk in sorted.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT sku FROM variants WHERE sku IN ({}) ORDER BY sku FOR UPDATE",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for s in chunk {
                q = q.bind(s.as_str());
            }
            q.fetch_all(&mut **tx).await?;
        }
        Ok(())
    }

    /// `FOR UPDATE` on PostgreSQL, nothing on SQLite (which already serializes writers).
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `$start, $start+1, …` — `n` placeholders.
pub fn placeholders(start: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('$');
        s.push_str(&(start + i).to_string());
    }
    s
}

/// `($1,$2,$3),($4,$5,$6)…` — `rows` tuples of `cols` placeholders.
pub fn row_placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        s.push_str(&placeholders(1 + r * cols, cols));
        s.push(')');
    }
    s
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn backend_of(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::Url(url.to_owned()))
    }
}

fn normalize_url(url: &str, backend: Backend) -> String {
    match backend {
        // Create the file when missing; sqlx's default mode is read-write without create.
        Backend::Sqlite if !url.contains("mode=") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        }
        _ => url.to_owned(),
    }
}

/// The file behind a `sqlite://PATH` or `sqlite:PATH` URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(1, 3), "$1,$2,$3");
        assert_eq!(placeholders(4, 1), "$4");
        assert_eq!(row_placeholders(2, 2), "($1,$2),($3,$4)");
    }

    #[test]
    fn urls() {
        assert_eq!(backend_of("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(backend_of("postgresql://u@h/d").unwrap(), Backend::Postgres);
        assert!(backend_of("mysql://x").is_err());
        assert_eq!(
            sqlite_path("sqlite://data/x.db?mode=rwc"),
            Some(PathBuf::from("data/x.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:/abs/x.db"),
            Some(PathBuf::from("/abs/x.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(
            normalize_url("sqlite://x.db", Backend::Sqlite),
            "sqlite://x.db?mode=rwc"
        );
    }
}
