//! The woocommerce connector (being built).
