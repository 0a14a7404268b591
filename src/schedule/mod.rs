//! Cron schedules that fire exactly once per tick, across restarts and instances.
//!
//! Each schedule has a row in `cron_ticks(name, last_tick)`. A runner sleeps until the next tick,
//! then claims it with a conditional update (`… SET last_tick = $tick WHERE last_tick < $tick`):
//! only the one instance whose update changed the row runs the job, and a restart never runs a
//! tick that was already claimed. Ticks missed while nobody was running are not replayed one by
//! one: the most recent missed tick runs once (a nightly reconcile the daemon slept through runs
//! when it comes back; it does not pile up). A failing job is logged with its name and the
//! schedule carries on (STYLE habit 16).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::store::{Store, StoreError, now_ms};

/// Claims `tick` (unix ms) for `name`; true when this caller won it and must run the job.
pub async fn claim_tick(store: &Store, name: &str, tick: i64) -> Result<bool, StoreError> {
    let mut tx = store.write().await?;
    sqlx::query(
        "INSERT INTO cron_ticks (name, last_tick) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?;
    let n = sqlx::query("UPDATE cron_ticks SET last_tick = $2 WHERE name = $1 AND last_tick < $2")
        .bind(name)
        .bind(tick)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n == 1)
}

/// The last claimed tick of `name` (unix ms), if any.
pub async fn last_tick(store: &Store, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT last_tick FROM cron_ticks WHERE name = $1")
            .bind(name)
            .fetch_optional(store.pool())
            .await?
            .filter(|t: &i64| *t > 0),
    )
}

fn to_utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// The tick to run now, if any: the latest tick in `(last, now]`.
pub fn due_tick(schedule: &cron::Schedule, last: i64, now: i64) -> Option<i64> {
    // The iterator walks backwards from just after `now`, so this is one step however long ago
    // `last` was.
    schedule
        .after(&to_utc(now + 1))
        .next_back()
        .map(|t| t.timestamp_millis())
        .filter(|t| *t > last && *t <= now)
}

/// The next tick strictly after `now`.
pub fn next_tick(schedule: &cron::Schedule, now: i64) -> Option<i64> {
    schedule
        .after(&to_utc(now))
        .next()
        .map(|t| t.timestamp_millis())
}

/// Runs `job` once per tick of `schedule` until `cancel`, claiming each tick in the database first.
/// On the first run (no stored tick) nothing is replayed: the schedule starts from now. A tick is
/// claimed only while `eligible()` holds (the channel's lease is ours): an instance that does not
/// own the channel leaves the tick to the one that does.
pub async fn run_schedule<E, F, Fut>(
    store: Store,
    name: String,
    schedule: cron::Schedule,
    cancel: CancellationToken,
    eligible: E,
    mut job: F,
) where
    E: Fn() -> bool,
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut last = match last_tick(&store, &name).await {
        Ok(Some(t)) => t,
        Ok(None) => now_ms(),
        Err(e) => {
            warn!(schedule = %name, error = %e, "Cannot read the schedule's last tick; starting from now.");
            now_ms()
        }
    };
    loop {
        let now = now_ms();
        if let Some(tick) = due_tick(&schedule, last, now)
            && eligible()
        {
            last = tick;
            match claim_tick(&store, &name, tick).await {
                Ok(true) => {
                    debug!(schedule = %name, tick, "Running scheduled job.");
                    if let Err(e) = job(tick).await {
                        warn!(schedule = %name, error = format!("{e:#}"), "Scheduled job failed; the schedule carries on.");
                    }
                }
                Ok(false) => debug!(schedule = %name, tick, "Tick already claimed elsewhere."),
                Err(e) => {
                    warn!(schedule = %name, error = %e, "Cannot claim the tick; retrying shortly.");
                    last = tick - 1;
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
            continue;
        }
        let Some(next) = next_tick(&schedule, now) else {
            return;
        };
        // Not eligible while a tick is due: look again soon (the lease may come to us).
        let wait = if due_tick(&schedule, last, now).is_some() {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(u64::try_from(next - now).unwrap_or(0).max(1))
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_schedule;

    const MIN: i64 = 60_000;

    #[test]
    fn due_tick_is_the_latest_missed_one() {
        let s = parse_schedule("*/5 * * * *").unwrap();
        let base = 1_700_000_100_000 / (5 * MIN) * (5 * MIN); // on a 5-minute boundary
        assert_eq!(due_tick(&s, base, base + MIN), None);
        assert_eq!(due_tick(&s, base, base + 5 * MIN), Some(base + 5 * MIN));
        assert_eq!(due_tick(&s, base, base + 23 * MIN), Some(base + 20 * MIN));
        assert_eq!(next_tick(&s, base + MIN), Some(base + 5 * MIN));
    }

    #[test]
    fn a_very_old_last_tick_does_not_spin() {
        let s = parse_schedule("* * * * * *").unwrap();
        let now = 1_700_000_000_000;
        assert_eq!(due_tick(&s, 0, now), Some(now / 1000 * 1000));
    }
}
