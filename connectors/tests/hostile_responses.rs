//! Hostile marketplace answers (DESIGN §10: "every input from outside … is bounded in size and
//! fuzzed"). A small loopback proxy stands between each connector and the sandbox's fakes: it
//! forwards a request to the fake, then answers with a mutated version of the real answer (wrong
//! types, missing fields, nulls, huge numbers, huge strings, deep nesting, unicode garbage,
//! truncation, flipped bytes, random bytes, echoed credentials), wrong or absent content types,
//! odd statuses and garbage `Retry-After`/rate headers; or, in the named cases, with bodies larger
//! than the connector's limit, bodies that never end, no answer at all, gzip bombs and paging
//! cursors that never end.
//!
//! Every connector (eBay, Amazon, Meta, Shopify with a static token and with client credentials,
//! WooCommerce, Vendure) is driven through every operation of [`Connector`]: push_stock,
//! push_listings, delist, fetch_orders, snapshot_page, healthcheck, the bulk path where it has one,
//! and (through 401s and fresh connectors) the token fetch and refresh. Each call must:
//! - not panic;
//! - return `Ok` or a classified `Err`, with one outcome per item and bounded messages;
//! - return promptly: within [`CALL_DEADLINE`], unless the connector is parked on a pause the
//!   server asked for (a 429's `Retry-After`, honoured up to a day), which the stats show;
//! - never repeat a credential it sent (an echoing server) in an error or an outcome;
//! - refuse an oversized body without buffering it (the server sees the client hang up early);
//! - make a bounded number of requests (no internal paging loop follows a cursor forever).
//!
//! After the hostile answers, each connector must work again once the server behaves.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use omnistock_connectors::amazon::{AmazonConfig, AmazonConnector, AmazonUsagePlan};
use omnistock_connectors::common::http::MAX_BODY_BYTES;
use omnistock_connectors::common::{Backoff, Limits, Secret};
use omnistock_connectors::ebay::{EbayConfig, EbayConnector, EbayPolicies};
use omnistock_connectors::meta::{MetaConfig, MetaConnector};
use omnistock_connectors::shopify::{ShopifyAuth, ShopifyConfig, ShopifyConnector};
use omnistock_connectors::vendure::{VendureConfig, VendureConnector};
use omnistock_connectors::woocommerce::{WooCommerceConfig, WooCommerceConnector};
use omnistock_connectors::{
    BulkItem, BulkStatus, Connector, ConnectorError, Currency, ItemOutcome, ListingUpdate, Money,
    Sku, StockUpdate,
};
use omnistock_sandbox::{
    AmazonOptions, AmazonSeedListing, EbayOptions, MetaHandle, MetaOptions, MetaSeedListing,
    OrderLine, Sandbox, SandboxOptions, SeedListing, ShopifyOptions, ShopifySeedListing,
    VendureOptions, VendureSeedListing, WooOptions, WooSeedListing,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest a single connector call may take under hostile answers (its own request timeout is
/// [`REQUEST_TIMEOUT`]; a call makes a few requests, retries once after a 401, waits out short
/// THROTTLED answers).
const CALL_DEADLINE: Duration = Duration::from_secs(45);
/// The connectors' whole-request deadline in this suite.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// A pause at least this long, ordered by the server, counts as "parked as asked".
const PARKED: Duration = Duration::from_secs(20);
/// Most requests one connector call may make (internal paging and retries included).
const MAX_REQUESTS_PER_CALL: u64 = 400;
/// Longest error or outcome message accepted (a 2 MiB body must not end up in a log line).
const MAX_MESSAGE: usize = 4096;
/// Amazon's cap on a feed document (`amazon::client::MAX_DOCUMENT_BYTES`, crate-private).
const MAX_DOCUMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Most bytes the proxy streams in an oversized answer before giving up on the client.
const STREAM_CAP: u64 = 3 * MAX_DOCUMENT_BYTES;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- the hostile answers ----------------------------------------------------------------------

/// Numbers no marketplace sends, as JSON literals.
const NUMBERS: &[&str] = &[
    "1e308",
    "-1e308",
    "1E400",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "4294967296",
    "-2147483649",
    "-1",
    "-5",
    "0",
    "-0",
    "1.5",
    "1e-400",
    "123456789012345678901234567890",
];

/// Strings no marketplace should send.
const STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\u{202e}evil\u{202d}",
    "\u{feff}",
    "𝕏𝕐𝕫🙂",
    "\u{fffd}\u{fffd}",
    "../../etc/passwd",
    "SKU/with/slash?x=1#f",
    "'; DROP TABLE variants; --",
    "null",
    "NaN",
    "-1",
    "1e308",
    "2026-13-45T25:61:61Z",
    "0000-00-00T00:00:00Z",
    "gid://shopify/ProductVariant/-1",
    "gid://shopify/Location/",
    "\\u0000",
    "%00%ff",
];

/// Literal bodies with a wrong shape.
const LITERALS: &[&str] = &[
    "null",
    "[]",
    "{}",
    "\"a string\"",
    "42",
    "true",
    "{\"data\":null}",
    "{\"data\":{}}",
    "{\"errors\":\"x\"}",
    "{\"errors\":[{}]}",
    "{\"errors\":[null,1,\"x\"]}",
    "{\"error\":{}}",
    "{\"errors\":[{\"extensions\":{\"code\":\"THROTTLED\"}}],\"extensions\":{\"cost\":{\"requestedQueryCost\":1e308,\"throttleStatus\":{\"maximumAvailable\":1e308,\"currentlyAvailable\":-1e308,\"restoreRate\":0}}}}",
    "{\"extensions\":{\"cost\":{\"requestedQueryCost\":-1,\"throttleStatus\":{\"maximumAvailable\":\"x\",\"currentlyAvailable\":null,\"restoreRate\":-5}}},\"data\":{}}",
    "<!DOCTYPE html><html><body>Just a moment...</body></html>",
    "\u{feff}{}",
    "{\"a\":1}{\"b\":2}",
    "{\"a\":1,\"a\":2}",
    "{\"access_token\":\"\",\"expires_in\":-1}",
    "{\"access_token\":\"x\",\"expires_in\":18446744073709551616}",
    "{\"access_token\":null}",
];

/// HTTP statuses an answer may carry.
const STATUSES: &[u16] = &[
    200, 201, 202, 204, 207, 301, 302, 304, 307, 400, 401, 403, 404, 405, 409, 410, 413, 422, 423,
    429, 430, 500, 502, 503, 504, 599,
];

/// Header values that parse as nothing sensible.
const HEADER_VALUES: &[&str] = &[
    "-1",
    "0",
    "1.5",
    "soon",
    "",
    "NaN",
    "inf",
    "1e308",
    "1e-300",
    "99999999999999999999999",
    "18446744073709551616",
    "4294967296",
    "Mon, 01 Jan 1900 00:00:00 GMT",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "Thu, 01 Jan 2099 00:00:00 GMT",
    "{\"1\":[{\"call_count\":1e308,\"total_time\":-5,\"estimated_time_to_regain_access\":-1}]}",
    "{",
    "\u{e9}t\u{e9}",
];

/// Headers the connectors read.
const HEADER_NAMES: &[&str] = &[
    "retry-after",
    "retry-after",
    "x-amzn-ratelimit-limit",
    "x-wp-totalpages",
    "x-wp-total",
    "x-business-use-case-usage",
    "x-app-usage",
    "x-ad-account-usage",
    "vendure-auth-token",
    "x-shopify-shop-api-call-limit",
    "link",
    "location",
    "content-encoding",
];

/// A change to one JSON node.
#[derive(Debug, Clone)]
enum JsonMut {
    Null,
    Bool,
    Obj,
    Arr,
    Remove,
    Str(String),
    /// A 2 MiB string.
    Huge,
    /// A raw number literal.
    Num(&'static str),
    /// 10,000 nested arrays.
    Nest,
    /// The node repeated this many times (in its array, or as an array).
    Repeat(usize),
}

/// What happens to the body.
#[derive(Debug, Clone)]
enum BodyMut {
    Keep,
    Empty,
    /// Cut at this per-mille of the length.
    Truncate(u16),
    Flip(Vec<(usize, u8)>),
    Json(Vec<(usize, JsonMut)>),
    /// Every number of the body replaced by this literal.
    AllNumbers(&'static str),
    /// Every string of the body replaced by this one.
    AllStrings(&'static str),
    Random(Vec<u8>),
    Literal(&'static str),
    /// The request's headers, query and body, in every field a connector reads a message from
    /// (`json`) or as plain text.
    Echo {
        json: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum ContentType {
    Keep,
    Absent,
    Html,
    Garbage,
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Length,
    Chunked,
    /// No length: the body ends when the connection closes.
    Close,
    /// `content-length` larger than the body, then the connection closes.
    Short,
}

/// One hostile answer.
#[derive(Debug, Clone)]
struct Hostile {
    status: Option<u16>,
    body: BodyMut,
    content_type: ContentType,
    headers: Vec<(&'static str, &'static str)>,
    framing: Framing,
}

impl Hostile {
    fn body(body: BodyMut) -> Hostile {
        Hostile {
            status: None,
            body,
            content_type: ContentType::Keep,
            headers: Vec::new(),
            framing: Framing::Length,
        }
    }

    fn status(mut self, status: u16) -> Hostile {
        self.status = Some(status);
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Hostile {
        self.headers.push((name, value));
        self
    }
}

/// What the proxy does with one request of a random case.
#[derive(Debug, Clone)]
enum Step {
    Pass,
    Hostile(Hostile),
}

/// Answers of the named cases that are not a mutation of the real one.
#[derive(Debug, Clone)]
enum Special {
    Reply(Hostile),
    /// A chunked body streamed until the client hangs up (or [`STREAM_CAP`]).
    Oversize {
        declared: bool,
    },
    /// Headers, then a body that trickles forever.
    Endless,
    /// The request is read and never answered.
    Silent,
    /// A gzip body that inflates to 80 MiB of zeros (Amazon's processing report download).
    GzipBomb,
    /// Every page says there is a next one, with the same cursor.
    RepeatCursor,
}

fn json_mut() -> impl Strategy<Value = JsonMut> {
    prop_oneof![
        1 => Just(JsonMut::Null),
        1 => Just(JsonMut::Bool),
        1 => Just(JsonMut::Obj),
        1 => Just(JsonMut::Arr),
        2 => Just(JsonMut::Remove),
        1 => Just(JsonMut::Huge),
        1 => Just(JsonMut::Nest),
        3 => prop::sample::select(NUMBERS).prop_map(JsonMut::Num),
        2 => prop::sample::select(STRINGS).prop_map(|s| JsonMut::Str(s.to_owned())),
        1 => "\\PC{0,24}".prop_map(JsonMut::Str),
        1 => (2usize..3000).prop_map(JsonMut::Repeat),
    ]
}

fn body_mut() -> impl Strategy<Value = BodyMut> {
    prop_oneof![
        6 => prop::collection::vec((any::<usize>(), json_mut()), 1..4).prop_map(BodyMut::Json),
        1 => Just(BodyMut::Keep),
        1 => Just(BodyMut::Empty),
        1 => (0u16..1000).prop_map(BodyMut::Truncate),
        1 => prop::collection::vec((any::<usize>(), any::<u8>()), 1..8).prop_map(BodyMut::Flip),
        1 => prop::sample::select(NUMBERS).prop_map(BodyMut::AllNumbers),
        1 => prop::sample::select(STRINGS).prop_map(BodyMut::AllStrings),
        1 => prop::collection::vec(any::<u8>(), 0..1024).prop_map(BodyMut::Random),
        1 => prop::sample::select(LITERALS).prop_map(BodyMut::Literal),
        1 => any::<bool>().prop_map(|json| BodyMut::Echo { json }),
    ]
}

fn hostile() -> impl Strategy<Value = Hostile> {
    (
        prop_oneof![3 => Just(None), 2 => prop::sample::select(STATUSES).prop_map(Some)],
        body_mut(),
        prop_oneof![
            6 => Just(ContentType::Keep),
            1 => Just(ContentType::Absent),
            1 => Just(ContentType::Html),
            1 => Just(ContentType::Garbage),
        ],
        prop::collection::vec(
            (
                prop::sample::select(HEADER_NAMES),
                prop::sample::select(HEADER_VALUES),
            ),
            0..3,
        ),
        prop_oneof![
            6 => Just(Framing::Length),
            1 => Just(Framing::Chunked),
            1 => Just(Framing::Close),
            1 => Just(Framing::Short),
        ],
    )
        .prop_map(|(status, body, content_type, headers, framing)| Hostile {
            status,
            body,
            content_type,
            headers,
            framing,
        })
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![1 => Just(Step::Pass), 2 => hostile().prop_map(Step::Hostile)],
        1..6,
    )
}

// ---- JSON surgery -----------------------------------------------------------------------------

/// The 3 MiB string of [`JsonMut::Huge`].
fn huge_string() -> String {
    "\u{e9}x".repeat(1 << 20)
}

/// JSON pointers of every node, root first, depth first.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(c, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn split_pointer(p: &str) -> (&str, String) {
    let (parent, last) = p.rsplit_once('/').unwrap_or(("", p));
    (parent, last.replace("~1", "/").replace("~0", "~"))
}

/// Applies JSON mutations; raw literals (numbers JSON values cannot hold, deep nesting) go in as
/// markers replaced after serialization.
fn mutate_json(mut v: Value, muts: &[(usize, JsonMut)]) -> Vec<u8> {
    let mut raws: Vec<String> = Vec::new();
    let raw = |text: String, raws: &mut Vec<String>| {
        raws.push(text);
        Value::String(format!("__HOSTILE_RAW_{}__", raws.len() - 1))
    };
    for (pick, m) in muts {
        let mut all = Vec::new();
        pointers(&v, String::new(), &mut all);
        let p = all[pick % all.len()].clone();
        let replacement = match m {
            JsonMut::Null => Some(Value::Null),
            JsonMut::Bool => Some(Value::Bool(pick % 2 == 0)),
            JsonMut::Obj => Some(json!({})),
            JsonMut::Arr => Some(json!([])),
            JsonMut::Str(s) => Some(Value::String(s.clone())),
            JsonMut::Huge => Some(Value::String(huge_string())),
            JsonMut::Num(n) => Some(raw((*n).to_owned(), &mut raws)),
            JsonMut::Nest => Some(raw(
                format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
                &mut raws,
            )),
            JsonMut::Repeat(n) => {
                let node = v.pointer(&p).cloned().unwrap_or(Value::Null);
                let size = node.to_string().len().max(1);
                let n = (*n).min((4 << 20) / size).max(2);
                let (parent, last) = split_pointer(&p);
                if let Some(Value::Array(a)) = v.pointer_mut(parent)
                    && let Ok(i) = last.parse::<usize>()
                    && i < a.len()
                {
                    for _ in 1..n {
                        a.insert(i, node.clone());
                    }
                    None
                } else {
                    Some(Value::Array(vec![node; n]))
                }
            }
            JsonMut::Remove => {
                if p.is_empty() {
                    Some(Value::Null)
                } else {
                    let (parent, last) = split_pointer(&p);
                    match v.pointer_mut(parent) {
                        Some(Value::Object(m)) => {
                            m.remove(&last);
                        }
                        Some(Value::Array(a)) => {
                            if let Ok(i) = last.parse::<usize>()
                                && i < a.len()
                            {
                                a.remove(i);
                            }
                        }
                        _ => {}
                    }
                    None
                }
            }
        };
        if let Some(r) = replacement {
            if p.is_empty() {
                v = r;
            } else if let Some(slot) = v.pointer_mut(&p) {
                *slot = r;
            }
        }
    }
    let mut text = v.to_string();
    for (i, r) in raws.iter().enumerate() {
        text = text.replace(&format!("\"__HOSTILE_RAW_{i}__\""), r);
    }
    text.into_bytes()
}

fn map_leaves(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match v {
        Value::Object(m) => m.values_mut().for_each(|c| map_leaves(c, f)),
        Value::Array(a) => a.iter_mut().for_each(|c| map_leaves(c, f)),
        leaf => f(leaf),
    }
}

/// Every page claims a next one, with the same cursor (Shopify `pageInfo`, Amazon `nextToken`,
/// Meta `paging`, eBay `next`, Vendure `totalItems`).
fn endless_pages(v: &mut Value, me: &str, target: &str) {
    match v {
        Value::Object(m) => {
            for (k, c) in m.iter_mut() {
                match (k.as_str(), &*c) {
                    ("hasNextPage", _) => *c = Value::Bool(true),
                    ("endCursor" | "nextToken" | "next_token", _) => {
                        *c = Value::String("LOOP".into());
                    }
                    ("totalItems" | "total", Value::Number(_)) => *c = json!(1_000_000_000),
                    ("next", Value::String(_)) | ("next", Value::Null) => {
                        *c = Value::String(format!("{me}{target}"));
                    }
                    ("paging", _) => {
                        *c = json!({"cursors": {"before": "B", "after": "LOOP"}, "next": format!("{me}{target}")});
                    }
                    _ => endless_pages(c, me, target),
                }
            }
            if m.contains_key("nodes") && !m.contains_key("pageInfo") {
                m.insert(
                    "pageInfo".into(),
                    json!({"hasNextPage": true, "endCursor": "LOOP"}),
                );
            }
            if m.contains_key("orders") && m.contains_key("pagination") {
                m.insert("pagination".into(), json!({"nextToken": "LOOP"}));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| endless_pages(c, me, target)),
        _ => {}
    }
}

// ---- the proxy --------------------------------------------------------------------------------

/// A request as the proxy read it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// Response headers: names and raw values.
type Headers = Vec<(String, Vec<u8>)>;

/// An answer as the fake gave it.
#[derive(Debug, Clone)]
struct Upstream {
    status: u16,
    headers: Headers,
    body: Vec<u8>,
}

enum Mode {
    Pass,
    Steps {
        steps: Vec<Step>,
        next: usize,
    },
    Named {
        filter: fn(&Req) -> bool,
        special: Special,
    },
}

struct ProxyState {
    upstream: String,
    me: Mutex<String>,
    client: reqwest::Client,
    mode: Mutex<Mode>,
    requests: AtomicU64,
    /// Bytes written by the last oversized answer, and whether the client hung up on it.
    streamed: AtomicU64,
    hung_up: AtomicBool,
    /// Credentials the connector sent (headers, forms, JSON, query), to look for in its output.
    sent_secrets: Mutex<BTreeSet<String>>,
    /// Strings the proxy made up (a token it invented comes back in the next request).
    injected: Mutex<BTreeSet<String>>,
    /// What was served lately, for failure messages.
    served: Mutex<Vec<String>>,
}

struct Proxy {
    base: String,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        omnistock_connectors::common::http::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(ProxyState {
            upstream: upstream.to_owned(),
            me: Mutex::new(base.clone()),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            mode: Mutex::new(Mode::Pass),
            requests: AtomicU64::new(0),
            streamed: AtomicU64::new(0),
            hung_up: AtomicBool::new(false),
            sent_secrets: Mutex::new(BTreeSet::new()),
            injected: Mutex::new(BTreeSet::new()),
            served: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                let s = Arc::clone(&s);
                conns.spawn(async move { serve(s, sock).await });
                while conns.try_join_next().is_some() {}
            }
        });
        Proxy { base, state, task }
    }

    fn set(&self, mode: Mode) {
        *lock(&self.state.mode) = mode;
        lock(&self.state.served).clear();
        self.state.streamed.store(0, Ordering::SeqCst);
        self.state.hung_up.store(false, Ordering::SeqCst);
    }

    fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn served(&self) -> String {
        let s = lock(&self.state.served);
        let from = s.len().saturating_sub(12);
        s[from..].join("\n    ")
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Decodes a complete chunked body, or `None` while incomplete.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line = find(b, b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

async fn read_request(sock: &mut TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut rest = buf[head_end + 4..].to_vec();
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            if let Some(b) = dechunk(&rest) {
                break b;
            }
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
    } else {
        let len: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < len {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    };
    Some(Req {
        method,
        target,
        headers,
        body,
    })
}

/// Remembers every credential-looking value of a request.
fn note_secrets(state: &ProxyState, req: &Req) {
    use base64::Engine as _;
    let mut found = Vec::new();
    for (k, v) in &req.headers {
        match k.as_str() {
            "authorization" => {
                found.push(v.clone());
                if let Some((scheme, cred)) = v.split_once(' ') {
                    found.push(cred.to_owned());
                    if scheme.eq_ignore_ascii_case("basic")
                        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(cred)
                    {
                        let text = String::from_utf8_lossy(&raw).into_owned();
                        if let Some((user, pass)) = text.split_once(':') {
                            found.push(user.to_owned());
                            found.push(pass.to_owned());
                        }
                        found.push(text);
                    }
                }
            }
            "x-shopify-access-token" | "x-amz-access-token" => found.push(v.clone()),
            _ => {}
        }
    }
    let form_like = |text: &str, found: &mut Vec<String>| {
        for pair in text.split('&') {
            if let Some((k, v)) = pair.split_once('=')
                && matches!(
                    k,
                    "client_secret"
                        | "refresh_token"
                        | "password"
                        | "appsecret_proof"
                        | "access_token"
                )
            {
                found.push(v.to_owned());
            }
        }
    };
    if let Some((_, q)) = req.target.split_once('?') {
        form_like(q, &mut found);
    }
    let body = String::from_utf8_lossy(&req.body);
    if req
        .header("content-type")
        .is_some_and(|c| c.contains("x-www-form-urlencoded"))
    {
        form_like(&body, &mut found);
    }
    if let Ok(v) = serde_json::from_slice::<Value>(&req.body)
        && let Some(p) = v.pointer("/variables/password").and_then(Value::as_str)
    {
        found.push(p.to_owned());
    }
    let mut set = lock(&state.sent_secrets);
    for f in found {
        // Short values (a client id "ck") would match by chance; real secrets are long.
        if f.len() >= 8 && f != "sandbox-client" {
            set.insert(f);
        }
    }
}

async fn forward(state: &ProxyState, req: &Req) -> Upstream {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut b = state
        .client
        .request(method, format!("{}{}", state.upstream, req.target));
    for (k, v) in &req.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding" | "accept-encoding"
        ) {
            b = b.header(k.as_str(), v.as_str());
        }
    }
    let me = lock(&state.me).clone();
    match b.body(req.body.clone()).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let headers = r
                .headers()
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "content-length" | "transfer-encoding" | "connection" | "date"
                    )
                })
                .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect();
            let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            // Presigned URLs (Amazon documents) point at the fake: send them through us too.
            let body = replace_bytes(&body, state.upstream.as_bytes(), me.as_bytes());
            Upstream {
                status,
                headers,
                body,
            }
        }
        Err(_) => Upstream {
            status: 502,
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            body: b"bad gateway".to_vec(),
        },
    }
}

fn echo_text(req: &Req) -> String {
    let mut e = format!("echo {} {} ", req.method, req.target);
    for (k, v) in &req.headers {
        let _ = write!(e, "{k}: {v}; ");
    }
    e.push_str(&String::from_utf8_lossy(&req.body));
    e
}

/// The hostile version of `up`.
fn hostile_reply(h: &Hostile, up: &Upstream, req: &Req) -> (u16, Headers, Vec<u8>) {
    let status = h.status.unwrap_or(up.status);
    let mut headers: Vec<(String, Vec<u8>)> = up
        .headers
        .iter()
        .filter(|(k, _)| k != "content-type" || matches!(h.content_type, ContentType::Keep))
        .cloned()
        .collect();
    match h.content_type {
        ContentType::Keep | ContentType::Absent => {}
        ContentType::Html => headers.push(("content-type".into(), b"text/html".to_vec())),
        ContentType::Garbage => headers.push(("content-type".into(), b"\x01;;=\"".to_vec())),
    }
    for (k, v) in &h.headers {
        headers.retain(|(name, _)| name != k);
        headers.push(((*k).to_owned(), v.as_bytes().to_vec()));
    }
    let parsed = || serde_json::from_slice::<Value>(&up.body).ok();
    let body = match &h.body {
        BodyMut::Keep => up.body.clone(),
        BodyMut::Empty => Vec::new(),
        BodyMut::Truncate(per_mille) => {
            let cut = up.body.len() * usize::from(*per_mille) / 1000;
            up.body[..cut].to_vec()
        }
        BodyMut::Flip(flips) => {
            let mut b = up.body.clone();
            if !b.is_empty() {
                for (i, x) in flips {
                    let len = b.len();
                    b[i % len] ^= x | 1;
                }
            }
            b
        }
        BodyMut::Json(muts) => match parsed() {
            Some(v) => mutate_json(v, muts),
            None => up.body[..up.body.len() / 2].to_vec(),
        },
        BodyMut::AllNumbers(n) => match parsed() {
            Some(mut v) => {
                map_leaves(&mut v, &mut |leaf| {
                    if leaf.is_number() {
                        *leaf = Value::String("__HOSTILE_NUM__".into());
                    }
                });
                v.to_string().replace("\"__HOSTILE_NUM__\"", n).into_bytes()
            }
            None => n.as_bytes().to_vec(),
        },
        BodyMut::AllStrings(s) => match parsed() {
            Some(mut v) => {
                map_leaves(&mut v, &mut |leaf| {
                    if leaf.is_string() {
                        *leaf = Value::String((*s).to_owned());
                    }
                });
                v.to_string().into_bytes()
            }
            None => s.as_bytes().to_vec(),
        },
        BodyMut::Random(b) => b.clone(),
        BodyMut::Literal(l) => l.as_bytes().to_vec(),
        BodyMut::Echo { json: false } => echo_text(req).into_bytes(),
        BodyMut::Echo { json: true } => {
            let e = echo_text(req);
            json!({
                "error": {"message": e, "code": 190, "type": "OAuthException", "error_user_msg": e},
                "error_description": e,
                "errors": [{"message": e, "code": "BAD", "errorId": 25001, "longMessage": e,
                            "details": e, "extensions": {"code": "BAD"}}],
                "message": e,
                "code": "woocommerce_rest_error",
                "data": null,
            })
            .to_string()
            .into_bytes()
        }
    };
    (status, headers, body)
}

async fn write_head(
    sock: &mut TcpStream,
    status: u16,
    headers: &[(String, Vec<u8>)],
    extra: &str,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} Hostile\r\n").into_bytes();
    for (k, v) in headers {
        head.extend_from_slice(k.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(extra.as_bytes());
    head.extend_from_slice(b"connection: close\r\n\r\n");
    sock.write_all(&head).await
}

async fn write_reply(
    sock: &mut TcpStream,
    status: u16,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    framing: Framing,
) -> std::io::Result<()> {
    match framing {
        Framing::Length => {
            write_head(
                sock,
                status,
                headers,
                &format!("content-length: {}\r\n", body.len()),
            )
            .await?;
            sock.write_all(body).await?;
        }
        Framing::Short => {
            let len = body.len() + 100;
            write_head(sock, status, headers, &format!("content-length: {len}\r\n")).await?;
            sock.write_all(body).await?;
        }
        Framing::Close => {
            write_head(sock, status, headers, "").await?;
            sock.write_all(body).await?;
        }
        Framing::Chunked => {
            write_head(sock, status, headers, "transfer-encoding: chunked\r\n").await?;
            for c in body.chunks(16 * 1024) {
                sock.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                    .await?;
                sock.write_all(c).await?;
                sock.write_all(b"\r\n").await?;
            }
            sock.write_all(b"0\r\n\r\n").await?;
        }
    }
    sock.flush().await?;
    sock.shutdown().await
}

fn json_headers() -> Vec<(String, Vec<u8>)> {
    vec![("content-type".into(), b"application/json".to_vec())]
}

/// 80 MiB of zeros, gzipped (about 80 KiB).
fn gzip_bomb() -> &'static [u8] {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..80 {
            gz.write_all(&zeros).expect("gzip");
        }
        gz.finish().expect("gzip")
    })
}

async fn serve(state: Arc<ProxyState>, mut sock: TcpStream) {
    let Some(req) = read_request(&mut sock).await else {
        return;
    };
    state.requests.fetch_add(1, Ordering::SeqCst);
    note_secrets(&state, &req);
    enum Plan {
        Pass,
        Hostile(Hostile),
        Special(Special),
    }
    let plan = match &mut *lock(&state.mode) {
        Mode::Pass => Plan::Pass,
        Mode::Steps { steps, next } => {
            let s = steps[*next % steps.len()].clone();
            *next += 1;
            match s {
                Step::Pass => Plan::Pass,
                Step::Hostile(h) => Plan::Hostile(h),
            }
        }
        Mode::Named { filter, special } => {
            if filter(&req) {
                Plan::Special(special.clone())
            } else {
                Plan::Pass
            }
        }
    };
    if let Plan::Hostile(h) | Plan::Special(Special::Reply(h)) = &plan {
        let mut injected = lock(&state.injected);
        for (_, v) in &h.headers {
            injected.insert((*v).to_owned());
        }
        match &h.body {
            BodyMut::Json(muts) => {
                for (_, m) in muts {
                    match m {
                        JsonMut::Str(s) => {
                            injected.insert(s.clone());
                        }
                        JsonMut::Huge => {
                            injected.insert(huge_string());
                        }
                        _ => {}
                    }
                }
            }
            BodyMut::AllStrings(s) | BodyMut::Literal(s) => {
                injected.insert((*s).to_owned());
            }
            _ => {}
        }
    }
    let what = match &plan {
        Plan::Pass => "pass".to_owned(),
        Plan::Hostile(h) => format!("{h:?}"),
        Plan::Special(s) => format!("{s:?}"),
    };
    let note = |line: String| lock(&state.served).push(line);
    let line = format!("{} {} -> {}", req.method, req.target, what);
    let line: String = line.chars().take(400).collect();
    note(line);
    let me = lock(&state.me).clone();
    let _ = match plan {
        Plan::Pass => {
            let up = forward(&state, &req).await;
            write_reply(&mut sock, up.status, &up.headers, &up.body, Framing::Length).await
        }
        Plan::Hostile(h) => {
            let up = forward(&state, &req).await;
            let (status, headers, body) = hostile_reply(&h, &up, &req);
            write_reply(&mut sock, status, &headers, &body, h.framing).await
        }
        Plan::Special(Special::Reply(h)) => {
            let up = forward(&state, &req).await;
            let (status, headers, body) = hostile_reply(&h, &up, &req);
            write_reply(&mut sock, status, &headers, &body, h.framing).await
        }
        Plan::Special(Special::RepeatCursor) => {
            let mut up = forward(&state, &req).await;
            if let Ok(mut v) = serde_json::from_slice::<Value>(&up.body) {
                endless_pages(&mut v, &me, &req.target);
                up.body = v.to_string().into_bytes();
            }
            up.headers
                .retain(|(k, _)| k != "x-wp-totalpages" && k != "x-wp-total");
            up.headers
                .push(("x-wp-totalpages".into(), b"1000000000".to_vec()));
            up.headers
                .push(("x-wp-total".into(), b"1000000000".to_vec()));
            write_reply(&mut sock, up.status, &up.headers, &up.body, Framing::Length).await
        }
        Plan::Special(Special::GzipBomb) => {
            let headers = vec![(
                "content-type".to_owned(),
                b"application/octet-stream".to_vec(),
            )];
            write_reply(&mut sock, 200, &headers, gzip_bomb(), Framing::Length).await
        }
        Plan::Special(Special::Oversize { declared }) => {
            let extra = if declared {
                format!("content-length: {STREAM_CAP}\r\n")
            } else {
                "transfer-encoding: chunked\r\n".to_owned()
            };
            let r = async {
                write_head(&mut sock, 200, &json_headers(), &extra).await?;
                let piece = "[1,2,3,4,5,6,7,8,9],".repeat(3277);
                let piece = piece.as_bytes();
                let mut sent = 0u64;
                if !declared {
                    sock.write_all(b"1\r\n[\r\n").await?;
                }
                while sent < STREAM_CAP - piece.len() as u64 {
                    if declared {
                        sock.write_all(piece).await?;
                    } else {
                        sock.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                            .await?;
                        sock.write_all(piece).await?;
                        sock.write_all(b"\r\n").await?;
                    }
                    sent += piece.len() as u64;
                    state.streamed.fetch_max(sent, Ordering::SeqCst);
                }
                Ok::<(), std::io::Error>(())
            }
            .await;
            if r.is_err() {
                state.hung_up.store(true, Ordering::SeqCst);
            }
            r
        }
        Plan::Special(Special::Endless) => {
            let r = async {
                write_head(
                    &mut sock,
                    200,
                    &json_headers(),
                    "transfer-encoding: chunked\r\n",
                )
                .await?;
                sock.write_all(b"1\r\n[\r\n").await?;
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    sock.write_all(b"2\r\n1,\r\n").await?;
                }
            }
            .await;
            state.hung_up.store(true, Ordering::SeqCst);
            r
        }
        Plan::Special(Special::Silent) => {
            // Hold the connection open, say nothing, until the client gives up.
            let mut b = [0u8; 1];
            let _ = sock.read(&mut b).await;
            state.hung_up.store(true, Ordering::SeqCst);
            Ok(())
        }
    };
}

// ---- the connectors ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ebay,
    Amazon,
    Meta,
    Shopify,
    ShopifyClientCredentials,
    Woo,
    Vendure,
}

const KINDS: [Kind; 7] = [
    Kind::Ebay,
    Kind::Amazon,
    Kind::Meta,
    Kind::Shopify,
    Kind::ShopifyClientCredentials,
    Kind::Woo,
    Kind::Vendure,
];

fn limits(base: Limits) -> Limits {
    Limits {
        timeout: REQUEST_TIMEOUT,
        connect_timeout: Duration::from_secs(1),
        rate_per_sec: 10_000.0,
        burst: 1_000,
        retry: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
        throttle_pause: Duration::from_millis(100),
        ..base
    }
}

const SEEDED: [&str; 3] = ["HOST-A", "HOST-B", "HOST-C"];

/// One sandbox with every fake seeded with listings and an order.
async fn sandbox() -> Sandbox {
    let sb = Sandbox::start(SandboxOptions {
        port: 0,
        ebay: EbayOptions {
            listings: SEEDED
                .iter()
                .map(|s| SeedListing::new(*s, 5, "10.00"))
                .collect(),
            ..EbayOptions::unlimited()
        },
        amazon: AmazonOptions {
            listings: SEEDED
                .iter()
                .map(|s| AmazonSeedListing::new(*s, 5, "10.00"))
                .collect(),
            feed_processing: Duration::from_millis(200),
            ..AmazonOptions::unlimited()
        },
        meta: MetaOptions {
            listings: SEEDED
                .iter()
                .map(|s| MetaSeedListing::new(*s, 5, "10.00"))
                .collect(),
            batch_processing: Duration::from_millis(50),
            ..MetaOptions::unlimited()
        },
        shopify: ShopifyOptions {
            listings: SEEDED
                .iter()
                .map(|s| ShopifySeedListing::new(*s, 5, "10.00"))
                .collect(),
            ..ShopifyOptions::unlimited()
        },
        woo: WooOptions {
            listings: SEEDED
                .iter()
                .map(|s| WooSeedListing::new(*s, 5, "10.00"))
                .collect(),
            ..WooOptions::unlimited()
        },
        vendure: VendureOptions {
            listings: SEEDED
                .iter()
                .map(|s| VendureSeedListing::new(*s, 5, "10.00"))
                .collect(),
            ..VendureOptions::default()
        },
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let line = [OrderLine::new(SEEDED[0], 1)];
    sb.ebay().place_order(&line).expect("ebay order");
    sb.amazon().place_order(&line).expect("amazon order");
    sb.meta().place_order(&line).expect("meta order");
    sb.shopify().place_order(&line).expect("shopify order");
    sb.woo().place_order(&line).expect("woo order");
    sb.vendure().place_order(&line).expect("vendure order");
    sb
}

/// The connector of `kind`, built as its own tests build it, pointed at `base` (the proxy).
fn build(kind: Kind, sb: &Sandbox, base: &str) -> Arc<dyn Connector> {
    let up = sb.base_url();
    match kind {
        Kind::Ebay => {
            let c = sb.ebay().credentials();
            Arc::new(
                EbayConnector::new(EbayConfig {
                    endpoint: format!("{base}/ebay"),
                    fulfillment_endpoint: None,
                    token_endpoint: format!("{base}/ebay/identity/v1/oauth2/token"),
                    client_id: c.client_id,
                    client_secret: Secret::new(c.client_secret),
                    refresh_token: Secret::new(c.refresh_token),
                    scopes: EbayConfig::default_scopes(),
                    marketplace_id: "EBAY_US".into(),
                    merchant_location_key: "main".into(),
                    policies: EbayPolicies {
                        fulfillment: "6196932000".into(),
                        payment: "6196933000".into(),
                        return_policy: "6196934000".into(),
                    },
                    category_id: Some("30120".into()),
                    content_language: "en-US".into(),
                    withdraw_at_zero: false,
                    limits: limits(EbayConnector::DEFAULT_LIMITS),
                })
                .expect("ebay connector"),
            )
        }
        Kind::Amazon => {
            let a = sb.amazon();
            let c = a.credentials();
            Arc::new(
                AmazonConnector::new(AmazonConfig {
                    endpoint: format!("{base}/amazon"),
                    feeds_endpoint: None,
                    orders_endpoint: None,
                    token_endpoint: format!("{base}/amazon/auth/o2/token"),
                    seller_id: a.seller_id(),
                    marketplace_ids: vec![a.marketplace_id()],
                    client_id: c.client_id,
                    client_secret: Secret::new(c.client_secret),
                    refresh_token: Secret::new(c.refresh_token),
                    product_type: AmazonConfig::DEFAULT_PRODUCT_TYPE.into(),
                    product_type_rules: Vec::new(),
                    condition_type: AmazonConfig::DEFAULT_CONDITION_TYPE.into(),
                    language_tag: AmazonConfig::DEFAULT_LANGUAGE_TAG.into(),
                    feed_processing_estimate: Duration::from_millis(300),
                    usage_plan: AmazonUsagePlan::Custom {
                        rate_per_sec: 10_000.0,
                        burst: 1_000,
                    },
                    limits: limits(AmazonConnector::DEFAULT_LIMITS),
                })
                .expect("amazon connector"),
            )
        }
        Kind::Meta => {
            let c = sb.meta().credentials();
            let mut cfg = MetaConfig::new(
                MetaHandle::endpoint(base),
                c.catalog_id,
                Secret::new(c.access_token),
                Secret::new(c.app_secret),
                limits(MetaConnector::DEFAULT_LIMITS),
            );
            cfg.commerce_account_id = Some(c.commerce_account_id);
            cfg.orders_enabled = true;
            cfg.link_template = Some("https://shop.example/p/{sku}".into());
            cfg.batch_wait = Duration::from_secs(2);
            cfg.items_batch_per_hour = 3_600_000;
            Arc::new(MetaConnector::new(cfg).expect("meta connector"))
        }
        Kind::Shopify | Kind::ShopifyClientCredentials => {
            let c = sb.shopify().credentials();
            let auth = if kind == Kind::Shopify {
                ShopifyAuth::AccessToken(Secret::new(c.access_token))
            } else {
                ShopifyAuth::ClientCredentials {
                    client_id: c.client_id,
                    client_secret: Secret::new(c.client_secret),
                }
            };
            Arc::new(
                ShopifyConnector::new(ShopifyConfig {
                    endpoint: format!("{base}/shopify"),
                    api_version: ShopifyConfig::DEFAULT_API_VERSION.into(),
                    auth,
                    location_id: c.location_id,
                    limits: limits(ShopifyConnector::DEFAULT_LIMITS),
                })
                .expect("shopify connector"),
            )
        }
        Kind::Woo => {
            let w = sb.woo();
            let c = w.credentials();
            Arc::new(
                WooCommerceConnector::new(WooCommerceConfig {
                    endpoint: w.site_url().replace(&up, base),
                    consumer_key: Secret::new(c.consumer_key),
                    consumer_secret: Secret::new(c.consumer_secret),
                    limits: limits(WooCommerceConnector::DEFAULT_LIMITS),
                })
                .expect("woo connector"),
            )
        }
        Kind::Vendure => {
            let v = sb.vendure();
            let c = v.credentials();
            Arc::new(
                VendureConnector::new(VendureConfig {
                    endpoint: v.admin_api_url().replace(&up, base),
                    username: c.username,
                    password: Secret::new(c.password),
                    channel_token: c.channel_token,
                    stock_location_id: None,
                    limits: limits(VendureConnector::DEFAULT_LIMITS),
                })
                .expect("vendure connector"),
            )
        }
    }
}

/// The secrets each kind is configured with (sandbox credentials), besides what the proxy saw.
fn configured_secrets(kind: Kind, sb: &Sandbox) -> Vec<String> {
    match kind {
        Kind::Ebay => {
            let c = sb.ebay().credentials();
            vec![c.client_secret, c.refresh_token]
        }
        Kind::Amazon => {
            let c = sb.amazon().credentials();
            vec![c.client_secret, c.refresh_token]
        }
        Kind::Meta => {
            let c = sb.meta().credentials();
            vec![c.access_token, c.app_secret]
        }
        Kind::Shopify | Kind::ShopifyClientCredentials => {
            let c = sb.shopify().credentials();
            vec![c.access_token, c.client_secret]
        }
        Kind::Woo => {
            let c = sb.woo().credentials();
            vec![c.consumer_key, c.consumer_secret]
        }
        Kind::Vendure => vec![sb.vendure().credentials().password],
    }
}

fn usd(minor: i64) -> Money {
    Money {
        minor,
        currency: Currency::parse("USD").expect("USD"),
    }
}

fn sku(s: &str) -> Sku {
    Sku::parse(s).expect("sku")
}

fn stock(s: &str, quantity: u32) -> StockUpdate {
    StockUpdate {
        sku: sku(s),
        external_id: None,
        quantity,
        price: Some(usd(1250)),
        version: 1,
    }
}

fn listing(s: &str, quantity: u32) -> ListingUpdate {
    ListingUpdate {
        sku: sku(s),
        external_id: None,
        title: format!("Hostile mug {s}"),
        description: "A sturdy mug".into(),
        brand: Some("Omni".into()),
        barcode: None,
        image_urls: vec![format!("https://img.example.com/{s}.jpg")],
        options: Vec::new(),
        group_id: None,
        quantity,
        price: usd(1250),
        version: 1,
    }
}

// ---- driving and checking ---------------------------------------------------------------------

/// The operations of the trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Health,
    PushStock,
    PushListings,
    Delist,
    Orders,
    Snapshot,
    Bulk,
}

const ALL_OPS: &[Op] = &[
    Op::Health,
    Op::PushStock,
    Op::PushListings,
    Op::Delist,
    Op::Orders,
    Op::Snapshot,
    Op::Bulk,
];

/// What one call produced, as text to check.
#[derive(Debug, Default)]
struct Outcome {
    errors: Vec<ConnectorError>,
    /// Messages: errors, item outcomes' errors and codes, health summaries (bounded).
    texts: Vec<String>,
    /// Data the marketplace named: ids, buyer references (searched for credentials only: their
    /// size is the body's).
    data: Vec<String>,
    ok: u32,
}

impl Outcome {
    fn err(&mut self, e: ConnectorError) {
        self.texts.push(e.to_string());
        self.errors.push(e);
    }

    fn outcomes(
        &mut self,
        items: usize,
        r: Result<Vec<ItemOutcome>, ConnectorError>,
    ) -> Result<(), String> {
        match r {
            Ok(outs) => {
                self.ok += 1;
                if outs.len() != items {
                    return Err(format!(
                        "{} outcomes for {items} items: {outs:?}",
                        outs.len()
                    ));
                }
                for o in outs {
                    match o {
                        ItemOutcome::Applied { external_id } => {
                            self.data.extend(external_id);
                        }
                        ItemOutcome::Retry { error } | ItemOutcome::NotListed { error } => {
                            self.texts.push(error);
                        }
                        ItemOutcome::Rejected { code, error } => {
                            self.texts.extend(code);
                            self.texts.push(error);
                        }
                    }
                }
            }
            Err(e) => self.err(e),
        }
        Ok(())
    }
}

/// Runs one operation to completion. Pages are followed a few times, as the daemon would.
async fn run_op(conn: Arc<dyn Connector>, op: Op) -> Result<Outcome, String> {
    let mut out = Outcome::default();
    let since = chrono::Utc::now().timestamp_millis() - 86_400_000;
    match op {
        Op::Health => match conn.healthcheck().await {
            Ok(h) => {
                out.ok += 1;
                out.texts.push(h.summary);
            }
            Err(e) => out.err(e),
        },
        Op::PushStock => {
            let items = [
                stock(SEEDED[0], 4),
                stock(SEEDED[1], 0),
                stock("HOST-NEW", 3),
            ];
            let r = conn.push_stock(&items).await;
            out.outcomes(items.len(), r)?;
        }
        Op::PushListings => {
            let items = [listing("HOST-NEW", 3), listing(SEEDED[2], 2)];
            let r = conn.push_listings(&items).await;
            out.outcomes(items.len(), r)?;
        }
        Op::Delist => {
            let items = [sku(SEEDED[2]), sku("HOST-NEVER")];
            let r = conn.delist(&items).await;
            out.outcomes(items.len(), r)?;
        }
        Op::Orders => {
            let mut page = None;
            for _ in 0..4 {
                match conn.fetch_orders(since, page.take()).await {
                    Ok(p) => {
                        out.ok += 1;
                        for o in &p.orders {
                            out.data.push(o.external_id.clone());
                            out.data.extend(o.buyer_ref.clone());
                            for l in &o.lines {
                                out.data.push(l.line_id.clone());
                            }
                        }
                        match p.next_page {
                            Some(n) => {
                                if n.len() > MAX_MESSAGE * 4 {
                                    return Err(format!("a page token of {} bytes", n.len()));
                                }
                                page = Some(n);
                            }
                            None => break,
                        }
                    }
                    Err(e) => {
                        out.err(e);
                        break;
                    }
                }
            }
        }
        Op::Snapshot => {
            let mut page = None;
            for _ in 0..4 {
                match conn.snapshot_page(page.take()).await {
                    Ok(p) => {
                        out.ok += 1;
                        for i in &p.items {
                            out.data.extend(i.external_id.clone());
                        }
                        match p.next_page {
                            Some(n) => page = Some(n),
                            None => break,
                        }
                    }
                    Err(e) => {
                        out.err(e);
                        break;
                    }
                }
            }
        }
        Op::Bulk => {
            let _ = conn.bulk_choice(10_000);
            if conn.capabilities().max_bulk_batch == 0 {
                return Ok(out);
            }
            match conn.bulk_in_flight_since(since).await {
                Ok(_) => out.ok += 1,
                Err(e) => out.err(e),
            }
            let items = vec![
                BulkItem::Stock(stock(SEEDED[0], 3)),
                BulkItem::Listing(listing("HOST-BULK", 2)),
                BulkItem::Delist(sku(SEEDED[1])),
            ];
            let draft = match conn.bulk_prepare(&items).await {
                Ok(d) => d,
                Err(e) => {
                    out.err(e);
                    return Ok(out);
                }
            };
            let job = match conn.bulk_submit(&draft).await {
                Ok(j) => j,
                Err(e) => {
                    out.err(e);
                    return Ok(out);
                }
            };
            for _ in 0..8 {
                match conn.bulk_poll(&job).await {
                    Ok(BulkStatus::Pending { poll_after }) => {
                        tokio::time::sleep(
                            poll_after.clamp(Duration::from_millis(50), Duration::from_millis(300)),
                        )
                        .await;
                    }
                    Ok(BulkStatus::Done { outcomes }) => {
                        out.outcomes(items.len(), Ok(outcomes))?;
                        break;
                    }
                    Err(e) => {
                        out.err(e);
                        break;
                    }
                }
            }
        }
    }
    let _ = conn.stats();
    Ok(out)
}

/// Longest server-ordered wait the connector is sitting on (pauses after 429s, rates it was told).
fn parked(conn: &dyn Connector) -> bool {
    conn.stats()
        .budgets
        .iter()
        .any(|b| Duration::from_millis(b.paused_for_ms) >= PARKED || b.rate_per_sec < 0.05)
}

/// Figures of one run.
#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    ok: u64,
    errors: std::collections::BTreeMap<&'static str, u64>,
    parked: u64,
    slowest: Duration,
    requests: u64,
}

/// What one checked call gave.
struct Called {
    /// The connector is parked on a server's long pause (the caller builds a fresh one).
    parked: bool,
    errors: Vec<ConnectorError>,
}

/// Runs `op` on `conn` with every check.
async fn checked_call(
    kind: Kind,
    conn: &Arc<dyn Connector>,
    proxy: &Proxy,
    op: Op,
    secrets: &[String],
    tally: &mut Tally,
) -> Result<Called, String> {
    let before = proxy.requests();
    let started = Instant::now();
    let mut task = tokio::spawn(run_op(Arc::clone(conn), op));
    let result = loop {
        tokio::select! {
            r = &mut task => break r,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if parked(conn.as_ref()) {
                    task.abort();
                    tally.parked += 1;
                    return Ok(Called { parked: true, errors: Vec::new() });
                }
                if started.elapsed() > CALL_DEADLINE {
                    task.abort();
                    return Err(format!(
                        "{kind:?} {op:?} still running after {CALL_DEADLINE:?} (stats {:?})",
                        conn.stats()
                    ));
                }
            }
        }
    };
    let took = started.elapsed();
    tally.calls += 1;
    tally.slowest = tally.slowest.max(took);
    let requests = proxy.requests() - before;
    tally.requests += requests;
    let out = match result {
        Ok(r) => r.map_err(|e| format!("{kind:?} {op:?}: {e}"))?,
        Err(e) if e.is_panic() => {
            let p = e.into_panic();
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            return Err(format!("{kind:?} {op:?} panicked: {msg}"));
        }
        Err(e) => return Err(format!("{kind:?} {op:?}: task failed: {e}")),
    };
    tally.ok += u64::from(out.ok);
    for e in &out.errors {
        *tally.errors.entry(e.class().as_str()).or_default() += 1;
    }
    if requests > MAX_REQUESTS_PER_CALL {
        return Err(format!(
            "{kind:?} {op:?} made {requests} requests (bound {MAX_REQUESTS_PER_CALL})"
        ));
    }
    let mut known: BTreeSet<String> = lock(&proxy.state.sent_secrets).clone();
    known.extend(secrets.iter().filter(|s| s.len() >= 8).cloned());
    for made_up in lock(&proxy.state.injected).iter() {
        known.remove(made_up);
    }
    for t in &out.texts {
        if t.len() > MAX_MESSAGE {
            return Err(format!(
                "{kind:?} {op:?}: a message of {} bytes: {}…",
                t.len(),
                &t[..t.floor_char_boundary(200)]
            ));
        }
    }
    for t in out.texts.iter().chain(&out.data) {
        for s in &known {
            if t.contains(s.as_str()) {
                return Err(format!(
                    "{kind:?} {op:?}: a credential the connector sent came back in its output: {}",
                    &t[..t.floor_char_boundary(2000)]
                ));
            }
        }
    }
    Ok(Called {
        parked: false,
        errors: out.errors,
    })
}

/// Drives every operation once; rebuilds the connector when a server parked it.
async fn drive(
    kind: Kind,
    sb: &Sandbox,
    proxy: &Proxy,
    conn: &mut Arc<dyn Connector>,
    ops: &[Op],
    tally: &mut Tally,
) -> Result<(), String> {
    let secrets = configured_secrets(kind, sb);
    for &op in ops {
        if checked_call(kind, conn, proxy, op, &secrets, tally)
            .await?
            .parked
        {
            *conn = build(kind, sb, &proxy.base);
        }
    }
    Ok(())
}

/// Once the server behaves again, the connector works: a stock push applies (retrying
/// retriable failures for a while, as the dispatcher would).
async fn recovers(
    kind: Kind,
    sb: &Sandbox,
    proxy: &Proxy,
    conn: &mut Arc<dyn Connector>,
) -> Result<(), String> {
    proxy.set(Mode::Pass);
    if parked(conn.as_ref()) {
        *conn = build(kind, sb, &proxy.base);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        let items = [stock(SEEDED[0], 2)];
        match tokio::time::timeout(Duration::from_secs(15), conn.push_stock(&items)).await {
            Ok(Ok(outs)) if matches!(outs.as_slice(), [ItemOutcome::Applied { .. }]) => {
                return Ok(());
            }
            Ok(r) => last = format!("{r:?}"),
            Err(_) => last = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "{kind:?} does not recover once the server behaves: {last}"
    ))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

fn cases() -> u32 {
    std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

/// Random mutations of real answers, every connector at once (one thread each, one runtime).
#[test]
fn random_hostile_answers_never_panic_hang_or_leak() {
    let rt = runtime();
    let sb = Arc::new(rt.block_on(sandbox()));
    let started = Instant::now();
    let handle = rt.handle().clone();
    let threads: Vec<_> = KINDS
        .iter()
        .map(|&kind| {
            let sb = Arc::clone(&sb);
            let handle = handle.clone();
            std::thread::spawn(move || -> Result<(Tally, u32), String> {
                let proxy = handle.block_on(Proxy::start(&sb.base_url()));
                let conn = std::cell::RefCell::new(build(kind, &sb, &proxy.base));
                let tally = std::cell::RefCell::new(Tally::default());
                let mut runner = TestRunner::new(ProptestConfig {
                    cases: cases(),
                    failure_persistence: None,
                    max_shrink_iters: 16,
                    ..ProptestConfig::default()
                });
                let n = std::cell::Cell::new(0u32);
                runner
                    .run(&steps(), |steps| {
                        n.set(n.get() + 1);
                        // Every third case starts from a fresh connector (a token fetch first).
                        if n.get().is_multiple_of(3) {
                            *conn.borrow_mut() = build(kind, &sb, &proxy.base);
                        }
                        proxy.set(Mode::Steps { steps, next: 0 });
                        let r = handle.block_on(drive(
                            kind,
                            &sb,
                            &proxy,
                            &mut conn.borrow_mut(),
                            ALL_OPS,
                            &mut tally.borrow_mut(),
                        ));
                        r.map_err(|e| {
                            TestCaseError::fail(format!("{e}\n  served:\n    {}", proxy.served()))
                        })
                    })
                    .map_err(|e| format!("{kind:?}: {e}"))?;
                handle.block_on(recovers(kind, &sb, &proxy, &mut conn.borrow_mut()))?;
                Ok((tally.into_inner(), n.get()))
            })
        })
        .collect();
    let mut failures = Vec::new();
    for (kind, t) in KINDS.iter().zip(threads) {
        match t.join().expect("thread") {
            Ok((tally, n)) => eprintln!("hostile_responses random {kind:?}: {n} cases, {tally:?}"),
            Err(e) => failures.push(e),
        }
    }
    eprintln!(
        "hostile_responses random: {} kinds × {} cases in {:?}",
        KINDS.len(),
        cases(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A named case: which requests get the special answer, which operations run, and what must hold.
struct Named {
    name: &'static str,
    filter: fn(&Req) -> bool,
    special: Special,
    ops: &'static [Op],
    kinds: &'static [Kind],
    expect: Expect,
}

/// What a named case must produce besides the generic checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Nothing more.
    Survives,
    /// Every call fails.
    AllFail,
    /// Every call fails, and at least one says the body was too large; the proxy saw the client
    /// hang up before it had streamed `limit + 8 MiB`.
    TooLarge { limit: u64 },
    /// Every call fails with a timeout or a transient error, each within a few request timeouts.
    TimesOut,
    /// Every call fails with `RateLimited`, with a wait of at most a day (or parks on it).
    RateLimited,
    /// Every call fails with `Auth`, after at most a few requests.
    Auth,
    /// At least one call succeeds (the answer is fine apart from its headers).
    SomeOk,
}

fn every_request(_: &Req) -> bool {
    true
}

fn report_download(r: &Req) -> bool {
    r.method == "GET" && r.path().contains("/_s3/")
}

fn reply(h: Hostile) -> Special {
    Special::Reply(h)
}

fn literal(status: u16, body: &'static str) -> Special {
    reply(Hostile::body(BodyMut::Literal(body)).status(status))
}

const BASIC_OPS: &[Op] = &[Op::Health, Op::PushStock, Op::Orders, Op::Snapshot];
const SLOW_OPS: &[Op] = &[Op::Health, Op::PushStock, Op::Snapshot];

fn named_cases() -> Vec<Named> {
    let n = |name, special, ops, expect| Named {
        name,
        filter: every_request,
        special,
        ops,
        kinds: &KINDS,
        expect,
    };
    let deep: &'static str =
        Box::leak(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_boxed_str());
    let deep_object: &'static str = Box::leak("{\"a\":".repeat(10_000).into_boxed_str());
    // Every shape a connector reads a message from, each 1 MiB long.
    let huge_field: &'static str = Box::leak({
        let h = "é".repeat(1 << 19);
        json!({
            "errors": [{"message": h, "longMessage": h, "code": "X", "errorId": 25002,
                        "extensions": {"code": "BAD_USER_INPUT"}}],
            "error": {"message": h, "error_user_msg": h, "code": 100},
            "message": h,
            "issues": [{"message": h, "code": "X", "severity": "ERROR"}],
            "data": null,
        })
        .to_string()
        .into_boxed_str()
    });
    let random: &'static [u8] = Box::leak(
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    let random: &'static str = Box::leak(
        String::from_utf8_lossy(random)
            .into_owned()
            .into_boxed_str(),
    );
    let mut cases = vec![
        n(
            "oversized body, chunked",
            Special::Oversize { declared: false },
            SLOW_OPS,
            Expect::TooLarge {
                limit: MAX_BODY_BYTES as u64,
            },
        ),
        n(
            "oversized body, declared length",
            Special::Oversize { declared: true },
            SLOW_OPS,
            Expect::TooLarge {
                limit: MAX_BODY_BYTES as u64,
            },
        ),
        n(
            "a body that never ends",
            Special::Endless,
            SLOW_OPS,
            Expect::TimesOut,
        ),
        n(
            "no answer at all",
            Special::Silent,
            SLOW_OPS,
            Expect::TimesOut,
        ),
        n(
            "the same next-page cursor forever",
            Special::RepeatCursor,
            &[Op::Orders, Op::Snapshot, Op::Bulk],
            Expect::Survives,
        ),
        n(
            "random bytes",
            literal(200, random),
            ALL_OPS,
            Expect::AllFail,
        ),
        n(
            "10,000 nested arrays",
            literal(200, deep),
            BASIC_OPS,
            Expect::AllFail,
        ),
        n(
            "10,000 nested objects",
            literal(200, deep_object),
            BASIC_OPS,
            Expect::AllFail,
        ),
        n(
            "5 MiB of error messages",
            literal(400, huge_field),
            ALL_OPS,
            Expect::Survives,
        ),
        n(
            "5 MiB of error messages in a 200",
            literal(200, huge_field),
            ALL_OPS,
            Expect::Survives,
        ),
        n("null", literal(200, "null"), ALL_OPS, Expect::AllFail),
        n("empty 200", literal(200, ""), ALL_OPS, Expect::Survives),
        n("empty 201", literal(201, ""), BASIC_OPS, Expect::Survives),
        n(
            "202 Accepted",
            literal(202, "{}"),
            BASIC_OPS,
            Expect::Survives,
        ),
        n(
            "204 with a body",
            reply(Hostile::body(BodyMut::Keep).status(204)),
            BASIC_OPS,
            Expect::Survives,
        ),
        n(
            "207 Multi-Status",
            reply(Hostile::body(BodyMut::Keep).status(207)),
            BASIC_OPS,
            Expect::Survives,
        ),
        n(
            "every number 1e308",
            reply(Hostile::body(BodyMut::AllNumbers("1e308"))),
            ALL_OPS,
            Expect::Survives,
        ),
        n(
            "every number i64::MAX + 1",
            reply(Hostile::body(BodyMut::AllNumbers("9223372036854775808"))),
            ALL_OPS,
            Expect::Survives,
        ),
        n(
            "every number negative",
            reply(Hostile::body(BodyMut::AllNumbers("-5"))),
            ALL_OPS,
            Expect::Survives,
        ),
        n(
            "every string unicode garbage",
            reply(Hostile::body(BodyMut::AllStrings("\u{202e}𝕏\u{0}\u{feff}"))),
            ALL_OPS,
            Expect::Survives,
        ),
        n(
            "302 to elsewhere",
            reply(
                Hostile::body(BodyMut::Empty)
                    .status(302)
                    .header("location", "http://127.0.0.1:9/elsewhere"),
            ),
            BASIC_OPS,
            Expect::AllFail,
        ),
        n(
            "401 everywhere",
            reply(Hostile::body(BodyMut::Keep).status(401)),
            BASIC_OPS,
            Expect::Auth,
        ),
        n(
            "401 echoing the request",
            reply(Hostile::body(BodyMut::Echo { json: true }).status(401)),
            BASIC_OPS,
            Expect::Auth,
        ),
        n(
            "500 echoing the request",
            reply(Hostile::body(BodyMut::Echo { json: true }).status(500)),
            ALL_OPS,
            Expect::AllFail,
        ),
        n(
            "200 echoing the request as text",
            reply(Hostile::body(BodyMut::Echo { json: false })),
            ALL_OPS,
            Expect::AllFail,
        ),
        n(
            "200 echoing the request as JSON",
            reply(Hostile::body(BodyMut::Echo { json: true })),
            ALL_OPS,
            Expect::Survives,
        ),
        n(
            "429, Retry-After -1",
            reply(
                Hostile::body(BodyMut::Keep)
                    .status(429)
                    .header("retry-after", "-1"),
            ),
            BASIC_OPS,
            Expect::RateLimited,
        ),
        n(
            "429, Retry-After soon",
            reply(
                Hostile::body(BodyMut::Keep)
                    .status(429)
                    .header("retry-after", "soon"),
            ),
            BASIC_OPS,
            Expect::RateLimited,
        ),
        n(
            "429, Retry-After 10^23",
            reply(
                Hostile::body(BodyMut::Keep)
                    .status(429)
                    .header("retry-after", "99999999999999999999999"),
            ),
            BASIC_OPS,
            Expect::RateLimited,
        ),
        n(
            "429, Retry-After in 2099",
            reply(
                Hostile::body(BodyMut::Keep)
                    .status(429)
                    .header("retry-after", "Thu, 01 Jan 2099 00:00:00 GMT"),
            ),
            BASIC_OPS,
            Expect::RateLimited,
        ),
        n(
            "valid body as text/html",
            reply(Hostile {
                content_type: ContentType::Html,
                ..Hostile::body(BodyMut::Keep)
            }),
            BASIC_OPS,
            Expect::SomeOk,
        ),
        n(
            "valid body without a content type",
            reply(Hostile {
                content_type: ContentType::Absent,
                ..Hostile::body(BodyMut::Keep)
            }),
            BASIC_OPS,
            Expect::SomeOk,
        ),
        n(
            "garbage rate headers",
            reply(
                Hostile::body(BodyMut::Keep)
                    .header("x-amzn-ratelimit-limit", "1e-300")
                    .header(
                        "x-business-use-case-usage",
                        "{\"1\":[{\"call_count\":1e308,\"estimated_time_to_regain_access\":-1}]}",
                    )
                    .header("x-wp-totalpages", "18446744073709551616")
                    .header("retry-after", "-7"),
            ),
            ALL_OPS,
            Expect::SomeOk,
        ),
    ];
    cases.push(Named {
        name: "a Shopify cost bucket that is empty and barely refills",
        filter: every_request,
        special: literal(
            200,
            "{\"data\":{},\"extensions\":{\"cost\":{\"requestedQueryCost\":1000000,\
             \"actualQueryCost\":1,\"throttleStatus\":{\"maximumAvailable\":1000000000,\
             \"currentlyAvailable\":0,\"restoreRate\":0.1}}}}",
        ),
        ops: BASIC_OPS,
        kinds: &[Kind::Shopify, Kind::ShopifyClientCredentials],
        expect: Expect::Survives,
    });
    cases.push(Named {
        name: "gzip bomb as the processing report",
        filter: report_download,
        special: Special::GzipBomb,
        ops: &[Op::Bulk],
        kinds: &[Kind::Amazon],
        expect: Expect::TooLarge { limit: 0 },
    });
    cases.push(Named {
        name: "oversized processing report",
        filter: report_download,
        special: Special::Oversize { declared: false },
        ops: &[Op::Bulk],
        kinds: &[Kind::Amazon],
        expect: Expect::TooLarge {
            limit: MAX_DOCUMENT_BYTES,
        },
    });
    cases
}

/// Runs one named case on one kind with a fresh connector.
async fn run_named(kind: Kind, sb: &Sandbox, proxy: &Proxy, case: &Named) -> Result<Tally, String> {
    let mut conn = build(kind, sb, &proxy.base);
    // A token first, so that the cases about API answers reach the API (401s refresh anyway).
    proxy.set(Mode::Pass);
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.healthcheck()).await;
    proxy.set(Mode::Named {
        filter: case.filter,
        special: case.special.clone(),
    });
    let secrets = configured_secrets(kind, sb);
    let mut tally = Tally::default();
    let mut errors: Vec<ConnectorError> = Vec::new();
    for &op in case.ops {
        let started = Instant::now();
        let before = proxy.requests();
        let called = checked_call(kind, &conn, proxy, op, &secrets, &mut tally).await?;
        let took = started.elapsed();
        let requests = proxy.requests() - before;
        errors.extend(called.errors);
        match case.expect {
            Expect::TimesOut if took > 6 * REQUEST_TIMEOUT + Duration::from_secs(3) => {
                return Err(format!("{kind:?} {op:?}: took {took:?} to give up"));
            }
            Expect::TooLarge { .. } if took > Duration::from_secs(20) => {
                return Err(format!("{kind:?} {op:?}: took {took:?} to refuse"));
            }
            Expect::Auth if requests > 6 => {
                return Err(format!("{kind:?} {op:?}: {requests} requests against 401s"));
            }
            _ => {}
        }
        if called.parked {
            conn = build(kind, sb, &proxy.base);
        }
    }
    let oks = tally.ok;
    let describe = || format!("{kind:?} {:?}: ok {oks}, errors {errors:?}", case.name);
    match case.expect {
        Expect::Survives => {}
        Expect::AllFail => {
            if oks > 0 {
                return Err(format!("expected every call to fail: {}", describe()));
            }
        }
        Expect::TooLarge { limit } => {
            if !errors.iter().any(|e| e.to_string().contains("larger than")) {
                return Err(format!("expected 'larger than' errors: {}", describe()));
            }
            let streamed = proxy.state.streamed.load(Ordering::SeqCst);
            if limit > 0 && streamed > limit + (8 << 20) {
                return Err(format!(
                    "{}: the proxy streamed {streamed} bytes before the client hung up (limit {limit})",
                    describe()
                ));
            }
        }
        Expect::TimesOut => {
            let timeouts = errors.iter().filter(|e| {
                matches!(
                    e,
                    ConnectorError::Timeout { .. } | ConnectorError::Transient { .. }
                )
            });
            if timeouts.count() == 0 || oks > 0 && kind != Kind::Meta {
                return Err(format!("expected timeouts: {}", describe()));
            }
        }
        Expect::RateLimited => {
            let day = Duration::from_secs(24 * 3600);
            let bad = errors.iter().any(|e| {
                !matches!(e, ConnectorError::RateLimited { .. })
                    || e.retry_after().is_some_and(|w| w > day)
            });
            if oks > 0 || (errors.is_empty() && tally.parked == 0) || bad {
                return Err(format!("expected RateLimited within a day: {}", describe()));
            }
        }
        Expect::Auth => {
            if oks > 0
                || errors.is_empty()
                || errors
                    .iter()
                    .any(|e| !matches!(e, ConnectorError::Auth { .. }))
            {
                return Err(format!("expected Auth errors: {}", describe()));
            }
        }
        Expect::SomeOk => {
            if oks == 0 {
                return Err(format!("expected some call to succeed: {}", describe()));
            }
        }
    }
    Ok(tally)
}

/// The named nasty answers, every connector at once.
#[test]
fn named_nasty_answers_are_refused_cleanly() {
    let rt = runtime();
    let sb = Arc::new(rt.block_on(sandbox()));
    let started = Instant::now();
    let handle = rt.handle().clone();
    let threads: Vec<_> = KINDS
        .iter()
        .map(|&kind| {
            let sb = Arc::clone(&sb);
            let handle = handle.clone();
            std::thread::spawn(move || -> Result<(Tally, u32), String> {
                let proxy = handle.block_on(Proxy::start(&sb.base_url()));
                let mut total = Tally::default();
                let mut n = 0;
                let mut failures = Vec::new();
                // HOSTILE_NAMED=<text> runs only the cases whose name contains it.
                let only = std::env::var("HOSTILE_NAMED").unwrap_or_default();
                for case in named_cases()
                    .iter()
                    .filter(|c| c.kinds.contains(&kind) && c.name.contains(only.as_str()))
                {
                    n += 1;
                    match handle.block_on(run_named(kind, &sb, &proxy, case)) {
                        Ok(t) => {
                            total.calls += t.calls;
                            total.ok += t.ok;
                            total.parked += t.parked;
                            total.requests += t.requests;
                            total.slowest = total.slowest.max(t.slowest);
                            for (k, v) in t.errors {
                                *total.errors.entry(k).or_default() += v;
                            }
                        }
                        Err(e) => failures.push(format!(
                            "{kind:?} / {}: {e}\n  served:\n    {}",
                            case.name,
                            proxy.served()
                        )),
                    }
                }
                if failures.is_empty() {
                    Ok((total, n))
                } else {
                    Err(failures.join("\n"))
                }
            })
        })
        .collect();
    let mut failures = Vec::new();
    for (kind, t) in KINDS.iter().zip(threads) {
        match t.join().expect("thread") {
            Ok((tally, n)) => eprintln!("hostile_responses named {kind:?}: {n} cases, {tally:?}"),
            Err(e) => failures.push(e),
        }
    }
    eprintln!("hostile_responses named: {:?}", started.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
