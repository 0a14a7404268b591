//! Hostile input (DESIGN §10): whatever a merchant's editor, a CSV export or an attacker hands
//! the daemon, it answers with an error and loses nothing — never a panic, never half-applied
//! state. Property tests throw random and mutated inputs at the config parser and the CSV
//! importer; SQL injection strings travel through SKUs, titles and CLI arguments as plain data.
//! [`limits`] checks the size bounds the properties do not reach; [`secrets`] runs the daemon
//! against echoing marketplaces and searches every output for the credentials.
//! Database cases run on SQLite and PostgreSQL (`OMNISTOCK_TEST_DB`).

#[path = "../support/mod.rs"]
mod support;

mod limits;
mod log_leaks;

use std::process::Command;

use omnistock::catalog::import::{ImportOptions, import_bytes};
use omnistock::store::Store;
use omnistock::sync::SyncPlan;
use proptest::prelude::*;

use support::fresh_db;

const EXAMPLE: &str = include_str!("../../config/omnistock.example.toml");
const DEMO_CATALOG: &[u8] = include_bytes!("../../config/demo-catalog.csv");

fn parse(text: &str) -> Result<omnistock::config::Config, omnistock::config::ConfigError> {
    omnistock::config::parse(text, "fuzz.toml", &|name| Some(format!("value-of-{name}")))
}

/// A mutation of a byte string: flip, delete, insert or truncate at a position.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    Just(b'"'),
                    Just(b'['),
                    Just(b'\n'),
                    Just(b'='),
                    Just(b'$'),
                    Just(b'{')
                ],
                1..16
            )
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if !bytes.is_empty() {
                    let i = i % bytes.len();
                    bytes[i] ^= b | 1;
                }
            }
            Mutation::Delete(i, n) => {
                let i = i % len;
                let end = (i + n).min(bytes.len());
                if i < end {
                    bytes.drain(i..end);
                }
            }
            Mutation::Insert(i, v) => {
                let i = i % (bytes.len() + 1);
                bytes.splice(i..i, v.iter().copied());
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random text never panics the parser; an error always says where.
    #[test]
    fn config_parser_survives_random_text(text in "\\PC{0,400}") {
        if let Err(e) = parse(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Mutations of the shipped example config: refused with a message naming the file and a
    /// line, or accepted — never a panic.
    #[test]
    fn config_parser_survives_mutated_example(mutations in prop::collection::vec(mutation(), 1..6)) {
        let bytes = apply(EXAMPLE.as_bytes().to_vec(), &mutations);
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = parse(&text) {
            let msg = e.to_string();
            prop_assert!(msg.contains("fuzz.toml"), "the message names the file: {msg}");
        }
    }
}

fn import_opts(dry_run: bool) -> ImportOptions {
    ImportOptions {
        dry_run,
        default_location: "main".into(),
        locations: vec!["main".into()],
        default_currency: "USD".into(),
    }
}

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .expect("count")
}

/// A store with one location and the example config's plan.
async fn store() -> (support::TestDb, Store, SyncPlan) {
    let db = fresh_db().await;
    let store = Store::open(&db.url).await.expect("open store");
    omnistock::catalog::sync_locations(&store, &[("main".into(), "Main".into())])
        .await
        .expect("locations");
    let config = parse(EXAMPLE).expect("the example config parses");
    (db, store, SyncPlan::from_config(&config))
}

/// Mutated catalogs: either imported whole or refused whole. A refused file leaves every table
/// as it was; an accepted one imports again as a no-op (idempotent by file hash).
#[test]
fn csv_import_is_all_or_nothing_under_mutation() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_db, store, plan) = rt.block_on(store());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let refused = std::cell::Cell::new(0u32);
    let accepted = std::cell::Cell::new(0u32);
    runner
        .run(&prop::collection::vec(mutation(), 1..5), |mutations| {
            let bytes = apply(DEMO_CATALOG.to_vec(), &mutations);
            rt.block_on(async {
                let tables = ["products", "variants", "stock_levels", "stock_movements"];
                let mut before = Vec::new();
                for t in tables {
                    before.push(count(&store, t).await);
                }
                match import_bytes(&store, &plan, &bytes, &import_opts(false)).await {
                    Err(e) => {
                        refused.set(refused.get() + 1);
                        prop_assert!(!e.to_string().is_empty());
                        for (t, b) in tables.iter().zip(&before) {
                            prop_assert_eq!(
                                count(&store, t).await,
                                *b,
                                "{} changed by a refused import",
                                t
                            );
                        }
                    }
                    Ok(_) => {
                        accepted.set(accepted.get() + 1);
                        let again = import_bytes(&store, &plan, &bytes, &import_opts(false))
                            .await
                            .expect("the same file imports again");
                        prop_assert_eq!(again.stock_changed, 0);
                    }
                }
                Ok(())
            })
        })
        .expect("import property");
    let (refused, accepted) = (refused.get(), accepted.get());
    assert!(
        refused > 0 && accepted > 0,
        "both outcomes exercised: {refused} refused, {accepted} accepted"
    );
    rt.block_on(store.close());
}

/// Random bytes (binary, huge fields, odd quoting) are refused without a panic.
#[test]
fn csv_import_refuses_garbage() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (_db, store, plan) = rt.block_on(store());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..2048), |bytes| {
            rt.block_on(async {
                let _ = import_bytes(&store, &plan, &bytes, &import_opts(true)).await;
                Ok(())
            })
        })
        .expect("garbage property");
    let huge = format!(
        "sku,title,price,quantity\nA,{},1.00,1\n",
        "x".repeat(70_000)
    );
    let err = rt
        .block_on(import_bytes(
            &store,
            &plan,
            huge.as_bytes(),
            &import_opts(false),
        ))
        .expect_err("a 70 KB field is refused");
    assert!(
        err.to_string().contains("65536"),
        "the limit is named: {err}"
    );
    assert_eq!(rt.block_on(count(&store, "variants")), 0);
    rt.block_on(store.close());
}

const INJECTIONS: &[&str] = &[
    "X'; DROP TABLE variants; --",
    "Y\"); DELETE FROM stock_levels; --",
    "Z' OR '1'='1",
    "W`; UPDATE stock_levels SET on_hand = 0; --",
];

/// SQL in SKUs, titles and CLI arguments is stored and echoed as data; every table survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_injection_strings_are_plain_data() {
    let (db, store, plan) = store().await;
    let mut csv = String::from("sku,title,price,quantity\n");
    for (i, s) in INJECTIONS.iter().enumerate() {
        let q = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
        csv.push_str(&format!(
            "{},{},9.99,{}\n",
            q(s),
            q(&format!("{s} title")),
            i + 1
        ));
    }
    import_bytes(&store, &plan, csv.as_bytes(), &import_opts(false))
        .await
        .expect("import");
    let skus: Vec<String> = sqlx::query_scalar("SELECT sku FROM variants ORDER BY sku")
        .fetch_all(store.pool())
        .await
        .expect("skus");
    let mut want: Vec<String> = INJECTIONS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(skus, want);
    assert_eq!(count(&store, "stock_levels").await, INJECTIONS.len() as i64);

    // The CLI takes them as arguments too.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("omnistock.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"{}\"\n\n[[locations]]\nid = \"main\"\n",
            db.url
        ),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_omnistock"))
        .arg("--config")
        .arg(&config)
        .args(["explain", INJECTIONS[0]])
        .output()
        .expect("explain");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "explain of an injection SKU: {text}");
    assert!(text.contains(INJECTIONS[0]), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_omnistock"))
        .arg("--config")
        .arg(&config)
        .args(["stock", "set", INJECTIONS[1], "7", "--location", "main"])
        .output()
        .expect("stock set");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on_hand: i64 = sqlx::query_scalar("SELECT on_hand FROM stock_levels WHERE sku = $1")
        .bind(INJECTIONS[1])
        .fetch_one(store.pool())
        .await
        .expect("level");
    assert_eq!(on_hand, 7);
    assert_eq!(count(&store, "variants").await, INJECTIONS.len() as i64);
    store.close().await;
}

/// Random bodies and signature headers at `/webhooks/{channel}`: every one is refused with 401
/// (or 413 when too big), nothing is recorded, the daemon keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_webhooks_are_refused_and_record_nothing() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("omnistock.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\ndatabase = \"{}\"\nlisten = \"127.0.0.1:0\"\n\n[[locations]]\nid = \"main\"\n\n\
             [channels.shop]\ntype = \"shopify\"\nendpoint = \"http://127.0.0.1:9\"\n\
             access_token = \"shpat_x\"\nlocation_id = \"gid://shopify/Location/1\"\n\
             webhook_secret = \"whsec\"\n\n\
             [channels.woo]\ntype = \"woocommerce\"\nendpoint = \"http://127.0.0.1:9\"\n\
             consumer_key = \"ck\"\nconsumer_secret = \"cs\"\nwebhook_secret = \"whsec\"\n\n\
             [channels.fb]\ntype = \"facebook\"\nendpoint = \"http://127.0.0.1:9/v25.0\"\n\
             catalog_id = \"1\"\naccess_token = \"EAAB\"\napp_secret = \"whsec\"\n",
            db.url
        ),
    )
    .expect("config");
    let daemon = omnistock::daemon::Daemon::start(&config)
        .await
        .expect("daemon starts");
    omnistock_connectors::common::http::install_crypto_provider();
    let client = reqwest::Client::new();
    let base = format!("http://{}", daemon.http_addr);
    let headers = [
        "X-Shopify-Hmac-Sha256",
        "X-WC-Webhook-Signature",
        "X-Hub-Signature-256",
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let rt = tokio::runtime::Handle::current();
    let strategy = (
        0usize..3,
        0usize..3,
        "[ -~]{0,80}",
        prop::collection::vec(any::<u8>(), 0..4096),
    );
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    tokio::task::block_in_place(|| {
        runner
            .run(&strategy, |(channel, header, sig, body)| {
                let channel = ["shop", "woo", "fb"][channel];
                let status = rt.block_on(async {
                    client
                        .post(format!("{base}/webhooks/{channel}"))
                        .header(headers[header], sig)
                        .header("X-WC-Webhook-Delivery-ID", "1")
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                });
                let status = status.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(status, 401);
                *statuses.lock().expect("lock").entry(status).or_default() += 1;
                Ok(())
            })
            .expect("webhook property");
    });
    let big = vec![b'{'; omnistock::http::webhooks::MAX_WEBHOOK_BYTES + 1];
    let r = client
        .post(format!("{base}/webhooks/shop"))
        .body(big)
        .send()
        .await
        .expect("oversized");
    assert_eq!(r.status().as_u16(), 413);
    let recorded = count(&daemon.shared.store, "webhook_deliveries").await;
    assert_eq!(recorded, 0, "nothing recorded: {statuses:?}");
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("health");
    assert!(health.status().is_success());
    daemon.shutdown().await;
}
