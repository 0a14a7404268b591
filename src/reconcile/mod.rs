//! Reconcile: read what a channel really shows, diff it against what it should show, repair.
//!
//! Three steps, as docs.rs does its consistency check (STYLE habit 17): load both sides
//! ([`load_desired`], [`snapshot`]), a pure [`diff`] with no I/O, then [`apply`] (or not, for a dry
//! run). Applying does not push anything itself: it marks the rows dirty (a new desired version)
//! and records the drift, and the channel's dispatcher — whoever owns the channel at that moment —
//! pushes the absolute value. Re-running is idempotent.
//!
//! Rows with a push pending (`desired_version > pushed_version`) are not compared: the channel is
//! expected to differ until the push lands. Rows confirmed *after* the snapshot started are not
//! compared either: the snapshot may predate the push.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use omnistock_connectors::{Connector, ConnectorError, ErrorClass, RemoteItem};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

use crate::store::{Store, StoreError, now_ms, placeholders};
use crate::sync::dispatch::event;
use crate::sync::recompute::Desired;

/// Snapshot pages read at most (200 items a page on eBay: 2,000,000 listings).
pub const MAX_SNAPSHOT_PAGES: usize = 10_000;

/// One row of our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRow {
    /// SKU.
    pub sku: String,
    /// What the channel should show.
    pub desired: Desired,
    /// A push is pending.
    pub dirty: bool,
    /// Confirmed at least once.
    pub pushed: bool,
    /// When the last push was confirmed (unix ms).
    pub last_pushed_at: Option<i64>,
}

/// One difference between the channel and what it should show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// We pushed it, the channel no longer lists it.
    Missing {
        /// SKU.
        sku: String,
        /// Quantity it should show.
        want_qty: i64,
    },
    /// The channel shows another quantity.
    Quantity {
        /// SKU.
        sku: String,
        /// Shown.
        remote: i64,
        /// Should show.
        want: i64,
    },
    /// The channel shows another price (minor units of `currency`).
    Price {
        /// SKU.
        sku: String,
        /// Shown.
        remote: i64,
        /// Should show.
        want: i64,
        /// Currency.
        currency: String,
    },
    /// The channel lists a SKU the catalog does not have for it (reported, never touched).
    Unknown {
        /// SKU.
        sku: String,
        /// Shown quantity.
        remote_qty: Option<i64>,
    },
}

impl Difference {
    /// The SKU concerned.
    pub fn sku(&self) -> &str {
        match self {
            Difference::Missing { sku, .. }
            | Difference::Quantity { sku, .. }
            | Difference::Price { sku, .. }
            | Difference::Unknown { sku, .. } => sku,
        }
    }

    /// True when applying it changes something (Unknown is only reported).
    pub fn is_repairable(&self) -> bool {
        !matches!(self, Difference::Unknown { .. })
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Missing { sku, want_qty } => {
                write!(
                    f,
                    "{sku}: not listed on the channel (should show {want_qty})"
                )
            }
            Difference::Quantity { sku, remote, want } => {
                write!(
                    f,
                    "{sku}: quantity {remote} on the channel, should be {want}"
                )
            }
            Difference::Price {
                sku,
                remote,
                want,
                currency,
            } => write!(
                f,
                "{sku}: price {remote} on the channel, should be {want} (minor units of {currency})"
            ),
            Difference::Unknown { sku, remote_qty } => match remote_qty {
                Some(q) => write!(
                    f,
                    "{sku}: listed on the channel ({q}) but not in the catalog"
                ),
                None => write!(f, "{sku}: listed on the channel but not in the catalog"),
            },
        }
    }
}

/// The result of comparing one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelDiff {
    /// Channel id.
    pub channel: String,
    /// Rows compared.
    pub compared: usize,
    /// Rows skipped because a push is pending or landed during the snapshot.
    pub skipped_in_flight: usize,
    /// Differences, by SKU.
    pub differences: Vec<Difference>,
}

/// The pure diff. `snapshot_started_at` excludes rows confirmed after the snapshot began.
pub fn diff(
    channel: &str,
    desired: &[DesiredRow],
    remote: &[RemoteItem],
    snapshot_started_at: i64,
    only: Option<&[String]>,
) -> ChannelDiff {
    let remote: HashMap<&str, &RemoteItem> = remote.iter().map(|r| (r.sku.as_str(), r)).collect();
    let mut out = ChannelDiff {
        channel: channel.to_owned(),
        ..ChannelDiff::default()
    };
    let mut diffs: BTreeMap<String, Difference> = BTreeMap::new();
    for row in desired {
        if row.dirty || !row.pushed || row.last_pushed_at.is_some_and(|t| t >= snapshot_started_at)
        {
            out.skipped_in_flight += 1;
            continue;
        }
        out.compared += 1;
        let Some(r) = remote.get(row.sku.as_str()) else {
            diffs.insert(
                row.sku.clone(),
                Difference::Missing {
                    sku: row.sku.clone(),
                    want_qty: row.desired.qty,
                },
            );
            continue;
        };
        if let Some(q) = r.quantity
            && i64::from(q) != row.desired.qty
        {
            diffs.insert(
                row.sku.clone(),
                Difference::Quantity {
                    sku: row.sku.clone(),
                    remote: i64::from(q),
                    want: row.desired.qty,
                },
            );
            continue;
        }
        if let Some(p) = &r.price
            && (p.minor != row.desired.price_minor || p.currency.as_str() != row.desired.currency)
        {
            diffs.insert(
                row.sku.clone(),
                Difference::Price {
                    sku: row.sku.clone(),
                    remote: p.minor,
                    want: row.desired.price_minor,
                    currency: row.desired.currency.clone(),
                },
            );
        }
    }
    let known: std::collections::HashSet<&str> = desired.iter().map(|d| d.sku.as_str()).collect();
    for (sku, r) in &remote {
        if !known.contains(sku) && only.is_none_or(|o| o.iter().any(|s| s == sku)) {
            diffs.insert(
                (*sku).to_owned(),
                Difference::Unknown {
                    sku: (*sku).to_owned(),
                    remote_qty: r.quantity.map(i64::from),
                },
            );
        }
    }
    out.differences = diffs.into_values().collect();
    out
}

/// Loads our side for `channel` (optionally only some SKUs).
pub async fn load_desired(
    store: &Store,
    channel: &str,
    only: Option<&[String]>,
) -> Result<Vec<DesiredRow>, StoreError> {
    let base = "SELECT sku, desired_json, desired_version > pushed_version, pushed_version > 0, last_pushed_at \
                FROM channel_items WHERE channel = $1";
    let mut rows = Vec::new();
    match only {
        None => {
            let mut after = String::new();
            loop {
                let sql = format!("{base} AND sku > $2 ORDER BY sku LIMIT 5000");
                let page = sqlx::query(AssertSqlSafe(sql))
                    .bind(channel)
                    .bind(&after)
                    .fetch_all(store.pool())
                    .await?;
                let Some(last) = page.last() else { break };
                after = last.try_get(0)?;
                for r in &page {
                    rows.push(read_row(r)?);
                }
            }
        }
        Some(skus) => {
            for chunk in skus.chunks(crate::store::IN_CHUNK) {
                let sql = format!("{base} AND sku IN ({})", placeholders(2, chunk.len()));
                let mut q = sqlx::query(AssertSqlSafe(sql)).bind(channel);
                for s in chunk {
                    q = q.bind(s.as_str());
                }
                for r in q.fetch_all(store.pool()).await? {
                    rows.push(read_row(&r)?);
                }
            }
        }
    }
    Ok(rows.into_iter().flatten().collect())
}

fn read_row(r: &sqlx::any::AnyRow) -> Result<Option<DesiredRow>, StoreError> {
    let json: String = r.try_get(1)?;
    let Ok(desired) = serde_json::from_str::<Desired>(&json) else {
        return Ok(None);
    };
    Ok(Some(DesiredRow {
        sku: r.try_get(0)?,
        desired,
        dirty: as_bool(r, 2)?,
        pushed: as_bool(r, 3)?,
        last_pushed_at: r.try_get(4)?,
    }))
}

/// Comparison results come back as integers on SQLite and booleans on PostgreSQL.
fn as_bool(r: &sqlx::any::AnyRow, i: usize) -> Result<bool, StoreError> {
    if let Ok(b) = r.try_get::<bool, _>(i) {
        return Ok(b);
    }
    Ok(r.try_get::<i64, _>(i)? != 0)
}

/// Reads every page of the channel's listings. A 429 waits (the connector paused its budget) and
/// the page is read again; other failures end the snapshot.
///
/// A snapshot is all or nothing: a partial one would make every listing it missed look deleted.
/// So a marketplace that hands back a page token it already gave (the same `next` forever, or a
/// cycle), or more than [`MAX_SNAPSHOT_PAGES`] pages, fails the snapshot as
/// [`ConnectorError::Malformed`] instead of looping or diffing half a catalog.
pub async fn snapshot(
    connector: &dyn Connector,
    mut on_page: impl FnMut(usize),
) -> Result<Vec<RemoteItem>, ConnectorError> {
    let mut items = Vec::new();
    let mut page: Option<String> = None;
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut pages = 0usize;
    let mut throttled = 0u32;
    let malformed = |message: String| ConnectorError::Malformed {
        status: None,
        message,
    };
    loop {
        match connector.snapshot_page(page.clone()).await {
            Ok(p) => {
                throttled = 0;
                pages += 1;
                items.extend(p.items);
                on_page(items.len());
                match p.next_page {
                    None => break,
                    Some(_) if pages >= MAX_SNAPSHOT_PAGES => {
                        return Err(malformed(format!(
                            "the listing snapshot has more than {MAX_SNAPSHOT_PAGES} pages"
                        )));
                    }
                    Some(n) if !seen.insert(n.clone()) => {
                        return Err(malformed(format!(
                            "the marketplace returned a page token it already gave (after {pages} pages); \
                             the listing snapshot would never end"
                        )));
                    }
                    Some(n) => page = Some(n),
                }
            }
            Err(e) if e.class() == ErrorClass::RateLimited && throttled < 20 => {
                throttled += 1;
                tokio::time::sleep(e.retry_after().unwrap_or(Duration::from_millis(500))).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(items)
}

/// What [`apply`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Rows marked for a push.
    pub marked: usize,
}

/// Marks the rows behind `diff`'s repairable differences dirty (and records the drift); with
/// `full`, marks every row of `only` (or of the channel) dirty whatever the diff says.
pub async fn apply(
    store: &Store,
    diff: &ChannelDiff,
    full: bool,
    only: Option<&[String]>,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    let mut tx = store.write().await?;
    let now = now_ms();
    for d in diff.differences.iter().filter(|d| d.is_repairable()) {
        // A missing listing must be sent whole again: forget what we believed was pushed.
        let forget = matches!(d, Difference::Missing { .. });
        let n = sqlx::query(
            "UPDATE channel_items SET desired_version = desired_version + 1, state = 'drift', \
             remote_seen_json = $3, attempts = 0, next_attempt_at = 0, updated_at = $4, \
             pushed_json = CASE WHEN $5 = 1 THEN NULL ELSE pushed_json END, \
             pushed_qty = CASE WHEN $5 = 1 THEN NULL ELSE pushed_qty END \
             WHERE channel = $1 AND sku = $2",
        )
        .bind(&diff.channel)
        .bind(d.sku())
        .bind(serde_json::to_string(d).unwrap_or_default())
        .bind(now)
        .bind(i64::from(forget))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            applied.marked += 1;
            event(
                &mut tx,
                &diff.channel,
                Some(d.sku()),
                "drift",
                &d.to_string(),
            )
            .await?;
        }
    }
    if full {
        let mut sql = String::from(
            "UPDATE channel_items SET desired_version = desired_version + 1, attempts = 0, \
             next_attempt_at = 0, updated_at = $2, state = CASE WHEN state = 'quarantined' THEN 'active' ELSE state END \
             WHERE channel = $1 AND desired_version <= pushed_version",
        );
        if let Some(skus) = only {
            sql.push_str(&format!(
                " AND sku IN ({})",
                placeholders(3, skus.len().max(1))
            ));
        }
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(&diff.channel)
            .bind(now);
        if let Some(skus) = only {
            if skus.is_empty() {
                q = q.bind("");
            }
            for s in skus {
                q = q.bind(s.as_str());
            }
        }
        applied.marked += q.execute(&mut *tx).await?.rows_affected() as usize;
        event(
            &mut tx,
            &diff.channel,
            None,
            "full_resync",
            "every listing marked for a push",
        )
        .await?;
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnistock_connectors::{
        Capabilities, Currency, Health, ItemOutcome, ListingUpdate, Money, OrdersPage, Sku,
        SnapshotPage, StockUpdate,
    };

    /// A marketplace whose listing pages lead to the page tokens `next[i]`, forever.
    struct Paging {
        next: Vec<Option<&'static str>>,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Connector for Paging {
        fn kind(&self) -> &'static str {
            "paging"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                max_stock_batch: 1,
                max_listing_batch: 1,
                stock_carries_price: false,
                has_orders: false,
                max_bulk_batch: 0,
            }
        }
        async fn push_stock(&self, _: &[StockUpdate]) -> Result<Vec<ItemOutcome>, ConnectorError> {
            Ok(Vec::new())
        }
        async fn push_listings(
            &self,
            _: &[ListingUpdate],
        ) -> Result<Vec<ItemOutcome>, ConnectorError> {
            Ok(Vec::new())
        }
        async fn delist(&self, _: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
            Ok(Vec::new())
        }
        async fn fetch_orders(
            &self,
            _: i64,
            _: Option<String>,
        ) -> Result<OrdersPage, ConnectorError> {
            Ok(OrdersPage::default())
        }
        async fn snapshot_page(&self, _: Option<String>) -> Result<SnapshotPage, ConnectorError> {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(SnapshotPage {
                items: vec![remote(&format!("SKU-{n}"), 1, None)],
                next_page: self.next[n.min(self.next.len() - 1)].map(str::to_owned),
            })
        }
        async fn healthcheck(&self) -> Result<Health, ConnectorError> {
            Err(ConnectorError::Timeout {
                message: "unused".into(),
            })
        }
    }

    fn paging(next: Vec<Option<&'static str>>) -> Paging {
        Paging {
            next,
            calls: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    #[tokio::test]
    async fn a_page_token_given_twice_fails_the_snapshot_instead_of_looping() {
        let ok = paging(vec![Some("a"), Some("b"), None]);
        assert_eq!(snapshot(&ok, |_| {}).await.unwrap().len(), 3);
        for next in [vec![Some("same")], vec![Some("a"), Some("b"), Some("a")]] {
            let looping = paging(next.clone());
            let err = snapshot(&looping, |_| {}).await.unwrap_err();
            assert!(
                matches!(err, ConnectorError::Malformed { .. })
                    && err.to_string().contains("already gave"),
                "{next:?}: {err}"
            );
            assert!(looping.calls.load(std::sync::atomic::Ordering::SeqCst) <= 4);
        }
    }

    fn row(sku: &str, qty: i64, dirty: bool) -> DesiredRow {
        DesiredRow {
            sku: sku.into(),
            desired: Desired {
                qty,
                price_minor: 1299,
                currency: "USD".into(),
                content: "c".into(),
            },
            dirty,
            pushed: true,
            last_pushed_at: Some(1_000),
        }
    }

    fn remote(sku: &str, qty: u32, price: Option<i64>) -> RemoteItem {
        RemoteItem {
            sku: Sku::parse(sku).unwrap(),
            external_id: None,
            quantity: Some(qty),
            price: price.map(|minor| Money {
                minor,
                currency: Currency::parse("USD").unwrap(),
            }),
        }
    }

    #[test]
    fn finds_each_kind_of_difference() {
        let desired = [
            row("A", 5, false),
            row("B", 3, false),
            row("C", 2, false),
            row("D", 9, false),
        ];
        let remote = [
            remote("A", 5, Some(1299)),
            remote("B", 7, Some(1299)),
            remote("D", 9, Some(1500)),
            remote("Z", 1, None),
        ];
        let d = diff("ebay", &desired, &remote, 2_000, None);
        assert_eq!(d.compared, 4);
        assert_eq!(
            d.differences,
            vec![
                Difference::Quantity {
                    sku: "B".into(),
                    remote: 7,
                    want: 3
                },
                Difference::Missing {
                    sku: "C".into(),
                    want_qty: 2
                },
                Difference::Price {
                    sku: "D".into(),
                    remote: 1500,
                    want: 1299,
                    currency: "USD".into()
                },
                Difference::Unknown {
                    sku: "Z".into(),
                    remote_qty: Some(1)
                },
            ]
        );
        assert_eq!(
            d.differences[0].to_string(),
            "B: quantity 7 on the channel, should be 3"
        );
    }

    #[test]
    fn in_flight_rows_are_not_drift() {
        let mut late = row("L", 1, false);
        late.last_pushed_at = Some(5_000);
        let desired = [row("P", 4, true), late];
        let remote = [remote("P", 9, None), remote("L", 0, None)];
        let d = diff("ebay", &desired, &remote, 2_000, None);
        assert_eq!(d.compared, 0);
        assert_eq!(d.skipped_in_flight, 2);
        assert!(d.differences.is_empty());
    }

    #[test]
    fn a_sku_filter_hides_unknown_listings_outside_it() {
        let d = diff(
            "ebay",
            &[row("A", 1, false)],
            &[remote("A", 1, None), remote("Z", 1, None)],
            2_000,
            Some(&["A".to_owned()]),
        );
        assert!(d.differences.is_empty());
    }
}
