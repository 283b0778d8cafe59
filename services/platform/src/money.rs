//! Money: exact cents inside, two-decimal strings on the wire.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

/// A price in whole cents: positive, at most two decimals, at most 100 million.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(i64);

const MAX_CENTS: i64 = 100_000_000 * 100;

impl Price {
    /// A plain decimal string: ASCII digits, optionally a point and one or two more
    /// (`120`, `99.5`, `0.01`). No sign, exponent, spaces or grouping: what a client
    /// sends is exactly the amount it means. A JSON number is refused, since a float
    /// has no exact decimal form and its spelling (`1e3`) is lost in parsing.
    pub fn parse(input: &DecimalInput) -> Result<Self, String> {
        let text = match input {
            DecimalInput::Text(text) => text,
            DecimalInput::Number(n) => {
                return Err(format!("must be a string such as \"120.00\", not the JSON number {n}"))
            }
        };
        let plain = || {
            format!(
                "`{text}` is not a plain decimal such as 120.00 (digits, then optionally a point and one or two \
                digits)"
            )
        };
        let (whole, fraction) = text.split_once('.').map_or((text.as_str(), None), |(w, f)| (w, Some(f)));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
            return Err(plain());
        }
        let fraction = fraction.unwrap_or("");
        if fraction.len() > 2 {
            return Err("must have at most two decimal places".into());
        }
        let too_large = || "must be at most 100000000.00".to_owned();
        let whole: i64 = match whole.trim_start_matches('0') {
            "" => 0,
            w => w.parse().map_err(|_| too_large())?,
        };
        let cents = format!("{fraction:0<2}").parse::<i64>().map_err(|_| plain())?;
        let total = whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(cents))
            .filter(|c| *c <= MAX_CENTS)
            .ok_or_else(too_large)?;
        if total == 0 {
            return Err("must be greater than zero".into());
        }
        Ok(Self(total))
    }

    pub fn from_cents(cents: i64) -> Self {
        Self(cents)
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    pub fn times(self, quantity: i64) -> Self {
        Self(self.0.saturating_mul(quantity))
    }
}

impl std::iter::Sum for Price {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        Self(iter.map(|p| p.0).fold(0, i64::saturating_add))
    }
}

/// Always two decimals, e.g. `120.00`.
impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Decimal::new(self.0, 2))
    }
}

/// Sent as a string so no client rounds it through a float.
impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Accepts what `Serialize` writes (and what clients send).
impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Price::parse(&DecimalInput::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Price {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .examples([serde_json::json!("120.00")])
            .description(Some("Decimal with two places"))
            .into()
    }
}
impl ToSchema for Price {}

/// A decimal as a client sends it: a string (`"120.00"`), or a JSON number, which
/// [`Price::parse`] refuses with a field error (not a shapeless body error).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DecimalInput {
    Text(String),
    Number(serde_json::Number),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Price, String> {
        Price::parse(&DecimalInput::Text(s.into()))
    }

    #[test]
    fn parses_and_prints_exact_cents() {
        assert_eq!(parse("120").unwrap().to_string(), "120.00");
        assert_eq!(parse("99.5").unwrap().cents(), 9950);
        assert_eq!(parse("0.01").unwrap().cents(), 1);
        assert_eq!(parse("1.10").unwrap().cents(), 110);
        assert_eq!(parse("007.50").unwrap().cents(), 750);
        assert_eq!(parse("100000000.00").unwrap().cents(), MAX_CENTS);
        assert_eq!(parse("19.99").unwrap().times(3).to_string(), "59.97");
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for bad in [
            "",
            "abc",
            "0",
            "0.00",
            "-1",
            "+1",
            "1.001",
            "100000000.01",
            "99999999999999999999999",
            "1e400",
            "1e3",
            "1E3",
            " 1.00",
            "1.00 ",
            "1. 00",
            "1.",
            ".5",
            "1,00",
            "1_000",
            "0x10",
            "١٢",
            "NaN",
            "inf",
            "12.3.4",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse(" 1.00").unwrap_err().contains("plain decimal"));
        let number = Price::parse(&DecimalInput::Number(serde_json::from_str("12.25").unwrap())).unwrap_err();
        assert!(number.contains("string"), "{number}");
    }

    #[test]
    fn deserialising_is_as_strict() {
        assert_eq!(serde_json::from_str::<Price>(r#""12.25""#).unwrap().cents(), 1225);
        assert!(serde_json::from_str::<Price>(r#""1e3""#).is_err());
        assert!(serde_json::from_str::<Price>("12.25").is_err());
    }
}
