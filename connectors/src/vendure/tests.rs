//! The Vendure connector against the sandbox's Vendure fake: every story drives the real HTTP
//! path and checks the fake's store, write log and request log behind it.

use std::time::Duration;

use omnistock_sandbox::{
    FaultKind, FaultRule, OrderLine as SandboxLine, Sandbox, SandboxOptions, VendureOptions,
    VendureSeedListing,
};

use super::*;
use crate::common::Secret;
use crate::error::ErrorClass;
use crate::model::{Money, OrderStatus};

struct Harness {
    sandbox: Sandbox,
    conn: VendureConnector,
}

fn test_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        rate_per_sec: 10_000.0,
        burst: 1_000,
        ..VendureConnector::DEFAULT_LIMITS
    }
}

fn config_for(sandbox: &Sandbox) -> VendureConfig {
    let v = sandbox.vendure();
    let creds = v.credentials();
    VendureConfig {
        endpoint: v.admin_api_url(),
        username: creds.username,
        password: Secret::new(creds.password),
        channel_token: creds.channel_token,
        stock_location_id: None,
        limits: test_limits(),
    }
}

async fn start_with(listings: Vec<VendureSeedListing>) -> Harness {
    let sandbox = Sandbox::start(SandboxOptions {
        port: 0,
        vendure: VendureOptions {
            listings,
            ..VendureOptions::default()
        },
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let conn = VendureConnector::new(config_for(&sandbox)).expect("connector builds");
    Harness { sandbox, conn }
}

fn seeds(n: usize) -> Vec<VendureSeedListing> {
    (0..n)
        .map(|i| VendureSeedListing::new(format!("SKU-{i:03}"), 10, "12.99"))
        .collect()
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn usd(minor: i64) -> Money {
    Money {
        minor,
        currency: Currency::parse("USD").unwrap(),
    }
}

fn stock(s: &str, quantity: u32) -> StockUpdate {
    StockUpdate {
        sku: sku(s),
        external_id: None,
        quantity,
        price: None,
        version: 1,
    }
}

fn listing(s: &str, quantity: u32, price: i64) -> ListingUpdate {
    ListingUpdate {
        sku: sku(s),
        external_id: None,
        title: format!("Title of {s}"),
        description: "A thing".into(),
        brand: None,
        barcode: None,
        image_urls: vec![],
        options: vec![],
        group_id: None,
        quantity,
        price: usd(price),
        version: 1,
    }
}

fn applied(o: &ItemOutcome) -> bool {
    matches!(o, ItemOutcome::Applied { .. })
}

#[tokio::test]
async fn stock_is_set_by_sku_with_price_and_unknown_skus_are_not_listed() {
    let h = start_with(seeds(3)).await;
    let v = h.sandbox.vendure();
    let mut with_price = stock("SKU-001", 4);
    with_price.price = Some(usd(1500));
    let out = h
        .conn
        .push_stock(&[stock("SKU-000", 7), with_price, stock("NOPE", 1)])
        .await
        .unwrap();
    assert!(applied(&out[0]) && applied(&out[1]), "{out:?}");
    assert!(matches!(out[2], ItemOutcome::NotListed { .. }), "{out:?}");
    assert_eq!(v.current_quantity("SKU-000"), Some(7));
    assert_eq!(v.current_quantity("SKU-001"), Some(4));
    assert_eq!(v.current_price("SKU-001").unwrap().value, "15.00");
    assert_eq!(v.current_quantity("SKU-002"), Some(10), "untouched");
    // One read, one write for the batch.
    assert_eq!(v.request_count("productVariants"), 1);
    assert_eq!(v.request_count("updateProductVariants"), 1);
    assert_eq!(v.request_count("login"), 1);
    let writes = v.writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].operation, "updateProductVariants");
}

#[tokio::test]
async fn stock_on_hand_includes_what_vendure_has_allocated() {
    let h = start_with(seeds(1)).await;
    let v = h.sandbox.vendure();
    v.place_order(&[SandboxLine::new("SKU-000", 3)]).unwrap();
    assert_eq!(v.current_quantity("SKU-000"), Some(7));
    let out = h.conn.push_stock(&[stock("SKU-000", 5)]).await.unwrap();
    assert!(applied(&out[0]));
    assert_eq!(v.stock_allocated("SKU-000"), Some(3));
    assert_eq!(v.stock_on_hand("SKU-000"), Some(8));
    assert_eq!(
        v.current_quantity("SKU-000"),
        Some(5),
        "buyers see what omnistock says"
    );
}

#[tokio::test]
async fn listings_are_created_updated_delisted_and_reenabled() {
    let h = start_with(vec![]).await;
    let v = h.sandbox.vendure();
    let weird = "MUG \"RED\" {x} \\ $y";
    let out = h
        .conn
        .push_listings(&[listing("MUG-1", 5, 1299), listing(weird, 2, 500)])
        .await
        .unwrap();
    assert!(out.iter().all(applied), "{out:?}");
    assert_eq!(v.product_count(), 2);
    assert_eq!(v.current_quantity("MUG-1"), Some(5));
    assert_eq!(
        v.current_quantity(weird),
        Some(2),
        "no SKU is spliced into a document"
    );
    assert_eq!(v.current_price("MUG-1").unwrap().value, "12.99");
    // Again: an update, not a second product.
    let out = h
        .conn
        .push_listings(&[listing("MUG-1", 6, 1399)])
        .await
        .unwrap();
    assert!(applied(&out[0]));
    assert_eq!(v.product_count(), 2);
    assert_eq!(v.current_price("MUG-1").unwrap().value, "13.99");
    // Delist disables; stock pushes then say NotListed; a listing push re-enables.
    let out = h.conn.delist(&[sku("MUG-1"), sku("GONE")]).await.unwrap();
    assert!(out.iter().all(applied), "{out:?}");
    assert_eq!(v.enabled("MUG-1"), Some(false));
    assert_eq!(v.current_quantity("MUG-1"), Some(0));
    let out = h.conn.push_stock(&[stock("MUG-1", 3)]).await.unwrap();
    assert!(matches!(out[0], ItemOutcome::NotListed { .. }), "{out:?}");
    let out = h
        .conn
        .push_listings(&[listing("MUG-1", 3, 1399)])
        .await
        .unwrap();
    assert!(applied(&out[0]));
    assert_eq!(v.enabled("MUG-1"), Some(true));
    assert_eq!(v.current_quantity("MUG-1"), Some(3));
    // A price in another currency than the channel's is refused before anything is sent.
    let mut eur = listing("MUG-EUR", 1, 100);
    eur.price.currency = Currency::parse("EUR").unwrap();
    let out = h.conn.push_listings(&[eur]).await.unwrap();
    assert!(matches!(out[0], ItemOutcome::Rejected { .. }), "{out:?}");
}

#[tokio::test]
async fn a_refused_variant_fails_alone_after_the_batch_is_split() {
    let h = start_with(seeds(3)).await;
    let v = h.sandbox.vendure();
    v.faults().add(FaultRule::new(
        "vendure",
        "updateProductVariants",
        FaultKind::reject_skus(["SKU-001"], 4001, "price is out of range"),
    ));
    let out = h
        .conn
        .push_stock(&[
            stock("SKU-000", 1),
            stock("SKU-001", 2),
            stock("SKU-002", 3),
        ])
        .await
        .unwrap();
    assert!(applied(&out[0]) && applied(&out[2]), "{out:?}");
    match &out[1] {
        ItemOutcome::Rejected { code, error } => {
            assert_eq!(code.as_deref(), Some("USER_INPUT_ERROR"));
            assert!(error.contains("price is out of range"), "{error}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(v.current_quantity("SKU-001"), Some(10));
    assert_eq!(v.current_quantity("SKU-002"), Some(3));
    // The batch, then each item alone.
    assert_eq!(v.request_count("updateProductVariants"), 4);
    assert_eq!(h.conn.stats().extra["split_batches"], 1);
}

#[tokio::test]
async fn orders_page_map_states_and_reach_back_one_second() {
    let h = start_with(vec![VendureSeedListing::new("MUG", 1000, "10.00")]).await;
    let v = h.sandbox.vendure();
    let mut codes = Vec::new();
    for _ in 0..105 {
        codes.push(v.place_order(&[SandboxLine::new("MUG", 2)]).unwrap());
    }
    v.cancel_order(&codes[0]).unwrap();
    v.ship_order(&codes[1]).unwrap();
    let first = h.conn.fetch_orders(0, None).await.unwrap();
    assert_eq!(first.orders.len(), MAX_PAGE);
    assert_eq!(first.next_page.as_deref(), Some("100"));
    let second = h.conn.fetch_orders(0, first.next_page).await.unwrap();
    assert_eq!(second.orders.len(), 5);
    assert_eq!(second.next_page, None);
    let all: Vec<_> = first.orders.iter().chain(&second.orders).collect();
    let by_code = |c: &str| all.iter().find(|o| o.external_id == c).unwrap();
    assert_eq!(by_code(&codes[0]).status, OrderStatus::Cancelled);
    assert_eq!(by_code(&codes[1]).status, OrderStatus::Shipped);
    let paid = by_code(&codes[2]);
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(paid.lines.len(), 1);
    assert_eq!(paid.lines[0].sku.as_str(), "MUG");
    assert_eq!(paid.lines[0].quantity, 2);
    assert_eq!(paid.total, Some(usd(2400)), "2 × 10.00 + 20 % tax");
    assert!(paid.buyer_ref.as_deref().unwrap().starts_with("customer:"));
    // updatedAt has whole seconds: an order updated in the second of `since` (or the one before)
    // is read again; two seconds later it is not.
    let newest = all.iter().map(|o| o.remote_updated_at_ms).max().unwrap();
    assert_eq!(newest % 1000, 0, "stored in whole seconds");
    let again = h.conn.fetch_orders(newest + 999, None).await.unwrap();
    assert!(!again.orders.is_empty());
    let later = h.conn.fetch_orders(newest + 2000, None).await.unwrap();
    assert!(later.orders.is_empty(), "{later:?}");
    // Carts are not orders: the filter leaves out active orders.
    assert_eq!(h.conn.stats().extra["carts_skipped"], 0);
}

#[tokio::test]
async fn snapshot_pages_through_every_variant() {
    let h = start_with(seeds(150)).await;
    let v = h.sandbox.vendure();
    v.place_order(&[SandboxLine::new("SKU-000", 4)]).unwrap();
    h.conn.delist(&[sku("SKU-001")]).await.unwrap();
    let p1 = h.conn.snapshot_page(None).await.unwrap();
    assert_eq!(p1.items.len(), 100);
    let p2 = h.conn.snapshot_page(p1.next_page.clone()).await.unwrap();
    assert_eq!(p2.items.len(), 50);
    assert_eq!(p2.next_page, None);
    assert_eq!(p1.items[0].quantity, Some(6), "on hand minus allocated");
    assert_eq!(p1.items[1].quantity, Some(0), "disabled");
    assert_eq!(p1.items[2].quantity, Some(10));
    assert_eq!(p1.items[2].price, Some(usd(1299)));
    assert!(p1.items[2].external_id.is_some());
    assert!(matches!(
        h.conn.snapshot_page(Some("x".into())).await,
        Err(ConnectorError::Permanent { .. })
    ));
}

#[tokio::test]
async fn an_expired_session_means_one_new_login() {
    let h = start_with(seeds(1)).await;
    let v = h.sandbox.vendure();
    h.conn.push_stock(&[stock("SKU-000", 1)]).await.unwrap();
    v.expire_sessions();
    let out = h.conn.push_stock(&[stock("SKU-000", 2)]).await.unwrap();
    assert!(applied(&out[0]));
    assert_eq!(v.request_count("login"), 2);
    assert_eq!(v.current_quantity("SKU-000"), Some(2));
    let health = h.conn.healthcheck().await.unwrap();
    assert!(health.summary.contains("USD"), "{}", health.summary);
}

#[tokio::test]
async fn wrong_credentials_and_channel_are_refused_cleanly() {
    let h = start_with(seeds(1)).await;
    let mut bad = config_for(&h.sandbox);
    bad.password = Secret::new("wrong");
    let conn = VendureConnector::new(bad).unwrap();
    let e = conn.push_stock(&[stock("SKU-000", 1)]).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Auth, "{e}");
    assert!(e.to_string().contains("INVALID_CREDENTIALS_ERROR"), "{e}");
    assert!(!e.to_string().contains("wrong"), "never the password: {e}");
    let mut other = config_for(&h.sandbox);
    other.channel_token = Some("no-such-channel".into());
    let conn = VendureConnector::new(other).unwrap();
    let e = conn.healthcheck().await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    // A config without a password is refused before anything is sent.
    let mut empty = config_for(&h.sandbox);
    empty.password = Secret::new("");
    assert!(VendureConnector::new(empty).is_err());
}

#[tokio::test]
async fn broken_answers_become_clean_errors() {
    let h = start_with(seeds(1)).await;
    let v = h.sandbox.vendure();
    let faults = v.faults();
    // Truncated JSON.
    let id =
        faults.add(FaultRule::new("vendure", "productVariants", FaultKind::MalformedBody).times(1));
    let e = h.conn.push_stock(&[stock("SKU-000", 1)]).await.unwrap_err();
    assert!(matches!(e, ConnectorError::Malformed { .. }), "{e}");
    assert_eq!(faults.fired(id), 1);
    // An oversized body.
    let huge = format!(
        "{{\"data\":\"{}\"}}",
        "x".repeat(crate::common::MAX_BODY_BYTES + 10)
    );
    faults.add(
        FaultRule::new(
            "vendure",
            "productVariants",
            FaultKind::ServerError {
                status: 200,
                body: Some(huge),
            },
        )
        .times(1),
    );
    let e = h.conn.snapshot_page(None).await.unwrap_err();
    assert!(matches!(e, ConnectorError::Malformed { .. }), "{e}");
    // 503 → transient; 429 with Retry-After → rate limited.
    faults.add(FaultRule::new("vendure", "orders", FaultKind::server_error(503)).times(1));
    let e = h.conn.fetch_orders(0, None).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    faults.add(
        FaultRule::new(
            "vendure",
            "orders",
            FaultKind::TooManyRequests {
                retry_after_secs: Some(1),
            },
        )
        .times(1),
    );
    let e = h.conn.fetch_orders(0, None).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)), "{e}");
    assert_eq!(v.count_429(), 1);
    // A GraphQL internal error is transient.
    faults.add(
        FaultRule::new(
            "vendure",
            "updateProductVariants",
            FaultKind::ServerError {
                status: 200,
                body: Some(
                    r#"{"errors":[{"message":"boom","extensions":{"code":"INTERNAL_SERVER_ERROR"}}],"data":null}"#
                        .into(),
                ),
            },
        )
        .times(1),
    );
    let e = h.conn.push_stock(&[stock("SKU-000", 1)]).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    // And then everything works again.
    let out = h.conn.push_stock(&[stock("SKU-000", 4)]).await.unwrap();
    assert!(applied(&out[0]));
}
