//! Credentials the daemon hands to a connector, in a wrapper that cannot be printed.
//!
//! `Debug` and `Display` show `***`, so a secret cannot reach a log line, an error message or a
//! panic message by accident (DESIGN §10, STYLE habit 11); the one place that must send it calls
//! [`Secret::expose`].

use std::fmt;

use serde::Deserialize;

/// A secret string: client secret, refresh token, access token, password. The daemon's config
/// file deserializes straight into it (`config::Secret` is this type), so a secret never exists
/// as a plain, printable string between the file and the connector.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty (a config that forgot to set it).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Shortest value masked by [`SentCredentials`]: shorter ones would match ordinary text by chance
/// (real keys, tokens and passwords are longer).
const MIN_MASKED_CHARS: usize = 6;

/// Query and form parameters, and JSON keys, whose values are credentials.
const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "appsecret_proof",
    "client_secret",
    "consumer_key",
    "consumer_secret",
    "password",
    "refresh_token",
    "oauth_signature",
    "api_key",
];

/// Headers whose values are credentials.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-shopify-access-token",
    "x-amz-access-token",
];

/// JSON bodies larger than this are not searched for credentials (a login mutation is tiny; a
/// feed document is not, and carries none).
const MAX_JSON_SCANNED: usize = 64 * 1024;

/// The credentials one request carries (its `Authorization` and token headers, decoded Basic
/// credentials, secret query and form parameters, a `password` in a JSON body), so that a server
/// echoing the request back cannot put them in an error message, an item outcome or a log line:
/// [`SentCredentials::mask`] replaces each (and its percent-encoded and JSON-escaped forms) in the
/// answer's body with `***` before anything reads it.
#[derive(Default)]
pub(crate) struct SentCredentials(Vec<String>);

impl fmt::Debug for SentCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SentCredentials({} values)", self.0.len())
    }
}

impl SentCredentials {
    /// Collects the credentials of `request`.
    pub(crate) fn of(request: &reqwest::Request) -> Self {
        let mut found: Vec<String> = Vec::new();
        for name in SECRET_HEADERS {
            for value in request.headers().get_all(*name) {
                let Ok(v) = value.to_str() else { continue };
                found.push(v.to_owned());
                let Some((scheme, credential)) = v.trim().split_once(' ') else {
                    continue;
                };
                let credential = credential.trim();
                found.push(credential.to_owned());
                if scheme.eq_ignore_ascii_case("basic") {
                    use base64::Engine as _;
                    if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(credential) {
                        let text = String::from_utf8_lossy(&raw).into_owned();
                        if let Some((user, pass)) = text.split_once(':') {
                            found.push(user.to_owned());
                            found.push(pass.to_owned());
                        }
                        found.push(text);
                    }
                }
            }
        }
        let secret_pairs = |pairs: reqwest::Url, found: &mut Vec<String>| {
            for (k, v) in pairs.query_pairs() {
                if SECRET_PARAMS.contains(&k.as_ref()) {
                    found.push(v.into_owned());
                }
            }
        };
        secret_pairs(request.url().clone(), &mut found);
        let body = request.body().and_then(reqwest::Body::as_bytes);
        let content_type = request
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(body) = body {
            if content_type.starts_with("application/x-www-form-urlencoded") {
                if let Ok(form) = std::str::from_utf8(body)
                    && let Ok(url) = reqwest::Url::parse(&format!("http://form.invalid/?{form}"))
                {
                    secret_pairs(url, &mut found);
                }
            } else if body.len() <= MAX_JSON_SCANNED
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
            {
                json_secrets(&v, &mut found);
            }
        }
        let mut values: Vec<String> = Vec::new();
        for v in found {
            if v.chars().count() < MIN_MASKED_CHARS {
                continue;
            }
            let encoded = crate::common::http::encode_component(&v);
            let escaped = serde_json::to_string(&v)
                .map(|q| q[1..q.len() - 1].to_owned())
                .unwrap_or_default();
            for form in [v, encoded, escaped] {
                if form.chars().count() >= MIN_MASKED_CHARS && !values.contains(&form) {
                    values.push(form);
                }
            }
        }
        // Longest first, so `user:password` goes before `password`.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        SentCredentials(values)
    }

    /// `body` with every credential replaced by `***`.
    pub(crate) fn mask(&self, body: Vec<u8>) -> Vec<u8> {
        if self.0.is_empty() {
            return body;
        }
        match String::from_utf8(body) {
            Ok(mut text) => {
                for v in &self.0 {
                    if text.contains(v.as_str()) {
                        text = text.replace(v.as_str(), "***");
                    }
                }
                text.into_bytes()
            }
            Err(e) => {
                let mut bytes = e.into_bytes();
                for v in &self.0 {
                    bytes = replace_bytes(&bytes, v.as_bytes(), b"***");
                }
                bytes
            }
        }
    }
}

fn json_secrets(v: &serde_json::Value, found: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, c) in m {
                match c {
                    serde_json::Value::String(s) if SECRET_PARAMS.contains(&k.as_str()) => {
                        found.push(s.clone());
                    }
                    _ => json_secrets(c, found),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|c| json_secrets(c, found)),
        _ => {}
    }
}

fn replace_bytes(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || hay.len() < needle.len() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(b: reqwest::RequestBuilder) -> reqwest::Request {
        b.build().expect("request")
    }

    #[test]
    fn credentials_a_request_sent_are_masked_in_the_answer() {
        crate::common::http::install_crypto_provider();
        let client = reqwest::Client::new();
        let basic = request(
            client
                .post("http://127.0.0.1:1/token?appsecret_proof=PROOF-0123&x=1")
                .basic_auth("ck_user_123456", Some("cs/secret\"quoted"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "v^1.1#r/efresh"),
                ]),
        );
        let sent = SentCredentials::of(&basic);
        let echo = format!(
            "{{\"error\":\"echo {} {} {} {} {} {}\"}}",
            basic.headers()["authorization"].to_str().unwrap(),
            "ck_user_123456",
            "cs/secret\\\"quoted",
            "v%5E1.1%23r%2Fefresh",
            "PROOF-0123",
            "v^1.1#r/efresh",
        );
        let masked = String::from_utf8(sent.mask(echo.into_bytes())).unwrap();
        for leak in [
            "ck_user",
            "cs/secret",
            "quoted",
            "efresh",
            "PROOF",
            "Basic Y2",
        ] {
            assert!(!masked.contains(leak), "{leak} in {masked}");
        }
        assert!(masked.starts_with("{\"error\":\"echo ***"), "{masked}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&masked).is_ok(),
            "{masked}"
        );

        let bearer = request(
            client
                .post("http://127.0.0.1:1/graphql")
                .bearer_auth("session-token-abcdef")
                .header("X-Shopify-Access-Token", "shpat_0123456789")
                .json(&serde_json::json!({"variables": {"username": "admin", "password": "hunter2!!"}})),
        );
        let sent = SentCredentials::of(&bearer);
        let masked =
            sent.mask(b"session-token-abcdef shpat_0123456789 hunter2!! admin \xff".to_vec());
        assert_eq!(masked, b"*** *** *** admin \xff".to_vec());
        // Short values (a client id "ck") are left alone: they would match ordinary text.
        let short = request(
            client
                .get("http://127.0.0.1:1/x")
                .basic_auth("ck", Some("cs")),
        );
        assert_eq!(
            SentCredentials::of(&short).mask(b"ck cs".to_vec()),
            b"ck cs".to_vec()
        );
        assert!(!format!("{sent:?}").contains("hunter2"));
    }

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("v^1.1#refresh");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "v^1.1#refresh");
        assert!(Secret::from("").is_empty());
    }
}
