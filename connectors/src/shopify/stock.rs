//! SKU → variant lookups (cached) and `available` quantities set with `inventorySetQuantities`.
//!
//! Each variant the connector has seen is cached with its ids and the `available` quantity it last
//! read or wrote at the location. A push sends that quantity as `changeFromQuantity`, so a change
//! made meanwhile by someone else (a sale, the merchant in the admin) is detected instead of
//! overwritten blindly; the daemon's value is the absolute truth, so on
//! `CHANGE_FROM_QUANTITY_STALE` the connector re-reads the current quantities and sends the same
//! target again with the fresh `changeFromQuantity` and a new idempotency key (a re-plan), at most
//! [`MAX_PLANS`] times. The mutation is all-or-nothing: items with no error are resent in the
//! next plan.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::ShopifyConnector;
use super::client::idempotency_key;
use super::mapping::{
    self, ItemNode, LOOKUP, LOOKUP_CHUNK, Page, READ_LEVELS, SET_QUANTITIES, VariantNode,
};
use crate::error::ConnectorError;
use crate::model::{ItemOutcome, StockUpdate};

/// Plans (sends of inventorySetQuantities) per push before the items still stale are `Retry`.
pub const MAX_PLANS: usize = 4;

/// A variant as the connector knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VariantRef {
    pub variant_id: String,
    pub inventory_item_id: String,
    pub product_id: String,
    pub product_status: String,
    pub product_variants: u64,
    /// `available` at the location as last read or written; `None` = not stocked there.
    pub available: Option<i64>,
}

impl VariantRef {
    pub(crate) fn from_node(n: &VariantNode) -> Option<(String, VariantRef)> {
        let sku = n.sku.clone().filter(|s| !s.is_empty())?;
        let item: &ItemNode = n.inventory_item.as_ref()?;
        let product = n.product.as_ref()?;
        Some((
            sku,
            VariantRef {
                variant_id: n.id.clone(),
                inventory_item_id: item.id.clone(),
                product_id: product.id.clone(),
                product_status: product.status.clone().unwrap_or_default(),
                product_variants: product.variants_count.as_ref().map_or(1, |c| c.count),
                available: item.available(),
            },
        ))
    }
}

fn malformed(what: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Malformed {
        status: Some(200),
        message: format!("{what}: {e}"),
    }
}

impl ShopifyConnector {
    /// The cached variant of `sku`.
    pub(crate) fn cached(&self, sku: &str) -> Option<VariantRef> {
        self.cache().get(sku).cloned()
    }

    pub(crate) fn remember(&self, sku: &str, r: VariantRef) {
        self.cache().insert(sku.to_owned(), r);
    }

    pub(crate) fn forget(&self, sku: &str) {
        self.cache().remove(sku);
    }

    pub(crate) fn set_cached_available(&self, sku: &str, q: Option<i64>) {
        if let Some(r) = self.cache().get_mut(sku) {
            r.available = q;
        }
    }

    /// Looks `skus` up (all of them, cache or not) and caches what Shopify knows; SKUs Shopify
    /// does not know are dropped from the cache.
    pub(crate) async fn lookup(
        &self,
        skus: &[&str],
    ) -> Result<HashMap<String, VariantRef>, ConnectorError> {
        let mut found = HashMap::new();
        for chunk in skus.chunks(LOOKUP_CHUNK) {
            self.counters
                .lookups
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let data = self
                .client
                .execute(
                    &LOOKUP,
                    json!({"first": LOOKUP_CHUNK, "query": mapping::sku_search(chunk.iter().copied()),
                           "locationId": self.config.location_id}),
                )
                .await?;
            let page: Page<VariantNode> =
                serde_json::from_value(data.get("productVariants").cloned().unwrap_or(Value::Null))
                    .map_err(|e| malformed("productVariants", e))?;
            for node in &page.nodes {
                if let Some((sku, r)) = VariantRef::from_node(node)
                    && chunk.contains(&sku.as_str())
                {
                    found.insert(sku, r);
                }
            }
        }
        for sku in skus {
            match found.get(*sku) {
                Some(r) => self.remember(sku, r.clone()),
                None => self.forget(sku),
            }
        }
        Ok(found)
    }

    /// Cached refs, with the misses looked up.
    pub(crate) async fn resolve(
        &self,
        skus: &[&str],
    ) -> Result<HashMap<String, VariantRef>, ConnectorError> {
        let mut out = HashMap::new();
        let mut misses = Vec::new();
        for sku in skus {
            match self.cached(sku) {
                Some(r) => {
                    out.insert((*sku).to_owned(), r);
                }
                None => misses.push(*sku),
            }
        }
        misses.sort_unstable();
        misses.dedup();
        if !misses.is_empty() {
            out.extend(self.lookup(&misses).await?);
        }
        Ok(out)
    }

    /// Re-reads `available` of these SKUs' inventory items (`nodes(ids:)`).
    async fn reread(&self, skus: &[String]) -> Result<(), ConnectorError> {
        let refs: Vec<(String, String)> = skus
            .iter()
            .filter_map(|s| self.cached(s).map(|r| (s.clone(), r.inventory_item_id)))
            .collect();
        for chunk in refs.chunks(mapping::LOOKUP_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|(_, id)| id.as_str()).collect();
            let data = self
                .client
                .execute(
                    &READ_LEVELS,
                    json!({"ids": ids, "locationId": self.config.location_id}),
                )
                .await?;
            let nodes = data
                .get("nodes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (sku, id) in chunk {
                let node = nodes
                    .iter()
                    .find(|n| n.get("id").and_then(Value::as_str) == Some(id.as_str()));
                match node {
                    Some(n) => {
                        let item: ItemNode = serde_json::from_value(n.clone())
                            .map_err(|e| malformed("inventory item", e))?;
                        self.set_cached_available(sku, item.available());
                    }
                    // The item is gone: look the SKU up again next time.
                    None => self.forget(sku),
                }
            }
        }
        Ok(())
    }

    /// `inventoryActivate` at the location; `Err(message)` for a userError.
    async fn activate(
        &self,
        sku: &str,
        r: &VariantRef,
    ) -> Result<Result<(), String>, ConnectorError> {
        self.counters
            .activations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data = self
            .client
            .execute(
                &mapping::ACTIVATE,
                json!({"inventoryItemId": r.inventory_item_id, "locationId": self.config.location_id}),
            )
            .await?;
        let payload = data
            .get("inventoryActivate")
            .cloned()
            .unwrap_or(Value::Null);
        let errors =
            mapping::user_errors(&payload).map_err(|e| malformed("inventoryActivate", e))?;
        if let Some(e) = errors.first() {
            return Ok(Err(e.describe()));
        }
        let level: Option<mapping::LevelNode> = payload
            .get("inventoryLevel")
            .filter(|l| !l.is_null())
            .and_then(|l| serde_json::from_value(l.clone()).ok());
        let available = level.map_or(0, |l| {
            l.quantities
                .iter()
                .find(|q| q.name == "available")
                .map_or(0, |q| q.quantity)
        });
        self.set_cached_available(sku, Some(available));
        Ok(Ok(()))
    }

    /// Sets `available` for each item (absolute), with compare-and-set and re-plans. Items with
    /// the same SKU in one call: the last one wins, the earlier ones share its outcome.
    pub(crate) async fn set_stock(
        &self,
        items: &[StockUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        // The last index per SKU.
        let mut last: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, it) in items.iter().enumerate() {
            last.insert(it.sku.as_str(), i);
        }
        let skus: Vec<&str> = last.keys().copied().collect();
        let refs = self.resolve(&skus).await?;
        let mut pending: Vec<usize> = Vec::new();
        for (sku, i) in &last {
            if refs.contains_key(*sku) {
                pending.push(*i);
            } else {
                outcomes[*i] = Some(ItemOutcome::NotListed {
                    error: format!("Shopify has no variant with SKU {sku:?}"),
                });
            }
        }
        let mut plans = 0;
        while !pending.is_empty() && plans < MAX_PLANS {
            plans += 1;
            // Items not stocked at the location are activated first.
            let mut ready = Vec::new();
            for i in std::mem::take(&mut pending) {
                let sku = items[i].sku.as_str();
                let Some(r) = self.cached(sku) else {
                    outcomes[i] = Some(ItemOutcome::NotListed {
                        error: format!("Shopify has no variant with SKU {sku:?}"),
                    });
                    continue;
                };
                if r.available.is_none()
                    && let Err(message) = self.activate(sku, &r).await?
                {
                    outcomes[i] = Some(ItemOutcome::Rejected {
                        code: Some("ITEM_NOT_STOCKED_AT_LOCATION".into()),
                        error: format!("inventoryActivate refused: {message}"),
                    });
                    continue;
                }
                let r = self.cached(sku).unwrap_or(r);
                ready.push((i, r));
            }
            if ready.is_empty() {
                break;
            }
            let quantities: Vec<Value> = ready
                .iter()
                .map(|(i, r)| {
                    json!({"inventoryItemId": r.inventory_item_id, "locationId": self.config.location_id,
                           "quantity": items[*i].quantity, "changeFromQuantity": r.available.unwrap_or(0)})
                })
                .collect();
            let vars = json!({
                "input": {"name": "available", "reason": "correction",
                          "referenceDocumentUri": format!("omnistock://sync/{}", items[ready[0].0].version),
                          "quantities": quantities},
                "idempotencyKey": idempotency_key(),
            });
            let data = self.client.execute(&SET_QUANTITIES, vars).await?;
            let payload = data
                .get("inventorySetQuantities")
                .cloned()
                .unwrap_or(Value::Null);
            if payload.is_null() {
                return Err(malformed("inventorySetQuantities", "no payload"));
            }
            let errors = mapping::user_errors(&payload)
                .map_err(|e| malformed("inventorySetQuantities", e))?;
            if errors.is_empty() {
                for (i, r) in ready {
                    let sku = items[i].sku.as_str();
                    self.set_cached_available(sku, Some(i64::from(items[i].quantity)));
                    outcomes[i] = Some(ItemOutcome::Applied {
                        external_id: Some(r.variant_id),
                    });
                }
                break;
            }
            let mut stale = Vec::new();
            let mut failed = vec![false; ready.len()];
            for e in &errors {
                let Some(k) = e.index_in("quantities").filter(|k| *k < ready.len()) else {
                    self.counters
                        .items_rejected
                        .fetch_add(ready.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    return Err(ConnectorError::Permanent {
                        status: Some(200),
                        code: e.code.clone(),
                        message: format!(
                            "inventorySetQuantities refused the request: {}",
                            e.describe()
                        ),
                    });
                };
                let i = ready[k].0;
                let sku = items[i].sku.as_str().to_owned();
                match e.code.as_deref() {
                    Some("CHANGE_FROM_QUANTITY_STALE") => stale.push(sku),
                    Some("ITEM_NOT_STOCKED_AT_LOCATION") => self.set_cached_available(&sku, None),
                    Some("INVALID_INVENTORY_ITEM") => {
                        // Deleted meanwhile: look the SKU up again in the next plan.
                        self.forget(&sku);
                        if self.lookup(&[sku.as_str()]).await?.is_empty() {
                            outcomes[i] = Some(ItemOutcome::NotListed {
                                error: e.describe(),
                            });
                            failed[k] = true;
                        }
                    }
                    _ => {
                        self.counters
                            .items_rejected
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        outcomes[i] = Some(ItemOutcome::Rejected {
                            code: e.code.clone(),
                            error: e.describe(),
                        });
                        failed[k] = true;
                    }
                }
            }
            if !stale.is_empty() {
                self.counters
                    .stale_replans
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(
                    items = stale.len(),
                    "Shopify quantities changed meanwhile; re-reading and re-planning."
                );
                self.reread(&stale).await?;
            }
            pending = ready
                .into_iter()
                .zip(failed)
                .filter(|(_, f)| !f)
                .map(|((i, _), _)| i)
                .collect();
        }
        for i in pending {
            outcomes[i] = Some(ItemOutcome::Retry {
                error: format!(
                    "the quantity kept changing at Shopify during {MAX_PLANS} attempts (CHANGE_FROM_QUANTITY_STALE)"
                ),
            });
        }
        // Earlier duplicates share the outcome of their SKU's last item.
        let by_sku: HashMap<&str, ItemOutcome> = last
            .iter()
            .filter_map(|(sku, i)| outcomes[*i].clone().map(|o| (*sku, o)))
            .collect();
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                outcomes[i]
                    .clone()
                    .or_else(|| by_sku.get(it.sku.as_str()).cloned())
                    .unwrap_or(ItemOutcome::Retry {
                        error: "not attempted".into(),
                    })
            })
            .collect())
    }
}
