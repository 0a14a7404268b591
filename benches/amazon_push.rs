//! Amazon: items per minute pushed at the documented limits, per-item patches vs JSON_LISTINGS_FEED.
//!
//! `cargo bench --bench amazon_push` (env `OMNISTOCK_BENCH_SKUS`, default 10000;
//! `OMNISTOCK_BENCH_PATCH_SECS`, default 60; `OMNISTOCK_BENCH_FEED_SECS`, the sandbox's feed
//! processing time, default 2).
//!
//! Setup: the Amazon fake with the **production usage plans** enforced as token buckets
//! (patchListingsItem 5/s burst 5, createFeed 0.0083/s burst 15 plus JSON_LISTINGS_FEED 5 per 5 min,
//! getFeed 2/s, getFeedDocument 0.0222/s …), N listings already live there and in the catalog, then
//! one import that changes every SKU's quantity — N dirty stock updates. The connector runs its
//! production plan; the dispatcher is the daemon's.
//!
//! - **patches**: the bulk path is switched off (a wrapper answers `bulk_choice = 0`); the
//!   dispatcher pushes for `OMNISTOCK_BENCH_PATCH_SECS` and the rate is extrapolated to N (the
//!   bound is 5 patches/s = 300 items/min whatever we do, so running 33 minutes proves nothing
//!   more).
//! - **feeds**: the connector chooses (it picks one feed for all N); timed until every item is
//!   confirmed. The sandbox processes a feed in `OMNISTOCK_BENCH_FEED_SECS`; real Amazon takes
//!   minutes, so the figure printed beside it is the bound with a given processing time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use omnistock::catalog::import::{ImportOptions, import_bytes};
use omnistock::store::Store;
use omnistock::store::lease::{Lease, channel_lease};
use omnistock::sync::SyncPlan;
use omnistock::sync::bulk::BulkRunner;
use omnistock::sync::dispatch::{Dispatcher, PushCounters};
use omnistock_connectors::{
    Capabilities, Connector, ConnectorError, Health, ItemOutcome, ListingUpdate, OrdersPage, Sku,
    SnapshotPage, StockUpdate,
};
use omnistock_sandbox::amazon::{AmazonOptions, AmazonSeedListing};
use omnistock_sandbox::{Sandbox, SandboxOptions};
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The connector with its bulk path hidden: every item goes by patch.
struct PatchesOnly(Arc<dyn Connector>);

#[async_trait]
impl Connector for PatchesOnly {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_bulk_batch: 0,
            ..self.0.capabilities()
        }
    }
    async fn push_stock(&self, items: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.0.push_stock(items).await
    }
    async fn push_listings(
        &self,
        items: &[ListingUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.0.push_listings(items).await
    }
    async fn delist(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        self.0.delist(skus).await
    }
    async fn fetch_orders(
        &self,
        since_ms: i64,
        page: Option<String>,
    ) -> Result<OrdersPage, ConnectorError> {
        self.0.fetch_orders(since_ms, page).await
    }
    async fn snapshot_page(&self, page: Option<String>) -> Result<SnapshotPage, ConnectorError> {
        self.0.snapshot_page(page).await
    }
    async fn healthcheck(&self) -> Result<Health, ConnectorError> {
        self.0.healthcheck().await
    }
}

struct World {
    _dir: tempfile::TempDir,
    sandbox: Sandbox,
    store: Store,
    spec: omnistock::sync::engine::ChannelSpec,
}

async fn world(n: usize, feed_secs: u64) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut listings = Vec::with_capacity(n);
    let mut csv = String::from("sku,title,price,quantity\n");
    let mut csv2 = String::from("sku,title,price,quantity\n");
    for i in 0..n {
        let sku = format!("BENCH-{i:06}");
        listings.push(AmazonSeedListing::new(&sku, 10, "12.50"));
        csv.push_str(&format!("{sku},Item {i},12.50,10\n"));
        csv2.push_str(&format!("{sku},Item {i},12.50,{}\n", 3 + i % 5));
    }
    let sandbox = Sandbox::start(SandboxOptions {
        amazon: AmazonOptions {
            listings,
            feed_processing: Duration::from_secs(feed_secs),
            ..AmazonOptions::default()
        },
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    let amz = sandbox.amazon();
    let creds = amz.credentials();
    let base = format!("{}/amazon", sandbox.base_url());
    let db = dir.path().join("bench.db");
    let text = format!(
        "[daemon]\ndatabase = \"sqlite://{}\"\n\n[[locations]]\nid = \"main\"\n\n\
         [channels.amazon_us]\ntype = \"amazon\"\nendpoint = \"{base}\"\n\
         token_endpoint = \"{base}/auth/o2/token\"\nseller_id = \"{}\"\nmarketplace_ids = [\"{}\"]\n\
         client_id = \"{}\"\nclient_secret = \"{}\"\nrefresh_token = \"{}\"\n\
         feed_processing_secs = {feed_secs}\n",
        db.display(),
        amz.seller_id(),
        amz.marketplace_id(),
        creds.client_id,
        creds.client_secret,
        creds.refresh_token
    );
    let path = dir.path().join("omnistock.toml");
    std::fs::write(&path, text).expect("config");
    let config = omnistock::config::load(&path).expect("config");
    let plan = SyncPlan::from_config(&config);
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .expect("store");
    omnistock::catalog::sync_locations(&store, &[("main".into(), "Main".into())])
        .await
        .expect("locations");
    let opts = ImportOptions {
        dry_run: false,
        default_location: "main".into(),
        locations: vec!["main".into()],
        default_currency: "USD".into(),
    };
    import_bytes(&store, &plan, csv.as_bytes(), &opts)
        .await
        .expect("import");
    // As after an earlier sync: what is desired now is live on Amazon.
    sqlx::query(
        "UPDATE channel_items SET pushed_version = desired_version, pushed_json = desired_json, \
         pushed_qty = desired_qty",
    )
    .execute(store.pool())
    .await
    .expect("mark pushed");
    import_bytes(&store, &plan, csv2.as_bytes(), &opts)
        .await
        .expect("re-import");
    let cfg = &config.channels["amazon_us"];
    let spec = omnistock::sync::channels::spec("amazon_us", cfg, 30).expect("spec");
    World {
        _dir: dir,
        sandbox,
        store,
        spec,
    }
}

async fn confirmed(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM channel_items WHERE desired_version <= pushed_version")
        .fetch_one(store.pool())
        .await
        .expect("count")
}

fn dispatcher(w: &World, connector: Arc<dyn Connector>) -> Arc<Dispatcher> {
    Arc::new(Dispatcher {
        channel: "amazon_us".into(),
        connector,
        store: w.store.clone(),
        options: w.spec.dispatch.clone(),
        counters: Arc::new(Mutex::new(PushCounters::default())),
        bulk: BulkRunner::new(CancellationToken::new()),
        gate: None,
    })
}

async fn lease(w: &World) -> Lease {
    Lease::acquire(
        &w.store,
        &channel_lease("amazon_us"),
        "bench",
        Duration::from_secs(3600),
    )
    .await
    .expect("lease")
    .expect("free")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env("OMNISTOCK_BENCH_SKUS", 10_000) as usize;
    let patch_secs = env("OMNISTOCK_BENCH_PATCH_SECS", 60);
    let feed_secs = env("OMNISTOCK_BENCH_FEED_SECS", 2);
    println!("amazon_push: {n} SKUs, production usage plans enforced by the sandbox");

    // Per-item patches.
    let w = world(n, feed_secs).await;
    let l = lease(&w).await;
    let d = dispatcher(&w, Arc::new(PatchesOnly(Arc::clone(&w.spec.connector))));
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(patch_secs);
    let _ = d.drain(&l, None, deadline, |_| {}).await;
    let secs = t0.elapsed().as_secs_f64();
    let done = confirmed(&w.store).await as f64;
    let per_min = done / secs * 60.0;
    let amz = w.sandbox.amazon();
    println!(
        "patches: {done:.0} items in {secs:.1} s = {per_min:.0} items/min ({} patch calls, {} 429s); \
         {n} items ≈ {:.1} min (bound: 5/s = 300 items/min, {:.1} min)",
        amz.request_count("patchListingsItem"),
        amz.count_429(),
        n as f64 / per_min,
        n as f64 / 300.0
    );
    w.sandbox.shutdown().await;

    // Feeds, chosen by the connector.
    let w = world(n, feed_secs).await;
    let l = lease(&w).await;
    let d = dispatcher(&w, Arc::clone(&w.spec.connector));
    let t0 = Instant::now();
    let _ = d
        .drain(&l, None, t0 + Duration::from_secs(1800), |_| {})
        .await;
    let secs = t0.elapsed().as_secs_f64();
    let done = confirmed(&w.store).await;
    let amz = w.sandbox.amazon();
    let feeds = amz.feeds();
    println!(
        "feeds:   {done} items in {secs:.1} s = {:.0} items/min ({} feed(s) of {:?} messages, {} patch calls, {} 429s; \
         sandbox processes a feed in {feed_secs} s)",
        done as f64 / secs * 60.0,
        feeds.len(),
        feeds.iter().map(|f| f.messages).collect::<Vec<_>>(),
        amz.request_count("patchListingsItem"),
        amz.count_429()
    );
    println!(
        "         bound at Amazon's limits: 25,000 messages per feed, 5 feeds per 5 min → \
         25,000 items/min sustained; with P minutes of processing one feed of {n} takes ≈ P min"
    );
    w.sandbox.shutdown().await;
}
