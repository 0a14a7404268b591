//! Feeds API 2021-06-30 with JSON_LISTINGS_FEED (contracts/README.md §1.4): feed documents and
//! their presigned S3-style URLs, createFeed / getFeed / getFeeds / cancelFeed / getFeedDocument,
//! and the asynchronous processing that validates a feed document against the essentials of
//! listings-feed-schema-v2, applies its messages with the Listings Items rules, and writes a
//! processing report per listings-feed-processing-report-schema-v2.
//!
//! Processing is driven by the sandbox clock: a feed is `IN_QUEUE` for the first half of
//! `feed_processing`, `IN_PROGRESS` for the second half, then `DONE` (or `FATAL`). A background
//! task and every feed read move feeds along, so advancing the clock is enough to finish them.

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::error::AmazonError;
use super::http::{Query, decode_segment, json_body, parse_time, segments_after, timestamp};
use super::listing::{INCLUDED_DATA, Included, Issue, Requirements, parse_patches};
use super::state::{AmazonState, Ctx, Submission, Via};
use super::{Amazon, FeedSnapshot, MARKETPLACE};

/// The one listings feed type Amazon still processes.
pub const JSON_LISTINGS_FEED: &str = "JSON_LISTINGS_FEED";
/// Most messages in one JSON_LISTINGS_FEED (schema `messages.maxItems`).
pub const MAX_FEED_MESSAGES: usize = 25_000;
/// Largest `messageId` (schema `maximum`).
pub const MAX_MESSAGE_ID: u64 = 2_147_483_647;
/// Largest feed document the presigned upload URL accepts (a sandbox limit: 25,000 messages are
/// several MB).
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;
/// Lifetime of a presigned URL, in seconds (the Feeds API documents 5 minutes).
pub const PRESIGNED_URL_TTL_SECS: i64 = 300;
/// Most `marketplaceIds` in createFeed.
pub const MAX_FEED_MARKETPLACES: usize = 25;
/// Largest getFeeds page.
pub const MAX_FEEDS_PAGE: usize = 100;
/// Default getFeeds page.
pub const DEFAULT_FEEDS_PAGE: usize = 10;
/// getFeeds looks back this many days by default (feeds are retained 90 days).
pub const FEEDS_LOOKBACK_DAYS: i64 = 90;

/// Legacy XML / flat-file listings feed types: accepted, then `FATAL` (retired 2025-07-31).
pub const LEGACY_LISTINGS_FEED_TYPES: [&str; 10] = [
    "POST_PRODUCT_DATA",
    "POST_INVENTORY_AVAILABILITY_DATA",
    "POST_PRODUCT_PRICING_DATA",
    "POST_PRODUCT_OVERRIDES_DATA",
    "POST_PRODUCT_IMAGE_DATA",
    "POST_PRODUCT_RELATIONSHIP_DATA",
    "POST_FLAT_FILE_INVLOADER_DATA",
    "POST_FLAT_FILE_LISTINGS_DATA",
    "POST_FLAT_FILE_PRICEANDQUANTITYONLY_UPDATE_DATA",
    "POST_UIEE_BOOKLOADER_DATA",
];

const FEED_STATUSES: [&str; 5] = ["CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE"];
const FEEDS_PATH: &str = "/feeds/2021-06-30/feeds";
const REPORT_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// A feed document (input uploaded by the seller, or a processing report).
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub content_type: String,
    pub content: Option<Bytes>,
    /// Stored GZIP-compressed (`compressionAlgorithm: GZIP`).
    pub compressed: bool,
}

/// What one presigned URL allows.
#[derive(Debug, Clone)]
pub(crate) struct Presigned {
    pub doc_id: String,
    /// PUT (upload) rather than GET (download).
    pub upload: bool,
    pub expires: DateTime<Utc>,
    /// Serve with `Content-Encoding: gzip` (getFeedDocument `enableContentEncodingUrlHeader`).
    pub gzip_header: bool,
}

/// A feed's `processingStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeedStatus {
    InQueue,
    InProgress,
    Done,
    Fatal,
    Cancelled,
}

impl FeedStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FeedStatus::InQueue => "IN_QUEUE",
            FeedStatus::InProgress => "IN_PROGRESS",
            FeedStatus::Done => "DONE",
            FeedStatus::Fatal => "FATAL",
            FeedStatus::Cancelled => "CANCELLED",
        }
    }
}

/// One submitted feed.
#[derive(Debug, Clone)]
pub(crate) struct Feed {
    pub id: u64,
    pub feed_type: String,
    pub marketplace_ids: Vec<String>,
    pub created: DateTime<Utc>,
    pub status: FeedStatus,
    /// Processing may start at this time (unless feeds are held).
    pub not_before: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub input_doc: String,
    pub result_doc: Option<String>,
    pub messages: usize,
    /// Ends FATAL whatever the document says (`fail_next_feeds`).
    pub force_fatal: bool,
}

impl Feed {
    /// The spec's `Feed`.
    pub(crate) fn render(&self) -> Value {
        let mut v = json!({
            "feedId": self.id.to_string(),
            "feedType": self.feed_type,
            "marketplaceIds": self.marketplace_ids,
            "createdTime": timestamp(self.created),
            "processingStatus": self.status.as_str(),
        });
        if let Some(t) = self.started {
            v["processingStartTime"] = json!(timestamp(t));
        }
        if let Some(t) = self.ended {
            v["processingEndTime"] = json!(timestamp(t));
        }
        if let Some(d) = &self.result_doc {
            v["resultFeedDocumentId"] = json!(d);
        }
        v
    }

    pub(crate) fn snapshot(&self) -> FeedSnapshot {
        FeedSnapshot {
            feed_id: self.id.to_string(),
            status: self.status.as_str().to_owned(),
            messages: self.messages,
            document_id: self.input_doc.clone(),
            result_document_id: self.result_doc.clone(),
        }
    }

    fn key(&self) -> (String, String) {
        (timestamp(self.created), format!("{:020}", self.id))
    }
}

// ---- document validation -------------------------------------------------------------------------

/// A feed document that passed the feed-level checks.
#[derive(Debug)]
pub(crate) struct FeedDoc {
    seller_id: String,
    report: Option<Value>,
    included: Option<Included>,
    /// Messages sorted by messageId.
    messages: Vec<(u64, Map<String, Value>)>,
}

/// Feed-level checks (header, message count, messageIds); the error makes the feed FATAL.
pub(crate) fn parse_feed(content: Option<&[u8]>, seller_id: &str) -> Result<FeedDoc, String> {
    let bytes = content.unwrap_or_default();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("The feed document is empty or was never uploaded.".into());
    }
    let root: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("The feed document is not valid JSON: {e}."))?;
    let Some(root) = root.as_object() else {
        return Err("The feed document must be a JSON object with 'header' and 'messages'.".into());
    };
    let header = root
        .get("header")
        .and_then(Value::as_object)
        .ok_or("'header' is required and must be an object.")?;
    let feed_seller = header
        .get("sellerId")
        .and_then(Value::as_str)
        .ok_or("'header.sellerId' is required and must be a string.")?;
    if feed_seller != seller_id {
        return Err(format!(
            "The sellerId {feed_seller:?} in the feed header does not match the selling partner {seller_id:?} that submitted the feed."
        ));
    }
    if header.get("version").and_then(Value::as_str) != Some("2.0") {
        return Err("'header.version' is required and must be \"2.0\".".into());
    }
    if header.get("issueLocale").is_some_and(|l| !l.is_string()) {
        return Err("'header.issueLocale' must be a string.".into());
    }
    let (report, included) = match header.get("report") {
        None => (None, None),
        Some(r) => {
            let names: Option<Vec<String>> = r
                .get("includedData")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .and_then(|a| {
                    a.iter()
                        .map(|x| {
                            x.as_str()
                                .filter(|s| INCLUDED_DATA.contains(s))
                                .map(str::to_owned)
                        })
                        .collect()
                });
            let Some(names) = names else {
                return Err(format!(
                    "'header.report.includedData' must be a non-empty array of {}.",
                    INCLUDED_DATA.join(", ")
                ));
            };
            if r.get("apiVersion").and_then(Value::as_str) != Some("2021-08-01") {
                return Err("'header.report.apiVersion' must be \"2021-08-01\".".into());
            }
            (Some(r.clone()), Some(Included::from_names(Some(&names))))
        }
    };
    let messages = root
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("'messages' is required and must be an array.")?;
    if messages.is_empty() || messages.len() > MAX_FEED_MESSAGES {
        return Err(format!(
            "The feed contains {} messages; 1 to {MAX_FEED_MESSAGES} are allowed.",
            messages.len()
        ));
    }
    let mut seen = HashSet::with_capacity(messages.len());
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let id = m
            .get("messageId")
            .and_then(Value::as_u64)
            .filter(|id| (1..=MAX_MESSAGE_ID).contains(id));
        let (Some(obj), Some(id)) = (m.as_object(), id) else {
            return Err(format!(
                "messages[{i}] has no valid 'messageId' (an integer from 1 to {MAX_MESSAGE_ID})."
            ));
        };
        if !seen.insert(id) {
            return Err(format!(
                "messageId {id} appears more than once; messageIds must be unique within a feed."
            ));
        }
        out.push((id, obj.clone()));
    }
    out.sort_by_key(|(id, _)| *id);
    Ok(FeedDoc {
        seller_id: feed_seller.to_owned(),
        report,
        included,
        messages: out,
    })
}

/// One message as a submission (listings-feed-message-schema-v2's `oneOf` per operationType);
/// the error names the SKU when known.
pub(crate) fn parse_message(
    msg: &Map<String, Value>,
) -> Result<(String, Submission), (Option<String>, String)> {
    let Some(sku) = msg
        .get("sku")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
    else {
        return Err((
            None,
            "'sku' is required and must be a non-empty string.".into(),
        ));
    };
    let fail = |m: String| Err((Some(sku.clone()), m));
    let op = msg
        .get("operationType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let not_applicable: &[&str] = match op {
        "DELETE" => &["requirements", "attributes", "productType", "patches"],
        "UPDATE" => &["patches"],
        "PARTIAL_UPDATE" => &["requirements", "patches"],
        "PATCH" => &["requirements", "attributes"],
        _ => {
            return fail(
                "'operationType' is required and must be one of UPDATE, PARTIAL_UPDATE, PATCH, DELETE."
                    .into(),
            );
        }
    };
    if let Some(f) = not_applicable.iter().find(|f| msg.contains_key(**f)) {
        return fail(format!("'{f}' is not applicable to operationType {op}."));
    }
    if op == "DELETE" {
        return Ok((sku, Submission::Delete));
    }
    let Some(product_type) = msg
        .get("productType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
    else {
        return fail(format!("'productType' is required for operationType {op}."));
    };
    let attributes = || match msg.get("attributes").and_then(Value::as_object) {
        Some(a) if !a.is_empty() => Ok(a.clone()),
        _ => Err(format!(
            "'attributes' is required for operationType {op} and must be an object with at least one attribute."
        )),
    };
    let submission = match op {
        "UPDATE" => {
            let requirements = match msg.get("requirements") {
                None => Requirements::Listing,
                Some(r) => match r.as_str().and_then(Requirements::parse) {
                    Some(r) => r,
                    None => {
                        return fail(
                            "'requirements' must be LISTING, LISTING_PRODUCT_ONLY or LISTING_OFFER_ONLY."
                                .into(),
                        );
                    }
                },
            };
            match attributes() {
                Ok(attributes) => Submission::Put {
                    product_type,
                    requirements,
                    attributes,
                },
                Err(m) => return fail(m),
            }
        }
        "PARTIAL_UPDATE" => match attributes() {
            Ok(attributes) => Submission::PartialUpdate {
                product_type,
                attributes,
            },
            Err(m) => return fail(m),
        },
        _ => match msg.get("patches").map(parse_patches) {
            Some(Ok(patches)) => Submission::Patch {
                product_type,
                patches,
            },
            Some(Err(m)) => return fail(m),
            None => return fail("'patches' is required for operationType PATCH.".into()),
        },
    };
    Ok((sku, submission))
}

/// The report of a feed that failed as a whole: one issue without a messageId.
fn fatal_report(seller_id: &str, feed_id: u64, message: &str) -> Value {
    json!({
        "header": {"sellerId": seller_id, "version": "2.0", "feedId": feed_id.to_string()},
        "issues": [Issue::invalid(None, message).to_report_json(None, None)],
        "summary": {"errors": 1, "warnings": 0, "messagesProcessed": 0,
                    "messagesAccepted": 0, "messagesInvalid": 0},
    })
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).ok()?;
    enc.finish().ok()
}

impl AmazonState {
    /// Moves feeds along the sandbox clock; finished feeds are applied and get their report.
    pub(crate) fn pump_feeds(&mut self, ctx: &Ctx<'_>) {
        let total = chrono::Duration::from_std(self.cfg.feed_processing)
            .unwrap_or_else(|_| chrono::Duration::hours(1));
        let rest = total - total / 2;
        let pending: Vec<u64> = self
            .feeds
            .values()
            .filter(|f| matches!(f.status, FeedStatus::InQueue | FeedStatus::InProgress))
            .map(|f| f.id)
            .collect();
        for id in pending {
            let Some(f) = self.feeds.get_mut(&id) else {
                continue;
            };
            if f.status == FeedStatus::InQueue {
                if self.hold_feeds || ctx.now < f.not_before {
                    continue;
                }
                f.status = FeedStatus::InProgress;
                f.started = Some(f.not_before);
            }
            let end = f
                .started
                .unwrap_or(ctx.now)
                .checked_add_signed(rest)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            if ctx.now >= end {
                self.finish_feed(ctx, id, end);
            }
        }
    }

    /// Releases (or holds) queued feeds; released feeds start no earlier than now.
    pub(crate) fn set_hold(&mut self, hold: bool, now: DateTime<Utc>) {
        if self.hold_feeds && !hold {
            for f in self.feeds.values_mut() {
                if f.status == FeedStatus::InQueue && f.not_before < now {
                    f.not_before = now;
                }
            }
        }
        self.hold_feeds = hold;
    }

    fn finish_feed(&mut self, ctx: &Ctx<'_>, id: u64, ended: DateTime<Utc>) {
        let Some(feed) = self.feeds.get(&id) else {
            return;
        };
        let (feed_type, input_doc, force_fatal) = (
            feed.feed_type.clone(),
            feed.input_doc.clone(),
            feed.force_fatal,
        );
        let seller = self.cfg.acct.seller_id.clone();
        let (status, report) = if force_fatal {
            (
                FeedStatus::Fatal,
                fatal_report(
                    &seller,
                    id,
                    "An internal error occurred while processing the feed. Resubmit the feed.",
                ),
            )
        } else if feed_type != JSON_LISTINGS_FEED {
            (
                FeedStatus::Fatal,
                fatal_report(
                    &seller,
                    id,
                    &format!(
                        "The feed type {feed_type} is no longer supported for listings; submit a JSON_LISTINGS_FEED instead."
                    ),
                ),
            )
        } else {
            let content = self
                .documents
                .get(&input_doc)
                .and_then(|d| d.content.clone());
            match parse_feed(content.as_deref(), &seller) {
                Err(message) => (FeedStatus::Fatal, fatal_report(&seller, id, &message)),
                Ok(doc) => (FeedStatus::Done, self.apply_feed(ctx, id, doc)),
            }
        };
        let raw = serde_json::to_vec(&report).unwrap_or_default();
        let (content, compressed) = match self.cfg.gzip_reports.then(|| gzip(&raw)).flatten() {
            Some(z) => (z, true),
            None => (raw, false),
        };
        let doc_id = self.new_document_id(ctx.rng);
        self.documents.insert(
            doc_id.clone(),
            Document {
                content_type: REPORT_CONTENT_TYPE.into(),
                content: Some(Bytes::from(content)),
                compressed,
            },
        );
        if let Some(f) = self.feeds.get_mut(&id) {
            f.status = status;
            f.ended = Some(ended);
            f.result_doc = Some(doc_id);
        }
        tracing::debug!(
            feed_id = id,
            status = status.as_str(),
            "Amazon feed processed."
        );
    }

    /// Applies a valid document's messages in messageId order; returns the processing report.
    fn apply_feed(&mut self, ctx: &Ctx<'_>, feed_id: u64, doc: FeedDoc) -> Value {
        let acct = self.cfg.acct.clone();
        let mut issues: Vec<Value> = Vec::new();
        let (mut errors, mut warnings, mut accepted, mut invalid) =
            (0usize, 0usize, 0usize, 0usize);
        let mut item_skus: Vec<String> = Vec::new();
        let mut item_seen: HashSet<String> = HashSet::new();
        let total = doc.messages.len();
        for (message_id, msg) in doc.messages {
            let (sku, submission) = match parse_message(&msg) {
                Ok(parsed) => parsed,
                Err((sku, message)) => {
                    invalid += 1;
                    errors += 1;
                    issues.push(
                        Issue::invalid(None, message)
                            .to_report_json(Some(message_id), sku.as_deref()),
                    );
                    continue;
                }
            };
            let is_delete = matches!(submission, Submission::Delete);
            let rejection = ctx
                .faults
                .sku_rejection(MARKETPLACE, "createFeed", FEEDS_PATH, &sku)
                .map(|r| Issue::rejected(r.error_id, &r.message));
            let via = Via {
                operation: JSON_LISTINGS_FEED,
                batch_ref: Some(format!("feed {feed_id} message {message_id}")),
            };
            let outcome = self.submit(ctx, &sku, submission, false, rejection, &via);
            for issue in &outcome.issues {
                errors += usize::from(issue.is_error());
                warnings += usize::from(issue.is_warning());
                issues.push(issue.to_report_json(Some(message_id), Some(&sku)));
            }
            if outcome.accepted {
                accepted += 1;
                if !is_delete && item_seen.insert(sku.clone()) {
                    item_skus.push(sku);
                }
            } else {
                invalid += 1;
            }
        }
        let mut header =
            json!({"sellerId": doc.seller_id, "version": "2.0", "feedId": feed_id.to_string()});
        let mut summary = json!({
            "errors": errors, "warnings": warnings, "messagesProcessed": total,
            "messagesAccepted": accepted, "messagesInvalid": invalid,
        });
        let mut report = Map::new();
        if let (Some(r), Some(inc)) = (doc.report, doc.included) {
            header["report"] = r;
            let listings: Vec<_> = item_skus
                .iter()
                .filter_map(|s| self.listings.get(s))
                .collect();
            let (mut item_errors, mut item_warnings) = (0usize, 0usize);
            let items: Vec<Value> = listings
                .iter()
                .map(|l| {
                    if inc.issues {
                        let found = l.issues();
                        item_errors += found.iter().filter(|i| i.is_error()).count();
                        item_warnings += found.iter().filter(|i| i.is_warning()).count();
                    }
                    l.render(inc, &acct)
                })
                .collect();
            summary["itemSummary"] =
                json!({"items": items.len(), "errors": item_errors, "warnings": item_warnings});
            report.insert("items".into(), json!(items));
        }
        report.insert("header".into(), header);
        report.insert("issues".into(), json!(issues));
        report.insert("summary".into(), summary);
        Value::Object(report)
    }

    /// A presigned URL for a document on this server.
    pub(crate) fn presign(
        &mut self,
        ctx: &Ctx<'_>,
        doc_id: &str,
        upload: bool,
        gzip_header: bool,
    ) -> String {
        let horizon = ctx.now - chrono::Duration::hours(1);
        self.presigned.retain(|_, p| p.expires > horizon);
        let signature = ctx.rng.hex(32);
        self.presigned.insert(
            signature.clone(),
            Presigned {
                doc_id: doc_id.to_owned(),
                upload,
                expires: ctx.now + chrono::Duration::seconds(PRESIGNED_URL_TTL_SECS),
                gzip_header,
            },
        );
        format!(
            "{base}/amazon/_s3/{doc_id}?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=ASIASANDBOX%2F{day}%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date={date}&X-Amz-Expires={PRESIGNED_URL_TTL_SECS}\
             &X-Amz-SignedHeaders={signed}&X-Amz-Signature={signature}",
            base = self.cfg.base_url,
            day = ctx.now.format("%Y%m%d"),
            date = ctx.now.format("%Y%m%dT%H%M%SZ"),
            signed = if upload {
                "content-type%3Bhost"
            } else {
                "host"
            },
        )
    }
}

// ---- handlers ---------------------------------------------------------------------------------

type St = State<Arc<Amazon>>;

/// Full-precision time for filters kept in a cursor (the default `createdUntil` is "now", which
/// must not drop a feed created earlier in the same millisecond).
fn precise(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn path_id(uri: &Uri, prefix: &str, what: &str) -> Result<String, AmazonError> {
    let raw = segments_after(uri.path(), prefix)
        .first()
        .copied()
        .unwrap_or("");
    decode_segment(raw, what)
}

fn feed_id(uri: &Uri) -> Result<u64, AmazonError> {
    let raw = path_id(uri, "/feeds/2021-06-30/feeds/", "feedId")?;
    raw.parse::<u64>()
        .map_err(|_| AmazonError::invalid_input(format!("Invalid feedId {raw:?}.")))
}

/// `POST /feeds/2021-06-30/documents` (createFeedDocument) → 201.
pub(crate) async fn create_feed_document(
    State(amz): St,
    req: Request,
) -> Result<Response, AmazonError> {
    let body = json_body(req, StatusCode::PAYLOAD_TOO_LARGE).await?;
    let Some(content_type) = body
        .get("contentType")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Err(AmazonError::invalid_input(
            "'contentType' is required and must be a non-empty string.",
        ));
    };
    amz.with(|st, ctx| {
        let id = st.new_document_id(ctx.rng);
        st.documents.insert(
            id.clone(),
            Document {
                content_type: content_type.to_owned(),
                content: None,
                compressed: false,
            },
        );
        let url = st.presign(ctx, &id, true, false);
        Ok((
            StatusCode::CREATED,
            Json(json!({"feedDocumentId": id, "url": url})),
        )
            .into_response())
    })
}

/// `GET /feeds/2021-06-30/documents/{feedDocumentId}` (getFeedDocument).
pub(crate) async fn get_feed_document(
    State(amz): St,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmazonError> {
    let q = Query::parse(raw.as_deref())?;
    let gzip_header = match q.get("enableContentEncodingUrlHeader") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(AmazonError::invalid_input(format!(
                "Invalid value {other:?} for 'enableContentEncodingUrlHeader'; use true or false."
            )));
        }
    };
    let id = path_id(&uri, "/feeds/2021-06-30/documents/", "feedDocumentId")?;
    amz.with(|st, ctx| {
        st.pump_feeds(ctx);
        let compressed = st
            .documents
            .get(&id)
            .ok_or_else(|| AmazonError::not_found(format!("Feed document {id:?} was not found.")))?
            .compressed;
        let url = st.presign(ctx, &id, false, gzip_header && compressed);
        let mut body = json!({"feedDocumentId": id, "url": url});
        if compressed {
            body["compressionAlgorithm"] = json!("GZIP");
        }
        Ok(Json(body).into_response())
    })
}

/// `POST /feeds/2021-06-30/feeds` (createFeed) → 202.
pub(crate) async fn create_feed(State(amz): St, req: Request) -> Result<Response, AmazonError> {
    // createFeed's spec declares no 413: an oversize body is a 400.
    let body = json_body(req, StatusCode::BAD_REQUEST).await?;
    let Some(body) = body.as_object() else {
        return Err(AmazonError::invalid_input(
            "The request body must be a JSON object.",
        ));
    };
    let feed_type = body
        .get("feedType")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AmazonError::invalid_input("'feedType' is required."))?
        .to_owned();
    let marketplace_ids: Vec<String> = body
        .get("marketplaceIds")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|m| m.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
        .filter(|m| (1..=MAX_FEED_MARKETPLACES).contains(&m.len()))
        .ok_or_else(|| {
            AmazonError::invalid_input(format!(
                "'marketplaceIds' is required: an array of 1 to {MAX_FEED_MARKETPLACES} marketplace ids."
            ))
        })?;
    let doc_id = body
        .get("inputFeedDocumentId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AmazonError::invalid_input("'inputFeedDocumentId' is required."))?
        .to_owned();
    if let Some(options) = body.get("feedOptions")
        && !options
            .as_object()
            .is_some_and(|o| o.values().all(Value::is_string))
    {
        return Err(AmazonError::invalid_input(
            "'feedOptions' must be an object of string values.",
        ));
    }
    if feed_type != JSON_LISTINGS_FEED && !LEGACY_LISTINGS_FEED_TYPES.contains(&feed_type.as_str())
    {
        return Err(AmazonError::invalid_input(format!(
            "Invalid feedType {feed_type:?}; this sandbox processes {JSON_LISTINGS_FEED}."
        )));
    }
    amz.with(|st, ctx| {
        if let Some(bad) = marketplace_ids
            .iter()
            .find(|m| **m != st.cfg.acct.marketplace_id)
        {
            return Err(AmazonError::invalid_input(format!(
                "Invalid marketplaceId {bad:?}: the seller does not sell there."
            )));
        }
        let messages = {
            let doc = st.documents.get(&doc_id).ok_or_else(|| {
                AmazonError::invalid_input(format!("Invalid inputFeedDocumentId {doc_id:?}."))
            })?;
            doc.content
                .as_deref()
                .and_then(|c| serde_json::from_slice::<Value>(c).ok())
                .and_then(|v| v.get("messages").and_then(Value::as_array).map(Vec::len))
                .unwrap_or(0)
        };
        if feed_type == JSON_LISTINGS_FEED
            && !amz
                .shared
                .limiter
                .try_acquire(MARKETPLACE, JSON_LISTINGS_FEED)
        {
            amz.shared.recorder.too_many_requests(MARKETPLACE, true);
            return Err(AmazonError::quota_exceeded());
        }
        let force_fatal = st.fail_next_feeds > 0;
        st.fail_next_feeds = st.fail_next_feeds.saturating_sub(1);
        let total = chrono::Duration::from_std(st.cfg.feed_processing)
            .unwrap_or_else(|_| chrono::Duration::hours(1));
        let id = st.next_feed_id;
        st.next_feed_id += 1;
        st.feeds.insert(
            id,
            Feed {
                id,
                feed_type,
                marketplace_ids,
                created: ctx.now,
                status: FeedStatus::InQueue,
                not_before: ctx
                    .now
                    .checked_add_signed(total / 2)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
                started: None,
                ended: None,
                input_doc: doc_id,
                result_doc: None,
                messages,
                force_fatal,
            },
        );
        st.pump_feeds(ctx);
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({"feedId": id.to_string()})),
        )
            .into_response())
    })
}

/// `GET /feeds/2021-06-30/feeds/{feedId}` (getFeed).
pub(crate) async fn get_feed(State(amz): St, uri: Uri) -> Result<Response, AmazonError> {
    let id = feed_id(&uri)?;
    amz.with(|st, ctx| {
        st.pump_feeds(ctx);
        st.feeds
            .get(&id)
            .map(|f| Json(f.render()).into_response())
            .ok_or_else(|| AmazonError::not_found(format!("Feed {id} was not found.")))
    })
}

/// `DELETE /feeds/2021-06-30/feeds/{feedId}` (cancelFeed): only IN_QUEUE feeds; 200, no body.
pub(crate) async fn cancel_feed(State(amz): St, uri: Uri) -> Result<Response, AmazonError> {
    let id = feed_id(&uri)?;
    amz.with(|st, ctx| {
        st.pump_feeds(ctx);
        let feed = st
            .feeds
            .get_mut(&id)
            .ok_or_else(|| AmazonError::not_found(format!("Feed {id} was not found.")))?;
        if feed.status != FeedStatus::InQueue {
            return Err(AmazonError::invalid_input(format!(
                "Feed {id} cannot be cancelled: its processingStatus is {}; only IN_QUEUE feeds can be cancelled.",
                feed.status.as_str()
            )));
        }
        feed.status = FeedStatus::Cancelled;
        feed.ended = Some(ctx.now);
        Ok(StatusCode::OK.into_response())
    })
}

/// `GET /feeds/2021-06-30/feeds` (getFeeds): newest first; `nextToken` must come alone.
pub(crate) async fn get_feeds(
    State(amz): St,
    RawQuery(raw): RawQuery,
) -> Result<Response, AmazonError> {
    let q = Query::parse(raw.as_deref())?;
    amz.with(|st, ctx| {
        st.pump_feeds(ctx);
        let (filter, after, seen) = match q.get("nextToken") {
            Some(token) => {
                if let Some(other) = q.names().find(|n| *n != "nextToken") {
                    return Err(AmazonError::invalid_input(format!(
                        "'nextToken' must be the only parameter; got '{other}' as well."
                    )));
                }
                let c = st.cursor(token, ctx.now)?;
                (c.filter, Some(c.after), c.seen)
            }
            None => {
                let feed_types = q
                    .list("feedTypes")
                    .filter(|t| (1..=10).contains(&t.len()))
                    .ok_or_else(|| {
                        AmazonError::invalid_input(
                            "Either 'feedTypes' (1 to 10 feed types) or 'nextToken' is required.",
                        )
                    })?;
                let marketplaces = q.list("marketplaceIds");
                if marketplaces
                    .as_ref()
                    .is_some_and(|m| !(1..=10).contains(&m.len()))
                {
                    return Err(AmazonError::invalid_input(
                        "'marketplaceIds' must list 1 to 10 marketplace ids.",
                    ));
                }
                let statuses = q.enum_list("processingStatuses", &FEED_STATUSES)?;
                let page = q.int_in("pageSize", 1..=MAX_FEEDS_PAGE, DEFAULT_FEEDS_PAGE)?;
                let since = q
                    .get("createdSince")
                    .map(|s| parse_time(s, "createdSince"))
                    .transpose()?
                    .unwrap_or(ctx.now - chrono::Duration::days(FEEDS_LOOKBACK_DAYS));
                let until = q
                    .get("createdUntil")
                    .map(|s| parse_time(s, "createdUntil"))
                    .transpose()?
                    .unwrap_or(ctx.now);
                if until < since {
                    return Err(AmazonError::invalid_input(
                        "'createdUntil' must be after 'createdSince'.",
                    ));
                }
                (
                    json!({"feedTypes": feed_types, "marketplaceIds": marketplaces,
                           "processingStatuses": statuses, "pageSize": page,
                           "createdSince": precise(since), "createdUntil": precise(until)}),
                    None,
                    0,
                )
            }
        };
        let strings = |k: &str| -> Option<Vec<String>> {
            filter[k].as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
        };
        let (types, marketplaces, statuses) = (
            strings("feedTypes").unwrap_or_default(),
            strings("marketplaceIds"),
            strings("processingStatuses"),
        );
        let page = filter["pageSize"]
            .as_u64()
            .and_then(|p| usize::try_from(p).ok())
            .unwrap_or(DEFAULT_FEEDS_PAGE);
        let time = |k: &str| {
            filter[k]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let (since, until) = (time("createdSince"), time("createdUntil"));
        let mut matching: Vec<&Feed> = st
            .feeds
            .values()
            .filter(|f| types.contains(&f.feed_type))
            .filter(|f| {
                marketplaces
                    .as_ref()
                    .is_none_or(|m| f.marketplace_ids.iter().any(|x| m.contains(x)))
            })
            .filter(|f| {
                statuses
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|x| x == f.status.as_str()))
            })
            .filter(|f| {
                since.is_none_or(|s| f.created >= s) && until.is_none_or(|u| f.created <= u)
            })
            .filter(|f| after.as_ref().is_none_or(|a| f.key() < *a))
            .collect();
        matching.sort_by_key(|f| std::cmp::Reverse(f.key()));
        let more = matching.len() > page;
        matching.truncate(page);
        let feeds: Vec<Value> = matching.iter().map(|f| f.render()).collect();
        let last = matching.last().map(|f| f.key());
        let mut body = json!({ "feeds": feeds });
        if more && let Some(last) = last {
            body["nextToken"] = json!(st.new_cursor(ctx, filter, last, seen + feeds.len()));
        }
        Ok(Json(body).into_response())
    })
}

// ---- the presigned URLs (S3 stand-in; no SP-API auth, S3's XML errors) ---------------------------

/// An S3-style error (XML body), as the presigned URLs answer.
#[derive(Debug, Clone, Copy)]
struct S3Error {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl S3Error {
    const NO_SUCH_KEY: S3Error = S3Error {
        status: StatusCode::NOT_FOUND,
        code: "NoSuchKey",
        message: "The specified key does not exist.",
    };
    const SIGNATURE: S3Error = S3Error {
        status: StatusCode::FORBIDDEN,
        code: "SignatureDoesNotMatch",
        message: "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    };
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code, self.message
        );
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            )],
            body,
        )
            .into_response()
    }
}

/// Checks a presigned URL: `Ok` with the document id when it grants this method on this
/// document now.
fn check_presigned(
    amz: &Amazon,
    uri: &Uri,
    raw_query: Option<&str>,
    upload: bool,
) -> Result<(String, Presigned), S3Error> {
    let denied = S3Error {
        status: StatusCode::FORBIDDEN,
        code: "AccessDenied",
        message: "Query-string authentication requires the Signature, Expires and Credential parameters",
    };
    let doc_id = segments_after(uri.path(), "/_s3/")
        .first()
        .and_then(|s| decode_segment(s, "key").ok())
        .unwrap_or_default();
    let q = Query::parse(raw_query).map_err(|_| denied)?;
    let signature = q.get("X-Amz-Signature").ok_or(denied)?;
    let now = amz.shared.clock.now();
    let st = amz.lock();
    let grant = st
        .presigned
        .get(signature)
        .filter(|p| p.doc_id == doc_id && p.upload == upload)
        .cloned()
        .ok_or(S3Error::SIGNATURE)?;
    if grant.expires < now {
        return Err(S3Error {
            status: StatusCode::FORBIDDEN,
            code: "AccessDenied",
            message: "Request has expired",
        });
    }
    Ok((doc_id, grant))
}

/// `PUT {base}/amazon/_s3/{docId}?X-Amz-…`: the feed upload. `Content-Type` must equal the
/// createFeedDocument `contentType` (it is a signed header); at most [`MAX_UPLOAD_BYTES`].
pub(crate) async fn upload(State(amz): St, req: Request) -> Response {
    let uri = req.uri().clone();
    let (doc_id, _) = match check_presigned(&amz, &uri, uri.query(), true) {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
    };
    let sent_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("")
        .to_owned();
    let expected = amz
        .lock()
        .documents
        .get(&doc_id)
        .map(|d| d.content_type.clone());
    let Some(expected) = expected else {
        return S3Error::NO_SUCH_KEY.into_response();
    };
    if sent_type != expected {
        // Content-Type is a signed header: it must equal createFeedDocument's contentType.
        return S3Error::SIGNATURE.into_response();
    }
    let bytes = match axum::body::to_bytes(req.into_body(), MAX_UPLOAD_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return S3Error {
                status: StatusCode::BAD_REQUEST,
                code: "EntityTooLarge",
                message: "Your proposed upload exceeds the maximum allowed size",
            }
            .into_response();
        }
    };
    let etag = format!("\"{}\"", amz.shared.rng.hex(16));
    if let Some(doc) = amz.lock().documents.get_mut(&doc_id) {
        doc.content = Some(bytes);
    }
    let mut resp = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// `GET {base}/amazon/_s3/{docId}?X-Amz-…`: a document's bytes as stored (GZIP when compressed).
pub(crate) async fn download(State(amz): St, uri: Uri, RawQuery(raw): RawQuery) -> Response {
    let (doc_id, grant) = match check_presigned(&amz, &uri, raw.as_deref(), false) {
        Ok(ok) => ok,
        Err(e) => return e.into_response(),
    };
    let doc = amz.lock().documents.get(&doc_id).cloned();
    let Some((content, content_type)) = doc.and_then(|d| d.content.map(|c| (c, d.content_type)))
    else {
        return S3Error::NO_SUCH_KEY.into_response();
    };
    let mut resp = content.into_response();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    if grant.gzip_header {
        resp.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}
