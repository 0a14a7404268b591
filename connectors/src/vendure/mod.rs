//! The vendure connector (being built).
