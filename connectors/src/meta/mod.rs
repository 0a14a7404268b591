//! The meta connector (being built).
