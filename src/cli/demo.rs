//! `omnistock demo`: the whole loop on one machine, no accounts needed.
//!
//! Starts the sandbox marketplaces on loopback ports (two eBay seller accounts — a US and a German
//! site — and an Amazon US seller account, each its own stateful fake; Meta and a web store join
//! as their connectors land). The Amazon fake enforces the usage plan of Amazon's SP-API sandbox
//! hosts (5 requests/s, burst 15 per operation), which the channel is configured for. It writes a config into a temporary directory, imports the sample catalog into a fresh
//! SQLite file, and starts the daemon in this process. Then it places orders on the sandboxes the
//! way buyers would and prints, as it happens, each order and how many milliseconds passed until
//! *every* channel showed the new quantity. It ends with a cancellation (stock comes back
//! everywhere), prints a summary and exits 0 — or non-zero when something did not converge.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use omnistock_sandbox::amazon::AmazonOptions;
use omnistock_sandbox::ebay::OrderLine;
use omnistock_sandbox::{Sandbox, SandboxOptions};

use crate::catalog::import::{ImportOptions, import_bytes};
use crate::daemon::Daemon;
use crate::store::Store;

/// The sample catalog (also used by `scripts/demo` and the README).
const CATALOG: &[u8] = include_bytes!("../../config/demo-catalog.csv");

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Orders to place.
    #[arg(long, default_value_t = 8)]
    pub orders: u32,
    /// Simulated network latency of every marketplace request, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub latency_ms: u64,
    /// Seconds between order polls. Channels that send webhooks (Meta, Shopify, WooCommerce) are
    /// polled at once when one arrives.
    #[arg(long, default_value_t = 1)]
    pub poll_secs: u64,
    /// Do not point the sandboxes' webhooks at the daemon: every channel is polled only (to
    /// compare propagation times with and without webhooks).
    #[arg(long)]
    pub no_webhooks: bool,
    /// Run only these channels (comma-separated ids: ebay_us, ebay_de, amazon_us, facebook,
    /// shopify, woo_shop, vendure_shop); all of them by default.
    #[arg(long, value_delimiter = ',')]
    pub channels: Vec<String>,
    /// Give up on one order's propagation after this many seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Seed of the order picker.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// The marketplaces the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ebay,
    Amazon,
    Meta,
    Shopify,
    WooCommerce,
    Vendure,
}

/// The demo channels' webhook secret (the sandboxes sign with it, the daemon checks it).
const WEBHOOK_SECRET: &str = "demo-webhook-secret";

struct Channel {
    id: &'static str,
    /// eBay site or Amazon marketplace id.
    site: &'static str,
    language: &'static str,
    kind: Kind,
    sandbox: Sandbox,
}

impl Channel {
    fn shown(&self, sku: &str) -> Option<u32> {
        match self.kind {
            Kind::Ebay => self.sandbox.ebay().current_quantity(sku),
            Kind::Amazon => self.sandbox.amazon().current_quantity(sku),
            Kind::Meta => self.sandbox.meta().current_quantity(sku),
            Kind::Shopify => self.sandbox.shopify().current_quantity(sku),
            Kind::WooCommerce => self.sandbox.woo().current_quantity(sku),
            Kind::Vendure => self.sandbox.vendure().current_quantity(sku),
        }
    }

    fn place_order(&self, lines: &[OrderLine]) -> Result<String> {
        let r = match self.kind {
            Kind::Ebay => self.sandbox.ebay().place_order(lines),
            Kind::Amazon => self.sandbox.amazon().place_order(lines),
            Kind::Meta => self.sandbox.meta().place_order(lines),
            Kind::Shopify => self.sandbox.shopify().place_order(lines),
            Kind::WooCommerce => self.sandbox.woo().place_order(lines),
            Kind::Vendure => self.sandbox.vendure().place_order(lines),
        };
        r.map_err(|e| anyhow::anyhow!("placing an order on {}: {e}", self.id))
    }

    fn cancel_order(&self, id: &str) -> Result<()> {
        let r = match self.kind {
            Kind::Ebay => self.sandbox.ebay().cancel_order(id),
            Kind::Amazon => self.sandbox.amazon().cancel_order(id),
            Kind::Meta => self.sandbox.meta().cancel_order(id),
            Kind::Shopify => self.sandbox.shopify().cancel_order(id),
            Kind::WooCommerce => self.sandbox.woo().cancel_order(id),
            Kind::Vendure => self.sandbox.vendure().cancel_order(id),
        };
        r.map_err(|e| anyhow::anyhow!("cancelling on {}: {e}", self.id))
    }

    /// Points the fake's webhooks at the daemon; false for marketplaces without webhooks.
    fn set_webhook(&self, daemon: std::net::SocketAddr) -> bool {
        let target = omnistock_sandbox::WebhookTarget::new(
            format!("http://{daemon}/webhooks/{}", self.id),
            WEBHOOK_SECRET,
        );
        match self.kind {
            Kind::Meta => {
                let secret = self.sandbox.meta().credentials().app_secret;
                self.sandbox
                    .meta()
                    .set_webhook(Some(omnistock_sandbox::WebhookTarget { secret, ..target }))
            }
            Kind::Shopify => self.sandbox.shopify().set_webhook(Some(target)),
            Kind::WooCommerce => self.sandbox.woo().set_webhook(Some(target)),
            Kind::Ebay | Kind::Amazon | Kind::Vendure => return false,
        }
        true
    }

    fn describe(&self) -> String {
        let base = self.sandbox.base_url();
        match self.kind {
            Kind::Ebay => format!("eBay {} at {base}/ebay", self.site),
            Kind::Amazon => format!("Amazon {} at {base}/amazon", self.site),
            Kind::Meta => format!("Facebook/Instagram shop at {base}/meta"),
            Kind::Shopify => format!("Shopify store at {base}/shopify"),
            Kind::WooCommerce => format!("WooCommerce web store at {base}/woo"),
            Kind::Vendure => format!("Vendure web store at {base}/vendure"),
        }
    }
}

/// Runs the demo.
pub async fn run(args: Args) -> Result<()> {
    crate::telemetry::init(crate::config::LogFormat::default(), "warn");
    let dir = tempfile::Builder::new()
        .prefix("omnistock-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let latency = Duration::from_millis(args.latency_ms);
    let all = [
        ("ebay_us", "EBAY_US", "en-US", Kind::Ebay),
        ("ebay_de", "EBAY_DE", "de-DE", Kind::Ebay),
        ("amazon_us", "ATVPDKIKX0DER", "en_US", Kind::Amazon),
        ("facebook", "", "", Kind::Meta),
        ("shopify", "", "", Kind::Shopify),
        ("woo_shop", "", "", Kind::WooCommerce),
        ("vendure_shop", "", "", Kind::Vendure),
    ];
    if let Some(unknown) = args
        .channels
        .iter()
        .find(|c| !all.iter().any(|(id, ..)| id == c))
    {
        bail!(
            "--channels: no demo channel {unknown:?}; choose from {}",
            all.map(|(id, ..)| id).join(", ")
        );
    }
    let mut channels = Vec::new();
    for (id, site, language, kind) in all {
        if !args.channels.is_empty() && !args.channels.iter().any(|c| c == id) {
            continue;
        }
        let sandbox = Sandbox::start(SandboxOptions {
            latency,
            amazon: AmazonOptions::sandbox_plan(),
            ..SandboxOptions::default()
        })
        .await
        .context("cannot start the sandbox")?;
        channels.push(Channel {
            id,
            site,
            language,
            kind,
            sandbox,
        });
    }
    println!("omnistock demo");
    for c in &channels {
        println!(
            "  sandbox {:<12} {} ({} ms simulated latency)",
            c.id,
            c.describe(),
            args.latency_ms
        );
    }
    let db = dir.path().join("omnistock.db");
    let config_path = dir.path().join("omnistock.toml");
    std::fs::write(&config_path, config_text(&db, &channels, args.poll_secs))?;
    let config = crate::config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = crate::sync::SyncPlan::from_config(&config);
    {
        let store = Store::open(&format!("sqlite://{}", db.display())).await?;
        crate::catalog::sync_locations(&store, &super::location_pairs(&config)).await?;
        let report = import_bytes(
            &store,
            &plan,
            CATALOG,
            &ImportOptions {
                dry_run: false,
                default_location: "main".into(),
                locations: vec!["main".into()],
                default_currency: "USD".into(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "  catalog {} rows imported into {}",
            report.rows,
            db.display()
        );
        store.close().await;
    }
    let started = Instant::now();
    let daemon = Daemon::start(&config_path).await?;
    if !args.no_webhooks {
        let hooked: Vec<&str> = channels
            .iter()
            .filter(|c| c.set_webhook(daemon.http_addr))
            .map(|c| c.id)
            .collect();
        if !hooked.is_empty() {
            println!(
                "  webhooks from {} → http://{}/webhooks/<channel>",
                hooked.join(", "),
                daemon.http_addr
            );
        }
    }
    let store = daemon.shared.store.clone();
    let result = drive(&args, &store, &channels, started).await;
    daemon.shutdown().await;
    for c in channels {
        c.sandbox.shutdown().await;
    }
    result
}

async fn drive(args: &Args, store: &Store, channels: &[Channel], started: Instant) -> Result<()> {
    let timeout = Duration::from_secs(args.timeout_secs);
    let skus: Vec<String> =
        sqlx::query_scalar("SELECT sku FROM variants WHERE is_bundle = 0 ORDER BY sku")
            .fetch_all(store.pool())
            .await?;
    let all: Vec<String> = sqlx::query_scalar("SELECT sku FROM variants ORDER BY sku")
        .fetch_all(store.pool())
        .await?;
    wait_converged(store, channels, &all, timeout * 4).await?;
    println!(
        "\ninitial push: {} listings on {} channels live in {} ms\n",
        all.len(),
        channels.len(),
        started.elapsed().as_millis()
    );
    let mut rng = Lcg(args.seed.max(1));
    let mut times = Vec::new();
    let mut by_origin: BTreeMap<&'static str, Vec<u128>> = BTreeMap::new();
    let mut placed: Vec<(usize, String)> = Vec::new();
    for n in 1..=args.orders {
        // Buyers do not wait for our poller: place the order at a random point of its cycle.
        tokio::time::sleep(Duration::from_millis(
            (rng.pick(1000) as u64 * args.poll_secs.max(1)).min(5_000),
        ))
        .await;
        let ch = rng.pick(channels.len());
        let channel = &channels[ch];
        // A SKU this channel shows in stock right now.
        let candidates: Vec<&String> = skus
            .iter()
            .filter(|s| channel.shown(s).unwrap_or(0) > 0)
            .collect();
        if candidates.is_empty() {
            println!("order {n}: nothing left in stock on {}", channel.id);
            break;
        }
        let sku = candidates[rng.pick(candidates.len())].clone();
        let shown = channel.shown(&sku).unwrap_or(0);
        let qty = 1 + u32::try_from(rng.pick(2)).unwrap_or(0).min(shown - 1);
        let t0 = Instant::now();
        let order_id = channel.place_order(&[OrderLine::new(sku.clone(), qty)])?;
        let shown_now = wait_propagated(store, channels, ch, &order_id, &sku, timeout).await?;
        let ms = t0.elapsed().as_millis();
        times.push(ms);
        by_origin.entry(channel.id).or_default().push(ms);
        let everywhere: Vec<String> = shown_now
            .iter()
            .map(|(id, q)| format!("{id} {q}"))
            .collect();
        println!(
            "order {n:>2} on {:<12} {qty} × {:<12} → {}   in {ms:>5} ms",
            channel.id,
            sku,
            everywhere.join(", ")
        );
        placed.push((ch, order_id));
    }
    if let Some((ch, order_id)) = placed.first() {
        let channel = &channels[*ch];
        let t0 = Instant::now();
        channel.cancel_order(order_id)?;
        let sku: String = sqlx::query_scalar(
            "SELECT l.sku FROM order_lines l JOIN orders o ON o.id = l.order_id \
             WHERE o.channel = $1 AND o.external_id = $2 LIMIT 1",
        )
        .bind(channel.id)
        .bind(order_id)
        .fetch_one(store.pool())
        .await?;
        wait_status(store, channel.id, order_id, "cancelled", timeout).await?;
        let shown = wait_converged(store, channels, std::slice::from_ref(&sku), timeout).await?;
        let everywhere: Vec<String> = shown
            .get(&sku)
            .map(|m| m.iter().map(|(id, q)| format!("{id} {q}")).collect())
            .unwrap_or_default();
        println!(
            "cancel   on {:<12} order {order_id}: {sku} back → {}   in {:>5} ms",
            channel.id,
            everywhere.join(", "),
            t0.elapsed().as_millis()
        );
    }
    if !times.is_empty() {
        times.sort_unstable();
        let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "\npropagation over {} orders (order placed → every channel shows the new quantity): \
             p50 {} ms, p99 {} ms, max {} ms",
            times.len(),
            pct(0.5),
            pct(0.99),
            times[times.len() - 1]
        );
        for (origin, mut t) in by_origin {
            t.sort_unstable();
            println!(
                "  from {origin:<12} {:>3} orders: p50 {:>5} ms, max {:>5} ms",
                t.len(),
                t[(t.len() - 1) / 2],
                t[t.len() - 1]
            );
        }
        println!(
            "polling every {} s{}.",
            args.poll_secs,
            if args.no_webhooks {
                ", webhooks off (--no-webhooks)"
            } else {
                "; webhooks wake the poller of channels that send them"
            }
        );
    }
    let oversold: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM order_lines WHERE state = 'oversold'")
            .fetch_one(store.pool())
            .await?;
    println!("oversold lines: {oversold}");
    Ok(())
}

/// Waits until the order is recorded and every channel shows the SKU's desired quantity; returns
/// what each channel shows.
async fn wait_propagated(
    store: &Store,
    channels: &[Channel],
    _origin: usize,
    order_id: &str,
    sku: &str,
    timeout: Duration,
) -> Result<BTreeMap<&'static str, u32>> {
    let deadline = Instant::now() + timeout;
    loop {
        let ingested: Option<i64> =
            sqlx::query_scalar("SELECT id FROM orders WHERE external_id = $1")
                .bind(order_id)
                .fetch_optional(store.pool())
                .await?;
        if ingested.is_some() {
            let shown = shown_if_converged(store, channels, sku).await?;
            if let Some(shown) = shown {
                return Ok(shown);
            }
        }
        if Instant::now() >= deadline {
            bail!("order {order_id} ({sku}) did not reach every channel within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_status(
    store: &Store,
    channel: &str,
    order_id: &str,
    status: &str,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let s: Option<String> =
            sqlx::query_scalar("SELECT status FROM orders WHERE channel = $1 AND external_id = $2")
                .bind(channel)
                .bind(order_id)
                .fetch_optional(store.pool())
                .await?;
        if s.as_deref() == Some(status) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("order {order_id} did not become {status} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every channel's shown quantity of `sku` when they all equal the desired quantity and nothing
/// is pending; `None` otherwise.
async fn shown_if_converged(
    store: &Store,
    channels: &[Channel],
    sku: &str,
) -> Result<Option<BTreeMap<&'static str, u32>>> {
    let mut shown = BTreeMap::new();
    for c in channels {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT desired_qty, desired_version, pushed_version FROM channel_items \
             WHERE channel = $1 AND sku = $2",
        )
        .bind(c.id)
        .bind(sku)
        .fetch_optional(store.pool())
        .await?;
        let Some((want, dv, pv)) = row else {
            return Ok(None);
        };
        let remote = c.shown(sku);
        if dv > pv || remote != u32::try_from(want).ok() {
            return Ok(None);
        }
        shown.insert(c.id, remote.unwrap_or(0));
    }
    Ok(Some(shown))
}

async fn wait_converged(
    store: &Store,
    channels: &[Channel],
    skus: &[String],
    timeout: Duration,
) -> Result<BTreeMap<String, BTreeMap<&'static str, u32>>> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut all = BTreeMap::new();
        for sku in skus {
            match shown_if_converged(store, channels, sku).await? {
                Some(s) => {
                    all.insert(sku.clone(), s);
                }
                None => break,
            }
        }
        if all.len() == skus.len() {
            return Ok(all);
        }
        if Instant::now() >= deadline {
            bail!(
                "the channels did not converge within {timeout:?} ({} of {} SKUs everywhere)",
                all.len(),
                skus.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config_text(db: &Path, channels: &[Channel], poll_secs: u64) -> String {
    let mut s = format!(
        "# Written by `omnistock demo`.\n[daemon]\ndatabase = \"sqlite://{}\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[locations]]\nid = \"main\"\nname = \"Demo warehouse\"\n",
        db.display()
    );
    for c in channels {
        s.push_str(&format!("\n[channels.{}]\n", c.id));
        s.push_str(&section(c));
        s.push_str(&format!(
            "poll_interval_secs = {poll_secs}\n\
             schedule = {{ orders = \"* * * * *\", reconcile = \"*/10 * * * *\" }}\n"
        ));
    }
    s
}

/// The marketplace-specific keys of a channel's section.
fn section(c: &Channel) -> String {
    let base = c.sandbox.base_url();
    match c.kind {
        Kind::Amazon => {
            let a = c.sandbox.amazon();
            let creds = a.credentials();
            format!(
                "type = \"amazon\"\nendpoint = \"{base}/amazon\"\n\
                 token_endpoint = \"{base}/amazon/auth/o2/token\"\nseller_id = \"{seller}\"\n\
                 marketplace_ids = [\"{site}\"]\n\
                 client_id = \"{cid}\"\nclient_secret = \"{secret}\"\nrefresh_token = \"{refresh}\"\n\
                 sandbox = true\nlanguage_tag = \"{lang}\"\nfeed_processing_secs = 5\n",
                seller = c_escape(&a.seller_id()),
                cid = c_escape(&creds.client_id),
                secret = c_escape(&creds.client_secret),
                refresh = c_escape(&creds.refresh_token),
                site = c.site,
                lang = c.language,
            )
        }
        Kind::Ebay => {
            let creds = c.sandbox.ebay().credentials();
            format!(
                "type = \"ebay\"\nendpoint = \"{base}/ebay\"\n\
                 token_endpoint = \"{base}/ebay/identity/v1/oauth2/token\"\n\
                 client_id = \"{cid}\"\nclient_secret = \"{secret}\"\nrefresh_token = \"{refresh}\"\n\
                 marketplace_id = \"{site}\"\nmerchant_location_key = \"main\"\n\
                 policies = {{ fulfillment = \"sandbox-fulfillment\", payment = \"sandbox-payment\", return = \"sandbox-return\" }}\n\
                 category_id = \"29792\"\ncontent_language = \"{lang}\"\n",
                cid = c_escape(&creds.client_id),
                secret = c_escape(&creds.client_secret),
                refresh = c_escape(&creds.refresh_token),
                site = c.site,
                lang = c.language,
            )
        }
        Kind::Meta => {
            let creds = c.sandbox.meta().credentials();
            // Meta documents 100 catalog batch calls per hour as a default; the demo places one
            // order at a time and waits for it, one batch each, so its catalog allows more.
            format!(
                "type = \"facebook\"\nendpoint = \"{}\"\ncatalog_id = \"{}\"\n\
                 access_token = \"{}\"\napp_secret = \"{}\"\ncommerce_account_id = \"{}\"\n\
                 orders_enabled = true\nlink_template = \"https://shop.example.com/p/{{sku}}\"\n\
                 limits = {{ rate_per_sec = 2 }}\n",
                c_escape(&omnistock_sandbox::MetaHandle::endpoint(&base)),
                c_escape(&creds.catalog_id),
                c_escape(&creds.access_token),
                c_escape(&creds.app_secret),
                c_escape(&creds.commerce_account_id),
            )
        }
        Kind::Shopify => {
            let creds = c.sandbox.shopify().credentials();
            format!(
                "type = \"shopify\"\nendpoint = \"{base}/shopify\"\naccess_token = \"{}\"\n\
                 location_id = \"{}\"\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n",
                c_escape(&creds.access_token),
                c_escape(&creds.location_id),
            )
        }
        Kind::WooCommerce => {
            let w = c.sandbox.woo();
            let creds = w.credentials();
            format!(
                "type = \"woocommerce\"\nendpoint = \"{}\"\nconsumer_key = \"{}\"\n\
                 consumer_secret = \"{}\"\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n",
                c_escape(&w.site_url()),
                c_escape(&creds.consumer_key),
                c_escape(&creds.consumer_secret),
            )
        }
        Kind::Vendure => {
            let v = c.sandbox.vendure();
            let creds = v.credentials();
            format!(
                "type = \"vendure\"\nendpoint = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n",
                c_escape(&v.admin_api_url()),
                c_escape(&creds.username),
                c_escape(&creds.password),
            )
        }
    }
}

/// Escapes a value for a TOML basic string.
fn c_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A tiny deterministic picker (the demo needs repeatable runs, not randomness of quality).
struct Lcg(u64);

impl Lcg {
    fn pick(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}
