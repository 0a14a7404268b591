//! 429 storms, `Retry-After`, and rate limits that shrink mid-run (DESIGN §9 "429/Retry-After/
//! limit-header changes"; I6).
//!
//! - **Retry-After storm**: every request to eBay, WooCommerce, Amazon and Shopify answers 429 with
//!   `Retry-After: N` for a while, as orders arrive and every SKU changes. Each connector paces one
//!   budget per rate-limit group (eBay: inventory / fulfillment / identity; Amazon: per SP-API
//!   operation; WooCommerce and Shopify: the whole account), so from the sandboxes' request logs:
//!   after a 429, no request of the same group may arrive until N seconds have passed (requests
//!   already in flight when the 429 came back, within [`IN_FLIGHT_MS`], are not counted).
//! - **Limits that shrink**: while a change set of 40 SKUs is being pushed (one item per call),
//!   Amazon's `patchListingsItem` rate drops from 5/s to 2/s — the connector can only learn it from
//!   the `x-amzn-RateLimit-Limit` header of the answers — and Shopify's cost bucket from unlimited
//!   to a 1,000-point plan restoring 40/s with 800 points already spent by another app (learned
//!   from `extensions.cost.throttleStatus`). Those are the two marketplaces that announce their
//!   limits; eBay and WooCommerce announce nothing and learn only from 429s (the storm covers
//!   them). The 429s must stay within what was in flight when the limits changed, and a second
//!   change set after a rest must meet the new limits without 429s (but arrival jitter, at most
//!   [`JITTER`]; a connector ignoring the header met 25).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use omnistock::catalog::{StockChange, change_stock};
use omnistock_sandbox::{FaultKind, FaultRule, RateLimit, RequestRecord};

use crate::helpers::{Harness, Kind, Setup, sku};
use crate::invariants::{self, Expect};
use crate::summary::Figures;

/// 429s a push at a rate limit both sides share may meet from arrival jitter alone (see the
/// shrinking-limits test); a connector that ignores an announced limit meets dozens.
const JITTER: u64 = 2;

/// A request arriving this soon after a 429 was sent before that 429 came back.
const IN_FLIGHT_MS: u64 = 500;

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s| *s >= 1)
        .unwrap_or(default)
}

/// Waits (bounded) until `n` orders are recorded (a poller that was backing off catches up after
/// the stock has converged).
async fn orders_recorded(h: &Harness, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let got: Option<i64> = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(h.store.pool())
            .await
            .ok();
        if got == Some(n as i64) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_stock(h: &Harness, sku: &str, qty: i64, key: &str) {
    change_stock(&h.store, &h.plan, sku, "main", StockChange::Set(qty), key)
        .await
        .expect("stock change");
}

/// The connector budget a request draws from (what one 429 pauses).
fn group(kind: Kind, operation: &str) -> String {
    match kind {
        Kind::Ebay => match operation {
            "getOrders" | "getOrder" => "fulfillment",
            "getToken" => "identity",
            _ => "inventory",
        }
        .to_owned(),
        Kind::Amazon | Kind::Meta | Kind::Vendure => operation.to_owned(),
        Kind::Woo => "rest".to_owned(),
        Kind::Shopify => "graphql".to_owned(),
    }
}

/// Requests of one account that came too early after a 429 of their group: `throttled` are the
/// requests answered 429 (arrival order), `all` every request of the same period.
fn too_early(
    kind: Kind,
    throttled: &[RequestRecord],
    all: &[RequestRecord],
    retry_after_ms: u64,
) -> Vec<String> {
    let mut out = Vec::new();
    for t in throttled {
        let g = group(kind, &t.operation);
        for r in all.iter().filter(|r| r.seq > t.seq) {
            let gap = r.at_ms.saturating_sub(t.at_ms);
            if gap >= retry_after_ms {
                break;
            }
            // 20 ms for two clocks and the timer wheel.
            if gap >= IN_FLIGHT_MS && gap + 20 < retry_after_ms && group(kind, &r.operation) == g {
                out.push(format!(
                    "{} {} at +{gap} ms after a 429 of {} (Retry-After {retry_after_ms} ms)",
                    kind.market(),
                    r.operation,
                    t.operation
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_with_retry_after_is_waited_out_per_rate_group_and_loses_nothing() {
    let test = "throttle_retry_after";
    let started = Instant::now();
    let retry_after = env_secs("OMNISTOCK_FAULT_RETRY_AFTER_SECS", 4);
    let storm = Duration::from_secs(env_secs("OMNISTOCK_FAULT_STORM_SECS", 12));
    let mut h = Harness::new(Setup {
        channels: vec!["ebay_us", "woo_shop", "amazon_us", "shopify_shop"],
        skus: 16,
        quantity: 50,
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(Duration::from_secs(60), &[]).await;

    let mut marks = Vec::new();
    for a in &h.accounts {
        let before = a.sandbox.requests().len();
        let rule = a.sandbox.faults().add(FaultRule::new(
            a.kind().market(),
            "*",
            FaultKind::TooManyRequests {
                retry_after_secs: Some(retry_after),
            },
        ));
        marks.push((before, rule));
    }
    let t0 = Instant::now();
    let mut placed = 0usize;
    for (i, a) in h.accounts.iter().enumerate() {
        a.place_order(&sku(i), 1);
        placed += 1;
    }
    for (i, s) in h.skus.clone().iter().enumerate() {
        set_stock(&h, s, 30 + i as i64, &format!("storm:{s}")).await;
    }
    tokio::time::sleep(storm.saturating_sub(t0.elapsed())).await;
    let mut v = Vec::new();
    let mut injected = 0u64;
    let mut checked = 0usize;
    let mut per_market = Vec::new();
    for (a, (before, rule)) in h.accounts.iter().zip(&marks) {
        let fired = a.sandbox.faults().fired(*rule);
        a.sandbox.faults().remove(*rule);
        injected += fired;
        let during: Vec<RequestRecord> = a.sandbox.requests().into_iter().skip(*before).collect();
        // Every request of the storm was answered 429, but for one that raced the rule's
        // removal (it is recorded before the rules are read): the first `fired` ones.
        let fired_n = usize::try_from(fired)
            .unwrap_or(usize::MAX)
            .min(during.len());
        if during.len() > fired_n + 1 {
            v.push(format!(
                "{}: {} requests during the storm but only {fired} 429s",
                a.id,
                during.len()
            ));
        }
        let throttled = &during[..fired_n];
        checked += throttled.len();
        let early = too_early(a.kind(), throttled, &during, retry_after * 1000);
        let mut by_group: HashMap<String, usize> = HashMap::new();
        for t in throttled {
            *by_group.entry(group(a.kind(), &t.operation)).or_default() += 1;
        }
        per_market.push(format!("{}:{fired}", a.kind().market()));
        eprintln!(
            "{test}: {}: {fired} 429s by group {by_group:?}, {} too early",
            a.id,
            early.len()
        );
        if fired == 0 {
            v.push(format!("{}: the storm never hit", a.id));
        }
        v.extend(early.into_iter().take(10).map(|e| format!("{}: {e}", a.id)));
    }
    let recovering = Instant::now();
    if !orders_recorded(&h, placed, Duration::from_secs(90)).await {
        v.push("I1: orders placed during the storm were not recorded within 90 s".into());
    }
    let mut violations = invariants::check(
        &h,
        &Expect {
            orders: placed,
            injected_429s: injected,
            converge: Some(Duration::from_secs(90)),
            ..Expect::default()
        },
    )
    .await;
    let recovery = recovering.elapsed();
    violations.extend(v);
    invariants::assert_none(
        test,
        &violations,
        Figures {
            orders: placed as u64,
            faults: injected,
            ..Figures::default()
        }
        .with("retry_after_s", retry_after)
        .with("storm_s", storm.as_secs())
        .with("checked_429s", checked)
        .with("by_market", per_market.join(","))
        .with("recovery_ms", recovery.as_millis())
        .with("wall_s", started.elapsed().as_secs()),
    );
    h.finish().await;
}

/// 429s (or THROTTLED answers) the marketplace's own limiter gave an account.
fn limiter_429s(h: &Harness, id: &str) -> u64 {
    let a = h.account(id);
    match a.kind() {
        Kind::Amazon => a.amazon().throttled_count(),
        Kind::Shopify => a.sandbox.shopify().throttled_count(),
        _ => a.count_429(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_that_shrink_mid_push_are_learned_from_the_answers() {
    let test = "throttle_shrinking_limits";
    let started = Instant::now();
    let skus = 40;
    let mut h = Harness::new(Setup {
        channels: vec!["amazon_us", "shopify_shop"],
        skus,
        quantity: 100,
        // Small batches: the change set is many calls on both marketplaces.
        limits: "{ retry_max_secs = 2, timeout_secs = 10, batch_size = 1 }",
        // The SP-API sandbox plan on the fake (5/s, burst 15); the connector runs the same plan.
        amazon: omnistock_sandbox::AmazonOptions::sandbox_plan(),
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(Duration::from_secs(90), &[]).await;
    let base_amazon = limiter_429s(&h, "amazon_us");
    let base_shopify = limiter_429s(&h, "shopify_shop");

    // Wave 1: every SKU changes; once the push is under way, both limits shrink.
    let amazon = h.account("amazon_us").amazon();
    let shopify = h.account("shopify_shop").sandbox.shopify();
    let writes_before = amazon.writes().len();
    for s in h.skus.clone() {
        set_stock(&h, &s, 60, &format!("wave1:{s}")).await;
    }
    h.eventually("the push is under way", Duration::from_secs(30), || async {
        amazon.writes().len() >= writes_before + 10
    })
    .await;
    let shrunk_at = Instant::now();
    amazon.set_rate_limit("patchListingsItem", Some(RateLimit::new(2.0, 15)));
    // A smaller plan (1,000 points, 40/s), most of it spent by another app of the shop.
    shopify.set_cost_limits(1000.0, 40.0).expect("cost limits");
    shopify.drain_bucket(800.0);
    let left_amazon = skus - (amazon.writes().len() - writes_before).min(skus);
    h.wait_converged(Duration::from_secs(120), &[]).await;
    let wave1 = shrunk_at.elapsed();
    let w1_amazon = limiter_429s(&h, "amazon_us") - base_amazon;
    let w1_shopify = limiter_429s(&h, "shopify_shop") - base_shopify;

    // A short rest, then wave 2 at the new limits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let w2_start = Instant::now();
    for s in h.skus.clone() {
        set_stock(&h, &s, 40, &format!("wave2:{s}")).await;
    }
    h.wait_converged(Duration::from_secs(120), &[]).await;
    let wave2 = w2_start.elapsed();
    let w2_amazon = limiter_429s(&h, "amazon_us") - base_amazon - w1_amazon;
    let w2_shopify = limiter_429s(&h, "shopify_shop") - base_shopify - w1_shopify;
    eprintln!(
        "{test}: initial listing 429s amazon {base_amazon} shopify {base_shopify}; wave 1 ({left_amazon} Amazon items left at the shrink) {wave1:?}: 429s amazon \
         {w1_amazon} shopify {w1_shopify}; wave 2 {wave2:?}: amazon {w2_amazon} shopify {w2_shopify}"
    );

    // The bounds.
    //
    // Amazon: the fake's new bucket starts full; what can meet it unprepared is what was sent at
    // the old pace before the first answer carrying `x-amzn-RateLimit-Limit: 2.0` came back: the
    // requests in flight, one per batch of one item, 4 batches. From that answer on the budget
    // runs at 2/s from the fill it had (a spent bucket stays spent), as the fake does.
    //
    // Shopify: every answer carries throttleStatus, so the calls that can meet the new, drained
    // bucket unprepared are the ones in flight when it changed: 4 push batches and the poller;
    // each may be THROTTLED once more while waiting out its own retry.
    //
    // Wave 2 starts from the learned limits on both sides: no 429 but arrival jitter. Running at
    // exactly the server's rate, a request delayed on its way and the next one not can arrive
    // closer than one period apart, which the fake's bucket refuses: at most `JITTER` such per
    // push at a shared limit (the initial listing, at the 5/s plan both sides share, is one too).
    let mut v = Vec::new();
    let amazon_bound = 4;
    let shopify_bound = 2 * (4 + 1);
    if w1_amazon > amazon_bound {
        v.push(format!(
            "Amazon: {w1_amazon} 429s while learning a lower rate, at most {amazon_bound}"
        ));
    }
    if w1_shopify > shopify_bound {
        v.push(format!(
            "Shopify: {w1_shopify} THROTTLED while learning a smaller bucket, at most {shopify_bound}"
        ));
    }
    let initial = base_amazon + base_shopify;
    let after = w2_amazon + w2_shopify;
    if initial > JITTER || after > JITTER {
        v.push(format!(
            "pushes at limits both sides knew met 429s beyond arrival jitter ({JITTER}): the \
             initial listing {initial}, the rested push at the learned limits amazon {w2_amazon} \
             shopify {w2_shopify}"
        ));
    }
    // Only what the limiters legitimately answered: that jitter, and while the connectors learned.
    let legit = initial.min(JITTER)
        + after.min(JITTER)
        + w1_amazon.min(amazon_bound)
        + w1_shopify.min(shopify_bound);
    let mut violations = invariants::check(
        &h,
        &Expect {
            injected_429s: legit,
            converge: Some(Duration::from_secs(60)),
            ..Expect::default()
        },
    )
    .await;
    violations.extend(v);
    invariants::assert_none(
        test,
        &violations,
        Figures {
            faults: 2,
            ..Figures::default()
        }
        .with("initial_429s", initial)
        .with("amazon_429_learning", w1_amazon)
        .with("shopify_429_learning", w1_shopify)
        .with("amazon_429_after", w2_amazon)
        .with("shopify_429_after", w2_shopify)
        .with("wave1_ms", wave1.as_millis())
        .with("wave2_ms", wave2.as_millis())
        .with("wall_s", started.elapsed().as_secs()),
    );
    h.finish().await;
}
