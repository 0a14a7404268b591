//! The engine against the Amazon SP-API fake (beside an eBay one): listings, orders both ways,
//! FBA, coalescing, the JSON_LISTINGS_FEED path (per-message errors, FATAL, kill -9 mid-feed),
//! throttling, an outage and drift — on SQLite and PostgreSQL (`OMNISTOCK_TEST_DB`).

use omnistock_sandbox::ebay::OrderLine;
use omnistock_sandbox::{FaultKind, FaultRule, RateLimit};

use crate::helpers::{Harness, Setup, sku};
use crate::{CONVERGE, check_invariants, reserved, set_stock};

async fn count(h: &Harness, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(h.store.pool())
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazon_lists_everything_its_orders_reach_ebay_and_fba_orders_reserve_nothing() {
    let mut h = Harness::new(Setup {
        channels: vec!["ebay_us", "amazon_us"],
        skus: 6,
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    let amz = h.account("amazon_us").amazon();
    for s in &h.skus {
        let l = amz.listing(s).expect("listed on Amazon");
        assert!(l.status.iter().any(|x| x == "BUYABLE"), "{s}: {l:?}");
        assert_eq!(l.product_type, "PRODUCT");
        let price = amz.current_price(s).expect("priced");
        assert_eq!(
            (price.value.as_str(), price.currency.as_str()),
            ("12.50", "USD")
        );
    }

    // A merchant-fulfilled Amazon order lowers eBay too; its cancellation restores both.
    let order = h.account("amazon_us").place_order(&sku(1), 2);
    h.eventually("eBay shows 8", CONVERGE, || async {
        h.account("ebay_us").shown(&sku(1)) == Some(8)
    })
    .await;
    h.wait_converged(CONVERGE, &[]).await;
    assert_eq!(reserved(&h, &sku(1)).await, 2);
    h.account("amazon_us").cancel_order(&order);
    h.eventually("eBay shows 10 again", CONVERGE, || async {
        h.account("ebay_us").shown(&sku(1)) == Some(10)
    })
    .await;
    h.wait_converged(CONVERGE, &[]).await;
    assert_eq!(reserved(&h, &sku(1)).await, 0);

    // An eBay order lowers Amazon.
    h.account("ebay_us").place_order(&sku(3), 4);
    h.eventually("Amazon shows 6", CONVERGE, || async {
        h.account("amazon_us").shown(&sku(3)) == Some(6)
    })
    .await;

    // Amazon ships FBA orders from its own warehouse: recorded, nothing reserved.
    let fba = amz
        .place_fba_order(&[OrderLine::new(sku(2), 1)])
        .expect("FBA order");
    let sql = format!(
        "SELECT COUNT(*) FROM orders WHERE channel = 'amazon_us' AND external_id = '{fba}'"
    );
    h.eventually("the FBA order is recorded", CONVERGE, || async {
        count(&h, &sql).await == 1
    })
    .await;
    assert_eq!(reserved(&h, &sku(2)).await, 0);
    assert_eq!(h.account("ebay_us").shown(&sku(2)), Some(10));

    // 300 changes between pushes are one patch of the last value.
    h.stop_daemon().await;
    let s = sku(5);
    let before = amz.writes().iter().filter(|w| w.sku == s).count();
    for i in 0..300 {
        set_stock(&h, &s, 300 - i, &format!("burst:{i}")).await;
    }
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    let writes: Vec<_> = amz
        .writes()
        .into_iter()
        .filter(|w| w.sku == s)
        .skip(before)
        .collect();
    assert_eq!(writes.len(), 1, "one write expected, got {writes:?}");
    assert_eq!(writes[0].quantity, Some(1));
    check_invariants(&h).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_feed_the_restarted_daemon_polls_the_recorded_feed_and_never_resubmits() {
    let mut h = Harness::new(Setup {
        channels: vec!["amazon_us"],
        skus: 60,
        feed_processing_secs: 1,
        ..Setup::default()
    })
    .await;
    let amz = h.account("amazon_us").amazon();
    amz.hold_feeds(true);
    h.spawn_binary();
    h.eventually("a feed is recorded as submitted", CONVERGE, || async {
        count(
            &h,
            "SELECT COUNT(*) FROM bulk_jobs WHERE state = 'submitted'",
        )
        .await
            == 1
    })
    .await;
    assert_eq!(amz.request_count("createFeed"), 1);
    assert_eq!(
        amz.request_count("putListingsItem") + amz.request_count("patchListingsItem"),
        0,
        "60 new listings go as one feed, not one by one"
    );
    h.kill_binary();
    let polled = amz.request_count("getFeed");
    h.spawn_binary();
    h.eventually(
        "the restarted daemon polls the recorded feed",
        CONVERGE,
        || async { amz.request_count("getFeed") > polled },
    )
    .await;
    amz.hold_feeds(false);
    h.wait_converged(CONVERGE, &[]).await;
    assert_eq!(
        amz.request_count("createFeed"),
        1,
        "the feed was not submitted again"
    );
    assert_eq!(count(&h, "SELECT COUNT(*) FROM bulk_jobs").await, 0);
    let feeds = amz.feeds();
    assert_eq!(feeds.len(), 1);
    assert_eq!((feeds[0].status.as_str(), feeds[0].messages), ("DONE", 60));
    h.kill_binary();
    check_invariants(&h).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_message_error_quarantines_one_item_and_a_fatal_feed_retries_every_item() {
    let mut h = Harness::new(Setup {
        channels: vec!["amazon_us"],
        skus: 80,
        feed_processing_secs: 1,
        ..Setup::default()
    })
    .await;
    let amz = h.account("amazon_us").amazon();
    let bad = sku(3);
    amz.faults().add(FaultRule::new(
        "amazon",
        "*",
        FaultKind::reject_skus(
            [bad.clone()],
            90220,
            "'brand' is required but not supplied.",
        ),
    ));
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[&bad]).await;
    let feeds = amz.feeds();
    assert_eq!(feeds.len(), 1, "{feeds:?}");
    assert_eq!(feeds[0].status, "DONE");
    let (state, error): (String, Option<String>) = sqlx::query_as(
        "SELECT state, last_error FROM channel_items WHERE channel = 'amazon_us' AND sku = $1",
    )
    .bind(&bad)
    .fetch_one(h.store.pool())
    .await
    .expect("row");
    assert_eq!(state, "quarantined");
    let error = error.unwrap_or_default();
    assert!(error.contains("90220"), "{error}");
    assert!(
        amz.listing(&bad).is_none(),
        "the rejected message was not applied"
    );
    let (ok, status, _) = h.cli(&["status"]);
    assert!(ok);
    assert!(
        status.contains(&bad) && status.contains("90220"),
        "{status}"
    );

    // The next feed ends FATAL: nothing is lost, every item goes out again (one by one while
    // the connector cools the feed path down).
    amz.fail_next_feeds(1);
    for (i, s) in h.skus.iter().enumerate() {
        set_stock(&h, s, 2 + (i % 5) as i64, &format!("fatal:{s}")).await;
    }
    h.eventually("a feed ended FATAL", CONVERGE, || async {
        amz.feeds().iter().any(|f| f.status == "FATAL")
    })
    .await;
    h.wait_converged(CONVERGE, &[&bad]).await;
    assert!(amz.request_count("patchListingsItem") > 0);
    check_invariants(&h).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazon_429s_and_an_outage_lose_nothing_and_drift_is_repaired() {
    let mut h = Harness::new(Setup {
        channels: vec!["amazon_us"],
        skus: 12,
        // The connector believes it may send fast; the marketplace disagrees.
        limits: "{ rate_per_sec = 100.0, burst = 50, retry_max_secs = 2, timeout_secs = 5 }",
        ..Setup::default()
    })
    .await;
    let amz = h.account("amazon_us").amazon();
    for op in ["putListingsItem", "patchListingsItem"] {
        amz.set_rate_limit(op, Some(RateLimit::new(4.0, 2)));
    }
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    assert!(amz.count_429() > 0, "the storm happened");
    assert_eq!(
        count(
            &h,
            "SELECT COUNT(*) FROM channel_items WHERE state = 'quarantined'"
        )
        .await,
        0,
        "a 429 burns no attempt"
    );

    // Down: every SP-API call answers 503 while stock changes.
    let outage = amz
        .faults()
        .add(FaultRule::new("amazon", "*", FaultKind::server_error(503)));
    for s in h.skus.iter().take(4) {
        set_stock(&h, s, 1, &format!("outage:{s}")).await;
    }
    h.eventually("the outage is hit", CONVERGE, || async {
        amz.faults().fired(outage) >= 3
    })
    .await;
    amz.faults().remove(outage);
    h.wait_converged(CONVERGE, &[]).await;

    // Drift: someone edits a quantity in Seller Central; resync finds and repairs it.
    amz.set_quantity_out_of_band(&sku(7), 99).expect("drift");
    let (ok, out, err) = h.cli(&["resync", "--channel", "amazon_us", "--dry-run"]);
    assert!(ok, "{err}");
    assert!(out.contains(&sku(7)), "{out}");
    assert_eq!(
        amz.current_quantity(&sku(7)),
        Some(99),
        "dry run changes nothing"
    );
    let (ok, _, err) = h.cli(&["resync", "--channel", "amazon_us", "--wait-secs", "30"]);
    assert!(ok, "{err}");
    h.wait_converged(CONVERGE, &[]).await;
    assert_eq!(amz.current_quantity(&sku(7)), Some(10));
    check_invariants(&h).await;
    h.finish().await;
}
