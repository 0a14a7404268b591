//! Listings Items API 2021-08-01 handlers (contracts/README.md §1.3): parse and validate the HTTP
//! request, call `state` under the lock, render the spec's `Item`, `ItemSearchResults` and
//! `ListingsItemSubmissionResponse`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::error::AmazonError;
use super::http::{Query, decode_segment, json_body, parse_time, segments_after, timestamp};
use super::listing::{INCLUDED_DATA, Included, Issue, Listing, Requirements, parse_patches};
use super::state::{Submission, Via, uuid};
use super::{Amazon, MARKETPLACE};

/// Largest searchListingsItems page.
pub const MAX_SEARCH_PAGE: usize = 20;
/// Default searchListingsItems page.
pub const DEFAULT_SEARCH_PAGE: usize = 10;
/// searchListingsItems pages through at most this many results.
pub const MAX_SEARCH_RESULTS: usize = 1000;
/// Most `identifiers` in one search.
pub const MAX_SEARCH_IDENTIFIERS: usize = 20;

const ITEMS_PREFIX: &str = "/listings/2021-08-01/items/";

type St = State<Arc<Amazon>>;

/// `sellerId` (must be the token's seller) and the decoded SKU from the path.
fn seller_and_sku(amz: &Amazon, uri: &Uri) -> Result<String, AmazonError> {
    let segs = segments_after(uri.path(), ITEMS_PREFIX);
    let (Some(seller), Some(sku)) = (segs.first(), segs.get(1)) else {
        return Err(AmazonError::invalid_input(
            "Missing sellerId or sku in the path.",
        ));
    };
    check_seller(amz, seller)?;
    let sku = decode_segment(sku, "sku")?;
    if sku.is_empty() || sku.chars().any(char::is_control) {
        return Err(AmazonError::invalid_input(format!("Invalid sku {sku:?}.")));
    }
    Ok(sku)
}

fn check_seller(amz: &Amazon, raw: &str) -> Result<(), AmazonError> {
    let seller = decode_segment(raw, "sellerId")?;
    if seller != amz.acct.seller_id {
        return Err(AmazonError::unauthorized(format!(
            "The access token does not authorize selling partner {seller:?}."
        )));
    }
    Ok(())
}

/// `marketplaceIds` must be present and name only the seller's marketplace (at most `max`).
fn check_marketplaces(amz: &Amazon, q: &Query, max: Option<usize>) -> Result<(), AmazonError> {
    let ids = q
        .list("marketplaceIds")
        .filter(|ids| !ids.is_empty())
        .ok_or_else(|| {
            AmazonError::invalid_input("Missing required parameter 'marketplaceIds'.")
        })?;
    if let Some(max) = max
        && ids.len() > max
    {
        return Err(AmazonError::invalid_input(format!(
            "At most {max} value(s) allowed for 'marketplaceIds'."
        )));
    }
    if let Some(bad) = ids.iter().find(|m| **m != amz.acct.marketplace_id) {
        return Err(AmazonError::invalid_input(format!(
            "Invalid marketplaceIds: the seller is not registered in marketplace {bad:?}."
        )));
    }
    Ok(())
}

fn read_included(q: &Query) -> Result<Included, AmazonError> {
    let names = q.enum_list("includedData", &INCLUDED_DATA)?;
    Ok(Included::from_names(names.as_deref()))
}

/// `includedData` (identifiers|issues, default issues) and `mode` of a write.
struct WriteParams {
    issues: bool,
    identifiers: bool,
    preview: bool,
}

fn write_params(q: &Query) -> Result<WriteParams, AmazonError> {
    let preview = match q.get("mode") {
        None => false,
        Some("VALIDATION_PREVIEW") => true,
        Some(other) => {
            return Err(AmazonError::invalid_input(format!(
                "Invalid value {other:?} for 'mode'; allowed: VALIDATION_PREVIEW."
            )));
        }
    };
    let names = q.enum_list("includedData", &["identifiers", "issues"])?;
    let (issues, identifiers) = match &names {
        None => (true, false),
        Some(n) => (
            n.iter().any(|x| x == "issues"),
            n.iter().any(|x| x == "identifiers"),
        ),
    };
    if identifiers && !preview {
        return Err(AmazonError::invalid_input(
            "'identifiers' can only be requested when 'mode' is VALIDATION_PREVIEW.",
        ));
    }
    Ok(WriteParams {
        issues,
        identifiers,
        preview,
    })
}

/// Runs a submission and renders `ListingsItemSubmissionResponse` (HTTP 200 even when INVALID).
fn submit(
    amz: &Amazon,
    operation: &'static str,
    uri: &Uri,
    sku: &str,
    submission: Submission,
    params: &WriteParams,
) -> Response {
    let rejection = amz
        .shared
        .faults
        .sku_rejection(MARKETPLACE, operation, uri.path(), sku)
        .map(|r| Issue::rejected(r.error_id, &r.message));
    let via = Via {
        operation,
        batch_ref: None,
    };
    let (outcome, submission_id, mp) = amz.with(|st, ctx| {
        st.pump_feeds(ctx);
        let outcome = st.submit(ctx, sku, submission, params.preview, rejection, &via);
        (
            outcome,
            uuid(ctx.rng).replace('-', ""),
            st.cfg.acct.marketplace_id.clone(),
        )
    });
    let status = match (outcome.accepted, params.preview) {
        (false, _) => "INVALID",
        (true, true) => "VALID",
        (true, false) => "ACCEPTED",
    };
    let mut body = json!({"sku": sku, "status": status, "submissionId": submission_id});
    if params.issues {
        let issues: Vec<Value> = outcome
            .issues
            .iter()
            .map(|i| i.to_listing_json(&mp))
            .collect();
        body["issues"] = json!(issues);
    }
    if params.identifiers {
        let ids: Vec<Value> = outcome
            .asin
            .iter()
            .map(|a| json!({"marketplaceId": mp, "asin": a}))
            .collect();
        body["identifiers"] = json!(ids);
    }
    Json(body).into_response()
}

/// `GET /listings/2021-08-01/items/{sellerId}/{sku}` (getListingsItem).
pub(crate) async fn get_item(
    State(amz): St,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmazonError> {
    let sku = seller_and_sku(&amz, &uri)?;
    let q = Query::parse(raw.as_deref())?;
    check_marketplaces(&amz, &q, None)?;
    let inc = read_included(&q)?;
    amz.with(|st, ctx| {
        st.pump_feeds(ctx);
        let acct = st.cfg.acct.clone();
        st.listings
            .get(&sku)
            .map(|l| Json(l.render(inc, &acct)).into_response())
            .ok_or_else(|| {
                AmazonError::not_found(format!(
                    "SKU '{sku}' not found in marketplace {}",
                    acct.marketplace_id
                ))
            })
    })
}

/// `PUT /listings/2021-08-01/items/{sellerId}/{sku}` (putListingsItem): full replace.
pub(crate) async fn put_item(State(amz): St, req: Request) -> Result<Response, AmazonError> {
    let uri = req.uri().clone();
    let sku = seller_and_sku(&amz, &uri)?;
    let q = Query::parse(uri.query())?;
    check_marketplaces(&amz, &q, Some(1))?;
    let params = write_params(&q)?;
    let body = json_body(req, StatusCode::PAYLOAD_TOO_LARGE).await?;
    let product_type = product_type(&body)?;
    let attributes = body
        .get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| {
            AmazonError::invalid_input("'attributes' is required and must be an object.")
        })?;
    let requirements = match body.get("requirements") {
        None => Requirements::Listing,
        Some(r) => r.as_str().and_then(Requirements::parse).ok_or_else(|| {
            AmazonError::invalid_input(
                "'requirements' must be LISTING, LISTING_PRODUCT_ONLY or LISTING_OFFER_ONLY.",
            )
        })?,
    };
    Ok(submit(
        &amz,
        "putListingsItem",
        &uri,
        &sku,
        Submission::Put {
            product_type,
            requirements,
            attributes,
        },
        &params,
    ))
}

fn product_type(body: &Value) -> Result<String, AmazonError> {
    if !body.is_object() {
        return Err(AmazonError::invalid_input(
            "The request body must be a JSON object.",
        ));
    }
    body.get("productType")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            AmazonError::invalid_input("'productType' is required and must be a string.")
        })
}

/// `PATCH /listings/2021-08-01/items/{sellerId}/{sku}` (patchListingsItem). A SKU without a
/// listing gets an offer-only listing (not buyable until its product facts are supplied).
pub(crate) async fn patch_item(State(amz): St, req: Request) -> Result<Response, AmazonError> {
    let uri = req.uri().clone();
    let sku = seller_and_sku(&amz, &uri)?;
    let q = Query::parse(uri.query())?;
    check_marketplaces(&amz, &q, Some(1))?;
    let params = write_params(&q)?;
    let body = json_body(req, StatusCode::PAYLOAD_TOO_LARGE).await?;
    let product_type = product_type(&body)?;
    let patches = body
        .get("patches")
        .ok_or_else(|| AmazonError::invalid_input("'patches' is required."))
        .and_then(|p| parse_patches(p).map_err(AmazonError::invalid_input))?;
    Ok(submit(
        &amz,
        "patchListingsItem",
        &uri,
        &sku,
        Submission::Patch {
            product_type,
            patches,
        },
        &params,
    ))
}

/// `DELETE /listings/2021-08-01/items/{sellerId}/{sku}` (deleteListingsItem): ACCEPTED even for
/// an unknown SKU.
pub(crate) async fn delete_item(
    State(amz): St,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmazonError> {
    let sku = seller_and_sku(&amz, &uri)?;
    let q = Query::parse(raw.as_deref())?;
    check_marketplaces(&amz, &q, Some(1))?;
    let params = WriteParams {
        issues: true,
        identifiers: false,
        preview: false,
    };
    Ok(submit(
        &amz,
        "deleteListingsItem",
        &uri,
        &sku,
        Submission::Delete,
        &params,
    ))
}

/// The validated search filters (a pageToken is only valid with the same ones).
#[derive(Debug, Clone)]
struct SearchFilter {
    identifiers: Option<(String, Vec<String>)>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    updated_after: Option<DateTime<Utc>>,
    updated_before: Option<DateTime<Utc>>,
    with_status: Option<Vec<String>>,
    without_status: Option<Vec<String>>,
    with_severity: Option<Vec<String>>,
    /// `variationParentSku` / `packageHierarchySku`: no relationships are modelled, so nothing
    /// matches.
    relationship: bool,
    sort_by: String,
    descending: bool,
}

impl SearchFilter {
    fn parse(q: &Query) -> Result<SearchFilter, AmazonError> {
        let time = |name: &str| q.get(name).map(|v| parse_time(v, name)).transpose();
        let ids = q.list("identifiers");
        let id_type = q.get("identifiersType");
        let identifiers = match (ids, id_type) {
            (None, None) => None,
            (Some(ids), Some(t)) => {
                const TYPES: [&str; 9] = [
                    "ASIN", "EAN", "FNSKU", "GTIN", "ISBN", "JAN", "MINSAN", "SKU", "UPC",
                ];
                if !TYPES.contains(&t) {
                    return Err(AmazonError::invalid_input(format!(
                        "Invalid identifiersType {t:?}."
                    )));
                }
                if ids.is_empty() || ids.len() > MAX_SEARCH_IDENTIFIERS {
                    return Err(AmazonError::invalid_input(format!(
                        "'identifiers' must list 1 to {MAX_SEARCH_IDENTIFIERS} values."
                    )));
                }
                Some((t.to_owned(), ids))
            }
            _ => {
                return Err(AmazonError::invalid_input(
                    "'identifiers' and 'identifiersType' must be provided together.",
                ));
            }
        };
        let parent = q.has("variationParentSku");
        let package = q.has("packageHierarchySku");
        if [identifiers.is_some(), parent, package]
            .iter()
            .filter(|b| **b)
            .count()
            > 1
        {
            return Err(AmazonError::invalid_input(
                "Only one of 'identifiers', 'variationParentSku' and 'packageHierarchySku' may be used.",
            ));
        }
        let sort_by = q.get("sortBy").unwrap_or("lastUpdatedDate");
        if !["sku", "createdDate", "lastUpdatedDate"].contains(&sort_by) {
            return Err(AmazonError::invalid_input(format!(
                "Invalid sortBy {sort_by:?}; allowed: sku, createdDate, lastUpdatedDate."
            )));
        }
        let descending = match q.get("sortOrder").unwrap_or("DESC") {
            "DESC" => true,
            "ASC" => false,
            other => {
                return Err(AmazonError::invalid_input(format!(
                    "Invalid sortOrder {other:?}; allowed: ASC, DESC."
                )));
            }
        };
        Ok(SearchFilter {
            identifiers,
            created_after: time("createdAfter")?,
            created_before: time("createdBefore")?,
            updated_after: time("lastUpdatedAfter")?,
            updated_before: time("lastUpdatedBefore")?,
            with_status: q.enum_list("withStatus", &["BUYABLE", "DISCOVERABLE"])?,
            without_status: q.enum_list("withoutStatus", &["BUYABLE", "DISCOVERABLE"])?,
            with_severity: q.enum_list("withIssueSeverity", &["WARNING", "ERROR"])?,
            relationship: parent || package,
            sort_by: sort_by.to_owned(),
            descending,
        })
    }

    fn to_value(&self) -> Value {
        let t = |x: &Option<DateTime<Utc>>| x.map(timestamp);
        json!({
            "identifiers": self.identifiers, "createdAfter": t(&self.created_after),
            "createdBefore": t(&self.created_before), "lastUpdatedAfter": t(&self.updated_after),
            "lastUpdatedBefore": t(&self.updated_before), "withStatus": self.with_status,
            "withoutStatus": self.without_status, "withIssueSeverity": self.with_severity,
            "relationship": self.relationship, "sortBy": self.sort_by, "descending": self.descending,
        })
    }

    fn key(&self, l: &Listing) -> (String, String) {
        let k = match self.sort_by.as_str() {
            "sku" => String::new(),
            "createdDate" => timestamp(l.created),
            _ => timestamp(l.updated),
        };
        (k, l.sku.clone())
    }

    fn matches(&self, l: &Listing, acct: &super::listing::Account) -> bool {
        if self.relationship {
            return false;
        }
        if let Some((t, ids)) = &self.identifiers {
            let id = match t.as_str() {
                "SKU" => &l.sku,
                "ASIN" => &l.asin,
                _ => return false,
            };
            if !ids.contains(id) {
                return false;
            }
        }
        let within = |t: DateTime<Utc>, a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| {
            a.is_none_or(|a| t >= a) && b.is_none_or(|b| t <= b)
        };
        if !within(l.created, self.created_after, self.created_before)
            || !within(l.updated, self.updated_after, self.updated_before)
        {
            return false;
        }
        let status = l.status(acct);
        if let Some(w) = &self.with_status
            && !w.iter().any(|s| status.contains(&s.as_str()))
        {
            return false;
        }
        if let Some(w) = &self.without_status
            && w.iter().any(|s| status.contains(&s.as_str()))
        {
            return false;
        }
        if let Some(sev) = &self.with_severity {
            let issues = l.issues();
            let hit = sev.iter().any(|s| match s.as_str() {
                "ERROR" => issues.iter().any(Issue::is_error),
                _ => issues.iter().any(Issue::is_warning),
            });
            if !hit {
                return false;
            }
        }
        true
    }
}

/// `GET /listings/2021-08-01/items/{sellerId}` (searchListingsItems): `pageSize` ≤ 20 (default
/// 10), opaque keyset `pageToken` valid with the same filters, at most 1,000 results pageable.
/// Only `nextToken` is returned (cursors move forward; `previousToken` is optional in the spec).
pub(crate) async fn search_items(
    State(amz): St,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmazonError> {
    let segs = segments_after(uri.path(), ITEMS_PREFIX);
    check_seller(&amz, segs.first().copied().unwrap_or(""))?;
    let q = Query::parse(raw.as_deref())?;
    check_marketplaces(&amz, &q, None)?;
    let inc = read_included(&q)?;
    let page = q.int_in("pageSize", 1..=MAX_SEARCH_PAGE, DEFAULT_SEARCH_PAGE)?;
    let filter = SearchFilter::parse(&q)?;
    let filter_value = filter.to_value();
    amz.with(|st, ctx| {
        st.pump_feeds(ctx);
        let (after, seen) = match q.get("pageToken") {
            Some(token) => {
                let c = st.cursor(token, ctx.now)?;
                if c.filter != filter_value {
                    return Err(AmazonError::invalid_input(
                        "The pageToken must be used with the same filters as the request that returned it.",
                    ));
                }
                (Some(c.after), c.seen)
            }
            None => (None, 0),
        };
        let acct = st.cfg.acct.clone();
        let all: Vec<&Listing> = st
            .listings
            .values()
            .filter(|l| filter.matches(l, &acct))
            .collect();
        let total = all.len();
        let mut rest: Vec<&Listing> = all
            .into_iter()
            .filter(|l| {
                after.as_ref().is_none_or(|a| {
                    let k = filter.key(l);
                    if filter.descending { k < *a } else { k > *a }
                })
            })
            .collect();
        rest.sort_by(|a, b| {
            let o = filter.key(a).cmp(&filter.key(b));
            if filter.descending { o.reverse() } else { o }
        });
        let room = MAX_SEARCH_RESULTS.saturating_sub(seen);
        let take = page.min(room);
        let more = rest.len() > take && seen + take < MAX_SEARCH_RESULTS;
        rest.truncate(take);
        let items: Vec<Value> = rest.iter().map(|l| l.render(inc, &acct)).collect();
        let last = rest.last().map(|l| filter.key(l));
        let mut body = json!({"numberOfResults": total, "items": items});
        if more && let Some(last) = last {
            let token = st.new_cursor(ctx, filter_value, last, seen + take);
            body["pagination"] = json!({ "nextToken": token });
        }
        Ok(Json(body).into_response())
    })
}
