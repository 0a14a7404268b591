//! Ledger idempotency keys for order stock moves.
//!
//! A key names one step of one order line at one (SKU, location):
//! `order:{channel}:{order_id}:{line_id}:{step}:{sku}:{location}`. The same step for the same line
//! and place always yields the same key, so a replayed delivery finds its key taken and moves
//! nothing. Channel order and line ids carry `:` of their own (Shopify's
//! `gid://shopify/Order/1`), so every part is escaped (`%` → `%25`, `:` → `%3A`): without that,
//! order `a:b` line `c` and order `a` line `b:c` would share keys and one would silently skip its
//! stock move.

use std::borrow::Cow;

/// One kind of stock move an order line makes. Each happens at most once per (line, SKU, location).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// reserved += n.
    Reserve,
    /// on_hand −= n (and reserved −= n when the line had reserved).
    Ship,
    /// reserved −= n: the order was cancelled before shipping.
    Release,
    /// on_hand += n: shipped units came back.
    Return,
}

impl Step {
    /// The key segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Reserve => "reserve",
            Step::Ship => "ship",
            Step::Release => "release",
            Step::Return => "return",
        }
    }

    /// The ledger `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Step::Reserve => "order_reserve",
            Step::Ship => "order_ship",
            Step::Release => "order_release",
            Step::Return => "order_return",
        }
    }
}

fn escape(s: &str) -> Cow<'_, str> {
    if s.contains([':', '%']) {
        Cow::Owned(s.replace('%', "%25").replace(':', "%3A"))
    } else {
        Cow::Borrowed(s)
    }
}

fn unescape(s: &str) -> String {
    // `%3A` first: an escaped `%` became `%25`, so `%253A` (a literal "%3A") must stay "%3A".
    s.replace("%3A", ":").replace("%25", "%")
}

/// The ledger `order_ref` of every move of one order: `order:{channel}:{order_id}`.
pub fn order_ref(channel: &str, external_id: &str) -> String {
    format!("order:{}:{}", escape(channel), escape(external_id))
}

/// The prefix shared by every key of one line: `order:{channel}:{order_id}:{line_id}`.
pub fn line_ref(channel: &str, external_id: &str, line_id: &str) -> String {
    format!("{}:{}", order_ref(channel, external_id), escape(line_id))
}

/// The idempotency key of `step` for the line `line_ref` at (`sku`, `location`).
pub fn movement_key(line_ref: &str, step: Step, sku: &str, location: &str) -> String {
    format!(
        "{line_ref}:{}:{}:{}",
        step.as_str(),
        escape(sku),
        escape(location)
    )
}

/// Splits a movement key into its line ref and step; `None` for keys that are not order keys.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.rsplitn(4, ':');
    let (_location, _sku, step, line) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // A line ref has exactly four segments: order, channel, order id, line id.
    (line.starts_with("order:") && line.matches(':').count() == 3).then_some((line, step))
}

/// (channel, order id, line id) of a line ref.
pub fn parse_line_ref(line_ref: &str) -> Option<(String, String, String)> {
    let mut parts = line_ref.split(':');
    if parts.next()? != "order" {
        return None;
    }
    let (c, o, l) = (parts.next()?, parts.next()?, parts.next()?);
    parts
        .next()
        .is_none()
        .then(|| (unescape(c), unescape(o), unescape(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_readable_for_plain_ids() {
        let line = line_ref("ebay", "12-345", "L1");
        assert_eq!(line, "order:ebay:12-345:L1");
        assert_eq!(
            movement_key(&line, Step::Reserve, "MUG-RED", "main"),
            "order:ebay:12-345:L1:reserve:MUG-RED:main"
        );
    }

    #[test]
    fn colons_in_ids_cannot_make_two_lines_share_a_key() {
        let a = line_ref("shop", "a:b", "c");
        let b = line_ref("shop", "a", "b:c");
        assert_ne!(a, b);
        let ka = movement_key(&a, Step::Ship, "X:Y", "main");
        let kb = movement_key(&a, Step::Ship, "X", "Y:main");
        assert_ne!(ka, kb);
        assert_eq!(split_key(&ka), Some((a.as_str(), "ship")));
    }

    #[test]
    fn line_refs_round_trip() {
        for (c, o, l) in [
            ("shop", "gid://shopify/Order/1", "gid://shopify/LineItem/2"),
            ("ebay", "100%:%3A", "%25"),
        ] {
            let r = line_ref(c, o, l);
            assert_eq!(parse_line_ref(&r), Some((c.into(), o.into(), l.into())));
            let k = movement_key(&r, Step::Return, "S:%", "L");
            assert_eq!(split_key(&k), Some((r.as_str(), "return")));
        }
        assert_eq!(split_key("manual:1234"), None);
        assert_eq!(split_key("import:abc:1:2:3:4"), None);
        assert_eq!(parse_line_ref("order:a:b"), None);
    }
}
