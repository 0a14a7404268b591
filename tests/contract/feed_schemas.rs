//! Amazon's JSON Schemas for what travels outside the Feeds API itself: the `JSON_LISTINGS_FEED`
//! document the connector uploads (listings-feed-schema-v2.json, each message also against
//! listings-feed-message-schema-v2.json) and the processing report it downloads
//! (listings-feed-processing-report-schema-v2.json). Read from the official folder, never copied.
//! Prism cannot see either: both go to presigned URLs, not through the API.

use std::path::Path;

use jsonschema::Validator;
use serde_json::Value;

/// The feed document schema.
pub const FEED_SCHEMA: &str = "listings-feed-schema-v2.json";
/// One message of a feed document.
pub const MESSAGE_SCHEMA: &str = "listings-feed-message-schema-v2.json";
/// The processing report.
pub const REPORT_SCHEMA: &str = "listings-feed-processing-report-schema-v2.json";
/// Amazon's own example feed document.
pub const FEED_EXAMPLE: &str = "listings-feed-schema-v2.example.json";
/// Amazon's own example processing report.
pub const REPORT_EXAMPLE: &str = "listings-feed-processing-report-schema-v2.example.json";

/// The three validators.
pub struct FeedSchemas {
    feed: Validator,
    message: Validator,
    report: Validator,
}

fn read_json(dir: &Path, name: &str) -> Value {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn compile(dir: &Path, name: &str) -> Validator {
    jsonschema::validator_for(&read_json(dir, name))
        .unwrap_or_else(|e| panic!("{name} does not compile as a JSON Schema: {e}"))
}

/// Every error of `instance` against `validator`, as `pointer: message`.
fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect()
}

impl FeedSchemas {
    /// Compiles the schemas in `dir` (the official Amazon folder), and checks that they bite:
    /// Amazon's own examples pass, and a document with a wrong version, a DELETE carrying
    /// attributes and a report without its feedId fail. Panics otherwise.
    pub fn load(dir: &Path) -> FeedSchemas {
        let schemas = FeedSchemas {
            feed: compile(dir, FEED_SCHEMA),
            message: compile(dir, MESSAGE_SCHEMA),
            report: compile(dir, REPORT_SCHEMA),
        };
        let example = read_json(dir, FEED_EXAMPLE);
        let found = schemas.check_feed(&example);
        assert!(found.is_empty(), "{FEED_EXAMPLE} fails: {found:#?}");
        let example = read_json(dir, REPORT_EXAMPLE);
        let found = schemas.check_report(&example);
        assert!(found.is_empty(), "{REPORT_EXAMPLE} fails: {found:#?}");

        let bad_feed = serde_json::json!({
            "header": {"sellerId": "A1", "version": "1.0"},
            "messages": [{"messageId": 1, "sku": "X", "operationType": "DELETE",
                          "attributes": {"item_name": []}}]
        });
        let found = schemas.check_feed(&bad_feed);
        assert!(
            found.iter().any(|e| e.starts_with("/header/version"))
                && found.iter().any(|e| e.starts_with("/messages/0")),
            "the feed schemas let a broken document through: {found:#?}"
        );
        let bad_report = serde_json::json!({"header": {"sellerId": "A1", "version": "2.0"}});
        let found = schemas.check_report(&bad_report);
        assert!(
            found.iter().any(|e| e.contains("feedId")),
            "the report schema lets a header without feedId through: {found:#?}"
        );
        schemas
    }

    /// Errors of a feed document: the document schema, then each message on its own.
    pub fn check_feed(&self, doc: &Value) -> Vec<String> {
        let mut found = errors(&self.feed, doc);
        for (i, m) in doc["messages"].as_array().into_iter().flatten().enumerate() {
            found.extend(
                errors(&self.message, m)
                    .into_iter()
                    .map(|e| format!("message schema, /messages/{i}{e}")),
            );
        }
        found
    }

    /// Errors of a processing report.
    pub fn check_report(&self, report: &Value) -> Vec<String> {
        errors(&self.report, report)
    }
}
