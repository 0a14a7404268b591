//! Per-channel health read straight from the database, so `omnistock status` works whether or not
//! the daemon runs, and the daemon's `/api/status` and `/metrics` show the same numbers.

use serde::Serialize;

use crate::store::{Store, StoreError, now_ms};

/// One channel's sync health.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ChannelStatus {
    /// Channel id.
    pub channel: String,
    /// Marketplace type (`ebay`, …).
    pub kind: String,
    /// Listings tracked.
    pub items: i64,
    /// Listings whose desired value has not been confirmed yet.
    pub dirty: i64,
    /// Age of the oldest unconfirmed change, seconds.
    pub oldest_dirty_secs: Option<i64>,
    /// Listings the marketplace rejected; they wait for a change or a manual resync.
    pub quarantined: i64,
    /// Listings with a recorded error that will be retried.
    pub retrying: i64,
    /// When a push last succeeded (unix ms).
    pub last_push_at: Option<i64>,
    /// When orders were last polled (unix ms).
    pub last_order_poll_at: Option<i64>,
    /// The newest error message.
    pub last_error: Option<String>,
    /// Listings where the channel showed something other than what we pushed (last reconcile).
    pub drift: i64,
    /// Order lines that could not reserve stock (someone must cancel them or find the units).
    pub oversold_lines: i64,
    /// Order lines whose SKU is not in the catalog (recorded, no stock moved).
    pub unknown_sku_lines: i64,
}

/// The whole picture.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Status {
    /// Per channel, in config order.
    pub channels: Vec<ChannelStatus>,
    /// Variants in the catalog.
    pub skus: i64,
    /// Orders recorded.
    pub orders: i64,
}

/// Reads the status of `channels` (id, kind).
pub async fn read(store: &Store, channels: &[(String, String)]) -> Result<Status, StoreError> {
    let now = now_ms();
    let mut out = Status {
        channels: Vec::with_capacity(channels.len()),
        skus: sqlx::query_scalar("SELECT COUNT(*) FROM variants")
            .fetch_one(store.pool())
            .await?,
        orders: sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(store.pool())
            .await?,
    };
    for (id, kind) in channels {
        let (items, dirty, oldest, quarantined, retrying, last_push, drift): (
            i64,
            i64,
            Option<i64>,
            i64,
            i64,
            Option<i64>,
            i64,
        ) = sqlx::query_as(
            "SELECT COUNT(*), \
             CAST(COALESCE(SUM(CASE WHEN desired_version > pushed_version THEN 1 ELSE 0 END), 0) AS BIGINT), \
             MIN(CASE WHEN desired_version > pushed_version THEN updated_at END), \
             CAST(COALESCE(SUM(CASE WHEN state = 'quarantined' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN state <> 'quarantined' AND last_error IS NOT NULL AND desired_version > pushed_version THEN 1 ELSE 0 END), 0) AS BIGINT), \
             MAX(last_pushed_at), \
             CAST(COALESCE(SUM(CASE WHEN state = 'drift' THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM channel_items WHERE channel = $1",
        )
        .bind(id)
        .fetch_one(store.pool())
        .await?;
        let last_error: Option<String> = sqlx::query_scalar(
            "SELECT last_error FROM channel_items WHERE channel = $1 AND last_error IS NOT NULL \
             ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(store.pool())
        .await?
        .flatten();
        let last_poll: Option<String> = sqlx::query_scalar(
            "SELECT value FROM channel_cursors WHERE channel = $1 AND kind = 'orders_polled_at'",
        )
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
        let (oversold, unknown_sku): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN l.state = 'oversold' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN l.state = 'unknown_sku' THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM order_lines l JOIN orders o ON o.id = l.order_id \
             WHERE o.channel = $1 AND l.state IN ('oversold', 'unknown_sku')",
        )
        .bind(id)
        .fetch_one(store.pool())
        .await?;
        out.channels.push(ChannelStatus {
            channel: id.clone(),
            kind: kind.clone(),
            items,
            dirty,
            oldest_dirty_secs: oldest.map(|t| ((now - t) / 1000).max(0)),
            quarantined,
            retrying,
            last_push_at: last_push,
            last_order_poll_at: last_poll.and_then(|v| v.parse().ok()),
            last_error,
            drift,
            oversold_lines: oversold,
            unknown_sku_lines: unknown_sku,
        });
    }
    Ok(out)
}

/// A unix-ms timestamp as `2026-11-23 14:05:09Z (3m ago)`, or `never`.
pub fn ago(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "never".to_owned();
    };
    let secs = ((now_ms() - ms) / 1000).max(0);
    let when = chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_default();
    format!("{when} ({} ago)", human_secs(secs))
}

/// `95` → `1m35s`.
pub fn human_secs(s: i64) -> String {
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "catalog: {} SKUs, {} orders recorded",
            self.skus, self.orders
        )?;
        if self.channels.is_empty() {
            return write!(f, "no channels configured");
        }
        for c in &self.channels {
            writeln!(f, "\n{} ({})", c.channel, c.kind)?;
            writeln!(f, "  listings       {}", c.items)?;
            let oldest = c
                .oldest_dirty_secs
                .map(|s| format!(", oldest {}", human_secs(s)))
                .unwrap_or_default();
            writeln!(f, "  waiting push   {}{oldest}", c.dirty)?;
            writeln!(f, "  retrying       {}", c.retrying)?;
            writeln!(f, "  quarantined    {}", c.quarantined)?;
            writeln!(f, "  drift          {}", c.drift)?;
            writeln!(f, "  oversold lines {}", c.oversold_lines)?;
            writeln!(f, "  unknown SKUs   {} order lines", c.unknown_sku_lines)?;
            writeln!(f, "  last push      {}", ago(c.last_push_at))?;
            writeln!(f, "  last order poll {}", ago(c.last_order_poll_at))?;
            if let Some(e) = &c.last_error {
                writeln!(f, "  last error     {e}")?;
            }
        }
        Ok(())
    }
}
