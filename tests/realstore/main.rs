//! omnistock against real store software: a real Vendure 3.7.3 (started by `scripts/vendure`, on
//! loopback, a fresh sql.js database per test) as a `type = "vendure"` channel next to an eBay
//! channel on the sandbox, the daemon in this process, on SQLite or PostgreSQL
//! (`OMNISTOCK_TEST_DB`).
//!
//! When Vendure is not installed each test prints `SKIPPED: …` and passes, unless
//! `OMNISTOCK_REQUIRE_REALSTORE=1` (CI), which makes absence a failure.
//!
//! Run: `scripts/vendure install && cargo test -p omnistock --test realstore -- --nocapture`.

#[path = "../support/mod.rs"]
mod support;

mod vendure;

use std::time::{Duration, Instant};

use omnistock::catalog::import::{ImportOptions, import_bytes};
use omnistock::daemon::Daemon;
use omnistock::store::Store;
use omnistock::sync::SyncPlan;
use omnistock_sandbox::ebay::EbayOptions;
use omnistock_sandbox::{Sandbox, SandboxOptions};

use crate::support::fresh_db;
use crate::vendure::{Gql, Vendure};

/// Longest wait for the daemon to move something.
const CONVERGE: Duration = Duration::from_secs(60);

/// Waits (bounded) until `f` holds; panics with `what` and the Vendure log tail.
async fn eventually<F, Fut>(what: &str, v: &Vendure, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + CONVERGE;
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {CONVERGE:?} waiting for: {what}\nVendure log:\n{}",
            v.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What buyers can buy in Vendure (stockOnHand − stockAllocated), `None` without a variant or
/// when it is disabled.
async fn saleable(admin: &mut Gql, sku: &str) -> Option<i64> {
    let (_, on_hand, allocated, enabled) = vendure::variant(admin, sku).await?;
    enabled.then_some(on_hand - allocated)
}

async fn order_status(store: &Store, code: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM orders WHERE channel = 'vendure' AND external_id = $1")
        .bind(code)
        .fetch_optional(store.pool())
        .await
        .expect("orders")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendure_sells_and_omnistock_follows() {
    let test = "realstore::vendure_sells_and_omnistock_follows";
    if !vendure::installed(test) {
        return;
    }
    let started = Instant::now();
    let vendure = Vendure::start();
    eprintln!("{test}: Vendure ready in {:.1} s", vendure.start_secs);
    let mut admin = Gql::admin(&vendure.admin_url).await;

    // The merchant's store before omnistock: two products with stale stock; RS-NEW is not in
    // Vendure at all (omnistock creates it).
    let mug = vendure::create_variant(&mut admin, "RS-MUG", "Blue Mug", 1250, 2).await;
    vendure::create_variant(&mut admin, "RS-CUP", "Red Cup", 1250, 99).await;

    let sandbox = Sandbox::start(SandboxOptions {
        ebay: EbayOptions::unlimited(),
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    let ebay = sandbox.ebay();
    let creds = ebay.credentials();
    let base = format!("{}/ebay", sandbox.base_url());

    let db = fresh_db().await;
    let config_path = db.dir.path().join("omnistock.toml");
    let config = format!(
        r#"[daemon]
database = "{db}"
listen = "127.0.0.1:0"
lease_secs = 3
shutdown_timeout_secs = 5

[[locations]]
id = "main"

[channels.vendure]
type = "vendure"
endpoint = "{admin}"
username = "superadmin"
password = "superadmin"
poll_interval_secs = 1
order_overlap_secs = 2
stock = {{ buffer = 0 }}
limits = {{ retry_max_secs = 2, timeout_secs = 10 }}

[channels.ebay]
type = "ebay"
endpoint = "{base}"
token_endpoint = "{base}/identity/v1/oauth2/token"
client_id = "{client_id}"
client_secret = "{client_secret}"
refresh_token = "{refresh_token}"
marketplace_id = "EBAY_US"
merchant_location_key = "main"
policies = {{ fulfillment = "f", payment = "p", return = "r" }}
category_id = "29792"
poll_interval_secs = 1
order_overlap_secs = 5
stock = {{ buffer = 0 }}
limits = {{ retry_max_secs = 2, timeout_secs = 5 }}
"#,
        db = db.url,
        admin = vendure.admin_url,
        client_id = creds.client_id,
        client_secret = creds.client_secret,
        refresh_token = creds.refresh_token,
    );
    std::fs::write(&config_path, config).expect("write config");
    let cfg = omnistock::config::load(&config_path).expect("valid config");
    let plan = SyncPlan::from_config(&cfg);
    let store = Store::open(&db.url).await.expect("open store");
    omnistock::catalog::sync_locations(&store, &[("main".into(), "Main".into())])
        .await
        .expect("locations");
    let catalog = "sku,title,price,quantity\nRS-MUG,Blue Mug,12.50,10\nRS-CUP,Red Cup,12.50,5\nRS-NEW,Green Bowl,12.50,7\n";
    import_bytes(
        &store,
        &plan,
        catalog.as_bytes(),
        &ImportOptions {
            dry_run: false,
            default_location: "main".into(),
            locations: vec!["main".into()],
            default_currency: "USD".into(),
        },
    )
    .await
    .expect("import");

    let daemon = Daemon::start(&config_path).await.expect("daemon starts");

    // 1. omnistock pushes the catalog: Vendure's stock equals it (and RS-NEW was created).
    let want = [("RS-MUG", 10), ("RS-CUP", 5), ("RS-NEW", 7)];
    let t = Instant::now();
    eventually("Vendure shows the catalog's stock", &vendure, || {
        let url = vendure.admin_url.clone();
        async move {
            let mut admin = Gql::admin(&url).await;
            for (sku, qty) in want {
                if saleable(&mut admin, sku).await != Some(qty) {
                    return false;
                }
                let v = vendure::variant(&mut admin, sku).await.expect("variant");
                if v.1 != qty {
                    return false;
                }
            }
            true
        }
    })
    .await;
    for (sku, qty) in want {
        assert_eq!(
            vendure::variant(&mut admin, sku).await.map(|v| v.1),
            Some(qty),
            "{sku}: stockOnHand equals the catalog"
        );
    }
    eventually("eBay shows the catalog's stock", &vendure, || async {
        want.iter()
            .all(|(sku, qty)| ebay.current_quantity(sku) == Some(*qty as u32))
    })
    .await;
    eprintln!("{test}: initial sync in {:.1} s", t.elapsed().as_secs_f64());

    // 2. A guest buys 3 mugs in the Vendure shop: omnistock records the order and eBay drops.
    let t = Instant::now();
    let (order_id, code) = vendure::guest_checkout(&vendure.shop_url, &mug, 3).await;
    eventually("omnistock records the Vendure order", &vendure, || async {
        order_status(&store, &code).await.as_deref() == Some("paid")
    })
    .await;
    eventually("eBay shows 7 mugs", &vendure, || async {
        ebay.current_quantity("RS-MUG") == Some(7)
    })
    .await;
    // Vendure itself: 10 on hand, 3 allocated, 7 buyable — omnistock's push keeps it so.
    eventually("Vendure still sells 7 mugs", &vendure, || {
        let url = vendure.admin_url.clone();
        async move { saleable(&mut Gql::admin(&url).await, "RS-MUG").await == Some(7) }
    })
    .await;
    eprintln!(
        "{test}: order propagated in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 3. The merchant cancels it in Vendure: the stock comes back everywhere.
    let t = Instant::now();
    vendure::cancel_order(&mut admin, &order_id).await;
    eventually("omnistock sees the cancellation", &vendure, || async {
        order_status(&store, &code).await.as_deref() == Some("cancelled")
    })
    .await;
    eventually("eBay shows 10 mugs again", &vendure, || async {
        ebay.current_quantity("RS-MUG") == Some(10)
    })
    .await;
    eventually("Vendure sells 10 mugs again", &vendure, || {
        let url = vendure.admin_url.clone();
        async move { saleable(&mut Gql::admin(&url).await, "RS-MUG").await == Some(10) }
    })
    .await;
    eprintln!(
        "{test}: cancellation propagated in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE channel = 'vendure'")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(count, 1, "exactly one order, however often it was re-read");

    daemon.shutdown().await;
    store.close().await;
    sandbox.shutdown().await;
    drop(vendure);
    eprintln!(
        "{test}: done in {:.1} s on {}",
        started.elapsed().as_secs_f64(),
        support::backend_name()
    );
}
