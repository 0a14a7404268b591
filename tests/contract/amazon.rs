//! The Amazon SP-API connector through three Prisms, one per official model, in front of the
//! sandbox's Amazon fake:
//!
//! ```text
//! connector ──> recorder ──> prism proxy --errors (listingsItems_2021-08-01) ──> sandbox /amazon
//!           └─> recorder ──> prism proxy --errors (feeds_2021-06-30)         ──┤
//!           └─> recorder ──> prism proxy --errors (orders_2026-01-01)        ──┘
//!           └──────────── LWA token endpoint, presigned document URLs (in no model) ─> sandbox
//! ```
//!
//! `AmazonConfig::endpoint`, `feeds_endpoint` and `orders_endpoint` point at the three recorders.
//! The feed document the connector uploads and the processing report it downloads never pass a
//! Prism (presigned URLs, like S3); they are checked against Amazon's JSON Schemas instead
//! ([`crate::feed_schemas`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use omnistock_sandbox::{AmazonOptions, FaultKind, FaultRule, Sandbox, SandboxOptions};

use crate::amazon_sync;
use crate::feed_schemas::FeedSchemas;
use crate::prism::{self, Prism, Setup, Severity};
use crate::recorder::{Exchange, Operations, Recorder};
use crate::{assert_no_violations, coverage_report, form_encode, http};

/// The prepared Amazon spec copies (names as in ../shared/contracts/specs/amazon).
pub const LISTINGS_SPEC: &str = "listingsItems_2021-08-01.json";
/// The Feeds API model.
pub const FEEDS_SPEC: &str = "feeds_2021-06-30.json";
/// The Orders API 2026-01-01 model.
pub const ORDERS_SPEC: &str = "orders_2026-01-01.json";

/// Operations the sandbox counts that are in no model and go direct: the LWA token endpoint and
/// the presigned upload and download.
const DIRECT_OPERATIONS: [&str; 3] = ["token", "uploadFeedDocument", "downloadFeedDocument"];

/// The sandbox, a Prism per Amazon model in front of its Amazon fake, and a recorder in front of
/// each. Fields drop in order: recorders, then Prisms (stopped by PID), then the sandbox.
pub struct AmazonContract {
    /// Connector `endpoint`: recorder → Prism (Listings Items model) → sandbox.
    pub listings: Recorder,
    /// Connector `feeds_endpoint`: recorder → Prism (Feeds model) → sandbox.
    pub feeds: Recorder,
    /// Connector `orders_endpoint`: recorder → Prism (Orders 2026-01-01 model) → sandbox.
    pub orders: Recorder,
    listings_prism: Prism,
    feeds_prism: Prism,
    orders_prism: Prism,
    /// The fake marketplace.
    pub sandbox: Sandbox,
    /// PID and log files.
    _dir: tempfile::TempDir,
}

impl AmazonContract {
    /// Starts everything, the three Prisms in parallel.
    async fn start(setup: &Setup) -> AmazonContract {
        let sandbox = Sandbox::start(SandboxOptions {
            port: 0,
            amazon: AmazonOptions {
                listings: amazon_sync::existing_listings(),
                feed_processing: amazon_sync::FEED_PROCESSING,
                ..AmazonOptions::unlimited()
            },
            ..SandboxOptions::default()
        })
        .await
        .expect("start the sandbox");
        let upstream = format!("{}/amazon", sandbox.base_url());
        let dir = tempfile::tempdir().expect("tempdir");
        let specs = [
            setup.spec(LISTINGS_SPEC),
            setup.spec(FEEDS_SPEC),
            setup.spec(ORDERS_SPEC),
        ];
        let [listings_prism, feeds_prism, orders_prism] = std::thread::scope(|s| {
            let started = [
                ("listings", &specs[0]),
                ("feeds", &specs[1]),
                ("orders", &specs[2]),
            ]
            .map(|(name, spec)| {
                let (upstream, dir) = (&upstream, dir.path());
                s.spawn(move || Prism::start(name, spec, upstream, dir))
            });
            // Join all before unwrapping; a failed start then unwinds through `map`, which drops
            // (stops) the Prisms that did start, before and after it.
            let joined = started.map(|h| h.join());
            joined.map(|j| j.unwrap_or_else(|e| std::panic::resume_unwind(e)))
        });
        let listings = Recorder::start(listings_prism.addr, Operations::from_spec(&specs[0])).await;
        let feeds = Recorder::start(feeds_prism.addr, Operations::from_spec(&specs[1])).await;
        let orders = Recorder::start(orders_prism.addr, Operations::from_spec(&specs[2])).await;
        AmazonContract {
            listings,
            feeds,
            orders,
            listings_prism,
            feeds_prism,
            orders_prism,
            sandbox,
            _dir: dir,
        }
    }

    /// `<sandbox>/amazon/auth/o2/token`, called directly: Login with Amazon is in no model.
    pub fn token_endpoint(&self) -> String {
        format!("{}/amazon/auth/o2/token", self.sandbox.base_url())
    }

    /// An access token from the sandbox (LWA refresh-token grant), for hand-made requests.
    pub async fn access_token(&self) -> String {
        let creds = self.sandbox.amazon().credentials();
        let body = format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}&client_secret={}",
            form_encode(&creds.refresh_token),
            form_encode(&creds.client_id),
            form_encode(&creds.client_secret),
        );
        let r = http::send(
            self.sandbox.addr(),
            "POST",
            "/amazon/auth/o2/token",
            &[(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body.as_bytes(),
        )
        .await
        .expect("token request");
        assert_eq!(r.status, 200, "token endpoint: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("token JSON");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    /// GETs a presigned document URL handed out by the sandbox (directly, as the connector does).
    pub async fn download(&self, url: &str) -> http::RawResponse {
        let target = url
            .strip_prefix(&self.sandbox.base_url())
            .unwrap_or_else(|| panic!("document URL {url} is not on the sandbox"));
        http::send(self.sandbox.addr(), "GET", target, &[], b"")
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    fn prisms(&self) -> [&Prism; 3] {
        [&self.listings_prism, &self.feeds_prism, &self.orders_prism]
    }

    /// Current log lengths of the three Prisms (a mark for [`AmazonContract::log_findings`]).
    fn log_mark(&self) -> [usize; 3] {
        self.prisms().map(|p| p.log_text().len())
    }

    /// The three Prisms' logs: (severity, line) at warning or worse, from byte offsets on.
    fn log_findings(&self, from: [usize; 3]) -> Vec<(Severity, String)> {
        self.prisms()
            .iter()
            .zip(from)
            .flat_map(|(p, from)| prism::log_findings(p.log_text().get(from..).unwrap_or("")))
            .collect()
    }

    fn recorders(&self) -> [(&'static str, &Recorder); 3] {
        [
            ("listings items model", &self.listings),
            ("feeds model", &self.feeds),
            ("orders model", &self.orders),
        ]
    }

    /// Current exchange counts (a mark for [`AmazonContract::since`]).
    fn mark(&self) -> [usize; 3] {
        self.recorders().map(|(_, r)| r.mark())
    }

    /// Exchanges of each recorder after a mark.
    fn since(&self, mark: [usize; 3]) -> [Vec<Exchange>; 3] {
        let [l, f, o] = self.recorders();
        [l.1.since(mark[0]), f.1.since(mark[1]), o.1.since(mark[2])]
    }

    /// The coverage report of the three models.
    fn coverage(&self, exchanges: &[Vec<Exchange>; 3]) -> String {
        self.recorders()
            .iter()
            .zip(exchanges)
            .map(|((title, r), e)| coverage_report(title, e, &r.operation_ids()))
            .collect()
    }

    /// Requests per operation that reached the sandbox's Amazon fake through the models' APIs.
    fn api_request_counts(&self) -> BTreeMap<String, u64> {
        self.sandbox
            .amazon()
            .request_counts()
            .into_iter()
            .filter(|(op, _)| !DIRECT_OPERATIONS.contains(&op.as_str()))
            .collect()
    }
}

/// The guard bites: Prism rejects a hand-made putListingsItem without the `marketplaceIds` query
/// the model requires and a patchListingsItem without `patches` (422, never forwarded), replaces a malformed sandbox answer to
/// searchListingsItems with a 500, and both show up in the recorder and in Prism's log; a
/// conforming hand-made request passes clean. Without these the zero-violation check could pass
/// by never looking.
async fn negative_controls(c: &AmazonContract) {
    let amazon = c.sandbox.amazon();
    let token = c.access_token().await;
    let headers = [
        ("x-amz-access-token", token.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (mark, log_mark) = (c.listings.mark(), c.log_mark());
    let writes_before = amazon.writes().len();
    let seller = amazon.seller_id();
    let marketplace = amazon.marketplace_id();

    // 1. Request side: no marketplaceIds.
    let r = c
        .listings
        .send(
            "PUT",
            &format!("/listings/2021-08-01/items/{seller}/CONTROL-1"),
            &headers,
            r#"{"productType":"PRODUCT","requirements":"LISTING","attributes":{"item_name":[{"value":"Control","language_tag":"en_US"}]}}"#,
        )
        .await;
    assert_eq!(
        r.status,
        422,
        "Prism let a putListingsItem without marketplaceIds through: {}",
        r.text()
    );
    // 1b. Request side, body: a patchListingsItem without the required `patches`.
    let r = c
        .listings
        .send(
            "PATCH",
            &format!("/listings/2021-08-01/items/{seller}/CONTROL-1?marketplaceIds={marketplace}"),
            &headers,
            r#"{"productType":"PRODUCT"}"#,
        )
        .await;
    assert_eq!(
        r.status,
        422,
        "Prism let a patchListingsItem without patches through: {}",
        r.text()
    );
    // 2. Response side: one searchListingsItems answered 200 with a body that breaks
    //    ItemSearchResults (`numberOfResults` must be an integer, `items` an array).
    amazon.faults().add(
        FaultRule::new(
            "amazon",
            "searchListingsItems",
            FaultKind::ServerError {
                status: 200,
                body: Some(r#"{"numberOfResults":"many","items":{}}"#.into()),
            },
        )
        .times(1),
    );
    let search = format!("/listings/2021-08-01/items/{seller}?marketplaceIds={marketplace}");
    let r = c.listings.send("GET", &search, &headers[..1], "").await;
    let bad_response_status = r.status;
    // 3. A conforming request passes clean.
    let r = c.listings.send("GET", &search, &headers[..1], "").await;
    assert_eq!(
        r.status,
        200,
        "a conforming searchListingsItems failed: {}",
        r.text()
    );

    let exchanges = c.listings.since(mark);
    assert_eq!(exchanges.len(), 4);
    let missing_query = &exchanges[0];
    assert_eq!(
        missing_query.prism_error.as_deref(),
        Some("UNPROCESSABLE_ENTITY"),
        "{}",
        missing_query.describe()
    );
    assert!(
        missing_query
            .findings
            .iter()
            // Prism names query parameters in lower case.
            .any(|f| f.is_error() && f.message.to_ascii_lowercase().contains("'marketplaceids'")),
        "{}",
        missing_query.describe()
    );
    let missing_patches = &exchanges[1];
    assert!(
        missing_patches.prism_error.as_deref() == Some("UNPROCESSABLE_ENTITY")
            && missing_patches
                .findings
                .iter()
                .any(|f| f.is_error() && f.location.starts_with("body")),
        "{}",
        missing_patches.describe()
    );
    assert_eq!(
        amazon.writes().len(),
        writes_before,
        "Prism forwarded an invalid request"
    );
    let bad_response = &exchanges[2];
    assert_eq!(
        bad_response.prism_error.as_deref(),
        Some("VIOLATIONS"),
        "{}",
        bad_response.describe()
    );
    assert!(
        bad_response
            .findings
            .iter()
            .any(|f| f.is_error() && f.location == "response.body.numberOfResults"),
        "{}",
        bad_response.describe()
    );
    assert!(!exchanges[3].is_violation(), "{}", exchanges[3].describe());
    // The other two Prisms bite too: a getFeed and a searchOrders answered 200 with bodies that
    // break the Feed and SearchOrdersResponse schemas.
    let mut others = Vec::new();
    for (recorder, operation, target, body, location) in [
        (
            &c.feeds,
            "getFeed",
            "/feeds/2021-06-30/feeds/1".to_owned(),
            r#"{"feedId":1,"processingStatus":"SOMEWHERE"}"#,
            "response.body.feedId",
        ),
        (
            &c.orders,
            "searchOrders",
            format!(
                "/orders/2026-01-01/orders?createdAfter=2026-01-01T00:00:00Z&marketplaceIds={marketplace}"
            ),
            r#"{"orders":{}}"#,
            "response.body.orders",
        ),
    ] {
        amazon.faults().add(
            FaultRule::new(
                "amazon",
                operation,
                FaultKind::ServerError {
                    status: 200,
                    body: Some(body.into()),
                },
            )
            .times(1),
        );
        let mark = recorder.mark();
        let r = recorder.send("GET", &target, &headers[..1], "").await;
        let e = recorder.since(mark).pop().expect("recorded");
        assert!(
            r.status == 500
                && e.prism_error.as_deref() == Some("VIOLATIONS")
                && e.findings
                    .iter()
                    .any(|f| f.is_error() && f.location == location),
            "Prism let a schema-breaking {operation} answer through: {}",
            e.describe()
        );
        others.push(format!("{operation} -> {} VIOLATIONS", r.status));
    }

    let log = c.log_findings(log_mark);
    let log_errors = log.iter().filter(|(s, _)| *s == Severity::Error).count();
    assert!(
        log.iter()
            .any(|(s, l)| *s == Severity::Error && l.contains("UNPROCESSABLE_ENTITY")),
        "Prism's log does not show the rejected request: {log:#?}"
    );
    println!(
        "negative controls: no marketplaceIds -> {} {} \"{}\"; no patches -> {} {} \"{}: {}\"; schema-breaking response -> {bad_response_status} {} \"{}\"; conforming request -> 200 clean; schema-breaking {}; {log_errors} error line(s) in Prism's log",
        missing_query.status,
        missing_query.prism_error.as_deref().unwrap_or(""),
        missing_query.findings[0].message,
        missing_patches.status,
        missing_patches.prism_error.as_deref().unwrap_or(""),
        missing_patches.findings[0].location,
        missing_patches.findings[0].message,
        bad_response.prism_error.as_deref().unwrap_or(""),
        bad_response.findings[0].message,
        others.join(", "),
    );
}

/// Warnings (non-error findings and Prism log warnings), one line each.
fn warnings(all: &[Exchange], log: &[(Severity, String)]) -> Vec<String> {
    all.iter()
        .flat_map(|e| e.findings.iter().filter(|f| !f.is_error()))
        .map(|f| format!("{}: {}", f.location, f.message))
        .chain(
            log.iter()
                .filter(|(s, _)| *s == Severity::Warning)
                .map(|(_, l)| l.clone()),
        )
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amazon_through_prism() {
    let Some(setup) = prism::setup("amazon_through_prism", "amazon") else {
        return;
    };
    let schemas = FeedSchemas::load(&setup.official_dir(LISTINGS_SPEC));
    let t0 = Instant::now();
    let c = AmazonContract::start(&setup).await;
    let mut started = String::new();
    for p in c.prisms() {
        let _ = write!(
            started,
            "{:.1} s ({}, PID {}) ",
            p.startup.as_secs_f64(),
            p.name,
            p.pid().unwrap_or_default()
        );
    }
    println!(
        "Prism started in {started}in parallel; ready after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    for spec in [LISTINGS_SPEC, FEEDS_SPEC, ORDERS_SPEC] {
        for erratum in setup.errata(spec) {
            println!("spec erratum applied by scripts/prism ({spec}): {erratum}");
        }
    }
    negative_controls(&c).await;

    let (mark, log_mark) = (c.mark(), c.log_mark());
    let sandbox_before = c.api_request_counts();
    let t_sync = Instant::now();
    let result = amazon_sync::full_sync(&c).await;
    let sync_secs = t_sync.elapsed().as_secs_f64();
    let by_spec = c.since(mark);
    let connector: Vec<Exchange> = by_spec.iter().flatten().cloned().collect();
    let summary = match result {
        Ok(summary) => summary,
        Err(failure) => {
            // Prism's findings first: they usually are the reason.
            print!("{}", c.coverage(&by_spec));
            assert_no_violations("Amazon", &connector, &c.log_findings(log_mark));
            panic!("the sync through Prism failed without a contract violation: {failure}");
        }
    };

    // What never passes a Prism: the uploaded feed document and the downloaded report, against
    // Amazon's JSON Schemas. Reading the uploaded document back takes one getFeedDocument of the
    // test's own. Then the operations the connector does not call, by hand, so that the fake's
    // answers to them are held against the models too. Neither counts as the connector's coverage.
    let own_mark = c.mark();
    let documents = amazon_sync::feed_documents(&c, &summary.feed, &by_spec[1]).await;
    let by_hand = amazon_sync::remaining_operations(&c, &summary).await;
    let own_by_spec = c.since(own_mark);
    let own: Vec<Exchange> = own_by_spec.iter().flatten().cloned().collect();
    let log = c.log_findings(log_mark);

    println!(
        "Amazon connector through Prism in {sync_secs:.1} s: healthcheck \"{}\"; push_listings batches {:?} and one refused SKU; push_stock batches {:?}; feed {} of {} messages ({} polls, in flight while held: {}, after: {}); a throttled searchOrders (\"{}\"), then {} orders ({} FBA) on {} page(s); snapshot of {} items on {} page(s); {} delisted",
        summary.health,
        summary.listing_batches,
        summary.stock_batches,
        summary.feed.feed_id,
        summary.feed.messages,
        summary.feed.polls,
        summary.feed.in_flight_while_held,
        summary.feed.in_flight_after,
        summary.throttled,
        summary.orders.0,
        summary.orders.2,
        summary.orders.1,
        summary.snapshot.0,
        summary.snapshot.1,
        summary.delisted,
    );
    println!("the connector's requests:");
    print!("{}", c.coverage(&by_spec));
    println!(
        "the test's own requests ({}): getFeedDocument for the uploaded document; {}",
        own.len(),
        by_hand.join("; ")
    );
    let validated: Vec<String> = c
        .recorders()
        .iter()
        .zip(by_spec.iter().zip(&own_by_spec))
        .map(|((title, r), (conn, own))| {
            let ids = r.operation_ids();
            let seen = ids
                .iter()
                .filter(|id| conn.iter().chain(own).any(|x| &x.operation == *id))
                .count();
            format!("{title} {seen}/{}", ids.len())
        })
        .collect();
    println!(
        "operations whose answers Prism validated, connector and test together: {}",
        validated.join(", ")
    );
    let feed_errors = schemas.check_feed(&documents.uploaded);
    let report_errors = schemas.check_report(&documents.report);
    println!(
        "feed document ({} messages, {} bytes) against listings-feed-schema-v2 + message schema: {}; processing report ({}{} bytes, {} issue(s), summary {}) against listings-feed-processing-report-schema-v2: {}",
        documents.uploaded["messages"]
            .as_array()
            .map_or(0, Vec::len),
        documents.uploaded_bytes,
        if feed_errors.is_empty() {
            "valid".to_owned()
        } else {
            format!("{} error(s)", feed_errors.len())
        },
        if documents.report_gzip { "GZIP, " } else { "" },
        documents.report_bytes,
        documents.report["issues"].as_array().map_or(0, Vec::len),
        documents.report["summary"],
        if report_errors.is_empty() {
            "valid".to_owned()
        } else {
            format!("{} error(s)", report_errors.len())
        },
    );
    let all: Vec<Exchange> = connector.iter().chain(&own).cloned().collect();
    let warnings = warnings(&all, &log);
    println!(
        "violations: {} exchange(s), {} log error(s), {} schema error(s); warnings: {}",
        all.iter().filter(|e| e.is_violation()).count(),
        log.iter().filter(|(s, _)| *s == Severity::Error).count(),
        feed_errors.len() + report_errors.len(),
        if warnings.is_empty() {
            "none".to_owned()
        } else {
            warnings.join("; ")
        }
    );
    assert_no_violations("Amazon", &all, &log);
    assert!(
        feed_errors.is_empty(),
        "the uploaded JSON_LISTINGS_FEED document breaks Amazon's schema:\n  {}\n{}",
        feed_errors.join("\n  "),
        documents.uploaded
    );
    assert!(
        report_errors.is_empty(),
        "the processing report breaks Amazon's schema:\n  {}\n{}",
        report_errors.join("\n  "),
        documents.report
    );

    // Nothing went around the guard: every SP-API request the fake saw came through a Prism
    // (LWA and the presigned document transfers are the calls that go direct).
    let mut through_prism: BTreeMap<String, u64> = BTreeMap::new();
    for e in &all {
        *through_prism.entry(e.operation.clone()).or_default() += 1;
    }
    let mut reached_sandbox: BTreeMap<String, u64> = BTreeMap::new();
    for (op, n) in c.api_request_counts() {
        let delta = n - sandbox_before.get(&op).copied().unwrap_or(0);
        if delta > 0 {
            reached_sandbox.insert(op, delta);
        }
    }
    assert_eq!(
        reached_sandbox, through_prism,
        "requests per operation: sandbox (left) vs. through Prism (right); a difference means \
         the connector went around the contract guard"
    );
}
