//! `omnistock sandbox`: the fake marketplaces (the `omnistock-sandbox` crate) in the foreground,
//! on 127.0.0.1, until SIGINT or SIGTERM.
//!
//! The defaults line up with `config/demo.toml`: port [`DEFAULT_PORT`], and the eBay fake accepts
//! the placeholder credentials that file carries ([`demo_credentials`]; a test keeps the two in
//! step). They are sandbox-only values, so printing them is fine and saves a trip to the file.

use std::time::Duration;

use anyhow::{Context, Result};
use omnistock_sandbox::amazon::{AmazonCredentials, AmazonOptions, AmazonSeedListing};
use omnistock_sandbox::{
    EbayCredentials, EbayOptions, MetaCredentials, MetaOptions, MetaSeedListing, Sandbox,
    SandboxOptions, SeedListing, ShopifyCredentials, ShopifyOptions, ShopifySeedListing,
    VendureCredentials, VendureOptions, VendureSeedListing, WebhookTarget, WooCredentials,
    WooOptions, WooSeedListing,
};

/// The port `config/demo.toml` points every channel at.
pub const DEFAULT_PORT: u16 = 18080;

/// The `merchant_location_key` of config/demo.toml: the sandbox's eBay seller has it from the start.
pub const DEMO_LOCATION_KEY: &str = "main";

/// The demo catalog, for `--seed-demo`.
const DEMO_CATALOG: &str = include_str!("../../config/demo-catalog.csv");

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 (0 picks a free one). config/demo.toml expects 18080.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Simulated network latency added to every marketplace request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Seed of the PRNG behind fault probabilities and generated tokens (same seed, same run).
    #[arg(long, default_value_t = SandboxOptions::default().seed)]
    pub seed: u64,
    /// Start with live listings for the demo catalog's SKUs (config/demo-catalog.csv) on every
    /// marketplace, as if the merchant had listed them by hand before trying omnistock.
    #[arg(long)]
    pub seed_demo: bool,
    /// Where the Meta, Shopify and WooCommerce fakes send their signed order webhooks:
    /// `<URL>/webhooks/<channel id of config/demo.toml>`; config/demo.toml's daemon listens on
    /// 127.0.0.1:8686. Deliveries to a daemon that is not running just fail.
    #[arg(long, default_value = "http://127.0.0.1:8686")]
    pub webhooks_to: String,
    /// Send no webhooks (the daemon then learns of orders by polling only).
    #[arg(long)]
    pub no_webhooks: bool,
}

/// The secret config/demo.toml's channels sign and check webhooks with (Meta: its app secret).
pub const DEMO_SECRET: &str = "sandbox-secret";

/// The Meta fake as config/demo.toml's `facebook` channel expects it.
pub fn demo_meta() -> MetaOptions {
    MetaOptions {
        credentials: MetaCredentials {
            access_token: DEMO_SECRET.into(),
            app_secret: DEMO_SECRET.into(),
            catalog_id: "sandbox-catalog".into(),
            commerce_account_id: "sandbox-commerce".into(),
        },
        catalog_id: "sandbox-catalog".into(),
        commerce_account_id: "sandbox-commerce".into(),
        ..MetaOptions::default()
    }
}

/// The Shopify fake as config/demo.toml's `shop` channel expects it.
pub fn demo_shopify() -> ShopifyOptions {
    let d = ShopifyOptions::default();
    ShopifyOptions {
        credentials: ShopifyCredentials {
            access_token: DEMO_SECRET.into(),
            location_id: "gid://shopify/Location/1".into(),
            ..d.credentials.clone()
        },
        location_id: 1,
        ..d
    }
}

/// The WooCommerce fake as config/demo.toml's `woo` channel expects it.
pub fn demo_woo() -> WooOptions {
    WooOptions {
        credentials: WooCredentials {
            consumer_key: "sandbox-key".into(),
            consumer_secret: DEMO_SECRET.into(),
        },
        ..WooOptions::default()
    }
}

/// The Vendure fake as config/demo.toml's `vendure` channel expects it.
pub fn demo_vendure() -> VendureOptions {
    VendureOptions {
        credentials: VendureCredentials {
            username: "sandbox-admin".into(),
            password: DEMO_SECRET.into(),
            channel_token: None,
        },
        ..VendureOptions::default()
    }
}

/// The eBay credentials `config/demo.toml` carries, with every scope the connector needs.
pub fn demo_credentials() -> EbayCredentials {
    EbayCredentials {
        client_id: "sandbox-client".into(),
        client_secret: "sandbox-secret".into(),
        refresh_token: "sandbox-refresh-token".into(),
        ..EbayCredentials::default()
    }
}

/// The seller id `config/demo.toml`'s Amazon channel names.
pub const DEMO_AMAZON_SELLER: &str = "SANDBOXSELLER";

/// The Amazon fake as `config/demo.toml` expects it: its placeholder LWA credentials and seller
/// id, and the usage plan of Amazon's own SP-API sandbox hosts.
pub fn demo_amazon() -> AmazonOptions {
    AmazonOptions {
        credentials: AmazonCredentials {
            client_id: "sandbox-client".into(),
            client_secret: "sandbox-secret".into(),
            refresh_token: "sandbox-refresh-token".into(),
        },
        seller_id: DEMO_AMAZON_SELLER.into(),
        ..AmazonOptions::sandbox_plan()
    }
}

/// Published listings for every stocked, non-bundle row of the demo catalog.
fn demo_listings() -> Result<Vec<SeedListing>> {
    let mut reader = csv::Reader::from_reader(DEMO_CATALOG.as_bytes());
    let headers = reader.headers().context("demo catalog header")?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("demo catalog has no {name} column"))
    };
    let (sku, title, price, quantity, currency) = (
        col("sku")?,
        col("title")?,
        col("price")?,
        col("quantity")?,
        col("currency")?,
    );
    let mut listings = Vec::new();
    for row in reader.records() {
        let row = row.context("demo catalog row")?;
        // Bundles have no quantity of their own; the daemon lists them.
        let Some(qty) = row.get(quantity).and_then(|q| q.parse::<u32>().ok()) else {
            continue;
        };
        let mut seed = SeedListing::new(&row[sku], qty, &row[price]);
        seed.title = row[title].to_owned();
        if let Some(c) = row.get(currency).filter(|c| !c.is_empty()) {
            seed.price = omnistock_sandbox::Money::new(&row[price], c);
        }
        listings.push(seed);
    }
    Ok(listings)
}

/// The sandbox options these arguments ask for.
pub fn options(args: &Args) -> Result<SandboxOptions> {
    let mut ebay = EbayOptions {
        credentials: demo_credentials(),
        ..EbayOptions::default()
    };
    let mut amazon = demo_amazon();
    let mut meta = demo_meta();
    let mut shopify = demo_shopify();
    let mut woo = demo_woo();
    let mut vendure = demo_vendure();
    if args.seed_demo {
        for l in demo_listings()? {
            let title = l.title.clone();
            let mut m = MetaSeedListing::new(&l.sku, l.quantity, &l.price.value);
            m.title = title.clone();
            meta.listings.push(m);
            let mut s = ShopifySeedListing::new(&l.sku, l.quantity, &l.price.value);
            s.title = title.clone();
            shopify.listings.push(s);
            let mut w = WooSeedListing::new(&l.sku, l.quantity, &l.price.value);
            w.title = Some(title.clone());
            woo.listings.push(w);
            let mut v = VendureSeedListing::new(&l.sku, l.quantity, &l.price.value);
            v.name = Some(title);
            vendure.listings.push(v);
        }
        ebay.listings = demo_listings()?;
        amazon.listings = ebay
            .listings
            .iter()
            .map(|l| {
                let mut a = AmazonSeedListing::new(&l.sku, l.quantity, &l.price.value);
                a.title = l.title.clone();
                a
            })
            .collect();
    }
    Ok(SandboxOptions {
        port: args.port,
        latency: Duration::from_millis(args.latency_ms),
        seed: args.seed,
        ebay,
        amazon,
        meta,
        shopify,
        woo,
        vendure,
    })
}

/// Points the Meta, Shopify and WooCommerce fakes' webhooks at `base`/webhooks/<channel id>.
fn hook_webhooks(sandbox: &Sandbox, base: &str) {
    let base = base.trim_end_matches('/');
    let target = |id: &str| WebhookTarget::new(format!("{base}/webhooks/{id}"), DEMO_SECRET);
    sandbox.meta().set_webhook(Some(target("facebook")));
    sandbox.shopify().set_webhook(Some(target("shop")));
    sandbox.woo().set_webhook(Some(target("woo")));
}

/// What `/_control` offers (see the `omnistock-sandbox` crate docs).
const CONTROL_ROUTES: &[(&str, &str)] = &[
    ("GET    /_control/health", "liveness"),
    ("GET    /_control/faults", "fault rules with counters"),
    (
        "POST   /_control/faults",
        r#"add a rule: {"marketplace":"ebay","target":"bulkUpdatePriceQuantity","kind":{"type":"server_error","status":503},"times":2}"#,
    ),
    ("DELETE /_control/faults[/{id}]", "remove all rules, or one"),
    (
        "PUT    /_control/latency",
        r#"{"ms":50}: latency of every request"#,
    ),
    (
        "POST   /_control/clock/advance",
        r#"{"secs":7200}: move sandbox time"#,
    ),
    (
        "GET    /_control/writes, /_control/requests",
        "what was written and asked",
    ),
    (
        "POST   /_control/ebay/orders",
        r#"{"lines":[{"sku":"MUG-RED","quantity":1}]}: a buyer checks out"#,
    ),
    (
        "GET    /_control/ebay/orders[/{id}]",
        "orders as getOrder shows them",
    ),
    (
        "POST   /_control/ebay/orders/{id}/cancel|ship",
        "order lifecycle",
    ),
    (
        "POST   /_control/ebay/listings",
        r#"{"sku","title","quantity","price":{"value","currency"}}: seed a listing"#,
    ),
    ("GET    /_control/ebay/listings/{sku}", "what buyers see"),
    (
        "PUT    /_control/ebay/listings/{sku}/quantity|price",
        "drift: change it behind omnistock's back",
    ),
    (
        "GET    /_control/ebay/stats",
        "requests per operation, 429s sent",
    ),
    (
        "PUT    /_control/ebay/rate_limits/{group}",
        "set or remove a token bucket",
    ),
    (
        "POST   /_control/ebay/tokens/expire",
        "invalidate every access token",
    ),
];

/// The banner printed once the sandbox listens.
fn banner(base: &str, args: &Args, credentials: &EbayCredentials, seeded: usize) -> String {
    let mut s = format!(
        "omnistock sandbox listening on {base} (loopback only; latency {} ms, seed {})\n\n",
        args.latency_ms, args.seed
    );
    s.push_str("Marketplaces\n");
    s.push_str(&format!("  ebay       endpoint        {base}/ebay\n"));
    s.push_str(&format!(
        "             token_endpoint  {base}/ebay/identity/v1/oauth2/token\n"
    ));
    s.push_str(&format!(
        "             APIs            {base}/ebay/sell/inventory/v1/…, {base}/ebay/sell/fulfillment/v1/…\n"
    ));
    s.push_str(&format!(
        "             client_id = {:?}, client_secret = {:?}, refresh_token = {:?}\n",
        credentials.client_id, credentials.client_secret, credentials.refresh_token
    ));
    s.push_str(&format!(
        "             {seeded} listing(s) at start{}\n",
        if args.seed_demo { " (--seed-demo)" } else { "" }
    ));
    s.push_str(&format!("  amazon     endpoint        {base}/amazon\n"));
    s.push_str(&format!(
        "             token_endpoint  {base}/amazon/auth/o2/token\n"
    ));
    s.push_str(&format!(
        "             seller_id = {DEMO_AMAZON_SELLER:?}, same client_id/client_secret/refresh_token; \
         usage plan of Amazon's SP-API sandbox (5 rps, burst 15)\n"
    ));
    s.push_str(&format!(
        "  meta       endpoint        {base}/meta/v25.0   catalog_id = \"sandbox-catalog\", \
         commerce_account_id = \"sandbox-commerce\"\n"
    ));
    s.push_str(&format!(
        "  shopify    endpoint        {base}/shopify   location_id = \"gid://shopify/Location/1\"\n"
    ));
    s.push_str(&format!(
        "  woo        endpoint        {base}/woo   consumer_key = \"sandbox-key\"\n"
    ));
    s.push_str(&format!(
        "  vendure    endpoint        {base}/vendure/admin-api   username = \"sandbox-admin\"\n"
    ));
    s.push_str(&format!(
        "             secrets ({DEMO_SECRET:?}) as in config/demo.toml; webhooks {}\n\n",
        if args.no_webhooks {
            "off".to_owned()
        } else {
            format!(
                "to {}/webhooks/<channel>",
                args.webhooks_to.trim_end_matches('/')
            )
        }
    ));
    s.push_str("Control API (JSON, unauthenticated)\n");
    for (route, what) in CONTROL_ROUTES {
        s.push_str(&format!("  {route:<52} {what}\n"));
    }
    s.push_str(
        "\nconfig/demo.toml points its channels here. Ctrl-C (or SIGTERM) stops the sandbox.\n",
    );
    s
}

/// Runs the sandbox until SIGINT or SIGTERM, then shuts it down.
pub async fn run(args: Args) -> Result<()> {
    let opts = options(&args)?;
    let credentials = opts.ebay.credentials.clone();
    let seeded = opts.ebay.listings.len();
    let sandbox = Sandbox::start(opts)
        .await
        .context("starting the sandbox (is the port taken? try --port 0)")?;
    // The seller's warehouse exists on eBay before omnistock ever runs.
    sandbox.ensure_ebay_location(DEMO_LOCATION_KEY);
    if !args.no_webhooks {
        hook_webhooks(&sandbox, &args.webhooks_to);
    }
    print!(
        "{}",
        banner(&sandbox.base_url(), &args, &credentials, seeded)
    );
    wait_for_stop_signal().await;
    println!("Stopping the sandbox.");
    sandbox.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(argv: &[&str]) -> Args {
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Sandbox(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_demo_config() {
        let args = parse(&["omnistock", "sandbox"]);
        assert_eq!(args.port, DEFAULT_PORT);
        assert_eq!(args.latency_ms, 0);
        assert_eq!(args.seed, SandboxOptions::default().seed);
        assert!(!args.seed_demo);
    }

    #[test]
    fn every_flag_parses() {
        let args = parse(&[
            "omnistock",
            "sandbox",
            "--port",
            "0",
            "--latency-ms",
            "50",
            "--seed",
            "7",
            "--seed-demo",
        ]);
        assert_eq!(
            (args.port, args.latency_ms, args.seed, args.seed_demo),
            (0, 50, 7, true)
        );
        let opts = options(&args).unwrap();
        assert_eq!(opts.latency, Duration::from_millis(50));
        assert_eq!(opts.seed, 7);
        assert!(Cli::try_parse_from(["omnistock", "sandbox", "--port", "70000"]).is_err());
        assert!(Cli::try_parse_from(["omnistock", "sandbox", "--latency", "5"]).is_err());
    }

    /// config/demo.toml must reach this sandbox with the credentials it accepts.
    #[test]
    fn demo_config_points_at_this_sandbox() {
        let text = include_str!("../../config/demo.toml");
        let demo: toml::Table = toml::from_str(text).expect("demo.toml parses");
        let ebay = demo["channels"]["ebay"]
            .as_table()
            .expect("an ebay channel");
        let base = format!("http://127.0.0.1:{DEFAULT_PORT}");
        assert_eq!(
            ebay["endpoint"].as_str(),
            Some(format!("{base}/ebay").as_str())
        );
        assert_eq!(
            ebay["token_endpoint"].as_str(),
            Some(format!("{base}/ebay/identity/v1/oauth2/token").as_str())
        );
        let creds = demo_credentials();
        assert_eq!(ebay["client_id"].as_str(), Some(creds.client_id.as_str()));
        assert_eq!(
            ebay["client_secret"].as_str(),
            Some(creds.client_secret.as_str())
        );
        assert_eq!(
            ebay["refresh_token"].as_str(),
            Some(creds.refresh_token.as_str())
        );
        assert_eq!(
            ebay["merchant_location_key"].as_str(),
            Some(DEMO_LOCATION_KEY)
        );
    }

    #[test]
    fn demo_listings_cover_the_stocked_catalog_rows() {
        let listings = demo_listings().unwrap();
        let skus: Vec<&str> = listings.iter().map(|l| l.sku.as_str()).collect();
        assert!(skus.contains(&"MUG-RED"), "{skus:?}");
        assert!(
            !skus.contains(&"GIFT-SET"),
            "bundles are not seeded: {skus:?}"
        );
        let mug = &listings[skus.iter().position(|s| *s == "MUG-RED").unwrap()];
        assert_eq!((mug.quantity, mug.title.as_str()), (24, "Stoneware mug"));
    }

    #[tokio::test]
    async fn starts_on_a_free_port_and_serves_the_demo_listings() {
        let args = parse(&["omnistock", "sandbox", "--port", "0", "--seed-demo"]);
        let sandbox = Sandbox::start(options(&args).unwrap()).await.unwrap();
        assert!(sandbox.base_url().starts_with("http://127.0.0.1:"));
        assert_eq!(sandbox.ebay().current_quantity("MUG-RED"), Some(24));
        let text = banner(&sandbox.base_url(), &args, &demo_credentials(), 4);
        assert!(text.contains("/_control/faults"), "{text}");
        assert!(text.contains("\"sandbox-secret\""), "{text}");
        sandbox.shutdown().await;
    }

    /// config/demo.toml's location exists without seeding, so the daemon can publish offers.
    #[tokio::test]
    async fn the_demo_location_exists_from_the_start() {
        let args = parse(&["omnistock", "sandbox", "--port", "0"]);
        let sandbox = Sandbox::start(options(&args).unwrap()).await.unwrap();
        sandbox.ensure_ebay_location(DEMO_LOCATION_KEY);
        omnistock_connectors::common::http::install_crypto_provider();
        let http = reqwest::Client::new();
        let base = format!("{}/ebay", sandbox.base_url());
        let creds = demo_credentials();
        let token: serde_json::Value = http
            .post(format!("{base}/identity/v1/oauth2/token"))
            .basic_auth(&creds.client_id, Some(&creds.client_secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", creds.refresh_token.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = token["access_token"]
            .as_str()
            .expect("a token for the demo credentials");
        let location = http
            .get(format!(
                "{base}/sell/inventory/v1/location/{DEMO_LOCATION_KEY}"
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(location.status(), 200);
        sandbox.shutdown().await;
    }
}
