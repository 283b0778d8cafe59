//! Money: exact cents inside, two-decimal strings on the wire.

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

/// A price in whole cents: positive, at most two decimals, at most 100 million.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(i64);

const MAX_CENTS: i64 = 100_000_000 * 100;

impl Price {
    pub fn parse(input: &DecimalInput) -> Result<Self, String> {
        let text = input.as_text();
        let value = Decimal::from_str(text.trim()).map_err(|_| format!("`{text}` is not a decimal number"))?;
        if value.normalize().scale() > 2 {
            return Err("must have at most two decimal places".into());
        }
        if value <= Decimal::ZERO {
            return Err("must be greater than zero".into());
        }
        let cents = (value * Decimal::ONE_HUNDRED).trunc();
        i64::try_from(cents)
            .ok()
            .filter(|c| *c <= MAX_CENTS)
            .map(Self)
            .ok_or_else(|| "must be at most 100000000.00".into())
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

/// A decimal as a client sends it: a string (`"120.00"`, preferred) or a JSON number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DecimalInput {
    Text(String),
    Number(serde_json::Number),
}

impl DecimalInput {
    fn as_text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Number(n) => n.to_string(),
        }
    }
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
        assert_eq!(Price::parse(&DecimalInput::Number(serde_json::from_str("12.25").unwrap())).unwrap().cents(), 1225);
        assert_eq!(parse("19.99").unwrap().times(3).to_string(), "59.97");
    }

    #[test]
    fn refuses_what_is_not_a_price() {
        for bad in ["", "abc", "0", "-1", "1.001", "100000000.01", "1e400"] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
