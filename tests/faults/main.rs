//! The fault suite (DESIGN §9, issue 6): each test breaks something on purpose — kills the daemon,
//! delivers orders twice, takes a marketplace down, storms it with 429s, restarts the database,
//! injects drift, runs two instances and kills one — then checks the invariants I1–I6
//! ([`invariants::check`]) and records what it tried in the fault summary ([`summary`]).
//! Runs on SQLite and PostgreSQL (`OMNISTOCK_TEST_DB`); the multi-instance and database-restart
//! tests need PostgreSQL and say so when skipped on SQLite.

#[path = "../support/mod.rs"]
mod support;

#[path = "../engine/helpers.rs"]
mod helpers;

mod invariants;
mod summary;

mod delivery;
mod drift;
mod instances;
mod kill;
mod last_unit;
mod model;
mod outage;
mod pg_restart;
mod throttle;
mod util;
