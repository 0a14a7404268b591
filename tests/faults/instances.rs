//! Several instances on one PostgreSQL (issue 6 §1): channels spread over the live instances, a
//! killed instance's channels are taken over within the lease time, a frozen owner that wakes up
//! after losing its lease sends nothing more, and schedules fire once per tick across instances.
//! On SQLite the multi-instance tests check the refusal of a second daemon instead (SQLite mode
//! is single-instance by design).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use omnistock::catalog::{StockChange, change_stock};
use omnistock::store::{Store, now_ms};

use crate::helpers::{Harness, Setup};
use crate::invariants::{self, Expect};
use crate::summary::{self, Figures};

/// The harness's lease lifetime (`lease_secs = 3`).
const LEASE: Duration = Duration::from_secs(3);

/// One `omnistock run` child process with its own log file.
struct Instance {
    child: Option<Child>,
    log: PathBuf,
}

impl Instance {
    fn spawn(h: &Harness, name: &str) -> Instance {
        let log = h.db.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_omnistock"))
            .arg("--config")
            .arg(&h.config_path)
            .arg("run")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn omnistock run");
        Instance {
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // A stopped process must be continued to die cleanly on SIGKILL's reap.
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.kill9();
    }
}

/// Channel → pid of the instance holding its lease now (owner ids are `daemon@host:pid:rand`).
async fn owners(store: &Store) -> BTreeMap<String, u32> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, owner FROM leases WHERE expires_at > $1")
            .bind(now_ms())
            .fetch_all(store.pool())
            .await
            .expect("leases");
    rows.into_iter()
        .filter_map(|(name, owner)| {
            let channel = name.strip_prefix("channel:")?.to_owned();
            let pid = owner.split(':').nth(1)?.parse().ok()?;
            Some((channel, pid))
        })
        .collect()
}

fn count_for(owners: &BTreeMap<String, u32>, pid: u32) -> usize {
    owners.values().filter(|p| **p == pid).count()
}

async fn set_all(h: &Harness, qty: i64, tag: &str) {
    for s in &h.skus {
        change_stock(
            &h.store,
            &h.plan,
            s,
            "main",
            StockChange::Set(qty),
            &format!("{tag}:{s}"),
        )
        .await
        .expect("stock change");
    }
}

/// SQLite mode: a second daemon on the same file is refused at once with the first one's pid, and
/// the first keeps working.
async fn sqlite_refuses_a_second_instance(h: &Harness, test: &str) {
    let first = Instance::spawn(h, "first");
    h.eventually(
        "the first daemon owns its channels",
        Duration::from_secs(30),
        || async { count_for(&owners(&h.store).await, first.pid()) == h.accounts.len() },
    )
    .await;
    let out = Command::new(env!("CARGO_BIN_EXE_omnistock"))
        .arg("--config")
        .arg(&h.config_path)
        .arg("run")
        .output()
        .expect("second daemon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a second SQLite daemon must not start"
    );
    assert!(
        err.contains("SQLite mode runs one daemon") && err.contains(&first.pid().to_string()),
        "the refusal says why and names the running one:\n{err}"
    );
    summary::record(
        test,
        &Figures::default().with("sqlite", "second instance refused (single-instance mode)"),
    );
}

/// A harness for a multi-instance test; on SQLite, checks the refusal of a second daemon instead,
/// records it and returns `None`.
async fn postgres_world(setup: Setup, test: &str) -> Option<Harness> {
    let h = Harness::new(setup).await;
    if h.db.is_postgres() {
        return Some(h);
    }
    sqlite_refuses_a_second_instance(&h, test).await;
    h.finish().await;
    None
}

/// Spawns instance `name` and waits until it owns `n` channels.
async fn spawn_owning(h: &Harness, name: &str, n: usize) -> Instance {
    let i = Instance::spawn(h, name);
    h.eventually(
        &format!("instance {name} owns {n} channels"),
        Duration::from_secs(30),
        || async { count_for(&owners(&h.store).await, i.pid()) == n },
    )
    .await;
    i
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_spread_the_channels_and_the_survivor_takes_over_a_killed_one() {
    const TEST: &str = "instances_takeover";
    let Some(h) = postgres_world(
        Setup {
            channels: vec!["ebay_us", "ebay_de", "shopify_shop", "woo_shop"],
            skus: 12,
            latency: Duration::from_millis(20),
            ..Setup::default()
        },
        TEST,
    )
    .await
    else {
        return;
    };
    let a = spawn_owning(&h, "a", 4).await;
    h.wait_converged(Duration::from_secs(60), &[]).await;

    // A second instance joins: the channels spread 2 + 2.
    let joined = Instant::now();
    let mut b = Instance::spawn(&h, "b");
    h.eventually(
        "the channels spread over both instances",
        Duration::from_secs(30),
        || async {
            let o = owners(&h.store).await;
            o.len() == 4 && count_for(&o, a.pid()) == 2 && count_for(&o, b.pid()) == 2
        },
    )
    .await;
    let spread_ms = joined.elapsed().as_millis();

    // Orders on every channel (each instance ingests its own), SKUs only ever lowered.
    let mut placed = 0usize;
    for (i, acc) in h.accounts.iter().enumerate() {
        acc.place_order(&h.skus[i], 1);
        acc.place_order(&h.skus[4 + i], 2);
        placed += 2;
    }
    h.eventually("every order recorded", Duration::from_secs(30), || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(h.store.pool())
            .await
            .unwrap_or(0);
        n == placed as i64
    })
    .await;

    // Kill B with work in flight: more orders, then kill -9 at once.
    for (i, acc) in h.accounts.iter().enumerate() {
        acc.place_order(&h.skus[8 + (i % 4)], 1);
        placed += 1;
    }
    let b_channels: Vec<String> = owners(&h.store)
        .await
        .into_iter()
        .filter(|(_, p)| *p == b.pid())
        .map(|(c, _)| c)
        .collect();
    let killed = Instant::now();
    b.kill9();
    h.eventually(
        "instance A takes over B's channels",
        Duration::from_secs(30),
        || async { count_for(&owners(&h.store).await, a.pid()) == 4 },
    )
    .await;
    let takeover_ms = killed.elapsed().as_millis();
    assert!(
        takeover_ms <= (LEASE + Duration::from_millis(2500)).as_millis(),
        "takeover took {takeover_ms} ms; the lease is {LEASE:?}"
    );
    let only_lowered: Vec<String> = h.skus.clone();
    let violations = invariants::check(
        &h,
        &Expect {
            orders: placed,
            only_lowered,
            ..Expect::default()
        },
    )
    .await;
    invariants::assert_none(
        TEST,
        &violations,
        Figures {
            kills: 1,
            orders: placed as u64,
            faults: 1,
            ..Figures::default()
        }
        .with("spread_ms", spread_ms)
        .with("takeover_ms", takeover_ms)
        .with("taken_over", b_channels.join("+")),
    );
    drop(a);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_owner_that_lost_its_lease_sends_nothing_when_it_wakes() {
    const TEST: &str = "instances_frozen_owner";
    // Two pushes a second at most and two SKUs a call: a change of six SKUs takes three calls, so
    // the owner is waiting in its rate budget with batches built when it is frozen.
    let Some(h) = postgres_world(
        Setup {
            channels: vec!["ebay_us", "ebay_de"],
            skus: 6,
            limits: "{ rate_per_sec = 1.0, burst = 1, batch_size = 2, retry_max_secs = 2, timeout_secs = 5 }",
            ..Setup::default()
        },
        TEST,
    )
    .await
    else {
        return;
    };
    let a = spawn_owning(&h, "a", 2).await;
    let b = Instance::spawn(&h, "b");
    h.eventually("one channel each", Duration::from_secs(30), || async {
        let o = owners(&h.store).await;
        count_for(&o, a.pid()) == 1 && count_for(&o, b.pid()) == 1
    })
    .await;
    h.wait_converged(Duration::from_secs(90), &[]).await;
    let o = owners(&h.store).await;
    let x = o
        .iter()
        .find(|(_, p)| **p == b.pid())
        .map(|(c, _)| c.clone())
        .expect("B owns a channel");
    let acc = h.account(&x);

    // v1 goes out; freeze B as soon as its first call of v1 landed (the rest wait in its budget).
    let before = acc.sandbox.writes().len();
    set_all(&h, 7, "v1").await;
    h.eventually("B starts pushing v1", Duration::from_secs(20), || async {
        acc.sandbox.writes()[before..]
            .iter()
            .any(|w| w.quantity == Some(7) || w.visible_quantity == Some(7))
    })
    .await;
    b.signal("STOP");
    let frozen = Instant::now();
    // v1 is stale now: v2 must win everywhere.
    set_all(&h, 4, "v2").await;
    h.eventually(
        "A takes over the frozen owner's channel",
        Duration::from_secs(30),
        || async { owners(&h.store).await.get(&x) == Some(&a.pid()) },
    )
    .await;
    let takeover_ms = frozen.elapsed().as_millis();
    h.wait_converged(Duration::from_secs(60), &[]).await;

    // Wake B: it must notice the loss and send none of the batches it had built.
    let checkpoint = acc.sandbox.writes().len();
    b.signal("CONT");
    h.eventually(
        "B notices it lost the lease",
        Duration::from_secs(20),
        || async { b.log_text().contains("Lost the channel lease") },
    )
    .await;
    // Fair share gives B a channel back; by then anything B still had in hand was tried.
    h.eventually(
        "the channels spread again",
        Duration::from_secs(30),
        || async {
            let o = owners(&h.store).await;
            count_for(&o, a.pid()) == 1 && count_for(&o, b.pid()) == 1
        },
    )
    .await;
    h.wait_converged(Duration::from_secs(60), &[]).await;
    let stale: Vec<String> = acc.sandbox.writes()[checkpoint..]
        .iter()
        .filter(|w| w.quantity == Some(7) || w.visible_quantity == Some(7))
        .map(|w| format!("{} {} {:?}", w.operation, w.sku, w.quantity))
        .collect();
    let held_back = b
        .log_text()
        .matches("not recorded: the lease was lost")
        .count();
    let mut violations = invariants::check(&h, &Expect::default()).await;
    if !stale.is_empty() {
        violations.push(format!(
            "the woken owner sent stale values after losing its lease: {stale:?}"
        ));
    }
    invariants::assert_none(
        TEST,
        &violations,
        Figures {
            kills: 1,
            faults: 1,
            ..Figures::default()
        }
        .with("frozen_takeover_ms", takeover_ms)
        .with("rounds_held_back", held_back),
    );
    drop((a, b));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_once_per_tick_across_instances() {
    // Three runners of one every-second schedule on one database (three instances' schedulers,
    // all eligible): every tick runs exactly once.
    let db = crate::support::fresh_db().await;
    let store = Store::open(&db.url).await.expect("store");
    let schedule = omnistock::config::parse_schedule("* * * * * *").expect("cron");
    let runs: Arc<std::sync::Mutex<Vec<i64>>> = Arc::default();
    let total = Arc::new(AtomicU64::new(0));
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let runs = Arc::clone(&runs);
        let total = Arc::clone(&total);
        tasks.push(tokio::spawn(omnistock::schedule::run_schedule(
            store.clone(),
            "fleet:reconcile".into(),
            schedule.clone(),
            cancel.clone(),
            || true,
            move |tick| {
                runs.lock().unwrap().push(tick);
                total.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            },
        )));
    }
    let started = Instant::now();
    while total.load(Ordering::SeqCst) < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the schedule did not fire"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    for t in tasks {
        t.await.expect("runner");
    }
    let mut ticks = runs.lock().unwrap().clone();
    let n = ticks.len();
    ticks.sort_unstable();
    ticks.dedup();
    assert_eq!(ticks.len(), n, "a tick ran more than once: {ticks:?}");
    summary::record(
        "schedule_once_per_tick",
        &Figures::default()
            .with("runners", 3)
            .with("ticks", n)
            .with("doubled", 0),
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_orders_for_the_last_unit_through_two_instances_reserve_it_once() {
    const TEST: &str = "instances_last_unit";
    const ORDERS: usize = 100;
    let Some(h) = postgres_world(
        Setup {
            channels: vec!["ebay_us", "shopify_shop", "woo_shop"],
            skus: 1,
            quantity: 1,
            latency: Duration::from_millis(20),
            ..Setup::default()
        },
        TEST,
    )
    .await
    else {
        return;
    };
    let a = Instance::spawn(&h, "a");
    let b = Instance::spawn(&h, "b");
    h.eventually(
        "the channels spread over both instances",
        Duration::from_secs(30),
        || async {
            let o = owners(&h.store).await;
            o.len() == 3 && count_for(&o, a.pid()) >= 1 && count_for(&o, b.pid()) >= 1
        },
    )
    .await;
    h.wait_converged(Duration::from_secs(60), &[]).await;
    let last = h.skus[0].clone();
    for acc in &h.accounts {
        crate::util::allow_oversell(acc);
    }
    // 100 buyers released together, spread over the three marketplaces (so over both instances).
    let barrier = Arc::new(std::sync::Barrier::new(ORDERS));
    std::thread::scope(|scope| {
        for i in 0..ORDERS {
            let acc = &h.accounts[i % h.accounts.len()];
            let barrier = Arc::clone(&barrier);
            let last = last.clone();
            scope.spawn(move || {
                barrier.wait();
                acc.place_order(&last, 1);
            });
        }
    });
    // Both instances ingest their channels' orders; wait until all are in (bounded), then check.
    crate::util::wait_for(Duration::from_secs(60), || async {
        crate::util::orders_recorded(&h).await == ORDERS as i64
    })
    .await;
    let mut v = invariants::check(
        &h,
        &Expect {
            orders: ORDERS,
            only_lowered: vec![last.clone()],
            ..Expect::default()
        },
    )
    .await;
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, reserved_qty FROM order_lines WHERE sku = $1")
            .bind(&last)
            .fetch_all(h.store.pool())
            .await
            .expect("order lines");
    let open = states
        .iter()
        .filter(|(s, r)| s == "open" && *r == 1)
        .count();
    let oversold = states
        .iter()
        .filter(|(s, r)| s == "oversold" && *r == 0)
        .count();
    if states.len() != ORDERS || open != 1 || oversold != ORDERS - 1 {
        v.push(format!(
            "{} lines: {open} open holding the unit, {oversold} oversold; expected 1 and {}",
            states.len(),
            ORDERS - 1
        ));
    }
    let level = crate::util::level(&h, &last).await;
    if level != (1, 1) {
        v.push(format!(
            "{last}: (on_hand, reserved) {level:?}, expected (1, 1)"
        ));
    }
    for acc in &h.accounts {
        if acc.shown(&last) != Some(0) {
            v.push(format!(
                "{} shows {:?}, expected 0",
                acc.id,
                acc.shown(&last)
            ));
        }
    }
    let o = owners(&h.store).await;
    invariants::assert_none(
        TEST,
        &v,
        Figures {
            orders: ORDERS as u64,
            faults: ORDERS as u64 - 1,
            ..Figures::default()
        }
        .with("instances", 2)
        .with("channels_a", count_for(&o, a.pid()))
        .with("channels_b", count_for(&o, b.pid()))
        .with("oversold_lines", oversold),
    );
    drop((a, b));
    h.finish().await;
}
