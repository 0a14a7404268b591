//! What the sandbox remembers about traffic: every applied write and every request received.
//!
//! Tests assert the reliability invariants from these records (DESIGN.md §9): convergence (the last
//! write per SKU equals the desired value), no regression (never an older value after a newer one,
//! judged by `seq`), and rate compliance (request times per operation against the marketplace's
//! budget). Times are milliseconds on a monotonic clock since the sandbox started, so they are
//! unaffected by `advance_clock`. Both logs keep the newest [`MAX_LOG_RECORDS`] entries; `seq` keeps
//! counting, so a gap at the front shows that old entries were dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Most records each log keeps (a long-running `omnistock sandbox` must not grow without bound).
pub const MAX_LOG_RECORDS: usize = 1_000_000;

/// A price as marketplaces send it: a decimal string and an ISO 4217 currency code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Decimal amount, e.g. `"19.99"`.
    pub value: String,
    /// ISO 4217 code, e.g. `"USD"`.
    pub currency: String,
}

impl Money {
    /// A price from its parts.
    pub fn new(value: impl Into<String>, currency: impl Into<String>) -> Self {
        Money {
            value: value.into(),
            currency: currency.into(),
        }
    }
}

/// One write the sandbox applied to a marketplace's state on behalf of a client.
///
/// Out-of-band changes (drift injection) and sales are not writes and never appear here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRecord {
    /// Order in which writes were applied, across all marketplaces; strictly increasing.
    pub seq: u64,
    /// Milliseconds since the sandbox started (monotonic).
    pub at_ms: u64,
    /// Marketplace name, e.g. `"ebay"`.
    pub marketplace: String,
    /// The marketplace's operation name, e.g. `"bulkUpdatePriceQuantity"`.
    pub operation: String,
    /// The SKU written.
    pub sku: String,
    /// The marketplace's listing handle touched, if any (eBay: the offerId).
    pub listing_ref: Option<String>,
    /// Item-level quantity set by this write (eBay: `shipToLocationAvailability.quantity`).
    pub quantity: Option<u32>,
    /// Listing-level quantity set by this write (eBay: the offer's `availableQuantity`).
    pub offer_quantity: Option<u32>,
    /// Price set by this write.
    pub price: Option<Money>,
    /// What buyers see after this write (eBay: min of item and offer quantity on the live listing).
    pub visible_quantity: Option<u32>,
    /// The batch that carried this write, when it was not a single call (Amazon: `feed <feedId>
    /// message <messageId>` for a JSON_LISTINGS_FEED message).
    #[serde(default)]
    pub batch_ref: Option<String>,
}

/// A write before the log stamps it with `seq` and `at_ms`.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewWrite {
    pub operation: &'static str,
    pub sku: String,
    pub listing_ref: Option<String>,
    pub quantity: Option<u32>,
    pub offer_quantity: Option<u32>,
    pub price: Option<Money>,
    pub visible_quantity: Option<u32>,
    pub batch_ref: Option<String>,
}

/// One request that reached a marketplace (after simulated network latency, before faults, auth
/// and rate limits), whatever its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Arrival order across all marketplaces.
    pub seq: u64,
    /// Milliseconds since the sandbox started (monotonic).
    pub at_ms: u64,
    /// Marketplace name.
    pub marketplace: String,
    /// Operation name.
    pub operation: String,
    /// The raw query string as received, still percent-encoded (so tests can check how a client
    /// encoded it, e.g. eBay's `filter` brackets); `None` without one.
    #[serde(default)]
    pub query: Option<String>,
}

#[derive(Debug, Default)]
struct Logs {
    next_write: u64,
    writes: VecDeque<WriteRecord>,
    next_request: u64,
    requests: VecDeque<RequestRecord>,
    counts: HashMap<(&'static str, &'static str), u64>,
    status_429: HashMap<&'static str, u64>,
    throttled: HashMap<&'static str, u64>,
}

/// The write log, request log and counters of one sandbox.
#[derive(Debug)]
pub(crate) struct Recorder {
    started: Instant,
    logs: Mutex<Logs>,
}

fn push_bounded<T>(log: &mut VecDeque<T>, record: T) {
    if log.len() == MAX_LOG_RECORDS {
        log.pop_front();
    }
    log.push_back(record);
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Recorder {
            started: Instant::now(),
            logs: Mutex::new(Logs::default()),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Logs> {
        self.logs.lock().expect("recorder lock")
    }

    /// Appends an applied write. Call it while still holding the marketplace's state lock so the
    /// log order is the order in which state changed.
    pub(crate) fn write(&self, marketplace: &'static str, w: NewWrite) {
        let at_ms = self.elapsed_ms();
        let mut logs = self.lock();
        logs.next_write += 1;
        let seq = logs.next_write;
        push_bounded(
            &mut logs.writes,
            WriteRecord {
                seq,
                at_ms,
                marketplace: marketplace.to_owned(),
                operation: w.operation.to_owned(),
                sku: w.sku,
                listing_ref: w.listing_ref,
                quantity: w.quantity,
                offer_quantity: w.offer_quantity,
                price: w.price,
                visible_quantity: w.visible_quantity,
                batch_ref: w.batch_ref,
            },
        );
    }

    /// Notes the arrival of a request.
    pub(crate) fn request(
        &self,
        marketplace: &'static str,
        operation: &'static str,
        query: Option<&str>,
    ) {
        let at_ms = self.elapsed_ms();
        let mut logs = self.lock();
        logs.next_request += 1;
        let seq = logs.next_request;
        *logs.counts.entry((marketplace, operation)).or_default() += 1;
        push_bounded(
            &mut logs.requests,
            RequestRecord {
                seq,
                at_ms,
                marketplace: marketplace.to_owned(),
                operation: operation.to_owned(),
                query: query.map(str::to_owned),
            },
        );
    }

    /// Notes a 429 sent; `throttled` when it came from the rate limiter rather than a fault rule.
    pub(crate) fn too_many_requests(&self, marketplace: &'static str, throttled: bool) {
        let mut logs = self.lock();
        *logs.status_429.entry(marketplace).or_default() += 1;
        if throttled {
            *logs.throttled.entry(marketplace).or_default() += 1;
        }
    }

    pub(crate) fn writes(&self, marketplace: Option<&str>) -> Vec<WriteRecord> {
        let logs = self.lock();
        logs.writes
            .iter()
            .filter(|w| marketplace.is_none_or(|m| w.marketplace == m))
            .cloned()
            .collect()
    }

    pub(crate) fn requests(&self, marketplace: Option<&str>) -> Vec<RequestRecord> {
        let logs = self.lock();
        logs.requests
            .iter()
            .filter(|r| marketplace.is_none_or(|m| r.marketplace == m))
            .cloned()
            .collect()
    }

    pub(crate) fn request_count(&self, marketplace: &str, operation: &str) -> u64 {
        let logs = self.lock();
        logs.counts
            .iter()
            .filter(|((m, o), _)| *m == marketplace && *o == operation)
            .map(|(_, n)| *n)
            .sum()
    }

    pub(crate) fn request_counts(&self, marketplace: &str) -> HashMap<String, u64> {
        let logs = self.lock();
        logs.counts
            .iter()
            .filter(|((m, _), _)| *m == marketplace)
            .map(|((_, o), n)| ((*o).to_owned(), *n))
            .collect()
    }

    pub(crate) fn count_429(&self, marketplace: &str) -> u64 {
        self.lock()
            .status_429
            .get(marketplace)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn throttled(&self, marketplace: &str) -> u64 {
        self.lock().throttled.get(marketplace).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_sequenced_and_filtered_by_marketplace() {
        let rec = Recorder::new();
        rec.write(
            "ebay",
            NewWrite {
                operation: "op",
                sku: "A".into(),
                quantity: Some(3),
                ..NewWrite::default()
            },
        );
        rec.write(
            "amazon",
            NewWrite {
                operation: "op",
                sku: "B".into(),
                ..NewWrite::default()
            },
        );
        let all = rec.writes(None);
        assert_eq!(all.len(), 2);
        assert!(all[0].seq < all[1].seq);
        let ebay = rec.writes(Some("ebay"));
        assert_eq!(ebay.len(), 1);
        assert_eq!(ebay[0].quantity, Some(3));
    }

    #[test]
    fn request_counts_are_per_operation() {
        let rec = Recorder::new();
        rec.request("ebay", "getOrders", Some("limit=1"));
        rec.request("ebay", "getOrders", None);
        rec.request("ebay", "getOrder", None);
        assert_eq!(rec.request_count("ebay", "getOrders"), 2);
        assert_eq!(rec.request_count("ebay", "nope"), 0);
        let requests = rec.requests(Some("ebay"));
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].query.as_deref(), Some("limit=1"));
    }
}
