//! HTTP-level stories against a running sandbox: a reqwest client speaking the WooCommerce REST
//! API, the [`WooHandle`] checking state and records behind it.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::{FaultKind, FaultRule, Sandbox, SandboxOptions};

struct Harness {
    sandbox: Sandbox,
    http: reqwest::Client,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn start_with(woo: WooOptions) -> Harness {
    let sandbox = Sandbox::start(SandboxOptions {
        woo,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds");
    Harness { sandbox, http }
}

async fn start() -> Harness {
    start_with(WooOptions::default()).await
}

impl Harness {
    fn woo(&self) -> WooHandle {
        self.sandbox.woo()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/woo{API_ROOT}{path}", self.sandbox.base_url())
    }

    async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        let c = self.woo().credentials();
        let resp = self
            .http
            .get(self.url(path))
            .basic_auth(c.consumer_key, Some(c.consumer_secret))
            .send()
            .await
            .expect("answered");
        Self::read(resp).await
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        let c = self.woo().credentials();
        let resp = self
            .http
            .post(self.url(path))
            .basic_auth(c.consumer_key, Some(c.consumer_secret))
            .json(body)
            .send()
            .await
            .expect("answered");
        Self::read(resp).await
    }
}

#[tokio::test]
async fn auth_takes_basic_or_query_credentials_and_refuses_the_rest() {
    let h = start().await;
    let c = h.woo().credentials();
    let r = Harness::read(h.http.get(h.url("/products")).send().await.unwrap()).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "woocommerce_rest_cannot_view");
    assert_eq!(r.body["data"]["status"], 401);
    let r = Harness::read(
        h.http
            .post(h.url("/products/batch"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.code(), "woocommerce_rest_cannot_create");
    let r = Harness::read(
        h.http
            .get(h.url("/products"))
            .basic_auth("ck_wrong", Some(&c.consumer_secret))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (401, "woocommerce_rest_authentication_error")
    );
    assert_eq!(r.body["message"], "Consumer key is invalid.");
    let r = Harness::read(
        h.http
            .get(h.url("/products"))
            .basic_auth(&c.consumer_key, Some("cs_wrong"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.body["message"], "Consumer secret is invalid.");
    let r = Harness::read(
        h.http
            .get(h.url(&format!(
                "/products?consumer_key={}&consumer_secret={}",
                c.consumer_key, c.consumer_secret
            )))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "the query-string fallback");
    assert!(!format!("{c:?}").contains(&c.consumer_secret));
}

#[tokio::test]
async fn products_batch_creates_updates_and_reports_per_item_errors() {
    let h = start().await;
    let r = h
        .post(
            "/products/batch",
            &json!({"create": [
                {"name": "Mug", "type": "simple", "sku": "MUG", "regular_price": "9.50",
                 "manage_stock": true, "stock_quantity": 4, "images": [{"src": "https://x/mug.jpg"}]},
                {"name": "Dup", "type": "simple", "sku": "MUG"},
                {"name": "Cap", "sku": "CAP", "regular_price": "5.00", "stock_quantity": 7}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let created = r.body["create"].as_array().unwrap();
    assert_eq!(created[0]["sku"], "MUG");
    assert_eq!(created[0]["stock_quantity"], 4);
    assert_eq!(created[0]["stock_status"], "instock");
    assert_eq!(created[1]["id"], 0);
    assert_eq!(created[1]["error"]["code"], "product_invalid_sku");
    assert_eq!(created[1]["error"]["message"], "Invalid or duplicated SKU.");
    assert_eq!(created[1]["error"]["data"]["status"], 400);
    // stock_quantity without manage_stock is ignored, as WooCommerce does.
    assert_eq!(created[2]["manage_stock"], false);
    assert_eq!(created[2]["stock_quantity"], Value::Null);
    assert_eq!(h.woo().current_quantity("CAP"), None);
    let mug = created[0]["id"].as_u64().unwrap();

    let r = h
        .post(
            "/products/batch",
            &json!({"update": [
                {"id": mug, "stock_quantity": 0, "regular_price": "8.00"},
                {"id": 999_999, "stock_quantity": 1}
            ]}),
        )
        .await;
    let updated = r.body["update"].as_array().unwrap();
    assert_eq!(updated[0]["stock_status"], "outofstock");
    assert_eq!(updated[1]["id"], 999_999);
    assert_eq!(
        updated[1]["error"]["code"],
        "woocommerce_rest_product_invalid_id"
    );
    assert_eq!(h.woo().current_quantity("MUG"), Some(0));
    assert_eq!(
        h.woo().current_price("MUG"),
        Some(Money::new("8.00", "USD"))
    );
    let writes = h.woo().writes();
    assert_eq!(writes.len(), 3, "two creates and one update were applied");
    assert_eq!(writes[2].operation, "batchProducts");
    assert_eq!(writes[2].quantity, Some(0));

    // 101 entries: the whole request is refused.
    let many: Vec<Value> = (0..101).map(|i| json!({"id": i})).collect();
    let r = h.post("/products/batch", &json!({"update": many})).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.code(), "woocommerce_rest_request_entity_too_large");

    // A reject_skus fault refuses the SKU per item.
    h.woo().faults().add(FaultRule::new(
        MARKETPLACE,
        "batchProducts",
        FaultKind::reject_skus(["MUG"], 7, "The product is locked."),
    ));
    let r = h
        .post(
            "/products/batch",
            &json!({"update": [{"id": mug, "stock_quantity": 3}]}),
        )
        .await;
    assert_eq!(r.body["update"][0]["error"]["code"], ERR_REJECTED);
    assert_eq!(
        r.body["update"][0]["error"]["message"],
        "The product is locked."
    );
    assert_eq!(r.body["update"][0]["error"]["data"]["error_id"], 7);

    // Malformed JSON.
    let c = h.woo().credentials();
    let r = Harness::read(
        h.http
            .post(h.url("/products/batch"))
            .basic_auth(c.consumer_key, Some(c.consumer_secret))
            .header("content-type", "application/json")
            .body("{\"update\":[")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "rest_invalid_json"));
}

#[tokio::test]
async fn variable_products_and_variations() {
    let h = start().await;
    let r = h
        .post(
            "/products/batch",
            &json!({"create": [{"name": "Tee", "type": "variable", "sku": "TEE",
                "attributes": [{"name": "Colour", "options": ["Red", "Blue"], "variation": true, "visible": true}]}]}),
        )
        .await;
    let tee = r.body["create"][0]["id"].as_u64().unwrap();
    let r = h
        .post(
            &format!("/products/{tee}/variations/batch"),
            &json!({"create": [
                {"sku": "TEE-RED", "regular_price": "10.00", "manage_stock": true, "stock_quantity": 3,
                 "attributes": [{"name": "Colour", "option": "Red"}]},
                {"sku": "TEE-BLUE", "regular_price": "11.00", "manage_stock": true, "stock_quantity": 5,
                 "attributes": [{"name": "Colour", "option": "Blue"}]}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let red = r.body["create"][0]["id"].as_u64().unwrap();
    assert_eq!(r.body["create"][0]["attributes"][0]["option"], "Red");
    // Variations are not products: the products list does not show them.
    let r = h.get("/products?sku=TEE-RED,TEE").await;
    let skus: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["TEE"]);
    assert_eq!(r.body[0]["variations"].as_array().unwrap().len(), 2);
    let r = h
        .get(&format!("/products/{tee}/variations?sku=TEE-RED"))
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = h
        .post(
            &format!("/products/{tee}/variations/batch"),
            &json!({"update": [{"id": red, "stock_quantity": 1}, {"id": tee, "stock_quantity": 1}]}),
        )
        .await;
    assert_eq!(r.body["update"][0]["stock_quantity"], 1);
    assert_eq!(
        r.body["update"][1]["error"]["code"],
        "woocommerce_rest_product_variation_invalid_id"
    );
    let r = h
        .post("/products/999999/variations/batch", &json!({"update": []}))
        .await;
    assert_eq!(r.status, 404);
    let listing = h.woo().listing("TEE-RED").unwrap();
    assert_eq!((listing.product_id, listing.variation_id), (tee, Some(red)));
    assert_eq!(
        h.woo().writes().last().unwrap().listing_ref.as_deref(),
        Some(format!("{tee}:{red}").as_str())
    );
}

#[tokio::test]
async fn collections_page_with_wordpress_headers_and_limits() {
    let h = start().await;
    for i in 0..25 {
        h.woo()
            .seed_listing(WooSeedListing::new(format!("S-{i:02}"), 1, "1.00"))
            .unwrap();
    }
    let r = h
        .get("/products?per_page=10&page=2&orderby=id&order=asc")
        .await;
    assert_eq!(r.header("x-wp-total"), Some("25"));
    assert_eq!(r.header("x-wp-totalpages"), Some("3"));
    let link = r.header("link").unwrap();
    assert!(
        link.contains("rel=\"next\"") && link.contains("rel=\"prev\""),
        "{link}"
    );
    assert!(link.contains("page=3"), "{link}");
    assert_eq!(r.body[0]["sku"], "S-10");
    let r = h.get("/products?per_page=101").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "rest_invalid_param"));
    let r = h.get("/products?page=4&per_page=10").await;
    assert_eq!(r.code(), "rest_post_invalid_page_number");
    let r = h.get("/products?sku=S-01,S-02,NOPE").await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = h.get("/nothing/here").await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "rest_no_route"));
    let r = Harness::read(
        h.http
            .get(format!("{}/woo/shop/", h.sandbox.base_url()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(
        r.text.starts_with("<!DOCTYPE html>"),
        "WordPress's theme page"
    );
    let r = h.get("/data/currencies/current").await;
    assert_eq!(r.body["code"], "USD");
}

#[tokio::test]
async fn orders_filter_by_gmt_modification_page_and_move_stock() {
    let h = start().await;
    let woo = h.woo();
    woo.seed_listing(WooSeedListing::new("A", 10, "2.50"))
        .unwrap();
    woo.seed_listing(WooSeedListing::new("B", 1, "4.00").variation_of("PARENT", "Size", "L"))
        .unwrap();
    let first = woo
        .place_order(&[OrderLine::new("A", 2), OrderLine::new("B", 1)])
        .unwrap();
    assert_eq!(woo.current_quantity("A"), Some(8));
    assert_eq!(woo.current_quantity("B"), Some(0));
    assert!(matches!(
        woo.place_order(&[OrderLine::new("B", 1)]),
        Err(ControlError::InsufficientQuantity { .. })
    ));
    assert!(matches!(
        woo.place_order(&[OrderLine::new("NOPE", 1)]),
        Err(ControlError::UnknownSku(_))
    ));
    for _ in 0..4 {
        woo.place_order(&[OrderLine::new("A", 1)]).unwrap();
    }
    let o = woo.order(&first).unwrap();
    assert_eq!(o["status"], "processing");
    assert_eq!(o["total"], "9.00");
    assert_eq!(
        o["line_items"][1]["variation_id"].as_u64(),
        woo.listing("B").unwrap().variation_id
    );

    let since = (chrono::Utc::now() - chrono::TimeDelta::minutes(5))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let q = |page: u32| {
        format!(
            "/orders?modified_after={since}&dates_are_gmt=true&status=any&per_page=2&page={page}&orderby=id&order=asc"
        )
    };
    let r = h.get(&q(1)).await;
    assert_eq!(r.header("x-wp-totalpages"), Some("3"));
    assert_eq!(r.body[0]["id"].as_u64().unwrap().to_string(), first);
    // The same instant read as site time (UTC−3) is three hours earlier in UTC: a client that
    // forgets dates_are_gmt asks for a different window.
    let past = (chrono::Utc::now() - chrono::TimeDelta::hours(2))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let r = h
        .get(&format!("/orders?modified_after={past}&dates_are_gmt=true"))
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 5);
    let r = h.get(&format!("/orders?modified_after={past}")).await;
    assert_eq!(
        r.body.as_array().unwrap().len(),
        0,
        "read as site time (UTC-3) the same digits are an hour from now"
    );
    let r = h.get("/orders?orderby=modified").await;
    assert_eq!(r.code(), "rest_invalid_param");

    woo.cancel_order(&first).unwrap();
    assert_eq!(woo.current_quantity("A"), Some(6), "restocked");
    assert_eq!(woo.current_quantity("B"), Some(1));
    assert!(woo.cancel_order(&first).is_err(), "once");
    let o = woo.order(&first).unwrap();
    assert_eq!(o["status"], "cancelled");
    assert!(o["date_modified_gmt"].as_str() > o["date_created_gmt"].as_str());
    woo.set_order_status(&first, "trash").unwrap();
    let r = h.get("/orders?status=any&per_page=100").await;
    assert_eq!(r.body.as_array().unwrap().len(), 4, "any leaves trash out");
}

#[tokio::test]
async fn the_waf_answers_429_with_retry_after_and_an_html_page() {
    let h = start_with(WooOptions {
        rate_limit: Some(crate::RateLimit::new(1.0, 2)),
        retry_after_secs: 3,
        ..WooOptions::default()
    })
    .await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..4 {
        let r = h.get("/products").await;
        statuses.push(r.status.as_u16());
        last = Some(r);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    let r = last.unwrap();
    assert_eq!(r.header("retry-after"), Some("3"));
    assert!(r.text.contains("<html"));
    assert_eq!(h.woo().count_429(), 2);
    assert_eq!(h.woo().throttled_count(), 2);
    h.woo().set_rate_limit(None);
    assert_eq!(h.get("/products").await.status, 200);
}

#[tokio::test]
async fn order_webhooks_are_signed_like_woocommerce() {
    use axum::body::Bytes;
    use axum::routing::post;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let h = start().await;
    let woo = h.woo();
    woo.set_webhook(Some(WebhookTarget::new(
        format!("http://{addr}/hook"),
        "s3cret",
    )));
    woo.seed_listing(WooSeedListing::new("A", 3, "1.00"))
        .unwrap();
    let id = woo.place_order(&[OrderLine::new("A", 1)]).unwrap();
    woo.cancel_order(&id).unwrap();
    let mut topics = Vec::new();
    for _ in 0..2 {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("delivered")
            .expect("open");
        let get = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(
            get("x-wc-webhook-signature"),
            crate::webhook::sign_base64("s3cret", &body)
        );
        assert_eq!(get("x-wc-webhook-resource"), "order");
        assert!(!get("x-wc-webhook-delivery-id").is_empty());
        assert!(get("x-wc-webhook-source").ends_with("/woo/"));
        let order: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(order["id"].as_u64().unwrap().to_string(), id);
        topics.push((
            get("x-wc-webhook-topic"),
            get("x-wc-webhook-event"),
            order["status"].clone(),
        ));
    }
    topics.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(topics[0].0, "order.created");
    assert_eq!(
        topics[1],
        ("order.updated".into(), "updated".into(), json!("cancelled"))
    );
    // The sender counts after the answer arrives.
    for _ in 0..100 {
        if woo.webhook_counts().accepted == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(woo.webhook_counts().accepted, 2);
}

#[tokio::test]
async fn the_control_api_drives_the_shop() {
    let h = start().await;
    let base = format!("{}/_control/woo", h.sandbox.base_url());
    let r = h
        .http
        .post(format!("{base}/listings"))
        .json(&json!({"sku": "C1", "quantity": 5, "price": "3.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = h
        .http
        .post(format!("{base}/orders"))
        .json(&json!({"lines": [{"sku": "C1", "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["orderId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .http
        .post(format!("{base}/orders/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = h
        .http
        .put(format!("{base}/listings/C1/quantity"))
        .json(&json!({"quantity": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(h.woo().current_quantity("C1"), Some(9));
    let r = h
        .http
        .get(format!("{base}/listings/NOPE"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(h.woo().skus(), ["C1"]);
}

// ---- contract: documented field names ---------------------------------------------------------

/// The official docs, read in place: `OMNISTOCK_SPECS_DIR`, else `../shared/contracts/specs`.
fn doc(file: &str) -> Option<String> {
    let dir = std::env::var_os("OMNISTOCK_SPECS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/contracts/specs")
        });
    let path = dir.join("woocommerce").join(file);
    match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("SKIPPED: {} not readable ({e})", path.display());
            None
        }
    }
}

/// The attribute names of the properties table under `heading`.
fn properties(md: &str, heading: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in md.lines() {
        if line.starts_with('#') {
            inside = line.trim_matches('#').trim() == heading;
            continue;
        }
        if inside
            && let Some(rest) = line.strip_prefix("| `")
            && let Some((name, _)) = rest.split_once('`')
        {
            out.push(name.to_owned());
        }
    }
    out
}

fn undocumented(v: &Value, documented: &[String]) -> Vec<String> {
    v.as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "_links" && !documented.contains(k))
        .cloned()
        .collect()
}

#[tokio::test]
async fn rendered_fields_are_the_documented_ones() {
    let (Some(products), Some(variations), Some(orders)) = (
        doc("wp-api-v3_products.md"),
        doc("wp-api-v3_product-variations.md"),
        doc("wp-api-v3_orders.md"),
    ) else {
        return;
    };
    let h = start().await;
    let woo = h.woo();
    woo.seed_listing(WooSeedListing::new("A", 3, "1.00"))
        .unwrap();
    woo.seed_listing(WooSeedListing::new("V", 3, "1.00").variation_of("P", "Size", "M"))
        .unwrap();
    let id = woo
        .place_order(&[OrderLine::new("A", 1), OrderLine::new("V", 1)])
        .unwrap();
    let product_props = properties(&products, "Product properties");
    assert!(product_props.len() > 60, "{product_props:?}");
    for sku in ["A", "P"] {
        let p = woo.product_json(sku).unwrap();
        assert_eq!(
            undocumented(&p, &product_props),
            Vec::<String>::new(),
            "{sku}"
        );
    }
    let variation_props = properties(&variations, "Product variation properties");
    let v = woo.product_json("V").unwrap();
    assert_eq!(undocumented(&v, &variation_props), Vec::<String>::new());
    let order_props = properties(&orders, "Order properties");
    let o = woo.order(&id).unwrap();
    assert_eq!(undocumented(&o, &order_props), Vec::<String>::new());
    let line_props = properties(&orders, "Order - Line items properties");
    assert_eq!(
        undocumented(&o["line_items"][0], &line_props),
        Vec::<String>::new()
    );
    for (name, _) in [("billing", ()), ("shipping", ())] {
        let heading = format!(
            "Order - {} properties",
            if name == "billing" {
                "Billing"
            } else {
                "Shipping"
            }
        );
        assert_eq!(
            undocumented(&o[name], &properties(&orders, &heading)),
            Vec::<String>::new(),
            "{name}"
        );
    }
}
