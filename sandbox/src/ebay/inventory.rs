//! Sell Inventory API handlers: parse and validate the HTTP request, call `state` under the lock,
//! render eBay's response. Limits and behaviour are documented in the module above.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::error::*;
use super::state::{PriceQuantity, offer_not_available};
use super::{
    DEFAULT_INVENTORY_PAGE, DEFAULT_OFFERS_PAGE, Ebay, INVENTORY_BASE, MAX_BULK_REQUESTS,
    MAX_INVENTORY_PAGE, MAX_LOCATION_KEY_LEN, MAX_SKU_LEN,
};
use crate::MAX_BODY_BYTES;
use crate::faults::SkuRejection;

type St = State<Arc<Ebay>>;

/// A JSON body with eBay's errors for a wrong content type (415), an oversize body (413) and
/// malformed JSON (400), all errorId 2004.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = EbayError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, EbayError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        if !is_json {
            return Err(EbayError::invalid_request(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The Content-Type header must be application/json.",
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                EbayError::invalid_request(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("The request body exceeds {MAX_BODY_BYTES} bytes."),
                )
            })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            EbayError::invalid_request(
                StatusCode::BAD_REQUEST,
                format!("Could not parse the JSON body: {e}."),
            )
        })
    }
}

/// The query string as a map; an unparsable one is an invalid request.
pub(crate) fn query_map(raw: Option<&str>) -> Result<HashMap<String, String>, EbayError> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|e| {
            EbayError::invalid_request(StatusCode::BAD_REQUEST, format!("Bad query string: {e}."))
        })
}

/// `Content-Language: en-US` → `en_US`; required on item and offer writes.
fn content_language(headers: &HeaderMap) -> Result<String, EbayError> {
    let value = headers
        .get(header::CONTENT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    let bytes = value.as_bytes();
    let valid = bytes.len() == 5
        && bytes[2] == b'-'
        && bytes[..2].iter().all(u8::is_ascii_alphabetic)
        && bytes[3..].iter().all(u8::is_ascii_alphabetic);
    if !valid {
        return Err(EbayError::new(
            StatusCode::BAD_REQUEST,
            ErrorData::inventory(
                ERR_INVALID_VALUE,
                "Invalid value for header Content-Language.",
            )
            .param("fieldName", "Content-Language"),
        ));
    }
    Ok(format!(
        "{}_{}",
        value[..2].to_ascii_lowercase(),
        value[3..].to_ascii_uppercase()
    ))
}

fn validate_sku(sku: &str) -> Result<(), EbayError> {
    let n = sku.chars().count();
    if n == 0 || n > MAX_SKU_LEN || sku.chars().any(char::is_control) {
        return Err(EbayError::new(
            StatusCode::BAD_REQUEST,
            ErrorData::inventory(
                ERR_INVALID_SKU,
                format!("This is an invalid value for a SKU. Only alphanumeric characters can be used for SKUs, and their length must not exceed {MAX_SKU_LEN} characters."),
            )
            .param("sku", sku),
        ));
    }
    Ok(())
}

fn rejection_error(r: SkuRejection, sku: &str) -> EbayError {
    EbayError::new(
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
        ErrorData::inventory(r.error_id, r.message).param("sku", sku),
    )
}

fn reject_if_faulted(ebay: &Ebay, op: &str, uri: &Uri, sku: &str) -> Result<(), EbayError> {
    match ebay.rejection(op, uri.path(), sku) {
        Some(r) => Err(rejection_error(r, sku)),
        None => Ok(()),
    }
}

fn pagination_error(detail: &str) -> EbayError {
    EbayError::inventory(
        ERR_INVALID_PAGINATION,
        format!("You have provided invalid pagination values. {detail}."),
    )
}

/// `limit` in `1..=max` (default `default`) and `offset` (a page number) ≥ 0.
fn page_params(
    q: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<(usize, usize), EbayError> {
    let limit = match q.get("limit") {
        None => default,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| pagination_error(&format!("limit must be 1 to {max}")))?,
    };
    let offset = match q.get("offset") {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| pagination_error("offset must be 0 or more"))?,
    };
    Ok((limit, offset))
}

fn absolute(ebay: &Ebay, path_and_query: &str) -> String {
    format!(
        "{}/ebay{INVENTORY_BASE}{path_and_query}",
        ebay.shared.base_url
    )
}

// ---- inventory items ------------------------------------------------------------------------

/// `PUT /inventory_item/{sku}` (createOrReplaceInventoryItem).
pub(crate) async fn put_inventory_item(
    State(ebay): St,
    Path(sku): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<StatusCode, EbayError> {
    validate_sku(&sku)?;
    let locale = content_language(&headers)?;
    reject_if_faulted(&ebay, "createOrReplaceInventoryItem", &uri, &sku)?;
    ebay.with(|st, ctx| st.put_item(ctx, &sku, locale, body))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /inventory_item/{sku}`.
pub(crate) async fn get_inventory_item(
    State(ebay): St,
    Path(sku): Path<String>,
) -> Result<Json<Value>, EbayError> {
    ebay.lock().get_item(&sku).map(Json)
}

/// `DELETE /inventory_item/{sku}`.
pub(crate) async fn delete_inventory_item(
    State(ebay): St,
    Path(sku): Path<String>,
) -> Result<StatusCode, EbayError> {
    ebay.with(|st, ctx| st.delete_item(ctx, &sku))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /inventory_item?limit=&offset=` (getInventoryItems; `offset` is a page number).
pub(crate) async fn get_inventory_items(
    State(ebay): St,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, EbayError> {
    let q = query_map(raw.as_deref())?;
    let (limit, page) = page_params(&q, DEFAULT_INVENTORY_PAGE, MAX_INVENTORY_PAGE)?;
    let st = ebay.lock();
    let total = st.items.len();
    let pages = total.div_ceil(limit);
    let items: Vec<Value> = st
        .items
        .values()
        .skip(page.saturating_mul(limit))
        .take(limit)
        .map(|i| i.render())
        .collect();
    let link = |p: usize| absolute(&ebay, &format!("/inventory_item?limit={limit}&offset={p}"));
    let mut body = json!({
        "href": link(page),
        "limit": limit,
        "size": pages,
        "total": total,
        "inventoryItems": items,
    });
    if page + 1 < pages {
        body["next"] = json!(link(page + 1));
    }
    if page > 0 {
        body["prev"] = json!(link((page - 1).min(pages.saturating_sub(1))));
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
pub(crate) struct BulkGetRequest {
    #[serde(default)]
    requests: Vec<SkuRef>,
}

#[derive(Deserialize)]
pub(crate) struct SkuRef {
    #[serde(default)]
    sku: Option<String>,
}

fn bulk_status(all_ok: bool) -> StatusCode {
    if all_ok {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    }
}

/// `POST /bulk_get_inventory_item` (≤ 25 SKUs).
pub(crate) async fn bulk_get_inventory_item(
    State(ebay): St,
    JsonBody(body): JsonBody<BulkGetRequest>,
) -> Result<Response, EbayError> {
    if body.requests.is_empty() || body.requests.len() > MAX_BULK_REQUESTS {
        return Err(EbayError::inventory(
            ERR_TOO_MANY_ITEMS,
            format!(
                "The number of InventoryItems in the request cannot exceed {MAX_BULK_REQUESTS}."
            ),
        ));
    }
    let skus: Vec<String> = body
        .requests
        .into_iter()
        .map(|r| r.sku.unwrap_or_default())
        .collect();
    let unique: BTreeSet<&String> = skus.iter().collect();
    if unique.len() != skus.len() {
        return Err(EbayError::inventory(
            ERR_DUPLICATE_SKU,
            "SKU should be unique in the request.",
        ));
    }
    let st = ebay.lock();
    let mut all_ok = true;
    let responses: Vec<Value> = skus
        .iter()
        .map(|sku| match st.items.get(sku) {
            Some(item) => json!({"statusCode": 200, "sku": sku, "inventoryItem": item.render(),
                                  "errors": [], "warnings": []}),
            None => {
                all_ok = false;
                let error = ErrorData::inventory(
                    ERR_SKU_NOT_FOUND,
                    format!("{sku} could not be found or is not available in the system."),
                )
                .param("sku", sku.clone());
                json!({"statusCode": 404, "sku": sku, "errors": [error], "warnings": []})
            }
        })
        .collect();
    Ok((bulk_status(all_ok), Json(json!({ "responses": responses }))).into_response())
}

#[derive(Deserialize)]
pub(crate) struct BulkPriceQuantity {
    #[serde(default)]
    requests: Vec<PriceQuantity>,
}

/// `POST /bulk_update_price_quantity` (≤ 25 entries; 200 all ok, 207 otherwise).
pub(crate) async fn bulk_update_price_quantity(
    State(ebay): St,
    uri: Uri,
    JsonBody(body): JsonBody<BulkPriceQuantity>,
) -> Result<Response, EbayError> {
    let n = body.requests.len();
    if n == 0 || n > MAX_BULK_REQUESTS {
        return Err(EbayError::new(
            StatusCode::BAD_REQUEST,
            ErrorData::inventory(
                ERR_INVALID_VALUE,
                format!("Invalid value for requests. Maximum {MAX_BULK_REQUESTS} requests per call; got {n}."),
            )
            .param("fieldName", "requests"),
        ));
    }
    let rejections: Vec<Option<SkuRejection>> = body
        .requests
        .iter()
        .map(|r| {
            r.sku
                .as_deref()
                .and_then(|sku| ebay.rejection("bulkUpdatePriceQuantity", uri.path(), sku))
        })
        .collect();
    let responses = ebay.with(|st, ctx| {
        body.requests
            .iter()
            .zip(rejections)
            .flat_map(|(entry, rejection)| st.bulk_entry(ctx, entry, rejection))
            .collect::<Vec<_>>()
    });
    let all_ok = responses.iter().all(|r| r.status_code == 200);
    Ok((bulk_status(all_ok), Json(json!({ "responses": responses }))).into_response())
}

// ---- offers ---------------------------------------------------------------------------------

/// `POST /offer` (createOffer) → 201 `{"offerId"}`.
pub(crate) async fn create_offer(
    State(ebay): St,
    uri: Uri,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Response, EbayError> {
    content_language(&headers)?;
    if let Some(sku) = body.get("sku").and_then(Value::as_str) {
        reject_if_faulted(&ebay, "createOffer", &uri, sku)?;
    }
    let offer_id = ebay.with(|st, ctx| st.create_offer(ctx, body))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"offerId": offer_id, "warnings": []})),
    )
        .into_response())
}

/// `GET /offer?sku=&marketplace_id=&format=&limit=&offset=` (getOffers; `offset` is a page).
pub(crate) async fn get_offers(
    State(ebay): St,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, EbayError> {
    let q = query_map(raw.as_deref())?;
    let sku = q
        .get("sku")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            EbayError::new(
                StatusCode::BAD_REQUEST,
                ErrorData::inventory(ERR_INVALID_VALUE, "Invalid value for sku.")
                    .param("fieldName", "sku"),
            )
        })?
        .clone();
    let (limit, page) = page_params(&q, DEFAULT_OFFERS_PAGE, usize::MAX)?;
    let st = ebay.lock();
    let matching: Vec<&super::state::Offer> = st
        .offers
        .values()
        .filter(|o| o.sku == sku)
        .filter(|o| {
            q.get("marketplace_id")
                .is_none_or(|m| *m == o.marketplace_id)
        })
        .filter(|o| q.get("format").is_none_or(|f| *f == o.format))
        .collect();
    if matching.is_empty() {
        return Err(offer_not_available(&format!("no offer for SKU {sku}"))
            .with_status(StatusCode::NOT_FOUND));
    }
    let total = matching.len();
    let offers: Vec<Value> = matching
        .iter()
        .skip(page.saturating_mul(limit))
        .take(limit)
        .map(|o| o.render())
        .collect();
    let sku_q = serde_urlencoded::to_string([("sku", sku.as_str())]).unwrap_or_default();
    let link = |p: usize| absolute(&ebay, &format!("/offer?{sku_q}&limit={limit}&offset={p}"));
    let mut body = json!({
        "href": link(page),
        "limit": limit,
        "size": offers.len(),
        "total": total,
        "offers": offers,
    });
    if (page + 1).saturating_mul(limit) < total {
        body["next"] = json!(link(page + 1));
    }
    if page > 0 {
        body["prev"] = json!(link(page - 1));
    }
    Ok(Json(body))
}

/// `GET /offer/{offerId}`.
pub(crate) async fn get_offer(
    State(ebay): St,
    Path(offer_id): Path<String>,
) -> Result<Json<Value>, EbayError> {
    ebay.lock().offer(&offer_id).map(|o| Json(o.render()))
}

/// `PUT /offer/{offerId}` (updateOffer; full replace).
pub(crate) async fn update_offer(
    State(ebay): St,
    Path(offer_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<StatusCode, EbayError> {
    content_language(&headers)?;
    let sku = ebay.lock().offer(&offer_id)?.sku.clone();
    reject_if_faulted(&ebay, "updateOffer", &uri, &sku)?;
    ebay.with(|st, ctx| st.update_offer(ctx, &offer_id, body))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /offer/{offerId}`.
pub(crate) async fn delete_offer(
    State(ebay): St,
    Path(offer_id): Path<String>,
) -> Result<StatusCode, EbayError> {
    ebay.with(|st, ctx| st.delete_offer(ctx, &offer_id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /offer/{offerId}/publish` → `{"listingId"}`.
pub(crate) async fn publish_offer(
    State(ebay): St,
    Path(offer_id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, EbayError> {
    let sku = ebay.lock().offer(&offer_id)?.sku.clone();
    reject_if_faulted(&ebay, "publishOffer", &uri, &sku)?;
    let listing_id = ebay.with(|st, ctx| st.publish(ctx, &offer_id))?;
    Ok(Json(json!({"listingId": listing_id, "warnings": []})))
}

/// `POST /offer/{offerId}/withdraw` → `{"listingId"}`.
pub(crate) async fn withdraw_offer(
    State(ebay): St,
    Path(offer_id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, EbayError> {
    let sku = ebay.lock().offer(&offer_id)?.sku.clone();
    reject_if_faulted(&ebay, "withdrawOffer", &uri, &sku)?;
    let listing_id = ebay.with(|st, ctx| st.withdraw(ctx, &offer_id))?;
    Ok(Json(json!({"listingId": listing_id, "warnings": []})))
}

// ---- locations ------------------------------------------------------------------------------

/// `POST /location/{merchantLocationKey}` (createInventoryLocation) → 204; 409 if it exists.
pub(crate) async fn create_location(
    State(ebay): St,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<StatusCode, EbayError> {
    let valid = !key.is_empty()
        && key.chars().count() <= MAX_LOCATION_KEY_LEN
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(EbayError::inventory(25800, "Invalid merchantLocationKey."));
    }
    let mut st = ebay.lock();
    if st.locations.contains_key(&key) {
        return Err(EbayError::new(
            StatusCode::CONFLICT,
            ErrorData::inventory(ERR_LOCATION_EXISTS, "merchantLocationKey already exists.")
                .param("merchantLocationKey", key),
        ));
    }
    st.locations.insert(key, body);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /location/{merchantLocationKey}`.
pub(crate) async fn get_location(
    State(ebay): St,
    Path(key): Path<String>,
) -> Result<Json<Value>, EbayError> {
    let st = ebay.lock();
    let body = st.locations.get(&key).ok_or_else(|| {
        EbayError::new(
            StatusCode::NOT_FOUND,
            ErrorData::inventory(
                ERR_NOT_FOUND,
                "We didn't find the resource/entity you are requesting. Please verify the request",
            )
            .param("merchantLocationKey", key.clone()),
        )
    })?;
    let mut body = body.clone();
    body.insert("merchantLocationKey".into(), json!(key));
    Ok(Json(Value::Object(body)))
}
