//! The Meta fake (placeholder until it is built): mounted at `/meta`.

use std::sync::Arc;

use axum::Router;

use crate::Shared;

/// How to start the Meta fake.
#[derive(Debug, Clone, Default)]
pub struct MetaOptions {}

/// Inspection and control of the Meta fake.
#[derive(Debug, Clone)]
pub struct MetaHandle {
    #[allow(dead_code)]
    shared: Arc<Shared>,
}

impl MetaHandle {
    pub(crate) fn new(shared: Arc<Shared>, opts: MetaOptions) -> anyhow::Result<MetaHandle> {
        let _ = opts;
        Ok(MetaHandle { shared })
    }

    /// The `/meta` router.
    pub(crate) fn router(&self) -> Router {
        Router::new()
    }

    /// The `/_control/meta` router.
    pub(crate) fn control_router(&self) -> Router {
        Router::new()
    }
}
