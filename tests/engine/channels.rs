//! The same stories for every marketplace: each channel type runs beside an eBay channel
//! (`ebay_us`) against its fake, on SQLite and PostgreSQL (`OMNISTOCK_TEST_DB`):
//! convergence, orders both ways, cancellation, coalescing, throttling, an outage, one bad item,
//! drift repair, and — for marketplaces that send them — webhooks waking the poller.
//!
//! Each story is a function of the channel id (whose prefix picks the marketplace, see
//! [`Kind`](crate::helpers::Kind)); `stories!` instantiates every story for one channel type.

use std::time::{Duration, Instant};

use omnistock_sandbox::{FaultKind, FaultRule};

use crate::helpers::{Harness, Setup, sku};
use crate::{CONVERGE, check_invariants, reserved, set_stock};

const PARTNER: &str = "ebay_us";

async fn orders(h: &Harness, channel: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE channel = $1")
        .bind(channel)
        .fetch_one(h.store.pool())
        .await
        .expect("orders")
}

async fn item_state(h: &Harness, channel: &str, sku: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT state, last_error FROM channel_items WHERE channel = $1 AND sku = $2")
        .bind(channel)
        .bind(sku)
        .fetch_one(h.store.pool())
        .await
        .expect("channel item")
}

/// A harness with `channels` and `skus` generated SKUs, its daemon started and converged.
async fn started(channels: Vec<&'static str>, skus: usize) -> Harness {
    let mut h = Harness::new(Setup {
        channels,
        skus,
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    h
}

/// Initial listing, an order on the channel reaching eBay, its cancellation restoring both, and an
/// eBay order reaching the channel.
pub async fn converges_and_orders_flow_both_ways(id: &'static str) {
    let h = started(vec![PARTNER, id], 6).await;
    for s in &h.skus {
        assert_eq!(h.account(id).shown(s), Some(10), "{id} lists {s}");
    }

    let order = h.account(id).place_order(&sku(1), 2);
    h.eventually("eBay shows 8", CONVERGE, || async {
        h.account(PARTNER).shown(&sku(1)) == Some(8)
    })
    .await;
    h.wait_converged(CONVERGE, &[]).await;
    assert_eq!(reserved(&h, &sku(1)).await, 2);
    assert_eq!(orders(&h, id).await, 1);

    h.account(id).cancel_order(&order);
    h.eventually("eBay shows 10 again", CONVERGE, || async {
        h.account(PARTNER).shown(&sku(1)) == Some(10)
    })
    .await;
    h.wait_converged(CONVERGE, &[]).await;
    assert_eq!(reserved(&h, &sku(1)).await, 0);
    let status: String =
        sqlx::query_scalar("SELECT status FROM orders WHERE channel = $1 AND external_id = $2")
            .bind(id)
            .bind(&order)
            .fetch_one(h.store.pool())
            .await
            .expect("order row");
    assert_eq!(status, "cancelled");

    h.account(PARTNER).place_order(&sku(3), 4);
    h.eventually(&format!("{id} shows 6"), CONVERGE, || async {
        h.account(id).shown(&sku(3)) == Some(6)
    })
    .await;
    h.wait_converged(CONVERGE, &[]).await;
    check_invariants(&h).await;
    h.finish().await;
}

/// 200 changes while the daemon is down are one write of the last value.
pub async fn changes_between_pushes_coalesce(id: &'static str) {
    let mut h = started(vec![id], 3).await;
    h.stop_daemon().await;
    let s = sku(1);
    let before = h.account(id).writes_for(&s).len();
    for i in 0..200 {
        set_stock(&h, &s, 200 - i, &format!("burst:{i}")).await;
    }
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    let writes: Vec<_> = h
        .account(id)
        .writes_for(&s)
        .into_iter()
        .skip(before)
        .collect();
    assert_eq!(writes.len(), 1, "one write expected, got {writes:?}");
    assert_eq!(writes[0].quantity, Some(1), "{writes:?}");
    h.finish().await;
}

/// The marketplace's own throttling model tightened, then a storm of 429s: everything converges,
/// nothing is quarantined.
pub async fn throttling_loses_nothing(id: &'static str) {
    let h = started(vec![id], 20).await;
    let a = h.account(id);
    a.throttle();
    for (i, s) in h.skus.iter().enumerate() {
        set_stock(&h, s, 3 + i as i64, &format!("paced:{s}")).await;
    }
    h.wait_converged(Duration::from_secs(60), &[]).await;

    let market = a.kind().market();
    let storm = a.sandbox.faults().add(
        FaultRule::new(
            market,
            "*",
            FaultKind::TooManyRequests {
                retry_after_secs: Some(1),
            },
        )
        .times(12),
    );
    for s in &h.skus {
        set_stock(&h, s, 7, &format!("storm:{s}")).await;
    }
    h.wait_converged(Duration::from_secs(60), &[]).await;
    assert!(a.sandbox.faults().fired(storm) > 0, "the storm happened");
    let quarantined: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM channel_items WHERE channel = $1 AND state = 'quarantined'",
    )
    .bind(id)
    .fetch_one(h.store.pool())
    .await
    .expect("quarantined");
    assert_eq!(quarantined, 0, "throttling quarantines nothing");
    h.finish().await;
}

/// The channel's API answers 503 for 15 s while orders arrive on eBay and on the channel itself;
/// afterwards every order is recorded once and every quantity is right.
pub async fn an_outage_loses_nothing(id: &'static str) {
    let h = started(vec![PARTNER, id], 6).await;
    let a = h.account(id);
    let outage = a.sandbox.faults().add(FaultRule::new(
        a.kind().market(),
        "*",
        FaultKind::ServerError {
            status: 503,
            body: None,
        },
    ));
    for i in 0..4 {
        h.account(PARTNER).place_order(&sku(i), 1);
    }
    // The channel sells too while its API is down; the poller must catch up afterwards.
    a.place_order(&sku(5), 2);
    let until = Instant::now() + Duration::from_secs(15);
    h.eventually("the outage is hit", CONVERGE, || async {
        a.sandbox.faults().fired(outage) > 0
    })
    .await;
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
    a.sandbox.faults().remove(outage);
    h.wait_converged(Duration::from_secs(60), &[]).await;
    let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(h.store.pool())
        .await
        .expect("orders");
    assert_eq!(all, 5, "every order recorded once");
    for i in 0..4 {
        assert_eq!(a.shown(&sku(i)), Some(9), "{id} {}", sku(i));
    }
    assert_eq!(h.account(PARTNER).shown(&sku(5)), Some(8));
    check_invariants(&h).await;
    h.finish().await;
}

/// The marketplace rejects one SKU: it is quarantined with the marketplace's message, shown in
/// `status`, and the others converge.
pub async fn one_bad_item_does_not_block_the_others(id: &'static str) {
    let h = started(vec![id], 12).await;
    let bad = sku(7);
    let a = h.account(id);
    a.sandbox.faults().add(FaultRule::new(
        a.kind().market(),
        "*",
        FaultKind::RejectSkus {
            skus: vec![bad.clone()],
            status: 400,
            error_id: 25_004,
            message: "Rejected by the test: the quantity is not valid for this listing.".into(),
        },
    ));
    for s in &h.skus {
        set_stock(&h, s, 4, &format!("batch:{s}")).await;
    }
    h.wait_converged(CONVERGE, &[bad.as_str()]).await;
    assert_eq!(a.shown(&bad), Some(10), "the bad item keeps its old value");
    h.eventually("the bad item is quarantined", CONVERGE, || async {
        item_state(&h, id, &bad).await.0 == "quarantined"
    })
    .await;
    let (_, error) = item_state(&h, id, &bad).await;
    let error = error.unwrap_or_default();
    assert!(!error.is_empty(), "the marketplace's error is kept");
    let kind = a.kind().market().to_owned();
    let status = omnistock::status::read(&h.store, &[(id.to_owned(), kind)])
        .await
        .expect("status");
    assert_eq!(status.channels[0].quarantined, 1);
    h.finish().await;
}

/// A quantity changed on the marketplace by hand is found and repaired by `resync`.
pub async fn drift_is_repaired_by_resync(id: &'static str) {
    let h = started(vec![id], 5).await;
    let a = h.account(id);
    a.set_out_of_band(&sku(2), 99);
    a.set_out_of_band(&sku(4), 0);
    let (ok, out, err) = h.cli(&["resync", "--dry-run", "--channel", id]);
    assert!(ok, "dry run failed: {out}\n{err}");
    assert!(
        out.contains(&format!(
            "{}: quantity 99 on the channel, should be 10",
            sku(2)
        )),
        "dry run shows the drift:\n{out}"
    );
    assert_eq!(a.shown(&sku(2)), Some(99), "dry run changes nothing");
    let (ok, out, err) = h.cli(&["resync", "--channel", id]);
    assert!(ok, "resync failed: {out}\n{err}");
    assert_eq!(a.shown(&sku(2)), Some(10));
    assert_eq!(a.shown(&sku(4)), Some(10));
    h.finish().await;
}

/// With a 5-minute poll interval, a signed webhook makes the daemon poll at once: an order on
/// the channel reaches eBay in seconds. Deliveries are all duplicated; the order counts once.
pub async fn a_webhook_wakes_the_poller(id: &'static str) {
    let mut h = Harness::new(Setup {
        channels: vec![PARTNER, id],
        skus: 4,
        poll_interval_secs: 300,
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(CONVERGE, &[]).await;
    let addr = h.daemon.as_ref().expect("daemon").http_addr;
    assert!(
        h.account(id)
            .set_webhook(&format!("http://{addr}/webhooks/{id}")),
        "{id} sends webhooks"
    );
    let started = Instant::now();
    h.account(id).place_order(&sku(2), 3);
    h.eventually(
        "eBay shows 7 (well before the next poll)",
        Duration::from_secs(20),
        || async { h.account(PARTNER).shown(&sku(2)) == Some(7) },
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "took {took:?}");
    h.eventually("the duplicate delivery was seen", CONVERGE, || async {
        let c = h
            .daemon
            .as_ref()
            .expect("daemon")
            .shared
            .webhooks
            .snapshot();
        c.get(id)
            .is_some_and(|c| c.accepted >= 1 && c.duplicate >= 1)
    })
    .await;
    assert_eq!(orders(&h, id).await, 1, "the order counts once");
    check_invariants(&h).await;
    h.finish().await;
}

/// Every story for one channel id, as `#[tokio::test]`s in a module.
macro_rules! stories {
    ($module:ident, $id:literal $(, webhooks)?) => {
        mod $module {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn converges_and_orders_flow_both_ways() {
                super::converges_and_orders_flow_both_ways($id).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn changes_between_pushes_coalesce() {
                super::changes_between_pushes_coalesce($id).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn throttling_loses_nothing() {
                super::throttling_loses_nothing($id).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_outage_loses_nothing() {
                super::an_outage_loses_nothing($id).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn one_bad_item_does_not_block_the_others() {
                super::one_bad_item_does_not_block_the_others($id).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn drift_is_repaired_by_resync() {
                super::drift_is_repaired_by_resync($id).await;
            }
        }
    };
}

macro_rules! webhook_story {
    ($module:ident, $id:literal) => {
        mod $module {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_webhook_wakes_the_poller() {
                super::a_webhook_wakes_the_poller($id).await;
            }
        }
    };
}

stories!(ebay, "ebay_uk");
stories!(amazon, "amazon_us");
stories!(vendure, "vendure_shop");
stories!(woocommerce, "woo_shop");
webhook_story!(woocommerce_webhooks, "woo_shop");
stories!(shopify, "shopify_shop");
webhook_story!(shopify_webhooks, "shopify_shop");
stories!(facebook, "fb_shop");
webhook_story!(facebook_webhooks, "fb_shop");
