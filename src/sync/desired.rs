//! What a channel should show: the pure math of DESIGN §4, with every step kept for `explain`.
//!
//! No I/O here. [`channel_quantity`] turns available units into the shown quantity through buffer,
//! percent, max and min_shown; [`channel_price`] turns a base price into a channel price through
//! multiplier, add and round_to. Both return a breakdown the CLI prints verbatim.

use std::fmt;

/// Resolved stock knobs for one (channel, SKU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockKnobs {
    /// Units held back.
    pub buffer: i64,
    /// Share shown, 0–100.
    pub percent: u32,
    /// Cap, if any.
    pub max: Option<i64>,
    /// Floor while any unit is available.
    pub min_shown: i64,
}

impl Default for StockKnobs {
    fn default() -> Self {
        StockKnobs {
            buffer: 0,
            percent: 100,
            max: None,
            min_shown: 0,
        }
    }
}

/// Every step from available units to the shown quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantitySteps {
    /// Σ (on_hand − reserved) over the channel's locations (bundles: min over components).
    pub available: i64,
    /// The knobs used.
    pub knobs: StockKnobs,
    /// available − buffer.
    pub after_buffer: i64,
    /// floor(after_buffer × percent / 100), not below 0.
    pub after_percent: i64,
    /// After the max cap.
    pub after_max: i64,
    /// The final quantity shown.
    pub shown: i64,
}

/// Channel quantity = clamp(floor((available − buffer) × percent/100), 0, max), then raised to
/// `min_shown` (never above available) only when available > 0.
pub fn channel_quantity(available: i64, knobs: StockKnobs) -> QuantitySteps {
    let after_buffer = available.saturating_sub(knobs.buffer.max(0));
    let pct = i128::from(knobs.percent.min(100));
    // floor division; negative values clamp to 0 next anyway.
    let after_percent = if after_buffer <= 0 {
        0
    } else {
        (i128::from(after_buffer) * pct / 100) as i64
    };
    let after_max = match knobs.max {
        Some(m) => after_percent.min(m.max(0)),
        None => after_percent,
    };
    let shown = if available > 0 && after_max < knobs.min_shown {
        let floor = knobs.min_shown.min(available);
        after_max.max(floor)
    } else {
        after_max
    };
    QuantitySteps {
        available,
        knobs,
        after_buffer,
        after_percent,
        after_max,
        shown,
    }
}

impl fmt::Display for QuantitySteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.knobs;
        write!(f, "available {}", self.available)?;
        write!(f, " − buffer {} = {}", k.buffer, self.after_buffer)?;
        write!(f, " → × {}% = {}", k.percent, self.after_percent)?;
        if let Some(m) = k.max {
            write!(f, " → max {} = {}", m, self.after_max)?;
        }
        if k.min_shown > 0 {
            write!(f, " → min_shown {} = {}", k.min_shown, self.shown)?;
        }
        write!(f, " ⇒ shows {}", self.shown)
    }
}

/// A decimal as mantissa × 10^-scale, exact (no floats in money).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    /// Digits as an integer.
    pub mantissa: i128,
    /// Digits after the point.
    pub scale: u32,
}

impl Decimal {
    /// Parses `1.15`, `-0.50`, `2` with the config's exact decimal parser (at most 6 fraction
    /// digits); `None` when it is not a decimal.
    pub fn parse(text: &str) -> Option<Decimal> {
        text.trim()
            .parse::<crate::config::Decimal>()
            .ok()
            .map(Decimal::from)
    }

    /// This amount in minor units of a currency with `exponent` digits, rounded half away from zero.
    pub fn to_minor(self, exponent: u32) -> i64 {
        let v = if self.scale <= exponent {
            self.mantissa * 10i128.pow(exponent - self.scale)
        } else {
            div_round_half_up(self.mantissa, 10i128.pow(self.scale - exponent))
        };
        clamp_i64(v)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let p = 10i128.pow(self.scale);
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let a = self.mantissa.abs();
        write!(f, "{sign}{}.{:0w$}", a / p, a % p, w = self.scale as usize)
    }
}

impl From<crate::config::Decimal> for Decimal {
    fn from(d: crate::config::Decimal) -> Self {
        Decimal {
            mantissa: i128::from(d.mantissa()),
            scale: d.scale(),
        }
    }
}

/// n / d rounded half away from zero (d > 0).
fn div_round_half_up(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if 2 * r.abs() >= d { q + n.signum() } else { q }
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Resolved price knobs for one (channel, SKU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PriceKnobs {
    /// Factor on the base price.
    pub multiplier: Option<Decimal>,
    /// Added after the multiplier (major units).
    pub add: Option<Decimal>,
    /// Raise to the nearest amount ending in this (major units, e.g. 0.99).
    pub round_to: Option<Decimal>,
}

/// Every step from base price to channel price, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSteps {
    /// The catalog price.
    pub base: i64,
    /// The knobs used.
    pub knobs: PriceKnobs,
    /// base × multiplier, half up.
    pub after_multiplier: i64,
    /// + add.
    pub after_add: i64,
    /// The final price (after round_to, never negative).
    pub price: i64,
    /// Minor-unit digits of the currency.
    pub exponent: u32,
}

/// Price = base × multiplier (half up to the minor unit) + add, then round_to; never negative.
pub fn channel_price(base_minor: i64, exponent: u32, knobs: PriceKnobs) -> PriceSteps {
    let after_multiplier = match knobs.multiplier {
        Some(m) => clamp_i64(div_round_half_up(
            i128::from(base_minor) * m.mantissa,
            10i128.pow(m.scale),
        )),
        None => base_minor,
    };
    let after_add = match knobs.add {
        Some(a) => after_multiplier.saturating_add(a.to_minor(exponent)),
        None => after_multiplier,
    };
    let mut price = after_add.max(0);
    if let Some(r) = knobs.round_to {
        price = round_up_to_ending(price, r.to_minor(exponent));
    }
    PriceSteps {
        base: base_minor,
        knobs,
        after_multiplier,
        after_add,
        price,
        exponent,
    }
}

/// The smallest amount ≥ `price` whose last digits equal `ending` (0.99 → …99 in minor units).
/// The modulus is the smallest power of ten above `ending`: 99 → 100, 999 → 1000, 5 → 10.
pub fn round_up_to_ending(price: i64, ending: i64) -> i64 {
    if ending <= 0 {
        return price;
    }
    let mut modulus: i64 = 10;
    while modulus <= ending {
        modulus = modulus.saturating_mul(10);
    }
    let candidate = price - price.rem_euclid(modulus) + ending;
    if candidate >= price {
        candidate
    } else {
        candidate.saturating_add(modulus)
    }
}

impl fmt::Display for PriceSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = |v: i64| omnistock_connectors::model::format_minor(v, self.exponent);
        write!(f, "base {}", m(self.base))?;
        if let Some(x) = self.knobs.multiplier {
            write!(f, " → × {x} = {}", m(self.after_multiplier))?;
        }
        if let Some(a) = self.knobs.add {
            write!(f, " → + {a} = {}", m(self.after_add))?;
        }
        if let Some(r) = self.knobs.round_to {
            write!(f, " → round to …{r} = {}", m(self.price))?;
        }
        write!(f, " ⇒ {}", m(self.price))
    }
}

/// A bundle's available units: min over components of floor(component available / qty);
/// 0 when it has no components.
pub fn bundle_available(components: impl IntoIterator<Item = (i64, i64)>) -> i64 {
    components
        .into_iter()
        .map(|(available, qty)| if qty <= 0 { 0 } else { available.max(0) / qty })
        .min()
        .unwrap_or(0)
}

/// `*` matches any run, `?` one character; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn knobs(buffer: i64, percent: u32, max: Option<i64>, min_shown: i64) -> StockKnobs {
        StockKnobs {
            buffer,
            percent,
            max,
            min_shown,
        }
    }

    #[test]
    fn quantity_examples() {
        assert_eq!(channel_quantity(10, StockKnobs::default()).shown, 10);
        assert_eq!(channel_quantity(10, knobs(2, 100, None, 0)).shown, 8);
        assert_eq!(channel_quantity(10, knobs(2, 50, None, 0)).shown, 4);
        assert_eq!(
            channel_quantity(11, knobs(0, 50, None, 0)).shown,
            5,
            "floor"
        );
        assert_eq!(channel_quantity(100, knobs(2, 100, Some(50), 0)).shown, 50);
        assert_eq!(channel_quantity(1, knobs(2, 100, None, 0)).shown, 0);
        assert_eq!(
            channel_quantity(1, knobs(2, 100, None, 1)).shown,
            1,
            "min_shown keeps the listing alive"
        );
        assert_eq!(
            channel_quantity(2, knobs(5, 100, None, 3)).shown,
            2,
            "min_shown never above available"
        );
        assert_eq!(
            channel_quantity(0, knobs(0, 100, None, 3)).shown,
            0,
            "min_shown only when available"
        );
        assert_eq!(
            channel_quantity(-4, StockKnobs::default()).shown,
            0,
            "oversold location"
        );
    }

    #[test]
    fn price_examples_from_design() {
        let d = |s| Some(Decimal::parse(s).unwrap());
        let k = PriceKnobs {
            multiplier: None,
            add: None,
            round_to: d("0.99"),
        };
        assert_eq!(channel_price(1200, 2, k).price, 1299);
        assert_eq!(channel_price(2350, 2, k).price, 2399);
        assert_eq!(channel_price(1299, 2, k).price, 1299);
        let k = PriceKnobs {
            multiplier: d("1.15"),
            add: d("0.50"),
            round_to: d("0.99"),
        };
        // 10.50 × 1.15 = 12.075 → 12.08 (half up) + 0.50 = 12.58 → 12.99
        let s = channel_price(1050, 2, k);
        assert_eq!(
            (s.after_multiplier, s.after_add, s.price),
            (1208, 1258, 1299)
        );
        assert_eq!(
            channel_price(1000, 2, PriceKnobs::default()).price,
            1000,
            "no rule: unchanged"
        );
        let k = PriceKnobs {
            multiplier: None,
            add: d("-20"),
            round_to: None,
        };
        assert_eq!(channel_price(1000, 2, k).price, 0, "never negative");
        let k = PriceKnobs {
            multiplier: d("1.1"),
            add: None,
            round_to: None,
        };
        assert_eq!(
            channel_price(1500, 0, k).price,
            1650,
            "JPY has no minor unit"
        );
        assert_eq!(round_up_to_ending(1234, 999), 1999);
        assert_eq!(round_up_to_ending(1203, 5), 1205);
    }

    #[test]
    fn decimals() {
        assert_eq!(
            Decimal::parse("1.15"),
            Some(Decimal {
                mantissa: 115,
                scale: 2
            })
        );
        assert_eq!(Decimal::parse("-0.5").unwrap().to_minor(2), -50);
        assert_eq!(Decimal::parse("0.125").unwrap().to_minor(2), 13);
        assert_eq!(Decimal::parse("2").unwrap().to_string(), "2");
        assert_eq!(Decimal::parse("0.05").unwrap().to_string(), "0.05");
        for bad in ["", "1e2", "1.2.3", "abc", ".", "0.1234567"] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("CLEAR-*", "CLEAR-123"));
        assert!(glob_match("*", ""));
        assert!(glob_match("A?C", "ABC"));
        assert!(!glob_match("A?C", "AC"));
        assert!(glob_match("*-RED-*", "MUG-RED-XL"));
        assert!(!glob_match("CLEAR-*", "clear-1"));
    }

    #[test]
    fn bundles() {
        assert_eq!(bundle_available([(10, 2), (9, 4)]), 2);
        assert_eq!(bundle_available([(10, 2)]), 5);
        assert_eq!(bundle_available(std::iter::empty()), 0);
        assert_eq!(bundle_available([(-3, 1), (10, 1)]), 0);
    }

    proptest! {
        #[test]
        fn quantity_never_negative_nor_above_available(
            available in -1000i64..100_000,
            buffer in 0i64..1000,
            percent in 0u32..=100,
            max in proptest::option::of(0i64..100_000),
            min_shown in 0i64..100,
        ) {
            let s = channel_quantity(available, knobs(buffer, percent, max, min_shown));
            prop_assert!(s.shown >= 0);
            prop_assert!(s.shown <= available.max(0));
            if let Some(m) = max { prop_assert!(s.shown <= m.max(min_shown.min(available.max(0)))); }
            // idempotent: same inputs, same answer
            prop_assert_eq!(s.clone(), channel_quantity(available, knobs(buffer, percent, max, min_shown)));
        }

        #[test]
        fn quantity_monotonic_in_available(a in 0i64..10_000, extra in 0i64..100, buffer in 0i64..50, percent in 0u32..=100) {
            let k = knobs(buffer, percent, None, 0);
            prop_assert!(channel_quantity(a, k).shown <= channel_quantity(a + extra, k).shown);
        }

        #[test]
        fn bundle_is_min_of_components(comps in proptest::collection::vec((0i64..1000, 1i64..10), 1..6)) {
            let b = bundle_available(comps.iter().copied());
            for (avail, qty) in &comps {
                prop_assert!(b * qty <= *avail, "never promises more than a component has");
            }
            prop_assert!(comps.iter().any(|(a, q)| (b + 1) * q > *a), "and is the largest such");
        }

        #[test]
        fn round_to_raises_to_the_nearest_ending(p in 0i64..10_000_000, ending in 1i64..999) {
            let r = round_up_to_ending(p, ending);
            let mut modulus = 10; while modulus <= ending { modulus *= 10; }
            prop_assert!(r >= p);
            prop_assert!(r - p < modulus);
            prop_assert_eq!(r.rem_euclid(modulus), ending);
        }

        #[test]
        fn price_never_negative(base in 0i64..10_000_000, mult in 0i64..500, add in -10_000i64..10_000) {
            let k = PriceKnobs {
                multiplier: Some(Decimal { mantissa: i128::from(mult), scale: 2 }),
                add: Some(Decimal { mantissa: i128::from(add), scale: 2 }),
                round_to: None,
            };
            prop_assert!(channel_price(base, 2, k).price >= 0);
        }
    }
}
