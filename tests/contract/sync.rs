//! The eBay connector's full sync, driven through the contract guard: every method of the
//! `Connector` trait, with batches that split at eBay's 25-entry bulk limit and answers that page.

use omnistock_connectors::ebay::{EbayConfig, EbayConnector, EbayPolicies};
use omnistock_connectors::{
    Connector, Currency, ItemOutcome, Limits, ListingUpdate, Money, Secret, Sku, StockUpdate,
};
use omnistock_sandbox::{OrderLine, SeedListing};

use crate::{EbayContract, applied};
use omnistock::store::now_ms;

/// SKUs the test lists through the connector (more than one bulk call's 25).
pub const NEW_SKUS: usize = 30;
/// Listings the seller had before (seeded in the sandbox, no writes), so the snapshot pages:
/// with the connector's 200 per page, 30 + 190 items make two pages.
pub const EXISTING_SKUS: usize = 190;
/// Orders placed in the sandbox; more than one getOrders page of 200.
pub const ORDERS: usize = 230;

/// What the sync did, for the report.
#[derive(Debug, Default)]
pub struct SyncSummary {
    /// Items per push_listings call.
    pub listing_batches: Vec<usize>,
    /// Items per push_stock call.
    pub stock_batches: Vec<usize>,
    /// Orders fetched, and over how many pages.
    pub orders: (usize, usize),
    /// Items in the snapshot, and over how many pages.
    pub snapshot: (usize, usize),
    /// SKUs delisted.
    pub delisted: usize,
    /// The healthcheck's summary line.
    pub health: String,
}

/// The listings that exist before the test.
pub fn existing_listings() -> Vec<SeedListing> {
    (0..EXISTING_SKUS)
        .map(|i| SeedListing::new(format!("OLD-{i:04}"), 40, "9.50"))
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

fn listing(i: usize, quantity: u32, version: i64) -> ListingUpdate {
    let sku_text = new_sku(i);
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

/// The connector pointed at the recorders (→ Prism → sandbox), the token endpoint straight at the
/// sandbox (it is in neither spec).
pub fn connector(c: &EbayContract) -> EbayConnector {
    let creds = c.sandbox.ebay().credentials();
    EbayConnector::new(EbayConfig {
        endpoint: c.inventory.url.clone(),
        fulfillment_endpoint: Some(c.fulfillment.url.clone()),
        token_endpoint: c.token_endpoint(),
        client_id: creds.client_id,
        client_secret: Secret::new(creds.client_secret),
        refresh_token: Secret::new(creds.refresh_token),
        scopes: Vec::new(),
        marketplace_id: omnistock_sandbox::ebay::DEFAULT_MARKETPLACE_ID.into(),
        merchant_location_key: omnistock_sandbox::ebay::DEFAULT_LOCATION_KEY.into(),
        policies: EbayPolicies {
            fulfillment: "6196932000".into(),
            payment: "6196933000".into(),
            return_policy: "6196934000".into(),
        },
        category_id: Some("30120".into()),
        content_language: EbayConfig::DEFAULT_CONTENT_LANGUAGE.into(),
        withdraw_at_zero: false,
        // This test is about shapes, not pacing: no waiting on the daily-quota budgets.
        limits: Limits {
            rate_per_sec: 1000.0,
            burst: 1000,
            ..EbayConnector::DEFAULT_LIMITS
        },
    })
    .expect("the eBay connector accepts the config")
}

/// Lists, restocks and reprices, sells, snapshots and delists through the connector.
/// Fails with a message at the first step that goes wrong.
pub async fn full_sync(c: &EbayContract) -> Result<SyncSummary, String> {
    let ebay = c.sandbox.ebay();
    let conn = connector(c);
    let caps = conn.capabilities();
    let mut summary = SyncSummary::default();
    let started_ms = now_ms() - 60_000;

    summary.health = conn
        .healthcheck()
        .await
        .map_err(|e| format!("healthcheck: {e}"))?
        .summary;

    // 1. List 30 new SKUs (inventory item, offer, publish), batches as the dispatcher cuts them.
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

    // 2. Stock and price for all of them plus two listings the seller made before omnistock
    //    (their offers are found with getOffers): 32 updates → bulk calls of 25 and 7.
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
        let shown = ebay.current_quantity(u.sku.as_str());
        ensure!(
            shown == Some(u.quantity),
            "after push_stock {} shows {shown:?}, not {}",
            u.sku,
            u.quantity
        );
    }

    // 3. Buyers check out: 230 one- or two-line orders; some cancelled, some shipped.
    let mut order_ids = Vec::with_capacity(ORDERS);
    for n in 0..ORDERS {
        let mut lines = vec![OrderLine::new(new_sku(n % NEW_SKUS + 1), 1)];
        if n.is_multiple_of(7) {
            lines.push(OrderLine::new(new_sku((n + 3) % NEW_SKUS + 1), 2));
        }
        order_ids.push(ebay.place_order(&lines).expect("place an order"));
    }
    for id in order_ids.iter().step_by(40) {
        ebay.cancel_order(id).expect("cancel");
    }
    for id in order_ids.iter().skip(3).step_by(25) {
        ebay.ship_order(id).expect("ship");
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
        pages >= 2,
        "orders came on {pages} page(s); the test wants paging"
    );
    summary.orders = (fetched.len(), pages);

    // 4. What the channel shows: every page of the inventory.
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
        if page.is_none() || pages > 20 {
            break;
        }
    }
    ensure!(
        items.len() == NEW_SKUS + EXISTING_SKUS,
        "the snapshot has {} items, the sandbox {}",
        items.len(),
        NEW_SKUS + EXISTING_SKUS
    );
    ensure!(pages >= 2, "the snapshot came on {pages} page(s)");
    for item in &items {
        let shown = ebay.current_quantity(item.sku.as_str());
        ensure!(
            item.quantity == shown,
            "the snapshot says {} shows {:?}, the sandbox {shown:?}",
            item.sku,
            item.quantity
        );
    }
    summary.snapshot = (items.len(), pages);

    // 5. Take three off sale, list one of them again, and see a stock push for another come back
    //    NotListed (the dispatcher would then send the listing).
    let gone: Vec<Sku> = (1..=3).map(|i| sku(&new_sku(i))).collect();
    let outcomes = conn
        .delist(&gone)
        .await
        .map_err(|e| format!("delist: {e}"))?;
    let names: Vec<String> = gone.iter().map(Sku::to_string).collect();
    applied("delist", &names, &outcomes)?;
    summary.delisted = gone.len();
    for s in &gone {
        let l = ebay.listing(s.as_str()).expect("item kept");
        ensure!(
            l.listing_id.is_none(),
            "{s} still has listing {:?}",
            l.listing_id
        );
    }
    let outcomes = conn
        .push_listings(&[listing(1, 12, 3)])
        .await
        .map_err(|e| format!("relist: {e}"))?;
    applied("relist", &[new_sku(1)], &outcomes)?;
    let outcomes = conn
        .push_stock(&[StockUpdate {
            sku: sku(&new_sku(2)),
            external_id: None,
            quantity: 5,
            price: None,
            version: 3,
        }])
        .await
        .map_err(|e| format!("push_stock on a delisted SKU: {e}"))?;
    ensure!(
        matches!(outcomes.first(), Some(ItemOutcome::NotListed { .. })),
        "push_stock on a delisted SKU: {outcomes:?}"
    );
    Ok(summary)
}
