//! The Graph API side of the Meta fake: auth (token + `appsecret_proof`), Graph's error body,
//! the BUC usage header and throttling, and the node/edge handlers.
//!
//! Everything a client sends is hostile: every failure is a Graph error body
//! `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`, never a panic or axum's
//! plain-text rejection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::state::{
    BatchRequest, MAX_BATCH_REQUESTS, ORDER_FIELDS, ORDER_STATES, PRODUCT_FIELDS, validate_request,
};
use super::{
    MARKETPLACE, Meta, OP_ITEMS_BATCH, USE_CASE_BATCH, USE_CASE_CATALOG, USE_CASE_COMMERCE,
};
use crate::MAX_BODY_BYTES;
use crate::webhook::hmac_sha256;

/// The BUC usage header (contracts §3.1).
pub const BUC_HEADER: &str = "x-business-use-case-usage";
/// Largest `limit` on the products edge.
pub const MAX_PRODUCTS_PAGE: usize = 1_000;
/// Default `limit` on the products edge.
pub const DEFAULT_PRODUCTS_PAGE: usize = 25;
/// Largest `limit` on commerce_orders.
pub const MAX_ORDERS_PAGE: usize = 100;
/// Default `limit` on commerce_orders (contracts §3.4).
pub const DEFAULT_ORDERS_PAGE: usize = 25;

type St = State<Arc<Meta>>;

static TRACE: AtomicU64 = AtomicU64::new(0x5EED);

/// A Graph API error.
#[derive(Debug, Clone)]
pub(crate) struct GraphError {
    pub status: StatusCode,
    pub code: u32,
    pub subcode: Option<u32>,
    pub kind: &'static str,
    pub message: String,
    pub transient: bool,
    pub buc: Option<String>,
}

impl GraphError {
    /// `(#100) …`, type OAuthException (Graph labels parameter errors that way too).
    pub(crate) fn param(message: impl Into<String>) -> Self {
        GraphError {
            status: StatusCode::BAD_REQUEST,
            code: 100,
            subcode: None,
            kind: "OAuthException",
            message: format!("(#100) {}", message.into()),
            transient: false,
            buc: None,
        }
    }

    /// An id that is not a node this token can see.
    pub(crate) fn unknown_object(id: &str, method: &str) -> Self {
        GraphError {
            subcode: Some(33),
            kind: "GraphMethodException",
            message: format!(
                "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
            ..GraphError::param("")
        }
    }

    /// Code 190: the token is invalid.
    pub(crate) fn bad_token() -> Self {
        GraphError {
            code: 190,
            message: "Invalid OAuth access token - Cannot parse access token".into(),
            ..GraphError::param("")
        }
    }

    /// Code 1 for a body too large to take.
    pub(crate) fn too_much_data() -> Self {
        GraphError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: 1,
            kind: "OAuthException",
            message: "Please reduce the amount of data you're asking for, then retry your request"
                .into(),
            transient: false,
            ..GraphError::param("")
        }
    }

    /// Code 2: a temporary problem (what a 5xx fault sends).
    pub(crate) fn system(status: StatusCode) -> Self {
        GraphError {
            status,
            code: 2,
            kind: "OAuthException",
            message: "An unexpected error has occurred. Please retry your request later.".into(),
            transient: true,
            ..GraphError::param("")
        }
    }

    /// Code 4: application request limit (what a 429 fault sends).
    pub(crate) fn app_limit() -> Self {
        GraphError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: 4,
            kind: "OAuthException",
            message: "(#4) Application request limit reached".into(),
            transient: true,
            ..GraphError::param("")
        }
    }

    /// The BUC throttle of `use_case`: 80014 (catalog batch), 80009 (catalog), 613 (commerce).
    pub(crate) fn throttled(use_case: &str, header: String) -> Self {
        let (code, message) = match use_case {
            USE_CASE_BATCH => (
                80014,
                "(#80014) There have been too many calls for the batch uploads to this catalog account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#catalog.",
            ),
            USE_CASE_CATALOG => (
                80009,
                "(#80009) There have been too many calls to this Catalog account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#catalog.",
            ),
            _ => (
                613,
                "(#613) Calls to this api have exceeded the rate limit.",
            ),
        };
        GraphError {
            code,
            message: message.into(),
            transient: true,
            buc: Some(header),
            ..GraphError::param("")
        }
    }

    /// The body.
    pub(crate) fn body(&self) -> Value {
        let mut e = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": format!("A{:X}", TRACE.fetch_add(7919, Ordering::Relaxed)),
        });
        if let Some(s) = self.subcode {
            e["error_subcode"] = json!(s);
        }
        if self.transient {
            e["is_transient"] = json!(true);
        }
        json!({ "error": e })
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut resp = json_response(self.status, &self.body());
        if let Some(h) = self
            .buc
            .as_deref()
            .and_then(|h| HeaderValue::from_str(h).ok())
        {
            resp.headers_mut().insert(BUC_HEADER, h);
        }
        resp
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: &Value, buc: Option<String>) -> Response {
    let mut resp = json_response(StatusCode::OK, body);
    if let Some(h) = buc.as_deref().and_then(|h| HeaderValue::from_str(h).ok()) {
        resp.headers_mut().insert(BUC_HEADER, h);
    }
    resp
}

/// Query parameters (first value wins).
fn query(raw: Option<&str>) -> Result<Map<String, Value>, GraphError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| GraphError::param("Malformed query string."))?;
    let mut out = Map::new();
    for (k, v) in pairs {
        out.entry(k).or_insert(Value::String(v));
    }
    Ok(out)
}

fn text<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str)
}

/// `appsecret_proof` for `token` under `secret`: hex HMAC-SHA256.
pub fn appsecret_proof(secret: &str, token: &str) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), token.as_bytes()))
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Checks the access token (`Authorization: Bearer` or `access_token=`) and `appsecret_proof`
/// (query string).
pub(crate) async fn authorize(State(meta): St, req: Request, next: Next) -> Response {
    let params = match query(req.uri().query()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let token = bearer(req.headers()).or_else(|| text(&params, "access_token").map(str::to_owned));
    let Some(token) = token else {
        return GraphError {
            code: 104,
            message: "An access token is required to request this resource.".into(),
            ..GraphError::param("")
        }
        .into_response();
    };
    let creds = meta.credentials.clone();
    if token != creds.access_token || meta.token_revoked() {
        return GraphError::bad_token().into_response();
    }
    match text(&params, "appsecret_proof") {
        None if meta.require_proof => {
            return GraphError::param(
                "API calls from the server require an appsecret_proof argument",
            )
            .into_response();
        }
        Some(p) if p != appsecret_proof(&creds.app_secret, &token) => {
            return GraphError::param("Invalid appsecret_proof provided in the API argument")
                .into_response();
        }
        _ => {}
    }
    next.run(req).await
}

fn check_version(version: &str) -> Result<(), GraphError> {
    let ok = version.strip_prefix('v').is_some_and(|v| {
        v.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
    });
    if ok {
        Ok(())
    } else {
        Err(GraphError {
            code: 2500,
            message: format!("Unknown path components: /{version}"),
            ..GraphError::param("")
        })
    }
}

impl Meta {
    /// Counts a call against the BUC of `(object, use_case)`: the header value, or the throttle.
    fn buc(&self, object: &str, use_case: &'static str) -> Result<Option<String>, GraphError> {
        let now = self.shared.clock.now();
        let usage = self.lock().buc_check(object, use_case, now);
        let Some(u) = usage else { return Ok(None) };
        let header = json!({ object: [{
            "type": use_case,
            "call_count": u.call_count,
            "total_cputime": u.call_count / 2,
            "total_time": u.call_count * 9 / 10,
            "estimated_time_to_regain_access": u.regain_minutes,
        }]})
        .to_string();
        if u.throttled {
            self.shared.recorder.too_many_requests(MARKETPLACE, true);
            return Err(GraphError::throttled(use_case, header));
        }
        Ok(Some(header))
    }
}

/// `fields=a,b{c,d},e` → top-level names (`a`, `b`, `e`).
fn top_level_fields(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut cur = String::new();
    for c in raw.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ if depth == 0 => cur.push(c),
            _ => {}
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn fields_of(
    params: &Map<String, Value>,
    allowed: &[&str],
    node_type: &str,
    default: &[&str],
) -> Result<Vec<String>, GraphError> {
    let fields = match text(params, "fields") {
        Some(raw) => top_level_fields(raw),
        None => default.iter().map(|s| (*s).to_owned()).collect(),
    };
    if let Some(bad) = fields.iter().find(|f| !allowed.contains(&f.as_str())) {
        return Err(GraphError::param(format!(
            "Tried accessing nonexisting field ({bad}) on node type ({node_type})"
        )));
    }
    Ok(fields)
}

fn limit(params: &Map<String, Value>, default: usize, max: usize) -> Result<usize, GraphError> {
    match text(params, "limit") {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| n.min(max))
            .ok_or_else(|| GraphError::param(format!("Invalid limit {v:?}."))),
    }
}

fn encode_cursor(key: &str) -> String {
    hex::encode(key.as_bytes())
}

fn decode_cursor(c: &str) -> Result<String, GraphError> {
    hex::decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| GraphError::param("Invalid cursor."))
}

/// `paging` with `cursors` and, when there is more, `next` (the same query with `after`).
fn paging(
    base: &str,
    path: &str,
    params: &Map<String, Value>,
    first: Option<&str>,
    last: Option<&str>,
    more: bool,
) -> Value {
    let mut paging = json!({});
    if let (Some(first), Some(last)) = (first, last) {
        paging["cursors"] = json!({"before": encode_cursor(first), "after": encode_cursor(last)});
        if more {
            let mut q: Vec<(String, String)> = params
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "after" | "before" | "access_token"))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            q.push(("after".into(), encode_cursor(last)));
            let qs = serde_urlencoded::to_string(q).unwrap_or_default();
            paging["next"] = json!(format!("{base}{path}?{qs}"));
        }
    }
    paging
}

/// A Graph time parameter: unix seconds or ISO 8601.
fn parse_time(v: &str, name: &str) -> Result<DateTime<Utc>, GraphError> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| GraphError::param(format!("Invalid {name} {v:?}.")));
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            GraphError::param(format!(
                "Invalid {name} {v:?}: expected a UNIX timestamp or ISO 8601 date-time."
            ))
        })
}

// ---- handlers -----------------------------------------------------------------------------------

/// `GET /{version}/{id}`: the catalog (`id,name,product_count,…`) or a commerce order.
pub(crate) async fn get_node(
    State(meta): St,
    Path((version, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, GraphError> {
    check_version(&version)?;
    let params = query(raw.as_deref())?;
    if id == meta.catalog_id {
        let buc = meta.buc(&id, USE_CASE_CATALOG)?;
        let fields = fields_of(
            &params,
            &[
                "id",
                "name",
                "product_count",
                "vertical",
                "feed_count",
                "business",
            ],
            "ProductCatalog",
            &["id", "name"],
        )?;
        let count = meta.pumped(|st, _| st.products.len());
        let mut out = Map::new();
        for f in fields {
            let v = match f.as_str() {
                "id" => json!(meta.catalog_id),
                "name" => json!("Sandbox catalog"),
                "product_count" => json!(count),
                "vertical" => json!("commerce"),
                "feed_count" => json!(0),
                _ => continue,
            };
            out.insert(f, v);
        }
        return Ok(ok(&Value::Object(out), buc));
    }
    let order = meta.with(|st, _| st.orders.get(&id).cloned());
    let Some(order) = order else {
        return Err(GraphError::unknown_object(&id, "get"));
    };
    let buc = meta.buc(&meta.commerce_account_id, USE_CASE_COMMERCE)?;
    let fields = fields_of(
        &params,
        &ORDER_FIELDS,
        "CommerceOrder",
        &["id", "order_status", "created", "last_updated"],
    )?;
    Ok(ok(&order.render(&fields), buc))
}

/// `GET /{version}/{id}/{edge}`.
pub(crate) async fn get_edge(
    State(meta): St,
    Path((version, id, edge)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, GraphError> {
    check_version(&version)?;
    let params = query(raw.as_deref())?;
    let path = format!("/meta/{version}/{id}/{edge}");
    match edge.as_str() {
        "check_batch_request_status" if id == meta.catalog_id => batch_status(&meta, &params),
        "products" if id == meta.catalog_id => products(&meta, &params, &path),
        "commerce_orders" if id == meta.commerce_account_id => orders(&meta, &params, &path),
        "items" | "cancellations" | "shipments" => {
            let order = meta.with(|st, _| st.orders.get(&id).cloned());
            let Some(order) = order else {
                return Err(GraphError::unknown_object(&id, "get"));
            };
            let buc = meta.buc(&meta.commerce_account_id, USE_CASE_COMMERCE)?;
            Ok(ok(&order.field(&edge).unwrap_or(json!({"data": []})), buc))
        }
        _ => Err(GraphError::unknown_object(&id, "get")),
    }
}

/// `POST /{version}/{id}/{edge}`.
pub(crate) async fn post_edge(
    State(meta): St,
    Path((version, id, edge)): Path<(String, String, String)>,
    req: Request,
) -> Result<Response, GraphError> {
    check_version(&version)?;
    let path = req.uri().path().to_owned();
    let params = params_with_body(req).await?;
    match edge.as_str() {
        "items_batch" if id == meta.catalog_id => items_batch(&meta, &params, &path),
        "acknowledge_order" => acknowledge(&meta, &id, &params),
        _ => Err(GraphError::unknown_object(&id, "post")),
    }
}

/// Query parameters merged with a form or JSON body (Graph takes parameters anywhere).
async fn params_with_body(req: Request) -> Result<Map<String, Value>, GraphError> {
    let mut params = query(req.uri().query())?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| GraphError::too_much_data())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    if content_type.starts_with("application/json") {
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| GraphError::param(format!("Could not parse the JSON body: {e}.")))?;
        let Value::Object(map) = body else {
            return Err(GraphError::param("The JSON body must be an object."));
        };
        params.extend(map);
    } else {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| GraphError::param("Malformed form body."))?;
        for (k, v) in pairs {
            params.insert(k, Value::String(v));
        }
    }
    Ok(params)
}

fn items_batch(
    meta: &Meta,
    params: &Map<String, Value>,
    path: &str,
) -> Result<Response, GraphError> {
    let buc = meta.buc(&meta.catalog_id, USE_CASE_BATCH)?;
    match params.get("item_type").and_then(Value::as_str) {
        None => return Err(GraphError::param("The parameter item_type is required")),
        Some("PRODUCT_ITEM") => {}
        Some(other) => {
            return Err(GraphError::param(format!(
                "Param item_type must be one of {{PRODUCT_ITEM}}; got {other:?}. (This sandbox models product catalogs only.)"
            )));
        }
    }
    let requests = match params.get("requests") {
        None => return Err(GraphError::param("The parameter requests is required")),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .map_err(|_| GraphError::param("Param requests must be a JSON array"))?,
        Some(v) => v.clone(),
    };
    let Value::Array(requests) = requests else {
        return Err(GraphError::param("Param requests must be a JSON array"));
    };
    if requests.is_empty() {
        return Err(GraphError::param(
            "Param requests must be a non-empty array",
        ));
    }
    if requests.len() > MAX_BATCH_REQUESTS {
        return Err(GraphError::param(format!(
            "The number of requests ({}) exceeds the maximum of {MAX_BATCH_REQUESTS} per call",
            requests.len()
        )));
    }
    let allow_upsert = match params.get("allow_upsert") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "1" => true,
        Some(Value::String(s)) if s == "false" || s == "0" => false,
        Some(_) => return Err(GraphError::param("Param allow_upsert must be a boolean")),
    };
    let mut validation = Vec::new();
    let mut accepted = Vec::new();
    for (line, r) in requests.iter().enumerate() {
        let method = r.get("method").and_then(Value::as_str).unwrap_or("");
        let data = r.get("data").and_then(Value::as_object);
        let retailer_id = data
            .and_then(|d| d.get("id"))
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or("");
        let mut errors = Vec::new();
        if !matches!(method, "CREATE" | "UPDATE" | "DELETE") {
            errors.push(format!(
                "Invalid method {method:?} for request {line}; use CREATE, UPDATE or DELETE."
            ));
        }
        match data {
            None => errors.push(format!("Request {line} has no data object.")),
            Some(_) if retailer_id.is_empty() => {
                errors.push(format!("Request {line} has no retailer id (data.id)."));
            }
            Some(d) => errors.extend(validate_request(method, d)),
        }
        if !errors.is_empty() {
            validation.push(json!({
                "retailer_id": retailer_id,
                "errors": errors.iter().map(|m| json!({"message": m})).collect::<Vec<_>>(),
                "warnings": [],
            }));
            continue;
        }
        let rejection = meta
            .shared
            .faults
            .sku_rejection(MARKETPLACE, OP_ITEMS_BATCH, path, retailer_id)
            .map(|r| r.message);
        accepted.push(BatchRequest {
            line,
            method: method.to_owned(),
            retailer_id: retailer_id.to_owned(),
            data: data.cloned().unwrap_or_default(),
            rejection,
        });
    }
    let handles: Vec<String> = if accepted.is_empty() {
        Vec::new()
    } else {
        vec![meta.submit_batch(accepted, allow_upsert)]
    };
    Ok(ok(
        &json!({"handles": handles, "validation_status": validation}),
        buc,
    ))
}

fn batch_status(meta: &Meta, params: &Map<String, Value>) -> Result<Response, GraphError> {
    let buc = meta.buc(&meta.catalog_id, USE_CASE_CATALOG)?;
    let Some(handle) = text(params, "handle") else {
        return Err(GraphError::param("The parameter handle is required"));
    };
    if let Some(p) = text(params, "error_priority")
        && !matches!(p, "HIGH" | "MEDIUM" | "LOW")
    {
        return Err(GraphError::param(format!(
            "Param error_priority must be one of {{HIGH, LOW, MEDIUM}}; got {p:?}"
        )));
    }
    let with_ids = matches!(
        text(params, "load_ids_of_invalid_requests"),
        Some("true" | "1")
    );
    let status = meta.pumped(|st, _| st.batches.get(handle).map(|b| b.render(with_ids)));
    let Some(status) = status else {
        return Err(GraphError::param(format!("Invalid handle {handle:?}")));
    };
    Ok(ok(&json!({ "data": [status] }), buc))
}

fn products(meta: &Meta, params: &Map<String, Value>, path: &str) -> Result<Response, GraphError> {
    let buc = meta.buc(&meta.catalog_id, USE_CASE_CATALOG)?;
    let fields = fields_of(params, &PRODUCT_FIELDS, "ProductItem", &["id"])?;
    let limit = limit(params, DEFAULT_PRODUCTS_PAGE, MAX_PRODUCTS_PAGE)?;
    let after = text(params, "after").map(decode_cursor).transpose()?;
    let (rows, more) = meta.pumped(|st, _| {
        let mut it = st
            .products
            .iter()
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()));
        let rows: Vec<(String, Value)> = it
            .by_ref()
            .take(limit)
            .map(|(k, p)| {
                let mut out = Map::new();
                for f in &fields {
                    if let Some(v) = p.field(k, f) {
                        out.insert(f.clone(), v);
                    }
                }
                (k.clone(), Value::Object(out))
            })
            .collect();
        (rows, it.next().is_some())
    });
    let first = rows.first().map(|(k, _)| k.as_str());
    let last = rows.last().map(|(k, _)| k.as_str());
    let paging = paging(&meta.shared.base_url, path, params, first, last, more);
    let data: Vec<&Value> = rows.iter().map(|(_, v)| v).collect();
    Ok(ok(&json!({"data": data, "paging": paging}), buc))
}

fn orders(meta: &Meta, params: &Map<String, Value>, path: &str) -> Result<Response, GraphError> {
    let buc = meta.buc(&meta.commerce_account_id, USE_CASE_COMMERCE)?;
    let states: Vec<String> = match text(params, "state") {
        None => vec!["CREATED".into()],
        Some(s) => s
            .split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect(),
    };
    if let Some(bad) = states.iter().find(|s| !ORDER_STATES.contains(&s.as_str())) {
        return Err(GraphError::param(format!(
            "Param state[0] must be one of {{COMPLETED, CREATED, FB_PROCESSING, IN_PROGRESS}}; got {bad:?}"
        )));
    }
    let filters: Vec<String> = text(params, "filters")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    const FILTERS: [&str; 6] = [
        "HAS_CANCELLATIONS",
        "HAS_FULFILLMENTS",
        "HAS_REFUNDS",
        "NO_CANCELLATIONS",
        "NO_REFUNDS",
        "NO_SHIPMENTS",
    ];
    if let Some(bad) = filters.iter().find(|f| !FILTERS.contains(&f.as_str())) {
        return Err(GraphError::param(format!("Invalid filter {bad:?}.")));
    }
    let after_t = text(params, "updated_after")
        .map(|v| parse_time(v, "updated_after"))
        .transpose()?;
    let before_t = text(params, "updated_before")
        .map(|v| parse_time(v, "updated_before"))
        .transpose()?;
    let fields = fields_of(
        params,
        &ORDER_FIELDS,
        "CommerceOrder",
        &["id", "order_status", "created", "last_updated"],
    )?;
    let limit = limit(params, DEFAULT_ORDERS_PAGE, MAX_ORDERS_PAGE)?;
    let cursor = text(params, "after").map(decode_cursor).transpose()?;
    // Ordered by creation, so an order that changes while a caller pages (acknowledged, cancelled)
    // does not move behind the cursor and come back on a later page.
    let key =
        |o: &super::state::Order| format!("{:020}:{:>20}", o.created.timestamp_millis(), o.id);
    let (rows, more) = meta.with(|st, _| {
        let mut all: Vec<&super::state::Order> = st
            .orders
            .values()
            .filter(|o| states.iter().any(|s| s == o.state))
            .filter(|o| after_t.is_none_or(|t| o.last_updated >= t))
            .filter(|o| before_t.is_none_or(|t| o.last_updated < t))
            .filter(|o| {
                filters.iter().all(|f| match f.as_str() {
                    "HAS_CANCELLATIONS" => o.cancelled.is_some(),
                    "NO_CANCELLATIONS" => o.cancelled.is_none(),
                    "HAS_FULFILLMENTS" => o.shipped.is_some(),
                    "NO_SHIPMENTS" => o.shipped.is_none(),
                    "HAS_REFUNDS" => false,
                    _ => true,
                })
            })
            .filter(|o| cursor.as_ref().is_none_or(|c| key(o) > *c))
            .collect();
        all.sort_by_key(|o| key(o));
        let more = all.len() > limit;
        let rows: Vec<(String, Value)> = all
            .into_iter()
            .take(limit)
            .map(|o| (key(o), o.render(&fields)))
            .collect();
        (rows, more)
    });
    let first = rows.first().map(|(k, _)| k.as_str());
    let last = rows.last().map(|(k, _)| k.as_str());
    let paging = paging(&meta.shared.base_url, path, params, first, last, more);
    let data: Vec<&Value> = rows.iter().map(|(_, v)| v).collect();
    Ok(ok(&json!({"data": data, "paging": paging}), buc))
}

fn acknowledge(meta: &Meta, id: &str, params: &Map<String, Value>) -> Result<Response, GraphError> {
    if !meta.with(|st, _| st.orders.contains_key(id)) {
        return Err(GraphError::unknown_object(id, "post"));
    }
    let buc = meta.buc(&meta.commerce_account_id, USE_CASE_COMMERCE)?;
    let Some(key) = params
        .get("idempotency_key")
        .and_then(Value::as_str)
        .filter(|k| !k.trim().is_empty())
    else {
        return Err(GraphError::param(
            "The parameter idempotency_key is required",
        ));
    };
    let reference = params
        .get("merchant_order_reference")
        .and_then(Value::as_str)
        .unwrap_or("");
    let state = meta
        .with(|st, ctx| st.acknowledge(ctx, id, key, reference))
        .map_err(GraphError::param)?;
    Ok(ok(&json!({"id": id, "state": state}), buc))
}
