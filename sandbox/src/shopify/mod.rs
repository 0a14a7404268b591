//! The Shopify fake (placeholder until it is built): mounted at `/shopify`.

use std::sync::Arc;

use axum::Router;

use crate::Shared;

/// How to start the Shopify fake.
#[derive(Debug, Clone, Default)]
pub struct ShopifyOptions {}

/// Inspection and control of the Shopify fake.
#[derive(Debug, Clone)]
pub struct ShopifyHandle {
    #[allow(dead_code)]
    shared: Arc<Shared>,
}

impl ShopifyHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: ShopifyOptions) -> anyhow::Result<ShopifyHandle> {
        let _ = opts;
        Ok(ShopifyHandle { shared })
    }

    /// The `/shopify` router.
    pub(crate) fn router(&self) -> Router {
        Router::new()
    }

    /// The `/_control/shopify` router.
    pub(crate) fn control_router(&self) -> Router {
        Router::new()
    }
}
