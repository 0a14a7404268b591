//! Invariant I3, "reserved = Σ open order lines", checked from three independent records: the
//! lines (`order_lines.state`, `reserved_qty`), the ledger rows under each line's keys (where its
//! units sit), and `stock_levels.reserved`. A fault test runs it after every scenario; it reads the
//! whole order ledger, so it is a check, not something the daemon runs per order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use super::keys;
use crate::store::{Store, StoreError};

/// One place where reservations and open order lines disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// `stock_levels.reserved` at (SKU, location) is not what the open lines hold there.
    Location {
        /// SKU.
        sku: String,
        /// Location.
        location: String,
        /// `stock_levels.reserved`.
        reserved: i64,
        /// Σ of the open lines' ledger reservations at this place.
        open_lines: i64,
    },
    /// A line's recorded reservation disagrees with its state or with its ledger rows: an open line
    /// must hold its full quantity, any other line nothing.
    Line {
        /// Channel.
        channel: String,
        /// The channel's order id.
        external_id: String,
        /// The channel's line id.
        line_id: String,
        /// The line's state (`missing` when the ledger names a line that is not recorded).
        state: String,
        /// The line's quantity.
        qty: i64,
        /// `order_lines.reserved_qty`.
        reserved_qty: i64,
        /// Stocked units the ledger says the line holds (all SKUs and locations).
        ledger_units: i64,
        /// Stocked units it should hold: `reserved_qty` × units per line unit (bundles: Σ component
        /// quantities in the current catalog).
        expected_units: i64,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Location {
                sku,
                location,
                reserved,
                open_lines,
            } => write!(
                f,
                "{sku} at {location}: reserved {reserved}, but open order lines hold {open_lines}"
            ),
            Mismatch::Line {
                channel,
                external_id,
                line_id,
                state,
                qty,
                reserved_qty,
                ledger_units,
                expected_units,
            } => write!(
                f,
                "{channel} order {external_id} line {line_id} ({state}, qty {qty}): reserved_qty \
                 {reserved_qty}, ledger holds {ledger_units} units, expected {expected_units}"
            ),
        }
    }
}

/// A line as the check reads it.
struct LineRow {
    sku: String,
    qty: i64,
    state: String,
    reserved_qty: i64,
}

/// Checks I3; empty means every reservation is accounted for by exactly the open lines.
pub async fn reserved_matches_open_lines(store: &Store) -> Result<Vec<Mismatch>, StoreError> {
    // Net reservation per line and (SKU, location), from the rows under the lines' keys.
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT idempotency_key, sku, location, delta_reserved FROM stock_movements \
         WHERE order_ref IS NOT NULL AND delta_reserved <> 0",
    )
    .fetch_all(store.pool())
    .await?;
    let mut ledger: HashMap<String, BTreeMap<(String, String), i64>> = HashMap::new();
    for (key, sku, location, delta) in rows {
        if let Some((line_ref, _)) = keys::split_key(&key) {
            *ledger
                .entry(line_ref.to_owned())
                .or_default()
                .entry((sku, location))
                .or_default() += delta;
        }
    }
    for places in ledger.values_mut() {
        places.retain(|_, n| *n != 0);
    }
    ledger.retain(|_, places| !places.is_empty());

    // Lines that hold or claim to hold something, plus any line the ledger says holds something.
    let listed: Vec<(String, String, String, String, i64, String, i64)> = sqlx::query_as(
        "SELECT o.channel, o.external_id, l.line_id, l.sku, l.qty, l.state, l.reserved_qty \
         FROM order_lines l JOIN orders o ON o.id = l.order_id \
         WHERE l.state = 'open' OR l.reserved_qty <> 0",
    )
    .fetch_all(store.pool())
    .await?;
    let mut lines: BTreeMap<String, Option<LineRow>> = BTreeMap::new();
    for (channel, external_id, line_id, sku, qty, state, reserved_qty) in listed {
        lines.insert(
            keys::line_ref(&channel, &external_id, &line_id),
            Some(LineRow {
                sku,
                qty,
                state,
                reserved_qty,
            }),
        );
    }
    let strays: Vec<String> = ledger
        .keys()
        .filter(|r| !lines.contains_key(*r))
        .cloned()
        .collect();
    for line_ref in strays {
        let row = match keys::parse_line_ref(&line_ref) {
            Some((channel, external_id, line_id)) => {
                sqlx::query_as::<_, (String, i64, String, i64)>(
                    "SELECT l.sku, l.qty, l.state, l.reserved_qty FROM order_lines l \
                 JOIN orders o ON o.id = l.order_id \
                 WHERE o.channel = $1 AND o.external_id = $2 AND l.line_id = $3",
                )
                .bind(channel)
                .bind(external_id)
                .bind(line_id)
                .fetch_optional(store.pool())
                .await?
                .map(|(sku, qty, state, reserved_qty)| LineRow {
                    sku,
                    qty,
                    state,
                    reserved_qty,
                })
            }
            None => None,
        };
        lines.insert(line_ref, row);
    }

    let per_unit: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT bundle_sku, CAST(SUM(qty) AS BIGINT) FROM bundles GROUP BY bundle_sku",
    )
    .fetch_all(store.pool())
    .await?
    .into_iter()
    .collect();

    let mut out = Vec::new();
    let mut held: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (line_ref, row) in &lines {
        let places = ledger.get(line_ref);
        let ledger_units: i64 = places.map(|p| p.values().sum()).unwrap_or(0);
        let open = row.as_ref().is_some_and(|r| r.state == "open");
        if open && let Some(p) = places {
            for (place, n) in p {
                *held.entry(place.clone()).or_default() += n;
            }
        }
        let (state, qty, reserved_qty, expected_units) = match row {
            Some(r) => {
                let units = per_unit.get(&r.sku).copied().unwrap_or(1);
                (
                    r.state.clone(),
                    r.qty,
                    r.reserved_qty,
                    r.reserved_qty * units,
                )
            }
            None => ("missing".to_owned(), 0, 0, 0),
        };
        let want_reserved = if open { qty } else { 0 };
        if reserved_qty != want_reserved || ledger_units != expected_units {
            let (channel, external_id, line_id) =
                keys::parse_line_ref(line_ref).unwrap_or_default();
            out.push(Mismatch::Line {
                channel,
                external_id,
                line_id,
                state,
                qty,
                reserved_qty,
                ledger_units,
                expected_units,
            });
        }
    }

    let levels: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT sku, location, reserved FROM stock_levels WHERE reserved <> 0")
            .fetch_all(store.pool())
            .await?;
    let levels: BTreeMap<(String, String), i64> =
        levels.into_iter().map(|(s, l, r)| ((s, l), r)).collect();
    let places: BTreeSet<&(String, String)> = levels.keys().chain(held.keys()).collect();
    for place in places {
        let reserved = levels.get(place).copied().unwrap_or(0);
        let open_lines = held.get(place).copied().unwrap_or(0);
        if reserved != open_lines {
            out.push(Mismatch::Location {
                sku: place.0.clone(),
                location: place.1.clone(),
                reserved,
                open_lines,
            });
        }
    }
    Ok(out)
}
