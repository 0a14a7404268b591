//! `omnistock orders [--channel C] [--since T]`: one order history across channels.

use std::path::Path;

use anyhow::Result;
use omnistock_connectors::model::format_minor;
use serde::Serialize;

use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use crate::store::{IN_CHUNK, Store, placeholders};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this channel (repeatable).
    #[arg(long)]
    pub channel: Vec<String>,
    /// Only orders placed at or after this time: RFC 3339 (2026-11-01T00:00:00Z), a date
    /// (2026-11-01) or an age (90m, 24h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many orders, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One order with its lines.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrderView {
    /// Channel id.
    pub channel: String,
    /// The channel's order id.
    pub external_id: String,
    /// Lifecycle status.
    pub status: String,
    /// Placed at (unix ms).
    pub placed_at: i64,
    /// Total in minor units.
    pub total_minor: Option<i64>,
    /// Currency.
    pub currency: Option<String>,
    /// (sku, qty, line state).
    pub lines: Vec<(String, i64, String)>,
}

/// Parses `--since`.
pub fn parse_since(s: &str, now_ms: i64) -> Result<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        anyhow::anyhow!("--since {s:?}: expected 2026-11-01, 2026-11-01T00:00:00Z or 24h/7d/90m")
    })?;
    let ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("--since {s:?}: the unit must be m, h or d"),
    };
    Ok(now_ms - n.saturating_mul(ms))
}

/// An `orders` row as selected.
#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    channel: String,
    external_id: String,
    status: String,
    placed_at: i64,
    total_minor: Option<i64>,
    currency: Option<String>,
}

/// Reads orders, newest first, with their lines (two queries, whatever the count).
pub async fn list(
    store: &Store,
    channels: &[String],
    since: Option<i64>,
    limit: i64,
) -> Result<Vec<OrderView>> {
    let channel_filter = if channels.is_empty() {
        String::new()
    } else {
        format!(" AND channel IN ({})", placeholders(3, channels.len()))
    };
    let sql = format!(
        "SELECT id, channel, external_id, status, placed_at, total_minor, currency FROM orders \
         WHERE placed_at >= $1{channel_filter} ORDER BY placed_at DESC, id DESC LIMIT $2"
    );
    let mut q = sqlx::query_as::<_, OrderRow>(AssertSqlSafe(sql))
        .bind(since.unwrap_or(i64::MIN))
        .bind(limit.clamp(1, 100_000));
    for c in channels {
        q = q.bind(c.as_str());
    }
    let rows = q.fetch_all(store.pool()).await?;
    let mut lines: HashMap<i64, Vec<(String, i64, String)>> = HashMap::new();
    for chunk in rows.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT order_id, sku, qty, state FROM order_lines WHERE order_id IN ({}) ORDER BY order_id, line_id",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (i64, String, i64, String)>(AssertSqlSafe(sql));
        for r in chunk {
            q = q.bind(r.id);
        }
        for (order, sku, qty, state) in q.fetch_all(store.pool()).await? {
            lines.entry(order).or_default().push((sku, qty, state));
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| OrderView {
            lines: lines.remove(&r.id).unwrap_or_default(),
            channel: r.channel,
            external_id: r.external_id,
            status: r.status,
            placed_at: r.placed_at,
            total_minor: r.total_minor,
            currency: r.currency,
        })
        .collect())
}

/// Prints the order history.
pub async fn run(config: &Path, args: Args) -> Result<()> {
    let app = super::App::open(config).await?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, crate::store::now_ms()))
        .transpose()?;
    let orders = list(&app.store, &args.channel, since, args.limit).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&orders)?);
        return Ok(());
    }
    if orders.is_empty() {
        println!("no orders");
    }
    for o in orders {
        let when = chrono::DateTime::from_timestamp_millis(o.placed_at)
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let total = match (o.total_minor, &o.currency) {
            (Some(t), Some(c)) => {
                let e = omnistock_connectors::Currency::parse(c)
                    .map(|c| c.exponent())
                    .unwrap_or(2);
                format!("{} {c}", format_minor(t, e))
            }
            _ => String::new(),
        };
        let lines: Vec<String> = o
            .lines
            .iter()
            .map(|(s, q, st)| {
                if st == "open" || st == "shipped" {
                    format!("{q}×{s}")
                } else {
                    format!("{q}×{s} [{st}]")
                }
            })
            .collect();
        println!(
            "{when}  {:<12} {:<24} {:<10} {:>12}  {}",
            o.channel,
            o.external_id,
            o.status,
            total,
            lines.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = 1_000_000_000_000;
        assert_eq!(parse_since("24h", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_since("2026-11-01", now).unwrap(), 1_793_491_200_000);
        assert_eq!(
            parse_since("2026-11-01T00:00:00Z", now).unwrap(),
            1_793_491_200_000
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("5w", now).is_err());
    }
}
