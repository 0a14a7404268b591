//! The engine harness: one sandbox per channel on loopback (the channel id's prefix names the
//! marketplace, see [`Kind`]), a fresh database (SQLite or PostgreSQL, from
//! `OMNISTOCK_TEST_DB`), a config file pointing at them, a catalog, and the daemon — in this
//! process ([`Harness::start_daemon`]) or as the real binary ([`Harness::spawn_binary`]) when a
//! test must `kill -9` it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use omnistock::catalog::import::{ImportOptions, import_bytes};
use omnistock::daemon::Daemon;
use omnistock::store::Store;
use omnistock::sync::SyncPlan;
use omnistock_sandbox::amazon::AmazonOptions;
use omnistock_sandbox::ebay::EbayOptions;
use omnistock_sandbox::{AmazonHandle, EbayHandle, RateLimit, Sandbox, SandboxOptions};

use crate::support::{TestDb, fresh_db};

/// The marketplace of a channel, from its id's prefix: `amazon…`, `fb…` (Meta), `shopify…`,
/// `woo…`, `vendure…`; anything else is eBay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// eBay Sell APIs.
    Ebay,
    /// Amazon SP-API.
    Amazon,
    /// Vendure Admin API.
    Vendure,
    /// WooCommerce REST API.
    Woo,
    /// Shopify Admin GraphQL API.
    Shopify,
    /// Meta catalog (Facebook/Instagram shops).
    Meta,
}

/// The webhook secret of every channel section that has one.
pub const WEBHOOK_SECRET: &str = "whsec-engine-tests";

impl Kind {
    /// The kind a channel id names.
    pub fn of(id: &str) -> Kind {
        if id.starts_with("amazon") {
            Kind::Amazon
        } else if id.starts_with("vendure") {
            Kind::Vendure
        } else if id.starts_with("woo") {
            Kind::Woo
        } else if id.starts_with("shopify") {
            Kind::Shopify
        } else if id.starts_with("fb") {
            Kind::Meta
        } else {
            Kind::Ebay
        }
    }

    /// The sandbox's marketplace name (fault rules, records).
    pub fn market(self) -> &'static str {
        match self {
            Kind::Ebay => "ebay",
            Kind::Amazon => "amazon",
            Kind::Vendure => "vendure",
            Kind::Woo => "woo",
            Kind::Shopify => "shopify",
            Kind::Meta => "meta",
        }
    }
}

/// One marketplace account (its own sandbox) as one channel.
pub struct Account {
    /// Channel id.
    pub id: String,
    /// Its sandbox.
    pub sandbox: Sandbox,
}

impl Account {
    /// The account's marketplace.
    pub fn kind(&self) -> Kind {
        Kind::of(&self.id)
    }

    /// True for an Amazon account.
    pub fn is_amazon(&self) -> bool {
        self.kind() == Kind::Amazon
    }

    /// The eBay fake.
    pub fn ebay(&self) -> EbayHandle {
        self.sandbox.ebay()
    }

    /// The Amazon fake.
    pub fn amazon(&self) -> AmazonHandle {
        self.sandbox.amazon()
    }

    /// The quantity the marketplace shows for a SKU.
    pub fn shown(&self, sku: &str) -> Option<u32> {
        match self.kind() {
            Kind::Ebay => self.ebay().current_quantity(sku),
            Kind::Amazon => self.amazon().current_quantity(sku),
            Kind::Vendure => self.sandbox.vendure().current_quantity(sku),
            Kind::Woo => self.sandbox.woo().current_quantity(sku),
            Kind::Shopify => self.sandbox.shopify().current_quantity(sku),
            Kind::Meta => self.sandbox.meta().current_quantity(sku),
        }
    }

    /// Places an order for `qty` of `sku`; returns its id.
    pub fn place_order(&self, sku: &str, qty: u32) -> String {
        let lines = [omnistock_sandbox::OrderLine::new(sku, qty)];
        let r = match self.kind() {
            Kind::Ebay => self.ebay().place_order(&lines),
            Kind::Amazon => self.amazon().place_order(&lines),
            Kind::Vendure => self.sandbox.vendure().place_order(&lines),
            Kind::Woo => self.sandbox.woo().place_order(&lines),
            Kind::Shopify => self.sandbox.shopify().place_order(&lines),
            Kind::Meta => self.sandbox.meta().place_order(&lines),
        };
        r.unwrap_or_else(|e| panic!("{} order of {qty} × {sku}: {e}", self.id))
    }

    /// Cancels an order.
    pub fn cancel_order(&self, id: &str) {
        let r = match self.kind() {
            Kind::Ebay => self.ebay().cancel_order(id),
            Kind::Amazon => self.amazon().cancel_order(id),
            Kind::Vendure => self.sandbox.vendure().cancel_order(id),
            Kind::Woo => self.sandbox.woo().cancel_order(id),
            Kind::Shopify => self.sandbox.shopify().cancel_order(id),
            Kind::Meta => self.sandbox.meta().cancel_order(id),
        };
        r.unwrap_or_else(|e| panic!("{} cancel {id}: {e}", self.id))
    }

    /// Changes the quantity on the marketplace behind omnistock's back (drift).
    pub fn set_out_of_band(&self, sku: &str, qty: u32) {
        let r = match self.kind() {
            Kind::Ebay => self.ebay().set_quantity_out_of_band(sku, qty),
            Kind::Amazon => self.amazon().set_quantity_out_of_band(sku, qty),
            Kind::Vendure => self.sandbox.vendure().set_quantity_out_of_band(sku, qty),
            Kind::Woo => self.sandbox.woo().set_quantity_out_of_band(sku, qty),
            Kind::Shopify => self.sandbox.shopify().set_quantity_out_of_band(sku, qty),
            Kind::Meta => self.sandbox.meta().set_quantity_out_of_band(sku, qty),
        };
        r.unwrap_or_else(|e| panic!("{} drift {sku}: {e}", self.id))
    }

    /// Throttled answers the marketplace gave (429s or their equivalent).
    pub fn count_429(&self) -> u64 {
        match self.kind() {
            Kind::Ebay => self.ebay().count_429(),
            Kind::Amazon => self.amazon().count_429(),
            Kind::Vendure => self.sandbox.vendure().count_429(),
            Kind::Woo => self.sandbox.woo().count_429(),
            Kind::Shopify => self.sandbox.shopify().count_429(),
            Kind::Meta => self.sandbox.meta().count_429(),
        }
    }

    /// Tightens the marketplace's own throttling model so the connector must pace itself.
    pub fn throttle(&self) {
        match self.kind() {
            Kind::Ebay => {
                for group in [
                    omnistock_sandbox::ebay::GROUP_INVENTORY,
                    omnistock_sandbox::ebay::GROUP_FULFILLMENT,
                ] {
                    self.ebay()
                        .set_rate_limit(group, Some(RateLimit::new(2.0, 2)));
                }
            }
            Kind::Amazon => {
                for op in ["patchListingsItem", "putListingsItem", "searchOrders"] {
                    self.amazon()
                        .set_rate_limit(op, Some(RateLimit::new(2.0, 2)));
                }
            }
            // Vendure documents no rate limits; the stories' 429 storm is its throttling test.
            Kind::Vendure => {}
            // A WAF in front of the shop: 3 requests/s, then 429 with Retry-After.
            Kind::Woo => self
                .sandbox
                .woo()
                .set_rate_limit(Some(RateLimit::new(3.0, 3))),
            // A small shop's cost bucket: 100 points, restoring 10 a second.
            Kind::Shopify => self
                .sandbox
                .shopify()
                .set_cost_limits(100.0, 10.0)
                .expect("cost limits"),
            // Catalog batch calls: 6 per 10 s for this catalog.
            Kind::Meta => self.sandbox.meta().set_buc_limit(
                "catalog_batch",
                Some(omnistock_sandbox::BucLimit::new(6, 10)),
            ),
        }
    }

    /// Points the marketplace's webhooks at `url`, signed with the channel's secret; false for
    /// marketplaces that send none.
    pub fn set_webhook(&self, url: &str) -> bool {
        let target = omnistock_sandbox::WebhookTarget {
            url: url.to_owned(),
            secret: WEBHOOK_SECRET.to_owned(),
            duplicate_probability: 1.0,
            max_jitter_ms: 50,
        };
        match self.kind() {
            Kind::Woo => self.sandbox.woo().set_webhook(Some(target)),
            Kind::Shopify => self.sandbox.shopify().set_webhook(Some(target)),
            Kind::Meta => {
                let secret = self.sandbox.meta().credentials().app_secret;
                self.sandbox
                    .meta()
                    .set_webhook(Some(omnistock_sandbox::WebhookTarget { secret, ..target }))
            }
            Kind::Ebay | Kind::Amazon | Kind::Vendure => return false,
        }
        true
    }

    /// Every write the marketplace applied to `sku`, oldest first.
    pub fn writes_for(&self, sku: &str) -> Vec<omnistock_sandbox::WriteRecord> {
        self.sandbox
            .writes()
            .into_iter()
            .filter(|w| w.sku == sku)
            .collect()
    }

    /// The channel section's marketplace-specific keys.
    fn section(&self, setup: &Setup) -> String {
        let base = self.sandbox.base_url();
        match self.kind() {
            Kind::Shopify => {
                let creds = self.sandbox.shopify().credentials();
                format!(
                    "type = \"shopify\"\nendpoint = \"{base}/shopify\"\naccess_token = \"{}\"\n\
                     location_id = \"{}\"\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n",
                    creds.access_token, creds.location_id,
                )
            }
            Kind::Meta => {
                let creds = self.sandbox.meta().credentials();
                format!(
                    "type = \"facebook\"\nendpoint = \"{}\"\ncatalog_id = \"{}\"\n\
                     access_token = \"{}\"\napp_secret = \"{}\"\n\
                     commerce_account_id = \"{}\"\norders_enabled = true\n\
                     link_template = \"https://shop.example/p/{{sku}}\"\n",
                    omnistock_sandbox::MetaHandle::endpoint(&base),
                    creds.catalog_id,
                    creds.access_token,
                    creds.app_secret,
                    creds.commerce_account_id,
                )
            }
            Kind::Woo => {
                let w = self.sandbox.woo();
                let creds = w.credentials();
                format!(
                    "type = \"woocommerce\"\nendpoint = \"{}\"\nconsumer_key = \"{}\"\n\
                     consumer_secret = \"{}\"\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n",
                    w.site_url(),
                    creds.consumer_key,
                    creds.consumer_secret,
                )
            }
            Kind::Vendure => {
                let v = self.sandbox.vendure();
                let creds = v.credentials();
                format!(
                    "type = \"vendure\"\nendpoint = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n",
                    v.admin_api_url(),
                    creds.username,
                    creds.password,
                )
            }
            Kind::Amazon => {
                let creds = self.amazon().credentials();
                let base = format!("{base}/amazon");
                format!(
                    "type = \"amazon\"\nendpoint = \"{base}\"\n\
                     token_endpoint = \"{base}/auth/o2/token\"\nseller_id = \"{}\"\n\
                     marketplace_ids = [\"{}\"]\n\
                     client_id = \"{}\"\nclient_secret = \"{}\"\nrefresh_token = \"{}\"\n\
                     sandbox = true\nfeed_processing_secs = {}\n",
                    self.amazon().seller_id(),
                    self.amazon().marketplace_id(),
                    creds.client_id,
                    creds.client_secret,
                    creds.refresh_token,
                    setup.feed_processing_secs,
                )
            }
            Kind::Ebay => {
                let creds = self.ebay().credentials();
                let base = format!("{base}/ebay");
                format!(
                    "type = \"ebay\"\nendpoint = \"{base}\"\n\
                     token_endpoint = \"{base}/identity/v1/oauth2/token\"\n\
                     client_id = \"{}\"\nclient_secret = \"{}\"\nrefresh_token = \"{}\"\n\
                     marketplace_id = \"EBAY_US\"\nmerchant_location_key = \"main\"\n\
                     policies = {{ fulfillment = \"f\", payment = \"p\", return = \"r\" }}\n\
                     category_id = \"29792\"\n",
                    creds.client_id, creds.client_secret, creds.refresh_token,
                )
            }
        }
    }
}

/// Settings of a harness.
#[derive(Clone)]
pub struct Setup {
    /// Channel ids, one sandbox each.
    pub channels: Vec<&'static str>,
    /// eBay fake options (rate limits …).
    pub ebay: EbayOptions,
    /// Amazon fake options (rate limits, feed processing time …).
    pub amazon: AmazonOptions,
    /// Simulated latency.
    pub latency: Duration,
    /// `limits = { … }` inline table for every channel.
    pub limits: &'static str,
    /// Catalog rows (`sku,title,price,quantity`), generated when empty.
    pub skus: usize,
    /// Stock of each generated SKU.
    pub quantity: i64,
    /// Extra lines for each channel section.
    pub channel_extra: &'static str,
    /// Amazon channels' `feed_processing_secs` (what the connector expects a feed to take).
    pub feed_processing_secs: u64,
    /// Every channel's `poll_interval_secs`.
    pub poll_interval_secs: u64,
    /// Adjusts each account's sandbox options (the new fakes' throttling models, seeds …).
    pub sandbox: fn(&mut SandboxOptions),
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            channels: vec!["ebay_us", "ebay_de"],
            ebay: EbayOptions::unlimited(),
            amazon: AmazonOptions::unlimited(),
            latency: Duration::ZERO,
            limits: "{ retry_max_secs = 2, timeout_secs = 5 }",
            skus: 10,
            quantity: 10,
            channel_extra: "",
            feed_processing_secs: 180,
            poll_interval_secs: 1,
            sandbox: |_| {},
        }
    }
}

/// A running test world.
pub struct Harness {
    /// The database.
    pub db: TestDb,
    /// The accounts.
    pub accounts: Vec<Account>,
    /// The config file.
    pub config_path: PathBuf,
    /// An open store (for assertions and catalog changes).
    pub store: Store,
    /// The plan of the config.
    pub plan: SyncPlan,
    /// The in-process daemon, when started.
    pub daemon: Option<Daemon>,
    /// The daemon binary, when spawned.
    pub child: Option<Child>,
    /// SKUs of the catalog.
    pub skus: Vec<String>,
}

/// Generated SKU names: `SKU-000` …
pub fn sku(i: usize) -> String {
    format!("SKU-{i:03}")
}

impl Harness {
    /// Starts the sandboxes, writes the config, imports the catalog. The daemon is not started.
    pub async fn new(setup: Setup) -> Harness {
        Harness::new_on(setup, fresh_db().await).await
    }

    /// [`Harness::new`] on a given database (a private PostgreSQL cluster, …).
    pub async fn new_on(setup: Setup, db: TestDb) -> Harness {
        let mut accounts = Vec::new();
        for id in &setup.channels {
            let mut opts = SandboxOptions {
                latency: setup.latency,
                ebay: setup.ebay.clone(),
                amazon: setup.amazon.clone(),
                meta: omnistock_sandbox::MetaOptions::unlimited(),
                shopify: omnistock_sandbox::ShopifyOptions::unlimited(),
                woo: omnistock_sandbox::WooOptions::unlimited(),
                ..SandboxOptions::default()
            };
            (setup.sandbox)(&mut opts);
            let sandbox = Sandbox::start(opts).await.expect("start sandbox");
            accounts.push(Account {
                id: (*id).to_owned(),
                sandbox,
            });
        }
        let config_path = db.dir.path().join("omnistock.toml");
        let mut text = format!(
            "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\nlease_secs = 3\nshutdown_timeout_secs = 5\n\n\
             [[locations]]\nid = \"main\"\n",
            db.url
        );
        for a in &accounts {
            text.push_str(&format!(
                "\n[channels.{id}]\n{}poll_interval_secs = {}\norder_overlap_secs = 5\n\
                 stock = {{ buffer = 0 }}\nlimits = {}\n{}\n",
                a.section(&setup),
                setup.poll_interval_secs,
                setup.limits,
                setup.channel_extra,
                id = a.id,
            ));
        }
        std::fs::write(&config_path, text).expect("write config");
        let config = omnistock::config::load(&config_path).expect("valid config");
        let plan = SyncPlan::from_config(&config);
        let store = Store::open(&db.url).await.expect("open store");
        omnistock::catalog::sync_locations(&store, &[("main".into(), "Main".into())])
            .await
            .expect("locations");
        // Meta needs an image to create an item, as most marketplaces do.
        let mut csv = String::from("sku,title,price,quantity,image_urls\n");
        let skus: Vec<String> = (0..setup.skus).map(sku).collect();
        for s in &skus {
            csv.push_str(&format!(
                "{s},Item {s},12.50,{},https://img.example.com/{s}.jpg\n",
                setup.quantity
            ));
        }
        import_bytes(
            &store,
            &plan,
            csv.as_bytes(),
            &ImportOptions {
                dry_run: false,
                default_location: "main".into(),
                locations: vec!["main".into()],
                default_currency: "USD".into(),
            },
        )
        .await
        .expect("import");
        Harness {
            db,
            accounts,
            config_path,
            store,
            plan,
            daemon: None,
            child: None,
            skus,
        }
    }

    /// Starts the daemon in this process.
    pub async fn start_daemon(&mut self) {
        self.daemon = Some(
            Daemon::start(&self.config_path)
                .await
                .expect("daemon starts"),
        );
    }

    /// Stops the in-process daemon cleanly.
    pub async fn stop_daemon(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await;
        }
    }

    /// Spawns `omnistock run` as a child process.
    pub fn spawn_binary(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.db.dir.path().join("daemon.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_omnistock"))
            .arg("--config")
            .arg(&self.config_path)
            .arg("run")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.child = Some(child);
    }

    /// `kill -9` of the spawned daemon.
    pub fn kill_binary(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// Runs the CLI with arguments; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_omnistock"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .output()
            .expect("run omnistock");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The account of a channel.
    pub fn account(&self, id: &str) -> &Account {
        self.accounts
            .iter()
            .find(|a| a.id == id)
            .expect("known channel")
    }

    /// (desired_qty, dirty) of a channel item; (-1, true) when the row does not exist.
    pub async fn desired(&self, channel: &str, sku: &str) -> (i64, bool) {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT desired_qty, desired_version, pushed_version FROM channel_items WHERE channel = $1 AND sku = $2",
        )
        .bind(channel)
        .bind(sku)
        .fetch_optional(self.store.pool())
        .await
        .expect("desired");
        row.map(|(q, dv, pv)| (q, dv > pv)).unwrap_or((-1, true))
    }

    /// True when every channel shows every SKU's desired quantity and nothing is pending (other
    /// than quarantined items, which are listed in `except`).
    pub async fn converged(&self, except: &[&str]) -> bool {
        for a in &self.accounts {
            let rows: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
                "SELECT sku, desired_qty, desired_version, pushed_version, state FROM channel_items WHERE channel = $1",
            )
            .bind(&a.id)
            .fetch_all(self.store.pool())
            .await
            .expect("channel items");
            if rows.len() != self.skus.len() {
                return false;
            }
            for (sku, qty, dv, pv, _) in rows {
                if except.contains(&sku.as_str()) {
                    continue;
                }
                if dv > pv || a.shown(&sku) != u32::try_from(qty).ok() {
                    return false;
                }
            }
        }
        true
    }

    /// Waits (bounded) until [`Harness::converged`].
    pub async fn wait_converged(&self, timeout: Duration, except: &[&str]) {
        let deadline = Instant::now() + timeout;
        while !self.converged(except).await {
            if Instant::now() > deadline {
                let mut detail = String::new();
                for a in &self.accounts {
                    for s in self.skus.iter().take(40) {
                        let (want, dirty) = self.desired(&a.id, s).await;
                        let shown = a.shown(s);
                        if shown != u32::try_from(want).ok() || dirty {
                            detail.push_str(&format!(
                                "\n  {} {s}: want {want} dirty {dirty} shown {shown:?}",
                                a.id
                            ));
                        }
                    }
                }
                panic!("not converged within {timeout:?}:{detail}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits (bounded) for a condition read from the database or the sandbox.
    pub async fn eventually<F, Fut>(&self, what: &str, timeout: Duration, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while !f().await {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops everything.
    pub async fn finish(mut self) {
        self.stop_daemon().await;
        self.kill_binary();
        self.store.close().await;
        for a in std::mem::take(&mut self.accounts) {
            a.sandbox.shutdown().await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.kill_binary();
    }
}
