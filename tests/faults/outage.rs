//! A marketplace down while orders arrive elsewhere, then back (DESIGN §9 "a marketplace outage
//! then recovery"), once with eBay as the sick channel and once with WooCommerce:
//!
//! 1. **503 on every request** of the sick channel for `OMNISTOCK_FAULT_OUTAGE_SECS` (default
//!    20 s);
//! 2. **no answer at all** (`Hang`, the request applied first: the unknown-outcome case) for ¾ of
//!    that: only the connector's request timeout (`limits.timeout_secs`) gets the daemon out.
//!
//! Meanwhile probes run on the healthy channels one after the other — a stock change, then an order
//! on one healthy channel — and each waits until every healthy channel shows the new quantity: the
//! longest wait is the *healthy lag* (recorded, and bounded: a sick channel must not hold the
//! others up). The sick channel sells too, and its orders are picked up after recovery.
//!
//! The daemon must back off: the requests that reach the sick marketplace during the outage are
//! bounded by what the backoff allows ([`max_attempts`], computed from `limits.retry_max_secs`),
//! and during the hang by the request timeout. After recovery everything converges and I1–I6 hold.

use std::time::{Duration, Instant};

use omnistock::catalog::{StockChange, change_stock};
use omnistock_sandbox::{FaultKind, FaultRule};

use crate::helpers::{Harness, Setup, sku};
use crate::invariants::{self, Expect};
use crate::summary::Figures;

/// `limits.retry_max_secs`: the cap of the channel backoff.
const RETRY_MAX_SECS: u64 = 4;
/// `limits.timeout_secs`: the whole-request deadline (longer than [`HEALTHY_LAG_LIMIT`], so a
/// healthy channel held up by a hung one shows).
const TIMEOUT_SECS: u64 = 6;
/// The connectors' backoff base (`Limits::retry`, 1 s for every marketplace).
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Every channel's `poll_interval_secs` (the harness default).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// SKUs in the catalog: the first half take orders only (I2 applies), the second half stock
/// changes.
const SKUS: usize = 24;
/// Longest a healthy channel may take to show a change while another channel is sick (polling
/// every second, the lag is about 1 s; waiting for a hung request would take the timeout).
const HEALTHY_LAG_LIMIT: Duration = Duration::from_secs(4);

fn outage_secs() -> u64 {
    std::env::var("OMNISTOCK_FAULT_OUTAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s| *s >= 5)
        .unwrap_or(20)
}

/// The most attempts one retry loop can make in `window` except with probability < 10⁻⁹, when
/// after its n-th consecutive failure (n ≥ 1) it waits a uniform draw in
/// `0..=min(cap, base·2ⁿ)` (full jitter, `Backoff::delay`).
///
/// Waits whose ceiling is still below the cap (the ramp, `k` of them) are counted as zero. Every
/// other wait is at least a uniform draw on `[0, cap]`, and the sum of `m` such draws is at most
/// `w` with probability ≤ (w/cap)ᵐ / m! (the volume of the simplex {Σxᵢ ≤ w/cap} inside the unit
/// cube). `n` attempts in the window need `n − 1 − k` plateau waits summing to at most the window,
/// so with `m` the smallest count whose probability is under 10⁻⁹, `n ≤ m + k`; one more for the
/// attempt whose wait began before the window.
fn max_attempts(window: Duration, base: Duration, cap: Duration) -> u64 {
    let mut ramp = 0u64;
    while base.saturating_mul(1 << (ramp + 1).min(31)) < cap {
        ramp += 1;
    }
    let x = window.as_secs_f64() / cap.as_secs_f64();
    let mut m = 0u64;
    // ln(xᵐ/m!) ≤ ln 1e-9
    let mut log_p = 0.0f64;
    while log_p > (1e-9f64).ln() || (m as f64) < x {
        m += 1;
        log_p += x.ln() - (m as f64).ln();
    }
    m + ramp + 1
}

/// Waits (bounded) until `n` orders are recorded: an order placed on a channel that just came
/// back is polled after its backoff, which the stock convergence alone does not wait for.
async fn orders_recorded(h: &Harness, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let got: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(h.store.pool())
            .await
            .expect("count orders");
        if got == n as i64 {
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

/// Waits until every channel in `channels` shows `want(channel)` for `sku`; the time it took, or
/// `None` after `limit`.
async fn lag_until_shown(
    h: &Harness,
    channels: &[&str],
    sku: &str,
    want: &[(String, Option<u32>)],
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    loop {
        let all = channels.iter().all(|c| {
            let w = want.iter().find(|(id, _)| id == c).and_then(|(_, q)| *q);
            h.account(c).shown(sku) == w
        });
        if all {
            return Some(since.elapsed());
        }
        if since.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the probes of one phase saw.
#[derive(Debug, Default)]
struct Probes {
    max_lag: Duration,
    count: u64,
    orders: usize,
    slow: Vec<String>,
}

/// Runs probes on the healthy channels until `until`: alternately a stock change (SKUs of the
/// second half) and an order on a healthy channel (first half), each awaited on every healthy
/// channel.
async fn probe_until(
    h: &Harness,
    healthy: &[&str],
    until: Instant,
    next: &mut usize,
    probes: &mut Probes,
) {
    let half = SKUS / 2;
    while Instant::now() < until {
        let i = *next;
        *next += 1;
        if i.is_multiple_of(2) {
            let s = sku(half + (i / 2) % half);
            let value = 40 + (i as i64 % 37);
            let started = Instant::now();
            set_stock(h, &s, value, &format!("outage-probe:{i}:{s}")).await;
            let mut want = Vec::new();
            for c in healthy {
                let (q, _) = h.desired(c, &s).await;
                want.push(((*c).to_owned(), u32::try_from(q).ok()));
            }
            record_probe(h, healthy, &s, &want, started, probes, "stock change").await;
        } else {
            let s = sku((i / 2) % half);
            let from = healthy[(i / 2) % healthy.len()];
            let mut want = Vec::new();
            for c in healthy {
                let (q, _) = h.desired(c, &s).await;
                want.push(((*c).to_owned(), u32::try_from(q - 1).ok()));
            }
            let started = Instant::now();
            h.account(from).place_order(&s, 1);
            probes.orders += 1;
            record_probe(h, healthy, &s, &want, started, probes, "order").await;
        }
    }
}

async fn record_probe(
    h: &Harness,
    healthy: &[&str],
    s: &str,
    want: &[(String, Option<u32>)],
    started: Instant,
    probes: &mut Probes,
    what: &str,
) {
    probes.count += 1;
    match lag_until_shown(h, healthy, s, want, started, Duration::from_secs(30)).await {
        Some(lag) => {
            probes.max_lag = probes.max_lag.max(lag);
            if lag > HEALTHY_LAG_LIMIT {
                probes.slow.push(format!(
                    "{what} on {s} took {lag:?} to reach the healthy channels"
                ));
            }
        }
        None => probes.slow.push(format!(
            "{what} on {s} did not reach the healthy channels within 30 s: want {want:?}"
        )),
    }
}

/// The push and poll attempts the sick channel's runtime counted so far (failed calls, failed
/// polls).
fn attempts(h: &Harness, channel: &str) -> (u64, u64) {
    let daemon = h.daemon.as_ref().expect("in-process daemon");
    let rt = daemon
        .shared
        .engine
        .runtimes()
        .into_iter()
        .find(|r| r.spec.id == channel)
        .expect("channel runtime");
    let pushes: u64 = rt
        .counters
        .lock()
        .map(|c| c.failed_calls.values().sum())
        .unwrap_or(0);
    let polls = rt.polls.lock().map(|p| p.failures).unwrap_or(0);
    (pushes, polls)
}

async fn outage_story(test: &str, channels: Vec<&'static str>, sick: &'static str) {
    let started = Instant::now();
    let outage = Duration::from_secs(outage_secs());
    let hang = outage * 3 / 4;
    let mut h = Harness::new(Setup {
        channels: channels.clone(),
        skus: SKUS,
        quantity: 100,
        limits: "{ retry_max_secs = 4, timeout_secs = 6 }",
        ..Setup::default()
    })
    .await;
    h.start_daemon().await;
    h.wait_converged(Duration::from_secs(60), &[]).await;
    let healthy: Vec<&str> = channels.iter().copied().filter(|c| *c != sick).collect();
    let market = h.account(sick).kind().market();
    let mut v = Vec::new();
    let mut probes = Probes::default();
    let mut next = 0usize;
    let mut placed = 0usize;
    let mut faults = 0u64;

    // 1. 503 on every request.
    let sandbox = &h.account(sick).sandbox;
    let before = sandbox.requests().len();
    let (pushes0, polls0) = attempts(&h, sick);
    let rule = sandbox
        .faults()
        .add(FaultRule::new(market, "*", FaultKind::server_error(503)));
    let t0 = Instant::now();
    // The sick channel sells during its outage; its poller must catch up afterwards.
    h.account(sick).place_order(&sku(0), 2);
    placed += 1;
    probe_until(&h, &healthy, t0 + outage, &mut next, &mut probes).await;
    let window = t0.elapsed();
    let sandbox = &h.account(sick).sandbox;
    faults += sandbox.faults().fired(rule);
    sandbox.faults().remove(rule);
    let reached = (sandbox.requests().len() - before) as u64;
    let (pushes1, polls1) = attempts(&h, sick);
    let cap = Duration::from_secs(RETRY_MAX_SECS);
    let per_loop = max_attempts(window, BACKOFF_BASE, cap);
    // The poller waits the same draw, capped at four poll intervals, and also wakes on the
    // `schedule.orders` cron (every minute).
    let per_poll =
        max_attempts(window, BACKOFF_BASE, cap.min(POLL_INTERVAL * 4)) + window.as_secs() / 60 + 1;
    // One dirty batch per push attempt (the dirty SKUs fit one call), one page per poll attempt.
    let bound = per_loop + per_poll;
    eprintln!(
        "{test}: 503 phase {window:?}: {reached} requests reached {sick} (bound {bound}); \
         push attempts {}, poll attempts {}",
        pushes1 - pushes0,
        polls1 - polls0
    );
    if reached > bound {
        v.push(format!(
            "backoff: {reached} requests reached {sick} in a {window:?} outage; the backoff \
             (cap {RETRY_MAX_SECS} s) allows at most {bound}"
        ));
    }
    if pushes1 - pushes0 > per_loop || polls1 - polls0 > per_poll {
        v.push(format!(
            "backoff: {} push and {} poll attempts in a {window:?} outage, at most {per_loop} \
             and {per_poll}",
            pushes1 - pushes0,
            polls1 - polls0
        ));
    }
    let lag_503 = probes.max_lag;
    let recovering = Instant::now();
    if !orders_recorded(&h, placed + probes.orders, Duration::from_secs(60)).await {
        v.push("I1: orders placed during the 503 outage were not recorded within 60 s".into());
    }
    h.wait_converged(Duration::from_secs(60), &[]).await;
    let recovery_503 = recovering.elapsed();

    // 2. No answer at all: the write lands, the answer never comes; only the timeout helps.
    probes.max_lag = Duration::ZERO;
    let sandbox = &h.account(sick).sandbox;
    let before = sandbox.requests().len();
    let (pushes0, polls0) = attempts(&h, sick);
    let rule = sandbox.faults().add(FaultRule::new(
        market,
        "*",
        FaultKind::Hang {
            after_processing: true,
        },
    ));
    let t0 = Instant::now();
    h.account(sick).place_order(&sku(1), 1);
    placed += 1;
    probe_until(&h, &healthy, t0 + hang, &mut next, &mut probes).await;
    let window = t0.elapsed();
    let sandbox = &h.account(sick).sandbox;
    faults += sandbox.faults().fired(rule);
    sandbox.faults().remove(rule);
    let hung = (sandbox.requests().len() - before) as u64;
    let (pushes1, polls1) = attempts(&h, sick);
    let timed_out = (pushes1 - pushes0) + (polls1 - polls0);
    // Each attempt waits out the timeout before its backoff; push and poll loops run apart.
    let timeout = Duration::from_secs(TIMEOUT_SECS);
    let per_loop = window.as_secs() / timeout.as_secs() + 1;
    let bound = 2 * (per_loop + 1);
    eprintln!(
        "{test}: hang phase {window:?}: {hung} requests reached {sick} (bound {bound}), \
         {timed_out} timed out"
    );
    if hung > bound {
        v.push(format!(
            "timeout: {hung} requests reached {sick} in a {window:?} hang; with a {TIMEOUT_SECS} s \
             timeout at most {bound}"
        ));
    }
    // A request that never times out parks its loop for good. The poller's first request fails
    // at the timeout and so does its next one (or the dispatcher's first) well inside the hang.
    if timed_out < 2 {
        v.push(format!(
            "timeout: {timed_out} calls to {sick} failed in a {window:?} hang ({hung} requests): \
             the {TIMEOUT_SECS} s request timeout did not fire"
        ));
    }
    placed += probes.orders;
    let recovering = Instant::now();
    if !orders_recorded(&h, placed, Duration::from_secs(60)).await {
        v.push("I1: orders placed during the hang were not recorded within 60 s".into());
    }
    h.wait_converged(Duration::from_secs(60), &[]).await;
    let recovery_hang = recovering.elapsed();
    v.extend(probes.slow.iter().cloned());
    let half = SKUS / 2;
    let violations = {
        let mut all = invariants::check(
            &h,
            &Expect {
                orders: placed,
                only_lowered: (0..half).map(sku).collect(),
                converge: Some(Duration::from_secs(60)),
                ..Expect::default()
            },
        )
        .await;
        all.extend(v);
        all
    };
    let max_lag = lag_503.max(probes.max_lag);
    invariants::assert_none(
        test,
        &violations,
        Figures {
            orders: placed as u64,
            faults,
            ..Figures::default()
        }
        .with("sick", sick)
        .with("outage_s", outage.as_secs())
        .with("requests_503", reached)
        .with("requests_hang", hung)
        .with("timed_out", timed_out)
        .with("probes", probes.count)
        .with("healthy_max_lag_ms", max_lag.as_millis())
        .with("recovery_503_ms", recovery_503.as_millis())
        .with("recovery_hang_ms", recovery_hang.as_millis())
        .with("wall_s", started.elapsed().as_secs()),
    );
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebay_down_then_hanging_does_not_hold_up_the_other_channels() {
    outage_story(
        "outage_ebay",
        vec!["ebay_us", "woo_shop", "shopify_shop"],
        "ebay_us",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn woocommerce_down_then_hanging_does_not_hold_up_the_other_channels() {
    outage_story(
        "outage_woo",
        vec!["woo_shop", "ebay_us", "shopify_shop"],
        "woo_shop",
    )
    .await;
}

#[test]
fn the_backoff_bound_is_what_the_arithmetic_says() {
    // 20 s at a 4 s cap, base 1 s: one ramp wait (ceiling 2 s), then 27 plateau waits are needed
    // before (5²⁷/27! < 10⁻⁹).
    let n = max_attempts(
        Duration::from_secs(20),
        Duration::from_secs(1),
        Duration::from_secs(4),
    );
    assert_eq!(n, 27 + 1 + 1);
    // A longer window allows proportionally more, never fewer.
    assert!(
        max_attempts(
            Duration::from_secs(600),
            Duration::from_secs(1),
            Duration::from_secs(4)
        ) > n * 10
    );
}
