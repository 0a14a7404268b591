//! `config/demo.toml` against `omnistock sandbox`'s fakes: every channel of the shipped demo
//! config signs in with the placeholder secrets the sandbox accepts, lists the demo catalog, and
//! (Meta, Shopify, WooCommerce) sends webhooks the daemon accepts.

use std::time::Duration;

use omnistock::catalog::import::{ImportOptions, import_bytes};
use omnistock::cli::sandbox::{Args, options};
use omnistock::daemon::Daemon;
use omnistock::store::Store;
use omnistock::sync::SyncPlan;
use omnistock_sandbox::{OrderLine, Sandbox};

use crate::support::fresh_db;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_config_runs_every_channel_against_omnistock_sandbox() {
    let db = fresh_db().await;
    let sandbox = Sandbox::start(
        options(&Args {
            port: 0,
            latency_ms: 0,
            seed: 1,
            seed_demo: false,
            webhooks_to: String::new(),
            no_webhooks: true,
        })
        .expect("options"),
    )
    .await
    .expect("sandbox");
    sandbox.ensure_ebay_location(omnistock::cli::sandbox::DEMO_LOCATION_KEY);
    let text = include_str!("../../config/demo.toml")
        .replace("http://127.0.0.1:18080", &sandbox.base_url())
        .replace("sqlite://omnistock-demo.db", &db.url)
        .replace("127.0.0.1:8686", "127.0.0.1:0")
        .replace("log_format = \"pretty\"", "");
    let path = db.dir.path().join("demo.toml");
    std::fs::write(&path, &text).expect("write");
    let config = omnistock::config::load(&path).expect("demo config");
    let ids: Vec<String> = config.channels.keys().cloned().collect();
    assert_eq!(ids.len(), 6, "{ids:?}");
    let plan = SyncPlan::from_config(&config);
    let store = Store::open(&db.url).await.expect("store");
    omnistock::catalog::sync_locations(&store, &[("main".into(), "Demo".into())])
        .await
        .expect("locations");
    import_bytes(
        &store,
        &plan,
        include_bytes!("../../config/demo-catalog.csv"),
        &ImportOptions {
            dry_run: false,
            default_location: "main".into(),
            locations: vec!["main".into()],
            default_currency: "USD".into(),
        },
    )
    .await
    .expect("import");
    let daemon = Daemon::start(&path).await.expect("daemon");
    assert!(
        omnistock::http::engine_status(&daemon.shared.engine)
            .problems
            .is_empty(),
        "every channel has a connector"
    );
    let shown = |id: &str, sku: &str| match id {
        "ebay" => sandbox.ebay().current_quantity(sku),
        "amazon" => sandbox.amazon().current_quantity(sku),
        "facebook" => sandbox.meta().current_quantity(sku),
        "shop" => sandbox.shopify().current_quantity(sku),
        "woo" => sandbox.woo().current_quantity(sku),
        "vendure" => sandbox.vendure().current_quantity(sku),
        other => panic!("unexpected channel {other}"),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT channel, desired_qty, desired_version, pushed_version, state FROM channel_items \
             WHERE sku = 'MUG-RED'",
        )
        .fetch_all(store.pool())
        .await
        .expect("rows");
        let done = rows.len() == ids.len()
            && rows.iter().all(|(ch, want, dv, pv, _)| {
                dv <= pv && shown(ch, "MUG-RED") == u32::try_from(*want).ok()
            });
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "MUG-RED did not reach every demo channel: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The webhook secrets line up: a Shopify order announced by webhook is accepted.
    sandbox
        .shopify()
        .set_webhook(Some(omnistock_sandbox::WebhookTarget::new(
            format!("http://{}/webhooks/shop", daemon.http_addr),
            omnistock::cli::sandbox::DEMO_SECRET,
        )));
    sandbox
        .shopify()
        .place_order(&[OrderLine::new("MUG-RED", 1)])
        .expect("order");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while daemon
        .shared
        .webhooks
        .snapshot()
        .get("shop")
        .is_none_or(|c| c.accepted == 0)
    {
        assert!(std::time::Instant::now() < deadline, "webhook not accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.shutdown().await;
    store.close().await;
    sandbox.shutdown().await;
}
