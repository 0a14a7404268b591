//! A real Vendure 3.7.3 started by `scripts/vendure` (sql.js, a fresh database in a temp dir,
//! 127.0.0.1 only), stopped by its PID when the guard drops, and a small GraphQL client for the
//! Admin and Shop APIs (values always as variables).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

/// `OMNISTOCK_REQUIRE_REALSTORE=1`: Vendure missing is a failure, not a skip (CI).
pub const REQUIRE_ENV: &str = "OMNISTOCK_REQUIRE_REALSTORE";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/vendure")
}

/// Whether Vendure is installed: `Ok` to run, `Err(why)` to skip. With [`REQUIRE_ENV`] set,
/// absence panics instead.
pub fn installed(test: &str) -> bool {
    let out = Command::new(script()).arg("path").output();
    let why = match out {
        Ok(o) if o.status.success() => return true,
        Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_owned(),
        Err(e) => format!("cannot run scripts/vendure: {e}"),
    };
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: {why}, and {REQUIRE_ENV}=1 makes the real-store test mandatory");
    }
    eprintln!(
        "SKIPPED: {test}: {why}. Run `scripts/vendure install` to run the real-Vendure test."
    );
    false
}

/// A running Vendure.
pub struct Vendure {
    /// `http://127.0.0.1:P/admin-api`.
    pub admin_url: String,
    /// `http://127.0.0.1:P/shop-api`.
    pub shop_url: String,
    /// Seconds from spawn to ready.
    pub start_secs: f64,
    dir: tempfile::TempDir,
}

impl Vendure {
    /// Starts a fresh store.
    pub fn start() -> Vendure {
        let dir = tempfile::tempdir().expect("tempdir");
        let t0 = Instant::now();
        let out = Command::new(script())
            .args(["start", "--dir"])
            .arg(dir.path())
            .args(["--timeout", "90"])
            .output()
            .expect("run scripts/vendure start");
        assert!(
            out.status.success(),
            "scripts/vendure start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.path().join("vendure.log")).unwrap_or_default()
        );
        let urls = std::fs::read_to_string(dir.path().join("urls.env")).expect("urls.env");
        let get = |key: &str| {
            urls.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing from urls.env"))
                .to_owned()
        };
        Vendure {
            admin_url: get("VENDURE_ADMIN_API"),
            shop_url: get("VENDURE_SHOP_API"),
            start_secs: t0.elapsed().as_secs_f64(),
            dir,
        }
    }

    /// The tail of Vendure's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("vendure.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Vendure {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", "--dir"])
            .arg(self.dir.path())
            .status();
    }
}

/// A GraphQL session on one API (admin or shop), carrying the `vendure-auth-token` it was given.
pub struct Gql {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Gql {
    /// A client without a session.
    pub fn new(url: &str) -> Gql {
        omnistock_connectors::common::http::install_crypto_provider();
        Gql {
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("http client"),
            url: url.to_owned(),
            token: None,
        }
    }

    /// An admin session (superadmin, as scripts/vendure configures it).
    pub async fn admin(url: &str) -> Gql {
        let mut g = Gql::new(url);
        let data = g
            .run(
                "mutation($username: String!, $password: String!) { login(username: $username, password: $password) { __typename ... on ErrorResult { errorCode message } } }",
                json!({"username": "superadmin", "password": "superadmin"}),
            )
            .await;
        assert_eq!(data["login"]["__typename"], "CurrentUser", "{data}");
        assert!(g.token.is_some(), "no vendure-auth-token header");
        g
    }

    /// Runs a document; panics on GraphQL errors; returns `data`.
    pub async fn run(&mut self, query: &str, variables: Value) -> Value {
        let mut req = self
            .http
            .post(&self.url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("vendure answers");
        if let Some(t) = resp
            .headers()
            .get("vendure-auth-token")
            .and_then(|v| v.to_str().ok())
        {
            self.token = Some(t.to_owned());
        }
        let body: Value = resp.json().await.expect("json");
        assert!(body.get("errors").is_none(), "GraphQL errors: {body}");
        body["data"].clone()
    }
}

/// A product with one variant, as a merchant would create it; returns the variant id.
pub async fn create_variant(
    admin: &mut Gql,
    sku: &str,
    name: &str,
    price: i64,
    stock: i64,
) -> String {
    let product = admin
        .run(
            "mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }",
            json!({"input": {"enabled": true, "translations": [{"languageCode": "en", "name": name,
                "slug": sku.to_lowercase(), "description": name}]}}),
        )
        .await;
    let id = product["createProduct"]["id"].as_str().expect("product id");
    let variants = admin
        .run(
            "mutation($input: [CreateProductVariantInput!]!) { createProductVariants(input: $input) { id sku } }",
            json!({"input": [{"productId": id, "sku": sku, "price": price, "trackInventory": "TRUE",
                "stockOnHand": stock, "translations": [{"languageCode": "en", "name": name}]}]}),
        )
        .await;
    variants["createProductVariants"][0]["id"]
        .as_str()
        .expect("variant id")
        .to_owned()
}

/// (id, stockOnHand, stockAllocated, enabled) of the first variant with this SKU.
pub async fn variant(admin: &mut Gql, sku: &str) -> Option<(String, i64, i64, bool)> {
    let data = admin
        .run(
            "query($options: ProductVariantListOptions) { productVariants(options: $options) { items { id sku stockOnHand stockAllocated enabled } } }",
            json!({"options": {"filter": {"sku": {"eq": sku}}, "sort": {"id": "ASC"}}}),
        )
        .await;
    let v = data["productVariants"]["items"].get(0)?.clone();
    Some((
        v["id"].as_str()?.to_owned(),
        v["stockOnHand"].as_i64()?,
        v["stockAllocated"].as_i64()?,
        v["enabled"].as_bool()?,
    ))
}

/// A guest checkout through the Shop API (realstore.md §2a): returns (order id, order code).
pub async fn guest_checkout(shop_url: &str, variant_id: &str, quantity: u32) -> (String, String) {
    let mut shop = Gql::new(shop_url);
    let added = shop
        .run(
            "mutation($productVariantId: ID!, $quantity: Int!) { addItemToOrder(productVariantId: $productVariantId, quantity: $quantity) { __typename ... on Order { id code } ... on ErrorResult { errorCode message } } }",
            json!({"productVariantId": variant_id, "quantity": quantity}),
        )
        .await;
    assert_eq!(added["addItemToOrder"]["__typename"], "Order", "{added}");
    shop.run(
        "mutation($input: CreateCustomerInput!) { setCustomerForOrder(input: $input) { __typename } }",
        json!({"input": {"emailAddress": "buyer@example.com", "firstName": "Ann", "lastName": "Buyer"}}),
    )
    .await;
    shop.run(
        "mutation($input: CreateAddressInput!) { setOrderShippingAddress(input: $input) { __typename } }",
        json!({"input": {"fullName": "Ann Buyer", "streetLine1": "1 High St", "city": "London",
            "postalCode": "N1 1AA", "countryCode": "GB"}}),
    )
    .await;
    shop.run(
        "mutation($shippingMethodId: [ID!]!) { setOrderShippingMethod(shippingMethodId: $shippingMethodId) { __typename } }",
        json!({"shippingMethodId": ["1"]}),
    )
    .await;
    let moved = shop
        .run(
            "mutation($state: String!) { transitionOrderToState(state: $state) { __typename ... on ErrorResult { errorCode message } } }",
            json!({"state": "ArrangingPayment"}),
        )
        .await;
    assert_eq!(
        moved["transitionOrderToState"]["__typename"], "Order",
        "{moved}"
    );
    let paid = shop
        .run(
            "mutation($input: PaymentInput!) { addPaymentToOrder(input: $input) { __typename ... on Order { id code state } ... on ErrorResult { errorCode message } } }",
            json!({"input": {"method": "standard-payment", "metadata": {}}}),
        )
        .await;
    let order = &paid["addPaymentToOrder"];
    assert_eq!(order["state"], "PaymentSettled", "{paid}");
    (
        order["id"].as_str().expect("id").to_owned(),
        order["code"].as_str().expect("code").to_owned(),
    )
}

/// The merchant cancels a whole order in the Admin API.
pub async fn cancel_order(admin: &mut Gql, order_id: &str) {
    let data = admin
        .run(
            "mutation($input: CancelOrderInput!) { cancelOrder(input: $input) { __typename ... on Order { state } ... on ErrorResult { errorCode message } } }",
            json!({"input": {"orderId": order_id, "reason": "omnistock realstore test"}}),
        )
        .await;
    assert_eq!(data["cancelOrder"]["state"], "Cancelled", "{data}");
}
