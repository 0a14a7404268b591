//! Contract tests: connectors through Stoplight Prism (proxy mode, `--errors`) with the official
//! specs from ../shared/contracts/specs, in front of the sandbox (DESIGN §8).
//!
//! ```text
//! eBay:   connector ──> recorder ──> prism proxy --errors (inventory spec)   ──> sandbox /ebay
//!                   └─> recorder ──> prism proxy --errors (fulfillment spec) ──┘
//!                   └──────────────────────────── token endpoint (not in the specs) ─> sandbox
//! Amazon: connector ──> recorder ──> prism (listingsItems_2021-08-01) ──> sandbox /amazon
//!                   └─> recorder ──> prism (feeds_2021-06-30)         ──┤
//!                   └─> recorder ──> prism (orders_2026-01-01)        ──┘
//!                   └──── LWA token endpoint, presigned document URLs ──> sandbox
//! ```
//!
//! Prism rejects a request the official spec forbids with 422 (never forwarding it) and replaces
//! a response the spec forbids with 500, both `application/problem+json` with Prism's exact
//! messages; anything milder shows in the `sl-violations` header and Prism's log. The recorders
//! keep every exchange, so a violation is reported verbatim even when the connector swallows it.
//! What never passes a Prism — Amazon's JSON_LISTINGS_FEED document and processing report — is
//! checked against Amazon's JSON Schemas ([`feed_schemas`]).
//!
//! Prism comes from `scripts/prism install` (npm, into `~/.cache/omnistock/prism`); the specs are
//! prepared copies of the official ones in the same cache, one folder per market
//! (`scripts/prism specs ebay|amazon`). When either is missing each test prints `SKIPPED: …` and
//! passes, unless `OMNISTOCK_REQUIRE_CONTRACT=1` (CI), which makes absence a failure. Every Prism
//! is stopped by its PID when its guard drops.
//!
//! Run: `scripts/prism install && cargo test -p omnistock --test contract -- --nocapture`.

/// Like `assert!`, but returns the message, so the caller can report Prism's findings first.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

mod amazon;
mod amazon_sync;
mod feed_schemas;
mod http;
mod prism;
mod recorder;
mod sync;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use omnistock_sandbox::{EbayOptions, Sandbox, SandboxOptions};

use crate::prism::{Prism, Setup, Severity};
use crate::recorder::{Exchange, Operations, Recorder};

/// The prefixed eBay spec files (names as in ../shared/contracts/specs/ebay).
const INVENTORY_SPEC: &str = "sell_inventory_v1_oas3.json";
const FULFILLMENT_SPEC: &str = "sell_fulfillment_v1_oas3.json";

/// The sandbox, the two Prisms in front of its eBay fake, and a recorder in front of each.
/// Fields drop in order: recorders, then Prisms (stopped by PID), then the sandbox.
struct EbayContract {
    /// Connector `endpoint`: recorder → Prism (inventory spec) → sandbox.
    inventory: Recorder,
    /// Connector `fulfillment_endpoint`: recorder → Prism (fulfillment spec) → sandbox.
    fulfillment: Recorder,
    inventory_prism: Prism,
    fulfillment_prism: Prism,
    sandbox: Sandbox,
    /// PID and log files.
    _dir: tempfile::TempDir,
}

impl EbayContract {
    /// Starts everything, the two Prisms in parallel.
    async fn start(setup: &Setup) -> EbayContract {
        let sandbox = Sandbox::start(SandboxOptions {
            port: 0,
            ebay: EbayOptions {
                listings: sync::existing_listings(),
                ..EbayOptions::unlimited()
            },
            ..SandboxOptions::default()
        })
        .await
        .expect("start the sandbox");
        let upstream = format!("{}/ebay", sandbox.base_url());
        let dir = tempfile::tempdir().expect("tempdir");
        let (inv_spec, ful_spec) = (setup.spec(INVENTORY_SPEC), setup.spec(FULFILLMENT_SPEC));
        let (inventory_prism, fulfillment_prism) = std::thread::scope(|s| {
            let inv = s.spawn(|| Prism::start("inventory", &inv_spec, &upstream, dir.path()));
            let ful = s.spawn(|| Prism::start("fulfillment", &ful_spec, &upstream, dir.path()));
            // Join both before unwrapping, so one failing start still drops (stops) the other.
            let (inv, ful) = (inv.join(), ful.join());
            match (inv, ful) {
                (Ok(inv), Ok(ful)) => (inv, ful),
                (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
            }
        });
        let inventory =
            Recorder::start(inventory_prism.addr, Operations::from_spec(&inv_spec)).await;
        let fulfillment =
            Recorder::start(fulfillment_prism.addr, Operations::from_spec(&ful_spec)).await;
        EbayContract {
            inventory,
            fulfillment,
            inventory_prism,
            fulfillment_prism,
            sandbox,
            _dir: dir,
        }
    }

    /// `<sandbox>/ebay/identity/v1/oauth2/token`, called directly: the token endpoint is in
    /// neither spec.
    fn token_endpoint(&self) -> String {
        format!("{}/ebay/identity/v1/oauth2/token", self.sandbox.base_url())
    }

    /// A user access token from the sandbox (refresh-token grant), for hand-made requests.
    async fn access_token(&self) -> String {
        let creds = self.sandbox.ebay().credentials();
        let basic = http::base64(format!("{}:{}", creds.client_id, creds.client_secret).as_bytes());
        let body = format!(
            "grant_type=refresh_token&refresh_token={}",
            form_encode(&creds.refresh_token)
        );
        let r = http::send(
            self.sandbox.addr(),
            "POST",
            "/ebay/identity/v1/oauth2/token",
            &[
                ("Authorization".into(), format!("Basic {basic}")),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body.as_bytes(),
        )
        .await
        .expect("token request");
        assert_eq!(r.status, 200, "token endpoint: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("token JSON");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    /// Both Prisms' logs: (severity, line) at warning or worse, from byte offsets on.
    fn log_findings(&self, from: (usize, usize)) -> Vec<(Severity, String)> {
        let inv = self.inventory_prism.log_text();
        let ful = self.fulfillment_prism.log_text();
        let mut out = prism::log_findings(inv.get(from.0..).unwrap_or(""));
        out.extend(prism::log_findings(ful.get(from.1..).unwrap_or("")));
        out
    }

    /// The coverage report of both specs.
    fn coverage(&self, inv: &[Exchange], ful: &[Exchange]) -> String {
        coverage_report("inventory spec", inv, &self.inventory.operation_ids())
            + &coverage_report("fulfillment spec", ful, &self.fulfillment.operation_ids())
    }

    /// Current log lengths (a mark for [`EbayContract::log_findings`]).
    fn log_mark(&self) -> (usize, usize) {
        (
            self.inventory_prism.log_text().len(),
            self.fulfillment_prism.log_text().len(),
        )
    }
}

/// `application/x-www-form-urlencoded` value encoding.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Operation → (exchanges, HTTP statuses seen), for the coverage report.
fn coverage(exchanges: &[Exchange]) -> BTreeMap<String, (usize, BTreeMap<u16, usize>)> {
    let mut by_op: BTreeMap<String, (usize, BTreeMap<u16, usize>)> = BTreeMap::new();
    for e in exchanges {
        let entry = by_op.entry(e.operation.clone()).or_default();
        entry.0 += 1;
        *entry.1.entry(e.status).or_default() += 1;
    }
    by_op
}

/// The exchanges per operation with their statuses, then how many of the spec's operations
/// (`spec_ops`) they exercised and which they did not.
fn coverage_report(title: &str, exchanges: &[Exchange], spec_ops: &[String]) -> String {
    let mut s = format!("{title}: {} requests through Prism\n", exchanges.len());
    let by_op = coverage(exchanges);
    for (op, (n, statuses)) in &by_op {
        let statuses: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
        let sizes: Vec<String> = exchanges
            .iter()
            .filter(|e| &e.operation == op)
            .filter_map(|e| e.bulk_len().map(|n| n.to_string()))
            .collect();
        let sizes = if sizes.is_empty() {
            String::new()
        } else {
            format!("   entries per call: {}", sizes.join(", "))
        };
        let _ = writeln!(s, "  {op:<32} {n:>4}   {}{sizes}", statuses.join(" "));
    }
    let missed: Vec<&str> = spec_ops
        .iter()
        .filter(|op| !by_op.contains_key(*op))
        .map(String::as_str)
        .collect();
    let _ = writeln!(
        s,
        "  coverage: {} of {} operations in the spec exercised{}",
        spec_ops.len() - missed.len(),
        spec_ops.len(),
        if missed.is_empty() {
            String::new()
        } else {
            format!("; not exercised: {}", missed.join(", "))
        }
    );
    s
}

/// Panics with every violation found in these exchanges and log lines.
fn assert_no_violations(market: &str, exchanges: &[Exchange], log: &[(Severity, String)]) {
    let bad: Vec<&Exchange> = exchanges.iter().filter(|e| e.is_violation()).collect();
    let log_errors: Vec<&String> = log
        .iter()
        .filter(|(s, _)| *s == Severity::Error)
        .map(|(_, l)| l)
        .collect();
    if bad.is_empty() && log_errors.is_empty() {
        return;
    }
    let mut msg = format!(
        "the official {market} specs reject {} exchange(s); {} error line(s) in Prism's log\n",
        bad.len(),
        log_errors.len()
    );
    for e in &bad {
        let _ = writeln!(msg, "  {}", e.describe());
    }
    for l in &log_errors {
        let _ = writeln!(msg, "  log: {l}");
    }
    panic!("{msg}");
}

/// The guard bites: Prism rejects a hand-made createOrReplaceInventoryItem without the
/// `Content-Language` header the spec requires (422, never forwarded), replaces a malformed
/// sandbox response (500), and both show up in the recorder and in Prism's log. A conforming
/// hand-made request passes clean. Without these the zero-violation check below could pass by
/// never looking.
async fn negative_controls(c: &EbayContract) {
    let token = c.access_token().await;
    let bearer = format!("Bearer {token}");
    let (mark, log_mark) = (c.inventory.mark(), c.log_mark());
    let writes_before = c.sandbox.ebay().writes().len();

    // 1. Request side: no Content-Language.
    let r = c
        .inventory
        .send(
            "PUT",
            "/sell/inventory/v1/inventory_item/CONTROL-1",
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
            ],
            r#"{"condition":"NEW","product":{"title":"Control"},"availability":{"shipToLocationAvailability":{"quantity":1}}}"#,
        )
        .await;
    assert_eq!(
        r.status,
        422,
        "Prism let a request without Content-Language through: {}",
        r.text()
    );
    // 2. Response side: the sandbox answers one getInventoryItems with a 200 whose body breaks
    //    the InventoryItems schema (`total` must be an integer, `inventoryItems` an array).
    c.sandbox.ebay().faults().add(
        omnistock_sandbox::FaultRule::new(
            "ebay",
            "getInventoryItems",
            omnistock_sandbox::FaultKind::ServerError {
                status: 200,
                body: Some(r#"{"total":"many","inventoryItems":{}}"#.into()),
            },
        )
        .times(1),
    );
    let r = c
        .inventory
        .send(
            "GET",
            "/sell/inventory/v1/inventory_item?limit=5&offset=0",
            &[("Authorization", &bearer)],
            "",
        )
        .await;
    let bad_response_status = r.status;
    // 3. A conforming request passes clean.
    let r = c
        .inventory
        .send(
            "GET",
            "/sell/inventory/v1/inventory_item?limit=5&offset=0",
            &[("Authorization", &bearer)],
            "",
        )
        .await;
    assert_eq!(
        r.status,
        200,
        "a conforming getInventoryItems failed: {}",
        r.text()
    );

    let exchanges = c.inventory.since(mark);
    assert_eq!(exchanges.len(), 3);
    let missing_header = &exchanges[0];
    assert_eq!(
        missing_header.prism_error.as_deref(),
        Some("UNPROCESSABLE_ENTITY")
    );
    assert!(
        missing_header
            .findings
            .iter()
            .any(|f| f.is_error() && f.message.contains("'content-language'")),
        "{}",
        missing_header.describe()
    );
    assert_eq!(
        c.sandbox.ebay().writes().len(),
        writes_before,
        "Prism forwarded the invalid request"
    );
    let bad_response = &exchanges[1];
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
            .any(|f| f.is_error() && f.location == "response.body.total"),
        "{}",
        bad_response.describe()
    );
    assert!(!exchanges[2].is_violation(), "{}", exchanges[2].describe());
    let log = c.log_findings(log_mark);
    let log_errors = log.iter().filter(|(s, _)| *s == Severity::Error).count();
    assert!(
        log.iter()
            .any(|(s, l)| *s == Severity::Error && l.contains("UNPROCESSABLE_ENTITY")),
        "Prism's log does not show the rejected request: {log:#?}"
    );
    println!(
        "negative controls: no Content-Language -> {} {} \"{}\"; schema-breaking response -> {bad_response_status} {} \"{}\"; conforming request -> 200 clean; {log_errors} error line(s) in Prism's log",
        missing_header.status,
        missing_header.prism_error.as_deref().unwrap_or(""),
        missing_header.findings[0].message,
        bad_response.prism_error.as_deref().unwrap_or(""),
        bad_response.findings[0].message,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebay_through_prism() {
    let Some(setup) = prism::setup("ebay_through_prism", "ebay") else {
        return;
    };
    let t0 = Instant::now();
    let c = EbayContract::start(&setup).await;
    println!(
        "Prism started in {:.1} s (inventory, PID {}) and {:.1} s (fulfillment, PID {}), in parallel; ready after {:.1} s",
        c.inventory_prism.startup.as_secs_f64(),
        c.inventory_prism.pid().unwrap_or_default(),
        c.fulfillment_prism.startup.as_secs_f64(),
        c.fulfillment_prism.pid().unwrap_or_default(),
        t0.elapsed().as_secs_f64()
    );
    for spec in [INVENTORY_SPEC, FULFILLMENT_SPEC] {
        for erratum in setup.errata(spec) {
            println!("spec erratum applied by scripts/prism ({spec}): {erratum}");
        }
    }
    negative_controls(&c).await;

    let (inv_mark, ful_mark, log_mark) = (c.inventory.mark(), c.fulfillment.mark(), c.log_mark());
    let sandbox_before = c.sandbox.ebay().request_counts();
    let t_sync = Instant::now();
    let result = sync::full_sync(&c).await;
    let sync_secs = t_sync.elapsed().as_secs_f64();
    let inv = c.inventory.since(inv_mark);
    let ful = c.fulfillment.since(ful_mark);
    let log = c.log_findings(log_mark);
    let all: Vec<Exchange> = inv.iter().chain(&ful).cloned().collect();
    let summary = match result {
        Ok(summary) => summary,
        Err(failure) => {
            // Prism's findings first: they usually are the reason.
            print!("{}", c.coverage(&inv, &ful));
            assert_no_violations("eBay", &all, &log);
            panic!("the sync through Prism failed without a contract violation: {failure}");
        }
    };

    println!(
        "eBay connector through Prism in {sync_secs:.1} s: healthcheck \"{}\"; push_listings batches {:?}; push_stock batches {:?}; {} orders on {} page(s); snapshot of {} items on {} page(s); {} delisted",
        summary.health,
        summary.listing_batches,
        summary.stock_batches,
        summary.orders.0,
        summary.orders.1,
        summary.snapshot.0,
        summary.snapshot.1,
        summary.delisted,
    );
    print!("{}", c.coverage(&inv, &ful));
    let warnings: Vec<String> = all
        .iter()
        .flat_map(|e| e.findings.iter().filter(|f| !f.is_error()))
        .map(|f| format!("{}: {}", f.location, f.message))
        .chain(
            log.iter()
                .filter(|(s, _)| *s == Severity::Warning)
                .map(|(_, l)| l.clone()),
        )
        .collect();
    println!(
        "violations: {} exchange(s), {} log error(s); warnings: {}",
        all.iter().filter(|e| e.is_violation()).count(),
        log.iter().filter(|(s, _)| *s == Severity::Error).count(),
        if warnings.is_empty() {
            "none".to_owned()
        } else {
            warnings.join("; ")
        }
    );
    assert_no_violations("eBay", &all, &log);

    // Nothing went around the guard: every Sell API request the sandbox saw came through Prism
    // (the token endpoint is the one call that goes direct).
    let mut through_prism: BTreeMap<String, u64> = BTreeMap::new();
    for e in &all {
        *through_prism.entry(e.operation.clone()).or_default() += 1;
    }
    let mut reached_sandbox: BTreeMap<String, u64> = BTreeMap::new();
    for (op, n) in c.sandbox.ebay().request_counts() {
        let delta = n - sandbox_before.get(&op).copied().unwrap_or(0);
        if delta > 0 && op != "getToken" {
            reached_sandbox.insert(op, delta);
        }
    }
    assert_eq!(
        reached_sandbox, through_prism,
        "requests per operation: sandbox (left) vs. through Prism (right); a difference means \
         the connector went around the contract guard (e.g. followed an absolute `next` link)"
    );
}

/// Fails with every item a connector did not apply (the contract syncs expect all to land).
fn applied(
    what: &str,
    items: &[String],
    outcomes: &[omnistock_connectors::ItemOutcome],
) -> Result<(), String> {
    ensure!(
        items.len() == outcomes.len(),
        "{what}: {} outcomes for {} items",
        outcomes.len(),
        items.len()
    );
    let bad: Vec<String> = items
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| !matches!(o, omnistock_connectors::ItemOutcome::Applied { .. }))
        .map(|(s, o)| format!("{s}: {o:?}"))
        .collect();
    ensure!(
        bad.is_empty(),
        "{what}: not applied:\n  {}",
        bad.join("\n  ")
    );
    Ok(())
}
