//! Shared fixtures for the config suite: the shipped files, an environment, minimal sections.

use std::collections::HashMap;
use std::path::PathBuf;

use omnistock::config::{self, ChannelKind, Config, ConfigError};

/// Origin used in messages, as if the merchant's file were being loaded.
pub const ORIGIN: &str = "config/omnistock.toml";

/// A file shipped in `config/`.
pub fn shipped(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A value every variable can take that is recognisable in output: `secret-value-of-NAME`.
pub fn fake_value(name: &str) -> String {
    format!("secret-value-of-{name}")
}

/// Parses `text` with exactly the variables in `vars`.
pub fn parse_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config::parse(text, ORIGIN, &|name| vars.get(name).cloned())
}

/// Parses `text` with every variable set to [`fake_value`].
pub fn parse_with_any_env(text: &str) -> Result<Config, ConfigError> {
    config::parse(text, ORIGIN, &|name| Some(fake_value(name)))
}

/// The start of a valid file: one location.
pub const LOCATIONS: &str = "[[locations]]\nid = \"main\"\n";

/// A minimal valid `[channels.<kind>]` section of each kind (the id is the kind's name).
pub fn minimal_section(kind: ChannelKind) -> String {
    let body = match kind {
        ChannelKind::Amazon => {
            "seller_id = \"A2EXAMPLE\"\nmarketplace_ids = [\"ATVPDKIKX0DER\"]\n\
             client_id = \"id\"\nclient_secret = \"s\"\nrefresh_token = \"r\"\n"
        }
        ChannelKind::Ebay => {
            "client_id = \"id\"\nclient_secret = \"s\"\nrefresh_token = \"r\"\n\
             marketplace_id = \"EBAY_US\"\nmerchant_location_key = \"main\"\n\
             policies = { fulfillment = \"f\", payment = \"p\", return = \"r\" }\n"
        }
        ChannelKind::Facebook => "catalog_id = \"1\"\naccess_token = \"t\"\napp_secret = \"s\"\n",
        ChannelKind::Shopify => {
            "endpoint = \"https://x.myshopify.com\"\naccess_token = \"t\"\n\
             location_id = \"gid://shopify/Location/1\"\nwebhook_secret = \"w\"\n"
        }
        ChannelKind::WooCommerce => {
            "endpoint = \"https://shop.example.com\"\nconsumer_key = \"k\"\n\
             consumer_secret = \"s\"\nwebhook_secret = \"w\"\n"
        }
        ChannelKind::Vendure => {
            "endpoint = \"http://127.0.0.1:3000/admin-api\"\nusername = \"u\"\npassword = \"p\"\n"
        }
    };
    format!("\n[channels.{kind}]\ntype = \"{kind}\"\n{body}")
}

/// 1-based line of the first line of `text` that starts with `prefix`.
pub fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"))
        + 1
}
