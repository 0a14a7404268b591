//! `/webhooks/{channel}` on the daemon's admin server: valid, forged, replayed, oversized and
//! misdirected deliveries for Shopify, WooCommerce and Meta, and Meta's subscription handshake.
//! What a valid delivery *does* (an immediate poll) is tested per channel type with its fake in
//! `channels.rs`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::helpers::{Harness, Setup};

const SHOPIFY_SECRET: &str = "shpss-webhook-secret";
const WOO_SECRET: &str = "woo-webhook-secret";
const META_APP_SECRET: &str = "meta-app-secret";
const META_VERIFY: &str = "meta-verify-token";

fn mac(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A harness whose config also has Shopify, WooCommerce and Meta sections (pointing nowhere:
/// verifying a delivery needs only the section's secret).
async fn world() -> Harness {
    let mut h = Harness::new(Setup {
        channels: vec!["ebay_us"],
        ..Setup::default()
    })
    .await;
    let mut text = std::fs::read_to_string(&h.config_path).expect("config");
    text.push_str(&format!(
        "\n[channels.shop]\ntype = \"shopify\"\nendpoint = \"http://127.0.0.1:9\"\n\
         access_token = \"shpat_x\"\nlocation_id = \"gid://shopify/Location/1\"\n\
         webhook_secret = \"{SHOPIFY_SECRET}\"\n\
         \n[channels.woo]\ntype = \"woocommerce\"\nendpoint = \"http://127.0.0.1:9\"\n\
         consumer_key = \"ck_x\"\nconsumer_secret = \"cs_x\"\nwebhook_secret = \"{WOO_SECRET}\"\n\
         \n[channels.fb]\ntype = \"facebook\"\nendpoint = \"http://127.0.0.1:9/v25.0\"\n\
         catalog_id = \"1\"\naccess_token = \"EAAB\"\napp_secret = \"{META_APP_SECRET}\"\n\
         verify_token = \"{META_VERIFY}\"\n"
    ));
    std::fs::write(&h.config_path, text).expect("write config");
    h.start_daemon().await;
    h
}

fn url(h: &Harness, path: &str) -> String {
    let addr = h.daemon.as_ref().expect("daemon").http_addr;
    format!("http://{addr}{path}")
}

async fn post(h: &Harness, channel: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    let mut req = client()
        .post(url(h, &format!("/webhooks/{channel}")))
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.expect("webhook request").status().as_u16()
}

fn client() -> reqwest::Client {
    omnistock_connectors::common::http::install_crypto_provider();
    reqwest::Client::new()
}

async fn deliveries(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries")
        .fetch_one(h.store.pool())
        .await
        .expect("count deliveries")
}

async fn counts(h: &Harness, channel: &str) -> serde_json::Value {
    let body: serde_json::Value = client()
        .get(url(h, "/api/status"))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("status json");
    body["webhooks"][channel].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_are_accepted_once_and_forged_ones_change_nothing() {
    let mut h = world().await;
    let body = br#"{"id":820982911946154508,"line_items":[{"sku":"SKU-000","quantity":1}]}"#;

    // Shopify: valid, then the same event again (a marketplace retry or a replay).
    let shopify = |event: &str, sig: String| {
        vec![
            ("X-Shopify-Topic", "orders/create".to_owned()),
            ("X-Shopify-Hmac-Sha256", sig),
            ("X-Shopify-Event-Id", event.to_owned()),
            ("X-Shopify-Webhook-Id", format!("wh-{event}")),
        ]
    };
    let good = b64(&mac(SHOPIFY_SECRET, body));
    assert_eq!(
        post(&h, "shop", &shopify("e1", good.clone()), body).await,
        200
    );
    assert_eq!(deliveries(&h).await, 1);
    assert_eq!(
        post(&h, "shop", &shopify("e1", good.clone()), body).await,
        200
    );
    assert_eq!(deliveries(&h).await, 1, "a replay is not recorded twice");

    // Forged: wrong secret, tampered body, missing header, the right MAC under the wrong name.
    let forged = b64(&mac("guessed", body));
    assert_eq!(post(&h, "shop", &shopify("e2", forged), body).await, 401);
    let tampered = br#"{"id":820982911946154508,"line_items":[{"sku":"SKU-000","quantity":9}]}"#;
    assert_eq!(
        post(&h, "shop", &shopify("e3", good.clone()), tampered).await,
        401
    );
    assert_eq!(
        post(&h, "shop", &[("X-Shopify-Event-Id", "e4".into())], body).await,
        401
    );
    let wrong_header = [("X-WC-Webhook-Signature", good.clone())];
    assert_eq!(post(&h, "shop", &wrong_header, body).await, 401);
    assert_eq!(deliveries(&h).await, 1, "forged deliveries record nothing");

    // Oversized: refused before the signature is even computed.
    let big = vec![b'x'; omnistock::http::webhooks::MAX_WEBHOOK_BYTES + 1];
    let big_sig = b64(&mac(SHOPIFY_SECRET, &big));
    assert_eq!(post(&h, "shop", &shopify("e5", big_sig), &big).await, 413);

    let c = counts(&h, "shop").await;
    assert_eq!(c["accepted"], 1, "{c}");
    assert_eq!(c["duplicate"], 1, "{c}");
    assert_eq!(c["rejected"], 4, "{c}");
    assert_eq!(c["oversized"], 1, "{c}");

    // WooCommerce: its header and delivery id; its unsigned ping is answered and ignored.
    let woo = |delivery: &str, sig: String| {
        vec![
            ("X-WC-Webhook-Topic", "order.created".to_owned()),
            ("X-WC-Webhook-Signature", sig),
            ("X-WC-Webhook-Delivery-ID", delivery.to_owned()),
        ]
    };
    let woo_sig = b64(&mac(WOO_SECRET, body));
    assert_eq!(
        post(&h, "woo", &woo("d1", woo_sig.clone()), body).await,
        200
    );
    assert_eq!(
        post(&h, "woo", &woo("d1", woo_sig.clone()), body).await,
        200
    );
    assert_eq!(
        post(&h, "woo", &woo("d2", good), body).await,
        401,
        "Shopify's secret"
    );
    assert_eq!(post(&h, "woo", &[], b"webhook_id=7").await, 200, "ping");
    assert_eq!(post(&h, "woo", &[], b"webhook_id=7&evil=1").await, 401);
    assert_eq!(deliveries(&h).await, 2);

    // Meta: `sha256=` + hex, no delivery id (the body's hash dedupes).
    let meta_sig = format!("sha256={}", hex::encode(mac(META_APP_SECRET, body)));
    let meta = [("X-Hub-Signature-256", meta_sig.clone())];
    assert_eq!(post(&h, "fb", &meta, body).await, 200);
    assert_eq!(post(&h, "fb", &meta, body).await, 200);
    let bare = [(
        "X-Hub-Signature-256",
        hex::encode(mac(META_APP_SECRET, body)),
    )];
    assert_eq!(post(&h, "fb", &bare, body).await, 401);
    assert_eq!(deliveries(&h).await, 3);
    let c = counts(&h, "fb").await;
    assert_eq!(
        (c["accepted"].as_u64(), c["duplicate"].as_u64()),
        (Some(1), Some(1))
    );

    // Channels without webhooks, and unknown channels.
    assert_eq!(post(&h, "ebay_us", &meta, body).await, 404);
    assert_eq!(post(&h, "nope", &meta, body).await, 404);
    assert_eq!(deliveries(&h).await, 3);

    // The counters reach /metrics.
    let metrics = client()
        .get(url(&h, "/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("omnistock_webhooks_total{channel=\"shop\",outcome=\"rejected\"} 4"),
        "{metrics}"
    );
    h.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meta_handshake_echoes_the_challenge_only_for_the_verify_token() {
    let mut h = world().await;
    let get = |q: String| {
        let u = url(&h, &format!("/webhooks/fb?{q}"));
        async move {
            let r = client().get(u).send().await.expect("handshake");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    let (code, text) = get(format!(
        "hub.mode=subscribe&hub.verify_token={META_VERIFY}&hub.challenge=1158201444"
    ))
    .await;
    assert_eq!((code, text.as_str()), (200, "1158201444"));
    let (code, text) =
        get("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".into()).await;
    assert_eq!(code, 403);
    assert!(!text.contains('1') || text.contains("error"), "{text}");
    let (code, _) = get(format!(
        "hub.mode=unsubscribe&hub.verify_token={META_VERIFY}&hub.challenge=1"
    ))
    .await;
    assert_eq!(code, 403);
    let (code, _) = get(format!("hub.mode=subscribe&hub.verify_token={META_VERIFY}")).await;
    assert_eq!(code, 403, "no challenge");
    let (code, _) = client()
        .get(url(&h, "/webhooks/shop?hub.mode=subscribe&hub.challenge=1"))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("get");
    assert_eq!(code, 404, "only Meta channels have the handshake");
    h.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_need_no_admin_token_but_the_rest_still_does() {
    let mut h = Harness::new(Setup {
        channels: vec!["ebay_us"],
        ..Setup::default()
    })
    .await;
    let mut text = std::fs::read_to_string(&h.config_path).expect("config");
    text = text.replace(
        "[daemon]\n",
        "[daemon]\nadmin_token = \"admin-token-for-tests-0123456789\"\n",
    );
    text.push_str(&format!(
        "\n[channels.shop]\ntype = \"shopify\"\nendpoint = \"http://127.0.0.1:9\"\n\
         access_token = \"shpat_x\"\nlocation_id = \"gid://shopify/Location/1\"\n\
         webhook_secret = \"{SHOPIFY_SECRET}\"\n"
    ));
    std::fs::write(&h.config_path, text).expect("write config");
    h.start_daemon().await;
    let body = b"{}";
    let sig = b64(&mac(SHOPIFY_SECRET, body));
    let headers = [
        ("X-Shopify-Hmac-Sha256", sig),
        ("X-Shopify-Event-Id", "t1".to_owned()),
    ];
    assert_eq!(post(&h, "shop", &headers, body).await, 200);
    let status = client()
        .get(url(&h, "/api/status"))
        .send()
        .await
        .expect("status")
        .status()
        .as_u16();
    assert_eq!(status, 401);
    h.stop_daemon().await;
}
