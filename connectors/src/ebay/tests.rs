//! The eBay connector against the stateful eBay fake (`omnistock-sandbox`): every story drives the
//! real HTTP path and checks eBay's state, write log and request log behind it.

use std::sync::Arc;
use std::time::Duration;

use omnistock_sandbox::{
    EbayHandle, EbayOptions, FaultKind, FaultRule, RateLimit, Sandbox, SandboxOptions, SeedListing,
    ebay::OrderLine as SandboxLine,
};

use super::*;
use crate::common::Secret;
use crate::error::ErrorClass;
use crate::model::{Currency, OrderStatus};

/// A sandbox and a connector pointed at it.
struct Harness {
    sandbox: Sandbox,
    conn: EbayConnector,
}

/// Limits for tests: fast budgets (throttling tests set the sandbox's own buckets), short
/// timeouts so a hung request fails quickly.
fn test_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        rate_per_sec: 10_000.0,
        burst: 1_000,
        ..EbayConnector::DEFAULT_LIMITS
    }
}

fn config_for(sandbox: &Sandbox) -> EbayConfig {
    let creds = sandbox.ebay().credentials();
    let base = sandbox.base_url();
    EbayConfig {
        endpoint: format!("{base}/ebay"),
        fulfillment_endpoint: None,
        token_endpoint: format!("{base}/ebay/identity/v1/oauth2/token"),
        client_id: creds.client_id,
        client_secret: Secret::new(creds.client_secret),
        refresh_token: Secret::new(creds.refresh_token),
        scopes: EbayConfig::default_scopes(),
        marketplace_id: "EBAY_US".into(),
        merchant_location_key: "main".into(),
        policies: EbayPolicies {
            fulfillment: "6196932000".into(),
            payment: "6196933000".into(),
            return_policy: "6196934000".into(),
        },
        category_id: Some("30120".into()),
        content_language: "en-US".into(),
        withdraw_at_zero: false,
        limits: test_limits(),
    }
}

async fn sandbox_with(ebay: EbayOptions) -> Sandbox {
    Sandbox::start(SandboxOptions {
        port: 0,
        ebay,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

async fn start_with(ebay: EbayOptions, tweak: impl FnOnce(&mut EbayConfig)) -> Harness {
    let sandbox = sandbox_with(ebay).await;
    let mut config = config_for(&sandbox);
    tweak(&mut config);
    let conn = EbayConnector::new(config).expect("connector builds");
    Harness { sandbox, conn }
}

async fn start() -> Harness {
    start_with(EbayOptions::unlimited(), |_| {}).await
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("valid SKU")
}

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::parse("USD").expect("USD")).expect("amount")
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
        description: format!("A sturdy mug ({s})"),
        brand: Some("Acme".into()),
        barcode: Some("012345678905".into()),
        image_urls: vec!["https://img.example/mug.jpg".into()],
        options: vec![("Colour".into(), "Red".into())],
        group_id: None,
        quantity,
        price: usd(price),
        version: 1,
    }
}

fn applied_id(o: &ItemOutcome) -> String {
    match o {
        ItemOutcome::Applied {
            external_id: Some(id),
        } => id.clone(),
        other => panic!("expected Applied with an id, got {other:?}"),
    }
}

impl Harness {
    fn ebay(&self) -> EbayHandle {
        self.sandbox.ebay()
    }

    fn count(&self, op: &str) -> u64 {
        self.ebay().request_count(op)
    }

    /// Seeds published listings `PREFIX-00` … with quantity 10; returns their offer ids.
    fn seed(&self, prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.ebay()
                    .seed_listing(SeedListing::new(format!("{prefix}-{i:02}"), 10, "19.99"))
                    .expect("seeded")
                    .offer_id
            })
            .collect()
    }

    fn extra(&self, name: &str) -> u64 {
        self.conn.stats().extra.get(name).copied().unwrap_or(0)
    }
}

// ---- tokens ---------------------------------------------------------------------------------

#[tokio::test]
async fn one_token_serves_many_requests() {
    let h = start().await;
    h.seed("A", 3);
    for _ in 0..5 {
        h.conn.snapshot_page(None).await.expect("snapshot");
    }
    h.conn.healthcheck().await.expect("healthy");
    h.conn
        .fetch_orders(0, None)
        .await
        .expect("orders without any");
    assert_eq!(h.count("getToken"), 1);
    assert_eq!(h.count("getInventoryItems"), 6);
    let stats = h.conn.stats();
    assert_eq!(stats.token_refreshes, 1);
    assert_eq!(stats.requests, 8, "7 API calls and 1 token call");
}

#[tokio::test]
async fn the_token_is_refreshed_ahead_of_expiry_without_a_401() {
    let h = start().await;
    h.conn.snapshot_page(None).await.expect("first call");
    // Two hours pass for both sides: eBay's token lapses, and so does the connector's copy.
    h.sandbox.advance_clock(Duration::from_secs(7200));
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(7200)).await;
    tokio::time::resume();
    h.conn.snapshot_page(None).await.expect("after expiry");
    assert_eq!(h.count("getToken"), 2);
    assert_eq!(
        h.count("getInventoryItems"),
        2,
        "no call was refused and sent again"
    );
    assert_eq!(h.conn.client.token_stats().invalidations, 0);
}

#[tokio::test]
async fn a_refused_token_is_refreshed_and_the_call_sent_once_more() {
    let h = start().await;
    h.conn.snapshot_page(None).await.expect("first call");
    h.ebay().expire_access_tokens();
    h.conn.snapshot_page(None).await.expect("recovers");
    assert_eq!(h.count("getToken"), 2);
    assert_eq!(h.count("getInventoryItems"), 3, "one refused, one resent");
    assert_eq!(h.conn.client.token_stats().invalidations, 1);

    // A 401 that survives a fresh token is an auth failure, after exactly one retry.
    h.ebay()
        .add_fault("getInventoryItems", FaultKind::server_error(401));
    let e = h.conn.snapshot_page(None).await.expect_err("refused");
    assert_eq!(e.class(), ErrorClass::Auth);
    assert_eq!(h.count("getInventoryItems"), 5);
    assert_eq!(h.count("getToken"), 3);
}

#[tokio::test]
async fn bad_credentials_are_an_auth_error_that_names_no_secret() {
    let h = start_with(EbayOptions::unlimited(), |c| {
        c.refresh_token = Secret::new("v^1.1#not-the-grant");
        c.client_secret = Secret::new("cert-that-must-not-leak");
    })
    .await;
    let e = h.conn.snapshot_page(None).await.expect_err("refused");
    assert_eq!(e.class(), ErrorClass::Auth);
    let shown = format!("{e} {e:?} {:?}", h.conn);
    for secret in ["not-the-grant", "cert-that-must-not-leak"] {
        assert!(!shown.contains(secret), "secret leaked: {shown}");
    }
    assert_eq!(h.count("getInventoryItems"), 0);
}

// ---- listings -------------------------------------------------------------------------------

#[tokio::test]
async fn a_listing_is_created_published_and_then_only_revised_where_it_differs() {
    let h = start().await;
    h.seed("LOCATION", 1); // creates the `main` inventory location
    let out = h
        .conn
        .push_listings(&[listing("MUG-RED", 7, "12.99")])
        .await
        .expect("pushed");
    let offer_id = applied_id(&out[0]);

    let ebay = h.ebay();
    let shown = ebay.listing("MUG-RED").expect("listed");
    assert_eq!(shown.offer_id.as_deref(), Some(offer_id.as_str()));
    assert!(shown.listing_id.is_some(), "published");
    assert_eq!(shown.visible_quantity, Some(7));
    assert_eq!(
        shown.price.as_ref().map(|p| p.value.as_str()),
        Some("12.99")
    );
    let item = ebay.inventory_item("MUG-RED").expect("item");
    assert_eq!(item["product"]["title"], "Mug MUG-RED");
    assert_eq!(item["product"]["upc"][0], "012345678905");
    assert_eq!(item["product"]["aspects"]["Colour"][0], "Red");
    assert_eq!(item["product"]["aspects"]["Brand"][0], "Acme");
    assert_eq!(item["condition"], "NEW");
    assert_eq!(item["locale"], "en_US", "Content-Language was sent");
    let offer = ebay.offer(&offer_id).expect("offer");
    assert_eq!(offer["categoryId"], "30120");
    assert_eq!(offer["merchantLocationKey"], "main");
    assert_eq!(offer["listingPolicies"]["returnPolicyId"], "6196934000");
    assert_eq!(offer["availableQuantity"], 7);
    for (op, n) in [
        ("getOffers", 1),
        ("createOrReplaceInventoryItem", 1),
        ("createOffer", 1),
        ("publishOffer", 1),
    ] {
        assert_eq!(h.count(op), n, "{op}");
    }

    // Same listing again: the item is replaced, the offer is left alone.
    h.conn
        .push_listings(&[listing("MUG-RED", 7, "12.99")])
        .await
        .expect("again");
    assert_eq!(h.count("updateOffer"), 0);
    assert_eq!(h.count("publishOffer"), 1);
    assert_eq!(h.count("createOffer"), 1);

    // A new price: one updateOffer, no new offer, same id.
    let out = h
        .conn
        .push_listings(&[listing("MUG-RED", 7, "14.50")])
        .await
        .expect("repriced");
    assert_eq!(applied_id(&out[0]), offer_id);
    assert_eq!(h.count("updateOffer"), 1);
    assert_eq!(
        ebay.current_price("MUG-RED").map(|p| p.value),
        Some("14.50".into())
    );
    assert_eq!(
        h.extra("revisions_max_today"),
        3,
        "item twice and offer once on the live listing"
    );
}

#[tokio::test]
async fn a_listing_ebay_refuses_is_rejected_with_its_error_id() {
    // The seller never set up an inventory location: publishing fails with eBay's 25012.
    let h = start_with(
        EbayOptions {
            locations: Vec::new(),
            ..EbayOptions::unlimited()
        },
        |_| {},
    )
    .await;
    let out = h
        .conn
        .push_listings(&[listing("MUG-RED", 7, "12.99")])
        .await
        .expect("call works");
    match &out[0] {
        ItemOutcome::Rejected { code, error } => {
            assert_eq!(code.as_deref(), Some("25012"), "{error}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    // An over-long SKU is refused before any call.
    let long = "S".repeat(51);
    let out = h
        .conn
        .push_listings(&[listing(&long, 1, "1.00")])
        .await
        .expect("call works");
    assert!(matches!(out[0], ItemOutcome::Rejected { .. }));
}

#[tokio::test]
async fn an_offer_ebay_already_has_is_adopted_not_duplicated() {
    let h = start().await;
    let offers = h.seed("MUG", 1);
    // The lookup misses it (as after a create whose answer was lost): createOffer then says
    // "Offer entity already exists" and names it.
    h.sandbox.faults().add(
        FaultRule::new(
            "ebay",
            "getOffers",
            FaultKind::ServerError {
                status: 404,
                body: Some(
                    r#"{"errors":[{"errorId":25713,"message":"This Offer is not available."}]}"#
                        .into(),
                ),
            },
        )
        .times(1),
    );
    let out = h
        .conn
        .push_listings(&[listing("MUG-00", 4, "19.99")])
        .await
        .expect("pushed");
    assert_eq!(applied_id(&out[0]), offers[0]);
    assert_eq!(h.count("createOffer"), 1);
    assert_eq!(h.count("updateOffer"), 1, "brought up to date");
    assert_eq!(h.count("publishOffer"), 0, "it was live already");
    let shown = h.ebay().listing("MUG-00").expect("listed");
    assert!(shown.listing_id.is_some());
    assert_eq!(shown.visible_quantity, Some(4));
}

// ---- stock ----------------------------------------------------------------------------------

#[tokio::test]
async fn stock_for_25_listings_goes_in_one_bulk_call() {
    let h = start().await;
    let offers = h.seed("SKU", 25);
    let items: Vec<StockUpdate> = offers
        .iter()
        .enumerate()
        .map(|(i, offer)| StockUpdate {
            external_id: Some(offer.clone()),
            price: Some(usd("21.00")),
            ..stock(&format!("SKU-{i:02}"), i as u32)
        })
        .collect();
    let out = h.conn.push_stock(&items).await.expect("pushed");
    assert_eq!(h.count("bulkUpdatePriceQuantity"), 1);
    assert_eq!(h.count("getOffers"), 0, "ids came with the updates");
    for (i, o) in out.iter().enumerate() {
        assert_eq!(applied_id(o), offers[i]);
        let shown = h.ebay().listing(&format!("SKU-{i:02}")).expect("listed");
        assert_eq!(shown.item_quantity, Some(i as u32));
        assert_eq!(shown.offer_quantity, Some(i as u32), "both levels are set");
        assert_eq!(shown.visible_quantity, Some(i as u32));
        assert_eq!(shown.price.map(|p| p.value), Some("21.00".into()));
    }
}

#[tokio::test]
async fn more_than_25_items_are_refused_before_sending() {
    let h = start().await;
    let items: Vec<StockUpdate> = (0..26).map(|i| stock(&format!("S{i}"), 1)).collect();
    let e = h.conn.push_stock(&items).await.expect_err("refused");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert_eq!(
        h.ebay().requests().len(),
        0,
        "nothing sent, not even a token call"
    );
    assert_eq!(h.conn.capabilities().max_stock_batch, 25);
}

#[tokio::test]
async fn one_bad_item_of_a_multi_status_answer_leaves_the_others_applied() {
    let h = start().await;
    let offers = h.seed("SKU", 24);
    h.sandbox.faults().add(FaultRule::new(
        "ebay",
        "bulkUpdatePriceQuantity",
        FaultKind::reject_skus(["SKU-07"], 25003, "The price is invalid."),
    ));
    let mut items: Vec<StockUpdate> = offers
        .iter()
        .enumerate()
        .map(|(i, offer)| StockUpdate {
            external_id: Some(offer.clone()),
            ..stock(&format!("SKU-{i:02}"), 3)
        })
        .collect();
    // eBay has never heard of this one, though the daemon holds an offer id for it.
    items.insert(
        5,
        StockUpdate {
            external_id: Some("5999999999".into()),
            ..stock("GHOST", 3)
        },
    );
    let out = h.conn.push_stock(&items).await.expect("multi-status");
    assert_eq!(out.len(), 25);
    assert_eq!(h.count("bulkUpdatePriceQuantity"), 1);
    let applied = out
        .iter()
        .filter(|o| matches!(o, ItemOutcome::Applied { .. }))
        .count();
    assert_eq!(applied, 23);
    assert!(
        matches!(&out[5], ItemOutcome::NotListed { .. }),
        "{:?}",
        out[5]
    );
    // SKU-07 sits at index 8 after the insert: matched by SKU, not by position.
    assert_eq!(
        out[8],
        ItemOutcome::Rejected {
            code: Some("25003".into()),
            error: "25003: The price is invalid.".into()
        }
    );
    assert_eq!(h.ebay().current_quantity("SKU-07"), Some(10), "unchanged");
    assert_eq!(h.ebay().current_quantity("SKU-08"), Some(3));
}

#[tokio::test]
async fn unknown_offers_are_looked_up_once_and_unlisted_skus_say_so() {
    let h = start().await;
    h.seed("KNOWN", 1);
    let out = h
        .conn
        .push_stock(&[stock("KNOWN-00", 4), stock("NEW-SKU", 4)])
        .await
        .expect("pushed");
    assert!(matches!(out[0], ItemOutcome::Applied { .. }));
    assert!(
        matches!(out[1], ItemOutcome::NotListed { .. }),
        "{:?}",
        out[1]
    );
    assert_eq!(h.count("getOffers"), 2);
    h.conn
        .push_stock(&[stock("KNOWN-00", 5)])
        .await
        .expect("again");
    assert_eq!(h.count("getOffers"), 2, "the offer id was remembered");
    assert_eq!(h.ebay().current_quantity("KNOWN-00"), Some(5));
}

// ---- failures -------------------------------------------------------------------------------

#[tokio::test]
async fn a_429_pauses_the_budget_and_reports_retry_after() {
    let h = start().await;
    let offers = h.seed("SKU", 1);
    let items = [StockUpdate {
        external_id: Some(offers[0].clone()),
        ..stock("SKU-00", 2)
    }];
    h.sandbox.faults().add(
        FaultRule::new(
            "ebay",
            "bulkUpdatePriceQuantity",
            FaultKind::TooManyRequests {
                retry_after_secs: Some(7),
            },
        )
        .times(1),
    );
    let e = h.conn.push_stock(&items).await.expect_err("throttled");
    assert_eq!(e.class(), ErrorClass::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    let paused = h
        .conn
        .client
        .budget
        .paused_for(OP_INVENTORY)
        .expect("paused");
    assert!(paused > Duration::from_secs(6) && paused <= Duration::from_secs(7));
    assert!(
        h.conn.client.budget.paused_for(OP_FULFILLMENT).is_none(),
        "orders keep flowing"
    );
    // Every caller waits: the next inventory call does not reach eBay while paused.
    let before = h.count("getInventoryItems");
    let waited = tokio::time::timeout(Duration::from_millis(200), h.conn.snapshot_page(None)).await;
    assert!(waited.is_err(), "still paused");
    assert_eq!(h.count("getInventoryItems"), before);
    let stats = h.conn.stats();
    assert_eq!(stats.rate_limited, 1);
    assert_eq!(stats.budget_pauses, 1);
}

#[tokio::test]
async fn ebays_own_throttle_without_retry_after_pauses_for_the_default() {
    let h = start_with(EbayOptions::unlimited(), |c| {
        c.limits.throttle_pause = Duration::from_secs(90);
    })
    .await;
    h.conn.fetch_orders(0, None).await.expect("first poll");
    // The account's fulfillment quota is spent: eBay answers 429 / errorId 2001.
    h.ebay().set_rate_limit(
        omnistock_sandbox::ebay::GROUP_FULFILLMENT,
        Some(RateLimit::new(0.0001, 0)),
    );
    let e = h.conn.fetch_orders(0, None).await.expect_err("throttled");
    let ConnectorError::RateLimited {
        retry_after,
        message,
    } = &e
    else {
        panic!("expected RateLimited, got {e:?}");
    };
    assert_eq!(*retry_after, None, "eBay documents no Retry-After");
    assert!(message.contains("2001"), "{message}");
    let paused = h
        .conn
        .client
        .budget
        .paused_for(OP_FULFILLMENT)
        .expect("paused");
    assert!(paused > Duration::from_secs(85));
}

#[tokio::test]
async fn server_errors_are_transient() {
    let h = start().await;
    let offers = h.seed("SKU", 1);
    h.ebay()
        .add_fault("bulkUpdatePriceQuantity", FaultKind::server_error(503));
    h.ebay()
        .add_fault("getOrders", FaultKind::server_error(500));
    let e = h
        .conn
        .push_stock(&[StockUpdate {
            external_id: Some(offers[0].clone()),
            ..stock("SKU-00", 1)
        }])
        .await
        .expect_err("outage");
    assert!(
        matches!(
            e,
            ConnectorError::Transient {
                status: Some(503),
                ..
            }
        ),
        "{e:?}"
    );
    let e = h.conn.fetch_orders(0, None).await.expect_err("outage");
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(h.conn.stats().errors, 2);
}

#[tokio::test]
async fn dropped_connections_and_hung_requests() {
    let h = start_with(EbayOptions::unlimited(), |c| {
        c.limits.timeout = Duration::from_millis(400);
    })
    .await;
    let offers = h.seed("SKU", 1);
    let item = [StockUpdate {
        external_id: Some(offers[0].clone()),
        ..stock("SKU-00", 4)
    }];
    h.conn
        .snapshot_page(None)
        .await
        .expect("token and a first call");

    // A write whose connection dies after eBay applied it: the outcome is unknown.
    h.sandbox.faults().add(
        FaultRule::new(
            "ebay",
            "bulkUpdatePriceQuantity",
            FaultKind::DropConnection {
                after_processing: true,
            },
        )
        .times(1),
    );
    let e = h.conn.push_stock(&item).await.expect_err("dropped");
    assert_eq!(e.class(), ErrorClass::Unknown, "{e:?}");
    assert_eq!(h.ebay().current_quantity("SKU-00"), Some(4), "it did land");

    // A read whose connection dies is simply worth retrying.
    h.sandbox.faults().add(
        FaultRule::new(
            "ebay",
            "getInventoryItems",
            FaultKind::DropConnection {
                after_processing: false,
            },
        )
        .times(1),
    );
    let e = h.conn.snapshot_page(None).await.expect_err("dropped");
    assert_eq!(e.class(), ErrorClass::Transient, "{e:?}");

    // No answer within the request timeout.
    h.sandbox.faults().add(
        FaultRule::new(
            "ebay",
            "getOrders",
            FaultKind::Hang {
                after_processing: false,
            },
        )
        .times(1),
    );
    let e = h.conn.fetch_orders(0, None).await.expect_err("hung");
    assert!(matches!(e, ConnectorError::Timeout { .. }), "{e:?}");

    // And then everything works again.
    h.conn.fetch_orders(0, None).await.expect("recovered");
    h.conn.push_stock(&item).await.expect("recovered");
}

#[tokio::test]
async fn malformed_bodies_are_malformed() {
    let h = start().await;
    h.seed("SKU", 2);
    h.ebay()
        .add_fault("getInventoryItems", FaultKind::MalformedBody);
    let e = h.conn.snapshot_page(None).await.expect_err("cut body");
    assert!(matches!(e, ConnectorError::Malformed { .. }), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Transient);
    let e = h
        .conn
        .fetch_orders(0, Some("not-an-offset".into()))
        .await
        .expect_err("bad token");
    assert_eq!(e.class(), ErrorClass::Permanent);
}

// ---- orders ---------------------------------------------------------------------------------

#[tokio::test]
async fn orders_page_past_200_with_the_filter_percent_encoded() {
    let h = start().await;
    h.ebay()
        .seed_listing(SeedListing::new("MUG", 1_000, "9.99"))
        .expect("seeded");
    let since = chrono::Utc::now().timestamp_millis() - 60_000;
    let mut placed = Vec::new();
    for _ in 0..205 {
        placed.push(
            h.ebay()
                .place_order(&[SandboxLine::new("MUG", 1)])
                .expect("order"),
        );
    }
    let first = h.conn.fetch_orders(since, None).await.expect("page 1");
    assert_eq!(first.orders.len(), 200);
    assert_eq!(first.next_page.as_deref(), Some("200"));
    let second = h
        .conn
        .fetch_orders(since, first.next_page.clone())
        .await
        .expect("page 2");
    assert_eq!(second.orders.len(), 5);
    assert_eq!(second.next_page, None);
    let mut seen: Vec<String> = first
        .orders
        .iter()
        .chain(&second.orders)
        .map(|o| o.external_id.clone())
        .collect();
    seen.sort();
    placed.sort();
    assert_eq!(seen, placed, "every order exactly once");

    let queries: Vec<String> = h
        .ebay()
        .requests()
        .into_iter()
        .filter(|r| r.operation == "getOrders")
        .filter_map(|r| r.query)
        .collect();
    assert_eq!(queries.len(), 2);
    let stamp = mapping::format_timestamp(since);
    for q in &queries {
        assert!(
            q.starts_with(&format!(
                "filter=lastmodifieddate:%5B{stamp}..%5D&limit=200&offset="
            )),
            "{q}"
        );
        assert!(
            !q.contains('[') && !q.contains("%255B"),
            "encoded exactly once: {q}"
        );
    }
    assert!(queries[1].ends_with("offset=200"));
}

#[tokio::test]
async fn order_statuses_lines_and_totals_map() {
    let h = start().await;
    h.ebay()
        .seed_listing(SeedListing::new("MUG", 50, "9.99"))
        .expect("seeded");
    h.ebay()
        .seed_listing(SeedListing::new("PLATE", 50, "4.50"))
        .expect("seeded");
    let since = chrono::Utc::now().timestamp_millis() - 60_000;
    let paid = h
        .ebay()
        .place_order_as(
            "buyer_a",
            &[SandboxLine::new("MUG", 2), SandboxLine::new("PLATE", 1)],
        )
        .expect("order");
    let shipped = h
        .ebay()
        .place_order(&[SandboxLine::new("MUG", 1)])
        .expect("order");
    let cancelled = h
        .ebay()
        .place_order(&[SandboxLine::new("PLATE", 3)])
        .expect("order");
    h.ebay().ship_order(&shipped).expect("shipped");
    h.ebay().cancel_order(&cancelled).expect("cancelled");

    let page = h.conn.fetch_orders(since, None).await.expect("orders");
    let find = |id: &str| {
        page.orders
            .iter()
            .find(|o| o.external_id == id)
            .expect("order present")
    };
    let p = find(&paid);
    assert_eq!(p.status, OrderStatus::Paid);
    assert_eq!(p.buyer_ref.as_deref(), Some("buyer_a"));
    assert_eq!(p.total, Some(usd("24.48")));
    assert_eq!(p.lines.len(), 2);
    assert_eq!(p.lines[0].sku.as_str(), "MUG");
    assert_eq!(p.lines[0].quantity, 2);
    assert_eq!(p.lines[0].unit_price, Some(usd("9.99")));
    assert!(!p.lines[0].line_id.is_empty());
    assert_ne!(p.lines[0].line_id, p.lines[1].line_id);
    assert!(p.remote_updated_at_ms >= p.placed_at_ms);
    assert!(!p.fulfilled_by_channel);
    assert_eq!(find(&shipped).status, OrderStatus::Shipped);
    let c = find(&cancelled);
    assert_eq!(c.status, OrderStatus::Cancelled);
    assert!(c.remote_updated_at_ms > c.placed_at_ms);
}

// ---- snapshot -------------------------------------------------------------------------------

#[tokio::test]
async fn the_snapshot_pages_through_every_item() {
    let h = start().await;
    for i in 0..450 {
        h.ebay()
            .seed_listing(SeedListing::new(format!("S{i:03}"), i % 7, "5.00"))
            .expect("seeded");
    }
    let mut items = Vec::new();
    let mut page = None;
    let mut pages = 0;
    loop {
        let p = h.conn.snapshot_page(page).await.expect("page");
        pages += 1;
        items.extend(p.items);
        page = p.next_page;
        if page.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(items.len(), 450);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item.sku.as_str(), format!("S{i:03}"));
        assert_eq!(item.quantity, Some(i as u32 % 7));
    }
}

// ---- withdraw at zero -----------------------------------------------------------------------

#[tokio::test]
async fn without_withdraw_at_zero_a_sold_out_listing_stays_live() {
    let h = start().await;
    let offers = h.seed("SKU", 1);
    let out = h
        .conn
        .push_stock(&[StockUpdate {
            external_id: Some(offers[0].clone()),
            ..stock("SKU-00", 0)
        }])
        .await
        .expect("pushed");
    assert!(matches!(out[0], ItemOutcome::Applied { .. }));
    let shown = h.ebay().listing("SKU-00").expect("listed");
    assert!(shown.listing_id.is_some(), "still live");
    assert_eq!(shown.visible_quantity, Some(0));
    assert_eq!(h.count("withdrawOffer"), 0);
}

#[tokio::test]
async fn with_withdraw_at_zero_the_listing_ends_and_comes_back() {
    let h = start_with(EbayOptions::unlimited(), |c| c.withdraw_at_zero = true).await;
    let offers = h.seed("SKU", 1);
    let update = |q| StockUpdate {
        external_id: Some(offers[0].clone()),
        price: Some(usd("19.99")),
        ..stock("SKU-00", q)
    };
    let out = h.conn.push_stock(&[update(0)]).await.expect("to zero");
    assert_eq!(applied_id(&out[0]), offers[0]);
    let shown = h.ebay().listing("SKU-00").expect("item kept");
    assert_eq!(shown.listing_id, None, "withdrawn");
    assert_eq!(
        shown.offer_id.as_deref(),
        Some(offers[0].as_str()),
        "offer kept"
    );
    assert_eq!(shown.item_quantity, Some(0));

    let out = h.conn.push_stock(&[update(6)]).await.expect("restocked");
    assert_eq!(applied_id(&out[0]), offers[0]);
    let shown = h.ebay().listing("SKU-00").expect("listed");
    assert!(shown.listing_id.is_some(), "published again");
    assert_eq!(shown.visible_quantity, Some(6));
    let ops: Vec<String> = h.ebay().writes().into_iter().map(|w| w.operation).collect();
    assert_eq!(
        ops,
        [
            "bulkUpdatePriceQuantity",
            "withdrawOffer",
            "bulkUpdatePriceQuantity",
            "updateOffer",
            "publishOffer"
        ]
    );
    assert_eq!(h.extra("offers_withdrawn"), 1);
    assert_eq!(h.extra("offers_published"), 1);
}

#[tokio::test]
async fn a_new_listing_at_zero_with_withdraw_at_zero_is_created_but_not_published() {
    let h = start_with(EbayOptions::unlimited(), |c| c.withdraw_at_zero = true).await;
    h.seed("LOCATION", 1);
    let out = h
        .conn
        .push_listings(&[listing("MUG", 0, "9.99")])
        .await
        .expect("pushed");
    applied_id(&out[0]);
    let shown = h.ebay().listing("MUG").expect("item");
    assert!(shown.offer_id.is_some());
    assert_eq!(shown.listing_id, None);
    // Stock returns: the stock push publishes it.
    let out = h.conn.push_stock(&[stock("MUG", 2)]).await.expect("stock");
    applied_id(&out[0]);
    assert!(h.ebay().listing("MUG").expect("item").listing_id.is_some());
}

// ---- revisions ------------------------------------------------------------------------------

#[tokio::test]
async fn the_daily_revision_cap_holds_the_listing_without_calling_ebay() {
    let h = start().await;
    let offers = h.seed("SKU", 1);
    let update = |q| StockUpdate {
        external_id: Some(offers[0].clone()),
        ..stock("SKU-00", q)
    };
    for i in 0..MAX_REVISIONS_PER_DAY {
        let out = h.conn.push_stock(&[update(i % 9)]).await.expect("pushed");
        assert!(
            matches!(out[0], ItemOutcome::Applied { .. }),
            "revision {i}: {:?}",
            out[0]
        );
    }
    assert_eq!(h.ebay().revisions_today_for_sku("SKU-00"), 250);
    let out = h.conn.push_stock(&[update(5)]).await.expect("answered");
    match &out[0] {
        ItemOutcome::Retry { error } => assert!(error.contains("250 revisions"), "{error}"),
        other => panic!("expected Retry, got {other:?}"),
    }
    assert_eq!(
        h.count("bulkUpdatePriceQuantity"),
        250,
        "the 251st was not sent"
    );
    assert_eq!(h.extra("revisions_max_today"), 250);
    assert_eq!(h.extra("revision_held_items"), 1);
    assert_eq!(h.extra("revision_refusals"), 1);
}

#[tokio::test]
async fn ebays_own_revision_cap_error_is_retried_and_holds_the_sku() {
    // The connector's count starts at 0 (say, after a restart) but eBay's does not.
    let h = start_with(
        EbayOptions {
            revision_limit_per_day: 2,
            ..EbayOptions::unlimited()
        },
        |_| {},
    )
    .await;
    let offers = h.seed("SKU", 1);
    let update = |q| StockUpdate {
        external_id: Some(offers[0].clone()),
        ..stock("SKU-00", q)
    };
    h.conn.push_stock(&[update(1)]).await.expect("1");
    h.conn.push_stock(&[update(2)]).await.expect("2");
    let out = h.conn.push_stock(&[update(3)]).await.expect("answered");
    assert!(matches!(out[0], ItemOutcome::Retry { .. }), "{:?}", out[0]);
    assert_eq!(h.extra("revision_held_items"), 1);
    h.conn.push_stock(&[update(4)]).await.expect("held");
    assert_eq!(
        h.count("bulkUpdatePriceQuantity"),
        3,
        "held locally after eBay said so"
    );
}

// ---- delist and health ----------------------------------------------------------------------

#[tokio::test]
async fn delist_withdraws_the_offer_and_keeps_the_item() {
    let h = start().await;
    let offers = h.seed("SKU", 1);
    let out = h
        .conn
        .delist(&[sku("SKU-00"), sku("NEVER-LISTED")])
        .await
        .expect("delisted");
    assert_eq!(applied_id(&out[0]), offers[0]);
    assert_eq!(out[1], ItemOutcome::Applied { external_id: None });
    let shown = h.ebay().listing("SKU-00").expect("item kept");
    assert_eq!(shown.listing_id, None);
    assert!(shown.offer_id.is_some());
    let again = h.conn.delist(&[sku("SKU-00")]).await.expect("idempotent");
    assert!(matches!(again[0], ItemOutcome::Applied { .. }));
    assert_eq!(h.count("withdrawOffer"), 1);
}

#[tokio::test]
async fn healthcheck_uses_a_token_and_the_inventory() {
    let h = start().await;
    h.seed("SKU", 3);
    let health = h.conn.healthcheck().await.expect("healthy");
    assert!(
        health.summary.contains("3 inventory items"),
        "{}",
        health.summary
    );
    assert_eq!(h.count("getToken"), 1);
    assert_eq!(h.count("getInventoryItems"), 1);
}

#[tokio::test]
async fn callers_share_one_connector_and_one_token() {
    let h = start().await;
    h.seed("SKU", 2);
    let conn = Arc::new(h.conn);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.snapshot_page(None).await.map(|p| p.items.len()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("joined").expect("snapshot"), 2);
    }
    assert_eq!(h.sandbox.ebay().request_count("getToken"), 1);
}

#[test]
fn invalid_configs_are_refused_with_every_problem_named() {
    let config = EbayConfig {
        endpoint: "ftp://x".into(),
        fulfillment_endpoint: None,
        token_endpoint: "https://api.ebay.com/identity/v1/oauth2/token".into(),
        client_id: String::new(),
        client_secret: Secret::new("s"),
        refresh_token: Secret::new(""),
        scopes: Vec::new(),
        marketplace_id: "EBAY_US".into(),
        merchant_location_key: "main".into(),
        policies: EbayPolicies {
            fulfillment: "f".into(),
            payment: "p".into(),
            return_policy: "r".into(),
        },
        category_id: None,
        content_language: "english".into(),
        withdraw_at_zero: false,
        limits: EbayConnector::DEFAULT_LIMITS,
    };
    let e = EbayConnector::new(config).expect_err("refused");
    let text = e.to_string();
    for problem in ["endpoint", "client_id", "refresh_token", "content_language"] {
        assert!(text.contains(problem), "{text}");
    }
    assert!(!text.contains("\"s\""), "no secret values: {text}");
}

#[test]
fn default_limits_spread_the_daily_quota() {
    let l = EbayConnector::DEFAULT_LIMITS;
    assert!((l.rate_per_sec - 23.148).abs() < 0.01);
    assert_eq!(l.batch_size, MAX_BULK_REQUESTS);
    assert!(l.validate().is_ok());
}
