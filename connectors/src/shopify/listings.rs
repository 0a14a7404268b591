//! Listings: `productSet` (create or update a product with its variants) and delisting.
//!
//! Items with the same `group_id` in one call become the variants of one product (options from
//! their `options`); other items are one-variant products. When the product exists, productSet
//! replaces its variant list, so the product's other variants are read first and sent back by
//! `id` to keep them. New variants get `inventoryQuantities` at the location; existing ones get
//! their quantity through `inventorySetQuantities` afterwards (productSet may not set quantities
//! of existing variants at a location they are not stocked at, and the compare-and-set path is
//! the one that detects concurrent changes). productSet is all-or-nothing: variants named by a
//! userError are `Rejected` and the product is sent once more without them; an error naming no
//! variant rejects every item of the product.
//!
//! Delist: a product whose every variant is being delisted (or that has one variant) is set to
//! DRAFT with `productUpdate` — hidden from buyers but kept, so relisting is a productSet with
//! `status: ACTIVE` and the variant ids, inventory history and URLs survive (productDelete would
//! lose them). A variant of a product that keeps other variants is delisted by setting its
//! `available` to 0.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::ShopifyConnector;
use super::mapping::{self, PRODUCT_SET, PRODUCT_UPDATE, PRODUCT_VARIANTS};
use super::stock::VariantRef;
use crate::error::ConnectorError;
use crate::model::{ItemOutcome, ListingUpdate, Sku, StockUpdate};

/// Option used when a product's variants carry no options (Shopify's default).
const DEFAULT_OPTION: (&str, &str) = ("Title", "Default Title");
/// Option used to tell apart grouped variants that carry no options.
const SKU_OPTION: &str = "SKU";

fn malformed(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Malformed {
        status: Some(200),
        message: format!("productSet: {e}"),
    }
}

/// An existing variant kept in a product update.
#[derive(Debug, Clone)]
struct Kept {
    id: String,
    options: Vec<(String, String)>,
}

impl ShopifyConnector {
    /// push_listings.
    pub(crate) async fn set_products(
        &self,
        items: &[ListingUpdate],
    ) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let currency = self.currency().await?;
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, it) in items.iter().enumerate() {
            if it.price.currency != currency {
                outcomes[i] = Some(ItemOutcome::Rejected {
                    code: Some("CURRENCY".into()),
                    error: format!(
                        "price in {} but the shop sells in {currency}",
                        it.price.currency
                    ),
                });
                continue;
            }
            let key = match &it.group_id {
                Some(g) => format!("g:{g}"),
                None => format!("s:{}", it.sku),
            };
            groups.entry(key).or_default().push(i);
        }
        let skus: Vec<&str> = items.iter().map(|i| i.sku.as_str()).collect();
        let refs = self.resolve(&skus).await?;
        let mut stock_after: Vec<(usize, StockUpdate)> = Vec::new();
        for members in groups.values() {
            self.set_product(items, members, &refs, &mut outcomes, &mut stock_after)
                .await?;
        }
        if !stock_after.is_empty() {
            let updates: Vec<StockUpdate> = stock_after.iter().map(|(_, u)| u.clone()).collect();
            let results = self.set_stock(&updates).await?;
            for ((i, _), o) in stock_after.iter().zip(results) {
                outcomes[*i] = Some(match o {
                    ItemOutcome::Applied { .. } => ItemOutcome::Applied {
                        external_id: self.cached(items[*i].sku.as_str()).map(|r| r.variant_id),
                    },
                    other => other,
                });
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(ItemOutcome::Retry {
                    error: "not attempted".into(),
                })
            })
            .collect())
    }

    async fn set_product(
        &self,
        items: &[ListingUpdate],
        members: &[usize],
        refs: &HashMap<String, VariantRef>,
        outcomes: &mut [Option<ItemOutcome>],
        stock_after: &mut Vec<(usize, StockUpdate)>,
    ) -> Result<(), ConnectorError> {
        let product_id = members.iter().find_map(|i| {
            refs.get(items[*i].sku.as_str())
                .map(|r| r.product_id.clone())
        });
        // The product's other variants, kept by id.
        let mut kept: Vec<Kept> = Vec::new();
        if let Some(pid) = &product_id {
            let data = self
                .client
                .execute(&PRODUCT_VARIANTS, json!({"id": pid}))
                .await?;
            let nodes = data
                .pointer("/product/variants/nodes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for n in nodes {
                let sku = n.get("sku").and_then(Value::as_str).unwrap_or("");
                if members.iter().any(|i| items[*i].sku.as_str() == sku) {
                    continue;
                }
                let Some(id) = n.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let options = n
                    .get("selectedOptions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|o| {
                        Some((
                            o.get("name")?.as_str()?.to_owned(),
                            o.get("value")?.as_str()?.to_owned(),
                        ))
                    })
                    .collect();
                kept.push(Kept {
                    id: id.to_owned(),
                    options,
                });
            }
        }
        let mut active: Vec<usize> = members.to_vec();
        for _attempt in 0..2 {
            if active.is_empty() {
                return Ok(());
            }
            let input = self.product_input(items, &active, refs, product_id.as_deref(), &kept);
            let data = self
                .client
                .execute(&PRODUCT_SET, json!({"input": input, "synchronous": true}))
                .await?;
            let payload = data.get("productSet").cloned().unwrap_or(Value::Null);
            if payload.is_null() {
                return Err(malformed("no payload"));
            }
            let errors = mapping::user_errors(&payload).map_err(malformed)?;
            if errors.is_empty() {
                self.product_done(items, &active, refs, &payload, outcomes, stock_after)?;
                return Ok(());
            }
            let mut named = Vec::new();
            for e in &errors {
                match e.index_in("variants").filter(|k| *k < active.len()) {
                    Some(k) => named.push((active[k], e)),
                    None => {
                        // About the product, not a variant: every item of it is refused.
                        for i in &active {
                            outcomes[*i] = Some(ItemOutcome::Rejected {
                                code: e.code.clone(),
                                error: e.describe(),
                            });
                        }
                        self.counters
                            .items_rejected
                            .fetch_add(active.len() as u64, Ordering::Relaxed);
                        return Ok(());
                    }
                }
            }
            for (i, e) in named {
                if outcomes[i].is_none() {
                    self.counters.items_rejected.fetch_add(1, Ordering::Relaxed);
                    outcomes[i] = Some(ItemOutcome::Rejected {
                        code: e.code.clone(),
                        error: e.describe(),
                    });
                }
            }
            active.retain(|i| outcomes[*i].is_none());
        }
        for i in active {
            outcomes[i] = Some(ItemOutcome::Retry {
                error: "productSet kept refusing other variants of this product".into(),
            });
        }
        Ok(())
    }

    fn product_input(
        &self,
        items: &[ListingUpdate],
        members: &[usize],
        refs: &HashMap<String, VariantRef>,
        product_id: Option<&str>,
        kept: &[Kept],
    ) -> Value {
        let first = &items[members[0]];
        let grouped = members.len() + kept.len() > 1;
        // Each variant's option values.
        let variant_options = |it: &ListingUpdate| -> Vec<(String, String)> {
            if !it.options.is_empty() {
                it.options.clone()
            } else if grouped {
                vec![(SKU_OPTION.to_owned(), it.sku.to_string())]
            } else {
                vec![(DEFAULT_OPTION.0.to_owned(), DEFAULT_OPTION.1.to_owned())]
            }
        };
        let mut options: Vec<(String, Vec<String>)> = Vec::new();
        let mut add = |name: &str, value: &str| match options.iter_mut().find(|(n, _)| n == name) {
            Some((_, vals)) => {
                if !vals.iter().any(|v| v == value) {
                    vals.push(value.to_owned());
                }
            }
            None => options.push((name.to_owned(), vec![value.to_owned()])),
        };
        let mut variants = Vec::new();
        for i in members {
            let it = &items[*i];
            let opts = variant_options(it);
            for (n, v) in &opts {
                add(n, v);
            }
            let mut v = json!({
                "sku": it.sku.as_str(),
                "price": it.price.amount_text(),
                "optionValues": opts.iter().map(|(n, v)| json!({"optionName": n, "name": v})).collect::<Vec<_>>(),
                "inventoryItem": {"tracked": true},
            });
            if let Some(b) = it.barcode.as_deref().filter(|b| !b.trim().is_empty()) {
                v["barcode"] = json!(b);
            }
            match refs.get(it.sku.as_str()) {
                Some(r) if Some(r.product_id.as_str()) == product_id => {
                    v["id"] = json!(r.variant_id)
                }
                _ => {
                    v["inventoryQuantities"] = json!([{"locationId": self.config.location_id,
                                                        "name": "available", "quantity": it.quantity}]);
                }
            }
            variants.push(v);
        }
        for k in kept {
            for (n, v) in &k.options {
                add(n, v);
            }
            variants.push(json!({"id": k.id,
                "optionValues": k.options.iter().map(|(n, v)| json!({"optionName": n, "name": v})).collect::<Vec<_>>()}));
        }
        let mut input = json!({
            "title": first.title,
            "descriptionHtml": first.description,
            "status": "ACTIVE",
            "productOptions": options.iter().map(|(n, vals)| json!({"name": n,
                "values": vals.iter().map(|v| json!({"name": v})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            "variants": variants,
        });
        if let Some(brand) = first.brand.as_deref().filter(|b| !b.trim().is_empty()) {
            input["vendor"] = json!(brand);
        }
        if let Some(pid) = product_id {
            input["id"] = json!(pid);
        }
        input
    }

    fn product_done(
        &self,
        items: &[ListingUpdate],
        members: &[usize],
        refs: &HashMap<String, VariantRef>,
        payload: &Value,
        outcomes: &mut [Option<ItemOutcome>],
        stock_after: &mut Vec<(usize, StockUpdate)>,
    ) -> Result<(), ConnectorError> {
        let product = payload
            .get("product")
            .filter(|p| p.is_object())
            .ok_or_else(|| malformed("no product in the answer"))?;
        let pid = product
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("product without id"))?;
        let nodes = product
            .pointer("/variants/nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let count = nodes.len() as u64;
        for i in members {
            let it = &items[*i];
            let node = nodes
                .iter()
                .find(|n| n.get("sku").and_then(Value::as_str) == Some(it.sku.as_str()));
            let Some(node) = node else {
                outcomes[*i] = Some(ItemOutcome::Retry {
                    error: "productSet answered without this variant".into(),
                });
                continue;
            };
            let variant_id = node
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let item_id = node
                .pointer("/inventoryItem/id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let existed = refs
                .get(it.sku.as_str())
                .is_some_and(|r| r.product_id == pid && r.variant_id == variant_id);
            let prior = refs.get(it.sku.as_str()).and_then(|r| r.available);
            self.remember(
                it.sku.as_str(),
                VariantRef {
                    variant_id: variant_id.clone(),
                    inventory_item_id: item_id,
                    product_id: pid.to_owned(),
                    product_status: "ACTIVE".into(),
                    product_variants: count,
                    available: if existed {
                        prior
                    } else {
                        Some(i64::from(it.quantity))
                    },
                },
            );
            if existed {
                stock_after.push((
                    *i,
                    StockUpdate {
                        sku: it.sku.clone(),
                        external_id: Some(variant_id),
                        quantity: it.quantity,
                        price: None,
                        version: it.version,
                    },
                ));
            } else {
                outcomes[*i] = Some(ItemOutcome::Applied {
                    external_id: Some(variant_id),
                });
            }
        }
        Ok(())
    }

    /// delist (see the module docs).
    pub(crate) async fn take_down(&self, skus: &[Sku]) -> Result<Vec<ItemOutcome>, ConnectorError> {
        let names: Vec<&str> = skus.iter().map(Sku::as_str).collect();
        // Fresh lookups: the variant counts decide between DRAFT and a zero quantity.
        let refs = self.lookup(&names).await?;
        let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; skus.len()];
        let mut by_product: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, s) in names.iter().enumerate() {
            match refs.get(*s) {
                // Nothing listed: nothing to take down.
                None => outcomes[i] = Some(ItemOutcome::Applied { external_id: None }),
                Some(r) => by_product.entry(r.product_id.clone()).or_default().push(i),
            }
        }
        let mut zero: Vec<(usize, StockUpdate)> = Vec::new();
        for (pid, members) in by_product {
            let r = &refs[names[members[0]]];
            let distinct: std::collections::BTreeSet<&str> =
                members.iter().map(|i| names[*i]).collect();
            if distinct.len() as u64 >= r.product_variants {
                let data = self
                    .client
                    .execute(
                        &PRODUCT_UPDATE,
                        json!({"product": {"id": pid, "status": "DRAFT"}}),
                    )
                    .await?;
                let payload = data.get("productUpdate").cloned().unwrap_or(Value::Null);
                let errors = mapping::user_errors(&payload).map_err(malformed)?;
                for i in members {
                    outcomes[i] = Some(match errors.first() {
                        None => {
                            if let Some(mut c) = self.cached(names[i]) {
                                c.product_status = "DRAFT".into();
                                self.remember(names[i], c);
                            }
                            ItemOutcome::Applied {
                                external_id: refs.get(names[i]).map(|r| r.variant_id.clone()),
                            }
                        }
                        Some(e) => ItemOutcome::Rejected {
                            code: e.code.clone(),
                            error: e.describe(),
                        },
                    });
                }
            } else {
                for i in members {
                    zero.push((
                        i,
                        StockUpdate {
                            sku: skus[i].clone(),
                            external_id: None,
                            quantity: 0,
                            price: None,
                            version: 0,
                        },
                    ));
                }
            }
        }
        if !zero.is_empty() {
            let updates: Vec<StockUpdate> = zero.iter().map(|(_, u)| u.clone()).collect();
            for ((i, _), o) in zero.iter().zip(self.set_stock(&updates).await?) {
                outcomes[*i] = Some(match o {
                    ItemOutcome::NotListed { .. } => ItemOutcome::Applied { external_id: None },
                    other => other,
                });
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(ItemOutcome::Retry {
                    error: "not attempted".into(),
                })
            })
            .collect())
    }
}

#[cfg(test)]
impl ShopifyConnector {
    /// The productSet input of one new one-variant product (contract test).
    pub(crate) fn debug_product_input(&self, item: &ListingUpdate) -> Value {
        self.product_input(
            std::slice::from_ref(item),
            &[0],
            &HashMap::new(),
            None,
            &[Kept {
                id: "gid://shopify/ProductVariant/1".into(),
                options: vec![("Size".into(), "M".into())],
            }],
        )
    }
}
