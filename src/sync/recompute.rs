//! Desired state in the database: for every (channel, SKU) what the channel should show.
//!
//! [`recompute`] runs inside the caller's write transaction, right after a catalog or stock change,
//! so the stock and what every channel should show can never disagree. It bumps
//! `channel_items.desired_version` only when the desired value really changes; the dispatcher pushes
//! rows whose `desired_version > pushed_version` (level-triggered: nothing is queued, so nothing can
//! be lost, and 1,000 changes between two pushes are one push).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};

use super::desired::{
    PriceSteps, QuantitySteps, bundle_available, channel_price, channel_quantity,
};
use super::plan::{ChannelPlan, Resolved, SyncPlan};
use crate::catalog::bundles_containing;
use crate::store::{
    IN_CHUNK, MAX_PARAMS, Store, StoreError, Tx, now_ms, placeholders, row_placeholders,
};

/// What a channel should show for one SKU; stored as `channel_items.desired_json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// Units to show.
    pub qty: i64,
    /// Price in minor units.
    pub price_minor: i64,
    /// Currency.
    pub currency: String,
    /// Listing content digest (title, images …).
    pub content: String,
}

/// What a recompute did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecomputeStats {
    /// SKUs looked at (including bundles pulled in by their components).
    pub skus: usize,
    /// (channel, SKU) rows whose desired value changed.
    pub changed: usize,
}

impl std::ops::AddAssign for RecomputeStats {
    fn add_assign(&mut self, o: Self) {
        self.skus += o.skus;
        self.changed += o.changed;
    }
}

/// The catalog facts about one SKU that desired state depends on.
#[derive(Debug, Clone)]
pub struct SkuFacts {
    /// SKU.
    pub sku: String,
    /// Base price.
    pub price_minor: i64,
    /// Currency.
    pub currency: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Content digest.
    pub content: String,
    /// `Some` for bundles: (component, qty).
    pub components: Option<Vec<(String, i64)>>,
}

/// Stock of one SKU per location: location → (on_hand, reserved).
pub type Levels = HashMap<String, (i64, i64)>;

/// The full computation for one (channel, SKU), for `explain`.
#[derive(Debug, Clone)]
pub struct Computation {
    /// Knobs and the rule that supplied them.
    pub resolved: Resolved,
    /// Per location (on_hand, reserved) counted for this channel (for bundles: per component).
    pub locations: Vec<(String, i64, i64)>,
    /// Bundle components: (sku, qty, component available).
    pub components: Vec<(String, i64, i64)>,
    /// Quantity steps.
    pub quantity: QuantitySteps,
    /// Price steps.
    pub price: PriceSteps,
    /// The result.
    pub desired: Desired,
}

fn available_at(levels: Option<&Levels>, channel: &ChannelPlan) -> (i64, Vec<(String, i64, i64)>) {
    let mut total = 0i64;
    let mut rows = Vec::new();
    for loc in &channel.locations {
        let (on_hand, reserved) = levels.and_then(|l| l.get(loc)).copied().unwrap_or((0, 0));
        total = total.saturating_add(on_hand - reserved);
        rows.push((loc.clone(), on_hand, reserved));
    }
    (total, rows)
}

/// Computes what `channel` should show for `facts`, given stock levels of the SKU and (for
/// bundles) its components. Pure.
pub fn compute(
    plan: &SyncPlan,
    channel: &ChannelPlan,
    facts: &SkuFacts,
    levels: &HashMap<String, Levels>,
) -> Computation {
    let resolved = plan.resolve(channel, &facts.sku, &facts.tags);
    let mut components = Vec::new();
    let (available, locations) = match &facts.components {
        None => available_at(levels.get(&facts.sku), channel),
        Some(comps) => {
            let mut locs = Vec::new();
            for (c, qty) in comps {
                let (a, rows) = available_at(levels.get(c), channel);
                components.push((c.clone(), *qty, a));
                locs.extend(rows.into_iter().map(|(l, h, r)| (format!("{c}@{l}"), h, r)));
            }
            (
                bundle_available(components.iter().map(|(_, q, a)| (*a, *q))),
                locs,
            )
        }
    };
    let quantity = channel_quantity(available, resolved.stock);
    let exponent = omnistock_connectors::Currency::parse(&facts.currency)
        .map(|c| c.exponent())
        .unwrap_or(2);
    let price = channel_price(facts.price_minor, exponent, resolved.price);
    let desired = Desired {
        qty: quantity.shown,
        price_minor: price.price,
        currency: facts.currency.clone(),
        content: facts.content.clone(),
    };
    Computation {
        resolved,
        locations,
        components,
        quantity,
        price,
        desired,
    }
}

/// Loads the facts and stock needed to compute `skus` (bundles' components included).
pub async fn load_facts(
    tx: &mut Tx,
    skus: &[String],
) -> Result<(Vec<SkuFacts>, HashMap<String, Levels>), StoreError> {
    let mut facts = Vec::with_capacity(skus.len());
    for chunk in skus.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT sku, price_minor, currency, tags_json, is_bundle, content_hash FROM variants WHERE sku IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in chunk {
            q = q.bind(s.as_str());
        }
        for row in q.fetch_all(&mut **tx).await? {
            let tags: String = row.try_get(3)?;
            let is_bundle: i64 = row.try_get(4)?;
            facts.push(SkuFacts {
                sku: row.try_get(0)?,
                price_minor: row.try_get(1)?,
                currency: row.try_get(2)?,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                content: row.try_get(5)?,
                components: (is_bundle != 0).then(Vec::new),
            });
        }
    }
    // Bundle components.
    let bundle_skus: Vec<String> = facts
        .iter()
        .filter(|f| f.components.is_some())
        .map(|f| f.sku.clone())
        .collect();
    let mut comps: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for chunk in bundle_skus.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT bundle_sku, component_sku, qty FROM bundles WHERE bundle_sku IN ({}) ORDER BY bundle_sku, component_sku",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in chunk {
            q = q.bind(s.as_str());
        }
        for row in q.fetch_all(&mut **tx).await? {
            comps
                .entry(row.try_get(0)?)
                .or_default()
                .push((row.try_get(1)?, row.try_get(2)?));
        }
    }
    let mut stocked: BTreeSet<String> = BTreeSet::new();
    for f in &mut facts {
        match &mut f.components {
            Some(c) => {
                *c = comps.remove(&f.sku).unwrap_or_default();
                stocked.extend(c.iter().map(|(s, _)| s.clone()));
            }
            None => {
                stocked.insert(f.sku.clone());
            }
        }
    }
    let stocked: Vec<String> = stocked.into_iter().collect();
    let mut levels: HashMap<String, Levels> = HashMap::new();
    for chunk in stocked.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT sku, location, on_hand, reserved FROM stock_levels WHERE sku IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in chunk {
            q = q.bind(s.as_str());
        }
        for row in q.fetch_all(&mut **tx).await? {
            levels
                .entry(row.try_get(0)?)
                .or_default()
                .insert(row.try_get(1)?, (row.try_get(2)?, row.try_get(3)?));
        }
    }
    Ok((facts, levels))
}

/// Recomputes desired state for `skus` and every bundle containing them, on every channel of the
/// plan, inside `tx`. Only rows whose value changed get a new version.
pub async fn recompute(
    store: &Store,
    tx: &mut Tx,
    plan: &SyncPlan,
    skus: &[String],
) -> Result<RecomputeStats, StoreError> {
    if plan.channels.is_empty() || skus.is_empty() {
        return Ok(RecomputeStats::default());
    }
    let mut all: Vec<String> = skus.to_vec();
    all.extend(bundles_containing(tx, skus).await?);
    all.sort();
    all.dedup();
    store.lock_skus(tx, &all).await?;
    let mut stats = RecomputeStats::default();
    for chunk in all.chunks(IN_CHUNK) {
        stats += recompute_chunk(tx, plan, chunk).await?;
    }
    Ok(stats)
}

/// Recomputes every SKU in the catalog (after a config change, or at startup when the plan
/// changed). Runs in chunks, each its own transaction, so the daemon's other writers interleave.
pub async fn recompute_all(store: &Store, plan: &SyncPlan) -> Result<RecomputeStats, StoreError> {
    let mut stats = RecomputeStats::default();
    let mut after = String::new();
    loop {
        let skus: Vec<String> =
            sqlx::query_scalar("SELECT sku FROM variants WHERE sku > $1 ORDER BY sku LIMIT 2000")
                .bind(&after)
                .fetch_all(store.pool())
                .await?;
        let Some(last) = skus.last() else { break };
        after = last.clone();
        let mut tx = store.write().await?;
        store.lock_skus(&mut tx, &skus).await?;
        for chunk in skus.chunks(IN_CHUNK) {
            stats += recompute_chunk(&mut tx, plan, chunk).await?;
        }
        tx.commit().await?;
    }
    Ok(stats)
}

async fn recompute_chunk(
    tx: &mut Tx,
    plan: &SyncPlan,
    skus: &[String],
) -> Result<RecomputeStats, StoreError> {
    let (facts, levels) = load_facts(tx, skus).await?;
    // Existing desired values. Both key columns are constrained so the (channel, sku) primary key
    // serves the lookup (a filter on sku alone would scan the table).
    let sql = format!(
        "SELECT channel, sku, desired_json FROM channel_items WHERE channel IN ({}) AND sku IN ({})",
        placeholders(1, plan.channels.len()),
        placeholders(1 + plan.channels.len(), skus.len())
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for c in &plan.channels {
        q = q.bind(c.id.as_str());
    }
    for s in skus {
        q = q.bind(s.as_str());
    }
    let mut existing: HashMap<(String, String), String> = HashMap::new();
    for row in q.fetch_all(&mut **tx).await? {
        existing.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
    }
    let mut changed: Vec<(&str, &str, String, Desired)> = Vec::new();
    for f in &facts {
        for ch in &plan.channels {
            let c = compute(plan, ch, f, &levels);
            let json = serde_json::to_string(&c.desired).unwrap_or_default();
            if existing.get(&(ch.id.clone(), f.sku.clone())) != Some(&json) {
                changed.push((ch.id.as_str(), f.sku.as_str(), json, c.desired));
            }
        }
    }
    const COLS: usize = 7;
    let now = now_ms();
    for batch in changed.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "INSERT INTO channel_items (channel, sku, desired_json, desired_qty, desired_price_minor, updated_at, \
             desired_version) VALUES {} ON CONFLICT (channel, sku) DO UPDATE SET desired_json = excluded.desired_json, \
             desired_qty = excluded.desired_qty, desired_price_minor = excluded.desired_price_minor, \
             desired_version = channel_items.desired_version + 1, state = 'active', attempts = 0, \
             next_attempt_at = 0, updated_at = excluded.updated_at",
            row_placeholders(batch.len(), COLS)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (channel, sku, json, d) in batch {
            q = q
                .bind(*channel)
                .bind(*sku)
                .bind(json.as_str())
                .bind(d.qty)
                .bind(d.price_minor)
                .bind(now)
                .bind(1i64);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(RecomputeStats {
        skus: facts.len(),
        changed: changed.len(),
    })
}
