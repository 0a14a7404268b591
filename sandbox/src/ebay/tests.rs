//! HTTP-level stories against a running sandbox: a reqwest client speaking eBay's contract, the
//! [`EbayHandle`] checking state and records behind it.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::{FaultKind, FaultRule, Sandbox, SandboxOptions};

/// A sandbox plus a client and the eBay calls the stories use.
struct Harness {
    sandbox: Sandbox,
    http: reqwest::Client,
}

async fn start_with(ebay: EbayOptions) -> Harness {
    let sandbox = Sandbox::start(SandboxOptions {
        ebay,
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
    start_with(EbayOptions::unlimited()).await
}

fn listing_seed(sku: &str, quantity: u32) -> SeedListing {
    SeedListing::new(sku, quantity, "19.99")
}

impl Harness {
    fn ebay(&self) -> EbayHandle {
        self.sandbox.ebay()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/ebay{path}", self.sandbox.base_url())
    }

    fn inv(&self, path: &str) -> String {
        self.url(&format!("/sell/inventory/v1{path}"))
    }

    fn ful(&self, path: &str) -> String {
        self.url(&format!("/sell/fulfillment/v1{path}"))
    }

    fn basic(&self) -> String {
        let c = self.ebay().credentials();
        let raw = format!("{}:{}", c.client_id, c.client_secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    async fn token_request(&self, basic: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/identity/v1/oauth2/token"))
            .header("Authorization", basic)
            .form(form)
            .send()
            .await
            .expect("token call")
    }

    async fn token_with_scope(&self, scope: &str) -> String {
        let refresh = self.ebay().credentials().refresh_token;
        let resp = self
            .token_request(
                &self.basic(),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("scope", scope),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn token(&self) -> String {
        self.token_with_scope(&format!("{SCOPE_INVENTORY} {SCOPE_FULFILLMENT}"))
            .await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON body ({e}): {text}"))
        };
        (status, body)
    }

    async fn get(&self, token: &str, url: &str) -> (StatusCode, Value) {
        self.send(self.http.get(url).bearer_auth(token)).await
    }

    async fn put_item(&self, token: &str, sku: &str, quantity: u32) -> (StatusCode, Value) {
        let body = json!({
            "product": {"title": format!("Item {sku}")},
            "condition": "NEW",
            "availability": {"shipToLocationAvailability": {"quantity": quantity}},
        });
        self.send(
            self.http
                .put(self.inv(&format!("/inventory_item/{sku}")))
                .bearer_auth(token)
                .header("Content-Language", "en-US")
                .json(&body),
        )
        .await
    }

    async fn bulk(&self, token: &str, requests: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.inv("/bulk_update_price_quantity"))
                .bearer_auth(token)
                .json(&json!({ "requests": requests })),
        )
        .await
    }
}

fn error_id(body: &Value) -> u64 {
    body["errors"][0]["errorId"]
        .as_u64()
        .unwrap_or_else(|| panic!("no errorId in {body}"))
}

/// Percent-encodes a query value the way eBay requires (everything but unreserved characters).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---- OAuth ----------------------------------------------------------------------------------

#[tokio::test]
async fn oauth_refresh_grant_issues_expiring_user_tokens() {
    let h = start().await;
    let refresh = h.ebay().credentials().refresh_token;

    let bad_client = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("omnistock-sandbox-app:wrong")
    );
    let resp = h
        .token_request(
            &bad_client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );

    let resp = h
        .token_request(
            &h.basic(),
            &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );

    let resp = h
        .token_request(
            &h.basic(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "https://api.ebay.com/oauth/api_scope/sell.account"),
            ],
        )
        .await;
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );

    let resp = h
        .token_request(
            &h.basic(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", SCOPE_INVENTORY),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "User Access Token");
    assert_eq!(body["expires_in"], ACCESS_TOKEN_TTL_SECS);
    let token = body["access_token"].as_str().unwrap().to_owned();

    let (status, _) = h.get(&token, &h.inv("/inventory_item")).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = h.send(h.http.get(h.inv("/inventory_item"))).await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::BAD_REQUEST, ERR_MISSING_ACCESS_TOKEN)
    );
    let (status, body) = h
        .send(
            h.http
                .get(h.inv("/inventory_item"))
                .header("Authorization", h.basic()),
        )
        .await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::BAD_REQUEST, ERR_BAD_TOKEN_TYPE)
    );
    let (status, body) = h.get("v^1.1#made-up", &h.inv("/inventory_item")).await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::UNAUTHORIZED, ERR_INVALID_ACCESS_TOKEN)
    );
    assert_eq!(body["errors"][0]["message"], "Invalid access token");

    // Two hours later the token is dead; a refresh brings a new one.
    h.ebay()
        .advance_clock(Duration::from_secs(ACCESS_TOKEN_TTL_SECS + 1));
    let (status, body) = h.get(&token, &h.inv("/inventory_item")).await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::UNAUTHORIZED, ERR_INVALID_ACCESS_TOKEN)
    );
    let fresh = h.token().await;
    assert_ne!(fresh, token);
    assert_eq!(
        h.get(&fresh, &h.inv("/inventory_item")).await.0,
        StatusCode::OK
    );

    // Revocation.
    h.ebay().expire_access_tokens();
    assert_eq!(
        h.get(&fresh, &h.inv("/inventory_item")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.ebay().request_count("getToken"), 5);
}

#[tokio::test]
async fn token_lifetime_is_configurable() {
    let h = start_with(EbayOptions {
        access_token_ttl: Duration::from_millis(300),
        ..EbayOptions::unlimited()
    })
    .await;
    let token = h.token().await;
    assert_eq!(
        h.get(&token, &h.inv("/inventory_item")).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        h.get(&token, &h.inv("/inventory_item")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn scopes_are_enforced() {
    let h = start().await;
    // An application token (client credentials) cannot call Sell APIs.
    let resp = h
        .token_request(
            &h.basic(),
            &[
                ("grant_type", "client_credentials"),
                ("scope", SCOPE_PUBLIC),
            ],
        )
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "Application Access Token");
    let app = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = h.get(&app, &h.inv("/inventory_item")).await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::FORBIDDEN, ERR_INSUFFICIENT_PERMISSIONS)
    );

    // A read-only inventory token reads but does not write, and has no fulfillment access.
    let ro = h
        .token_with_scope(&format!("{SCOPE_INVENTORY}.readonly"))
        .await;
    assert_eq!(
        h.get(&ro, &h.inv("/inventory_item")).await.0,
        StatusCode::OK
    );
    assert_eq!(h.put_item(&ro, "A", 1).await.0, StatusCode::FORBIDDEN);
    assert_eq!(h.get(&ro, &h.ful("/order")).await.0, StatusCode::FORBIDDEN);
}

// ---- inventory items ------------------------------------------------------------------------

#[tokio::test]
async fn inventory_item_put_is_a_full_replace_and_needs_content_language() {
    let h = start().await;
    let t = h.token().await;

    let (status, body) = h
        .send(
            h.http
                .put(h.inv("/inventory_item/MUG-RED"))
                .bearer_auth(&t)
                .json(&json!({"availability": {"shipToLocationAvailability": {"quantity": 5}}})),
        )
        .await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 25709));

    assert_eq!(h.put_item(&t, "MUG-RED", 5).await.0, StatusCode::NO_CONTENT);
    let (status, item) = h.get(&t, &h.inv("/inventory_item/MUG-RED")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(item["sku"], "MUG-RED");
    assert_eq!(item["locale"], "en_US");
    assert_eq!(
        item["availability"]["shipToLocationAvailability"]["quantity"],
        5
    );
    assert_eq!(item["product"]["title"], "Item MUG-RED");

    // Full replace: a body without availability loses the quantity.
    let (status, _) = h
        .send(
            h.http
                .put(h.inv("/inventory_item/MUG-RED"))
                .bearer_auth(&t)
                .header("Content-Language", "de-DE")
                .json(&json!({"product": {"title": "Tasse"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, item) = h.get(&t, &h.inv("/inventory_item/MUG-RED")).await;
    assert_eq!(item["locale"], "de_DE");
    assert!(item["availability"]["shipToLocationAvailability"]["quantity"].is_null());
    assert_eq!(h.ebay().current_quantity("MUG-RED"), Some(0));

    let long = "X".repeat(MAX_SKU_LEN + 1);
    let (status, body) = h.put_item(&t, &long, 1).await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 25707));
    assert_eq!(
        h.put_item(&t, &"X".repeat(MAX_SKU_LEN), 1).await.0,
        StatusCode::NO_CONTENT
    );

    let (status, body) = h.get(&t, &h.inv("/inventory_item/NOPE")).await;
    assert_eq!((status, error_id(&body)), (StatusCode::NOT_FOUND, 25710));

    let (status, _) = h
        .send(
            h.http
                .delete(h.inv("/inventory_item/MUG-RED"))
                .bearer_auth(&t),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get(&t, &h.inv("/inventory_item/MUG-RED")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_bodies_get_ebay_errors() {
    let h = start().await;
    let t = h.token().await;
    let put = || {
        h.http
            .put(h.inv("/inventory_item/A"))
            .bearer_auth(&t)
            .header("Content-Language", "en-US")
    };
    let (status, body) = h
        .send(
            put()
                .header("Content-Type", "application/json")
                .body("{\"product\": "),
        )
        .await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::BAD_REQUEST, ERR_INVALID_REQUEST)
    );
    let (status, body) = h
        .send(put().header("Content-Type", "text/plain").body("{}"))
        .await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, ERR_INVALID_REQUEST)
    );
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(crate::MAX_BODY_BYTES));
    let (status, body) = h
        .send(put().header("Content-Type", "application/json").body(huge))
        .await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, ERR_INVALID_REQUEST)
    );
    let (status, body) = h
        .send(
            put().json(&json!({"availability": {"shipToLocationAvailability": {"quantity": -1}}})),
        )
        .await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 25709));
}

#[tokio::test]
async fn inventory_items_page_by_page_number_and_next_links() {
    let h = start().await;
    let t = h.token().await;
    for i in 0..7 {
        assert_eq!(
            h.put_item(&t, &format!("SKU-{i}"), i).await.0,
            StatusCode::NO_CONTENT
        );
    }
    let (status, page) = h.get(&t, &h.inv("/inventory_item?limit=3&offset=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 7);
    assert_eq!(page["size"], 3, "size is the number of pages");
    assert_eq!(page["inventoryItems"][0]["sku"], "SKU-3");
    assert!(page["prev"].is_string());

    let mut url = h.inv("/inventory_item?limit=3");
    let mut seen = Vec::new();
    loop {
        let (status, page) = h.get(&t, &url).await;
        assert_eq!(status, StatusCode::OK);
        for item in page["inventoryItems"].as_array().unwrap() {
            seen.push(item["sku"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("SKU-{i}")).collect::<Vec<_>>());

    for bad in ["limit=0", "limit=201", "offset=-1", "limit=abc"] {
        let (status, body) = h.get(&t, &h.inv(&format!("/inventory_item?{bad}"))).await;
        assert_eq!(
            (status, error_id(&body)),
            (StatusCode::BAD_REQUEST, 25706),
            "{bad}"
        );
    }

    let requests: Vec<Value> = ["SKU-1", "NOPE"]
        .iter()
        .map(|s| json!({"sku": s}))
        .collect();
    let (status, body) = h
        .send(
            h.http
                .post(h.inv("/bulk_get_inventory_item"))
                .bearer_auth(&t)
                .json(&json!({"requests": requests})),
        )
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS);
    assert_eq!(body["responses"][0]["inventoryItem"]["sku"], "SKU-1");
    assert_eq!(body["responses"][1]["statusCode"], 404);
    let too_many: Vec<Value> = (0..26).map(|i| json!({"sku": format!("S{i}")})).collect();
    let (status, body) = h
        .send(
            h.http
                .post(h.inv("/bulk_get_inventory_item"))
                .bearer_auth(&t)
                .json(&json!({"requests": too_many})),
        )
        .await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 25727));
}

// ---- offers ---------------------------------------------------------------------------------

#[tokio::test]
async fn offer_lifecycle_create_publish_withdraw() {
    let h = start().await;
    let t = h.token().await;
    h.put_item(&t, "LAMP", 4).await;
    let post_offer = |body: Value| {
        h.http
            .post(h.inv("/offer"))
            .bearer_auth(&t)
            .header("Content-Language", "en-US")
            .json(&body)
    };
    let minimal = json!({"sku": "LAMP", "marketplaceId": "EBAY_US", "format": "FIXED_PRICE"});

    let (status, _) = h
        .send(h.http.post(h.inv("/offer")).bearer_auth(&t).json(&minimal))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "Content-Language is required"
    );
    let (status, body) = h
        .send(post_offer(json!({"sku": "LAMP", "format": "FIXED_PRICE"})))
        .await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 25709));
    let (status, body) = h
        .send(post_offer(
            json!({"sku": "GHOST", "marketplaceId": "EBAY_US", "format": "FIXED_PRICE"}),
        ))
        .await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 25702));

    let (status, body) = h.send(post_offer(minimal.clone())).await;
    assert_eq!(status, StatusCode::CREATED);
    let offer_id = body["offerId"].as_str().unwrap().to_owned();
    let (status, body) = h.send(post_offer(minimal.clone())).await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::BAD_REQUEST, ERR_USER)
    );
    assert_eq!(
        body["errors"][0]["parameters"][0]["value"],
        offer_id.as_str()
    );

    // Publishing an incomplete offer lists everything missing.
    let publish = || {
        h.http
            .post(h.inv(&format!("/offer/{offer_id}/publish")))
            .bearer_auth(&t)
    };
    let (status, body) = h.send(publish()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut ids: Vec<u64> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["errorId"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [25003, 25005, 25007, 25008, 25009, 25012]);

    let (status, _) = h
        .send(
            h.http
                .post(h.inv("/location/wh-1"))
                .bearer_auth(&t)
                .json(&json!({"location": {"address": {"country": "US"}}, "name": "WH"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h
        .send(
            h.http
                .post(h.inv("/location/wh-1"))
                .bearer_auth(&t)
                .json(&json!({})),
        )
        .await;
    assert_eq!((status, error_id(&body)), (StatusCode::CONFLICT, 25803));

    let complete = json!({
        "sku": "LAMP", "marketplaceId": "EBAY_US", "format": "FIXED_PRICE",
        "availableQuantity": 3, "categoryId": "20697", "merchantLocationKey": "wh-1",
        "listingPolicies": {"fulfillmentPolicyId": "f", "paymentPolicyId": "p", "returnPolicyId": "r"},
        "pricingSummary": {"price": {"value": "24.50", "currency": "USD"}},
    });
    let (status, _) = h
        .send(
            h.http
                .put(h.inv(&format!("/offer/{offer_id}")))
                .bearer_auth(&t)
                .header("Content-Language", "en-US")
                .json(&complete),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h.send(publish()).await;
    assert_eq!(status, StatusCode::OK);
    let listing_id = body["listingId"].as_str().unwrap().to_owned();

    let (status, offers) = h
        .get(&t, &h.inv("/offer?sku=LAMP&marketplace_id=EBAY_US"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(offers["total"], 1);
    let offer = &offers["offers"][0];
    assert_eq!(offer["status"], "PUBLISHED");
    assert_eq!(offer["listing"]["listingId"], listing_id.as_str());
    assert_eq!(offer["pricingSummary"]["price"]["value"], "24.50");
    assert_eq!(
        h.ebay().current_quantity("LAMP"),
        Some(3),
        "min(item 4, offer 3)"
    );

    let (status, body) = h.get(&t, &h.inv("/offer?sku=NOPE")).await;
    assert_eq!((status, error_id(&body)), (StatusCode::NOT_FOUND, 25713));

    let withdraw = || {
        h.http
            .post(h.inv(&format!("/offer/{offer_id}/withdraw")))
            .bearer_auth(&t)
    };
    let (status, body) = h.send(withdraw()).await;
    assert_eq!(
        (status, body["listingId"].as_str()),
        (StatusCode::OK, Some(listing_id.as_str()))
    );
    let (status, body) = h.send(withdraw()).await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 25713));
    let (_, offer) = h.get(&t, &h.inv(&format!("/offer/{offer_id}"))).await;
    assert_eq!(offer["status"], "UNPUBLISHED");

    let ops: Vec<String> = h
        .ebay()
        .writes()
        .iter()
        .map(|w| w.operation.clone())
        .collect();
    assert_eq!(
        ops,
        [
            "createOrReplaceInventoryItem",
            "createOffer",
            "updateOffer",
            "publishOffer",
            "withdrawOffer"
        ]
    );
}

// ---- bulkUpdatePriceQuantity ----------------------------------------------------------------

#[tokio::test]
async fn bulk_update_caps_at_25_requests() {
    let h = start().await;
    let t = h.token().await;
    for i in 0..26 {
        h.ebay()
            .seed_listing(listing_seed(&format!("B{i}"), 1))
            .unwrap();
    }
    let entries = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"sku": format!("B{i}"), "shipToLocationAvailability": {"quantity": 9}}))
            .collect()
    };
    let (status, body) = h.bulk(&t, entries(26)).await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 25709));
    assert!(
        h.ebay().writes().is_empty(),
        "a refused batch changes nothing"
    );
    let (status, body) = h.bulk(&t, entries(25)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["responses"].as_array().unwrap().len(), 25);
    assert_eq!(h.ebay().current_quantity("B24"), Some(9));
    assert_eq!(h.ebay().current_quantity("B25"), Some(1));
}

#[tokio::test]
async fn bulk_update_reports_per_item_errors_with_207() {
    let h = start().await;
    let t = h.token().await;
    let good = h.ebay().seed_listing(listing_seed("GOOD", 5)).unwrap();
    let draft = h
        .ebay()
        .seed_listing(SeedListing {
            publish: false,
            ..listing_seed("DRAFT", 5)
        })
        .unwrap();
    let (status, body) = h
        .bulk(
            &t,
            json!([
                {"sku": "GOOD", "shipToLocationAvailability": {"quantity": 8},
                 "offers": [{"offerId": good.offer_id, "availableQuantity": 6,
                             "price": {"value": "17.00", "currency": "USD"}}]},
                {"sku": "MISSING", "shipToLocationAvailability": {"quantity": 1}},
                {"sku": "DRAFT", "offers": [{"offerId": draft.offer_id, "availableQuantity": 2}]},
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS);
    let r = body["responses"].as_array().unwrap();
    assert_eq!(r.len(), 3);
    assert_eq!(
        (r[0]["statusCode"].as_u64(), r[0]["offerId"].as_str()),
        (Some(200), Some(good.offer_id.as_str()))
    );
    assert_eq!(
        (r[1]["sku"].as_str(), r[1]["statusCode"].as_u64()),
        (Some("MISSING"), Some(404))
    );
    assert_eq!(r[1]["errors"][0]["errorId"], 25702);
    assert_eq!(r[2]["statusCode"], 400);
    assert_eq!(r[2]["errors"][0]["errorId"], 25713);

    let ebay = h.ebay();
    let snap = ebay.listing("GOOD").unwrap();
    assert_eq!(
        (
            snap.item_quantity,
            snap.offer_quantity,
            snap.visible_quantity
        ),
        (Some(8), Some(6), Some(6))
    );
    assert_eq!(ebay.current_price("GOOD"), Some(Money::new("17.00", "USD")));
    let writes = ebay.writes();
    assert_eq!(writes.len(), 1, "only the applied entry is a write");
    assert_eq!(
        (
            writes[0].quantity,
            writes[0].offer_quantity,
            writes[0].visible_quantity
        ),
        (Some(8), Some(6), Some(6))
    );
}

#[tokio::test]
async fn listing_revisions_are_capped_per_utc_day() {
    let h = start().await;
    let t = h.token().await;
    let seeded = h.ebay().seed_listing(listing_seed("HOT", 100)).unwrap();
    let listing_id = seeded.listing_id.unwrap();
    for q in 0..REVISION_LIMIT_PER_DAY {
        let (status, _) = h
            .bulk(
                &t,
                json!([{"sku": "HOT", "shipToLocationAvailability": {"quantity": q}}]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "revision {q}");
    }
    assert_eq!(
        h.ebay().revisions_today(&listing_id),
        REVISION_LIMIT_PER_DAY
    );
    let (status, body) = h
        .bulk(
            &t,
            json!([{"sku": "HOT", "shipToLocationAvailability": {"quantity": 999}}]),
        )
        .await;
    assert_eq!(status, StatusCode::MULTI_STATUS);
    assert_eq!(body["responses"][0]["errors"][0]["errorId"], ERR_USER);
    assert!(
        body["responses"][0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("250 revisions")
    );
    assert_eq!(
        h.ebay().current_quantity("HOT"),
        Some(REVISION_LIMIT_PER_DAY - 1)
    );
    let (status, _) = h.put_item(&t, "HOT", 5).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "item replace revises the capped listing too"
    );

    h.ebay().advance_clock(Duration::from_secs(24 * 3600));
    assert_eq!(h.ebay().revisions_today_for_sku("HOT"), 0);
    let t = h.token().await;
    let (status, _) = h
        .bulk(
            &t,
            json!([{"sku": "HOT", "shipToLocationAvailability": {"quantity": 999}}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.ebay().current_quantity("HOT"), Some(999));
}

// ---- orders ---------------------------------------------------------------------------------

#[tokio::test]
async fn orders_filter_by_last_modified_with_encoded_brackets_and_page() {
    let h = start().await;
    let t = h.token().await;
    let ebay = h.ebay();
    ebay.seed_listing(listing_seed("TEE", 10)).unwrap();
    ebay.seed_listing(SeedListing {
        offer_quantity: Some(3),
        ..listing_seed("CAP", 10)
    })
    .unwrap();

    let since = crate::ebay::state::timestamp(chrono::Utc::now() - chrono::Duration::seconds(5));
    let a = ebay.place_order(&[OrderLine::new("TEE", 2)]).unwrap();
    let b = ebay
        .place_order(&[OrderLine::new("CAP", 1), OrderLine::new("TEE", 1)])
        .unwrap();
    let c = ebay.place_order(&[OrderLine::new("TEE", 1)]).unwrap();
    assert_eq!(ebay.current_quantity("TEE"), Some(6));
    let cap = ebay.listing("CAP").unwrap();
    assert_eq!(
        (cap.item_quantity, cap.offer_quantity, cap.sold_quantity),
        (Some(9), Some(2), 1)
    );
    assert_eq!(
        ebay.place_order(&[OrderLine::new("CAP", 3)]),
        Err(ControlError::InsufficientQuantity {
            sku: "CAP".into(),
            available: 2,
            requested: 3
        })
    );
    assert!(ebay.writes().is_empty(), "sales are not writes");

    h.ebay().advance_clock(Duration::from_millis(10));
    ebay.ship_order(&a).unwrap();
    ebay.cancel_order(&b).unwrap();
    assert!(ebay.ship_order(&b).is_err());
    assert!(ebay.cancel_order(&a).is_err());

    let filter = format!("lastmodifieddate:[{since}..]");
    let url = h.ful(&format!("/order?filter={}&limit=2", encode(&filter)));
    let (status, page) = h.get(&t, &url).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 3);
    let ids: Vec<&str> = page["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [c.as_str(), a.as_str()], "sorted by lastModifiedDate");
    let next = page["next"].as_str().unwrap().to_owned();
    assert!(
        next.contains("%5B"),
        "next keeps the filter encoded: {next}"
    );
    let (status, page2) = h.get(&t, &next).await;
    assert_eq!(status, StatusCode::OK);
    let cancelled = &page2["orders"][0];
    assert_eq!(cancelled["orderId"], b.as_str());
    assert_eq!(cancelled["cancelStatus"]["cancelState"], "CANCELED");
    assert_eq!(cancelled["lineItems"].as_array().unwrap().len(), 2);
    assert_eq!(cancelled["pricingSummary"]["total"]["value"], "39.98");
    assert!(page2.get("next").is_none());
    assert!(
        cancelled["lastModifiedDate"].as_str().unwrap()
            > cancelled["creationDate"].as_str().unwrap()
    );

    let (_, shipped) = h.get(&t, &h.ful(&format!("/order/{a}"))).await;
    assert_eq!(shipped["orderFulfillmentStatus"], "FULFILLED");
    assert_eq!(
        shipped["lineItems"][0]["lineItemFulfillmentStatus"],
        "FULFILLED"
    );
    assert_eq!(shipped["buyer"]["username"], DEFAULT_BUYER);

    let open = encode("orderfulfillmentstatus:{NOT_STARTED|IN_PROGRESS}");
    let (_, open_orders) = h.get(&t, &h.ful(&format!("/order?filter={open}"))).await;
    let open_ids: Vec<&str> = open_orders["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["orderId"].as_str().unwrap())
        .collect();
    assert_eq!(
        open_ids,
        [b.as_str(), c.as_str()],
        "created order, fulfillment filter"
    );

    let (status, body) = h
        .get(&t, &h.ful(&format!("/order?orderIds={a},{c},nope")))
        .await;
    assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some(2)));
    let ids51 = (0..51).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let (status, body) = h.get(&t, &h.ful(&format!("/order?orderIds={ids51}"))).await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 30900));
    let (status, body) = h.get(&t, &h.ful("/order?limit=201")).await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 31100));
    assert_eq!(
        h.get(&t, &h.ful("/order?limit=200")).await.0,
        StatusCode::OK
    );
    let (status, body) = h.get(&t, &h.ful("/order/27-99999-99999")).await;
    assert_eq!((status, error_id(&body)), (StatusCode::NOT_FOUND, 32100));

    // Raw brackets are refused, as eBay requires them percent-encoded.
    let (status, body) = h
        .get(
            &t,
            &h.ful(&format!("/order?filter=lastmodifieddate:[{since}..]")),
        )
        .await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 3002));
    let bad = encode("lastmodifieddate:[not-a-date..]");
    let (status, body) = h.get(&t, &h.ful(&format!("/order?filter={bad}"))).await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 30810));
}

// ---- rate limits ----------------------------------------------------------------------------

#[tokio::test]
async fn inventory_bucket_throttles_with_the_documented_429() {
    let h = start().await;
    let t = h.token().await;
    h.ebay()
        .set_rate_limit(GROUP_INVENTORY, Some(RateLimit::new(0.001, 3)));
    for _ in 0..3 {
        assert_eq!(h.get(&t, &h.inv("/inventory_item")).await.0, StatusCode::OK);
    }
    let (status, body) = h.get(&t, &h.inv("/inventory_item")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body,
        json!({"errors":[{"errorId":2001,"domain":"ACCESS","category":"REQUEST",
            "message":"Too many requests.",
            "longMessage":"The request limit has been reached for the resource."}]})
    );
    // The fulfillment group has its own bucket.
    assert_eq!(h.get(&t, &h.ful("/order")).await.0, StatusCode::OK);
    assert_eq!((h.ebay().count_429(), h.ebay().throttled_count()), (1, 1));
    assert_eq!(h.ebay().request_count("getInventoryItems"), 4);

    h.ebay()
        .set_rate_limit(GROUP_INVENTORY, Some(RateLimit::new(50.0, 1)));
    assert_eq!(h.get(&t, &h.inv("/inventory_item")).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert_eq!(
        h.get(&t, &h.inv("/inventory_item")).await.0,
        StatusCode::OK,
        "refilled"
    );
}

#[tokio::test]
async fn default_limits_follow_the_daily_quotas() {
    let h = start_with(EbayOptions::default()).await;
    let inv = h.ebay().rate_limit(GROUP_INVENTORY).unwrap();
    assert!((inv.rate_per_sec - INVENTORY_CALLS_PER_DAY as f64 / 86_400.0).abs() < 1e-9);
    let ful = h.ebay().rate_limit(GROUP_FULFILLMENT).unwrap();
    assert_eq!(ful.burst, 70);
}

// ---- faults ---------------------------------------------------------------------------------

#[tokio::test]
async fn server_error_and_429_faults_fire_the_configured_number_of_times() {
    let h = start().await;
    let t = h.token().await;
    let id = h
        .ebay()
        .faults()
        .add(FaultRule::new("ebay", "getInventoryItems", FaultKind::server_error(503)).times(1));
    let (status, body) = h.get(&t, &h.inv("/inventory_item")).await;
    assert_eq!(
        (status, error_id(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, 25001)
    );
    assert_eq!(h.get(&t, &h.inv("/inventory_item")).await.0, StatusCode::OK);
    assert_eq!(h.ebay().faults().fired(id), 1);

    h.ebay().add_fault(
        "/sell/fulfillment/v1/order*",
        FaultKind::TooManyRequests {
            retry_after_secs: Some(7),
        },
    );
    let resp = h
        .http
        .get(h.ful("/order"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(error_id(&resp.json().await.unwrap()), 2001);
    assert_eq!((h.ebay().count_429(), h.ebay().throttled_count()), (1, 0));

    h.ebay().faults().clear();
    h.ebay().add_fault(
        "*",
        FaultKind::ServerError {
            status: 500,
            body: Some("<html>oops</html>".into()),
        },
    );
    let resp = h
        .http
        .get(h.ful("/order"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(resp.text().await.unwrap(), "<html>oops</html>");
}

#[tokio::test]
async fn latency_faults_and_global_latency_delay_requests() {
    let h = start().await;
    let t = h.token().await;
    h.sandbox.set_latency(Duration::from_millis(50));
    h.ebay().add_fault(
        "getInventoryItems",
        FaultKind::latency(Duration::from_millis(400)),
    );
    let started = Instant::now();
    assert_eq!(h.get(&t, &h.inv("/inventory_item")).await.0, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert_eq!(h.get(&t, &h.ful("/order")).await.0, StatusCode::OK);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(50) && elapsed < Duration::from_millis(450),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn hang_times_out_the_client_with_or_without_applying() {
    let h = start().await;
    let t = h.token().await;
    h.ebay().seed_listing(listing_seed("SLOW", 1)).unwrap();
    h.ebay().faults().add(
        FaultRule::new(
            "ebay",
            "bulkUpdatePriceQuantity",
            FaultKind::Hang {
                after_processing: false,
            },
        )
        .times(1),
    );
    h.ebay().faults().add(
        FaultRule::new(
            "ebay",
            "bulkUpdatePriceQuantity",
            FaultKind::Hang {
                after_processing: true,
            },
        )
        .times(1),
    );
    let send = |q: u32| {
        h.http
            .post(h.inv("/bulk_update_price_quantity"))
            .bearer_auth(&t)
            .timeout(Duration::from_millis(300))
            .json(&json!({"requests": [{"sku": "SLOW", "shipToLocationAvailability": {"quantity": q}}]}))
            .send()
    };
    let err = send(2).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(h.ebay().current_quantity("SLOW"), Some(1), "not applied");
    let err = send(3).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(
        h.ebay().current_quantity("SLOW"),
        Some(3),
        "applied, answer lost"
    );
    assert_eq!(send(4).await.unwrap().status(), StatusCode::OK);

    // Shutdown does not wait for hung requests.
    h.ebay().add_fault(
        "*",
        FaultKind::Hang {
            after_processing: false,
        },
    );
    let pending = tokio::spawn(send(5));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    h.sandbox.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(pending.await.unwrap().is_err());
}

#[tokio::test]
async fn dropped_connections_close_without_a_response() {
    let h = start().await;
    let t = h.token().await;
    h.ebay().seed_listing(listing_seed("DROP", 1)).unwrap();
    h.ebay().faults().add(
        FaultRule::new(
            "ebay",
            "bulkUpdatePriceQuantity",
            FaultKind::DropConnection {
                after_processing: false,
            },
        )
        .times(1),
    );
    h.ebay().faults().add(
        FaultRule::new(
            "ebay",
            "bulkUpdatePriceQuantity",
            FaultKind::DropConnection {
                after_processing: true,
            },
        )
        .times(1),
    );
    let send = |q: u32| {
        h.http
            .post(h.inv("/bulk_update_price_quantity"))
            .bearer_auth(&t)
            .timeout(Duration::from_secs(5))
            .json(&json!({"requests": [{"sku": "DROP", "shipToLocationAvailability": {"quantity": q}}]}))
            .send()
    };
    let err = send(2).await.unwrap_err();
    assert!(!err.is_timeout(), "closed, not timed out: {err}");
    assert_eq!(h.ebay().current_quantity("DROP"), Some(1));
    let err = send(3).await.unwrap_err();
    assert!(!err.is_timeout(), "{err}");
    assert_eq!(h.ebay().current_quantity("DROP"), Some(3));
    assert_eq!(
        send(4).await.unwrap().status(),
        StatusCode::OK,
        "new connections work"
    );
}

#[tokio::test]
async fn malformed_body_fault_truncates_the_real_answer() {
    let h = start().await;
    let t = h.token().await;
    h.ebay().seed_listing(listing_seed("CUT", 1)).unwrap();
    h.ebay()
        .faults()
        .add(FaultRule::new("ebay", "bulkUpdatePriceQuantity", FaultKind::MalformedBody).times(1));
    let resp = h
        .http
        .post(h.inv("/bulk_update_price_quantity"))
        .bearer_auth(&t)
        .json(&json!({"requests": [{"sku": "CUT", "shipToLocationAvailability": {"quantity": 4}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("{\"responses\""), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(
        h.ebay().current_quantity("CUT"),
        Some(4),
        "processed before truncating"
    );
}

#[tokio::test]
async fn reject_skus_fault_fails_only_those_items() {
    let h = start().await;
    let t = h.token().await;
    for sku in ["OK-1", "BAD-1", "OK-2"] {
        h.ebay().seed_listing(listing_seed(sku, 1)).unwrap();
    }
    h.ebay().add_fault(
        "bulkUpdatePriceQuantity",
        FaultKind::reject_skus(["BAD-1"], 25004, "Invalid quantity for this item."),
    );
    let entries: Value = ["OK-1", "BAD-1", "OK-2"]
        .iter()
        .map(|s| json!({"sku": s, "shipToLocationAvailability": {"quantity": 7}}))
        .collect();
    let (status, body) = h.bulk(&t, entries).await;
    assert_eq!(status, StatusCode::MULTI_STATUS);
    let codes: Vec<u64> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["statusCode"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [200, 400, 200]);
    assert_eq!(body["responses"][1]["errors"][0]["errorId"], 25004);
    assert_eq!(
        body["responses"][1]["errors"][0]["message"],
        "Invalid quantity for this item."
    );
    assert_eq!(h.ebay().current_quantity("BAD-1"), Some(1));
    assert_eq!(h.ebay().current_quantity("OK-2"), Some(7));

    // Single-SKU calls are refused whole.
    let (status, _) = h.put_item(&t, "BAD-1", 3).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "rule targets bulkUpdatePriceQuantity only"
    );
    h.ebay()
        .add_fault("*", FaultKind::reject_skus(["BAD-1"], 25002, "No."));
    let (status, body) = h.put_item(&t, "BAD-1", 3).await;
    assert_eq!((status, error_id(&body)), (StatusCode::BAD_REQUEST, 25002));
}

// ---- write log and drift --------------------------------------------------------------------

#[tokio::test]
async fn write_log_orders_applied_writes_and_ignores_drift() {
    let h = start().await;
    let t = h.token().await;
    let seeded = h.ebay().seed_listing(listing_seed("LOG", 10)).unwrap();
    for q in [9, 8, 7] {
        let (status, _) = h
            .bulk(
                &t,
                json!([{"sku": "LOG", "shipToLocationAvailability": {"quantity": q},
                        "offers": [{"offerId": seeded.offer_id, "availableQuantity": q,
                                    "price": {"value": format!("{q}.99"), "currency": "USD"}}]}]),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let ebay = h.ebay();
    ebay.set_quantity_out_of_band("LOG", 42).unwrap();
    assert_eq!(ebay.current_quantity("LOG"), Some(42));
    let writes = ebay.writes();
    assert_eq!(writes.len(), 3, "seeding and drift are not writes");
    assert!(
        writes
            .windows(2)
            .all(|w| w[0].seq < w[1].seq && w[0].at_ms <= w[1].at_ms)
    );
    let quantities: Vec<Option<u32>> = writes.iter().map(|w| w.quantity).collect();
    assert_eq!(quantities, [Some(9), Some(8), Some(7)]);
    assert_eq!(writes[2].price, Some(Money::new("7.99", "USD")));
    assert_eq!(
        writes[2].listing_ref.as_deref(),
        Some(seeded.offer_id.as_str())
    );
    assert_eq!(ebay.current_price("LOG"), Some(Money::new("7.99", "USD")));
    assert_eq!(ebay.request_count("bulkUpdatePriceQuantity"), 3);
    assert_eq!(h.sandbox.writes().len(), 3);
    assert!(ebay.requests().iter().any(|r| r.operation == "getToken"));
    assert!(matches!(
        ebay.set_quantity_out_of_band("NOPE", 1),
        Err(ControlError::UnknownSku(_))
    ));
}

// ---- control API over HTTP ------------------------------------------------------------------

#[tokio::test]
async fn control_api_drives_the_fake_from_another_process() {
    let h = start().await;
    let base = h.sandbox.base_url();
    let ctl = |p: &str| format!("{base}/_control{p}");

    let (status, seeded) = h
        .send(h.http.post(ctl("/ebay/listings")).json(&json!({
            "sku": "REMOTE", "title": "Remote", "quantity": 5,
            "price": {"value": "9.99", "currency": "USD"}})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(seeded["listingId"].is_string());

    let (status, order) = h
        .send(
            h.http
                .post(ctl("/ebay/orders"))
                .json(&json!({"lines": [{"sku": "REMOTE", "quantity": 2}], "buyer": "alice"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let order_id = order["orderId"].as_str().unwrap().to_owned();
    let (status, _) = h
        .send(h.http.post(ctl(&format!("/ebay/orders/{order_id}/ship"))))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = h
        .send(h.http.post(ctl(&format!("/ebay/orders/{order_id}/cancel"))))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"].as_str().unwrap().contains("FULFILLED"));
    let (_, order) = h
        .send(h.http.get(ctl(&format!("/ebay/orders/{order_id}"))))
        .await;
    assert_eq!(order["buyer"]["username"], "alice");

    let (status, _) = h
        .send(
            h.http
                .put(ctl("/ebay/listings/REMOTE/quantity"))
                .json(&json!({"quantity": 11})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, snap) = h.send(h.http.get(ctl("/ebay/listings/REMOTE"))).await;
    assert_eq!(snap["visibleQuantity"], 11);
    let (status, _) = h
        .send(
            h.http
                .post(ctl("/ebay/orders"))
                .json(&json!({"lines": [{"sku": "NOPE", "quantity": 1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, added) = h
        .send(h.http.post(ctl("/faults")).json(&json!({
            "marketplace": "ebay", "target": "getToken",
            "kind": {"type": "server_error", "status": 502}, "times": 1})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let refresh = h.ebay().credentials().refresh_token;
    let resp = h
        .token_request(
            &h.basic(),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let (_, faults) = h.send(h.http.get(ctl("/faults"))).await;
    assert_eq!(faults[0]["fired"], 1);
    let (status, _) = h
        .send(h.http.delete(ctl(&format!("/faults/{}", added["id"]))))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, _) = h
        .send(
            h.http
                .put(ctl("/ebay/rate_limits/inventory"))
                .json(&json!({"rate_per_sec": 1.0, "burst": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.ebay().rate_limit(GROUP_INVENTORY),
        Some(RateLimit::new(1.0, 2))
    );
    let (status, _) = h
        .send(h.http.put(ctl("/latency")).json(&json!({"ms": 5})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.sandbox.faults().latency(), Duration::from_millis(5));
    let (_, stats) = h.send(h.http.get(ctl("/ebay/stats"))).await;
    assert_eq!(stats["requestCounts"]["getToken"], 1);
    let (_, health) = h.send(h.http.get(ctl("/health"))).await;
    assert_eq!(health["ok"], true);
}

// ---- contract shapes ------------------------------------------------------------------------

/// The official eBay specs, read in place (never copied into the repo): `OMNISTOCK_SPECS_DIR`, else
/// `../shared/contracts/specs` beside the repository (DESIGN.md §8).
fn load_spec(file: &str) -> Option<Value> {
    let dir = std::env::var_os("OMNISTOCK_SPECS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/contracts/specs")
        });
    let text = std::fs::read_to_string(dir.join("ebay").join(file)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Every field we send must be declared by the schema, with the declared JSON type, recursively.
fn check_shape(spec: &Value, schema: &str, value: &Value, path: &str, problems: &mut Vec<String>) {
    let declared = &spec["components"]["schemas"][schema];
    let Some(props) = declared["properties"].as_object() else {
        problems.push(format!("{path}: schema {schema} not found"));
        return;
    };
    let Some(object) = value.as_object() else {
        problems.push(format!("{path}: expected an object ({schema})"));
        return;
    };
    for (key, v) in object {
        let here = format!("{path}.{key}");
        let Some(prop) = props.get(key) else {
            problems.push(format!("{here}: not a property of {schema}"));
            continue;
        };
        let ref_name = |p: &Value| {
            p["$ref"]
                .as_str()
                .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
        };
        if let Some(inner) = ref_name(prop) {
            check_shape(spec, &inner, v, &here, problems);
            continue;
        }
        let ok = match prop["type"].as_str() {
            Some("string") => v.is_string(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("boolean") => v.is_boolean(),
            Some("array") => match v.as_array() {
                Some(items) => {
                    if let Some(inner) = ref_name(&prop["items"]) {
                        for (i, item) in items.iter().enumerate() {
                            check_shape(spec, &inner, item, &format!("{here}[{i}]"), problems);
                        }
                    }
                    true
                }
                None => false,
            },
            _ => true,
        };
        if !ok {
            problems.push(format!("{here}: not a {}", prop["type"]));
        }
    }
}

#[tokio::test]
async fn responses_match_the_official_schemas() {
    let (Some(inventory), Some(fulfillment)) = (
        load_spec("sell_inventory_v1_oas3.json"),
        load_spec("sell_fulfillment_v1_oas3.json"),
    ) else {
        eprintln!("SKIPPED: eBay specs not found (set OMNISTOCK_SPECS_DIR)");
        return;
    };
    let h = start().await;
    let t = h.token().await;
    let seeded = h.ebay().seed_listing(listing_seed("SHAPE", 5)).unwrap();
    h.ebay()
        .seed_listing(SeedListing {
            publish: false,
            ..listing_seed("DRAFT", 1)
        })
        .unwrap();
    let order = h.ebay().place_order(&[OrderLine::new("SHAPE", 1)]).unwrap();
    h.ebay().cancel_order(&order).unwrap();
    let mut problems = Vec::new();
    let mut check = |spec: &Value, schema: &str, body: Value| {
        check_shape(spec, schema, &body, schema, &mut problems);
    };

    check(
        &inventory,
        "InventoryItems",
        h.get(&t, &h.inv("/inventory_item?limit=1")).await.1,
    );
    check(
        &inventory,
        "InventoryItemWithSkuLocaleGroupid",
        h.get(&t, &h.inv("/inventory_item/SHAPE")).await.1,
    );
    check(
        &inventory,
        "Offers",
        h.get(&t, &h.inv("/offer?sku=SHAPE")).await.1,
    );
    check(
        &inventory,
        "EbayOfferDetailsWithAll",
        h.get(&t, &h.inv(&format!("/offer/{}", seeded.offer_id)))
            .await
            .1,
    );
    let (_, bulk) = h
        .bulk(
            &t,
            json!([{"sku": "SHAPE", "offers": [{"offerId": seeded.offer_id, "availableQuantity": 2}]},
                   {"sku": "NOPE", "shipToLocationAvailability": {"quantity": 1}}]),
        )
        .await;
    check(&inventory, "BulkPriceQuantityResponse", bulk);
    let (_, bulk_get) = h
        .send(
            h.http
                .post(h.inv("/bulk_get_inventory_item"))
                .bearer_auth(&t)
                .json(&json!({"requests": [{"sku": "SHAPE"}, {"sku": "NOPE"}]})),
        )
        .await;
    check(&inventory, "BulkGetInventoryItemResponse", bulk_get);
    let draft_offer = h.ebay().listing("DRAFT").unwrap().offer_id.unwrap();
    let (_, published) = h
        .send(
            h.http
                .post(h.inv(&format!("/offer/{draft_offer}/publish")))
                .bearer_auth(&t),
        )
        .await;
    check(&inventory, "PublishResponse", published);
    let (_, error) = h.get(&t, &h.inv("/inventory_item/NOPE")).await;
    for e in error["errors"].as_array().unwrap() {
        check(&inventory, "Error", e.clone());
    }

    let (_, orders) = h.get(&t, &h.ful("/order")).await;
    assert_eq!(orders["total"], 1);
    check(&fulfillment, "OrderSearchPagedCollection", orders);
    check(
        &fulfillment,
        "Order",
        h.get(&t, &h.ful(&format!("/order/{order}"))).await.1,
    );

    assert!(
        problems.is_empty(),
        "fields outside the official schemas:\n{}",
        problems.join("\n")
    );
}
