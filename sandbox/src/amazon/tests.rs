//! HTTP-level stories against a running sandbox: a reqwest client speaking SP-API's contract, the
//! [`AmazonHandle`] checking state and records behind it. Feeds are driven by advancing the
//! sandbox clock (or polling with a deadline), never by sleeping and hoping.

use std::io::Read as _;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::*;
use crate::{FaultKind, FaultRule, Sandbox, SandboxOptions};

const MP: &str = DEFAULT_MARKETPLACE_ID;
const JSON_TYPE: &str = "application/json; charset=UTF-8";

/// A sandbox plus a client and the SP-API calls the stories use.
struct Harness {
    sandbox: Sandbox,
    http: reqwest::Client,
}

/// A response: status, headers and the JSON body (`Null` when empty).
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["errors"][0]["code"].as_str().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn start_with(amazon: AmazonOptions) -> Harness {
    let sandbox = Sandbox::start(SandboxOptions {
        amazon,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    // reqwest is built `rustls-no-provider`; plain http still needs a provider installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds");
    Harness { sandbox, http }
}

async fn start() -> Harness {
    start_with(AmazonOptions::unlimited()).await
}

/// Percent-encodes everything but unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A complete PUT body: title, condition, DEFAULT quantity, price.
fn full_listing(title: &str, quantity: u32, price: f64) -> Value {
    json!({"productType": "PRODUCT", "requirements": "LISTING", "attributes": {
        "item_name": [{"value": title, "language_tag": "en_US", "marketplace_id": MP}],
        "condition_type": [{"value": "new_new", "marketplace_id": MP}],
        "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}],
        "purchasable_offer": [{"marketplace_id": MP, "currency": "USD",
            "our_price": [{"schedule": [{"value_with_tax": price}]}]}],
    }})
}

fn quantity_patch(op: &str, quantity: Value) -> Value {
    json!([{"op": op, "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]}])
}

fn price_patch(price: Value) -> Value {
    json!([{"op": "replace", "path": "/attributes/purchasable_offer",
            "value": [{"marketplace_id": MP, "currency": "USD", "audience": "ALL",
                       "our_price": [{"schedule": [{"value_with_tax": price}]}]}]}])
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

impl Harness {
    fn amazon(&self) -> AmazonHandle {
        self.sandbox.amazon()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/amazon{path}", self.sandbox.base_url())
    }

    fn item_url(&self, sku: &str, query: &str) -> String {
        let seller = self.amazon().seller_id();
        let sep = if query.is_empty() { "" } else { "&" };
        self.url(&format!(
            "/listings/2021-08-01/items/{seller}/{}?marketplaceIds={MP}{sep}{query}",
            enc(sku)
        ))
    }

    fn search_url(&self, query: &str) -> String {
        let seller = self.amazon().seller_id();
        self.url(&format!(
            "/listings/2021-08-01/items/{seller}?marketplaceIds={MP}&{query}"
        ))
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Resp {
        self.send(self.http.post(self.url("/auth/o2/token")).form(form))
            .await
    }

    async fn token(&self) -> String {
        let c = self.amazon().credentials();
        let resp = self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &c.refresh_token),
                ("client_id", &c.client_id),
                ("client_secret", &c.client_secret),
            ])
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
        resp.body["access_token"].as_str().unwrap().to_owned()
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON body ({e}): {text}"))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, t: &str, url: &str) -> Resp {
        self.send(self.http.get(url).header(ACCESS_TOKEN_HEADER, t))
            .await
    }

    async fn put_listing(&self, t: &str, sku: &str, body: &Value) -> Resp {
        self.send(
            self.http
                .put(self.item_url(sku, ""))
                .header(ACCESS_TOKEN_HEADER, t)
                .json(body),
        )
        .await
    }

    async fn patch_listing(&self, t: &str, sku: &str, patches: Value) -> Resp {
        self.send(
            self.http
                .patch(self.item_url(sku, ""))
                .header(ACCESS_TOKEN_HEADER, t)
                .json(&json!({"productType": "PRODUCT", "patches": patches})),
        )
        .await
    }

    async fn delete_listing(&self, t: &str, sku: &str) -> Resp {
        self.send(
            self.http
                .delete(self.item_url(sku, ""))
                .header(ACCESS_TOKEN_HEADER, t),
        )
        .await
    }

    /// createFeedDocument + upload; returns the document id.
    async fn upload_document(&self, t: &str, bytes: Vec<u8>) -> String {
        let doc = self
            .send(
                self.http
                    .post(self.url("/feeds/2021-06-30/documents"))
                    .header(ACCESS_TOKEN_HEADER, t)
                    .json(&json!({"contentType": JSON_TYPE})),
            )
            .await;
        assert_eq!(doc.status, StatusCode::CREATED, "{}", doc.body);
        let url = doc.body["url"].as_str().unwrap();
        assert!(url.starts_with(&self.url("/_s3/")), "{url}");
        let up = self
            .http
            .put(url)
            .header("Content-Type", JSON_TYPE)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(up.status(), StatusCode::OK);
        doc.body["feedDocumentId"].as_str().unwrap().to_owned()
    }

    async fn create_feed(&self, t: &str, feed_type: &str, doc_id: &str) -> Resp {
        self.send(
            self.http
                .post(self.url("/feeds/2021-06-30/feeds"))
                .header(ACCESS_TOKEN_HEADER, t)
                .json(&json!({"feedType": feed_type, "marketplaceIds": [MP],
                              "inputFeedDocumentId": doc_id})),
        )
        .await
    }

    /// Uploads a JSON_LISTINGS_FEED document and submits it; returns the feedId.
    async fn submit_feed(&self, t: &str, doc: &Value) -> String {
        let doc_id = self
            .upload_document(t, serde_json::to_vec(doc).unwrap())
            .await;
        let resp = self.create_feed(t, JSON_LISTINGS_FEED, &doc_id).await;
        assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.body);
        resp.body["feedId"].as_str().unwrap().to_owned()
    }

    async fn feed(&self, t: &str, id: &str) -> Value {
        let resp = self
            .get(t, &self.url(&format!("/feeds/2021-06-30/feeds/{id}")))
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
        resp.body
    }

    /// Advances the sandbox clock past the processing time, then polls getFeed (deadline 5 s)
    /// until the feed is DONE or FATAL.
    async fn finish_feed(&self, t: &str, id: &str) -> Value {
        self.sandbox.advance_clock(DEFAULT_FEED_PROCESSING);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let feed = self.feed(t, id).await;
            if matches!(feed["processingStatus"].as_str(), Some("DONE" | "FATAL")) {
                return feed;
            }
            assert!(
                Instant::now() < deadline,
                "feed {id} never finished: {feed}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// getFeedDocument → download → gunzip when compressed → JSON; also returns the document.
    async fn report(&self, t: &str, feed: &Value) -> (Value, Value) {
        let doc_id = feed["resultFeedDocumentId"]
            .as_str()
            .expect("result document");
        let doc = self
            .get(
                t,
                &self.url(&format!("/feeds/2021-06-30/documents/{doc_id}")),
            )
            .await;
        assert_eq!(doc.status, StatusCode::OK, "{}", doc.body);
        let bytes = self
            .http
            .get(doc.body["url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let raw = if doc.body["compressionAlgorithm"] == "GZIP" {
            gunzip(&bytes)
        } else {
            bytes.to_vec()
        };
        (
            serde_json::from_slice(&raw).expect("report is JSON"),
            doc.body,
        )
    }
}

fn feed_doc(seller: &str, messages: Value) -> Value {
    json!({"header": {"sellerId": seller, "version": "2.0", "issueLocale": "en_US"},
           "messages": messages})
}

// ---- LWA and access tokens ------------------------------------------------------------------

#[tokio::test]
async fn lwa_refresh_grant_issues_tokens_that_expire_on_the_sandbox_clock() {
    let h = start().await;
    let c = h.amazon().credentials();
    let base = [
        ("grant_type", "refresh_token"),
        ("refresh_token", c.refresh_token.as_str()),
        ("client_id", c.client_id.as_str()),
    ];

    let mut form = base.to_vec();
    form.push(("client_secret", "wrong"));
    let resp = h.token_request(&form).await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.body["error"], "invalid_client");
    assert!(resp.body["error_description"].is_string());

    let resp = h
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "Atzr|stolen"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ])
        .await;
    assert_eq!(
        (resp.status, resp.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let resp = h.token_request(&[("refresh_token", "x")]).await;
    assert_eq!(resp.body["error"], "invalid_request");
    let resp = h
        .token_request(&[("grant_type", "authorization_code")])
        .await;
    assert_eq!(resp.body["error"], "unsupported_grant_type");

    // JSON bodies work too (Amazon's Java SDK sends them).
    let resp = h
        .send(h.http.post(h.url("/auth/o2/token")).json(&json!({
            "grant_type": "refresh_token", "refresh_token": c.refresh_token,
            "client_id": c.client_id, "client_secret": c.client_secret})))
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.body["token_type"], "bearer");
    assert_eq!(resp.body["expires_in"], 3600);
    assert_eq!(resp.body["refresh_token"], c.refresh_token.as_str());
    let t = resp.body["access_token"].as_str().unwrap().to_owned();
    assert!(t.starts_with("Atza|"));

    let search = h.search_url("pageSize=1");
    let resp = h.send(h.http.get(&search)).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert_eq!(
        resp.body,
        json!({"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.",
                           "details": "Access token is missing in the request header."}]})
    );
    assert_eq!(
        resp.header("x-amzn-ErrorType"),
        Some("AccessDeniedException")
    );
    assert!(resp.header(RATE_LIMIT_HEADER).is_none());
    assert!(resp.header("x-amzn-RequestId").is_some());
    assert_eq!(
        h.get("Atza|forged", &search).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(h.get(&t, &search).await.status, StatusCode::OK);

    h.sandbox
        .advance_clock(Duration::from_secs(ACCESS_TOKEN_TTL_SECS + 1));
    let resp = h.get(&t, &search).await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert_eq!(
        resp.body["errors"][0]["details"],
        "The access token you provided has expired."
    );
    let fresh = h.token().await;
    assert_eq!(h.get(&fresh, &search).await.status, StatusCode::OK);
    h.amazon().expire_access_tokens();
    let resp = h.get(&fresh, &search).await;
    assert_eq!(
        (resp.status, resp.code()),
        (StatusCode::FORBIDDEN, "Unauthorized")
    );
    assert_eq!(h.amazon().request_count("token"), 6);
}

// ---- listings -------------------------------------------------------------------------------

#[tokio::test]
async fn put_patch_get_delete_round_trip_and_are_logged() {
    let h = start().await;
    let t = h.token().await;
    let sku = "MUG 1/blue";

    let resp = h
        .put_listing(&t, sku, &full_listing("Blue mug", 5, 12.5))
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.body["sku"], sku);
    assert_eq!(resp.body["status"], "ACCEPTED");
    assert_eq!(resp.body["issues"], json!([]));
    assert!(resp.body["submissionId"].as_str().unwrap().len() >= 32);
    let amazon = h.amazon();
    assert_eq!(amazon.current_quantity(sku), Some(5));
    assert_eq!(amazon.current_price(sku), Some(Money::new("12.50", "USD")));

    let resp = h
        .get(
            &t,
            &h.item_url(
                sku,
                "includedData=summaries,attributes,issues,offers,fulfillmentAvailability",
            ),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    let item = &resp.body;
    assert_eq!(item["sku"], sku);
    let summary = &item["summaries"][0];
    assert_eq!(summary["status"], json!(["BUYABLE", "DISCOVERABLE"]));
    assert_eq!(summary["itemName"], "Blue mug");
    assert_eq!(summary["conditionType"], "new_new");
    assert!(summary["asin"].as_str().unwrap().starts_with("B0"));
    assert_eq!(
        item["offers"][0]["price"],
        json!({"currencyCode": "USD", "amount": "12.50"})
    );
    assert_eq!(
        item["fulfillmentAvailability"],
        json!([{"fulfillmentChannelCode": "DEFAULT", "quantity": 5}])
    );
    assert_eq!(item["issues"], json!([]));
    // Default includedData is summaries only.
    let resp = h.get(&t, &h.item_url(sku, "")).await;
    assert!(resp.body.get("attributes").is_none() && resp.body["summaries"].is_array());

    let resp = h
        .patch_listing(&t, sku, quantity_patch("replace", json!(3)))
        .await;
    assert_eq!(resp.body["status"], "ACCEPTED");
    assert_eq!(amazon.current_quantity(sku), Some(3));
    // merge keeps the other fields of the DEFAULT entry.
    h.patch_listing(
        &t,
        sku,
        json!([{"op": "merge", "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "lead_time_to_ship_max_days": 3}]}]),
    )
    .await;
    h.patch_listing(&t, sku, quantity_patch("merge", json!(8)))
        .await;
    let attrs = amazon.listing(sku).unwrap().attributes;
    assert_eq!(
        attrs["fulfillment_availability"],
        json!([{"fulfillment_channel_code": "DEFAULT", "quantity": 8, "lead_time_to_ship_max_days": 3}])
    );
    let resp = h.patch_listing(&t, sku, price_patch(json!(9.99))).await;
    assert_eq!(resp.body["status"], "ACCEPTED");
    assert_eq!(amazon.current_price(sku), Some(Money::new("9.99", "USD")));

    let resp = h.delete_listing(&t, sku).await;
    assert_eq!(resp.body["status"], "ACCEPTED");
    let resp = h.get(&t, &h.item_url(sku, "")).await;
    assert_eq!(
        (resp.status, resp.code()),
        (StatusCode::NOT_FOUND, "NotFound")
    );
    let resp = h.delete_listing(&t, "NEVER-EXISTED").await;
    assert_eq!(
        (resp.status, resp.body["status"].as_str()),
        (StatusCode::OK, Some("ACCEPTED"))
    );

    let writes = amazon.writes();
    let ops: Vec<&str> = writes.iter().map(|w| w.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "putListingsItem",
            "patchListingsItem",
            "patchListingsItem",
            "patchListingsItem",
            "patchListingsItem",
            "deleteListingsItem"
        ],
        "the delete of an unknown SKU applies nothing"
    );
    assert!(
        writes
            .iter()
            .all(|w| w.sku == sku && w.listing_ref.is_some())
    );
    assert_eq!(writes[0].quantity, Some(5));
    assert_eq!(writes[0].price, Some(Money::new("12.50", "USD")));
    assert_eq!(writes[1].quantity, Some(3));
    assert_eq!(
        writes[1].price, None,
        "a quantity patch does not set the price"
    );
    assert_eq!(writes[4].price, Some(Money::new("9.99", "USD")));
    assert_eq!(writes[4].quantity, None);
    assert_eq!(writes[3].visible_quantity, Some(8));
    assert_eq!(amazon.request_count("patchListingsItem"), 4);
}

#[tokio::test]
async fn invalid_submissions_change_nothing_and_bad_requests_get_sp_api_errors() {
    let h = start().await;
    let t = h.token().await;
    let amazon = h.amazon();

    let mut body = full_listing("x", 1, 1.0);
    body["attributes"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k == "fulfillment_availability");
    let resp = h.put_listing(&t, "NEW-1", &body).await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.body["status"], "INVALID");
    let issues = resp.body["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 2);
    for (issue, attr) in issues.iter().zip(["item_name", "condition_type"]) {
        assert_eq!(issue["code"], "90220");
        assert_eq!(issue["severity"], "ERROR");
        assert_eq!(issue["categories"], json!(["MISSING_ATTRIBUTE"]));
        assert_eq!(issue["attributeNames"], json!([attr]));
    }
    assert!(amazon.listing("NEW-1").is_none());
    // LISTING_OFFER_ONLY needs the condition only.
    body["requirements"] = json!("LISTING_OFFER_ONLY");
    body["attributes"]["condition_type"] = json!([{"value": "used_good"}]);
    assert_eq!(
        h.put_listing(&t, "NEW-1", &body).await.body["status"],
        "ACCEPTED"
    );

    h.amazon()
        .seed_listing(AmazonSeedListing::new("S1", 4, "10.00"))
        .unwrap();
    for patches in [
        quantity_patch("replace", json!(-1)),
        quantity_patch("replace", json!(1.5)),
        price_patch(json!("10.00")),
        price_patch(json!(10.001)),
        json!([{"op": "replace", "path": "/attributes/fulfillment_availability/0/quantity", "value": [{}]}]),
        json!([{"op": "replace", "path": "/attributes/item_name"}]),
        json!([{"op": "merge", "path": "/attributes/fulfillment_availability", "value": [{"quantity": 1}]}]),
    ] {
        let resp = h.patch_listing(&t, "S1", patches.clone()).await;
        assert_eq!(resp.body["status"], "INVALID", "{patches}: {}", resp.body);
        assert_eq!(resp.body["issues"][0]["severity"], "ERROR");
    }
    assert_eq!(amazon.current_quantity("S1"), Some(4));
    assert_eq!(amazon.current_price("S1"), Some(Money::new("10.00", "USD")));

    // Preview validates without applying.
    let resp = h
        .send(
            h.http
                .patch(h.item_url("S1", "mode=VALIDATION_PREVIEW&includedData=issues,identifiers"))
                .header(ACCESS_TOKEN_HEADER, &t)
                .json(&json!({"productType": "PRODUCT", "patches": quantity_patch("replace", json!(1))})),
        )
        .await;
    assert_eq!(resp.body["status"], "VALID");
    assert_eq!(resp.body["identifiers"][0]["marketplaceId"], MP);
    assert_eq!(amazon.current_quantity("S1"), Some(4));

    let bad = |status: StatusCode, resp: Resp| {
        assert_eq!(resp.status, status, "{}", resp.body);
        assert!(!resp.code().is_empty(), "SP-API error body: {}", resp.body);
    };
    let patch = |url: String| h.http.patch(url).header(ACCESS_TOKEN_HEADER, &t);
    bad(
        StatusCode::BAD_REQUEST,
        h.send(patch(h.item_url("S1", "includedData=identifiers")).json(
            &json!({"productType": "PRODUCT", "patches": quantity_patch("replace", json!(1))}),
        ))
        .await,
    );
    bad(
        StatusCode::BAD_REQUEST,
        h.send(
            patch(h.item_url("S1", ""))
                .header("Content-Type", "application/json")
                .body("{not json"),
        )
        .await,
    );
    bad(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        h.send(patch(h.item_url("S1", "")).body("x")).await,
    );
    bad(
        StatusCode::BAD_REQUEST,
        h.send(patch(h.item_url("S1", "")).json(&json!({"productType": "PRODUCT", "patches": []})))
            .await,
    );
    bad(
        StatusCode::BAD_REQUEST,
        h.send(
            patch(h.item_url("S1", "")).json(&json!({"patches": quantity_patch("add", json!(1))})),
        )
        .await,
    );
    let huge = vec![b' '; crate::MAX_BODY_BYTES + 10];
    bad(
        StatusCode::PAYLOAD_TOO_LARGE,
        h.send(
            patch(h.item_url("S1", ""))
                .header("Content-Type", "application/json")
                .body(huge),
        )
        .await,
    );
    let seller = amazon.seller_id();
    let raw = |path: &str| h.url(&format!("/listings/2021-08-01/items/{path}"));
    bad(
        StatusCode::BAD_REQUEST,
        h.get(&t, &raw(&format!("{seller}/S1"))).await,
    );
    bad(
        StatusCode::BAD_REQUEST,
        h.get(
            &t,
            &raw(&format!("{seller}/S1?marketplaceIds=A1F83G8C2ARO7P")),
        )
        .await,
    );
    bad(
        StatusCode::FORBIDDEN,
        h.get(&t, &raw(&format!("SOMEONEELSE/S1?marketplaceIds={MP}")))
            .await,
    );
    bad(
        StatusCode::BAD_REQUEST,
        h.get(&t, &raw(&format!("{seller}/%FF%FE?marketplaceIds={MP}")))
            .await,
    );
    bad(
        StatusCode::BAD_REQUEST,
        h.get(&t, &h.item_url("S1", "includedData=everything"))
            .await,
    );
    let long = "L".repeat(41);
    assert_eq!(
        h.put_listing(&t, &long, &full_listing("x", 1, 1.0))
            .await
            .body["status"],
        "INVALID"
    );
}

#[tokio::test]
async fn patch_of_an_unknown_sku_creates_an_offer_only_listing() {
    let h = start().await;
    let t = h.token().await;
    let resp = h
        .patch_listing(&t, "OFFER-ONLY", quantity_patch("replace", json!(6)))
        .await;
    assert_eq!(resp.body["status"], "ACCEPTED");
    let amazon = h.amazon();
    assert_eq!(amazon.current_quantity("OFFER-ONLY"), Some(6));
    let resp = h
        .get(
            &t,
            &h.item_url("OFFER-ONLY", "includedData=summaries,issues"),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.body["summaries"][0]["status"], json!([]));
    let missing: Vec<&str> = resp.body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["attributeNames"][0].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["item_name", "condition_type"]);
    assert!(matches!(
        amazon.place_order(&[OrderLine::new("OFFER-ONLY", 1)]),
        Err(ControlError::NotListed(_))
    ));
    // Supplying the product facts and a price makes it buyable.
    h.put_listing(&t, "OFFER-ONLY", &full_listing("Now complete", 6, 5.0))
        .await;
    assert_eq!(
        amazon.listing("OFFER-ONLY").unwrap().status,
        ["BUYABLE", "DISCOVERABLE"]
    );
    assert!(amazon.listing("OFFER-ONLY").unwrap().issues.is_empty());
}

#[tokio::test]
async fn search_pages_with_opaque_tokens_and_filters() {
    let h = start().await;
    let t = h.token().await;
    let amazon = h.amazon();
    for i in 0..25 {
        amazon
            .seed_listing(AmazonSeedListing::new(format!("SKU-{i:02}"), i, "3.00"))
            .unwrap();
    }
    let resp = h.get(&t, &h.search_url("pageSize=21")).await;
    assert_eq!(
        (resp.status, resp.code()),
        (StatusCode::BAD_REQUEST, "InvalidInput")
    );

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut q =
            "pageSize=10&sortBy=sku&sortOrder=ASC&includedData=summaries,fulfillmentAvailability"
                .to_owned();
        if let Some(tok) = &token {
            q.push_str(&format!("&pageToken={}", enc(tok)));
        }
        let resp = h.get(&t, &h.search_url(&q)).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
        assert_eq!(resp.body["numberOfResults"], 25);
        let items = resp.body["items"].as_array().unwrap();
        pages.push(items.len());
        seen.extend(items.iter().map(|i| i["sku"].as_str().unwrap().to_owned()));
        match resp.body["pagination"]["nextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, [10, 10, 5]);
    let expected: Vec<String> = (0..25).map(|i| format!("SKU-{i:02}")).collect();
    assert_eq!(seen, expected);

    // A token is only good with the same filters.
    let resp = h
        .get(&t, &h.search_url("pageSize=10&sortBy=sku&sortOrder=ASC"))
        .await;
    let tok = resp.body["pagination"]["nextToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = h
        .get(
            &t,
            &h.search_url(&format!(
                "pageSize=10&sortBy=sku&sortOrder=DESC&pageToken={}",
                enc(&tok)
            )),
        )
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    let resp = h.get(&t, &h.search_url("pageToken=nonsense")).await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);

    // Filters: identifiers, status (SKU-00 has no stock: DISCOVERABLE only).
    let resp = h
        .get(
            &t,
            &h.search_url("identifiers=SKU-03,SKU-07&identifiersType=SKU"),
        )
        .await;
    assert_eq!(resp.body["numberOfResults"], 2);
    let resp = h.get(&t, &h.search_url("withoutStatus=BUYABLE")).await;
    assert_eq!(resp.body["numberOfResults"], 1);
    assert_eq!(resp.body["items"][0]["sku"], "SKU-00");
    let resp = h.get(&t, &h.search_url("identifiers=SKU-03")).await;
    assert_eq!(
        resp.status,
        StatusCode::BAD_REQUEST,
        "identifiersType missing"
    );
    // Default sort: lastUpdatedDate, newest first.
    h.amazon().advance_clock(Duration::from_secs(5));
    h.patch_listing(&t, "SKU-11", quantity_patch("replace", json!(1)))
        .await;
    let resp = h.get(&t, &h.search_url("pageSize=1")).await;
    assert_eq!(resp.body["items"][0]["sku"], "SKU-11");
}

// ---- feeds ----------------------------------------------------------------------------------

#[tokio::test]
async fn feed_flow_applies_messages_in_order_and_reports_per_message_issues() {
    let h = start().await;
    let t = h.token().await;
    let amazon = h.amazon();
    for sku in ["A", "B", "D"] {
        amazon
            .seed_listing(AmazonSeedListing::new(sku, 10, "20.00"))
            .unwrap();
    }
    let seller = amazon.seller_id();
    let mut doc = feed_doc(
        &seller,
        json!([
            {"messageId": 12, "sku": "A", "operationType": "PATCH", "productType": "PRODUCT",
             "patches": quantity_patch("replace", json!(1))},
            {"messageId": 11, "sku": "A", "operationType": "PATCH", "productType": "PRODUCT",
             "patches": quantity_patch("replace", json!(2))},
            {"messageId": 2, "sku": "B", "operationType": "PARTIAL_UPDATE", "productType": "PRODUCT",
             "attributes": {"purchasable_offer": [{"marketplace_id": MP, "currency": "USD",
                 "our_price": [{"schedule": [{"value_with_tax": 18.25}]}]}]}},
            {"messageId": 3, "sku": "C", "operationType": "UPDATE", "productType": "PRODUCT",
             "attributes": full_listing("New C", 4, 7.0)["attributes"]},
            {"messageId": 4, "sku": "D", "operationType": "DELETE"},
            {"messageId": 5, "sku": "B", "operationType": "PATCH", "productType": "PRODUCT",
             "patches": quantity_patch("replace", json!(-3))},
            {"messageId": 6, "sku": "E", "operationType": "UPDATE",
             "attributes": {"item_name": [{"value": "no product type"}]}},
            {"messageId": 7, "sku": "F", "operationType": "UPDATE", "productType": "PRODUCT",
             "attributes": {"fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": 1}]}},
        ]),
    );
    doc["header"]["report"] = json!({"includedData": ["summaries", "issues", "fulfillmentAvailability"],
                                     "apiVersion": "2021-08-01"});
    let id = h.submit_feed(&t, &doc).await;
    let feed = h.feed(&t, &id).await;
    assert_eq!(feed["processingStatus"], "IN_QUEUE");
    assert_eq!(feed["feedType"], JSON_LISTINGS_FEED);
    assert!(feed.get("resultFeedDocumentId").is_none());
    assert_eq!(
        amazon.current_quantity("A"),
        Some(10),
        "nothing applied yet"
    );

    h.sandbox.advance_clock(DEFAULT_FEED_PROCESSING / 2);
    assert_eq!(h.feed(&t, &id).await["processingStatus"], "IN_PROGRESS");
    let feed = h.finish_feed(&t, &id).await;
    assert_eq!(feed["processingStatus"], "DONE");
    assert!(feed["processingStartTime"].is_string() && feed["processingEndTime"].is_string());

    assert_eq!(
        amazon.current_quantity("A"),
        Some(1),
        "messageId 12 after 11"
    );
    assert_eq!(amazon.current_price("B"), Some(Money::new("18.25", "USD")));
    assert_eq!(
        amazon.current_quantity("B"),
        Some(10),
        "message 5 was invalid"
    );
    assert_eq!(amazon.current_quantity("C"), Some(4));
    assert!(amazon.listing("D").is_none());
    assert!(amazon.listing("E").is_none() && amazon.listing("F").is_none());

    let (report, document) = h.report(&t, &feed).await;
    assert_eq!(document["compressionAlgorithm"], "GZIP");
    assert_eq!(report["header"]["feedId"], id.as_str());
    assert_eq!(report["header"]["sellerId"], seller.as_str());
    let summary = &report["summary"];
    assert_eq!(summary["messagesProcessed"], 8);
    assert_eq!(summary["messagesAccepted"], 5);
    assert_eq!(summary["messagesInvalid"], 3);
    assert_eq!(summary["errors"], 4, "message 7 misses two attributes");
    let by_message: Vec<(u64, &str)> = report["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["messageId"].as_u64().unwrap(), i["sku"].as_str().unwrap()))
        .collect();
    assert_eq!(by_message, [(5, "B"), (6, "E"), (7, "F"), (7, "F")]);
    assert_eq!(report["issues"][2]["code"], "90220");
    let items: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sku"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["B", "C", "A"]);
    assert_eq!(summary["itemSummary"]["items"], 3);

    let feed_writes: Vec<_> = amazon
        .writes()
        .into_iter()
        .filter(|w| w.operation == JSON_LISTINGS_FEED)
        .collect();
    assert_eq!(feed_writes.len(), 5);
    assert_eq!(
        feed_writes[0].batch_ref.as_deref(),
        Some(format!("feed {id} message 2").as_str())
    );
    assert_eq!(feed_writes.last().unwrap().quantity, Some(1));
    let snap = amazon.feeds();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].messages, 8);
    assert_eq!(snap[0].status, "DONE");
    assert_eq!(amazon.feed_report(&id).unwrap(), report);

    // The presigned URLs: wrong content type, wrong signature, expiry.
    let doc = h
        .send(
            h.http
                .post(h.url("/feeds/2021-06-30/documents"))
                .header(ACCESS_TOKEN_HEADER, &t)
                .json(&json!({"contentType": JSON_TYPE})),
        )
        .await;
    let url = doc.body["url"].as_str().unwrap().to_owned();
    let put = |ct: &'static str, url: String| {
        h.http.put(url).header("Content-Type", ct).body("{}").send()
    };
    assert_eq!(put("text/xml", url.clone()).await.unwrap().status(), 403);
    let forged = format!("{}0", url);
    assert_eq!(put(JSON_TYPE, forged).await.unwrap().status(), 403);
    h.sandbox.advance_clock(Duration::from_secs(301));
    let expired = put(JSON_TYPE, url.clone()).await.unwrap();
    assert_eq!(expired.status(), 403);
    assert!(expired.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn large_feeds_upload_beyond_the_json_body_limit() {
    let h = start().await;
    let t = h.token().await;
    let seller = h.amazon().seller_id();
    let messages: Vec<Value> = (1..=MAX_FEED_MESSAGES_FOR_TEST)
        .map(|i| {
            json!({"messageId": i, "sku": format!("BULK-{i:05}"), "operationType": "PATCH",
                   "productType": "PRODUCT", "patches": quantity_patch("replace", json!(i % 7))})
        })
        .collect();
    let bytes = serde_json::to_vec(&feed_doc(&seller, json!(messages))).unwrap();
    assert!(bytes.len() > crate::MAX_BODY_BYTES, "{} bytes", bytes.len());
    let doc_id = h.upload_document(&t, bytes).await;
    let id = h.create_feed(&t, JSON_LISTINGS_FEED, &doc_id).await.body["feedId"]
        .as_str()
        .unwrap()
        .to_owned();
    let feed = h.finish_feed(&t, &id).await;
    assert_eq!(feed["processingStatus"], "DONE");
    let (report, _) = h.report(&t, &feed).await;
    assert_eq!(
        report["summary"]["messagesAccepted"],
        MAX_FEED_MESSAGES_FOR_TEST
    );
    assert_eq!(h.amazon().current_quantity("BULK-25000"), Some(25_000 % 7));
    assert_eq!(h.amazon().feeds()[0].messages, 25_000);

    // One more message is a FATAL feed.
    let mut too_many = messages;
    too_many.push(json!({"messageId": 25_001, "sku": "X", "operationType": "DELETE"}));
    let id = h.submit_feed(&t, &feed_doc(&seller, json!(too_many))).await;
    let feed = h.finish_feed(&t, &id).await;
    assert_eq!(feed["processingStatus"], "FATAL");
}

const MAX_FEED_MESSAGES_FOR_TEST: usize = feeds::MAX_FEED_MESSAGES;

#[tokio::test]
async fn feed_level_problems_end_fatal_with_a_feed_level_issue() {
    let h = start_with(AmazonOptions {
        gzip_reports: false,
        ..AmazonOptions::unlimited()
    })
    .await;
    let t = h.token().await;
    let amazon = h.amazon();
    amazon
        .seed_listing(AmazonSeedListing::new("KEEP", 5, "1.00"))
        .unwrap();
    let seller = amazon.seller_id();
    let ok_message = json!({"messageId": 1, "sku": "KEEP", "operationType": "PATCH",
                            "productType": "PRODUCT", "patches": quantity_patch("replace", json!(0))});
    let cases = [
        feed_doc("A-DIFFERENT-SELLER", json!([ok_message])),
        json!({"header": {"sellerId": seller, "version": "1.0"}, "messages": [ok_message]}),
        feed_doc(&seller, json!([ok_message, ok_message])),
        feed_doc(&seller, json!([])),
        feed_doc(
            &seller,
            json!([{"messageId": 0, "sku": "KEEP", "operationType": "DELETE"}]),
        ),
        json!("just a string"),
    ];
    for doc in &cases {
        let id = h.submit_feed(&t, doc).await;
        let feed = h.finish_feed(&t, &id).await;
        assert_eq!(feed["processingStatus"], "FATAL", "{doc}");
        let (report, document) = h.report(&t, &feed).await;
        assert!(document.get("compressionAlgorithm").is_none());
        let issues = report["issues"].as_array().unwrap();
        assert_eq!(issues.len(), 1, "{report}");
        assert!(issues[0].get("messageId").is_none());
        assert_eq!(issues[0]["severity"], "ERROR");
        assert_eq!(report["summary"]["messagesProcessed"], 0);
    }
    // Unparseable bytes too.
    let doc_id = h.upload_document(&t, b"\xFF{oops".to_vec()).await;
    let id = h.create_feed(&t, JSON_LISTINGS_FEED, &doc_id).await.body["feedId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(h.finish_feed(&t, &id).await["processingStatus"], "FATAL");
    assert_eq!(amazon.current_quantity("KEEP"), Some(5), "nothing applied");

    // Retired listings feed types are accepted, then FATAL; unknown types are refused.
    let legacy = h.create_feed(&t, "POST_PRODUCT_DATA", &doc_id).await;
    assert_eq!(legacy.status, StatusCode::ACCEPTED);
    let feed = h
        .finish_feed(&t, legacy.body["feedId"].as_str().unwrap())
        .await;
    assert_eq!(feed["processingStatus"], "FATAL");
    let resp = h.create_feed(&t, "NOT_A_FEED_TYPE", &doc_id).await;
    assert_eq!(
        (resp.status, resp.code()),
        (StatusCode::BAD_REQUEST, "InvalidInput")
    );
    let resp = h
        .create_feed(&t, JSON_LISTINGS_FEED, "no-such-document")
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);

    // fail_next_feeds: the next one ends FATAL although valid; the one after is fine.
    amazon.fail_next_feeds(1);
    let good = feed_doc(&seller, json!([ok_message]));
    let id = h.submit_feed(&t, &good).await;
    let feed = h.finish_feed(&t, &id).await;
    assert_eq!(feed["processingStatus"], "FATAL");
    assert_eq!(amazon.current_quantity("KEEP"), Some(5));
    let id = h.submit_feed(&t, &good).await;
    assert_eq!(h.finish_feed(&t, &id).await["processingStatus"], "DONE");
    assert_eq!(amazon.current_quantity("KEEP"), Some(0));
}

#[tokio::test]
async fn held_feeds_stay_queued_can_be_cancelled_and_get_feeds_filters_and_pages() {
    let h = start().await;
    let t = h.token().await;
    let amazon = h.amazon();
    amazon
        .seed_listing(AmazonSeedListing::new("H", 5, "1.00"))
        .unwrap();
    let seller = amazon.seller_id();
    let doc = |q: u32| {
        feed_doc(
            &seller,
            json!([{"messageId": 1, "sku": "H", "operationType": "PATCH", "productType": "PRODUCT",
                     "patches": quantity_patch("replace", json!(q))}]),
        )
    };
    amazon.hold_feeds(true);
    let first = h.submit_feed(&t, &doc(1)).await;
    let second = h.submit_feed(&t, &doc(2)).await;
    h.sandbox.advance_clock(Duration::from_secs(60));
    assert_eq!(h.feed(&t, &first).await["processingStatus"], "IN_QUEUE");
    assert_eq!(amazon.current_quantity("H"), Some(5));

    let cancel = |id: String| {
        h.send(
            h.http
                .delete(h.url(&format!("/feeds/2021-06-30/feeds/{id}")))
                .header(ACCESS_TOKEN_HEADER, &t),
        )
    };
    let resp = cancel(first.clone()).await;
    assert_eq!((resp.status, &resp.body), (StatusCode::OK, &Value::Null));
    assert_eq!(h.feed(&t, &first).await["processingStatus"], "CANCELLED");

    amazon.hold_feeds(false);
    let feed = h.finish_feed(&t, &second).await;
    assert_eq!(feed["processingStatus"], "DONE");
    assert_eq!(
        amazon.current_quantity("H"),
        Some(2),
        "the cancelled feed never ran"
    );
    let resp = cancel(second.clone()).await;
    assert_eq!(
        (resp.status, resp.code()),
        (StatusCode::BAD_REQUEST, "InvalidInput")
    );
    assert_eq!(cancel("123".into()).await.status, StatusCode::NOT_FOUND);
    assert_eq!(cancel("abc".into()).await.status, StatusCode::BAD_REQUEST);

    let feeds_url = |q: &str| h.url(&format!("/feeds/2021-06-30/feeds?{q}"));
    let resp = h.get(&t, &feeds_url("pageSize=1")).await;
    assert_eq!(
        resp.status,
        StatusCode::BAD_REQUEST,
        "feedTypes or nextToken required"
    );
    let resp = h
        .get(&t, &feeds_url("feedTypes=JSON_LISTINGS_FEED&pageSize=1"))
        .await;
    assert_eq!(
        resp.body["feeds"][0]["feedId"],
        second.as_str(),
        "newest first"
    );
    let next = resp.body["nextToken"].as_str().unwrap().to_owned();
    let resp = h
        .get(&t, &feeds_url(&format!("nextToken={}", enc(&next))))
        .await;
    assert_eq!(resp.body["feeds"][0]["feedId"], first.as_str());
    assert!(resp.body.get("nextToken").is_none());
    let resp = h
        .get(
            &t,
            &feeds_url(&format!("nextToken={}&pageSize=5", enc(&next))),
        )
        .await;
    assert_eq!(
        resp.status,
        StatusCode::BAD_REQUEST,
        "nextToken must come alone"
    );
    let resp = h
        .get(
            &t,
            &feeds_url("feedTypes=JSON_LISTINGS_FEED&processingStatuses=CANCELLED"),
        )
        .await;
    assert_eq!(resp.body["feeds"].as_array().unwrap().len(), 1);
    assert_eq!(resp.body["feeds"][0]["feedId"], first.as_str());
    let now = h.sandbox.shared.clock.now();
    let (since, until) = (
        http::timestamp(now - chrono::Duration::hours(2)),
        http::timestamp(now - chrono::Duration::hours(1)),
    );
    let resp = h
        .get(
            &t,
            &feeds_url(&format!(
                "feedTypes=JSON_LISTINGS_FEED&createdSince={}&createdUntil={}",
                enc(&since),
                enc(&until)
            )),
        )
        .await;
    assert_eq!(resp.body["feeds"], json!([]));
    let resp = h
        .get(
            &t,
            &feeds_url(&format!(
                "feedTypes=JSON_LISTINGS_FEED&createdSince={}&createdUntil={}",
                enc(&until),
                enc(&since)
            )),
        )
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST, "until before since");
    let resp = h
        .get(
            &t,
            &feeds_url("feedTypes=JSON_LISTINGS_FEED&processingStatuses=LOST"),
        )
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
}

// ---- orders ---------------------------------------------------------------------------------

#[tokio::test]
async fn orders_page_filter_and_follow_the_lifecycle() {
    let h = start().await;
    let t = h.token().await;
    let amazon = h.amazon();
    amazon
        .seed_listing(AmazonSeedListing::new("O-1", 10, "5.00"))
        .unwrap();
    amazon
        .seed_listing(AmazonSeedListing::new("O-2", 1, "7.25"))
        .unwrap();
    let start_time = http::timestamp(h.sandbox.shared.clock.now() - chrono::Duration::minutes(1));
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(amazon.place_order(&[OrderLine::new("O-1", 2)]).unwrap());
    }
    assert_eq!(amazon.current_quantity("O-1"), Some(2));
    assert_eq!(
        amazon.place_order(&[OrderLine::new("O-1", 3)]),
        Err(ControlError::InsufficientQuantity {
            sku: "O-1".into(),
            available: 2,
            requested: 3
        })
    );
    assert!(matches!(
        amazon.place_order(&[OrderLine::new("NOPE", 1)]),
        Err(ControlError::UnknownSku(_))
    ));
    let fba = amazon.place_fba_order(&[OrderLine::new("O-2", 5)]).unwrap();
    assert_eq!(
        amazon.current_quantity("O-2"),
        Some(1),
        "FBA leaves DEFAULT alone"
    );

    let orders_url = |q: &str| h.url(&format!("/orders/2026-01-01/orders?{q}"));
    for q in [
        format!("marketplaceIds={MP}"),
        format!("createdAfter={0}&lastUpdatedAfter={0}", enc(&start_time)),
        format!("createdAfter={}&maxResultsPerPage=0", enc(&start_time)),
        format!("createdAfter={}&maxResultsPerPage=101", enc(&start_time)),
        "createdAfter=yesterday".to_owned(),
        format!("createdAfter={}&fulfilledBy=SOMEONE", enc(&start_time)),
        format!(
            "lastUpdatedAfter={}&lastUpdatedBefore={}",
            enc(&start_time),
            enc(&http::timestamp(h.sandbox.shared.clock.now()))
        ),
    ] {
        let resp = h.get(&t, &orders_url(&q)).await;
        assert_eq!(
            (resp.status, resp.code()),
            (StatusCode::BAD_REQUEST, "InvalidInput"),
            "{q}"
        );
    }

    // Pages of 2, oldest first, fulfillment data on request.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = format!(
            "createdAfter={}&marketplaceIds={MP}&maxResultsPerPage=2&includedData=FULFILLMENT",
            enc(&start_time)
        );
        if let Some(tok) = &token {
            q.push_str(&format!("&paginationToken={}", enc(tok)));
        }
        let resp = h.get(&t, &orders_url(&q)).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
        assert!(resp.body["createdBefore"].is_string());
        for o in resp.body["orders"].as_array().unwrap() {
            seen.push((
                o["orderId"].as_str().unwrap().to_owned(),
                o["fulfillment"]["fulfilledBy"].as_str().unwrap().to_owned(),
                o["fulfillment"]["fulfillmentStatus"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ));
        }
        match resp.body["pagination"]["nextToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<(String, String, String)> = ids
        .iter()
        .map(|id| (id.clone(), "MERCHANT".into(), "UNSHIPPED".into()))
        .collect();
    expected.push((fba.clone(), "AMAZON".into(), "UNSHIPPED".into()));
    assert_eq!(seen, expected);

    let resp = h
        .get(
            &t,
            &orders_url(&format!(
                "createdAfter={}&fulfilledBy=AMAZON",
                enc(&start_time)
            )),
        )
        .await;
    let only: Vec<&str> = resp.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(only, [fba.as_str()]);
    assert!(
        resp.body["orders"][0].get("fulfillment").is_none(),
        "fulfillment only with includedData=FULFILLMENT"
    );

    // Lifecycle: cancel restores stock, ship; each change bumps lastUpdatedTime.
    let before = amazon.order(&ids[0]).unwrap()["lastUpdatedTime"].clone();
    h.sandbox.advance_clock(Duration::from_secs(1));
    let cursor = http::timestamp(h.sandbox.shared.clock.now());
    amazon.cancel_order(&ids[0]).unwrap();
    assert_eq!(amazon.current_quantity("O-1"), Some(4));
    amazon.ship_order(&ids[1]).unwrap();
    amazon.cancel_order(&fba).unwrap();
    assert_eq!(amazon.current_quantity("O-2"), Some(1));
    assert!(matches!(
        amazon.cancel_order(&ids[1]),
        Err(ControlError::InvalidTransition { .. })
    ));
    assert!(matches!(
        amazon.ship_order("nope"),
        Err(ControlError::UnknownOrder(_))
    ));
    let after = amazon.order(&ids[0]).unwrap()["lastUpdatedTime"].clone();
    assert!(after.as_str() > before.as_str());
    let resp = h
        .get(
            &t,
            &orders_url(&format!(
                "lastUpdatedAfter={}&includedData=FULFILLMENT,CANCELLATION,PACKAGES,PROCEEDS",
                enc(&cursor)
            )),
        )
        .await;
    let changed: Vec<(&str, &str)> = resp.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["orderId"].as_str().unwrap(),
                o["fulfillment"]["fulfillmentStatus"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            (ids[0].as_str(), "CANCELLED"),
            (ids[1].as_str(), "SHIPPED"),
            (fba.as_str(), "CANCELLED")
        ]
    );
    assert!(resp.body["lastUpdatedBefore"].is_string());
    let shipped = &resp.body["orders"][1];
    assert_eq!(shipped["packages"][0]["packageStatus"]["status"], "SHIPPED");
    assert_eq!(
        shipped["orderItems"][0]["fulfillment"]["quantityFulfilled"],
        2
    );
    assert_eq!(
        shipped["proceeds"]["grandTotal"],
        json!({"amount": "10.00", "currencyCode": "USD"})
    );
    assert_eq!(shipped["orderItems"][0]["product"]["sellerSku"], "O-1");

    let resp = h
        .get(
            &t,
            &h.url(&format!(
                "/orders/2026-01-01/orders/{}?includedData=FULFILLMENT",
                ids[1]
            )),
        )
        .await;
    assert_eq!(
        resp.body["order"]["fulfillment"]["fulfillmentStatus"],
        "SHIPPED"
    );
    let resp = h
        .get(&t, &h.url("/orders/2026-01-01/orders/111-0000000-0000000"))
        .await;
    assert_eq!(
        (resp.status, resp.code()),
        (StatusCode::NOT_FOUND, "NotFound")
    );
}

// ---- rate limits ----------------------------------------------------------------------------

#[tokio::test]
async fn buckets_throttle_with_the_documented_429_and_rate_headers() {
    let h = start_with(AmazonOptions::default()).await;
    let t = h.token().await;
    let amazon = h.amazon();
    assert_eq!(
        amazon.rate_limit("getListingsItem"),
        Some(RateLimit::new(5.0, 10))
    );
    assert_eq!(
        amazon.rate_limit("searchOrders"),
        Some(RateLimit::new(0.0056, 20))
    );
    assert_eq!(amazon.rate_limit("token"), None);
    let feed_bucket = amazon.rate_limit(JSON_LISTINGS_FEED).unwrap();
    assert_eq!(feed_bucket.burst, 5);
    assert!((feed_bucket.rate_per_sec - 5.0 / 300.0).abs() < 1e-12);

    amazon
        .seed_listing(AmazonSeedListing::new("R", 1, "1.00"))
        .unwrap();
    let resp = h.get(&t, &h.item_url("R", "")).await;
    assert_eq!(resp.header(RATE_LIMIT_HEADER), Some("5.0"));
    let resp = h.get(&t, &h.item_url("MISSING", "")).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(
        resp.header(RATE_LIMIT_HEADER),
        Some("5.0"),
        "404 carries it"
    );
    let resp = h.get(&t, &h.item_url("R", "includedData=nope")).await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.header(RATE_LIMIT_HEADER),
        Some("5.0"),
        "400 carries it"
    );

    amazon.set_rate_limit("getListingsItem", Some(RateLimit::new(0.001, 2)));
    for _ in 0..2 {
        let resp = h.get(&t, &h.item_url("R", "")).await;
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.header(RATE_LIMIT_HEADER), Some("0.001"));
    }
    let resp = h.get(&t, &h.item_url("R", "")).await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        resp.body,
        json!({"errors": [{"code": "QuotaExceeded",
            "message": "You exceeded your quota for the requested resource.", "details": ""}]})
    );
    assert!(
        resp.header(RATE_LIMIT_HEADER).is_none(),
        "no rate header on 429"
    );
    // Other operations have their own buckets.
    assert_eq!(
        h.get(&t, &h.search_url("pageSize=1")).await.status,
        StatusCode::OK
    );
    assert_eq!((amazon.count_429(), amazon.throttled_count()), (1, 1));

    // JSON_LISTINGS_FEED: five submissions per five minutes, on top of createFeed's bucket.
    let seller = amazon.seller_id();
    let doc = feed_doc(
        &seller,
        json!([{"messageId": 1, "sku": "R", "operationType": "DELETE"}]),
    );
    let doc_id = h
        .upload_document(&t, serde_json::to_vec(&doc).unwrap())
        .await;
    for _ in 0..5 {
        assert_eq!(
            h.create_feed(&t, JSON_LISTINGS_FEED, &doc_id).await.status,
            StatusCode::ACCEPTED
        );
    }
    let resp = h.create_feed(&t, JSON_LISTINGS_FEED, &doc_id).await;
    assert_eq!(
        (resp.status, resp.code()),
        (StatusCode::TOO_MANY_REQUESTS, "QuotaExceeded")
    );
    assert!(resp.header(RATE_LIMIT_HEADER).is_none());
    assert_eq!(amazon.feeds().len(), 5);

    let plan = AmazonOptions::sandbox_plan();
    assert!(
        plan.rate_limits
            .values()
            .all(|l| *l == RateLimit::new(5.0, 15))
    );
    assert_eq!(plan.rate_limits.len(), USAGE_PLANS.len() + 1);
}

// ---- faults ---------------------------------------------------------------------------------

#[tokio::test]
async fn faults_speak_amazon_and_reject_skus_in_calls_and_feeds() {
    let h = start().await;
    let t = h.token().await;
    let amazon = h.amazon();
    for sku in ["OK", "BAD"] {
        amazon
            .seed_listing(AmazonSeedListing::new(sku, 3, "2.00"))
            .unwrap();
    }
    let id = amazon
        .faults()
        .add(FaultRule::new("amazon", "getListingsItem", FaultKind::server_error(503)).times(1));
    let resp = h.get(&t, &h.item_url("OK", "")).await;
    assert_eq!(
        (resp.status, resp.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
    );
    assert_eq!(
        h.get(&t, &h.item_url("OK", "")).await.status,
        StatusCode::OK
    );
    assert_eq!(amazon.faults().fired(id), 1);

    amazon.add_fault(
        "*",
        FaultKind::reject_skus(["BAD"], 8541, "The SKU is blocked."),
    );
    let resp = h
        .patch_listing(&t, "BAD", quantity_patch("replace", json!(9)))
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.body["status"], "INVALID");
    assert_eq!(resp.body["issues"][0]["code"], "8541");
    assert_eq!(resp.body["issues"][0]["message"], "The SKU is blocked.");
    assert_eq!(amazon.current_quantity("BAD"), Some(3));
    assert_eq!(
        h.patch_listing(&t, "OK", quantity_patch("replace", json!(9)))
            .await
            .body["status"],
        "ACCEPTED"
    );
    // In a feed, only that message fails.
    let seller = amazon.seller_id();
    let doc = feed_doc(
        &seller,
        json!(
            ["OK", "BAD"]
                .iter()
                .enumerate()
                .map(|(i, s)| json!({
            "messageId": i + 1, "sku": s, "operationType": "PATCH", "productType": "PRODUCT",
            "patches": quantity_patch("replace", json!(1))}))
                .collect::<Vec<_>>()
        ),
    );
    let feed_id = h.submit_feed(&t, &doc).await;
    let feed = h.finish_feed(&t, &feed_id).await;
    let (report, _) = h.report(&t, &feed).await;
    assert_eq!(report["summary"]["messagesInvalid"], 1);
    assert_eq!(report["issues"][0]["sku"], "BAD");
    assert_eq!(report["issues"][0]["code"], "8541");
    assert_eq!(amazon.current_quantity("OK"), Some(1));
    assert_eq!(amazon.current_quantity("BAD"), Some(3));
    amazon.faults().clear();

    amazon.add_fault("patchListingsItem", FaultKind::MalformedBody);
    let resp = h
        .http
        .patch(h.item_url("OK", ""))
        .header(ACCESS_TOKEN_HEADER, &t)
        .json(&json!({"productType": "PRODUCT", "patches": quantity_patch("replace", json!(4))}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&resp.text().await.unwrap()).is_err());
    assert_eq!(
        amazon.current_quantity("OK"),
        Some(4),
        "applied before truncating"
    );
    amazon.faults().clear();

    amazon.add_fault(
        "searchOrders",
        FaultKind::TooManyRequests {
            retry_after_secs: None,
        },
    );
    let resp = h
        .get(
            &t,
            &h.url("/orders/2026-01-01/orders?createdAfter=2020-01-01T00:00:00Z"),
        )
        .await;
    assert_eq!(
        (resp.status, resp.code()),
        (StatusCode::TOO_MANY_REQUESTS, "QuotaExceeded")
    );
    assert_eq!((amazon.count_429(), amazon.throttled_count()), (1, 0));
}

// ---- control API over HTTP ------------------------------------------------------------------

#[tokio::test]
async fn control_api_drives_the_fake_from_another_process() {
    let h = start().await;
    let base = h.sandbox.base_url();
    let ctl = |p: &str| format!("{base}/_control/amazon{p}");

    let resp = h
        .send(
            h.http
                .post(ctl("/listings"))
                .json(&json!({"sku": "REMOTE", "quantity": 5, "price": "9.99", "title": "Remote"})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
    assert_eq!(resp.body["status"], json!(["BUYABLE", "DISCOVERABLE"]));
    assert_eq!(
        resp.body["price"],
        json!({"value": "9.99", "currency": "USD"})
    );
    let resp = h
        .send(
            h.http
                .post(ctl("/orders"))
                .json(&json!({"lines": [{"sku": "REMOTE", "quantity": 2}]})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
    let order = resp.body["orderId"].as_str().unwrap().to_owned();
    let resp = h.send(h.http.get(ctl("/listings/REMOTE"))).await;
    assert_eq!(resp.body["quantity"], 3);
    let resp = h
        .send(
            h.http
                .post(ctl("/orders/fba"))
                .json(&json!({"lines": [{"sku": "REMOTE", "quantity": 9}]})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CREATED);
    let resp = h
        .send(
            h.http
                .post(ctl("/orders"))
                .json(&json!({"lines": [{"sku": "REMOTE", "quantity": 9}]})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::CONFLICT);
    assert!(resp.body["error"].as_str().unwrap().contains("REMOTE"));
    assert_eq!(
        h.send(h.http.post(ctl(&format!("/orders/{order}/ship"))))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let resp = h.send(h.http.get(ctl(&format!("/orders/{order}")))).await;
    assert_eq!(resp.body["fulfillment"]["fulfillmentStatus"], "SHIPPED");
    assert_eq!(
        h.send(h.http.post(ctl(&format!("/orders/{order}/cancel"))))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        h.send(
            h.http
                .put(ctl("/listings/REMOTE/quantity"))
                .json(&json!({"quantity": 42}))
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(h.amazon().current_quantity("REMOTE"), Some(42));
    assert_eq!(
        h.send(
            h.http
                .put(ctl("/listings/REMOTE/price"))
                .json(&json!({"value": "1.50", "currency": "USD"}))
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.amazon().current_price("REMOTE"),
        Some(Money::new("1.50", "USD"))
    );
    assert_eq!(
        h.send(h.http.get(ctl("/listings/NOPE"))).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        h.amazon().writes().is_empty(),
        "drift and seeds are not writes"
    );

    assert_eq!(
        h.send(h.http.put(ctl("/feeds/hold")).json(&json!({"hold": true})))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.send(
            h.http
                .post(ctl("/feeds/fail_next"))
                .json(&json!({"count": 1}))
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let t = h.token().await;
    let seller = h.amazon().seller_id();
    let id = h
        .submit_feed(
            &t,
            &feed_doc(
                &seller,
                json!([{"messageId": 1, "sku": "REMOTE", "operationType": "DELETE"}]),
            ),
        )
        .await;
    h.sandbox.advance_clock(Duration::from_secs(10));
    let resp = h.send(h.http.get(ctl("/feeds"))).await;
    assert_eq!(resp.body[0]["feedId"], id.as_str());
    assert_eq!(resp.body[0]["status"], "IN_QUEUE");
    h.send(h.http.put(ctl("/feeds/hold")).json(&json!({"hold": false})))
        .await;
    assert_eq!(h.finish_feed(&t, &id).await["processingStatus"], "FATAL");
    let resp = h
        .send(h.http.get(ctl(&format!("/feeds/{id}/report"))))
        .await;
    assert_eq!(resp.body["summary"]["messagesProcessed"], 0);
    assert!(
        h.amazon().listing("REMOTE").is_some(),
        "the failed feed deleted nothing"
    );

    let resp = h
        .send(
            h.http
                .put(ctl("/rate_limits/getOrder"))
                .json(&json!({"rate_per_sec": 1.0, "burst": 2})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.amazon().rate_limit("getOrder"),
        Some(RateLimit::new(1.0, 2))
    );
    let resp = h
        .send(h.http.put(ctl("/rate_limits/nonsense")).json(&Value::Null))
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.send(h.http.post(ctl("/tokens/expire"))).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get(&t, &h.search_url("pageSize=1")).await.status,
        StatusCode::FORBIDDEN
    );
    let resp = h.send(h.http.get(ctl("/stats"))).await;
    assert_eq!(resp.body["requestCounts"]["createFeed"], 1);
    let resp = h.send(h.http.get(ctl("/requests"))).await;
    assert!(
        resp.body
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["operation"] == "uploadFeedDocument")
    );
}

// ---- contract shapes ------------------------------------------------------------------------

/// An official Amazon model, read in place (never copied into the repo): `OMNISTOCK_SPECS_DIR`,
/// else `../shared/contracts/specs` beside the repository.
fn load_spec(file: &str) -> Option<Value> {
    let dir = std::env::var_os("OMNISTOCK_SPECS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/contracts/specs")
        });
    let text = std::fs::read_to_string(dir.join("amazon").join(file)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Validates `v` against `schema` (Swagger 2.0 definitions or draft-07): `$ref`, `type`, `enum`,
/// `const`, `required`, `format: date-time`, `minimum`, `minLength`, `minItems`, `items`, and —
/// stricter than the specs — no properties they do not declare unless `additionalProperties`
/// allows them.
fn validate(root: &Value, schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        let target = &root["definitions"][name];
        if target.is_null() {
            out.push(format!("{path}: unresolved {r}"));
        } else {
            validate(root, target, v, path, out);
        }
        return;
    }
    if let Some(c) = schema.get("const")
        && v != c
    {
        out.push(format!("{path}: {v} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        out.push(format!(
            "{path}: {v} not in enum {schema}",
            schema = json!(e)
        ));
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => {
            let Some(s) = v.as_str() else {
                out.push(format!("{path}: {v} is not a string"));
                return;
            };
            if schema["format"] == "date-time" && chrono::DateTime::parse_from_rfc3339(s).is_err() {
                out.push(format!("{path}: {s:?} is not a date-time"));
            }
            if let Some(min) = schema["minLength"].as_u64()
                && (s.chars().count() as u64) < min
            {
                out.push(format!("{path}: shorter than {min}"));
            }
        }
        Some("integer") => {
            if !(v.is_i64() || v.is_u64()) {
                out.push(format!("{path}: {v} is not an integer"));
            } else if let Some(min) = schema["minimum"].as_i64()
                && v.as_i64().is_some_and(|n| n < min)
            {
                out.push(format!("{path}: {v} below {min}"));
            }
        }
        Some("number") if !v.is_number() => out.push(format!("{path}: {v} is not a number")),
        Some("boolean") if !v.is_boolean() => out.push(format!("{path}: {v} is not a boolean")),
        Some("array") => {
            let Some(items) = v.as_array() else {
                out.push(format!("{path}: {v} is not an array"));
                return;
            };
            if let Some(min) = schema["minItems"].as_u64()
                && (items.len() as u64) < min
            {
                out.push(format!("{path}: fewer than {min} items"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(root, item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
    let is_object_schema = schema["type"] == "object" || schema.get("properties").is_some();
    if !is_object_schema {
        return;
    }
    let Some(obj) = v.as_object() else {
        out.push(format!("{path}: {v} is not an object"));
        return;
    };
    for r in schema["required"].as_array().into_iter().flatten() {
        if let Some(r) = r.as_str()
            && !obj.contains_key(r)
        {
            out.push(format!("{path}: required '{r}' missing"));
        }
    }
    let props = schema["properties"].as_object();
    let extra = &schema["additionalProperties"];
    for (k, x) in obj {
        let here = format!("{path}.{k}");
        match props.and_then(|p| p.get(k)) {
            Some(p) => validate(root, p, x, &here, out),
            None if extra == &json!(true) => {}
            None if extra.is_object() => validate(root, extra, x, &here, out),
            None => out.push(format!("{here}: not declared by the schema")),
        }
    }
}

#[tokio::test]
async fn responses_match_the_official_schemas() {
    let (Some(listings), Some(feeds_spec), Some(orders_spec), Some(report_schema)) = (
        load_spec("listingsItems_2021-08-01.json"),
        load_spec("feeds_2021-06-30.json"),
        load_spec("orders_2026-01-01.json"),
        load_spec("listings-feed-processing-report-schema-v2.json"),
    ) else {
        eprintln!("SKIPPED: Amazon specs not found (set OMNISTOCK_SPECS_DIR)");
        return;
    };
    let h = start().await;
    let t = h.token().await;
    let amazon = h.amazon();
    amazon
        .seed_listing(AmazonSeedListing::new("SHAPE", 5, "19.99"))
        .unwrap();
    let mut problems = Vec::new();
    let mut check = |spec: &Value, def: &str, body: &Value| {
        let schema = json!({ "$ref": format!("#/definitions/{def}") });
        validate(spec, &schema, body, def, &mut problems);
    };
    let all = "includedData=summaries,attributes,issues,offers,fulfillmentAvailability,procurement,relationships,productTypes";

    check(
        &listings,
        "Item",
        &h.get(&t, &h.item_url("SHAPE", all)).await.body,
    );
    h.patch_listing(&t, "PARTIAL", quantity_patch("replace", json!(1)))
        .await;
    check(
        &listings,
        "Item",
        &h.get(&t, &h.item_url("PARTIAL", all)).await.body,
    );
    check(
        &listings,
        "ItemSearchResults",
        &h.get(&t, &h.search_url(&format!("pageSize=1&{all}")))
            .await
            .body,
    );
    let accepted = h
        .put_listing(&t, "SHAPE2", &full_listing("Shape 2", 1, 2.0))
        .await;
    check(&listings, "ListingsItemSubmissionResponse", &accepted.body);
    let invalid = h
        .put_listing(
            &t,
            "SHAPE3",
            &json!({"productType": "PRODUCT", "attributes": {}}),
        )
        .await;
    assert_eq!(invalid.body["status"], "INVALID");
    check(&listings, "ListingsItemSubmissionResponse", &invalid.body);
    let preview = h
        .send(
            h.http
                .put(h.item_url(
                    "SHAPE",
                    "mode=VALIDATION_PREVIEW&includedData=identifiers,issues",
                ))
                .header(ACCESS_TOKEN_HEADER, &t)
                .json(&full_listing("x", 1, 1.0)),
        )
        .await;
    check(&listings, "ListingsItemSubmissionResponse", &preview.body);
    for error in [
        h.get(&t, &h.item_url("NOPE", "")).await.body,
        h.get(&t, &h.item_url("SHAPE", "includedData=x")).await.body,
        h.get("bad", &h.item_url("SHAPE", "")).await.body,
    ] {
        check(&listings, "ErrorList", &error);
    }

    let seller = amazon.seller_id();
    let mut doc = feed_doc(
        &seller,
        json!([
            {"messageId": 1, "sku": "SHAPE", "operationType": "PATCH", "productType": "PRODUCT",
             "patches": quantity_patch("replace", json!(2))},
            {"messageId": 2, "sku": "SHAPE2", "operationType": "PATCH", "productType": "PRODUCT",
             "patches": quantity_patch("replace", json!(-2))},
            {"messageId": 3, "operationType": "DELETE"},
        ]),
    );
    doc["header"]["report"] = json!({"includedData": ["summaries", "attributes", "issues", "offers",
        "fulfillmentAvailability", "procurement", "relationships", "productTypes"],
        "apiVersion": "2021-08-01"});
    let created_doc = h
        .send(
            h.http
                .post(h.url("/feeds/2021-06-30/documents"))
                .header(ACCESS_TOKEN_HEADER, &t)
                .json(&json!({"contentType": JSON_TYPE})),
        )
        .await;
    check(&feeds_spec, "CreateFeedDocumentResponse", &created_doc.body);
    let id = h.submit_feed(&t, &doc).await;
    check(&feeds_spec, "Feed", &h.feed(&t, &id).await);
    let feed = h.finish_feed(&t, &id).await;
    check(&feeds_spec, "Feed", &feed);
    let (report, document) = h.report(&t, &feed).await;
    check(&feeds_spec, "FeedDocument", &document);
    validate(
        &report_schema,
        &report_schema,
        &report,
        "report",
        &mut problems,
    );
    amazon.fail_next_feeds(1);
    let fatal_id = h.submit_feed(&t, &doc).await;
    let fatal = h.finish_feed(&t, &fatal_id).await;
    let (fatal_report, _) = h.report(&t, &fatal).await;
    validate(
        &report_schema,
        &report_schema,
        &fatal_report,
        "fatal report",
        &mut problems,
    );
    let resp = h
        .send(
            h.http
                .post(h.url("/feeds/2021-06-30/feeds"))
                .header(ACCESS_TOKEN_HEADER, &t)
                .json(&json!({"feedType": "BOGUS", "marketplaceIds": [MP], "inputFeedDocumentId": "x"})),
        )
        .await;
    let mut check = |spec: &Value, def: &str, body: &Value| {
        let schema = json!({ "$ref": format!("#/definitions/{def}") });
        validate(spec, &schema, body, def, &mut problems);
    };
    check(&feeds_spec, "ErrorList", &resp.body);
    amazon.hold_feeds(true);
    let queued = h.submit_feed(&t, &doc).await;
    h.send(
        h.http
            .delete(h.url(&format!("/feeds/2021-06-30/feeds/{queued}")))
            .header(ACCESS_TOKEN_HEADER, &t),
    )
    .await;
    check(&feeds_spec, "Feed", &h.feed(&t, &queued).await);
    let feeds_list = h
        .get(
            &t,
            &h.url("/feeds/2021-06-30/feeds?feedTypes=JSON_LISTINGS_FEED&pageSize=2"),
        )
        .await;
    assert!(
        feeds_list.body["nextToken"].is_string(),
        "{}",
        feeds_list.body
    );
    check(&feeds_spec, "GetFeedsResponse", &feeds_list.body);

    let created = amazon.place_order(&[OrderLine::new("SHAPE", 1)]).unwrap();
    let shipped = amazon.place_order(&[OrderLine::new("SHAPE", 1)]).unwrap();
    amazon.ship_order(&shipped).unwrap();
    let cancelled = amazon.place_order(&[OrderLine::new("SHAPE2", 1)]).unwrap();
    amazon.cancel_order(&cancelled).unwrap();
    amazon
        .place_fba_order(&[OrderLine::new("SHAPE", 3)])
        .unwrap();
    let every = "includedData=BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT,FULFILLMENT_ORDERS";
    let search = h
        .get(
            &t,
            &h.url(&format!(
                "/orders/2026-01-01/orders?createdAfter=2020-01-01T00:00:00Z&maxResultsPerPage=3&{every}"
            )),
        )
        .await;
    assert_eq!(search.body["orders"].as_array().unwrap().len(), 3);
    check(&orders_spec, "SearchOrdersResponse", &search.body);
    check(
        &orders_spec,
        "SearchOrdersResponse",
        &h.get(
            &t,
            &h.url("/orders/2026-01-01/orders?lastUpdatedAfter=2020-01-01T00:00:00Z"),
        )
        .await
        .body,
    );
    for id in [&created, &shipped, &cancelled] {
        check(
            &orders_spec,
            "GetOrderResponse",
            &h.get(
                &t,
                &h.url(&format!("/orders/2026-01-01/orders/{id}?{every}")),
            )
            .await
            .body,
        );
    }
    check(
        &orders_spec,
        "ErrorList",
        &h.get(&t, &h.url("/orders/2026-01-01/orders")).await.body,
    );

    assert!(
        problems.is_empty(),
        "responses outside the official schemas:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn hostile_amounts_and_lines_are_refused_or_saturate_without_panicking() {
    let h = start().await;
    let amazon = h.amazon();
    amazon
        .seed_listing(AmazonSeedListing::new("HUGE", u32::MAX, "999999999999.99"))
        .unwrap();
    for bad in ["", "-1", "1.999", "1e3", "0", "9999999999999.00"] {
        assert!(
            amazon
                .seed_listing(AmazonSeedListing::new("X", 1, bad))
                .is_err(),
            "{bad:?}"
        );
    }
    assert!(
        amazon
            .seed_listing(AmazonSeedListing::new("", 1, "1.00"))
            .is_err()
    );
    let id = amazon
        .place_fba_order(&[
            OrderLine::new("HUGE", u32::MAX),
            OrderLine::new("HUGE", u32::MAX),
        ])
        .unwrap();
    let order = amazon.order(&id).unwrap();
    assert!(order["proceeds"]["grandTotal"]["amount"].is_string());
    let id = amazon
        .place_order(&[OrderLine::new("HUGE", u32::MAX)])
        .unwrap();
    assert_eq!(amazon.current_quantity("HUGE"), Some(0));
    amazon.cancel_order(&id).unwrap();
    assert_eq!(amazon.current_quantity("HUGE"), Some(u32::MAX));
    assert!(matches!(
        amazon.place_order(&[OrderLine::new("HUGE", 0)]),
        Err(ControlError::Invalid(_))
    ));
    assert!(matches!(
        amazon.place_order(&[]),
        Err(ControlError::Invalid(_))
    ));
}
