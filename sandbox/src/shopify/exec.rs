//! Executes one parsed operation against the store: the root fields the connector (and a careful
//! client) uses, projected onto the client's selection set, with Shopify's requested/actual cost.
//!
//! | root field | kind | notes |
//! |---|---|---|
//! | `shop`, `location(id)`, `product(id)`, `productVariant(id)`, `inventoryItem(id)`, `order(id)`, `nodes(ids)` | query | `null` for unknown ids |
//! | `productVariants(first/after, query, reverse)` | query | search: `sku:` terms (quoted or bare) joined by `OR`/`AND`/space |
//! | `orders(first/after, sortKey, query, reverse)` | query | search: `updated_at:`/`created_at:` with `>`,`>=`,`<`,`<=`, `status:any/open/closed/cancelled/not_closed` |
//! | `productSet(input, synchronous)` | mutation | create/update with variants, options, inventoryQuantities; all-or-nothing |
//! | `inventorySetQuantities(input) @idempotent(key:)` | mutation | 2026-04 rules: `changeFromQuantity` per entry, mandatory key, replay; all-or-nothing |
//! | `inventoryActivate(inventoryItemId, locationId, available)` | mutation | stocks an item at a location |
//! | `productUpdate(product)` | mutation | scalar fields incl. `status` |
//! | `productDelete(input)` | mutation | deletes the product, its variants and inventory items |

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::graphql::{Field, Operation, OperationKind, Selection};
use super::state::{
    InventoryItem, Product, Replay, ShopState, Variant, cents, gid, iso, parse_gid, price_text,
};
use crate::faults::Faults;
use crate::record::{Money, NewWrite, Recorder};

/// Largest `first`/`last` of a connection.
pub const MAX_PAGE: i64 = 250;
/// Largest input array (`quantities`, `variants` …).
pub const MAX_INPUT_ARRAY: usize = 250;
/// Cost of a mutation root field.
pub const MUTATION_COST: u64 = 10;
/// The first API version with mandatory `changeFromQuantity` and `@idempotent`.
pub const IDEMPOTENCY_VERSION: &str = "2026-04";
/// `reason`s inventorySetQuantities accepts.
pub const REASONS: [&str; 17] = [
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_created",
    "movement_updated",
    "movement_received",
    "movement_canceled",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
];
/// Highest quantity accepted.
const MAX_QUANTITY: i64 = 1_000_000_000;

/// Requested cost of an operation, Shopify-style: scalars 0, objects 1, connections
/// `2 + first × (1 + node cost)`, `nodes(ids)` one per id, mutations 10 per root field.
pub fn requested_cost(op: &Operation, vars: &Value) -> u64 {
    let roots = op.root_fields();
    if op.kind == OperationKind::Mutation {
        return MUTATION_COST * roots.len() as u64;
    }
    roots.iter().map(|f| field_cost(f, vars)).sum()
}

fn size_arg(f: &Field, vars: &Value) -> Option<u64> {
    f.arg("first", vars)
        .or_else(|| f.arg("last", vars))
        .and_then(|v| v.as_u64())
}

fn children_cost(sels: &[Selection], vars: &Value) -> u64 {
    sels.iter()
        .map(|s| match s {
            Selection::Field(f) => field_cost(f, vars),
            Selection::InlineFragment { selections, .. } => children_cost(selections, vars),
        })
        .sum()
}

/// The per-node cost of a connection's selection: what `nodes { … }` / `edges { node { … } }` select.
fn node_cost(sels: &[Selection], vars: &Value) -> u64 {
    let mut c = 0;
    for s in sels {
        if let Selection::Field(f) = s {
            match f.name.as_str() {
                "nodes" => c += children_cost(&f.selections, vars),
                "edges" => {
                    for e in &f.selections {
                        if let Selection::Field(n) = e
                            && n.name == "node"
                        {
                            c += children_cost(&n.selections, vars);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    1 + c
}

fn field_cost(f: &Field, vars: &Value) -> u64 {
    if f.selections.is_empty() {
        return 0;
    }
    if let Some(n) = size_arg(f, vars) {
        return 2u64.saturating_add(n.saturating_mul(node_cost(&f.selections, vars)));
    }
    if f.name == "nodes"
        && let Some(ids) = f.arg("ids", vars)
    {
        let n = ids.as_array().map_or(0, Vec::len) as u64;
        return n.saturating_mul(1 + children_cost(&f.selections, vars));
    }
    1 + children_cost(&f.selections, vars)
}

/// A top-level GraphQL error.
#[derive(Debug, Clone)]
pub(crate) struct GqlError {
    pub message: String,
    pub code: &'static str,
}

impl GqlError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        GqlError {
            message: message.into(),
            code,
        }
    }
}

/// A userError `{field, message, code}` with `field` as a list of strings.
fn user_error(field: &[&str], message: impl Into<String>, code: &str) -> Value {
    json!({"field": field, "message": message.into(), "code": code})
}

/// What executing one operation produced.
pub(crate) struct Outcome {
    pub data: Value,
    pub errors: Vec<Value>,
    pub actual_cost: u64,
}

/// Everything one execution needs.
pub(crate) struct Exec<'a> {
    pub st: &'a mut ShopState,
    pub vars: &'a Value,
    pub version: &'a str,
    pub now: DateTime<Utc>,
    pub faults: &'a Faults,
    pub recorder: &'a Recorder,
    pub marketplace: &'static str,
    pub path: &'a str,
    pub actual: u64,
}

impl Exec<'_> {
    /// Runs every root field; a field that fails is `null` with an error naming its path.
    pub(crate) fn run(mut self, op: &Operation) -> Outcome {
        let mut data = Map::new();
        let mut errors = Vec::new();
        for f in op.root_fields() {
            let key = f.response_key().to_owned();
            let result = match op.kind {
                OperationKind::Query => self.query_root(f),
                OperationKind::Mutation => {
                    self.actual += MUTATION_COST;
                    self.mutation_root(f)
                }
            }
            .and_then(|v| {
                if f.selections.is_empty() {
                    Ok(v)
                } else {
                    self.project(&v, &f.selections).map_err(|m| GqlError {
                        message: m,
                        code: "undefinedField",
                    })
                }
            });
            match result {
                Ok(v) => {
                    data.insert(key.clone(), v);
                }
                Err(e) => {
                    data.insert(key.clone(), Value::Null);
                    errors.push(json!({"message": e.message, "path": [key],
                                       "extensions": {"code": e.code}}));
                }
            }
        }
        Outcome {
            data: Value::Object(data),
            errors,
            actual_cost: self.actual,
        }
    }

    fn arg(&self, f: &Field, name: &str) -> Value {
        f.arg(name, self.vars).unwrap_or(Value::Null)
    }

    // ---- projection -----------------------------------------------------------------------------

    fn project(&mut self, v: &Value, sels: &[Selection]) -> Result<Value, String> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| self.project(i, sels))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(obj) => {
                self.actual += 1;
                let mut out = Map::new();
                self.project_into(obj, sels, &mut out)?;
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn project_into(
        &mut self,
        obj: &Map<String, Value>,
        sels: &[Selection],
        out: &mut Map<String, Value>,
    ) -> Result<(), String> {
        let typename = obj
            .get("__typename")
            .and_then(Value::as_str)
            .unwrap_or("Object")
            .to_owned();
        for s in sels {
            match s {
                Selection::InlineFragment {
                    type_condition,
                    selections,
                } => {
                    if type_condition.as_deref().is_none_or(|t| t == typename) {
                        self.project_into(obj, selections, out)?;
                    }
                }
                Selection::Field(f) => {
                    let value = self.field_value(obj, &typename, f)?;
                    let value = if f.selections.is_empty() {
                        if value.is_object()
                            || value
                                .as_array()
                                .is_some_and(|a| a.iter().any(Value::is_object))
                        {
                            return Err(format!(
                                "Field '{}' of type '{typename}' must have a selection of subfields",
                                f.name
                            ));
                        }
                        value
                    } else {
                        if !(value.is_object() || value.is_array() || value.is_null()) {
                            return Err(format!(
                                "Selections can't be made on scalars (field '{}')",
                                f.name
                            ));
                        }
                        self.project(&value, &f.selections)?
                    };
                    out.insert(f.response_key().to_owned(), value);
                }
            }
        }
        Ok(())
    }

    fn field_value(
        &mut self,
        obj: &Map<String, Value>,
        typename: &str,
        f: &Field,
    ) -> Result<Value, String> {
        let name = f.name.as_str();
        if name == "__typename" {
            return Ok(Value::String(typename.to_owned()));
        }
        match (name, obj.get(&format!("_{name}"))) {
            ("inventoryLevel", _) if obj.contains_key("_levels") => {
                let loc = self.arg(f, "locationId");
                let loc = loc.as_str().unwrap_or_default();
                return Ok(obj
                    .get("_levels")
                    .and_then(|l| l.get(loc))
                    .cloned()
                    .unwrap_or(Value::Null));
            }
            ("quantities", Some(q)) => {
                let names = self.arg(f, "names");
                let Some(names) = names.as_array() else {
                    return Err("Field 'quantities' is missing required argument 'names'".into());
                };
                return names
                    .iter()
                    .map(|n| {
                        let n = n.as_str().unwrap_or_default();
                        q.get(n)
                            .map(|v| json!({"__typename": "InventoryQuantity", "name": n, "quantity": v}))
                            .ok_or_else(|| format!("Invalid quantity name {n:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Value::Array);
            }
            ("variants" | "lineItems", Some(Value::Array(items))) => {
                let keyed: Vec<(String, Value)> = items
                    .iter()
                    .map(|i| {
                        (
                            i.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
                            i.clone(),
                        )
                    })
                    .collect();
                let conn = connection(keyed, &self.arg(f, "first"), &self.arg(f, "after"), false)
                    .map_err(|e| e.message)?;
                self.actual += 2;
                return Ok(conn);
            }
            _ => {}
        }
        obj.get(name)
            .cloned()
            .ok_or_else(|| format!("Field '{name}' doesn't exist on type '{typename}'"))
    }

    // ---- queries --------------------------------------------------------------------------------

    fn query_root(&mut self, f: &Field) -> Result<Value, GqlError> {
        let st = &*self.st;
        let id_arg = |kind: &str| self.arg(f, "id").as_str().and_then(|s| parse_gid(kind, s));
        Ok(match f.name.as_str() {
            "shop" => json!({
                "__typename": "Shop",
                "id": "gid://shopify/Shop/1",
                "name": st.shop_name,
                "currencyCode": st.currency,
                "myshopifyDomain": st.domain,
            }),
            "location" => id_arg("Location")
                .filter(|id| st.locations.contains_key(id))
                .map_or(Value::Null, |id| st.location_json(id)),
            "product" => id_arg("Product")
                .and_then(|id| st.products.get(&id))
                .map_or(Value::Null, |p| st.product_json(p, true)),
            "productVariant" => id_arg("ProductVariant")
                .and_then(|id| st.variants.get(&id))
                .map_or(Value::Null, |v| st.variant_json(v, true)),
            "inventoryItem" => id_arg("InventoryItem")
                .and_then(|id| st.items.get(&id))
                .map_or(Value::Null, |i| st.item_json(i)),
            "order" => id_arg("Order")
                .and_then(|id| st.orders.get(&id))
                .map_or(Value::Null, |o| st.order_json(o)),
            "nodes" => {
                let ids = self.arg(f, "ids");
                let Some(ids) = ids.as_array() else {
                    return Err(GqlError::new(
                        "missingRequiredArguments",
                        "Field 'nodes' is missing required arguments: ids",
                    ));
                };
                if ids.len() > MAX_INPUT_ARRAY {
                    return Err(GqlError::new(
                        "MAX_INPUT_SIZE_EXCEEDED",
                        format!(
                            "The input array size of {} is greater than the maximum allowed of {MAX_INPUT_ARRAY}.",
                            ids.len()
                        ),
                    ));
                }
                Value::Array(
                    ids.iter()
                        .map(|id| st.node(id.as_str().unwrap_or("")))
                        .collect(),
                )
            }
            "productVariants" => {
                let search = self.arg(f, "query");
                let terms = search::parse(search.as_str().unwrap_or(""));
                let items: Vec<(String, Value)> = st
                    .variants
                    .values()
                    .filter(|v| search::matches(&terms, |field| variant_field(v, field)))
                    .map(|v| (format!("{:020}", v.id), st.variant_json(v, true)))
                    .collect();
                connection(
                    items,
                    &self.arg(f, "first"),
                    &self.arg(f, "after"),
                    self.arg(f, "reverse").as_bool().unwrap_or(false),
                )?
            }
            "orders" => {
                let search = self.arg(f, "query");
                let terms = search::parse(search.as_str().unwrap_or(""));
                let sort = self.arg(f, "sortKey");
                let sort = sort.as_str().unwrap_or("PROCESSED_AT");
                let mut orders: Vec<_> = st
                    .orders
                    .values()
                    .filter(|o| search::matches(&terms, |field| order_field(o, field)))
                    .collect();
                let key = |o: &super::state::Order| match sort {
                    "UPDATED_AT" => format!("{:020}:{:020}", o.updated.timestamp_millis(), o.id),
                    "ID" => format!("{:020}", o.id),
                    _ => format!("{:020}:{:020}", o.created.timestamp_millis(), o.id),
                };
                orders.sort_by_key(|o| key(o));
                let items = orders
                    .into_iter()
                    .map(|o| (key(o), st.order_json(o)))
                    .collect();
                connection(
                    items,
                    &self.arg(f, "first"),
                    &self.arg(f, "after"),
                    self.arg(f, "reverse").as_bool().unwrap_or(false),
                )?
            }
            other => {
                return Err(GqlError::new(
                    "undefinedField",
                    format!("Field '{other}' doesn't exist on type 'QueryRoot'"),
                ));
            }
        })
    }

    // ---- mutations ------------------------------------------------------------------------------

    fn mutation_root(&mut self, f: &Field) -> Result<Value, GqlError> {
        match f.name.as_str() {
            "productSet" => self.product_set(f),
            "inventorySetQuantities" => self.inventory_set_quantities(f),
            "inventoryActivate" => self.inventory_activate(f),
            "productUpdate" => self.product_update(f),
            "productDelete" => self.product_delete(f),
            other => Err(GqlError::new(
                "undefinedField",
                format!("Field '{other}' doesn't exist on type 'Mutation'"),
            )),
        }
    }

    fn input_object(
        &self,
        f: &Field,
        name: &str,
        ty: &str,
    ) -> Result<Map<String, Value>, GqlError> {
        match self.arg(f, name) {
            Value::Object(m) => Ok(m),
            _ => Err(GqlError::new(
                "INVALID_VARIABLE",
                format!("Variable ${name} of type {ty}! was provided invalid value"),
            )),
        }
    }

    fn rejected(&self, operation: &str, sku: &str) -> Option<String> {
        if sku.is_empty() {
            return None;
        }
        self.faults
            .sku_rejection(self.marketplace, operation, self.path, sku)
            .map(|r| r.message)
    }

    fn product_set(&mut self, f: &Field) -> Result<Value, GqlError> {
        let input = self.input_object(f, "input", "ProductSetInput")?;
        let mut errors = Vec::new();
        let str_of = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
        // The product.
        let existing = match input.get("id") {
            None | Some(Value::Null) => None,
            Some(v) => match v
                .as_str()
                .and_then(|s| parse_gid("Product", s))
                .filter(|id| self.st.products.contains_key(id))
            {
                Some(id) => Some(id),
                None => {
                    errors.push(user_error(
                        &["input", "id"],
                        "Product does not exist",
                        "PRODUCT_DOES_NOT_EXIST",
                    ));
                    None
                }
            },
        };
        let title = str_of("title");
        let creating = existing.is_none() && !input.contains_key("id");
        if (creating && title.as_deref().is_none_or(|t| t.trim().is_empty()))
            || title.as_deref().is_some_and(|t| t.trim().is_empty())
        {
            errors.push(user_error(
                &["input", "title"],
                "Title can't be blank",
                "INVALID_PRODUCT",
            ));
        }
        if title.as_deref().is_some_and(|t| t.chars().count() > 255) {
            errors.push(user_error(
                &["input", "title"],
                "Title is too long (maximum is 255 characters)",
                "INVALID_PRODUCT",
            ));
        }
        let status = str_of("status");
        if status
            .as_deref()
            .is_some_and(|s| !matches!(s, "ACTIVE" | "DRAFT" | "ARCHIVED"))
        {
            errors.push(user_error(
                &["input", "status"],
                "Status is invalid",
                "INVALID_INPUT",
            ));
        }
        // Options.
        let mut options: Option<Vec<(String, Vec<String>)>> = None;
        if let Some(po) = input.get("productOptions").filter(|v| !v.is_null()) {
            let mut out = Vec::new();
            for (i, o) in po.as_array().into_iter().flatten().enumerate() {
                let idx = i.to_string();
                let name = o.get("name").and_then(Value::as_str).unwrap_or("").trim();
                let values: Vec<String> = o
                    .get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.get("name").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect();
                if name.is_empty() {
                    errors.push(user_error(
                        &["input", "productOptions", &idx, "name"],
                        "Option name can't be blank",
                        "INVALID_INPUT",
                    ));
                } else if out.iter().any(|(n, _): &(String, Vec<String>)| n == name) {
                    errors.push(user_error(
                        &["input", "productOptions", &idx, "name"],
                        "Duplicated option name.",
                        "DUPLICATED_OPTION_NAME",
                    ));
                }
                if values.is_empty() {
                    errors.push(user_error(
                        &["input", "productOptions", &idx, "values"],
                        "Option values can't be blank",
                        "OPTION_VALUES_MISSING",
                    ));
                }
                out.push((name.to_owned(), values));
            }
            if out.len() > 3 {
                errors.push(user_error(
                    &["input", "productOptions"],
                    "Can only specify a maximum of 3 options",
                    "OPTIONS_OVER_LIMIT",
                ));
            }
            options = Some(out);
        }
        // Variants.
        let variants_in: Option<Vec<Value>> = input
            .get("variants")
            .filter(|v| !v.is_null())
            .map(|v| v.as_array().cloned().unwrap_or_default());
        if let Some(vs) = &variants_in {
            if vs.len() > 2048 {
                errors.push(user_error(
                    &["input", "variants"],
                    "Too many variants",
                    "VARIANTS_OVER_LIMIT",
                ));
            }
            if !vs.is_empty() && options.is_none() && creating {
                errors.push(user_error(
                    &["input", "productOptions"],
                    "Product options input is required when updating variants",
                    "PRODUCT_OPTIONS_INPUT_MISSING",
                ));
            }
            let opts_now: Vec<(String, Vec<String>)> = options.clone().unwrap_or_else(|| {
                existing
                    .and_then(|id| self.st.products.get(&id))
                    .map(|p| p.options.clone())
                    .unwrap_or_default()
            });
            let mut seen_skus: Vec<String> = Vec::new();
            for (i, v) in vs.iter().enumerate() {
                let idx = i.to_string();
                let at = |k: &'static str| -> Vec<String> {
                    vec!["input".into(), "variants".into(), idx.clone(), k.into()]
                };
                let push = |errors: &mut Vec<Value>, k: &'static str, m: String, c: &str| {
                    errors.push(json!({"field": at(k), "message": m, "code": c}));
                };
                if let Some(vid) = v.get("id").filter(|x| !x.is_null()) {
                    let ok = vid
                        .as_str()
                        .and_then(|s| parse_gid("ProductVariant", s))
                        .and_then(|id| self.st.variants.get(&id))
                        .is_some_and(|var| Some(var.product_id) == existing);
                    if !ok {
                        push(
                            &mut errors,
                            "id",
                            "Product variant does not exist".into(),
                            "PRODUCT_VARIANT_DOES_NOT_EXIST",
                        );
                    }
                }
                match v.get("optionValues").and_then(Value::as_array) {
                    None => push(
                        &mut errors,
                        "optionValues",
                        "Option values are required".into(),
                        "OPTION_VALUES_MISSING",
                    ),
                    Some(ovs) => {
                        for ov in ovs {
                            let on = ov.get("optionName").and_then(Value::as_str).unwrap_or("");
                            let val = ov.get("name").and_then(Value::as_str).unwrap_or("");
                            match opts_now.iter().find(|(n, _)| n == on) {
                                None => push(
                                    &mut errors,
                                    "optionValues",
                                    format!("Option does not exist: {on:?}"),
                                    "OPTION_DOES_NOT_EXIST",
                                ),
                                Some((_, vals)) if !vals.iter().any(|x| x == val) => push(
                                    &mut errors,
                                    "optionValues",
                                    format!("Option value does not exist: {val:?}"),
                                    "OPTION_VALUE_DOES_NOT_EXIST",
                                ),
                                Some(_) => {}
                            }
                        }
                    }
                }
                if let Some(p) = v.get("price").filter(|p| !p.is_null()) {
                    let text = p
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| p.as_f64().map(|f| f.to_string()));
                    if text.as_deref().and_then(cents).is_none() {
                        push(
                            &mut errors,
                            "price",
                            "Price is invalid".into(),
                            "INVALID_VARIANT",
                        );
                    }
                }
                let sku = v
                    .get("sku")
                    .and_then(Value::as_str)
                    .or_else(|| {
                        v.get("inventoryItem")
                            .and_then(|i| i.get("sku"))
                            .and_then(Value::as_str)
                    })
                    .unwrap_or("")
                    .to_owned();
                if !sku.is_empty() {
                    if sku.chars().count() > 255 {
                        push(
                            &mut errors,
                            "sku",
                            "SKU is too long (maximum is 255 characters)".into(),
                            "INVALID_VARIANT",
                        );
                    }
                    let this_id = v
                        .get("id")
                        .and_then(Value::as_str)
                        .and_then(|s| parse_gid("ProductVariant", s));
                    let taken = self.st.variants.values().any(|o| {
                        o.sku == sku && Some(o.product_id) != existing && Some(o.id) != this_id
                    });
                    if seen_skus.contains(&sku) || taken {
                        push(
                            &mut errors,
                            "sku",
                            format!("SKU {sku:?} is already used by another variant"),
                            "DUPLICATED_VALUE",
                        );
                    }
                    seen_skus.push(sku.clone());
                    if let Some(m) = self.rejected("productSet", &sku) {
                        push(&mut errors, "sku", m, "INVALID_VARIANT");
                    }
                }
                for (j, q) in v
                    .get("inventoryQuantities")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let loc = q
                        .get("locationId")
                        .and_then(Value::as_str)
                        .and_then(|s| parse_gid("Location", s));
                    let name = q.get("name").and_then(Value::as_str).unwrap_or("");
                    let qty = q.get("quantity").and_then(Value::as_i64);
                    if loc.is_none_or(|l| !self.st.locations.contains_key(&l)) {
                        errors.push(json!({"field": ["input", "variants", idx, "inventoryQuantities", j.to_string(), "locationId"],
                                           "message": "Location does not exist", "code": "INVALID_INPUT"}));
                    }
                    if !matches!(name, "available" | "on_hand")
                        || qty.is_none_or(|q| !(0..=MAX_QUANTITY).contains(&q))
                    {
                        errors.push(json!({"field": ["input", "variants", idx, "inventoryQuantities", j.to_string()],
                                           "message": "Inventory quantity is invalid", "code": "INVALID_INPUT"}));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Ok(json!({"product": null, "productSetOperation": null, "userErrors": errors}));
        }
        // Apply.
        let now = self.now;
        let pid = match existing {
            Some(id) => id,
            None => {
                let id = self.st.id();
                self.st.products.insert(
                    id,
                    Product {
                        id,
                        title: String::new(),
                        description_html: String::new(),
                        vendor: String::new(),
                        status: "ACTIVE".into(),
                        options: Vec::new(),
                        variant_ids: Vec::new(),
                        created: now,
                        updated: now,
                    },
                );
                id
            }
        };
        {
            let p = self
                .st
                .products
                .get_mut(&pid)
                .expect("product just ensured");
            if let Some(t) = title {
                p.title = t;
            }
            if let Some(d) = str_of("descriptionHtml") {
                p.description_html = d;
            }
            if let Some(v) = str_of("vendor") {
                p.vendor = v;
            }
            if let Some(s) = status {
                p.status = s;
            }
            if let Some(o) = options {
                p.options = o;
            }
            p.updated = now;
        }
        let variants_in = match variants_in {
            Some(v) => Some(v),
            None if existing.is_none() => Some(vec![json!({})]),
            None => None,
        };
        if let Some(vs) = variants_in {
            let old: Vec<u64> = self.st.products[&pid].variant_ids.clone();
            let mut kept = Vec::new();
            for v in &vs {
                let vid = match v
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|s| parse_gid("ProductVariant", s))
                {
                    Some(id) => id,
                    None => {
                        let id = self.st.id();
                        let item_id = self.st.id();
                        self.st.items.insert(
                            item_id,
                            InventoryItem {
                                id: item_id,
                                variant_id: id,
                                tracked: true,
                                levels: Default::default(),
                                updated: now,
                            },
                        );
                        self.st.variants.insert(
                            id,
                            Variant {
                                id,
                                product_id: pid,
                                sku: String::new(),
                                price: 0,
                                barcode: None,
                                options: Vec::new(),
                                inventory_item_id: item_id,
                                created: now,
                                updated: now,
                            },
                        );
                        id
                    }
                };
                kept.push(vid);
                let var = self.st.variants.get_mut(&vid).expect("variant exists");
                if let Some(s) = v.get("sku").and_then(Value::as_str).or_else(|| {
                    v.get("inventoryItem")
                        .and_then(|i| i.get("sku"))
                        .and_then(Value::as_str)
                }) {
                    var.sku = s.to_owned();
                }
                if let Some(p) = v
                    .get("price")
                    .and_then(|p| {
                        p.as_str()
                            .map(str::to_owned)
                            .or_else(|| p.as_f64().map(|f| f.to_string()))
                    })
                    .and_then(|t| cents(&t))
                {
                    var.price = p;
                }
                if let Some(b) = v.get("barcode") {
                    var.barcode = b.as_str().map(str::to_owned);
                }
                if let Some(ovs) = v.get("optionValues").and_then(Value::as_array) {
                    var.options = ovs
                        .iter()
                        .map(|o| {
                            (
                                o.get("optionName")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_owned(),
                                o.get("name")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_owned(),
                            )
                        })
                        .filter(|(n, _)| n != "Title")
                        .collect();
                }
                var.updated = now;
                let (item_id, sku, price) = (var.inventory_item_id, var.sku.clone(), var.price);
                if let Some(t) = v
                    .get("inventoryItem")
                    .and_then(|i| i.get("tracked"))
                    .and_then(Value::as_bool)
                    && let Some(item) = self.st.items.get_mut(&item_id)
                {
                    item.tracked = t;
                }
                let mut quantity = None;
                for q in v
                    .get("inventoryQuantities")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let loc = q
                        .get("locationId")
                        .and_then(Value::as_str)
                        .and_then(|s| parse_gid("Location", s))
                        .unwrap_or(0);
                    let qty = q.get("quantity").and_then(Value::as_i64).unwrap_or(0);
                    self.st.set_available(item_id, loc, qty, now);
                    quantity = u32::try_from(qty).ok();
                }
                if !sku.is_empty() {
                    self.recorder.write(
                        self.marketplace,
                        NewWrite {
                            operation: "productSet",
                            sku,
                            listing_ref: Some(gid("ProductVariant", vid)),
                            quantity,
                            price: Some(Money::new(price_text(price), self.st.currency.clone())),
                            ..NewWrite::default()
                        },
                    );
                }
            }
            for gone in old.iter().filter(|id| !kept.contains(id)) {
                if let Some(v) = self.st.variants.remove(gone) {
                    self.st.items.remove(&v.inventory_item_id);
                }
            }
            self.st.products.get_mut(&pid).expect("product").variant_ids = kept;
        }
        let p = &self.st.products[&pid];
        Ok(
            json!({"product": self.st.product_json(p, true), "productSetOperation": null, "userErrors": []}),
        )
    }

    fn inventory_set_quantities(&mut self, f: &Field) -> Result<Value, GqlError> {
        let strict = self.version >= IDEMPOTENCY_VERSION;
        let key = f
            .directive("idempotent")
            .and_then(|d| d.arguments.iter().find(|(n, _)| n == "key"))
            .map(|(_, v)| v.resolve(self.vars))
            .and_then(|v| v.as_str().map(str::to_owned));
        if strict && key.as_deref().is_none_or(|k| k.trim().is_empty()) {
            return Err(GqlError::new(
                "BAD_REQUEST",
                "The @idempotent directive with a non-empty key is required for inventorySetQuantities.",
            ));
        }
        let input = self.input_object(f, "input", "InventorySetQuantitiesInput")?;
        let input_value = Value::Object(input.clone());
        if let Some(k) = &key
            && let Some(r) = self.st.replays.get(k)
        {
            if r.input == input_value {
                return Ok(r.result.clone());
            }
            return Err(GqlError::new(
                "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                "The idempotency key was already used with different parameters.",
            ));
        }
        let quantities = input
            .get("quantities")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if quantities.len() > MAX_INPUT_ARRAY {
            return Err(GqlError::new(
                "MAX_INPUT_SIZE_EXCEEDED",
                format!(
                    "The input array size of {} is greater than the maximum allowed of {MAX_INPUT_ARRAY}.",
                    quantities.len()
                ),
            ));
        }
        let mut errors = Vec::new();
        let name = input
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !matches!(name.as_str(), "available" | "on_hand") {
            errors.push(user_error(
                &["input", "name"],
                "The quantity name must be either 'available' or 'on_hand'.",
                "INVALID_NAME",
            ));
        }
        let reason = input
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !REASONS.contains(&reason.as_str()) {
            errors.push(user_error(
                &["input", "reason"],
                "The specified reason is invalid.",
                "INVALID_REASON",
            ));
        }
        let reference = input
            .get("referenceDocumentUri")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if reference
            .as_deref()
            .is_some_and(|r| !r.contains(':') || r.len() > 255)
        {
            errors.push(user_error(
                &["input", "referenceDocumentUri"],
                "The reference document URI is invalid.",
                "INVALID_REFERENCE_DOCUMENT",
            ));
        }
        let mut plan: Vec<(u64, u64, i64, i64, String)> = Vec::new();
        for (i, q) in quantities.iter().enumerate() {
            let idx = i.to_string();
            let at = |k: &str| {
                vec![
                    "input".to_owned(),
                    "quantities".to_owned(),
                    idx.clone(),
                    k.to_owned(),
                ]
            };
            let mut err = |k: &str, m: String, c: &str| {
                errors.push(json!({"field": at(k), "message": m, "code": c}))
            };
            let item = q
                .get("inventoryItemId")
                .and_then(Value::as_str)
                .and_then(|s| parse_gid("InventoryItem", s))
                .filter(|id| self.st.items.contains_key(id));
            let loc = q
                .get("locationId")
                .and_then(Value::as_str)
                .and_then(|s| parse_gid("Location", s))
                .filter(|id| self.st.locations.contains_key(id));
            let qty = q.get("quantity").and_then(Value::as_i64);
            let (Some(item), Some(loc)) = (item, loc) else {
                if item.is_none() {
                    err(
                        "inventoryItemId",
                        "The specified inventory item could not be found.".into(),
                        "INVALID_INVENTORY_ITEM",
                    );
                }
                if loc.is_none() {
                    err(
                        "locationId",
                        "The specified location could not be found.".into(),
                        "INVALID_LOCATION",
                    );
                }
                continue;
            };
            let Some(qty) = qty else {
                err(
                    "quantity",
                    "Quantity is required.".into(),
                    "INVALID_QUANTITY_TOO_LOW",
                );
                continue;
            };
            if qty < 0 {
                err(
                    "quantity",
                    "The quantity can't be negative.".into(),
                    "INVALID_QUANTITY_NEGATIVE",
                );
                continue;
            }
            if qty > MAX_QUANTITY {
                err(
                    "quantity",
                    "The quantity can't be higher than 1,000,000,000.".into(),
                    "INVALID_QUANTITY_TOO_HIGH",
                );
                continue;
            }
            if plan.iter().any(|p| p.0 == item && p.1 == loc) {
                err(
                    "inventoryItemId",
                    "The combination of inventoryItemId and locationId must be unique.".into(),
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                );
                continue;
            }
            let inv = &self.st.items[&item];
            let sku = self
                .st
                .variants
                .get(&inv.variant_id)
                .map(|v| v.sku.clone())
                .unwrap_or_default();
            let Some(current) = inv.levels.get(&loc).copied() else {
                err(
                    "locationId",
                    "The item is not stocked at the location.".into(),
                    "ITEM_NOT_STOCKED_AT_LOCATION",
                );
                continue;
            };
            if strict {
                match q.get("changeFromQuantity") {
                    None => {
                        err(
                            "changeFromQuantity",
                            "changeFromQuantity is required; pass null to skip the check.".into(),
                            "CHANGE_FROM_QUANTITY_REQUIRED",
                        );
                        continue;
                    }
                    Some(Value::Null) => {}
                    Some(v) => {
                        if v.as_i64() != Some(current) {
                            err(
                                "changeFromQuantity",
                                format!(
                                    "The changeFromQuantity is stale: the current quantity is {current}."
                                ),
                                "CHANGE_FROM_QUANTITY_STALE",
                            );
                            continue;
                        }
                    }
                }
            }
            if let Some(m) = self.rejected("inventorySetQuantities", &sku) {
                err("inventoryItemId", m, "NON_MUTABLE_INVENTORY_ITEM");
                continue;
            }
            plan.push((item, loc, qty, current, sku));
        }
        let result = if errors.is_empty() {
            let group_id = self.st.id();
            let mut changes = Vec::new();
            for (item, loc, qty, current, sku) in plan {
                self.st.set_available(item, loc, qty, self.now);
                self.recorder.write(
                    self.marketplace,
                    NewWrite {
                        operation: "inventorySetQuantities",
                        sku,
                        listing_ref: Some(gid("InventoryItem", item)),
                        quantity: u32::try_from(qty).ok(),
                        batch_ref: Some(gid("InventoryAdjustmentGroup", group_id)),
                        ..NewWrite::default()
                    },
                );
                changes.push(json!({"__typename": "InventoryChange", "name": name, "delta": qty - current,
                    "quantityAfterChange": qty, "item": {"__typename": "InventoryItem", "id": gid("InventoryItem", item)},
                    "location": self.st.location_json(loc)}));
            }
            json!({"inventoryAdjustmentGroup": {"__typename": "InventoryAdjustmentGroup",
                    "id": gid("InventoryAdjustmentGroup", group_id), "reason": reason,
                    "referenceDocumentUri": reference, "createdAt": iso(self.now), "changes": changes},
                   "userErrors": []})
        } else {
            json!({"inventoryAdjustmentGroup": null, "userErrors": errors})
        };
        if let Some(k) = key {
            self.st.replays.insert(
                k,
                Replay {
                    input: input_value,
                    result: result.clone(),
                },
            );
        }
        Ok(result)
    }

    fn inventory_activate(&mut self, f: &Field) -> Result<Value, GqlError> {
        let item = self
            .arg(f, "inventoryItemId")
            .as_str()
            .and_then(|s| parse_gid("InventoryItem", s))
            .filter(|id| self.st.items.contains_key(id));
        let loc = self
            .arg(f, "locationId")
            .as_str()
            .and_then(|s| parse_gid("Location", s))
            .filter(|id| self.st.locations.contains_key(id));
        let (Some(item), Some(loc)) = (item, loc) else {
            let field = if item.is_none() {
                "inventoryItemId"
            } else {
                "locationId"
            };
            return Ok(
                json!({"inventoryLevel": null, "userErrors": [{"field": [field], "message": "Not found"}]}),
            );
        };
        let available = self.arg(f, "available").as_i64();
        let current = self.st.items[&item].levels.get(&loc).copied();
        if current.is_none() {
            self.st
                .set_available(item, loc, available.unwrap_or(0).max(0), self.now);
        }
        let inv = &self.st.items[&item];
        let q = inv.levels[&loc];
        let mut level = self.st.level_json(inv, loc, q);
        level["item"] = self.st.item_json(inv);
        Ok(json!({"inventoryLevel": level, "userErrors": []}))
    }

    fn product_update(&mut self, f: &Field) -> Result<Value, GqlError> {
        let input = self.input_object(f, "product", "ProductUpdateInput")?;
        let Some(pid) = input
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| parse_gid("Product", s))
            .filter(|id| self.st.products.contains_key(id))
        else {
            return Ok(
                json!({"product": null, "userErrors": [{"field": ["id"], "message": "Product does not exist"}]}),
            );
        };
        let status = input.get("status").and_then(Value::as_str);
        if status.is_some_and(|s| !matches!(s, "ACTIVE" | "DRAFT" | "ARCHIVED")) {
            return Ok(
                json!({"product": null, "userErrors": [{"field": ["status"], "message": "Status is invalid"}]}),
            );
        }
        if input
            .get("title")
            .and_then(Value::as_str)
            .is_some_and(|t| t.trim().is_empty())
        {
            return Ok(
                json!({"product": null, "userErrors": [{"field": ["title"], "message": "Title can't be blank"}]}),
            );
        }
        let skus: Vec<(u64, String)> = self.st.products[&pid]
            .variant_ids
            .iter()
            .filter_map(|v| self.st.variants.get(v))
            .map(|v| (v.id, v.sku.clone()))
            .collect();
        for (_, sku) in &skus {
            if let Some(m) = self.rejected("productUpdate", sku) {
                return Ok(
                    json!({"product": null, "userErrors": [{"field": ["id"], "message": m}]}),
                );
            }
        }
        let p = self.st.products.get_mut(&pid).expect("product");
        if let Some(s) = status {
            p.status = s.to_owned();
        }
        if let Some(t) = input.get("title").and_then(Value::as_str) {
            p.title = t.to_owned();
        }
        if let Some(d) = input.get("descriptionHtml").and_then(Value::as_str) {
            p.description_html = d.to_owned();
        }
        if let Some(v) = input.get("vendor").and_then(Value::as_str) {
            p.vendor = v.to_owned();
        }
        p.updated = self.now;
        for (_, sku) in skus.into_iter().filter(|(_, s)| !s.is_empty()) {
            self.recorder.write(
                self.marketplace,
                NewWrite {
                    operation: "productUpdate",
                    sku,
                    listing_ref: Some(gid("Product", pid)),
                    batch_ref: status.map(|s| format!("status={s}")),
                    ..NewWrite::default()
                },
            );
        }
        Ok(
            json!({"product": self.st.product_json(&self.st.products[&pid], true), "userErrors": []}),
        )
    }

    fn product_delete(&mut self, f: &Field) -> Result<Value, GqlError> {
        let input = self.input_object(f, "input", "ProductDeleteInput")?;
        let Some(pid) = input
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| parse_gid("Product", s))
            .filter(|id| self.st.products.contains_key(id))
        else {
            return Ok(
                json!({"deletedProductId": null, "userErrors": [{"field": ["id"], "message": "Product does not exist"}]}),
            );
        };
        let p = self.st.products.remove(&pid).expect("product");
        for vid in p.variant_ids {
            if let Some(v) = self.st.variants.remove(&vid) {
                self.st.items.remove(&v.inventory_item_id);
                if !v.sku.is_empty() {
                    self.recorder.write(
                        self.marketplace,
                        NewWrite {
                            operation: "productDelete",
                            sku: v.sku,
                            listing_ref: Some(gid("Product", pid)),
                            ..NewWrite::default()
                        },
                    );
                }
            }
        }
        Ok(json!({"deletedProductId": gid("Product", pid), "userErrors": []}))
    }
}

impl ShopState {
    /// Any node by GID (`nodes(ids:)`), `null` when unknown.
    fn node(&self, id: &str) -> Value {
        if let Some(n) = parse_gid("InventoryItem", id) {
            return self
                .items
                .get(&n)
                .map_or(Value::Null, |i| self.item_json(i));
        }
        if let Some(n) = parse_gid("ProductVariant", id) {
            return self
                .variants
                .get(&n)
                .map_or(Value::Null, |v| self.variant_json(v, true));
        }
        if let Some(n) = parse_gid("Product", id) {
            return self
                .products
                .get(&n)
                .map_or(Value::Null, |p| self.product_json(p, true));
        }
        if let Some(n) = parse_gid("Order", id) {
            return self
                .orders
                .get(&n)
                .map_or(Value::Null, |o| self.order_json(o));
        }
        if let Some(n) = parse_gid("Location", id) {
            return if self.locations.contains_key(&n) {
                self.location_json(n)
            } else {
                Value::Null
            };
        }
        Value::Null
    }
}

fn variant_field(v: &Variant, field: &str) -> Option<search::Field> {
    match field {
        "sku" => Some(search::Field::Text(v.sku.clone())),
        "id" => Some(search::Field::Text(v.id.to_string())),
        "updated_at" => Some(search::Field::Time(v.updated)),
        "created_at" => Some(search::Field::Time(v.created)),
        _ => None,
    }
}

fn order_field(o: &super::state::Order, field: &str) -> Option<search::Field> {
    match field {
        "updated_at" => Some(search::Field::Time(o.updated)),
        "created_at" | "processed_at" => Some(search::Field::Time(o.created)),
        "status" => Some(search::Field::Status {
            cancelled: o.cancelled.is_some(),
        }),
        "sku" => Some(search::Field::Texts(
            o.lines.iter().map(|l| l.sku.clone()).collect(),
        )),
        _ => None,
    }
}

/// Slices `(sort key, node)` pairs (sorted by key) into a connection page after `after`.
fn connection(
    mut items: Vec<(String, Value)>,
    first: &Value,
    after: &Value,
    reverse: bool,
) -> Result<Value, GqlError> {
    let Some(first) = first.as_i64() else {
        return Err(GqlError::new(
            "argumentLiteralsIncompatible",
            "You must provide one of first or last",
        ));
    };
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(GqlError::new(
            "argumentLiteralsIncompatible",
            format!("The maximum page size is {MAX_PAGE} (first: {first})"),
        ));
    }
    if reverse {
        items.reverse();
    }
    let start = match after.as_str() {
        None => 0,
        Some(c) => {
            let key = decode_cursor(c).ok_or_else(|| {
                GqlError::new(
                    "INVALID_CURSOR",
                    format!("Invalid cursor for current pagination sort: {c:?}"),
                )
            })?;
            items
                .iter()
                .position(|(k, _)| if reverse { *k < key } else { *k > key })
                .unwrap_or(items.len())
        }
    };
    let total = items.len();
    let page: Vec<(String, Value)> = items
        .into_iter()
        .skip(start)
        .take(usize::try_from(first).unwrap_or(0))
        .collect();
    let has_next = start + page.len() < total;
    let cursors: Vec<String> = page.iter().map(|(k, _)| encode_cursor(k)).collect();
    Ok(json!({
        "__typename": "Connection",
        "nodes": page.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        "edges": page.iter().zip(&cursors).map(|((_, v), c)| json!({"__typename": "Edge", "cursor": c, "node": v})).collect::<Vec<_>>(),
        "pageInfo": {"__typename": "PageInfo", "hasNextPage": has_next, "hasPreviousPage": start > 0,
                     "startCursor": cursors.first(), "endCursor": cursors.last()},
    }))
}

fn encode_cursor(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"k\":\"{key}\"}}"))
}

fn decode_cursor(c: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("k")?.as_str().map(str::to_owned)
}

/// Shopify's search syntax, as far as the fake filters by it.
pub(crate) mod search {
    use chrono::{DateTime, Utc};

    /// A value a term compares against.
    pub(crate) enum Field {
        Text(String),
        Texts(Vec<String>),
        Time(DateTime<Utc>),
        Status { cancelled: bool },
    }

    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Term {
        pub field: String,
        pub op: &'static str,
        pub value: String,
    }

    /// `OR` of `AND`s of terms.
    pub(crate) type Query = Vec<Vec<Term>>;

    /// Splits on white space outside quotes; quoted values keep their characters (`\` escapes).
    fn tokens(q: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quote: Option<char> = None;
        let mut chars = q.chars();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some(_), '\\') => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                (Some(qc), c) if c == qc => quote = None,
                (Some(_), c) => cur.push(c),
                (None, '"' | '\'') => quote = Some(c),
                (None, c) if c.is_whitespace() => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                (None, c) => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    pub(crate) fn parse(q: &str) -> Query {
        let mut out: Query = vec![Vec::new()];
        for t in tokens(q) {
            if t == "OR" {
                out.push(Vec::new());
                continue;
            }
            if t == "AND" {
                continue;
            }
            let Some((field, rest)) = t.split_once(':') else {
                continue;
            };
            let (op, value) = [">=", "<=", ">", "<"]
                .iter()
                .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v)))
                .unwrap_or(("=", rest));
            if let Some(last) = out.last_mut() {
                last.push(Term {
                    field: field.to_owned(),
                    op,
                    value: value.to_owned(),
                });
            }
        }
        out.retain(|g| !g.is_empty());
        out
    }

    fn term_matches(t: &Term, f: Option<Field>) -> bool {
        let Some(f) = f else { return true };
        match f {
            Field::Text(s) => s == t.value,
            Field::Texts(v) => v.contains(&t.value),
            Field::Status { cancelled } => match t.value.as_str() {
                "cancelled" => cancelled,
                "open" | "not_closed" => !cancelled,
                "closed" => cancelled,
                _ => true,
            },
            Field::Time(at) => {
                let Ok(v) = DateTime::parse_from_rfc3339(&t.value) else {
                    return false;
                };
                let v = v.with_timezone(&Utc);
                match t.op {
                    ">=" => at >= v,
                    ">" => at > v,
                    "<=" => at <= v,
                    "<" => at < v,
                    _ => at == v,
                }
            }
        }
    }

    /// True when `q` is empty or one of its groups matches entirely.
    pub(crate) fn matches(q: &Query, field: impl Fn(&str) -> Option<Field>) -> bool {
        q.is_empty()
            || q.iter()
                .any(|g| g.iter().all(|t| term_matches(t, field(&t.field))))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn quoted_values_and_or_groups() {
            let q = parse(
                r#"sku:"A B" OR sku:'it\'s' OR sku:plain updated_at:>='2026-01-01T00:00:00Z'"#,
            );
            assert_eq!(q.len(), 3);
            assert_eq!(q[0][0].value, "A B");
            assert_eq!(q[1][0].value, "it's");
            assert_eq!(q[2][1].op, ">=");
            assert_eq!(q[2][1].value, "2026-01-01T00:00:00Z");
            fn f(s: &'static str) -> impl Fn(&str) -> Option<Field> {
                move |field: &str| (field == "sku").then(|| Field::Text(s.to_owned()))
            }
            assert!(matches(&q, f("A B")));
            assert!(matches(&q, f("it's")));
            assert!(!matches(&q, f("A")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shopify::graphql::parse;

    #[test]
    fn costs_follow_connection_sizes() {
        let op = parse("query($n: Int!) { productVariants(first: $n) { nodes { id inventoryItem { id } } pageInfo { hasNextPage } } shop { name } }").unwrap();
        // 2 + 50 × (1 + inventoryItem 1) + shop 1
        assert_eq!(requested_cost(&op, &json!({"n": 50})), 2 + 50 * 2 + 1);
        let m = parse("mutation { a: productSet(input: {}) { userErrors { code } } b: productSet(input: {}) { userErrors { code } } }").unwrap();
        assert_eq!(requested_cost(&m, &json!({})), 20);
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(
            decode_cursor(&encode_cursor("0001:2")),
            Some("0001:2".into())
        );
        assert_eq!(decode_cursor("%%%"), None);
    }
}
