//! The invariants of DESIGN §9, checked after every fault:
//!
//! - **I1** no lost update: once quiet, every channel shows every SKU's desired quantity and
//!   nothing is dirty ([`Harness::wait_converged`]); every order placed on a marketplace is
//!   recorded;
//! - **I2** no regression: where a test only ever lowers a SKU (orders, no restocks), each
//!   channel's writes of that SKU never go back up ([`no_regression_down`]);
//! - **I3** reserved = Σ open order lines ([`omnistock::orders::reserved_matches_open_lines`]);
//! - **I4** no duplicate order or ledger rows; the ledger replays to the stock levels;
//! - **I5** never below the oversell floor: no negative stock, reserved ≤ on hand, no negative
//!   desired quantity;
//! - **I6** never over a marketplace's rate budget: no 429 from a sandbox's own limiter beyond the
//!   ones a test injected on purpose.

#![allow(dead_code)]

use std::time::Duration;

use crate::helpers::Harness;

/// What a test expects, beyond the invariants themselves.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Orders placed on the marketplaces (all must be recorded exactly once).
    pub orders: usize,
    /// SKUs allowed to stay unconverged (quarantined on purpose).
    pub except: Vec<String>,
    /// SKUs the test only ever lowered: their writes must never go up (I2).
    pub only_lowered: Vec<String>,
    /// 429s a test injected (fault rules, storms): the sandboxes may count this many.
    pub injected_429s: u64,
    /// How long to wait for quiet (I1).
    pub converge: Option<Duration>,
}

/// Checks I1–I6; returns the violations found (empty when all hold). Waits for convergence first.
pub async fn check(h: &Harness, expect: &Expect) -> Vec<String> {
    let mut v = Vec::new();
    let except: Vec<&str> = expect.except.iter().map(String::as_str).collect();
    // I1: quiet ⇒ converged; a channel that never gets there is a violation, with the details.
    let deadline = std::time::Instant::now() + expect.converge.unwrap_or(Duration::from_secs(60));
    while !h.converged(&except).await {
        if std::time::Instant::now() > deadline {
            let mut detail = String::new();
            for a in &h.accounts {
                for s in h.skus.iter().take(40) {
                    let (want, dirty) = h.desired(&a.id, s).await;
                    let shown = a.shown(s);
                    if !except.contains(&s.as_str()) && (shown != u32::try_from(want).ok() || dirty)
                    {
                        detail.push_str(&format!(
                            " [{} {s}: want {want} dirty {dirty} shown {shown:?}]",
                            a.id
                        ));
                    }
                }
            }
            v.push(format!("I1: not converged:{detail}"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let pool = h.store.pool();
    let orders: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(pool)
        .await
        .expect("count orders");
    if orders != expect.orders as i64 {
        v.push(format!(
            "I1/I4: {orders} orders recorded, {} placed",
            expect.orders
        ));
    }
    // I2: writes of a SKU only ever lowered never go back up.
    for a in &h.accounts {
        for s in &expect.only_lowered {
            let seen: Vec<u32> = a
                .writes_for(s)
                .iter()
                .filter_map(|w| w.visible_quantity.or(w.quantity))
                .collect();
            if let Some(first) = seen.windows(2).position(|p| p[1] > p[0]) {
                v.push(format!(
                    "I2: {} {s} went back up: writes {:?} (at {first})",
                    a.id, seen
                ));
            }
        }
    }
    // I3.
    let i3 = omnistock::orders::reserved_matches_open_lines(&h.store)
        .await
        .expect("I3 check");
    for m in i3 {
        v.push(format!("I3: {m:?}"));
    }
    // I4: one row per marketplace order and per ledger key (the unique indexes say so; count
    // anyway), and the ledger replays to the stock levels.
    let dup_orders: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT channel, external_id FROM orders \
         GROUP BY channel, external_id HAVING COUNT(*) > 1) d",
    )
    .fetch_one(pool)
    .await
    .expect("duplicate orders");
    if dup_orders > 0 {
        v.push(format!("I4: {dup_orders} orders recorded twice"));
    }
    let dup_keys: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT idempotency_key FROM stock_movements \
         GROUP BY idempotency_key HAVING COUNT(*) > 1) d",
    )
    .fetch_one(pool)
    .await
    .expect("duplicate ledger keys");
    if dup_keys > 0 {
        v.push(format!("I4: {dup_keys} ledger keys recorded twice"));
    }
    let ledger = omnistock::catalog::verify_ledger(&h.store)
        .await
        .expect("verify ledger");
    for m in ledger {
        v.push(format!("I4: ledger does not replay: {m:?}"));
    }
    // I5.
    let below: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT sku, location, on_hand, reserved FROM stock_levels \
         WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand",
    )
    .fetch_all(pool)
    .await
    .expect("stock levels");
    for (sku, loc, on_hand, reserved) in below {
        v.push(format!(
            "I5: {sku}@{loc} on_hand {on_hand} reserved {reserved}"
        ));
    }
    let negative: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM channel_items WHERE desired_qty < 0")
            .fetch_one(pool)
            .await
            .expect("desired");
    if negative > 0 {
        v.push(format!(
            "I5: {negative} channel items want a negative quantity"
        ));
    }
    // I6.
    let total_429: u64 = h.accounts.iter().map(|a| a.count_429()).sum();
    if total_429 > expect.injected_429s {
        v.push(format!(
            "I6: the sandboxes answered {total_429} 429s, {} injected",
            expect.injected_429s
        ));
    }
    v
}

/// Records the test's figures with the violations found, then fails the test if there were any.
pub fn assert_none(test: &str, violations: &[String], figures: crate::summary::Figures) {
    let mut f = figures;
    f.violations = violations.len() as u64;
    crate::summary::record(test, &f);
    assert!(
        violations.is_empty(),
        "{test}: invariant violations:\n  {}",
        violations.join("\n  ")
    );
}
