//! Amazon's state: access tokens, listings, feed documents and presigned URLs, feeds, orders and
//! paging cursors, plus the submission rules shared by the Listings Items API and feed messages.
//! Pure logic, no HTTP: handlers parse, call in here under the state lock, and render. Applied
//! writes are logged from in here while the lock is held, so the write log's order is the order in
//! which state changed. Feed processing lives in `feeds`, order rules in `orders`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::MARKETPLACE;
use super::error::AmazonError;
use super::feeds::{Document, Feed, Presigned};
use super::listing::{
    Account, Issue, Listing, MAX_SKU_CHARS, Patch, Requirements, apply_patches, missing_required,
    validate_attribute,
};
use super::orders::Order;
use crate::faults::Faults;
use crate::record::{NewWrite, Recorder};
use crate::rng::Rng;

/// How long a paging token (searchListingsItems, searchOrders, getFeeds) stays valid: the Orders
/// API documents 24 hours; the sandbox uses it for all three.
pub(crate) const CURSOR_TTL_HOURS: i64 = 24;

/// What an operation needs from outside the state.
pub(crate) struct Ctx<'a> {
    pub now: DateTime<Utc>,
    pub rec: &'a Recorder,
    pub rng: &'a Rng,
    pub faults: &'a Faults,
}

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub acct: Account,
    pub feed_processing: Duration,
    pub gzip_reports: bool,
    pub base_url: String,
}

/// A listings submission (putListingsItem, patchListingsItem, deleteListingsItem, or a feed
/// message).
#[derive(Debug, Clone)]
pub(crate) enum Submission {
    /// Full replace (PUT, feed UPDATE).
    Put {
        product_type: String,
        requirements: Requirements,
        attributes: Map<String, Value>,
    },
    /// Replace the given attributes (feed PARTIAL_UPDATE).
    PartialUpdate {
        product_type: String,
        attributes: Map<String, Value>,
    },
    /// Patch operations (PATCH, feed PATCH).
    Patch {
        product_type: String,
        patches: Vec<Patch>,
    },
    /// Delete the listing.
    Delete,
}

/// Which call carried a write, for the write log.
#[derive(Debug, Clone)]
pub(crate) struct Via {
    pub operation: &'static str,
    pub batch_ref: Option<String>,
}

/// The result of a submission.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    /// ACCEPTED (or VALID in preview mode) rather than INVALID.
    pub accepted: bool,
    pub issues: Vec<Issue>,
    /// The listing's ASIN after the submission, if it exists.
    pub asin: Option<String>,
}

impl Outcome {
    fn invalid(issues: Vec<Issue>) -> Outcome {
        Outcome {
            accepted: false,
            issues,
            asin: None,
        }
    }
}

/// A paging position: the request it belongs to and the sort key of the last item returned.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    /// The request's filters (compared on later pages, or replayed for getFeeds).
    pub filter: Value,
    /// Sort key and id of the last item returned.
    pub after: (String, String),
    /// Items returned so far.
    pub seen: usize,
    pub created: DateTime<Utc>,
}

/// Everything the Amazon fake knows.
#[derive(Debug)]
pub(crate) struct AmazonState {
    pub cfg: Config,
    /// Access token → expiry.
    pub tokens: HashMap<String, DateTime<Utc>>,
    pub listings: BTreeMap<String, Listing>,
    asins: HashSet<String>,
    pub documents: HashMap<String, Document>,
    /// Presigned URL signature → what it grants.
    pub presigned: HashMap<String, Presigned>,
    pub feeds: BTreeMap<u64, Feed>,
    pub next_feed_id: u64,
    pub orders: BTreeMap<String, Order>,
    order_item_ids: HashSet<String>,
    /// The last `lastUpdatedTime` handed out (order times strictly increase).
    pub order_clock: DateTime<Utc>,
    pub cursors: HashMap<String, Cursor>,
    pub hold_feeds: bool,
    pub fail_next_feeds: usize,
}

const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn base36(rng: &Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(BASE36[(rng.next_u64() % 36) as usize]))
        .collect()
}

/// A random UUID-shaped id (`8-4-4-4-12` hex).
pub(crate) fn uuid(rng: &Rng) -> String {
    let h = rng.hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn digits(rng: &Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + (rng.next_u64() % 10) as u8))
        .collect()
}

impl AmazonState {
    pub(crate) fn new(cfg: Config, now: DateTime<Utc>) -> AmazonState {
        AmazonState {
            cfg,
            tokens: HashMap::new(),
            listings: BTreeMap::new(),
            asins: HashSet::new(),
            documents: HashMap::new(),
            presigned: HashMap::new(),
            feeds: BTreeMap::new(),
            next_feed_id: 50_001_019_001,
            orders: BTreeMap::new(),
            order_item_ids: HashSet::new(),
            order_clock: now,
            cursors: HashMap::new(),
            hold_feeds: false,
            fail_next_feeds: 0,
        }
    }

    // ---- ids ------------------------------------------------------------------------------------

    /// A fresh ASIN (`B0` + 8 base-36 characters).
    pub(crate) fn new_asin(&mut self, rng: &Rng) -> String {
        loop {
            let asin = format!("B0{}", base36(rng, 8));
            if self.asins.insert(asin.clone()) {
                return asin;
            }
        }
    }

    /// A fresh order id (`113-1234567-1234567`).
    pub(crate) fn new_order_id(&self, rng: &Rng) -> String {
        loop {
            let id = format!("11{}-{}-{}", digits(rng, 1), digits(rng, 7), digits(rng, 7));
            if !self.orders.contains_key(&id) {
                return id;
            }
        }
    }

    /// A fresh order item id (14 digits).
    pub(crate) fn new_order_item_id(&mut self, rng: &Rng) -> String {
        loop {
            let id = format!("{}{}", 1 + rng.next_u64() % 9, digits(rng, 13));
            if self.order_item_ids.insert(id.clone()) {
                return id;
            }
        }
    }

    /// A feed document id, shaped like Amazon's (`amzn1.tortuga.4.na.<uuid>.T<code>`).
    pub(crate) fn new_document_id(&self, rng: &Rng) -> String {
        loop {
            let id = format!("amzn1.tortuga.4.na.{}.T{}", uuid(rng), base36(rng, 13));
            if !self.documents.contains_key(&id) {
                return id;
            }
        }
    }

    // ---- paging cursors ---------------------------------------------------------------------------

    /// Stores a cursor and returns its opaque token.
    pub(crate) fn new_cursor(
        &mut self,
        ctx: &Ctx<'_>,
        filter: Value,
        after: (String, String),
        seen: usize,
    ) -> String {
        let horizon = ctx.now - chrono::Duration::hours(CURSOR_TTL_HOURS);
        self.cursors.retain(|_, c| c.created > horizon);
        let token = ctx.rng.hex(24);
        self.cursors.insert(
            token.clone(),
            Cursor {
                filter,
                after,
                seen,
                created: ctx.now,
            },
        );
        token
    }

    /// The cursor of a token that has not expired.
    pub(crate) fn cursor(&self, token: &str, now: DateTime<Utc>) -> Result<Cursor, AmazonError> {
        self.cursors
            .get(token)
            .filter(|c| now - c.created <= chrono::Duration::hours(CURSOR_TTL_HOURS))
            .cloned()
            .ok_or_else(|| AmazonError::invalid_input("Invalid or expired pagination token."))
    }

    // ---- listings ---------------------------------------------------------------------------------

    /// Applies (or, with `preview`, only judges) one submission for `sku`. `rejection` is a
    /// `reject_skus` fault's issue. Accepted changes are applied at once and logged.
    pub(crate) fn submit(
        &mut self,
        ctx: &Ctx<'_>,
        sku: &str,
        submission: Submission,
        preview: bool,
        rejection: Option<Issue>,
        via: &Via,
    ) -> Outcome {
        if let Some(issue) = rejection {
            return Outcome::invalid(vec![issue]);
        }
        let acct = self.cfg.acct.clone();
        if !matches!(submission, Submission::Delete) && sku.chars().count() > MAX_SKU_CHARS {
            return Outcome::invalid(vec![Issue::invalid(
                None,
                format!("The SKU exceeds {MAX_SKU_CHARS} characters."),
            )]);
        }
        let (product_type, attributes, touched, full) = match submission {
            Submission::Delete => {
                if preview {
                    return Outcome {
                        accepted: true,
                        issues: Vec::new(),
                        asin: self.listings.get(sku).map(|l| l.asin.clone()),
                    };
                }
                if let Some(gone) = self.listings.remove(sku) {
                    ctx.rec.write(
                        MARKETPLACE,
                        NewWrite {
                            operation: via.operation,
                            sku: sku.to_owned(),
                            listing_ref: Some(gone.asin),
                            visible_quantity: Some(0),
                            batch_ref: via.batch_ref.clone(),
                            ..NewWrite::default()
                        },
                    );
                }
                return Outcome {
                    accepted: true,
                    issues: Vec::new(),
                    asin: None,
                };
            }
            Submission::Put {
                product_type,
                requirements,
                attributes,
            } => {
                let mut issues: Vec<Issue> = attributes
                    .iter()
                    .flat_map(|(k, v)| validate_attribute(k, v, &acct))
                    .collect();
                issues.extend(missing_required(&attributes, requirements));
                if issues.iter().any(Issue::is_error) {
                    return Outcome::invalid(issues);
                }
                (product_type, attributes, BTreeSet::new(), true)
            }
            Submission::PartialUpdate {
                product_type,
                attributes: given,
            } => {
                let issues: Vec<Issue> = given
                    .iter()
                    .flat_map(|(k, v)| validate_attribute(k, v, &acct))
                    .collect();
                if issues.iter().any(Issue::is_error) {
                    return Outcome::invalid(issues);
                }
                let mut attributes = self
                    .listings
                    .get(sku)
                    .map(|l| l.attributes.clone())
                    .unwrap_or_default();
                let touched: BTreeSet<String> = given.keys().cloned().collect();
                attributes.extend(given);
                (product_type, attributes, touched, false)
            }
            Submission::Patch {
                product_type,
                patches,
            } => {
                let mut attributes = self
                    .listings
                    .get(sku)
                    .map(|l| l.attributes.clone())
                    .unwrap_or_default();
                let touched = match apply_patches(&mut attributes, &patches, &acct) {
                    Ok(t) => t,
                    Err(issues) => return Outcome::invalid(issues),
                };
                let issues: Vec<Issue> = touched
                    .iter()
                    .filter_map(|k| attributes.get(k).map(|v| validate_attribute(k, v, &acct)))
                    .flatten()
                    .collect();
                if issues.iter().any(Issue::is_error) {
                    return Outcome::invalid(issues);
                }
                (product_type, attributes, touched, false)
            }
        };
        if preview {
            return Outcome {
                accepted: true,
                issues: Vec::new(),
                asin: self.listings.get(sku).map(|l| l.asin.clone()),
            };
        }
        let asin = match self.listings.get(sku) {
            Some(l) => l.asin.clone(),
            None => self.new_asin(ctx.rng),
        };
        let listing = self
            .listings
            .entry(sku.to_owned())
            .or_insert_with(|| Listing {
                sku: sku.to_owned(),
                asin: asin.clone(),
                product_type: product_type.clone(),
                attributes: Map::new(),
                created: ctx.now,
                updated: ctx.now,
            });
        if full {
            listing.product_type = product_type;
        }
        listing.attributes = attributes;
        listing.updated = ctx.now;
        let quantity_touched = full || touched.contains("fulfillment_availability");
        let price_touched = full || touched.contains("purchasable_offer");
        ctx.rec.write(
            MARKETPLACE,
            NewWrite {
                operation: via.operation,
                sku: sku.to_owned(),
                listing_ref: Some(asin.clone()),
                quantity: listing.default_quantity().filter(|_| quantity_touched),
                price: listing.price(&acct).filter(|_| price_touched),
                visible_quantity: Some(listing.visible_quantity(&acct)),
                batch_ref: via.batch_ref.clone(),
                ..NewWrite::default()
            },
        );
        Outcome {
            accepted: true,
            issues: Vec::new(),
            asin: Some(asin),
        }
    }
}
