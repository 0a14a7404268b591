//! Secrets never reach a log, an output or the admin API (DESIGN §10).
//!
//! The real daemon binary runs with `RUST_LOG=trace` (once with pretty logs, once with JSON logs)
//! against sandbox marketplaces of every kind — eBay, Amazon, Meta, Shopify (static token and
//! client credentials), WooCommerce, Vendure — whose credentials are sentinels
//! (`SENTINEL/<kind>+<random>`) that reach the config through `${VAR}` interpolation. Faults make
//! the connectors fail loudly: token refreshes and API calls answered 401 and 500 with bodies that
//! ECHO the request (its `Authorization` header, its form, its JSON) back. Webhooks arrive with
//! bad signatures, a Meta handshake with a wrong verify token, admin requests with a wrong token.
//! The CLI runs too: `import` (a good and a bad file), `check`, `status`, `explain`,
//! `resync --dry-run`, `orders`.
//!
//! Then everything captured — the daemon's stderr and stdout, every CLI output, the `/api/status`
//! and `/metrics` bodies, the database's error columns — is searched for every sentinel in every
//! form it travels in (raw, percent-encoded, JSON-escaped, base64 alone and inside Basic
//! credentials). None may appear. To show the search could find something, the captured text
//! must contain the masked echoes (`***`) the faults provoked.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use omnistock_sandbox::{
    AmazonCredentials, AmazonOptions, EbayCredentials, EbayOptions, FaultKind, FaultRule,
    MetaCredentials, MetaHandle, MetaOptions, Sandbox, SandboxOptions, ShopifyCredentials,
    ShopifyOptions, VendureCredentials, VendureOptions, WooCredentials, WooOptions,
};

use crate::support::{TestDb, fresh_db};

const MARKETS: [&str; 6] = ["ebay", "amazon", "meta", "shopify", "woo", "vendure"];

/// One secret: the env var that carries it into the config, and its value.
struct Sentinel {
    var: &'static str,
    value: String,
}

/// Every secret of the run, plus the Basic credentials built from them.
struct Secrets {
    all: Vec<Sentinel>,
    /// `user:password` pairs sent as HTTP Basic (eBay's token call, WooCommerce).
    basic: Vec<String>,
}

impl Secrets {
    fn new() -> Secrets {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let s = |var: &'static str, kind: &str| Sentinel {
            var,
            // `/` and `+` make the percent-encoded form differ from the raw one.
            value: format!("SENTINEL/{kind}+{}", &tag[..12]),
        };
        let all = vec![
            s("OMNI_EBAY_CLIENT_SECRET", "ebay-cs"),
            s("OMNI_EBAY_REFRESH_TOKEN", "ebay-rt"),
            s("OMNI_AMAZON_CLIENT_SECRET", "amazon-cs"),
            s("OMNI_AMAZON_REFRESH_TOKEN", "amazon-rt"),
            s("OMNI_META_ACCESS_TOKEN", "meta-token"),
            s("OMNI_META_APP_SECRET", "meta-app-secret"),
            s("OMNI_META_VERIFY_TOKEN", "meta-verify"),
            s("OMNI_SHOPIFY_ACCESS_TOKEN", "shopify-token"),
            s("OMNI_SHOPIFY_CLIENT_SECRET", "shopify-cs"),
            s("OMNI_SHOPIFY_WEBHOOK_SECRET", "shopify-webhook"),
            s("OMNI_WOO_CONSUMER_KEY", "woo-ck"),
            s("OMNI_WOO_CONSUMER_SECRET", "woo-cs"),
            s("OMNI_WOO_WEBHOOK_SECRET", "woo-webhook"),
            s("OMNI_VENDURE_PASSWORD", "vendure-pw"),
            s("OMNI_ADMIN_TOKEN", "admin-token"),
        ];
        let mut secrets = Secrets {
            all,
            basic: Vec::new(),
        };
        secrets.basic = vec![
            format!(
                "{}:{}",
                EBAY_CLIENT_ID,
                secrets.get("OMNI_EBAY_CLIENT_SECRET")
            ),
            format!(
                "{}:{}",
                secrets.get("OMNI_WOO_CONSUMER_KEY"),
                secrets.get("OMNI_WOO_CONSUMER_SECRET")
            ),
        ];
        secrets
    }

    fn get(&self, var: &str) -> String {
        self.all
            .iter()
            .find(|s| s.var == var)
            .map(|s| s.value.clone())
            .expect("known sentinel")
    }

    /// Every form a secret may travel in, with what it is.
    fn needles(&self) -> Vec<(String, String)> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let mut out = Vec::new();
        for s in &self.all {
            let v = &s.value;
            out.push((v.clone(), format!("{} (raw)", s.var)));
            out.push((percent(v), format!("{} (percent-encoded)", s.var)));
            out.push((v.replace('/', "\\/"), format!("{} (JSON-escaped)", s.var)));
            out.push((b64(v), format!("{} (base64)", s.var)));
            out.push((b64url(v), format!("{} (base64url)", s.var)));
            // The distinctive part alone, in case the prefix was cut or re-encoded.
            if let Some(tail) = v.strip_prefix("SENTINEL/") {
                out.push((tail.to_owned(), format!("{} (without its prefix)", s.var)));
            }
        }
        for pair in &self.basic {
            out.push((b64(pair), format!("Basic credentials {pair:?} (base64)")));
            out.push((
                percent(pair),
                "Basic credentials (percent-encoded)".to_owned(),
            ));
        }
        out
    }
}

fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

const EBAY_CLIENT_ID: &str = "ebay-client-id";
const SHOPIFY_CLIENT_ID: &str = "shopify-client-id";
const WEBHOOK_SKUS: usize = 3;

/// A sandbox whose every marketplace expects the sentinels.
async fn sandbox(secrets: &Secrets) -> Sandbox {
    let shopify = ShopifyOptions::unlimited();
    Sandbox::start(SandboxOptions {
        port: 0,
        ebay: EbayOptions {
            credentials: EbayCredentials {
                client_id: EBAY_CLIENT_ID.into(),
                client_secret: secrets.get("OMNI_EBAY_CLIENT_SECRET"),
                refresh_token: secrets.get("OMNI_EBAY_REFRESH_TOKEN"),
                ..EbayCredentials::default()
            },
            ..EbayOptions::unlimited()
        },
        amazon: AmazonOptions {
            credentials: AmazonCredentials {
                client_id: "amazon-client-id".into(),
                client_secret: secrets.get("OMNI_AMAZON_CLIENT_SECRET"),
                refresh_token: secrets.get("OMNI_AMAZON_REFRESH_TOKEN"),
            },
            ..AmazonOptions::unlimited()
        },
        meta: MetaOptions {
            credentials: MetaCredentials {
                access_token: secrets.get("OMNI_META_ACCESS_TOKEN"),
                app_secret: secrets.get("OMNI_META_APP_SECRET"),
                catalog_id: "sentinel-catalog".into(),
                commerce_account_id: "sentinel-commerce".into(),
            },
            catalog_id: "sentinel-catalog".into(),
            commerce_account_id: "sentinel-commerce".into(),
            ..MetaOptions::unlimited()
        },
        shopify: ShopifyOptions {
            credentials: ShopifyCredentials {
                access_token: secrets.get("OMNI_SHOPIFY_ACCESS_TOKEN"),
                client_id: SHOPIFY_CLIENT_ID.into(),
                client_secret: secrets.get("OMNI_SHOPIFY_CLIENT_SECRET"),
                ..shopify.credentials.clone()
            },
            ..shopify
        },
        woo: WooOptions {
            credentials: WooCredentials {
                consumer_key: secrets.get("OMNI_WOO_CONSUMER_KEY"),
                consumer_secret: secrets.get("OMNI_WOO_CONSUMER_SECRET"),
            },
            ..WooOptions::unlimited()
        },
        vendure: VendureOptions {
            credentials: VendureCredentials {
                username: "sentinel-admin".into(),
                password: secrets.get("OMNI_VENDURE_PASSWORD"),
                channel_token: None,
            },
            ..VendureOptions::default()
        },
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The config: every secret a `${VAR}`.
fn config_text(db: &TestDb, sb: &Sandbox, port: u16, log_format: &str) -> String {
    let base = sb.base_url();
    let amazon = sb.amazon();
    let shop = sb.shopify().credentials();
    let common = "poll_interval_secs = 1\norder_overlap_secs = 5\n\
                  limits = { retry_max_secs = 1, timeout_secs = 5 }\n";
    format!(
        r#"[daemon]
database = "{db}"
listen = "127.0.0.1:{port}"
admin_token = "${{OMNI_ADMIN_TOKEN}}"
log_format = "{log_format}"
lease_secs = 3
shutdown_timeout_secs = 5
reload_poll_ms = 200

[[locations]]
id = "main"

[channels.ebay]
type = "ebay"
endpoint = "{base}/ebay"
token_endpoint = "{base}/ebay/identity/v1/oauth2/token"
client_id = "{EBAY_CLIENT_ID}"
client_secret = "${{OMNI_EBAY_CLIENT_SECRET}}"
refresh_token = "${{OMNI_EBAY_REFRESH_TOKEN}}"
marketplace_id = "EBAY_US"
merchant_location_key = "main"
policies = {{ fulfillment = "f", payment = "p", return = "r" }}
category_id = "29792"
{common}
[channels.amazon]
type = "amazon"
endpoint = "{base}/amazon"
token_endpoint = "{base}/amazon/auth/o2/token"
seller_id = "{seller}"
marketplace_ids = ["{marketplace}"]
client_id = "amazon-client-id"
client_secret = "${{OMNI_AMAZON_CLIENT_SECRET}}"
refresh_token = "${{OMNI_AMAZON_REFRESH_TOKEN}}"
sandbox = true
feed_processing_secs = 2
{common}
[channels.fb]
type = "facebook"
endpoint = "{meta}"
catalog_id = "sentinel-catalog"
access_token = "${{OMNI_META_ACCESS_TOKEN}}"
app_secret = "${{OMNI_META_APP_SECRET}}"
verify_token = "${{OMNI_META_VERIFY_TOKEN}}"
commerce_account_id = "sentinel-commerce"
orders_enabled = true
link_template = "https://shop.example/p/{{sku}}"
{common}
[channels.shop]
type = "shopify"
endpoint = "{base}/shopify"
access_token = "${{OMNI_SHOPIFY_ACCESS_TOKEN}}"
location_id = "{location}"
webhook_secret = "${{OMNI_SHOPIFY_WEBHOOK_SECRET}}"
{common}
[channels.shopcc]
type = "shopify"
endpoint = "{base}/shopify"
client_id = "{SHOPIFY_CLIENT_ID}"
client_secret = "${{OMNI_SHOPIFY_CLIENT_SECRET}}"
location_id = "{location}"
webhook_secret = "${{OMNI_SHOPIFY_WEBHOOK_SECRET}}"
{common}
[channels.woo]
type = "woocommerce"
endpoint = "{woo}"
consumer_key = "${{OMNI_WOO_CONSUMER_KEY}}"
consumer_secret = "${{OMNI_WOO_CONSUMER_SECRET}}"
webhook_secret = "${{OMNI_WOO_WEBHOOK_SECRET}}"
{common}
[channels.vendure]
type = "vendure"
endpoint = "{vendure}"
username = "sentinel-admin"
password = "${{OMNI_VENDURE_PASSWORD}}"
{common}"#,
        db = db.url,
        seller = amazon.seller_id(),
        marketplace = amazon.marketplace_id(),
        meta = MetaHandle::endpoint(&base),
        location = shop.location_id,
        woo = sb.woo().site_url(),
        vendure = sb.vendure().admin_api_url(),
    )
}

/// Faults that make every connector fail loudly, echoing what it sent: the first requests
/// (token calls among them) refused with 401, later ones failing with 500 now and then.
fn add_echo_faults(sb: &Sandbox, refusals: u64, failures: u64) {
    for m in MARKETS {
        sb.faults()
            .add(FaultRule::new(m, "*", FaultKind::Echo { status: 401 }).times(refusals));
        sb.faults().add(
            FaultRule::new(m, "*", FaultKind::Echo { status: 500 })
                .probability(0.3)
                .times(failures),
        );
    }
}

/// Echo rules that have not fired yet.
fn unfired(sb: &Sandbox) -> Vec<String> {
    sb.faults()
        .list()
        .into_iter()
        .filter(|f| f.fired == 0)
        .map(|f| format!("{} {:?}", f.rule.marketplace, f.rule.kind))
        .collect()
}

/// Everything captured, by where it came from.
#[derive(Default)]
struct Captured(Vec<(String, String)>);

impl Captured {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }
}

/// The CLI with the sentinels in its environment and every log on.
fn cli(config: &Path, secrets: &Secrets, args: &[&str], captured: &mut Captured) -> bool {
    let mut c = Command::new(env!("CARGO_BIN_EXE_omnistock"));
    c.arg("--config").arg(config).args(args);
    c.env("RUST_LOG", "trace").env_remove("OMNISTOCK_LOG");
    for s in &secrets.all {
        c.env(s.var, &s.value);
    }
    let out = c.output().expect("run omnistock");
    captured.add(
        format!("omnistock {args:?} stdout"),
        String::from_utf8_lossy(&out.stdout),
    );
    captured.add(
        format!("omnistock {args:?} stderr"),
        String::from_utf8_lossy(&out.stderr),
    );
    out.status.success()
}

/// The daemon child; killed on drop.
struct Daemon {
    child: Child,
    stderr: PathBuf,
    stdout: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &Path, dir: &Path, secrets: &Secrets) -> Daemon {
    let stderr = dir.join("daemon.stderr.log");
    let stdout = dir.join("daemon.stdout.log");
    let mut c = Command::new(env!("CARGO_BIN_EXE_omnistock"));
    c.arg("--config")
        .arg(config)
        .arg("run")
        .env("RUST_LOG", "trace")
        .env_remove("OMNISTOCK_LOG")
        .stdout(Stdio::from(std::fs::File::create(&stdout).expect("stdout")))
        .stderr(Stdio::from(std::fs::File::create(&stderr).expect("stderr")));
    for s in &secrets.all {
        c.env(s.var, &s.value);
    }
    Daemon {
        child: c.spawn().expect("spawn the daemon"),
        stderr,
        stdout,
    }
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> Result<(u16, String), reqwest::Error> {
    let mut r = client.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// The database's free-text columns (last errors, events, bulk jobs).
async fn database_text(db: &TestDb) -> String {
    let store = omnistock::store::Store::open(&db.url)
        .await
        .expect("open store");
    let mut out = String::new();
    for sql in [
        "SELECT COALESCE(last_error, '') FROM channel_items",
        "SELECT detail FROM sync_events",
        "SELECT COALESCE(items_json, '') FROM bulk_jobs",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(store.pool())
            .await
            .unwrap_or_default();
        for r in rows {
            out.push_str(&r);
            out.push('\n');
        }
    }
    store.close().await;
    out
}

/// What a leak looks like in a report: where, which secret form, and the text around it.
fn leaks(captured: &Captured, needles: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (what, text) in &captured.0 {
        for (needle, name) in needles {
            if let Some(at) = text.find(needle.as_str()) {
                let from = text.floor_char_boundary(at.saturating_sub(200));
                let to = text.ceil_char_boundary((at + needle.len() + 200).min(text.len()));
                found.push(format!("{name} in {what}:\n…{}…", &text[from..to]));
            }
        }
    }
    found
}

async fn run(log_format: &str) {
    let started = Instant::now();
    let secrets = Secrets::new();
    let db = fresh_db().await;
    let dir = db.dir.path().to_owned();
    let sb = sandbox(&secrets).await;
    omnistock_connectors::common::http::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    // The echo fault really echoes: a request carrying a sentinel gets it back.
    let probe = sb
        .faults()
        .add(FaultRule::new("woo", "*", FaultKind::Echo { status: 500 }).times(1));
    let echoed = client
        .get(format!("{}/wp-json/wc/v3/products", sb.woo().site_url()))
        .bearer_auth(secrets.get("OMNI_ADMIN_TOKEN"))
        .send()
        .await
        .expect("probe")
        .text()
        .await
        .expect("probe body");
    assert!(
        echoed.contains(&secrets.get("OMNI_ADMIN_TOKEN")),
        "the echo fault echoes: {echoed}"
    );
    sb.faults().remove(probe);

    let port = free_port();
    let config = dir.join("omnistock.toml");
    std::fs::write(&config, config_text(&db, &sb, port, log_format)).expect("config");
    let mut captured = Captured::default();

    // The CLI before the daemon: a catalog, and a file the importer refuses.
    let mut csv = String::from("sku,title,price,quantity,image_urls\n");
    for i in 0..WEBHOOK_SKUS {
        csv.push_str(&format!(
            "SKU-{i:03},Item {i},12.50,7,https://img.example.com/{i}.jpg\n"
        ));
    }
    let good = dir.join("catalog.csv");
    std::fs::write(&good, csv).expect("csv");
    let bad = dir.join("bad.csv");
    std::fs::write(
        &bad,
        "sku,title,price,quantity\nA,x,not-a-price,-1\n\u{0}\n",
    )
    .expect("bad csv");
    let good_path = good.display().to_string();
    let bad_path = bad.display().to_string();
    assert!(
        cli(&config, &secrets, &["import", &good_path], &mut captured),
        "import: {}",
        captured.0.last().map(|(_, t)| t.as_str()).unwrap_or("")
    );
    assert!(!cli(
        &config,
        &secrets,
        &["import", &bad_path],
        &mut captured
    ));

    // The daemon, with faults that make every connector fail loudly.
    add_echo_faults(&sb, 2, 4);
    let mut daemon = spawn(&config, &dir, &secrets);
    let admin = format!("http://127.0.0.1:{port}");
    let token = secrets.get("OMNI_ADMIN_TOKEN");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&client, &format!("{admin}/healthz"), None)
        .await
        .is_err()
    {
        if let Some(status) = daemon.child.try_wait().expect("try_wait") {
            panic!(
                "the daemon exited ({status}):\n{}",
                std::fs::read_to_string(&daemon.stderr).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "the daemon does not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Bad signatures, a wrong Meta handshake, wrong admin tokens.
    for (channel, header) in [
        ("shop", "X-Shopify-Hmac-Sha256"),
        ("woo", "X-WC-Webhook-Signature"),
        ("fb", "X-Hub-Signature-256"),
    ] {
        let r = client
            .post(format!("{admin}/webhooks/{channel}"))
            .header(header, "c2lnbmF0dXJl")
            .header("X-WC-Webhook-Delivery-ID", "1")
            .body("{\"id\":1}")
            .send()
            .await
            .expect("webhook");
        assert_eq!(r.status().as_u16(), 401, "{channel}");
        captured.add(
            format!("webhook {channel} answer"),
            r.text().await.unwrap_or_default(),
        );
    }
    let (code, body) = get(
        &client,
        &format!("{admin}/webhooks/fb?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=x"),
        None,
    )
    .await
    .expect("handshake");
    assert_eq!(code, 403);
    captured.add("meta handshake answer", body);
    for wrong in [None, Some("wrong-token")] {
        let (code, body) = get(&client, &format!("{admin}/api/status"), wrong)
            .await
            .expect("status");
        assert_eq!(code, 401);
        captured.add("/api/status without the token", body);
    }

    // Every fault fired: the daemon went through refused tokens and echoed failures.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = unfired(&sb);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "faults never fired: {left:?}\n{}",
            std::fs::read_to_string(&daemon.stderr).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The CLI while the daemon runs, against fresh echoing faults.
    add_echo_faults(&sb, 1, 2);
    cli(&config, &secrets, &["check"], &mut captured);
    cli(&config, &secrets, &["status"], &mut captured);
    cli(&config, &secrets, &["status", "--json"], &mut captured);
    cli(&config, &secrets, &["explain", "SKU-000"], &mut captured);
    cli(
        &config,
        &secrets,
        &["resync", "--dry-run", "--wait-secs", "10"],
        &mut captured,
    );
    cli(&config, &secrets, &["orders"], &mut captured);

    for path in ["/api/status", "/metrics"] {
        let (code, body) = get(&client, &format!("{admin}{path}"), Some(&token))
            .await
            .expect("admin");
        assert_eq!(code, 200, "{path}: {body}");
        captured.add(path, body);
    }

    // A clean stop, so that the logs are complete.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(daemon.child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon.child.try_wait().expect("try_wait").is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    captured.add(
        "daemon stderr",
        std::fs::read_to_string(&daemon.stderr).unwrap_or_default(),
    );
    captured.add(
        "daemon stdout",
        std::fs::read_to_string(&daemon.stdout).unwrap_or_default(),
    );
    captured.add("database", database_text(&db).await);

    let found = leaks(&captured, &secrets.needles());
    assert!(
        found.is_empty(),
        "secrets leaked ({log_format} logs):\n\n{}",
        found.join("\n\n")
    );
    // The search can find things: the echoes reached the outputs, masked.
    let all: String = captured.0.iter().map(|(_, t)| t.as_str()).collect();
    let masked = all.matches("***").count();
    assert!(
        masked > 0 && all.contains("authorization: ***"),
        "the echoed credentials never reached an output; the search proves nothing"
    );
    let bytes: usize = captured.0.iter().map(|(_, t)| t.len()).sum();
    eprintln!(
        "hostile secrets ({log_format}, {}): {} sources, {bytes} bytes searched for {} forms of {} \
         secrets, {masked} masked echoes, in {:?}",
        crate::support::backend_name(),
        captured.0.len(),
        secrets.needles().len(),
        secrets.all.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_pretty_logs_outputs_or_the_admin_api() {
    run("pretty").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_json_logs_outputs_or_the_admin_api() {
    run("json").await;
}
