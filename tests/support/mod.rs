//! Shared test helpers: a fresh database per test, on the backend `OMNISTOCK_TEST_DB` names
//! (`sqlite`, the default, or a PostgreSQL admin URL such as
//! `postgres://postgres@127.0.0.1:54329/postgres`, which `scripts/test` starts).

#![allow(dead_code)]

use omnistock::store::Store;
use omnistock::sync::SyncPlan;
use omnistock::sync::desired::{PriceKnobs, StockKnobs};
use omnistock::sync::plan::ChannelPlan;

/// A database that lives as long as this value (temp dir for SQLite; a database dropped on exit
/// of the cluster for PostgreSQL).
pub struct TestDb {
    /// The URL to open it with.
    pub url: String,
    /// Keeps the SQLite directory alive.
    pub dir: tempfile::TempDir,
}

impl TestDb {
    /// True on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

/// Which backend this run uses, for messages.
pub fn backend_name() -> String {
    match std::env::var("OMNISTOCK_TEST_DB") {
        Ok(v) if v.starts_with("postgres") => "postgres".into(),
        _ => "sqlite".into(),
    }
}

/// A fresh, empty database.
pub async fn fresh_db() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    match std::env::var("OMNISTOCK_TEST_DB") {
        Ok(admin) if admin.starts_with("postgres") => {
            sqlx::any::install_default_drivers();
            let name = format!("omni_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::AnyPool::connect(&admin)
                .await
                .expect("connect to the test PostgreSQL cluster");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .expect("create test database");
            pool.close().await;
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin.clone());
            TestDb {
                url: format!("{base}/{name}"),
                dir,
            }
        }
        _ => {
            let path = dir.path().join("omnistock.db");
            TestDb {
                url: format!("sqlite://{}", path.display()),
                dir,
            }
        }
    }
}

/// A fresh database, opened (migrations applied) with locations `main` and `backroom`.
pub async fn fresh_store() -> (TestDb, Store) {
    let db = fresh_db().await;
    let store = Store::open(&db.url).await.expect("open store");
    omnistock::catalog::sync_locations(
        &store,
        &[
            ("main".into(), "Main".into()),
            ("backroom".into(), "Back room".into()),
        ],
    )
    .await
    .expect("locations");
    (db, store)
}

/// A plan with the given channels, each selling `main` only, default knobs.
pub fn plan(channels: &[&str]) -> SyncPlan {
    SyncPlan {
        channels: channels
            .iter()
            .map(|id| ChannelPlan {
                id: (*id).to_owned(),
                locations: vec!["main".into()],
                stock: StockKnobs::default(),
                price: PriceKnobs::default(),
            })
            .collect(),
        rules: vec![],
    }
}
