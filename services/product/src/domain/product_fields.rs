use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// 1 to 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s.chars().count() {
            0 => Err("must not be empty".into()),
            n if n > 200 => Err("must be at most 200 characters".into()),
            _ if s.chars().any(char::is_control) => Err("must not contain control characters".into()),
            _ => Ok(Self(s.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Up to 5,000 characters (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.chars().count() > 5000 {
            return Err("must be at most 5000 characters".into());
        }
        Ok(Self(s.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Units in stock: 0 to 10 million.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockQuantity(i64);

impl StockQuantity {
    pub fn parse(n: i64) -> Result<Self, String> {
        if !(0..=10_000_000).contains(&n) {
            return Err("must be between 0 and 10000000".into());
        }
        Ok(Self(n))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// One cart line holds 1 to 99 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartQuantity(i64);

impl CartQuantity {
    pub const MAX: i64 = 99;

    pub fn parse(n: i64) -> Result<Self, String> {
        if !(1..=Self::MAX).contains(&n) {
            return Err(format!("must be between 1 and {}", Self::MAX));
        }
        Ok(Self(n))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// How many items a page holds: 1 to 100, 20 when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub fn parse(n: Option<u32>) -> Result<Self, String> {
        match n.unwrap_or(20) {
            n @ 1..=100 => Ok(Self(n)),
            _ => Err("`size` must be between 1 and 100".into()),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    #[default]
    PreSale,
    OnSale,
    SoldOut,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreSale => "PRE_SALE",
            Self::OnSale => "ON_SALE",
            Self::SoldOut => "SOLD_OUT",
        }
    }

    /// A status read back from the database; an unknown one (a newer release's, a
    /// hand edit) is an error carrying the value, never taken for `PRE_SALE`.
    pub fn from_db(s: &str) -> Result<Self, UnknownProductStatus> {
        [Self::PreSale, Self::OnSale, Self::SoldOut]
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownProductStatus(s.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown product status {0:?}")]
pub struct UnknownProductStatus(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced() {
        assert!(ProductName::parse("  ").is_err());
        assert_eq!(ProductName::parse(" Hoodie ").unwrap().as_str(), "Hoodie");
        assert!(ProductName::parse(&"x".repeat(201)).is_err());
        assert!(StockQuantity::parse(-1).is_err());
        assert!(StockQuantity::parse(0).is_ok());
        assert!(CartQuantity::parse(0).is_err());
        assert!(CartQuantity::parse(100).is_err());
        assert_eq!(CartQuantity::parse(99).unwrap().get(), 99);
        assert_eq!(PageSize::parse(None).unwrap().get(), 20);
        assert!(PageSize::parse(Some(0)).is_err());
        assert!(PageSize::parse(Some(101)).is_err());
        for s in [ProductStatus::PreSale, ProductStatus::OnSale, ProductStatus::SoldOut] {
            assert_eq!(ProductStatus::from_db(s.as_str()), Ok(s));
        }
    }

    #[test]
    fn an_unknown_stored_status_is_an_error_not_a_pre_sale() {
        for stored in ["DISCONTINUED", "on_sale", ""] {
            assert_eq!(ProductStatus::from_db(stored), Err(UnknownProductStatus(stored.into())));
        }
    }
}
