//! Instances sharing one database, and poll hints between them.
//!
//! Every daemon heartbeats a row in `instances`; an instance is *live* while its heartbeat is
//! younger than the lease lifetime. The engine reads the live count to decide its fair share of
//! channel leases (`ceil(channels / live)`), so a second daemon started against the same
//! PostgreSQL takes over about half the channels within one renewal period, and the survivors of
//! a crash take the dead one's channels once its leases expire.
//!
//! `poll_requests` carries "poll now" hints (webhooks) from an instance that received them to the
//! one that owns the channel.

use std::time::Duration;

use super::{Store, StoreError, now_ms};

/// One live instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instance {
    /// Its owner id (`daemon@host:pid:rand`).
    pub owner: String,
    /// When it started (unix ms).
    pub started_at: i64,
    /// Its last heartbeat (unix ms).
    pub heartbeat_at: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Records that `owner` is alive now.
pub async fn heartbeat(store: &Store, owner: &str, started_at: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO instances (owner, started_at, heartbeat_at) VALUES ($1, $2, $3) \
         ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
    )
    .bind(owner)
    .bind(started_at)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Instances whose heartbeat is younger than `window`, oldest first.
pub async fn live(store: &Store, window: Duration) -> Result<Vec<Instance>, StoreError> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT owner, started_at, heartbeat_at FROM instances WHERE heartbeat_at > $1 \
         ORDER BY started_at, owner",
    )
    .bind(now_ms() - ms(window))
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(owner, started_at, heartbeat_at)| Instance {
            owner,
            started_at,
            heartbeat_at,
        })
        .collect())
}

/// Removes `owner`'s row (clean shutdown).
pub async fn leave(store: &Store, owner: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM instances WHERE owner = $1")
        .bind(owner)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Deletes rows of instances silent for longer than `stale`.
pub async fn prune(store: &Store, stale: Duration) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
        .bind(now_ms() - ms(stale))
        .execute(store.pool())
        .await?
        .rows_affected())
}

/// Asks whichever instance owns `channel` to poll its orders now.
pub async fn request_poll(store: &Store, channel: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO poll_requests (channel, requested_at) VALUES ($1, $2) \
         ON CONFLICT (channel) DO UPDATE SET requested_at = excluded.requested_at",
    )
    .bind(channel)
    .bind(now_ms())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// When a poll of `channel` was last requested (unix ms), if ever.
pub async fn poll_requested_at(store: &Store, channel: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT requested_at FROM poll_requests WHERE channel = $1")
            .bind(channel)
            .fetch_optional(store.pool())
            .await?,
    )
}
