//! The sync engine end to end against the eBay sandbox, on SQLite and PostgreSQL
//! (`OMNISTOCK_TEST_DB`): initial sync, orders, cancellation, coalescing, throttling and outage,
//! one bad item, kill -9, drift and resync.

#[path = "../support/mod.rs"]
mod support;

mod amazon;
mod bulk;
mod channels;
mod demo_config;
mod helpers;
mod webhooks;

use std::time::Duration;

use omnistock::catalog::{StockChange, change_stock};
use omnistock_sandbox::ebay::OrderLine;
use omnistock_sandbox::{FaultKind, FaultRule};

use helpers::{Harness, Setup, sku};

const CONVERGE: Duration = Duration::from_secs(30);

async fn set_stock(h: &Harness, sku: &str, qty: i64, key: &str) {
    change_stock(&h.store, &h.plan, sku, "main", StockChange::Set(qty), key)
        .await
        .expect("stock change");
}

async fn reserved(h: &Harness, sku: &str) -> i64 {
    sqlx::query_scalar("SELECT reserved FROM stock_levels WHERE sku = $1 AND location = 'main'")
        .bind(sku)
        .fetch_one(h.store.pool())
        .await
        .expect("reserved")
}

async fn check_invariants(h: &Harness) {
    let ledger = omnistock::catalog::verify_ledger(&h.store)
        .await
        .expect("verify ledger");
    assert!(ledger.is_empty(), "ledger mismatches: {ledger:?}");
    let i3 = omnistock::orders::reserved_matches_open_lines(&h.store)
        .await
        .expect("I3");
    assert!(i3.is_empty(), "reserved != open lines: {i3:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_lists_everything_everywhere() {
    let mut h = Harness::new(Setup {
        skus: 30,
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    for a in &h.accounts {
        for s in &h.skus {
            let listing = a.ebay().listing(s).expect("listed");
            assert_eq!(a.ebay().current_quantity(s), Some(10), "{} {s}", a.id);
            let price = a.ebay().current_price(s).expect("priced");
            assert_eq!(price.value, "12.50", "{} {s}: {listing:?}", a.id);
        }
    }
    // A change to every SKU travels in bulk calls of at most 25 (the sandbox refuses more).
    for (i, s) in h.skus.iter().enumerate() {
        set_stock(&h, s, 3 + i as i64, &format!("t:{s}")).await;
    }
    h.wait_converged(CONVERGE, &[]).await;
    let bulk = h.accounts[0]
        .ebay()
        .request_count("bulkUpdatePriceQuantity");
    assert!(
        (2..=4).contains(&bulk),
        "30 changes should take 2 bulk calls (a few more if they straddle rounds), took {bulk}"
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_lowers_every_channel_and_a_cancellation_restores_it() {
    let mut h = Harness::new(Setup::default()).await;
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    let s = sku(3);
    let order = h
        .account("ebay_us")
        .ebay()
        .place_order(&[OrderLine::new(s.clone(), 2)])
        .expect("order");
    h.eventually("both channels show 8", CONVERGE, || async {
        h.accounts
            .iter()
            .all(|a| a.ebay().current_quantity(&s) == Some(8))
    })
    .await;
    assert_eq!(reserved(&h, &s).await, 2);
    h.wait_converged(CONVERGE, &[]).await;
    check_invariants(&h).await;

    h.account("ebay_us")
        .ebay()
        .cancel_order(&order)
        .expect("cancel");
    h.eventually("both channels show 10 again", CONVERGE, || async {
        h.accounts
            .iter()
            .all(|a| a.ebay().current_quantity(&s) == Some(10))
    })
    .await;
    assert_eq!(reserved(&h, &s).await, 0);
    let status: String = sqlx::query_scalar(
        "SELECT status FROM orders WHERE channel = 'ebay_us' AND external_id = $1",
    )
    .bind(&order)
    .fetch_one(h.store.pool())
    .await
    .expect("order row");
    assert_eq!(status, "cancelled");
    check_invariants(&h).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_changes_between_pushes_are_one_push_of_the_last_value() {
    let mut h = Harness::new(Setup {
        channels: vec!["ebay_us"],
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    h.stop_daemon().await;
    let s = sku(1);
    let before = h.accounts[0]
        .ebay()
        .writes()
        .iter()
        .filter(|w| w.sku == s)
        .count();
    for i in 0..1000 {
        set_stock(&h, &s, 1000 - i, &format!("burst:{i}")).await;
    }
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    let writes: Vec<_> = h.accounts[0]
        .ebay()
        .writes()
        .into_iter()
        .filter(|w| w.sku == s)
        .skip(before)
        .collect();
    assert_eq!(writes.len(), 1, "one push expected, got {writes:?}");
    assert_eq!(writes[0].quantity, Some(1));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_and_a_60_s_outage_lose_nothing() {
    let mut h = Harness::new(Setup::default()).await;
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    let us = h.account("ebay_us");
    // A storm: the next 30 requests to the US account are throttled.
    let storm = us.sandbox.faults().add(
        FaultRule::new(
            "ebay",
            "*",
            FaultKind::TooManyRequests {
                retry_after_secs: Some(1),
            },
        )
        .times(30),
    );
    for s in &h.skus {
        set_stock(&h, s, 7, &format!("storm:{s}")).await;
    }
    h.wait_converged(CONVERGE, &[]).await;
    assert!(us.sandbox.faults().fired(storm) > 0, "the storm happened");

    // An outage of the US account for 60 s while orders arrive on the German one.
    let outage = us.sandbox.faults().add(FaultRule::new(
        "ebay",
        "*",
        FaultKind::ServerError {
            status: 503,
            body: None,
        },
    ));
    let de = h.account("ebay_de");
    let mut orders = Vec::new();
    for i in 0..5 {
        orders.push(
            de.ebay()
                .place_order(&[OrderLine::new(sku(i), 1)])
                .expect("order"),
        );
    }
    // The US account sells too while its API is down; the poller must catch up afterwards.
    us.ebay()
        .place_order(&[OrderLine::new(sku(9), 2)])
        .expect("order during outage");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(us.sandbox.faults().fired(outage) > 0, "the outage was hit");
    us.sandbox.faults().remove(outage);
    h.wait_converged(CONVERGE, &[]).await;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(h.store.pool())
        .await
        .expect("orders");
    assert_eq!(count, 6, "every order recorded once");
    for i in 0..5 {
        assert_eq!(us.ebay().current_quantity(&sku(i)), Some(6));
    }
    assert_eq!(de.ebay().current_quantity(&sku(9)), Some(5));
    check_invariants(&h).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_invalid_item_in_a_batch_of_25_does_not_block_the_other_24() {
    let mut h = Harness::new(Setup {
        channels: vec!["ebay_us"],
        skus: 25,
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    let bad = sku(7);
    h.accounts[0].sandbox.faults().add(FaultRule::new(
        "ebay",
        "bulkUpdatePriceQuantity",
        FaultKind::RejectSkus {
            skus: vec![bad.clone()],
            status: 400,
            error_id: 25_004,
            message: "The quantity is not valid for this listing.".into(),
        },
    ));
    for s in &h.skus {
        set_stock(&h, s, 4, &format!("batch:{s}")).await;
    }
    h.wait_converged(CONVERGE, &[bad.as_str()]).await;
    assert_eq!(h.accounts[0].ebay().current_quantity(&bad), Some(10));
    let (state, error): (String, Option<String>) = sqlx::query_as(
        "SELECT state, last_error FROM channel_items WHERE channel = 'ebay_us' AND sku = $1",
    )
    .bind(&bad)
    .fetch_one(h.store.pool())
    .await
    .expect("row");
    assert_eq!(state, "quarantined");
    let error = error.unwrap_or_default();
    assert!(error.contains("25004"), "marketplace error kept: {error}");
    let status = omnistock::status::read(&h.store, &[("ebay_us".into(), "ebay".into())])
        .await
        .expect("status");
    assert_eq!(status.channels[0].quarantined, 1);
    assert_eq!(status.channels[0].dirty, 1);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_batch_restart_converges_and_counts_no_order_twice() {
    let mut h = Harness::new(Setup {
        channels: vec!["ebay_us", "ebay_de"],
        skus: 30,
        latency: Duration::from_millis(150),
        ..Setup::default()
    })
    .await;
    let mut placed = 0i64;
    for round in 0..3 {
        h.spawn_binary();
        // Let it get going: some writes land, then kill it in the middle of its work.
        let target = 5 + round * 7;
        h.eventually("the daemon pushes", CONVERGE, || async {
            h.accounts[0].ebay().writes().len() >= target
        })
        .await;
        if round > 0 {
            h.eventually("the SKU is live on ebay_de", CONVERGE, || async {
                h.accounts[1]
                    .ebay()
                    .listing(&sku(round))
                    .is_some_and(|l| l.listing_id.is_some() && l.visible_quantity > Some(0))
            })
            .await;
            h.accounts[1]
                .ebay()
                .place_order(&[OrderLine::new(sku(round), 1)])
                .expect("order");
            placed += 1;
            for s in h.skus.iter().take(20) {
                set_stock(&h, s, 20 + round as i64, &format!("k{round}:{s}")).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200 + 90 * round as u64)).await;
        h.kill_binary();
    }
    h.spawn_binary();
    h.eventually("every order recorded", CONVERGE, || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(h.store.pool())
            .await
            .unwrap_or(0);
        n == placed
    })
    .await;
    h.wait_converged(Duration::from_secs(60), &[]).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(h.store.pool())
        .await
        .expect("orders");
    assert_eq!(n, placed, "no order counted twice");
    check_invariants(&h).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_found_by_dry_run_and_repaired_by_resync() {
    let mut h = Harness::new(Setup {
        channels: vec!["ebay_us"],
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    h.stop_daemon().await;
    let ebay = h.accounts[0].ebay();
    let s = sku(3);
    ebay.set_quantity_out_of_band(&s, 99).expect("drift");

    let (ok, out, err) = h.cli(&["resync", "--dry-run"]);
    assert!(ok, "dry run failed: {err}");
    assert!(
        out.contains(&format!("{s}: quantity 99 on the channel, should be 10")),
        "dry run shows the drift:\n{out}"
    );
    assert_eq!(
        ebay.current_quantity(&s),
        Some(99),
        "dry run changes nothing"
    );

    // No daemon: resync pushes itself.
    let (ok, out, err) = h.cli(&["resync"]);
    assert!(ok, "resync failed: {out}\n{err}");
    assert_eq!(ebay.current_quantity(&s), Some(10));
    assert!(out.contains("1 listing(s) marked, 1 confirmed"), "{out}");

    // A daemon owns the channel: resync marks, the daemon pushes, resync waits for it.
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    ebay.set_quantity_out_of_band(&sku(5), 0).expect("drift");
    let (ok, out, err) = h.cli(&["resync", "--channel", "ebay_us"]);
    assert!(ok, "resync with a daemon failed: {out}\n{err}");
    assert_eq!(ebay.current_quantity(&sku(5)), Some(10));
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sync_events WHERE kind = 'drift'")
        .fetch_one(h.store.pool())
        .await
        .expect("events");
    assert_eq!(events, 2);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_events_older_than_the_retention_are_pruned() {
    let mut h = Harness::new(Setup {
        channels: vec!["ebay_us"],
        ..Setup::default()
    })
    .await;
    let old =
        omnistock::store::now_ms() - omnistock::daemon::EVENT_RETENTION.as_millis() as i64 - 1;
    for (at, detail) in [(old, "old"), (omnistock::store::now_ms(), "recent")] {
        sqlx::query("INSERT INTO sync_events (channel, sku, kind, detail, at) VALUES ('ebay_us', 'X', 'drift', $1, $2)")
            .bind(detail)
            .bind(at)
            .execute(h.store.pool())
            .await
            .expect("event");
    }
    h.start_daemon().await;
    h.eventually("the old event is pruned", CONVERGE, || async {
        let left: Vec<String> =
            sqlx::query_scalar("SELECT detail FROM sync_events WHERE sku = 'X'")
                .fetch_all(h.store.pool())
                .await
                .unwrap_or_default();
        left == ["recent"]
    })
    .await;
    h.finish().await;
}
