//! The bulk path: `JSON_LISTINGS_FEED` through the Feeds API 2021-06-30.
//!
//! 1. [`Connector::bulk_prepare`](crate::Connector::bulk_prepare) builds the v2.0 feed document
//!    (header `sellerId`, `version` `2.0`, `issueLocale`, a report asking for `issues`; message
//!    `i + 1` is entry `i`: a stock update is a `PATCH` with push_stock's patches, a listing an
//!    `UPDATE` with push_listings' attributes, a delist a `DELETE`), calls `createFeedDocument`
//!    (`application/json; charset=UTF-8`) and PUTs the document to the presigned URL it returns
//!    (absolute, maybe on another host; no SP-API credentials, the same `Content-Type`).
//! 2. `bulk_submit` calls `createFeed` (`JSON_LISTINGS_FEED`, the first marketplace, the document)
//!    after taking a token from both the `createFeed` bucket and the feed type's own bucket (five
//!    per five minutes).
//! 3. `bulk_poll` calls `getFeed`. `IN_QUEUE`/`IN_PROGRESS` → `Pending` with a `poll_after` from the
//!    learned duration, the job's age and getFeed's budget. `DONE` → `getFeedDocument`, download
//!    (at most 64 MiB, gunzipped when `compressionAlgorithm` is `GZIP`, at most 64 MiB again), and
//!    the processing report read into per-message outcomes ([`mapping::report_outcomes`]).
//!    `FATAL`/`CANCELLED` → every entry `Retry` with the reason (the report's feed-level issue
//!    when there is one), and the bulk path **cools down** for [`FEED_COOLDOWN`]: `bulk_choice`
//!    answers 0, so the items go one by one and come back with their own errors.
//! 4. `bulk_in_flight_since` asks `getFeeds` for `JSON_LISTINGS_FEED` feeds `IN_QUEUE` or
//!    `IN_PROGRESS` created since then (minus [`CLOCK_SKEW_MARGIN`]: the time is our clock, the
//!    filter Amazon's).
//!
//! The connector learns how long feeds take: an exponentially weighted average
//! ([`LEARNING_WEIGHT`]) of submit→DONE durations (Amazon's `processingEndTime − createdTime`
//! when readable, else our own clock), starting at `feed_processing_estimate`.
//!
//! A document entry the connector cannot encode (a SKU over 40 characters, a price a JSON number
//! cannot carry) fails `bulk_prepare` as a whole and cools the bulk path down too: the daemon then
//! sends the items one by one, and the bad one is rejected on its own.

use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::time::Instant;

use super::client::{Api, MAX_DOCUMENT_BYTES, Request};
use super::config::{
    OP_CREATE_FEED, OP_CREATE_FEED_DOCUMENT, OP_GET_FEED, OP_GET_FEED_DOCUMENT, OP_GET_FEEDS,
    OP_JSON_LISTINGS_FEED, OP_PATCH_LISTINGS_ITEM,
};
use super::mapping::{
    self, CreatedDocument, CreatedFeed, FeedDocumentView, FeedView, FeedsPage, ReportOutcomes,
};
use super::{AmazonConnector, MAX_FEED_MESSAGES, MAX_SKU_LEN, now_ms};
use crate::common::http::{encode_component, truncate};
use crate::connector::{BulkDraft, BulkItem, BulkJob, BulkStatus};
use crate::error::ConnectorError;
use crate::model::ItemOutcome;

/// The feed type.
pub(crate) const FEED_TYPE: &str = "JSON_LISTINGS_FEED";
/// `contentType` of the feed document (and `Content-Type` of its upload).
pub(crate) const FEED_CONTENT_TYPE: &str = "application/json; charset=UTF-8";
/// How long the bulk path stays off after a FATAL or CANCELLED feed, or an entry that cannot be
/// encoded.
pub(crate) const FEED_COOLDOWN: Duration = Duration::from_secs(15 * 60);
/// Weight of the newest duration in the learned average.
pub(crate) const LEARNING_WEIGHT: f64 = 0.3;
/// Learned durations stay within these bounds (a broken clock must not park the path).
const MIN_LEARNED: Duration = Duration::from_secs(1);
const MAX_LEARNED: Duration = Duration::from_secs(6 * 3600);
/// Poll cadence once a feed is due: a tenth of the learned duration, within these bounds.
const MIN_POLL_INTERVAL: Duration = Duration::from_secs(2);
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Longest single `poll_after` while a feed is far from due.
const MAX_POLL_WAIT: Duration = Duration::from_secs(60);
/// Subtracted from `bulk_in_flight_since`'s time before asking Amazon (our clock vs Amazon's).
pub(crate) const CLOCK_SKEW_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Amazon keeps feeds 90 days; `createdSince` stays within them.
const FEED_RETENTION: Duration = Duration::from_secs(89 * 24 * 3600);
/// getFeeds pages read at most by one in-flight check.
const MAX_FEEDS_PAGES: usize = 10;

/// What the bulk path knows across calls: the learned duration, the cool-down, counters.
#[derive(Debug)]
pub(crate) struct FeedState {
    learned: Mutex<Duration>,
    cooled_until: Mutex<Option<Instant>>,
    submitted: AtomicU64,
    done: AtomicU64,
    fatal: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Poll cadence for a feed expected to take `learned`.
fn poll_interval(learned: Duration) -> Duration {
    (learned / 10).clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL)
}

impl FeedState {
    pub(crate) fn new(estimate: Duration) -> Self {
        FeedState {
            learned: Mutex::new(estimate.clamp(MIN_LEARNED, MAX_LEARNED)),
            cooled_until: Mutex::new(None),
            submitted: AtomicU64::new(0),
            done: AtomicU64::new(0),
            fatal: AtomicU64::new(0),
        }
    }

    /// The learned submit→DONE duration.
    pub(crate) fn learned(&self) -> Duration {
        *lock(&self.learned)
    }

    /// Folds one observed duration into the average.
    fn learn(&self, sample: Duration) {
        let sample = sample.clamp(MIN_LEARNED, MAX_LEARNED);
        let mut learned = lock(&self.learned);
        let next = learned.as_secs_f64() * (1.0 - LEARNING_WEIGHT)
            + sample.as_secs_f64() * LEARNING_WEIGHT;
        *learned = Duration::try_from_secs_f64(next)
            .unwrap_or(*learned)
            .clamp(MIN_LEARNED, MAX_LEARNED);
    }

    /// True while the bulk path is off.
    pub(crate) fn cooled_down(&self) -> bool {
        lock(&self.cooled_until).is_some_and(|until| Instant::now() < until)
    }

    fn cool_down(&self, why: &str) {
        *lock(&self.cooled_until) = Some(Instant::now() + FEED_COOLDOWN);
        tracing::warn!(
            minutes = FEED_COOLDOWN.as_secs() / 60,
            reason = %why,
            "Amazon bulk path off for a while; items go one by one."
        );
    }

    /// `feeds_submitted`, `feeds_done`, `feeds_fatal`, `learned_feed_secs` and the
    /// `bulk_cooled_down` gauge (1 while off).
    pub(crate) fn stats_into(&self, extra: &mut std::collections::BTreeMap<&'static str, u64>) {
        extra.insert("feeds_submitted", self.submitted.load(Ordering::Relaxed));
        extra.insert("feeds_done", self.done.load(Ordering::Relaxed));
        extra.insert("feeds_fatal", self.fatal.load(Ordering::Relaxed));
        extra.insert("learned_feed_secs", self.learned().as_secs());
        extra.insert("bulk_cooled_down", u64::from(self.cooled_down()));
    }
}

/// Gunzips `body` (at most [`MAX_DOCUMENT_BYTES`] out) when `algorithm` says GZIP or the bytes
/// start with the gzip magic; refuses an algorithm it does not know.
pub(crate) fn decompress(body: Vec<u8>, algorithm: Option<&str>) -> Result<Vec<u8>, String> {
    let gzip = match algorithm.map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) if a.eq_ignore_ascii_case("GZIP") => true,
        Some(other) => {
            return Err(format!(
                "unsupported compressionAlgorithm {:?}",
                truncate(other, 20)
            ));
        }
        None => body.starts_with(&[0x1f, 0x8b]),
    };
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot gunzip the processing report: {e}"))?;
    if out.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "processing report larger than {MAX_DOCUMENT_BYTES} bytes uncompressed"
        ));
    }
    Ok(out)
}

fn malformed(message: impl Into<String>) -> ConnectorError {
    ConnectorError::Malformed {
        status: None,
        message: message.into(),
    }
}

fn ms_between(from_ms: i64, to_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(to_ms.saturating_sub(from_ms)).unwrap_or(0))
}

impl AmazonConnector {
    /// How many of `dirty` waiting items go in one feed now, or 0 for per-item patches: whichever
    /// path should finish sooner under the budgets as they stand.
    ///
    /// - **per item**: `n` patchListingsItem calls. The first go at once while the bucket has
    ///   tokens, the rest at the sustained rate: `max(0, n − tokens now) ÷ rate` (the budget's
    ///   [`estimate_wait`](crate::common::Budget::estimate_wait) for the `n`-th token, a running
    ///   429 pause included).
    /// - **feed**: the wait for a `createFeedDocument` token, then for `createFeed` and the
    ///   `JSON_LISTINGS_FEED` bucket (the longer of the two), plus the learned submit→DONE
    ///   duration, plus half a poll interval (the report is seen, on average, half an interval
    ///   after it is ready).
    ///
    /// `n = min(dirty, 25,000)`; the feed wins when its estimate is strictly shorter. While the
    /// bulk path cools down (after a FATAL feed) the answer is 0.
    ///
    /// Worked example, production plan (patch 5/s burst 5), full buckets, nothing learned yet
    /// (180 s; poll interval 18 s):
    /// - 10,000 dirty: per item (10,000 − 5) ÷ 5 ≈ 1,999 s; feed 0 + 0 + 180 + 9 = 189 s → a
    ///   feed of 10,000.
    /// - 5 dirty: per item 0 s (the burst) < 189 s → patches, answer 0.
    /// - 1,000 dirty: per item 199 s vs 189 s → a feed, just; once feeds are seen taking 5
    ///   minutes, the same 1,000 go as patches.
    /// - The feed-type bucket after five feeds in five minutes: its next token is up to 60 s
    ///   away, which the feed estimate adds.
    pub(super) fn choose_bulk(&self, dirty: usize) -> usize {
        if dirty == 0 || self.feeds.cooled_down() {
            return 0;
        }
        let n = dirty.min(MAX_FEED_MESSAGES);
        let per_item = self
            .client
            .budget
            .estimate_wait(OP_PATCH_LISTINGS_ITEM, u32::try_from(n).unwrap_or(u32::MAX));
        let feed = self.feed_estimate();
        let choice = if feed < per_item { n } else { 0 };
        tracing::debug!(
            dirty,
            per_item_secs = per_item.as_secs(),
            feed_secs = feed.as_secs(),
            choice,
            "Amazon bulk choice."
        );
        choice
    }

    /// Estimated time from now until a feed submitted now is seen DONE.
    pub(crate) fn feed_estimate(&self) -> Duration {
        let b = &self.client.budget;
        let learned = self.feeds.learned();
        b.estimate_wait(OP_CREATE_FEED_DOCUMENT, 1)
            .saturating_add(
                b.estimate_wait(OP_CREATE_FEED, 1)
                    .max(b.estimate_wait(OP_JSON_LISTINGS_FEED, 1)),
            )
            .saturating_add(learned)
            .saturating_add(poll_interval(learned) / 2)
    }

    /// bulk_prepare: builds the document, creates the feed document and uploads it.
    pub(super) async fn prepare_feed(
        &self,
        items: &[BulkItem],
    ) -> Result<BulkDraft, ConnectorError> {
        if items.is_empty() || items.len() > MAX_FEED_MESSAGES {
            return Err(ConnectorError::Permanent {
                status: None,
                code: None,
                message: format!(
                    "a JSON_LISTINGS_FEED holds 1 to {MAX_FEED_MESSAGES} messages, got {}",
                    items.len()
                ),
            });
        }
        let ctx = self.context();
        let mut messages = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let sku = item.sku().as_str();
            let message = if sku.chars().count() > MAX_SKU_LEN {
                Err(format!("Amazon SKUs are at most {MAX_SKU_LEN} characters"))
            } else {
                mapping::feed_message(
                    (i + 1) as u32,
                    item,
                    self.config.product_type_for(sku),
                    &ctx,
                )
            };
            match message {
                Ok(m) => messages.push(m),
                Err(why) => {
                    let message = format!(
                        "feed entry {} (SKU {sku:?}) cannot be sent: {why}; the items go one by one",
                        i + 1
                    );
                    self.feeds.cool_down(&message);
                    return Err(ConnectorError::Permanent {
                        status: None,
                        code: None,
                        message,
                    });
                }
            }
        }
        let document =
            mapping::feed_document(&self.config.seller_id, &self.config.language_tag, messages);
        let req = Request::json(
            OP_CREATE_FEED_DOCUMENT,
            Api::Feeds,
            Method::POST,
            "/documents",
            &json!({"contentType": FEED_CONTENT_TYPE}),
        );
        let resp = self.client.call(&req).await?;
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let created: CreatedDocument = resp.json()?;
        if created.feed_document_id.trim().is_empty() || created.url.trim().is_empty() {
            return Err(malformed(
                "createFeedDocument answered without a feedDocumentId or url",
            ));
        }
        let bytes = document.len();
        self.client
            .upload(&created.url, FEED_CONTENT_TYPE, document)
            .await?;
        tracing::debug!(document = %created.feed_document_id, messages = items.len(), bytes, "Uploaded an Amazon feed document.");
        Ok(BulkDraft {
            document_id: created.feed_document_id,
            prepared_at_ms: now_ms(),
            items: items.len(),
        })
    }

    /// bulk_submit: createFeed for an uploaded document.
    pub(super) async fn submit_feed(&self, draft: &BulkDraft) -> Result<BulkJob, ConnectorError> {
        if draft.document_id.trim().is_empty() {
            return Err(ConnectorError::Permanent {
                status: None,
                code: None,
                message: "the bulk draft has no document id".into(),
            });
        }
        self.client.budget.acquire(OP_JSON_LISTINGS_FEED).await;
        let req = Request::json(
            OP_CREATE_FEED,
            Api::Feeds,
            Method::POST,
            "/feeds",
            &json!({
                "feedType": FEED_TYPE,
                "marketplaceIds": [self.config.primary_marketplace()],
                "inputFeedDocumentId": draft.document_id,
            }),
        );
        let resp = match self.client.call(&req).await {
            Ok(resp) => resp,
            Err(e) => {
                // A 429 may be the feed type's limit rather than createFeed's: hold both.
                if let ConnectorError::RateLimited {
                    retry_after: Some(wait),
                    ..
                } = &e
                {
                    self.client.budget.pause(OP_JSON_LISTINGS_FEED, *wait);
                }
                return Err(e);
            }
        };
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let created: CreatedFeed = resp.json()?;
        if created.feed_id.trim().is_empty() {
            return Err(malformed("createFeed answered without a feedId"));
        }
        self.feeds.submitted.fetch_add(1, Ordering::Relaxed);
        tracing::info!(feed = %created.feed_id, messages = draft.items, "Submitted an Amazon JSON_LISTINGS_FEED.");
        Ok(BulkJob {
            id: created.feed_id,
            document_id: draft.document_id.clone(),
            submitted_at_ms: now_ms(),
            items: draft.items,
        })
    }

    /// When to ask again about a feed of age `age`: the time left until the learned duration
    /// (at most a minute at a time), then every poll interval; never before getFeed has a token.
    fn poll_after(&self, age: Duration) -> Duration {
        let learned = self.feeds.learned();
        let interval = poll_interval(learned);
        let until_due = learned.saturating_sub(age);
        let wait = if until_due > interval {
            until_due.min(MAX_POLL_WAIT)
        } else {
            interval
        };
        wait.max(self.client.budget.estimate_wait(OP_GET_FEED, 1))
    }

    /// bulk_poll: getFeed, and when done the processing report.
    pub(super) async fn poll_feed(&self, job: &BulkJob) -> Result<BulkStatus, ConnectorError> {
        let path = format!("/feeds/{}", encode_component(&job.id));
        let resp = self
            .client
            .call(&Request::get(OP_GET_FEED, Api::Feeds, path))
            .await?;
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let feed: FeedView = resp.json()?;
        if !feed.feed_id.is_empty() && feed.feed_id != job.id {
            return Err(malformed(format!(
                "getFeed for {} answered about feed {}",
                job.id,
                truncate(&feed.feed_id, 40)
            )));
        }
        let age = ms_between(job.submitted_at_ms, now_ms());
        match feed.processing_status.as_str() {
            "IN_QUEUE" | "IN_PROGRESS" => Ok(BulkStatus::Pending {
                poll_after: self.poll_after(age),
            }),
            "DONE" => {
                let document = feed
                    .result_feed_document_id
                    .as_deref()
                    .filter(|d| !d.trim().is_empty())
                    .ok_or_else(|| malformed("feed DONE without a resultFeedDocumentId"))?;
                let report = self.report(document).await?;
                let read = mapping::report_outcomes(&report, job.items).map_err(malformed)?;
                self.learn_from(&feed, job, age);
                self.feeds.done.fetch_add(1, Ordering::Relaxed);
                self.note_report(job, &read);
                Ok(BulkStatus::Done {
                    outcomes: read.outcomes,
                })
            }
            status @ ("FATAL" | "CANCELLED") => {
                let reason = match feed.result_feed_document_id.as_deref() {
                    Some(document) if !document.trim().is_empty() => {
                        match self.report(document).await.and_then(|body| {
                            mapping::report_outcomes(&body, job.items).map_err(malformed)
                        }) {
                            Ok(read) if !read.feed_issues.is_empty() => read.feed_issues.join("; "),
                            Ok(_) => "no feed-level issue in the processing report".to_owned(),
                            Err(e) => format!("processing report unavailable: {e}"),
                        }
                    }
                    _ => "no processing report".to_owned(),
                };
                self.feeds.fatal.fetch_add(1, Ordering::Relaxed);
                let error = truncate(
                    &format!("Amazon feed {} ended {status}: {reason}", job.id),
                    mapping::MAX_ISSUE_TEXT,
                );
                self.feeds.cool_down(&error);
                Ok(BulkStatus::Done {
                    outcomes: vec![ItemOutcome::Retry { error }; job.items],
                })
            }
            other => Err(malformed(format!(
                "feed {} has an unknown processingStatus {:?}",
                job.id,
                truncate(other, 40)
            ))),
        }
    }

    /// getFeedDocument, download, decompress.
    async fn report(&self, document_id: &str) -> Result<Vec<u8>, ConnectorError> {
        let path = format!("/documents/{}", encode_component(document_id));
        let resp = self
            .client
            .call(&Request::get(OP_GET_FEED_DOCUMENT, Api::Feeds, path))
            .await?;
        if !resp.is_success() {
            return Err(self.client.error(&resp));
        }
        let doc: FeedDocumentView = resp.json()?;
        if doc.url.trim().is_empty() {
            return Err(malformed("getFeedDocument answered without a url"));
        }
        let body = self.client.download(&doc.url).await?;
        decompress(body, doc.compression_algorithm.as_deref()).map_err(malformed)
    }

    /// Folds a finished feed's duration into the learned one: Amazon's own times when readable,
    /// else the job's age on our clock.
    fn learn_from(&self, feed: &FeedView, job: &BulkJob, age: Duration) {
        let server = match (
            feed.created_time
                .as_deref()
                .and_then(mapping::parse_timestamp),
            feed.processing_end_time
                .as_deref()
                .and_then(mapping::parse_timestamp),
        ) {
            (Some(created), Some(ended)) if ended >= created => Some(ms_between(created, ended)),
            _ => None,
        };
        let sample = server.unwrap_or(age);
        self.feeds.learn(sample);
        tracing::debug!(feed = %job.id, secs = sample.as_secs(), learned_secs = self.feeds.learned().as_secs(), "Amazon feed duration learned.");
    }

    fn note_report(&self, job: &BulkJob, read: &ReportOutcomes) {
        let rejected = read
            .outcomes
            .iter()
            .filter(|o| matches!(o, ItemOutcome::Rejected { .. }))
            .count();
        self.counters
            .items_rejected
            .fetch_add(rejected as u64, Ordering::Relaxed);
        if !read.feed_issues.is_empty() {
            tracing::warn!(feed = %job.id, issues = %read.feed_issues.join("; "), "Amazon reported feed-level issues.");
        }
        tracing::info!(feed = %job.id, messages = job.items, rejected, processed = ?read.processed, "Amazon feed done.");
    }

    /// bulk_in_flight_since: any `JSON_LISTINGS_FEED` still queued or processing that was created
    /// at or after `since_ms` (less [`CLOCK_SKEW_MARGIN`]).
    pub(super) async fn feeds_in_flight(&self, since_ms: i64) -> Result<bool, ConnectorError> {
        let now = now_ms();
        let margin = i64::try_from(CLOCK_SKEW_MARGIN.as_millis()).unwrap_or(i64::MAX);
        let oldest = now.saturating_sub(i64::try_from(FEED_RETENTION.as_millis()).unwrap_or(0));
        let since = since_ms.saturating_sub(margin).max(oldest);
        let first = format!(
            "/feeds?feedTypes={FEED_TYPE}&marketplaceIds={}&pageSize=100&processingStatuses=IN_QUEUE,IN_PROGRESS&createdSince={}",
            encode_component(self.config.primary_marketplace()),
            encode_component(&mapping::format_timestamp(since)),
        );
        let mut path = first;
        for _ in 0..MAX_FEEDS_PAGES {
            let resp = self
                .client
                .call(&Request::get(OP_GET_FEEDS, Api::Feeds, path.clone()))
                .await?;
            if !resp.is_success() {
                return Err(self.client.error(&resp));
            }
            let page: FeedsPage = resp.json()?;
            // Filtered again here: a feed counts only if it is ours to wait for.
            let running = page.feeds.iter().any(|f| {
                (f.feed_type.is_empty() || f.feed_type == FEED_TYPE)
                    && matches!(f.processing_status.as_str(), "IN_QUEUE" | "IN_PROGRESS")
                    && f.created_time
                        .as_deref()
                        .and_then(mapping::parse_timestamp)
                        .is_none_or(|created| created >= since)
            });
            if running {
                return Ok(true);
            }
            match page.next_token.filter(|t| !t.trim().is_empty()) {
                // The spec: the token alone, no other parameter.
                Some(token) => path = format!("/feeds?nextToken={}", encode_component(&token)),
                None => return Ok(false),
            }
        }
        // Too many pages to be sure: say yes, the daemon asks again later.
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn the_learned_duration_moves_toward_what_is_seen() {
        let s = FeedState::new(Duration::from_secs(180));
        s.learn(Duration::from_secs(80));
        assert_eq!(s.learned(), Duration::from_secs(150));
        for _ in 0..50 {
            s.learn(Duration::from_secs(20));
        }
        assert!(s.learned() < Duration::from_secs(21), "{:?}", s.learned());
        s.learn(Duration::from_secs(100 * 24 * 3600));
        assert!(s.learned() <= MAX_LEARNED);
        let tiny = FeedState::new(Duration::ZERO);
        assert_eq!(tiny.learned(), MIN_LEARNED);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cool_down_ends() {
        let s = FeedState::new(Duration::from_secs(180));
        assert!(!s.cooled_down());
        s.cool_down("test");
        assert!(s.cooled_down());
        tokio::time::advance(FEED_COOLDOWN).await;
        assert!(!s.cooled_down());
    }

    #[test]
    fn reports_are_gunzipped_within_bounds() {
        let report = br#"{"issues":[],"summary":{"messagesProcessed":1}}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(report).unwrap();
        let packed = gz.finish().unwrap();
        assert_eq!(decompress(packed.clone(), Some("GZIP")).unwrap(), report);
        assert_eq!(
            decompress(packed.clone(), None).unwrap(),
            report,
            "by magic"
        );
        assert_eq!(decompress(report.to_vec(), None).unwrap(), report);
        assert!(
            decompress(report.to_vec(), Some("GZIP")).is_err(),
            "not gzip"
        );
        assert!(decompress(packed, Some("ZSTD")).is_err());
        assert!(
            decompress(vec![0x1f, 0x8b, 0, 1, 2], None).is_err(),
            "truncated"
        );
        // A bomb: 64 MiB + 1 of zeros compress to a few KiB and are refused.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..65 {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1024 * 1024);
        assert!(decompress(bomb, Some("GZIP")).is_err());
    }

    #[test]
    fn poll_intervals() {
        assert_eq!(
            poll_interval(Duration::from_secs(180)),
            Duration::from_secs(18)
        );
        assert_eq!(poll_interval(Duration::from_secs(1)), MIN_POLL_INTERVAL);
        assert_eq!(poll_interval(Duration::from_secs(3600)), MAX_POLL_INTERVAL);
    }
}
