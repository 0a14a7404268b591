//! The master catalog: products, variants (SKUs), bundles, locations and the stock ledger.
//!
//! Every stock change is a row in the append-only `stock_movements` ledger with a unique
//! idempotency key, written in the same transaction as the `stock_levels` change it describes, so
//! replaying the ledger reproduces `stock_levels` ([`verify_ledger`]) and a retried operation
//! (same key) changes nothing. Callers recompute desired channel state in that same transaction
//! (see [`crate::sync::recompute`]).

pub mod import;

use sqlx::{AssertSqlSafe, Row};

use crate::store::{
    IN_CHUNK, MAX_PARAMS, Store, StoreError, Tx, now_ms, placeholders, row_placeholders,
};

/// A product (the thing variants are variants of).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInput {
    /// Stable id (from the CSV's `product_id`, or the SKU for single-variant products).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Brand.
    pub brand: String,
}

/// A variant: one SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantInput {
    /// The SKU.
    pub sku: String,
    /// Its product.
    pub product_id: String,
    /// Title.
    pub title: String,
    /// Base price in minor units.
    pub price_minor: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// GTIN/EAN/UPC.
    pub barcode: Option<String>,
    /// Shipping weight.
    pub weight_g: Option<i64>,
    /// Option name/value pairs (`Colour`/`Red`).
    pub options: Vec<(String, String)>,
    /// Tags (`[[rules]] match = "tag:…"`).
    pub tags: Vec<String>,
    /// Image URLs.
    pub image_urls: Vec<String>,
    /// `Some` makes this a bundle of these (component SKU, qty) pairs.
    pub components: Option<Vec<(String, i64)>>,
}

impl VariantInput {
    /// A digest of the listing content (what a full listing update would send, price and stock
    /// aside), so desired state notices a title or image change.
    pub fn content_hash(&self, product: &ProductInput) -> String {
        use sha2::{Digest, Sha256};
        let doc = serde_json::json!([
            product.title,
            product.description,
            product.brand,
            self.title,
            self.barcode,
            self.weight_g,
            self.options,
            self.image_urls,
        ]);
        hex::encode(&Sha256::digest(doc.to_string().as_bytes())[..12])
    }
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement<'a> {
    /// The SKU.
    pub sku: &'a str,
    /// The location.
    pub location: &'a str,
    /// Change of on_hand.
    pub delta_on_hand: i64,
    /// Change of reserved.
    pub delta_reserved: i64,
    /// Why (`manual_set`, `import`, `order_reserve` …).
    pub reason: &'a str,
    /// Unique key: a retry with the same key is a no-op.
    pub idempotency_key: &'a str,
    /// The order this belongs to, if any.
    pub order_ref: Option<&'a str>,
}

/// Rows per multi-row statement in the batch writers below: [`MAX_PARAMS`] over the widest row.
const BATCH_ROWS: usize = MAX_PARAMS / 13;

/// Inserts or updates products, many per statement. Returns how many were created or changed.
pub async fn upsert_products(tx: &mut Tx, products: &[&ProductInput]) -> Result<usize, StoreError> {
    const COLS: usize = 5;
    let now = now_ms();
    let mut changed = 0;
    for chunk in products.chunks(BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO products (id, title, description, brand, updated_at) VALUES {} \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description, \
             brand = excluded.brand, updated_at = excluded.updated_at \
             WHERE products.title <> excluded.title OR products.description <> excluded.description \
             OR products.brand <> excluded.brand",
            row_placeholders(chunk.len(), COLS)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for p in chunk {
            q = q
                .bind(p.id.as_str())
                .bind(p.title.as_str())
                .bind(p.description.as_str())
                .bind(p.brand.as_str())
                .bind(now);
        }
        changed += q.execute(&mut **tx).await?.rows_affected() as usize;
    }
    Ok(changed)
}

/// Inserts or updates variants (with their content hashes) and bundle components, many per
/// statement. Returns how many variants were created or changed.
pub async fn upsert_variants(
    tx: &mut Tx,
    variants: &[(&VariantInput, String)],
) -> Result<usize, StoreError> {
    const COLS: usize = 13;
    let now = now_ms();
    let mut changed = std::collections::HashSet::new();
    for chunk in variants.chunks(BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO variants (sku, product_id, title, price_minor, currency, barcode, weight_g, options_json, \
             tags_json, image_urls_json, is_bundle, content_hash, updated_at) VALUES {} \
             ON CONFLICT (sku) DO UPDATE SET product_id = excluded.product_id, title = excluded.title, \
             price_minor = excluded.price_minor, currency = excluded.currency, barcode = excluded.barcode, \
             weight_g = excluded.weight_g, options_json = excluded.options_json, tags_json = excluded.tags_json, \
             image_urls_json = excluded.image_urls_json, is_bundle = excluded.is_bundle, \
             content_hash = excluded.content_hash, updated_at = excluded.updated_at \
             WHERE variants.product_id <> excluded.product_id OR variants.title <> excluded.title \
             OR variants.price_minor <> excluded.price_minor OR variants.currency <> excluded.currency \
             OR variants.tags_json <> excluded.tags_json OR variants.is_bundle <> excluded.is_bundle \
             OR variants.content_hash <> excluded.content_hash RETURNING sku",
            row_placeholders(chunk.len(), COLS)
        );
        let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
        for (v, hash) in chunk {
            q = q
                .bind(v.sku.as_str())
                .bind(v.product_id.as_str())
                .bind(v.title.as_str())
                .bind(v.price_minor)
                .bind(v.currency.as_str())
                .bind(v.barcode.as_deref())
                .bind(v.weight_g)
                .bind(serde_json::to_string(&v.options).unwrap_or_default())
                .bind(serde_json::to_string(&v.tags).unwrap_or_default())
                .bind(serde_json::to_string(&v.image_urls).unwrap_or_default())
                .bind(i64::from(v.components.is_some()))
                .bind(hash.as_str())
                .bind(now);
        }
        changed.extend(q.fetch_all(&mut **tx).await?);
    }
    for (v, _) in variants {
        if let Some(components) = &v.components
            && set_components(tx, &v.sku, components).await?
        {
            changed.insert(v.sku.clone());
        }
    }
    Ok(changed.len())
}

/// One absolute on-hand setting for [`set_on_hand_many`].
#[derive(Debug, Clone)]
pub struct OnHandSet<'a> {
    /// SKU.
    pub sku: &'a str,
    /// Location.
    pub location: &'a str,
    /// The new on_hand.
    pub on_hand: i64,
    /// Ledger idempotency key.
    pub key: String,
}

/// What [`set_on_hand_many`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnHandOutcome {
    /// Levels that changed value.
    pub changed: usize,
    /// Entries whose key was used before (nothing done).
    pub already_applied: usize,
}

/// Sets many on_hand values at once: reads the current levels, writes one ledger row per entry
/// (delta = new − current; skipped when its key exists) and applies the deltas, a chunk of rows per
/// statement. Same semantics as [`set_on_hand`] in a loop, at a fraction of the round trips.
/// Entries must name distinct (SKU, location) pairs.
pub async fn set_on_hand_many(
    store: &Store,
    tx: &mut Tx,
    sets: &[OnHandSet<'_>],
    reason: &str,
) -> Result<OnHandOutcome, StoreError> {
    let mut out = OnHandOutcome::default();
    let now = now_ms();
    for chunk in sets.chunks(BATCH_ROWS.min(IN_CHUNK)) {
        // Current levels of the chunk's SKUs (all locations; filtered below).
        let sql = format!(
            "SELECT sku, location, on_hand FROM stock_levels WHERE sku IN ({}){}",
            placeholders(1, chunk.len()),
            store.for_update()
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(AssertSqlSafe(sql));
        for s in chunk {
            q = q.bind(s.sku);
        }
        let current: std::collections::HashMap<(String, String), i64> = q
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|(s, l, h)| ((s, l), h))
            .collect();
        // Ledger rows; RETURNING tells which keys were new.
        let sql = format!(
            "INSERT INTO stock_movements (sku, location, delta_on_hand, delta_reserved, reason, idempotency_key, \
             order_ref, at) VALUES {} ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
            row_placeholders(chunk.len(), 8)
        );
        let mut q = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
        let mut deltas = std::collections::HashMap::new();
        for s in chunk {
            let before = current
                .get(&(s.sku.to_owned(), s.location.to_owned()))
                .copied()
                .unwrap_or(0);
            let delta = s.on_hand - before;
            deltas.insert(s.key.as_str(), delta);
            q = q
                .bind(s.sku)
                .bind(s.location)
                .bind(delta)
                .bind(0i64)
                .bind(reason)
                .bind(s.key.as_str())
                .bind(None::<String>)
                .bind(now);
        }
        let inserted: std::collections::HashSet<String> =
            q.fetch_all(&mut **tx).await?.into_iter().collect();
        out.already_applied += chunk.len() - inserted.len();
        let applied: Vec<&OnHandSet> = chunk.iter().filter(|s| inserted.contains(&s.key)).collect();
        out.changed += applied
            .iter()
            .filter(|s| deltas.get(s.key.as_str()) != Some(&0))
            .count();
        if applied.is_empty() {
            continue;
        }
        let sql = format!(
            "INSERT INTO stock_levels (sku, location, on_hand, reserved, version) VALUES {} \
             ON CONFLICT (sku, location) DO UPDATE SET on_hand = stock_levels.on_hand + excluded.on_hand, \
             version = stock_levels.version + 1",
            row_placeholders(applied.len(), 5)
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in &applied {
            q = q
                .bind(s.sku)
                .bind(s.location)
                .bind(deltas[s.key.as_str()])
                .bind(0i64)
                .bind(1i64);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(out)
}

/// Replaces a bundle's components. Returns true when they changed.
pub async fn set_components(
    tx: &mut Tx,
    bundle: &str,
    components: &[(String, i64)],
) -> Result<bool, StoreError> {
    let existing: Vec<(String, i64)> = sqlx::query_as(
        "SELECT component_sku, qty FROM bundles WHERE bundle_sku = $1 ORDER BY component_sku",
    )
    .bind(bundle)
    .fetch_all(&mut **tx)
    .await?;
    let mut wanted = components.to_vec();
    wanted.sort();
    if existing == wanted {
        return Ok(false);
    }
    sqlx::query("DELETE FROM bundles WHERE bundle_sku = $1")
        .bind(bundle)
        .execute(&mut **tx)
        .await?;
    for (sku, qty) in &wanted {
        sqlx::query("INSERT INTO bundles (bundle_sku, component_sku, qty) VALUES ($1, $2, $3)")
            .bind(bundle)
            .bind(sku)
            .bind(qty)
            .execute(&mut **tx)
            .await?;
    }
    Ok(true)
}

/// Makes sure the configured locations exist (names updated).
pub async fn sync_locations(
    store: &Store,
    locations: &[(String, String)],
) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    for (id, name) in locations {
        sqlx::query(
            "INSERT INTO locations (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.name \
             WHERE locations.name <> excluded.name",
        )
        .bind(id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Appends a ledger row and applies it to `stock_levels`. Returns false (and changes nothing) when
/// the idempotency key was used before. Fails with [`StoreError::Conflict`] when it would make
/// `reserved` negative.
pub async fn apply_movement(tx: &mut Tx, m: &Movement<'_>) -> Result<bool, StoreError> {
    if !insert_ledger_row(tx, m).await? {
        return Ok(false);
    }
    // Update the existing level first: an upsert would put the delta itself in `VALUES`, and
    // `CHECK (reserved >= 0)` refuses a negative reserved delta there before the conflict clause
    // is reached — a valid release of a reservation would fail.
    let updated = sqlx::query(
        "UPDATE stock_levels SET on_hand = on_hand + $3, reserved = reserved + $4, version = version + 1 \
         WHERE sku = $1 AND location = $2",
    )
    .bind(m.sku)
    .bind(m.location)
    .bind(m.delta_on_hand)
    .bind(m.delta_reserved)
    .execute(&mut **tx)
    .await;
    let r = match updated {
        Ok(r) if r.rows_affected() > 0 => Ok(r),
        Ok(_) => {
            sqlx::query(
                "INSERT INTO stock_levels (sku, location, on_hand, reserved, version) VALUES ($1, $2, $3, $4, 1)",
            )
            .bind(m.sku)
            .bind(m.location)
            .bind(m.delta_on_hand)
            .bind(m.delta_reserved)
            .execute(&mut **tx)
            .await
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_check_violation() => {
            Err(StoreError::Conflict(format!(
                "{} at {}: reserved would drop below zero (movement {})",
                m.sku, m.location, m.idempotency_key
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Appends `m` to the ledger; false (nothing written) when its idempotency key was used before.
/// Callers change `stock_levels` in the same transaction.
pub async fn insert_ledger_row(tx: &mut Tx, m: &Movement<'_>) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO stock_movements (sku, location, delta_on_hand, delta_reserved, reason, idempotency_key, \
         order_ref, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(m.sku)
    .bind(m.location)
    .bind(m.delta_on_hand)
    .bind(m.delta_reserved)
    .bind(m.reason)
    .bind(m.idempotency_key)
    .bind(m.order_ref)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Current (on_hand, reserved) of a SKU at a location (0, 0 when never stocked).
pub async fn stock_at(
    store: &Store,
    tx: &mut Tx,
    sku: &str,
    location: &str,
) -> Result<(i64, i64), StoreError> {
    let sql = format!(
        "SELECT on_hand, reserved FROM stock_levels WHERE sku = $1 AND location = $2{}",
        store.for_update()
    );
    let row: Option<(i64, i64)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(sku)
        .bind(location)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.unwrap_or((0, 0)))
}

/// What kind of SKU a string names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkuKind {
    /// Not in the catalog.
    Unknown,
    /// A stocked variant.
    Variant,
    /// A bundle (stock derived from components).
    Bundle,
}

/// Looks a SKU up.
pub async fn sku_kind(tx: &mut Tx, sku: &str) -> Result<SkuKind, StoreError> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT is_bundle FROM variants WHERE sku = $1")
        .bind(sku)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        None => SkuKind::Unknown,
        Some((0,)) => SkuKind::Variant,
        Some(_) => SkuKind::Bundle,
    })
}

/// True when the location exists.
pub async fn location_exists(tx: &mut Tx, id: &str) -> Result<bool, StoreError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM locations WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// Sets on_hand to an absolute value through a ledger row carrying the difference.
/// Returns the delta applied (`None` when the key was used before).
pub async fn set_on_hand(
    store: &Store,
    tx: &mut Tx,
    sku: &str,
    location: &str,
    on_hand: i64,
    reason: &str,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    let (current, _) = stock_at(store, tx, sku, location).await?;
    let delta = on_hand - current;
    let m = Movement {
        sku,
        location,
        delta_on_hand: delta,
        delta_reserved: 0,
        reason,
        idempotency_key: key,
        order_ref: None,
    };
    Ok(apply_movement(tx, &m).await?.then_some(delta))
}

/// SKUs of bundles that contain any of `skus`.
pub async fn bundles_containing(tx: &mut Tx, skus: &[String]) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for chunk in skus.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT DISTINCT bundle_sku FROM bundles WHERE component_sku IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for s in chunk {
            q = q.bind(s.as_str());
        }
        for row in q.fetch_all(&mut **tx).await? {
            out.push(row.try_get::<String, _>(0)?);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A place where `stock_levels` disagrees with the sum of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerMismatch {
    /// SKU.
    pub sku: String,
    /// Location.
    pub location: String,
    /// (on_hand, reserved) in `stock_levels`.
    pub levels: (i64, i64),
    /// (on_hand, reserved) from replaying the ledger.
    pub ledger: (i64, i64),
}

/// Replays the ledger and compares it with `stock_levels`; empty means they agree.
pub async fn verify_ledger(store: &Store) -> Result<Vec<LedgerMismatch>, StoreError> {
    let ledger: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT sku, location, CAST(SUM(delta_on_hand) AS BIGINT), CAST(SUM(delta_reserved) AS BIGINT) \
         FROM stock_movements GROUP BY sku, location ORDER BY sku, location",
    )
    .fetch_all(store.pool())
    .await?;
    let levels: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT sku, location, on_hand, reserved FROM stock_levels ORDER BY sku, location",
    )
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::new();
    let mut l = ledger.into_iter().peekable();
    let mut s = levels.into_iter().peekable();
    loop {
        let next = match (l.peek(), s.peek()) {
            (None, None) => break,
            (Some(a), Some(b)) => (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
        };
        match next {
            std::cmp::Ordering::Equal => {
                let (a, b) = (l.next().unwrap_or_default(), s.next().unwrap_or_default());
                if (a.2, a.3) != (b.2, b.3) {
                    out.push(LedgerMismatch {
                        sku: a.0,
                        location: a.1,
                        levels: (b.2, b.3),
                        ledger: (a.2, a.3),
                    });
                }
            }
            std::cmp::Ordering::Less => {
                let a = l.next().unwrap_or_default();
                if (a.2, a.3) != (0, 0) {
                    out.push(LedgerMismatch {
                        sku: a.0,
                        location: a.1,
                        levels: (0, 0),
                        ledger: (a.2, a.3),
                    });
                }
            }
            std::cmp::Ordering::Greater => {
                let b = s.next().unwrap_or_default();
                if (b.2, b.3) != (0, 0) {
                    out.push(LedgerMismatch {
                        sku: b.0,
                        location: b.1,
                        levels: (b.2, b.3),
                        ledger: (0, 0),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A manual stock change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    /// Set on_hand to this value.
    Set(i64),
    /// Add this (negative to remove) to on_hand.
    Adjust(i64),
}

/// The outcome of [`change_stock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChanged {
    /// on_hand before.
    pub before: i64,
    /// on_hand after.
    pub after: i64,
    /// reserved (unchanged).
    pub reserved: i64,
    /// Channel listings whose desired value changed.
    pub listings_changed: usize,
}

/// Sets or adjusts on_hand of a stocked SKU at a location, with a ledger row keyed `key`
/// (`manual:{uuid}` from the CLI) and the desired-state recompute, in one transaction.
/// Refuses unknown SKUs and locations, bundles, and results below zero.
pub async fn change_stock(
    store: &Store,
    plan: &crate::sync::SyncPlan,
    sku: &str,
    location: &str,
    change: StockChange,
    key: &str,
) -> Result<StockChanged, StoreError> {
    let mut tx = store.write().await?;
    match sku_kind(&mut tx, sku).await? {
        SkuKind::Unknown => {
            return Err(StoreError::NotFound(format!(
                "unknown SKU {sku:?}: import it first"
            )));
        }
        SkuKind::Bundle => {
            return Err(StoreError::Conflict(format!(
                "{sku:?} is a bundle: its stock comes from its components; change those instead"
            )));
        }
        SkuKind::Variant => {}
    }
    if !location_exists(&mut tx, location).await? {
        return Err(StoreError::NotFound(format!(
            "unknown location {location:?}"
        )));
    }
    let mut affected = vec![sku.to_owned()];
    affected.extend(bundles_containing(&mut tx, &affected).await?);
    store.lock_skus(&mut tx, &affected).await?;
    let (before, reserved) = stock_at(store, &mut tx, sku, location).await?;
    let after = match change {
        StockChange::Set(v) => v,
        StockChange::Adjust(d) => before
            .checked_add(d)
            .ok_or_else(|| StoreError::Conflict(format!("adjustment {d} overflows")))?,
    };
    if after < 0 {
        return Err(StoreError::Conflict(format!(
            "{sku} at {location}: on hand would be {after}; it is {before} (reserved {reserved})"
        )));
    }
    let reason = match change {
        StockChange::Set(_) => "manual_set",
        StockChange::Adjust(_) => "manual_adjust",
    };
    set_on_hand(store, &mut tx, sku, location, after, reason, key).await?;
    let stats = crate::sync::recompute(store, &mut tx, plan, &[sku.to_owned()]).await?;
    tx.commit().await?;
    Ok(StockChanged {
        before,
        after,
        reserved,
        listings_changed: stats.changed,
    })
}
