//! The GraphQL side of the Vendure fake: `POST /admin-api` and `POST /shop-api`.
//!
//! Not a GraphQL engine: the handler finds the operation's root fields in the document text (the
//! selection set at depth 1, aliases resolved) and reads every argument from `variables`, under
//! the argument's own name (`$options`, `$input`, `$username` …). Results carry every field of the
//! object whatever the selection (clients ignore extra fields). Errors have Vendure's shapes:
//! `{"errors":[{"message","path":[field],"extensions":{"code"}}],"data":null}` with HTTP 200, and
//! 400 `GRAPHQL_VALIDATION_FAILED` for an unknown field or a document without one.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::state::{DEFAULT_LOCATION, Session, State as Store, stored};
use super::{AUTH_TOKEN_HEADER, CHANNEL_TOKEN_HEADER, MARKETPLACE, MAX_TAKE, Vendure};
use crate::faults::FaultKind;
use crate::gate::ConnKill;
use crate::record::{Money, NewWrite};

/// Which API a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Admin,
    Shop,
}

/// A GraphQL error: (code or none, message, field).
#[derive(Debug)]
pub(crate) struct GqlError {
    code: Option<&'static str>,
    message: String,
}

fn err(code: &'static str, message: impl Into<String>) -> GqlError {
    GqlError {
        code: Some(code),
        message: message.into(),
    }
}

fn forbidden() -> GqlError {
    err(
        "FORBIDDEN",
        "You are not currently authorized to perform this action",
    )
}

fn json_response(status: StatusCode, body: &Value, token: Option<&str>) -> Response {
    let mut resp = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body.to_string(),
    )
        .into_response();
    if let Some(t) = token.and_then(|t| HeaderValue::from_str(t).ok()) {
        resp.headers_mut().insert(AUTH_TOKEN_HEADER, t);
    }
    resp
}

fn validation_failed(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"errors": [{"message": message,
            "extensions": {"http": {"status": 400, "headers": {}}, "code": "GRAPHQL_VALIDATION_FAILED"}}]}),
        None,
    )
}

/// The root fields of the first operation in `doc`, aliases resolved, `__typename` left out.
pub(crate) fn root_fields(doc: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut depth = 0u32;
    let mut parens = 0u32;
    let mut chars = doc.char_indices().peekable();
    let mut pending: Option<String> = None;
    while let Some((_, c)) = chars.next() {
        match c {
            '#' => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
            }
            '(' => parens += 1,
            ')' => parens = parens.saturating_sub(1),
            '{' if parens == 0 => {
                if let Some(f) = pending.take() {
                    fields.push(f);
                }
                depth += 1;
            }
            '}' if parens == 0 => {
                if depth == 1 {
                    if let Some(f) = pending.take() {
                        fields.push(f);
                    }
                    return fields
                        .into_iter()
                        .filter(|f| !f.starts_with("__"))
                        .collect();
                }
                depth = depth.saturating_sub(1);
            }
            ':' if depth == 1 && parens == 0 => {
                // `alias: field` — the alias in `pending` is dropped.
                pending = None;
            }
            c if depth == 1 && parens == 0 && (c.is_ascii_alphabetic() || c == '_') => {
                let mut name = String::from(c);
                while let Some(&(_, n)) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if let Some(f) = pending.replace(name) {
                    fields.push(f);
                }
            }
            '.' if depth == 1 && parens == 0 => {
                // `... on X { }` / `...Fragment` at the root: not a field.
                pending = None;
                while let Some(&(_, '.')) = chars.peek() {
                    chars.next();
                }
                // Skip `on Type` or the fragment name.
                let mut words = 0;
                while let Some(&(_, n)) = chars.peek() {
                    if n == '{' || (words >= 2 && !n.is_whitespace()) {
                        break;
                    }
                    if n.is_ascii_alphanumeric() || n == '_' {
                        while let Some(&(_, m)) = chars.peek() {
                            if m.is_ascii_alphanumeric() || m == '_' {
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        words += 1;
                    } else {
                        chars.next();
                    }
                }
            }
            _ => {}
        }
    }
    Vec::new()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The whole request: latency, body, record, faults, then the fields.
pub(crate) async fn handle(State(v): State<Arc<Vendure>>, api: Api, req: Request) -> Response {
    let network = v.shared.faults.latency();
    if !network.is_zero() {
        tokio::time::sleep(network).await;
    }
    let kill = req.extensions().get::<ConnKill>().cloned();
    let path = req.uri().path().to_owned();
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            v.shared.recorder.request(MARKETPLACE, "oversized", None);
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"errors": [{"message": "request entity too large",
                    "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]}),
                None,
            );
        }
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let query = parsed
        .as_ref()
        .and_then(|b| b.get("query"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let fields = root_fields(query);
    let op = fields
        .first()
        .map_or("invalid", |f| super::operation_name(f));
    v.shared.recorder.request(MARKETPLACE, op, None);
    let plan = v.shared.faults.plan(MARKETPLACE, op, &path);
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    let run = || async {
        let Some(body) = parsed.as_ref() else {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"errors": [{"message": "Unexpected token in JSON body",
                    "extensions": {"code": "BAD_REQUEST"}}]}),
                None,
            );
        };
        if fields.is_empty() {
            return validation_failed("Syntax Error: the document has no operation with fields");
        }
        let variables = body
            .get("variables")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        v.execute(api, &parts.headers, &fields, &variables)
    };
    let Some(action) = plan.action else {
        return run().await;
    };
    match action {
        FaultKind::ServerError { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = body.unwrap_or_else(|| {
                json!({"errors": [{"message": "Internal server error",
                    "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]})
                .to_string()
            });
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        FaultKind::TooManyRequests { retry_after_secs } => {
            v.shared.recorder.too_many_requests(MARKETPLACE, false);
            let mut resp = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"errors": [{"message": "Too Many Requests",
                    "extensions": {"code": "TOO_MANY_REQUESTS"}}]}),
                None,
            );
            if let Some(secs) = retry_after_secs {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        FaultKind::Hang { after_processing } => {
            if after_processing {
                drop(run().await);
            }
            std::future::pending().await
        }
        FaultKind::DropConnection { after_processing } => {
            if after_processing {
                drop(run().await);
            }
            if let Some(kill) = kill {
                kill.0.cancel();
            }
            std::future::pending().await
        }
        FaultKind::MalformedBody => {
            let resp = run().await;
            let (mut parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
                .await
                .unwrap_or_default();
            let cut = if bytes.len() >= 2 {
                bytes.slice(..bytes.len() / 2)
            } else {
                Bytes::from_static(b"{\"data\":")
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(cut))
        }
        FaultKind::Echo { status } => {
            crate::gate::echo(status, &parts.method, &parts.uri, &parts.headers, &bytes)
        }
        FaultKind::Latency { .. } | FaultKind::RejectSkus { .. } => run().await,
    }
}

fn arg<'a>(vars: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    vars.get(name).filter(|v| !v.is_null())
}

fn as_id(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn input_error(message: impl Into<String>) -> GqlError {
    err("USER_INPUT_ERROR", message)
}

fn not_found(entity: &str, id: impl std::fmt::Display) -> GqlError {
    err(
        "ENTITY_NOT_FOUND",
        format!("No {entity} with the id \"{id}\" could be found"),
    )
}

/// An `ErrorResult` union member.
fn error_result(typename: &str, code: &str, message: impl Into<String>) -> Value {
    json!({"__typename": typename, "errorCode": code, "message": message.into()})
}

impl Vendure {
    /// Runs every root field; a field error makes the whole `data` null (Vendure's non-null
    /// roots), like the real server.
    fn execute(
        &self,
        api: Api,
        headers: &HeaderMap,
        fields: &[String],
        vars: &Map<String, Value>,
    ) -> Response {
        if let Some(token) = headers
            .get(CHANNEL_TOKEN_HEADER)
            .and_then(|t| t.to_str().ok())
            && Some(token) != self.channel_token.as_deref()
        {
            return json_response(
                StatusCode::OK,
                &json!({"errors": [{"message": format!("The channel with the token \"{token}\" could not be found"),
                    "extensions": {"code": "CHANNEL_NOT_FOUND"}}], "data": null}),
                None,
            );
        }
        let token = bearer(headers);
        let now = self.shared.clock.now();
        let mut st = self.lock();
        let session = token.as_ref().and_then(|t| st.sessions.get(t).cloned());
        let mut data = Map::new();
        let mut issued: Option<String> = None;
        for field in fields {
            let result = match api {
                Api::Admin => {
                    self.admin_field(&mut st, now, field, vars, session.as_ref(), &mut issued)
                }
                Api::Shop => self.shop_field(
                    &mut st,
                    now,
                    field,
                    vars,
                    token.as_deref(),
                    session.as_ref(),
                    &mut issued,
                ),
            };
            match result {
                Ok(value) => {
                    data.insert(field.clone(), value);
                }
                Err(None) => {
                    let ty = if api == Api::Admin {
                        "Query/Mutation (admin)"
                    } else {
                        "Query/Mutation (shop)"
                    };
                    return validation_failed(&format!(
                        "Cannot query field \"{field}\" on type \"{ty}\"."
                    ));
                }
                Err(Some(e)) => {
                    let mut error = json!({"message": e.message, "path": [field]});
                    if let Some(code) = e.code {
                        error["extensions"] = json!({ "code": code });
                    }
                    return json_response(
                        StatusCode::OK,
                        &json!({"errors": [error], "data": null}),
                        issued.as_deref(),
                    );
                }
            }
        }
        json_response(StatusCode::OK, &json!({ "data": data }), issued.as_deref())
    }

    #[allow(clippy::too_many_arguments)]
    fn admin_field(
        &self,
        st: &mut Store,
        now: chrono::DateTime<chrono::Utc>,
        field: &str,
        vars: &Map<String, Value>,
        session: Option<&Session>,
        issued: &mut Option<String>,
    ) -> Result<Value, Option<GqlError>> {
        if field == "login" {
            let user = arg(vars, "username").and_then(Value::as_str).unwrap_or("");
            let pass = arg(vars, "password").and_then(Value::as_str).unwrap_or("");
            if user != self.credentials.username || pass != self.credentials.password {
                return Ok(error_result(
                    "InvalidCredentialsError",
                    "INVALID_CREDENTIALS_ERROR",
                    "The provided credentials are invalid",
                ));
            }
            let token = self.shared.rng.hex(32);
            st.sessions.insert(token.clone(), Session::Admin);
            *issued = Some(token);
            return Ok(json!({"__typename": "CurrentUser", "id": "1", "identifier": user}));
        }
        let known = matches!(
            field,
            "activeChannel"
                | "productVariants"
                | "productVariant"
                | "updateProductVariants"
                | "createProduct"
                | "createProductVariants"
                | "orders"
                | "order"
                | "cancelOrder"
        );
        if !known {
            return Err(None);
        }
        if session != Some(&Session::Admin) {
            return Err(Some(forbidden()));
        }
        let currency = self.currency.as_str();
        match field {
            "activeChannel" => Ok(json!({
                "id": "1", "code": "__default_channel__",
                "token": self.channel_token.clone().unwrap_or_else(|| "sandbox-default-channel".into()),
                "defaultCurrencyCode": currency,
            })),
            "productVariant" => Ok(as_id(arg(vars, "id"))
                .and_then(|id| st.variants.get(&id))
                .map_or(Value::Null, |v| v.render(currency))),
            "productVariants" => {
                let opts = arg(vars, "options").cloned().unwrap_or(json!({}));
                let (skip, take) = paging(&opts)?;
                let filter = opts.get("filter").cloned().unwrap_or(Value::Null);
                let sku_eq = filter.pointer("/sku/eq").and_then(Value::as_str);
                let sku_in: Option<Vec<&str>> = filter
                    .pointer("/sku/in")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect());
                let desc = opts.pointer("/sort/id").and_then(Value::as_str) == Some("DESC");
                let mut matched: Vec<&super::state::Variant> = st
                    .variants
                    .values()
                    .filter(|v| sku_eq.is_none_or(|s| v.sku == s))
                    .filter(|v| {
                        sku_in
                            .as_ref()
                            .is_none_or(|set| set.contains(&v.sku.as_str()))
                    })
                    .collect();
                if desc {
                    matched.reverse();
                }
                let total = matched.len();
                let items: Vec<Value> = matched
                    .into_iter()
                    .skip(skip)
                    .take(take)
                    .map(|v| v.render(currency))
                    .collect();
                Ok(json!({"items": items, "totalItems": total}))
            }
            "updateProductVariants" => self.update_variants(st, now, vars).map_err(Some),
            "createProduct" => {
                let input = arg(vars, "input").cloned().unwrap_or(json!({}));
                let tr = input
                    .pointer("/translations/0")
                    .cloned()
                    .ok_or_else(|| Some(input_error("translations must not be empty")))?;
                let s = |k: &str| tr.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                if s("name").is_empty() {
                    return Err(Some(input_error("The product name must not be empty")));
                }
                let enabled = input
                    .get("enabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let p = st.create_product(s("name"), s("slug"), s("description"), enabled);
                Ok(
                    json!({"id": p.id.to_string(), "name": p.name, "slug": p.slug, "description": p.description, "enabled": p.enabled}),
                )
            }
            "createProductVariants" => self.create_variants(st, now, vars).map_err(Some),
            "orders" => {
                let opts = arg(vars, "options").cloned().unwrap_or(json!({}));
                let (skip, take) = paging(&opts)?;
                let after = opts
                    .pointer("/filter/updatedAt/after")
                    .and_then(Value::as_str)
                    .map(|t| {
                        chrono::DateTime::parse_from_rfc3339(t)
                            .map(|t| t.with_timezone(&chrono::Utc))
                            .map_err(|_| {
                                Some(err(
                                    "BAD_USER_INPUT",
                                    format!(
                                        "DateTime cannot represent an invalid date-time-string {t}"
                                    ),
                                ))
                            })
                    })
                    .transpose()?;
                let active = opts.pointer("/filter/active/eq").and_then(Value::as_bool);
                let mut matched: Vec<&super::state::Order> = st
                    .orders
                    .values()
                    .filter(|o| after.is_none_or(|a| o.updated_at > a))
                    .filter(|o| active.is_none_or(|a| o.active == a))
                    .collect();
                match opts.pointer("/sort/updatedAt").and_then(Value::as_str) {
                    Some("ASC") => matched.sort_by_key(|o| (o.updated_at, o.id)),
                    Some("DESC") => {
                        matched.sort_by_key(|o| std::cmp::Reverse((o.updated_at, o.id)))
                    }
                    _ => {}
                }
                let total = matched.len();
                let items: Vec<Value> = matched
                    .into_iter()
                    .skip(skip)
                    .take(take)
                    .map(|o| o.render(currency))
                    .collect();
                Ok(json!({"items": items, "totalItems": total}))
            }
            "order" => Ok(as_id(arg(vars, "id"))
                .and_then(|id| st.orders.get(&id))
                .map_or(Value::Null, |o| o.render(currency))),
            "cancelOrder" => {
                let id = as_id(arg(vars, "input").and_then(|i| i.get("orderId")))
                    .ok_or_else(|| Some(input_error("orderId is required")))?;
                if !st.orders.contains_key(&id) {
                    return Err(Some(not_found("Order", id)));
                }
                match st.cancel(now, id) {
                    Ok(()) => Ok(st.orders[&id].render(currency)),
                    Err(e) => Ok(error_result(
                        "OrderStateTransitionError",
                        "ORDER_STATE_TRANSITION_ERROR",
                        e.to_string(),
                    )),
                }
            }
            _ => Err(None),
        }
    }

    fn rejected(&self, operation: &str, sku: &str) -> Option<GqlError> {
        self.shared
            .faults
            .sku_rejection(MARKETPLACE, operation, "/admin-api", sku)
            .map(|r| GqlError {
                code: Some("USER_INPUT_ERROR"),
                message: format!("{} (error {})", r.message, r.error_id),
            })
    }

    /// updateProductVariants: every input validated first, then all applied (one transaction).
    fn update_variants(
        &self,
        st: &mut Store,
        now: chrono::DateTime<chrono::Utc>,
        vars: &Map<String, Value>,
    ) -> Result<Value, GqlError> {
        let inputs = arg(vars, "input")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| err("BAD_USER_INPUT", "Variable \"$input\" of required type \"[UpdateProductVariantInput!]!\" was not provided."))?;
        let mut planned = Vec::new();
        for input in &inputs {
            let id =
                as_id(input.get("id")).ok_or_else(|| err("BAD_USER_INPUT", "id is required"))?;
            let v = st
                .variants
                .get(&id)
                .ok_or_else(|| not_found("ProductVariant", id))?;
            if let Some(e) = self.rejected("updateProductVariants", &v.sku) {
                return Err(e);
            }
            let mut on_hand = None;
            if let Some(n) = input.get("stockOnHand").filter(|n| !n.is_null()) {
                on_hand = Some(n.as_i64().ok_or_else(|| {
                    err("BAD_USER_INPUT", "Int cannot represent non-integer value")
                })?);
            }
            if let Some(levels) = input.get("stockLevels").and_then(Value::as_array) {
                for l in levels {
                    let loc = match l.get("stockLocationId") {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => String::new(),
                    };
                    if loc != DEFAULT_LOCATION {
                        return Err(GqlError {
                            code: None,
                            message: "FOREIGN KEY constraint failed".into(),
                        });
                    }
                    on_hand = Some(
                        l.get("stockOnHand")
                            .and_then(Value::as_i64)
                            .ok_or_else(|| err("BAD_USER_INPUT", "stockOnHand is required"))?,
                    );
                }
            }
            if on_hand.is_some_and(|n| n < 0) {
                return Err(input_error("stockOnHand cannot be a negative value"));
            }
            let price = match input.get("price").filter(|p| !p.is_null()) {
                Some(p) => Some(p.as_i64().filter(|p| *p >= 0).ok_or_else(|| {
                    err(
                        "BAD_USER_INPUT",
                        "Money cannot represent a non-integer value",
                    )
                })?),
                None => None,
            };
            let enabled = input.get("enabled").and_then(Value::as_bool);
            let name = input
                .pointer("/translations/0/name")
                .and_then(Value::as_str)
                .map(str::to_owned);
            planned.push((id, on_hand, price, enabled, name));
        }
        let mut out = Vec::new();
        for (id, on_hand, price, enabled, name) in planned {
            let v = st.variants.get_mut(&id).expect("validated");
            if let Some(n) = on_hand {
                v.on_hand = n;
            }
            if let Some(p) = price {
                v.price = p;
            }
            if let Some(e) = enabled {
                v.enabled = e;
            }
            if let Some(n) = name {
                v.name = n;
            }
            v.updated_at = stored(now);
            self.record(
                v,
                on_hand.is_some(),
                price.is_some(),
                "updateProductVariants",
            );
            out.push(v.render(self.currency.as_str()));
        }
        Ok(Value::Array(out))
    }

    fn create_variants(
        &self,
        st: &mut Store,
        now: chrono::DateTime<chrono::Utc>,
        vars: &Map<String, Value>,
    ) -> Result<Value, GqlError> {
        let inputs = arg(vars, "input")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| err("BAD_USER_INPUT", "Variable \"$input\" of required type \"[CreateProductVariantInput!]!\" was not provided."))?;
        let mut planned = Vec::new();
        for input in &inputs {
            let product = as_id(input.get("productId"))
                .ok_or_else(|| err("BAD_USER_INPUT", "productId is required"))?;
            if !st.products.contains_key(&product) {
                return Err(not_found("Product", product));
            }
            let sku = input
                .get("sku")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if let Some(e) = self.rejected("createProductVariants", &sku) {
                return Err(e);
            }
            let price = input.get("price").and_then(Value::as_i64).unwrap_or(0);
            let mut on_hand = input
                .get("stockOnHand")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if let Some(l) = input.pointer("/stockLevels/0") {
                if l.get("stockLocationId").and_then(Value::as_str) != Some(DEFAULT_LOCATION) {
                    return Err(GqlError {
                        code: None,
                        message: "FOREIGN KEY constraint failed".into(),
                    });
                }
                on_hand = l.get("stockOnHand").and_then(Value::as_i64).unwrap_or(0);
            }
            if on_hand < 0 {
                return Err(input_error("stockOnHand cannot be a negative value"));
            }
            let name = input
                .pointer("/translations/0/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let enabled = input
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            planned.push((product, sku, name, price, on_hand, enabled));
        }
        let mut out = Vec::new();
        for (product, sku, name, price, on_hand, enabled) in planned {
            let id = st.create_variant(now, product, sku, name, price, on_hand, enabled);
            let v = &st.variants[&id];
            self.record(v, true, true, "createProductVariants");
            out.push(v.render(self.currency.as_str()));
        }
        Ok(Value::Array(out))
    }

    fn record(&self, v: &super::state::Variant, stock: bool, price: bool, operation: &'static str) {
        self.shared.recorder.write(
            MARKETPLACE,
            NewWrite {
                operation,
                sku: v.sku.clone(),
                listing_ref: Some(v.id.to_string()),
                quantity: stock.then(|| u32::try_from(v.on_hand).unwrap_or(u32::MAX)),
                offer_quantity: None,
                price: price
                    .then(|| Money::new(super::format_minor(v.price), self.currency.clone())),
                visible_quantity: Some(if v.enabled {
                    u32::try_from(v.saleable()).unwrap_or(u32::MAX)
                } else {
                    0
                }),
                batch_ref: None,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn shop_field(
        &self,
        st: &mut Store,
        now: chrono::DateTime<chrono::Utc>,
        field: &str,
        vars: &Map<String, Value>,
        token: Option<&str>,
        session: Option<&Session>,
        issued: &mut Option<String>,
    ) -> Result<Value, Option<GqlError>> {
        let currency = self.currency.clone();
        let active = match session {
            Some(Session::Shop { order }) => *order,
            _ => None,
        };
        let order_json = |st: &Store, id: u64| st.orders[&id].render(&currency);
        match field {
            "activeOrder" => Ok(active.map_or(Value::Null, |id| order_json(st, id))),
            "addItemToOrder" => {
                let variant = as_id(arg(vars, "productVariantId"))
                    .ok_or_else(|| Some(err("BAD_USER_INPUT", "productVariantId is required")))?;
                let quantity = arg(vars, "quantity")
                    .and_then(Value::as_u64)
                    .and_then(|q| u32::try_from(q).ok())
                    .filter(|q| *q > 0)
                    .ok_or_else(|| {
                        Some(err("BAD_USER_INPUT", "quantity must be a positive Int"))
                    })?;
                let (token, order) = match (token.filter(|_| session.is_some()), active) {
                    (Some(t), Some(o)) if st.orders.get(&o).is_some_and(|o| o.active) => {
                        (t.to_owned(), o)
                    }
                    (t, _) => {
                        let o = st.new_cart(now);
                        let t = t.map_or_else(|| self.shared.rng.hex(32), str::to_owned);
                        st.sessions
                            .insert(t.clone(), Session::Shop { order: Some(o) });
                        *issued = Some(t.clone());
                        (t, o)
                    }
                };
                let _ = token;
                match st.add_item(now, order, variant, quantity) {
                    Ok(()) => Ok(order_json(st, order)),
                    Err((code, message)) if code == "ENTITY_NOT_FOUND" => Err(Some(GqlError {
                        code: Some("ENTITY_NOT_FOUND"),
                        message,
                    })),
                    Err((_, message)) => Ok(error_result(
                        "InsufficientStockError",
                        "INSUFFICIENT_STOCK_ERROR",
                        message,
                    )),
                }
            }
            "setCustomerForOrder"
            | "setOrderShippingAddress"
            | "setOrderShippingMethod"
            | "transitionOrderToState"
            | "addPaymentToOrder" => {
                let Some(order) = active.filter(|o| st.orders.get(o).is_some_and(|o| o.active))
                else {
                    return Ok(error_result(
                        "NoActiveOrderError",
                        "NO_ACTIVE_ORDER_ERROR",
                        "There is no active Order associated with the current session",
                    ));
                };
                match field {
                    "setCustomerForOrder" => {
                        let email = arg(vars, "input")
                            .and_then(|i| i.get("emailAddress"))
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        st.orders.get_mut(&order).expect("active").email = email;
                    }
                    "setOrderShippingAddress" | "setOrderShippingMethod" => {
                        st.orders.get_mut(&order).expect("active").shipping_set = true;
                    }
                    "transitionOrderToState" => {
                        let to = arg(vars, "state").and_then(Value::as_str).unwrap_or("");
                        let o = st.orders.get_mut(&order).expect("active");
                        if to != "ArrangingPayment" || o.lines.is_empty() || o.email.is_none() {
                            return Ok(error_result(
                                "OrderStateTransitionError",
                                "ORDER_STATE_TRANSITION_ERROR",
                                format!("Cannot transition Order from \"{}\" to \"{to}\"", o.state),
                            ));
                        }
                        o.state = "ArrangingPayment".into();
                        o.updated_at = stored(now);
                    }
                    _ => {
                        let state = st.orders[&order].state.clone();
                        if state != "ArrangingPayment" {
                            return Ok(error_result(
                                "OrderPaymentStateError",
                                "ORDER_PAYMENT_STATE_ERROR",
                                "A Payment may only be added when Order is in \"ArrangingPayment\" state",
                            ));
                        }
                        if let Err(e) = st.place(now, order) {
                            return Ok(error_result(
                                "InsufficientStockError",
                                "INSUFFICIENT_STOCK_ERROR",
                                e.to_string(),
                            ));
                        }
                        if let Some(t) = token {
                            st.sessions
                                .insert(t.to_owned(), Session::Shop { order: None });
                        }
                    }
                }
                Ok(order_json(st, order))
            }
            _ => Err(None),
        }
    }
}

/// `skip`/`take` of a list options object (take > [`MAX_TAKE`] is refused, like Vendure's
/// `adminListQueryLimit`).
fn paging(opts: &Value) -> Result<(usize, usize), Option<GqlError>> {
    let skip = opts.get("skip").and_then(Value::as_u64).unwrap_or(0);
    let take = opts
        .get("take")
        .and_then(Value::as_u64)
        .unwrap_or(MAX_TAKE as u64);
    if take > MAX_TAKE as u64 {
        return Err(Some(input_error(format!(
            "Cannot take more than {MAX_TAKE} results from a list"
        ))));
    }
    Ok((
        usize::try_from(skip).unwrap_or(usize::MAX),
        usize::try_from(take).unwrap_or(0),
    ))
}
