//! The Woo fake (placeholder until it is built): mounted at `/woo`.

use std::sync::Arc;

use axum::Router;

use crate::Shared;

/// How to start the Woo fake.
#[derive(Debug, Clone, Default)]
pub struct WooOptions {}

/// Inspection and control of the Woo fake.
#[derive(Debug, Clone)]
pub struct WooHandle {
    #[allow(dead_code)]
    shared: Arc<Shared>,
}

impl WooHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: WooOptions) -> anyhow::Result<WooHandle> {
        let _ = opts;
        Ok(WooHandle { shared })
    }

    /// The `/woo` router.
    pub(crate) fn router(&self) -> Router {
        Router::new()
    }

    /// The `/_control/woo` router.
    pub(crate) fn control_router(&self) -> Router {
        Router::new()
    }
}
