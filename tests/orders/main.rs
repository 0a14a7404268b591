//! Order ingestion stories, on SQLite and PostgreSQL.

#[path = "../support/mod.rs"]
mod support;
