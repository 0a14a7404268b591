//! Plumbing every connector shares: credentials, limits, the HTTP client and error
//! classification, the OAuth token cache, rate budgets, backoff and batching.
//!
//! Connectors classify, this module acts (STYLE habit 5). A connector names what happened
//! (a 429 and its `Retry-After`, a rejected item and its code); the code here paces requests
//! ([`Budget`]), spaces retries ([`Backoff`]), refreshes tokens once for all callers
//! ([`TokenCache`]) and turns HTTP into [`crate::ConnectorError`] classes ([`http`]). Amazon,
//! Meta, Shopify, WooCommerce and Vendure connectors build on the same pieces as eBay.

pub mod backoff;
pub mod batch;
pub mod budget;
pub mod gate;
pub mod http;
pub mod limits;
pub mod sensitive;
pub mod stats;
pub mod token;

pub use backoff::Backoff;
pub use batch::batches;
pub use budget::{Budget, BudgetSnapshot};
pub use gate::{SendGate, maybe_gated, with_send_gate};
pub use http::{HttpResponse, MAX_BODY_BYTES};
pub use limits::Limits;
pub use sensitive::Secret;
pub use stats::ConnectorStats;
pub use token::{AccessToken, FetchedToken, TokenCache, TokenStats, read_token_response};
