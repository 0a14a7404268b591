//! The Amazon connector against the stateful Amazon fake (`omnistock-sandbox`): every story drives
//! the real HTTP path (LWA, Listings Items, Feeds with presigned transfers, Orders 2026-01-01) and
//! checks Amazon's state, write log and request log behind it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use omnistock_sandbox::{
    AmazonHandle, AmazonOptions, AmazonSeedListing, FaultKind, FaultRule, OrderLine as SandboxLine,
    Sandbox, SandboxOptions,
};

use super::*;
use crate::common::Secret;
use crate::error::ErrorClass;
use crate::model::{Currency, Money, OrderStatus};

/// A sandbox and a connector pointed at it.
struct Harness {
    sandbox: Sandbox,
    conn: AmazonConnector,
}

/// Limits for tests: budgets that never hold a test up (throttling stories set the fake's own
/// buckets or use the production plan), short timeouts so a hung request fails quickly.
fn test_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        rate_per_sec: 10_000.0,
        burst: 1_000,
        ..AmazonConnector::DEFAULT_LIMITS
    }
}

fn config_for(sandbox: &Sandbox) -> AmazonConfig {
    let amazon = sandbox.amazon();
    let creds = amazon.credentials();
    let base = sandbox.base_url();
    AmazonConfig {
        endpoint: format!("{base}/amazon"),
        feeds_endpoint: None,
        orders_endpoint: None,
        token_endpoint: format!("{base}/amazon/auth/o2/token"),
        seller_id: amazon.seller_id(),
        marketplace_ids: vec![amazon.marketplace_id()],
        client_id: creds.client_id,
        client_secret: Secret::new(creds.client_secret),
        refresh_token: Secret::new(creds.refresh_token),
        product_type: AmazonConfig::DEFAULT_PRODUCT_TYPE.into(),
        product_type_rules: Vec::new(),
        condition_type: AmazonConfig::DEFAULT_CONDITION_TYPE.into(),
        language_tag: AmazonConfig::DEFAULT_LANGUAGE_TAG.into(),
        feed_processing_estimate: Duration::from_secs(2),
        usage_plan: AmazonUsagePlan::Custom {
            rate_per_sec: 10_000.0,
            burst: 1_000,
        },
        limits: test_limits(),
    }
}

/// The fake without rate limits, feeds done in 300 ms.
fn fast_amazon() -> AmazonOptions {
    AmazonOptions {
        feed_processing: Duration::from_millis(300),
        ..AmazonOptions::unlimited()
    }
}

async fn sandbox_with(amazon: AmazonOptions) -> Sandbox {
    Sandbox::start(SandboxOptions {
        port: 0,
        amazon,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

async fn start_with(amazon: AmazonOptions, tweak: impl FnOnce(&mut AmazonConfig)) -> Harness {
    let sandbox = sandbox_with(amazon).await;
    let mut config = config_for(&sandbox);
    tweak(&mut config);
    let conn = AmazonConnector::new(config).expect("connector builds");
    Harness { sandbox, conn }
}

async fn start() -> Harness {
    start_with(fast_amazon(), |_| {}).await
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

fn priced(s: &str, quantity: u32, price: &str) -> StockUpdate {
    StockUpdate {
        price: Some(usd(price)),
        ..stock(s, quantity)
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

fn is_applied(o: &ItemOutcome) -> bool {
    matches!(o, ItemOutcome::Applied { .. })
}

impl Harness {
    fn amazon(&self) -> AmazonHandle {
        self.sandbox.amazon()
    }

    fn count(&self, op: &str) -> u64 {
        self.amazon().request_count(op)
    }

    /// Seeds buyable listings `PREFIX-000` … with quantity 10 at 19.99.
    fn seed(&self, prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let s = format!("{prefix}-{i:03}");
                self.amazon()
                    .seed_listing(AmazonSeedListing::new(s.clone(), 10, "19.99"))
                    .expect("seeded");
                s
            })
            .collect()
    }

    fn extra(&self, name: &str) -> u64 {
        self.conn.stats().extra.get(name).copied().unwrap_or(0)
    }

    fn budget(&self, op: &str) -> crate::common::BudgetSnapshot {
        self.conn
            .stats()
            .budgets
            .into_iter()
            .find(|b| b.operation == op)
            .expect("operation budgeted")
    }
}

/// Polls a job until it is done (the fake finishes feeds in a few hundred ms).
async fn poll_until_done(conn: &AmazonConnector, job: &BulkJob) -> Vec<ItemOutcome> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match conn.bulk_poll(job).await.expect("polled") {
            BulkStatus::Done { outcomes } => return outcomes,
            BulkStatus::Pending { poll_after } => {
                assert!(poll_after >= Duration::from_secs(1), "{poll_after:?}");
                assert!(Instant::now() < deadline, "feed {} never finished", job.id);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn run_feed(conn: &AmazonConnector, items: &[BulkItem]) -> (BulkJob, Vec<ItemOutcome>) {
    let draft = conn.bulk_prepare(items).await.expect("prepared");
    assert_eq!(draft.items, items.len());
    let job = conn.bulk_submit(&draft).await.expect("submitted");
    let outcomes = poll_until_done(conn, &job).await;
    assert_eq!(outcomes.len(), items.len());
    (job, outcomes)
}

// ---- tokens ---------------------------------------------------------------------------------

#[tokio::test]
async fn one_token_serves_many_requests_and_every_call_carries_it() {
    let h = start().await;
    h.seed("A", 3);
    for _ in 0..3 {
        h.conn.snapshot_page(None).await.expect("snapshot");
    }
    h.conn.healthcheck().await.expect("healthy");
    h.conn.fetch_orders(0, None).await.expect("no orders");
    assert_eq!(h.count("token"), 1);
    assert_eq!(h.count("searchListingsItems"), 4);
    assert_eq!(h.count("searchOrders"), 1);
    let stats = h.conn.stats();
    assert_eq!(stats.token_refreshes, 1);
    assert_eq!(stats.requests, 6, "5 API calls and 1 token call");
}

#[tokio::test]
async fn the_token_is_refreshed_ahead_of_expiry_without_a_refusal() {
    let h = start().await;
    h.conn.snapshot_page(None).await.expect("first call");
    // An hour passes for both sides: Amazon's token lapses, and so does the connector's copy.
    h.sandbox.advance_clock(Duration::from_secs(3600));
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3600)).await;
    tokio::time::resume();
    h.conn.snapshot_page(None).await.expect("after expiry");
    assert_eq!(h.count("token"), 2);
    assert_eq!(
        h.count("searchListingsItems"),
        2,
        "nothing refused and resent"
    );
    assert_eq!(h.extra("token_invalidations"), 0);
}

#[tokio::test]
async fn a_refused_token_is_refreshed_and_the_call_sent_once_more() {
    let h = start().await;
    h.conn.snapshot_page(None).await.expect("first call");
    h.amazon().expire_access_tokens();
    h.conn.snapshot_page(None).await.expect("recovers");
    assert_eq!(h.count("token"), 2);
    assert_eq!(h.count("searchListingsItems"), 3, "one refused, one resent");
    assert_eq!(h.extra("token_invalidations"), 1);

    // A refusal that survives a fresh token is an auth failure, after exactly one retry.
    h.amazon()
        .add_fault("searchListingsItems", FaultKind::server_error(403));
    let e = h.conn.snapshot_page(None).await.expect_err("refused");
    assert_eq!(e.class(), ErrorClass::Auth);
    assert_eq!(h.count("searchListingsItems"), 5);
    assert_eq!(h.count("token"), 3);
}

#[tokio::test]
async fn bad_credentials_are_an_auth_error_that_names_no_secret() {
    let h = start_with(fast_amazon(), |c| {
        c.refresh_token = Secret::new("Atzr|not-the-grant");
        c.client_secret = Secret::new("secret-that-must-not-leak");
    })
    .await;
    let e = h
        .conn
        .push_stock(&[stock("MUG", 1)])
        .await
        .expect_err("refused");
    assert_eq!(e.class(), ErrorClass::Auth);
    let shown = format!("{e} {e:?} {:?}", h.conn);
    for secret in ["not-the-grant", "secret-that-must-not-leak"] {
        assert!(!shown.contains(secret), "secret leaked: {shown}");
    }
    assert_eq!(h.count("patchListingsItem"), 0);
}

// ---- listings -------------------------------------------------------------------------------

#[tokio::test]
async fn a_listing_is_created_then_its_stock_and_price_patched() {
    let h = start_with(fast_amazon(), |c| {
        c.product_type_rules = vec![("MUG-*".into(), "DRINKING_CUP".into())];
    })
    .await;
    let out = h
        .conn
        .push_listings(&[listing("MUG-RED", 7, "12.99"), listing("PLATE", 2, "4.50")])
        .await
        .expect("pushed");
    assert!(out.iter().all(is_applied), "{out:?}");

    let amazon = h.amazon();
    let shown = amazon.listing("MUG-RED").expect("listed");
    assert_eq!(shown.product_type, "DRINKING_CUP", "first matching rule");
    assert_eq!(shown.quantity, Some(7));
    assert_eq!(
        shown.price.as_ref().map(|p| p.value.as_str()),
        Some("12.99")
    );
    assert!(
        shown.status.iter().any(|s| s == "BUYABLE"),
        "{:?}",
        shown.status
    );
    let a = &shown.attributes;
    assert_eq!(a["item_name"][0]["value"], "Mug MUG-RED");
    assert_eq!(a["item_name"][0]["language_tag"], "en_US");
    assert_eq!(a["brand"][0]["value"], "Acme");
    assert_eq!(a["condition_type"][0]["value"], "new_new");
    assert_eq!(
        a["externally_assigned_product_identifier"][0]["type"],
        "upc"
    );
    assert_eq!(
        a["main_product_image_locator"][0]["media_location"],
        "https://img.example/mug.jpg"
    );
    assert_eq!(a["color"][0]["value"], "Red");
    assert_eq!(
        amazon.listing("PLATE").expect("listed").product_type,
        "PRODUCT"
    );
    assert_eq!(h.count("putListingsItem"), 2);

    // Stock and price in one patch per item.
    let out = h
        .conn
        .push_stock(&[priced("MUG-RED", 3, "14.50"), stock("PLATE", 0)])
        .await
        .expect("patched");
    assert!(out.iter().all(is_applied), "{out:?}");
    assert_eq!(h.count("patchListingsItem"), 2);
    assert_eq!(amazon.current_quantity("MUG-RED"), Some(3));
    assert_eq!(
        amazon.current_price("MUG-RED").map(|p| p.value),
        Some("14.50".into())
    );
    assert_eq!(amazon.current_quantity("PLATE"), Some(0));
    assert_eq!(
        amazon.current_price("PLATE").map(|p| p.value),
        Some("4.50".into()),
        "no price, no price patch"
    );
    assert_eq!(
        amazon.listing("MUG-RED").expect("listed").attributes["item_name"][0]["value"],
        "Mug MUG-RED",
        "a patch leaves the other attributes alone"
    );
    let caps = h.conn.capabilities();
    assert_eq!(
        (
            caps.max_stock_batch,
            caps.max_listing_batch,
            caps.max_bulk_batch
        ),
        (MAX_ITEM_BATCH, MAX_ITEM_BATCH, MAX_FEED_MESSAGES)
    );
    assert!(caps.stock_carries_price && caps.has_orders);
}

#[tokio::test]
async fn a_patch_for_a_sku_amazon_never_listed_is_accepted() {
    // Real Amazon makes an offer-only listing; there is no "not listed" answer to act on.
    let h = start().await;
    let out = h
        .conn
        .push_stock(&[stock("GHOST", 4)])
        .await
        .expect("patched");
    assert!(is_applied(&out[0]), "{out:?}");
    assert_eq!(h.amazon().current_quantity("GHOST"), Some(4));
}

#[tokio::test]
async fn invalid_submissions_are_rejected_with_every_error_issue() {
    let h = start().await;
    h.seed("SKU", 2);
    let mut untitled = listing("UNTITLED", 1, "5.00");
    untitled.title = "  ".into();
    let long = "L".repeat(41);
    let out = h
        .conn
        .push_listings(&[
            untitled,
            listing(&long, 1, "1.00"),
            listing("GOOD", 1, "1.00"),
        ])
        .await
        .expect("answered");
    match &out[0] {
        ItemOutcome::Rejected { code, error } => {
            assert_eq!(code.as_deref(), Some("90220"), "{error}");
            assert!(
                error.contains("[90220]") && error.contains("item_name"),
                "{error}"
            );
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(
        matches!(&out[1], ItemOutcome::Rejected { code: None, error } if error.contains("40")),
        "{:?}",
        out[1]
    );
    assert!(is_applied(&out[2]));
    assert_eq!(h.count("putListingsItem"), 2, "the long SKU was never sent");
    assert!(
        h.amazon().listing("UNTITLED").is_none(),
        "INVALID changes nothing"
    );

    // A SKU Amazon refuses among others: only it is rejected.
    h.amazon().add_fault(
        "patchListingsItem",
        FaultKind::reject_skus(["SKU-001"], 4_000_003, "The SKU is blocked."),
    );
    let out = h
        .conn
        .push_stock(&[stock("SKU-000", 1), stock("SKU-001", 1)])
        .await
        .expect("answered");
    assert!(is_applied(&out[0]));
    match &out[1] {
        ItemOutcome::Rejected { code, error } => {
            assert_eq!(code.as_deref(), Some("4000003"));
            assert!(error.contains("The SKU is blocked."), "{error}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(h.extra("items_rejected"), 2);
}

#[tokio::test]
async fn delist_deletes_and_an_unknown_sku_counts_as_gone() {
    let h = start().await;
    h.seed("SKU", 1);
    let out = h
        .conn
        .delist(&[sku("SKU-000"), sku("NEVER-LISTED"), sku(&"X".repeat(41))])
        .await
        .expect("delisted");
    assert!(out.iter().all(is_applied), "{out:?}");
    assert!(h.amazon().listing("SKU-000").is_none());
    assert_eq!(h.count("deleteListingsItem"), 2);
}

#[tokio::test]
async fn a_batch_runs_concurrently_and_longer_batches_go_in_chunks() {
    let h = start().await;
    let skus = h.seed("SKU", 25);
    // 100 ms per request: one at a time, 25 items would take 2.5 s.
    h.amazon().add_fault(
        "patchListingsItem",
        FaultKind::latency(Duration::from_millis(100)),
    );
    let items: Vec<StockUpdate> = skus.iter().map(|s| stock(s, 3)).collect();
    let started = Instant::now();
    let out = h.conn.push_stock(&items).await.expect("patched");
    let elapsed = started.elapsed();
    assert!(out.iter().all(is_applied));
    assert!(
        elapsed < Duration::from_millis(1_500),
        "3 chunks of concurrent calls: {elapsed:?}"
    );
    for s in &skus {
        assert_eq!(h.amazon().current_quantity(s), Some(3));
    }
}

// ---- throttling and failures ------------------------------------------------------------------

#[tokio::test]
async fn a_batch_that_is_all_throttled_fails_as_a_whole_and_pauses_the_operation() {
    let h = start().await;
    h.seed("SKU", 3);
    let items = [
        stock("SKU-000", 1),
        stock("SKU-001", 1),
        stock("SKU-002", 1),
    ];
    let rule = h.sandbox.faults().add(FaultRule::new(
        "amazon",
        "patchListingsItem",
        FaultKind::too_many_requests(),
    ));
    let e = h.conn.push_stock(&items).await.expect_err("throttled");
    assert_eq!(
        e.class(),
        ErrorClass::RateLimited,
        "no item burns an attempt"
    );
    assert!(e.retry_after().is_some_and(|w| w >= Duration::from_secs(1)));
    let b = h.budget(OP_PATCH_LISTINGS_ITEM);
    assert!(b.paused_for_ms > 0 && b.pauses >= 1, "{b:?}");
    assert!(
        h.budget(OP_SEARCH_LISTINGS_ITEMS).paused_for_ms == 0,
        "others run"
    );
    let stats = h.conn.stats();
    assert_eq!(stats.rate_limited, 3);

    // Amazon recovers: the next call waits out the pause, then goes through.
    h.sandbox.faults().remove(rule);
    let started = Instant::now();
    let out = h.conn.push_stock(&items).await.expect("recovered");
    assert!(out.iter().all(is_applied));
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the pause held"
    );

    // One throttled item among others: only it is retried.
    h.sandbox.faults().add(
        FaultRule::new(
            "amazon",
            "patchListingsItem",
            FaultKind::too_many_requests(),
        )
        .times(1),
    );
    let out = h.conn.push_stock(&items).await.expect("mostly applied");
    assert_eq!(out.iter().filter(|o| is_applied(o)).count(), 2);
    assert!(out.iter().any(|o| matches!(o, ItemOutcome::Retry { .. })));
}

#[tokio::test]
async fn the_server_announced_rate_replaces_the_plan() {
    // The fake's sandbox plan: every operation 5 rps burst 15, announced on every answer.
    let h = start_with(
        AmazonOptions {
            feed_processing: Duration::from_millis(300),
            ..AmazonOptions::sandbox_plan()
        },
        |_| {},
    )
    .await;
    h.seed("SKU", 1);
    assert_eq!(h.budget(OP_PATCH_LISTINGS_ITEM).rate_per_sec, 10_000.0);
    h.conn
        .push_stock(&[stock("SKU-000", 2)])
        .await
        .expect("patched");
    let b = h.budget(OP_PATCH_LISTINGS_ITEM);
    assert_eq!(b.rate_per_sec, 5.0);
    assert_eq!(b.adjustments, 1);
}

#[tokio::test]
async fn outages_timeouts_and_bad_bodies_are_classified() {
    let h = start_with(fast_amazon(), |c| c.limits.timeout = Duration::from_secs(2)).await;
    h.seed("SKU", 2);
    let items = [stock("SKU-000", 4), stock("SKU-001", 4)];
    h.conn
        .snapshot_page(None)
        .await
        .expect("token and a first call");

    // Amazon down for every item: the call fails as a whole, worth retrying.
    let down = h
        .amazon()
        .add_fault("patchListingsItem", FaultKind::server_error(503));
    let e = h.conn.push_stock(&items).await.expect_err("down");
    assert_eq!(e.class(), ErrorClass::Transient, "{e:?}");
    h.sandbox.faults().remove(down);

    // One item's 500 among others: only it is retried.
    h.sandbox
        .faults()
        .add(FaultRule::new("amazon", "patchListingsItem", FaultKind::server_error(500)).times(1));
    let out = h.conn.push_stock(&items).await.expect("answered");
    assert_eq!(out.iter().filter(|o| is_applied(o)).count(), 1);

    // A write whose connection dies after Amazon applied it: the outcome is unknown.
    h.sandbox.faults().add(
        FaultRule::new(
            "amazon",
            "patchListingsItem",
            FaultKind::DropConnection {
                after_processing: true,
            },
        )
        .times(1),
    );
    let e = h
        .conn
        .push_stock(&[stock("SKU-000", 9)])
        .await
        .expect_err("dropped");
    assert_eq!(e.class(), ErrorClass::Unknown, "{e:?}");
    assert_eq!(
        h.amazon().current_quantity("SKU-000"),
        Some(9),
        "it did land"
    );

    // No answer within the request timeout.
    h.sandbox.faults().add(
        FaultRule::new(
            "amazon",
            "searchOrders",
            FaultKind::Hang {
                after_processing: false,
            },
        )
        .times(1),
    );
    let e = h.conn.fetch_orders(0, None).await.expect_err("hung");
    assert!(matches!(e, ConnectorError::Timeout { .. }), "{e:?}");

    // A cut body.
    h.amazon()
        .add_fault("searchListingsItems", FaultKind::MalformedBody);
    let e = h.conn.snapshot_page(None).await.expect_err("cut body");
    assert!(matches!(e, ConnectorError::Malformed { .. }), "{e:?}");
    h.sandbox.faults().clear();

    // A page token we never handed out.
    let e = h
        .conn
        .fetch_orders(0, Some("not-a-token".into()))
        .await
        .expect_err("bad token");
    assert_eq!(e.class(), ErrorClass::Permanent);

    // And then everything works again.
    h.conn.fetch_orders(0, None).await.expect("recovered");
    assert!(
        h.conn
            .push_stock(&items)
            .await
            .expect("recovered")
            .iter()
            .all(is_applied)
    );
}

// ---- the bulk path --------------------------------------------------------------------------

#[tokio::test]
async fn a_feed_applies_every_kind_of_entry_and_reports_errors_per_message() {
    let h = start().await;
    let seeded = h.seed("SKU", 20);
    h.seed("GONE", 1);
    let mut untitled = listing("UNTITLED", 1, "5.00");
    untitled.title = String::new();
    let mut items: Vec<BulkItem> = seeded
        .iter()
        .enumerate()
        .map(|(i, s)| BulkItem::Stock(stock(s, i as u32)))
        .collect();
    items[3] = BulkItem::Stock(priced("SKU-003", 30, "24.95"));
    items.push(BulkItem::Listing(listing("NEW-MUG", 6, "11.00")));
    items.push(BulkItem::Delist(sku("GONE-000")));
    items.push(BulkItem::Listing(untitled));
    h.amazon().add_fault(
        "createFeed",
        FaultKind::reject_skus(["SKU-007"], 4_000_003, "The SKU is blocked."),
    );

    let (job, outcomes) = run_feed(&h.conn, &items).await;
    let amazon = h.amazon();
    for (i, o) in outcomes.iter().enumerate() {
        match i {
            7 => assert!(
                matches!(o, ItemOutcome::Rejected { code: Some(c), error } if c == "4000003" && error.contains("blocked")),
                "{o:?}"
            ),
            22 => match o {
                ItemOutcome::Rejected { code, error } => {
                    assert_eq!(code.as_deref(), Some("90220"), "{error}");
                    assert!(error.contains("item_name"), "{error}");
                }
                other => panic!("expected Rejected, got {other:?}"),
            },
            _ => assert!(is_applied(o), "entry {i}: {o:?}"),
        }
    }
    assert_eq!(amazon.current_quantity("SKU-005"), Some(5));
    assert_eq!(
        amazon.current_quantity("SKU-007"),
        Some(10),
        "rejected: unchanged"
    );
    assert_eq!(amazon.current_quantity("SKU-003"), Some(30));
    assert_eq!(
        amazon.current_price("SKU-003").map(|p| p.value),
        Some("24.95".into())
    );
    assert_eq!(amazon.current_quantity("NEW-MUG"), Some(6));
    assert!(amazon.listing("GONE-000").is_none());
    assert!(amazon.listing("UNTITLED").is_none());

    // One document, one feed, no per-item calls; the report came GZIP-compressed.
    for (op, n) in [
        ("createFeedDocument", 1),
        ("uploadFeedDocument", 1),
        ("createFeed", 1),
        ("getFeedDocument", 1),
        ("downloadFeedDocument", 1),
        ("patchListingsItem", 0),
        ("putListingsItem", 0),
    ] {
        assert_eq!(h.count(op), n, "{op}");
    }
    let feeds = amazon.feeds();
    assert_eq!(feeds.len(), 1);
    assert_eq!(feeds[0].feed_id, job.id);
    assert_eq!(feeds[0].status, "DONE");
    assert_eq!(feeds[0].messages, items.len());
    let report = amazon.feed_report(&job.id).expect("report");
    assert_eq!(report["summary"]["messagesProcessed"], items.len());
    assert_eq!(h.extra("feeds_submitted"), 1);
    assert_eq!(h.extra("feeds_done"), 1);
    assert!(
        h.extra("learned_feed_secs") < 2,
        "learned from a 300 ms feed: {}",
        h.extra("learned_feed_secs")
    );
}

#[tokio::test]
async fn a_fatal_feed_retries_every_item_and_cools_the_bulk_path_down() {
    let h = start().await;
    let skus = h.seed("SKU", 3);
    let items: Vec<BulkItem> = skus.iter().map(|s| BulkItem::Stock(stock(s, 1))).collect();
    h.amazon().fail_next_feeds(1);
    assert_eq!(h.conn.bulk_choice(1_000_000), 0, "patches are instant here");
    let (_, outcomes) = run_feed(&h.conn, &items).await;
    for o in &outcomes {
        match o {
            ItemOutcome::Retry { error } => {
                assert!(error.contains("FATAL"), "{error}");
                assert!(
                    error.contains("internal error"),
                    "the feed-level issue: {error}"
                );
            }
            other => panic!("expected Retry, got {other:?}"),
        }
    }
    assert_eq!(
        h.amazon().current_quantity("SKU-000"),
        Some(10),
        "nothing applied"
    );
    assert_eq!(h.extra("feeds_fatal"), 1);
    assert_eq!(h.extra("bulk_cooled_down"), 1);

    // Even where a feed would win, the path stays off: the items go one by one.
    let prod = AmazonConnector::new(AmazonConfig {
        usage_plan: AmazonUsagePlan::Production,
        ..config_for(&h.sandbox)
    })
    .expect("connector");
    assert_eq!(prod.bulk_choice(10_000), 10_000);
    h.amazon().fail_next_feeds(1);
    let (_, outcomes) = run_feed(&prod, &items).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ItemOutcome::Retry { .. }))
    );
    assert_eq!(prod.bulk_choice(10_000), 0, "cooled down");
    let out = prod
        .push_stock(&skus.iter().map(|s| stock(s, 2)).collect::<Vec<_>>())
        .await
        .expect("per item");
    assert!(out.iter().all(is_applied));
}

#[tokio::test]
async fn an_entry_the_feed_cannot_carry_sends_the_batch_one_by_one() {
    let h = start().await;
    let huge = Money {
        minor: 1_234_567_890_123_456_789,
        currency: Currency::parse("USD").expect("USD"),
    };
    let items = vec![
        BulkItem::Stock(stock("A", 1)),
        BulkItem::Stock(StockUpdate {
            price: Some(huge),
            ..stock("B", 1)
        }),
    ];
    let e = h.conn.bulk_prepare(&items).await.expect_err("refused");
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(e.to_string().contains("\"B\""), "{e}");
    assert_eq!(h.count("createFeedDocument"), 0, "nothing uploaded");
    assert_eq!(h.extra("bulk_cooled_down"), 1);
    let out = h
        .conn
        .push_stock(&[
            stock("A", 1),
            StockUpdate {
                price: Some(huge),
                ..stock("B", 1)
            },
        ])
        .await
        .expect("per item");
    assert!(is_applied(&out[0]));
    assert!(
        matches!(out[1], ItemOutcome::Rejected { .. }),
        "{:?}",
        out[1]
    );
}

#[tokio::test]
async fn a_stored_job_is_resumed_by_a_fresh_connector() {
    let h = start().await;
    let skus = h.seed("SKU", 5);
    h.amazon().hold_feeds(true);
    let items: Vec<BulkItem> = skus.iter().map(|s| BulkItem::Stock(stock(s, 7))).collect();
    let draft = h.conn.bulk_prepare(&items).await.expect("prepared");
    let job = h.conn.bulk_submit(&draft).await.expect("submitted");
    let stored = serde_json::to_string(&job).expect("serializable");
    let Harness { sandbox, conn } = h;
    drop(conn);
    let h = Harness {
        conn: AmazonConnector::new(config_for(&sandbox)).expect("connector"),
        sandbox,
    };

    // After a restart: a new connector, the job from the store.
    let fresh = &h.conn;
    let job: BulkJob = serde_json::from_str(&stored).expect("stored job");
    assert!(
        fresh
            .bulk_in_flight_since(draft.prepared_at_ms)
            .await
            .expect("listed"),
        "the held feed is queued"
    );
    match fresh.bulk_poll(&job).await.expect("polled") {
        BulkStatus::Pending { poll_after } => {
            assert!(poll_after >= Duration::from_secs(1), "{poll_after:?}")
        }
        other => panic!("expected Pending, got {other:?}"),
    }
    h.amazon().hold_feeds(false);
    let outcomes = poll_until_done(fresh, &job).await;
    assert!(outcomes.iter().all(is_applied), "{outcomes:?}");
    for s in &skus {
        assert_eq!(h.amazon().current_quantity(s), Some(7));
    }
    assert!(
        !fresh
            .bulk_in_flight_since(draft.prepared_at_ms)
            .await
            .expect("listed"),
        "nothing left in flight"
    );
    assert_eq!(h.count("createFeed"), 1, "never submitted twice");
    let query = h
        .amazon()
        .requests()
        .into_iter()
        .find(|r| r.operation == "getFeeds")
        .and_then(|r| r.query)
        .expect("getFeeds query");
    assert!(
        query.contains("feedTypes=JSON_LISTINGS_FEED")
            && query.contains("processingStatuses=IN_QUEUE,IN_PROGRESS")
            && query.contains("createdSince="),
        "{query}"
    );
}

#[tokio::test]
async fn bulk_choice_picks_a_feed_for_thousands_and_patches_for_a_few() {
    let h = start().await;
    let conn = AmazonConnector::new(AmazonConfig {
        usage_plan: AmazonUsagePlan::Production,
        limits: AmazonConnector::DEFAULT_LIMITS,
        feed_processing_estimate: AmazonConfig::DEFAULT_FEED_PROCESSING_ESTIMATE,
        ..config_for(&h.sandbox)
    })
    .expect("connector");
    // Patches at 5/s burst 5 vs a feed of about 189 s.
    assert_eq!(conn.bulk_choice(10_000), 10_000);
    assert_eq!(conn.bulk_choice(100_000), MAX_FEED_MESSAGES);
    assert_eq!(conn.bulk_choice(5), 0);
    assert_eq!(conn.bulk_choice(500), 0, "100 s of patches beat 189 s");
    assert_eq!(conn.bulk_choice(0), 0);
    assert_eq!(h.amazon().requests().len(), 0, "a choice sends nothing");
    let estimate = conn.feed_estimate();
    assert!(
        (Duration::from_secs(188)..Duration::from_secs(190)).contains(&estimate),
        "{estimate:?}"
    );
    // Sandbox hosts (5 rps burst 15) decide the same way.
    let sandbox_plan = AmazonConnector::new(AmazonConfig {
        usage_plan: AmazonUsagePlan::Sandbox,
        limits: AmazonConnector::DEFAULT_LIMITS,
        ..config_for(&h.sandbox)
    })
    .expect("connector");
    assert_eq!(sandbox_plan.bulk_choice(10_000), 10_000);
    assert_eq!(sandbox_plan.bulk_choice(5), 0);
}

#[tokio::test]
async fn ten_thousand_stock_updates_in_one_feed() {
    let h = start().await;
    let amazon = h.amazon();
    let skus: Vec<String> = (0..10_000).map(|i| format!("BULK-{i:05}")).collect();
    for s in &skus {
        amazon
            .seed_listing(AmazonSeedListing::new(s.clone(), 1, "9.99"))
            .expect("seeded");
    }
    let items: Vec<BulkItem> = skus
        .iter()
        .enumerate()
        .map(|(i, s)| BulkItem::Stock(stock(s, (i % 50) as u32)))
        .collect();
    let started = Instant::now();
    let (_, outcomes) = run_feed(&h.conn, &items).await;
    let elapsed = started.elapsed();
    assert!(outcomes.iter().all(is_applied));
    assert_eq!(amazon.current_quantity("BULK-09999"), Some(9_999 % 50));
    let stats = h.conn.stats();
    assert!(
        stats.requests <= 30,
        "one feed, a few polls: {}",
        stats.requests
    );
    eprintln!(
        "10,000 stock updates through one feed against the fake: {elapsed:?}, {} requests",
        stats.requests
    );
}

// ---- orders ---------------------------------------------------------------------------------

#[tokio::test]
async fn orders_page_with_the_same_filters_and_map_status_and_fba() {
    let h = start().await;
    let amazon = h.amazon();
    amazon
        .seed_listing(AmazonSeedListing::new("MUG", 1_000, "9.99"))
        .expect("seeded");
    amazon
        .seed_listing(AmazonSeedListing::new("PLATE", 50, "4.50"))
        .expect("seeded");
    let since = chrono::Utc::now().timestamp_millis() - 60_000;
    let mut placed = Vec::new();
    for _ in 0..120 {
        placed.push(
            amazon
                .place_order(&[SandboxLine::new("MUG", 1)])
                .expect("order"),
        );
    }
    let paid = amazon
        .place_order(&[SandboxLine::new("MUG", 2), SandboxLine::new("PLATE", 1)])
        .expect("order");
    let shipped = amazon
        .place_order(&[SandboxLine::new("MUG", 1)])
        .expect("order");
    let cancelled = amazon
        .place_order(&[SandboxLine::new("PLATE", 3)])
        .expect("order");
    let fba = amazon
        .place_fba_order(&[SandboxLine::new("MUG", 4)])
        .expect("order");
    amazon.ship_order(&shipped).expect("shipped");
    amazon.cancel_order(&cancelled).expect("cancelled");
    placed.extend([
        paid.clone(),
        shipped.clone(),
        cancelled.clone(),
        fba.clone(),
    ]);

    let first = h.conn.fetch_orders(since, None).await.expect("page 1");
    assert_eq!(first.orders.len(), 100);
    let token = first.next_page.clone().expect("a second page");
    // The poller may pass a newer time with the token: the token's own filter time is used.
    let second = h
        .conn
        .fetch_orders(since + 5_000, Some(token))
        .await
        .expect("page 2");
    assert_eq!(second.orders.len(), 24);
    assert_eq!(second.next_page, None);
    let all: Vec<&crate::model::ChannelOrder> = first.orders.iter().chain(&second.orders).collect();
    let mut seen: Vec<String> = all.iter().map(|o| o.external_id.clone()).collect();
    seen.sort();
    placed.sort();
    assert_eq!(seen, placed, "every order exactly once");

    let find = |id: &str| *all.iter().find(|o| o.external_id == id).expect("present");
    let p = find(&paid);
    assert_eq!(p.status, OrderStatus::Paid);
    assert_eq!(p.lines.len(), 2);
    assert_eq!(p.lines[0].sku.as_str(), "MUG");
    assert_eq!(p.lines[0].quantity, 2);
    assert_eq!(p.lines[0].unit_price, Some(usd("9.99")));
    assert_ne!(p.lines[0].line_id, p.lines[1].line_id);
    assert!(p.total.is_some(), "PROCEEDS asked for");
    assert!(!p.fulfilled_by_channel);
    assert_eq!(p.buyer_ref, None);
    assert!(p.remote_updated_at_ms >= p.placed_at_ms);
    assert_eq!(find(&shipped).status, OrderStatus::Shipped);
    let c = find(&cancelled);
    assert_eq!(c.status, OrderStatus::Cancelled);
    assert!(c.remote_updated_at_ms > c.placed_at_ms);
    let f = find(&fba);
    assert!(f.fulfilled_by_channel);
    assert_eq!(f.lines[0].quantity, 4);

    let queries: Vec<String> = amazon
        .requests()
        .into_iter()
        .filter(|r| r.operation == "searchOrders")
        .filter_map(|r| r.query)
        .collect();
    assert_eq!(queries.len(), 2);
    let stamp = mapping::format_timestamp(since).replace(':', "%3A");
    for q in &queries {
        assert!(q.contains(&format!("lastUpdatedAfter={stamp}")), "{q}");
        assert!(q.contains("maxResultsPerPage=100"), "{q}");
        assert!(q.contains("includedData=FULFILLMENT,PROCEEDS"), "{q}");
    }
    assert!(queries[1].contains("paginationToken="));
}

#[tokio::test]
async fn an_empty_order_budget_answers_at_once_instead_of_holding_the_poller() {
    let h = start().await;
    let conn = AmazonConnector::new(AmazonConfig {
        usage_plan: AmazonUsagePlan::Production,
        ..config_for(&h.sandbox)
    })
    .expect("connector");
    for _ in 0..20 {
        conn.fetch_orders(0, None).await.expect("within the burst");
    }
    let started = Instant::now();
    let e = conn.fetch_orders(0, None).await.expect_err("budget empty");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(e.class(), ErrorClass::RateLimited);
    let wait = e.retry_after().expect("says how long");
    assert!(
        (Duration::from_secs(170)..Duration::from_secs(180)).contains(&wait),
        "one token per ~178 s: {wait:?}"
    );
    assert_eq!(h.count("searchOrders"), 20, "the 21st was not sent");
}

// ---- snapshot and health --------------------------------------------------------------------

#[tokio::test]
async fn the_snapshot_pages_through_every_listing() {
    let h = start().await;
    let amazon = h.amazon();
    for i in 0..45u32 {
        amazon
            .seed_listing(AmazonSeedListing::new(format!("S{i:03}"), i % 7, "5.25"))
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
        assert!(pages < 10, "paging ends");
    }
    assert_eq!(pages, 3);
    assert_eq!(items.len(), 45);
    items.sort_by(|a, b| a.sku.cmp(&b.sku));
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item.sku.as_str(), format!("S{i:03}"));
        assert_eq!(item.quantity, Some(i as u32 % 7));
        assert_eq!(item.price, Some(usd("5.25")));
        let asin = item.external_id.as_deref().expect("ASIN");
        assert_eq!(
            Some(asin),
            amazon.listing(item.sku.as_str()).map(|l| l.asin).as_deref()
        );
    }
}

#[tokio::test]
async fn healthcheck_uses_a_token_and_the_listings() {
    let h = start().await;
    h.seed("SKU", 3);
    let health = h.conn.healthcheck().await.expect("healthy");
    assert!(health.summary.contains("3 listings"), "{}", health.summary);
    assert_eq!(h.count("token"), 1);
    assert_eq!(h.count("searchListingsItems"), 1);
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
    assert_eq!(h.sandbox.amazon().request_count("token"), 1);
}

// ---- config ---------------------------------------------------------------------------------

fn valid_config() -> AmazonConfig {
    AmazonConfig {
        endpoint: AmazonConfig::DEFAULT_ENDPOINT.into(),
        feeds_endpoint: None,
        orders_endpoint: None,
        token_endpoint: AmazonConfig::DEFAULT_TOKEN_ENDPOINT.into(),
        seller_id: "A2SELLER".into(),
        marketplace_ids: vec!["ATVPDKIKX0DER".into()],
        client_id: "amzn1.application-oa2-client.x".into(),
        client_secret: Secret::new("s3cr3t-value"),
        refresh_token: Secret::new("Atzr|r"),
        product_type: AmazonConfig::DEFAULT_PRODUCT_TYPE.into(),
        product_type_rules: Vec::new(),
        condition_type: AmazonConfig::DEFAULT_CONDITION_TYPE.into(),
        language_tag: AmazonConfig::DEFAULT_LANGUAGE_TAG.into(),
        feed_processing_estimate: AmazonConfig::DEFAULT_FEED_PROCESSING_ESTIMATE,
        usage_plan: AmazonUsagePlan::Production,
        limits: AmazonConnector::DEFAULT_LIMITS,
    }
}

#[test]
fn invalid_configs_are_refused_with_every_problem_named() {
    assert!(AmazonConnector::new(valid_config()).is_ok());
    let config = AmazonConfig {
        endpoint: "ftp://x".into(),
        seller_id: " ".into(),
        marketplace_ids: vec!["ATVPDKIKX0DER".into(), "bad id".into()],
        refresh_token: Secret::new(""),
        condition_type: "brand_new".into(),
        language_tag: "en-US".into(),
        product_type_rules: vec![("".into(), "X".into())],
        usage_plan: AmazonUsagePlan::Custom {
            rate_per_sec: 0.0,
            burst: 1,
        },
        ..valid_config()
    };
    let text = AmazonConnector::new(config)
        .expect_err("refused")
        .to_string();
    for problem in [
        "endpoint",
        "seller_id",
        "bad id",
        "refresh_token",
        "condition_type",
        "language_tag",
        "product_type_rules",
        "usage_plan",
    ] {
        assert!(text.contains(problem), "{problem}: {text}");
    }
    assert!(!text.contains("s3cr3t"), "no secret values: {text}");
    let none = AmazonConfig {
        marketplace_ids: Vec::new(),
        ..valid_config()
    };
    assert!(AmazonConnector::new(none).is_err());
    assert!(!format!("{:?}", valid_config()).contains("s3cr3t"));
}

#[test]
fn default_limits_follow_the_plan() {
    let l = AmazonConnector::DEFAULT_LIMITS;
    assert!(l.validate().is_ok());
    assert_eq!(l.batch_size, MAX_ITEM_BATCH);
    let max_rate = PRODUCTION_PLAN.iter().map(|p| p.1).fold(0.0, f64::max);
    let max_burst = PRODUCTION_PLAN.iter().map(|p| p.2).max().unwrap_or(0);
    assert_eq!(
        (l.rate_per_sec, l.burst),
        (max_rate, max_burst),
        "caps that change nothing"
    );
    assert_eq!(endpoint_for("eu", false), Some(ENDPOINT_EU));
}

// ---- requests against the official models -----------------------------------------------------

/// Reads an official model from ../shared at test time; `None` (with a note) when absent.
fn model(name: &str) -> Option<serde_json::Value> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/contracts/specs/amazon")
        .join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).expect("a JSON model")),
        Err(e) => {
            eprintln!("SKIPPED: {} not readable ({e})", path.display());
            None
        }
    }
}

/// `%XX` decoding of one query value (the models describe decoded values).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

/// Checks one recorded query string against the Swagger 2.0 parameters of `operation`:
/// required ones present, no undeclared ones, integers within bounds, csv arrays within
/// `minItems`/`maxItems` with values from `items.enum`, enums and date-times well formed.
fn check_query(operation: &str, spec: &serde_json::Value, query: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let op = spec["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|p| p.as_object().expect("path item").values())
        .find(|o| o["operationId"] == operation)
        .unwrap_or_else(|| panic!("{operation} in the model"));
    let params: Vec<&serde_json::Value> = op["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "query")
        .collect();
    let given: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    for p in &params {
        let name = p["name"].as_str().expect("name");
        if p["required"] == true && !given.iter().any(|(k, _)| k == name) {
            problems.push(format!("{operation}: required `{name}` missing"));
        }
    }
    for (key, value) in &given {
        let Some(p) = params.iter().find(|p| p["name"] == key.as_str()) else {
            problems.push(format!("{operation}: `{key}` is not a parameter"));
            continue;
        };
        match p["type"].as_str() {
            Some("integer") => match value.parse::<i64>() {
                Ok(n) => {
                    if p["minimum"].as_i64().is_some_and(|m| n < m)
                        || p["maximum"].as_i64().is_some_and(|m| n > m)
                    {
                        problems.push(format!("{operation}: `{key}={n}` out of bounds"));
                    }
                }
                Err(_) => problems.push(format!("{operation}: `{key}={value}` not an integer")),
            },
            Some("array") => {
                let items: Vec<&str> = value.split(',').collect();
                if p["minItems"]
                    .as_u64()
                    .is_some_and(|m| (items.len() as u64) < m)
                    || p["maxItems"]
                        .as_u64()
                        .is_some_and(|m| items.len() as u64 > m)
                {
                    problems.push(format!("{operation}: `{key}` has {} items", items.len()));
                }
                if let Some(allowed) = p["items"]["enum"].as_array() {
                    for item in &items {
                        if !allowed.iter().any(|a| a == item) {
                            problems.push(format!("{operation}: `{key}` value {item} not in enum"));
                        }
                    }
                }
            }
            Some("string") => {
                if let Some(allowed) = p["enum"].as_array()
                    && !allowed.iter().any(|a| a == value.as_str())
                {
                    problems.push(format!("{operation}: `{key}={value}` not in enum"));
                }
                if p["format"] == "date-time"
                    && chrono::DateTime::parse_from_rfc3339(value).is_err()
                {
                    problems.push(format!("{operation}: `{key}={value}` not a date-time"));
                }
                if value.is_empty() {
                    problems.push(format!("{operation}: `{key}` is empty"));
                }
            }
            other => problems.push(format!("{operation}: `{key}` of type {other:?}")),
        }
    }
    problems
}

#[tokio::test]
async fn every_request_the_connector_sends_matches_the_official_models() {
    let (Some(listings), Some(feeds), Some(orders)) = (
        model("listingsItems_2021-08-01.json"),
        model("feeds_2021-06-30.json"),
        model("orders_2026-01-01.json"),
    ) else {
        return;
    };
    let h = start().await;
    let amazon = h.amazon();
    for i in 0..25 {
        amazon
            .seed_listing(AmazonSeedListing::new(format!("S/{i:02} x"), 5, "3.00"))
            .expect("seeded");
    }
    // Every operation the connector calls, with odd SKUs and a second page of each kind.
    h.conn
        .push_listings(&[listing("NEW/1 é", 2, "7.00")])
        .await
        .expect("put");
    h.conn
        .push_stock(&[priced("S/00 x", 1, "2.50")])
        .await
        .expect("patch");
    h.conn.delist(&[sku("S/01 x")]).await.expect("delete");
    let first = h.conn.snapshot_page(None).await.expect("search");
    h.conn
        .snapshot_page(first.next_page)
        .await
        .expect("search page 2");
    h.conn.healthcheck().await.expect("health");
    amazon
        .seed_listing(AmazonSeedListing::new("ORDERED", 1_000, "3.00"))
        .expect("seeded");
    for _ in 0..101 {
        amazon
            .place_order(&[SandboxLine::new("ORDERED", 1)])
            .expect("order");
    }
    let page = h.conn.fetch_orders(0, None).await.expect("orders");
    if let Some(next) = page.next_page {
        h.conn
            .fetch_orders(0, Some(next))
            .await
            .expect("orders page 2");
    }
    amazon.hold_feeds(true);
    let draft = h
        .conn
        .bulk_prepare(&[BulkItem::Stock(stock("S/03 x", 9))])
        .await
        .expect("prepared");
    let job = h.conn.bulk_submit(&draft).await.expect("submitted");
    h.conn
        .bulk_in_flight_since(draft.prepared_at_ms)
        .await
        .expect("getFeeds");
    amazon.hold_feeds(false);
    poll_until_done(&h.conn, &job).await;

    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in amazon.requests() {
        let spec = match r.operation.as_str() {
            "getListingsItem"
            | "putListingsItem"
            | "patchListingsItem"
            | "deleteListingsItem"
            | "searchListingsItems" => &listings,
            "createFeedDocument" | "createFeed" | "getFeed" | "getFeeds" | "getFeedDocument" => {
                &feeds
            }
            "searchOrders" | "getOrder" => &orders,
            // LWA and the presigned transfers are not SP-API operations.
            _ => continue,
        };
        seen.insert(r.operation.clone());
        problems.extend(check_query(
            &r.operation,
            spec,
            r.query.as_deref().unwrap_or_default(),
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The checker itself catches what Prism would.
    let bad = check_query(
        "searchListingsItems",
        &listings,
        "pageSize=50&includedData=summaries,bogus&nope=1",
    );
    assert_eq!(bad.len(), 4, "{bad:#?}");
    let bad = check_query("searchOrders", &orders, "lastUpdatedAfter=yesterday");
    assert_eq!(bad.len(), 1, "{bad:#?}");
    for op in [
        "putListingsItem",
        "patchListingsItem",
        "deleteListingsItem",
        "searchListingsItems",
        "createFeedDocument",
        "createFeed",
        "getFeed",
        "getFeeds",
        "getFeedDocument",
        "searchOrders",
    ] {
        assert!(seen.contains(op), "{op} was exercised");
    }
}
