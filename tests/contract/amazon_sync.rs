//! The Amazon connector's full sync, driven through the contract guard: listings by
//! putListingsItem, stock and price by patchListingsItem, a JSON_LISTINGS_FEED round trip, an
//! order poll that pages (FBA orders included), a reconcile snapshot that pages, delists, and the
//! healthcheck.

use std::time::{Duration, Instant};

use omnistock_connectors::{
    AmazonConfig, AmazonConnector, AmazonUsagePlan, BulkItem, BulkStatus, Connector,
    ConnectorError, Currency, ItemOutcome, Limits, ListingUpdate, Money, Secret, Sku, StockUpdate,
};
use omnistock_sandbox::{AmazonSeedListing, FaultKind, FaultRule, OrderLine};
use serde_json::Value;

use crate::amazon::AmazonContract;
use crate::applied;
use crate::recorder::Exchange;
use omnistock::store::now_ms;

/// SKUs the test lists through the connector (three rounds of the connector's 10).
pub const NEW_SKUS: usize = 30;
/// Listings the seller had before (seeded, no writes), so the snapshot pages: with
/// searchListingsItems' 20 per page, 30 + 50 (+ the feed's) items make five pages.
pub const EXISTING_SKUS: usize = 50;
/// Orders placed in the sandbox; more than two searchOrders pages of 100.
pub const ORDERS: usize = 230;
/// Every this many orders one is fulfilled by Amazon (FBA).
pub const FBA_EVERY: usize = 10;
/// How long the fake takes to process a feed.
pub const FEED_PROCESSING: Duration = Duration::from_millis(1500);
/// SKUs the feed creates with UPDATE messages.
const FEED_NEW_SKUS: usize = 3;
/// The SKU whose feed message the fake rejects (a `reject_skus` fault on createFeed).
const FEED_REJECTED_SKU: &str = "CT-011";
/// The SKU whose putListingsItem the fake answers INVALID (a `reject_skus` fault).
const REFUSED_SKU: &str = "CT-REFUSED";
/// The seeded listing the feed deletes.
const FEED_DELETED_SKU: &str = "OLD-0049";
/// Longest the test waits for the feed to be DONE.
const FEED_DEADLINE: Duration = Duration::from_secs(60);

/// The feed round trip, for the report and the schema checks.
#[derive(Debug, Default)]
pub struct FeedSummary {
    /// Amazon's feed id.
    pub feed_id: String,
    /// The uploaded document's id.
    pub document_id: String,
    /// Messages in the feed.
    pub messages: usize,
    /// getFeed calls until DONE.
    pub polls: usize,
    /// What bulk_in_flight_since said while the fake held the feed in its queue.
    pub in_flight_while_held: bool,
    /// What it said once the feed was done.
    pub in_flight_after: bool,
}

/// What the sync did, for the report.
#[derive(Debug, Default)]
pub struct SyncSummary {
    /// Items per push_listings call.
    pub listing_batches: Vec<usize>,
    /// Items per push_stock call.
    pub stock_batches: Vec<usize>,
    /// The JSON_LISTINGS_FEED round trip.
    pub feed: FeedSummary,
    /// Orders fetched, over how many pages, and how many were FBA.
    pub orders: (usize, usize, usize),
    /// Items in the snapshot, and over how many pages.
    pub snapshot: (usize, usize),
    /// SKUs delisted.
    pub delisted: usize,
    /// The healthcheck's summary line.
    pub health: String,
    /// The connector's error for a throttled searchOrders.
    pub throttled: String,
    /// One FBA order's id (for a hand-made getOrder).
    pub fba_order: String,
}

/// The listings that exist before the test.
pub fn existing_listings() -> Vec<AmazonSeedListing> {
    (0..EXISTING_SKUS)
        .map(|i| AmazonSeedListing::new(format!("OLD-{i:04}"), 40, "9.50"))
        .collect()
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("valid SKU")
}

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::parse("USD").expect("USD")).expect("valid amount")
}

fn new_sku(i: usize) -> String {
    format!("CT-{i:03}")
}

fn listing_for(sku_text: String, i: usize, quantity: u32, version: i64) -> ListingUpdate {
    ListingUpdate {
        sku: sku(&sku_text),
        external_id: None,
        title: format!("Contract test mug {i}"),
        description: format!("Stoneware mug number {i}, 350 ml"),
        brand: Some("Kiln & Co".into()),
        barcode: i.is_multiple_of(2).then(|| "0012345678905".to_owned()),
        image_urls: vec![format!("https://example.com/img/{sku_text}.jpg")],
        options: vec![(
            "Colour".into(),
            if i.is_multiple_of(2) { "Red" } else { "Blue" }.into(),
        )],
        group_id: None,
        quantity,
        price: usd(&format!("{}.{:02}", 10 + i, i % 100)),
        version,
    }
}

fn listing(i: usize, quantity: u32, version: i64) -> ListingUpdate {
    listing_for(new_sku(i), i, quantity, version)
}

/// A decimal amount in cents (`"20.5"` and `"20.50"` are the same price).
fn cents(amount: &str) -> Option<i64> {
    let (units, fraction) = amount.trim().split_once('.').unwrap_or((amount.trim(), ""));
    if fraction.len() > 2 {
        return None;
    }
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    Some(units.parse::<i64>().ok()? * 100 + fraction)
}

/// The connector pointed at the three recorders (→ Prism → sandbox), the LWA token endpoint
/// straight at the sandbox (it is in no model).
pub fn connector(c: &AmazonContract) -> AmazonConnector {
    let amazon = c.sandbox.amazon();
    let creds = amazon.credentials();
    AmazonConnector::new(AmazonConfig {
        endpoint: c.listings.url.clone(),
        feeds_endpoint: Some(c.feeds.url.clone()),
        orders_endpoint: Some(c.orders.url.clone()),
        token_endpoint: c.token_endpoint(),
        seller_id: amazon.seller_id(),
        marketplace_ids: vec![amazon.marketplace_id()],
        client_id: creds.client_id,
        client_secret: Secret::new(creds.client_secret),
        refresh_token: Secret::new(creds.refresh_token),
        product_type: AmazonConfig::DEFAULT_PRODUCT_TYPE.into(),
        product_type_rules: vec![("CT-0?5".into(), "DRINKING_CUP".into())],
        condition_type: AmazonConfig::DEFAULT_CONDITION_TYPE.into(),
        language_tag: AmazonConfig::DEFAULT_LANGUAGE_TAG.into(),
        feed_processing_estimate: FEED_PROCESSING,
        // This test is about shapes, not pacing: no waiting on the usage plans.
        usage_plan: AmazonUsagePlan::Custom {
            rate_per_sec: 1000.0,
            burst: 1000,
        },
        limits: Limits {
            rate_per_sec: 1000.0,
            burst: 1000,
            ..AmazonConnector::DEFAULT_LIMITS
        },
    })
    .expect("the Amazon connector accepts the config")
}

/// Lists, restocks and reprices, runs a feed, sells, snapshots and delists through the
/// connector. Fails with a message at the first step that goes wrong.
pub async fn full_sync(c: &AmazonContract) -> Result<SyncSummary, String> {
    let amazon = c.sandbox.amazon();
    let conn = connector(c);
    let caps = conn.capabilities();
    let mut summary = SyncSummary::default();
    let started_ms = now_ms() - 60_000;

    summary.health = conn
        .healthcheck()
        .await
        .map_err(|e| format!("healthcheck: {e}"))?
        .summary;

    // 1. List 30 new SKUs (putListingsItem each), batches as the dispatcher cuts them.
    let listings: Vec<ListingUpdate> = (1..=NEW_SKUS).map(|i| listing(i, 100, 1)).collect();
    for batch in listings.chunks(caps.max_listing_batch) {
        let outcomes = conn
            .push_listings(batch)
            .await
            .map_err(|e| format!("push_listings: {e}"))?;
        let skus: Vec<String> = batch.iter().map(|l| l.sku.to_string()).collect();
        applied("push_listings", &skus, &outcomes)?;
        summary.listing_batches.push(batch.len());
    }
    for l in &listings {
        let shown = amazon.current_quantity(l.sku.as_str());
        ensure!(
            shown == Some(100),
            "after push_listings {} shows {shown:?}, not 100",
            l.sku
        );
    }

    // 1b. A listing the fake refuses: 200 INVALID with an ERROR issue → Rejected with its code.
    amazon.faults().add(
        FaultRule::new(
            "amazon",
            "putListingsItem",
            FaultKind::reject_skus([REFUSED_SKU], 8572, "The listing is blocked for this test."),
        )
        .times(1),
    );
    let outcomes = conn
        .push_listings(&[listing_for(REFUSED_SKU.into(), 99, 1, 1)])
        .await
        .map_err(|e| format!("push_listings of a refused SKU: {e}"))?;
    ensure!(
        matches!(outcomes.as_slice(), [ItemOutcome::Rejected { code: Some(code), .. }] if code == "8572"),
        "push_listings of a SKU the fake refuses: {outcomes:?}"
    );
    ensure!(
        amazon.listing(REFUSED_SKU).is_none(),
        "the refused listing {REFUSED_SKU} exists"
    );

    // 2. Stock and price (patchListingsItem: merge of fulfillment_availability, replace of
    //    purchasable_offer) for all of them plus two listings the seller made before omnistock.
    let mut updates: Vec<StockUpdate> = (1..=NEW_SKUS)
        .map(|i| StockUpdate {
            sku: sku(&new_sku(i)),
            external_id: None,
            quantity: 80 + u32::try_from(i).unwrap_or(0),
            price: Some(usd(&format!("{}.99", 20 + i))),
            version: 2,
        })
        .collect();
    for old in ["OLD-0000", "OLD-0001"] {
        updates.push(StockUpdate {
            sku: sku(old),
            external_id: None,
            quantity: 33,
            price: Some(usd("8.75")),
            version: 2,
        });
    }
    for batch in updates.chunks(caps.max_stock_batch) {
        let outcomes = conn
            .push_stock(batch)
            .await
            .map_err(|e| format!("push_stock: {e}"))?;
        let skus: Vec<String> = batch.iter().map(|u| u.sku.to_string()).collect();
        applied("push_stock", &skus, &outcomes)?;
        summary.stock_batches.push(batch.len());
    }
    for u in &updates {
        let shown = amazon.current_quantity(u.sku.as_str());
        ensure!(
            shown == Some(u.quantity),
            "after push_stock {} shows {shown:?}, not {}",
            u.sku,
            u.quantity
        );
        let price = amazon.current_price(u.sku.as_str());
        let wanted = u.price.as_ref().map(Money::amount_text);
        ensure!(
            price.as_ref().map(|m| cents(&m.value)) == wanted.as_deref().map(cents),
            "after push_stock {} costs {price:?}, not {wanted:?}",
            u.sku
        );
    }

    // 3. The bulk path: one JSON_LISTINGS_FEED.
    summary.feed = feed_round_trip(c, &conn).await?;

    // 4. Buyers check out: 230 one- or two-line orders, every tenth fulfilled by Amazon; some
    //    cancelled, some shipped. searchOrders pages of 100.
    let mut order_ids = Vec::with_capacity(ORDERS);
    let mut fba = 0;
    for n in 0..ORDERS {
        let mut lines = vec![OrderLine::new(new_sku(n % NEW_SKUS + 1), 1)];
        if n.is_multiple_of(7) {
            lines.push(OrderLine::new(new_sku((n + 3) % NEW_SKUS + 1), 2));
        }
        let id = if n.is_multiple_of(FBA_EVERY) {
            fba += 1;
            amazon.place_fba_order(&lines)
        } else {
            amazon.place_order(&lines)
        }
        .map_err(|e| format!("placing order {n}: {e:?}"))?;
        if n.is_multiple_of(FBA_EVERY) {
            summary.fba_order.clone_from(&id);
        }
        order_ids.push(id);
    }
    for id in order_ids.iter().skip(1).step_by(40) {
        amazon
            .cancel_order(id)
            .map_err(|e| format!("cancel {id}: {e:?}"))?;
    }
    for id in order_ids.iter().skip(3).step_by(25) {
        amazon
            .ship_order(id)
            .map_err(|e| format!("ship {id}: {e:?}"))?;
    }
    // The first searchOrders is throttled: 429 QuotaExceeded → RateLimited, the poll goes on.
    amazon
        .faults()
        .add(FaultRule::new("amazon", "searchOrders", FaultKind::too_many_requests()).times(1));
    match conn.fetch_orders(started_ms, None).await {
        Err(e @ ConnectorError::RateLimited { .. }) => {
            summary.throttled = e.to_string();
            if let ConnectorError::RateLimited {
                retry_after: Some(wait),
                ..
            } = e
            {
                tokio::time::sleep(wait).await;
            }
        }
        other => return Err(format!("fetch_orders answered 429: {other:?}")),
    }
    let mut page = None;
    let mut fetched = Vec::new();
    let mut pages = 0;
    loop {
        let p = conn
            .fetch_orders(started_ms, page)
            .await
            .map_err(|e| format!("fetch_orders: {e}"))?;
        pages += 1;
        fetched.extend(p.orders);
        page = p.next_page;
        if page.is_none() || pages > 10 {
            break;
        }
    }
    let mut seen: Vec<&str> = fetched.iter().map(|o| o.external_id.as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    ensure!(
        seen.len() == ORDERS,
        "{} distinct orders fetched, {ORDERS} placed",
        seen.len()
    );
    ensure!(
        pages >= 3,
        "orders came on {pages} page(s); the test wants paging"
    );
    let fetched_fba = fetched.iter().filter(|o| o.fulfilled_by_channel).count();
    ensure!(
        fetched_fba == fba,
        "{fetched_fba} orders fetched as fulfilled by Amazon, {fba} placed"
    );
    summary.orders = (fetched.len(), pages, fetched_fba);

    // 5. What the channel shows: every searchListingsItems page.
    let mut page = None;
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let p = conn
            .snapshot_page(page)
            .await
            .map_err(|e| format!("snapshot_page: {e}"))?;
        pages += 1;
        items.extend(p.items);
        page = p.next_page;
        if page.is_none() || pages > 60 {
            break;
        }
    }
    let in_sandbox = amazon.skus().len();
    ensure!(
        items.len() == in_sandbox,
        "the snapshot has {} items, the sandbox {in_sandbox}",
        items.len(),
    );
    ensure!(pages >= 2, "the snapshot came on {pages} page(s)");
    for item in &items {
        let shown = amazon.current_quantity(item.sku.as_str());
        ensure!(
            item.quantity == shown,
            "the snapshot says {} shows {:?}, the sandbox {shown:?}",
            item.sku,
            item.quantity
        );
    }
    summary.snapshot = (items.len(), pages);

    // 6. Take three off sale (deleteListingsItem), and one SKU Amazon never had.
    let gone: Vec<Sku> = (1..=3)
        .map(|i| sku(&new_sku(i)))
        .chain([sku("NEVER-LISTED")])
        .collect();
    let outcomes = conn
        .delist(&gone)
        .await
        .map_err(|e| format!("delist: {e}"))?;
    let names: Vec<String> = gone.iter().map(Sku::to_string).collect();
    applied("delist", &names, &outcomes)?;
    summary.delisted = gone.len();
    for s in &gone {
        ensure!(
            amazon.listing(s.as_str()).is_none(),
            "{s} is still listed after delist"
        );
    }
    Ok(summary)
}

/// prepare (createFeedDocument, upload), submit (createFeed) while the fake holds its queue, an
/// in-flight check (getFeeds) and a poll then (getFeed: IN_QUEUE), release, poll until DONE (the
/// last poll reads the report: getFeedDocument, download), and an in-flight check after.
async fn feed_round_trip(
    c: &AmazonContract,
    conn: &AmazonConnector,
) -> Result<FeedSummary, String> {
    let amazon = c.sandbox.amazon();
    // Stock for ten SKUs (PATCH), three new listings (UPDATE), one delete (DELETE), and one
    // stock message the fake rejects.
    let mut items: Vec<BulkItem> = (4..=10)
        .map(|i| {
            BulkItem::Stock(StockUpdate {
                sku: sku(&new_sku(i)),
                external_id: None,
                quantity: 60 + u32::try_from(i).unwrap_or(0),
                price: (i % 2 == 0).then(|| usd(&format!("{i}.49"))),
                version: 3,
            })
        })
        .collect();
    items.extend(
        (1..=FEED_NEW_SKUS).map(|i| BulkItem::Listing(listing_for(format!("FD-{i:03}"), i, 7, 1))),
    );
    items.push(BulkItem::Delist(sku(FEED_DELETED_SKU)));
    items.push(BulkItem::Stock(StockUpdate {
        sku: sku(FEED_REJECTED_SKU),
        external_id: None,
        quantity: 1,
        price: None,
        version: 3,
    }));
    amazon.faults().add(
        FaultRule::new(
            "amazon",
            "createFeed",
            FaultKind::reject_skus(
                [FEED_REJECTED_SKU],
                8541,
                "The SKU is blocked for this contract test.",
            ),
        )
        .times(1),
    );

    let draft = conn
        .bulk_prepare(&items)
        .await
        .map_err(|e| format!("bulk_prepare: {e}"))?;
    amazon.hold_feeds(true);
    let submitted = conn.bulk_submit(&draft).await;
    let job = match submitted {
        Ok(job) => job,
        Err(e) => {
            amazon.hold_feeds(false);
            return Err(format!("bulk_submit: {e}"));
        }
    };
    let in_flight_while_held = conn.bulk_in_flight_since(draft.prepared_at_ms).await;
    let held_poll = conn.bulk_poll(&job).await;
    amazon.hold_feeds(false);
    let in_flight_while_held =
        in_flight_while_held.map_err(|e| format!("bulk_in_flight_since: {e}"))?;
    ensure!(
        in_flight_while_held,
        "bulk_in_flight_since says no feed is in flight while feed {} is queued",
        job.id
    );
    let held_poll = held_poll.map_err(|e| format!("bulk_poll while queued: {e}"))?;
    ensure!(
        matches!(held_poll, BulkStatus::Pending { .. }),
        "bulk_poll of a queued feed: {held_poll:?}"
    );
    let mut polls = 1;
    let deadline = Instant::now() + FEED_DEADLINE;
    let outcomes = loop {
        polls += 1;
        match conn
            .bulk_poll(&job)
            .await
            .map_err(|e| format!("bulk_poll: {e}"))?
        {
            BulkStatus::Done { outcomes } => break outcomes,
            BulkStatus::Pending { poll_after } => {
                ensure!(
                    Instant::now() < deadline,
                    "feed {} not DONE after {FEED_DEADLINE:?}",
                    job.id
                );
                tokio::time::sleep(poll_after.min(Duration::from_millis(300))).await;
            }
        }
    };
    ensure!(
        outcomes.len() == items.len(),
        "{} outcomes for a feed of {}",
        outcomes.len(),
        items.len()
    );
    for (item, outcome) in items.iter().zip(&outcomes) {
        let s = item.sku().as_str();
        if s == FEED_REJECTED_SKU {
            ensure!(
                matches!(outcome, ItemOutcome::Rejected { .. }),
                "feed message for {s}: {outcome:?}, expected Rejected"
            );
        } else {
            ensure!(
                matches!(outcome, ItemOutcome::Applied { .. }),
                "feed message for {s}: {outcome:?}"
            );
        }
    }
    for item in &items {
        match item {
            BulkItem::Stock(u) if u.sku.as_str() != FEED_REJECTED_SKU => {
                let shown = amazon.current_quantity(u.sku.as_str());
                ensure!(
                    shown == Some(u.quantity),
                    "after the feed {} shows {shown:?}, not {}",
                    u.sku,
                    u.quantity
                );
            }
            BulkItem::Listing(l) => {
                let shown = amazon.current_quantity(l.sku.as_str());
                ensure!(
                    shown == Some(l.quantity),
                    "after the feed {} shows {shown:?}, not {}",
                    l.sku,
                    l.quantity
                );
            }
            BulkItem::Delist(s) => ensure!(
                amazon.listing(s.as_str()).is_none(),
                "{s} is still listed after the feed deleted it"
            ),
            BulkItem::Stock(_) => {}
        }
    }
    let in_flight_after = conn
        .bulk_in_flight_since(draft.prepared_at_ms)
        .await
        .map_err(|e| format!("bulk_in_flight_since after DONE: {e}"))?;
    ensure!(
        !in_flight_after,
        "bulk_in_flight_since says a feed is in flight after feed {} is DONE",
        job.id
    );
    Ok(FeedSummary {
        feed_id: job.id,
        document_id: draft.document_id,
        messages: items.len(),
        polls,
        in_flight_while_held,
        in_flight_after,
    })
}

/// The feed document as uploaded and the processing report as downloaded.
pub struct FeedDocuments {
    /// The uploaded JSON_LISTINGS_FEED document.
    pub uploaded: Value,
    /// Its size.
    pub uploaded_bytes: usize,
    /// The processing report (gunzipped).
    pub report: Value,
    /// Its size as downloaded.
    pub report_bytes: usize,
    /// Whether it came GZIP-compressed.
    pub report_gzip: bool,
}

/// A hand-made SP-API request through a recorder (and so through Prism), with an access token.
async fn call(
    recorder: &crate::recorder::Recorder,
    token: &str,
    method: &str,
    target: &str,
    body: &str,
) -> crate::http::RawResponse {
    let mut headers = vec![("x-amz-access-token", token)];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json"));
    }
    recorder.send(method, target, &headers, body).await
}

fn json_of(r: &crate::http::RawResponse, what: &str) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", r.text()))
}

/// Reads back what went to and came from the presigned URLs: the uploaded document (one
/// getFeedDocument of the test's own for a download URL) and the processing report, from the URL
/// in the connector's own getFeedDocument answer (recorded in `feed_exchanges`).
pub async fn feed_documents(
    c: &AmazonContract,
    feed: &FeedSummary,
    feed_exchanges: &[Exchange],
) -> FeedDocuments {
    // The report, as the connector was told to fetch it.
    let answer = feed_exchanges
        .iter()
        .rev()
        .find(|e| e.operation == "getFeedDocument" && e.status == 200)
        .expect("the connector called getFeedDocument");
    let answer: Value = serde_json::from_str(&answer.response_body).expect("getFeedDocument JSON");
    let url = answer["url"].as_str().expect("getFeedDocument url");
    let r = c.download(url).await;
    assert_eq!(r.status, 200, "downloading the report: {}", r.text());
    let report_gzip = answer["compressionAlgorithm"] == "GZIP";
    let report_bytes = r.body.len();
    let body = if report_gzip {
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(r.body.as_slice()),
            &mut out,
        )
        .expect("gunzip the report");
        out
    } else {
        r.body
    };
    let report: Value = serde_json::from_slice(&body).expect("the report is JSON");
    assert_eq!(
        report["header"]["feedId"], feed.feed_id,
        "the report is about another feed"
    );

    // The uploaded document.
    let token = c.access_token().await;
    let r = call(
        &c.feeds,
        &token,
        "GET",
        &format!("/feeds/2021-06-30/documents/{}", feed.document_id),
        "",
    )
    .await;
    assert_eq!(
        r.status,
        200,
        "getFeedDocument for the uploaded document: {}",
        r.text()
    );
    let answer = json_of(&r, "getFeedDocument");
    let url = answer["url"].as_str().expect("getFeedDocument url");
    let r = c.download(url).await;
    assert_eq!(r.status, 200, "downloading the feed document: {}", r.text());
    let uploaded: Value = serde_json::from_slice(&r.body).expect("the feed document is JSON");
    FeedDocuments {
        uploaded,
        uploaded_bytes: r.body.len(),
        report,
        report_bytes,
        report_gzip,
    }
}

/// The operations the connector does not call, by hand, so the fake's answers to them are held
/// against the models too: getListingsItem (every includedData; and a 404), getOrder (an FBA
/// order, every dataset omnistock may ask for), and cancelFeed (a feed made by hand and held in
/// the queue; getFeed then says CANCELLED). Returns one line per request.
pub async fn remaining_operations(c: &AmazonContract, summary: &SyncSummary) -> Vec<String> {
    let amazon = c.sandbox.amazon();
    let (seller, marketplace) = (amazon.seller_id(), amazon.marketplace_id());
    let token = c.access_token().await;
    let mut done = Vec::new();

    let item = |sku: &str| {
        format!(
            "/listings/2021-08-01/items/{seller}/{sku}?marketplaceIds={marketplace}\
             &includedData=summaries,attributes,issues,offers,fulfillmentAvailability,procurement,relationships,productTypes&issueLocale=en_US"
        )
    };
    for (sku, expected) in [(new_sku(5), 200), ("NEVER-LISTED".to_owned(), 404)] {
        let r = call(&c.listings, &token, "GET", &item(&sku), "").await;
        assert_eq!(r.status, expected, "getListingsItem {sku}: {}", r.text());
        done.push(format!("getListingsItem {sku} -> {}", r.status));
    }

    let r = call(
        &c.orders,
        &token,
        "GET",
        &format!(
            "/orders/2026-01-01/orders/{}?includedData=FULFILLMENT,PROCEEDS,PACKAGES,CANCELLATION",
            summary.fba_order
        ),
        "",
    )
    .await;
    assert_eq!(
        r.status,
        200,
        "getOrder {}: {}",
        summary.fba_order,
        r.text()
    );
    done.push(format!("getOrder {} (FBA) -> 200", summary.fba_order));

    // A feed of one DELETE, made by hand and cancelled while the fake holds it in the queue.
    let r = call(
        &c.feeds,
        &token,
        "POST",
        "/feeds/2021-06-30/documents",
        r#"{"contentType":"application/json; charset=UTF-8"}"#,
    )
    .await;
    assert_eq!(r.status, 201, "createFeedDocument: {}", r.text());
    let created = json_of(&r, "createFeedDocument");
    let url = created["url"].as_str().expect("url");
    let document = serde_json::json!({
        "header": {"sellerId": seller, "version": "2.0"},
        "messages": [{"messageId": 1, "sku": "NEVER-LISTED", "operationType": "DELETE"}],
    })
    .to_string();
    let target = url
        .strip_prefix(&c.sandbox.base_url())
        .expect("upload URL on the sandbox");
    let r = crate::http::send(
        c.sandbox.addr(),
        "PUT",
        target,
        &[(
            "Content-Type".into(),
            "application/json; charset=UTF-8".into(),
        )],
        document.as_bytes(),
    )
    .await
    .expect("upload");
    assert_eq!(r.status, 200, "upload: {}", r.text());
    amazon.hold_feeds(true);
    let r = call(
        &c.feeds,
        &token,
        "POST",
        "/feeds/2021-06-30/feeds",
        &serde_json::json!({
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": [marketplace],
            "inputFeedDocumentId": created["feedDocumentId"],
        })
        .to_string(),
    )
    .await;
    let feed = json_of(&r, "createFeed");
    let feed_id = feed["feedId"].as_str().unwrap_or_default().to_owned();
    let cancel = if r.status == 202 {
        Some(
            call(
                &c.feeds,
                &token,
                "DELETE",
                &format!("/feeds/2021-06-30/feeds/{feed_id}"),
                "",
            )
            .await,
        )
    } else {
        None
    };
    amazon.hold_feeds(false);
    assert_eq!(r.status, 202, "createFeed: {}", r.text());
    let cancel = cancel.expect("cancelFeed sent");
    assert_eq!(cancel.status, 200, "cancelFeed: {}", cancel.text());
    let r = call(
        &c.feeds,
        &token,
        "GET",
        &format!("/feeds/2021-06-30/feeds/{feed_id}"),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "getFeed: {}", r.text());
    let status = json_of(&r, "getFeed")["processingStatus"].clone();
    assert_eq!(status, "CANCELLED", "feed {feed_id} after cancelFeed");
    done.push(format!(
        "createFeedDocument, upload, createFeed {feed_id} (held), cancelFeed -> 200, getFeed -> {status}"
    ));
    done
}
