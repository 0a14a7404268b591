//! Order ingestion: one transaction per order (order row, ledger movements, reservations and the
//! desired-state recompute for every channel).
//!
//! [`ingest`] takes one order as a channel reports it and, in one write transaction, records it
//! (unique per channel and channel order id), moves stock for its lines through the ledger (one
//! `stock_movements` row per line, step, SKU and location under a deterministic key, see [`keys`],
//! with its `stock_levels` change) and recomputes what every channel should show for the SKUs it
//! touched; the ordering channel's own listings of the order's SKUs are marked for a push in any
//! case, since the marketplace moved its quantity itself. Either all of that commits or none of it
//! does; a retriable [`StoreError`] lets the caller run the whole order again ([`ingest_retrying`],
//! [`ingest_batch`]).
//!
//! # Deliveries
//!
//! Channels deliver the same order many times (poll overlap windows, webhooks, retries) and out of
//! order. A delivery applies only when it [`supersedes`] the stored one: its `remote_updated_at_ms`
//! is newer, or the same with a status further along the lifecycle (marketplaces stamp orders to
//! the second, so an order paid and cancelled within one second carries one time in both states).
//! Any other delivery changes nothing and is reported [`Disposition::Stale`] (checked first with a
//! plain read, so the common re-delivery never takes the write lock). On top of that, every stock
//! move is guarded twice: by the line's state (a line moves only from the state the step starts
//! from) and by the ledger key (a step's key can be used once), so no replay can move stock twice.
//!
//! # Order status: what a newer delivery does
//!
//! Rows: the stored status (`new` = first seen). Columns: the delivered status. Cells: the line
//! action run on every line; *ignored* means nothing moves and only the newer timestamp is kept.
//!
//! | stored \ delivered | pending | paid | shipped | cancelled | returned |
//! |---|---|---|---|---|---|
//! | new       | reserve | reserve | ship | release | release |
//! | pending   | reserve | reserve | ship | release | release |
//! | paid      | *ignored* (regress) | reserve | ship | release | release |
//! | shipped   | *ignored* | *ignored* | ship | release | return |
//! | cancelled | *ignored* (no reopening) | *ignored* | ship | release | return |
//! | returned  | *ignored* (final) | *ignored* | *ignored* | *ignored* | return |
//!
//! Why the cells that skip steps are what they are:
//! - **First seen shipped**: nothing was ever reserved, so the line takes its units off on_hand
//!   directly, from the channel's locations in order, and only from *available* units (on_hand −
//!   reserved): it never drives stock negative and never eats another order's reservation. When the
//!   locations do not have it all, the line is `oversold` (visible, nothing moved).
//! - **First seen cancelled**, and **returned before shipped**: nothing held, nothing shipped through
//!   the ledger, so nothing moves; the lines are recorded `released`.
//! - **Cancelled after shipped**: restocks nothing. The goods have left; overstating stock causes
//!   oversells, understating it costs at most a sale until the next count. A return with restock
//!   arrives as `returned`, which restocks (also after such a cancel).
//! - **Cancelled, then shipped**: the channel's newest word is that the goods left, so the released
//!   lines ship directly, as for an order first seen shipped.
//! - **Paid → pending**, **shipped → paid**, **cancelled → paid**, anything after **returned**: a
//!   regress or a reopening; no marketplace we support does either, so they are ignored rather than
//!   guessed at.
//! - **Same status again, newer**: the action runs again. It is a no-op for lines already there, and
//!   retries `oversold` lines (stock may have arrived) and `unknown_sku` lines (the SKU may have been
//!   imported since).
//!
//! # Order lines: what each action does
//!
//! | line state \ action | reserve | ship | release | return |
//! |---|---|---|---|---|
//! | new, oversold | reserve → `open` / `oversold` | ship directly → `shipped` / `oversold` | → `released` | → `released` |
//! | open      | – | on_hand −n, reserved −n → `shipped` | reserved −n → `released` | reserved −n → `released` |
//! | shipped   | – | – | – (no restock) | on_hand +n → `returned` |
//! | released  | – | ship directly → `shipped` / `oversold` | – | – |
//! | returned  | – | – | – | – |
//! | unknown_sku | retried as new once the SKU exists | same | – | – |
//! | external  | – | – | – | – |
//!
//! - **Reservation** is all-or-nothing per line and compare-and-set: the line's SKUs are locked first
//!   ([`Store::lock_skus`] in sorted order on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already makes
//!   this the only writer), the levels are read under that lock, and only when the channel's
//!   locations together have (on_hand − reserved) ≥ n are the reservations written, split across
//!   locations in the channel's order. Each write carries the predicate itself (`UPDATE … WHERE
//!   on_hand − reserved + Δ ≥ 0`), so a locking mistake fails the order instead of overselling.
//!   So two orders for the last unit cannot both get it; the loser is `oversold` with
//!   `reserved_qty` 0, and reserved never exceeds what is available.
//! - **Bundles** have no stock: a bundle line reserves, ships, releases and restocks its components
//!   (line qty × component qty), all or nothing.
//! - Shipping, releasing and restocking follow the **ledger**, not the catalog: they undo exactly the
//!   (SKU, location, units) the earlier step recorded, even if the channel's locations or the
//!   bundle's components changed in between. A shipment never takes on_hand below zero: if someone
//!   counted the shelf down below the reservation, the shipment takes what is there.
//! - **Unknown SKU** lines are recorded `unknown_sku` and move nothing; **`fulfilled_by_channel`**
//!   (Amazon FBA) orders record every line `external` and never touch our stock.
//! - A line's **quantity is fixed when first seen**: a later delivery with another quantity for the
//!   same line id is logged and ignored (its reservation keys are taken). Lines that first appear in
//!   a later delivery are added and take the order's current action. Lines with quantity 0 (items a
//!   channel removed from an order) are skipped.
//!
//! # Invariant I3
//!
//! `order_lines.reserved_qty` holds a line's reservation in line units (its quantity while `open`,
//! else 0); where it sits (SKU, location) is in the ledger rows under the line's reserve keys.
//! [`reserved_matches_open_lines`] checks both against `stock_levels.reserved`.

mod invariant;
pub mod keys;
pub mod lifecycle;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use omnistock_connectors::{ChannelOrder, OrderStatus};
use sqlx::AssertSqlSafe;
use tracing::{debug, error, info, warn};

use crate::catalog::{
    Movement, SkuKind, bundles_containing, insert_ledger_row, sku_kind, stock_at,
};
use crate::store::{IN_CHUNK, Store, StoreError, Tx, now_ms, placeholders};
use crate::sync::SyncPlan;
use crate::sync::plan::ChannelPlan;

pub use invariant::{Mismatch, reserved_matches_open_lines};
use keys::Step;
pub use lifecycle::{Action, LineState, LineStep, Move};
use lifecycle::{decide, line_step};

/// Attempts [`ingest_retrying`] makes before giving a retriable error back.
pub const RETRY_ATTEMPTS: u32 = 8;

/// First retry delay; it doubles per attempt (with full jitter) up to [`RETRY_MAX_DELAY`].
const RETRY_BASE_DELAY: Duration = Duration::from_millis(20);

/// Longest wait between two attempts.
const RETRY_MAX_DELAY: Duration = Duration::from_secs(2);

/// What happened to a delivery as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// First time this order was seen: recorded, lines processed.
    New,
    /// A newer delivery whose status move was applied.
    Applied {
        /// The status stored before.
        from: OrderStatus,
    },
    /// Not newer than what is stored: nothing changed (a duplicate or out-of-order delivery).
    Stale,
    /// Newer, but a move omnistock does not make (see the module's table): only the timestamp moved.
    Ignored {
        /// Why, for the log.
        reason: &'static str,
    },
}

/// Line counts of one ingest, for logs and metrics. The first four count what this ingest did;
/// the last three count the order's lines in that state after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Lines that reserved stock.
    pub reserved: usize,
    /// Lines that shipped (from their reservation or directly).
    pub shipped: usize,
    /// Lines released (cancelled or returned before shipping).
    pub released: usize,
    /// Lines restocked by a return.
    pub restocked: usize,
    /// Lines that needed stock and could not get it all.
    pub oversold: usize,
    /// Lines whose SKU is not in the catalog.
    pub unknown_sku: usize,
    /// Lines the channel fulfils from its own stock.
    pub external: usize,
}

impl std::ops::AddAssign for LineCounts {
    fn add_assign(&mut self, o: Self) {
        self.reserved += o.reserved;
        self.shipped += o.shipped;
        self.released += o.released;
        self.restocked += o.restocked;
        self.oversold += o.oversold;
        self.unknown_sku += o.unknown_sku;
        self.external += o.external;
    }
}

/// What [`ingest`] did with one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The channel's order id.
    pub external_id: String,
    /// New, applied, stale or ignored.
    pub disposition: Disposition,
    /// The order's stored status afterwards.
    pub status: OrderStatus,
    /// What happened to the lines.
    pub lines: LineCounts,
    /// SKUs whose stock moved (bundle lines name their components), sorted.
    pub touched_skus: Vec<String>,
    /// Channel listings whose desired value changed as a result.
    pub listings_changed: usize,
}

/// Aggregate of [`ingest_batch`] over a page of orders.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Orders seen for the first time.
    pub new: usize,
    /// Orders whose newer status was applied.
    pub applied: usize,
    /// Deliveries that were not newer (duplicates).
    pub stale: usize,
    /// Newer deliveries whose move is not made (regress, reopening).
    pub ignored: usize,
    /// Line counts summed over the orders.
    pub lines: LineCounts,
    /// Union of the orders' touched SKUs, sorted.
    pub touched_skus: Vec<String>,
    /// Listings whose desired value changed.
    pub listings_changed: usize,
    /// Orders that failed (after retries), with their error; nothing of them was applied.
    pub failed: Vec<(String, StoreError)>,
}

impl BatchOutcome {
    /// True when every order was ingested, so a poller may move its cursor past the page.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Ingests one order from `channel` in one transaction (see the module documentation). Fails
/// with [`StoreError::NotFound`] when `channel` is not in `plan`: without its locations there is
/// nowhere to reserve from.
#[tracing::instrument(skip_all, fields(channel = %channel, order = %order.external_id))]
pub async fn ingest(
    store: &Store,
    plan: &SyncPlan,
    channel: &str,
    order: &ChannelOrder,
) -> Result<IngestOutcome, StoreError> {
    let ch = plan.channel(channel).ok_or_else(|| {
        StoreError::NotFound(format!(
            "channel {channel:?} is not configured or is disabled: its orders cannot be ingested"
        ))
    })?;
    // Re-deliveries are the common case (every poll overlaps the last). remote_updated_at only
    // grows, so a delivery that is stale now stays stale: answer it without the write lock.
    let stored: Option<(String, i64)> = sqlx::query_as(
        "SELECT status, remote_updated_at FROM orders WHERE channel = $1 AND external_id = $2",
    )
    .bind(channel)
    .bind(order.external_id.as_str())
    .fetch_optional(store.pool())
    .await?;
    if let Some((status, at)) = stored
        && !supersedes(order, &status, at)
    {
        debug!(
            delivered = order.remote_updated_at_ms,
            stored = at,
            "Stale order delivery."
        );
        return Ok(stale(order, parse_status(&status, order)?));
    }
    let mut tx = store.write().await?;
    let out = ingest_in(store, &mut tx, plan, ch, order).await?;
    if out.disposition == Disposition::Stale {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    log_outcome(&out);
    Ok(out)
}

/// Whether `order` must be applied over the stored delivery (status `stored_status`, channel time
/// `stored_at`): when it is newer, or equally new with a status further along the lifecycle
/// (pending, then paid, then shipped or cancelled, then returned). Marketplaces stamp orders to the
/// second (Shopify `updatedAt`, WooCommerce `date_modified_gmt`, Meta `last_updated`): an order
/// paid and cancelled within one second shows the same time in both states, and a poll that read
/// the first state must not make the second look like a replay. An order never goes back along
/// the lifecycle, so of two states with one time the later stage is the newer one; the same or an
/// earlier stage at the same time is a replay.
pub fn supersedes(order: &ChannelOrder, stored_status: &str, stored_at: i64) -> bool {
    match order.remote_updated_at_ms.cmp(&stored_at) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => OrderStatus::parse(stored_status)
            .is_some_and(|stored| stage(order.status) > stage(stored)),
    }
}

/// How far along its lifecycle an order with this status is.
fn stage(s: OrderStatus) -> u8 {
    match s {
        OrderStatus::Pending => 0,
        OrderStatus::Paid => 1,
        OrderStatus::Shipped | OrderStatus::Cancelled => 2,
        OrderStatus::Returned => 3,
    }
}

/// [`ingest`], run again (after a jittered, growing pause) while it fails with a retriable error,
/// at most [`RETRY_ATTEMPTS`] times. Each attempt is a whole transaction, so nothing half-applied
/// is ever retried on top of.
pub async fn ingest_retrying(
    store: &Store,
    plan: &SyncPlan,
    channel: &str,
    order: &ChannelOrder,
) -> Result<IngestOutcome, StoreError> {
    let mut attempt = 1;
    loop {
        match ingest(store, plan, channel, order).await {
            Err(e) if e.is_retriable() && attempt < RETRY_ATTEMPTS => {
                let pause = backoff(attempt);
                debug!(channel, order = %order.external_id, attempt, error = %e, ?pause,
                    "Order ingest hit a transient database error; retrying.");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

/// Ingests a page of orders, each in its own transaction with [`ingest_retrying`], in page order.
/// A failed order does not stop the page: it is listed in [`BatchOutcome::failed`] (nothing of it
/// applied) and a poller should not move its cursor past it.
pub async fn ingest_batch(
    store: &Store,
    plan: &SyncPlan,
    channel: &str,
    orders: &[ChannelOrder],
) -> BatchOutcome {
    let mut out = BatchOutcome::default();
    let mut touched = BTreeSet::new();
    for order in orders {
        match ingest_retrying(store, plan, channel, order).await {
            Ok(o) => {
                match o.disposition {
                    Disposition::New => out.new += 1,
                    Disposition::Applied { .. } => out.applied += 1,
                    Disposition::Stale => out.stale += 1,
                    Disposition::Ignored { .. } => out.ignored += 1,
                }
                out.lines += o.lines;
                out.listings_changed += o.listings_changed;
                touched.extend(o.touched_skus);
            }
            Err(e) => {
                warn!(channel, order = %order.external_id, error = %e,
                    "Order not ingested; it will be fetched again by the next poll.");
                out.failed.push((order.external_id.clone(), e));
            }
        }
    }
    out.touched_skus = touched.into_iter().collect();
    out
}

fn backoff(attempt: u32) -> Duration {
    let cap = RETRY_BASE_DELAY
        .saturating_mul(1 << attempt.min(16))
        .min(RETRY_MAX_DELAY);
    // Full jitter, so the losers of one deadlock do not collide again in step. The clock's
    // nanoseconds are random enough for spreading retries; no RNG dependency needed.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    cap.mul_f64(f64::from(nanos) / 1e9)
}

fn stale(order: &ChannelOrder, status: OrderStatus) -> IngestOutcome {
    IngestOutcome {
        external_id: order.external_id.clone(),
        disposition: Disposition::Stale,
        status,
        lines: LineCounts::default(),
        touched_skus: Vec::new(),
        listings_changed: 0,
    }
}

fn parse_status(s: &str, order: &ChannelOrder) -> Result<OrderStatus, StoreError> {
    OrderStatus::parse(s).ok_or_else(|| {
        StoreError::Conflict(format!(
            "order {} is stored with status {s:?}, which this version does not know",
            order.external_id
        ))
    })
}

fn log_outcome(o: &IngestOutcome) {
    let l = &o.lines;
    match o.disposition {
        Disposition::Stale => {}
        Disposition::Ignored { reason } => {
            info!(status = o.status.as_str(), reason, "Order update ignored.");
        }
        Disposition::New | Disposition::Applied { .. } => {
            let from = match o.disposition {
                Disposition::Applied { from } => from.as_str(),
                _ => "new",
            };
            info!(
                from,
                status = o.status.as_str(),
                reserved = l.reserved,
                shipped = l.shipped,
                released = l.released,
                restocked = l.restocked,
                oversold = l.oversold,
                unknown_sku = l.unknown_sku,
                external = l.external,
                listings = o.listings_changed,
                "Ingested order."
            );
        }
    }
}

/// One order line while it is being processed.
#[derive(Debug)]
struct Line {
    line_id: String,
    sku: String,
    qty: i64,
    unit_price_minor: Option<i64>,
    /// The state in the database; `None` when the line is not recorded yet.
    stored: Option<LineState>,
    /// The working state; `None` for a line of a known SKU that has not been processed yet.
    state: Option<LineState>,
    /// Stocked SKUs and units the line needs (a bundle's components); empty when unknown/external.
    needs: Vec<(String, i64)>,
    is_bundle: bool,
    step: LineStep,
}

/// A ledger row of an earlier step of a line.
#[derive(Debug, Clone)]
struct Piece {
    sku: String,
    location: String,
    delta_on_hand: i64,
    delta_reserved: i64,
}

/// The transaction and what the steps share while processing one order.
struct Ctx<'a> {
    store: &'a Store,
    tx: &'a mut Tx,
    channel: &'a ChannelPlan,
    order_ref: String,
    /// Every location id, for the exact keys of a line's earlier steps (loaded when needed).
    locations: Option<Vec<String>>,
    /// Every ledger row of this order (loaded when a bundle line needs its earlier steps).
    order_ledger: Option<Vec<(String, Piece)>>,
    touched: BTreeSet<String>,
}

async fn ingest_in(
    store: &Store,
    tx: &mut Tx,
    plan: &SyncPlan,
    ch: &ChannelPlan,
    order: &ChannelOrder,
) -> Result<IngestOutcome, StoreError> {
    let now = now_ms();
    let total = order.total.as_ref().map(|m| m.minor);
    let currency = order.total.as_ref().map(|m| m.currency.as_str().to_owned());
    let fba = i64::from(order.fulfilled_by_channel);
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO orders (channel, external_id, status, placed_at, remote_updated_at, total_minor, currency, \
         buyer_ref, fulfilled_by_channel, ingested_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (channel, external_id) DO NOTHING RETURNING id",
    )
    .bind(ch.id.as_str())
    .bind(order.external_id.as_str())
    .bind(order.status.as_str())
    .bind(order.placed_at_ms)
    .bind(order.remote_updated_at_ms)
    .bind(total)
    .bind(currency.as_deref())
    .bind(order.buyer_ref.as_deref())
    .bind(fba)
    .bind(now)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    let (order_id, stored) = match inserted {
        Some(id) => (id, None),
        None => {
            // Locked, so a concurrent delivery of the same order waits for this one and then sees
            // its timestamp (PostgreSQL; SQLite has one writer anyway).
            let sql = format!(
                "SELECT id, status, remote_updated_at FROM orders WHERE channel = $1 AND external_id = $2{}",
                store.for_update()
            );
            let (id, status, at): (i64, String, i64) = sqlx::query_as(AssertSqlSafe(sql))
                .bind(ch.id.as_str())
                .bind(order.external_id.as_str())
                .fetch_one(&mut **tx)
                .await?;
            if !supersedes(order, &status, at) {
                return Ok(stale(order, parse_status(&status, order)?));
            }
            let status = parse_status(&status, order)?;
            (id, Some(status))
        }
    };
    let (status, action) = match decide(stored, order.status) {
        Move::Ignore { reason } => {
            sqlx::query("UPDATE orders SET remote_updated_at = $1, updated_at = $2 WHERE id = $3")
                .bind(order.remote_updated_at_ms)
                .bind(now)
                .bind(order_id)
                .execute(&mut **tx)
                .await?;
            return Ok(IngestOutcome {
                disposition: Disposition::Ignored { reason },
                ..stale(order, stored.unwrap_or(order.status))
            });
        }
        Move::Apply { status, action } => (status, action),
    };
    if stored.is_some() {
        sqlx::query(
            "UPDATE orders SET status = $1, remote_updated_at = $2, total_minor = COALESCE($3, total_minor), \
             currency = COALESCE($4, currency), buyer_ref = COALESCE($5, buyer_ref), fulfilled_by_channel = $6, \
             updated_at = $7 WHERE id = $8",
        )
        .bind(status.as_str())
        .bind(order.remote_updated_at_ms)
        .bind(total)
        .bind(currency.as_deref())
        .bind(order.buyer_ref.as_deref())
        .bind(fba)
        .bind(now)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    }

    let mut lines = merge_lines(tx, order_id, order).await?;
    classify(tx, &mut lines, order.fulfilled_by_channel, action).await?;

    let mut ctx = Ctx {
        store,
        tx,
        channel: ch,
        order_ref: keys::order_ref(&ch.id, &order.external_id),
        locations: None,
        order_ledger: None,
        touched: BTreeSet::new(),
    };
    // Lock every SKU a step may move (and the bundles built from them, which recompute locks too)
    // once, in sorted order, before reading any level: the reads below are the "compare" of the
    // compare-and-set and must not go stale before the write. Steps that undo an earlier step move
    // what the ledger names, which for a bundle redefined since is not what the catalog says now.
    let mut moving: BTreeSet<String> = BTreeSet::new();
    for l in &lines {
        match l.step {
            LineStep::Keep | LineStep::MarkReleased => {}
            LineStep::Reserve | LineStep::ShipDirect => {
                moving.extend(l.needs.iter().map(|(s, _)| s.clone()));
            }
            LineStep::ShipReserved | LineStep::ReleaseReserved | LineStep::Restock => {
                moving.extend(l.needs.iter().map(|(s, _)| s.clone()));
                if l.is_bundle {
                    let line_ref = keys::line_ref(&ch.id, &order.external_id, &l.line_id);
                    let earlier = if l.step == LineStep::Restock {
                        Step::Ship
                    } else {
                        Step::Reserve
                    };
                    let pieces = done(&mut ctx, &line_ref, l, earlier).await?;
                    moving.extend(pieces.into_iter().map(|p| p.sku));
                }
            }
        }
    }
    let moving: Vec<String> = moving.into_iter().collect();
    let mut lock = moving.clone();
    lock.extend(bundles_containing(ctx.tx, &moving).await?);
    store.lock_skus(ctx.tx, &lock).await?;

    let mut counts = LineCounts::default();
    for line in &mut lines {
        run_step(&mut ctx, &order.external_id, line, &mut counts).await?;
    }
    let Ctx { tx, touched, .. } = ctx;
    write_lines(tx, order_id, &lines).await?;
    for l in &lines {
        match l.state {
            Some(LineState::Oversold) => counts.oversold += 1,
            Some(LineState::UnknownSku) => counts.unknown_sku += 1,
            Some(LineState::External) => counts.external += 1,
            _ => {}
        }
    }
    let touched: Vec<String> = touched.into_iter().collect();
    let stats = crate::sync::recompute(store, tx, plan, &touched).await?;
    if !order.fulfilled_by_channel {
        let listed: BTreeSet<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
        repush_listings(tx, &ch.id, &listed.into_iter().collect::<Vec<_>>()).await?;
    }
    Ok(IngestOutcome {
        external_id: order.external_id.clone(),
        disposition: match stored {
            None => Disposition::New,
            Some(from) => Disposition::Applied { from },
        },
        status,
        lines: counts,
        touched_skus: touched,
        listings_changed: stats.changed,
    })
}

/// Marks the ordering channel's listings of `skus` for a push of their absolute value, even when
/// what they should show did not change. The marketplace moved its own quantity for the order —
/// a sale lowers it; a cancellation gives the units back on some marketplaces and not on others
/// (eBay) — so what it shows may no longer be what was pushed, and a recompute that changed
/// nothing would leave it so until the next reconcile: an order first seen cancelled (nothing
/// moved here, the sale still counted there), an oversold line, a stock count that made up for the
/// sale. Rows with a push pending are left alone: that push sends the latest value anyway.
async fn repush_listings(tx: &mut Tx, channel: &str, skus: &[&str]) -> Result<(), StoreError> {
    let now = now_ms();
    for chunk in skus.chunks(IN_CHUNK) {
        let sql = format!(
            "UPDATE channel_items SET desired_version = desired_version + 1, updated_at = $2 \
             WHERE channel = $1 AND desired_version <= pushed_version AND sku IN ({})",
            placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(channel).bind(now);
        for s in chunk {
            q = q.bind(*s);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The delivered lines (in delivery order, each with its stored state when recorded before), then
/// recorded lines this delivery no longer lists.
async fn merge_lines(
    tx: &mut Tx,
    order_id: i64,
    order: &ChannelOrder,
) -> Result<Vec<Line>, StoreError> {
    let rows: Vec<(String, String, i64, Option<i64>, String)> = sqlx::query_as(
        "SELECT line_id, sku, qty, unit_price_minor, state FROM order_lines WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut recorded: BTreeMap<String, Line> = BTreeMap::new();
    for (line_id, sku, qty, unit_price_minor, state) in rows {
        let state = LineState::parse(&state).ok_or_else(|| {
            StoreError::Conflict(format!(
                "order {} line {line_id} is stored with state {state:?}, which this version does not know",
                order.external_id
            ))
        })?;
        recorded.insert(
            line_id.clone(),
            Line {
                line_id,
                sku,
                qty,
                unit_price_minor,
                stored: Some(state),
                state: Some(state),
                needs: Vec::new(),
                is_bundle: false,
                step: LineStep::Keep,
            },
        );
    }
    let mut lines = Vec::with_capacity(order.lines.len() + recorded.len());
    let mut seen = HashSet::new();
    for l in &order.lines {
        if l.quantity == 0 {
            continue;
        }
        if !seen.insert(l.line_id.as_str()) {
            warn!(line = %l.line_id, "Order lists the same line id twice; the first one counts.");
            continue;
        }
        let qty = i64::from(l.quantity);
        match recorded.remove(&l.line_id) {
            Some(r) => {
                if r.qty != qty || r.sku != l.sku.as_str() {
                    warn!(line = %l.line_id, recorded_sku = %r.sku, recorded_qty = r.qty,
                        delivered_sku = %l.sku, delivered_qty = qty,
                        "Order line changed after it was first seen; keeping what was recorded.");
                }
                lines.push(r);
            }
            None => lines.push(Line {
                line_id: l.line_id.clone(),
                sku: l.sku.as_str().to_owned(),
                qty,
                unit_price_minor: l.unit_price.as_ref().map(|m| m.minor),
                stored: None,
                state: None,
                needs: Vec::new(),
                is_bundle: false,
                step: LineStep::Keep,
            }),
        }
    }
    lines.extend(recorded.into_values());
    Ok(lines)
}

/// Works out each line's kind, the stocked units it needs and its step under `action`.
async fn classify(
    tx: &mut Tx,
    lines: &mut [Line],
    fulfilled_by_channel: bool,
    action: Action,
) -> Result<(), StoreError> {
    for line in lines {
        if line.stored.is_none() && fulfilled_by_channel {
            line.state = Some(LineState::External);
        }
        if line.state == Some(LineState::External) {
            continue;
        }
        match sku_kind(tx, &line.sku).await? {
            SkuKind::Unknown => {
                if line.stored.is_none() {
                    warn!(line = %line.line_id, sku = %line.sku,
                        "Order line names a SKU that is not in the catalog; recorded, no stock moved.");
                }
                if matches!(line.state, None | Some(LineState::UnknownSku)) {
                    line.state = Some(LineState::UnknownSku);
                }
                continue;
            }
            SkuKind::Variant => line.needs = vec![(line.sku.clone(), line.qty)],
            SkuKind::Bundle => {
                line.is_bundle = true;
                let comps: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT component_sku, qty FROM bundles WHERE bundle_sku = $1 ORDER BY component_sku",
                )
                .bind(line.sku.as_str())
                .fetch_all(&mut **tx)
                .await?;
                line.needs = comps
                    .into_iter()
                    .map(|(c, q)| {
                        q.checked_mul(line.qty).map(|n| (c, n)).ok_or_else(|| {
                            StoreError::Conflict(format!(
                                "{} × {q} units of {} overflows",
                                line.qty, line.sku
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
        }
        if line.state == Some(LineState::UnknownSku) {
            // Imported since: the line is processed as if first seen.
            line.state = None;
        }
        line.step = line_step(action, line.state);
    }
    Ok(())
}

async fn run_step(
    ctx: &mut Ctx<'_>,
    external_id: &str,
    line: &mut Line,
    counts: &mut LineCounts,
) -> Result<(), StoreError> {
    let line_ref = keys::line_ref(&ctx.channel.id, external_id, &line.line_id);
    match line.step {
        LineStep::Keep => {}
        LineStep::Reserve => match take(ctx, &line.needs).await? {
            Some(pieces) => {
                for (sku, location, n) in &pieces {
                    record(ctx, &line_ref, Step::Reserve, sku, location, 0, *n, line).await?;
                }
                line.state = Some(LineState::Open);
                counts.reserved += 1;
            }
            None => oversold(line, "reserve"),
        },
        LineStep::ShipDirect => match take(ctx, &line.needs).await? {
            Some(pieces) => {
                for (sku, location, n) in &pieces {
                    record(ctx, &line_ref, Step::Ship, sku, location, -n, 0, line).await?;
                }
                line.state = Some(LineState::Shipped);
                counts.shipped += 1;
            }
            None => oversold(line, "ship"),
        },
        LineStep::ShipReserved => {
            for p in done(ctx, &line_ref, line, Step::Reserve).await? {
                let (on_hand, _) = stock_at(ctx.store, ctx.tx, &p.sku, &p.location).await?;
                // The reservation promised these units; if the shelf was counted down below it since,
                // the shipment takes what is there rather than driving on_hand negative.
                let off = p.delta_reserved.min(on_hand.max(0));
                if off < p.delta_reserved {
                    warn!(line = %line.line_id, sku = %p.sku, location = %p.location,
                        reserved = p.delta_reserved, on_hand,
                        "Shipped more than was on hand; on hand stops at zero. Count this SKU.");
                }
                record(
                    ctx,
                    &line_ref,
                    Step::Ship,
                    &p.sku,
                    &p.location,
                    -off,
                    -p.delta_reserved,
                    line,
                )
                .await?;
            }
            line.state = Some(LineState::Shipped);
            counts.shipped += 1;
        }
        LineStep::ReleaseReserved => {
            for p in done(ctx, &line_ref, line, Step::Reserve).await? {
                record(
                    ctx,
                    &line_ref,
                    Step::Release,
                    &p.sku,
                    &p.location,
                    0,
                    -p.delta_reserved,
                    line,
                )
                .await?;
            }
            line.state = Some(LineState::Released);
            counts.released += 1;
        }
        LineStep::MarkReleased => {
            line.state = Some(LineState::Released);
            counts.released += 1;
        }
        LineStep::Restock => {
            for p in done(ctx, &line_ref, line, Step::Ship).await? {
                if p.delta_on_hand < 0 {
                    record(
                        ctx,
                        &line_ref,
                        Step::Return,
                        &p.sku,
                        &p.location,
                        -p.delta_on_hand,
                        0,
                        line,
                    )
                    .await?;
                }
            }
            line.state = Some(LineState::Returned);
            counts.restocked += 1;
        }
    }
    Ok(())
}

fn oversold(line: &mut Line, what: &str) {
    if line.state != Some(LineState::Oversold) {
        error!(line = %line.line_id, sku = %line.sku, qty = line.qty, step = what,
            "Order line oversold: the channel's locations do not have the units. Cancel it or add stock.");
    }
    line.state = Some(LineState::Oversold);
}

/// Splits `needs` over the channel's locations (in its order) by available units (on_hand −
/// reserved, read under the SKU locks). `None` when any SKU falls short: all or nothing.
async fn take(
    ctx: &mut Ctx<'_>,
    needs: &[(String, i64)],
) -> Result<Option<Vec<(String, String, i64)>>, StoreError> {
    if needs.is_empty() {
        // A bundle without components has nothing to give.
        return Ok(None);
    }
    let mut locations: Vec<&str> = Vec::with_capacity(ctx.channel.locations.len());
    for l in &ctx.channel.locations {
        // A location listed twice would count its stock twice.
        if !locations.contains(&l.as_str()) {
            locations.push(l.as_str());
        }
    }
    let mut pieces = Vec::new();
    for (sku, need) in needs {
        let mut left = *need;
        for loc in &locations {
            if left == 0 {
                break;
            }
            let (on_hand, reserved) = stock_at(ctx.store, ctx.tx, sku, loc).await?;
            let n = (on_hand - reserved).max(0).min(left);
            if n > 0 {
                pieces.push((sku.clone(), (*loc).to_owned(), n));
                left -= n;
            }
        }
        if left > 0 {
            return Ok(None);
        }
    }
    Ok(Some(pieces))
}

/// The ledger rows of an earlier `step` of `line`. Exact keys (the unique index) for a plain SKU;
/// for a bundle, the order's rows filtered to the line, because its components may have changed
/// since and the rows, not the catalog, say what to undo.
async fn done(
    ctx: &mut Ctx<'_>,
    line_ref: &str,
    line: &Line,
    step: Step,
) -> Result<Vec<Piece>, StoreError> {
    let pieces = if line.is_bundle {
        if ctx.order_ledger.is_none() {
            let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
                "SELECT idempotency_key, sku, location, delta_on_hand, delta_reserved FROM stock_movements \
                 WHERE order_ref = $1 ORDER BY id",
            )
            .bind(ctx.order_ref.as_str())
            .fetch_all(&mut **ctx.tx)
            .await?;
            ctx.order_ledger = Some(
                rows.into_iter()
                    .map(|(k, sku, location, delta_on_hand, delta_reserved)| {
                        let p = Piece {
                            sku,
                            location,
                            delta_on_hand,
                            delta_reserved,
                        };
                        (k, p)
                    })
                    .collect(),
            );
        }
        ctx.order_ledger
            .as_ref()
            .into_iter()
            .flatten()
            .filter(|(k, _)| keys::split_key(k) == Some((line_ref, step.as_str())))
            .map(|(_, p)| p.clone())
            .collect()
    } else {
        if ctx.locations.is_none() {
            ctx.locations = Some(
                sqlx::query_scalar("SELECT id FROM locations ORDER BY id")
                    .fetch_all(&mut **ctx.tx)
                    .await?,
            );
        }
        let wanted: Vec<String> = ctx
            .locations
            .iter()
            .flatten()
            .map(|loc| keys::movement_key(line_ref, step, &line.sku, loc))
            .collect();
        let mut pieces = Vec::new();
        for chunk in wanted.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT sku, location, delta_on_hand, delta_reserved FROM stock_movements \
                 WHERE idempotency_key IN ({}) ORDER BY id",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query_as::<_, (String, String, i64, i64)>(AssertSqlSafe(sql));
            for k in chunk {
                q = q.bind(k.as_str());
            }
            for (sku, location, delta_on_hand, delta_reserved) in q.fetch_all(&mut **ctx.tx).await?
            {
                pieces.push(Piece {
                    sku,
                    location,
                    delta_on_hand,
                    delta_reserved,
                });
            }
        }
        pieces
    };
    if pieces.is_empty() {
        // The line's state says the step happened; the ledger has no trace of it. Moving on would
        // ship or release units nobody holds: refuse, so the order shows up as failed.
        return Err(StoreError::Conflict(format!(
            "order line {line_ref} is {} but the ledger has no {} rows for it",
            line.state.map(LineState::as_str).unwrap_or("new"),
            step.as_str()
        )));
    }
    Ok(pieces)
}

/// Writes one ledger row (and its stock change) for `line`; its key must be unused.
#[allow(clippy::too_many_arguments)]
async fn record(
    ctx: &mut Ctx<'_>,
    line_ref: &str,
    step: Step,
    sku: &str,
    location: &str,
    delta_on_hand: i64,
    delta_reserved: i64,
    line: &Line,
) -> Result<(), StoreError> {
    let key = keys::movement_key(line_ref, step, sku, location);
    let m = Movement {
        sku,
        location,
        delta_on_hand,
        delta_reserved,
        reason: step.reason(),
        idempotency_key: &key,
        order_ref: Some(ctx.order_ref.as_str()),
    };
    if !apply_checked(ctx.tx, &m).await? {
        // The line's state said this step had not happened, yet its key is taken: the order's
        // lines and the ledger disagree. Roll everything back rather than guess.
        return Err(StoreError::Conflict(format!(
            "ledger key {key} is already used although line {} is {}; nothing was applied",
            line.line_id,
            line.state.map(LineState::as_str).unwrap_or("new")
        )));
    }
    ctx.touched.insert(sku.to_owned());
    Ok(())
}

/// The ledger row and the level change of one order move, in one statement pair like
/// [`crate::catalog::apply_movement`], with the predicate of the compare-and-set in the `UPDATE`:
/// the level changes only if on_hand and reserved stay ≥ 0 and, when the move lowers what is
/// available (reserving, shipping without a reservation), available stays ≥ 0. The reads under the
/// SKU locks already make that true; the predicate makes a locking mistake fail loudly (the whole
/// order rolls back) instead of overselling. Returns false, changing nothing, when the key is used.
///
/// It updates the existing level row rather than upserting: `apply_movement` puts the delta itself
/// in its `INSERT … VALUES`, which `CHECK (reserved >= 0)` refuses before the conflict clause is
/// reached, so it cannot take a reservation back. Order moves never need to create a level row
/// (reserving or shipping from a missing row finds nothing available; releases and returns follow
/// earlier moves on the same row).
async fn apply_checked(tx: &mut Tx, m: &Movement<'_>) -> Result<bool, StoreError> {
    if !insert_ledger_row(tx, m).await? {
        return Ok(false);
    }
    let available_change = m.delta_on_hand - m.delta_reserved;
    let updated = sqlx::query(
        "UPDATE stock_levels SET on_hand = on_hand + $1, reserved = reserved + $2, version = version + 1 \
         WHERE sku = $3 AND location = $4 AND on_hand + $5 >= 0 AND reserved + $6 >= 0 \
         AND ($7 >= 0 OR on_hand - reserved + $8 >= 0)",
    )
    .bind(m.delta_on_hand)
    .bind(m.delta_reserved)
    .bind(m.sku)
    .bind(m.location)
    .bind(m.delta_on_hand)
    .bind(m.delta_reserved)
    .bind(available_change)
    .bind(available_change)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Err(StoreError::Conflict(format!(
            "{} at {}: movement {} (on hand {:+}, reserved {:+}) would take stock below zero or \
             reserve more than is available; nothing was applied",
            m.sku, m.location, m.idempotency_key, m.delta_on_hand, m.delta_reserved
        )));
    }
    Ok(true)
}

async fn write_lines(tx: &mut Tx, order_id: i64, lines: &[Line]) -> Result<(), StoreError> {
    for l in lines {
        // Every path above leaves a state; a line without one would be a bug, recorded as oversold
        // (visible) rather than dropped.
        let state = l.state.unwrap_or(LineState::Oversold);
        let reserved = if state == LineState::Open { l.qty } else { 0 };
        match l.stored {
            None => {
                sqlx::query(
                    "INSERT INTO order_lines (order_id, line_id, sku, qty, unit_price_minor, state, reserved_qty) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(order_id)
                .bind(l.line_id.as_str())
                .bind(l.sku.as_str())
                .bind(l.qty)
                .bind(l.unit_price_minor)
                .bind(state.as_str())
                .bind(reserved)
                .execute(&mut **tx)
                .await?;
            }
            Some(before) if before != state => {
                sqlx::query(
                    "UPDATE order_lines SET state = $1, reserved_qty = $2 WHERE order_id = $3 AND line_id = $4",
                )
                .bind(state.as_str())
                .bind(reserved)
                .bind(order_id)
                .bind(l.line_id.as_str())
                .execute(&mut **tx)
                .await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}
