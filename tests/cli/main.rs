//! The operator's view: the `omnistock` binary run as a merchant would, against a fresh database
//! on the backend `OMNISTOCK_TEST_DB` selects. Covers every CLI command, and the daemon's life:
//! admin HTTP, hot reload (good and bad edits, SIGHUP), the single-instance guard and clean shutdown.

#[path = "../support/mod.rs"]
mod support;

mod daemon;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{TestDb, fresh_db};

/// A merchant's working directory: a config file and a database.
pub struct Merchant {
    pub db: TestDb,
    pub config: PathBuf,
}

/// Secrets the config pulls from the environment; tests assert they never show up in output.
pub const SENTINEL_SECRET: &str = "sEcReT-sentinel-7c1f";

pub fn config_text(db_url: &str, listen: &str, extra_daemon: &str, ebay_stock: &str) -> String {
    format!(
        r#"[daemon]
database = "{db_url}"
listen = "{listen}"
reload_poll_ms = 100
shutdown_timeout_secs = 5
{extra_daemon}

[[locations]]
id = "main"

[[locations]]
id = "backroom"

[channels.ebay]
type = "ebay"
client_id = "client-id"
client_secret = "${{EBAY_CLIENT_SECRET}}"
refresh_token = "${{EBAY_REFRESH_TOKEN}}"
marketplace_id = "EBAY_US"
merchant_location_key = "main"
policies = {{ fulfillment = "f1", payment = "p1", return = "r1" }}
category_id = "20625"
locations = ["main"]
stock = {{ {ebay_stock} }}

# A channel that cannot start: the WooCommerce connector refuses to send its keys over plain
# http to another host.
[channels.woo_shop]
type = "woocommerce"
endpoint = "http://shop.example.com"
consumer_key = "${{EBAY_CLIENT_SECRET}}"
consumer_secret = "${{EBAY_REFRESH_TOKEN}}"
webhook_secret = "${{EBAY_REFRESH_TOKEN}}"
price = {{ multiplier = 1.15, add = "0.50", round_to = "0.99" }}
"#
    )
}

/// `text` (from [`config_text`]) with the ebay channel pointed at `base` (its API and token
/// endpoint), e.g. a sandbox or a closed loopback port.
pub fn ebay_at(text: &str, base: &str) -> String {
    let marker = "type = \"ebay\"\n";
    assert!(text.contains(marker), "no ebay section in:\n{text}");
    text.replacen(
        marker,
        &format!(
            "{marker}endpoint = \"{base}\"\ntoken_endpoint = \"{base}/identity/v1/oauth2/token\"\n"
        ),
        1,
    )
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Merchant {
    pub async fn new() -> Merchant {
        Self::with(|url| config_text(url, "127.0.0.1:0", "", "buffer = 2")).await
    }

    pub async fn with(text: impl FnOnce(&str) -> String) -> Merchant {
        let db = fresh_db().await;
        let config = db.dir.path().join("omnistock.toml");
        std::fs::write(&config, text(&db.url)).unwrap();
        Merchant { db, config }
    }

    pub fn write_config(&self, text: &str) {
        // Write then rename, as editors do, so the daemon never reads half a file.
        let tmp = self.config.with_extension("toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config).unwrap();
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_omnistock"));
        c.arg("--config").arg(&self.config);
        c.env("EBAY_CLIENT_SECRET", SENTINEL_SECRET)
            .env("EBAY_REFRESH_TOKEN", SENTINEL_SECRET);
        c.env_remove("OMNISTOCK_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("OMNISTOCK_LOG");
        c.current_dir(self.db.dir.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().expect("run omnistock");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains(SENTINEL_SECRET),
            "a secret leaked into the output of {args:?}:\n{all}"
        );
        out
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "omnistock {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "omnistock {args:?} should have failed"
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "panic in {args:?}"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn csv(&self, name: &str, content: &str) -> String {
        let p = self.db.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }
}

const CATALOG: &str = "sku,title,price,quantity,components\n\
MUG-RED,Red mug,12.00,10,\n\
COASTER,Coaster,2.50,40,\n\
GIFT-SET,Gift set,25.00,,MUG-RED:2|COASTER:4\n";

fn status_json(m: &Merchant) -> serde_json::Value {
    serde_json::from_str(&m.ok(&["status", "--json"])).expect("status --json is JSON")
}

fn channel<'a>(status: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == id)
        .unwrap()
}

#[tokio::test]
async fn check_validates_and_never_prints_secrets() {
    let m = Merchant::new().await;
    let out = m.ok(&["check", "--skip-healthchecks"]);
    assert!(
        out.contains("OK") && out.contains("ebay (ebay)") && out.contains("woo_shop (woocommerce)"),
        "{out}"
    );
    // A typo inside a channel section: refused with its line.
    let text = std::fs::read_to_string(&m.config).unwrap().replace(
        "marketplace_id = \"EBAY_US\"",
        "marketplace_idd = \"EBAY_US\"",
    );
    m.write_config(&text);
    let err = m.fails(&["check"]);
    assert!(
        err.contains("marketplace_idd")
            && err.contains("omnistock.toml:19:1:")
            && err.contains("did you mean `marketplace_id`"),
        "{err}"
    );
}

#[tokio::test]
async fn check_fails_when_a_channel_cannot_be_reached() {
    let port = closed_port();
    let m = Merchant::with(|url| {
        ebay_at(
            &config_text(url, "127.0.0.1:0", "", "buffer = 2"),
            &format!("http://127.0.0.1:{port}"),
        )
    })
    .await;
    let out = m.run(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check passed:\n{stdout}");
    let fail = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line:\n{stdout}"));
    assert!(fail.contains(" ebay "), "{fail}");
    // A connector that refuses its config is a failure too, with the reason.
    assert!(
        stdout.contains("FAIL woo_shop") && stdout.contains("uses plain http"),
        "{stdout}"
    );
    assert!(
        stderr.contains("2 of 2 channel healthchecks failed: ebay, woo_shop"),
        "{stderr}"
    );

    // Without the probes the same file is fine.
    let out = m.ok(&["check", "--skip-healthchecks"]);
    assert!(out.contains("OK") && !out.contains("FAIL"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_probes_a_reachable_channel() {
    let sandbox = omnistock_sandbox::Sandbox::start(omnistock_sandbox::SandboxOptions {
        port: 0,
        ..Default::default()
    })
    .await
    .expect("start the sandbox");
    let creds = sandbox.ebay().credentials();
    let base = format!("{}/ebay", sandbox.base_url());
    let m = Merchant::with(|url| {
        ebay_at(&config_text(url, "127.0.0.1:0", "", "buffer = 2"), &base)
            .replacen(
                "client_id = \"client-id\"",
                &format!("client_id = \"{}\"", creds.client_id),
                1,
            )
            .replacen("${EBAY_CLIENT_SECRET}", &creds.client_secret, 1)
            .replacen("${EBAY_REFRESH_TOKEN}", &creds.refresh_token, 1)
            .replacen(
                "[channels.woo_shop]\n",
                "[channels.woo_shop]\nenabled = false\n",
                1,
            )
    })
    .await;
    // The sandbox answers on this runtime: keep it running while the binary blocks this thread.
    let out = tokio::task::block_in_place(|| m.ok(&["check"]));
    let ok = out
        .lines()
        .find(|l| l.trim_start().starts_with("ok"))
        .unwrap_or_else(|| panic!("no ok line:\n{out}"));
    assert!(
        ok.contains(" ebay ") && ok.contains("token ok") && ok.ends_with(" ms)"),
        "{ok}"
    );
    assert!(out.contains("skip woo_shop"), "{out}");
    assert!(
        !out.contains(&creds.client_secret) && !out.contains(&creds.refresh_token),
        "a secret leaked:\n{out}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn missing_config_is_a_clear_error() {
    let m = Merchant::new().await;
    let out = Command::new(env!("CARGO_BIN_EXE_omnistock"))
        .args(["--config", "/nonexistent/omnistock.toml", "status"])
        .current_dir(m.db.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/omnistock.toml"), "{err}");
}

#[tokio::test]
async fn import_explain_status_and_stock_commands() {
    let m = Merchant::new().await;
    let file = m.csv("catalog.csv", CATALOG);
    let out = m.ok(&["import", &file, "--dry-run"]);
    assert!(out.contains("dry run"), "{out}");
    assert_eq!(status_json(&m)["skus"], 0, "dry run wrote nothing");
    let out = m.ok(&["import", &file]);
    assert!(
        out.contains("3 rows read") && out.contains("variants changed: 3"),
        "{out}"
    );

    let s = status_json(&m);
    assert_eq!(s["skus"], 3);
    assert_eq!(channel(&s, "ebay")["dirty"], 3, "{s}");
    assert_eq!(channel(&s, "woo_shop")["items"], 3);

    let out = m.ok(&["explain", "MUG-RED"]);
    assert!(out.contains("available 10 − buffer 2 = 8"), "{out}");
    assert!(
        out.contains(
            "base 12.00 → × 1.15 = 13.80 → + 0.50 = 14.30 → round to …0.99 = 14.99 ⇒ 14.99"
        ),
        "{out}"
    );
    assert!(out.contains("never pushed"), "{out}");
    let out = m.ok(&["explain", "GIFT-SET", "--channel", "ebay"]);
    assert!(
        out.contains("bundle of 2 × COASTER")
            || out.contains("bundle of 4 × COASTER + 2 × MUG-RED"),
        "{out}"
    );
    assert!(!out.contains("woo_shop"), "{out}");
    assert!(
        m.fails(&["explain", "NOPE"])
            .contains("unknown SKU \"NOPE\"")
    );
    assert!(
        m.fails(&["explain", "MUG-RED", "--channel", "etsy"])
            .contains("unknown channel \"etsy\"")
    );

    let out = m.ok(&["stock", "adjust", "MUG-RED", "-4"]);
    assert!(out.contains("on hand 10 → 6"), "{out}");
    let out = m.ok(&["stock", "set", "MUG-RED", "3", "--location", "backroom"]);
    assert!(out.contains("MUG-RED at backroom: on hand 0 → 3"), "{out}");
    assert!(
        m.fails(&["stock", "set", "NOPE", "1"])
            .contains("unknown SKU \"NOPE\"")
    );
    assert!(
        m.fails(&["stock", "adjust", "MUG-RED", "-100"])
            .contains("on hand would be -94")
    );
    assert!(
        m.fails(&["stock", "adjust", "MUG-RED", "lots"])
            .contains("not a whole number")
    );
    assert!(
        m.fails(&["stock", "set", "MUG-RED", "1", "--location", "attic"])
            .contains("unknown location")
    );
    let out = m.ok(&["explain", "MUG-RED", "--channel", "ebay"]);
    assert!(
        out.contains("available 6 − buffer 2 = 4"),
        "ebay sells main only:\n{out}"
    );

    assert!(m.ok(&["orders"]).contains("no orders"));
    let orders: serde_json::Value =
        serde_json::from_str(&m.ok(&["orders", "--json", "--since", "7d"])).unwrap();
    assert_eq!(orders, serde_json::json!([]));
    assert!(
        m.fails(&["orders", "--since", "last tuesday"])
            .contains("--since")
    );
}

#[tokio::test]
async fn a_bad_import_names_row_and_column_and_changes_nothing() {
    let m = Merchant::new().await;
    let file = m.csv(
        "bad.csv",
        "sku,title,price,quantity\nA,Fine,1.00,1\nB,Bad,abc,1\n",
    );
    let err = m.fails(&["import", &file]);
    assert!(err.contains("row 3, column price"), "{err}");
    assert_eq!(status_json(&m)["skus"], 0);
    let err = m.fails(&["import", "/nonexistent.csv"]);
    assert!(err.contains("cannot read /nonexistent.csv"), "{err}");
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
