//! Order ingestion: one transaction per order (order row, ledger movements, reservations and the
//! desired-state recompute for every channel).
