//! Expiring leases with an epoch: who owns a channel account right now.
//!
//! A dispatcher pushes to a channel only while it holds the channel's lease (`channel:<id>`), and
//! records push results only in a transaction that first proves it still holds it
//! ([`Lease::fence`]). Taking over a lease that expired (or was released) bumps the epoch, so an
//! owner that was paused past its expiry — a stopped VM, a long GC-like stall, `kill -STOP` — finds
//! its epoch stale and records nothing. `omnistock resync` uses the same lease, so the CLI and a
//! running daemon never push to one channel at the same time.
//!
//! Times are the database host's view through [`now_ms`] of each caller; instances must have
//! clocks within a fraction of the lease time of each other (NTP), which is stated in the README.

use std::time::Duration;

use super::{Store, StoreError, Tx, now_ms};

/// A lease this process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `channel:<id>` and the like.
    pub name: String,
    /// This process's owner id.
    pub owner: String,
    /// Bumped on every change of owner; results carry it as a fence.
    pub epoch: i64,
}

/// Who holds a lease, for messages ("the daemon on host:pid owns it").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Owner id.
    pub owner: String,
    /// Its epoch.
    pub epoch: i64,
    /// Unix ms when it lapses unless renewed.
    pub expires_at: i64,
}

/// An owner id unique to this process: `host:pid:random`.
pub fn owner_id(role: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{role}@{host}:{}:{}", std::process::id(), &rand[..8])
}

/// The lease name of a channel.
pub fn channel_lease(channel: &str) -> String {
    format!("channel:{channel}")
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Lease {
    /// Takes `name` for `owner` when it is free, expired or already ours; `None` when someone
    /// else holds it. Re-taking our own unexpired lease keeps the epoch; anything else bumps it.
    pub async fn acquire(
        store: &Store,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let now = now_ms();
        let mut tx = store.write().await?;
        let sql = format!(
            "SELECT owner, epoch, expires_at FROM leases WHERE name = $1{}",
            store.for_update()
        );
        let row: Option<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let epoch = match row {
            None => {
                sqlx::query(
                    "INSERT INTO leases (name, owner, epoch, expires_at) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(owner)
                .bind(now + ms(ttl))
                .execute(&mut *tx)
                .await?;
                // A racing inserter may have won (PostgreSQL: no row to lock yet).
                let (o, e): (String, i64) =
                    sqlx::query_as("SELECT owner, epoch FROM leases WHERE name = $1")
                        .bind(name)
                        .fetch_one(&mut *tx)
                        .await?;
                if o != owner {
                    tx.rollback().await?;
                    return Ok(None);
                }
                e
            }
            Some((o, e, exp)) if o == owner && exp > now => {
                sqlx::query("UPDATE leases SET expires_at = $2 WHERE name = $1")
                    .bind(name)
                    .bind(now + ms(ttl))
                    .execute(&mut *tx)
                    .await?;
                e
            }
            Some((_, e, exp)) if exp <= now => {
                sqlx::query(
                    "UPDATE leases SET owner = $2, epoch = $3, expires_at = $4 WHERE name = $1",
                )
                .bind(name)
                .bind(owner)
                .bind(e + 1)
                .bind(now + ms(ttl))
                .execute(&mut *tx)
                .await?;
                e + 1
            }
            Some(_) => {
                tx.rollback().await?;
                return Ok(None);
            }
        };
        tx.commit().await?;
        Ok(Some(Lease {
            name: name.to_owned(),
            owner: owner.to_owned(),
            epoch,
        }))
    }

    /// Extends the lease; false when it was lost (taken over, or expired and re-taken).
    pub async fn renew(&self, store: &Store, ttl: Duration) -> Result<bool, StoreError> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE leases SET expires_at = $4 WHERE name = $1 AND owner = $2 AND epoch = $3 \
             AND expires_at > $5",
        )
        .bind(&self.name)
        .bind(&self.owner)
        .bind(self.epoch)
        .bind(now + ms(ttl))
        .bind(now)
        .execute(store.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Proves inside `tx` that the lease is still ours and unexpired, locking the row (PostgreSQL)
    /// so no takeover can commit before `tx` does. Callers record results only after this.
    pub async fn fence(&self, tx: &mut Tx) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE leases SET expires_at = expires_at WHERE name = $1 AND owner = $2 AND epoch = $3 \
             AND expires_at > $4",
        )
        .bind(&self.name)
        .bind(&self.owner)
        .bind(self.epoch)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives the lease up so another process can take it at once.
    pub async fn release(&self, store: &Store) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leases SET expires_at = 0 WHERE name = $1 AND owner = $2 AND epoch = $3",
        )
        .bind(&self.name)
        .bind(&self.owner)
        .bind(self.epoch)
        .execute(store.pool())
        .await?;
        Ok(())
    }
}

/// The current holder of `name`, when the lease is held and unexpired.
pub async fn holder(store: &Store, name: &str) -> Result<Option<Holder>, StoreError> {
    let row: Option<(String, i64, i64)> =
        sqlx::query_as("SELECT owner, epoch, expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(store.pool())
            .await?;
    Ok(row
        .filter(|(_, _, exp)| *exp > now_ms())
        .map(|(owner, epoch, expires_at)| Holder {
            owner,
            epoch,
            expires_at,
        }))
}

/// What the lease row of `name` says right now, for an instance deciding whether to take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// Someone holds it (unexpired).
    Held,
    /// Its holder stopped renewing it: it expired by itself (the holder died or froze).
    Lapsed,
    /// Released on purpose (a hand-off or a clean shutdown), or never taken.
    Free,
}

/// Reads the state of `name` without changing it.
pub async fn peek(store: &Store, name: &str) -> Result<Peek, StoreError> {
    let expires: Option<i64> = sqlx::query_scalar("SELECT expires_at FROM leases WHERE name = $1")
        .bind(name)
        .fetch_optional(store.pool())
        .await?;
    Ok(match expires {
        Some(e) if e > now_ms() => Peek::Held,
        Some(e) if e > 0 => Peek::Lapsed,
        _ => Peek::Free,
    })
}

/// How many channel leases each owner holds now.
pub async fn held_per_owner(
    store: &Store,
) -> Result<std::collections::HashMap<String, usize>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT owner, COUNT(*) FROM leases WHERE expires_at > $1 AND name LIKE 'channel:%' \
         GROUP BY owner",
    )
    .bind(now_ms())
    .fetch_all(store.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(o, n)| (o, usize::try_from(n).unwrap_or(0)))
        .collect())
}
