//! The neutral model: what the daemon asks of a channel and what a channel reports back.
//!
//! Quantities are whole units, money is integer minor units with an ISO 4217 currency (no floats
//! anywhere a price is computed), and SKUs are validated once at the edge ("parse, don't validate").

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest SKU accepted. eBay caps SKUs at 50 characters and Amazon at 40; we accept up to 100 and let
/// the connector refuse what its marketplace cannot hold, with the marketplace's own error.
pub const MAX_SKU_LEN: usize = 100;

/// A stock-keeping unit: 1–100 printable characters, no leading/trailing white space, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

/// Why a string is not a valid SKU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkuError {
    /// Empty or white space only.
    #[error("SKU is empty")]
    Empty,
    /// Over [`MAX_SKU_LEN`] characters.
    #[error("SKU is {0} characters long; at most {MAX_SKU_LEN} are allowed")]
    TooLong(usize),
    /// Has leading or trailing white space.
    #[error("SKU {0:?} has leading or trailing white space")]
    Padded(String),
    /// Contains a control character (newline, tab, NUL …).
    #[error("SKU {0:?} contains a control character")]
    Control(String),
}

impl Sku {
    /// Validates and wraps a SKU.
    pub fn parse(s: impl Into<String>) -> Result<Self, SkuError> {
        let s = s.into();
        if s.trim().is_empty() {
            return Err(SkuError::Empty);
        }
        let n = s.chars().count();
        if n > MAX_SKU_LEN {
            return Err(SkuError::TooLong(n));
        }
        if s.trim() != s {
            return Err(SkuError::Padded(s));
        }
        if s.chars().any(char::is_control) {
            return Err(SkuError::Control(s));
        }
        Ok(Sku(s))
    }

    /// The SKU text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = SkuError;
    fn try_from(s: String) -> Result<Self, SkuError> {
        Sku::parse(s)
    }
}

impl From<Sku> for String {
    fn from(s: Sku) -> String {
        s.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A whole number of units shown on a channel (never negative).
pub type Quantity = u32;

/// An ISO 4217 currency code: three ASCII upper-case letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses `usd` or `USD`.
    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        let b = s.trim().as_bytes();
        if b.len() != 3 || !b.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::Currency(s.to_owned()));
        }
        Ok(Currency([
            b[0].to_ascii_uppercase(),
            b[1].to_ascii_uppercase(),
            b[2].to_ascii_uppercase(),
        ]))
    }

    /// The code, e.g. `USD`.
    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (ISO 4217 minor unit): 0 for JPY, 3 for KWD, else 2.
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, MoneyError> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount in integer minor units of a currency (1299 USD = 12.99 USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents); never negative for prices.
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: Currency,
}

/// Why an amount or currency could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a three-letter code.
    #[error("{0:?} is not a three-letter ISO 4217 currency code")]
    Currency(String),
    /// Not a plain decimal (`12.99`).
    #[error("{0:?} is not a decimal amount such as 12.99")]
    Syntax(String),
    /// More fractional digits than the currency has.
    #[error("{amount:?} has more than {exponent} digits after the decimal point")]
    Precision {
        /// The text given.
        amount: String,
        /// The currency's minor-unit digits.
        exponent: u32,
    },
    /// Does not fit in 64 bits of minor units.
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Parses a plain decimal (`12.99`, `-0.5`, `3`) into minor units with `exponent` digits.
/// Refuses exponents, thousands separators and more fractional digits than the currency has.
pub fn parse_minor(text: &str, exponent: u32) -> Result<i64, MoneyError> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) {
        return Err(MoneyError::Syntax(text.to_owned()));
    }
    if frac.len() > exponent as usize {
        return Err(MoneyError::Precision {
            amount: text.to_owned(),
            exponent,
        });
    }
    let overflow = || MoneyError::Overflow(text.to_owned());
    let mut v: i64 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    for _ in frac.len()..exponent as usize {
        v = v.checked_mul(10).ok_or_else(overflow)?;
    }
    Ok(if neg { -v } else { v })
}

/// Formats minor units as a plain decimal: `format_minor(1299, 2) == "12.99"`.
pub fn format_minor(minor: i64, exponent: u32) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let scale = 10i128.pow(exponent);
    let m = i128::from(minor);
    let sign = if m < 0 { "-" } else { "" };
    let a = m.abs();
    format!(
        "{sign}{}.{:0width$}",
        a / scale,
        a % scale,
        width = exponent as usize
    )
}

impl Money {
    /// Parses `"12.99"` in `currency`.
    pub fn parse(amount: &str, currency: Currency) -> Result<Money, MoneyError> {
        Ok(Money {
            minor: parse_minor(amount, currency.exponent())?,
            currency,
        })
    }

    /// The amount as a plain decimal string, e.g. `"12.99"`.
    pub fn amount_text(&self) -> String {
        format_minor(self.minor, self.currency.exponent())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_text(), self.currency)
    }
}

/// Set the quantity (and price) a channel shows for one SKU. Always absolute, never a delta, so a
/// retried or reordered update can never double-count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockUpdate {
    /// The SKU.
    pub sku: Sku,
    /// The channel's id for the listing when known (eBay offer id, Shopify inventory item id …).
    pub external_id: Option<String>,
    /// Units to show.
    pub quantity: Quantity,
    /// Price to show, when the channel's price is managed by omnistock.
    pub price: Option<Money>,
    /// The desired-state version this update carries; results are recorded against it.
    pub version: i64,
}

/// Create or update a whole listing (content, price and quantity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingUpdate {
    /// The SKU.
    pub sku: Sku,
    /// The channel's id for the listing when known.
    pub external_id: Option<String>,
    /// Title.
    pub title: String,
    /// Description (plain text or the marketplace's allowed HTML).
    pub description: String,
    /// Brand.
    pub brand: Option<String>,
    /// GTIN/EAN/UPC.
    pub barcode: Option<String>,
    /// Image URLs, main image first.
    pub image_urls: Vec<String>,
    /// Variant option values (`Colour = Red`).
    pub options: Vec<(String, String)>,
    /// Groups variants of one product (`item_group_id`, parent SKU).
    pub group_id: Option<String>,
    /// Units to show.
    pub quantity: Quantity,
    /// Price to show.
    pub price: Money,
    /// The desired-state version this update carries.
    pub version: i64,
}

/// What became of one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemOutcome {
    /// Applied; `external_id` is the channel's id for the listing when it told us one.
    Applied {
        /// The channel's listing id.
        external_id: Option<String>,
    },
    /// Not applied, worth trying again later (5xx for this item, concurrent modification …).
    Retry {
        /// The marketplace's message.
        error: String,
    },
    /// Not applied because the channel has no listing for this SKU yet (or lost it): the dispatcher
    /// sends a [`ListingUpdate`] next instead of retrying the stock update.
    NotListed {
        /// The marketplace's message.
        error: String,
    },
    /// Not applied and will not be until someone changes something (invalid data, policy).
    Rejected {
        /// The marketplace's error code, when it gives one.
        code: Option<String>,
        /// The marketplace's message.
        error: String,
    },
}

/// What a channel really shows for one SKU (reconcile input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteItem {
    /// The SKU.
    pub sku: Sku,
    /// The channel's listing id.
    pub external_id: Option<String>,
    /// Quantity shown, when the channel reports one.
    pub quantity: Option<Quantity>,
    /// Price shown, when the channel reports one.
    pub price: Option<Money>,
}

/// Where an order is in its life, mapped from each channel's own states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed but not yet paid; reserves stock.
    Pending,
    /// Paid; reserves stock.
    Paid,
    /// Shipped: on hand drops, reservation released.
    Shipped,
    /// Cancelled before shipping: reservation released.
    Cancelled,
    /// Returned and restocked: on hand rises.
    Returned,
}

impl OrderStatus {
    /// Lower-case name as stored.
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Returned => "returned",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<OrderStatus> {
        Some(match s {
            "pending" => OrderStatus::Pending,
            "paid" => OrderStatus::Paid,
            "shipped" => OrderStatus::Shipped,
            "cancelled" => OrderStatus::Cancelled,
            "returned" => OrderStatus::Returned,
            _ => return None,
        })
    }
}

/// One line of a channel order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The channel's line id (stable across polls; part of ledger idempotency keys).
    pub line_id: String,
    /// The SKU sold.
    pub sku: Sku,
    /// Units.
    pub quantity: u32,
    /// Unit price, when known.
    pub unit_price: Option<Money>,
}

/// An order as a channel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelOrder {
    /// The channel's order id.
    pub external_id: String,
    /// Mapped status.
    pub status: OrderStatus,
    /// When the buyer placed it (unix milliseconds).
    pub placed_at_ms: i64,
    /// The channel's last-modified time (unix milliseconds); status moves apply only when newer.
    pub remote_updated_at_ms: i64,
    /// Order total.
    pub total: Option<Money>,
    /// An opaque buyer reference (no personal data is stored).
    pub buyer_ref: Option<String>,
    /// Lines.
    pub lines: Vec<OrderLine>,
    /// True when the marketplace fulfils from its own stock (Amazon FBA): recorded, never reserved.
    pub fulfilled_by_channel: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minor_units() {
        assert_eq!(parse_minor("12.99", 2), Ok(1299));
        assert_eq!(parse_minor("12.9", 2), Ok(1290));
        assert_eq!(parse_minor("12", 2), Ok(1200));
        assert_eq!(parse_minor(".5", 2), Ok(50));
        assert_eq!(parse_minor("-0.50", 2), Ok(-50));
        assert_eq!(parse_minor("1500", 0), Ok(1500));
        assert!(matches!(
            parse_minor("12.999", 2),
            Err(MoneyError::Precision { .. })
        ));
        for bad in ["", ".", "1e3", "1,000.00", "12.9a", "--1", "NaN"] {
            assert!(
                matches!(parse_minor(bad, 2), Err(MoneyError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_minor("99999999999999999999", 2),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn formats_minor_units() {
        assert_eq!(format_minor(1299, 2), "12.99");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(1500, 0), "1500");
        assert_eq!(format_minor(1234, 3), "1.234");
        assert_eq!(format_minor(i64::MIN, 2), "-92233720368547758.08");
    }

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("usd").unwrap().as_str(), "USD");
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("U$D").is_err());
        assert_eq!(
            Money::parse("12.99", Currency::parse("EUR").unwrap())
                .unwrap()
                .to_string(),
            "12.99 EUR"
        );
    }

    #[test]
    fn skus() {
        assert!(Sku::parse("MUG-RED").is_ok());
        assert_eq!(Sku::parse(" "), Err(SkuError::Empty));
        assert!(matches!(Sku::parse(" A"), Err(SkuError::Padded(_))));
        assert!(matches!(Sku::parse("A\nB"), Err(SkuError::Control(_))));
        assert!(matches!(
            Sku::parse("x".repeat(101)),
            Err(SkuError::TooLong(101))
        ));
        assert!(
            Sku::parse("'; DROP TABLE variants; --").is_ok(),
            "odd but legal: SQL uses bound parameters"
        );
    }
}
