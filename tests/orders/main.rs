//! Order ingestion stories, on SQLite and PostgreSQL: a fresh database per test on the backend
//! `OMNISTOCK_TEST_DB` selects (SQLite by default; `scripts/test` runs the suite again on
//! PostgreSQL). Every story ends by checking that the ledger replays to `stock_levels`, that
//! reservations equal the open order lines (I3) and that no stock went negative.

#[path = "../support/mod.rs"]
mod support;

use std::sync::Arc;

use omnistock::catalog::import::{ImportOptions, import_bytes};
use omnistock::catalog::{StockChange, change_stock, set_components, verify_ledger};
use omnistock::orders::{
    Disposition, IngestOutcome, Mismatch, ingest, ingest_batch, ingest_retrying,
    reserved_matches_open_lines,
};
use omnistock::store::{Store, StoreError};
use omnistock::sync::SyncPlan;
use omnistock_connectors::{ChannelOrder, Currency, Money, OrderLine, OrderStatus, Sku};
use support::{TestDb, fresh_store, plan};

use OrderStatus::{Cancelled, Paid, Returned, Shipped};

/// MUG-BLUE is the "last unit"; GIFT-SET is a bundle of 2 MUG-RED and 4 COASTER.
const CATALOG: &str = "sku,title,price,quantity,product_id,components\n\
MUG-RED,Red mug,12.00,10,MUG,\n\
MUG-BLUE,Blue mug,12.00,1,MUG,\n\
COASTER,Coaster,2.50,40,,\n\
GIFT-SET,Gift set,25.00,,,MUG-RED:2|COASTER:4\n";

/// A store with the catalog imported, and the plan it was imported with.
struct Shop {
    _db: TestDb,
    store: Store,
    plan: SyncPlan,
}

async fn shop_with(plan: SyncPlan) -> Shop {
    let (db, store) = fresh_store().await;
    import(&store, &plan, CATALOG).await;
    Shop {
        _db: db,
        store,
        plan,
    }
}

async fn shop(channels: &[&str]) -> Shop {
    shop_with(plan(channels)).await
}

async fn import(store: &Store, plan: &SyncPlan, csv: &str) {
    let opts = ImportOptions {
        dry_run: false,
        default_location: "main".into(),
        locations: vec!["main".into(), "backroom".into()],
        default_currency: "USD".into(),
    };
    import_bytes(store, plan, csv.as_bytes(), &opts)
        .await
        .expect("import");
}

/// An order with `lines` of (line id, SKU, qty), last updated at `at`.
fn order(id: &str, status: OrderStatus, at: i64, lines: &[(&str, &str, u32)]) -> ChannelOrder {
    let usd = Currency::parse("USD").unwrap();
    ChannelOrder {
        external_id: id.into(),
        status,
        placed_at_ms: 1_000,
        remote_updated_at_ms: at,
        total: Some(Money {
            minor: 1200,
            currency: usd,
        }),
        buyer_ref: Some("buyer-1".into()),
        lines: lines
            .iter()
            .map(|(line, sku, qty)| OrderLine {
                line_id: (*line).into(),
                sku: Sku::parse(*sku).unwrap(),
                quantity: *qty,
                unit_price: Some(Money {
                    minor: 1200,
                    currency: usd,
                }),
            })
            .collect(),
        fulfilled_by_channel: false,
    }
}

impl Shop {
    async fn ingest(&self, channel: &str, o: &ChannelOrder) -> IngestOutcome {
        ingest(&self.store, &self.plan, channel, o)
            .await
            .unwrap_or_else(|e| panic!("ingest {} {:?}: {e}", o.external_id, o.status))
    }

    /// (on_hand, reserved).
    async fn levels(&self, sku: &str, loc: &str) -> (i64, i64) {
        sqlx::query_as(
            "SELECT on_hand, reserved FROM stock_levels WHERE sku = $1 AND location = $2",
        )
        .bind(sku)
        .bind(loc)
        .fetch_optional(self.store.pool())
        .await
        .unwrap()
        .unwrap_or((0, 0))
    }

    async fn desired(&self, channel: &str, sku: &str) -> i64 {
        sqlx::query_scalar("SELECT desired_qty FROM channel_items WHERE channel = $1 AND sku = $2")
            .bind(channel)
            .bind(sku)
            .fetch_one(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("no channel item {channel}/{sku}: {e}"))
    }

    /// (status, remote_updated_at) of an order.
    async fn order(&self, channel: &str, id: &str) -> (String, i64) {
        sqlx::query_as(
            "SELECT status, remote_updated_at FROM orders WHERE channel = $1 AND external_id = $2",
        )
        .bind(channel)
        .bind(id)
        .fetch_one(self.store.pool())
        .await
        .unwrap()
    }

    /// (line id, state, reserved_qty) of an order's lines.
    async fn lines(&self, channel: &str, id: &str) -> Vec<(String, String, i64)> {
        sqlx::query_as(
            "SELECT l.line_id, l.state, l.reserved_qty FROM order_lines l JOIN orders o ON o.id = l.order_id \
             WHERE o.channel = $1 AND o.external_id = $2 ORDER BY l.line_id",
        )
        .bind(channel)
        .bind(id)
        .fetch_all(self.store.pool())
        .await
        .unwrap()
    }

    /// Ledger keys of moves belonging to an order, in order.
    async fn keys_of(&self, order_ref: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT idempotency_key FROM stock_movements WHERE order_ref = $1 ORDER BY id",
        )
        .bind(order_ref)
        .fetch_all(self.store.pool())
        .await
        .unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    /// The ledger replays to the levels, I3 holds, nothing is negative or over-reserved.
    async fn check_invariants(&self) {
        let ledger = verify_ledger(&self.store).await.unwrap();
        assert!(ledger.is_empty(), "ledger disagrees: {ledger:?}");
        let i3 = reserved_matches_open_lines(&self.store).await.unwrap();
        assert!(
            i3.is_empty(),
            "I3 broken:\n{}",
            i3.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let bad: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT sku, location, on_hand, reserved FROM stock_levels WHERE on_hand < 0 OR reserved > on_hand",
        )
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        assert!(bad.is_empty(), "negative or over-reserved stock: {bad:?}");
    }
}

#[tokio::test]
async fn a_paid_order_reserves_and_lowers_every_channel() {
    let s = shop(&["ebay", "amazon"]).await;
    assert_eq!(s.desired("amazon", "MUG-RED").await, 10);
    assert_eq!(s.desired("ebay", "GIFT-SET").await, 5);

    let out = s
        .ingest("ebay", &order("E1", Paid, 1, &[("L1", "MUG-RED", 3)]))
        .await;
    assert_eq!(out.disposition, Disposition::New);
    assert_eq!(out.status, Paid);
    assert_eq!((out.lines.reserved, out.lines.oversold), (1, 0));
    assert_eq!(out.touched_skus, ["MUG-RED"]);
    assert_eq!(
        out.listings_changed, 4,
        "MUG-RED and GIFT-SET on two channels"
    );

    assert_eq!(s.levels("MUG-RED", "main").await, (10, 3));
    for ch in ["ebay", "amazon"] {
        assert_eq!(s.desired(ch, "MUG-RED").await, 7, "{ch}");
        assert_eq!(
            s.desired(ch, "GIFT-SET").await,
            3,
            "{ch}: min(7 / 2, 40 / 4)"
        );
    }
    assert_eq!(
        s.lines("ebay", "E1").await,
        [("L1".into(), "open".into(), 3)]
    );
    assert_eq!(s.order("ebay", "E1").await, ("paid".into(), 1));
    assert_eq!(
        s.keys_of("order:ebay:E1").await,
        ["order:ebay:E1:L1:reserve:MUG-RED:main"]
    );
    s.check_invariants().await;
}

#[tokio::test]
async fn shipping_moves_on_hand_and_reserved() {
    let s = shop(&["shop", "ebay"]).await;
    // Shopify ids carry colons; the ledger keys escape them.
    let id = "gid://shopify/Order/1";
    let line = "gid://shopify/LineItem/7";
    s.ingest("shop", &order(id, Paid, 1, &[(line, "MUG-RED", 2)]))
        .await;
    let out = s
        .ingest("shop", &order(id, Shipped, 2, &[(line, "MUG-RED", 2)]))
        .await;
    assert_eq!(out.disposition, Disposition::Applied { from: Paid });
    assert_eq!(out.lines.shipped, 1);
    assert_eq!(out.listings_changed, 0, "available was already 8");
    assert_eq!(s.levels("MUG-RED", "main").await, (8, 0));
    assert_eq!(s.desired("ebay", "MUG-RED").await, 8);
    assert_eq!(
        s.lines("shop", id).await,
        [(line.into(), "shipped".into(), 0)]
    );
    assert_eq!(
        s.keys_of("order:shop:gid%3A//shopify/Order/1").await,
        [
            "order:shop:gid%3A//shopify/Order/1:gid%3A//shopify/LineItem/7:reserve:MUG-RED:main",
            "order:shop:gid%3A//shopify/Order/1:gid%3A//shopify/LineItem/7:ship:MUG-RED:main",
        ]
    );
    s.check_invariants().await;
}

#[tokio::test]
async fn cancelling_releases_the_reservation() {
    let s = shop(&["ebay", "amazon"]).await;
    s.ingest("ebay", &order("E1", Paid, 1, &[("L1", "MUG-RED", 4)]))
        .await;
    assert_eq!(s.desired("amazon", "MUG-RED").await, 6);
    let out = s
        .ingest("ebay", &order("E1", Cancelled, 2, &[("L1", "MUG-RED", 4)]))
        .await;
    assert_eq!(out.lines.released, 1);
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 0));
    assert_eq!(s.desired("amazon", "MUG-RED").await, 10);
    assert_eq!(
        s.lines("ebay", "E1").await,
        [("L1".into(), "released".into(), 0)]
    );
    s.check_invariants().await;
}

#[tokio::test]
async fn a_return_restocks_what_shipped() {
    let s = shop(&["ebay"]).await;
    let lines = [("L1", "MUG-RED", 3)];
    s.ingest("ebay", &order("E1", Paid, 1, &lines)).await;
    s.ingest("ebay", &order("E1", Shipped, 2, &lines)).await;
    assert_eq!(s.levels("MUG-RED", "main").await, (7, 0));
    let out = s.ingest("ebay", &order("E1", Returned, 3, &lines)).await;
    assert_eq!(out.lines.restocked, 1);
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 0));
    assert_eq!(s.desired("ebay", "MUG-RED").await, 10);
    assert_eq!(
        s.lines("ebay", "E1").await,
        [("L1".into(), "returned".into(), 0)]
    );
    assert_eq!(s.keys_of("order:ebay:E1").await.len(), 3);
    s.check_invariants().await;
}

#[tokio::test]
async fn duplicate_and_out_of_order_deliveries_end_as_one() {
    let s = shop(&["ebay"]).await;
    let lines = [("L1", "MUG-RED", 1)];
    // Six orders, each delivered as paid@1, shipped@2 and paid@1 again, in a different order per
    // order and each delivery 1–3 times.
    let perms = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for (n, perm) in perms.iter().enumerate() {
        let id = format!("E{n}");
        let deliveries = [
            order(&id, Paid, 1, &lines),
            order(&id, Shipped, 2, &lines),
            order(&id, Paid, 1, &lines),
        ];
        let mut effective = 0;
        for (k, &i) in perm.iter().enumerate() {
            for _ in 0..(n + k) % 3 + 1 {
                let out = s.ingest("ebay", &deliveries[i]).await;
                if out.disposition != Disposition::Stale {
                    effective += 1;
                }
            }
        }
        assert!(effective <= 2, "{id}: at most paid then shipped apply");
        assert_eq!(s.order("ebay", &id).await, ("shipped".into(), 2), "{id}");
        assert_eq!(
            s.lines("ebay", &id).await,
            [("L1".into(), "shipped".into(), 0)]
        );
        assert!(s.keys_of(&format!("order:ebay:{id}")).await.len() <= 2);
    }
    // Each order took exactly one mug, as a single clean delivery would have.
    assert_eq!(s.levels("MUG-RED", "main").await, (4, 0));
    assert_eq!(s.count("orders").await, 6);
    assert_eq!(s.count("order_lines").await, 6);
    s.check_invariants().await;
}

#[tokio::test]
async fn newer_regressions_are_ignored() {
    let s = shop(&["ebay"]).await;
    let lines = [("L1", "MUG-RED", 2)];
    s.ingest("ebay", &order("E1", Paid, 1, &lines)).await;
    s.ingest("ebay", &order("E1", Shipped, 2, &lines)).await;
    let out = s.ingest("ebay", &order("E1", Paid, 3, &lines)).await;
    assert!(
        matches!(out.disposition, Disposition::Ignored { .. }),
        "{out:?}"
    );
    assert_eq!(out.status, Shipped);
    assert_eq!(s.order("ebay", "E1").await, ("shipped".into(), 3));
    assert_eq!(s.levels("MUG-RED", "main").await, (8, 0));
    // The ignored delivery still moved the clock: an older shipped delivery is stale now.
    let out = s.ingest("ebay", &order("E1", Cancelled, 3, &lines)).await;
    assert_eq!(out.disposition, Disposition::Stale);
    s.check_invariants().await;
}

/// Marketplaces stamp orders to the second: an order paid and cancelled (or shipped) within one
/// second shows the same time in both states. A poll that read the first state must not make the
/// second a "replay" (it used to: the cancellation was lost and the units stayed reserved).
#[tokio::test]
async fn a_later_status_in_the_same_second_still_applies() {
    let s = shop(&["shop"]).await;
    let lines = [("L1", "MUG-RED", 2)];
    s.ingest("shop", &order("S1", Paid, 5, &lines)).await;
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 2));
    let out = s.ingest("shop", &order("S1", Cancelled, 5, &lines)).await;
    assert!(
        matches!(out.disposition, Disposition::Applied { from: Paid }),
        "{out:?}"
    );
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 0));
    assert_eq!(s.order("shop", "S1").await, ("cancelled".into(), 5));
    // The same second again, either state: replays.
    for status in [Paid, Cancelled] {
        let out = s.ingest("shop", &order("S1", status, 5, &lines)).await;
        assert_eq!(out.disposition, Disposition::Stale, "{status:?}");
    }
    // Paid and shipped within one second: the shipment applies.
    s.ingest("shop", &order("S2", Paid, 7, &lines)).await;
    s.ingest("shop", &order("S2", Shipped, 7, &lines)).await;
    assert_eq!(s.levels("MUG-RED", "main").await, (8, 0));
    assert_eq!(s.order("shop", "S2").await, ("shipped".into(), 7));
    s.check_invariants().await;
}

/// The marketplace moves its own quantity for an order (and gives it back on a cancellation only
/// on some marketplaces): the ordering channel's listing is pushed again even when what it should
/// show did not change, e.g. for an order first seen cancelled. Other channels are left alone.
#[tokio::test]
async fn the_ordering_channels_listing_is_pushed_again_even_when_nothing_moved() {
    let s = shop(&["ebay", "amazon"]).await;
    sqlx::query("UPDATE channel_items SET pushed_version = desired_version")
        .execute(s.store.pool())
        .await
        .unwrap();
    let dirty = |channel: &'static str| {
        let pool = s.store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM channel_items WHERE channel = $1 AND sku = 'MUG-RED' \
                 AND desired_version > pushed_version",
            )
            .bind(channel)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let out = s
        .ingest("ebay", &order("E1", Cancelled, 1, &[("L1", "MUG-RED", 2)]))
        .await;
    assert_eq!(out.disposition, Disposition::New);
    assert!(out.touched_skus.is_empty(), "nothing moved: {out:?}");
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 0));
    assert_eq!(
        dirty("ebay").await,
        1,
        "eBay counted the sale: push it again"
    );
    assert_eq!(dirty("amazon").await, 0, "Amazon shows the right number");
    // A replay changes nothing, so it pushes nothing either.
    sqlx::query("UPDATE channel_items SET pushed_version = desired_version")
        .execute(s.store.pool())
        .await
        .unwrap();
    let out = s
        .ingest("ebay", &order("E1", Cancelled, 1, &[("L1", "MUG-RED", 2)]))
        .await;
    assert_eq!(out.disposition, Disposition::Stale);
    assert_eq!(dirty("ebay").await, 0);
    s.check_invariants().await;
}

#[tokio::test]
async fn the_last_unit_goes_to_one_order_and_the_other_is_oversold() {
    let s = shop(&["ebay", "amazon"]).await;
    let a = s
        .ingest("ebay", &order("A", Paid, 1, &[("L1", "MUG-BLUE", 1)]))
        .await;
    let b = s
        .ingest("amazon", &order("B", Paid, 1, &[("L1", "MUG-BLUE", 1)]))
        .await;
    assert_eq!((a.lines.reserved, a.lines.oversold), (1, 0));
    assert_eq!((b.lines.reserved, b.lines.oversold), (0, 1));
    assert!(b.touched_skus.is_empty());
    assert_eq!(s.levels("MUG-BLUE", "main").await, (1, 1));
    assert_eq!(s.desired("ebay", "MUG-BLUE").await, 0);
    assert_eq!(
        s.lines("amazon", "B").await,
        [("L1".into(), "oversold".into(), 0)]
    );

    // Visible where operators look.
    let status = omnistock::status::read(
        &s.store,
        &[
            ("ebay".into(), "ebay".into()),
            ("amazon".into(), "amazon".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(status.channels[0].oversold_lines, 0);
    assert_eq!(status.channels[1].oversold_lines, 1);
    s.check_invariants().await;

    // A frees the unit; B's next (newer) delivery retries and gets it.
    s.ingest("ebay", &order("A", Cancelled, 2, &[("L1", "MUG-BLUE", 1)]))
        .await;
    let b = s
        .ingest("amazon", &order("B", Paid, 2, &[("L1", "MUG-BLUE", 1)]))
        .await;
    assert_eq!((b.lines.reserved, b.lines.oversold), (1, 0));
    assert_eq!(s.levels("MUG-BLUE", "main").await, (1, 1));
    assert_eq!(
        s.lines("amazon", "B").await,
        [("L1".into(), "open".into(), 1)]
    );
    s.check_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_orders_for_the_last_unit_reserve_it_once() {
    let s = Arc::new(shop(&["ebay", "amazon"]).await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let channel = if i % 2 == 0 { "ebay" } else { "amazon" };
            let o = order(&format!("C{i}"), Paid, 1, &[("L1", "MUG-BLUE", 1)]);
            ingest_retrying(&s.store, &s.plan, channel, &o).await
        }));
    }
    let mut reserved = 0;
    let mut oversold = 0;
    for t in tasks {
        let out = t.await.unwrap().expect("ingest after retries");
        reserved += out.lines.reserved;
        oversold += out.lines.oversold;
    }
    assert_eq!((reserved, oversold), (1, 49));
    assert_eq!(s.levels("MUG-BLUE", "main").await, (1, 1));
    assert_eq!(s.desired("amazon", "MUG-BLUE").await, 0);
    assert_eq!(s.count("orders").await, 50);
    s.check_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_order_delivered_concurrently_moves_stock_once() {
    let s = Arc::new(shop(&["ebay"]).await);
    let lines = [("L1", "MUG-RED", 2)];
    let deliveries = [
        order("E1", Paid, 1, &lines),
        order("E1", Shipped, 2, &lines),
        order("E1", Paid, 1, &lines),
    ];
    let mut tasks = Vec::new();
    for round in 0..4 {
        for d in &deliveries {
            let (s, d) = (s.clone(), d.clone());
            tasks.push(tokio::spawn(async move {
                if round % 2 == 1 {
                    tokio::task::yield_now().await;
                }
                ingest_retrying(&s.store, &s.plan, "ebay", &d).await
            }));
        }
    }
    let mut new = 0;
    for t in tasks {
        let out = t.await.unwrap().expect("ingest after retries");
        new += usize::from(out.disposition == Disposition::New);
    }
    assert_eq!(new, 1, "one delivery creates the order, the others find it");
    assert_eq!(s.order("ebay", "E1").await, ("shipped".into(), 2));
    assert_eq!(s.levels("MUG-RED", "main").await, (8, 0));
    assert!(s.keys_of("order:ebay:E1").await.len() <= 2);
    s.check_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mixed_traffic_keeps_every_invariant() {
    let s = Arc::new(shop(&["ebay", "amazon"]).await);
    // 40 orders over the bundle and its components, on two channels, each walked through its own
    // life (some cancelled, some shipped and returned) while the others run.
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let channel = if i % 2 == 0 { "ebay" } else { "amazon" };
            let lines: Vec<(&str, &str, u32)> = match i % 4 {
                0 => vec![("L1", "GIFT-SET", 1)],
                1 => vec![("L1", "MUG-RED", 1 + i % 3), ("L2", "COASTER", 2)],
                2 => vec![("L1", "COASTER", 3), ("L2", "GIFT-SET", 1)],
                _ => vec![("L1", "MUG-RED", 1)],
            };
            let id = format!("M{i}");
            let mut life = vec![Paid];
            match i % 5 {
                0 => life.push(Cancelled),
                1 => life.extend([Shipped, Returned]),
                2 | 3 => life.push(Shipped),
                _ => {}
            }
            for (at, status) in life.into_iter().enumerate() {
                let o = order(&id, status, at as i64 + 1, &lines);
                ingest_retrying(&s.store, &s.plan, channel, &o)
                    .await
                    .unwrap_or_else(|e| panic!("{id} {status:?}: {e}"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    s.check_invariants().await;
    // Whatever interleaving happened, every channel shows what the final levels allow.
    let (on_hand, reserved) = s.levels("MUG-RED", "main").await;
    assert_eq!(s.desired("amazon", "MUG-RED").await, on_hand - reserved);
}

#[tokio::test]
async fn bundle_lines_move_their_components_all_or_nothing() {
    let s = shop(&["ebay"]).await;
    let out = s
        .ingest("ebay", &order("E1", Paid, 1, &[("L1", "GIFT-SET", 2)]))
        .await;
    assert_eq!(out.touched_skus, ["COASTER", "MUG-RED"]);
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 4));
    assert_eq!(s.levels("COASTER", "main").await, (40, 8));
    assert_eq!(s.desired("ebay", "GIFT-SET").await, 3, "min(6 / 2, 32 / 4)");
    assert_eq!(s.desired("ebay", "MUG-RED").await, 6);

    // 4 more sets need 8 mugs; 6 are left: nothing is reserved, not even the coasters.
    let out = s
        .ingest("ebay", &order("E2", Paid, 1, &[("L1", "GIFT-SET", 4)]))
        .await;
    assert_eq!(out.lines.oversold, 1);
    assert_eq!(s.levels("COASTER", "main").await, (40, 8));
    s.check_invariants().await;

    s.ingest("ebay", &order("E1", Shipped, 2, &[("L1", "GIFT-SET", 2)]))
        .await;
    assert_eq!(s.levels("MUG-RED", "main").await, (6, 0));
    assert_eq!(s.levels("COASTER", "main").await, (32, 0));
    s.ingest("ebay", &order("E1", Returned, 3, &[("L1", "GIFT-SET", 2)]))
        .await;
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 0));
    assert_eq!(s.levels("COASTER", "main").await, (40, 0));
    s.check_invariants().await;
}

#[tokio::test]
async fn a_bundle_redefined_while_reserved_releases_what_it_reserved() {
    let s = shop(&["ebay"]).await;
    s.ingest("ebay", &order("E1", Paid, 1, &[("L1", "GIFT-SET", 1)]))
        .await;
    assert_eq!(s.levels("COASTER", "main").await, (40, 4));
    let mut tx = s.store.write().await.unwrap();
    set_components(&mut tx, "GIFT-SET", &[("MUG-RED".into(), 1)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // The ledger, not the new definition, says what to give back.
    s.ingest("ebay", &order("E1", Cancelled, 2, &[("L1", "GIFT-SET", 1)]))
        .await;
    assert_eq!(s.levels("COASTER", "main").await, (40, 0));
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 0));
    s.check_invariants().await;
}

#[tokio::test]
async fn an_unknown_sku_is_recorded_and_retried_once_imported() {
    let s = shop(&["ebay"]).await;
    let lines = [("L1", "NOPE-1", 1), ("L2", "MUG-RED", 1)];
    let out = s.ingest("ebay", &order("E1", Paid, 1, &lines)).await;
    assert_eq!((out.lines.unknown_sku, out.lines.reserved), (1, 1));
    assert_eq!(out.touched_skus, ["MUG-RED"]);
    assert_eq!(
        s.lines("ebay", "E1").await,
        [
            ("L1".into(), "unknown_sku".into(), 0),
            ("L2".into(), "open".into(), 1)
        ]
    );
    let status = omnistock::status::read(&s.store, &[("ebay".into(), "ebay".into())])
        .await
        .unwrap();
    assert_eq!(status.channels[0].unknown_sku_lines, 1);
    s.check_invariants().await;

    import(
        &s.store,
        &s.plan,
        "sku,title,price,quantity\nNOPE-1,Late arrival,5.00,3\n",
    )
    .await;
    let out = s.ingest("ebay", &order("E1", Paid, 2, &lines)).await;
    assert_eq!((out.lines.unknown_sku, out.lines.reserved), (0, 1));
    assert_eq!(s.levels("NOPE-1", "main").await, (3, 1));
    assert_eq!(
        s.levels("MUG-RED", "main").await,
        (10, 1),
        "L2 kept its one"
    );
    s.check_invariants().await;
}

#[tokio::test]
async fn fulfilled_by_channel_orders_are_recorded_without_reserving() {
    let s = shop(&["amazon"]).await;
    let mut o = order("FBA-1", Paid, 1, &[("L1", "MUG-RED", 2)]);
    o.fulfilled_by_channel = true;
    let out = s.ingest("amazon", &o).await;
    assert_eq!((out.lines.external, out.lines.reserved), (1, 0));
    o.status = Shipped;
    o.remote_updated_at_ms = 2;
    s.ingest("amazon", &o).await;
    assert_eq!(s.order("amazon", "FBA-1").await.0, "shipped");
    assert_eq!(
        s.lines("amazon", "FBA-1").await,
        [("L1".into(), "external".into(), 0)]
    );
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 0));
    assert!(s.keys_of("order:amazon:FBA-1").await.is_empty());
    s.check_invariants().await;
}

#[tokio::test]
async fn a_line_splits_across_the_channels_locations() {
    let mut p = plan(&["ebay"]);
    p.channels[0].locations = vec!["main".into(), "backroom".into()];
    let s = shop_with(p).await;
    for (loc, qty, key) in [("main", 2, "manual:m"), ("backroom", 3, "manual:b")] {
        change_stock(
            &s.store,
            &s.plan,
            "MUG-RED",
            loc,
            StockChange::Set(qty),
            key,
        )
        .await
        .unwrap();
    }
    assert_eq!(s.desired("ebay", "MUG-RED").await, 5);
    let lines = [("L1", "MUG-RED", 4)];
    s.ingest("ebay", &order("E1", Paid, 1, &lines)).await;
    assert_eq!(s.levels("MUG-RED", "main").await, (2, 2));
    assert_eq!(s.levels("MUG-RED", "backroom").await, (3, 2));
    assert_eq!(s.desired("ebay", "MUG-RED").await, 1);
    s.check_invariants().await;

    s.ingest("ebay", &order("E1", Shipped, 2, &lines)).await;
    assert_eq!(s.levels("MUG-RED", "main").await, (0, 0));
    assert_eq!(s.levels("MUG-RED", "backroom").await, (1, 0));
    s.ingest("ebay", &order("E1", Returned, 3, &lines)).await;
    assert_eq!(s.levels("MUG-RED", "main").await, (2, 0));
    assert_eq!(s.levels("MUG-RED", "backroom").await, (3, 0));
    assert_eq!(
        s.keys_of("order:ebay:E1").await,
        [
            "order:ebay:E1:L1:reserve:MUG-RED:main",
            "order:ebay:E1:L1:reserve:MUG-RED:backroom",
            "order:ebay:E1:L1:ship:MUG-RED:main",
            "order:ebay:E1:L1:ship:MUG-RED:backroom",
            "order:ebay:E1:L1:return:MUG-RED:main",
            "order:ebay:E1:L1:return:MUG-RED:backroom",
        ]
    );
    s.check_invariants().await;
}

#[tokio::test]
async fn first_seen_shipped_takes_stock_directly_and_never_below_zero() {
    let s = shop(&["ebay"]).await;
    let out = s
        .ingest("ebay", &order("E1", Shipped, 1, &[("L1", "MUG-BLUE", 2)]))
        .await;
    assert_eq!((out.lines.shipped, out.lines.oversold), (0, 1));
    assert_eq!(s.levels("MUG-BLUE", "main").await, (1, 0));
    let out = s
        .ingest("ebay", &order("E2", Shipped, 1, &[("L1", "MUG-BLUE", 1)]))
        .await;
    assert_eq!(out.lines.shipped, 1);
    assert_eq!(s.levels("MUG-BLUE", "main").await, (0, 0));
    assert_eq!(
        s.keys_of("order:ebay:E2").await,
        ["order:ebay:E2:L1:ship:MUG-BLUE:main"]
    );
    // First seen cancelled or returned: recorded, nothing moves.
    for (id, st) in [("E3", Cancelled), ("E4", Returned)] {
        let out = s
            .ingest("ebay", &order(id, st, 1, &[("L1", "MUG-RED", 1)]))
            .await;
        assert_eq!(out.lines.released, 1);
        assert_eq!(
            s.lines("ebay", id).await,
            [("L1".into(), "released".into(), 0)]
        );
    }
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 0));
    s.check_invariants().await;
}

#[tokio::test]
async fn a_cancel_after_shipping_restocks_nothing_until_the_return() {
    let s = shop(&["ebay"]).await;
    let lines = [("L1", "MUG-RED", 1)];
    s.ingest("ebay", &order("E1", Paid, 1, &lines)).await;
    s.ingest("ebay", &order("E1", Shipped, 2, &lines)).await;
    let out = s.ingest("ebay", &order("E1", Cancelled, 3, &lines)).await;
    assert_eq!(out.disposition, Disposition::Applied { from: Shipped });
    assert_eq!(s.levels("MUG-RED", "main").await, (9, 0));
    assert_eq!(
        s.lines("ebay", "E1").await,
        [("L1".into(), "shipped".into(), 0)]
    );
    s.ingest("ebay", &order("E1", Returned, 4, &lines)).await;
    assert_eq!(s.levels("MUG-RED", "main").await, (10, 0));
    s.check_invariants().await;
}

#[tokio::test]
async fn a_page_of_orders_ingests_in_one_call() {
    let s = shop(&["ebay"]).await;
    let page = [
        order("A", Paid, 1, &[("L1", "MUG-RED", 1)]),
        order("B", Paid, 1, &[("L1", "MUG-BLUE", 1), ("L2", "COASTER", 0)]),
        order("A", Paid, 1, &[("L1", "MUG-RED", 1)]),
        order("A", Shipped, 2, &[("L1", "MUG-RED", 1)]),
        order("C", Paid, 1, &[("L1", "MUG-BLUE", 1)]),
    ];
    let out = ingest_batch(&s.store, &s.plan, "ebay", &page).await;
    assert!(out.is_complete(), "{:?}", out.failed);
    assert_eq!((out.new, out.applied, out.stale, out.ignored), (3, 1, 1, 0));
    assert_eq!(
        (out.lines.reserved, out.lines.shipped, out.lines.oversold),
        (2, 1, 1)
    );
    assert_eq!(out.touched_skus, ["MUG-BLUE", "MUG-RED"]);
    assert_eq!(
        s.lines("ebay", "B").await.len(),
        1,
        "a zero-quantity line is skipped"
    );
    s.check_invariants().await;
}

#[tokio::test]
async fn an_order_from_an_unknown_channel_is_refused_whole() {
    let s = shop(&["ebay"]).await;
    let err = ingest(
        &s.store,
        &s.plan,
        "etsy",
        &order("X", Paid, 1, &[("L1", "MUG-RED", 1)]),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(!err.is_retriable());
    assert_eq!(s.count("orders").await, 0);
}

#[tokio::test]
async fn the_i3_check_catches_reservations_nobody_holds() {
    let s = shop(&["ebay"]).await;
    s.ingest("ebay", &order("E1", Paid, 1, &[("L1", "MUG-RED", 2)]))
        .await;
    s.check_invariants().await;
    // An order line flipped to released behind the ledger's back still holds its units.
    sqlx::query("UPDATE order_lines SET state = 'released', reserved_qty = 0")
        .execute(s.store.pool())
        .await
        .unwrap();
    let found = reserved_matches_open_lines(&s.store).await.unwrap();
    assert!(
        found.contains(&Mismatch::Location {
            sku: "MUG-RED".into(),
            location: "main".into(),
            reserved: 2,
            open_lines: 0,
        }),
        "{found:?}"
    );
    assert!(
        found.iter().any(|m| matches!(m, Mismatch::Line { line_id, state, ledger_units: 2, expected_units: 0, .. }
            if line_id == "L1" && state == "released")),
        "{found:?}"
    );
}
