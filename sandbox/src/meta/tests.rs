//! HTTP-level stories against a running sandbox: a reqwest client speaking the Graph API, the
//! [`MetaHandle`] checking state and records behind it. Handles are finished by advancing the
//! sandbox clock, never by sleeping and hoping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::{FaultKind, Sandbox, SandboxOptions};

struct Harness {
    sandbox: Sandbox,
    http: reqwest::Client,
    creds: MetaCredentials,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn code(&self) -> u64 {
        self.body["error"]["code"].as_u64().unwrap_or(0)
    }

    fn buc(&self) -> Option<Value> {
        self.headers
            .get(BUC_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str(v).ok())
    }
}

async fn start_with(meta: MetaOptions) -> Harness {
    let sandbox = Sandbox::start(SandboxOptions {
        meta,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds");
    let creds = sandbox.meta().credentials();
    Harness {
        sandbox,
        http,
        creds,
    }
}

async fn start() -> Harness {
    start_with(MetaOptions {
        batch_processing: Duration::from_secs(30),
        ..MetaOptions::unlimited()
    })
    .await
}

impl Harness {
    fn meta(&self) -> MetaHandle {
        self.sandbox.meta()
    }

    fn url(&self, path: &str) -> String {
        let proof = appsecret_proof(&self.creds.app_secret, &self.creds.access_token);
        let sep = if path.contains('?') { '&' } else { '?' };
        format!(
            "{}{path}{sep}appsecret_proof={proof}",
            MetaHandle::endpoint(&self.sandbox.base_url())
        )
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let r = req.send().await.expect("request sent");
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(
            self.http
                .get(self.url(path))
                .bearer_auth(&self.creds.access_token),
        )
        .await
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(&self.creds.access_token)
                .json(body),
        )
        .await
    }

    async fn batch(&self, requests: Value) -> Resp {
        let path = format!("/{}/items_batch", self.creds.catalog_id);
        self.post(
            &path,
            &json!({"item_type": "PRODUCT_ITEM", "requests": requests}),
        )
        .await
    }

    async fn status(&self, handle: &str) -> Value {
        let path = format!(
            "/{}/check_batch_request_status?handle={handle}&load_ids_of_invalid_requests=true",
            self.creds.catalog_id
        );
        let r = self.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"][0].clone()
    }

    fn finish_batches(&self) {
        self.meta().advance_clock(Duration::from_secs(31));
        self.meta().process_batches();
    }
}

fn full_item(sku: &str, qty: u32, price: &str) -> Value {
    json!({"method": "CREATE", "data": {
        "id": sku, "title": format!("Item {sku}"), "description": "A thing", "availability": "in stock",
        "condition": "new", "price": price, "link": "https://shop.example/p", "image_link": "https://shop.example/i.jpg",
        "brand": "B", "quantity_to_sell_on_facebook": qty,
    }})
}

#[tokio::test]
async fn create_then_update_runs_through_an_async_handle() {
    let h = start().await;
    let r = h
        .batch(json!([
            full_item("MUG-1", 5, "12.99 USD"),
            full_item("MUG-2", 1, "3 EUR")
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["validation_status"], json!([]));
    let handle = r.body["handles"][0].as_str().unwrap().to_owned();
    let s = h.status(&handle).await;
    assert_eq!(s["status"], "in_progress");
    assert_eq!(
        h.meta().current_quantity("MUG-1"),
        None,
        "nothing applied yet"
    );
    h.finish_batches();
    let s = h.status(&handle).await;
    assert_eq!(s["status"], "finished");
    assert_eq!(s["errors_total_count"], 0);
    assert_eq!(s["ids_of_invalid_requests"], json!([]));
    assert_eq!(h.meta().current_quantity("MUG-1"), Some(5));
    assert_eq!(
        h.meta().current_price("MUG-2"),
        Some(Money::new("3.00", "EUR"))
    );

    let r = h
        .batch(json!([{"method": "UPDATE", "data": {"id": "MUG-1", "quantity_to_sell_on_facebook": "0", "availability": "out of stock"}}]))
        .await;
    let handle = r.body["handles"][0].as_str().unwrap().to_owned();
    h.finish_batches();
    assert_eq!(h.status(&handle).await["status"], "finished");
    assert_eq!(h.meta().current_quantity("MUG-1"), Some(0));
    assert_eq!(
        h.meta().current_availability("MUG-1").as_deref(),
        Some("out of stock")
    );
    let writes = h.meta().writes();
    assert_eq!(writes.len(), 3);
    assert_eq!(writes[2].quantity, Some(0));
    assert!(
        writes[2]
            .batch_ref
            .as_deref()
            .unwrap()
            .ends_with("request 0 UPDATE")
    );
}

#[tokio::test]
async fn validation_status_refuses_bad_requests_synchronously() {
    let h = start().await;
    let r = h
        .batch(json!([
            {"method": "CREATE", "data": {"id": "A", "title": "t"}},
            {"method": "UPSERT", "data": {"id": "B"}},
            {"method": "UPDATE", "data": {"id": "C", "price": "12,99"}},
            {"method": "UPDATE", "data": {"id": "D", "availability": "maybe"}},
            {"method": "UPDATE", "data": {}},
            full_item("OK", 1, "1.00 USD"),
        ]))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.body["validation_status"].as_array().unwrap();
    assert_eq!(v.len(), 5, "{v:?}");
    let text = r.body["validation_status"].to_string();
    assert!(text.contains("Missing required field: link"), "{text}");
    assert!(text.contains("Invalid method"), "{text}");
    assert!(text.contains("Invalid price"), "{text}");
    assert!(text.contains("Invalid availability"), "{text}");
    assert_eq!(
        r.body["handles"].as_array().unwrap().len(),
        1,
        "the valid one is ingested"
    );

    let only_bad = h.batch(json!([{"method": "DELETE"}])).await;
    assert_eq!(only_bad.body["handles"], json!([]), "nothing ingested");

    let path = format!("/{}/items_batch", h.creds.catalog_id);
    let r = h
        .post(&path, &json!({"requests": [full_item("X", 1, "1.00 USD")]}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, 100));
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("item_type")
    );
    assert!(r.body["error"]["fbtrace_id"].is_string());
    let many: Vec<Value> = (0..5_001)
        .map(|i| json!({"method": "DELETE", "data": {"id": format!("S{i}")}}))
        .collect();
    let r = h.batch(Value::Array(many)).await;
    assert_eq!(r.code(), 100);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5000")
    );
    // Form bodies with `requests` as a JSON string work too.
    let r = h
        .send(
            h.http
                .post(h.url(&path))
                .bearer_auth(&h.creds.access_token)
                .form(&[
                    ("item_type", "PRODUCT_ITEM".to_owned()),
                    (
                        "requests",
                        json!([full_item("F", 2, "2.00 USD")]).to_string(),
                    ),
                ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["handles"].as_array().unwrap().len(), 1);
    // Hostile bodies get Graph errors.
    let r = h
        .send(
            h.http
                .post(h.url(&path))
                .bearer_auth(&h.creds.access_token)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(r.code(), 100);
    let r = h
        .send(
            h.http
                .post(h.url(&path))
                .bearer_auth(&h.creds.access_token)
                .header("content-type", "application/json")
                .body(vec![b' '; crate::MAX_BODY_BYTES + 10]),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::INTERNAL_SERVER_ERROR, 1));
}

#[tokio::test]
async fn per_item_errors_surface_in_the_handle_status() {
    let h = start().await;
    h.meta()
        .seed_listing(MetaSeedListing::new("KNOWN", 3, "5.00"))
        .unwrap();
    h.meta().add_fault(
        OP_ITEMS_BATCH,
        FaultKind::reject_skus(["BAD"], 1_234, "Product image could not be downloaded"),
    );
    let path = format!("/{}/items_batch", h.creds.catalog_id);
    let r = h
        .post(
            &path,
            &json!({"item_type": "PRODUCT_ITEM", "allow_upsert": false, "requests": [
                {"method": "UPDATE", "data": {"id": "KNOWN", "quantity_to_sell_on_facebook": 9}},
                {"method": "UPDATE", "data": {"id": "BAD", "quantity_to_sell_on_facebook": 1}},
                {"method": "UPDATE", "data": {"id": "GHOST", "quantity_to_sell_on_facebook": 1}},
                {"method": "DELETE", "data": {"id": "NEVER"}},
            ]}),
        )
        .await;
    let handle = r.body["handles"][0].as_str().unwrap().to_owned();
    h.finish_batches();
    let s = h.status(&handle).await;
    assert_eq!(s["errors_total_count"], 2, "{s}");
    assert_eq!(s["ids_of_invalid_requests"], json!(["BAD", "GHOST"]));
    assert_eq!(
        s["errors"][0],
        json!({"line": 1, "id": "BAD", "message": "Product image could not be downloaded"})
    );
    assert!(
        s["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    assert_eq!(s["warnings_total_count"], 1);
    assert_eq!(h.meta().current_quantity("KNOWN"), Some(9));
    // Without load_ids_of_invalid_requests the ids are left out.
    let path = format!(
        "/{}/check_batch_request_status?handle={handle}",
        h.creds.catalog_id
    );
    assert!(
        h.get(&path).await.body["data"][0]
            .get("ids_of_invalid_requests")
            .is_none()
    );
    let r = h
        .get(&format!(
            "/{}/check_batch_request_status?handle=nope",
            h.creds.catalog_id
        ))
        .await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn auth_needs_the_token_and_the_appsecret_proof() {
    let h = start().await;
    let base = MetaHandle::endpoint(&h.sandbox.base_url());
    let catalog = &h.creds.catalog_id;
    let r = h.send(h.http.get(format!("{base}/{catalog}"))).await;
    assert_eq!(r.code(), 104);
    let r = h
        .send(h.http.get(format!("{base}/{catalog}")).bearer_auth("wrong"))
        .await;
    assert_eq!(r.code(), 190);
    let r = h
        .send(
            h.http
                .get(format!("{base}/{catalog}"))
                .bearer_auth(&h.creds.access_token),
        )
        .await;
    assert_eq!(r.code(), 100);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("appsecret_proof")
    );
    let r = h
        .send(
            h.http
                .get(format!("{base}/{catalog}?appsecret_proof=00"))
                .bearer_auth(&h.creds.access_token),
        )
        .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid appsecret_proof")
    );
    let r = h
        .get(&format!("/{catalog}?fields=id,name,product_count"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["product_count"], 0);
    h.meta().revoke_token(true);
    assert_eq!(h.get(&format!("/{catalog}")).await.code(), 190);
    // Any version segment is accepted; a malformed one is not.
    h.meta().revoke_token(false);
    let proof = appsecret_proof(&h.creds.app_secret, &h.creds.access_token);
    let url = format!(
        "{}/meta/v19.0/{catalog}?appsecret_proof={proof}",
        h.sandbox.base_url()
    );
    assert_eq!(
        h.send(h.http.get(url).bearer_auth(&h.creds.access_token))
            .await
            .status,
        StatusCode::OK
    );
    let url = format!(
        "{}/meta/latest/{catalog}?appsecret_proof={proof}",
        h.sandbox.base_url()
    );
    assert_eq!(
        h.send(h.http.get(url).bearer_auth(&h.creds.access_token))
            .await
            .code(),
        2500
    );
    assert_eq!(h.get("/424242").await.body["error"]["error_subcode"], 33);
}

#[tokio::test]
async fn buc_header_counts_up_and_throttles_with_regain_time() {
    let h = start_with(MetaOptions {
        buc: BTreeMap::from([(USE_CASE_BATCH.to_owned(), BucLimit::new(4, 600))]),
        ..MetaOptions::unlimited()
    })
    .await;
    let mut seen = Vec::new();
    for i in 0..4 {
        let r = h
            .batch(json!([full_item(&format!("S{i}"), 1, "1.00 USD")]))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let buc = r.buc().expect("BUC header");
        let e = &buc[&h.creds.catalog_id][0];
        assert_eq!(e["type"], USE_CASE_BATCH);
        seen.push(e["call_count"].as_u64().unwrap());
    }
    assert_eq!(seen, [25, 50, 75, 100]);
    let r = h.batch(json!([full_item("S9", 1, "1.00 USD")])).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, 80014));
    assert_eq!(r.body["error"]["is_transient"], true);
    let e = &r.buc().unwrap()[&h.creds.catalog_id][0];
    assert_eq!(e["estimated_time_to_regain_access"], 10);
    assert_eq!(h.meta().count_429(), 1);
    // Reads have their own use case (unlimited here): no header.
    let r = h.get(&format!("/{}", h.creds.catalog_id)).await;
    assert!(r.buc().is_none());
    h.meta().advance_clock(Duration::from_secs(601));
    let r = h.batch(json!([full_item("S9", 1, "1.00 USD")])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.buc().unwrap()[&h.creds.catalog_id][0]["call_count"], 25);
    // 5xx and 429 faults speak Graph too.
    h.meta()
        .add_fault(OP_GET_NODE, FaultKind::server_error(503));
    let r = h.get(&format!("/{}", h.creds.catalog_id)).await;
    assert_eq!((r.status.as_u16(), r.code()), (503, 2));
    h.meta().faults().clear();
    h.meta()
        .add_fault(OP_GET_NODE, FaultKind::too_many_requests());
    let r = h.get(&format!("/{}", h.creds.catalog_id)).await;
    assert_eq!((r.status.as_u16(), r.code()), (429, 4));
}

#[tokio::test]
async fn products_edge_pages_with_cursors() {
    let h = start().await;
    for i in 0..7 {
        h.meta()
            .seed_listing(MetaSeedListing::new(format!("P{i}"), i, "1234.5"))
            .unwrap();
    }
    let mut path = format!(
        "/{}/products?fields=retailer_id,price,currency,quantity_to_sell_on_facebook,availability&limit=3",
        h.creds.catalog_id
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = h.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        pages += 1;
        for p in r.body["data"].as_array().unwrap() {
            assert_eq!(p["price"], "$1,234.50");
            assert_eq!(p["currency"], "USD");
            seen.push(p["retailer_id"].as_str().unwrap().to_owned());
        }
        if r.body["paging"]["next"].is_null() {
            break;
        }
        let after = r.body["paging"]["cursors"]["after"].as_str().unwrap();
        path = format!(
            "/{}/products?fields=retailer_id,price,currency&limit=3&after={after}",
            h.creds.catalog_id
        );
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, h.meta().skus());
    let r = h
        .get(&format!(
            "/{}/products?fields=retailer_id,nope",
            h.creds.catalog_id
        ))
        .await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nonexisting field (nope)")
    );
    let r = h
        .get(&format!("/{}/products?after=zz", h.creds.catalog_id))
        .await;
    assert_eq!(r.code(), 100);
}

#[tokio::test]
async fn orders_page_acknowledge_idempotently_and_cancel() {
    let h = start().await;
    let m = h.meta();
    m.seed_listing(MetaSeedListing::new("A", 5, "2.50"))
        .unwrap();
    let ids: Vec<String> = (0..3)
        .map(|_| m.place_order(&[OrderLine::new("A", 1)]).unwrap())
        .collect();
    assert_eq!(m.current_quantity("A"), Some(2));
    assert!(matches!(
        m.place_order(&[OrderLine::new("A", 3)]),
        Err(ControlError::InsufficientQuantity { .. })
    ));
    let cms = &h.creds.commerce_account_id;
    let r = h
        .get(&format!("/{cms}/commerce_orders?limit=2&fields=id,order_status,items{{retailer_id,quantity}},estimated_payment_details"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["data"][0]["items"]["data"][0]["retailer_id"], "A");
    assert_eq!(
        r.body["data"][0]["estimated_payment_details"]["total_amount"]["amount"],
        "2.50"
    );
    let after = r.body["paging"]["cursors"]["after"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .get(&format!("/{cms}/commerce_orders?limit=2&after={after}"))
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert!(r.body["paging"]["next"].is_null());

    let ack = json!({"idempotency_key": "k-1", "merchant_order_reference": "ref-1"});
    let path = format!("/{}/acknowledge_order", ids[0]);
    for _ in 0..2 {
        let r = h.post(&path, &ack).await;
        assert_eq!(r.body, json!({"id": ids[0], "state": "IN_PROGRESS"}));
    }
    assert_eq!(m.acknowledgements(&ids[0]), 1);
    let r = h.post(&path, &json!({"idempotency_key": "k-2"})).await;
    assert_eq!(r.code(), 100);
    let r = h.post(&path, &json!({})).await;
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("idempotency_key")
    );
    assert_eq!(m.order(&ids[0]).unwrap()["merchant_order_id"], "ref-1");

    // Default state filter is CREATED only; updated_after takes unix seconds.
    let r = h.get(&format!("/{cms}/commerce_orders")).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    m.cancel_order(&ids[1]).unwrap();
    assert_eq!(m.current_quantity("A"), Some(3));
    let future = m.inner.shared.clock.now().timestamp() + 3600;
    let r = h
        .get(&format!(
            "/{cms}/commerce_orders?state=COMPLETED&updated_after={future}"
        ))
        .await;
    assert_eq!(r.body["data"], json!([]));
    let r = h
        .get(&format!("/{cms}/commerce_orders?state=COMPLETED&filters=HAS_CANCELLATIONS&fields=id,cancellations"))
        .await;
    assert_eq!(r.body["data"][0]["id"], ids[1]);
    assert_eq!(
        r.body["data"][0]["cancellations"]["data"][0]["items"]["data"][0]["quantity"],
        1
    );
    let r = h
        .get(&format!("/{cms}/commerce_orders?state=SHIPPED"))
        .await;
    assert_eq!(r.code(), 100);
    m.ship_order(&ids[0]).unwrap();
    assert_eq!(m.order_state(&ids[0]).as_deref(), Some("COMPLETED"));
    let r = h.get(&format!("/{}/items", ids[2])).await;
    assert_eq!(r.body["data"][0]["quantity"], 1);
}

/// Deliveries a receiver got: headers and body.
type Deliveries = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A receiver on 127.0.0.1 that records every delivery.
async fn receiver() -> (String, Deliveries) {
    let got: Deliveries = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let mut h = HeaderMap::new();
                    for (k, v) in &headers {
                        if let (Ok(name), Ok(value)) = (
                            reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()),
                            reqwest::header::HeaderValue::from_bytes(v.as_bytes()),
                        ) {
                            h.insert(name, value);
                        }
                    }
                    sink.lock().unwrap().push((h, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), got)
}

#[tokio::test]
async fn webhooks_are_signed_and_sometimes_duplicated() {
    let h = start().await;
    let m = h.meta();
    m.seed_listing(MetaSeedListing::new("A", 5, "2.50"))
        .unwrap();
    let (url, got) = receiver().await;
    let mut target = WebhookTarget::new(url, "hook-secret");
    target.duplicate_probability = 1.0;
    m.set_webhook(Some(target));
    let id = m.place_order(&[OrderLine::new("A", 1)]).unwrap();
    m.cancel_order(&id).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while m.webhook_counts().sent < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counts = m.webhook_counts();
    assert_eq!((counts.sent, counts.duplicates, counts.accepted), (4, 2, 4));
    let got = got.lock().unwrap().clone();
    let mut events = Vec::new();
    for (headers, body) in &got {
        let sig = headers["x-hub-signature-256"].to_str().unwrap();
        let expected = format!(
            "sha256={}",
            hex::encode(crate::webhook::hmac_sha256(b"hook-secret", body))
        );
        assert_eq!(sig, expected, "signature checks out");
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["object"], "page");
        assert_eq!(v["entry"][0]["id"], h.creds.commerce_account_id);
        let change = &v["entry"][0]["changes"][0];
        assert_eq!(change["field"], "commerce_orders");
        assert_eq!(change["value"]["order_id"], id);
        events.push(change["value"]["event"].as_str().unwrap().to_owned());
    }
    events.sort();
    assert_eq!(
        events,
        [
            "ORDER_CANCELLED",
            "ORDER_CANCELLED",
            "ORDER_CREATED",
            "ORDER_CREATED"
        ]
    );
}

#[tokio::test]
async fn control_api_places_orders_and_holds_batches() {
    let h = start().await;
    let base = format!("{}/_control/meta", h.sandbox.base_url());
    let r = h
        .http
        .post(format!("{base}/listings"))
        .json(&json!({"sku": "C", "quantity": 2, "price": "9.99"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = h
        .http
        .post(format!("{base}/orders"))
        .json(&json!({"lines": [{"sku": "C", "quantity": 5}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = h
        .http
        .post(format!("{base}/orders"))
        .json(&json!({"lines": [{"sku": "C", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
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
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = h
        .http
        .put(format!("{base}/batches/hold"))
        .json(&json!({"hold": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let b = h.batch(json!([full_item("D", 1, "1.00 USD")])).await;
    let handle = b.body["handles"][0].as_str().unwrap().to_owned();
    h.finish_batches();
    assert_eq!(h.status(&handle).await["status"], "in_progress", "held");
    h.meta().hold_batches(false);
    assert_eq!(h.status(&handle).await["status"], "finished");
    let stats: Value = h
        .http
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requestCounts"][OP_ITEMS_BATCH], 1);
}

#[test]
fn spec_check_of_what_the_fake_serves() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/contracts/specs/meta");
    let read = |f: &str| -> Option<Value> {
        std::fs::read(dir.join(f))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    };
    let (Some(item), Some(order), Some(status)) = (
        read("ProductItem.json"),
        read("CommerceOrder.json"),
        read("CheckBatchRequestStatus.json"),
    ) else {
        eprintln!(
            "skipping: contracts/specs/meta not found at {}",
            dir.display()
        );
        return;
    };
    let names = |v: &Value| -> Vec<String> {
        v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let item_fields = names(&item);
    for f in state::PRODUCT_FIELDS {
        assert!(
            item_fields.iter().any(|x| x == f),
            "ProductItem has no field {f}"
        );
    }
    let order_fields = names(&order);
    let edges: Vec<String> = order["apis"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["endpoint"].as_str().map(str::to_owned))
        .collect();
    for f in state::ORDER_FIELDS {
        assert!(
            order_fields.iter().any(|x| x == f) || edges.iter().any(|x| x == f),
            "CommerceOrder has no field or edge {f}"
        );
    }
    let batch = state::Batch {
        handle: "h".into(),
        submitted: chrono::Utc::now(),
        ready_at: chrono::Utc::now(),
        allow_upsert: true,
        requests: Vec::new(),
        finished: true,
        errors: Vec::new(),
        warnings: Vec::new(),
        invalid_ids: Vec::new(),
    };
    let status_fields = names(&status);
    for k in batch.render(true).as_object().unwrap().keys() {
        assert!(
            status_fields.contains(k),
            "CheckBatchRequestStatus has no field {k}"
        );
    }
}
