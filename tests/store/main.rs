//! Store stories: the ledger, desired state, imports and manual stock changes, run against a fresh
//! database per test on the backend `OMNISTOCK_TEST_DB` selects (SQLite by default; `scripts/test`
//! runs this suite again on PostgreSQL).

#[path = "../support/mod.rs"]
mod support;

use omnistock::catalog::import::{ImportError, ImportOptions, import_bytes};
use omnistock::catalog::{Movement, StockChange, apply_movement, change_stock, verify_ledger};
use omnistock::store::{Store, StoreError};
use omnistock::sync::desired::{Decimal, StockKnobs};
use omnistock::sync::{SyncPlan, recompute_all};
use support::{fresh_store, plan};

fn opts() -> ImportOptions {
    ImportOptions {
        dry_run: false,
        default_location: "main".into(),
        locations: vec!["main".into(), "backroom".into()],
        default_currency: "USD".into(),
    }
}

const CATALOG: &str = "sku,title,price,quantity,product_id,tags,components\n\
MUG-RED,Red mug,12.00,10,MUG,kitchen|red,\n\
MUG-BLUE,Blue mug,12.00,4,MUG,kitchen,\n\
COASTER,Coaster,2.50,40,,,\n\
GIFT-SET,Gift set,25.00,,,gift,MUG-RED:2|COASTER:4\n";

async fn import(
    store: &Store,
    plan: &SyncPlan,
    csv: &str,
) -> Result<omnistock::catalog::import::ImportReport, ImportError> {
    import_bytes(store, plan, csv.as_bytes(), &opts()).await
}

/// (desired_qty, desired_price_minor, desired_version, pushed_version)
async fn item(store: &Store, channel: &str, sku: &str) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT desired_qty, desired_price_minor, desired_version, pushed_version FROM channel_items \
         WHERE channel = $1 AND sku = $2",
    )
    .bind(channel)
    .bind(sku)
    .fetch_one(store.pool())
    .await
    .unwrap_or_else(|e| panic!("no channel item {channel}/{sku}: {e}"))
}

async fn levels(store: &Store, sku: &str, loc: &str) -> (i64, i64) {
    sqlx::query_as("SELECT on_hand, reserved FROM stock_levels WHERE sku = $1 AND location = $2")
        .bind(sku)
        .bind(loc)
        .fetch_optional(store.pool())
        .await
        .unwrap()
        .unwrap_or((0, 0))
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn import_builds_catalog_stock_and_desired_state() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay", "amazon"]);
    let r = import(&store, &p, CATALOG).await.unwrap();
    assert_eq!(
        (
            r.rows,
            r.products_changed,
            r.variants_changed,
            r.stock_changed
        ),
        (4, 3, 4, 3),
        "{r}"
    );
    assert_eq!(r.desired.changed, 8, "4 SKUs × 2 channels");
    assert_eq!(levels(&store, "MUG-RED", "main").await, (10, 0));
    assert_eq!(item(&store, "ebay", "MUG-RED").await, (10, 1200, 1, 0));
    // bundle = min(10 / 2, 40 / 4) = 5
    assert_eq!(item(&store, "amazon", "GIFT-SET").await.0, 5);
    assert!(verify_ledger(&store).await.unwrap().is_empty());
}

#[tokio::test]
async fn reimporting_the_same_file_changes_nothing() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    import(&store, &p, CATALOG).await.unwrap();
    // Stock moves on (an order, a manual count) after the first import …
    change_stock(
        &store,
        &p,
        "MUG-RED",
        "main",
        StockChange::Adjust(-3),
        "manual:1",
    )
    .await
    .unwrap();
    let movements = count(&store, "stock_movements").await;
    // … and the same file again must not reset it: its ledger keys were used.
    let r = import(&store, &p, CATALOG).await.unwrap();
    assert_eq!(
        (r.products_changed, r.variants_changed, r.stock_changed),
        (0, 0, 0),
        "{r}"
    );
    assert_eq!(r.stock_already_imported, 3);
    assert_eq!(r.desired.changed, 0);
    assert_eq!(count(&store, "stock_movements").await, movements);
    assert_eq!(levels(&store, "MUG-RED", "main").await, (7, 0));
    assert_eq!(item(&store, "ebay", "MUG-RED").await, (7, 1200, 2, 0));
}

#[tokio::test]
async fn a_changed_file_applies_only_its_changes() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    import(&store, &p, CATALOG).await.unwrap();
    let edited = CATALOG.replace("Blue mug,12.00,4", "Blue mug,13.50,4");
    let r = import(&store, &p, &edited).await.unwrap();
    assert_eq!(r.variants_changed, 1, "{r}");
    assert_eq!(
        r.stock_changed, 0,
        "same quantities: ledger rows with delta 0, no stock change"
    );
    assert_eq!(item(&store, "ebay", "MUG-BLUE").await, (4, 1350, 2, 0));
    assert_eq!(
        item(&store, "ebay", "MUG-RED").await.2,
        1,
        "untouched rows keep their version"
    );
}

#[tokio::test]
async fn dry_run_reports_and_writes_nothing() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    let mut o = opts();
    o.dry_run = true;
    let r = import_bytes(&store, &p, CATALOG.as_bytes(), &o)
        .await
        .unwrap();
    assert!(r.dry_run);
    assert_eq!(
        (r.variants_changed, r.stock_changed, r.desired.changed),
        (4, 3, 4)
    );
    for t in [
        "products",
        "variants",
        "stock_levels",
        "stock_movements",
        "channel_items",
        "bundles",
    ] {
        assert_eq!(count(&store, t).await, 0, "{t} after a dry run");
    }
}

#[tokio::test]
async fn bad_rows_name_row_and_column_and_nothing_is_applied() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    let csv = "sku,title,price,quantity,location,components\n\
GOOD-1,Fine,1.00,5,,\n\
BAD-PRICE,Oops,12.345,5,,\n\
NEG,Negative,1.00,-3,,\n\
GOOD-1,Duplicate,1.00,1,,\n\
NOLOC,Where,1.00,1,attic,\n\
BUNDLE,Has stock,1.00,4,,GOOD-1:1\n\
WORDS,Words,1.00,lots,,\n\
,No sku,1.00,1,,\n";
    let err = import(&store, &p, csv).await.unwrap_err();
    let text = err.to_string();
    for expected in [
        "row 3, column price",
        "row 4, column quantity: quantity -3 is negative",
        "row 5, column sku: duplicate SKU \"GOOD-1\" (first on row 2)",
        "row 6, column location: unknown location \"attic\"",
        "row 7, column quantity: a bundle has no stock of its own",
        "row 8, column quantity: \"lots\" is not a whole number",
        "row 9, column sku: SKU is empty",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("nothing was imported"), "{text}");
    assert_eq!(count(&store, "variants").await, 0, "all or nothing");
    assert_eq!(count(&store, "stock_movements").await, 0);
}

#[tokio::test]
async fn malformed_files_are_refused_cleanly() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "the file is empty"),
        (
            b"sku,title,price\nA,B,1\n",
            "column quantity: required column is missing",
        ),
        (
            b"sku,title,price,quantity,colour\nA,B,1,1,red\n",
            "column colour: unknown column",
        ),
        (
            b"sku,title,price,quantity\nA,B,1\n",
            "row 2: malformed CSV: 3 fields where the header has 4",
        ),
        (
            b"sku,title,price,quantity\nA,Caf\xe9,1,1\n",
            "row 2, column title: not valid UTF-8",
        ),
        (
            b"sku,title,price,quantity\nA,\"unterminated,1,1\n",
            "malformed CSV",
        ),
        (
            b"sku,title,price,quantity,components\nB,Bundle,1,,NOPE:2\n",
            "component \"NOPE\" is not in the catalog",
        ),
        (
            b"sku,title,price,quantity,components\nB,Bundle,1,,B:2\n",
            "a bundle cannot contain itself",
        ),
    ];
    let huge = format!(
        "sku,title,price,quantity,description\nA,B,1,1,{}\n",
        "x".repeat(64 * 1024 + 1)
    );
    let cases: Vec<(&[u8], &str)> = cases
        .into_iter()
        .chain([(
            huge.as_bytes(),
            "row 2, column description: value is 65537 bytes; at most 65536",
        )])
        .collect();
    for (bytes, expected) in cases {
        let err = import_bytes(&store, &p, bytes, &opts())
            .await
            .expect_err(expected);
        assert!(
            err.to_string().contains(expected),
            "expected {expected:?} in:\n{err}"
        );
    }
    assert_eq!(count(&store, "variants").await, 0);
}

#[tokio::test]
async fn hostile_strings_are_stored_verbatim() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    let sku = "X'; DROP TABLE variants; --";
    let csv = format!(
        "sku,title,price,quantity\n\"{sku}\",\"Robert\"\"); DELETE FROM orders; --\",1.00,3\n"
    );
    import(&store, &p, &csv).await.unwrap();
    let title: String = sqlx::query_scalar("SELECT title FROM variants WHERE sku = $1")
        .bind(sku)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(title, "Robert\"); DELETE FROM orders; --");
    assert_eq!(item(&store, "ebay", sku).await.0, 3);
}

#[tokio::test]
async fn desired_version_moves_only_when_the_value_changes() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    import(&store, &p, CATALOG).await.unwrap();
    assert_eq!(item(&store, "ebay", "MUG-BLUE").await.2, 1);
    change_stock(
        &store,
        &p,
        "MUG-BLUE",
        "main",
        StockChange::Set(4),
        "manual:a",
    )
    .await
    .unwrap();
    assert_eq!(
        item(&store, "ebay", "MUG-BLUE").await.2,
        1,
        "same value: no new version"
    );
    change_stock(
        &store,
        &p,
        "MUG-BLUE",
        "backroom",
        StockChange::Set(9),
        "manual:b",
    )
    .await
    .unwrap();
    assert_eq!(
        item(&store, "ebay", "MUG-BLUE").await.2,
        1,
        "ebay sells only main"
    );
    change_stock(
        &store,
        &p,
        "MUG-BLUE",
        "main",
        StockChange::Set(3),
        "manual:c",
    )
    .await
    .unwrap();
    assert_eq!(item(&store, "ebay", "MUG-BLUE").await, (3, 1200, 2, 0));
    // Recomputing everything again is a no-op.
    let stats = recompute_all(&store, &p).await.unwrap();
    assert_eq!((stats.skus, stats.changed), (4, 0));
}

#[tokio::test]
async fn component_changes_flow_into_bundles() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    import(&store, &p, CATALOG).await.unwrap();
    assert_eq!(item(&store, "ebay", "GIFT-SET").await.0, 5);
    change_stock(
        &store,
        &p,
        "COASTER",
        "main",
        StockChange::Set(7),
        "manual:1",
    )
    .await
    .unwrap();
    assert_eq!(
        item(&store, "ebay", "GIFT-SET").await,
        (1, 2500, 2, 0),
        "floor(7 / 4) = 1"
    );
    change_stock(
        &store,
        &p,
        "COASTER",
        "main",
        StockChange::Set(3),
        "manual:2",
    )
    .await
    .unwrap();
    assert_eq!(item(&store, "ebay", "GIFT-SET").await.0, 0);
    let err = change_stock(
        &store,
        &p,
        "GIFT-SET",
        "main",
        StockChange::Set(3),
        "manual:3",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("is a bundle"), "{err}");
}

#[tokio::test]
async fn channel_knobs_and_rules_shape_desired_state() {
    let (_db, store) = fresh_store().await;
    let mut p = plan(&["ebay", "amazon"]);
    p.channels[0].stock = StockKnobs {
        buffer: 2,
        percent: 50,
        max: Some(3),
        min_shown: 0,
    };
    p.channels[1].price.multiplier = Decimal::parse("1.15");
    p.channels[1].price.round_to = Decimal::parse("0.99");
    p.rules.push(omnistock::sync::plan::RulePlan {
        matcher: omnistock::sync::plan::Matcher::parse("tag:red").unwrap(),
        channels: Some(vec!["ebay".into()]),
        stock: omnistock::sync::plan::StockOverride {
            max: Some(100),
            ..Default::default()
        },
        price: Default::default(),
    });
    import(&store, &p, CATALOG).await.unwrap();
    // MUG-BLUE: (4 − 2) × 50% = 1; MUG-RED (tag red lifts the cap): (10 − 2) × 50% = 4
    assert_eq!(item(&store, "ebay", "MUG-BLUE").await.0, 1);
    assert_eq!(item(&store, "ebay", "MUG-RED").await.0, 4);
    // COASTER 40: (40 − 2) × 50% = 19, capped at 3
    assert_eq!(item(&store, "ebay", "COASTER").await.0, 3);
    // amazon: 12.00 × 1.15 = 13.80 → 13.99
    assert_eq!(item(&store, "amazon", "MUG-RED").await.1, 1399);
}

#[tokio::test]
async fn the_ledger_replays_to_the_stock_levels() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    import(&store, &p, CATALOG).await.unwrap();
    change_stock(
        &store,
        &p,
        "MUG-RED",
        "main",
        StockChange::Adjust(5),
        "manual:1",
    )
    .await
    .unwrap();
    change_stock(
        &store,
        &p,
        "MUG-RED",
        "backroom",
        StockChange::Set(2),
        "manual:2",
    )
    .await
    .unwrap();
    let mut tx = store.write().await.unwrap();
    let m = Movement {
        sku: "MUG-RED",
        location: "main",
        delta_on_hand: 0,
        delta_reserved: 3,
        reason: "order_reserve",
        idempotency_key: "order:ebay:1:1:reserve",
        order_ref: Some("ebay:1"),
    };
    assert!(apply_movement(&mut tx, &m).await.unwrap());
    assert!(
        !apply_movement(&mut tx, &m).await.unwrap(),
        "same key twice is a no-op"
    );
    // A valid release takes part of the reservation back (an upsert would trip the CHECK).
    let release = Movement {
        delta_reserved: -2,
        reason: "order_release",
        idempotency_key: "order:ebay:1:1:release",
        ..m
    };
    assert!(apply_movement(&mut tx, &release).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(levels(&store, "MUG-RED", "main").await, (15, 1));
    assert!(verify_ledger(&store).await.unwrap().is_empty());
    // The check can fail: tamper with a level behind the ledger's back.
    sqlx::query("UPDATE stock_levels SET on_hand = on_hand + 1 WHERE sku = 'COASTER'")
        .execute(store.pool())
        .await
        .unwrap();
    let bad = verify_ledger(&store).await.unwrap();
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (bad[0].sku.as_str(), bad[0].levels.0, bad[0].ledger.0),
        ("COASTER", 41, 40)
    );
}

#[tokio::test]
async fn reservations_can_never_go_negative() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    import(&store, &p, CATALOG).await.unwrap();
    let mut tx = store.write().await.unwrap();
    let m = Movement {
        sku: "MUG-RED",
        location: "main",
        delta_on_hand: 0,
        delta_reserved: -1,
        reason: "order_release",
        idempotency_key: "order:ebay:9:1:release",
        order_ref: None,
    };
    let err = apply_movement(&mut tx, &m).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    drop(tx); // rolled back: no ledger row either
    assert_eq!(count(&store, "stock_movements").await, 3);
    assert!(verify_ledger(&store).await.unwrap().is_empty());
}

#[tokio::test]
async fn manual_changes_refuse_what_makes_no_sense() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay"]);
    import(&store, &p, CATALOG).await.unwrap();
    let e = change_stock(&store, &p, "NOPE", "main", StockChange::Set(1), "manual:1")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown SKU \"NOPE\""), "{e}");
    let e = change_stock(
        &store,
        &p,
        "MUG-RED",
        "attic",
        StockChange::Set(1),
        "manual:2",
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("unknown location \"attic\""), "{e}");
    let e = change_stock(
        &store,
        &p,
        "MUG-RED",
        "main",
        StockChange::Adjust(-11),
        "manual:3",
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("on hand would be -1"), "{e}");
    assert_eq!(levels(&store, "MUG-RED", "main").await, (10, 0));
}

#[tokio::test]
async fn concurrent_adjustments_all_land() {
    let (_db, store) = fresh_store().await;
    let p = plan(&["ebay", "amazon"]);
    import(&store, &p, CATALOG).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (store, p) = (store.clone(), p.clone());
        // Alternate two components of the same bundle to contend on it.
        let sku = if i % 2 == 0 { "MUG-RED" } else { "COASTER" };
        tasks.push(tokio::spawn(async move {
            let key = format!("manual:concurrent:{i}");
            loop {
                match change_stock(&store, &p, sku, "main", StockChange::Adjust(2), &key).await {
                    Ok(_) => break,
                    Err(e) if e.is_retriable() => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(levels(&store, "MUG-RED", "main").await.0, 10 + 24);
    assert_eq!(levels(&store, "COASTER", "main").await.0, 40 + 24);
    // The bundle's desired value reflects both components' final stock: min(34/2, 64/4) = 16.
    assert_eq!(item(&store, "ebay", "GIFT-SET").await.0, 16);
    assert_eq!(item(&store, "amazon", "GIFT-SET").await.0, 16);
    assert!(verify_ledger(&store).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lease_has_one_owner_and_a_takeover_fences_the_old_one() {
    use omnistock::store::lease::{Lease, holder};
    use std::time::Duration;
    let (_db, store) = fresh_store().await;
    let ttl = Duration::from_millis(300);
    let a = Lease::acquire(&store, "channel:ebay", "a", ttl)
        .await
        .unwrap()
        .expect("free lease taken");
    assert_eq!(a.epoch, 1);
    assert!(
        Lease::acquire(&store, "channel:ebay", "b", ttl)
            .await
            .unwrap()
            .is_none(),
        "held by a"
    );
    assert!(a.renew(&store, ttl).await.unwrap());
    let mut tx = store.write().await.unwrap();
    assert!(a.fence(&mut tx).await.unwrap(), "a may record results");
    tx.commit().await.unwrap();
    // a stalls past its expiry; b takes over with a new epoch; a can neither renew nor record.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let b = Lease::acquire(&store, "channel:ebay", "b", ttl)
        .await
        .unwrap()
        .expect("expired lease taken over");
    assert_eq!(b.epoch, 2);
    assert!(!a.renew(&store, ttl).await.unwrap());
    let mut tx = store.write().await.unwrap();
    assert!(!a.fence(&mut tx).await.unwrap(), "stale owner is fenced");
    assert!(b.fence(&mut tx).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        holder(&store, "channel:ebay").await.unwrap().unwrap().owner,
        "b"
    );
    // Released: the next owner gets it at once.
    b.release(&store).await.unwrap();
    assert!(holder(&store, "channel:ebay").await.unwrap().is_none());
    let c = Lease::acquire(&store, "channel:ebay", "c", ttl)
        .await
        .unwrap()
        .expect("released lease taken");
    assert_eq!(c.epoch, 3);
}

#[tokio::test]
async fn a_schedule_tick_is_claimed_exactly_once() {
    use omnistock::schedule::{claim_tick, last_tick};
    let (_db, store) = fresh_store().await;
    assert_eq!(last_tick(&store, "ebay:reconcile").await.unwrap(), None);
    // Two instances (or a restart) race for the same tick: one wins.
    let (x, y) = tokio::join!(
        claim_tick(&store, "ebay:reconcile", 60_000),
        claim_tick(&store, "ebay:reconcile", 60_000)
    );
    let wins = [x.unwrap(), y.unwrap()].iter().filter(|w| **w).count();
    assert_eq!(wins, 1);
    assert!(!claim_tick(&store, "ebay:reconcile", 60_000).await.unwrap());
    assert!(
        !claim_tick(&store, "ebay:reconcile", 30_000).await.unwrap(),
        "older tick"
    );
    assert!(claim_tick(&store, "ebay:reconcile", 120_000).await.unwrap());
    assert_eq!(
        last_tick(&store, "ebay:reconcile").await.unwrap(),
        Some(120_000)
    );
}
