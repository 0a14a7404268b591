//! Stories against the Meta fake (`omnistock_sandbox::meta`): the connector's real HTTP against
//! a stateful Graph API, checked through the [`MetaHandle`]; plus checks of what we send and read
//! against contracts/specs/meta (skipped when the specs are absent).

use std::time::Duration;

use omnistock_sandbox::meta::{
    BucLimit, MetaHandle, MetaOptions, MetaSeedListing, OrderLine, USE_CASE_BATCH, USE_CASE_CATALOG,
};
use omnistock_sandbox::{FaultKind, FaultRule, Sandbox, SandboxOptions};
use serde_json::{Value, json};

use super::*;
use crate::common::Secret;
use crate::model::{Currency, Money, OrderStatus};

const LIMITS: Limits = Limits {
    timeout: Duration::from_secs(10),
    connect_timeout: Duration::from_secs(5),
    rate_per_sec: 1000.0,
    burst: 1000,
    batch_size: 1000,
    retry: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
    throttle_pause: Duration::from_millis(50),
};

async fn sandbox(meta: MetaOptions) -> Sandbox {
    Sandbox::start(SandboxOptions {
        meta: MetaOptions {
            batch_processing: Duration::from_millis(50),
            ..meta
        },
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

fn config(sb: &Sandbox) -> MetaConfig {
    let c = sb.meta().credentials();
    let mut cfg = MetaConfig::new(
        MetaHandle::endpoint(&sb.base_url()),
        c.catalog_id,
        Secret::new(c.access_token),
        Secret::new(c.app_secret),
        LIMITS,
    );
    cfg.commerce_account_id = Some(c.commerce_account_id);
    cfg.orders_enabled = true;
    cfg.link_template = Some("https://shop.example/p/{sku}".into());
    cfg.batch_wait = Duration::from_secs(5);
    cfg.items_batch_per_hour = 3_600_000;
    cfg
}

fn connector(sb: &Sandbox) -> MetaConnector {
    MetaConnector::new(config(sb)).expect("valid config")
}

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::parse("USD").unwrap()).unwrap()
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn listing(s: &str, quantity: u32, price: &str) -> ListingUpdate {
    ListingUpdate {
        sku: sku(s),
        external_id: None,
        title: format!("Mug {s}"),
        description: "A sturdy mug".into(),
        brand: Some("Omni".into()),
        barcode: Some("4006381333931".into()),
        image_urls: vec![format!("https://shop.example/img/{s}.jpg")],
        options: vec![("Colour".into(), "Red".into())],
        group_id: Some("MUG".into()),
        quantity,
        price: usd(price),
        version: 1,
    }
}

fn stock(s: &str, quantity: u32, price: Option<&str>) -> StockUpdate {
    StockUpdate {
        sku: sku(s),
        external_id: None,
        quantity,
        price: price.map(usd),
        version: 2,
    }
}

fn applied(o: &ItemOutcome) -> bool {
    matches!(o, ItemOutcome::Applied { .. })
}

#[tokio::test]
async fn listings_are_created_and_stock_updated_through_batches() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    let c = connector(&sb);
    let out = c
        .push_listings(&[listing("MUG-1", 4, "12.99"), listing("MUG/2", 0, "7")])
        .await
        .unwrap();
    assert!(out.iter().all(applied), "{out:?}");
    let m = sb.meta();
    assert_eq!(m.current_quantity("MUG-1"), Some(4));
    assert_eq!(
        m.current_availability("MUG/2").as_deref(),
        Some("out of stock")
    );
    let p = m.product("MUG-1").unwrap();
    assert_eq!(p["url"], "https://shop.example/p/MUG-1");
    assert_eq!(p["retailer_product_group_id"], "MUG");

    let out = c
        .push_stock(&[stock("MUG-1", 9, Some("10.50")), stock("GHOST", 1, None)])
        .await
        .unwrap();
    assert!(applied(&out[0]), "{out:?}");
    assert!(
        matches!(&out[1], ItemOutcome::NotListed { error } if error.contains("does not exist"))
    );
    assert_eq!(m.current_quantity("MUG-1"), Some(9));
    assert_eq!(m.current_price("MUG-1").unwrap().value, "10.50");
    assert_eq!(
        m.current_quantity("GHOST"),
        None,
        "no upsert from a stock push"
    );

    let out = c.delist(&[sku("MUG/2"), sku("NEVER")]).await.unwrap();
    assert!(out.iter().all(applied), "{out:?}");
    assert_eq!(m.skus(), ["MUG-1"]);
    let h = c.healthcheck().await.unwrap();
    assert!(h.summary.contains("1 items"), "{}", h.summary);
    assert!(c.capabilities().max_stock_batch > 0);
}

#[tokio::test]
async fn per_item_errors_are_rejected_with_metas_message() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    sb.meta().add_fault(
        "items_batch",
        FaultKind::reject_skus(
            ["BAD"],
            1_234,
            "Image at image_link could not be downloaded",
        ),
    );
    let mut cfg = config(&sb);
    let c = connector(&sb);
    let out = c
        .push_listings(&[listing("OK", 1, "1"), listing("BAD", 1, "1")])
        .await
        .unwrap();
    assert!(applied(&out[0]));
    assert_eq!(
        out[1],
        ItemOutcome::Rejected {
            code: None,
            error: "Image at image_link could not be downloaded".into()
        }
    );
    // Without a link template a new item lacks `link`: Meta refuses it in the batch.
    cfg.link_template = None;
    let bare = MetaConnector::new(cfg).unwrap();
    let out = bare.push_listings(&[listing("NEW", 1, "1")]).await.unwrap();
    assert!(
        matches!(&out[0], ItemOutcome::Rejected { error, .. } if error.contains("link")),
        "{out:?}"
    );
    assert_eq!(c.stats().extra["items_rejected"], 1);
}

#[tokio::test]
async fn unfinished_handles_come_back_as_retry_and_resend_is_safe() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    sb.meta()
        .seed_listing(MetaSeedListing::new("A", 1, "1.00"))
        .unwrap();
    let mut cfg = config(&sb);
    cfg.batch_wait = Duration::from_millis(300);
    let c = MetaConnector::new(cfg).unwrap();
    sb.meta().hold_batches(true);
    let out = c.push_stock(&[stock("A", 5, None)]).await.unwrap();
    assert!(
        matches!(&out[0], ItemOutcome::Retry { error } if error.contains("still in progress")),
        "{out:?}"
    );
    sb.meta().hold_batches(false);
    let out = c.push_stock(&[stock("A", 5, None)]).await.unwrap();
    assert!(applied(&out[0]));
    assert_eq!(sb.meta().current_quantity("A"), Some(5));
    assert_eq!(c.stats().extra["items_unresolved"], 1);
}

fn graph_error(code: u32, message: &str) -> String {
    json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Axyz"}})
        .to_string()
}

#[tokio::test]
async fn throttle_80014_is_rate_limited_then_succeeds() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    sb.meta()
        .seed_listing(MetaSeedListing::new("A", 1, "1.00"))
        .unwrap();
    sb.meta().faults().add(
        FaultRule::new(
            "meta",
            "items_batch",
            FaultKind::ServerError {
                status: 400,
                body: Some(graph_error(80014, "(#80014) There have been too many calls for the batch uploads to this catalog account.")),
            },
        )
        .times(1),
    );
    let c = connector(&sb);
    let e = c.push_stock(&[stock("A", 3, None)]).await.unwrap_err();
    assert_eq!(e.class(), crate::ErrorClass::RateLimited, "{e}");
    assert_eq!(e.retry_after(), Some(LIMITS.throttle_pause));
    let out = c.push_stock(&[stock("A", 3, None)]).await.unwrap();
    assert!(applied(&out[0]));
    assert_eq!(c.stats().rate_limited, 1);
}

#[tokio::test]
async fn buc_throttle_pauses_for_the_regain_time() {
    let sb = sandbox(MetaOptions {
        buc: [(USE_CASE_BATCH.to_owned(), BucLimit::new(2, 600))].into(),
        ..MetaOptions::unlimited()
    })
    .await;
    sb.meta()
        .seed_listing(MetaSeedListing::new("A", 1, "1.00"))
        .unwrap();
    let c = connector(&sb);
    for q in [2, 3] {
        assert!(applied(
            &c.push_stock(&[stock("A", q, None)]).await.unwrap()[0]
        ));
    }
    let e = c.push_stock(&[stock("A", 4, None)]).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(600)), "{e}");
    let paused = c
        .stats()
        .budgets
        .into_iter()
        .find(|b| b.operation == OP_ITEMS_BATCH)
        .unwrap();
    assert!(paused.paused_for_ms > 500_000, "{paused:?}");
    assert_eq!(sb.meta().count_429(), 1);
    // A restarted daemon after the window: the same absolute value goes through.
    sb.meta().advance_clock(Duration::from_secs(601));
    let fresh = connector(&sb);
    assert!(applied(
        &fresh.push_stock(&[stock("A", 4, None)]).await.unwrap()[0]
    ));
    assert_eq!(sb.meta().current_quantity("A"), Some(4));
}

#[tokio::test]
async fn buc_usage_near_the_limit_slows_the_budget() {
    let sb = sandbox(MetaOptions {
        buc: [(USE_CASE_CATALOG.to_owned(), BucLimit::new(4, 600))].into(),
        ..MetaOptions::unlimited()
    })
    .await;
    let c = connector(&sb);
    let rate = |c: &MetaConnector| {
        c.stats()
            .budgets
            .into_iter()
            .find(|b| b.operation == OP_CATALOG)
            .unwrap()
            .rate_per_sec
    };
    c.healthcheck().await.unwrap();
    c.healthcheck().await.unwrap();
    assert_eq!(rate(&c), 1000.0, "50 %: full speed");
    c.healthcheck().await.unwrap();
    c.healthcheck().await.unwrap();
    assert!(
        rate(&c) <= 1000.0 * client::SLOWEST_FACTOR + 1e-9,
        "100 %: slowest"
    );
    assert_eq!(c.stats().extra["buc_usage_percent"], 100);
    assert!(c.stats().extra["buc_slowdowns"] >= 1);
    let e = c.healthcheck().await.unwrap_err();
    assert_eq!(e.class(), crate::ErrorClass::RateLimited);
}

#[tokio::test]
async fn too_much_data_splits_the_batch() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    sb.meta().faults().add(
        FaultRule::new(
            "meta",
            "items_batch",
            FaultKind::ServerError {
                status: 500,
                body: Some(graph_error(
                    1,
                    "Please reduce the amount of data you're asking for, then retry your request",
                )),
            },
        )
        .times(1),
    );
    let c = connector(&sb);
    let items: Vec<ListingUpdate> = (0..4).map(|i| listing(&format!("S{i}"), 1, "1")).collect();
    let out = c.push_listings(&items).await.unwrap();
    assert!(out.iter().all(applied), "{out:?}");
    assert_eq!(c.stats().extra["batch_splits"], 1);
    assert_eq!(sb.meta().skus().len(), 4);
}

#[tokio::test]
async fn snapshot_pages_through_the_catalog() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    for i in 0..1_100 {
        sb.meta()
            .seed_listing(MetaSeedListing::new(format!("S{i:04}"), i % 3, "1234.5"))
            .unwrap();
    }
    let c = connector(&sb);
    let mut page = None;
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let p = c.snapshot_page(page).await.unwrap();
        pages += 1;
        items.extend(p.items);
        match p.next_page {
            Some(n) => page = Some(n),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(items.len(), 1_100);
    assert_eq!(items[1].quantity, Some(1));
    assert_eq!(items[0].quantity, Some(0), "out of stock shows 0");
    assert_eq!(items[1].price, Some(usd("1234.50")));
    assert!(items[1].external_id.is_some());
}

#[tokio::test]
async fn orders_are_paged_and_acknowledged_exactly_once() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    let m = sb.meta();
    m.seed_listing(MetaSeedListing::new("A", 100, "2.50"))
        .unwrap();
    let ids: Vec<String> = (0..30)
        .map(|_| m.place_order(&[OrderLine::new("A", 1)]).unwrap())
        .collect();
    let c = connector(&sb);
    let mut all = Vec::new();
    let mut page = None;
    loop {
        let p = c.fetch_orders(0, page).await.unwrap();
        all.extend(p.orders);
        match p.next_page {
            Some(n) => page = Some(n),
            None => break,
        }
    }
    assert_eq!(all.len(), 30);
    assert!(all.iter().all(|o| o.status == OrderStatus::Paid));
    assert_eq!(all[0].lines[0].unit_price, Some(usd("2.50")));
    assert_eq!(all[0].total, Some(usd("2.50")));
    assert_eq!(m.request_count("acknowledge_order"), 30);
    for id in &ids {
        assert_eq!(m.acknowledgements(id), 1);
        assert_eq!(m.order_state(id).as_deref(), Some("IN_PROGRESS"));
    }
    // Fetched again (overlap): no second acknowledgement.
    let again = c.fetch_orders(0, None).await.unwrap();
    assert_eq!(again.orders.len(), 25);
    assert_eq!(m.request_count("acknowledge_order"), 30);
    assert_eq!(c.stats().extra["orders_acknowledged"], 30);
}

#[tokio::test]
async fn a_lost_acknowledgement_is_replayed_idempotently() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    let m = sb.meta();
    m.seed_listing(MetaSeedListing::new("A", 5, "2.50"))
        .unwrap();
    let id = m.place_order(&[OrderLine::new("A", 1)]).unwrap();
    m.faults().add(
        FaultRule::new(
            "meta",
            "acknowledge_order",
            FaultKind::DropConnection {
                after_processing: true,
            },
        )
        .times(1),
    );
    let c = connector(&sb);
    let e = c.fetch_orders(0, None).await.unwrap_err();
    assert!(e.is_retriable(), "{e}");
    assert_eq!(
        m.acknowledgements(&id),
        1,
        "applied before the connection dropped"
    );
    // A crashed-and-restarted daemon sees the order again; the key is the same.
    let fresh = connector(&sb);
    let p = fresh.fetch_orders(0, None).await.unwrap();
    assert_eq!(p.orders.len(), 1);
    assert_eq!(m.acknowledgements(&id), 1);
}

#[tokio::test]
async fn cancellations_are_reported() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    let m = sb.meta();
    m.seed_listing(MetaSeedListing::new("A", 5, "2.50"))
        .unwrap();
    let id = m.place_order(&[OrderLine::new("A", 2)]).unwrap();
    let c = connector(&sb);
    let first = c.fetch_orders(0, None).await.unwrap();
    assert_eq!(first.orders[0].status, OrderStatus::Paid);
    m.cancel_order(&id).unwrap();
    let since = first.orders[0].remote_updated_at_ms;
    let p = c.fetch_orders(since, None).await.unwrap();
    assert_eq!(p.orders.len(), 1);
    assert_eq!(p.orders[0].status, OrderStatus::Cancelled);
    assert_eq!(m.current_quantity("A"), Some(5));
    // Without orders_enabled the channel has none.
    let mut cfg = config(&sb);
    cfg.orders_enabled = false;
    let off = MetaConnector::new(cfg).unwrap();
    assert!(!off.capabilities().has_orders);
    assert!(off.fetch_orders(0, None).await.unwrap().orders.is_empty());
}

#[tokio::test]
async fn bad_credentials_are_auth_errors() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    let mut cfg = config(&sb);
    cfg.access_token = Secret::new("EAAwrong");
    let e = MetaConnector::new(cfg)
        .unwrap()
        .healthcheck()
        .await
        .unwrap_err();
    assert_eq!(e.class(), crate::ErrorClass::Auth, "{e}");
    assert!(e.to_string().contains("190"), "{e}");
    assert!(!e.to_string().contains("EAAwrong"));
    let mut cfg = config(&sb);
    cfg.app_secret = Secret::new("other");
    let e = MetaConnector::new(cfg)
        .unwrap()
        .push_stock(&[stock("A", 1, None)])
        .await
        .unwrap_err();
    assert_eq!(e.class(), crate::ErrorClass::Auth, "{e}");
    sb.meta().revoke_token(true);
    let e = connector(&sb).fetch_orders(0, None).await.unwrap_err();
    assert_eq!(e.class(), crate::ErrorClass::Auth);
    let dbg = format!("{:?}", config(&sb));
    assert!(
        !dbg.contains(&sb.meta().credentials().access_token),
        "{dbg}"
    );
}

#[tokio::test]
async fn malformed_answers_are_clean_errors() {
    let sb = sandbox(MetaOptions::unlimited()).await;
    sb.meta()
        .seed_listing(MetaSeedListing::new("A", 5, "2.50"))
        .unwrap();
    let c = connector(&sb);
    sb.meta()
        .faults()
        .add(FaultRule::new("meta", "products", FaultKind::MalformedBody).times(1));
    let e = c.snapshot_page(None).await.unwrap_err();
    assert!(matches!(e, ConnectorError::Malformed { .. }), "{e}");
    sb.meta().faults().add(
        FaultRule::new(
            "meta",
            "items_batch",
            FaultKind::ServerError {
                status: 200,
                body: Some(r#"{"handles":"not a list"}"#.into()),
            },
        )
        .times(1),
    );
    let e = c.push_stock(&[stock("A", 1, None)]).await.unwrap_err();
    assert!(matches!(e, ConnectorError::Malformed { .. }), "{e}");
    sb.meta()
        .faults()
        .add(FaultRule::new("meta", "get_node", FaultKind::server_error(503)).times(1));
    let e = c.healthcheck().await.unwrap_err();
    assert_eq!(e.class(), crate::ErrorClass::Transient, "{e}");
}

#[tokio::test]
async fn oversized_answers_are_refused_without_buffering() {
    // A hostile "Graph" that announces 17 MiB, and one that streams them without a length.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut s, _)) = listener.accept().await {
            n += 1;
            let chunked = n % 2 == 0;
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = if chunked {
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
                        .to_owned()
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                        17 * 1024 * 1024
                    )
                };
                let _ = s.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 1024 * 1024];
                for _ in 0..17 {
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let cfg = MetaConfig::new(
        format!("http://{addr}/v25.0"),
        "1",
        Secret::new("t"),
        Secret::new("s"),
        LIMITS,
    );
    let c = MetaConnector::new(cfg).unwrap();
    for _ in 0..2 {
        let e = c.snapshot_page(None).await.unwrap_err();
        assert!(matches!(e, ConnectorError::Malformed { .. }), "{e}");
    }
}

#[test]
fn config_is_validated() {
    let base = MetaConfig::new(
        DEFAULT_ENDPOINT,
        "123",
        Secret::new("t"),
        Secret::new("s"),
        LIMITS,
    );
    assert!(base.validate().is_ok());
    let mut c = base.clone();
    c.catalog_id = "a/b".into();
    assert!(c.validate().is_err());
    let mut c = base.clone();
    c.orders_enabled = true;
    assert!(c.validate().is_err(), "orders need a commerce account");
    let mut c = base.clone();
    c.link_template = Some("https://x/p".into());
    assert!(c.validate().is_err(), "no {{sku}}");
    let mut c = base;
    c.endpoint = "graph.facebook.com".into();
    assert!(c.validate().is_err());
}

// ---- contract checks against contracts/specs/meta ----------------------------------------------

fn spec(file: &str) -> Option<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/contracts/specs/meta")
        .join(file);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).ok(),
        Err(_) => {
            eprintln!("skipping: {} not found", path.display());
            None
        }
    }
}

fn field_names(spec: &Value) -> Vec<String> {
    spec["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn params_of(spec: &Value, method: &str, endpoint: &str) -> Vec<String> {
    spec["apis"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            a["method"] == method
                && (a["endpoint"] == endpoint || a["name"].as_str() == Some(endpoint))
        })
        .flat_map(|a| a["params"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

/// Feed field names items_batch takes where the Graph node names the field differently.
const FEED_ALIASES: [(&str, &str); 5] = [
    ("id", "retailer_id"),
    ("title", "name"),
    ("link", "url"),
    ("image_link", "image_url"),
    ("item_group_id", "retailer_product_group_id"),
];

#[test]
fn item_data_uses_product_item_fields() {
    let Some(item) = spec("ProductItem.json") else {
        return;
    };
    let mut known = field_names(&item);
    known.extend(params_of(&item, "POST", "#update"));
    let mut datas = vec![
        mapping::stock_request(&stock("A", 1, Some("1")))["data"].clone(),
        mapping::listing_request(&listing("A", 1, "1"), Some("https://x/{sku}"))["data"].clone(),
    ];
    let mut l = listing("B", 1, "1");
    l.image_urls.push("https://x/2.jpg".into());
    l.options.push(("Fit".into(), "Slim".into()));
    datas.push(mapping::listing_request(&l, None)["data"].clone());
    for data in datas {
        for key in data.as_object().unwrap().keys() {
            let node_name = FEED_ALIASES
                .iter()
                .find(|(feed, _)| feed == key)
                .map_or(key.as_str(), |(_, node)| node);
            let plural = key == "additional_image_link"
                && known.iter().any(|k| k == "additional_image_urls");
            assert!(
                plural || known.iter().any(|k| k == node_name),
                "ProductItem has no field for {key}"
            );
        }
    }
    for f in PRODUCT_FIELDS {
        assert!(
            field_names(&item).iter().any(|k| k == f),
            "ProductItem has no field {f}"
        );
    }
    let availability = spec("enum_types.json").and_then(|e| {
        e.as_array()?
            .iter()
            .find(|x| x["name"] == "ProductItem_availability")
            .cloned()
    });
    if let Some(a) = availability {
        for v in ["in stock", "out of stock"] {
            assert!(
                a["values"].as_array().unwrap().iter().any(|x| x == v),
                "{v}"
            );
        }
    }
}

#[test]
fn calls_use_documented_params_and_fields() {
    if let Some(catalog) = spec("ProductCatalog.json") {
        let batch = params_of(&catalog, "POST", "items_batch");
        for p in ["item_type", "allow_upsert", "requests"] {
            assert!(batch.iter().any(|x| x == p), "items_batch has no param {p}");
        }
        let status = params_of(&catalog, "GET", "check_batch_request_status");
        for p in ["handle", "load_ids_of_invalid_requests"] {
            assert!(
                status.iter().any(|x| x == p),
                "check_batch_request_status has no param {p}"
            );
        }
        let node = field_names(&catalog);
        for f in ["id", "name", "product_count"] {
            assert!(
                node.iter().any(|x| x == f),
                "ProductCatalog has no field {f}"
            );
        }
    }
    if let Some(status) = spec("CheckBatchRequestStatus.json") {
        let fields = field_names(&status);
        for f in ["status", "errors", "ids_of_invalid_requests", "handle"] {
            assert!(
                fields.iter().any(|x| x == f),
                "CheckBatchRequestStatus has no field {f}"
            );
        }
    }
    if let Some(order) = spec("CommerceOrder.json") {
        let fields = field_names(&order);
        let edges: Vec<String> = order["apis"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["endpoint"].as_str().map(str::to_owned))
            .collect();
        for f in mapping::order_field_names() {
            assert!(
                fields.iter().any(|x| x == f) || edges.iter().any(|x| x == f),
                "CommerceOrder has no field or edge {f}"
            );
        }
    }
    if let Some(cms) = spec("CommerceMerchantSettings.json") {
        let params = params_of(&cms, "GET", "commerce_orders");
        for p in ["state", "updated_after"] {
            assert!(
                params.iter().any(|x| x == p),
                "commerce_orders has no param {p}"
            );
        }
    }
}
