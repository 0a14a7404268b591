//! The shopify connector (being built).
