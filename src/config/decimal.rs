//! Exact decimals for the price knobs (`multiplier`, `add`, `round_to`).
//!
//! Prices are computed in integer minor units, so a knob must never pass through `f64`: `"1.15"`
//! is kept as the integer 115 with scale 2. This is all the decimal arithmetic the config needs,
//! which is why it is not a dependency.

use std::fmt;
use std::str::FromStr;

/// Most fraction digits a knob may have: 1.123456 is already finer than any currency's minor unit.
pub const MAX_FRACTION_DIGITS: u32 = 6;

/// An exact decimal: `mantissa × 10^-scale` (`"-0.50"` is mantissa −50, scale 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    /// The digits as an integer, sign included.
    mantissa: i64,
    /// Digits after the point (at most [`MAX_FRACTION_DIGITS`]).
    scale: u32,
}

impl Decimal {
    /// The digits as an integer, sign included.
    pub fn mantissa(self) -> i64 {
        self.mantissa
    }

    /// How many of the digits are after the decimal point.
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// True when greater than zero.
    pub fn is_positive(self) -> bool {
        self.mantissa > 0
    }

    /// True when less than `whole` (an integer), compared exactly.
    pub fn is_less_than(self, whole: i64) -> bool {
        i128::from(self.mantissa) < i128::from(whole) * 10i128.pow(self.scale)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let digits = format!("{digits:0>width$}", width = scale + 1);
        let (whole, frac) = digits.split_at(digits.len() - scale);
        write!(f, "{sign}{whole}.{frac}")
    }
}

/// Why text is not a knob decimal; the `Display` completes "must be …, got X" messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not of the form `-12.34`.
    #[error("is not a decimal number such as 1.15 or \"-0.50\"")]
    Syntax,
    /// More than [`MAX_FRACTION_DIGITS`] digits after the point.
    #[error("has more than {MAX_FRACTION_DIGITS} digits after the decimal point")]
    TooPrecise,
    /// Does not fit in 64 bits once scaled.
    #[error("is too large")]
    TooLarge,
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Accepts `[+-]digits[.digits]`, nothing else (no exponent, no bare `.5`, no `1.`).
    fn from_str(s: &str) -> Result<Decimal, DecimalError> {
        let s = s.trim();
        let (negative, unsigned) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (whole, frac) = match unsigned.split_once('.') {
            Some((w, f)) => (w, f),
            None => (unsigned, ""),
        };
        let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(frac)
            || (unsigned.contains('.') && frac.is_empty())
        {
            return Err(DecimalError::Syntax);
        }
        let scale = u32::try_from(frac.len()).map_err(|_| DecimalError::TooPrecise)?;
        if scale > MAX_FRACTION_DIGITS {
            return Err(DecimalError::TooPrecise);
        }
        let magnitude: i64 = format!("{whole}{frac}")
            .parse()
            .map_err(|_| DecimalError::TooLarge)?;
        let mantissa = if negative { -magnitude } else { magnitude };
        Ok(Decimal { mantissa, scale })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<Decimal, DecimalError> {
        s.parse()
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(
            d("1.15").unwrap(),
            Decimal {
                mantissa: 115,
                scale: 2
            }
        );
        assert_eq!(
            d("-0.50").unwrap(),
            Decimal {
                mantissa: -50,
                scale: 2
            }
        );
        assert_eq!(
            d("+3").unwrap(),
            Decimal {
                mantissa: 3,
                scale: 0
            }
        );
        assert_eq!(d(" 0.000001 ").unwrap().scale(), 6);
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for bad in [
            "", "-", ".5", "1.", "1e3", "1,5", "abc", "1.2.3", "--1", "NaN",
        ] {
            assert_eq!(d(bad), Err(DecimalError::Syntax), "{bad:?}");
        }
        assert_eq!(d("1.1234567"), Err(DecimalError::TooPrecise));
        assert_eq!(d("99999999999999999999"), Err(DecimalError::TooLarge));
    }

    #[test]
    fn displays_as_written_modulo_sign() {
        for s in ["1.15", "-0.50", "0.000001", "12", "-3"] {
            assert_eq!(d(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn compares_with_whole_numbers_exactly() {
        assert!(d("999.999999").unwrap().is_less_than(1000));
        assert!(!d("1000.0").unwrap().is_less_than(1000));
        assert!(d("-1").unwrap().is_less_than(0));
    }
}
