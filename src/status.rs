//! Per-channel health read straight from the database, so `omnistock status` works whether or not
//! the daemon runs, and the daemon's `/api/status` and `/metrics` show the same numbers.

use serde::Serialize;

use crate::store::{Store, StoreError, now_ms};

/// Most quarantined items and recent events one channel lists (`status --json`, `/api/status`).
pub const LIST_MAX: usize = 100;

/// Quarantined items and recent events the text view shows per channel (the JSON lists more).
pub const TEXT_LIST_MAX: usize = 5;

/// The window of [`ChannelStatus::drift_events_24h`] and the other recent-event fields.
pub const RECENT_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// `sync_events` kinds an operator should look at: a listing found changed on the channel, a
/// listing the marketplace refused.
pub const ATTENTION_EVENT_KINDS: [&str; 2] = ["drift", "quarantined"];

/// A listing and the error the marketplace gave for it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ItemError {
    /// SKU.
    pub sku: String,
    /// The recorded error (`channel_items.last_error`).
    pub error: String,
    /// Failed attempts so far.
    pub attempts: i64,
}

/// One row of `sync_events`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SyncEvent {
    /// `drift`, `quarantined` …
    pub kind: String,
    /// The SKU, when the event concerns one.
    pub sku: Option<String>,
    /// What happened.
    pub detail: String,
    /// When (unix ms).
    pub at: i64,
}

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
    /// The SKU [`ChannelStatus::last_error`] belongs to.
    pub last_error_sku: Option<String>,
    /// Quarantined listings with the marketplace's error, by SKU, at most the reader's limit
    /// ([`LIST_MAX`] for `status --json`); [`ChannelStatus::quarantined`] has the full count.
    pub quarantined_items: Vec<ItemError>,
    /// Where the next order poll starts (before its overlap window): unix ms in the
    /// marketplace's clock, not ours.
    pub order_cursor_ms: Option<i64>,
    /// `drift` events (a reconcile found the channel showing something else) in the last 24 h.
    pub drift_events_24h: i64,
    /// `quarantined` events (the marketplace refused a listing) in the last 24 h.
    pub quarantined_events_24h: i64,
    /// The newest `drift` and `quarantined` events of the last 24 h, newest first, at most the
    /// reader's limit.
    pub recent_events: Vec<SyncEvent>,
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

/// Reads the status of `channels` (id, kind), listing up to [`LIST_MAX`] quarantined items and
/// recent events per channel.
pub async fn read(store: &Store, channels: &[(String, String)]) -> Result<Status, StoreError> {
    read_limited(store, channels, LIST_MAX).await
}

/// [`read`] with at most `list_limit` quarantined items and recent events per channel; 0 skips
/// those queries (`/metrics` needs only the counts).
pub async fn read_limited(
    store: &Store,
    channels: &[(String, String)],
    list_limit: usize,
) -> Result<Status, StoreError> {
    let now = now_ms();
    let limit = i64::try_from(list_limit).unwrap_or(i64::MAX);
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
        let newest_error: Option<(String, String)> = sqlx::query_as(
            "SELECT sku, last_error FROM channel_items WHERE channel = $1 AND last_error IS NOT NULL \
             ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
        let (last_error_sku, last_error) = newest_error.unzip();
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
        let cursor: Option<String> = sqlx::query_scalar(
            "SELECT value FROM channel_cursors WHERE channel = $1 AND kind = $2",
        )
        .bind(id)
        .bind(crate::sync::intake::CURSOR_KIND)
        .fetch_optional(store.pool())
        .await?;
        let since = now - RECENT_WINDOW_MS;
        let (drift_events, quarantined_events): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN kind = $3 THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN kind = $4 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM sync_events WHERE channel = $1 AND at >= $2 AND kind IN ($3, $4)",
        )
        .bind(id)
        .bind(since)
        .bind(ATTENTION_EVENT_KINDS[0])
        .bind(ATTENTION_EVENT_KINDS[1])
        .fetch_one(store.pool())
        .await?;
        let (quarantined_items, recent_events) = if limit > 0 {
            let items: Vec<(String, Option<String>, i64)> = sqlx::query_as(
                "SELECT sku, last_error, attempts FROM channel_items \
                 WHERE channel = $1 AND state = 'quarantined' ORDER BY sku LIMIT $2",
            )
            .bind(id)
            .bind(limit)
            .fetch_all(store.pool())
            .await?;
            let events: Vec<(String, Option<String>, String, i64)> = sqlx::query_as(
                "SELECT kind, sku, detail, at FROM sync_events \
                 WHERE channel = $1 AND at >= $2 AND kind IN ($3, $4) \
                 ORDER BY at DESC, id DESC LIMIT $5",
            )
            .bind(id)
            .bind(since)
            .bind(ATTENTION_EVENT_KINDS[0])
            .bind(ATTENTION_EVENT_KINDS[1])
            .bind(limit)
            .fetch_all(store.pool())
            .await?;
            (
                items
                    .into_iter()
                    .map(|(sku, error, attempts)| ItemError {
                        sku,
                        error: error.unwrap_or_default(),
                        attempts,
                    })
                    .collect(),
                events
                    .into_iter()
                    .map(|(kind, sku, detail, at)| SyncEvent {
                        kind,
                        sku,
                        detail,
                        at,
                    })
                    .collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
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
            last_error_sku,
            quarantined_items,
            order_cursor_ms: cursor.and_then(|v| v.parse().ok()),
            drift_events_24h: drift_events,
            quarantined_events_24h: quarantined_events,
            recent_events,
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
    format!("{} ({} ago)", utc(ms), human_secs(secs))
}

/// A unix-ms timestamp as `2026-11-23 14:05:09Z`.
pub fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_default()
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
                match &c.last_error_sku {
                    Some(sku) => writeln!(f, "  last error     {sku}: {e}")?,
                    None => writeln!(f, "  last error     {e}")?,
                }
            }
            if let Some(ms) = c.order_cursor_ms {
                writeln!(f, "  order cursor   {} (marketplace clock, {ms})", utc(ms))?;
            }
            writeln!(
                f,
                "  events 24 h    {} drift, {} quarantined",
                c.drift_events_24h, c.quarantined_events_24h
            )?;
            for ev in c.recent_events.iter().take(TEXT_LIST_MAX) {
                let sku = ev.sku.as_deref().unwrap_or("-");
                writeln!(f, "    {} {:<11} {sku}: {}", utc(ev.at), ev.kind, ev.detail)?;
            }
            if c.quarantined > 0 {
                writeln!(f, "  quarantined items")?;
                for q in c.quarantined_items.iter().take(TEXT_LIST_MAX) {
                    writeln!(f, "    {}: {} (attempts {})", q.sku, q.error, q.attempts)?;
                }
                let shown = c.quarantined_items.len().min(TEXT_LIST_MAX) as i64;
                if c.quarantined > shown {
                    writeln!(
                        f,
                        "    … and {} more (status --json lists up to {LIST_MAX})",
                        c.quarantined - shown
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("status.db").display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    async fn item(store: &Store, sku: &str, state: &str, error: Option<&str>, updated_at: i64) {
        sqlx::query(
            "INSERT INTO channel_items (channel, sku, desired_json, desired_qty, desired_price_minor, \
             desired_version, pushed_version, state, attempts, last_error, updated_at) \
             VALUES ('ebay', $1, '{}', 1, 100, 2, 1, $2, 1, $3, $4)",
        )
        .bind(sku)
        .bind(state)
        .bind(error)
        .bind(updated_at)
        .execute(store.pool())
        .await
        .unwrap();
    }

    async fn event(store: &Store, sku: &str, kind: &str, at: i64) {
        sqlx::query(
            "INSERT INTO sync_events (channel, sku, kind, detail, at) VALUES ('ebay', $1, $2, $3, $4)",
        )
        .bind(sku)
        .bind(kind)
        .bind(format!("{kind} of {sku}"))
        .bind(at)
        .execute(store.pool())
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn reads_errors_quarantine_cursor_and_recent_events() {
        let (_dir, store) = store().await;
        let now = now_ms();
        for i in 0..7 {
            item(
                &store,
                &format!("Q-{i}"),
                "quarantined",
                Some("[25002] bad"),
                now - 10_000,
            )
            .await;
        }
        item(&store, "RETRY", "active", Some("timeout"), now).await;
        event(&store, "Q-0", "quarantined", now - 1_000).await;
        event(&store, "D-1", "drift", now - 500).await;
        event(&store, "OLD", "drift", now - RECENT_WINDOW_MS - 1_000).await;
        event(&store, "N-1", "not_listed", now).await;
        sqlx::query(
            "INSERT INTO channel_cursors (channel, kind, value, updated_at) VALUES ('ebay', $1, '1700000000000', 0)",
        )
        .bind(crate::sync::intake::CURSOR_KIND)
        .execute(store.pool())
        .await
        .unwrap();

        let channels = [("ebay".to_owned(), "ebay".to_owned())];
        let s = read(&store, &channels).await.unwrap();
        let c = &s.channels[0];
        assert_eq!(c.quarantined, 7);
        assert_eq!(c.quarantined_items.len(), 7);
        assert_eq!(
            c.quarantined_items[0],
            ItemError {
                sku: "Q-0".into(),
                error: "[25002] bad".into(),
                attempts: 1
            }
        );
        assert_eq!(c.last_error.as_deref(), Some("timeout"));
        assert_eq!(c.last_error_sku.as_deref(), Some("RETRY"));
        assert_eq!(c.order_cursor_ms, Some(1_700_000_000_000));
        assert_eq!((c.drift_events_24h, c.quarantined_events_24h), (1, 1));
        let kinds: Vec<_> = c.recent_events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["drift", "quarantined"],
            "newest first, old and other kinds left out"
        );

        let text = s.to_string();
        assert!(text.contains("last error     RETRY: timeout"), "{text}");
        assert!(
            text.contains("order cursor   2023-11-14 22:13:20Z"),
            "{text}"
        );
        assert!(
            text.contains("events 24 h    1 drift, 1 quarantined"),
            "{text}"
        );
        assert!(text.contains("    Q-4: [25002] bad (attempts 1)"), "{text}");
        assert!(
            !text.contains("Q-5:"),
            "the text lists the first five: {text}"
        );
        assert!(text.contains("… and 2 more"), "{text}");

        let short = read_limited(&store, &channels, 0).await.unwrap();
        assert!(short.channels[0].quarantined_items.is_empty());
        assert!(short.channels[0].recent_events.is_empty());
        assert_eq!(short.channels[0].quarantined, 7);
        assert_eq!(short.channels[0].drift_events_24h, 1);
    }
}
