//! Stories against the Shopify fake.
