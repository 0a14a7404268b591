//! `omnistock explain SKU [--channel C]`: every step from stock to what each channel shows.

use std::path::Path;

use anyhow::Result;
use omnistock_connectors::model::format_minor;

use crate::store::Store;
use crate::sync::recompute::{Computation, compute, load_facts};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The SKU.
    pub sku: String,
    /// Only this channel (repeatable).
    #[arg(long)]
    pub channel: Vec<String>,
}

/// One channel's stored sync state for a SKU.
#[derive(Debug, sqlx::FromRow)]
struct ItemRow {
    desired_version: i64,
    pushed_version: i64,
    desired_json: String,
    pushed_json: Option<String>,
    remote_seen_json: Option<String>,
    state: String,
    attempts: i64,
    last_error: Option<String>,
    last_pushed_at: Option<i64>,
    external_id: Option<String>,
}

/// Prints the explanation.
pub async fn run(config: &Path, args: Args) -> Result<()> {
    let app = super::App::open(config).await?;
    for c in &args.channel {
        anyhow::ensure!(
            app.plan.channel(c).is_some(),
            "unknown channel {c:?} (configured: {})",
            channel_ids(&app)
        );
    }
    print!(
        "{}",
        explain(&app.store, &app.plan, &args.sku, &args.channel).await?
    );
    Ok(())
}

fn channel_ids(app: &super::App) -> String {
    app.plan
        .channels
        .iter()
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The explanation as text.
pub async fn explain(
    store: &Store,
    plan: &crate::sync::SyncPlan,
    sku: &str,
    only: &[String],
) -> Result<String> {
    use std::fmt::Write;
    let mut tx = store.pool().begin().await?;
    let (facts, levels) = load_facts(&mut tx, &[sku.to_owned()]).await?;
    let Some(f) = facts.into_iter().next() else {
        anyhow::bail!("unknown SKU {sku:?}");
    };
    let (title, product): (String, String) =
        sqlx::query_as("SELECT title, product_id FROM variants WHERE sku = $1")
            .bind(sku)
            .fetch_one(&mut *tx)
            .await?;
    let exponent = omnistock_connectors::Currency::parse(&f.currency)
        .map(|c| c.exponent())
        .unwrap_or(2);
    let mut out = String::new();
    writeln!(
        out,
        "{sku} — {title:?} (product {product}), base price {} {}",
        format_minor(f.price_minor, exponent),
        f.currency
    )?;
    match &f.components {
        Some(c) => {
            let list: Vec<String> = c.iter().map(|(s, q)| format!("{q} × {s}")).collect();
            writeln!(
                out,
                "bundle of {}",
                if list.is_empty() {
                    "nothing".to_owned()
                } else {
                    list.join(" + ")
                }
            )?;
        }
        None => {
            let mut locs: Vec<_> = levels
                .get(sku)
                .map(|l| l.iter().collect())
                .unwrap_or_default();
            locs.sort();
            let text: Vec<String> = locs
                .iter()
                .map(|(l, (h, r))| format!("{l}: on hand {h}, reserved {r}"))
                .collect();
            writeln!(
                out,
                "stock: {}",
                if text.is_empty() {
                    "none recorded".to_owned()
                } else {
                    text.join("; ")
                }
            )?;
        }
    }
    if !f.tags.is_empty() {
        writeln!(out, "tags: {}", f.tags.join(", "))?;
    }
    for ch in &plan.channels {
        if !only.is_empty() && !only.contains(&ch.id) {
            continue;
        }
        let c: Computation = compute(plan, ch, &f, &levels);
        writeln!(out, "\n{}", ch.id)?;
        match c.resolved.rule {
            Some(i) => writeln!(
                out,
                "  rule       #{} ({}) overrides the channel's knobs",
                i + 1,
                plan.rules[i].matcher
            )?,
            None => writeln!(out, "  rule       none (channel defaults)")?,
        }
        if !c.components.is_empty() {
            for (s, q, a) in &c.components {
                writeln!(
                    out,
                    "  component  {s}: available {a} / {q} per bundle = {}",
                    if *q > 0 { a.max(&0) / q } else { 0 }
                )?;
            }
        }
        let locs: Vec<String> = c
            .locations
            .iter()
            .map(|(l, h, r)| format!("{l} {h}−{r}"))
            .collect();
        writeln!(out, "  locations  {}", locs.join(", "))?;
        writeln!(out, "  quantity   {}", c.quantity)?;
        writeln!(out, "  price      {}", c.price)?;
        let row: Option<ItemRow> = sqlx::query_as(
            "SELECT desired_version, pushed_version, desired_json, pushed_json, remote_seen_json, state, attempts, \
             last_error, last_pushed_at, external_id FROM channel_items WHERE channel = $1 AND sku = $2",
        )
        .bind(&ch.id)
        .bind(sku)
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            None => writeln!(
                out,
                "  stored     not yet computed (the daemon computes it at start)"
            )?,
            Some(r) => {
                let stored: Option<crate::sync::recompute::Desired> =
                    serde_json::from_str(&r.desired_json).ok();
                let fresh = stored.as_ref() == Some(&c.desired);
                writeln!(
                    out,
                    "  desired    v{}: {}{}",
                    r.desired_version,
                    stored
                        .map(|d| format!(
                            "qty {} @ {} {}",
                            d.qty,
                            format_minor(d.price_minor, exponent),
                            d.currency
                        ))
                        .unwrap_or_default(),
                    if fresh {
                        ""
                    } else {
                        " (stale: the config changed; the daemon recomputes on reload)"
                    }
                )?;
                let pushed = match (&r.pushed_json, r.pushed_version) {
                    (_, 0) => "never pushed".to_owned(),
                    (Some(j), v) => {
                        format!("v{v}: {j} at {}", crate::status::ago(r.last_pushed_at))
                    }
                    (None, v) => format!("v{v}"),
                };
                writeln!(out, "  pushed     {pushed}")?;
                writeln!(
                    out,
                    "  remote     {}",
                    r.remote_seen_json.as_deref().unwrap_or("not read yet")
                )?;
                if let Some(id) = r.external_id {
                    writeln!(out, "  listing id {id}")?;
                }
                let mut state = r.state.clone();
                if r.desired_version > r.pushed_version {
                    state.push_str(", waiting to be pushed");
                }
                if r.attempts > 0 {
                    state.push_str(&format!(", {} failed attempt(s)", r.attempts));
                }
                writeln!(out, "  state      {state}")?;
                if let Some(e) = r.last_error {
                    writeln!(out, "  last error {e}")?;
                }
            }
        }
    }
    Ok(out)
}
