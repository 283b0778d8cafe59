//! A sale as the order service records it and answers it, and the one set of rules a
//! sale's terms must meet, wherever they come in: `POST /api/sales`, a FlashSale
//! manifest (the operator, and the CRD's schema, whose ranges are these constants) and
//! the operator's `PUT` on the internal API.

use chrono::{DateTime, Utc};
use goodsmall_platform::money::{DecimalInput, Price};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::admission::{Admission, AdmissionInput};

/// The most units one sale may offer: a national drop of vouchers or a marketplace-wide
/// event, not only a sneaker release (docs/decisions.md).
pub const MAX_STOCK: i64 = 100_000_000;

/// The most units one shopper may hold in one sale: a trade buyer stocking up, not only
/// a fan's two pairs.
pub const MAX_PER_USER_LIMIT: i64 = 1_000;

/// The refusal of a price of 0 (the CRD's rule says the same).
pub const PRICE_NOT_POSITIVE: &str = "price must be greater than zero";

/// The refusal of a manifest whose window closes before it opens (the CRD's rule on the
/// whole spec says the same).
pub const CLOSES_BEFORE_OPENING: &str = "closesAt must be after opensAt";

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sale {
    pub id: i64,
    pub product_id: i64,
    pub merchant_id: i64,
    pub stock: i64,
    pub price: Price,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub per_user_limit: i64,
    pub closed_at: Option<DateTime<Utc>>,
    /// The sale's waiting room; absent (null) when it is first come, first served.
    #[serde(default)]
    pub admission: Option<Admission>,
}

/// A sale's terms as recorded; also the body of the operator's `PUT` on the internal
/// API, which the order service reads as a [`NewSaleBody`] and checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSale {
    pub product_id: i64,
    pub merchant_id: i64,
    pub stock: i64,
    pub price: Price,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub per_user_limit: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
}

/// The operator's `PUT` body as it arrives (the wire shape of [`NewSale`]), before the
/// terms are checked: [`NewSaleBody::parse`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSaleBody {
    pub product_id: i64,
    pub merchant_id: i64,
    pub stock: i64,
    pub price: DecimalInput,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub per_user_limit: i64,
    #[serde(default)]
    pub admission: Option<AdmissionInput>,
}

impl NewSaleBody {
    /// The terms checked by [`SaleTerms::parse`] (named as the body's fields).
    pub fn parse(&self) -> Result<NewSale, Vec<TermError>> {
        let input = TermsInput {
            product_id: self.product_id,
            stock: self.stock,
            price: &self.price,
            opens_at: self.opens_at,
            closes_at: self.closes_at,
            per_user_limit: self.per_user_limit,
            admission: self.admission.as_ref(),
        };
        Ok(SaleTerms::parse(&input, Spelling::Api)?.for_merchant(self.merchant_id))
    }
}

/// A term of a sale, for naming it in a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    ProductId,
    Stock,
    PerUserLimit,
    Price,
    /// The window: `closes_at` after `opens_at`.
    ClosesAt,
    /// One of the waiting room's terms.
    Admission(crate::admission::AdmissionField),
}

/// How the input names its fields: the JSON APIs' `snake_case`, or a FlashSale's
/// `spec.camelCase` (whose window rule is on the whole spec, as the CRD's is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    Api,
    Manifest,
}

impl Term {
    pub fn field(self, spelling: Spelling) -> &'static str {
        match (self, spelling) {
            (Term::ProductId, Spelling::Api) => "product_id",
            (Term::ProductId, Spelling::Manifest) => "spec.productId",
            (Term::Stock, Spelling::Api) => "stock",
            (Term::Stock, Spelling::Manifest) => "spec.stock",
            (Term::PerUserLimit, Spelling::Api) => "per_user_limit",
            (Term::PerUserLimit, Spelling::Manifest) => "spec.perUserLimit",
            (Term::Price, Spelling::Api) => "price",
            (Term::Price, Spelling::Manifest) => "spec.price",
            (Term::ClosesAt, Spelling::Api) => "closes_at",
            (Term::ClosesAt, Spelling::Manifest) => "spec",
            (Term::Admission(field), Spelling::Api) => field.names().0,
            (Term::Admission(field), Spelling::Manifest) => field.names().1,
        }
    }
}

/// One broken rule: the term, its field as the input spells it, and the message (the
/// same for every input, but for the window's, which names the fields as the input does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermError {
    pub term: Term,
    pub field: &'static str,
    pub message: String,
}

/// A sale's terms as they come in, unchecked.
#[derive(Debug, Clone)]
pub struct TermsInput<'a> {
    pub product_id: i64,
    pub stock: i64,
    pub price: &'a DecimalInput,
    pub opens_at: DateTime<Utc>,
    pub closes_at: DateTime<Utc>,
    pub per_user_limit: i64,
    pub admission: Option<&'a AdmissionInput>,
}

/// Terms that met every rule; made only by [`SaleTerms::parse`] (the fields can be read,
/// not assembled elsewhere).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SaleTerms {
    pub product_id: i64,
    /// 1 to [`MAX_STOCK`].
    pub stock: i64,
    /// Greater than zero, at most 100,000,000.00 ([`Price::parse`]).
    pub price: Price,
    pub opens_at: DateTime<Utc>,
    /// After `opens_at`.
    pub closes_at: DateTime<Utc>,
    /// 1 to [`MAX_PER_USER_LIMIT`].
    pub per_user_limit: i64,
    /// [`Admission::parse`]'s rules.
    pub admission: Option<Admission>,
}

impl SaleTerms {
    /// Every broken rule, in the order product, stock, per-user limit, price, window.
    pub fn parse(input: &TermsInput<'_>, spelling: Spelling) -> Result<Self, Vec<TermError>> {
        let mut errors = Vec::new();
        let mut refuse =
            |term: Term, message: String| errors.push(TermError { term, field: term.field(spelling), message });
        if input.product_id < 1 {
            refuse(Term::ProductId, format!("must be at least 1, got {}", input.product_id));
        }
        for (term, value, max) in
            [(Term::Stock, input.stock, MAX_STOCK), (Term::PerUserLimit, input.per_user_limit, MAX_PER_USER_LIMIT)]
        {
            if !(1..=max).contains(&value) {
                refuse(term, format!("must be between 1 and {max}, got {value}"));
            }
        }
        let price = match Price::parse(input.price) {
            Ok(price) => Some(price),
            Err(_) if matches!(input.price, DecimalInput::Text(t) if is_zero(t)) => {
                refuse(Term::Price, PRICE_NOT_POSITIVE.to_owned());
                None
            }
            Err(message) => {
                refuse(Term::Price, message);
                None
            }
        };
        if input.closes_at <= input.opens_at {
            let message = match spelling {
                Spelling::Api => "must be after opens_at",
                Spelling::Manifest => CLOSES_BEFORE_OPENING,
            };
            refuse(Term::ClosesAt, message.to_owned());
        }
        let admission = match input.admission.map(|a| Admission::parse(a, input.stock)).transpose() {
            Ok(admission) => admission,
            Err(broken) => {
                for e in broken {
                    refuse(Term::Admission(e.field), e.message);
                }
                None
            }
        };
        match price {
            Some(price) if errors.is_empty() => Ok(Self {
                product_id: input.product_id,
                stock: input.stock,
                price,
                opens_at: input.opens_at,
                closes_at: input.closes_at,
                per_user_limit: input.per_user_limit,
                admission,
            }),
            _ => Err(errors),
        }
    }

    /// The sale to record for `merchant_id`.
    pub fn for_merchant(&self, merchant_id: i64) -> NewSale {
        NewSale {
            product_id: self.product_id,
            merchant_id,
            stock: self.stock,
            price: self.price,
            opens_at: self.opens_at,
            closes_at: self.closes_at,
            per_user_limit: self.per_user_limit,
            admission: self.admission,
        }
    }
}

/// A plain decimal that is 0 (`0`, `0.0`, `000.00`): refused with the CRD's own message.
fn is_zero(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    !whole.is_empty() && whole.bytes().chain(fraction.bytes()).all(|b| b == b'0') && fraction.len() <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(price: &DecimalInput) -> TermsInput<'_> {
        let opens_at = "2030-01-01T10:00:00Z".parse().unwrap();
        TermsInput {
            product_id: 1,
            stock: 100,
            price,
            opens_at,
            closes_at: "2030-01-01T11:00:00Z".parse().unwrap(),
            per_user_limit: 2,
            admission: None,
        }
    }

    fn text(s: &str) -> DecimalInput {
        DecimalInput::Text(s.into())
    }

    #[test]
    fn good_terms_parse_up_to_the_limits() {
        let price = text("120.00");
        let terms = SaleTerms::parse(
            &TermsInput { stock: MAX_STOCK, per_user_limit: MAX_PER_USER_LIMIT, ..input(&price) },
            Spelling::Api,
        )
        .unwrap();
        assert_eq!((terms.stock, terms.per_user_limit, terms.price.cents()), (MAX_STOCK, MAX_PER_USER_LIMIT, 12_000));
        let sale = terms.for_merchant(9);
        assert_eq!((sale.merchant_id, sale.stock), (9, MAX_STOCK));
    }

    #[test]
    fn every_broken_rule_is_named_with_one_message_in_either_spelling() {
        let price = text("0.00");
        let bad =
            TermsInput { product_id: 0, stock: MAX_STOCK + 1, per_user_limit: MAX_PER_USER_LIMIT + 1, ..input(&price) };
        let bad = TermsInput { closes_at: bad.opens_at, ..bad };
        let api = SaleTerms::parse(&bad, Spelling::Api).unwrap_err();
        let manifest = SaleTerms::parse(&bad, Spelling::Manifest).unwrap_err();
        let named =
            |errors: &[TermError]| errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>();
        assert_eq!(
            named(&api),
            [
                "product_id: must be at least 1, got 0",
                "stock: must be between 1 and 100000000, got 100000001",
                "per_user_limit: must be between 1 and 1000, got 1001",
                "price: price must be greater than zero",
                "closes_at: must be after opens_at",
            ]
        );
        assert_eq!(
            named(&manifest),
            [
                "spec.productId: must be at least 1, got 0",
                "spec.stock: must be between 1 and 100000000, got 100000001",
                "spec.perUserLimit: must be between 1 and 1000, got 1001",
                "spec.price: price must be greater than zero",
                "spec: closesAt must be after opensAt",
            ]
        );
        for (a, m) in api.iter().zip(&manifest).filter(|(a, _)| a.term != Term::ClosesAt) {
            assert_eq!((a.term, &a.message), (m.term, &m.message), "the same message on both paths");
        }
    }

    #[test]
    fn a_price_is_parsed_as_everywhere_else() {
        for (price, message) in [
            ("0", PRICE_NOT_POSITIVE),
            ("000.0", PRICE_NOT_POSITIVE),
            ("1.234", "must have at most two decimal places"),
            ("100000000.01", "must be at most 100000000.00"),
        ] {
            let price = text(price);
            let errors = SaleTerms::parse(&input(&price), Spelling::Manifest).unwrap_err();
            assert_eq!(errors, [TermError { term: Term::Price, field: "spec.price", message: message.into() }]);
        }
        for price in ["-1", "1e3", "12,00", "abc", ""] {
            let price = text(price);
            assert!(SaleTerms::parse(&input(&price), Spelling::Api).is_err(), "{price:?}");
        }
    }

    #[test]
    fn the_internal_body_is_checked_by_the_same_rules() {
        let body: NewSaleBody = serde_json::from_value(serde_json::json!({
            "product_id": 7, "merchant_id": 3, "stock": 0, "price": "9.90", "opens_at": "2030-01-01T10:00:00Z",
            "closes_at": "2030-01-01T11:00:00Z", "per_user_limit": 2
        }))
        .unwrap();
        let errors = body.parse().unwrap_err();
        assert_eq!(
            errors,
            [TermError { term: Term::Stock, field: "stock", message: "must be between 1 and 100000000, got 0".into() }]
        );
        let good = NewSaleBody { stock: 5, ..body };
        let sale = good.parse().unwrap();
        assert_eq!((sale.merchant_id, sale.stock, sale.price.cents()), (3, 5, 990));
        // What the operator sends is what the body reads.
        let sent: NewSaleBody = serde_json::from_value(serde_json::to_value(&sale).unwrap()).unwrap();
        assert_eq!(sent.parse().unwrap().price, sale.price);
    }
}
