//! 100 concurrent orders for the last unit, from three marketplaces at once.
//!
//! The SKU has one unit; every channel shows 1. Then 100 buyers check out at the same moment,
//! spread over eBay, Shopify and WooCommerce. The fakes normally refuse a checkout above the shown
//! quantity, so the test turns on their `set_allow_oversell` knob: each marketplace accepts
//! every order, as a real one does when orders race the push that lowers it (or sells from a
//! cached listing, or allows backorders). The daemon ingests the three order streams at once;
//! exactly one line may reserve the unit, the other 99 must be recorded `oversold` (visible, no
//! stock moved), on_hand stays 1, reserved becomes 1, and every channel ends at 0.
//!
//! The variant with two daemon instances on one PostgreSQL is `instances.rs`.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::helpers::{Harness, Kind, Setup, sku};
use crate::invariants::{self, Expect};
use crate::summary::Figures;
use crate::util;

const TEST: &str = "a_hundred_concurrent_orders_for_the_last_unit_reserve_it_once";
const CHANNELS: [&str; 3] = ["ebay_us", "shopify_shop", "woo_shop"];
const ORDERS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_orders_for_the_last_unit_reserve_it_once() {
    let mut h = Harness::new(Setup {
        channels: CHANNELS.to_vec(),
        // SKU-001 is the control: nobody buys it, nothing about it may change.
        skus: 2,
        quantity: 1,
        latency: Duration::from_millis(20),
        ..Setup::default()
    })
    .await;
    let last = sku(0);
    h.start_daemon().await;
    h.wait_converged(Duration::from_secs(30), &[]).await;
    for a in &h.accounts {
        assert_eq!(a.shown(&last), Some(1), "{} shows the last unit", a.id);
        util::allow_oversell(a);
    }

    // 100 buyers, one thread each, released together.
    let gate = Arc::new(Barrier::new(ORDERS));
    let mut buyers = Vec::new();
    for i in 0..ORDERS {
        let a = &h.accounts[i % h.accounts.len()];
        let (kind, id) = (a.kind(), a.id.clone());
        let (ebay, shopify, woo) = match kind {
            Kind::Ebay => (Some(a.ebay()), None, None),
            Kind::Shopify => (None, Some(a.sandbox.shopify()), None),
            _ => (None, None, Some(a.sandbox.woo())),
        };
        let gate = Arc::clone(&gate);
        let last = last.clone();
        buyers.push(std::thread::spawn(move || {
            let lines = [omnistock_sandbox::OrderLine::new(last.as_str(), 1)];
            gate.wait();
            let r = if let Some(e) = ebay {
                e.place_order(&lines)
            } else if let Some(s) = shopify {
                s.place_order(&lines)
            } else {
                woo.expect("one handle").place_order(&lines)
            };
            (
                id,
                r.unwrap_or_else(|e| panic!("{kind:?} refused an order: {e}")),
            )
        }));
    }
    let placed: Vec<(String, String)> = buyers
        .into_iter()
        .map(|b| b.join().expect("buyer thread"))
        .collect();
    assert_eq!(placed.len(), ORDERS);

    let recorded = util::wait_for(Duration::from_secs(60), || async {
        util::orders_recorded(&h).await == ORDERS as i64
    })
    .await;
    let mut v = invariants::check(
        &h,
        &Expect {
            orders: ORDERS,
            only_lowered: vec![last.clone()],
            converge: Some(Duration::from_secs(60)),
            ..Expect::default()
        },
    )
    .await;
    if !recorded {
        v.push(format!(
            "I1: {} of {ORDERS} orders recorded within 60 s",
            util::orders_recorded(&h).await
        ));
    }

    // Exactly one line holds the unit; the 99 others are oversold and hold nothing.
    let lines: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT o.channel, o.external_id, l.state, l.reserved_qty FROM order_lines l \
         JOIN orders o ON o.id = l.order_id WHERE l.sku = $1",
    )
    .bind(&last)
    .fetch_all(h.store.pool())
    .await
    .expect("order lines");
    let open: Vec<_> = lines.iter().filter(|l| l.2 == "open").collect();
    let oversold = lines
        .iter()
        .filter(|l| l.2 == "oversold" && l.3 == 0)
        .count();
    if lines.len() != ORDERS || open.len() != 1 || open[0].3 != 1 || oversold != ORDERS - 1 {
        let mut by_state = std::collections::BTreeMap::<&str, usize>::new();
        for l in &lines {
            *by_state.entry(l.2.as_str()).or_default() += 1;
        }
        v.push(format!(
            "{} lines: {by_state:?}, open {open:?}; expected 1 open holding 1 and {} oversold",
            lines.len(),
            ORDERS - 1
        ));
    }
    for (channel, id) in &placed {
        if util::order_status(&h, channel, id).await.is_none() {
            v.push(format!("order {id} on {channel} not recorded"));
        }
    }
    let level = util::level(&h, &last).await;
    if level != (1, 1) {
        v.push(format!(
            "{last}: (on_hand, reserved) {level:?}, expected (1, 1)"
        ));
    }
    if util::level(&h, &sku(1)).await != (1, 0) {
        v.push(format!("{}: the control SKU moved", sku(1)));
    }
    for a in &h.accounts {
        if a.shown(&last) != Some(0) {
            v.push(format!(
                "{} shows {:?} of {last}, expected 0",
                a.id,
                a.shown(&last)
            ));
        }
        if a.shown(&sku(1)) != Some(1) {
            v.push(format!(
                "{} shows {:?} of the control SKU",
                a.id,
                a.shown(&sku(1))
            ));
        }
    }
    let oversold_polled: u64 = h
        .daemon
        .as_ref()
        .expect("daemon")
        .shared
        .engine
        .runtimes()
        .iter()
        .map(|rt| rt.polls.lock().map(|p| p.oversold_lines).unwrap_or(0))
        .sum();
    let winner = open.first().map(|l| l.0.clone()).unwrap_or_default();
    invariants::assert_none(
        TEST,
        &v,
        Figures {
            orders: ORDERS as u64,
            faults: ORDERS as u64 - 1,
            ..Figures::default()
        }
        .with("channels", CHANNELS.len())
        .with("oversold_lines", oversold)
        .with("oversold_reported", oversold_polled)
        .with("winner", winner),
    );
    h.finish().await;
}
