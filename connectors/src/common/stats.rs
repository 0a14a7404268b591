//! Counters a connector publishes for metrics and `omnistock status`
//! ([`crate::Connector::stats`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::budget::BudgetSnapshot;

/// What one connector has done since it was built. All counters only grow, except the gauges
/// among `extra` (documented by each connector).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConnectorStats {
    /// HTTP requests sent (token calls included).
    pub requests: u64,
    /// Answers that were 429 (or the marketplace's own throttling signal).
    pub rate_limited: u64,
    /// Calls that failed as a whole, other than 429s.
    pub errors: u64,
    /// Access-token refreshes.
    pub token_refreshes: u64,
    /// Budget acquisitions that had to wait, over all operations.
    pub budget_waits: u64,
    /// Time spent waiting for the budget, over all operations, in milliseconds.
    pub budget_wait_ms: u64,
    /// Budget pauses ordered after 429s, over all operations.
    pub budget_pauses: u64,
    /// Per-operation budgets.
    pub budgets: Vec<BudgetSnapshot>,
    /// Connector-specific counters and gauges (eBay: `revisions_max_today`,
    /// `revision_held_items` …), by stable snake_case name.
    pub extra: BTreeMap<&'static str, u64>,
}

impl ConnectorStats {
    /// Fills the budget totals and the per-operation list from a budget snapshot.
    pub fn with_budgets(mut self, budgets: Vec<BudgetSnapshot>) -> Self {
        self.budget_waits = budgets.iter().map(|b| b.waits).sum();
        self.budget_wait_ms = budgets.iter().map(|b| b.waited_ms).sum();
        self.budget_pauses = budgets.iter().map(|b| b.pauses).sum();
        self.budgets = budgets;
        self
    }
}
