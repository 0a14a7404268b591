//! The Vendure fake (placeholder until it is built): mounted at `/vendure`.

use std::sync::Arc;

use axum::Router;

use crate::Shared;

/// How to start the Vendure fake.
#[derive(Debug, Clone, Default)]
pub struct VendureOptions {}

/// Inspection and control of the Vendure fake.
#[derive(Debug, Clone)]
pub struct VendureHandle {
    #[allow(dead_code)]
    shared: Arc<Shared>,
}

impl VendureHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: VendureOptions) -> anyhow::Result<VendureHandle> {
        let _ = opts;
        Ok(VendureHandle { shared })
    }

    /// The `/vendure` router.
    pub(crate) fn router(&self) -> Router {
        Router::new()
    }

    /// The `/_control/vendure` router.
    pub(crate) fn control_router(&self) -> Router {
        Router::new()
    }
}
