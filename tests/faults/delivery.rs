//! The same order delivered one to three times and more, out of order, by webhook and by poll.
//!
//! WooCommerce, Shopify and Meta send signed webhooks to the in-process daemon, each delivery
//! duplicated with probability ½ and delayed by a random jitter, while a one-second poll interval
//! makes the order poller race them. Orders are placed on the three marketplaces; about a third
//! are cancelled right after being placed (at once, or within the second), so the "created" and
//! "cancelled" deliveries (and the polls) arrive in any order. On top of that the test re-posts forged-but-correctly-signed
//! deliveries of the same orders straight to `/webhooks/{channel}`: some under a fresh delivery
//! id (a new hint: the daemon polls again and must change nothing), some under an id already seen
//! (a replay: answered 200, ignored).
//!
//! At the end every order is recorded exactly once with its final status, its stock moved once
//! (reserved while open, released when cancelled, never twice), every channel shows on_hand −
//! reserved, and the daemon's delivery counts add up: one accepted per distinct delivery id, every
//! other copy a duplicate.
//!
//! `OMNISTOCK_FAULT_ROUNDS` raises the number of rounds (default 3, six orders each);
//! `OMNISTOCK_FAULT_SEED` replays a run.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::helpers::{Account, Harness, Kind, Setup, WEBHOOK_SECRET, sku};
use crate::invariants::{self, Expect};
use crate::summary::Figures;
use crate::util::{self, Rng};

const TEST: &str = "orders_delivered_many_times_out_of_order_are_recorded_once";
const CHANNELS: [&str; 3] = ["woo_shop", "shopify_shop", "fb_shop"];
const SKUS: usize = 6;
const START_QTY: i64 = 20;
/// Webhook jitter of the fakes; every copy of a delivery is sent within twice this.
const JITTER_MS: u64 = 400;

fn mac(secret: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// The secret a channel's deliveries are signed with.
fn secret(a: &Account) -> String {
    match a.kind() {
        Kind::Meta => a.sandbox.meta().credentials().app_secret,
        _ => WEBHOOK_SECRET.to_owned(),
    }
}

/// One webhook delivery: headers and body.
type Delivery = (Vec<(&'static str, String)>, Vec<u8>);

/// A delivery of an order as the marketplace would send it: (headers, body). `delivery` is the
/// delivery id (Meta has none: its body's hash is the id, so the id goes into the body).
fn forged(a: &Account, order: &str, delivery: &str) -> Delivery {
    let secret = secret(a);
    match a.kind() {
        Kind::Woo => {
            let body = a
                .sandbox
                .woo()
                .order(order)
                .expect("woo order")
                .to_string()
                .into_bytes();
            let sig = base64::engine::general_purpose::STANDARD.encode(mac(&secret, &body));
            let headers = vec![
                ("X-WC-Webhook-Topic", "order.updated".to_owned()),
                ("X-WC-Webhook-Resource", "order".to_owned()),
                ("X-WC-Webhook-Signature", sig),
                ("X-WC-Webhook-Delivery-ID", delivery.to_owned()),
            ];
            (headers, body)
        }
        Kind::Shopify => {
            let body = a
                .sandbox
                .shopify()
                .order(order)
                .expect("shopify order")
                .to_string()
                .into_bytes();
            let sig = base64::engine::general_purpose::STANDARD.encode(mac(&secret, &body));
            let headers = vec![
                ("X-Shopify-Topic", "orders/updated".to_owned()),
                ("X-Shopify-Hmac-Sha256", sig),
                ("X-Shopify-Event-Id", delivery.to_owned()),
                ("X-Shopify-Webhook-Id", format!("wh-{delivery}")),
            ];
            (headers, body)
        }
        Kind::Meta => {
            let body = serde_json::json!({
                "object": "page",
                "entry": [{
                    "id": "forged",
                    "time": 0,
                    "changes": [{"field": "commerce_orders",
                                 "value": {"order_id": order, "event": "ORDER_CREATED",
                                           "delivery": delivery}}],
                }],
            })
            .to_string()
            .into_bytes();
            let sig = format!("sha256={}", hex::encode(mac(&secret, &body)));
            (vec![("X-Hub-Signature-256", sig)], body)
        }
        other => unreachable!("{other:?} sends no webhooks"),
    }
}

/// An order placed on a marketplace.
#[derive(Debug, Clone)]
struct Placed {
    channel: String,
    id: String,
    sku: String,
    qty: i64,
    cancelled: bool,
}

/// What the test posted itself, per channel.
#[derive(Debug, Default, Clone, Copy)]
struct Posted {
    /// Posts sent.
    sent: u64,
    /// Of those, under a delivery id nobody used before.
    fresh: u64,
}

/// Webhook counts the daemon keeps for a channel: (accepted, duplicate, rejected).
fn daemon_counts(h: &Harness, channel: &str) -> (u64, u64, u64) {
    let snap = h
        .daemon
        .as_ref()
        .expect("daemon")
        .shared
        .webhooks
        .snapshot();
    snap.get(channel)
        .map(|c| (c.accepted, c.duplicate, c.rejected))
        .unwrap_or_default()
}

/// The fake's own webhook counts: (sent, second copies, answered 2xx).
fn sandbox_counts(a: &Account) -> (u64, u64, u64) {
    let c = match a.kind() {
        Kind::Woo => a.sandbox.woo().webhook_counts(),
        Kind::Shopify => a.sandbox.shopify().webhook_counts(),
        Kind::Meta => a.sandbox.meta().webhook_counts(),
        other => unreachable!("{other:?} sends no webhooks"),
    };
    (c.sent, c.duplicates, c.accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_delivered_many_times_out_of_order_are_recorded_once() {
    let (mut rng, seed) = Rng::for_test(TEST);
    let rounds = util::knob("OMNISTOCK_FAULT_ROUNDS", 3);
    let mut h = Harness::new(Setup {
        channels: CHANNELS.to_vec(),
        skus: SKUS,
        quantity: START_QTY,
        latency: Duration::from_millis(20),
        poll_interval_secs: 1,
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(Duration::from_secs(30), &[]).await;
    let addr = h.daemon.as_ref().expect("daemon").http_addr;
    for a in &h.accounts {
        let target = omnistock_sandbox::WebhookTarget {
            url: format!("http://{addr}/webhooks/{}", a.id),
            secret: secret(a),
            duplicate_probability: 0.5,
            max_jitter_ms: JITTER_MS,
        };
        match a.kind() {
            Kind::Woo => a.sandbox.woo().set_webhook(Some(target)),
            Kind::Shopify => a.sandbox.shopify().set_webhook(Some(target)),
            Kind::Meta => a.sandbox.meta().set_webhook(Some(target)),
            other => unreachable!("{other:?}"),
        }
    }
    omnistock_connectors::common::http::install_crypto_provider();
    let client = reqwest::Client::new();

    let mut orders: Vec<Placed> = Vec::new();
    // Events each fake sent a webhook for (one per order placed, one per cancellation).
    let mut events: BTreeMap<String, u64> = BTreeMap::new();
    let mut posted: BTreeMap<String, Posted> = BTreeMap::new();
    // Deliveries the test sent under fresh ids, per channel, to replay.
    let mut captured: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    let mut posts = Vec::new();
    for n in 0..rounds * 6 {
        let a = &h.accounts[n % h.accounts.len()];
        let s = sku(rng.index(SKUS));
        let qty = rng.range(1, 2) as i64;
        let held: i64 = orders.iter().filter(|o| o.sku == s).map(|o| o.qty).sum();
        if START_QTY - held < qty {
            continue;
        }
        let id = util::try_place(a, &s, qty as u32)
            .unwrap_or_else(|| panic!("{} refused {qty} × {s}", a.id));
        *events.entry(a.id.clone()).or_default() += 1;
        // Cancelled at once or within the same second or so: "created" and "cancelled" race
        // each other and the polls (the marketplaces' order timestamps have one-second
        // resolution, so both states may carry the same time).
        let cancelled = rng.chance(0.35);
        if cancelled {
            if rng.chance(0.5) {
                tokio::time::sleep(Duration::from_millis(rng.below(900))).await;
            }
            a.cancel_order(&id);
            *events.entry(a.id.clone()).or_default() += 1;
        }
        // Zero to two extra deliveries of the same order: a new delivery id (a new hint), a
        // replay of one the test sent before (same bytes, same id), or — WooCommerce numbers its
        // deliveries 1, 2, … — this order's body under the id of a delivery the fake sent for an
        // earlier event.
        for _ in 0..rng.range(0, 2) {
            let sent = captured.entry(a.id.clone()).or_default();
            let p = posted.entry(a.id.clone()).or_default();
            p.sent += 1;
            let (headers, body) = if !sent.is_empty() && rng.chance(0.4) {
                sent[rng.index(sent.len())].clone()
            } else if a.kind() == Kind::Woo && rng.chance(0.4) {
                let taken = rng.range(1, events[&a.id]).to_string();
                forged(a, &id, &taken)
            } else {
                p.fresh += 1;
                let d = forged(a, &id, &format!("forged-{n}-{}", p.fresh));
                sent.push(d.clone());
                d
            };
            let url = format!("http://{addr}/webhooks/{}", a.id);
            let delay = Duration::from_millis(rng.below(2 * JITTER_MS));
            let client = client.clone();
            posts.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut req = client.post(url).body(body);
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                req.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
            }));
        }
        orders.push(Placed {
            channel: a.id.clone(),
            id,
            sku: s,
            qty,
            cancelled,
        });
        // A little time between orders so polls fall between them.
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
    }
    let mut v = Vec::new();
    for p in posts {
        let status = p.await.expect("post task");
        if status != 200 {
            v.push(format!("a signed delivery was answered {status}"));
        }
    }

    // Every order reaches its final status.
    let settled = util::wait_for(Duration::from_secs(60), || async {
        for o in &orders {
            match util::order_status(&h, &o.channel, &o.id).await {
                Some(s) if (s == "cancelled") == o.cancelled => {}
                _ => return false,
            }
        }
        true
    })
    .await;
    // Every delivery of the fakes arrived: one per event, plus their second copies (all sent
    // within 2 × the jitter after the last event).
    let delivered = util::wait_for(Duration::from_secs(20), || async {
        h.accounts.iter().all(|a| {
            let (sent, dups, ok) = sandbox_counts(a);
            sent - dups == events.get(&a.id).copied().unwrap_or(0) && ok == sent
        })
    })
    .await;
    // A second copy leaves at most one jitter after its first: give the last ones that long.
    tokio::time::sleep(Duration::from_millis(2 * JITTER_MS + 200)).await;
    if !delivered {
        v.push("the fakes' webhooks were not all delivered within 20 s".into());
    }

    let mut v2 = invariants::check(
        &h,
        &Expect {
            orders: orders.len(),
            converge: Some(Duration::from_secs(30)),
            ..Expect::default()
        },
    )
    .await;
    v.append(&mut v2);
    if !settled {
        v.push("not every order reached its final status within 60 s".into());
    }
    // Each order once, its final status, its stock moved once.
    for o in &orders {
        let status = util::order_status(&h, &o.channel, &o.id).await;
        let lines = util::line_states(&h, &o.channel, &o.id).await;
        let (_, d_on_hand, d_reserved, reserves) = util::order_moves(&h, &o.channel, &o.id).await;
        let (lines_ok, want_reserved) = if o.cancelled {
            // Released; or no line at all when first seen cancelled on Meta, which drops
            // cancelled items from the order.
            (
                lines.len() <= 1 && lines.iter().all(|l| l.0 == "released" && l.1 == 0),
                0,
            )
        } else {
            (lines == [("open".to_owned(), o.qty)], o.qty)
        };
        if !lines_ok || d_reserved != want_reserved || d_on_hand != 0 || reserves > 1 {
            v.push(format!(
                "order {} on {} ({} × {}, cancelled {}): status {status:?}, lines {lines:?}, \
                 ledger Δreserved {d_reserved} Δon_hand {d_on_hand}, {reserves} reserve rows",
                o.id, o.channel, o.qty, o.sku, o.cancelled
            ));
        }
    }
    for s in &h.skus {
        let reserved: i64 = orders
            .iter()
            .filter(|o| &o.sku == s && !o.cancelled)
            .map(|o| o.qty)
            .sum();
        let level = util::level(&h, s).await;
        if level != (START_QTY, reserved) {
            v.push(format!(
                "{s}: (on_hand, reserved) {level:?}, expected ({START_QTY}, {reserved})"
            ));
        }
        for a in &h.accounts {
            if a.shown(s).map(i64::from) != Some(START_QTY - reserved) {
                v.push(format!(
                    "{} shows {:?} of {s}, expected {}",
                    a.id,
                    a.shown(s),
                    START_QTY - reserved
                ));
            }
        }
    }
    // The delivery counts add up: one acceptance per distinct delivery id, the rest duplicates.
    let mut sent_total = 0;
    let mut duplicates_total = 0;
    for a in &h.accounts {
        let (sb_sent, sb_dups, _) = sandbox_counts(a);
        let p = posted.get(&a.id).copied().unwrap_or_default();
        let (accepted, duplicate, rejected) = daemon_counts(&h, &a.id);
        let ids: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE channel = $1")
                .bind(&a.id)
                .fetch_one(h.store.pool())
                .await
                .expect("deliveries");
        let distinct = sb_sent - sb_dups + p.fresh;
        if accepted + duplicate != sb_sent + p.sent
            || accepted != distinct
            || rejected != 0
            || ids != accepted as i64
        {
            v.push(format!(
                "{}: daemon accepted {accepted}, duplicate {duplicate}, rejected {rejected}, \
                 {ids} ids stored; fakes sent {sb_sent} ({sb_dups} second copies), the test \
                 posted {} ({} fresh ids): expected {distinct} accepted",
                a.id, p.sent, p.fresh
            ));
        }
        sent_total += sb_sent + p.sent;
        duplicates_total += duplicate;
    }
    let polls: u64 = h
        .daemon
        .as_ref()
        .expect("daemon")
        .shared
        .engine
        .runtimes()
        .iter()
        .map(|rt| rt.polls.lock().map(|p| p.polls).unwrap_or(0))
        .sum();
    let cancelled = orders.iter().filter(|o| o.cancelled).count();
    invariants::assert_none(
        TEST,
        &v,
        Figures {
            orders: orders.len() as u64,
            faults: sent_total,
            ..Figures::default()
        }
        .with("seed", seed)
        .with("cancelled", cancelled)
        .with("deliveries", sent_total)
        .with("duplicates", duplicates_total)
        .with("forged", posted.values().map(|p| p.sent).sum::<u64>())
        .with("polls", polls),
    );
    h.finish().await;
}
