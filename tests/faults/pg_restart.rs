//! The database goes away under load and comes back (DESIGN §9 "database restart under load").
//!
//! - **PostgreSQL**: a private cluster for this test alone (`scripts/pg` with its own
//!   `OMNISTOCK_PG_DIR` and port: the shared test cluster serves other tests in parallel) is
//!   crash-restarted twice (`scripts/pg restart`: `pg_ctl restart -m immediate`) while orders
//!   arrive on the marketplaces and stock changes flow. The daemon binary keeps running: it must
//!   reconnect by itself, record every order once, and converge. The cluster is stopped (by its
//!   postmaster PID) when the test ends, pass or fail ([`PrivateCluster`]'s `Drop`).
//! - **SQLite** (the analogue): another connection takes the write lock (`BEGIN IMMEDIATE`) and
//!   holds it for several seconds, twice, under the same load. The daemon must wait (or retry) and
//!   lose nothing.
//!
//! Recorded: the restarts (as faults) and the time from the database being back to a change made
//! then showing on every channel.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use omnistock::catalog::{StockChange, change_stock};
use sqlx::Connection;

use crate::helpers::{Harness, Setup, sku};
use crate::invariants::{self, Expect};
use crate::summary::Figures;
use crate::support::{TestDb, backend_name};

/// Channels of the story.
const CHANNELS: [&str; 2] = ["ebay_us", "woo_shop"];
/// SKUs: the first half take orders only, the second half stock changes.
const SKUS: usize = 12;
/// How long the SQLite write lock is held each time (under the daemon's 15 s busy timeout).
const LOCK_HOLD: Duration = Duration::from_secs(6);

/// A PostgreSQL cluster of this test's own, stopped on drop.
struct PrivateCluster {
    dir: PathBuf,
    port: u16,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg")
}

impl PrivateCluster {
    fn start() -> PrivateCluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Under /tmp itself: the server runs as the postgres user when we are root, and a
        // tempfile directory (0700, ours) would be closed to it.
        let dir = std::env::temp_dir().join(format!(
            "omnistock-pg-restart-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let c = PrivateCluster { dir, port };
        let out = c.run("start");
        assert!(
            out.status.success(),
            "scripts/pg start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }

    fn run(&self, what: &str) -> std::process::Output {
        Command::new(script())
            .arg(what)
            .env("OMNISTOCK_PG_DIR", &self.dir)
            .env("OMNISTOCK_PG_PORT", self.port.to_string())
            .output()
            .expect("run scripts/pg")
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl restart -m immediate`, waiting until it accepts connections again.
    fn restart(&self) {
        let out = self.run("restart");
        assert!(
            out.status.success(),
            "scripts/pg restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn postmaster_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // pg_ctl stop (by the postmaster PID in the data directory); if it is still there after
        // that, kill that PID.
        let _ = self.run("stop");
        if let Some(pid) = self.postmaster_pid() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh database on the private cluster.
async fn database_on(cluster: &PrivateCluster) -> TestDb {
    let admin = cluster.admin_url();
    let name = format!("omni_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to the private cluster");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    conn.close().await.ok();
    TestDb {
        url: format!("postgres://postgres@127.0.0.1:{}/{name}", cluster.port),
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

/// Waits (bounded) until `n` orders are recorded (a poller that was backing off catches up after
/// the stock has converged).
async fn orders_recorded(h: &Harness, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let got: Option<i64> = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(h.store.pool())
            .await
            .ok();
        if got == Some(n as i64) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sets stock, retrying while the database is away (bounded).
async fn set_stock_retrying(h: &Harness, sku: &str, qty: i64, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match change_stock(&h.store, &h.plan, sku, "main", StockChange::Set(qty), key).await {
            Ok(_) => return,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "stock change still failing after 60 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What the load did.
#[derive(Default)]
struct Load {
    orders: usize,
    changes: usize,
    step: usize,
}

/// One step of load: an order on a marketplace (never blocked by the database), and every other
/// step a stock change (retried until the database takes it).
async fn load_step(h: &Harness, load: &mut Load) {
    let i = load.step;
    load.step += 1;
    let half = SKUS / 2;
    let channel = CHANNELS[i % CHANNELS.len()];
    h.account(channel).place_order(&sku(i % half), 1);
    load.orders += 1;
    if i.is_multiple_of(2) {
        let s = sku(half + (i / 2) % half);
        set_stock_retrying(h, &s, 50 + (i % 40) as i64, &format!("load:{i}")).await;
        load.changes += 1;
    }
}

/// Runs load steps every 250 ms while `fault` runs on a blocking thread; returns when both are
/// done.
async fn load_during(h: &Harness, load: &mut Load, fault: tokio::task::JoinHandle<()>) {
    let mut fault = std::pin::pin!(fault);
    loop {
        tokio::select! {
            r = &mut fault => {
                r.expect("fault task");
                return;
            }
            () = tokio::time::sleep(Duration::from_millis(250)) => load_step(h, load).await,
        }
    }
}

/// A change made now: how long until every channel shows it.
async fn recovery_time(h: &Harness, marker: usize) -> Duration {
    let started = Instant::now();
    let s = sku(SKUS / 2 + marker % (SKUS / 2));
    let value = 900 + marker as i64;
    set_stock_retrying(h, &s, value, &format!("marker:{marker}")).await;
    h.eventually(
        "a change made after the restart reaches every channel",
        Duration::from_secs(60),
        || async {
            let Ok(want) = sqlx::query_scalar::<_, i64>(
                "SELECT on_hand - reserved FROM stock_levels WHERE sku = $1",
            )
            .bind(&s)
            .fetch_one(h.store.pool())
            .await
            else {
                return false;
            };
            h.accounts
                .iter()
                .all(|a| a.shown(&s) == u32::try_from(want).ok())
        },
    )
    .await;
    started.elapsed()
}

fn daemon_alive(h: &mut Harness) -> bool {
    h.child
        .as_mut()
        .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
}

async fn story(
    h: &mut Harness,
    test: &str,
    faults: u64,
    fault: impl Fn(usize) -> tokio::task::JoinHandle<()>,
) {
    let started = Instant::now();
    h.spawn_binary();
    h.wait_converged(Duration::from_secs(60), &[]).await;
    let mut load = Load::default();
    let mut recoveries = Vec::new();
    for round in 0..faults as usize {
        // Load before, during and after.
        for _ in 0..8 {
            load_step(h, &mut load).await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        load_during(h, &mut load, fault(round)).await;
        recoveries.push(recovery_time(h, round).await);
        for _ in 0..4 {
            load_step(h, &mut load).await;
        }
    }
    let mut v = Vec::new();
    if !daemon_alive(h) {
        v.push("the daemon process exited".to_owned());
    }
    if !orders_recorded(h, load.orders, Duration::from_secs(60)).await {
        v.push(format!(
            "I1: {} orders placed, not all recorded within 60 s",
            load.orders
        ));
    }
    let mut violations = invariants::check(
        h,
        &Expect {
            orders: load.orders,
            only_lowered: (0..SKUS / 2).map(sku).collect(),
            converge: Some(Duration::from_secs(60)),
            ..Expect::default()
        },
    )
    .await;
    if !daemon_alive(h) {
        v.push("the daemon process exited after the faults".to_owned());
    }
    violations.extend(v);
    let log = std::fs::read_to_string(h.db.dir.path().join("daemon.log")).unwrap_or_default();
    if log.contains("panicked") {
        violations.push("the daemon panicked (see daemon.log)".to_owned());
    }
    // What the daemon felt of it (a pool that tests connections before use may hide it all).
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    for w in warnings
        .iter()
        .filter(|w| !w.contains("sqlx::postgres::notice"))
        .take(5)
    {
        eprintln!("{test}: daemon: {w}");
    }
    let max = recoveries.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{test}: recoveries {:?}, {} orders, {} stock changes",
        recoveries, load.orders, load.changes
    );
    invariants::assert_none(
        test,
        &violations,
        Figures {
            orders: load.orders as u64,
            faults,
            ..Figures::default()
        }
        .with("stock_changes", load.changes)
        .with("daemon_warnings", warnings.len())
        .with(
            "recovery_ms",
            recoveries
                .iter()
                .map(|d| d.as_millis().to_string())
                .collect::<Vec<_>>()
                .join("/"),
        )
        .with("max_recovery_ms", max.as_millis())
        .with("wall_s", started.elapsed().as_secs()),
    );
}

fn setup() -> Setup {
    Setup {
        channels: CHANNELS.to_vec(),
        skus: SKUS,
        quantity: 1000,
        ..Setup::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_restarted_twice_under_load_the_daemon_reconnects_by_itself() {
    if backend_name() != "postgres" {
        eprintln!(
            "skipped: restarts a PostgreSQL cluster (OMNISTOCK_TEST_DB=postgres://…); SQLite runs \
             sqlite_write_lock_held_under_load_the_daemon_waits_and_loses_nothing instead"
        );
        return;
    }
    let cluster = std::sync::Arc::new(PrivateCluster::start());
    let db = database_on(&cluster).await;
    let mut h = Harness::new_on(setup(), db).await;
    let c = std::sync::Arc::clone(&cluster);
    story(&mut h, "pg_restart", 2, move |_| {
        let c = std::sync::Arc::clone(&c);
        tokio::task::spawn_blocking(move || c.restart())
    })
    .await;
    h.finish().await;
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_write_lock_held_under_load_the_daemon_waits_and_loses_nothing() {
    if backend_name() != "sqlite" {
        eprintln!(
            "skipped: the SQLite analogue of postgres_crash_restarted_twice_under_load_the_daemon_\
             reconnects_by_itself"
        );
        return;
    }
    let mut h = Harness::new(setup()).await;
    let url = h.db.url.clone();
    story(&mut h, "sqlite_write_lock", 2, move |_| {
        let url = url.clone();
        tokio::spawn(async move {
            let mut conn = sqlx::AnyConnection::connect(&url)
                .await
                .expect("second connection");
            sqlx::query("PRAGMA busy_timeout = 15000")
                .execute(&mut conn)
                .await
                .expect("busy timeout");
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .expect("take the write lock");
            tokio::time::sleep(LOCK_HOLD).await;
            sqlx::query("COMMIT")
                .execute(&mut conn)
                .await
                .expect("release the write lock");
            conn.close().await.ok();
        })
    })
    .await;
    h.finish().await;
}
