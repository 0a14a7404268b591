//! HTTP-level stories against the Vendure fake: a reqwest client speaking the Admin and Shop
//! APIs as a Vendure client would, the [`VendureHandle`] checking state and records behind it.

use serde_json::{Value, json};

use super::*;
use crate::{FaultKind, FaultRule, Sandbox, SandboxOptions};

struct Harness {
    sandbox: Sandbox,
    http: reqwest::Client,
}

struct Resp {
    status: u16,
    token: Option<String>,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
    }
}

async fn start(listings: Vec<VendureSeedListing>) -> Harness {
    let sandbox = Sandbox::start(SandboxOptions {
        vendure: VendureOptions {
            listings,
            ..VendureOptions::default()
        },
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox starts");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds");
    Harness { sandbox, http }
}

impl Harness {
    fn v(&self) -> VendureHandle {
        self.sandbox.vendure()
    }

    async fn post(&self, url: &str, token: Option<&str>, body: Vec<u8>) -> Resp {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("answer");
        let status = resp.status().as_u16();
        let token = resp
            .headers()
            .get(AUTH_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = resp.bytes().await.expect("body");
        Resp {
            status,
            token,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn admin(&self, token: Option<&str>, query: &str, variables: Value) -> Resp {
        let body = json!({"query": query, "variables": variables}).to_string();
        self.post(&self.v().admin_api_url(), token, body.into_bytes())
            .await
    }

    async fn shop(&self, token: Option<&str>, query: &str, variables: Value) -> Resp {
        let body = json!({"query": query, "variables": variables}).to_string();
        self.post(&self.v().shop_api_url(), token, body.into_bytes())
            .await
    }

    async fn login(&self) -> String {
        let r = self
            .admin(
                None,
                "mutation L($username: String!, $password: String!) { login(username: $username, password: $password) { __typename ... on CurrentUser { id } } }",
                json!({"username": "superadmin", "password": "superadmin"}),
            )
            .await;
        assert_eq!(r.body["data"]["login"]["__typename"], "CurrentUser");
        r.token.expect("vendure-auth-token header")
    }
}

const VARIANTS: &str = "query($options: ProductVariantListOptions) { productVariants(options: $options) { totalItems items { id sku stockOnHand stockAllocated } } }";
const UPDATE: &str = "mutation($input: [UpdateProductVariantInput!]!) { updateProductVariants(input: $input) { id stockOnHand } }";

#[test]
fn root_fields_are_found_with_aliases_fragments_and_strings() {
    assert_eq!(root_names("{ orders { items { id } } }"), ["orders"]);
    assert_eq!(
        root_names(
            "query Q($o: OrderListOptions) { a: orders(options: $o) { items { id } } activeChannel { id } }"
        ),
        ["orders", "activeChannel"]
    );
    assert_eq!(
        root_names(
            "mutation { login(username: \"a}{\", password: \"b\") { __typename ... on CurrentUser { id } } }"
        ),
        ["login"]
    );
    assert_eq!(
        root_names("# comment {\n{ __typename productVariants { totalItems } }"),
        ["productVariants"]
    );
    assert!(root_names("not graphql").is_empty());
}

fn root_names(doc: &str) -> Vec<String> {
    api::root_fields(doc)
}

#[tokio::test]
async fn login_gives_a_bearer_token_and_admin_fields_need_it() {
    let h = start(vec![VendureSeedListing::new("A", 3, "1.00")]).await;
    let r = h.admin(None, VARIANTS, json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.code(), "FORBIDDEN");
    assert!(r.body["data"].is_null());
    let bad = h
        .admin(
            None,
            "mutation($username: String!, $password: String!) { login(username: $username, password: $password) { __typename } }",
            json!({"username": "superadmin", "password": "nope"}),
        )
        .await;
    assert_eq!(
        bad.body["data"]["login"]["errorCode"],
        "INVALID_CREDENTIALS_ERROR"
    );
    assert!(bad.token.is_none());
    let token = h.login().await;
    let r = h.admin(Some(&token), VARIANTS, json!({})).await;
    assert_eq!(r.body["data"]["productVariants"]["totalItems"], 1);
    h.v().expire_sessions();
    let r = h.admin(Some(&token), VARIANTS, json!({})).await;
    assert_eq!(r.code(), "FORBIDDEN");
    assert_eq!(h.v().request_count("productVariants"), 3);
    assert_eq!(h.v().request_count("login"), 2);
}

#[tokio::test]
async fn variants_filter_page_and_update_in_one_transaction() {
    let seeds = (0..5)
        .map(|i| VendureSeedListing::new(format!("S{i}"), 10, "2.50"))
        .collect();
    let h = start(seeds).await;
    let t = h.login().await;
    let r = h
        .admin(
            Some(&t),
            VARIANTS,
            json!({"options": {"filter": {"sku": {"in": ["S1", "S3", "X"]}}}}),
        )
        .await;
    assert_eq!(r.body["data"]["productVariants"]["totalItems"], 2);
    let r = h
        .admin(
            Some(&t),
            VARIANTS,
            json!({"options": {"skip": 3, "take": 10}}),
        )
        .await;
    assert_eq!(
        r.body["data"]["productVariants"]["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let r = h
        .admin(Some(&t), VARIANTS, json!({"options": {"take": 5000}}))
        .await;
    assert_eq!(r.code(), "USER_INPUT_ERROR");
    let id = |i: usize| (i + 1) * 2; // product, variant, product, variant …
    let r = h
        .admin(
            Some(&t),
            UPDATE,
            json!({"input": [{"id": id(0).to_string(), "stockOnHand": 4}, {"id": id(1).to_string(), "stockOnHand": -1}]}),
        )
        .await;
    assert_eq!(r.code(), "USER_INPUT_ERROR");
    assert_eq!(h.v().current_quantity("S0"), Some(10), "nothing applied");
    let r = h
        .admin(
            Some(&t),
            UPDATE,
            json!({"input": [{"id": "999", "stockOnHand": 4}]}),
        )
        .await;
    assert_eq!(r.code(), "ENTITY_NOT_FOUND");
    let r = h
        .admin(
            Some(&t),
            UPDATE,
            json!({"input": [{"id": id(0).to_string(), "stockLevels": [{"stockLocationId": "7", "stockOnHand": 1}]}]}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["message"],
        "FOREIGN KEY constraint failed"
    );
    let r = h
        .admin(
            Some(&t),
            UPDATE,
            json!({"input": [{"id": id(0).to_string(), "stockOnHand": 4, "price": 300}, {"id": id(1).to_string(), "stockLevels": [{"stockLocationId": "1", "stockOnHand": 6}]}]}),
        )
        .await;
    assert_eq!(r.body["data"]["updateProductVariants"][1]["stockOnHand"], 6);
    assert_eq!(h.v().current_quantity("S0"), Some(4));
    assert_eq!(h.v().current_price("S0").unwrap().value, "3.00");
    let writes = h.v().writes();
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].quantity, Some(4));
    // A reject_skus fault fails the whole mutation, like Vendure's transaction.
    h.v().faults().add(FaultRule::new(
        MARKETPLACE,
        "updateProductVariants",
        FaultKind::reject_skus(["S1"], 7, "no"),
    ));
    let r = h
        .admin(
            Some(&t),
            UPDATE,
            json!({"input": [{"id": id(0).to_string(), "stockOnHand": 1}, {"id": id(1).to_string(), "stockOnHand": 1}]}),
        )
        .await;
    assert_eq!(r.code(), "USER_INPUT_ERROR");
    assert_eq!(h.v().current_quantity("S0"), Some(4));
}

#[tokio::test]
async fn products_and_variants_are_created_with_unique_slugs() {
    let h = start(vec![]).await;
    let t = h.login().await;
    let create =
        "mutation($input: CreateProductInput!) { createProduct(input: $input) { id slug } }";
    let input = json!({"input": {"translations": [{"languageCode": "en", "name": "Mug", "slug": "mug", "description": ""}]}});
    let a = h.admin(Some(&t), create, input.clone()).await;
    let b = h.admin(Some(&t), create, input).await;
    assert_eq!(a.body["data"]["createProduct"]["slug"], "mug");
    assert_eq!(b.body["data"]["createProduct"]["slug"], "mug-2");
    let pid = a.body["data"]["createProduct"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .admin(
            Some(&t),
            "mutation($input: [CreateProductVariantInput!]!) { createProductVariants(input: $input) { id sku } }",
            json!({"input": [{"productId": pid, "sku": "MUG-1", "price": 999, "stockOnHand": 3,
                "translations": [{"languageCode": "en", "name": "Mug"}]}]}),
        )
        .await;
    assert_eq!(r.body["data"]["createProductVariants"][0]["sku"], "MUG-1");
    assert_eq!(h.v().current_quantity("MUG-1"), Some(3));
    assert_eq!(h.v().current_price("MUG-1").unwrap().value, "9.99");
}

#[tokio::test]
async fn guest_checkout_allocates_and_orders_filter_by_whole_seconds() {
    let h = start(vec![VendureSeedListing::new("MUG", 5, "10.00")]).await;
    let v = h.v();
    let variant_id = v.variant("MUG").unwrap()["id"].as_str().unwrap().to_owned();
    let r = h
        .shop(
            None,
            "mutation($productVariantId: ID!, $quantity: Int!) { addItemToOrder(productVariantId: $productVariantId, quantity: $quantity) { __typename } }",
            json!({"productVariantId": variant_id, "quantity": 2}),
        )
        .await;
    let shop = r.token.expect("a shop session");
    let step = |q: &'static str, vars: Value| {
        let shop = shop.clone();
        let h = &h;
        async move { h.shop(Some(&shop), q, vars).await }
    };
    step("mutation($input: CreateCustomerInput!) { setCustomerForOrder(input: $input) { __typename } }",
        json!({"input": {"emailAddress": "a@b.c"}})).await;
    step("mutation($input: CreateAddressInput!) { setOrderShippingAddress(input: $input) { __typename } }",
        json!({"input": {"streetLine1": "x", "countryCode": "GB"}})).await;
    step("mutation($shippingMethodId: [ID!]!) { setOrderShippingMethod(shippingMethodId: $shippingMethodId) { __typename } }",
        json!({"shippingMethodId": ["1"]})).await;
    let r = step(
        "mutation($state: String!) { transitionOrderToState(state: $state) { __typename } }",
        json!({"state": "ArrangingPayment"}),
    )
    .await;
    assert_eq!(
        r.body["data"]["transitionOrderToState"]["__typename"],
        "Order"
    );
    let r = step(
        "mutation($input: PaymentInput!) { addPaymentToOrder(input: $input) { __typename } }",
        json!({"input": {"method": "standard-payment"}}),
    )
    .await;
    let order = &r.body["data"]["addPaymentToOrder"];
    assert_eq!(order["state"], "PaymentSettled", "{}", r.body);
    assert_eq!(v.stock_allocated("MUG"), Some(2));
    assert_eq!(v.stock_on_hand("MUG"), Some(5));
    assert_eq!(v.current_quantity("MUG"), Some(3));

    let t = h.login().await;
    let updated = order["updatedAt"].as_str().unwrap().to_owned();
    assert!(updated.ends_with(".000Z"), "whole seconds: {updated}");
    let orders = "query($options: OrderListOptions) { orders(options: $options) { totalItems items { code state } } }";
    let r = h
        .admin(Some(&t), orders, json!({"options": {"filter": {"updatedAt": {"after": updated}, "active": {"eq": false}}}}))
        .await;
    assert_eq!(r.body["data"]["orders"]["totalItems"], 0, "after is strict");
    let before =
        chrono::DateTime::parse_from_rfc3339(&updated).unwrap() - chrono::Duration::seconds(1);
    let r = h
        .admin(Some(&t), orders, json!({"options": {"filter": {"updatedAt": {"after": before.to_rfc3339()}, "active": {"eq": false}}}}))
        .await;
    assert_eq!(r.body["data"]["orders"]["totalItems"], 1);
    // Cancel through the Admin API restores the stock; again is an ErrorResult.
    let id = order["id"].as_str().unwrap();
    let cancel =
        "mutation($input: CancelOrderInput!) { cancelOrder(input: $input) { __typename } }";
    let r = h
        .admin(Some(&t), cancel, json!({"input": {"orderId": id}}))
        .await;
    assert_eq!(r.body["data"]["cancelOrder"]["state"], "Cancelled");
    assert_eq!(v.current_quantity("MUG"), Some(5));
    let r = h
        .admin(Some(&t), cancel, json!({"input": {"orderId": id}}))
        .await;
    assert_eq!(
        r.body["data"]["cancelOrder"]["errorCode"],
        "ORDER_STATE_TRANSITION_ERROR"
    );
    // Buying more than is left is an ErrorResult.
    let r = h
        .shop(
            None,
            "mutation($productVariantId: ID!, $quantity: Int!) { addItemToOrder(productVariantId: $productVariantId, quantity: $quantity) { __typename } }",
            json!({"productVariantId": variant_id, "quantity": 6}),
        )
        .await;
    assert_eq!(
        r.body["data"]["addItemToOrder"]["errorCode"],
        "INSUFFICIENT_STOCK_ERROR"
    );
}

#[tokio::test]
async fn handle_orders_drift_and_hostile_requests() {
    let h = start(vec![VendureSeedListing::new("MUG", 5, "10.00")]).await;
    let v = h.v();
    let code = v.place_order(&[OrderLine::new("MUG", 2)]).unwrap();
    assert_eq!(v.current_quantity("MUG"), Some(3));
    assert!(matches!(
        v.place_order(&[OrderLine::new("MUG", 4)]),
        Err(ControlError::InsufficientQuantity { .. })
    ));
    assert!(matches!(
        v.place_order(&[OrderLine::new("NOPE", 1)]),
        Err(ControlError::UnknownSku(_))
    ));
    v.set_quantity_out_of_band("MUG", 9).unwrap();
    assert_eq!(v.current_quantity("MUG"), Some(9));
    assert_eq!(v.stock_on_hand("MUG"), Some(11));
    v.ship_order(&code).unwrap();
    assert_eq!(v.stock_on_hand("MUG"), Some(9));
    assert_eq!(v.current_quantity("MUG"), Some(9));
    assert_eq!(v.order(&code).unwrap()["state"], "Shipped");
    assert!(
        v.writes().is_empty(),
        "seeds, drift and sales are not writes"
    );
    // Hostile input: not JSON, no fields, an unknown field, an oversized body.
    let url = v.admin_api_url();
    let r = h.post(&url, None, b"{not json".to_vec()).await;
    assert_eq!(r.status, 400);
    let r = h.admin(None, "query { }", json!({})).await;
    assert_eq!(r.status, 400);
    let r = h.admin(None, "{ frobnicate }", json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "GRAPHQL_VALIDATION_FAILED");
    let r = h
        .post(&url, None, vec![b' '; crate::MAX_BODY_BYTES + 1])
        .await;
    assert_eq!(r.status, 413);
    // A fault by root field.
    v.faults()
        .add(FaultRule::new(MARKETPLACE, "orders", FaultKind::server_error(503)).times(1));
    let t = h.login().await;
    let r = h
        .admin(Some(&t), "{ orders { totalItems } }", json!({}))
        .await;
    assert_eq!(r.status, 503);
    let r = h
        .admin(Some(&t), "{ orders { totalItems } }", json!({}))
        .await;
    assert_eq!(r.body["data"]["orders"]["totalItems"], 1);
}
