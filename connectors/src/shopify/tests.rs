//! The Shopify connector against the stateful Shopify fake (`omnistock-sandbox`): every story
//! drives the real HTTP path (GraphQL, the cost bucket, client-credentials tokens) and checks the
//! shop's state, write log and request log behind it. The last tests check every document the
//! connector sends against Shopify's 2025-01 introspection schema.

use std::time::Duration;

use omnistock_sandbox::{
    FaultKind, FaultRule, OrderLine as SandboxLine, Sandbox, SandboxOptions, ShopifyHandle,
    ShopifyOptions, ShopifySeedListing,
};
use serde_json::{Value, json};

use super::*;
use crate::common::Secret;
use crate::error::ErrorClass;
use crate::model::{Money, OrderStatus};

struct Harness {
    sandbox: Sandbox,
    conn: ShopifyConnector,
}

impl Harness {
    fn shop(&self) -> ShopifyHandle {
        self.sandbox.shopify()
    }
}

fn test_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        rate_per_sec: 10_000.0,
        burst: 1_000,
        ..ShopifyConnector::DEFAULT_LIMITS
    }
}

fn config_for(sandbox: &Sandbox, client_credentials: bool) -> ShopifyConfig {
    let creds = sandbox.shopify().credentials();
    ShopifyConfig {
        endpoint: format!("{}/shopify", sandbox.base_url()),
        api_version: ShopifyConfig::DEFAULT_API_VERSION.into(),
        auth: if client_credentials {
            ShopifyAuth::ClientCredentials {
                client_id: creds.client_id,
                client_secret: Secret::new(creds.client_secret),
            }
        } else {
            ShopifyAuth::AccessToken(Secret::new(creds.access_token))
        },
        location_id: creds.location_id,
        limits: test_limits(),
    }
}

async fn start_with(opts: ShopifyOptions, client_credentials: bool) -> Harness {
    let sandbox = Sandbox::start(SandboxOptions {
        port: 0,
        shopify: opts,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let conn =
        ShopifyConnector::new(config_for(&sandbox, client_credentials)).expect("connector builds");
    Harness { sandbox, conn }
}

fn seeded(listings: &[(&str, u32)]) -> ShopifyOptions {
    ShopifyOptions {
        listings: listings
            .iter()
            .map(|(s, q)| ShopifySeedListing::new(*s, *q, "10.00"))
            .collect(),
        ..ShopifyOptions::unlimited()
    }
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("valid SKU")
}

fn usd(a: &str) -> Money {
    Money::parse(a, Currency::parse("USD").unwrap()).unwrap()
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

fn listing(s: &str, quantity: u32, price: &str) -> ListingUpdate {
    ListingUpdate {
        sku: sku(s),
        external_id: None,
        title: format!("Mug {s}"),
        description: "<p>A sturdy mug</p>".into(),
        brand: Some("Acme".into()),
        barcode: Some("012345678905".into()),
        image_urls: Vec::new(),
        options: Vec::new(),
        group_id: None,
        quantity,
        price: usd(price),
        version: 1,
    }
}

fn applied(o: &ItemOutcome) -> bool {
    matches!(o, ItemOutcome::Applied { external_id: Some(id) } if id.starts_with("gid://shopify/ProductVariant/"))
}

#[tokio::test]
async fn listings_are_created_with_product_set_and_grouped_variants_share_a_product() {
    let h = start_with(ShopifyOptions::unlimited(), false).await;
    let mut red = listing("SHIRT-RED", 4, "19.99");
    red.group_id = Some("SHIRT".into());
    red.options = vec![("Colour".into(), "Red".into())];
    let mut blue = listing("SHIRT-BLUE", 2, "21.00");
    blue.group_id = Some("SHIRT".into());
    blue.options = vec![("Colour".into(), "Blue".into())];
    let out = h
        .conn
        .push_listings(&[listing("MUG", 7, "9.50"), red, blue])
        .await
        .unwrap();
    assert!(out.iter().all(applied), "{out:?}");
    let shop = h.shop();
    assert_eq!(shop.current_quantity("MUG"), Some(7));
    assert_eq!(
        shop.current_price("SHIRT-BLUE"),
        Some(omnistock_sandbox::Money::new("21.00", "USD"))
    );
    let r = shop.listing("SHIRT-RED").unwrap();
    let b = shop.listing("SHIRT-BLUE").unwrap();
    assert_eq!(r.product_id, b.product_id);
    assert_eq!(r.product_variants, 2);
    assert_eq!(r.options, vec![("Colour".to_owned(), "Red".to_owned())]);
    assert_eq!(r.status, "ACTIVE");
    // Update one variant of the group: the other is kept, quantity set via compare-and-set.
    let mut red2 = listing("SHIRT-RED", 9, "18.00");
    red2.group_id = Some("SHIRT".into());
    red2.options = vec![("Colour".into(), "Red".into())];
    let out = h.conn.push_listings(&[red2]).await.unwrap();
    assert!(applied(&out[0]), "{out:?}");
    assert_eq!(shop.current_quantity("SHIRT-RED"), Some(9));
    assert_eq!(shop.current_quantity("SHIRT-BLUE"), Some(2));
    assert_eq!(shop.listing("SHIRT-BLUE").unwrap().product_variants, 2);
    assert_eq!(
        shop.current_price("SHIRT-RED"),
        Some(omnistock_sandbox::Money::new("18.00", "USD"))
    );
    assert_eq!(shop.request_count("productSet"), 3);
}

#[tokio::test]
async fn listing_user_errors_reject_only_their_items() {
    let h = start_with(seeded(&[("TAKEN", 1)]), false).await;
    h.shop().faults().add(FaultRule::new(
        "shopify",
        "productSet",
        FaultKind::reject_skus(["BAD"], 1, "SKU blocked"),
    ));
    let mut no_title = listing("NOTITLE", 1, "1.00");
    no_title.title = " ".into();
    let mut eur = listing("EUR", 1, "1.00");
    eur.price = Money::parse("1.00", Currency::parse("EUR").unwrap()).unwrap();
    let mut bad = listing("BAD", 1, "1.00");
    bad.group_id = Some("G".into());
    bad.options = vec![("Size".into(), "S".into())];
    let mut good = listing("GOOD", 1, "1.00");
    good.group_id = Some("G".into());
    good.options = vec![("Size".into(), "M".into())];
    let out = h
        .conn
        .push_listings(&[no_title, eur, bad, good])
        .await
        .unwrap();
    assert!(
        matches!(&out[0], ItemOutcome::Rejected { code: Some(c), .. } if c == "INVALID_PRODUCT"),
        "{out:?}"
    );
    assert!(
        matches!(&out[1], ItemOutcome::Rejected { code: Some(c), .. } if c == "CURRENCY"),
        "{out:?}"
    );
    assert!(
        matches!(&out[2], ItemOutcome::Rejected { error, .. } if error.contains("SKU blocked")),
        "{out:?}"
    );
    assert!(
        applied(&out[3]),
        "the group is sent again without the refused variant: {out:?}"
    );
    assert_eq!(h.shop().current_quantity("GOOD"), Some(1));
    assert_eq!(h.shop().current_quantity("BAD"), None);
}

#[tokio::test]
async fn stock_is_set_with_change_from_quantity_and_stale_values_are_replanned() {
    let h = start_with(seeded(&[("A", 5), ("B", 1)]), false).await;
    let shop = h.shop();
    let out = h
        .conn
        .push_stock(&[stock("A", 8), stock("B", 0), stock("NOPE", 3)])
        .await
        .unwrap();
    assert!(applied(&out[0]) && applied(&out[1]), "{out:?}");
    assert!(matches!(out[2], ItemOutcome::NotListed { .. }), "{out:?}");
    assert_eq!(shop.current_quantity("A"), Some(8));
    assert_eq!(shop.request_count("productVariants"), 1);
    // A sale meanwhile: the connector's changeFromQuantity (8) is stale; it re-reads and sets
    // the daemon's value anyway.
    shop.set_quantity_out_of_band("A", 6).unwrap();
    let out = h
        .conn
        .push_stock(&[stock("A", 3), stock("B", 2)])
        .await
        .unwrap();
    assert!(out.iter().all(applied), "{out:?}");
    assert_eq!(shop.current_quantity("A"), Some(3));
    assert_eq!(shop.current_quantity("B"), Some(2));
    assert_eq!(shop.request_count("inventorySetQuantities"), 3);
    assert_eq!(shop.request_count("nodes"), 1);
    assert_eq!(
        shop.request_count("productVariants"),
        1,
        "the cache served the second push"
    );
    assert_eq!(h.conn.stats().extra["stale_replans"], 1);
    // No write ever applied a stale plan: A went 5 → 8 → 3, B 1 → 0 → 2.
    let a: Vec<Option<u32>> = shop
        .writes()
        .iter()
        .filter(|w| w.sku == "A")
        .map(|w| w.quantity)
        .collect();
    assert_eq!(a, vec![Some(8), Some(3)]);
}

#[tokio::test]
async fn a_quantity_changing_during_the_push_converges_or_ends_as_retry_within_the_plan_bound() {
    let h = start_with(seeded(&[("A", 5)]), false).await;
    h.conn.push_stock(&[stock("A", 5)]).await.unwrap();
    // A drifter changes the quantity every millisecond while the push re-plans.
    h.shop().set_quantity_out_of_band("A", 1).unwrap();
    h.shop().faults().add(FaultRule::new(
        "shopify",
        "nodes",
        FaultKind::latency(Duration::from_millis(1)),
    ));
    let shop = h.shop();
    let drifter = tokio::spawn(async move {
        for q in 0..200u32 {
            let _ = shop.set_quantity_out_of_band("A", 100 + q);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let out = h.conn.push_stock(&[stock("A", 7)]).await.unwrap();
    drifter.abort();
    assert!(
        matches!(&out[0], ItemOutcome::Retry { error } if error.contains("CHANGE_FROM_QUANTITY_STALE"))
            || applied(&out[0]),
        "{out:?}"
    );
    assert!(h.shop().request_count("inventorySetQuantities") <= 1 + MAX_PLANS as u64);
}

#[tokio::test]
async fn items_not_stocked_are_activated_then_set_and_user_errors_reject_per_item() {
    let mut opts = seeded(&[("OK", 1), ("BAD", 1)]);
    let mut u = ShopifySeedListing::new("UNSTOCKED", 0, "1.00");
    u.stocked = false;
    opts.listings.push(u);
    let h = start_with(opts, false).await;
    h.shop().faults().add(FaultRule::new(
        "shopify",
        "inventorySetQuantities",
        FaultKind::reject_skus(["BAD"], 1, "not mutable"),
    ));
    let out = h
        .conn
        .push_stock(&[stock("UNSTOCKED", 4), stock("BAD", 2), stock("OK", 3)])
        .await
        .unwrap();
    assert!(applied(&out[0]), "{out:?}");
    assert!(
        matches!(&out[1], ItemOutcome::Rejected { code: Some(c), .. } if c == "NON_MUTABLE_INVENTORY_ITEM"),
        "{out:?}"
    );
    assert!(applied(&out[2]), "{out:?}");
    assert_eq!(h.shop().current_quantity("UNSTOCKED"), Some(4));
    assert_eq!(h.shop().current_quantity("OK"), Some(3));
    assert_eq!(h.shop().current_quantity("BAD"), Some(1));
    assert_eq!(h.shop().request_count("inventoryActivate"), 1);
    // Unstocked behind the connector's back: ITEM_NOT_STOCKED_AT_LOCATION → activate, set.
    h.shop().unstock_out_of_band("OK").unwrap();
    let out = h.conn.push_stock(&[stock("OK", 5)]).await.unwrap();
    assert!(applied(&out[0]), "{out:?}");
    assert_eq!(h.shop().current_quantity("OK"), Some(5));
    assert_eq!(h.shop().request_count("inventoryActivate"), 2);
}

#[tokio::test]
async fn a_lost_answer_is_resent_with_the_same_idempotency_key_and_applied_once() {
    let h = start_with(seeded(&[("A", 5)]), false).await;
    h.conn.push_stock(&[stock("A", 5)]).await.unwrap();
    h.shop().faults().add(
        FaultRule::new(
            "shopify",
            "inventorySetQuantities",
            FaultKind::DropConnection {
                after_processing: true,
            },
        )
        .times(1),
    );
    let out = h.conn.push_stock(&[stock("A", 9)]).await.unwrap();
    assert!(applied(&out[0]), "{out:?}");
    assert_eq!(h.shop().current_quantity("A"), Some(9));
    let writes: Vec<_> = h
        .shop()
        .writes()
        .into_iter()
        .filter(|w| w.sku == "A")
        .collect();
    assert_eq!(
        writes.len(),
        2,
        "one write for 5, one for 9 — the resend was a replay"
    );
    assert_eq!(h.shop().request_count("inventorySetQuantities"), 3);
}

#[tokio::test]
async fn hostile_skus_cannot_widen_the_search() {
    let h = start_with(seeded(&[("A", 5)]), false).await;
    let out = h
        .conn
        .push_stock(&[stock(r#"Z" OR sku:"A"#, 0), stock(r"\", 0)])
        .await
        .unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, ItemOutcome::NotListed { .. })),
        "{out:?}"
    );
    assert_eq!(h.shop().current_quantity("A"), Some(5));
}

#[tokio::test]
async fn throttled_answers_at_200_and_429_are_waited_out() {
    for status in [200u16, 429] {
        let opts = ShopifyOptions {
            bucket_size: 1000.0,
            restore_rate: 100.0,
            throttle_status: status,
            ..seeded(&[("A", 5)])
        };
        let h = start_with(opts, false).await;
        h.conn.push_stock(&[stock("A", 1)]).await.unwrap();
        h.shop().drain_bucket(1000.0);
        let started = std::time::Instant::now();
        let out = h.conn.push_stock(&[stock("A", 2)]).await.unwrap();
        assert!(applied(&out[0]), "{out:?}");
        assert_eq!(h.shop().count_429(), 1, "status {status}");
        assert!(started.elapsed() >= Duration::from_millis(90));
        assert_eq!(h.conn.stats().rate_limited, 1);
    }
}

#[tokio::test]
async fn a_long_throttle_is_reported_as_rate_limited() {
    let opts = ShopifyOptions {
        bucket_size: 1000.0,
        restore_rate: 0.5,
        throttle_status: 429,
        ..seeded(&[("A", 5)])
    };
    let h = start_with(opts, false).await;
    h.conn.push_stock(&[stock("A", 1)]).await.unwrap();
    h.shop().drain_bucket(1000.0);
    let e = h.conn.push_stock(&[stock("A", 2)]).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::RateLimited);
    let wait = e.retry_after().unwrap();
    assert!(
        wait > MAX_INLINE_WAIT && wait <= Duration::from_secs(21),
        "{wait:?}"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_holds_every_call_that_long_whatever_the_bucket_says() {
    // The bucket has points to spare; the edge still says 429, Retry-After: 2.
    let h = start_with(seeded(&[("A", 5)]), false).await;
    h.conn.push_stock(&[stock("A", 1)]).await.unwrap();
    h.sandbox.faults().add(
        FaultRule::new(
            "shopify",
            "*",
            FaultKind::TooManyRequests {
                retry_after_secs: Some(2),
            },
        )
        .times(1),
    );
    let update = [stock("A", 2)];
    let started = std::time::Instant::now();
    let (out, orders) = tokio::join!(h.conn.push_stock(&update), async {
        // Another caller of the same account, after the 429 came back.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let at = std::time::Instant::now();
        h.conn.fetch_orders(0, None).await.map(|_| at.elapsed())
    });
    assert!(applied(&out.unwrap()[0]));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "resent after {:?}",
        started.elapsed()
    );
    let waited = orders.unwrap();
    assert!(
        waited >= Duration::from_millis(1_500),
        "the other caller waited only {waited:?}"
    );
    assert_eq!(h.shop().count_429(), 1);
}

#[tokio::test]
async fn the_cost_model_prevents_throttling_in_a_burst() {
    let opts = ShopifyOptions {
        bucket_size: 400.0,
        restore_rate: 400.0,
        ..seeded(&[("A", 5)])
    };
    let h = start_with(opts, false).await;
    for q in 0..80u32 {
        let out = h.conn.push_stock(&[stock("A", q)]).await.unwrap();
        assert!(applied(&out[0]));
    }
    // 80 mutations × 10 points + one 352-point lookup ≈ 1,150 points through a 400-point bucket.
    assert_eq!(h.shop().count_429(), 0);
    assert!(h.conn.stats().extra["cost_waits"] > 0);
    assert_eq!(h.shop().current_quantity("A"), Some(79));
}

#[tokio::test]
async fn client_credentials_tokens_are_fetched_and_refreshed_once_after_a_401() {
    let h = start_with(seeded(&[("A", 5)]), true).await;
    assert!(h.conn.healthcheck().await.is_ok());
    assert_eq!(h.shop().request_count("token"), 1);
    h.conn.push_stock(&[stock("A", 1)]).await.unwrap();
    assert_eq!(h.shop().request_count("token"), 1, "the token is reused");
    h.shop().expire_access_tokens();
    let out = h.conn.push_stock(&[stock("A", 2)]).await.unwrap();
    assert!(applied(&out[0]));
    assert_eq!(h.shop().request_count("token"), 2);
    assert_eq!(h.conn.stats().token_refreshes, 2);
    // Wrong secret: Auth, without retry loops.
    let mut c = config_for(&h.sandbox, true);
    c.auth = ShopifyAuth::ClientCredentials {
        client_id: "sandbox-client-id".into(),
        client_secret: Secret::new("nope"),
    };
    let bad = ShopifyConnector::new(c).unwrap();
    assert_eq!(
        bad.healthcheck().await.unwrap_err().class(),
        ErrorClass::Auth
    );
    let mut c = config_for(&h.sandbox, false);
    c.auth = ShopifyAuth::AccessToken(Secret::new("shpat_wrong"));
    let bad = ShopifyConnector::new(c).unwrap();
    let e = bad.push_stock(&[stock("A", 1)]).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Auth);
    assert!(!format!("{e} {bad:?}").contains("shpat_wrong"));
}

#[tokio::test]
async fn orders_are_paged_by_update_time_with_statuses_mapped() {
    let h = start_with(seeded(&[("A", 100), ("B", 100)]), false).await;
    let shop = h.shop();
    let since = chrono::Utc::now().timestamp_millis() - 2_000;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(
            shop.place_order(&[SandboxLine::new("A", 1 + i % 2), SandboxLine::new("B", 1)])
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    shop.cancel_order(&ids[0]).unwrap();
    shop.fulfill_order(&ids[1]).unwrap();
    let p1 = h.conn.fetch_orders(since, None).await.unwrap();
    assert_eq!(p1.orders.len(), 25);
    let token = p1.next_page.clone().expect("a second page");
    let p2 = h.conn.fetch_orders(since, Some(token)).await.unwrap();
    assert_eq!(p2.orders.len(), 5);
    assert!(p2.next_page.is_none());
    let all: Vec<_> = p1.orders.iter().chain(&p2.orders).collect();
    assert_eq!(all.len(), 30);
    let cancelled = all.iter().find(|o| o.external_id == ids[0]).unwrap();
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.lines.len(), 2);
    assert_eq!(
        cancelled.lines[0].quantity, 1,
        "a cancelled order keeps what was ordered"
    );
    let shipped = all.iter().find(|o| o.external_id == ids[1]).unwrap();
    assert_eq!(shipped.status, OrderStatus::Shipped);
    assert_eq!(shipped.lines[0].quantity, 2);
    let paid = all.iter().find(|o| o.external_id == ids[2]).unwrap();
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(paid.total, Some(usd("20.00")));
    assert!(paid.lines[0].line_id.starts_with("gid://shopify/LineItem/"));
    // Updated last: the cancelled and fulfilled ones end the sequence.
    assert_eq!(p2.orders.last().unwrap().external_id, ids[1]);
    let later = h
        .conn
        .fetch_orders(chrono::Utc::now().timestamp_millis() + 60_000, None)
        .await
        .unwrap();
    assert!(later.orders.is_empty());
    assert!(
        h.conn
            .fetch_orders(0, Some("garbage".into()))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn snapshots_page_through_active_variants_and_delist_drafts_or_zeroes() {
    let skus: Vec<String> = (0..130).map(|i| format!("S{i:03}")).collect();
    let opts = ShopifyOptions {
        listings: skus
            .iter()
            .enumerate()
            .map(|(i, s)| ShopifySeedListing::new(s, i as u32, "2.50"))
            .collect(),
        ..ShopifyOptions::unlimited()
    };
    let h = start_with(opts, false).await;
    // Delist S000 (one-variant product → DRAFT).
    let out = h.conn.delist(&[sku("S000"), sku("GONE")]).await.unwrap();
    assert!(
        out.iter().all(|o| matches!(o, ItemOutcome::Applied { .. })),
        "{out:?}"
    );
    assert_eq!(h.shop().listing("S000").unwrap().status, "DRAFT");
    assert_eq!(h.shop().current_quantity("S000"), Some(0));
    let p1 = h.conn.snapshot_page(None).await.unwrap();
    assert_eq!(p1.items.len(), 99, "100 variants, one of them DRAFT");
    let p2 = h.conn.snapshot_page(p1.next_page.clone()).await.unwrap();
    assert_eq!(p2.items.len(), 30);
    assert!(p2.next_page.is_none());
    let s5 = p1.items.iter().find(|i| i.sku.as_str() == "S005").unwrap();
    assert_eq!(s5.quantity, Some(5));
    assert_eq!(s5.price, Some(usd("2.50")));
    // Relisting: productSet sets ACTIVE again on the same product.
    let out = h
        .conn
        .push_listings(&[listing("S000", 3, "2.50")])
        .await
        .unwrap();
    assert!(applied(&out[0]));
    assert_eq!(h.shop().listing("S000").unwrap().status, "ACTIVE");
    assert_eq!(h.shop().current_quantity("S000"), Some(3));
    // A variant of a product that keeps others: quantity 0, product stays ACTIVE.
    let mut a = listing("V-A", 4, "1.00");
    a.group_id = Some("V".into());
    a.options = vec![("Size".into(), "A".into())];
    let mut b = listing("V-B", 4, "1.00");
    b.group_id = Some("V".into());
    b.options = vec![("Size".into(), "B".into())];
    h.conn.push_listings(&[a, b]).await.unwrap();
    let out = h.conn.delist(&[sku("V-A")]).await.unwrap();
    assert!(matches!(out[0], ItemOutcome::Applied { .. }));
    assert_eq!(h.shop().current_quantity("V-A"), Some(0));
    assert_eq!(h.shop().listing("V-A").unwrap().status, "ACTIVE");
}

#[tokio::test]
async fn malformed_oversized_and_hostile_answers_are_clean_errors() {
    let h = start_with(seeded(&[("A", 5)]), false).await;
    let faults = h.shop().faults();
    let fault = |kind: FaultKind| FaultRule::new("shopify", "shop", kind).times(1);
    let body_fault = |status: u16, body: String| {
        fault(FaultKind::ServerError {
            status,
            body: Some(body),
        })
    };
    let cases: Vec<(FaultRule, ErrorClass)> = vec![
        (fault(FaultKind::MalformedBody), ErrorClass::Transient),
        (fault(FaultKind::server_error(503)), ErrorClass::Transient),
        (body_fault(200, "[1,2,3]".into()), ErrorClass::Transient),
        (body_fault(200, r#"{"data":null}"#.into()), ErrorClass::Transient),
        (body_fault(200, r#"{"data":{"shop":{"name":5}}}"#.into()), ErrorClass::Permanent),
        (body_fault(200, r#"{"errors":[{"message":"Access denied","extensions":{"code":"ACCESS_DENIED"}}]}"#.into()), ErrorClass::Auth),
        (body_fault(200, r#"{"errors":[{"message":"boom","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#.into()), ErrorClass::Transient),
        (body_fault(423, r#"{"errors":"Shop is locked"}"#.into()), ErrorClass::Auth),
        (body_fault(430, "<html>no</html>".into()), ErrorClass::Transient),
        (body_fault(200, format!("{{\"data\":{{\"x\":\"{}\"}}}}", "a".repeat(17 * 1024 * 1024))), ErrorClass::Transient),
        (
            body_fault(200, r#"{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}],"extensions":{"cost":{"requestedQueryCost":1e308,"throttleStatus":{"maximumAvailable":-1,"currentlyAvailable":-5,"restoreRate":0}}}}"#.into()),
            ErrorClass::RateLimited,
        ),
    ];
    for (rule, class) in cases {
        let what = format!("{:?}", rule.kind)
            .chars()
            .take(120)
            .collect::<String>();
        faults.clear();
        faults.add(rule);
        // Throttled: every retry meets the same fault until it is spent; make it last.
        let r = h.conn.healthcheck().await;
        match r {
            Err(e) => assert_eq!(e.class(), class, "{what}: {e}"),
            Ok(_) if class == ErrorClass::RateLimited => {}
            Ok(h) => panic!("{what}: unexpectedly healthy: {h:?}"),
        }
    }
    faults.clear();
    assert!(h.conn.healthcheck().await.is_ok());
}

// ---- contract: every document against Shopify's introspection schema (2025-01) --------------------

/// The 2026-04+ parts absent from the 2025-01 schema: `@idempotent` (mandatory on
/// inventorySetQuantities since 2026-04) and `InventoryQuantityInput.changeFromQuantity`
/// (replaces compareQuantity in 2026-04). contracts/README.md §4.4.
const NEWER_THAN_SCHEMA: [&str; 2] = ["@idempotent", "InventoryQuantityInput.changeFromQuantity"];

fn schema() -> Option<Value> {
    use std::io::Read as _;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/contracts/specs/shopify/admin_schema_2025-01.json.gz"
    );
    let path = std::path::Path::new(path);
    let Ok(file) = std::fs::File::open(path) else {
        eprintln!(
            "skipping the Shopify contract check: {} is absent",
            path.display()
        );
        return None;
    };
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    Some(
        v.pointer("/data/__schema")
            .or(v.get("__schema"))
            .cloned()
            .unwrap_or(v),
    )
}

struct Schema {
    types: std::collections::HashMap<String, Value>,
    query: String,
    mutation: String,
    directives: Vec<String>,
}

fn named(t: &Value) -> String {
    let mut t = t;
    while let Some(inner) = t.get("ofType").filter(|x| !x.is_null()) {
        t = inner;
    }
    t["name"].as_str().unwrap_or("").to_owned()
}

impl Schema {
    fn load() -> Option<Schema> {
        let s = schema()?;
        Some(Schema {
            types: s["types"]
                .as_array()?
                .iter()
                .map(|t| (t["name"].as_str().unwrap_or("").to_owned(), t.clone()))
                .collect(),
            query: s["queryType"]["name"].as_str()?.to_owned(),
            mutation: s["mutationType"]["name"].as_str()?.to_owned(),
            directives: s["directives"]
                .as_array()?
                .iter()
                .filter_map(|d| d["name"].as_str().map(str::to_owned))
                .collect(),
        })
    }

    fn field(&self, ty: &str, name: &str) -> Option<&Value> {
        let t = self.types.get(ty)?;
        let in_fields = t["fields"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == name));
        in_fields.or_else(|| {
            // Interfaces and unions: a field of any possible type.
            t["possibleTypes"]
                .as_array()?
                .iter()
                .find_map(|p| self.field(p["name"].as_str()?, name))
        })
    }

    fn check_selections(
        &self,
        ty: &str,
        sels: &[omnistock_sandbox::shopify::graphql::Selection],
        path: &str,
        problems: &mut Vec<String>,
    ) {
        use omnistock_sandbox::shopify::graphql::Selection;
        for s in sels {
            match s {
                Selection::InlineFragment {
                    type_condition,
                    selections,
                } => {
                    let t = type_condition.clone().unwrap_or_else(|| ty.to_owned());
                    if !self.types.contains_key(&t) {
                        problems.push(format!("{path}: unknown type {t}"));
                        continue;
                    }
                    self.check_selections(&t, selections, path, problems);
                }
                Selection::Field(f) => {
                    if f.name == "__typename" {
                        continue;
                    }
                    let p = format!("{path}.{}", f.name);
                    let Some(def) = self.field(ty, &f.name) else {
                        problems.push(format!("{p}: no field {} on {ty}", f.name));
                        continue;
                    };
                    for (arg, _) in &f.arguments {
                        if !def["args"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|x| x["name"] == *arg))
                        {
                            problems.push(format!("{p}: no argument {arg}"));
                        }
                    }
                    for d in &f.directives {
                        let key = format!("@{}", d.name);
                        if !self.directives.contains(&d.name)
                            && !NEWER_THAN_SCHEMA.contains(&key.as_str())
                        {
                            problems.push(format!("{p}: unknown directive {key}"));
                        }
                    }
                    self.check_selections(&named(&def["type"]), &f.selections, &p, problems);
                }
            }
        }
    }

    /// Checks a JSON value built by the connector against an input type.
    fn check_input(&self, ty: &str, v: &Value, path: &str, problems: &mut Vec<String>) {
        let Some(t) = self.types.get(ty) else {
            problems.push(format!("{path}: unknown input type {ty}"));
            return;
        };
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_input(ty, item, &format!("{path}[{i}]"), problems);
                }
            }
            Value::Object(m) if t["kind"] == "INPUT_OBJECT" => {
                for (k, val) in m {
                    let key = format!("{ty}.{k}");
                    let def = t["inputFields"]
                        .as_array()
                        .and_then(|fs| fs.iter().find(|f| f["name"] == *k));
                    match def {
                        Some(d) => self.check_input(
                            &named(&d["type"]),
                            val,
                            &format!("{path}.{k}"),
                            problems,
                        ),
                        None if NEWER_THAN_SCHEMA.contains(&key.as_str()) => {}
                        None => problems.push(format!("{path}: no input field {key}")),
                    }
                }
            }
            Value::String(s)
                if t["kind"] == "ENUM"
                    && !t["enumValues"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|x| x["name"] == *s)) =>
            {
                problems.push(format!("{path}: {s:?} is not a {ty}"));
            }
            _ => {}
        }
    }
}

fn variable_type(op: &omnistock_sandbox::shopify::graphql::Operation, name: &str) -> String {
    op.variables
        .iter()
        .find(|v| v.name == name)
        .map(|v| {
            v.type_text
                .trim_matches(|c| matches!(c, '[' | ']' | '!'))
                .to_owned()
        })
        .unwrap_or_default()
}

#[test]
fn every_document_matches_the_2025_01_schema() {
    use omnistock_sandbox::shopify::graphql::{OperationKind, parse};
    let Some(schema) = Schema::load() else { return };
    let mut problems = Vec::new();
    for doc in mapping::ALL_DOCS {
        let op = parse(doc.query).unwrap_or_else(|e| panic!("{}: {e}", doc.name));
        let root = match op.kind {
            OperationKind::Query => &schema.query,
            OperationKind::Mutation => &schema.mutation,
        };
        schema.check_selections(root, &op.selections, doc.name, &mut problems);
        for v in &op.variables {
            let t = variable_type(&op, &v.name);
            if !schema.types.contains_key(&t) {
                problems.push(format!(
                    "{}: variable ${} has unknown type {t}",
                    doc.name, v.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn the_variables_the_connector_sends_match_the_2025_01_input_types() {
    use omnistock_sandbox::shopify::graphql::parse;
    let Some(schema) = Schema::load() else { return };
    let h = start_with(seeded(&[("A", 5)]), false).await;
    let mut problems = Vec::new();
    let captured = vec![
        (
            mapping::PRODUCT_SET,
            "input",
            h.conn.debug_product_input(&listing("X", 1, "1.00")),
        ),
        (
            mapping::SET_QUANTITIES,
            "input",
            json!({"name": "available", "reason": "correction", "referenceDocumentUri": "omnistock://sync/1",
            "quantities": [{"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": "gid://shopify/Location/1", "quantity": 1, "changeFromQuantity": 0}]}),
        ),
        (
            mapping::PRODUCT_UPDATE,
            "product",
            json!({"id": "gid://shopify/Product/1", "status": "DRAFT"}),
        ),
    ];
    for (doc, var, value) in captured {
        let op = parse(doc.query).unwrap();
        schema.check_input(&variable_type(&op, var), &value, doc.name, &mut problems);
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
