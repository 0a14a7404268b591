//! The WooCommerce REST handlers: the WAF and authentication layer, collections with WordPress's
//! paging headers, the batch endpoints, orders. Every client input is hostile: failures are
//! WordPress error bodies (or the HTML pages WordPress and its proxies really send), never a panic.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use super::state::{self, Ctx, Kind, SITE_UTC_OFFSET_HOURS};
use super::{
    API_ROOT, DEFAULT_PER_PAGE, MARKETPLACE, MAX_BATCH_ITEMS, MAX_PER_PAGE, Woo, WooError,
};
use crate::MAX_BODY_BYTES;
use crate::gate::Operation;

type Shop = State<Arc<Woo>>;

fn html(status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        )],
        format!(
            "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>{title} &#8211; Sandbox Shop</title></head>\
             <body class=\"error404\"><h1>{title}</h1><p>{text}</p></body></html>\n"
        ),
    )
        .into_response()
}

/// Routes that do not exist: WordPress answers `rest_no_route` below `/wp-json`, and its theme's
/// HTML 404 page anywhere else (what a client with a wrong `endpoint` gets).
pub(crate) async fn not_found(uri: Uri) -> Response {
    if uri.path().contains("/wp-json") {
        WooError::new(
            404,
            "rest_no_route",
            "No route was found matching the URL and request method.",
        )
        .into_response()
    } else {
        html(
            StatusCode::NOT_FOUND,
            "Page not found",
            "It looks like nothing was found at this location.",
        )
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (key, secret) = decoded.split_once(':')?;
    Some((key.to_owned(), secret.to_owned()))
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or("")).unwrap_or_default()
}

/// The WAF (rate model), then WooCommerce's key check: Basic auth, else the query-string
/// fallback.
pub(crate) async fn authorize(State(woo): Shop, req: Request, next: Next) -> Response {
    let Some(op) = req.extensions().get::<Operation>().copied() else {
        return next.run(req).await;
    };
    if !woo.shared.limiter.try_acquire(MARKETPLACE, op.group) {
        woo.shared.recorder.too_many_requests(MARKETPLACE, true);
        let mut resp = html(
            StatusCode::TOO_MANY_REQUESTS,
            "429 Too Many Requests",
            "You have been rate limited by the web application firewall.",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(woo.retry_after_secs));
        return resp;
    }
    let given = basic_credentials(req.headers()).or_else(|| {
        let q = query_pairs(req.uri().query());
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Some((get("consumer_key")?, get("consumer_secret")?))
    });
    let creds = &woo.credentials;
    match given {
        None => {
            let (code, message) = if op.readonly {
                (
                    "woocommerce_rest_cannot_view",
                    "Sorry, you cannot list resources.",
                )
            } else {
                (
                    "woocommerce_rest_cannot_create",
                    "Sorry, you are not allowed to create resources.",
                )
            };
            WooError::new(401, code, message).into_response()
        }
        Some((key, _)) if key != creds.consumer_key => WooError::new(
            401,
            "woocommerce_rest_authentication_error",
            "Consumer key is invalid.",
        )
        .into_response(),
        Some((_, secret)) if secret != creds.consumer_secret => WooError::new(
            401,
            "woocommerce_rest_authentication_error",
            "Consumer secret is invalid.",
        )
        .into_response(),
        Some(_) => next.run(req).await,
    }
}

// ---- query parameters -------------------------------------------------------------------------

struct Query {
    pairs: Vec<(String, String)>,
}

fn invalid(name: &str, why: impl Into<String>) -> WooError {
    let mut e = WooError::new(
        400,
        "rest_invalid_param",
        format!("Invalid parameter(s): {name}"),
    );
    e.data.insert("params".into(), json!({ name: why.into() }));
    e
}

impl Query {
    fn parse(raw: Option<&str>) -> Result<Query, WooError> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
            .map(|pairs| Query { pairs })
            .map_err(|_| invalid("query", "Malformed query string."))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn int(&self, name: &str, min: usize, max: usize, default: usize) -> Result<usize, WooError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    invalid(
                        name,
                        format!("{name} must be between {min} (inclusive) and {max} (inclusive)"),
                    )
                }),
        }
    }

    fn one_of(
        &self,
        name: &str,
        allowed: &[&str],
        default: &'static str,
    ) -> Result<String, WooError> {
        match self.get(name) {
            None => Ok(default.to_owned()),
            Some(v) if allowed.contains(&v) => Ok(v.to_owned()),
            Some(_) => Err(invalid(
                name,
                format!("{name} is not one of {}.", allowed.join(", ")),
            )),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, WooError> {
        match self.get(name) {
            None => Ok(false),
            Some("true" | "1") => Ok(true),
            Some("false" | "0" | "") => Ok(false),
            Some(_) => Err(invalid(name, format!("{name} is not of type boolean."))),
        }
    }

    /// An ISO 8601 date: with an offset or `Z` it is absolute; without, GMT when `gmt`, else
    /// site time.
    fn date(&self, name: &str, gmt: bool) -> Result<Option<DateTime<Utc>>, WooError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let v = v.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(v) {
            return Ok(Some(t.with_timezone(&Utc)));
        }
        let naive = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S"))
            .map_err(|_| invalid(name, "Invalid date."))?;
        let utc = naive.and_utc();
        Ok(Some(if gmt {
            utc
        } else {
            utc - TimeDelta::hours(SITE_UTC_OFFSET_HOURS)
        }))
    }
}

/// One page of `items` with `X-WP-Total`, `X-WP-TotalPages` and `Link`.
fn page_of(woo: &Woo, uri: &Uri, q: &Query, items: Vec<Value>) -> Response {
    let per_page = match q.int("per_page", 1, MAX_PER_PAGE, DEFAULT_PER_PAGE) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let page = match q.int("page", 1, usize::MAX, 1) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let total = items.len();
    let pages = total.div_ceil(per_page);
    if total > 0 && page > pages {
        return WooError::new(
            400,
            "rest_post_invalid_page_number",
            "The page number requested is larger than the number of pages available.",
        )
        .into_response();
    }
    let body: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let url_for = |p: usize| {
        let mut pairs: Vec<(String, String)> = q
            .pairs
            .iter()
            .filter(|(k, _)| k != "page" && k != "consumer_key" && k != "consumer_secret")
            .cloned()
            .collect();
        pairs.push(("page".into(), p.to_string()));
        let path = uri.path();
        let path = path.strip_prefix("/woo").unwrap_or(path);
        format!(
            "<{}{}?{}>",
            woo.site_url(),
            path,
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", url_for(page - 1)));
    }
    if page < pages {
        links.push(format!("{}; rel=\"next\"", url_for(page + 1)));
    }
    let mut resp = axum::Json(body).into_response();
    let h = resp.headers_mut();
    h.insert("x-wp-total", HeaderValue::from(total));
    h.insert("x-wp-totalpages", HeaderValue::from(pages));
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(", "))
    {
        h.insert(header::LINK, v);
    }
    resp
}

fn sku_filter(q: &Query) -> Option<Vec<String>> {
    let raw = q.get("sku").filter(|s| !s.is_empty())?;
    let mut skus: Vec<String> = raw.split(',').map(str::to_owned).collect();
    if skus.len() > 1 {
        // WooCommerce includes the whole string too (a SKU may hold a comma).
        skus.push(raw.to_owned());
    }
    Some(skus)
}

fn sort(items: &mut [&state::Product], q: &Query, allowed: &[&str]) -> Result<(), WooError> {
    let orderby = q.one_of("orderby", allowed, "date")?;
    let order = q.one_of("order", &["asc", "desc"], "desc")?;
    items.sort_by(|a, b| match orderby.as_str() {
        "id" | "include" => a.id.cmp(&b.id),
        "title" | "slug" => a.name.cmp(&b.name).then(a.id.cmp(&b.id)),
        "price" => state::parse_cents(&a.regular_price)
            .cmp(&state::parse_cents(&b.regular_price))
            .then(a.id.cmp(&b.id)),
        _ => (a.created, a.id).cmp(&(b.created, b.id)),
    });
    if order == "desc" {
        items.reverse();
    }
    Ok(())
}

/// `GET /products`.
pub(crate) async fn list_products(State(woo): Shop, uri: Uri, RawQuery(raw): RawQuery) -> Response {
    let result = (|| {
        let q = Query::parse(raw.as_deref())?;
        let status = q.one_of(
            "status",
            &["any", "draft", "pending", "private", "publish"],
            "any",
        )?;
        let kind = q.one_of(
            "type",
            &["", "simple", "grouped", "external", "variable"],
            "",
        )?;
        let skus = sku_filter(&q);
        let st = woo.lock();
        let mut items: Vec<&state::Product> = st
            .products
            .values()
            .filter(|p| p.kind != Kind::Variation)
            .filter(|p| status == "any" || p.status == status)
            .filter(|p| {
                kind.is_empty()
                    || (kind == "simple" && p.kind == Kind::Simple)
                    || (kind == "variable" && p.kind == Kind::Variable)
            })
            .filter(|p| skus.as_ref().is_none_or(|s| s.contains(&p.sku)))
            .collect();
        sort(
            &mut items,
            &q,
            &[
                "date",
                "id",
                "include",
                "title",
                "slug",
                "price",
                "popularity",
                "rating",
            ],
        )?;
        let rendered: Vec<Value> = items.iter().map(|p| p.render(&st.base_url, &st)).collect();
        Ok::<_, WooError>((q, rendered))
    })();
    match result {
        Ok((q, items)) => page_of(&woo, &uri, &q, items),
        Err(e) => e.into_response(),
    }
}

fn parse_id(raw: &str) -> Option<u64> {
    raw.parse().ok()
}

fn no_route() -> Response {
    WooError::new(
        404,
        "rest_no_route",
        "No route was found matching the URL and request method.",
    )
    .into_response()
}

/// `GET /products/{id}` (products and variations alike, as WooCommerce does).
pub(crate) async fn get_product(State(woo): Shop, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return no_route();
    };
    let st = woo.lock();
    match st.products.get(&id) {
        Some(p) => axum::Json(p.render(&st.base_url, &st)).into_response(),
        None => {
            WooError::new(404, "woocommerce_rest_product_invalid_id", "Invalid ID.").into_response()
        }
    }
}

/// `GET /products/{id}/variations`.
pub(crate) async fn list_variations(
    State(woo): Shop,
    Path(id): Path<String>,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return no_route();
    };
    let result = (|| {
        let q = Query::parse(raw.as_deref())?;
        let status = q.one_of(
            "status",
            &["any", "draft", "pending", "private", "publish"],
            "any",
        )?;
        let skus = sku_filter(&q);
        let st = woo.lock();
        let parent = st
            .products
            .get(&id)
            .filter(|p| p.kind != Kind::Variation)
            .ok_or_else(|| {
                WooError::new(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            })?;
        let mut items: Vec<&state::Product> = parent
            .variations
            .iter()
            .filter_map(|v| st.products.get(v))
            .filter(|p| status == "any" || p.status == status)
            .filter(|p| skus.as_ref().is_none_or(|s| s.contains(&p.sku)))
            .collect();
        sort(&mut items, &q, &["date", "id", "include", "title", "slug"])?;
        let rendered: Vec<Value> = items.iter().map(|p| p.render(&st.base_url, &st)).collect();
        Ok::<_, WooError>((q, rendered))
    })();
    match result {
        Ok((q, items)) => page_of(&woo, &uri, &q, items),
        Err(e) => e.into_response(),
    }
}

/// A JSON body within [`MAX_BODY_BYTES`] (nginx's HTML 413 page beyond), parsed (400
/// `rest_invalid_json` otherwise).
async fn json_body(req: Request) -> Result<Value, Response> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            html(
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large",
                "nginx",
            )
        })?;
    serde_json::from_slice(&bytes).map_err(|_| {
        WooError::new(400, "rest_invalid_json", "Invalid JSON body passed.").into_response()
    })
}

/// The shared batch handler: 100-item limit, then create, update, delete with per-item errors.
async fn batch(woo: &Woo, req: Request, parent: Option<u64>, operation: &'static str) -> Response {
    let path = req.uri().path().to_owned();
    let body = match json_body(req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Some(obj) = body.as_object() else {
        return invalid("create", "The batch body must be an object.").into_response();
    };
    let mut lists: Vec<(&str, Vec<Value>)> = Vec::new();
    for key in ["create", "update", "delete"] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => lists.push((key, a.clone())),
            Some(_) => return invalid(key, format!("{key} is not of type array.")).into_response(),
        }
    }
    let count: usize = lists.iter().map(|(_, l)| l.len()).sum();
    if count > MAX_BATCH_ITEMS {
        return WooError::new(
            413,
            "woocommerce_rest_request_entity_too_large",
            format!("Unable to accept more than {MAX_BATCH_ITEMS} items for this request."),
        )
        .into_response();
    }
    let faults = woo.shared.faults.clone();
    let reject = move |sku: &str| {
        faults
            .sku_rejection(MARKETPLACE, operation, &path, sku)
            .map(|r| (r.status, r.error_id, r.message))
    };
    let ctx = Ctx {
        now: woo.shared.clock.now(),
        rec: &woo.shared.recorder,
        reject: &reject,
        operation,
    };
    let mut st = woo.lock();
    if let Some(parent) = parent
        && !st
            .products
            .get(&parent)
            .is_some_and(|p| p.kind == Kind::Variable)
    {
        return WooError::new(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            .into_response();
    }
    let mut out = Map::new();
    for (key, items) in lists {
        let mut results = Vec::with_capacity(items.len());
        for item in &items {
            let result = match key {
                "create" => st.create(&ctx, item, parent),
                "update" => st.update(&ctx, item, parent),
                _ => st.delete(item, parent),
            };
            results.push(match result {
                Ok(v) => v,
                Err(e) => {
                    let id = match key {
                        "update" => item.get("id").cloned().unwrap_or(json!(0)),
                        "delete" => item.clone(),
                        _ => json!(0),
                    };
                    json!({"id": id, "error": e.body()})
                }
            });
        }
        out.insert(key.to_owned(), Value::Array(results));
    }
    axum::Json(Value::Object(out)).into_response()
}

/// `POST /products/batch`.
pub(crate) async fn batch_products(State(woo): Shop, req: Request) -> Response {
    batch(&woo, req, None, "batchProducts").await
}

/// `POST /products/{id}/variations/batch`.
pub(crate) async fn batch_variations(
    State(woo): Shop,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return no_route();
    };
    batch(&woo, req, Some(id), "batchVariations").await
}

const ORDER_STATUSES: [&str; 8] = [
    "pending",
    "processing",
    "on-hold",
    "completed",
    "cancelled",
    "refunded",
    "failed",
    "trash",
];

/// `GET /orders`.
pub(crate) async fn list_orders(State(woo): Shop, uri: Uri, RawQuery(raw): RawQuery) -> Response {
    let result = (|| {
        let q = Query::parse(raw.as_deref())?;
        let gmt = q.bool("dates_are_gmt")?;
        let after = q.date("modified_after", gmt)?;
        let before = q.date("modified_before", gmt)?;
        let created_after = q.date("after", gmt)?;
        let statuses: Vec<String> = match q.get("status") {
            None => vec!["any".into()],
            Some(s) => s.split(',').map(str::to_owned).collect(),
        };
        for s in &statuses {
            if s != "any" && !ORDER_STATUSES.contains(&s.as_str()) {
                return Err(invalid(
                    "status",
                    format!(
                        "status[0] is not one of any, {}.",
                        ORDER_STATUSES.join(", ")
                    ),
                ));
            }
        }
        let orderby = q.one_of(
            "orderby",
            &["date", "id", "include", "title", "slug"],
            "date",
        )?;
        let order = q.one_of("order", &["asc", "desc"], "desc")?;
        let st = woo.lock();
        let mut orders: Vec<&state::Order> = st
            .orders
            .values()
            .filter(|o| {
                statuses.iter().any(|s| {
                    if s == "any" {
                        o.status != "trash"
                    } else {
                        *s == o.status
                    }
                })
            })
            // WordPress compares whole seconds, strictly after / before.
            .filter(|o| after.is_none_or(|a| o.modified.timestamp() > a.timestamp()))
            .filter(|o| before.is_none_or(|b| o.modified.timestamp() < b.timestamp()))
            .filter(|o| created_after.is_none_or(|a| o.created.timestamp() > a.timestamp()))
            .collect();
        orders.sort_by(|a, b| match orderby.as_str() {
            "date" => (a.created.timestamp(), a.id).cmp(&(b.created.timestamp(), b.id)),
            _ => a.id.cmp(&b.id),
        });
        if order == "desc" {
            orders.reverse();
        }
        let rendered: Vec<Value> = orders.iter().map(|o| o.render(&st.currency)).collect();
        Ok::<_, WooError>((q, rendered))
    })();
    match result {
        Ok((q, items)) => page_of(&woo, &uri, &q, items),
        Err(e) => e.into_response(),
    }
}

/// `GET /orders/{id}`.
pub(crate) async fn get_order(State(woo): Shop, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return no_route();
    };
    let st = woo.lock();
    match st.orders.get(&id) {
        Some(o) => axum::Json(o.render(&st.currency)).into_response(),
        None => WooError::new(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            .into_response(),
    }
}

/// `GET /data/currencies/current`.
pub(crate) async fn current_currency(State(woo): Shop) -> Response {
    let code = woo.lock().currency.clone();
    let symbol = match code.as_str() {
        "USD" => "&#36;",
        "EUR" => "&euro;",
        "GBP" => "&pound;",
        _ => "",
    };
    axum::Json(
        json!({"code": code, "name": code, "symbol": symbol, "_links": {
        "collection": [{"href": format!("{}{API_ROOT}/data/currencies", woo.site_url())}]}}),
    )
    .into_response()
}
