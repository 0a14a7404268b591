//! What the kill, delivery, last-unit and drift tests share: a seeded random source (so a failure
//! can be replayed with `OMNISTOCK_FAULT_SEED`), the knobs that lengthen a run into a soak, and
//! small reads of stock, orders and the ledger.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use omnistock::catalog::{StockChange, change_stock};

use crate::helpers::{Account, Harness, Kind};

/// A tiny seeded generator (SplitMix64): enough to pick kill points, SKUs and quantities, and
/// replayable from the seed the test prints and records.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator for `test`: seeded from `OMNISTOCK_FAULT_SEED` when set, else from the clock.
    /// The seed is printed so a failing run can be replayed.
    pub fn for_test(test: &str) -> (Rng, u64) {
        let seed = std::env::var("OMNISTOCK_FAULT_SEED")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0x5eed)
            });
        eprintln!("{test}: seed {seed} (replay with OMNISTOCK_FAULT_SEED={seed})");
        (Rng(seed), seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// An index into a slice of `len` items.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

/// A count from the environment variable `var`, else `default` (a soak sets it higher).
pub fn knob(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(default)
}

/// Sets on_hand of `sku` at `main`, as `omnistock stock set` does.
pub async fn set_stock(h: &Harness, sku: &str, qty: i64, key: &str) {
    change_stock(&h.store, &h.plan, sku, "main", StockChange::Set(qty), key)
        .await
        .unwrap_or_else(|e| panic!("set {sku} to {qty}: {e}"));
}

/// (on_hand, reserved) of `sku` at `main`.
pub async fn level(h: &Harness, sku: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT on_hand, reserved FROM stock_levels WHERE sku = $1 AND location = 'main'",
    )
    .bind(sku)
    .fetch_one(h.store.pool())
    .await
    .expect("stock level")
}

/// Orders recorded, all channels.
pub async fn orders_recorded(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(h.store.pool())
        .await
        .expect("count orders")
}

/// The stored status of an order, if recorded.
pub async fn order_status(h: &Harness, channel: &str, external_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM orders WHERE channel = $1 AND external_id = $2")
        .bind(channel)
        .bind(external_id)
        .fetch_optional(h.store.pool())
        .await
        .expect("order status")
}

/// The states of an order's lines.
pub async fn line_states(h: &Harness, channel: &str, external_id: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT l.state, l.reserved_qty FROM order_lines l JOIN orders o ON o.id = l.order_id \
         WHERE o.channel = $1 AND o.external_id = $2 ORDER BY l.line_id",
    )
    .bind(channel)
    .bind(external_id)
    .fetch_all(h.store.pool())
    .await
    .expect("order lines")
}

/// What the ledger moved for one order: (rows, Σ delta_on_hand, Σ delta_reserved, reserve rows).
pub async fn order_moves(h: &Harness, channel: &str, external_id: &str) -> (i64, i64, i64, i64) {
    let r = omnistock::orders::keys::order_ref(channel, external_id);
    let rows: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT delta_on_hand, delta_reserved, reason FROM stock_movements WHERE order_ref = $1",
    )
    .bind(&r)
    .fetch_all(h.store.pool())
    .await
    .expect("order movements");
    (
        rows.len() as i64,
        rows.iter().map(|m| m.0).sum(),
        rows.iter().map(|m| m.1).sum(),
        rows.iter().filter(|m| m.2 == "order_reserve").count() as i64,
    )
}

/// Places an order of `qty` × `sku` on the account; `None` when the marketplace refuses it
/// (it shows fewer units, the listing is not live yet).
pub fn try_place(a: &Account, sku: &str, qty: u32) -> Option<String> {
    let lines = [omnistock_sandbox::OrderLine::new(sku, qty)];
    let r = match a.kind() {
        Kind::Ebay => a.ebay().place_order(&lines),
        Kind::Amazon => a.amazon().place_order(&lines),
        Kind::Vendure => a.sandbox.vendure().place_order(&lines),
        Kind::Woo => a.sandbox.woo().place_order(&lines),
        Kind::Shopify => a.sandbox.shopify().place_order(&lines),
        Kind::Meta => a.sandbox.meta().place_order(&lines),
    };
    r.ok()
}

/// Polls `f` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_for<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The operation a marketplace's fake names a stock push by (fault targets, request counts).
pub fn push_operation(kind: Kind) -> &'static str {
    match kind {
        Kind::Ebay => "bulkUpdatePriceQuantity",
        Kind::Amazon => "patchListingsItem",
        Kind::Shopify => "inventorySetQuantities",
        Kind::Woo => "batchProducts",
        Kind::Meta => "catalog_batch",
        Kind::Vendure => "*",
    }
}

/// The operation a marketplace's fake names an order poll by.
pub fn orders_operation(kind: Kind) -> &'static str {
    match kind {
        Kind::Ebay => "getOrders",
        Kind::Amazon => "searchOrders",
        Kind::Shopify => "orders",
        Kind::Woo => "listOrders",
        Kind::Meta => "*",
        Kind::Vendure => "*",
    }
}

/// How many requests the account's fake received for `operation`.
pub fn request_count(a: &Account, operation: &str) -> u64 {
    match a.kind() {
        Kind::Ebay => a.ebay().request_count(operation),
        Kind::Amazon => a.amazon().request_count(operation),
        Kind::Vendure => a.sandbox.vendure().request_count(operation),
        Kind::Woo => a.sandbox.woo().request_count(operation),
        Kind::Shopify => a.sandbox.shopify().request_count(operation),
        Kind::Meta => a.sandbox.meta().request_count(operation),
    }
}

/// Lets the marketplace accept checkouts above its shown quantity (eBay, Shopify and WooCommerce
/// fakes), as a real one does when orders race the push that lowers it.
pub fn allow_oversell(a: &Account) {
    match a.kind() {
        Kind::Ebay => a.ebay().set_allow_oversell(true),
        Kind::Shopify => a.sandbox.shopify().set_allow_oversell(true),
        Kind::Woo => a.sandbox.woo().set_allow_oversell(true),
        other => panic!("{other:?} has no oversell knob"),
    }
}
