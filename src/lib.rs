//! omnistock: a multichannel listing and inventory sync daemon.
//!
//! The master catalog lives in SQL ([`store`], [`catalog`]); every catalog or stock change
//! recomputes what each channel should show in the same transaction ([`sync`]); connectors push it
//! out. [`cli`] is the operator's contract, [`daemon`] the long-running process.

pub mod catalog;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod http;
pub mod orders;
pub mod reconcile;
pub mod schedule;
pub mod status;
pub mod store;
pub mod sync;
pub mod telemetry;
