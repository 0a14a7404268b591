//! Stories against the Shopify fake over HTTP: auth, the cost bucket, productSet,
//! inventorySetQuantities' 2026-04 rules, orders paging, webhooks, faults and hostile bodies.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::faults::FaultRule;
use crate::{Sandbox, SandboxOptions};

const V: &str = "2026-07";

async fn start(opts: ShopifyOptions) -> Sandbox {
    Sandbox::start(SandboxOptions {
        shopify: opts,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts")
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn url(sb: &Sandbox, version: &str) -> String {
    format!("{}/shopify/admin/api/{version}/graphql.json", sb.base_url())
}

async fn gql_as(sb: &Sandbox, token: &str, query: &str, vars: Value) -> (u16, Value) {
    let resp = client()
        .post(url(sb, V))
        .header(ACCESS_TOKEN_HEADER, token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .expect("answer");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn gql(sb: &Sandbox, query: &str, vars: Value) -> Value {
    let token = sb.shopify().credentials().access_token;
    let (status, body) = gql_as(sb, &token, query, vars).await;
    assert_eq!(status, 200, "{body}");
    body
}

const LOOKUP: &str = "query($q: String!, $loc: ID!) { productVariants(first: 10, query: $q) { nodes { id sku price inventoryItem { id inventoryLevel(locationId: $loc) { quantities(names: [\"available\"]) { name quantity } } } } } }";
const SET: &str = "mutation($input: InventorySetQuantitiesInput!, $key: String!) { inventorySetQuantities(input: $input) @idempotent(key: $key) { inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } } userErrors { code field message } } }";

fn item_of(sb: &Sandbox, sku: &str) -> String {
    sb.shopify().listing(sku).expect("listed").inventory_item_id
}

fn set_vars(sb: &Sandbox, entries: &[(&str, i64, Value)], key: &str) -> Value {
    let loc = sb.shopify().location_id();
    json!({"key": key, "input": {"name": "available", "reason": "correction",
        "referenceDocumentUri": "omnistock://test",
        "quantities": entries.iter().map(|(sku, q, from)| {
            json!({"inventoryItemId": item_of(sb, sku), "locationId": loc, "quantity": q,
                   "changeFromQuantity": from})
        }).collect::<Vec<_>>()}})
}

#[tokio::test]
async fn lookup_by_sku_search_reads_levels_and_costs() {
    let opts = ShopifyOptions {
        listings: vec![
            ShopifySeedListing::new("MUG \"RED\"", 5, "9.50"),
            ShopifySeedListing::new("CAP", 2, "3"),
        ],
        ..ShopifyOptions::default()
    };
    let sb = start(opts).await;
    let loc = sb.shopify().location_id();
    let body = gql(
        &sb,
        LOOKUP,
        json!({"q": r#"sku:"MUG \"RED\"" OR sku:"NOPE""#, "loc": loc}),
    )
    .await;
    let nodes = body["data"]["productVariants"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["sku"], "MUG \"RED\"");
    assert_eq!(nodes[0]["price"], "9.50");
    assert_eq!(
        nodes[0]["inventoryItem"]["inventoryLevel"]["quantities"][0]["quantity"],
        5
    );
    assert!(nodes[0].get("product").is_none(), "only what was selected");
    let cost = &body["extensions"]["cost"];
    assert_eq!(cost["requestedQueryCost"], 2 + 10 * 4);
    assert!(cost["actualQueryCost"].as_u64().unwrap() < 42);
    assert_eq!(cost["throttleStatus"]["maximumAvailable"], 2000.0);
    assert_eq!(sb.shopify().request_count("productVariants"), 1);
}

#[tokio::test]
async fn set_quantities_enforces_change_from_quantity_and_idempotency() {
    let opts = ShopifyOptions {
        listings: vec![
            ShopifySeedListing::new("A", 5, "1.00"),
            ShopifySeedListing::new("B", 7, "1.00"),
        ],
        ..ShopifyOptions::default()
    };
    let sb = start(opts).await;
    let shop = sb.shopify();
    // Stale for B: nothing applied (all or nothing).
    let body = gql(
        &sb,
        SET,
        set_vars(&sb, &[("A", 9, json!(5)), ("B", 1, json!(6))], "k1"),
    )
    .await;
    let errs = &body["data"]["inventorySetQuantities"]["userErrors"];
    assert_eq!(errs.as_array().unwrap().len(), 1);
    assert_eq!(errs[0]["code"], "CHANGE_FROM_QUANTITY_STALE");
    assert_eq!(
        errs[0]["field"],
        json!(["input", "quantities", "1", "changeFromQuantity"])
    );
    assert_eq!(shop.current_quantity("A"), Some(5));
    // Fresh values apply; the replay of the same key answers the same without applying twice.
    let vars = set_vars(&sb, &[("A", 9, json!(5)), ("B", 1, json!(7))], "k2");
    let first = gql(&sb, SET, vars.clone()).await;
    assert_eq!(
        first["data"]["inventorySetQuantities"]["userErrors"],
        json!([])
    );
    assert_eq!(
        first["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]["changes"][0]["delta"],
        4
    );
    shop.set_quantity_out_of_band("A", 3).unwrap();
    let again = gql(&sb, SET, vars).await;
    assert_eq!(again["data"], first["data"]);
    assert_eq!(
        shop.current_quantity("A"),
        Some(3),
        "a replay does not apply again"
    );
    assert_eq!(shop.writes().len(), 2);
    // The same key with other input is refused.
    let other = gql(&sb, SET, set_vars(&sb, &[("A", 1, json!(3))], "k2")).await;
    assert_eq!(
        other["errors"][0]["extensions"]["code"],
        "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    );
    // Explicit null opts out of the check.
    let body = gql(&sb, SET, set_vars(&sb, &[("A", 4, Value::Null)], "k3")).await;
    assert_eq!(
        body["data"]["inventorySetQuantities"]["userErrors"],
        json!([])
    );
    assert_eq!(shop.current_quantity("A"), Some(4));
    // Missing changeFromQuantity.
    let mut vars = set_vars(&sb, &[("A", 4, json!(4))], "k4");
    vars["input"]["quantities"][0]
        .as_object_mut()
        .unwrap()
        .remove("changeFromQuantity");
    let body = gql(&sb, SET, vars).await;
    assert_eq!(
        body["data"]["inventorySetQuantities"]["userErrors"][0]["code"],
        "CHANGE_FROM_QUANTITY_REQUIRED"
    );
    // Missing @idempotent.
    let no_key = "mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) { userErrors { code } } }";
    let body = gql(&sb, no_key, set_vars(&sb, &[("A", 4, json!(4))], "unused")).await;
    assert!(body["data"]["inventorySetQuantities"].is_null());
    assert_eq!(body["errors"][0]["path"], json!(["inventorySetQuantities"]));
}

#[tokio::test]
async fn not_stocked_until_activated_and_reject_skus() {
    let mut seed = ShopifySeedListing::new("U", 0, "1.00");
    seed.stocked = false;
    let opts = ShopifyOptions {
        listings: vec![seed, ShopifySeedListing::new("BAD", 1, "1.00")],
        ..ShopifyOptions::default()
    };
    let sb = start(opts).await;
    let shop = sb.shopify();
    let body = gql(&sb, SET, set_vars(&sb, &[("U", 3, json!(0))], "a")).await;
    assert_eq!(
        body["data"]["inventorySetQuantities"]["userErrors"][0]["code"],
        "ITEM_NOT_STOCKED_AT_LOCATION"
    );
    let act = "mutation($i: ID!, $l: ID!) { inventoryActivate(inventoryItemId: $i, locationId: $l) { inventoryLevel { quantities(names: [\"available\"]) { quantity } } userErrors { message } } }";
    let body = gql(
        &sb,
        act,
        json!({"i": item_of(&sb, "U"), "l": shop.location_id()}),
    )
    .await;
    assert_eq!(
        body["data"]["inventoryActivate"]["inventoryLevel"]["quantities"][0]["quantity"],
        0
    );
    let body = gql(&sb, SET, set_vars(&sb, &[("U", 3, json!(0))], "b")).await;
    assert_eq!(
        body["data"]["inventorySetQuantities"]["userErrors"],
        json!([])
    );
    assert_eq!(shop.current_quantity("U"), Some(3));
    shop.faults().add(FaultRule::new(
        MARKETPLACE,
        "inventorySetQuantities",
        FaultKind::reject_skus(["BAD"], 1, "locked by a test"),
    ));
    let body = gql(
        &sb,
        SET,
        set_vars(&sb, &[("U", 4, json!(3)), ("BAD", 2, json!(1))], "c"),
    )
    .await;
    let errs = &body["data"]["inventorySetQuantities"]["userErrors"];
    assert_eq!(errs[0]["field"][2], "1");
    assert_eq!(errs[0]["message"], "locked by a test");
    assert_eq!(shop.current_quantity("U"), Some(3));
}

const PRODUCT_SET: &str = "mutation($input: ProductSetInput!) { productSet(input: $input, synchronous: true) { product { id status variants(first: 10) { nodes { id sku price inventoryItem { id } } } } userErrors { code field message } } }";

#[tokio::test]
async fn product_set_creates_updates_and_refuses() {
    let sb = start(ShopifyOptions::default()).await;
    let shop = sb.shopify();
    let loc = shop.location_id();
    let input = json!({"title": "Shirt", "status": "ACTIVE", "vendor": "Acme",
        "productOptions": [{"name": "Size", "values": [{"name": "M"}, {"name": "L"}]}],
        "variants": [
            {"sku": "SHIRT-M", "price": "19.99", "optionValues": [{"optionName": "Size", "name": "M"}],
             "inventoryItem": {"tracked": true}, "inventoryQuantities": [{"locationId": loc, "name": "available", "quantity": 5}]},
            {"sku": "SHIRT-L", "price": "21.00", "optionValues": [{"optionName": "Size", "name": "L"}],
             "inventoryQuantities": [{"locationId": loc, "name": "available", "quantity": 2}]}]});
    let body = gql(&sb, PRODUCT_SET, json!({"input": input})).await;
    let p = &body["data"]["productSet"]["product"];
    assert_eq!(p["variants"]["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(shop.current_quantity("SHIRT-M"), Some(5));
    assert_eq!(
        shop.current_price("SHIRT-L"),
        Some(Money::new("21.00", "USD"))
    );
    assert_eq!(
        shop.listing("SHIRT-L").unwrap().options,
        vec![("Size".to_owned(), "L".to_owned())]
    );
    // Update: keep M by id, drop L (list replaced).
    let pid = p["id"].as_str().unwrap().to_owned();
    let m_id = p["variants"]["nodes"][0]["id"].clone();
    let body = gql(&sb, PRODUCT_SET, json!({"input": {"id": pid, "productOptions": [{"name": "Size", "values": [{"name": "M"}]}],
        "variants": [{"id": m_id, "price": "18.00", "optionValues": [{"optionName": "Size", "name": "M"}]}]}})).await;
    assert_eq!(body["data"]["productSet"]["userErrors"], json!([]));
    assert_eq!(shop.skus(), vec!["SHIRT-M".to_owned()]);
    assert_eq!(
        shop.current_price("SHIRT-M"),
        Some(Money::new("18.00", "USD"))
    );
    // Refusals: no title, duplicate SKU (another product), bad option value; nothing applied.
    let body = gql(&sb, PRODUCT_SET, json!({"input": {"productOptions": [{"name": "Title", "values": [{"name": "Default Title"}]}],
        "variants": [{"sku": "SHIRT-M", "price": "1", "optionValues": [{"optionName": "Title", "name": "Nope"}]}]}})).await;
    let errs = body["data"]["productSet"]["userErrors"]
        .as_array()
        .unwrap()
        .clone();
    let codes: Vec<&str> = errs.iter().filter_map(|e| e["code"].as_str()).collect();
    assert!(codes.contains(&"INVALID_PRODUCT"), "{codes:?}");
    assert!(codes.contains(&"DUPLICATED_VALUE"), "{codes:?}");
    assert!(codes.contains(&"OPTION_VALUE_DOES_NOT_EXIST"), "{codes:?}");
    assert!(body["data"]["productSet"]["product"].is_null());
    assert_eq!(shop.skus().len(), 1);
}

#[tokio::test]
async fn throttled_answers_carry_the_bucket_with_the_configured_status() {
    for status in [200u16, 429] {
        let opts = ShopifyOptions {
            bucket_size: 50.0,
            restore_rate: 100.0,
            throttle_status: status,
            listings: vec![ShopifySeedListing::new("A", 1, "1")],
            ..ShopifyOptions::default()
        };
        let sb = start(opts).await;
        let token = sb.shopify().credentials().access_token;
        let q = "{ productVariants(first: 20) { nodes { id inventoryItem { id } } } }"; // 42 points
        let (s1, _) = gql_as(&sb, &token, q, json!({})).await;
        assert_eq!(s1, 200);
        sb.shopify().drain_bucket(50.0);
        let (s2, body) = gql_as(&sb, &token, q, json!({})).await;
        assert_eq!(s2, status);
        assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
        assert!(body.get("data").is_none());
        assert_eq!(body["extensions"]["cost"]["requestedQueryCost"], 42);
        assert!(body["extensions"]["cost"]["actualQueryCost"].is_null());
        let avail = body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
            .as_f64()
            .unwrap();
        assert!(avail < 42.0, "{avail}");
        assert_eq!(sb.shopify().count_429(), 1);
        // 100 points per second: 42 are back within half a second.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (s3, _) = gql_as(&sb, &token, q, json!({})).await;
        assert_eq!(s3, 200);
        // Over the single-query maximum.
        let big = "{ productVariants(first: 250) { nodes { id product { id } inventoryItem { id inventoryLevel(locationId: \"x\") { id } } } } }";
        let (_, body) = gql_as(&sb, &token, big, json!({})).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED");
    }
}

#[tokio::test]
async fn client_credentials_tokens_expire_and_bad_ones_get_401() {
    let sb = start(ShopifyOptions::default()).await;
    let creds = sb.shopify().credentials();
    let token_url = format!("{}/shopify/admin/oauth/access_token", sb.base_url());
    let resp = client()
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &creds.client_id),
            ("client_secret", &creds.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let t: Value = resp.json().await.unwrap();
    assert_eq!(t["expires_in"], 86_399);
    assert_eq!(t["scope"], SCOPES);
    let token = t["access_token"].as_str().unwrap().to_owned();
    let (status, _) = gql_as(&sb, &token, "{ shop { name } }", json!({})).await;
    assert_eq!(status, 200);
    sb.shopify().expire_access_tokens();
    let (status, body) = gql_as(&sb, &token, "{ shop { name } }", json!({})).await;
    assert_eq!(status, 401);
    assert!(
        body["errors"]
            .as_str()
            .unwrap()
            .contains("Invalid API key or access token")
    );
    let resp = client()
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client()
        .post(&token_url)
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(sb.shopify().request_count(OP_TOKEN), 3);
    assert!(!format!("{creds:?}").contains(&creds.client_secret));
}

#[tokio::test]
async fn hostile_requests_get_shopify_errors() {
    let sb = start(ShopifyOptions::default()).await;
    let token = sb.shopify().credentials().access_token;
    let post = |u: String, body: Vec<u8>| {
        let token = token.clone();
        async move {
            let r = client()
                .post(u)
                .header(ACCESS_TOKEN_HEADER, token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    assert_eq!(post(url(&sb, V), b"not json".to_vec()).await.0, 400);
    assert_eq!(post(url(&sb, "2026-13"), b"{}".to_vec()).await.0, 404);
    assert_eq!(
        post(url(&sb, V), vec![b' '; crate::MAX_BODY_BYTES + 10])
            .await
            .0,
        413
    );
    let (s, body) = post(url(&sb, V), br#"{"query":"{ shop { "}"#.to_vec()).await;
    assert_eq!(s, 200);
    assert!(body.contains("PARSE_ERROR"));
    let (s, body) = post(url(&sb, V), br#"{"query":"{ shop { nope } }"}"#.to_vec()).await;
    assert_eq!(s, 200);
    assert!(body.contains("doesn't exist on type 'Shop'"), "{body}");
    let (s, body) = post(
        url(&sb, V),
        br#"{"query":"{ productVariants(first: 251) { nodes { id } } }"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.contains("maximum page size"), "{body}");
    let (status, _) = gql_as(&sb, "shpat_wrong", "{ shop { name } }", json!({})).await;
    assert_eq!(status, 401);
}

type Delivery = (HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Delivery>>>);

async fn receiver() -> (String, Received) {
    let got = Received::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(r): State<Received>, h: HeaderMap, b: Bytes| async move {
                    r.0.lock().unwrap().push((h, b.to_vec()));
                    StatusCode::OK
                },
            ),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

const ORDERS: &str = "query($after: String, $q: String!) { orders(first: 2, after: $after, sortKey: UPDATED_AT, query: $q) { pageInfo { hasNextPage endCursor } nodes { id name cancelledAt displayFinancialStatus displayFulfillmentStatus updatedAt lineItems(first: 5) { nodes { id sku quantity currentQuantity } } } } }";

#[tokio::test]
async fn orders_page_by_update_time_and_send_signed_webhooks() {
    let opts = ShopifyOptions {
        listings: vec![ShopifySeedListing::new("A", 10, "2.50")],
        ..ShopifyOptions::default()
    };
    let sb = start(opts).await;
    let shop = sb.shopify();
    let (hook, got) = receiver().await;
    shop.set_webhook(Some(WebhookTarget::new(hook, "whsec")));
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    let o1 = shop.place_order(&[OrderLine::new("A", 2)]).unwrap();
    let o2 = shop.place_order(&[OrderLine::new("A", 1)]).unwrap();
    let o3 = shop.place_order(&[OrderLine::new("A", 3)]).unwrap();
    assert_eq!(shop.current_quantity("A"), Some(4));
    assert!(matches!(
        shop.place_order(&[OrderLine::new("A", 5)]),
        Err(ControlError::InsufficientQuantity { .. })
    ));
    tokio::time::sleep(Duration::from_millis(20)).await;
    shop.cancel_order(&o1).unwrap();
    assert_eq!(shop.current_quantity("A"), Some(6));
    let q = format!(
        "updated_at:>='{}' status:any",
        before.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let p1 = gql(&sb, ORDERS, json!({"q": q})).await;
    let conn = &p1["data"]["orders"];
    assert_eq!(conn["nodes"][0]["id"], o2);
    assert_eq!(conn["nodes"][1]["id"], o3);
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let p2 = gql(
        &sb,
        ORDERS,
        json!({"q": q, "after": conn["pageInfo"]["endCursor"]}),
    )
    .await;
    let conn = &p2["data"]["orders"];
    assert_eq!(
        conn["nodes"][0]["id"], o1,
        "the cancelled order was updated last"
    );
    assert!(conn["nodes"][0]["cancelledAt"].is_string());
    assert_eq!(conn["nodes"][0]["displayFinancialStatus"], "REFUNDED");
    assert_eq!(
        conn["nodes"][0]["lineItems"]["nodes"][0]["currentQuantity"],
        0
    );
    assert_eq!(conn["pageInfo"]["hasNextPage"], false);
    let future = "updated_at:>='2999-01-01T00:00:00Z'";
    let none = gql(&sb, ORDERS, json!({"q": future})).await;
    assert_eq!(none["data"]["orders"]["nodes"], json!([]));
    // Webhooks: orders/create ×3, orders/cancelled ×1, signed.
    for _ in 0..100 {
        if got.0.lock().unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = got.0.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    let topics: Vec<String> = got
        .iter()
        .map(|(h, _)| h["x-shopify-topic"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(topics.iter().filter(|t| *t == "orders/create").count(), 3);
    assert!(topics.contains(&"orders/cancelled".to_owned()));
    for (h, body) in &got {
        assert_eq!(
            h["x-shopify-hmac-sha256"].to_str().unwrap(),
            sign_base64("whsec", body)
        );
        for name in [
            "x-shopify-webhook-id",
            "x-shopify-event-id",
            "x-shopify-shop-domain",
            "x-shopify-api-version",
            "x-shopify-triggered-at",
        ] {
            assert!(h.contains_key(name), "{name}");
        }
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["line_items"][0]["sku"], "A");
    }
    assert_eq!(shop.webhook_counts().accepted, 4);
}

#[tokio::test]
async fn faults_and_the_control_api() {
    let opts = ShopifyOptions {
        listings: vec![ShopifySeedListing::new("A", 3, "1.00")],
        ..ShopifyOptions::default()
    };
    let sb = start(opts).await;
    let shop = sb.shopify();
    shop.faults()
        .add(FaultRule::new(MARKETPLACE, "shop", FaultKind::server_error(503)).times(1));
    let token = shop.credentials().access_token;
    let (status, _) = gql_as(&sb, &token, "{ shop { name } }", json!({})).await;
    assert_eq!(status, 503);
    shop.faults()
        .add(FaultRule::new(MARKETPLACE, "shop", FaultKind::MalformedBody).times(1));
    let resp = client()
        .post(url(&sb, V))
        .header(ACCESS_TOKEN_HEADER, &token)
        .json(&json!({"query": "{ shop { name } }"}))
        .send()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&resp.bytes().await.unwrap()).is_err());
    // Control API: place and cancel an order over HTTP.
    let base = format!("{}/_control/shopify", sb.base_url());
    let r: Value = client()
        .post(format!("{base}/orders"))
        .json(&json!({"lines": [{"sku": "A", "quantity": 2}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["orderId"].as_str().unwrap().to_owned();
    assert_eq!(shop.current_quantity("A"), Some(1));
    let status = client()
        .post(format!(
            "{base}/orders/{}/cancel",
            id.rsplit('/').next().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert_eq!(shop.current_quantity("A"), Some(3));
    let status = client()
        .put(format!("{base}/listings/A/quantity"))
        .json(&json!({"quantity": 8}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert_eq!(shop.current_quantity("A"), Some(8));
    let stats: Value = client()
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["throttleStatus"]["maximumAvailable"], 2000.0);
    let status = client()
        .put(format!("{base}/throttle_status"))
        .json(&json!({"status": 418}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
}
