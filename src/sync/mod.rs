//! Desired state: what every channel should show, and the dispatchers that push it.

pub mod bulk;
pub mod channels;
pub mod desired;
pub mod dispatch;
pub mod engine;
pub mod intake;
pub mod plan;
pub mod recompute;

pub use plan::SyncPlan;
pub use recompute::{RecomputeStats, recompute, recompute_all};
