//! The HTTP plumbing every connector shares: the client, bounded body reads, and the mapping from
//! transport failures and HTTP statuses to [`ConnectorError`] classes.
//!
//! Connectors classify, shared code acts (STYLE habit 5): this module turns "what happened on the
//! wire" into a class, and each connector adds what only it can read (its error codes, which
//! per-item failures are retriable). Nothing here ever puts a request header or body into an
//! error message, so credentials cannot leak through errors; URLs are stripped from transport
//! errors too; and a server that echoes the request back gets its answer's copies of our
//! credentials replaced by `***` before anything reads the body
//! ([`SentCredentials`](super::sensitive::SentCredentials)).

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use super::limits::Limits;
use super::sensitive::SentCredentials;
use crate::error::ConnectorError;

/// Largest response body read (16 MiB). A getOrders page of 200 orders is well under 2 MiB; a
/// larger body is a broken or hostile server, refused as [`ConnectorError::Malformed`] instead of
/// being buffered into memory.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Longest `Retry-After` honoured (one day): a hostile or buggy value must not park a channel
/// for years. eBay's quotas reset daily, so a day covers every real answer.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Most characters of a marketplace message kept in an error (a 2 MiB HTML error page must not
/// end up in `status` or a log line).
pub const MAX_MESSAGE_CHARS: usize = 500;

/// `User-Agent` of every request (Amazon asks for `AppName/Version (Language=…)`; others accept it).
pub const USER_AGENT: &str = concat!("omnistock/", env!("CARGO_PKG_VERSION"), " (Language=Rust)");

/// Installs ring as rustls' process-wide crypto provider. reqwest is built `rustls-no-provider`
/// (one provider for the whole daemon, chosen here), so a client cannot be built before this.
/// Installing twice is harmless: the second attempt's error is ignored.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the HTTP client of one connector: connect and request timeouts from `limits`, our user
/// agent, no redirects (a redirected POST would silently turn into a GET; a 3xx is an error), and
/// no proxy when every endpoint is on the loopback interface (`direct`), so an operator's
/// `HTTP_PROXY` cannot capture sandbox traffic.
pub fn build_client(limits: &Limits, direct: bool) -> Result<reqwest::Client, ConnectorError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.timeout)
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none());
    if direct {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| ConnectorError::Permanent {
        status: None,
        code: None,
        message: format!("cannot build the HTTP client: {}", error_chain(&e)),
    })
}

/// True when `url`'s host is `localhost` or a loopback address (sandbox and test servers).
pub fn is_loopback(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A response read in full (within [`MAX_BODY_BYTES`]).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Retry-After`, parsed (seconds or HTTP-date), when present and readable.
    pub retry_after: Option<Duration>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Parses the body as JSON into `T`; a body that does not fit is [`ConnectorError::Malformed`]
    /// (the serde message names the field, never a value we sent).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| ConnectorError::Malformed {
            status: Some(self.status),
            // serde quotes the offending value, which may be megabytes long.
            message: format!(
                "unexpected response body: {}",
                truncate(&e.to_string(), MAX_MESSAGE_CHARS)
            ),
        })
    }

    /// Like [`HttpResponse::json`], treating an empty body as `T::default()` (204 No Content, or
    /// an error status without a body).
    pub fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ConnectorError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(T::default());
        }
        self.json()
    }

    /// The start of the body as text, for an error message when the body has no known shape.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        truncate(text.trim(), MAX_MESSAGE_CHARS)
    }
}

/// Sends `request` and reads the whole answer, classifying transport failures:
///
/// | what failed | error |
/// |---|---|
/// | connecting (refused, DNS, TLS, connect timeout): nothing was sent | `Transient` |
/// | the request deadline, after sending | `Timeout` (outcome unknown) |
/// | the connection, after sending (reset, closed mid-answer) | `Timeout` for writes, `Transient` for reads (`idempotent`) |
/// | a body over [`MAX_BODY_BYTES`] | `Malformed` |
///
/// Any HTTP status comes back as `Ok`; [`error_for_status`] classifies it.
pub async fn send(
    request: reqwest::RequestBuilder,
    idempotent: bool,
) -> Result<HttpResponse, ConnectorError> {
    send_inner(request, idempotent, MAX_BODY_BYTES, None)
        .await
        .map(|(response, _)| response)
}

/// Like [`send`], also returning the value of the response header `header` when it is present
/// and readable text (Amazon's `x-amzn-RateLimit-Limit`).
pub async fn send_reading_header(
    request: reqwest::RequestBuilder,
    idempotent: bool,
    header: &str,
) -> Result<(HttpResponse, Option<String>), ConnectorError> {
    send_inner(request, idempotent, MAX_BODY_BYTES, Some(header)).await
}

/// Like [`send`] with another body cap, for documents larger than API answers (Amazon feed
/// processing reports); a larger body is [`ConnectorError::Malformed`].
pub async fn send_limited(
    request: reqwest::RequestBuilder,
    idempotent: bool,
    max_bytes: usize,
) -> Result<HttpResponse, ConnectorError> {
    send_inner(request, idempotent, max_bytes, None)
        .await
        .map(|(response, _)| response)
}

async fn send_inner(
    request: reqwest::RequestBuilder,
    idempotent: bool,
    max_bytes: usize,
    header: Option<&str>,
) -> Result<(HttpResponse, Option<String>), ConnectorError> {
    // The last moment to hold a request back (a process that lost its lease while frozen).
    super::gate::check()?;
    let (client, request) = request.build_split();
    let request = request.map_err(|e| transport_error(&e, idempotent))?;
    let sent = SentCredentials::of(&request);
    let mut response = client
        .execute(request)
        .await
        .map_err(|e| transport_error(&e, idempotent))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let wanted = header.and_then(|name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| truncate(v.trim(), MAX_MESSAGE_CHARS))
    });
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(too_large(status, max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, idempotent))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large(status, max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    // A server that echoes the request (a debugging proxy, a hostile endpoint) must not hand our
    // credentials to error messages, outcomes and logs.
    let body = sent.mask(body);
    Ok((
        HttpResponse {
            status,
            retry_after,
            body,
        },
        wanted,
    ))
}

fn too_large(status: u16, max_bytes: usize) -> ConnectorError {
    ConnectorError::Malformed {
        status: Some(status),
        message: format!("response body larger than {max_bytes} bytes"),
    }
}

/// Classifies a reqwest failure (see [`send`]). The URL is left out of the message.
pub fn transport_error(e: &reqwest::Error, idempotent: bool) -> ConnectorError {
    let message = error_chain(e);
    if e.is_connect() {
        ConnectorError::Transient {
            status: None,
            message: format!("could not connect: {message}"),
        }
    } else if e.is_timeout() {
        ConnectorError::Timeout { message }
    } else if idempotent {
        ConnectorError::Transient {
            status: None,
            message: format!("connection failed: {message}"),
        }
    } else {
        ConnectorError::Timeout {
            message: format!("connection lost after the request was sent: {message}"),
        }
    }
}

/// The error and its sources, joined with `: `, without the URL reqwest attaches.
fn error_chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    // reqwest's own Display repeats the URL; its kind words come first in the chain anyway.
    parts.push(
        if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connect error"
        } else if e.is_body() || e.is_decode() {
            "error reading the body"
        } else {
            "error sending the request"
        }
        .to_owned(),
    );
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    truncate(&parts.join(": "), MAX_MESSAGE_CHARS)
}

/// Classifies an HTTP error status:
///
/// | status | error |
/// |---|---|
/// | 429 | `RateLimited` with `retry_after` |
/// | 401, 403 | `Auth` |
/// | 408, 5xx | `Transient` |
/// | other 4xx | `Permanent` with the marketplace's `code` |
/// | anything else that is not 2xx (1xx, 3xx) | `Permanent` (we follow no redirects) |
pub fn error_for_status(
    status: u16,
    retry_after: Option<Duration>,
    code: Option<String>,
    message: String,
) -> ConnectorError {
    let message = truncate(&message, MAX_MESSAGE_CHARS);
    match status {
        429 => ConnectorError::RateLimited {
            retry_after,
            message,
        },
        401 | 403 => ConnectorError::Auth {
            status: Some(status),
            message,
        },
        408 | 500..=599 => ConnectorError::Transient {
            status: Some(status),
            message,
        },
        _ => ConnectorError::Permanent {
            status: Some(status),
            code,
            message,
        },
    }
}

/// Parses `Retry-After`: delta-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`,
/// measured from `now`; a past date means no wait). Capped at [`MAX_RETRY_AFTER`]; unreadable
/// values give `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(
        u64::try_from(at.timestamp_millis()).ok()?,
    ))?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Percent-encodes one URL path segment or query value: everything but RFC 3986's unreserved
/// characters (`A–Z a–z 0–9 - . _ ~`). SKUs may hold `/`, `#`, `?`, spaces or non-ASCII text; each
/// must stay inside its segment.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00Z
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means go now"
        );
        assert_eq!(parse_retry_after("99999999999", now), Some(MAX_RETRY_AFTER));
        for bad in ["", "soon", "-5", "1.5"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn statuses_map_to_classes() {
        use crate::error::ErrorClass::*;
        let class = |s: u16| error_for_status(s, None, None, "m".into()).class();
        assert_eq!(class(429), RateLimited);
        assert_eq!(class(401), Auth);
        assert_eq!(class(403), Auth);
        assert_eq!(class(500), Transient);
        assert_eq!(class(503), Transient);
        assert_eq!(class(408), Transient);
        assert_eq!(class(400), Permanent);
        assert_eq!(class(404), Permanent);
        assert_eq!(class(302), Permanent);
        let e = error_for_status(429, Some(Duration::from_secs(3)), None, "slow down".into());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        let e = error_for_status(400, None, Some("25002".into()), "x".repeat(10_000));
        let ConnectorError::Permanent { code, message, .. } = e else {
            panic!("permanent")
        };
        assert_eq!(code.as_deref(), Some("25002"));
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("MUG-RED_1.0~"), "MUG-RED_1.0~");
        assert_eq!(encode_component("a/b c#?&"), "a%2Fb%20c%23%3F%26");
        assert_eq!(encode_component("é"), "%C3%A9");
        assert_eq!(encode_component("[x]"), "%5Bx%5D");
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("http://127.0.0.1:18080/ebay"));
        assert!(is_loopback("http://localhost:1/"));
        assert!(is_loopback("http://[::1]:80/"));
        assert!(!is_loopback("https://api.ebay.com"));
        assert!(!is_loopback("not a url"));
    }

    #[test]
    fn empty_bodies_parse_as_default() {
        let r = HttpResponse {
            status: 204,
            retry_after: None,
            body: Vec::new(),
        };
        let v: Vec<u8> = r.json_or_default().unwrap();
        assert!(v.is_empty());
        let bad = HttpResponse {
            status: 200,
            retry_after: None,
            body: b"{\"a\":".to_vec(),
        };
        assert!(matches!(
            bad.json::<serde_json::Value>(),
            Err(ConnectorError::Malformed {
                status: Some(200),
                ..
            })
        ));
    }
}
